using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Microsoft.ML.DeepDensity.Layers;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Tests.Engine;

namespace Microsoft.ML.DeepDensity.Tests.Iwae;

/// <summary>
/// The IWAE's fused kernels on every kernel path this CPU runs (forced with <see cref="KernelPath.Force"/>): the GEMM's
/// row-bias epilogue (bit-identical to copying the bias first), the one-pass Bernoulli log-probability and the vector
/// sine/cosine of the Gaussian noise (each path against a float64 reference, and the paths against each other).
/// </summary>
public class IwaeKernelPathTests
{
    [Fact]
    public void RowBiasGivesTheBitsOfCopyingTheBiasFirst()
    {
        // Edge tiles (odd m, n), several k-blocks (k > 256), the packed-operand path and the parallel split.
        foreach (var (m, n, k) in new[] { (13, 33, 300), (12, 32, 8), (50, 200, 784), (5, 7, 3), (500, 784, 200), (1, 50, 200) })
        {
            var rng = new RandomStream((ulong)(m * 1000 + n));
            var a = new float[m * k]; var b = new float[k * n]; var bias = new float[n];
            rng.FillGaussian(a); rng.FillGaussian(b); rng.FillGaussian(bias, 0, 3f);
            var expected = new float[m * n];
            for (int i = 0; i < m; i++) bias.CopyTo(expected, i * n);
            using (KernelPath.Force(SimdLevel.Portable)) Gemm.Multiply(false, false, m, n, k, 1f, a, k, b, n, 1f, expected, n);
            foreach (var level in GemmTests.SupportedLevels())
                foreach (bool parallel in new[] { false, true })
                    foreach (bool packed in new[] { false, true })
                    {
                        var c = new float[m * n];
                        Array.Fill(c, float.NaN); // C is not read: nothing it held may leak
                        using (KernelPath.Force(level))
                        {
                            Gemm.PackedOperand? pack = null;
                            if (packed) Gemm.Pack(false, k, n, b, n, ref pack, parallel);
                            Gemm.Multiply(false, false, m, n, k, 1f, a, k, b, n, 0f, c, n, parallel, pack, bias);
                        }
                        for (int i = 0; i < c.Length; i++)
                            Assert.True(BitConverter.SingleToInt32Bits(c[i]) == BitConverter.SingleToInt32Bits(expected[i]),
                                $"{level} parallel={parallel} packed={packed} {m}×{n}×{k}: C[{i}] = {c[i]:R}, copying the bias gives {expected[i]:R}");
                    }
        }
    }

    [Fact]
    public void RowBiasNeedsBetaZero()
    {
        var c = new float[4];
        Assert.Throws<ArgumentException>(() => Gemm.Multiply(false, false, 2, 2, 2, 1f, new float[4], 2, new float[4], 2, 1f, c, 2, false, null, new float[2]));
        Assert.Throws<ArgumentException>(() => Gemm.Multiply(false, false, 2, 2, 2, 1f, new float[4], 2, new float[4], 2, 0f, c, 2, false, null, new float[1]));
    }

    private static double Softplus(double z) => Math.Max(z, 0) + Math.Log(1 + Math.Exp(-Math.Abs(z)));

    [Theory]
    [InlineData(784)]  // the benchmark's width: whole 16-lane vectors
    [InlineData(1043)] // more than 64 vectors (a second product block) and an 8-lane + scalar tail
    [InlineData(13)]   // narrower than one wide vector
    public void BernoulliLogProbMatchesTheReferenceOnEveryPath(int d)
    {
        const int Rows = 10, Repeat = 5;
        var rng = new RandomStream((ulong)d);
        var logits = new float[Rows * d];
        rng.FillGaussian(logits, 0, 6f);
        logits[0] = 80f; logits[1] = -80f; logits[2] = 0f; logits[d + 3] = -30f; logits[2 * d - 1] = 25f;
        var x = new float[Rows / Repeat * d];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextDouble() < 0.3 ? 1 : 0;
        var reference = new double[Rows];
        var magnitude = new double[Rows];
        for (int j = 0; j < Rows; j++)
            for (int c = 0; c < d; c++)
            {
                double z = logits[j * d + c], term = x[j / Repeat * d + c] * z - Softplus(z);
                reference[j] += term;
                magnitude[j] += Math.Abs(term);
            }
        var results = new Dictionary<SimdLevel, float[]>();
        foreach (var level in GemmTests.SupportedLevels())
        {
            var acc = new float[Rows];
            Array.Fill(acc, 1f);
            using (KernelPath.Force(level)) BernoulliHead.AccumulateLogProb(x, Repeat, logits, Rows, d, -2f, acc);
            for (int j = 0; j < Rows; j++)
            {
                // Float rounding of a sum of d terms: a few ulps of its magnitude. A wrong or missing entry is ≥ 1e-3.
                double tol = 2e-6 * magnitude[j] + 1e-4;
                double got = (acc[j] - 1.0) / -2.0;
                Assert.True(Math.Abs(got - reference[j]) <= tol, $"{level} d={d} row {j}: {got} vs reference {reference[j]} (tolerance {tol:E2})");
            }
            results[level] = acc;
        }
        foreach (var (level, acc) in results)
            for (int j = 0; j < Rows; j++)
                Assert.True(Math.Abs(acc[j] - results[SimdLevel.Portable][j]) <= 4e-6 * (2 * magnitude[j]) + 2e-4,
                    $"{level} vs portable, row {j}: {acc[j]} vs {results[SimdLevel.Portable][j]}");
    }

    [Fact]
    public void BernoulliLogProbPropagatesNaNOnEveryPath()
    {
        const int D = 800;
        var logits = new float[2 * D];
        var x = new float[D];
        logits[5] = float.NaN;        // in a wide vector of row 0
        logits[D + D - 1] = float.NaN; // in the last vector of row 1
        foreach (var level in GemmTests.SupportedLevels())
        {
            var acc = new float[2];
            using (KernelPath.Force(level)) BernoulliHead.AccumulateLogProb(x, 2, logits, 2, D, 1f, acc);
            Assert.True(float.IsNaN(acc[0]) && float.IsNaN(acc[1]), $"{level}: {acc[0]}, {acc[1]}");
        }
    }

    [Fact]
    public void WideExpAndLogMatchDoublePrecision()
    {
        if (!Avx512F.IsSupported || !VectorMath.IsSupported) return;
        double worstExp = 0, worstLog = 0;
        for (float x = -87f; x <= 88.5f; x += 0.01173f)
        {
            var v = VectorMath.Exp(Vector512.Create(x));
            double expected = Math.Exp(x);
            if (expected >= 1.2e-38) worstExp = Math.Max(worstExp, Math.Abs(v.GetElement(3) - expected) / expected);
            // Same steps as the eight-lane function: the same bits.
            Assert.Equal(VectorMath.Exp(Vector256.Create(x)).GetElement(0), v.GetElement(15));
        }
        for (double x = 1e-30; x < 1e30; x *= 1.0137)
        {
            float f = (float)x;
            float got = VectorMath.Log(Vector512.Create(f)).GetElement(7);
            worstLog = Math.Max(worstLog, Math.Abs(got - Math.Log(f)) / Math.Max(1, Math.Abs(Math.Log(f))));
            Assert.Equal(VectorMath.Log(Vector256.Create(f)).GetElement(0), got);
        }
        Assert.True(worstExp < 5e-7, $"exp: worst relative error {worstExp:E2}");
        Assert.True(worstLog < 3e-7, $"log: worst error {worstLog:E2}");
        Assert.True(float.IsNaN(VectorMath.Exp(Vector512.Create(float.NaN)).GetElement(0)));
        Assert.True(float.IsNaN(VectorMath.Log(Vector512.Create(float.NaN)).GetElement(0)));
        Assert.False(float.IsFinite(VectorMath.Log(Vector512.Create(float.PositiveInfinity)).GetElement(0)));
    }

    [Fact]
    public void NoiseSineAndCosineGiveTheSameBitsOnEveryPath()
    {
        const int N = 1003; // whole 16- and 8-lane vectors and a scalar tail
        var turns = new float[N];
        var rng = new RandomStream(11);
        for (int i = 0; i < N; i++) turns[i] = i < 500 ? i / 500f : (rng.NextUInt64() >> 40) / 16777216f;
        turns[0] = 0f; turns[1] = 0.125f; turns[2] = 0.25f; turns[3] = 0.375f; turns[4] = 0.5f; turns[5] = 0.875f; turns[6] = 1f - 1f / 16777216f;
        float[]? firstSin = null, firstCos = null;
        foreach (var level in GemmTests.SupportedLevels())
        {
            var sin = new float[N]; var cos = new float[N];
            using (KernelPath.Force(level)) GaussianNoise.SinCosTurns(turns, sin, cos);
            for (int i = 0; i < N; i++)
            {
                double angle = 2 * Math.PI * turns[i];
                Assert.True(Math.Abs(sin[i] - Math.Sin(angle)) <= 2e-7, $"{level}: sin(2π·{turns[i]}) = {sin[i]}, not {Math.Sin(angle)}");
                Assert.True(Math.Abs(cos[i] - Math.Cos(angle)) <= 2e-7, $"{level}: cos(2π·{turns[i]}) = {cos[i]}, not {Math.Cos(angle)}");
            }
            firstSin ??= sin; firstCos ??= cos;
            Assert.Equal(firstSin, sin);
            Assert.Equal(firstCos, cos);
        }
        // The noise itself: every path draws the same uniforms and the same sines and cosines — also over 100k pairs,
        // where hundreds of draws have a low word below 2^24 (the only ones whose radius the + ½ changes).
        foreach (int length in new[] { N, 200_001 })
        {
            var portable = new float[length];
            using (KernelPath.Force(SimdLevel.Portable)) GaussianNoise.Fill(new RandomStream(3), portable);
            foreach (var level in GemmTests.SupportedLevels())
            {
                var noise = new float[length];
                using (KernelPath.Force(level)) GaussianNoise.Fill(new RandomStream(3), noise);
                Assert.Equal(portable, noise);
            }
        }
    }

    /// <summary>EagerTensorMath's exp and Box–Muller radii, compiled optimised from the first call, are the bits of
    /// TensorPrimitives' for every length (whole 16-lane vectors, the padded rest, and the scalar path below four).</summary>
    [Fact]
    public void EagerTensorMathIsTensorPrimitivesBits()
    {
        var rng = new Random(21);
        for (int n = 0; n <= 300; n++)
        {
            var u = new float[n];
            for (int i = 0; i < n; i++) u[i] = (float)(((uint)rng.NextInt64() + 0.5) / 4294967296.0);
            var expected = (float[])u.Clone();
            System.Numerics.Tensors.TensorPrimitives.Log(expected, expected);
            System.Numerics.Tensors.TensorPrimitives.Multiply(expected, -2f, expected);
            System.Numerics.Tensors.TensorPrimitives.Sqrt(expected, expected);
            var actual = (float[])u.Clone();
            EagerTensorMath.BoxMullerRadii(actual);
            Assert.Equal(expected, actual);
            var x = new float[n];
            for (int i = 0; i < n; i++) x[i] = (float)((rng.NextDouble() - 0.5) * (n % 3 == 0 ? 250 : 20));
            var exp = new float[n];
            System.Numerics.Tensors.TensorPrimitives.Exp(x, exp);
            var eager = new float[n];
            EagerTensorMath.Exp(x, eager);
            Assert.Equal(exp, eager);
            EagerTensorMath.Exp(x, x);                                  // in place
            Assert.Equal(exp, x);
        }
    }

    [Fact]
    public void NoiseHasStandardNormalMoments()
    {
        var z = new float[400_000];
        GaussianNoise.Fill(new RandomStream(5), z);
        double m1 = 0, m2 = 0, m3 = 0, m4 = 0;
        foreach (double v in z) { m1 += v; m2 += v * v; m3 += v * v * v; m4 += v * v * v * v; }
        m1 /= z.Length; m2 /= z.Length; m3 /= z.Length; m4 /= z.Length;
        // Standard errors at n = 400k: mean 0.0016, E z² 0.0022, E z³ 0.0039, E z⁴ 0.017; bounds at about 4 of them.
        Assert.InRange(m1, -0.007, 0.007);
        Assert.InRange(m2, 0.99, 1.01);
        Assert.InRange(m3, -0.016, 0.016);
        Assert.InRange(m4, 2.93, 3.07);
        // Pairs share a radius: the cosine and sine halves must be uncorrelated.
        double c = 0;
        for (int i = 0; i + 1 < z.Length; i += 2) c += (double)z[i] * z[i + 1];
        Assert.InRange(c / (z.Length / 2), -0.01, 0.01);
    }
}
