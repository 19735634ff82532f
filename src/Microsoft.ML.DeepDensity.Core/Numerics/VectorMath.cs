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

    /// <summary>
    /// acc[c] ← fma(m[j·stride + c], v[j], acc[c]) for j = 0, 1, …, v.Length − 1 and every c &lt; acc.Length: one row of
    /// v·M with the arithmetic of the GEMM micro-kernel (a fused multiply-add chain over j in order, from the value in
    /// acc), so a row scored alone gets the bits it gets inside a block. Eight 8-lane accumulators stay in registers
    /// while M streams past (the chain's latency is hidden by the independent columns); columns after the last whole
    /// eight use scalar fused multiply-adds, which round the same way.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AddRowTimesMatrix(ReadOnlySpan<float> v, ReadOnlySpan<float> m, int stride, Span<float> acc)
    {
        int width = acc.Length, rows = v.Length;
        if (rows > 0 && (long)(rows - 1) * stride + width > m.Length) throw new ArgumentException("The matrix is shorter than v.Length rows of the accumulator's width.", nameof(m));
        ref float m0 = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(m);
        ref float a0 = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(acc);
        int c = 0;
        for (; c + 64 <= width; c += 64)
        {
            var s0 = Vector256.LoadUnsafe(ref a0, (nuint)c); var s1 = Vector256.LoadUnsafe(ref a0, (nuint)(c + 8));
            var s2 = Vector256.LoadUnsafe(ref a0, (nuint)(c + 16)); var s3 = Vector256.LoadUnsafe(ref a0, (nuint)(c + 24));
            var s4 = Vector256.LoadUnsafe(ref a0, (nuint)(c + 32)); var s5 = Vector256.LoadUnsafe(ref a0, (nuint)(c + 40));
            var s6 = Vector256.LoadUnsafe(ref a0, (nuint)(c + 48)); var s7 = Vector256.LoadUnsafe(ref a0, (nuint)(c + 56));
            for (int j = 0; j < rows; j++)
            {
                var b = Vector256.Create(v[j]);
                nuint at = (nuint)((long)j * stride + c);
                s0 = Fma.MultiplyAdd(Vector256.LoadUnsafe(ref m0, at), b, s0);
                s1 = Fma.MultiplyAdd(Vector256.LoadUnsafe(ref m0, at + 8), b, s1);
                s2 = Fma.MultiplyAdd(Vector256.LoadUnsafe(ref m0, at + 16), b, s2);
                s3 = Fma.MultiplyAdd(Vector256.LoadUnsafe(ref m0, at + 24), b, s3);
                s4 = Fma.MultiplyAdd(Vector256.LoadUnsafe(ref m0, at + 32), b, s4);
                s5 = Fma.MultiplyAdd(Vector256.LoadUnsafe(ref m0, at + 40), b, s5);
                s6 = Fma.MultiplyAdd(Vector256.LoadUnsafe(ref m0, at + 48), b, s6);
                s7 = Fma.MultiplyAdd(Vector256.LoadUnsafe(ref m0, at + 56), b, s7);
            }
            s0.StoreUnsafe(ref a0, (nuint)c); s1.StoreUnsafe(ref a0, (nuint)(c + 8));
            s2.StoreUnsafe(ref a0, (nuint)(c + 16)); s3.StoreUnsafe(ref a0, (nuint)(c + 24));
            s4.StoreUnsafe(ref a0, (nuint)(c + 32)); s5.StoreUnsafe(ref a0, (nuint)(c + 40));
            s6.StoreUnsafe(ref a0, (nuint)(c + 48)); s7.StoreUnsafe(ref a0, (nuint)(c + 56));
        }
        for (; c + 8 <= width; c += 8)
        {
            var s0 = Vector256.LoadUnsafe(ref a0, (nuint)c);
            for (int j = 0; j < rows; j++)
                s0 = Fma.MultiplyAdd(Vector256.LoadUnsafe(ref m0, (nuint)((long)j * stride + c)), Vector256.Create(v[j]), s0);
            s0.StoreUnsafe(ref a0, (nuint)c);
        }
        for (; c < width; c++)
        {
            float s0 = acc[c];
            for (int j = 0; j < rows; j++) s0 = MathF.FusedMultiplyAdd(m[j * stride + c], v[j], s0);
            acc[c] = s0;
        }
    }
}
