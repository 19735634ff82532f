using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Xunit.Abstractions;

namespace Microsoft.ML.DeepDensity.Tests.DeepGmm;

/// <summary>
/// Layers left unset is automatic (session 37): [4, 4] from <see cref="DeepGmmOptions.Defaults.LayersRowsPerParameter"/>
/// training rows per parameter of one full-covariance Gaussian, below it the best of [1], [2, 2] and [4, 4] on the
/// held-out rows. A new user's wine (106 rows × 13) scored −31.99 nats/row held out with the old fixed [4, 4] and −20.6
/// with [2, 2].
/// </summary>
public class DeepGmmAutomaticLayersTests
{
    private readonly ITestOutputHelper _output;
    public DeepGmmAutomaticLayersTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public void Below_two_rows_per_parameter_of_one_full_Gaussian_three_architectures_are_tried()
    {
        Assert.Equal(2, DeepGmmOptions.Defaults.LayersRowsPerParameter);
        int[][] small = [[1], [2, 2], [4, 4]];
        // 13 columns: a full Gaussian has 13·16/2 = 104 parameters, so [4, 4] alone from 208 training rows.
        Assert.Equal(small, DeepGmmOptions.Defaults.LayerCandidates(207, 13));
        Assert.Equal([[4, 4]], DeepGmmOptions.Defaults.LayerCandidates(208, 13));
        // 63 columns (the digits, Fashion-MNIST 8×8): 2,079 parameters, [4, 4] alone from 4,158 rows.
        Assert.Equal(small, DeepGmmOptions.Defaults.LayerCandidates(4157, 63));
        Assert.Equal([[4, 4]], DeepGmmOptions.Defaults.LayerCandidates(4158, 63));
        Assert.Equal(new[] { 4, 4 }, DeepGmmOptions.Defaults.Layers);
        Assert.Equal(small, DeepGmmOptions.Defaults.SmallDataLayerCandidates);
    }

    [Fact]
    public void Layers_is_automatic_until_set_and_a_set_value_is_kept()
    {
        var o = new DeepGmmOptions();
        Assert.True(o.LayersAutomatic);
        Assert.Equal(new[] { 4, 4 }, o.Layers); // what it reads before it is set: the choice on enough rows
        Assert.True(o.Clone().LayersAutomatic);
        Assert.False(o.WithLayers([2, 2]).LayersAutomatic);
        Assert.True(o.LayersAutomatic); // the caller's options are not changed
        var set = new DeepGmmOptions { Layers = new[] { 4, 4 } };
        Assert.False(set.LayersAutomatic);
        Assert.False(set.Clone().LayersAutomatic);
    }

    [Fact]
    public void Without_held_out_rows_the_automatic_layers_are_four_by_four()
    {
        var (train, _) = Mixture(rows: 110, d: 12, seed: 3);
        Assert.Equal(new[] { 4, 4 }, DeepGmmModel.Fit(train, new DeepGmmOptions { ValidationFraction = 0, MaxIterations = 3 }).Layers);
    }

    [Fact]
    public void On_a_small_wide_table_the_automatic_layers_beat_four_by_four_held_out()
    {
        // 110 rows × 12 columns from two correlated Gaussians (a wine-sized table: 0.9 training rows a parameter).
        var (train, test) = Mixture(rows: 110, d: 12, seed: 3);
        var automatic = DeepGmmModel.Fit(train, new DeepGmmOptions());
        var fourByFour = DeepGmmModel.Fit(train, new DeepGmmOptions { Layers = new[] { 4, 4 } });
        double a = automatic.AverageLogDensity(test), f = fourByFour.AverageLogDensity(test);
        _output.WriteLine($"held out: automatic {string.Join(",", automatic.Layers)} {a:F2}, [4,4] {f:F2} nats/row");
        Assert.NotEqual(new[] { 4, 4 }, automatic.Layers);
        Assert.Equal(new[] { 4, 4 }, fourByFour.Layers);
        Assert.True(a > f + 2, $"automatic {a:F2} vs [4, 4] {f:F2} nats/row held out");
        // The automatic fit is the fit of its choice set explicitly, bit for bit.
        var same = DeepGmmModel.Fit(train, new DeepGmmOptions { Layers = automatic.Layers.ToArray() });
        var x = new float[test.Rows];
        var y = new float[test.Rows];
        automatic.LogDensity(test.AsSpan(), x);
        same.LogDensity(test.AsSpan(), y);
        for (int i = 0; i < x.Length; i++) Assert.Equal(BitConverter.SingleToInt32Bits(y[i]), BitConverter.SingleToInt32Bits(x[i]));
    }

    [Fact]
    public void On_a_wide_table_the_automatic_layers_are_one_Gaussian_and_beat_four_by_four_held_out()
    {
        // 150 rows × 40 i.i.d. N(0, 1) columns: 135 training rows, 0.16 a parameter of a full Gaussian (860).
        var r = new Random(9);
        RowMatrix Draw(int n)
        {
            var m = new RowMatrix(n, 40);
            for (int i = 0; i < n; i++) for (int j = 0; j < 40; j++) m[i, j] = (float)(Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble()));
            return m;
        }
        var (train, test) = (Draw(150), Draw(2000));
        var automatic = DeepGmmModel.Fit(train, new DeepGmmOptions());
        var fourByFour = DeepGmmModel.Fit(train, new DeepGmmOptions { Layers = new[] { 4, 4 } });
        double a = automatic.AverageLogDensity(test), f = fourByFour.AverageLogDensity(test);
        _output.WriteLine($"held out: automatic {string.Join(",", automatic.Layers)} {a:F2}, [4,4] {f:F2} nats/row (truth {-20 * Math.Log(2 * Math.PI * Math.E):F2})");
        Assert.Equal(new[] { 1 }, automatic.Layers);
        Assert.True(a > f + 2, $"automatic {a:F2} vs [4, 4] {f:F2} nats/row held out");
    }

    [Fact]
    public void With_enough_rows_the_automatic_layers_are_four_by_four_bit_for_bit()
    {
        // 600 rows × 4 columns: 540 training rows, 38.6 a parameter of a full Gaussian (14): [4, 4] alone.
        var (train, test) = Mixture(rows: 600, d: 4, seed: 5);
        var automatic = DeepGmmModel.Fit(train, new DeepGmmOptions { MaxIterations = 15 });
        var fourByFour = DeepGmmModel.Fit(train, new DeepGmmOptions { Layers = new[] { 4, 4 }, MaxIterations = 15 });
        Assert.Equal(new[] { 4, 4 }, automatic.Layers);
        var x = new float[test.Rows];
        var y = new float[test.Rows];
        automatic.LogDensity(test.AsSpan(), x);
        fourByFour.LogDensity(test.AsSpan(), y);
        for (int i = 0; i < x.Length; i++) Assert.Equal(BitConverter.SingleToInt32Bits(y[i]), BitConverter.SingleToInt32Bits(x[i]));
    }

    /// <summary>Two Gaussians with random correlations (covariance A·Aᵀ/D + 0.1 I, means 2 apart per column); the
    /// training rows and 2,000 test rows.</summary>
    private static (RowMatrix Train, RowMatrix Test) Mixture(int rows, int d, int seed)
    {
        var r = new Random(seed);
        double Normal() => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());
        var chol = new double[2][,];
        for (int c = 0; c < 2; c++)
        {
            var a = new double[d, d];
            for (int i = 0; i < d; i++) for (int j = 0; j < d; j++) a[i, j] = Normal();
            var l = new double[d, d];
            for (int i = 0; i < d; i++)
                for (int j = 0; j <= i; j++)
                {
                    double s = 0.1 * (i == j ? 1 : 0);
                    for (int t = 0; t < d; t++) s += a[i, t] * a[j, t] / d;
                    for (int t = 0; t < j; t++) s -= l[i, t] * l[j, t];
                    l[i, j] = i == j ? Math.Sqrt(s) : s / l[j, j];
                }
            chol[c] = l;
        }
        RowMatrix Draw(int n)
        {
            var m = new RowMatrix(n, d);
            for (int row = 0; row < n; row++)
            {
                int c = r.Next(2);
                var z = Enumerable.Range(0, d).Select(_ => Normal()).ToArray();
                for (int i = 0; i < d; i++)
                {
                    double s = c * 2.0;
                    for (int j = 0; j <= i; j++) s += chol[c][i, j] * z[j];
                    m[row, i] = (float)s;
                }
            }
            return m;
        }
        return (Draw(rows), Draw(2000));
    }
}
