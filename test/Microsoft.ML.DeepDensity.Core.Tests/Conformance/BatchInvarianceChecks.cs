using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>
/// A row's log-density and standard error are the same bits whatever it is scored with (docs/architecture.md,
/// Determinism; docs/scaling.md, "Scoring: a per-partition map"): alone or in batches whose sizes straddle every block
/// edge the models use (GEMM edge tiles of ≤ 4 rows, fewer than 4 rows, the RBM's 256-row and the ML.NET layer's
/// 2,048-row blocks), at any position, beside any rows (for binary models sparse rows beside dense ones, which
/// switches the RBM's product between sums of selected rows and the float GEMM), in any order, duplicated, and on 1
/// and 2 threads. Serial: it sets <see cref="DeepDensityEnvironment.MaxDegreeOfParallelism"/>.
/// </summary>
[Collection(EngineSettingsCollection.Name)]
public class BatchInvarianceChecks
{
    internal static readonly int[] BatchSizes = { 2, 3, 4, 5, 17, 255, 256, 257, 2048, 2049, 5000 };

    /// <summary>On a forced lower path (kernels whose paths differ by rounding: a block that ran another path than the
    /// row alone shows): an edge tile, a row past the RBM's first block and past the 2,048-row block, on 2 threads.</summary>
    internal static readonly int[] ForcedPathBatchSizes = { 3, 5, 257, 2049 };

    /// <summary>Distinct rows the batches are drawn from: the case's own data and, for binary models, rows from all
    /// zeros to all ones (a block led by sparse rows and one led by dense rows take different products in the RBM);
    /// for real models also rows three times as far from the data.</summary>
    internal static RowMatrix Pool(ModelCase c)
    {
        var data = c.MakeData(240, 4242);
        int d = data.Columns, extra = 120;
        var pool = new RowMatrix(data.Rows + extra, d);
        data.AsSpan().CopyTo(pool.AsSpan());
        var rng = new RandomStream(99).Fork(7);
        for (int r = 0; r < extra; r++)
        {
            var row = pool.Row(data.Rows + r);
            if (c.InputDomain == InputDomain.Binary)
            {
                double p = (r % 12) / 11.0; // 0, 1/11, …, 1: the all-zeros and all-ones rows included
                for (int j = 0; j < d; j++) row[j] = rng.NextDouble() < p ? 1f : 0f;
            }
            else
            {
                data.Row(r).CopyTo(row);
                for (int j = 0; j < d; j++) row[j] *= 3f;
            }
        }
        return pool;
    }

    /// <summary>Row indices into the pool for a batch of n: a seeded draw (so duplicates appear once n passes the
    /// pool's size), the same draw reversed, and the draw sorted by how many ones (binary) or how far out (real) a row
    /// is, ascending and descending, so sparse rows lead some blocks and dense rows others.</summary>
    internal static IEnumerable<(string What, int[] Indices)> Arrangements(RowMatrix pool, int n, ulong seed)
    {
        var rng = new RandomStream(seed).Fork((ulong)n);
        var drawn = new int[n];
        for (int i = 0; i < n; i++) drawn[i] = rng.NextInt(pool.Rows);
        yield return ("drawn", drawn);
        yield return ("reversed", drawn.Reverse().ToArray());
        double Weight(int i) { double s = 0; foreach (var v in pool.Row(i)) s += Math.Abs(v); return s; }
        var ascending = drawn.OrderBy(Weight).ThenBy(i => i).ToArray();
        yield return ("light rows first", ascending);
        yield return ("heavy rows first", ascending.Reverse().ToArray());
        // One row repeated to fill the batch.
        yield return ("one row repeated", Enumerable.Repeat(drawn[0], n).ToArray());
    }

    internal static RowMatrix Gather(RowMatrix pool, int[] indices)
    {
        var m = new RowMatrix(indices.Length, pool.Columns);
        for (int i = 0; i < indices.Length; i++) pool.Row(indices[i]).CopyTo(m.Row(i));
        return m;
    }

    /// <summary>Every per-row output of the model for rows (n × d): the log-density and its standard error, and the
    /// families' own per-row calls (an RBM's free energy; IWAE's and NVIL's k-sample bound, whose noise is row-keyed).</summary>
    internal static (string Name, float[] Values)[] Outputs(DensityModel model, ReadOnlySpan<float> rows, int n)
    {
        var ld = new float[n];
        var se = new float[n];
        model.LogDensity(rows, ld, se);
        var outputs = new List<(string, float[])> { ("log-density", ld), ("standard error", se) };
        if (model is Microsoft.ML.DeepDensity.Models.Rbm.RbmModel rbm)
        {
            var fe = new float[n];
            rbm.FreeEnergy(rows, fe);
            outputs.Add(("free energy", fe));
        }
        if (model is Microsoft.ML.DeepDensity.Estimation.ImportanceSampledModel sampled)
        {
            var bound = new float[n];
            sampled.Bound(rows, 3, 5, bound);
            outputs.Add(("3-sample bound", bound));
        }
        return outputs.ToArray();
    }

    /// <summary>Every pool row's outputs, each row scored alone (one row per call).</summary>
    internal static float[][] Alone(DensityModel model, RowMatrix pool)
    {
        float[][]? alone = null;
        for (int r = 0; r < pool.Rows; r++)
        {
            var one = Outputs(model, pool.Row(r), 1);
            alone ??= one.Select(_ => new float[pool.Rows]).ToArray();
            for (int o = 0; o < one.Length; o++) alone[o][r] = one[o].Values[0];
        }
        return alone!;
    }

    private static void CheckEveryBatch(DensityModel model, RowMatrix pool, float[][] alone, string path, int[] sizes, int[] threadCounts)
    {
        foreach (int threads in threadCounts)
        {
            DeepDensityEnvironment.MaxDegreeOfParallelism = threads;
            foreach (int n in sizes)
                foreach (var (what, indices) in Arrangements(pool, n, 31))
                {
                    var outputs = Outputs(model, Gather(pool, indices).AsSpan(), n);
                    for (int o = 0; o < outputs.Length; o++)
                        for (int i = 0; i < n; i++)
                        {
                            float expected = alone[o][indices[i]], actual = outputs[o].Values[i];
                            if (BitConverter.SingleToInt32Bits(actual) != BitConverter.SingleToInt32Bits(expected))
                                Assert.Fail($"{path}, {threads} thread(s), a batch of {n} ({what}): the row at position {i} (pool row {indices[i]}) has {outputs[o].Name} {actual:R}, alone {expected:R}.");
                        }
                }
        }
    }

    /// <summary>Each pool row's bits alone are its bits in every batch, arrangement and thread count.</summary>
    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void ARowScoresTheSameBitsInAnyBatch(string name)
    {
        var f = ModelCases.Fitted(name);
        if (!f.Case.ScoresIndependentOfTheBatch) return;
        var pool = Pool(f.Case);
        try
        {
            var alone = Alone(f.Model, pool);
            CheckEveryBatch(f.Model, pool, alone, "best kernel path", BatchSizes, new[] { 1, 2 });
        }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = -1; }
    }

    /// <summary>The same on each lower kernel path forced on the calling thread (a path's own bits: paths may differ from
    /// each other within documented tolerances, but a row alone and in a batch take the same path).</summary>
    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void ARowScoresTheSameBitsInAnyBatchOnEveryKernelPath(string name)
    {
        var f = ModelCases.Fitted(name);
        if (!f.Case.ScoresIndependentOfTheBatch) return;
        var pool = Pool(f.Case);
        try
        {
            foreach (var level in new[] { SimdLevel.Portable, SimdLevel.Avx2 })
            {
                if (level >= KernelPath.Best) continue; // the best path is ARowScoresTheSameBitsInAnyBatch's
                using var forced = KernelPath.Force(level);
                var alone = Alone(f.Model, pool);
                CheckEveryBatch(f.Model, pool, alone, $"{level} forced", ForcedPathBatchSizes, new[] { 2 });
            }
        }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = -1; }
    }

    /// <summary>−0 and +0 are the same value: a row scores the same bits with either (binary models take −0 as a 0; the
    /// ML.NET layer's sample seed and IWAE's and NVIL's noise key hash −0 as +0 for that reason), alone and in a batch.</summary>
    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void ASignedZeroScoresAsZero(string name)
    {
        var f = ModelCases.Fitted(name);
        var pool = Pool(f.Case);
        int d = pool.Columns;
        var plus = new RowMatrix(pool.Rows, d);
        var minus = new RowMatrix(pool.Rows, d);
        for (int r = 0; r < pool.Rows; r++)
            for (int j = 0; j < d; j++)
            {
                // Binary: every 0 of the row; real: one column per row set to zero.
                float v = f.Case.InputDomain == InputDomain.Binary ? pool[r, j] : (j == r % d ? 0f : pool[r, j]);
                plus[r, j] = v;
                minus[r, j] = v == 0f ? -0f : v;
            }
        var alone = Alone(f.Model, plus);
        var aloneMinus = Alone(f.Model, minus);
        var batch = Outputs(f.Model, minus.AsSpan(), minus.Rows);
        for (int o = 0; o < alone.Length; o++)
        {
            ConformanceAssert.BitIdentical(alone[o], aloneMinus[o], $"{batch[o].Name}, rows alone with −0 vs +0");
            ConformanceAssert.BitIdentical(alone[o], batch[o].Values, $"{batch[o].Name}, rows with −0 in a batch vs +0 alone");
        }
    }
}
