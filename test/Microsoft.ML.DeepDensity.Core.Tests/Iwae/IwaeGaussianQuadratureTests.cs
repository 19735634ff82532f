using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Iwae;

namespace Microsoft.ML.DeepDensity.Tests.Iwae;

/// <summary>
/// The Gaussian-likelihood IWAE against its exact marginal: with a one-dimensional latent,
/// p(x) = ∫ N(z; 0, 1) Π_c N(x_c; μ_c(z), σ_c(z)) dz is a quadrature over z, and so are the moments of x. The
/// estimate must converge to log p(x), and the sampler's means and covariances must be the marginal's. (The Bernoulli
/// likelihood has the same checks in <see cref="IwaeModelTests"/>.)
/// </summary>
public class IwaeGaussianQuadratureTests
{
    private const int D = 3;

    /// <summary>A fixed model whose decoder's means and scales both depend strongly on z, with a mild encoder.</summary>
    private static IwaeModel TinyModel(int evalSamples = 1000) => IwaeModelTests.QuadratureModel(D, IwaeLikelihood.Gaussian, seed: 41, std: 1.0f, evalSamples);

    /// <summary>The decoder's [μ | log σ] on a trapezoid grid over z ∈ [−10, 10], with the prior's weight of each node.</summary>
    private static (float[] Parameters, double[] Weight, int Grid) Grid(IwaeModel model)
    {
        const int grid = 8001;
        const double lo = -10, hi = 10, h = (hi - lo) / (grid - 1);
        var z = new float[grid];
        var weight = new double[grid];
        for (int g = 0; g < grid; g++)
        {
            z[g] = (float)(lo + g * h);
            weight[g] = Math.Exp(-0.5 * z[g] * z[g]) / Math.Sqrt(2 * Math.PI) * h * (g == 0 || g == grid - 1 ? 0.5 : 1);
        }
        var dec = model.Network.Decoders[0];
        return (dec.Forward(z, grid, dec.CreateWorkspace(grid)).ToArray(), weight, grid);
    }

    internal static double[] QuadratureLogP(IwaeModel model, RowMatrix rows)
    {
        var (par, weight, grid) = Grid(model);
        var result = new double[rows.Rows];
        for (int r = 0; r < rows.Rows; r++)
        {
            // log-sum-exp over the grid: the conditionals are sharp where σ(z) is small.
            var terms = new double[grid];
            double max = double.NegativeInfinity;
            for (int g = 0; g < grid; g++)
            {
                double lp = Math.Log(weight[g]);
                for (int c = 0; c < D; c++)
                {
                    double mu = par[g * 2 * D + c], logSigma = par[g * 2 * D + D + c];
                    double u = (rows[r, c] - mu) * Math.Exp(-logSigma);
                    lp += -0.5 * u * u - logSigma - 0.5 * Math.Log(2 * Math.PI);
                }
                terms[g] = lp;
                max = Math.Max(max, lp);
            }
            double s = 0;
            foreach (double t in terms) s += Math.Exp(t - max);
            result[r] = max + Math.Log(s);
        }
        return result;
    }

    [Fact]
    public void TheEstimateConvergesToTheExactLogDensity()
    {
        var model = TinyModel();
        var rows = model.Sample(40, seed: 5);
        IwaeModelTests.EstimateConverges(model, rows, QuadratureLogP(model, rows), coarseK: 5);
    }

    [Fact]
    public void SamplesHaveTheMarginalsMeansAndCovariances()
    {
        var model = TinyModel();
        var (par, weight, grid) = Grid(model);
        // E[x_c] = ∫ μ_c φ dz and E[x_c x_e] = ∫ (μ_c μ_e + [c = e] σ_c²) φ dz.
        var mean = new double[D];
        var second = new double[D, D];
        for (int g = 0; g < grid; g++)
            for (int c = 0; c < D; c++)
            {
                double mc = par[g * 2 * D + c];
                mean[c] += weight[g] * mc;
                for (int e = 0; e < D; e++)
                {
                    double me = par[g * 2 * D + e];
                    double sigma2 = c == e ? Math.Exp(2 * par[g * 2 * D + D + c]) : 0;
                    second[c, e] += weight[g] * (mc * me + sigma2);
                }
            }
        const int n = 100_000;
        var samples = model.Sample(n, seed: 3);
        var sMean = new double[D];
        var sSecond = new double[D, D];
        for (int r = 0; r < n; r++)
            for (int c = 0; c < D; c++)
            {
                sMean[c] += samples[r, c] / (double)n;
                for (int e = 0; e < D; e++) sSecond[c, e] += samples[r, c] * (double)samples[r, e] / n;
            }
        for (int c = 0; c < D; c++)
        {
            double sd = Math.Sqrt(second[c, c] - mean[c] * mean[c]);
            Assert.True(Math.Abs(sMean[c] - mean[c]) < 5 * sd / Math.Sqrt(n), $"column {c}: sample mean {sMean[c]}, marginal {mean[c]} (sd {sd})");
            for (int e = 0; e < D; e++)
            {
                double cov = second[c, e] - mean[c] * mean[e], sCov = sSecond[c, e] - sMean[c] * sMean[e];
                double scale = Math.Sqrt((second[c, c] - mean[c] * mean[c]) * (second[e, e] - mean[e] * mean[e]));
                Assert.True(Math.Abs(sCov - cov) < 0.03 * scale, $"cov({c},{e}): sampled {sCov}, marginal {cov}");
            }
        }
    }
}
