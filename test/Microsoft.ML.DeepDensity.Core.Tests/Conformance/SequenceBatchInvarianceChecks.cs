using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>
/// The sequence models' form of <see cref="BatchInvarianceChecks"/>: a sequence's log-density, standard error, every
/// frame's conditional log-density and (RNN-RNADE) the one-step-ahead density of a frame after it are the same bits
/// alone and in batches of 2 to 5,000 sequences (across the
/// models' blocks of sequences), at any position, beside short and long sequences, in any order, duplicated, on 1 and
/// 2 threads and on every kernel path forced on the caller. Serial: it sets
/// <see cref="DeepDensityEnvironment.MaxDegreeOfParallelism"/>.
/// </summary>
[Collection(EngineSettingsCollection.Name)]
public class SequenceBatchInvarianceChecks
{
    /// <summary>The case's own sequences (lengths 1 to 12) and copies of some three times as far out.</summary>
    private static SequenceBatch Pool(SequenceModelCase c)
    {
        var data = c.MakeData(200, 4242);
        var seqs = new List<float[]>();
        for (int i = 0; i < data.Count; i++) seqs.Add(data.Sequence(i).ToArray());
        for (int i = 0; i < 40; i++) seqs.Add(data.Sequence(i).ToArray().Select(v => 3f * v).ToArray());
        return SequenceBatch.FromSequences(seqs, data.FrameSize);
    }

    /// <summary>Each pool sequence's scores alone; <see cref="Predictive"/> is RNN-RNADE's one-step-ahead density of
    /// <see cref="NextFrame"/> after the sequence (null for other models).</summary>
    private sealed record Alone(float[] LogDensity, float[] StandardError, float[][] Frames, float[]? Predictive);

    /// <summary>The candidate frame scored after pool sequence p: the first frame of sequence p + 1.</summary>
    private static ReadOnlySpan<float> NextFrame(SequenceBatch pool, int p) => pool.Sequence((p + 1) % pool.Count)[..pool.FrameSize];

    private static float[] Predictive(Models.RnnRnade.RnnRnadeModel m, SequenceBatch pool, int[] indices)
    {
        var prefixes = pool.Select(indices);
        var next = new float[indices.Length * pool.FrameSize];
        for (int i = 0; i < indices.Length; i++) NextFrame(pool, indices[i]).CopyTo(next.AsSpan(i * pool.FrameSize));
        var result = new float[indices.Length];
        m.PredictiveLogDensity(prefixes, next, result);
        return result;
    }

    private static Alone ScoreAlone(SequenceDensityModel m, SequenceBatch pool)
    {
        var ld = new float[pool.Count];
        var se = new float[pool.Count];
        var frames = new float[pool.Count][];
        for (int i = 0; i < pool.Count; i++)
        {
            var one = pool.Select(new[] { i });
            m.LogDensity(one, ld.AsSpan(i, 1), se.AsSpan(i, 1));
            frames[i] = new float[one.TotalFrames];
            m.FrameLogDensity(one, frames[i]);
        }
        var predictive = m is Models.RnnRnade.RnnRnadeModel rnn
            ? Enumerable.Range(0, pool.Count).Select(i => Predictive(rnn, pool, new[] { i })[0]).ToArray() : null;
        return new Alone(ld, se, frames, predictive);
    }

    /// <summary>A seeded draw, reversed, sorted by length both ways (short sequences leading blocks and long ones), and
    /// one sequence repeated.</summary>
    private static IEnumerable<(string What, int[] Indices)> Arrangements(SequenceBatch pool, int n)
    {
        var rng = new RandomStream(31).Fork((ulong)n);
        var drawn = new int[n];
        for (int i = 0; i < n; i++) drawn[i] = rng.NextInt(pool.Count);
        yield return ("drawn", drawn);
        yield return ("reversed", drawn.Reverse().ToArray());
        var ascending = drawn.OrderBy(pool.Length).ThenBy(i => i).ToArray();
        yield return ("short sequences first", ascending);
        yield return ("long sequences first", ascending.Reverse().ToArray());
        yield return ("one sequence repeated", Enumerable.Repeat(drawn[0], n).ToArray());
    }

    private static void Same(float expected, float actual, string what)
    {
        if (BitConverter.SingleToInt32Bits(expected) != BitConverter.SingleToInt32Bits(actual))
            Assert.Fail($"{what}: {actual:R}, alone {expected:R}.");
    }

    private static void CheckEveryBatch(SequenceDensityModel m, SequenceBatch pool, Alone alone, string path, int[] sizes, int[] threadCounts)
    {
        foreach (int threads in threadCounts)
        {
            DeepDensityEnvironment.MaxDegreeOfParallelism = threads;
            foreach (int n in sizes)
                foreach (var (what, indices) in Arrangements(pool, n))
                {
                    var batch = pool.Select(indices);
                    var ld = new float[n];
                    var se = new float[n];
                    m.LogDensity(batch, ld, se);
                    var frames = new float[batch.TotalFrames];
                    m.FrameLogDensity(batch, frames);
                    string where = $"{path}, {threads} thread(s), a batch of {n} ({what})";
                    var predictive = m is Models.RnnRnade.RnnRnadeModel rnn ? Predictive(rnn, pool, indices) : null;
                    for (int i = 0; i < n; i++)
                    {
                        int p = indices[i];
                        Same(alone.LogDensity[p], ld[i], $"{where}: log-density of the sequence at position {i} (pool sequence {p})");
                        Same(alone.StandardError[p], se[i], $"{where}: standard error of the sequence at position {i} (pool sequence {p})");
                        if (predictive is not null)
                            Same(alone.Predictive![p], predictive[i], $"{where}: one-step-ahead density after the prefix at position {i} (pool sequence {p})");
                        for (int t = 0; t < alone.Frames[p].Length; t++)
                            Same(alone.Frames[p][t], frames[batch.Offsets[i] + t], $"{where}: frame {t} of the sequence at position {i} (pool sequence {p})");
                    }
                }
        }
    }

    [Theory, MemberData(nameof(SequenceModelCases.Names), MemberType = typeof(SequenceModelCases))]
    public void ASequenceScoresTheSameBitsInAnyBatch(string name)
    {
        var m = SequenceModelCases.Get(name).FitStandard();
        var pool = Pool(SequenceModelCases.Get(name));
        try { CheckEveryBatch(m, pool, ScoreAlone(m, pool), "best kernel path", BatchInvarianceChecks.BatchSizes, new[] { 1, 2 }); }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = -1; }
    }

    [Theory, MemberData(nameof(SequenceModelCases.Names), MemberType = typeof(SequenceModelCases))]
    public void ASequenceScoresTheSameBitsInAnyBatchOnEveryKernelPath(string name)
    {
        var m = SequenceModelCases.Get(name).FitStandard();
        var pool = Pool(SequenceModelCases.Get(name));
        try
        {
            foreach (var level in new[] { SimdLevel.Portable, SimdLevel.Avx2 })
            {
                if (level >= KernelPath.Best) continue;
                using var forced = KernelPath.Force(level);
                CheckEveryBatch(m, pool, ScoreAlone(m, pool), $"{level} forced", BatchInvarianceChecks.ForcedPathBatchSizes, new[] { 2 });
            }
        }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = -1; }
    }
}
