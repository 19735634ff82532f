using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;
using Xunit.Abstractions;
using static Microsoft.ML.DeepDensity.Tests.DeepGmm.DeepGmmTestModels;

namespace Microsoft.ML.DeepDensity.Tests.DeepGmm;

public class DeepGmmTrainingTests
{
    private readonly ITestOutputHelper _output;
    public DeepGmmTrainingTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public void HeuristicEStepFindsTheExactBestPathForMostRows()
    {
        // 3 layers × 3 components (27 paths), data drawn from the network itself.
        var net = RandomNetwork(4, new[] { 3, 3, 3 }, seed: 31, noise: 0.5f, biasScale: 1f);
        var x = Model(net).Sample(3000, 2);
        var exact = DeepGmmTrainer.ExactBestPaths(net, x);
        var options = new DeepGmmOptions { Layers = new[] { 3, 3, 3 }, EStep = DeepGmmEStep.Heuristic };
        var trainer = new DeepGmmTrainer(net, options, x, new RandomStream(5));
        // First E-step: no previous path, so both starts are random (1 pass and 2 passes).
        var first = trainer.EStep(0, CancellationToken.None);
        int agree0 = exact.Where((p, r) => trainer.Assignment[r] == p).Count();
        // Second E-step: warm start from the previous best paths, as during training.
        var second = trainer.EStep(1, CancellationToken.None);
        int agree1 = exact.Where((p, r) => trainer.Assignment[r] == p).Count();
        _output.WriteLine($"heuristic = exact best path: first E-step {agree0 / 30.0:F1}%, warm-started {agree1 / 30.0:F1}%; switch rates {first.SwitchRate:P1}, {second.SwitchRate:P1}");
        Assert.False(first.IsExact);
        Assert.True(agree1 >= 0.9 * x.Rows, $"only {agree1} of {x.Rows} rows found the exact best path");
        Assert.True(agree1 >= agree0);
        // The heuristic's score is a lower bound on the best path's; on agreement it is the same path.
        Assert.True(second.SwitchRate < 0.1);
    }

    [Fact]
    public void ExactEStepReportsTheModelsLogLikelihood()
    {
        var net = RandomNetwork(3, new[] { 2, 3 }, seed: 2);
        var x = Model(net).Sample(700, 9);
        var trainer = new DeepGmmTrainer(net, new DeepGmmOptions { Layers = new[] { 2, 3 } }, x, new RandomStream(1));
        var result = trainer.EStep(0, CancellationToken.None);
        Assert.True(result.IsExact);
        Assert.Equal(Model(net).AverageLogDensity(x), result.MeanLogLikelihood, 4);
        Assert.Equal(DeepGmmTrainer.ExactBestPaths(net, x), trainer.Assignment);
    }

    /// <summary>
    /// Rows from a known Deep GMM whose paths are separated enough for hard EM to be nearly unbiased (hard EM cannot
    /// reach the maximum-likelihood fit of strongly overlapping components, deep or flat).
    /// </summary>
    private static (DeepGmmModel Generator, RowMatrix Train, RowMatrix Test) Synthetic(int d, int[] layers, ulong seed, int nTrain = 4000, int nTest = 4000)
    {
        var net = RandomNetwork(d, layers, seed, noise: 0.5f, biasScale: 2f);
        var generator = Model(net, new ColumnStandardizer(Enumerable.Range(0, d).Select(i => 0.5f * i).ToArray(), Enumerable.Range(0, d).Select(i => 1f + 0.3f * i).ToArray()));
        return (generator, generator.Sample(nTrain, seed + 100), generator.Sample(nTest, seed + 200));
    }

    [Theory]
    [InlineData(DeepGmmEmKind.Hard, DeepGmmEStep.Exact)]
    [InlineData(DeepGmmEmKind.Hard, DeepGmmEStep.Heuristic)]
    [InlineData(DeepGmmEmKind.Soft, DeepGmmEStep.Exact)]
    public void TrainingRecoversTheGeneratorsHeldOutLogLikelihood(DeepGmmEmKind em, DeepGmmEStep estep)
    {
        var layers = new[] { 2, 2 };
        var (generator, train, test) = Synthetic(2, layers, seed: 4);
        double truth = generator.AverageLogDensity(test);
        var reports = new List<TrainingProgress>();
        // Maximum likelihood (no shrinkage prior): the generator's lower layers are far from the identity, and a prior
        // worth 1000 rows per node (the default) would bias the 1800-row nodes of this small problem toward it.
        var model = DeepGmmModel.Fit(train, new DeepGmmOptions { Layers = layers, Em = em, EStep = estep, MaxIterations = 40, Initializations = 2, LowerLayerShrinkage = 0 },
            progress: new SyncProgress(reports));
        double learned = model.AverageLogDensity(test);
        _output.WriteLine($"{em}/{estep}: generator {truth:F4}, learned {learned:F4} nats/row after {model.TrainingSummary!.EpochsRun} iterations");
        foreach (var r in reports) _output.WriteLine(r.ToString());
        Assert.True(learned > truth - 0.15, $"held-out {learned:F4} vs generator {truth:F4}");
        Assert.NotEmpty(reports);
        Assert.All(reports, r => Assert.True(r.Metrics!.ContainsKey("switch_rate")));
        Assert.All(reports, r => Assert.True(r.ValidationLogLikelihood.HasValue));
    }

    [Theory]
    [InlineData(7UL)]
    [InlineData(9UL)]
    public void OneLayerModelBeatsASingleGaussianOnClusteredData(ulong seed)
    {
        var (generator, train, test) = Synthetic(2, new[] { 4 }, seed, 3000, 2000);
        var gmm = DeepGmmModel.Fit(train, new DeepGmmOptions { Layers = new[] { 4 }, MaxIterations = 100, Initializations = 3, Em = DeepGmmEmKind.Soft });
        var single = DeepGmmModel.Fit(train, new DeepGmmOptions { Layers = new[] { 1 }, MaxIterations = 5 });
        double truth = generator.AverageLogDensity(test), g = gmm.AverageLogDensity(test), s = single.AverageLogDensity(test);
        _output.WriteLine($"generator {truth:F4}, 4-component {g:F4}, 1 Gaussian {s:F4}");
        Assert.True(g > s + 0.3);
        Assert.True(g > truth - 0.15);
    }

    [Fact]
    public void MinibatchMStepAndFactorizedPathsTrainToo()
    {
        var layers = new[] { 2, 2 };
        var (generator, train, test) = Synthetic(2, layers, seed: 4, 3000, 2000);
        double truth = generator.AverageLogDensity(test);
        var minibatch = DeepGmmModel.Fit(train, new DeepGmmOptions { Layers = layers, MStep = DeepGmmMStep.Minibatch, MinibatchEpochs = 3, MinibatchLearningRate = 3e-3, MaxIterations = 25 });
        var factorized = DeepGmmModel.Fit(train, new DeepGmmOptions { Layers = layers, PathProbabilities = DeepGmmPathProbabilities.Factorized, MaxIterations = 25 });
        double mb = minibatch.AverageLogDensity(test), fa = factorized.AverageLogDensity(test);
        _output.WriteLine($"generator {truth:F4}, minibatch M-step {mb:F4}, factorised π {fa:F4}");
        Assert.True(mb > truth - 0.4, $"minibatch {mb} vs {truth}");
        Assert.True(fa > truth - 0.4, $"factorised {fa} vs {truth}");
        Assert.Equal(DeepGmmPathProbabilities.Factorized, factorized.PathProbabilities);
    }

    /// <summary>The model returned is the best EM iteration on validation, and <see cref="TrainingSummary.BestEpoch"/> names
    /// its report in the history. With the top layer pretrained first (the default for several layers), the history's
    /// iterations are numbered after the pretraining's, and BestEpoch used to count from 1 regardless: 7 for the report
    /// numbered 10.</summary>
    [Fact]
    public void BestEpochNamesTheReportOfTheIterationKept()
    {
        var layers = new[] { 2, 2 };
        var (_, train, valid) = Synthetic(3, layers, seed: 7, 300, 50);
        foreach (int initializations in new[] { 1, 2 })
        {
            var model = DeepGmmModel.Fit(train, new DeepGmmOptions { Layers = layers, MaxIterations = 12, EarlyStoppingPatience = 0, Initializations = initializations }, valid);
            var summary = model.TrainingSummary!;
            Assert.True(summary.History[0].Epoch > 1, "expected the pretraining iterations to come first in the numbering");
            var kept = Assert.Single(summary.History, p => p.Epoch == summary.BestEpoch);
            Assert.Equal(summary.BestValidationLogLikelihood, kept.ValidationLogLikelihood);
            Assert.Equal(summary.History.Max(p => p.ValidationLogLikelihood!.Value), summary.BestValidationLogLikelihood);
            Assert.Equal(summary.BestValidationLogLikelihood, model.AverageLogDensity(valid), 6);
        }
    }

    /// <summary>An absurd minibatch M-step rate made some training rows' density 0 while every step stayed finite: the
    /// fit returned a model whose training log-likelihood was −∞ as if it had trained. A non-finite training figure is a
    /// divergence: EM restores the previous iteration and stops, and the summary says so.</summary>
    [Fact]
    public void AMinibatchMStepThatReachesMinusInfinityIsADivergenceNotAModel()
    {
        var layers = new[] { 2, 2 };
        var (_, train, _) = Synthetic(2, layers, seed: 4, 3000, 10);
        var options = new DeepGmmOptions { Layers = layers, MStep = DeepGmmMStep.Minibatch, MinibatchEpochs = 3, MinibatchLearningRate = 1e30, MaxIterations = 5 };
        var model = DeepGmmModel.Fit(train, options);
        var summary = model.TrainingSummary!;
        Assert.True(summary.StoppedByDivergence, "the summary does not say the run stopped by divergence");
        Assert.False(double.IsNegativeInfinity(summary.FinalTrainLogLikelihood), "a training log-likelihood of −∞ was reported as a fit");
        Assert.Contains("training log-likelihood", summary.History[^1].Note);
        Assert.True(double.IsFinite(model.AverageLogDensity(train)), "the model kept does not score its training rows finitely");
    }

    [Fact]
    public void DegenerateDataGivesFiniteParametersAndDensities()
    {
        // Collinear columns, many duplicate rows, and more components than distinct points in some regions.
        var rng = new RandomStream(4);
        var x = new RowMatrix(300, 3);
        for (int r = 0; r < 300; r++)
        {
            float t = r < 150 ? 1f : (float)rng.NextGaussian();
            x[r, 0] = t; x[r, 1] = 2 * t; x[r, 2] = r % 3;
        }
        var model = DeepGmmModel.Fit(x, new DeepGmmOptions { Layers = new[] { 3, 4 }, MaxIterations = 15 });
        Assert.True(model.Network.AllFinite());
        foreach (var v in model.LogDensity(x)) Assert.True(float.IsFinite(v));
        Assert.True(model.TrainingSummary!.History.All(h => double.IsFinite(h.TrainLogLikelihood)));
    }

    [Fact]
    public void CancellationStopsTraining()
    {
        var (_, train, _) = Synthetic(3, new[] { 2, 2 }, seed: 1, 2000, 10);
        using var cts = new CancellationTokenSource();
        var progress = new SyncProgress(new List<TrainingProgress>(), _ => cts.Cancel());
        Assert.ThrowsAny<OperationCanceledException>(() =>
            DeepGmmModel.Fit(train, new DeepGmmOptions { Layers = new[] { 2, 2 }, MaxIterations = 50, Tolerance = 0 }, null, progress, cts.Token));
        Assert.Single(progress.Reports);
    }

    [Fact]
    public void SameSeedGivesTheSameModel()
    {
        var (_, train, test) = Synthetic(3, new[] { 2, 2 }, seed: 8, 1500, 300);
        var o = new DeepGmmOptions { Layers = new[] { 2, 2 }, MaxIterations = 5, EStep = DeepGmmEStep.Heuristic };
        Assert.Equal(DeepGmmModel.Fit(train, o).LogDensity(test), DeepGmmModel.Fit(train, o).LogDensity(test));
    }

    /// <summary>Largest |entry| of W − [I | 0] over the lower-layer nodes (every layer but the top, or one layer).</summary>
    private static double LowerLayerDeviation(DeepGmmNetwork net, int layer = -1)
    {
        int d = net.D;
        double max = 0;
        for (int j = 0; j < net.LayerCount - 1; j++)
        {
            if (layer >= 0 && j != layer) continue;
            for (int i = 0; i < net.Components[j]; i++)
            {
                int node = net.Node(j, i);
                for (int a = 0; a < d; a++)
                {
                    for (int c = 0; c < d; c++) max = Math.Max(max, Math.Abs(net.Q[node][a * d + c] - (a == c ? 1f : 0f)));
                    max = Math.Max(max, Math.Abs(net.E[node][a]));
                }
            }
        }
        return max;
    }

    [Theory]
    [InlineData(DeepGmmEmKind.Hard, DeepGmmMStep.Lbfgs)]
    [InlineData(DeepGmmEmKind.Soft, DeepGmmMStep.Lbfgs)]
    public void VeryLargeShrinkageNestsTheOneLayerGmmOfTheTopLayer(DeepGmmEmKind em, DeepGmmMStep mstep)
    {
        // κ → ∞: the lower layers stay at the identity, so the deep density is the 1-layer GMM built from the top layer
        // with each top component's probability summed over the paths below it.
        var (_, train, test) = Synthetic(3, new[] { 2, 3 }, seed: 6, 1500, 400);
        var model = DeepGmmModel.Fit(train, new DeepGmmOptions
        {
            Layers = new[] { 2, 3 }, Em = em, MStep = mstep, LowerLayerShrinkage = 1e9, MaxIterations = 8, LowerLayerPerturbation = 0.2,
        });
        var net = model.Network;
        double deviation = LowerLayerDeviation(net);
        Assert.True(deviation < 1e-4, $"lower layers moved {deviation} from the identity");

        int top = net.LayerCount - 1, k = net.Components[top];
        var gmm = new DeepGmmNetwork(net.D, new[] { k }, factorized: false);
        var weight = new double[k];
        for (int p = 0; p < net.PathCount; p++) weight[net.Digit(p, top)] += Math.Exp(net.PathLogPrior[p]);
        for (int i = 0; i < k; i++)
        {
            net.Q[net.Node(top, i)].CopyTo(gmm.Q[i], 0);
            net.E[net.Node(top, i)].CopyTo(gmm.E[i], 0);
            gmm.LogPrior[i] = (float)Math.Log(weight[i] / weight.Sum());
        }
        gmm.Refresh();
        var flat = Model(gmm, model.Standardizer);
        var deep = model.LogDensity(test);
        var reference = flat.LogDensity(test);
        for (int r = 0; r < test.Rows; r++) Assert.True(Math.Abs(deep[r] - reference[r]) < 2e-3, $"row {r}: deep {deep[r]} vs 1-layer {reference[r]}");
    }

    [Fact]
    public void ShrinkagePullsTheMinibatchMStepTowardTheIdentity()
    {
        // The minibatch M-step serves the middle layer of {2, 2, 2} (the bottom one has the L-BFGS / closed-form step).
        var (_, train, _) = Synthetic(3, new[] { 2, 2, 2 }, seed: 3, 1500, 10);
        DeepGmmModel Fit(double kappa) => DeepGmmModel.Fit(train, new DeepGmmOptions
        {
            Layers = new[] { 2, 2, 2 }, MStep = DeepGmmMStep.Minibatch, MinibatchLearningRate = 1e-2, MinibatchEpochs = 3,
            LowerLayerShrinkage = kappa, MaxIterations = 10, EarlyStoppingPatience = 0, ValidationFraction = 0, LowerLayerPerturbation = 0.2,
        });
        double free = LowerLayerDeviation(Fit(0).Network, layer: 1), shrunk = LowerLayerDeviation(Fit(1e7).Network, layer: 1);
        _output.WriteLine($"max |W − [I|0]| of the middle layer's nodes: κ = 0 {free:F4}, κ = 1e7 {shrunk:F4}");
        Assert.True(free > 0.2, $"κ = 0: {free}");
        Assert.True(shrunk < 0.05, $"κ = 1e7: {shrunk}");
    }

    [Fact]
    public void ShrinkageDoesNotAffectAOneLayerGmm()
    {
        var (_, train, test) = Synthetic(2, new[] { 3 }, seed: 2, 800, 200);
        var a = DeepGmmModel.Fit(train, new DeepGmmOptions { Layers = new[] { 3 }, MaxIterations = 10, LowerLayerShrinkage = 0 });
        var b = DeepGmmModel.Fit(train, new DeepGmmOptions { Layers = new[] { 3 }, MaxIterations = 10, LowerLayerShrinkage = 1e6 });
        Assert.Equal(a.LogDensity(test), b.LogDensity(test));
    }

    private sealed class SyncProgress : IProgress<TrainingProgress>
    {
        private readonly Action<TrainingProgress>? _then;
        public SyncProgress(List<TrainingProgress> sink, Action<TrainingProgress>? then = null) { Reports = sink; _then = then; }
        public List<TrainingProgress> Reports { get; }
        public void Report(TrainingProgress value) { Reports.Add(value); _then?.Invoke(value); }
    }

    /// <summary>Columns whose spreads differ by 38 orders of magnitude (3e38 beside 1) cannot share the default pooled
    /// scale: the unit column is numerically constant and the greedy initialisation cannot whiten it. The error said
    /// "rescale the data"; it also names Standardize = true, which trains on the same data.</summary>
    [Fact]
    public void AnUnwhitenableClusterUnderThePooledScaleNamesStandardize()
    {
        var r = new RandomStream(5);
        var data = new RowMatrix(300, 2);
        for (int i = 0; i < data.Rows; i++)
        {
            data[i, 0] = (float)r.NextDouble();
            data[i, 1] = (i % 2 == 0 ? 3.3e38f : -3.3e38f) * (float)(0.5 + 0.5 * r.NextDouble());
        }
        var options = new DeepGmmOptions { Layers = new[] { 2 }, MaxIterations = 2 };
        var e = Assert.Throws<TrainingDivergedException>(() => DeepGmmModel.Fit(data, options));
        Assert.Contains("set Standardize = true", e.Message);
        options.Standardize = true;
        Assert.True(double.IsFinite(DeepGmmModel.Fit(data, options).AverageLogDensity(data)));
        // With Standardize on, the message does not offer it again.
        var flat = new RowMatrix(300, 2);
        for (int i = 0; i < flat.Rows; i++) { flat[i, 0] = (float)r.NextDouble() * 1e-38f; flat[i, 1] = (float)r.NextDouble() * 1e-38f; }
        if (Record.Exception(() => DeepGmmModel.Fit(flat, options)) is TrainingDivergedException other)
            Assert.DoesNotContain("Standardize", other.Message);
    }
}
