using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Randomness;
using static Microsoft.ML.DeepDensity.Tests.DeepGmm.DeepGmmTestModels;

namespace Microsoft.ML.DeepDensity.Tests.DeepGmm;

public class DeepGmmDensityTests
{
    private static readonly ColumnStandardizer SomeStandardizer = new(new[] { 0.5f, -1f, 2f, 0f }, new[] { 2f, 0.5f, 1.5f, 3f });

    [Fact]
    public void OneLayerModelIsTheFullCovarianceGmmComputedDirectly()
    {
        var net = RandomNetwork(4, new[] { 5 }, seed: 3);
        var model = Model(net, SomeStandardizer);
        var mixture = ReferenceMixture(net, SomeStandardizer);
        var x = new float[40 * 4];
        new RandomStream(9).FillGaussian(x, 0f, 3f);
        var ld = new float[40];
        model.LogDensity(x, ld);
        for (int r = 0; r < 40; r++)
        {
            double expected = ReferenceLogDensity(mixture, x.AsSpan(r * 4, 4));
            Assert.True(Math.Abs(ld[r] - expected) < 2e-4 * Math.Max(1, Math.Abs(expected)), $"row {r}: {ld[r]} vs {expected}");
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DeepModelIsTheMixtureOfItsComposedPaths(bool factorized)
    {
        // 3 layers, 600 rows: several scoring blocks in parallel.
        var net = RandomNetwork(4, new[] { 2, 3, 2 }, seed: 5, factorized);
        var model = Model(net, SomeStandardizer);
        var mixture = ReferenceMixture(net, SomeStandardizer);
        int n = 600;
        var x = model.Sample(n, 4).Values;
        var ld = new float[n];
        model.LogDensity(x, ld);
        for (int r = 0; r < n; r += 7)
        {
            double expected = ReferenceLogDensity(mixture, x.AsSpan(r * 4, 4));
            Assert.True(Math.Abs(ld[r] - expected) < 2e-4 * Math.Max(1, Math.Abs(expected)), $"row {r}: {ld[r]} vs {expected}");
        }
        // The public flat-GMM view agrees with the independent composition.
        var (w, means, covs) = model.ToGaussianMixture();
        for (int p = 0; p < model.PathCount; p++)
        {
            Assert.Equal(mixture[p].Weight, w[p], 5);
            for (int a = 0; a < 4; a++)
            {
                Assert.Equal(mixture[p].Mean[a], means[p][a], 3);
                for (int c = 0; c < 4; c++) Assert.Equal(mixture[p].Cov[a, c], covs[p][a * 4 + c], 3);
            }
        }
    }

    [Fact]
    public void DensityIntegratesToOneIn2D()
    {
        var net = RandomNetwork(2, new[] { 2, 3 }, seed: 11, noise: 0.6f, biasScale: 1f);
        var model = Model(net, new ColumnStandardizer(new[] { 0.3f, -0.2f }, new[] { 0.7f, 1.2f }));
        var (_, means, covs) = model.ToGaussianMixture();
        double lo0 = double.MaxValue, hi0 = double.MinValue, lo1 = double.MaxValue, hi1 = double.MinValue;
        for (int p = 0; p < model.PathCount; p++)
        {
            double s0 = Math.Sqrt(covs[p][0]), s1 = Math.Sqrt(covs[p][3]);
            lo0 = Math.Min(lo0, means[p][0] - 9 * s0); hi0 = Math.Max(hi0, means[p][0] + 9 * s0);
            lo1 = Math.Min(lo1, means[p][1] - 9 * s1); hi1 = Math.Max(hi1, means[p][1] + 9 * s1);
        }
        int g = 600;
        double h0 = (hi0 - lo0) / g, h1 = (hi1 - lo1) / g;
        var grid = new float[g * g * 2];
        for (int i = 0; i < g; i++)
            for (int j = 0; j < g; j++)
            {
                grid[(i * g + j) * 2] = (float)(lo0 + (i + 0.5) * h0);
                grid[(i * g + j) * 2 + 1] = (float)(lo1 + (j + 0.5) * h1);
            }
        var ld = new float[g * g];
        model.LogDensity(grid, ld);
        double mass = 0;
        foreach (var v in ld) mass += Math.Exp(v);
        mass *= h0 * h1;
        Assert.InRange(mass, 0.998, 1.002);
    }

    [Fact]
    public void SampleMomentsMatchTheMixtureMoments()
    {
        var net = RandomNetwork(3, new[] { 2, 2 }, seed: 21);
        var s = new ColumnStandardizer(new[] { 1f, 0f, -1f }, new[] { 0.5f, 2f, 1f });
        var model = Model(net, s);
        var mixture = ReferenceMixture(net, s);
        var mean = new double[3]; var second = new double[9];
        foreach (var (w, mu, cov) in mixture)
            for (int a = 0; a < 3; a++)
            {
                mean[a] += w * mu[a];
                for (int c = 0; c < 3; c++) second[a * 3 + c] += w * (cov[a, c] + mu[a] * mu[c]);
            }
        int n = 200_000;
        var x = model.Sample(n, 77);
        var sm = new double[3]; var ss = new double[9];
        for (int r = 0; r < n; r++)
        {
            var row = x.Row(r);
            for (int a = 0; a < 3; a++)
            {
                sm[a] += row[a];
                for (int c = 0; c < 3; c++) ss[a * 3 + c] += (double)row[a] * row[c];
            }
        }
        for (int a = 0; a < 3; a++)
        {
            double variance = second[a * 4] - mean[a] * mean[a];
            double se = Math.Sqrt(variance / n);
            Assert.True(Math.Abs(sm[a] / n - mean[a]) < 5 * se, $"mean[{a}] {sm[a] / n} vs {mean[a]} (se {se})");
            for (int c = 0; c < 3; c++)
            {
                double covExpected = second[a * 3 + c] - mean[a] * mean[c];
                double covSample = ss[a * 3 + c] / n - sm[a] / n * sm[c] / n;
                double tol = 0.03 * Math.Sqrt((second[a * 4] - mean[a] * mean[a]) * (second[c * 4] - mean[c] * mean[c]));
                Assert.True(Math.Abs(covSample - covExpected) < tol, $"cov[{a},{c}] {covSample} vs {covExpected}");
            }
        }
        // Pure function of the seed.
        Assert.Equal(model.Sample(300, 5).Values, model.Sample(300, 5).Values);
        Assert.NotEqual(model.Sample(300, 5).Values, model.Sample(300, 6).Values);
    }

    [Fact]
    public void SaveLoadGivesBitIdenticalLogDensities()
    {
        foreach (bool factorized in new[] { false, true })
        {
            var model = Model(RandomNetwork(4, new[] { 3, 2 }, seed: 8, factorized), SomeStandardizer);
            var x = model.Sample(500, 1).Values;
            var before = new float[500];
            model.LogDensity(x, before);
            var loaded = DensityModel.FromBytes(model.ToBytes());
            var typed = Assert.IsType<DeepGmmModel>(loaded);
            Assert.Equal(model.Layers, typed.Layers);
            Assert.Equal(model.PathProbabilities, typed.PathProbabilities);
            var after = new float[500];
            loaded.LogDensity(x, after);
            Assert.Equal(before, after);
            Assert.Equal(model.Sample(50, 3).Values, loaded.Sample(50, 3).Values);
        }
    }

    [Fact]
    public void CorruptOrTruncatedFilesThrowInvalidModelFileException()
    {
        var bytes = Model(RandomNetwork(3, new[] { 2, 2 }, seed: 8), new ColumnStandardizer(new float[3], new[] { 1f, 1f, 1f })).ToBytes();
        for (int pos = 8; pos < bytes.Length; pos += Math.Max(1, bytes.Length / 25))
        {
            var corrupt = (byte[])bytes.Clone();
            corrupt[pos] ^= 0x5A;
            Assert.Throws<InvalidModelFileException>(() => DensityModel.FromBytes(corrupt));
        }
        Assert.Throws<InvalidModelFileException>(() => DensityModel.FromBytes(bytes.AsSpan(0, bytes.Length - 7)));
    }

    [Fact]
    public void BadInputIsRejectedWithDataValidationException()
    {
        var model = Model(RandomNetwork(3, new[] { 2 }, seed: 1));
        var ld = new float[2];
        Assert.Throws<DataValidationException>(() => model.LogDensity(new float[] { 0, 1, float.NaN, 0, 0, 0 }, ld));
        Assert.Throws<DataValidationException>(() => model.LogDensity(new float[] { 0, 1, 2, 0, float.PositiveInfinity, 0 }, ld));
        Assert.Throws<DataValidationException>(() => model.LogDensity(new float[] { 0, 1, 2, 3 }, ld));
        Assert.Throws<DataValidationException>(() => model.LogDensity(new RowMatrix(4, 2)));

        var good = new RowMatrix(50, 3);
        new RandomStream(1).FillGaussian(good.Values);
        var options = new DeepGmmOptions { Layers = new[] { 2 }, MaxIterations = 2 };
        Assert.Throws<DataValidationException>(() => DeepGmmModel.Fit(new RowMatrix(0, 3), options));
        var nan = new RowMatrix(50, 3); good.Values.CopyTo(nan.Values, 0); nan[7, 2] = float.NaN;
        var ex = Assert.Throws<DataValidationException>(() => DeepGmmModel.Fit(nan, options));
        Assert.Equal(7, ex.Row); Assert.Equal(2, ex.Column);
        var inf = new RowMatrix(50, 3); good.Values.CopyTo(inf.Values, 0); inf[3, 0] = float.NegativeInfinity;
        Assert.Throws<DataValidationException>(() => DeepGmmModel.Fit(inf, options));
        Assert.Throws<DataValidationException>(() => DeepGmmModel.Fit(good, options, validation: new RowMatrix(10, 4)));
    }

    [Fact]
    public void ValidateNamesTheBadSetting()
    {
        void Bad(string name, Action<DeepGmmOptions> set)
        {
            var o = new DeepGmmOptions();
            set(o);
            var ex = Assert.Throws<ArgumentOutOfRangeException>(o.Validate);
            Assert.Contains(name, ex.Message);
        }
        Bad("Layers", o => o.Layers = Array.Empty<int>());
        Bad("Layers[1]", o => o.Layers = new[] { 3, 0 });
        Bad("Layers", o => o.Layers = new[] { 64, 64, 64, 64 });
        Bad("MaxIterations", o => o.MaxIterations = 0);
        Bad("LbfgsIterations", o => o.LbfgsIterations = 0);
        Bad("CovarianceRidge", o => o.CovarianceRidge = 0);
        Bad("ValidationFraction", o => o.ValidationFraction = 1);
        Bad("EStep", o => { o.Em = DeepGmmEmKind.Soft; o.EStep = DeepGmmEStep.Heuristic; });
        Bad("PathPseudoCount", o => o.PathPseudoCount = -1);
        Bad("LowerLayerShrinkage", o => o.LowerLayerShrinkage = -1);
        Bad("LowerLayerShrinkage", o => o.LowerLayerShrinkage = double.NaN);
        Bad("LowerLayerShrinkage", o => o.LowerLayerShrinkage = double.PositiveInfinity);
        new DeepGmmOptions().Validate();
    }
}
