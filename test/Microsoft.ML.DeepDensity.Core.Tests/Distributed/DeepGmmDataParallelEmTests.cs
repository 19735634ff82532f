using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Tests.Distributed;

/// <summary>
/// Deep GMM's EM as map-reduce (docs/scaling.md, "Beyond one machine"): statistics of partitions, merged in any order,
/// drive EM iterations that equal the in-memory EM iterations on all rows.
/// </summary>
/// <remarks>
/// What is equal. One partition: the in-memory iterations bit for bit (statistics, parameters, figures). Several: every
/// round's merged statistics equal one pass over all rows to 1e-6 of their largest value (observed 1.5–3.6e-7: a
/// layer's moments are float32 GEMMs over blocks of a path's members, and partitions cut those blocks elsewhere), and
/// the first E-step's figure to float64 rounding. The parameters after the L-BFGS M-step are NOT close element by
/// element (observed up to 13% in hard EM): the node objective has nearly flat directions and L-BFGS stops at a
/// gradient norm of 1e-5 or 50 iterations, so a 1e-7 change in its statistics moves it to another point of the same
/// optimum. The density they define agrees: mean log-density within 1e-4 nats per row (observed ≤ 1.6e-5).
/// </remarks>
public class DeepGmmDataParallelEmTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static RowMatrix Data(int rows, ulong seed)
    {
        // Three offset clusters with different scales in 3 columns.
        var rng = new RandomStream(seed);
        var x = new RowMatrix(rows, 3);
        for (int r = 0; r < rows; r++)
        {
            int c = rng.NextInt(3);
            for (int a = 0; a < 3; a++) x.Row(r)[a] = (float)((c - 1) * 3 + (a + 1) * (0.5 + c) * rng.NextGaussian());
        }
        return x;
    }

    private static List<RowMatrix> Split(RowMatrix x, int[] sizes)
    {
        var parts = new List<RowMatrix>();
        int start = 0;
        foreach (int n in sizes) { parts.Add(x.SelectRows(Enumerable.Range(start, n).ToArray())); start += n; }
        Assert.Equal(x.Rows, start);
        return parts;
    }

    /// <summary>Merges in a rotating order (left fold, right fold, tree) so every order is exercised across rounds.</summary>
    private static DeepGmmEmStatistics Merge(List<DeepGmmEmStatistics> s, int round)
    {
        switch (round % 3)
        {
            case 0: return s.Aggregate(DeepGmmEmStatistics.Merge);
            case 1: return Enumerable.Reverse(s).Aggregate((a, b) => DeepGmmEmStatistics.Merge(b, a));
            default:
                var level = s;
                while (level.Count > 1)
                    level = Enumerable.Range(0, (level.Count + 1) / 2).Select(i => 2 * i + 1 < level.Count ? DeepGmmEmStatistics.Merge(level[2 * i], level[2 * i + 1]) : level[2 * i]).ToList();
                return level[0];
        }
    }

    public static TheoryData<DeepGmmEmKind, int[]> Cases => new()
    {
        { DeepGmmEmKind.Hard, new[] { 700 } }, { DeepGmmEmKind.Hard, new[] { 300, 400 } }, { DeepGmmEmKind.Hard, new[] { 5, 600, 95 } },
        { DeepGmmEmKind.Soft, new[] { 700 } }, { DeepGmmEmKind.Soft, new[] { 256, 444 } }, { DeepGmmEmKind.Soft, new[] { 100, 1, 599 } },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void MergedStatisticsEqualOnePassAndDriveTheInMemoryEmIterations(DeepGmmEmKind em, int[] sizes)
    {
        var options = new DeepGmmOptions { Layers = new[] { 2, 2 }, Em = em, MaxIterations = 1, Seed = 3 };
        var x = Data(sizes.Sum(), 8);
        var start = DeepGmmModel.Fit(x, options); // one iteration from the initialisation: the run's starting point
        const int iterations = 2;

        // In memory: the trainer Fit uses, on all (standardised) rows.
        var net = start.Network.Clone();
        var trainer = new DeepGmmTrainer(net, options, start.Standardizer.Forward(x), new RandomStream(options.Seed).Fork(0xD6));
        var figures = new List<double>();
        for (int it = 1; it <= iterations; it++)
        {
            figures.Add(trainer.EStep(it - 1, CancellationToken.None).MeanLogLikelihood);
            trainer.MStep(it, CancellationToken.None);
        }

        // Map-reduce: every round maps the partitions to statistics (shipped as bytes), merges them, and the driver steps.
        var run = new DeepGmmDataParallelEm(start, options);
        var parts = Split(x, sizes);
        int round = 0;
        double worstStatistic = 0;
        while (run.Iteration < iterations || run.PendingLayer is not null)
        {
            var stats = parts.Select(p => run.PendingLayer is int layer
                ? DeepGmmEmStatistics.ComputeLayer(run.Scored!, run.Current, layer, options, p)
                : DeepGmmEmStatistics.ComputeEStep(run.Current, options, p)).ToList();
            var shipped = stats.Select(s => DeepGmmEmStatistics.FromBytes(s.ToBytes(), run.Current)).ToList();
            var merged = Merge(shipped, round++);
            // The map-reduce step itself: merged statistics are those of one pass over all rows under the same models.
            var whole = run.PendingLayer is int l
                ? DeepGmmEmStatistics.ComputeLayer(run.Scored!, run.Current, l, options, x)
                : DeepGmmEmStatistics.ComputeEStep(run.Current, options, x);
            worstStatistic = Math.Max(worstStatistic, CompareStatistics(whole, merged));
            run.Add(merged);
            // The first E-step scores every row under the same model: the same figure up to float64 summation order;
            // later ones follow parameters that agree to the tolerance below.
            if (run.PendingLayer == options.Layers.Length - 1)
                Assert.Equal(figures[run.Iteration - 1], run.MeanLogLikelihood!.Value, run.Iteration == 1 || sizes.Length == 1 ? 1e-12 : 1e-4);
        }
        Assert.Equal(iterations * (options.Layers.Length + 1), round);

        var result = run.ToModel().Network;
        double worst = 0;
        for (int node = 0; node < net.NodeCount; node++)
        {
            worst = Math.Max(worst, Compare(net.Q[node], result.Q[node], sizes.Length, $"Q[{node}]"));
            worst = Math.Max(worst, Compare(net.E[node], result.E[node], sizes.Length, $"E[{node}]"));
        }
        worst = Math.Max(worst, Compare(net.LogPrior, result.LogPrior, sizes.Length, "log prior"));
        double llMemory = new DeepGmmModel(net, start.Standardizer).AverageLogDensity(x), llParallel = run.ToModel().AverageLogDensity(x);
        output.WriteLine($"{em} {string.Join("+", sizes)}: worst relative statistic difference {worstStatistic:G3}, parameter {worst:G3}; " +
            $"mean log-density in memory {llMemory:F8}, data-parallel {llParallel:F8}");
        Assert.Equal(llMemory, llParallel, sizes.Length == 1 ? 0 : 1e-4);
    }

    /// <summary>Largest difference of two statistics relative to the largest magnitude of their kind (a layer's moments
    /// or the E-step's path weights and column sums); asserts it is within float32 rounding of the block moments.</summary>
    private static double CompareStatistics(DeepGmmEmStatistics whole, DeepGmmEmStatistics merged)
    {
        Assert.Equal(whole.Layer, merged.Layer);
        Assert.Equal(whole.Count, merged.Count);
        Assert.Equal(whole.LogLikelihoodSum, merged.LogLikelihoodSum, 1e-9 * (1 + Math.Abs(whole.LogLikelihoodSum)));
        var a = whole.Values; var b = merged.Values;
        double scale = 0, worst = 0;
        foreach (var v in a) scale = Math.Max(scale, Math.Abs(v));
        for (int i = 0; i < a.Length; i++) worst = Math.Max(worst, Math.Abs(a[i] - b[i]) / scale);
        Assert.True(worst <= 1e-6, $"layer {whole.Layer}: merged statistics differ from the single pass by {worst:G3} of their largest value");
        return worst;
    }

    /// <summary>Bitwise with one partition; otherwise the largest relative difference, reported only (see remarks).</summary>
    private static double Compare(float[] expected, float[] actual, int partitions, string what)
    {
        if (partitions == 1) { Assert.Equal(expected, actual); return 0; }
        double worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double error = Math.Abs(expected[i] - actual[i]) / (1 + Math.Abs(expected[i]));
            worst = Math.Max(worst, error);
        }
        return worst;
    }

    [Fact]
    public void RoundsOutOfOrderAndUnsupportedOptionsAreRefused()
    {
        var options = new DeepGmmOptions { Layers = new[] { 2, 2 }, MaxIterations = 1 };
        var x = Data(300, 2);
        var start = DeepGmmModel.Fit(x, options);
        var run = new DeepGmmDataParallelEm(start, options);
        Assert.Null(run.Scored);
        var layerStats = DeepGmmEmStatistics.ComputeLayer(start, start, 1, options, x);
        Assert.Throws<ArgumentException>(() => run.Add(layerStats));            // an E-step round is due
        Assert.Throws<ArgumentException>(() => DeepGmmEmStatistics.Merge(layerStats, DeepGmmEmStatistics.ComputeEStep(start, options, x)));
        Assert.Throws<ArgumentException>(() => new DeepGmmDataParallelEm(start, new DeepGmmOptions { Layers = new[] { 2, 3 } }));
        Assert.Throws<NotSupportedException>(() => new DeepGmmDataParallelEm(start, new DeepGmmOptions { Layers = new[] { 2, 2 }, MStep = DeepGmmMStep.Minibatch }));
        var heuristic = Assert.Throws<NotSupportedException>(() => new DeepGmmDataParallelEm(start, new DeepGmmOptions { Layers = new[] { 2, 2 }, EStep = DeepGmmEStep.Heuristic }));
        Assert.Contains("EStep = Heuristic; set EStep = Exact or Auto", heuristic.Message); // not "more than ExactPathLimit paths": {2, 2} has 4
        run.Add(DeepGmmEmStatistics.ComputeEStep(start, options, x));
        Assert.Equal(1, run.PendingLayer);
        Assert.Throws<InvalidOperationException>(() => run.ToModel());          // the M-step is half done
        // A bad value in a worker's partition is named like any training data.
        var bad = x.SelectRows(Enumerable.Range(0, 10).ToArray());
        bad.Row(4)[1] = float.NaN;
        var e = Assert.Throws<DataValidationException>(() => DeepGmmEmStatistics.ComputeLayer(run.Scored!, run.Current, 1, options, bad));
        Assert.Contains("training data", e.Message);
    }
}
