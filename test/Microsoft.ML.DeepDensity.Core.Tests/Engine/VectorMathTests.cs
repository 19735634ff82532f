using System.Runtime.Intrinsics;
using Microsoft.ML.DeepDensity.Numerics;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

public class VectorMathTests
{
    [Fact]
    public void ExpMatchesDoublePrecisionAcrossTheRange()
    {
        if (!VectorMath.IsSupported) return;
        double worst = 0;
        for (float x = -87f; x <= 88.5f; x += 0.01173f)
        {
            var v = VectorMath.Exp(Vector256.Create(x, -x * 0.5f, x * 0.01f, 0f, x * 0.1f, -1e-3f, 1e-3f, x * 0.7f));
            for (int lane = 0; lane < 8; lane++)
            {
                double arg = lane switch { 0 => x, 1 => -x * 0.5f, 2 => x * 0.01f, 3 => 0f, 4 => x * 0.1f, 5 => -1e-3f, 6 => 1e-3f, _ => x * 0.7f };
                double expected = Math.Exp((float)arg);
                if (expected < 1.2e-38) continue; // subnormal results are not promised
                worst = Math.Max(worst, Math.Abs(v.GetElement(lane) - expected) / expected);
            }
        }
        Assert.True(worst < 5e-7, $"worst relative error {worst:E2}");
        Assert.Equal(1f, VectorMath.Exp(Vector256<float>.Zero).GetElement(0));
        Assert.True(VectorMath.Exp(Vector256.Create(-1000f)).GetElement(0) < 1e-37f);
        Assert.True(float.IsNaN(VectorMath.Exp(Vector256.Create(float.NaN)).GetElement(0)));
    }

    [Fact]
    public void LogMatchesDoublePrecisionForPositiveInputs()
    {
        if (!VectorMath.IsSupported) return;
        double worst = 0;
        for (double x = 1e-30; x < 1e30; x *= 1.0137)
        {
            float f = (float)x;
            float got = VectorMath.Log(Vector256.Create(f)).GetElement(0);
            double expected = Math.Log(f);
            worst = Math.Max(worst, Math.Abs(got - expected) / Math.Max(1, Math.Abs(expected)));
        }
        Assert.True(worst < 3e-7, $"worst error {worst:E2}");
        Assert.Equal(0f, VectorMath.Log(Vector256.Create(1f)).GetElement(0));
        Assert.True(float.IsNaN(VectorMath.Log(Vector256.Create(float.NaN)).GetElement(0)));
        Assert.False(float.IsFinite(VectorMath.Log(Vector256.Create(float.PositiveInfinity)).GetElement(0)));
    }

    /// <summary>Every column of a row times a matrix is one fused multiply-add chain over the rows, in order, from the
    /// accumulator's value — whole 64-column passes, and the masked tail of every width below 64 — and nothing past
    /// the accumulator's width is written (the matrix ends exactly at the last row's last column).</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(63)]
    public void RowTimesMatrixIsOneFusedChainPerColumn(int rows)
    {
        if (!VectorMath.IsSupported) return;
        var random = new Randomness.RandomStream(9);
        foreach (int width in new[] { 1, 3, 8, 13, 31, 32, 33, 40, 57, 63, 64, 65, 100, 128, 191, 252 })
        {
            int stride = width + 5;
            var v = new float[rows]; var m = new float[(rows - 1) * stride + width];
            random.FillGaussian(v); random.FillGaussian(m);
            var acc = new float[width + 3];
            random.FillGaussian(acc);
            var expected = (float[])acc.Clone();
            for (int c = 0; c < width; c++)
                for (int j = 0; j < rows; j++) expected[c] = MathF.FusedMultiplyAdd(m[j * stride + c], v[j], expected[c]);
            VectorMath.AddRowTimesMatrix(v, m, stride, acc.AsSpan(0, width));
            Assert.Equal(expected, acc);
        }
    }

    /// <summary>Several rows times one matrix: each entry the GEMM's bits for that row alone, for every count of
    /// rows modulo the kernel's four (repeated rows, a row left alone) and widths with masked columns; nothing outside
    /// the rows' widths is written.</summary>
    [Theory]
    [InlineData(1, 5)]
    [InlineData(2, 63)]
    [InlineData(3, 17)]
    [InlineData(4, 8)]
    [InlineData(5, 63)]
    [InlineData(7, 1)]
    [InlineData(9, 30)]
    [InlineData(1, 300)] // two k-blocks of the GEMM
    [InlineData(6, 600)] // three
    [InlineData(1, 784)] // a lone row over four k-blocks (an RBM on 784 pixels, one row per call)
    [InlineData(5, 520)] // four rows, then one alone over three k-blocks
    public void RowsTimesMatrixEqualsEachRowAlone(int rows, int k)
    {
        if (!VectorMath.IsSupported) return;
        var random = new Randomness.RandomStream(11);
        foreach (int width in new[] { 1, 8, 13, 32, 33, 63, 64, 100, 252, 2100 })
        {
            int stride = width + 3, ldv = k + 2, ldo = width + 4;
            var v = new float[(rows - 1) * ldv + k]; var m = new float[(k - 1) * stride + width];
            random.FillGaussian(v); random.FillGaussian(m);
            var output = new float[(rows - 1) * ldo + width + 5];
            output.AsSpan().Fill(7f);
            VectorMath.RowsTimesMatrix(v, rows, ldv, k, m, stride, width, output, ldo);
            for (int r = 0; r < rows; r++)
            {
                var alone = new float[width];
                Gemm.Multiply(false, false, 1, width, k, 1f, v.AsSpan(r * ldv, k), k, m, stride, 0f, alone, width, allowParallel: false);
                Assert.Equal(alone, output.AsSpan(r * ldo, width).ToArray());
                if (r < rows - 1) Assert.All(output.AsSpan(r * ldo + width, ldo - width).ToArray(), e => Assert.Equal(7f, e));
            }
            Assert.All(output.AsSpan((rows - 1) * ldo + width).ToArray(), e => Assert.Equal(7f, e));
        }
    }

    public static TheoryData<int> SoftplusPaths => new() { (int)SimdLevel.Portable, (int)SimdLevel.Avx2, (int)SimdLevel.Avx512 };

    /// <summary>Σ softplus(scale·(x + bias)) in float64, from the rounded float z the kernel sees.</summary>
    private static double ReferenceSumSoftplus(float[] x, float[]? bias, float scale)
    {
        double sum = 0;
        for (int i = 0; i < x.Length; i++)
        {
            float z = x[i];
            if (bias is not null) z += bias[i];
            if (scale != 1f) z *= scale;
            sum += Math.Max(z, 0) + Math.Log(1 + Math.Exp(-Math.Abs((double)z)));
        }
        return sum;
    }

    [Theory]
    [MemberData(nameof(SoftplusPaths))]
    public void SumSoftplusMatchesFloat64OnEveryPath(int path)
    {
        var rng = new Randomness.RandomStream(81);
        using var _ = KernelPath.Force((SimdLevel)path);
        // Lengths around the 8- and 16-lane boundaries, and past 64 factors per lane (several logs per lane).
        foreach (int d in new[] { 0, 1, 7, 8, 15, 16, 17, 33, 500, 784, 1100, 3000 })
            foreach (bool biased in new[] { false, true })
                foreach (float scale in new[] { 1f, 0.37f })
                {
                    var x = new float[d];
                    var b = biased ? new float[d] : null;
                    for (int i = 0; i < d; i++)
                    {
                        // Mostly moderate pre-activations, some saturated far beyond e^−87 either way.
                        x[i] = i % 11 == 0 ? (float)(rng.NextDouble() * 400 - 200) : (float)(rng.NextGaussian() * 6);
                        if (b is not null) b[i] = (float)rng.NextGaussian();
                    }
                    double expected = ReferenceSumSoftplus(x, b, scale);
                    float got = VectorMath.SumSoftplus(x, b, scale);
                    // The product of up to 64 factors per log: ~4e-6 absolute, plus float summation of the terms.
                    double tolerance = 1e-5 * Math.Max(1, d / 64.0) + 2e-7 * expected;
                    Assert.True(Math.Abs(got - expected) <= tolerance, $"d={d} bias={biased} scale={scale}: {got} vs {expected:R}");
                }
        Assert.True(float.IsNaN(VectorMath.SumSoftplus(new[] { 1f, float.NaN, 2f, 0f, 1f, 1f, 1f, 1f, 1f, 1f, 1f, 1f, 1f, 1f, 1f, 1f, 1f }, default)));
        Assert.True(float.IsNaN(VectorMath.SumSoftplus(new[] { float.NaN }, default)));
        Assert.Equal(float.PositiveInfinity, VectorMath.SumSoftplus(Enumerable.Repeat(1f, 40).Append(float.PositiveInfinity).ToArray(), default));
        Assert.Equal(0f, VectorMath.SumSoftplus(Enumerable.Repeat(float.NegativeInfinity, 40).ToArray(), default));
        Assert.Throws<ArgumentException>(() => VectorMath.SumSoftplus(new float[5], new float[4]));
    }

    [Fact]
    public void SigmoidGivesTheSameBitsOnEveryPathAndMatchesFloat64()
    {
        var rng = new Randomness.RandomStream(82);
        int d = 1000 + 13;
        var x = new float[d];
        var b = new float[d];
        for (int i = 0; i < d; i++)
        {
            x[i] = i % 7 == 0 ? (float)(rng.NextDouble() * 300 - 150) : (float)(rng.NextGaussian() * 8);
            b[i] = (float)rng.NextGaussian();
        }
        x[0] = 0f; x[1] = -0f; x[2] = 87.3f; x[3] = -87.3f; x[4] = -87.4f; x[5] = 88f; x[6] = float.PositiveInfinity; x[7] = float.NegativeInfinity;
        foreach (var (bias, scale) in new[] { ((float[]?)null, 1f), (b, 1f), (b, 0.61f), (null, 2.5f) })
        {
            float[]? reference = null;
            foreach (var path in new[] { SimdLevel.Portable, SimdLevel.Avx2, SimdLevel.Avx512 })
            {
                var y = new float[d];
                using (KernelPath.Force(path)) VectorMath.Sigmoid(x, bias, scale, y);
                if (reference is null)
                {
                    reference = y;
                    for (int i = 0; i < d; i++)
                    {
                        float z = x[i];
                        if (bias is not null) z += bias[i];
                        z *= scale;
                        double expected = 1 / (1 + Math.Exp(-(double)z));
                        Assert.False(float.IsSubnormal(y[i]), $"σ({z}) = {y[i]} is subnormal");
                        if (Math.Abs(z) > 87.34f) Assert.Equal(z > 0 ? 1f : 0f, y[i]);
                        else Assert.True(Math.Abs(y[i] - expected) <= 4e-7 * expected + 1e-45, $"σ({z}) = {y[i]} vs {expected:R}");
                    }
                }
                else Assert.Equal(reference, y); // the same bits on every path
            }
        }
        var nan = new[] { float.NaN, 1f, float.NaN, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, float.NaN };
        VectorMath.Sigmoid(nan, default, 1f, nan);
        Assert.True(float.IsNaN(nan[0]) && float.IsNaN(nan[2]) && float.IsNaN(nan[17]));
        Assert.Equal(0.5f, nan[3]);
    }
}
