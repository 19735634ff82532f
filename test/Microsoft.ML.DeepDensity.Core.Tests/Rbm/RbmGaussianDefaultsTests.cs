using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rbm;

namespace Microsoft.ML.DeepDensity.Tests.Rbm;

/// <summary>
/// The Gaussian RBM's defaults on correlated real data (session 37, docs/models/rbm.md "Correlated real data"): a user's
/// trial of a few thousand rows of 16 correlated columns diverged in the first epochs at the former defaults (σ = 0.7 and
/// the rate 0.05 binary units use) and only recovered because the driver retried at half the rate. The defaults now
/// give Gaussian units their own rate (<see cref="RbmOptions.Defaults.GaussianLearningRate"/>) with σ = 0.5, and such
/// data train without a retry; binary units keep 0.05.
/// </summary>
public class RbmGaussianDefaultsTests
{
    /// <summary>The trial's kind of rows (the <c>rbm-gaussian --shared --spread 1</c> benchmark's data, smaller): 4
    /// clusters of weights 0.1–0.4 with means N(0, 1) per column, each with column scales in [0.5, 2] and correlation
    /// 0.8·s_i·s_j along one shared sign pattern s, so the columns are strongly correlated overall.</summary>
    internal static RowMatrix CorrelatedRows(int n, int seed)
    {
        const int d = 16, k = 4;
        const double rho = 0.8;
        var shape = new Random(1);
        double Normal(Random r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());
        var scale = Enumerable.Range(0, d).Select(_ => 0.5 + 1.5 * shape.NextDouble()).ToArray();
        var sign = Enumerable.Range(0, d).Select(_ => shape.NextDouble() < 0.5 ? -1.0 : 1.0).ToArray();
        var means = Enumerable.Range(0, k).Select(_ => Enumerable.Range(0, d).Select(_ => Normal(shape)).ToArray()).ToArray();
        // x = μ_c + scale ⊙ (√ρ · s · g + √(1 − ρ) · e): correlation ρ·s_i·s_j, variance scale_i².
        var r = new Random(seed);
        var x = new float[n * d];
        for (int row = 0; row < n; row++)
        {
            double u = r.NextDouble() * 10;
            int c = u < 1 ? 0 : u < 3 ? 1 : u < 6 ? 2 : 3;
            double g = Normal(r);
            for (int j = 0; j < d; j++)
                x[row * d + j] = (float)(means[c][j] + scale[j] * (Math.Sqrt(rho) * sign[j] * g + Math.Sqrt(1 - rho) * Normal(r)));
        }
        return new RowMatrix(x, n, d);
    }

    private static RbmOptions Options(ulong seed, int epochs) => new()
    {
        VisibleType = RbmVisibleType.Gaussian, MaxEpochs = epochs, Seed = seed, AisRuns = 20, AisTemperatures = 500,
    };

    /// <summary>The defaults train the correlated rows without a divergence retry on every seed; the former defaults (σ
    /// 0.7, rate 0.05) blew up and were retried at half the rate.</summary>
    [Fact]
    public void CorrelatedRowsTrainWithoutARetryAtTheDefaults()
    {
        var train = CorrelatedRows(2000, 11);
        var runs = new List<string>();
        int formerRetries = 0;
        foreach (ulong seed in new ulong[] { 1, 2, 3 })
        {
            var now = RbmModel.Fit(train, Options(seed, 6)).TrainingSummary!;
            var former = Options(seed, 6);
            former.VisibleStdDev = 0.7f;
            former.LearningRate = 0.05f;
            var before = RbmModel.Fit(train, former).TrainingSummary!;
            formerRetries += before.DivergenceRecoveries;
            runs.Add($"seed {seed}: retries {now.DivergenceRecoveries} (former defaults {before.DivergenceRecoveries})");
            Assert.Equal(0, now.DivergenceRecoveries);
        }
        Assert.True(formerRetries > 0, string.Join("; ", runs));
    }

    /// <summary>Gaussian units start at their own rate, binary units at the rate they always had (bit-identical fits:
    /// LearningRate 0 resolves to 0.05 for them); a rate set by hand is used for both.</summary>
    [Fact]
    public void TheDefaultRateFollowsTheVisibleUnits()
    {
        var o = new RbmOptions();
        Assert.Equal(0f, o.LearningRate);
        Assert.Equal(0.05f, o.LearningRateFor(RbmVisibleType.Bernoulli));
        Assert.Equal(RbmOptions.Defaults.GaussianLearningRate, o.LearningRateFor(RbmVisibleType.Gaussian));
        o.LearningRate = 0.03f;
        Assert.Equal(0.03f, o.LearningRateFor(RbmVisibleType.Gaussian));
        Assert.Equal(0.03f, o.LearningRateFor(RbmVisibleType.Bernoulli));

        var binary = new float[40 * 6];
        var random = new Random(3);
        for (int i = 0; i < binary.Length; i++) binary[i] = random.Next(2);
        var rows = new RowMatrix(binary, 40, 6);
        var byDefault = RbmModel.Fit(rows, new RbmOptions { HiddenUnits = 8, MaxEpochs = 3, Seed = 5 });
        var explicitRate = RbmModel.Fit(rows, new RbmOptions { HiddenUnits = 8, MaxEpochs = 3, Seed = 5, LearningRate = 0.05f });
        Assert.Equal(explicitRate.LogDensity(rows), byDefault.LogDensity(rows));
        Assert.Equal(0.05f, byDefault.TrainingSummary!.History[0].LearningRate);

        var gaussian = RbmModel.Fit(CorrelatedRows(200, 4), new RbmOptions { VisibleType = RbmVisibleType.Gaussian, HiddenUnits = 8, MaxEpochs = 1, Seed = 5 });
        Assert.Equal(RbmOptions.Defaults.GaussianLearningRate, gaussian.TrainingSummary!.History[0].LearningRate);
    }
}
