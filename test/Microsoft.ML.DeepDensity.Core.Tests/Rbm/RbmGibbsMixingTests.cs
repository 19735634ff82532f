using System.Numerics;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Randomness;
using static Microsoft.ML.DeepDensity.Tests.Conformance.DistributionStatistics;

namespace Microsoft.ML.DeepDensity.Tests.Rbm;

/// <summary>
/// What the RBM's Gibbs sampler draws on a model with well-separated modes (docs/models/rbm.md, "What Sample draws"),
/// measured against the exact density (8 visible units: all 256 rows enumerated). Block Gibbs from the visible bias is
/// a Markov chain, not an exact sampler: a chain that starts in the mode the model gives 0.07 % keeps many of its draws
/// there after the default 1,000 sweeps of burn-in; a longer burn-in removes the bias. Everything is seeded, so each
/// check gives the same result every run.
/// </summary>
public class RbmGibbsMixingTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>8 binary columns: noisy copies (2 % flips) of 11110000 and 00001111, 2,000 rows; 6 hidden units,
    /// 200 epochs: the model puts 99.9 % of its mass on one prototype's side and the Gibbs chains cross between the two
    /// sides rarely.</summary>
    private static RbmModel StronglyBimodal()
    {
        var rng = new RandomStream(5);
        float[] a = [1, 1, 1, 1, 0, 0, 0, 0], b = [0, 0, 0, 0, 1, 1, 1, 1];
        var data = new RowMatrix(2000, 8);
        for (int r = 0; r < 2000; r++)
        {
            var proto = rng.NextInt(2) == 0 ? a : b;
            for (int c = 0; c < 8; c++) data[r, c] = rng.NextDouble() < 0.02 ? 1 - proto[c] : proto[c];
        }
        return RbmModel.Fit(data, new RbmOptions { HiddenUnits = 6, MaxEpochs = 200, Seed = 1, LearningRate = 0.1f });
    }

    private static RbmModel WithSampling(RbmModel m, int burnIn, int thinning, int chains)
        => RbmModel.FromParameters(RbmVisibleType.Bernoulli, m.GetWeights(), m.GetVisibleBias(), m.GetHiddenBias(),
            new RbmOptions { SamplingBurnIn = burnIn, SamplingThinning = thinning, SamplingChains = chains });

    /// <summary>Row x of the 256: column c = bit c of x. "Second side": more ones in columns 4–7 than in 0–3.</summary>
    private static bool SecondSide(int x) => BitOperations.PopCount((uint)(x >> 4)) > BitOperations.PopCount((uint)(x & 15));

    private static int State(RowMatrix draws, int r)
    {
        int x = 0;
        for (int c = 0; c < 8; c++) if (draws[r, c] != 0) x |= 1 << c;
        return x;
    }

    [Fact]
    public void DefaultBurnInLeavesChainsOnTheRareSideAndALongerOneDoesNot()
    {
        var trained = StronglyBimodal();
        Assert.Equal(DensityKind.Exact, trained.DensityKind);
        var all = new RowMatrix(256, 8);
        for (int x = 0; x < 256; x++) for (int c = 0; c < 8; c++) all[x, c] = (x >> c) & 1;
        var p = trained.LogDensity(all).Select(v => Math.Exp(v)).ToArray();
        Assert.Equal(1.0, p.Sum(), 4);
        double rare = Enumerable.Range(0, 256).Where(SecondSide).Sum(x => p[x]);

        // The defaults (burn-in 1,000, thinning 10) with one chain per draw: every draw is the first of its own chain.
        const int n = 2000;
        var draws = WithSampling(trained, RbmOptions.Defaults.SamplingBurnIn, RbmOptions.Defaults.SamplingThinning, n).Sample(n, seed: 31);
        double drawnRare = Enumerable.Range(0, n).Count(r => SecondSide(State(draws, r))) / (double)n;
        output.WriteLine($"P(second side): density {rare:F5}, default burn-in draws {drawnRare:F5}");
        // The documented bias (measured: 0.00072 against 0.026 of 2,000 draws, 36 times too many). An exact sampler draws
        // Binomial(2000, 0.00072) rows there, mean 1.4: 10 times that (15 or more) has probability below 1e-10. If this
        // fails, the sampler has changed: update "What Sample draws" in docs/models/rbm.md.
        Assert.True(rare < 0.002, $"the model gives the second side {rare:F5}; this check needs a rare side");
        Assert.True(drawnRare >= 10 * rare, $"default burn-in: {drawnRare:F5} of the draws on the side the density gives {rare:F5} (documented: far more)");

        // 10,000 sweeps of burn-in (default thinning and chains), 20,000 draws: the chi-square against the exact density.
        const int many = 20_000;
        var longRun = WithSampling(trained, 10_000, RbmOptions.Defaults.SamplingThinning, RbmOptions.Defaults.SamplingChains).Sample(many, seed: 31);
        var counts = new double[256];
        for (int r = 0; r < many; r++) counts[State(longRun, r)]++;
        double longRare = Enumerable.Range(0, 256).Where(SecondSide).Sum(x => counts[x]) / many;
        var (chi2, cells) = ChiSquare(counts, p, many);
        output.WriteLine($"burn-in 10,000: P(second side) {longRare:F5}, chi-square {chi2:F1} on {cells - 1} degrees of freedom");
        double limit = ChiSquareLimit(cells - 1); // p = 1e-6 for independent draws
        Assert.True(chi2 <= limit, $"burn-in 10,000: chi-square {chi2:F1} on {cells - 1} degrees of freedom, above {limit:F1} (p < 1e-6)");
        Assert.True(longRare <= 3 * rare, $"burn-in 10,000: {longRare:F5} of the draws on the side the density gives {rare:F5}");
    }
}
