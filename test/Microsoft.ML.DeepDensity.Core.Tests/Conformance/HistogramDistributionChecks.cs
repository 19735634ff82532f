using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Randomness;
using static Microsoft.ML.DeepDensity.Tests.Conformance.DistributionStatistics;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>
/// The samplers of the real-valued families against their density's shape, not only its moments
/// (<see cref="DistributionChecks"/>): on 2-D data (two clusters of unequal weight, a curved dependence, the second
/// column at offset 50 and scale 10) each model's 100,000 draws are binned on an 8 × 8 grid over the central 99 % of
/// each column, and the counts are compared by a chi-square with the bins' probabilities integrated from the density
/// (midpoint rule on 24 × 24 points per bin; 8 × 8 for the importance-sampled IWAE estimate), both conditioned on the
/// grid, by the suite's chi-square (<see cref="DistributionStatistics.ChiSquare"/>: bins pooled to 5 expected draws). Options that change the sampler have a case each: a variable order, raw (unstandardised) columns, masked-input
/// and autoregressive deep RNADE with two orderings, factorised deep GMM paths with standardisation, a Gaussian RBM
/// (one Gibbs chain per draw, 100 sweeps of burn-in), the Gaussian IWAE. The limit is the chi-square's p = 1e-6 quantile, so a correct sampler
/// fails with probability below 1e-6 per case; seeded, each case gives the same result every run (measured: chi-square
/// 38 to 76 on 61 to 63 degrees of freedom, against limits of 129 to 132).
/// </summary>
public class HistogramDistributionChecks(Xunit.Abstractions.ITestOutputHelper output)
{
    private static RowMatrix Data()
    {
        var rng = new RandomStream(3);
        var data = new RowMatrix(1000, 2);
        for (int r = 0; r < data.Rows; r++)
        {
            bool small = rng.NextInt(3) == 0;
            float x = small ? 2 + 0.5f * (float)rng.NextGaussian() : -1 + 0.8f * (float)rng.NextGaussian();
            data[r, 0] = x;
            data[r, 1] = 50 + 10 * (0.15f * x * x + 0.5f * (float)rng.NextGaussian());
        }
        return data;
    }

    private static readonly Dictionary<string, Func<RowMatrix, DensityModel>> Cases = new()
    {
        ["Rnade"] = d => RnadeModel.Fit(d, new RnadeOptions { HiddenUnits = 8, Components = 3, MaxEpochs = 30, Seed = 1 }),
        ["RnadeReversedOrder"] = d => RnadeModel.Fit(d, new RnadeOptions { HiddenUnits = 8, Components = 3, MaxEpochs = 30, Seed = 1, VariableOrder = new[] { 1, 0 } }),
        ["RnadeRaw"] = d => RnadeModel.Fit(d, new RnadeOptions { HiddenUnits = 8, Components = 3, MaxEpochs = 30, Seed = 1, Standardize = false }),
        ["DeepRnadeMaskedInput"] = d => DeepRnadeModel.Fit(d, new DeepRnadeOptions { HiddenUnits = 8, Components = 3, Orderings = 2, Connectivity = DeepRnadeConnectivity.MaskedInput, MaxEpochs = 30, Seed = 1 }),
        ["DeepRnadeAutoregressive"] = d => DeepRnadeModel.Fit(d, new DeepRnadeOptions { HiddenUnits = 8, Components = 3, Orderings = 2, Connectivity = DeepRnadeConnectivity.Autoregressive, DirectConnections = true, MaxEpochs = 30, Seed = 1 }),
        ["DeepGmm"] = d => DeepGmmModel.Fit(d, new DeepGmmOptions { Layers = new[] { 3, 2 }, Seed = 1, MaxIterations = 30 }),
        ["DeepGmmFactorizedSoftStandardized"] = d => DeepGmmModel.Fit(d, new DeepGmmOptions { Layers = new[] { 2, 3, 2 }, PathProbabilities = DeepGmmPathProbabilities.Factorized, Em = DeepGmmEmKind.Soft, Standardize = true, Seed = 1, MaxIterations = 30 }),
        ["RbmGaussian"] = d => RbmModel.Fit(d, new RbmOptions { HiddenUnits = 6, VisibleType = RbmVisibleType.Gaussian, MaxEpochs = 30, Seed = 1, SamplingChains = 100_000, SamplingBurnIn = 100 }),
        ["IwaeGaussian"] = d => IwaeModel.Fit(d, new IwaeOptions { Likelihood = IwaeLikelihood.Gaussian, LatentDimensions = new[] { 2 }, HiddenUnits = new[] { 16 }, DeepHiddenUnits = new[] { 8 }, Samples = 5, MaxEpochs = 30, Seed = 1 }).WithEvaluation(2000),
    };

    public static TheoryData<string> Names() => new(Cases.Keys);

    [Theory, MemberData(nameof(Names))]
    public void BinnedDrawsFollowTheIntegratedDensity(string name)
    {
        var model = Cases[name](Data());
        const int n = 100_000, bins = 8;
        var draws = model.Sample(n, 7);
        double Quantile(int c, double q)
        {
            var v = new double[n];
            for (int r = 0; r < n; r++) v[r] = draws[r, c];
            Array.Sort(v);
            return v[(int)(q * (n - 1))];
        }
        double x0 = Quantile(0, 0.005), x1 = Quantile(0, 0.995), y0 = Quantile(1, 0.005), y1 = Quantile(1, 0.995);
        int sub = model.DensityKind == DensityKind.Exact ? 24 : 8, g = bins * sub;
        var grid = new RowMatrix(g * g, 2);
        for (int i = 0; i < g; i++)
            for (int j = 0; j < g; j++)
            {
                grid[i * g + j, 0] = (float)(x0 + (i + 0.5) * (x1 - x0) / g);
                grid[i * g + j, 1] = (float)(y0 + (j + 0.5) * (y1 - y0) / g);
            }
        var logp = model.LogDensity(grid);
        var p = new double[bins * bins];
        double inside = 0;
        for (int i = 0; i < g; i++)
            for (int j = 0; j < g; j++)
            {
                double v = Math.Exp(logp[i * g + j]);
                p[i / sub * bins + j / sub] += v;
                inside += v;
            }
        var counts = new double[bins * bins];
        int drawnInside = 0;
        for (int r = 0; r < n; r++)
        {
            double x = draws[r, 0], y = draws[r, 1];
            if (x < x0 || x >= x1 || y < y0 || y >= y1) continue;
            drawnInside++;
            counts[Math.Min(bins - 1, (int)((x - x0) / (x1 - x0) * bins)) * bins + Math.Min(bins - 1, (int)((y - y0) / (y1 - y0) * bins))]++;
        }
        for (int k = 0; k < p.Length; k++) p[k] /= inside;
        var (chi2, cells) = ChiSquare(counts, p, drawnInside);
        double limit = ChiSquareLimit(cells - 1);
        output.WriteLine($"{name}: chi-square {chi2:F1} on {cells - 1} degrees of freedom (limit {limit:F1}); {drawnInside / (double)n:F4} of the draws on the grid");
        Assert.True(chi2 <= limit, $"{name}: 8 × 8 binned draws against the integrated density: chi-square {chi2:F1} on {cells - 1} degrees of freedom, above {limit:F1} (p < 1e-6)");
    }
}
