using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.DeepDensity.Numerics;

/// <summary>
/// Eight-lane single-precision exp and log for hot loops that keep their values in registers (mixture densities),
/// where calling <see cref="System.Numerics.Tensors.TensorPrimitives"/> per short span costs more than the math.
/// Cephes polynomials: relative error about 2e-7 over the whole range. Non-finite inputs give non-finite outputs
/// (NaN stays NaN), so divergence is still detected downstream. Use only when <see cref="IsSupported"/>.
/// </summary>
internal static class VectorMath
{
    /// <summary>AVX2 and FMA are available.</summary>
    public static bool IsSupported => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>e^x per lane (underflows to ~1e-38 below −87.3, overflows to +∞ above 88.7).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        // Operand order makes vminps/vmaxps return x when it is NaN.
        x = Avx.Max(Vector256.Create(-87.33654f), Avx.Min(Vector256.Create(88.72283f), x));
        var fx = Avx.RoundToNegativeInfinity(Fma.MultiplyAdd(x, Vector256.Create(1.44269504088896341f), Vector256.Create(0.5f)));
        x = Fma.MultiplyAddNegated(fx, Vector256.Create(0.693359375f), x);
        x = Fma.MultiplyAddNegated(fx, Vector256.Create(-2.12194440e-4f), x);
        var y = Vector256.Create(1.9875691500e-4f);
        y = Fma.MultiplyAdd(y, x, Vector256.Create(1.3981999507e-3f));
        y = Fma.MultiplyAdd(y, x, Vector256.Create(8.3334519073e-3f));
        y = Fma.MultiplyAdd(y, x, Vector256.Create(4.1665795894e-2f));
        y = Fma.MultiplyAdd(y, x, Vector256.Create(1.6666665459e-1f));
        y = Fma.MultiplyAdd(y, x, Vector256.Create(5.0000001201e-1f));
        y = Fma.MultiplyAdd(y, Avx.Multiply(x, x), Avx.Add(x, Vector256.Create(1f)));
        // 2^fx in two halves so that fx = 128 (x near the top of the range) does not overflow the exponent field.
        var n = Avx.ConvertToVector256Int32(fx);
        var half = Avx2.ShiftRightArithmetic(n, 1);
        var p1 = Avx2.ShiftLeftLogical(Avx2.Add(half, Vector256.Create(127)), 23).AsSingle();
        var p2 = Avx2.ShiftLeftLogical(Avx2.Add(Avx2.Subtract(n, half), Vector256.Create(127)), 23).AsSingle();
        return Avx.Multiply(Avx.Multiply(y, p1), p2);
    }

    /// <summary>Natural log per lane for positive normal inputs (0 → very negative, ±∞ and NaN → NaN).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Log(Vector256<float> v)
    {
        var bits = v.AsInt32();
        // v = m · 2^e with m in [0.5, 1).
        var e = Avx.ConvertToVector256Single(Avx2.Subtract(Avx2.ShiftRightLogical(bits, 23), Vector256.Create(126)));
        var m = Avx2.Or(Avx2.And(bits, Vector256.Create(0x007FFFFF)), Vector256.Create(0x3F000000)).AsSingle();
        var small = Avx.CompareLessThan(m, Vector256.Create(0.707106781186547524f));
        e = Avx.Subtract(e, Avx.And(small, Vector256.Create(1f)));
        var x = Avx.Subtract(Avx.Add(m, Avx.And(small, m)), Vector256.Create(1f));
        var z = Avx.Multiply(x, x);
        var y = Vector256.Create(7.0376836292e-2f);
        y = Fma.MultiplyAdd(y, x, Vector256.Create(-1.1514610310e-1f));
        y = Fma.MultiplyAdd(y, x, Vector256.Create(1.1676998740e-1f));
        y = Fma.MultiplyAdd(y, x, Vector256.Create(-1.2420140846e-1f));
        y = Fma.MultiplyAdd(y, x, Vector256.Create(1.4249322787e-1f));
        y = Fma.MultiplyAdd(y, x, Vector256.Create(-1.6668057665e-1f));
        y = Fma.MultiplyAdd(y, x, Vector256.Create(2.0000714765e-1f));
        y = Fma.MultiplyAdd(y, x, Vector256.Create(-2.4999993993e-1f));
        y = Fma.MultiplyAdd(y, x, Vector256.Create(3.3333331174e-1f));
        y = Avx.Multiply(Avx.Multiply(y, x), z);
        y = Fma.MultiplyAdd(e, Vector256.Create(-2.12194440e-4f), y);
        y = Fma.MultiplyAdd(z, Vector256.Create(-0.5f), y);
        var r = Fma.MultiplyAdd(e, Vector256.Create(0.693359375f), Avx.Add(x, y));
        // v − v is 0 for finite v and NaN otherwise: non-finite (and negative-NaN) inputs stay non-finite.
        return Avx.Add(r, Avx.Subtract(v, v));
    }
}
