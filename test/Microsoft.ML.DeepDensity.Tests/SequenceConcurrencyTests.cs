using System.Globalization;
using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// RNN-RNADE (whole sequences and frame rows) through the ML.NET layer, used as ML.NET users use transformers: one
/// fitted or loaded transformer scored from several threads at once gives the single-threaded values, and the same
/// seed and data give the same model whatever the engine's thread count, the MLContext's seed or the fits running at once.
/// </summary>
public class SequenceConcurrencyTests
{
    public sealed class SequenceRow { public float[] Features = Array.Empty<float>(); }

    public sealed class FrameRow
    {
        [VectorType(2)] public float[] Features = new float[2];
        public int SequenceId;
        public float Order;
    }

    public sealed class SequenceScore
    {
        public float LogDensity;
        public float LogDensityPerFrame;
        public float[] FrameLogDensities = Array.Empty<float>();
        public float Score;
        public bool PredictedLabel;
    }

    public sealed class FrameScore
    {
        public float LogDensity;
        public float Score;
        public bool PredictedLabel;
    }

    internal static List<float[]> Sequences(int count, ulong seed)
    {
        var rng = new RandomStream(seed);
        var result = new List<float[]>();
        for (int s = 0; s < count; s++)
        {
            int length = 3 + rng.NextInt(8);
            var x = new float[length * 2];
            double a = rng.NextGaussian(), b = rng.NextGaussian();
            for (int t = 0; t < length; t++)
            {
                if (t > 0) (a, b) = (0.8 * a - 0.3 * b + 0.3 * rng.NextGaussian(), 0.3 * a + 0.8 * b + 0.3 * rng.NextGaussian());
                x[2 * t] = (float)a; x[2 * t + 1] = (float)b;
            }
            result.Add(x);
        }
        return result;
    }

    /// <summary>Frame rows, the sequences interleaved round-robin (sequence i has id i, order t).</summary>
    internal static List<FrameRow> Frames(List<float[]> sequences)
    {
        var rows = new List<FrameRow>();
        for (int t = 0; sequences.Any(s => s.Length > 2 * t); t++)
            for (int i = 0; i < sequences.Count; i++)
                if (sequences[i].Length > 2 * t)
                    rows.Add(new FrameRow { Features = sequences[i].AsSpan(2 * t, 2).ToArray(), SequenceId = i, Order = t });
        return rows;
    }

    internal static RnnRnadeOptions Small() => new() { HiddenUnits = 6, Components = 2, RecurrentUnits = 6, MaxEpochs = 8, LearningRate = 1e-2f, BatchSize = 16, Seed = 5 };

    internal static SequenceDensityEstimator WholeSequences(MLContext ml) => ml.DensityEstimation.RnnRnade(new SequenceDensityEstimator.Options { FrameSize = 2 }, Small());
    internal static RnnRnadeFrameEstimator FrameRows(MLContext ml) => ml.DensityEstimation.RnnRnade(new RnnRnadeFrameEstimator.Options { ModelOptions = Small() });

    [Fact]
    public void WholeSequences_ScoringFromSeveralThreadsEqualsOneThread()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Sequences(120, 1).Select(s => new SequenceRow { Features = s }).ToList());
        var test = Sequences(80, 2).Select(s => new SequenceRow { Features = s }).ToList();
        Check<SequenceRow, SequenceScore>("whole sequences", ml, WholeSequences(ml).Fit(train), train.Schema, test,
            new[] { "LogDensity", "LogDensityPerFrame", "FrameLogDensities", "Score", "PredictedLabel" }, Fingerprint, cursorSets: true);
    }

    /// <summary>Frame rows: a cursor reads a sequence's frames in row order, so a cursor set is not split (each
    /// PredictionEngine, like each cursor, keeps its own open sequences).</summary>
    [Fact]
    public void FrameRows_ScoringFromSeveralThreadsEqualsOneThread()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Frames(Sequences(120, 1)));
        var test = Frames(Sequences(60, 2));
        Check<FrameRow, FrameScore>("frame rows", ml, FrameRows(ml).Fit(train), train.Schema, test,
            new[] { "LogDensity", "Score", "PredictedLabel" }, Fingerprint, cursorSets: true);
    }

    /// <summary>A sequence Fit cancelled while it reads the training data stops reading (it read every row, then threw
    /// from training); one whose token is already cancelled reads no row.</summary>
    [Theory]
    [InlineData("whole sequences")]
    [InlineData("frame rows")]
    public void FitCancelledWhileReadingTheDataStopsReading(string kind)
    {
        var ml = new MLContext(seed: 1);
        using var cts = new CancellationTokenSource();
        int read = 0, cancelAt = 500;
        var sequences = Sequences(200, 1);
        var frames = Frames(sequences);
        IEnumerable<T> Source<T>(Func<int, T> row)
        {
            for (int i = 0; i < 100_000; i++)
            {
                if (++read == cancelAt) cts.Cancel();
                yield return row(i);
            }
        }
        IDataView Data() => kind == "frame rows"
            ? ml.Data.LoadFromEnumerable(Source(i => new FrameRow { Features = frames[i % frames.Count].Features, SequenceId = i, Order = 0 }))
            : ml.Data.LoadFromEnumerable(Source(i => new SequenceRow { Features = sequences[i % sequences.Count] }));
        IEstimator<ITransformer> estimator = kind == "frame rows"
            ? ml.DensityEstimation.RnnRnade(new RnnRnadeFrameEstimator.Options { ModelOptions = Small(), CancellationToken = cts.Token })
            : ml.DensityEstimation.RnnRnade(new SequenceDensityEstimator.Options { FrameSize = 2, CancellationToken = cts.Token }, Small());
        Assert.ThrowsAny<OperationCanceledException>(() => estimator.Fit(Data()));
        // Frame rows pass through ML.NET's type conversions, whose cursor may read a few batches ahead.
        Assert.True(read <= cancelAt + 4 * 1024, $"{kind}: {read} rows read after the token was cancelled at row {cancelAt}");
        read = 0;
        cancelAt = -1;
        Assert.ThrowsAny<OperationCanceledException>(() => estimator.Fit(Data()));
        Assert.True(read == 0, $"{kind}: a Fit whose token was already cancelled read {read} rows");
    }

    private static string Fingerprint(SequenceScore s)
        => string.Join(" ", new[] { s.LogDensity, s.LogDensityPerFrame, s.Score }.Concat(s.FrameLogDensities).Select(Bits)) + " " + s.PredictedLabel;
    private static string Fingerprint(FrameScore s) => $"{Bits(s.LogDensity)} {Bits(s.Score)} {s.PredictedLabel}";
    private static string Bits(float v) => BitConverter.SingleToInt32Bits(v).ToString(CultureInfo.InvariantCulture);

    private static void Check<TRow, TScore>(string what, MLContext ml, ITransformer live, DataViewSchema schema, List<TRow> testRows, string[] columns,
        Func<TScore, string> fingerprint, bool cursorSets) where TRow : class where TScore : class, new()
    {
        using var zip = new MemoryStream();
        ml.Model.Save(live, schema, zip);
        var ml2 = new MLContext(seed: 3);
        zip.Position = 0;
        var loaded = ml2.Model.Load(zip, out _);
        zip.Position = 0;
        var liveLoaded = ml2.Model.LoadWithLiveDensityModels(zip, out _);
        var test = ml.Data.LoadFromEnumerable(testRows);
        foreach (var (how, t) in new[] { ("live", live), ("loaded with Model.Load", loaded), ("loaded with LoadWithLiveDensityModels", liveLoaded) })
        {
            string name = $"{what} {how}";
            var reference = Read(t.Transform(test), null, columns);
            Assert.Equal(testRows.Count, reference.Count);
            var sequential = ml.Model.CreatePredictionEngine<TRow, TScore>(t);
            var predictions = testRows.Select(r => fingerprint(sequential.Predict(r))).ToArray();
            ConcurrencyChecks.RunTogether(name, thread =>
            {
                for (int repeat = 0; repeat < 2; repeat++)
                    Assert.Equal(reference, Read(t.Transform(test), null, columns));
                var engine = ml.Model.CreatePredictionEngine<TRow, TScore>(t);
                // Frame rows carry state per engine: every engine sees the rows in the same order.
                for (int i = 0; i < testRows.Count; i++)
                    Assert.True(predictions[i] == fingerprint(engine.Predict(testRows[i])), $"{name}: thread {thread} PredictionEngine row {i}");
            });
            if (!cursorSets) continue;
            var view = t.Transform(ml.Data.Cache(test));
            var cols = columns.Select(c => view.Schema[c]).ToArray();
            foreach (int n in new[] { 2, 4 })
            {
                var cursors = view.GetRowCursorSet(cols, n);
                var parts = new List<(DataViewRowId Id, string Values)>[cursors.Length];
                ConcurrencyChecks.RunTogether(name + " cursor set", i => parts[i] = Read(view, cursors[i], columns), cursors.Length);
                var rows = parts.SelectMany(p => p).ToList();
                Assert.Equal(testRows.Count, rows.Count);
                var byId = reference.ToDictionary(r => r.Id, r => r.Values);
                Assert.Equal(testRows.Count, rows.Select(r => r.Id).Distinct().Count());
                foreach (var row in rows) Assert.True(byId[row.Id] == row.Values, $"{name}: cursor set of {n} ({cursors.Length} cursors), row {row.Id}: {row.Values} vs {byId[row.Id]}");
            }
        }
    }

    /// <summary>Each row's id and its values (float bit patterns) of <paramref name="columns"/>.</summary>
    internal static List<(DataViewRowId Id, string Values)> Read(IDataView view, DataViewRowCursor? cursor, string[] columns)
    {
        var cols = columns.Select(c => view.Schema[c]).ToArray();
        cursor ??= view.GetRowCursor(cols);
        using var owned = cursor;
        var id = cursor.GetIdGetter();
        var getters = cols.Select<DataViewSchema.Column, Func<string>>(c =>
        {
            if (c.Type == NumberDataViewType.Single) { var g = cursor.GetGetter<float>(c); return () => { float v = 0; g(ref v); return Bits(v); }; }
            if (c.Type == BooleanDataViewType.Instance) { var g = cursor.GetGetter<bool>(c); return () => { bool v = false; g(ref v); return v.ToString(); }; }
            var vg = cursor.GetGetter<VBuffer<float>>(c);
            return () => { VBuffer<float> v = default; vg(ref v); return string.Join(",", v.DenseValues().Select(Bits)); };
        }).ToArray();
        var rows = new List<(DataViewRowId, string)>();
        while (cursor.MoveNext())
        {
            DataViewRowId rowId = default;
            id(ref rowId);
            rows.Add((rowId, string.Join(" ", getters.Select(g => g()))));
        }
        return rows;
    }
}
