using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Randomness;
using static Microsoft.ML.DeepDensity.Tests.Conformance.DistributionStatistics;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>
/// Every model is a distribution: its density integrates (sums) to one, and its sampler draws from that density. The
/// model-specific tests check this in detail for some models; these checks hold every case to it, with the same
/// statistics, so a new model (or a change to a sampler or a normaliser) cannot break the pairing unnoticed.
/// </summary>
/// <remarks>
/// <para>Each case is fitted for 30 epochs (not the suite's usual 2), so that it has learned the data's dependences (a
/// correlated pair of columns, two prototypes) and a sampler can get them wrong.</para>
/// <para><b>Binary cases</b> (8 columns) enumerate all 256 rows: Σ exp(log p) = 1, and 20,000 draws' counts against
/// N · p by a chi-square with cells pooled to expected counts ≥ 5.</para>
/// <para><b>Real cases</b> (4 columns) integrate by importance sampling (<see cref="DistributionStatistics"/>), and
/// 20,000 draws' means, standard deviations and correlations must be the density's.</para>
/// <para><b>Estimates</b>: the importance-sampled densities (IWAE, NVIL) are scored with more samples
/// (<see cref="ModelCase.PreciseDensity"/>), and their p̂, like the RBM's AIS estimate of log Z, still differs from the
/// exact p by its error: the sum is held to 5 %, and the draws are compared to the normalised estimate by total
/// variation, since a chi-square would test the estimate, not the sampler. Everything is seeded: a check that passes
/// passes every run.</para>
/// </remarks>
public class DistributionChecks
{
    private const int Draws = 20_000;

    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void TheDensityIsNormalisedAndTheSamplerDrawsFromIt(string name)
    {
        var c = ModelCases.Get(name);
        var data = c.MakeData(c.TrainingRows, 12345);
        var model = c.Fit(new FitRequest(data, 1) { Epochs = 30 });
        if (c.PreciseDensity is not null) model = c.PreciseDensity(model);
        var draws = model.Sample(Draws, seed: 31);
        if (c.InputDomain == InputDomain.Real)
        {
            var (proposal, logq) = Proposal(draws.AsSpan(), data.Columns, seed: 2024);
            var logp = model.LogDensity(new RowMatrix(proposal, Proposals, data.Columns));
            IntegratesToOneAndMatches(name, logp, logq, proposal, draws.Values, data.Columns);
            return;
        }
        var p = Probabilities(model);
        double total = p.Sum(), tolerance = c.DensityKind == DensityKind.Exact ? 1e-4 : 0.05;
        Assert.True(Math.Abs(total - 1) <= tolerance, $"{name}: the density sums to {total:R} over all {p.Length} binary rows, expected 1 ± {tolerance}.");
        var counts = Counts(draws);
        if (c.DensityKind == DensityKind.Exact)
        {
            var (chi2, cells) = ChiSquare(counts, p, Draws);
            double limit = ChiSquareLimit(cells - 1);
            Assert.True(chi2 <= limit, $"{name}: draws against the density: chi-square {chi2:F1} on {cells - 1} degrees of freedom, above {limit:F1} (p < 1e-6).");
        }
        else
        {
            double tv = 0;
            for (int x = 0; x < p.Length; x++) tv += Math.Abs(counts[x] / Draws - p[x] / total);
            Assert.True(tv / 2 <= 0.05, $"{name}: draws against the normalised density estimate: total variation {tv / 2:F3}, expected ≤ 0.05.");
        }
    }

    /// <summary>The negative control: the same statistics reject samplers that are slightly wrong — a real column shifted
    /// by a tenth of its spread, one column's draws shuffled among rows (its correlations lost), or a binary column
    /// flipped in 5 % of the rows — so the check above can fail.</summary>
    [Fact]
    public void TheStatisticsRejectASlightlyWrongSampler()
    {
        var real = ModelCases.Get("Rnade");
        var data = real.MakeData(real.TrainingRows, 12345);
        var model = real.Fit(new FitRequest(data, 1) { Epochs = 30 });
        var draws = model.Sample(Draws, seed: 31);
        var (proposal, logq) = Proposal(draws.AsSpan(), 4, seed: 2024);
        var logp = model.LogDensity(new RowMatrix(proposal, Proposals, 4));
        IntegratesToOneAndMatches("Rnade", logp, logq, proposal, draws.Values, 4);

        var shifted = (float[])draws.Values.Clone();
        double sd = Math.Sqrt(Moments(draws.AsSpan(), null, 4).Cov[2, 2]);
        for (int r = 0; r < Draws; r++) shifted[r * 4 + 2] += (float)(0.1 * sd);
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => IntegratesToOneAndMatches("shifted", logp, logq, proposal, shifted, 4));

        var shuffled = (float[])draws.Values.Clone();
        var rng = new RandomStream(3);
        for (int r = Draws - 1; r > 0; r--)
        {
            int j = rng.NextInt(r + 1);
            (shuffled[r * 4 + 1], shuffled[j * 4 + 1]) = (shuffled[j * 4 + 1], shuffled[r * 4 + 1]);
        }
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => IntegratesToOneAndMatches("shuffled", logp, logq, proposal, shuffled, 4));

        var binary = ModelCases.Get("Rbm");
        var rbm = binary.Fit(new FitRequest(binary.MakeData(binary.TrainingRows, 12345), 1) { Epochs = 30 });
        var p = Probabilities(rbm);
        var bad = rbm.Sample(Draws, seed: 31);
        for (int r = 0; r < Draws; r++) if (rng.NextDouble() < 0.05) bad[r, 3] = 1 - bad[r, 3];
        var (chi2, cells) = ChiSquare(Counts(bad), p, Draws);
        Assert.True(chi2 > ChiSquareLimit(cells - 1), $"a sampler flipping column 3 in 5 % of rows passed: chi-square {chi2:F1} on {cells - 1}.");
    }

    /// <summary>exp(log p) of the 2^D binary rows, row x having column c = bit c of x.</summary>
    private static double[] Probabilities(DensityModel model)
    {
        int d = model.Dimension, states = 1 << d;
        var all = new RowMatrix(states, d);
        for (int x = 0; x < states; x++)
            for (int c = 0; c < d; c++) all[x, c] = (x >> c) & 1;
        return model.LogDensity(all).Select(v => Math.Exp(v)).ToArray();
    }

    private static double[] Counts(RowMatrix draws)
    {
        var counts = new double[1 << draws.Columns];
        for (int r = 0; r < draws.Rows; r++)
        {
            int x = 0;
            for (int c = 0; c < draws.Columns; c++) if (draws[r, c] != 0) x |= 1 << c;
            counts[x]++;
        }
        return counts;
    }
}
