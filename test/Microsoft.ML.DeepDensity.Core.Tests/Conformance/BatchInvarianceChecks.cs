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
    /// row alone shows): edge tiles and a row past the first scoring block (the models' blocks are at most 256 rows), on
    /// 2 threads.</summary>
    internal static readonly int[] ForcedPathBatchSizes = { 3, 5, 257 };

    /// <summary>For the wide models (slower rows): every block edge, without the largest batches.</summary>
    private static readonly int[] WideBatchSizes = { 2, 3, 4, 5, 17, 255, 256, 257, 2049 };

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

    /// <summary>On 1 thread (where no block runs elsewhere) only these sizes, drawn (thread-count independence is also
    /// <see cref="DeterminismChecks.ResultsDoNotDependOnTheNumberOfThreads"/>'s).</summary>
    private static readonly int[] OneThreadBatchSizes = { 3, 257, 2049 };

    private static void CheckEveryBatch(DensityModel model, RowMatrix pool, float[][] alone, string path, int[] sizes, int[] threadCounts)
    {
        foreach (int threads in threadCounts)
        {
            DeepDensityEnvironment.MaxDegreeOfParallelism = threads;
            foreach (int n in sizes)
                foreach (var (what, indices) in Arrangements(pool, n, 31))
                {
                    if (threads == 1 && (what != "drawn" || !OneThreadBatchSizes.Contains(n))) continue;
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

    /// <summary>
    /// The suite's cases are tiny (4 or 8 columns, a handful of units), too narrow for some kernels: the RBM's sums of
    /// selected rows (<c>OnesGemm</c>) need 16 hidden units or more, the GEMM's k-blocks 256-long sums. These models are
    /// wide enough for them (an RBM's 90 hidden units, 300-unit hidden layers over two k-blocks), fitted for one epoch
    /// (or, for the RBM, random weights of scale 0.3 with AIS), and hold a row's bits in the same batches (IWAE and NVIL
    /// with K = 4 in chunks of 3, a partial last chunk).
    /// </summary>
    [Theory]
    [InlineData("RbmBernoulli")]
    [InlineData("RbmGaussian")]
    [InlineData("Rnade")]
    [InlineData("DeepRnade")]
    [InlineData("DeepGmm")]
    [InlineData("Iwae")]
    [InlineData("Nvil")]
    public void AWideModelsRowScoresTheSameBitsInAnyBatch(string family)
    {
        bool binary = family is "RbmBernoulli" or "Iwae" or "Nvil";
        int d = binary ? 70 : 20;
        var data = binary ? WideBinary(600, d, 5) : WideReal(600, d, 5);
        DensityModel model = family switch
        {
            "RbmBernoulli" or "RbmGaussian" => WideRbm(family == "RbmBernoulli" ? Models.Rbm.RbmVisibleType.Bernoulli : Models.Rbm.RbmVisibleType.Gaussian, d, data),
            "Rnade" => Models.Rnade.RnadeModel.Fit(data, new Models.Rnade.RnadeOptions { HiddenUnits = 300, Components = 3, MaxEpochs = 1 }),
            "DeepRnade" => Models.Rnade.DeepRnadeModel.Fit(data, new Models.Rnade.DeepRnadeOptions { HiddenUnits = 300, Components = 3, Orderings = 2, MaxEpochs = 1 }),
            "DeepGmm" => Models.DeepGmm.DeepGmmModel.Fit(data, new Models.DeepGmm.DeepGmmOptions { Layers = new[] { 3, 3 }, MaxIterations = 2 }),
            "Iwae" => Models.Iwae.IwaeModel.Fit(data, new Models.Iwae.IwaeOptions { LatentDimensions = new[] { 10 }, HiddenUnits = new[] { 300 }, Samples = 2, EvaluationSamples = 4, EvaluationSamplesPerChunk = 3, MaxEpochs = 1 }),
            "Nvil" => Models.Nvil.NvilModel.Fit(data, new Models.Nvil.NvilOptions { LatentDimensions = new[] { 300, 20 }, EvaluationSamples = 4, EvaluationSamplesPerChunk = 3, MaxEpochs = 1 }),
            _ => throw new ArgumentException(family),
        };
        var pool = new RowMatrix(360, d);
        (binary ? WideBinary(360, d, 6) : WideReal(360, d, 6)).AsSpan().CopyTo(pool.AsSpan());
        if (!binary) for (int r = 300; r < 360; r++) foreach (ref float v in pool.Row(r)) v *= 3f;
        try
        {
            CheckEveryBatch(model, pool, Alone(model, pool), $"wide {family}", WideBatchSizes, new[] { 1, 2 });
            foreach (var level in new[] { SimdLevel.Portable, SimdLevel.Avx2 })
            {
                if (level >= KernelPath.Best) continue;
                using var forced = KernelPath.Force(level);
                CheckEveryBatch(model, pool, Alone(model, pool), $"wide {family}, {level} forced", ForcedPathBatchSizes, new[] { 2 });
            }
        }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = -1; }
    }

    /// <summary>Rows of 0/1 whose share of ones runs from 0 to 1 in twelve steps (row r: (r mod 12) / 11), so blocks mix
    /// sparse rows (the RBM's sums of selected rows) and dense ones (the float GEMM).</summary>
    private static RowMatrix WideBinary(int rows, int d, ulong seed)
    {
        var rng = new RandomStream(seed);
        var m = new RowMatrix(rows, d);
        for (int r = 0; r < rows; r++)
        {
            double p = (r % 12) / 11.0;
            for (int j = 0; j < d; j++) m[r, j] = rng.NextDouble() < p ? 1f : 0f;
        }
        return m;
    }

    /// <summary>Correlated Gaussian rows with per-column offsets and scales.</summary>
    private static RowMatrix WideReal(int rows, int d, ulong seed)
    {
        var rng = new RandomStream(seed);
        var m = new RowMatrix(rows, d);
        for (int r = 0; r < rows; r++)
        {
            double shared = rng.NextGaussian();
            for (int j = 0; j < d; j++) m[r, j] = (float)(j + (1 + j % 3) * (0.7 * shared + 0.7 * rng.NextGaussian()));
        }
        return m;
    }

    private static DensityModel WideRbm(Models.Rbm.RbmVisibleType type, int d, RowMatrix data)
    {
        const int h = 90;
        var rng = new RandomStream(17);
        var w = new float[d * h];
        var b = new float[d];
        var c = new float[h];
        rng.FillGaussian(w, 0, 0.3f);
        rng.FillGaussian(b, 0, 0.5f);
        rng.FillGaussian(c, 0, 0.5f);
        return Models.Rbm.RbmModel.FromParameters(type, w, b, c, new Models.Rbm.RbmOptions { AisRuns = 4, AisTemperatures = 50 },
            type == Models.Rbm.RbmVisibleType.Gaussian ? data : null);
    }
}
