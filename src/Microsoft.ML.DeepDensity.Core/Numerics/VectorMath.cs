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
internal static partial class VectorMath
{
    /// <summary>AVX2 and FMA are available.</summary>
    public static bool IsSupported => Avx2.IsSupported && Fma.IsSupported;

    // Cephes' single-precision exp and log: range limits, ln 2 split in a high part exact in float and a low part, and the
    // polynomial coefficients. Written once: the eight- and sixteen-lane versions must compute the same function.
    private const float ExpMin = -87.33654f, ExpMax = 88.72283f, Log2E = 1.44269504088896341f;
    private const float Ln2High = 0.693359375f, Ln2Low = -2.12194440e-4f, Sqrt1Half = 0.707106781186547524f;
    private const float ExpP0 = 1.9875691500e-4f, ExpP1 = 1.3981999507e-3f, ExpP2 = 8.3334519073e-3f, ExpP3 = 4.1665795894e-2f,
        ExpP4 = 1.6666665459e-1f, ExpP5 = 5.0000001201e-1f;
    private const float LogP0 = 7.0376836292e-2f, LogP1 = -1.1514610310e-1f, LogP2 = 1.1676998740e-1f, LogP3 = -1.2420140846e-1f,
        LogP4 = 1.4249322787e-1f, LogP5 = -1.6668057665e-1f, LogP6 = 2.0000714765e-1f, LogP7 = -2.4999993993e-1f, LogP8 = 3.3333331174e-1f;

    /// <summary>e^x per lane (underflows to ~1e-38 below −87.3, overflows to +∞ above 88.7).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        // Operand order makes vminps/vmaxps return x when it is NaN.
        x = Avx.Max(Vector256.Create(ExpMin), Avx.Min(Vector256.Create(ExpMax), x));
        var fx = Avx.RoundToNegativeInfinity(Fma.MultiplyAdd(x, Vector256.Create(Log2E), Vector256.Create(0.5f)));
        x = Fma.MultiplyAddNegated(fx, Vector256.Create(Ln2High), x);
        x = Fma.MultiplyAddNegated(fx, Vector256.Create(Ln2Low), x);
        var y = Vector256.Create(ExpP0);
        y = Fma.MultiplyAdd(y, x, Vector256.Create(ExpP1));
        y = Fma.MultiplyAdd(y, x, Vector256.Create(ExpP2));
        y = Fma.MultiplyAdd(y, x, Vector256.Create(ExpP3));
        y = Fma.MultiplyAdd(y, x, Vector256.Create(ExpP4));
        y = Fma.MultiplyAdd(y, x, Vector256.Create(ExpP5));
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
        var small = Avx.CompareLessThan(m, Vector256.Create(Sqrt1Half));
        e = Avx.Subtract(e, Avx.And(small, Vector256.Create(1f)));
        var x = Avx.Subtract(Avx.Add(m, Avx.And(small, m)), Vector256.Create(1f));
        var z = Avx.Multiply(x, x);
        var y = Vector256.Create(LogP0);
        y = Fma.MultiplyAdd(y, x, Vector256.Create(LogP1));
        y = Fma.MultiplyAdd(y, x, Vector256.Create(LogP2));
        y = Fma.MultiplyAdd(y, x, Vector256.Create(LogP3));
        y = Fma.MultiplyAdd(y, x, Vector256.Create(LogP4));
        y = Fma.MultiplyAdd(y, x, Vector256.Create(LogP5));
        y = Fma.MultiplyAdd(y, x, Vector256.Create(LogP6));
        y = Fma.MultiplyAdd(y, x, Vector256.Create(LogP7));
        y = Fma.MultiplyAdd(y, x, Vector256.Create(LogP8));
        y = Avx.Multiply(Avx.Multiply(y, x), z);
        y = Fma.MultiplyAdd(e, Vector256.Create(Ln2Low), y);
        y = Fma.MultiplyAdd(z, Vector256.Create(-0.5f), y);
        var r = Fma.MultiplyAdd(e, Vector256.Create(Ln2High), Avx.Add(x, y));
        // v − v is 0 for finite v and NaN otherwise: non-finite (and negative-NaN) inputs stay non-finite.
        return Avx.Add(r, Avx.Subtract(v, v));
    }

    /// <summary>
    /// Sixteen-lane <see cref="Exp(Vector256{float})"/>: the same Cephes steps and constants (the runtime's own
    /// Vector512.Exp widens to double and costs about twice as much). Use only where AVX-512F is supported.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
        // Operand order makes vminps return x when it is NaN.
        => ExpOfAtMostExpMax(Avx512F.Min(Vector512.Create(ExpMax), x));

    /// <summary><see cref="Exp(Vector512{float})"/> of x ≤ 88.72 (or NaN), e.g. of −|z|: the same bits without the upper
    /// clamp, one instruction of about twenty fewer where every entry of a row takes one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ExpOfAtMostExpMax(Vector512<float> x)
    {
        // Operand order makes vmaxps return x when it is NaN.
        x = Avx512F.Max(Vector512.Create(ExpMin), x);
        var fx = Vector512.Floor(Avx512F.FusedMultiplyAdd(x, Vector512.Create(Log2E), Vector512.Create(0.5f)));
        // x − fx·c rounded once, as fma(−fx, c, x) (vfnmadd: no negation of fx first).
        x = Avx512F.FusedMultiplyAddNegated(fx, Vector512.Create(Ln2High), x);
        x = Avx512F.FusedMultiplyAddNegated(fx, Vector512.Create(Ln2Low), x);
        var y = Vector512.Create(ExpP0);
        y = Avx512F.FusedMultiplyAdd(y, x, Vector512.Create(ExpP1));
        y = Avx512F.FusedMultiplyAdd(y, x, Vector512.Create(ExpP2));
        y = Avx512F.FusedMultiplyAdd(y, x, Vector512.Create(ExpP3));
        y = Avx512F.FusedMultiplyAdd(y, x, Vector512.Create(ExpP4));
        y = Avx512F.FusedMultiplyAdd(y, x, Vector512.Create(ExpP5));
        y = Avx512F.FusedMultiplyAdd(y, x * x, x + Vector512.Create(1f));
        // y · 2^fx in one instruction (vscalefps): exact for normal results, as the eight-lane version's two
        // exponent-field multiplies are, and fx = 128 needs no splitting.
        return Avx512F.Scale(y, fx);
    }

    /// <summary>Sixteen-lane <see cref="Log(Vector256{float})"/> (same steps and constants). Use only where AVX-512F is supported.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Log(Vector512<float> v)
    {
        var bits = v.AsInt32();
        var e = Vector512.ConvertToSingle(Vector512.ShiftRightLogical(bits, 23) - Vector512.Create(126));
        var m = ((bits & Vector512.Create(0x007FFFFF)) | Vector512.Create(0x3F000000)).AsSingle();
        var small = Vector512.LessThan(m, Vector512.Create(Sqrt1Half));
        e -= small & Vector512.Create(1f);
        var x = m + (small & m) - Vector512.Create(1f);
        var z = x * x;
        var y = Vector512.Create(LogP0);
        y = Avx512F.FusedMultiplyAdd(y, x, Vector512.Create(LogP1));
        y = Avx512F.FusedMultiplyAdd(y, x, Vector512.Create(LogP2));
        y = Avx512F.FusedMultiplyAdd(y, x, Vector512.Create(LogP3));
        y = Avx512F.FusedMultiplyAdd(y, x, Vector512.Create(LogP4));
        y = Avx512F.FusedMultiplyAdd(y, x, Vector512.Create(LogP5));
        y = Avx512F.FusedMultiplyAdd(y, x, Vector512.Create(LogP6));
        y = Avx512F.FusedMultiplyAdd(y, x, Vector512.Create(LogP7));
        y = Avx512F.FusedMultiplyAdd(y, x, Vector512.Create(LogP8));
        y = y * x * z;
        y = Avx512F.FusedMultiplyAdd(e, Vector512.Create(Ln2Low), y);
        y = Avx512F.FusedMultiplyAdd(z, Vector512.Create(-0.5f), y);
        var r = Avx512F.FusedMultiplyAdd(e, Vector512.Create(Ln2High), x + y);
        return r + (v - v);
    }

    /// <summary>Smallest normal float. .NET cannot set the CPU's flush-to-zero mode (PyTorch peers do, with
    /// torch.set_flush_denormal), and on x86 every multiply that reads or writes a subnormal float takes a ~100-cycle
    /// microcode assist: a subnormal entry of a GEMM operand costs one per row or column it meets. Values that feed
    /// products and can fall below this (decaying optimiser state, saturated probabilities scaled by 1/batch) are
    /// flushed to 0 where they are made.</summary>
    public const float MinNormal = 1.17549435e-38f;

    /// <summary>Values below <see cref="MinNormal"/> in magnitude become 0 (NaN stays NaN, the infinities stay).</summary>
    public static void FlushSubnormals(Span<float> values)
    {
        int j = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var minNormal = Vector256.Create(MinNormal);
            for (; j + 8 <= values.Length; j += 8)
            {
                var x = Vector256.Create((ReadOnlySpan<float>)values.Slice(j, 8));
                Vector256.AndNot(x, Vector256.LessThan(Vector256.Abs(x), minNormal)).CopyTo(values.Slice(j, 8));
            }
        }
        for (; j < values.Length; j++) if (MathF.Abs(values[j]) < MinNormal) values[j] = 0f;
    }

    /// <summary>
    /// acc[c] ← fma(m[j·stride + c], v[j], acc[c]) for j = 0, 1, …, v.Length − 1 and every c &lt; acc.Length: one row of
    /// v·M with the arithmetic of the GEMM micro-kernel (a fused multiply-add chain over j in order, from the value in
    /// acc), so a row scored alone gets the bits it gets inside a block. Eight 8-lane accumulators stay in registers
    /// while M streams past (the chain's latency is hidden by the independent columns); columns after the last whole
    /// eight vectors (fewer than 64 columns) are one more pass of up to eight masked accumulators (lanes past the width
    /// are neither read nor stored): every chain interleaved with the others, as in the full passes.
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
        if (c < width)
        {
            unsafe
            {
                fixed (float* pm = m) fixed (float* pa = acc)
                {
                    if (width - c > 32) RowTimesMatrixTail8(v, pm + c, stride, pa + c, width - c);
                    else RowTimesMatrixTail4(v, pm + c, stride, pa + c, width - c);
                }
            }
        }
    }

    /// <summary>The last <paramref name="cols"/> (1–32) columns of <see cref="AddRowTimesMatrix"/>: four masked accumulators.</summary>
    private static unsafe void RowTimesMatrixTail4(ReadOnlySpan<float> v, float* m, int stride, float* acc, int cols)
    {
        var lane = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
        var k0 = Avx2.CompareGreaterThan(Vector256.Create(cols), lane).AsSingle();
        var k1 = Avx2.CompareGreaterThan(Vector256.Create(cols - 8), lane).AsSingle();
        var k2 = Avx2.CompareGreaterThan(Vector256.Create(cols - 16), lane).AsSingle();
        var k3 = Avx2.CompareGreaterThan(Vector256.Create(cols - 24), lane).AsSingle();
        var s0 = Avx.MaskLoad(acc, k0); var s1 = Avx.MaskLoad(acc + 8, k1);
        var s2 = Avx.MaskLoad(acc + 16, k2); var s3 = Avx.MaskLoad(acc + 24, k3);
        for (int j = 0; j < v.Length; j++)
        {
            var b = Vector256.Create(v[j]);
            float* row = m + (nint)j * stride;
            s0 = Fma.MultiplyAdd(Avx.MaskLoad(row, k0), b, s0); s1 = Fma.MultiplyAdd(Avx.MaskLoad(row + 8, k1), b, s1);
            s2 = Fma.MultiplyAdd(Avx.MaskLoad(row + 16, k2), b, s2); s3 = Fma.MultiplyAdd(Avx.MaskLoad(row + 24, k3), b, s3);
        }
        Avx.MaskStore(acc, k0, s0); Avx.MaskStore(acc + 8, k1, s1); Avx.MaskStore(acc + 16, k2, s2); Avx.MaskStore(acc + 24, k3, s3);
    }

    /// <summary>The last <paramref name="cols"/> (33–63) columns of <see cref="AddRowTimesMatrix"/>: eight masked accumulators.</summary>
    private static unsafe void RowTimesMatrixTail8(ReadOnlySpan<float> v, float* m, int stride, float* acc, int cols)
    {
        var lane = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
        var k4 = Avx2.CompareGreaterThan(Vector256.Create(cols - 32), lane).AsSingle();
        var k5 = Avx2.CompareGreaterThan(Vector256.Create(cols - 40), lane).AsSingle();
        var k6 = Avx2.CompareGreaterThan(Vector256.Create(cols - 48), lane).AsSingle();
        var k7 = Avx2.CompareGreaterThan(Vector256.Create(cols - 56), lane).AsSingle();
        var s0 = Avx.LoadVector256(acc); var s1 = Avx.LoadVector256(acc + 8);
        var s2 = Avx.LoadVector256(acc + 16); var s3 = Avx.LoadVector256(acc + 24);
        var s4 = Avx.MaskLoad(acc + 32, k4); var s5 = Avx.MaskLoad(acc + 40, k5);
        var s6 = Avx.MaskLoad(acc + 48, k6); var s7 = Avx.MaskLoad(acc + 56, k7);
        for (int j = 0; j < v.Length; j++)
        {
            var b = Vector256.Create(v[j]);
            float* row = m + (nint)j * stride;
            s0 = Fma.MultiplyAdd(Avx.LoadVector256(row), b, s0); s1 = Fma.MultiplyAdd(Avx.LoadVector256(row + 8), b, s1);
            s2 = Fma.MultiplyAdd(Avx.LoadVector256(row + 16), b, s2); s3 = Fma.MultiplyAdd(Avx.LoadVector256(row + 24), b, s3);
            s4 = Fma.MultiplyAdd(Avx.MaskLoad(row + 32, k4), b, s4); s5 = Fma.MultiplyAdd(Avx.MaskLoad(row + 40, k5), b, s5);
            s6 = Fma.MultiplyAdd(Avx.MaskLoad(row + 48, k6), b, s6); s7 = Fma.MultiplyAdd(Avx.MaskLoad(row + 56, k7), b, s7);
        }
        Avx.Store(acc, s0); Avx.Store(acc + 8, s1); Avx.Store(acc + 16, s2); Avx.Store(acc + 24, s3);
        Avx.MaskStore(acc + 32, k4, s4); Avx.MaskStore(acc + 40, k5, s5); Avx.MaskStore(acc + 48, k6, s6); Avx.MaskStore(acc + 56, k7, s7);
    }

    /// <summary>
    /// out[r·ldo + c] = Σ_j m[j·stride + c] v[r·ldv + j] for r &lt; <paramref name="rows"/>, c &lt; <paramref name="width"/>,
    /// j &lt; <paramref name="k"/>: several rows times one matrix with the GEMM's arithmetic (per k-block of 256, one fused
    /// multiply-add chain over j in order from +0, added to the previous blocks' sum), so every row gets the bits
    /// <see cref="Gemm"/> gives it with beta = 0, alone or in a block. Blocks of four rows × 32 columns (16 accumulators) read each matrix
    /// vector once for four rows; a block's missing rows repeat the last row (not stored), and columns past the width
    /// are masked (neither read nor stored).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe void RowsTimesMatrix(ReadOnlySpan<float> v, int rows, int ldv, int k, ReadOnlySpan<float> m, int stride, int width,
        Span<float> output, int ldo)
    {
        if (rows <= 0 || width <= 0) return;
        if (k == 0) { for (int r = 0; r < rows; r++) output.Slice(r * ldo, width).Clear(); return; }
        if ((long)(rows - 1) * ldv + k > v.Length || (k > 0 && (long)(k - 1) * stride + width > m.Length) || (long)(rows - 1) * ldo + width > output.Length)
            throw new ArgumentException("An operand is shorter than its rows, strides and widths need.");
        // A row left alone after the blocks of four (one row in all, or 4q + 1) takes the one-row kernel rather than
        // three repeats of itself. Its chain runs from the accumulator's value, so past the first k-block each block's
        // chain runs from +0 in a scratch row and is then added, as the GEMM does (C ← fma(S, 1, C) = C + S).
        if (rows % 4 == 1)
        {
            var last = output.Slice((rows - 1) * ldo, width);
            var row = v.Slice((rows - 1) * ldv, k);
            last.Clear();
            AddRowTimesMatrix(row[..Math.Min(k, GemmKBlock)], m, stride, last);
            if (k > GemmKBlock)
            {
                float[]? rented = width > 2048 ? System.Buffers.ArrayPool<float>.Shared.Rent(width) : null;
                Span<float> block = rented is null ? stackalloc float[width] : rented.AsSpan(0, width);
                for (int j0 = GemmKBlock; j0 < k; j0 += GemmKBlock)
                {
                    block.Clear();
                    AddRowTimesMatrix(row[j0..Math.Min(k, j0 + GemmKBlock)], m[(j0 * stride)..], stride, block);
                    System.Numerics.Tensors.TensorPrimitives.Add(last, block, last);
                }
                if (rented is not null) System.Buffers.ArrayPool<float>.Shared.Return(rented);
            }
            if (--rows == 0) return;
        }
        for (int j0 = 0; j0 < k; j0 += GemmKBlock)
            RowsTimesMatrixBlock(v[j0..], rows, ldv, Math.Min(GemmKBlock, k - j0), m[(j0 * stride)..], stride, width, output, ldo, accumulate: j0 > 0);
    }

    /// <summary>The GEMM's k-block length (<see cref="Gemm"/>): a longer inner dimension is summed per block, each
    /// block's chain from +0 and then added to the output.</summary>
    private const int GemmKBlock = 256;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void RowsTimesMatrixBlock(ReadOnlySpan<float> v, int rows, int ldv, int k, ReadOnlySpan<float> m, int stride, int width,
        Span<float> output, int ldo, bool accumulate)
    {
        var lane = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
        fixed (float* pv = v) fixed (float* pm = m) fixed (float* po = output)
        {
            for (int c = 0; c < width; c += 32)
            {
                int left = width - c;
                var k0 = Avx2.CompareGreaterThan(Vector256.Create(left), lane).AsSingle();
                var k1 = Avx2.CompareGreaterThan(Vector256.Create(left - 8), lane).AsSingle();
                var k2 = Avx2.CompareGreaterThan(Vector256.Create(left - 16), lane).AsSingle();
                var k3 = Avx2.CompareGreaterThan(Vector256.Create(left - 24), lane).AsSingle();
                for (int r = 0; r < rows; r += 4)
                {
                    float* v0 = pv + (nint)r * ldv, v1 = pv + (nint)Math.Min(r + 1, rows - 1) * ldv;
                    float* v2 = pv + (nint)Math.Min(r + 2, rows - 1) * ldv, v3 = pv + (nint)Math.Min(r + 3, rows - 1) * ldv;
                    Vector256<float> s00 = default, s01 = default, s02 = default, s03 = default, s10 = default, s11 = default, s12 = default, s13 = default;
                    Vector256<float> s20 = default, s21 = default, s22 = default, s23 = default, s30 = default, s31 = default, s32 = default, s33 = default;
                    float* mc = pm + c;
                    for (int j = 0; j < k; j++, mc += stride)
                    {
                        var m0 = Avx.MaskLoad(mc, k0); var m1 = Avx.MaskLoad(mc + 8, k1);
                        var m2 = Avx.MaskLoad(mc + 16, k2); var m3 = Avx.MaskLoad(mc + 24, k3);
                        var b = Vector256.Create(v0[j]);
                        s00 = Fma.MultiplyAdd(m0, b, s00); s01 = Fma.MultiplyAdd(m1, b, s01); s02 = Fma.MultiplyAdd(m2, b, s02); s03 = Fma.MultiplyAdd(m3, b, s03);
                        b = Vector256.Create(v1[j]);
                        s10 = Fma.MultiplyAdd(m0, b, s10); s11 = Fma.MultiplyAdd(m1, b, s11); s12 = Fma.MultiplyAdd(m2, b, s12); s13 = Fma.MultiplyAdd(m3, b, s13);
                        b = Vector256.Create(v2[j]);
                        s20 = Fma.MultiplyAdd(m0, b, s20); s21 = Fma.MultiplyAdd(m1, b, s21); s22 = Fma.MultiplyAdd(m2, b, s22); s23 = Fma.MultiplyAdd(m3, b, s23);
                        b = Vector256.Create(v3[j]);
                        s30 = Fma.MultiplyAdd(m0, b, s30); s31 = Fma.MultiplyAdd(m1, b, s31); s32 = Fma.MultiplyAdd(m2, b, s32); s33 = Fma.MultiplyAdd(m3, b, s33);
                    }
                    // Repeated rows store the same sums; with accumulate, a row is read once before its stores.
                    if (accumulate)
                    {
                        AddMasked(po + (nint)r * ldo + c, ref s00, ref s01, ref s02, ref s03, k0, k1, k2, k3);
                        if (r + 1 < rows) AddMasked(po + (nint)(r + 1) * ldo + c, ref s10, ref s11, ref s12, ref s13, k0, k1, k2, k3);
                        if (r + 2 < rows) AddMasked(po + (nint)(r + 2) * ldo + c, ref s20, ref s21, ref s22, ref s23, k0, k1, k2, k3);
                        if (r + 3 < rows) AddMasked(po + (nint)(r + 3) * ldo + c, ref s30, ref s31, ref s32, ref s33, k0, k1, k2, k3);
                    }
                    StoreMasked(po + (nint)r * ldo + c, s00, s01, s02, s03, k0, k1, k2, k3);
                    if (r + 1 < rows) StoreMasked(po + (nint)(r + 1) * ldo + c, s10, s11, s12, s13, k0, k1, k2, k3);
                    if (r + 2 < rows) StoreMasked(po + (nint)(r + 2) * ldo + c, s20, s21, s22, s23, k0, k1, k2, k3);
                    if (r + 3 < rows) StoreMasked(po + (nint)(r + 3) * ldo + c, s30, s31, s32, s33, k0, k1, k2, k3);
                }
            }
        }
    }

    /// <summary>s ← p + s (p's previous k-blocks, then this block's sum: the GEMM's C ← fma(S, 1, C)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void AddMasked(float* p, ref Vector256<float> s0, ref Vector256<float> s1, ref Vector256<float> s2, ref Vector256<float> s3,
        Vector256<float> k0, Vector256<float> k1, Vector256<float> k2, Vector256<float> k3)
    {
        s0 = Avx.Add(Avx.MaskLoad(p, k0), s0); s1 = Avx.Add(Avx.MaskLoad(p + 8, k1), s1);
        s2 = Avx.Add(Avx.MaskLoad(p + 16, k2), s2); s3 = Avx.Add(Avx.MaskLoad(p + 24, k3), s3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreMasked(float* p, Vector256<float> s0, Vector256<float> s1, Vector256<float> s2, Vector256<float> s3,
        Vector256<float> k0, Vector256<float> k1, Vector256<float> k2, Vector256<float> k3)
    {
        Avx.MaskStore(p, k0, s0); Avx.MaskStore(p + 8, k1, s1); Avx.MaskStore(p + 16, k2, s2); Avx.MaskStore(p + 24, k3, s3);
    }
}
