using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.DeepDensity.Numerics;

// The logistic function and Σ softplus on the engine's own exp and log. Σ softplus runs in one pass that stores nothing:
// the RBM's free energy (every scored row, every AIS temperature) and the NVIL prior's normaliser; six TensorPrimitives
// passes over a stored row (|x|, −, exp, log1p, max, +) and a sum cost as much as the n × 784 × 500 product before them.
// The sigmoid replaces TensorPrimitives.Sigmoid on the RBM's and the Bernoulli heads' hot paths: the runtime's widens
// to double, and its generic operators run unoptimised for the first seconds of a process (tier-0 JIT).
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
                        // −|z| is z with its sign bit set, at most 0: no upper clamp needed (the same bits).
                        product *= one + ExpOfAtMostExpMax(z | Vector512.Create(0x80000000u).AsSingle());
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

    /// <summary>
    /// result_j = σ(scale · (x_j + bias_j)) = (z ≥ 0 ? 1 : e^{−|z|}) / (1 + e^{−|z|}); an empty <paramref name="bias"/> is 0
    /// and <paramref name="result"/> may alias <paramref name="x"/>. z is rounded as a separate add and multiply would
    /// round it. The 16-lane, 8-lane and scalar paths give the same bits (the same exp steps, one IEEE division). Below
    /// |z| = 87.3 (e^{−|z|} no longer a normal float) the result is exactly 0 or 1, never subnormal. NaN stays NaN.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe void Sigmoid(ReadOnlySpan<float> x, ReadOnlySpan<float> bias, float scale, Span<float> result)
    {
        if (!bias.IsEmpty && bias.Length < x.Length) throw new ArgumentException("The bias is shorter than the values.", nameof(bias));
        if (result.Length < x.Length) throw new ArgumentException("The result is shorter than the values.", nameof(result));
        int d = x.Length, i = 0;
        bool biased = !bias.IsEmpty, scaled = scale != 1f;
        fixed (float* px = x, pb = bias, pr = result)
        {
            var level = KernelPath.Current;
            if (level == SimdLevel.Avx512)
            {
                var one = Vector512.Create(1f);
                var s = Vector512.Create(scale);
                var expMin = Vector512.Create(ExpMin);
                for (; i + 16 <= d; i += 16)
                {
                    var z = Vector512.Load(px + i);
                    if (biased) z += Vector512.Load(pb + i);
                    if (scaled) z *= s;
                    var negAbs = -Vector512.Abs(z);
                    var t = Vector512.AndNot(Exp(negAbs), Vector512.LessThan(negAbs, expMin));
                    (Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(z, Vector512<float>.Zero), one, t) / (one + t)).Store(pr + i);
                }
            }
            else if (level == SimdLevel.Avx2)
            {
                var one = Vector256.Create(1f);
                var s = Vector256.Create(scale);
                var expMin = Vector256.Create(ExpMin);
                for (; i + 8 <= d; i += 8)
                {
                    var z = Vector256.Load(px + i);
                    if (biased) z += Vector256.Load(pb + i);
                    if (scaled) z *= s;
                    var negAbs = -Vector256.Abs(z);
                    var t = Vector256.AndNot(Exp(negAbs), Vector256.LessThan(negAbs, expMin));
                    (Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(z, Vector256<float>.Zero), one, t) / (one + t)).Store(pr + i);
                }
            }
            for (; i < d; i++)
            {
                float z = px[i];
                if (biased) z += pb[i];
                if (scaled) z *= scale;
                float negAbs = -MathF.Abs(z);
                float t = negAbs < ExpMin ? 0f : Exp(negAbs);
                pr[i] = (z >= 0f ? 1f : t) / (1f + t);
            }
        }
    }
}
