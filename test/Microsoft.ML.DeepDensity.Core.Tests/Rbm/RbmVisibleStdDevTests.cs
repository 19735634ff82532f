using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Tests.Rbm;

/// <summary>
/// <see cref="RbmOptions.VisibleStdDev"/>: the width σ of Gaussian visible units, folded into the stored input map
/// x → (x − mean) / (scale · σ). The density stays a density of the raw columns (it integrates to one, it is the
/// machine's density of the mapped rows plus the map's log-Jacobian), the sampler maps back with the same scale, and a
/// saved model keeps σ's effect without a field of its own.
/// </summary>
public class RbmVisibleStdDevTests
{
    /// <summary>Two separated, correlated clusters at an offset and with unequal column scales (d ≤ 2).</summary>
    internal static RowMatrix Clusters(int rows, int d, ulong seed)
    {
        var rng = new RandomStream(seed);
        var m = new RowMatrix(rows, d);
        for (int r = 0; r < rows; r++)
        {
            double side = r % 2 == 0 ? -1.5 : 1.5, shared = rng.NextGaussian();
            for (int c = 0; c < d; c++)
                m.Values[r * d + c] = (float)((c == 0 ? 5 : -3) + (c == 0 ? 2 : 0.5) * (side + 0.4 * shared + 0.3 * rng.NextGaussian()));
        }
        return m;
    }

    private static RbmOptions Narrow(bool standardize = true, float sigma = 0.3f) => new()
    {
        VisibleType = RbmVisibleType.Gaussian, HiddenUnits = 4, MaxEpochs = 20, LearningRate = 0.01f, BatchSize = 20,
        Standardize = standardize, VisibleStdDev = sigma, SamplingBurnIn = 200, SamplingChains = 2000, Seed = 3,
    };

    /// <summary>The grid of a column: centre ± 8 of its standard deviations (σ is below 1, so every component is
    /// narrower than that), <paramref name="points"/> points.</summary>
    private static (double From, double Step) Grid(RowMatrix data, int c, int points)
    {
        double mean = 0, sq = 0;
        for (int r = 0; r < data.Rows; r++) mean += data[r, c] / (double)data.Rows;
        for (int r = 0; r < data.Rows; r++) sq += (data[r, c] - mean) * (data[r, c] - mean) / data.Rows;
        double sd = Math.Sqrt(sq);
        return (mean - 8 * sd, 16 * sd / points);
    }

    /// <summary>∫ p, ∫ x p and ∫ x² p per column on a grid over every column (1-D or 2-D).</summary>
    internal static (double Mass, double[] Mean, double[] Var) GridMoments(RbmModel model, RowMatrix data, int points)
    {
        int d = data.Columns;
        var grids = Enumerable.Range(0, d).Select(c => Grid(data, c, points)).ToArray();
        int cells = d == 1 ? points : points * points;
        var rows = new RowMatrix(cells, d);
        double cell = 1;
        foreach (var g in grids) cell *= g.Step;
        for (int i = 0; i < cells; i++)
            for (int c = 0; c < d; c++)
            {
                int k = c == 0 ? i % points : i / points;
                rows[i, c] = (float)(grids[c].From + (k + 0.5) * grids[c].Step);
            }
        var logp = model.LogDensity(rows);
        double mass = 0;
        var m1 = new double[d]; var m2 = new double[d];
        for (int i = 0; i < cells; i++)
        {
            double p = Math.Exp(logp[i]) * cell;
            mass += p;
            for (int c = 0; c < d; c++) { m1[c] += p * rows[i, c]; m2[c] += p * rows[i, c] * rows[i, c]; }
        }
        var var = new double[d];
        for (int c = 0; c < d; c++) { m1[c] /= mass; var[c] = m2[c] / mass - m1[c] * m1[c]; }
        return (mass, m1, var);
    }

    [Theory]
    [InlineData(1, true)]
    [InlineData(2, true)]
    [InlineData(1, false)]
    [InlineData(2, false)]
    public void TheDensityWithANarrowWidthIntegratesToOne(int d, bool standardize)
    {
        var data = Clusters(400, d, 11);
        var model = RbmModel.Fit(data, Narrow(standardize));
        Assert.Equal(LogPartitionMethod.Exact, model.LogPartitionMethod);
        var (mass, _, _) = GridMoments(model, data, d == 1 ? 8000 : 500);
        Assert.Equal(1.0, mass, 3);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TheLogDensityIsTheMachinesOnTheMappedRowsPlusTheLogJacobian(bool standardize)
    {
        const float sigma = 0.3f;
        var data = Clusters(300, 2, 12);
        var model = RbmModel.Fit(data, Narrow(standardize, sigma));
        var map = Assert.IsType<ColumnStandardizer>(model.Standardizer);
        // The stored map is the fitted standardisation (mean 0 and scale 1 without it) with every scale times σ.
        var fitted = standardize ? ColumnStandardizer.Fit(data) : ColumnStandardizer.Identity(2);
        Assert.Equal(fitted.Mean.ToArray(), map.Mean.ToArray());
        for (int c = 0; c < 2; c++) Assert.Equal(fitted.Scale[c] * sigma, map.Scale[c]);
        Assert.Equal(fitted.LogJacobian - 2 * Math.Log(sigma), map.LogJacobian, 5);

        // The machine alone, with its unit-variance units and the same exact log Z, scores the mapped rows.
        var machine = RbmModel.FromParameters(RbmVisibleType.Gaussian, model.GetWeights(), model.GetVisibleBias(), model.GetHiddenBias(),
            new RbmOptions { VisibleType = RbmVisibleType.Gaussian });
        Assert.Null(machine.Standardizer);
        Assert.Equal(model.LogPartition, machine.LogPartition, 6);
        var mapped = map.Forward(data);
        var expected = machine.LogDensity(mapped);
        var actual = model.LogDensity(data);
        for (int r = 0; r < data.Rows; r++) Assert.Equal(expected[r] + map.LogJacobian, actual[r], 3);
    }

    [Fact]
    public void UnitWidthWithoutStandardisationKeepsTheRawColumns()
    {
        var data = Clusters(200, 2, 13);
        var model = RbmModel.Fit(data, Narrow(standardize: false, sigma: 1f));
        Assert.Null(model.Standardizer); // as before VisibleStdDev existed: no map at all
    }

    [Fact]
    public void SamplesMatchTheDensitysMomentsWithANarrowWidth()
    {
        var data = Clusters(400, 2, 14);
        // Narrow modes: Gibbs chains move between them slowly, so a long burn-in lets them reach the modes' weights.
        var options = Narrow();
        options.SamplingBurnIn = 5000;
        var model = RbmModel.Fit(data, options);
        var (_, mean, var) = GridMoments(model, data, 500);
        var draws = model.Sample(20_000, 5);
        for (int c = 0; c < 2; c++)
        {
            double m = 0, v = 0;
            for (int r = 0; r < draws.Rows; r++) m += draws[r, c] / (double)draws.Rows;
            for (int r = 0; r < draws.Rows; r++) v += (draws[r, c] - m) * (draws[r, c] - m) / draws.Rows;
            double sd = Math.Sqrt(var[c]);
            Assert.True(Math.Abs(m - mean[c]) < 0.05 * sd, $"column {c}: sample mean {m} vs density's {mean[c]} (sd {sd})");
            Assert.True(Math.Abs(v / var[c] - 1) < 0.1, $"column {c}: sample variance {v} vs density's {var[c]}");
        }
    }

    [Fact]
    public void ASavedModelKeepsTheWidthsEffect()
    {
        var data = Clusters(300, 2, 15);
        var narrow = RbmModel.Fit(data, Narrow());
        var unit = RbmModel.Fit(data, Narrow(sigma: 1f));
        var bytes = narrow.ToBytes();
        var loaded = Assert.IsType<RbmModel>(DensityModel.FromBytes(bytes));
        Assert.Equal(bytes, loaded.ToBytes());
        Assert.Equal(narrow.Standardizer!.Scale.ToArray(), loaded.Standardizer!.Scale.ToArray());
        Assert.Equal(narrow.LogDensity(data), loaded.LogDensity(data));
        Assert.Equal(narrow.Sample(50, 9).Values, loaded.Sample(50, 9).Values);
        Assert.NotEqual(unit.LogDensity(data), loaded.LogDensity(data));
        // A saved file of the same size as a unit-width model's: σ lives in the stored scales, not in a field of its own.
        Assert.Equal(unit.ToBytes().Length, bytes.Length);
    }

    [Theory]
    [InlineData(-0.5f, "-0.5")]
    [InlineData(float.NegativeInfinity, "-Infinity")]
    [InlineData(float.NaN, "NaN")]
    [InlineData(float.PositiveInfinity, "Infinity")]
    public void AWidthThatIsNeitherZeroNorPositiveAndFiniteIsRefused(float sigma, string shown)
    {
        var o = new RbmOptions { VisibleType = RbmVisibleType.Gaussian, VisibleStdDev = sigma };
        var e = Assert.Throws<ArgumentOutOfRangeException>(o.Validate);
        Assert.Equal(nameof(RbmOptions.VisibleStdDev), e.ParamName);
        Assert.StartsWith($"VisibleStdDev must be 0 (learned) or positive and finite (got ", e.Message);
        Assert.Contains(shown, e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => RbmModel.Fit(Clusters(50, 1, 1), o));
    }

    [Fact]
    public void AWidthThatOverflowsAColumnsScaleIsRefusedNamingTheColumn()
    {
        var data = new RowMatrix(new float[] { 1, 3e38f, 2, -3e38f, 1, 3e38f, 2, -3e38f }, 4, 2);
        var e = Assert.Throws<ArgumentException>(() => RbmModel.Fit(data, new RbmOptions { VisibleType = RbmVisibleType.Gaussian, HiddenUnits = 2, MaxEpochs = 1, VisibleStdDev = 10 }));
        Assert.Contains("VisibleStdDev = 10 times column 1's scale", e.Message);
    }

    [Fact]
    public void BinaryUnitsIgnoreTheWidth()
    {
        var rng = new RandomStream(4);
        var data = new RowMatrix(100, 6);
        for (int i = 0; i < data.Values.Length; i++) data.Values[i] = rng.NextDouble() < 0.3 ? 1 : 0;
        var a = RbmModel.Fit(data, new RbmOptions { HiddenUnits = 3, MaxEpochs = 2 });
        var b = RbmModel.Fit(data, new RbmOptions { HiddenUnits = 3, MaxEpochs = 2, VisibleStdDev = 0.3f });
        Assert.Null(b.Standardizer);
        Assert.Equal(a.ToBytes(), b.ToBytes());
    }
}
