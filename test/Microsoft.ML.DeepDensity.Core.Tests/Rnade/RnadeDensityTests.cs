using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Tests.Rnade;

/// <summary>Exactness of RNADE's density and sampler: normalisation by quadrature, sample moments, persistence.</summary>
public class RnadeDensityTests
{
    /// <summary>A random (untrained) model with a non-trivial standardiser and order, so the Jacobian and permutation are exercised.</summary>
    internal static RnadeModel RandomModel(int d, Activation act = Activation.Relu, ulong seed = 3, int h = 6, int k = 3)
    {
        var net = RnadeGradientTests.RandomNetwork(d, h, k, act, seed);
        var mean = Enumerable.Range(0, d).Select(i => 0.3f * i - 0.2f).ToArray();
        var scale = Enumerable.Range(0, d).Select(i => 0.7f + 0.4f * i).ToArray();
        var order = Enumerable.Range(0, d).Reverse().ToArray();
        return new RnadeModel(net, order, new ColumnStandardizer(mean, scale));
    }

    /// <summary>A fitted model's standardizer is part of the model: the arrays it was built from are copied (writing
    /// them afterwards changed the model's densities, with a stale log-Jacobian), and it exposes read-only views.</summary>
    [Fact]
    public void TheStandardizerCannotBeChangedFromOutsideTheModel()
    {
        var mean = new float[] { 0.5f, -1f };
        var scale = new float[] { 2f, 0.25f };
        var model = new RnadeModel(RnadeGradientTests.RandomNetwork(2, 4, 3, Activation.Relu, 7), new[] { 0, 1 }, new ColumnStandardizer(mean, scale));
        var row = new float[] { 0.3f, -0.7f };
        float before = model.LogDensity(new RowMatrix(row, 1, 2))[0];
        mean[0] = 100f; scale[1] = 1000f;
        Assert.Equal(before, model.LogDensity(new RowMatrix(row, 1, 2))[0]);
        Assert.Equal(0.5f, model.Standardizer.Mean[0]);
        Assert.Equal(0.25f, model.Standardizer.Scale[1]);
        Assert.Equal(-(Math.Log(2) + Math.Log(0.25)), model.Standardizer.LogJacobian, 12);
    }

    [Theory]
    [InlineData(Activation.Relu)]
    [InlineData(Activation.Sigmoid)]
    public void OneDimensionalDensityIntegratesToOne(Activation act)
    {
        var model = RandomModel(1, act);
        const int n = 200_001;
        float lo = -30, hi = 30, step = (hi - lo) / (n - 1);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = lo + i * step;
        var ld = new float[n];
        model.LogDensity(x, ld);
        double integral = Trapezoid(ld, step);
        Assert.InRange(integral, 0.999, 1.001);
    }

    [Theory]
    [InlineData(Activation.Relu)]
    [InlineData(Activation.Sigmoid)]
    public void TwoDimensionalDensityIntegratesToOne(Activation act)
    {
        var model = RandomModel(2, act);
        var (integral, _, _) = Quadrature2D(model, 801, -25, 25);
        Assert.InRange(integral, 0.995, 1.005);
    }

    [Fact]
    public void SampleMomentsMatchTheDensity()
    {
        AssertSampleMomentsMatchQuadrature(RandomModel(2, Activation.Relu, seed: 8), 200_000, 0.03);
    }

    /// <summary>Sample means within 5 standard errors and variances within <paramref name="varianceTolerance"/> (relative)
    /// of the 2-D model's quadrature moments.</summary>
    internal static void AssertSampleMomentsMatchQuadrature(DensityModel model, int n, double varianceTolerance)
    {
        var (_, mean, second) = Quadrature2D(model, 801, -25, 25);
        var s = model.Sample(n, seed: 5);
        for (int c = 0; c < 2; c++)
        {
            double m = 0, m2 = 0;
            for (int r = 0; r < n; r++) { double v = s[r, c]; m += v; m2 += v * v; }
            m /= n; m2 /= n;
            double variance = second[c] - mean[c] * mean[c];
            double se = Math.Sqrt(variance / n);
            Assert.True(Math.Abs(m - mean[c]) < 5 * se, $"column {c}: sample mean {m:F4}, density mean {mean[c]:F4} (se {se:F4})");
            Assert.True(Math.Abs(m2 - mean[c] * mean[c] - variance) < varianceTolerance * variance + 1e-3,
                $"column {c}: sample variance {m2 - m * m:F4}, density variance {variance:F4}");
        }
    }

    [Fact]
    public void SamplingIsReproducibleAndSeedDependent()
    {
        var model = RandomModel(3);
        Assert.Equal(model.Sample(700, 11).Values, model.Sample(700, 11).Values);
        Assert.NotEqual(model.Sample(700, 11).Values, model.Sample(700, 12).Values);
        // The first rows do not depend on how many are drawn (fixed-size blocks with forked streams).
        Assert.Equal(model.Sample(300, 11).Values, model.Sample(700, 11).Values.AsSpan(0, 900).ToArray());
    }

    [Fact]
    public void SaveLoadGivesBitIdenticalLogDensitiesAndSamples()
    {
        var model = RandomModel(4, Activation.Sigmoid);
        var x = new RowMatrix(500, 4);
        new RandomStream(3).FillGaussian(x.Values);
        var bytes = model.ToBytes();
        var loaded = Assert.IsType<RnadeModel>(DensityModel.FromBytes(bytes));
        Assert.Equal(model.LogDensity(x), loaded.LogDensity(x));
        Assert.Equal(model.Sample(100, 4).Values, loaded.Sample(100, 4).Values);
        Assert.Equal(bytes, loaded.ToBytes());
        using var ms = new MemoryStream(bytes);
        Assert.IsType<RnadeModel>(DensityModel.Load<RnadeModel>(ms));
        // Another kind is named with the one the file holds.
        var wrongKind = Assert.Throws<Persistence.InvalidModelFileException>(() => DensityModel.Load<Models.Iwae.IwaeModel>(new MemoryStream(bytes)));
        Assert.Equal("The file holds a model of kind Rnade, not the IwaeModel asked for; load it with DensityModel.Load(stream).", wrongKind.Message);
    }

    [Fact]
    public void ScoresDoNotDependOnBatchComposition()
    {
        var model = RandomModel(5);
        var x = new RowMatrix(600, 5);
        new RandomStream(9).FillGaussian(x.Values);
        var all = model.LogDensity(x);
        for (int r = 0; r < 600; r += 97)
        {
            var one = new float[1];
            model.LogDensity(x.Row(r), one);
            Assert.Equal(all[r], one[0]);
        }
    }

    private static double Trapezoid(float[] logDensity, double step)
    {
        double s = 0;
        for (int i = 0; i < logDensity.Length; i++)
            s += Math.Exp(logDensity[i]) * (i == 0 || i == logDensity.Length - 1 ? 0.5 : 1);
        return s * step;
    }

    /// <summary>∫∫ p, E[x], E[x²] by the trapezoid rule on an n×n grid over [lo, hi]².</summary>
    internal static (double Integral, double[] Mean, double[] SecondMoment) Quadrature2D(DensityModel model, int n, float lo, float hi)
    {
        double step = (hi - lo) / (double)(n - 1);
        var grid = new float[n * n * 2];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                grid[(i * n + j) * 2] = (float)(lo + i * step);
                grid[(i * n + j) * 2 + 1] = (float)(lo + j * step);
            }
        var ld = new float[n * n];
        model.LogDensity(grid, ld);
        double total = 0;
        var mean = new double[2];
        var second = new double[2];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double w = (i == 0 || i == n - 1 ? 0.5 : 1) * (j == 0 || j == n - 1 ? 0.5 : 1) * step * step;
                double p = Math.Exp(ld[i * n + j]) * w;
                double x0 = grid[(i * n + j) * 2], x1 = grid[(i * n + j) * 2 + 1];
                total += p; mean[0] += p * x0; mean[1] += p * x1; second[0] += p * x0 * x0; second[1] += p * x1 * x1;
            }
        return (total, mean, second);
    }
}
