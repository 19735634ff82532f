using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.DeepDensity.Numerics;

// Σ softplus in one pass that stores nothing: the RBM's free energy (every scored row, every AIS temperature) and the
// NVIL prior's normaliser. Six TensorPrimitives passes over a stored row (|x|, −, exp, log1p, max, +) and a sum
// cost as much as the n × 784 × 500 product before them.
internal static partial class VectorMath
{
    /// <summary>Factors per lane multiplied before one log: each is in (1, 2], so 64 of them stay below 2^64.</summary>
    private const int SoftplusFactorsPerLog = 64;

    /// <summary>
    /// Σ_j softplus(scale · (x_j + bias_j)), softplus(z) = max(z, 0) + log(1 + e^{−|z|}); an empty <paramref name="bias"/>
    /// is 0. z is rounded as a separate add and multiply would round it (a stored x + bias, times scale). The vector
    /// paths take one log per lane of a product of up to 64 factors 1 + e^{−|z|}, not one per entry: the product's
    /// relative rounding (≤ 64 · 2^−24) is an absolute error of about 4e-6 in the sum. The 16-lane, 8-lane and scalar
    /// paths agree to that, not bit for bit; each is deterministic. NaN gives NaN; +∞ gives +∞.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe float SumSoftplus(ReadOnlySpan<float> x, ReadOnlySpan<float> bias, float scale = 1f)
    {
        if (!bias.IsEmpty && bias.Length < x.Length) throw new ArgumentException("The bias is shorter than the values.", nameof(bias));
        int d = x.Length, i = 0;
        float sum = 0f;
        bool biased = !bias.IsEmpty, scaled = scale != 1f;
        fixed (float* px = x, pb = bias)
        {
            var level = KernelPath.Current;
            if (level == SimdLevel.Avx512 && d >= 16)
            {
                var linear = Vector512<float>.Zero;
                var logs = Vector512<float>.Zero;
                var one = Vector512.Create(1f);
                var s = Vector512.Create(scale);
                while (i + 16 <= d)
                {
                    var product = one;
                    for (int f = 0; f < SoftplusFactorsPerLog && i + 16 <= d; f++, i += 16)
                    {
                        var z = Vector512.Load(px + i);
                        if (biased) z += Vector512.Load(pb + i);
                        if (scaled) z *= s;
                        product *= one + Exp(-Vector512.Abs(z));
                        // vmaxps with z second returns z when it is NaN.
                        linear += Avx512F.Max(Vector512<float>.Zero, z);
                    }
                    logs += Log(product);
                }
                sum = Vector512.Sum(linear + logs);
            }
            else if (level >= SimdLevel.Avx2 && d >= 8)
            {
                var linear = Vector256<float>.Zero;
                var logs = Vector256<float>.Zero;
                var one = Vector256.Create(1f);
                var s = Vector256.Create(scale);
                while (i + 8 <= d)
                {
                    var product = one;
                    for (int f = 0; f < SoftplusFactorsPerLog && i + 8 <= d; f++, i += 8)
                    {
                        var z = Vector256.Load(px + i);
                        if (biased) z += Vector256.Load(pb + i);
                        if (scaled) z *= s;
                        product *= one + Exp(-Vector256.Abs(z));
                        linear += Avx.Max(Vector256<float>.Zero, z);
                    }
                    logs += Log(product);
                }
                sum = Vector256.Sum(linear + logs);
            }
            // The tail (all of it on the portable path) sums in float64: a long float running sum would lose ~n·2^−24.
            double tail = 0;
            for (; i < d; i++)
            {
                float z = px[i];
                if (biased) z += pb[i];
                if (scaled) z *= scale;
                // e^{−|z|} capped below at e^−87, a normal float (1 + it rounds to 1 either way).
                tail += (float.IsNaN(z) ? z : MathF.Max(z, 0f)) + MathF.Log(1f + MathF.Exp(-MathF.Min(MathF.Abs(z), 87f)));
            }
            sum = (float)(sum + tail);
        }
        return sum;
    }
}
