using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>
/// The statistics of <see cref="DistributionChecks"/> and <see cref="SequenceDistributionChecks"/> for real values:
/// an integral of the density by importance sampling from a Gaussian, and the density's moments weighted from the same
/// proposals, against a draw's plain moments.
/// </summary>
internal static class DistributionStatistics
{
    /// <summary>Proposals per integral.</summary>
    public const int Proposals = 400_000;

    /// <summary>Rows from a diagonal Gaussian with the means of <paramref name="centre"/> (rows of
    /// <paramref name="width"/>) and twice its standard deviations, and their log-densities under it (of the stored
    /// float values). Any fixed Gaussian gives a valid integral; one centred on the model's own draws keeps its variance
    /// small even where a briefly trained model sits far from its data. A sampler that is off moves the proposal, not
    /// the integral.</summary>
    public static (float[] Rows, double[] LogQ) Proposal(ReadOnlySpan<float> centre, int width, ulong seed, int n = Proposals)
    {
        int count = centre.Length / width;
        var mean = new double[width];
        var sd = new double[width];
        for (int c = 0; c < width; c++)
        {
            double s = 0, s2 = 0;
            for (int t = 0; t < count; t++) { double x = centre[t * width + c]; s += x; s2 += x * x; }
            mean[c] = s / count;
            sd[c] = 2 * Math.Sqrt(Math.Max(s2 / count - mean[c] * mean[c], 1e-12));
        }
        var rng = new RandomStream(seed);
        var values = new float[n * width];
        var logq = new double[n];
        for (int i = 0; i < n; i++)
            for (int c = 0; c < width; c++)
            {
                values[i * width + c] = (float)(mean[c] + sd[c] * rng.NextGaussian());
                double u = (values[i * width + c] - mean[c]) / sd[c];
                logq[i] += -0.5 * u * u - Math.Log(sd[c]) - 0.5 * Math.Log(2 * Math.PI);
            }
        return (values, logq);
    }

    /// <summary>The integral of exp(<paramref name="logp"/>) by the proposals' weights is 1 within 5 standard errors
    /// (+ 0.005; the standard error must be below 0.03 for the test to mean anything), and the draws' means, standard
    /// deviations and the correlations of every pair of values are the density's within 0.05 of a standard deviation,
    /// 5 % and 0.05.</summary>
    public static void IntegratesToOneAndMatches(string what, ReadOnlySpan<float> logp, double[] logq, float[] proposal, float[] draws, int width)
    {
        int n = logq.Length;
        var w = new double[n];
        double s = 0, s2 = 0;
        for (int i = 0; i < n; i++) { w[i] = Math.Exp(logp[i] - logq[i]); s += w[i]; s2 += w[i] * w[i]; }
        double z = s / n, se = Math.Sqrt(Math.Max(s2 / n - z * z, 0) / n);
        Assert.True(se < 0.03, $"{what}: the importance-sampled integral's standard error {se:G3} is too large for a test.");
        Assert.True(Math.Abs(z - 1) <= 5 * se + 0.005, $"{what}: the density integrates to {z:F4} ± {se:F4} ({n} proposals), expected 1.");
        var (m, cov) = Moments(proposal, w, width);
        var (dm, dcov) = Moments(draws, null, width);
        for (int c = 0; c < width; c++)
        {
            double sd = Math.Sqrt(cov[c, c]), dsd = Math.Sqrt(dcov[c, c]);
            Assert.True(Math.Abs(dm[c] - m[c]) <= 0.05 * sd, $"{what}: value {c}'s sample mean {dm[c]:F4}, the density's {m[c]:F4} (sd {sd:F4}).");
            Assert.True(Math.Abs(dsd / sd - 1) <= 0.05, $"{what}: value {c}'s sample standard deviation {dsd:F4}, the density's {sd:F4}.");
            for (int e = 0; e < c; e++)
            {
                double r = cov[c, e] / Math.Sqrt(cov[c, c] * cov[e, e]), dr = dcov[c, e] / Math.Sqrt(dcov[c, c] * dcov[e, e]);
                Assert.True(Math.Abs(dr - r) <= 0.05, $"{what}: the sample correlation of values {e} and {c} is {dr:F3}, the density's {r:F3}.");
            }
        }
    }

    /// <summary>Means and covariances of rows of <paramref name="width"/> values, weighted (self-normalised) or plain.</summary>
    public static (double[] Mean, double[,] Cov) Moments(ReadOnlySpan<float> rows, double[]? weights, int width)
    {
        int n = rows.Length / width;
        var mean = new double[width];
        var cov = new double[width, width];
        double total = 0;
        for (int i = 0; i < n; i++)
        {
            double w = weights?[i] ?? 1;
            total += w;
            for (int c = 0; c < width; c++) mean[c] += w * rows[i * width + c];
        }
        for (int c = 0; c < width; c++) mean[c] /= total;
        for (int i = 0; i < n; i++)
        {
            double w = weights?[i] ?? 1;
            for (int c = 0; c < width; c++)
                for (int e = 0; e <= c; e++) cov[c, e] += w * (rows[i * width + c] - mean[c]) * (rows[i * width + e] - mean[e]);
        }
        for (int c = 0; c < width; c++)
            for (int e = 0; e <= c; e++) cov[e, c] = cov[c, e] /= total;
        return (mean, cov);
    }

    /// <summary>Pearson's chi-square of the counts against n · p, cells in increasing expectation pooled until each holds
    /// at least 5 expected rows.</summary>
    public static (double Chi2, int Cells) ChiSquare(double[] counts, double[] p, int n)
    {
        var order = Enumerable.Range(0, p.Length).OrderBy(x => p[x]).ToArray();
        double chi2 = 0, expected = 0, observed = 0;
        int cells = 0;
        foreach (int x in order)
        {
            expected += n * p[x];
            observed += counts[x];
            if (expected < 5) continue;
            chi2 += (observed - expected) * (observed - expected) / expected;
            cells++;
            expected = observed = 0;
        }
        if (expected > 0 || observed > 0) chi2 += (observed - expected) * (observed - expected) / Math.Max(expected, 1e-12);
        return (chi2, Math.Max(cells, 2));
    }

    /// <summary>The chi-square quantile with k degrees of freedom at the standard normal quantile z (Wilson–Hilferty;
    /// z = 4.7534 is p = 1e-6).</summary>
    public static double ChiSquareQuantile(int k, double z)
    {
        double a = 2.0 / (9 * k);
        return k * Math.Pow(1 - a + z * Math.Sqrt(a), 3);
    }

    /// <summary>The chi-square limit that a correct sampler exceeds with probability 1e-6 on <paramref name="degrees"/>
    /// degrees of freedom (z = 4.7534).</summary>
    public static double ChiSquareLimit(int degrees) => ChiSquareQuantile(degrees, 4.7534);
}
