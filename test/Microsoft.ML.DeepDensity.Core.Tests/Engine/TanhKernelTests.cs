using Microsoft.ML.DeepDensity.Layers;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

/// <summary>The hidden layers' tanh and its derivative on every kernel path this CPU runs.</summary>
public class TanhKernelTests
{
    private static float[] Inputs()
    {
        var x = new List<float> { 0f, -0f, 1e-30f, -1e-30f, 1e-6f, 0.3f, 0.4999999f, 0.5f, -0.5f, 0.5000001f, 1f, 2f, 5f, 9.99f, 10f, 10.01f, 20f, 88f, 1e10f,
            float.MaxValue, -float.MaxValue, float.PositiveInfinity, float.NegativeInfinity, float.Epsilon };
        for (float v = -12f; v <= 12f; v += 0.00731f) x.Add(v);
        for (double v = 1e-8; v < 50; v *= 1.01) { x.Add((float)v); x.Add((float)-v); }
        x.Add(3f); // odd length: a partial last vector
        return x.ToArray();
    }

    [Fact]
    public void TanhMatchesDoublePrecisionOnEveryPath()
    {
        var x = Inputs();
        foreach (var level in GemmTests.SupportedLevels())
        {
            var y = new float[x.Length];
            using (KernelPath.Force(level)) Activations.Tanh(x, y);
            for (int i = 0; i < x.Length; i++)
            {
                double expected = Math.Tanh(x[i]);
                double error = Math.Abs(y[i] - expected);
                Assert.True(error <= 2.5e-7 * Math.Abs(expected) + 1e-45, $"{level}: tanh({x[i]:R}) = {y[i]:R}, expected {expected:R}");
                Assert.True(MathF.Abs(y[i]) <= 1f);
                Assert.Equal(float.IsNegative(x[i]), float.IsNegative(y[i]));
            }
            var nan = new float[17];
            nan[16] = float.NaN; nan[3] = float.NaN;
            using (KernelPath.Force(level)) Activations.Tanh(nan, nan);
            Assert.True(float.IsNaN(nan[16]) && float.IsNaN(nan[3]), $"{level}: NaN must stay NaN");
        }
    }

    [Fact]
    public void TanhGivesTheSameBitsOnEveryPathWhereverAnElementSits()
    {
        var x = Inputs();
        float[]? reference = null;
        foreach (var level in GemmTests.SupportedLevels())
        {
            var y = new float[x.Length];
            using (KernelPath.Force(level)) Activations.Tanh(x, y);
            reference ??= y;
            Assert.Equal(reference, y);
            // In place, and shifted by one so that every element moves between vector lanes and the scalar tail.
            var shifted = x.Skip(1).ToArray();
            using (KernelPath.Force(level)) Activations.Tanh(shifted, shifted);
            Assert.Equal(reference.Skip(1).ToArray(), shifted);
        }
    }

    [Fact]
    public void TanhDerivativeIsOneMinusTheSquareOnEveryPath()
    {
        var rng = new RandomStream(8);
        var y = new float[1037]; var g = new float[y.Length];
        rng.FillUniform(y, -1f, 1f); rng.FillGaussian(g);
        float[]? first = null;
        foreach (var level in GemmTests.SupportedLevels())
        {
            var d = (float[])g.Clone();
            using (KernelPath.Force(level)) Activations.MultiplyByDerivative(Activation.Tanh, y, d);
            for (int i = 0; i < y.Length; i++)
                Assert.True(Math.Abs(d[i] - g[i] * (1.0 - (double)y[i] * y[i])) <= 1.2e-7 * Math.Abs(g[i]), $"{level}: element {i}");
            first ??= d;
            Assert.Equal(first, d);
        }
    }
}
