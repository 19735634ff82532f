using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Tests.Rbm;

/// <summary>
/// A learned visible width (<see cref="RbmOptions.VisibleStdDev"/> = 0). A Gaussian RBM of per-column width σ is the
/// unit-variance machine on u = v / σ with the Jacobian −Σ log σ_i, and log Z does not depend on σ, so the gradient in
/// log σ is exact: u_i ∂F/∂u_i − 1. These check that gradient against finite differences of the exact log-likelihood,
/// that the learned σ folded into the stored map leaves a normalised density that a saved file keeps, and that the
/// learned widths follow the columns' noise.
/// </summary>
public class RbmLearnedVisibleStdDevTests
{
    private static RbmOptions Learned(bool standardize = true) => new()
    {
        VisibleType = RbmVisibleType.Gaussian, HiddenUnits = 4, MaxEpochs = 100, LearningRate = 0.05f, BatchSize = 20,
        Standardize = standardize, VisibleStdDev = 0, SamplingBurnIn = 200, SamplingChains = 500, Seed = 3,
    };

    /// <summary>The model of a machine behind the map x → x / σ, with the machine's exact log Z (what a learned width's
    /// fit stores).</summary>
    private static RbmModel Behind(RbmMachine m, double[] sigma)
    {
        double logZ = m.ExactLogPartition(enumerateVisible: false);
        var map = new ColumnStandardizer(new float[m.D], sigma.Select(s => (float)s).ToArray());
        return new RbmModel(m, map, LogPartitionMethod.Exact, logZ, 0, logZ, logZ, 0, 0, 10, 1, 1);
    }

    /// <summary>Mean exact log p of the rows under the machine with widths exp(s), in float64 from the free energy.</summary>
    private static double MeanLogLikelihood(RbmMachine m, double logZ, RowMatrix x, double[] s)
    {
        int n = x.Rows, d = x.Columns;
        var u = new float[n * d];
        for (int r = 0; r < n; r++) for (int i = 0; i < d; i++) u[r * d + i] = (float)(x[r, i] / Math.Exp(s[i]));
        var f = new double[n];
        m.FreeEnergy(u, n, f, parallel: false);
        return f.Average(v => -v - logZ - s.Sum());
    }

    [Fact]
    public void TheLogStdDevGradientIsTheDerivativeOfTheExactLogLikelihood()
    {
        int d = 3, h = 4, n = 40;
        var m = RbmTests.RandomMachine(d, h, RbmVisibleType.Gaussian, 0.8f, 31);
        double logZ = m.ExactLogPartition(enumerateVisible: false);
        var rng = new RandomStream(32);
        var x = new RowMatrix(n, d);
        for (int i = 0; i < x.Values.Length; i++) x.Values[i] = (float)(1.5 * rng.NextGaussian());
        var s = new[] { Math.Log(0.5), Math.Log(1.3), Math.Log(0.8) };
        var sigma = s.Select(Math.Exp).ToArray();

        // The exact log-likelihood through the stored map is the formula the finite differences use.
        var model = Behind(m, sigma);
        var scored = model.LogDensity(x);
        Assert.Equal(MeanLogLikelihood(m, logZ, x, s), scored.Average(v => (double)v), 4);

        // The trainer's gradient on the rows divided by σ, from the data rows its Gather selected.
        var trainer = new RbmTrainer(m, n, gibbsSteps: 1, persistent: true, persistentChains: 0)
        { InputScale = sigma.Select(v => (float)(1 / v)).ToArray() };
        trainer.SetBatch(x.Values, n);
        var gradient = new double[d];
        trainer.LogStdDevGradient(gradient);

        const double step = 1e-3;
        for (int i = 0; i < d; i++)
        {
            var up = (double[])s.Clone(); up[i] += step;
            var down = (double[])s.Clone(); down[i] -= step;
            double numeric = (MeanLogLikelihood(m, logZ, x, up) - MeanLogLikelihood(m, logZ, x, down)) / (2 * step);
            Assert.True(Math.Abs(numeric - gradient[i]) < 2e-3 * Math.Max(1, Math.Abs(numeric)),
                $"column {i}: analytic {gradient[i]:G6}, finite differences {numeric:G6}");
        }
        // The static form (the same sums on the same rows) agrees.
        var u = new float[n * d];
        for (int r = 0; r < n; r++) for (int i = 0; i < d; i++) u[r * d + i] = x[r, i] * (float)(1 / sigma[i]);
        var again = new double[d];
        RbmTrainer.LogStdDevGradient(m, u, n, again);
        for (int i = 0; i < d; i++) Assert.Equal(gradient[i], again[i], 10);
    }

    [Theory]
    [InlineData(1, true)]
    [InlineData(2, true)]
    [InlineData(2, false)]
    public void TheDensityWithALearnedWidthIntegratesToOne(int d, bool standardize)
    {
        var data = RbmVisibleStdDevTests.Clusters(400, d, 21);
        var model = RbmModel.Fit(data, Learned(standardize));
        Assert.Equal(LogPartitionMethod.Exact, model.LogPartitionMethod);
        // σ was learned (not the start), and folded into the map.
        var fitted = standardize ? ColumnStandardizer.Fit(data) : ColumnStandardizer.Identity(d);
        var sigmas = Enumerable.Range(0, d).Select(c => (double)model.Standardizer!.Scale[c] / fitted.Scale[c]).ToArray();
        // The last epoch's metrics report the range of the widths that were folded.
        var metrics = model.TrainingSummary!.History[^1].Metrics!;
        Assert.Equal(sigmas.Min(), metrics["visible_std_min"], 1e-4 * sigmas.Min());
        Assert.Equal(sigmas.Max(), metrics["visible_std_max"], 1e-4 * sigmas.Max());
        for (int c = 0; c < d; c++)
        {
            double sigma = sigmas[c];
            Assert.True(Math.Abs(sigma - RbmOptions.LearnedVisibleStdDevStart) > 1e-3, $"column {c}: σ {sigma} is still the start");
            Assert.InRange(sigma, RbmOptions.LearnedVisibleStdDevFloor * 0.999, RbmOptions.LearnedVisibleStdDevCeiling * 1.001);
        }
        var (mass, _, _) = RbmVisibleStdDevTests.GridMoments(model, data, d == 1 ? 8000 : 500);
        Assert.Equal(1.0, mass, 3);
    }

    /// <summary>Two clusters at ±1 in every column with noise of standard deviation 0.2, 0.5 and 1 (raw units, no
    /// standardisation): the learned widths are those noises. (Its held-out log-likelihood is not asserted: on these rows
    /// PCD-1 leaves the learned-width machine with modes between the clusters and it scores below a fixed σ = 0.5,
    /// docs/models/rbm.md "A learned visible width".)</summary>
    [Fact]
    public void TheLearnedWidthsFollowTheColumnsNoise()
    {
        double[] noise = [0.2, 0.5, 1.0];
        var rng = new RandomStream(41);
        var train = new RowMatrix(2000, noise.Length);
        for (int r = 0; r < train.Rows; r++)
        {
            double side = rng.NextDouble() < 0.5 ? -1 : 1;
            for (int c = 0; c < noise.Length; c++) train[r, c] = (float)(side + noise[c] * rng.NextGaussian());
        }
        var learned = RbmModel.Fit(train, new RbmOptions
        {
            VisibleType = RbmVisibleType.Gaussian, HiddenUnits = 3, Standardize = false, VisibleStdDev = 0, MaxEpochs = 100, Seed = 5,
        });
        var sigma = learned.Standardizer!.Scale.ToArray();
        for (int c = 0; c < noise.Length; c++)
            Assert.True(Math.Abs(sigma[c] / noise[c] - 1) < 0.15, $"column {c}: learned σ {string.Join(", ", sigma)}, noise {string.Join(", ", noise)}");
    }

    [Fact]
    public void ASavedModelKeepsTheLearnedWidths()
    {
        var data = RbmVisibleStdDevTests.Clusters(300, 2, 23);
        var learned = RbmModel.Fit(data, Learned());
        var options = Learned();
        options.VisibleStdDev = 0.7f;
        var fixedWidth = RbmModel.Fit(data, options);
        var bytes = learned.ToBytes();
        var loaded = Assert.IsType<RbmModel>(DensityModel.FromBytes(bytes));
        Assert.Equal(bytes, loaded.ToBytes());
        Assert.Equal(learned.Standardizer!.Scale.ToArray(), loaded.Standardizer!.Scale.ToArray());
        Assert.Equal(learned.LogDensity(data), loaded.LogDensity(data));
        Assert.Equal(learned.Sample(50, 9).Values, loaded.Sample(50, 9).Values);
        // No field of its own: a file of a fixed-width model's size.
        Assert.Equal(fixedWidth.ToBytes().Length, bytes.Length);
    }

    [Fact]
    public void AStreamedFitLearnsTheWidthsOfTheInMemoryFit()
    {
        var data = RbmVisibleStdDevTests.Clusters(300, 2, 24);
        var options = Learned();
        options.MaxEpochs = 5;
        var inMemory = RbmModel.Fit(data, options);
        var streamed = RbmModel.Fit(Training.RowStream.From(data), options, null, new Training.StreamingOptions { ShuffleBufferRows = 1000 });
        Assert.Equal(inMemory.Standardizer!.Scale.ToArray(), streamed.Standardizer!.Scale.ToArray());
        Assert.Equal(inMemory.LogDensity(data), streamed.LogDensity(data));
    }

    /// <summary>A rate that blows the machine up: the driver restores the last good state, the learned widths with it
    /// (they are in the snapshot), halves the rate and trains on to a normalised model.</summary>
    [Fact]
    public void ADivergedEpochRestoresTheWidthsWithTheMachine()
    {
        var data = RbmVisibleStdDevTests.Clusters(400, 2, 25);
        var options = Learned();
        options.LearningRate = 50f;
        options.MaxEpochs = 6;
        options.MaxDivergenceRecoveries = 40;
        var model = RbmModel.Fit(data, options);
        Assert.True(model.TrainingSummary!.DivergenceRecoveries > 0, "the rate did not diverge");
        var fitted = ColumnStandardizer.Fit(data);
        for (int c = 0; c < 2; c++)
            Assert.InRange(model.Standardizer!.Scale[c] / fitted.Scale[c], RbmOptions.LearnedVisibleStdDevFloor * 0.999, RbmOptions.LearnedVisibleStdDevCeiling * 1.001);
        var (mass, _, _) = RbmVisibleStdDevTests.GridMoments(model, data, 500);
        Assert.Equal(1.0, mass, 2);
    }

    [Fact]
    public void BinaryUnitsIgnoreAZeroWidth()
    {
        var rng = new RandomStream(4);
        var data = new RowMatrix(100, 6);
        for (int i = 0; i < data.Values.Length; i++) data.Values[i] = rng.NextDouble() < 0.3 ? 1 : 0;
        var a = RbmModel.Fit(data, new RbmOptions { HiddenUnits = 3, MaxEpochs = 2, VisibleStdDev = 0.7f });
        var b = RbmModel.Fit(data, new RbmOptions { HiddenUnits = 3, MaxEpochs = 2, VisibleStdDev = 0 });
        Assert.Null(b.Standardizer);
        Assert.Equal(a.ToBytes(), b.ToBytes());
    }
}
