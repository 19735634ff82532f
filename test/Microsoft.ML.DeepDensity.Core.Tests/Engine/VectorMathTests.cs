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
}
