using Microsoft.ML.DeepDensity.Tests.Conformance;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.Rnade;

// Serial (alone, after the parallel tests): its cancellation-latency check must not compete with other tests for the 2 cores.
[Collection(Conformance.EngineSettingsCollection.Name)]
public class RnadeTrainingTests
{
    /// <summary>A 2-D mixture of two correlated Gaussians; its exact log-density lets us compute the true entropy.</summary>
    private static class KnownMixture
    {
        // Component 0: mean (-2, 1), Cholesky L0 = [[1,0],[0.8,0.5]]; component 1: mean (2, -1), L1 = [[0.6,0],[-0.3,0.9]].
        private static readonly double[][] Means = { new[] { -2.0, 1.0 }, new[] { 2.0, -1.0 } };
        private static readonly double[][] Chol = { new[] { 1.0, 0.8, 0.5 }, new[] { 0.6, -0.3, 0.9 } }; // l11, l21, l22
        private static readonly double[] Weights = { 0.4, 0.6 };

        public static RowMatrix Sample(int n, ulong seed)
        {
            var rng = new RandomStream(seed);
            var m = new RowMatrix(n, 2);
            for (int r = 0; r < n; r++)
            {
                int c = rng.NextDouble() < Weights[0] ? 0 : 1;
                double e0 = rng.NextGaussian(), e1 = rng.NextGaussian();
                m[r, 0] = (float)(Means[c][0] + Chol[c][0] * e0);
                m[r, 1] = (float)(Means[c][1] + Chol[c][1] * e0 + Chol[c][2] * e1);
            }
            return m;
        }

        public static double LogDensity(double x0, double x1)
        {
            double total = 0;
            for (int c = 0; c < 2; c++)
            {
                double z0 = (x0 - Means[c][0]) / Chol[c][0];
                double z1 = (x1 - Means[c][1] - Chol[c][1] * z0) / Chol[c][2];
                total += Weights[c] * Math.Exp(-0.5 * (z0 * z0 + z1 * z1)) / (2 * Math.PI * Chol[c][0] * Chol[c][2]);
            }
            return Math.Log(total);
        }
    }

    [Fact]
    public void FittingAKnownMixtureApproachesItsEntropy()
    {
        var train = KnownMixture.Sample(4000, 1);
        var test = KnownMixture.Sample(4000, 2);
        var options = new RnadeOptions { HiddenUnits = 16, Components = 4, MaxEpochs = 60, BatchSize = 50, LearningRate = 5e-3f, Seed = 3 };
        var model = RnadeModel.Fit(train, options);
        double trueLl = 0;
        for (int r = 0; r < test.Rows; r++) trueLl += KnownMixture.LogDensity(test[r, 0], test[r, 1]);
        trueLl /= test.Rows; // ≈ −entropy
        double modelLl = model.AverageLogDensity(test);
        Assert.True(modelLl > trueLl - 0.08, $"held-out log-likelihood {modelLl:F4} should approach the true −entropy {trueLl:F4}");
        Assert.True(modelLl < trueLl + 0.05, $"held-out log-likelihood {modelLl:F4} cannot beat the truth {trueLl:F4} by more than noise");
    }

    [Fact]
    public void SameSeedSameModelDifferentSeedDifferentModel()
    {
        var data = KnownMixture.Sample(300, 4);
        RnadeOptions Opts(ulong seed) => new() { HiddenUnits = 5, Components = 2, MaxEpochs = 3, Seed = seed };
        var a = RnadeModel.Fit(data, Opts(1)).ToBytes();
        var b = RnadeModel.Fit(data, Opts(1)).ToBytes();
        var c = RnadeModel.Fit(data, Opts(2)).ToBytes();
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void EarlyStoppingRestoresTheBestValidationEpoch()
    {
        var train = KnownMixture.Sample(150, 5);
        var valid = KnownMixture.Sample(150, 6);
        var progress = new List<TrainingProgress>();
        var model = RnadeModel.Fit(train, new RnadeOptions { HiddenUnits = 30, Components = 5, MaxEpochs = 200, EarlyStoppingPatience = 5, LearningRate = 1e-2f, BatchSize = 10 },
            valid, new SyncProgress(progress));
        var s = model.TrainingSummary!;
        Assert.True(s.StoppedEarly, "a small training set overfits, so validation must stop training early");
        double bestReported = progress.Where(p => p.ValidationLogLikelihood is not null).Max(p => p.ValidationLogLikelihood!.Value);
        Assert.Equal(bestReported, model.AverageLogDensity(valid), 3);
        Assert.Equal(s.BestValidationLogLikelihood, bestReported, 6);
    }

    [Fact]
    public void DivergenceNeverLeavesNaNParameters()
    {
        var data = KnownMixture.Sample(200, 7);
        var notes = new List<TrainingProgress>();
        RnadeModel? model = null;
        try
        {
            model = RnadeModel.Fit(data, new RnadeOptions { HiddenUnits = 8, Components = 3, MaxEpochs = 5, LearningRate = 1e6f, GradientClipNorm = 0, Optimizer = OptimizerKind.SgdMomentum },
                progress: new SyncProgress(notes));
        }
        catch (TrainingDivergedException e)
        {
            Assert.Contains("diverged", e.Message);
            return;
        }
        // Recovered: the returned model must be finite.
        var ld = model!.LogDensity(data);
        Assert.All(ld, v => Assert.False(float.IsNaN(v)));
    }

    [Fact]
    public void CancellationStopsTrainingPromptly()
    {
        var data = new RowMatrix(20_000, 20);
        new RandomStream(8).FillGaussian(data.Values);
        using var cts = new CancellationTokenSource();
        var cancelledAt = System.Diagnostics.Stopwatch.StartNew();
        // A dedicated thread, not a timer: timer callbacks need a thread-pool thread, which a loaded test run may not have.
        var canceller = new Thread(() => { Thread.Sleep(200); cancelledAt.Restart(); cts.Cancel(); }) { IsBackground = true };
        canceller.Start();
        Assert.ThrowsAny<OperationCanceledException>(() =>
            RnadeModel.Fit(data, new RnadeOptions { MaxEpochs = 50, HiddenUnits = 64, EarlyStoppingPatience = 0 }, cancellationToken: cts.Token));
        Assert.True(cancelledAt.Elapsed < TimeBounds.Within(1), $"cancellation took {cancelledAt.Elapsed}");
    }

    internal sealed class SyncProgress(List<TrainingProgress> sink) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => sink.Add(value);
    }
}
