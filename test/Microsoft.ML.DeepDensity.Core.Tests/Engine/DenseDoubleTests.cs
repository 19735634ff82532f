using Microsoft.ML.DeepDensity.Numerics;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

/// <summary>The small float64 kernels behind the Deep GMM's M-step: log-determinant and triangular inverse.</summary>
public class DenseDoubleTests
{
    private static double[] RandomMatrix(int n, int seed, double diagonal = 0)
    {
        var rng = new Random(seed);
        var a = new double[n * n];
        for (int i = 0; i < a.Length; i++) a[i] = rng.NextDouble() * 2 - 1;
        for (int i = 0; i < n; i++) a[i * n + i] += diagonal;
        return a;
    }

    /// <summary>log|det| by cofactor expansion (exact enough for n ≤ 6).</summary>
    private static double Determinant(double[] a, int n)
    {
        if (n == 1) return a[0];
        double det = 0;
        for (int c = 0; c < n; c++)
        {
            var minor = new double[(n - 1) * (n - 1)];
            for (int r = 1; r < n; r++)
                for (int k = 0, j = 0; k < n; k++)
                    if (k != c) minor[(r - 1) * (n - 1) + j++] = a[r * n + k];
            det += (c % 2 == 0 ? 1 : -1) * a[c] * Determinant(minor, n - 1);
        }
        return det;
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(5, 3)]
    [InlineData(6, 4)]
    public void LogAbsDetMatchesCofactorExpansion(int n, int seed)
    {
        var a = RandomMatrix(n, seed);
        Assert.Equal(Math.Log(Math.Abs(Determinant(a, n))), DenseDouble.LogAbsDet(a, n), 10);
    }

    [Theory]
    [InlineData(17, 5)]
    [InlineData(63, 6)]
    [InlineData(100, 7)]
    public void LogAbsDetMatchesTheGaussJordanInverse(int n, int seed)
    {
        var a = RandomMatrix(n, seed);
        double expected = DenseDouble.InvertLogAbsDet(a, new double[n * n], n);
        Assert.Equal(expected, DenseDouble.LogAbsDet(a, n), 8);
    }

    [Fact]
    public void LogAbsDetPivotsAndDetectsSingularity()
    {
        // A zero leading entry needs a row swap.
        double[] swap = { 0, 2, 0, 3, 1, 0, 0, 0, 5 }; // det = −(2·3·5)
        Assert.Equal(Math.Log(30), DenseDouble.LogAbsDet(swap, 3), 12);
        double[] singular = { 1, 2, 3, 2, 4, 6, 1, 0, 1 };
        Assert.Equal(double.NegativeInfinity, DenseDouble.LogAbsDet(singular, 3));
        double[] nan = { 1, double.NaN, 0, 1 };
        Assert.Equal(double.NegativeInfinity, DenseDouble.LogAbsDet(nan, 2));
        var copy = (double[])swap.Clone();
        DenseDouble.LogAbsDet(swap, 3);
        Assert.Equal(copy, swap); // the input is not modified
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 2)]
    [InlineData(63, 3)]
    public void InvertLowerTriangularGivesTheInverse(int n, int seed)
    {
        var a = RandomMatrix(n, seed, diagonal: 3);
        var l = new double[n * n];
        for (int r = 0; r < n; r++) for (int c = 0; c <= r; c++) l[r * n + c] = a[r * n + c];
        var garbageAbove = (double[])l.Clone();
        for (int r = 0; r < n; r++) for (int c = r + 1; c < n; c++) garbageAbove[r * n + c] = 99; // must not be read
        var inv = new double[n * n];
        for (int i = 0; i < inv.Length; i++) inv[i] = double.NaN; // must be overwritten, upper triangle included
        Assert.True(DenseDouble.InvertLowerTriangular(garbageAbove, inv, n));
        var product = new double[n * n];
        DenseDouble.Multiply(l, inv, product, n, n, n);
        for (int r = 0; r < n; r++)
            for (int c = 0; c < n; c++)
            {
                Assert.Equal(r == c ? 1.0 : 0.0, product[r * n + c], 10);
                if (c > r) Assert.Equal(0.0, inv[r * n + c]);
            }
    }

    [Fact]
    public void InvertLowerTriangularRefusesAZeroDiagonal()
    {
        double[] l = { 1, 0, 2, 0 };
        Assert.False(DenseDouble.InvertLowerTriangular(l, new double[4], 2));
    }
}
