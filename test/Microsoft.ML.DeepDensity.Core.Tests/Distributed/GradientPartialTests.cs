using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Tests.Iwae;
using Microsoft.ML.DeepDensity.Tests.Rnade;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.Distributed;

/// <summary>
/// Data-parallel gradients (docs/scaling.md, "Beyond one machine"): partials of partitions merged in any order equal the
/// single-pass gradient, and steps from merged partials equal the training loop's steps.
/// </summary>
/// <remarks>
/// Tolerance. The single pass sums float32 block gradients already scaled by −1/N; a partition scales by −1/n_p, so the
/// same per-row terms are rounded differently (float32, about 2^-24 relative per addition of the few block sums) before
/// the float64 merge. A merged mean therefore agrees with the single pass to a few float32 ulps of the tensor's largest
/// gradient: checked at <see cref="GradientTolerance"/> × max |g| per tensor (observed below 1e-6). One partition is the
/// single pass bit for bit (n·g is exact in float64, so the mean gives g back).
/// </remarks>
public class GradientPartialTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const double GradientTolerance = 1e-5;

    /// <summary>Partition sizes of 23 rows (RNADE, rows per block 4: any split) and of 20 rows (IWAE, rows per block 3:
    /// partitions of whole blocks, so a partition starts at a block boundary of the batch).</summary>
    public static TheoryData<int[]> RnadeSplits => new() { new[] { 23 }, new[] { 8, 15 }, new[] { 4, 12, 7 }, new[] { 1, 21, 1 } };
    public static TheoryData<int[]> IwaeSplits => new() { new[] { 20 }, new[] { 9, 11 }, new[] { 3, 12, 5 }, new[] { 6, 3, 3, 8 } };

    private static float[] Rows(int n, int d, ulong seed)
    {
        var x = new float[n * d];
        new RandomStream(seed).FillGaussian(x);
        return x;
    }

    /// <summary>Partials of consecutive partitions of the batch; <paramref name="rowsPerBlock"/> gives each partition's first block.</summary>
    private static List<GradientPartial> Partials(IGradientObjective objective, float[] x, int d, int[] sizes, RandomStream random, int rowsPerBlock, bool offsetNoise = true)
    {
        var partials = new List<GradientPartial>();
        int start = 0;
        foreach (int n in sizes)
        {
            Assert.True(start % rowsPerBlock == 0 || !offsetNoise);
            partials.Add(GradientPartial.Compute(objective, x.AsSpan(start * d, n * d), n, random, offsetNoise ? start / rowsPerBlock : 0));
            start += n;
        }
        return partials;
    }

    /// <summary>Three ways to merge: left fold, right fold, and pairs then pairs (a tree).</summary>
    private static IEnumerable<GradientPartial> Merges(List<GradientPartial> p)
    {
        yield return p.Aggregate(GradientPartial.Merge);
        yield return Enumerable.Reverse(p).Aggregate((a, b) => GradientPartial.Merge(b, a));
        var level = p;
        while (level.Count > 1)
            level = Enumerable.Range(0, (level.Count + 1) / 2).Select(i => 2 * i + 1 < level.Count ? GradientPartial.Merge(level[2 * i], level[2 * i + 1]) : level[2 * i]).ToList();
        yield return level[0];
    }

    /// <summary>The single pass: the objective's own gradient (of the negative mean) and sum over all rows.</summary>
    private static (float[][] Gradient, double Sum) SinglePass(IGradientObjective objective, float[] x, int n, RandomStream random)
    {
        double sum = objective.ComputeGradient(x, n, random);
        return (objective.Parameters.Items.Select(p => (float[])p.Gradient.Clone()).ToArray(), sum);
    }

    private static double AssertMatches((float[][] Gradient, double Sum) single, GradientPartial merged, int n, ParameterSet parameters)
    {
        Assert.Equal(n, merged.Count);
        Assert.Equal(single.Sum, merged.ObjectiveSum, 1e-9 * (1 + Math.Abs(single.Sum)));
        var sum = merged.LossGradientSum;
        int offset = 0;
        double worst = 0;
        for (int t = 0; t < single.Gradient.Length; t++)
        {
            var g = single.Gradient[t];
            double scale = g.Max(v => Math.Abs((double)v));
            for (int i = 0; i < g.Length; i++)
            {
                double mean = sum[offset + i] / n;
                double error = Math.Abs(mean - g[i]);
                worst = Math.Max(worst, error / scale);
                Assert.True(error <= GradientTolerance * scale, $"{parameters.Items[t].Name}[{i}]: merged {mean:G9}, single pass {g[i]:G9}");
            }
            offset += g.Length;
        }
        return worst;
    }

    [Theory]
    [MemberData(nameof(RnadeSplits))]
    public void RnadePartitionsMergeToTheSinglePassGradient(int[] sizes)
    {
        const int d = 5;
        int n = sizes.Sum();
        var net = RnadeGradientTests.RandomNetwork(d, h: 7, k: 3, Activation.Relu, seed: 3);
        var objective = new RnadeObjective(net, rowsPerBlock: 4, scaleMeanBySigma: true);
        var x = Rows(n, d, 11);
        var single = SinglePass(objective, x, n, new RandomStream(1));
        var partials = Partials(objective, x, d, sizes, new RandomStream(1), rowsPerBlock: 1);
        var merges = Merges(partials).ToList();
        foreach (var merged in merges) output.WriteLine($"worst |merged − single| / max|g| = {AssertMatches(single, merged, n, objective.Parameters):G3}");
        // Merge order changes a float64 sum of a few float-sized terms: far below the float32 tolerance.
        for (int m = 1; m < merges.Count; m++)
            for (int i = 0; i < merges[0].LossGradientSum.Length; i++)
                Assert.Equal(merges[0].LossGradientSum[i], merges[m].LossGradientSum[i], 1e-12 * (1 + Math.Abs(merges[0].LossGradientSum[i])));
    }

    [Theory]
    [MemberData(nameof(IwaeSplits))]
    public void IwaePartitionsOfWholeBlocksDrawTheBatchNoiseAndMergeToTheSinglePassGradient(int[] sizes)
    {
        const int d = 6;
        int n = sizes.Sum();
        var net = IwaeGradientTests.RandomNetwork(d, new[] { 3 }, IwaeLikelihood.Gaussian, Activation.Tanh, seed: 13);
        var objective = new IwaeObjective(net, samples: 4, rowsPerBlock: 3);
        var x = Rows(n, d, 21);
        var step = new RandomStream(7).Fork(3);
        var single = SinglePass(objective, x, n, step);
        foreach (var merged in Merges(Partials(objective, x, d, sizes, step, rowsPerBlock: 3)))
            output.WriteLine($"worst |merged − single| / max|g| = {AssertMatches(single, merged, n, objective.Parameters):G3}");
        if (sizes.Length == 1) return;
        // The check has teeth: partitions that restart the noise at block 0 (no offset) give another gradient.
        var unshifted = Partials(objective, x, d, sizes, step, rowsPerBlock: 3, offsetNoise: false).Aggregate(GradientPartial.Merge);
        Assert.ThrowsAny<Exception>(() => AssertMatches(single, unshifted, n, objective.Parameters));
    }

    /// <summary>"rnade-sgd": SGD with momentum and no clipping (the optimiser's own finiteness pass) instead of clipped Adam.</summary>
    public static TheoryData<string, int> TrainingCases => new() { { "rnade", 1 }, { "rnade", 2 }, { "rnade-sgd", 1 }, { "rnade-sgd", 3 }, { "iwae", 1 }, { "iwae", 2 }, { "iwae", 3 } };

    /// <summary>
    /// Simulated data-parallel training: the driver replays the training loop's batches (epoch e shuffles with
    /// Root.Fork(e, 0), step b draws from Root.Fork(e, 0).Fork(b)); each batch is cut into partitions of whole blocks, their
    /// partials merged and applied by <see cref="DataParallelOptimizer"/>. One partition is <see cref="TrainingLoop.Run(IGradientObjective, RowMatrix, RowMatrix?, GradientTrainingOptions, IProgress{TrainingProgress}?, CancellationToken)"/>
    /// bit for bit; more agree to float32 rounding carried through a few Adam steps.
    /// </summary>
    [Theory]
    [MemberData(nameof(TrainingCases))]
    public void DataParallelStepsEqualTheTrainingLoopsSteps(string model, int workers)
    {
        const int rows = 48, batchSize = 24, blockRows = 4;
        var options = new GradientTrainingOptions { MaxEpochs = 2, BatchSize = batchSize, LearningRate = 1e-2f, Seed = 5, EarlyStoppingPatience = 0 };
        if (model == "rnade-sgd") options = new GradientTrainingOptions { MaxEpochs = 2, BatchSize = batchSize, LearningRate = 1e-2f, Seed = 5, EarlyStoppingPatience = 0, Optimizer = OptimizerKind.SgdMomentum, GradientClipNorm = 0 };
        Func<IGradientObjective> make = model.StartsWith("rnade", StringComparison.Ordinal)
            ? () => new RnadeObjective(RnadeGradientTests.RandomNetwork(5, h: 7, k: 3, Activation.Tanh, seed: 3), blockRows, scaleMeanBySigma: true)
            : () => new IwaeObjective(IwaeGradientTests.RandomNetwork(5, new[] { 2 }, IwaeLikelihood.Gaussian, Activation.Tanh, seed: 13), samples: 3, blockRows);
        int d = 5;
        var data = new RowMatrix(Rows(rows, d, 99), rows, d);

        var reference = make();
        TrainingLoop.Run(reference, data, null, options, null, CancellationToken.None);

        var parallel = make();
        var optimizer = new DataParallelOptimizer(parallel.Parameters, options);
        var root = new RandomStream(options.Seed).Fork(0x7EA1_0000); // TrainingLoop's root
        var batch = new float[batchSize * d];
        for (int epoch = 1; epoch <= options.MaxEpochs; epoch++)
        {
            var epochRandom = root.Fork((ulong)epoch, 0);
            var order = Enumerable.Range(0, rows).ToArray();
            epochRandom.Shuffle(order.AsSpan());
            for (int b = 0; b * batchSize < rows; b++)
            {
                for (int r = 0; r < batchSize; r++) data.Row(order[b * batchSize + r]).CopyTo(batch.AsSpan(r * d, d));
                // Partitions of whole blocks: 24 rows = 6 blocks, cut into `workers` runs of blocks (uneven for 3... 4|1|1).
                int[] sizes = workers switch { 1 => [24], 2 => [8, 16], _ => [16, 4, 4] };
                var merged = Partials(parallel, batch, d, sizes, epochRandom.Fork((ulong)b), blockRows).Aggregate(GradientPartial.Merge);
                Assert.True(optimizer.Step(merged, options.LearningRate));
            }
        }
        double worst = 0;
        for (int t = 0; t < reference.Parameters.Items.Count; t++)
        {
            for (int i = 0; i < reference.Parameters.Items[t].Value.Length; i++)
                worst = Math.Max(worst, Math.Abs(reference.Parameters.Items[t].Value[i] - parallel.Parameters.Items[t].Value[i]));
            var expected = reference.Parameters.Items[t].Value;
            var actual = parallel.Parameters.Items[t].Value;
            if (workers == 1) Assert.Equal(expected, actual); // bit for bit
            else
                for (int i = 0; i < expected.Length; i++)
                    // 4 Adam steps of at most lr each; float32 rounding of the gradients moves a step by far less than lr.
                    Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-3 * options.LearningRate,
                        $"{reference.Parameters.Items[t].Name}[{i}]: loop {expected[i]:G9}, data-parallel {actual[i]:G9}");
        }
        output.WriteLine($"worst |Δθ| after {options.MaxEpochs * rows / batchSize} steps = {worst:G3} (lr {options.LearningRate})");
    }

    [Fact]
    public void EmptyPartitionsAreTheIdentityAndMismatchedModelsAreRefused()
    {
        var objective = new RnadeObjective(RnadeGradientTests.RandomNetwork(4, 5, 2, Activation.Tanh, 1), 4, scaleMeanBySigma: false);
        var x = Rows(6, 4, 2);
        var p = GradientPartial.Compute(objective, x, 6, new RandomStream(1));
        var withEmpty = GradientPartial.Merge(GradientPartial.Compute(objective, default, 0, new RandomStream(1)), p);
        Assert.Equal(p.LossGradientSum.ToArray(), withEmpty.LossGradientSum.ToArray());
        Assert.Equal(6, withEmpty.Count);
        var other = new RnadeObjective(RnadeGradientTests.RandomNetwork(4, 6, 2, Activation.Tanh, 1), 4, scaleMeanBySigma: false);
        Assert.Throws<ArgumentException>(() => GradientPartial.Merge(p, GradientPartial.Empty(other.Parameters)));
        var optimizer = new DataParallelOptimizer(other.Parameters, new GradientTrainingOptions());
        Assert.Throws<ArgumentException>(() => optimizer.Step(p, 1e-3f));
        Assert.Throws<ArgumentException>(() => new DataParallelOptimizer(objective.Parameters, new GradientTrainingOptions()).Step(GradientPartial.Empty(objective.Parameters), 1e-3f));
    }

    [Fact]
    public void ANonFiniteMergedPartialIsReportedAsDivergence()
    {
        var objective = new RnadeObjective(RnadeGradientTests.RandomNetwork(4, 5, 2, Activation.Tanh, 1), 4, scaleMeanBySigma: false);
        var x = Rows(6, 4, 2);
        x[3] = float.NaN; // the objective is not validated here: a worker's NaN reaches the driver as a NaN sum
        var p = GradientPartial.Compute(objective, x, 6, new RandomStream(1));
        Assert.False(new DataParallelOptimizer(objective.Parameters, new GradientTrainingOptions()).Step(p, 1e-3f));
    }
}
