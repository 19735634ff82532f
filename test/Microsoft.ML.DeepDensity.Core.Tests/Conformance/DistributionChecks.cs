using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>
/// Every model is a distribution: its density integrates (sums) to one, and its sampler draws from that density. The
/// model-specific tests check this in detail for some models; these checks hold every case to it, with the same
/// statistics, so a new model (or a change to a sampler or a normaliser) cannot break the pairing unnoticed.
/// </summary>
/// <remarks>
/// <para><b>Binary cases</b> (8 columns) enumerate all 256 rows: Σ exp(log p) = 1, and a draw's counts against
/// N · p by a chi-square with cells pooled to expected counts ≥ 5.</para>
/// <para><b>Real cases</b> (4 columns) integrate by importance sampling from a Gaussian proposal q twice as wide as the
/// training data: Ẑ = mean p/q = 1 within its standard error; and the sampler's means, standard deviations and the
/// correlation of the two correlated columns match the density's, computed from the same weighted proposal draws.</para>
/// <para><b>Estimates</b> (RBM with AIS, IWAE, NVIL): an importance-sampled p̂ is unbiased for p (its log is biased low,
/// p̂ itself is not), so Σ p̂ and mean p̂/q still estimate 1, and the weighted moments are still consistent. Only
/// the chi-square needs the exact p, so estimates are compared to their normalised p̂ by total variation instead.
/// Everything is seeded: a check that passes passes every run.</para>
/// </remarks>
public class DistributionChecks
{
    /// <summary>Sums of exp(log p) over a binary model's 256 rows: exact models to 1e-4, estimates within 5 % (AIS's
    /// log Z and the importance-sampled p̂ of 20 samples are random; tiny models give them small variance).</summary>
    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void TheDensityIntegratesToOne(string name)
    {
        if (CheckedElsewhere(name)) return;
        var f = ModelCases.Fitted(name);
        double total, standardError;
        if (f.Case.InputDomain == InputDomain.Binary)
        {
            var p = Probabilities(f.Model);
            total = p.Sum();
            standardError = 0;
            double tolerance = f.Case.DensityKind == DensityKind.Exact ? 1e-4 : 0.05;
            Assert.True(Math.Abs(total - 1) <= tolerance,
                $"{name}: the density sums to {total:R} over all {p.Length} binary rows, expected 1 ± {tolerance}.");
            return;
        }
        var draws = ProposalDraws(f.Model, f.Data, 400_000, seed: 2024);
        (total, standardError) = MeanAndStandardError(draws.Weights);
        Assert.True(standardError < 0.03, $"{name}: the importance-sampled integral's standard error {standardError:G3} is too large for a test (the proposal misses the density).");
        Assert.True(Math.Abs(total - 1) <= 5 * standardError + 0.005,
            $"{name}: the density integrates to {total:F4} ± {standardError:F4} (importance sampling, 400,000 draws), expected 1.");
    }

    /// <summary>A draw of 20,000 rows follows the model's own density (binary: chi-square at p = 1e-6 for exact models,
    /// total variation ≤ 0.05 for estimates; real: means and standard deviations within 0.05 of the column's standard
    /// deviation and 5 %, the first two columns' correlation within 0.05).</summary>
    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void SamplesFollowTheDensity(string name)
    {
        if (CheckedElsewhere(name)) return;
        var f = ModelCases.Fitted(name);
        const int n = 20_000;
        var samples = f.Model.Sample(n, seed: 31);
        if (f.Case.InputDomain == InputDomain.Binary)
        {
            var p = Probabilities(f.Model);
            double sum = p.Sum();
            var counts = new double[p.Length];
            for (int r = 0; r < n; r++) counts[Code(samples.Row(r))]++;
            if (f.Case.DensityKind == DensityKind.Exact)
            {
                var (chi2, cells) = ChiSquare(counts, p, n);
                // Chi-square quantile at 1 − 1e-6 for the pooled cells' degrees of freedom (Wilson–Hilferty).
                double limit = ChiSquareQuantile(cells - 1, 4.7534);
                Assert.True(chi2 <= limit, $"{name}: samples against the density: chi-square {chi2:F1} on {cells - 1} degrees of freedom, above {limit:F1} (p < 1e-6).");
            }
            else
            {
                double tv = 0;
                for (int x = 0; x < p.Length; x++) tv += Math.Abs(counts[x] / n - p[x] / sum);
                tv /= 2;
                Assert.True(tv <= 0.05, $"{name}: samples against the (normalised) density estimate: total variation {tv:F3}, expected ≤ 0.05.");
            }
            return;
        }

        var draws = ProposalDraws(f.Model, f.Data, 400_000, seed: 2024);
        int d = f.Data.Columns;
        var model = WeightedMoments(draws.Rows, draws.Weights);
        var sampled = WeightedMoments(samples, null);
        for (int c = 0; c < d; c++)
        {
            double sd = Math.Sqrt(model.Variance[c]);
            Assert.True(Math.Abs(sampled.Mean[c] - model.Mean[c]) <= 0.05 * sd,
                $"{name}: column {c}'s sample mean {sampled.Mean[c]:F4}, the density's {model.Mean[c]:F4} (sd {sd:F4}).");
            double ratio = Math.Sqrt(sampled.Variance[c]) / sd;
            Assert.True(Math.Abs(ratio - 1) <= 0.05, $"{name}: column {c}'s sample standard deviation is {ratio:F3} × the density's {sd:F4}.");
        }
        Assert.True(Math.Abs(sampled.Correlation01 - model.Correlation01) <= 0.05,
            $"{name}: the sample correlation of columns 0 and 1 is {sampled.Correlation01:F3}, the density's {model.Correlation01:F3}.");
    }

    /// <summary>The negative control: the same statistics reject a sampler that is slightly wrong (each column's draw
    /// shifted by a tenth of its spread, or one binary column flipped in 5 % of the rows), so the checks above can fail.</summary>
    [Fact]
    public void TheChecksRejectASlightlyWrongSampler()
    {
        var real = ModelCases.Fitted("Rnade");
        var draws = ProposalDraws(real.Model, real.Data, 400_000, seed: 2024);
        var model = WeightedMoments(draws.Rows, draws.Weights);
        var samples = real.Model.Sample(20_000, seed: 31);
        for (int r = 0; r < samples.Rows; r++) samples[r, 2] += 0.1f * (float)Math.Sqrt(model.Variance[2]);
        var shifted = WeightedMoments(samples, null);
        Assert.True(Math.Abs(shifted.Mean[2] - model.Mean[2]) > 0.05 * Math.Sqrt(model.Variance[2]));

        var binary = ModelCases.Fitted("Rbm");
        var p = Probabilities(binary.Model);
        var bad = binary.Model.Sample(20_000, seed: 31);
        var rng = new RandomStream(5);
        for (int r = 0; r < bad.Rows; r++) if (rng.NextDouble() < 0.05) bad[r, 3] = 1 - bad[r, 3];
        var counts = new double[p.Length];
        for (int r = 0; r < bad.Rows; r++) counts[Code(bad.Row(r))]++;
        var (chi2, cells) = ChiSquare(counts, p, bad.Rows);
        Assert.True(chi2 > ChiSquareQuantile(cells - 1, 4.7534), $"a sampler flipping column 3 in 5 % of rows passed: chi-square {chi2:F1} on {cells - 1}.");
    }

    /// <summary>Whether the case names its own tests for these properties (<see cref="ModelCase.DistributionCheckedBy"/>);
    /// those tests must exist, so the pointer cannot go stale.</summary>
    private static bool CheckedElsewhere(string name)
    {
        var tests = ModelCases.Get(name).DistributionCheckedBy;
        if (tests is null) return false;
        foreach (var test in tests)
        {
            var parts = test.Split('.');
            var type = typeof(DistributionChecks).Assembly.GetTypes().SingleOrDefault(t => t.Name == parts[0]);
            var method = type?.GetMethod(parts[1]);
            Assert.True(method is not null && method.GetCustomAttributes(typeof(FactAttribute), true).Length > 0,
                $"{name}: its distribution is said to be checked by {test}, which is not a test in this assembly.");
        }
        return true;
    }

    /// <summary>exp(log p) of the 256 binary rows, row x having column c = bit c of x.</summary>
    private static double[] Probabilities(DensityModel model)
    {
        int d = model.Dimension, states = 1 << d;
        var all = new RowMatrix(states, d);
        for (int x = 0; x < states; x++)
            for (int c = 0; c < d; c++) all[x, c] = (x >> c) & 1;
        var logp = model.LogDensity(all);
        return logp.Select(v => Math.Exp(v)).ToArray();
    }

    private static int Code(ReadOnlySpan<float> row)
    {
        int x = 0;
        for (int c = 0; c < row.Length; c++) if (row[c] != 0) x |= 1 << c;
        return x;
    }

    /// <summary>Pearson's chi-square of the counts against n · p, cells in increasing expectation pooled until each holds
    /// at least 5 expected rows.</summary>
    private static (double Chi2, int Cells) ChiSquare(double[] counts, double[] p, int n)
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

    /// <summary>The chi-square quantile with k degrees of freedom at the standard normal quantile z (Wilson–Hilferty).</summary>
    private static double ChiSquareQuantile(int k, double z)
    {
        double a = 2.0 / (9 * k);
        return k * Math.Pow(1 - a + z * Math.Sqrt(a), 3);
    }

    /// <summary>Rows from a diagonal Gaussian q with the data's means and twice its standard deviations, and their
    /// importance weights p(x)/q(x).</summary>
    private static (RowMatrix Rows, double[] Weights) ProposalDraws(DensityModel model, RowMatrix data, int n, ulong seed)
    {
        int d = data.Columns;
        var mean = new double[d];
        var sd = new double[d];
        for (int c = 0; c < d; c++)
        {
            double s = 0, s2 = 0;
            for (int r = 0; r < data.Rows; r++) { s += data[r, c]; s2 += (double)data[r, c] * data[r, c]; }
            mean[c] = s / data.Rows;
            sd[c] = 2 * Math.Sqrt(Math.Max(s2 / data.Rows - mean[c] * mean[c], 1e-12));
        }
        var rng = new RandomStream(seed);
        var rows = new RowMatrix(n, d);
        var logq = new double[n];
        for (int r = 0; r < n; r++)
        {
            double lq = 0;
            for (int c = 0; c < d; c++)
            {
                double z = rng.NextGaussian();
                rows[r, c] = (float)(mean[c] + sd[c] * z);
                // q of the stored float value, so that p and q see the same point.
                double zf = (rows[r, c] - mean[c]) / sd[c];
                lq += -0.5 * zf * zf - Math.Log(sd[c]) - 0.5 * Math.Log(2 * Math.PI);
            }
            logq[r] = lq;
        }
        var logp = model.LogDensity(rows);
        var weights = new double[n];
        for (int r = 0; r < n; r++) weights[r] = Math.Exp(logp[r] - logq[r]);
        return (rows, weights);
    }

    private static (double Mean, double StandardError) MeanAndStandardError(double[] values)
    {
        double s = 0, s2 = 0;
        foreach (double v in values) { s += v; s2 += v * v; }
        double mean = s / values.Length;
        return (mean, Math.Sqrt(Math.Max(s2 / values.Length - mean * mean, 0) / values.Length));
    }

    private sealed record Moments(double[] Mean, double[] Variance, double Correlation01);

    /// <summary>Means, variances and the correlation of columns 0 and 1, weighted (self-normalised) or plain.</summary>
    private static Moments WeightedMoments(RowMatrix rows, double[]? weights)
    {
        int d = rows.Columns;
        var mean = new double[d];
        var variance = new double[d];
        double total = 0, cov01 = 0;
        for (int r = 0; r < rows.Rows; r++)
        {
            double w = weights?[r] ?? 1;
            total += w;
            for (int c = 0; c < d; c++) mean[c] += w * rows[r, c];
        }
        for (int c = 0; c < d; c++) mean[c] /= total;
        for (int r = 0; r < rows.Rows; r++)
        {
            double w = weights?[r] ?? 1;
            for (int c = 0; c < d; c++) variance[c] += w * (rows[r, c] - mean[c]) * (rows[r, c] - mean[c]);
            cov01 += w * (rows[r, 0] - mean[0]) * (rows[r, 1] - mean[1]);
        }
        for (int c = 0; c < d; c++) variance[c] /= total;
        cov01 /= total;
        return new Moments(mean, variance, cov01 / Math.Sqrt(variance[0] * variance[1]));
    }
}
