using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.DeepDensity.Numerics.Amx;

/// <summary>
/// <c>C = alpha · A · B + beta · C</c> for a matrix A of zeros and ones (binary units, binarised pixels) on the AMX tile
/// unit, as an exact integer product: about four times the one-core throughput of the AVX-512 SGEMM on the RBM's shapes.
/// </summary>
/// <remarks>
/// <para><b>What it computes.</b> Each column j of B is scaled by the power of two 2^e_j that puts its largest
/// magnitude in [2^22, 2^23) and rounded (half to even) to 24-bit integers q_pj; then
/// <c>S_ij = Σ_p A_ip · q_pj</c> is summed exactly (in integers), and
/// <c>C_ij = alpha · float(S_ij · 2^-e_j) + beta · C_ij</c>, with one rounding to float of the exact scaled sum. The
/// only approximation is B's rounding to 24 bits relative to its column's largest entry (as fine as float's own
/// 24-bit significand for that entry), so the result is at least as accurate as a float GEMM's; the rounding errors
/// of a float sum of k products are gone.</para>
/// <para><b>Determinism.</b> Integer sums do not depend on their order, so the result is the same bits however the
/// product is blocked or split between threads, and the same as <see cref="Reference"/> (exact, scalar), which the
/// tests compare it with. It is not the bits of <see cref="Gemm"/> (a float FMA chain), so a model that uses this
/// product gives slightly different numbers on a machine without AMX (differences of float rounding, well inside the
/// tolerances the tests allow between kernel paths).</para>
/// <para><b>How.</b> q is split into three byte limbs (q = l0 + 256·l1 + 65536·l2; l0 and l1 unsigned, l2 signed) and
/// the AMX micro-kernel (<see cref="AmxRuntime"/>) accumulates A·l for each limb in int32 tiles with TDPBSUD/TDPBSSD;
/// the limbs are combined in double precision (exactly) when C is written. A is packed as signed bytes (a value that
/// is neither 0 nor 1 makes <see cref="TryPack"/> refuse, and the caller uses the float GEMM); B is packed once per
/// value of B (<see cref="TryQuantize"/>), e.g. once per model for scoring or once per training step.</para>
/// </remarks>
internal static unsafe partial class BinaryGemm
{
    /// <summary>Columns per panel (one kernel call: two 16-column halves × three limbs of int32 accumulator tiles).</summary>
    public const int PanelWidth = 32;
    /// <summary>Rows per accumulator tile.</summary>
    public const int BlockRows = 16;
    /// <summary>k per tile step (64 bytes of a row).</summary>
    public const int KStep = 64;
    private const int StepBytes = 6 * 1024;
    /// <summary>Row blocks per kernel call (whole triples for the kernel's three-block loop): the int32 results of a call take a 72 KB scratch.</summary>
    private const int BlocksPerCall = 12;
    private const int ScratchInts = BlocksPerCall * BlockRows * 96;
    /// <summary>Products below this many multiply-adds run on one thread: at the tile unit's rate a smaller one takes
    /// about as long as the synchronisation of a parallel region (the small RBM of the <c>threads</c> benchmark, 64 × 200,
    /// ran 0.82× as fast on two threads as on one with the float GEMM's threshold, 2^19).</summary>
    public const long ParallelMultiplyAdds = 1L << 22;
    /// <summary>Whether callers on this thread should use these products: AMX and AVX-512 present, no kernel path forced
    /// on this thread (<see cref="KernelPath.Force"/>), and not turned off by <see cref="Off"/>. Callers decide once per
    /// call or step, on the calling thread, so their worker blocks follow.</summary>
    public static bool IsUsable => t_off == 0 && !KernelPath.IsForced && KernelPath.Best == SimdLevel.Avx512 && AmxRuntime.IsAvailable;

    [ThreadStatic] private static int t_off;

    /// <summary>Whether an <see cref="Off"/> scope is open on this thread (it turns <see cref="BinaryTableProduct"/>, the
    /// same product without AMX, off too).</summary>
    internal static bool IsOff => t_off != 0;

    /// <summary>Makes <see cref="IsUsable"/> false on this thread until the scope is disposed: for tests that compare
    /// with the float GEMM, and golden values that must hold on machines without AMX.</summary>
    public static OffScope Off()
    {
        t_off++;
        return default;
    }

    /// <summary>Ends an <see cref="Off"/>.</summary>
    public readonly struct OffScope : IDisposable
    {
        public void Dispose() => t_off--;
    }

    /// <summary>op(B), k × n, quantized per column and packed in the kernel's panel layout.</summary>
    public sealed class QuantizedOperand
    {
        internal int K, N, KSteps, Panels;
        internal byte[] Buffer = [];
        internal int Offset;
        /// <summary>2^-e_j for each of the Panels × 32 columns (1 for padding and all-zero columns).</summary>
        internal double[] Scales = [];
        /// <summary>Per column: 2^e_j as a float and whether that is exact (normal); per panel: whether it was finite.</summary>
        internal float[] Multipliers = [];
        internal bool[] Exact = [];
        internal bool[] Finite = [];
        internal int PanelBytes => KSteps * StepBytes;

    }

    /// <summary>op(A), m × k of zeros and ones, as signed bytes in rows of KSteps × 64 bytes, rows padded to 16.</summary>
    public sealed class BinaryOperand
    {
        internal int M, K, KSteps, RowBlocks;
        internal byte[] Buffer = [];
        internal int Offset;
        internal int RowBytes => KSteps * KStep;
    }

    // ------------------------------------------------------------------ the product

    [ThreadStatic] private static int[]? t_scratch;

    /// <summary>
    /// Columns [<paramref name="firstColumn"/>, firstColumn + <paramref name="columns"/>) ∩ [0, n) of
    /// <c>C = alpha · A · B + beta · C</c> on the calling thread (C is m × n with row stride <paramref name="ldc"/>), for
    /// all rows, or for the rows of 16-row blocks [firstRowBlock, firstRowBlock + rowBlockCount) when given. The kernel
    /// computes whole 32-column panels; a range that starts or ends inside one writes only its own columns.
    /// <para>With <paramref name="weights"/> (laid out as C), each element of C written is then also a velocity step on
    /// it: <c>C += decay · w</c> when decay ≠ 0 (product and sum rounded separately), then <c>w += C</c>: the RBM's weight
    /// step in the pass that writes its velocity, instead of a second pass over both. With <paramref name="storeC"/> false
    /// (only with weights) C is not written: a velocity nothing reads (momentum 0).</para>
    /// </summary>
    public static void Multiply(BinaryOperand a, QuantizedOperand b, int firstColumn, int columns, float alpha, float beta, Span<float> c, int ldc,
        int firstRowBlock = 0, int rowBlockCount = -1, Span<float> weights = default, float decay = 0f, bool storeC = true)
    {
        if (!storeC && weights.IsEmpty) throw new ArgumentException("C may go unwritten only when it is a velocity nothing reads.", nameof(storeC));
        if (a.K != b.K) throw new ArgumentException(FormattableString.Invariant($"A has k = {a.K} and B has k = {b.K}."));
        if (!AmxRuntime.IsAvailable) throw new InvalidOperationException("AMX is not available: " + AmxRuntime.Status);
        int m = a.M, n = b.N;
        int endColumn = Math.Min(n, firstColumn + columns);
        if (m == 0 || endColumn <= firstColumn) return;
        if ((long)(m - 1) * ldc + n > c.Length) throw new ArgumentException("C is too short for m × n with its stride.", nameof(c));
        if (!weights.IsEmpty && weights.Length < c.Length) throw new ArgumentException("The weights must be laid out as C.", nameof(weights));
        int endBlock = rowBlockCount < 0 ? a.RowBlocks : Math.Min(a.RowBlocks, firstRowBlock + rowBlockCount);
        bool narrow = a.K < 1 << 16;
        var scratch = t_scratch ??= GC.AllocateUninitializedArray<int>(ScratchInts + 16, pinned: true);
        fixed (byte* pa = a.Buffer)
        fixed (byte* pb = b.Buffer)
        fixed (int* ps0 = scratch)
        fixed (float* pc = c)
        fixed (float* pw = weights)
        fixed (double* scales = b.Scales)
        {
            int* ps = (int*)(((long)ps0 + 63) & ~63L);
            sbyte* aStart = (sbyte*)(pa + a.Offset);
            for (int panel = firstColumn / PanelWidth; panel * PanelWidth < endColumn; panel++)
            {
                byte* bp = pb + b.Offset + (long)panel * b.PanelBytes;
                int j0 = Math.Max(panel * PanelWidth, firstColumn), j1 = Math.Min((panel + 1) * PanelWidth, endColumn);
                int offset = j0 - panel * PanelWidth;
                for (int blk = firstRowBlock; blk < endBlock; blk += BlocksPerCall)
                {
                    int blocks = Math.Min(BlocksPerCall, endBlock - blk);
                    AmxRuntime.Panel(aStart + (long)blk * BlockRows * a.RowBytes, a.RowBytes, bp, ps, blocks, a.KSteps);
                    int i0 = blk * BlockRows, rows = Math.Min(blocks * BlockRows, m - i0);
                    for (int r = 0; r < rows; r++)
                        WriteRow(ps + r * 96 + offset, scales + j0, j1 - j0, alpha, beta, pc + (long)(i0 + r) * ldc + j0, narrow,
                            pw == null ? null : pw + (long)(i0 + r) * ldc + j0, decay, storeC);
                }
            }
        }
    }

    /// <summary>C[j] = alpha·float(S_j·scale_j) + beta·C[j] for one row of a panel (S from the three limb sums).</summary>
    private static void WriteRow(int* sums, double* scales, int width, float alpha, float beta, float* c, bool narrow, float* w = null, float decay = 0f,
        bool storeC = true)
    {
        int j = 0;
        if (Avx512F.IsSupported && narrow)
        {
            // c1 + 256·c2 is exact in int32 while k < 2^16 (|c2| ≤ 128k, c1 ≤ 255k): two conversions and one exact FMA per
            // eight sums instead of three conversions; the same exact value, so the same bits.
            var v256 = Vector512.Create(256.0);
            var va = Vector512.Create(alpha);
            var vb = Vector512.Create(beta);
            for (; j + 16 <= width; j += 16)
            {
                var t = Vector512.Load(sums + 32 + j) + Vector512.ShiftLeft(Vector512.Load(sums + 64 + j), 8);
                var s0 = Vector512.Load(sums + j);
                var lo = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Double(t.GetLower()), v256, Avx512F.ConvertToVector512Double(s0.GetLower()))
                    * Vector512.Load(scales + j);
                var hi = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Double(t.GetUpper()), v256, Avx512F.ConvertToVector512Double(s0.GetUpper()))
                    * Vector512.Load(scales + j + 8);
                var v = Vector512.Create(Avx512F.ConvertToVector256Single(lo), Avx512F.ConvertToVector256Single(hi));
                if (alpha != 1f) v *= va;
                if (beta != 0f) v += vb * Vector512.Load(c + j);
                if (w != null)
                {
                    VectorMath.WeightStep(Vector512.Load(w + j), ref v, decay).Store(w + j);
                    if (!storeC) continue;
                }
                v.Store(c + j);
            }
        }
        if (Avx512F.IsSupported)
        {
            var va = Vector256.Create(alpha);
            var vb = Vector256.Create(beta);
            for (; j + 8 <= width; j += 8)
            {
                var s0 = Avx512F.ConvertToVector512Double(Vector256.Load(sums + j));
                var s1 = Avx512F.ConvertToVector512Double(Vector256.Load(sums + 32 + j));
                var s2 = Avx512F.ConvertToVector512Double(Vector256.Load(sums + 64 + j));
                // Every term and partial sum is an integer below 2^53: exact, as is the power-of-two scale.
                var exact = (s2 * Vector512.Create(65536.0) + s1 * Vector512.Create(256.0) + s0) * Vector512.Load(scales + j);
                var v = Avx512F.ConvertToVector256Single(exact) * va;
                if (beta != 0f) v += vb * Vector256.Load(c + j);
                if (w != null)
                {
                    VectorMath.WeightStep(Vector256.Load(w + j), ref v, decay).Store(w + j);
                    if (!storeC) continue;
                }
                v.Store(c + j);
            }
        }
        for (; j < width; j++)
        {
            float v = (float)((sums[64 + j] * 65536.0 + sums[32 + j] * 256.0 + sums[j]) * scales[j]) * alpha;
            if (beta != 0f) v += beta * c[j];
            if (w != null)
            {
                w[j] = VectorMath.WeightStep(w[j], ref v, decay);
                if (!storeC) continue;
            }
            c[j] = v;
        }
    }

    /// <summary>Packs op(A) and runs every panel (split between threads when <paramref name="allowParallel"/> and
    /// large): the whole of <c>C = alpha · op(A) · B + beta · C</c>. False, writing nothing, when op(A) is not binary.</summary>
    public static bool TryMultiply(bool transposeA, int m, int k, float alpha, ReadOnlySpan<float> a, int lda,
        QuantizedOperand b, float beta, Span<float> c, int ldc, ref BinaryOperand? packedA, bool allowParallel = true)
    {
        if (!TryPack(transposeA, m, k, a, lda, ref packedA, allowParallel)) return false;
        var pa = packedA!;
        int panels = b.Panels;
        bool parallel = allowParallel && panels > 1 && (long)m * b.N * k >= ParallelMultiplyAdds && Environment.ProcessorCount > 1;
        if (!parallel) Multiply(pa, b, 0, b.N, alpha, beta, c, ldc);
        else MultiplyInParallel(pa, b, alpha, beta, c, ldc);
        return true;
    }

    // Its own method: a lambda's captures are allocated on entry to the method that declares them (one-row scoring
    // must not allocate).
    private static void MultiplyInParallel(BinaryOperand pa, QuantizedOperand b, float alpha, float beta, Span<float> c, int ldc)
    {
        int panels = b.Panels;
        // A partition by the processor count (the results do not depend on it); For applies MaxDegreeOfParallelism.
        int workers = Math.Min(panels, Environment.ProcessorCount);
        fixed (float* pc = c)
        {
            IntPtr cPtr = (IntPtr)pc;
            int length = c.Length;
            DeepDensityEnvironment.For(0, workers, w =>
            {
                int p0 = w * panels / workers, p1 = (w + 1) * panels / workers;
                Multiply(pa, b, p0 * PanelWidth, (p1 - p0) * PanelWidth, alpha, beta, new Span<float>((float*)cPtr, length), ldc);
            });
        }
    }

    [ThreadStatic] private static BinaryOperand? t_packedA;

    /// <summary><see cref="TryMultiply(bool, int, int, float, ReadOnlySpan{float}, int, QuantizedOperand, float, Span{float}, int, ref BinaryOperand?, bool)"/>
    /// for a row-major A, packed into this thread's buffer.</summary>
    public static bool TryMultiply(int m, int k, float alpha, ReadOnlySpan<float> a, int lda, QuantizedOperand b, float beta, Span<float> c, int ldc, bool allowParallel)
        => TryMultiply(false, m, k, alpha, a, lda, b, beta, c, ldc, ref t_packedA, allowParallel);

    /// <summary>
    /// The packed transpose of a packed operand: <paramref name="result"/> (reused when large enough) becomes what
    /// <see cref="TryPack"/> makes of Aᵀ when <paramref name="source"/> holds A, byte for byte, from the bytes already
    /// checked and packed (16 × 16 byte blocks transposed in registers) instead of from the floats again: the RBM's weight
    /// update multiplies Vᵀ by the statistics after its hidden region has packed V.
    /// </summary>
    public static void Transpose(BinaryOperand source, ref BinaryOperand? result)
    {
        var t = result ??= new BinaryOperand();
        int m = source.K, k = source.M;
        t.M = m; t.K = k; t.KSteps = Math.Max(1, (k + KStep - 1) / KStep); t.RowBlocks = (m + BlockRows - 1) / BlockRows;
        int rowBytes = t.RowBytes, sourceRowBytes = source.RowBytes;
        Reserve(ref t.Buffer, ref t.Offset, (long)t.RowBlocks * BlockRows * rowBytes);
        // The source's rows are padded to whole 16-row blocks (zeros) and its columns to whole k-steps, so every block
        // read is inside it; output columns past the source's padded rows are cleared.
        int sourceBlocks = source.RowBlocks, padded = sourceBlocks * BlockRows;
        fixed (byte* ps = source.Buffer)
        fixed (byte* pt = t.Buffer)
        {
            byte* src = ps + source.Offset, dst = pt + t.Offset;
            for (int cb = 0; cb < t.RowBlocks; cb++)
                for (int rb = 0; rb < sourceBlocks; rb++)
                    Transpose16x16(src + (long)rb * BlockRows * sourceRowBytes + cb * 16, sourceRowBytes,
                        dst + (long)cb * BlockRows * rowBytes + rb * 16, rowBytes);
            if (padded < rowBytes)
                for (int i = 0; i < t.RowBlocks * BlockRows; i++) new Span<byte>(dst + (long)i * rowBytes + padded, rowBytes - padded).Clear();
        }
    }

    /// <summary>Transposes a 16 × 16 byte block (rows <paramref name="ls"/> bytes apart) into rows <paramref name="ld"/>
    /// bytes apart: four rounds of byte, word, dword and qword interleaves.</summary>
    private static void Transpose16x16(byte* s, int ls, byte* d, int ld)
    {
        var r0 = Vector128.Load(s); var r1 = Vector128.Load(s + ls); var r2 = Vector128.Load(s + 2 * ls); var r3 = Vector128.Load(s + 3 * ls);
        var r4 = Vector128.Load(s + 4 * ls); var r5 = Vector128.Load(s + 5 * ls); var r6 = Vector128.Load(s + 6 * ls); var r7 = Vector128.Load(s + 7 * ls);
        var r8 = Vector128.Load(s + 8 * ls); var r9 = Vector128.Load(s + 9 * ls); var r10 = Vector128.Load(s + 10 * ls); var r11 = Vector128.Load(s + 11 * ls);
        var r12 = Vector128.Load(s + 12 * ls); var r13 = Vector128.Load(s + 13 * ls); var r14 = Vector128.Load(s + 14 * ls); var r15 = Vector128.Load(s + 15 * ls);
        // Bytes of row pairs: a_i = (row 2i, row 2i+1) interleaved, low and high halves.
        var a0 = Sse2.UnpackLow(r0, r1); var a1 = Sse2.UnpackHigh(r0, r1); var a2 = Sse2.UnpackLow(r2, r3); var a3 = Sse2.UnpackHigh(r2, r3);
        var a4 = Sse2.UnpackLow(r4, r5); var a5 = Sse2.UnpackHigh(r4, r5); var a6 = Sse2.UnpackLow(r6, r7); var a7 = Sse2.UnpackHigh(r6, r7);
        var a8 = Sse2.UnpackLow(r8, r9); var a9 = Sse2.UnpackHigh(r8, r9); var a10 = Sse2.UnpackLow(r10, r11); var a11 = Sse2.UnpackHigh(r10, r11);
        var a12 = Sse2.UnpackLow(r12, r13); var a13 = Sse2.UnpackHigh(r12, r13); var a14 = Sse2.UnpackLow(r14, r15); var a15 = Sse2.UnpackHigh(r14, r15);
        // Words: four rows.
        var b0 = Sse2.UnpackLow(a0.AsUInt16(), a2.AsUInt16()); var b1 = Sse2.UnpackHigh(a0.AsUInt16(), a2.AsUInt16());
        var b2 = Sse2.UnpackLow(a1.AsUInt16(), a3.AsUInt16()); var b3 = Sse2.UnpackHigh(a1.AsUInt16(), a3.AsUInt16());
        var b4 = Sse2.UnpackLow(a4.AsUInt16(), a6.AsUInt16()); var b5 = Sse2.UnpackHigh(a4.AsUInt16(), a6.AsUInt16());
        var b6 = Sse2.UnpackLow(a5.AsUInt16(), a7.AsUInt16()); var b7 = Sse2.UnpackHigh(a5.AsUInt16(), a7.AsUInt16());
        var b8 = Sse2.UnpackLow(a8.AsUInt16(), a10.AsUInt16()); var b9 = Sse2.UnpackHigh(a8.AsUInt16(), a10.AsUInt16());
        var b10 = Sse2.UnpackLow(a9.AsUInt16(), a11.AsUInt16()); var b11 = Sse2.UnpackHigh(a9.AsUInt16(), a11.AsUInt16());
        var b12 = Sse2.UnpackLow(a12.AsUInt16(), a14.AsUInt16()); var b13 = Sse2.UnpackHigh(a12.AsUInt16(), a14.AsUInt16());
        var b14 = Sse2.UnpackLow(a13.AsUInt16(), a15.AsUInt16()); var b15 = Sse2.UnpackHigh(a13.AsUInt16(), a15.AsUInt16());
        // Dwords: eight rows.
        var c0 = Sse2.UnpackLow(b0.AsUInt32(), b4.AsUInt32()); var c1 = Sse2.UnpackHigh(b0.AsUInt32(), b4.AsUInt32());
        var c2 = Sse2.UnpackLow(b1.AsUInt32(), b5.AsUInt32()); var c3 = Sse2.UnpackHigh(b1.AsUInt32(), b5.AsUInt32());
        var c4 = Sse2.UnpackLow(b2.AsUInt32(), b6.AsUInt32()); var c5 = Sse2.UnpackHigh(b2.AsUInt32(), b6.AsUInt32());
        var c6 = Sse2.UnpackLow(b3.AsUInt32(), b7.AsUInt32()); var c7 = Sse2.UnpackHigh(b3.AsUInt32(), b7.AsUInt32());
        var c8 = Sse2.UnpackLow(b8.AsUInt32(), b12.AsUInt32()); var c9 = Sse2.UnpackHigh(b8.AsUInt32(), b12.AsUInt32());
        var c10 = Sse2.UnpackLow(b9.AsUInt32(), b13.AsUInt32()); var c11 = Sse2.UnpackHigh(b9.AsUInt32(), b13.AsUInt32());
        var c12 = Sse2.UnpackLow(b10.AsUInt32(), b14.AsUInt32()); var c13 = Sse2.UnpackHigh(b10.AsUInt32(), b14.AsUInt32());
        var c14 = Sse2.UnpackLow(b11.AsUInt32(), b15.AsUInt32()); var c15 = Sse2.UnpackHigh(b11.AsUInt32(), b15.AsUInt32());
        // Qwords: all sixteen rows; c_j (rows 0-7) with c_{j+8} (rows 8-15) holds columns 2j and 2j + 1.
        Sse2.UnpackLow(c0.AsUInt64(), c8.AsUInt64()).Store((ulong*)d); Sse2.UnpackHigh(c0.AsUInt64(), c8.AsUInt64()).Store((ulong*)(d + ld));
        Sse2.UnpackLow(c1.AsUInt64(), c9.AsUInt64()).Store((ulong*)(d + 2 * ld)); Sse2.UnpackHigh(c1.AsUInt64(), c9.AsUInt64()).Store((ulong*)(d + 3 * ld));
        Sse2.UnpackLow(c2.AsUInt64(), c10.AsUInt64()).Store((ulong*)(d + 4 * ld)); Sse2.UnpackHigh(c2.AsUInt64(), c10.AsUInt64()).Store((ulong*)(d + 5 * ld));
        Sse2.UnpackLow(c3.AsUInt64(), c11.AsUInt64()).Store((ulong*)(d + 6 * ld)); Sse2.UnpackHigh(c3.AsUInt64(), c11.AsUInt64()).Store((ulong*)(d + 7 * ld));
        Sse2.UnpackLow(c4.AsUInt64(), c12.AsUInt64()).Store((ulong*)(d + 8 * ld)); Sse2.UnpackHigh(c4.AsUInt64(), c12.AsUInt64()).Store((ulong*)(d + 9 * ld));
        Sse2.UnpackLow(c5.AsUInt64(), c13.AsUInt64()).Store((ulong*)(d + 10 * ld)); Sse2.UnpackHigh(c5.AsUInt64(), c13.AsUInt64()).Store((ulong*)(d + 11 * ld));
        Sse2.UnpackLow(c6.AsUInt64(), c14.AsUInt64()).Store((ulong*)(d + 12 * ld)); Sse2.UnpackHigh(c6.AsUInt64(), c14.AsUInt64()).Store((ulong*)(d + 13 * ld));
        Sse2.UnpackLow(c7.AsUInt64(), c15.AsUInt64()).Store((ulong*)(d + 14 * ld)); Sse2.UnpackHigh(c7.AsUInt64(), c15.AsUInt64()).Store((ulong*)(d + 15 * ld));
    }

    // ------------------------------------------------------------------ exact reference and self-test

    /// <summary>
    /// The defined result, computed in scalar integer arithmetic: what <see cref="Multiply"/> must equal bit for bit.
    /// A must be binary; B is quantized exactly as <see cref="TryQuantize"/> does.
    /// </summary>
    public static void Reference(bool transposeA, bool transposeB, int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda,
        ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        for (int j = 0; j < n; j++)
        {
            float max = 0f;
            for (int p = 0; p < k; p++) max = Math.Max(max, Math.Abs(transposeB ? b[j * ldb + p] : b[p * ldb + j]));
            int e = max == 0f ? 0 : 22 - Math.ILogB(max);
            double scale = Math.ScaleB(1.0, -e);
            for (int i = 0; i < m; i++)
            {
                long s = 0;
                for (int p = 0; p < k; p++)
                {
                    float x = transposeA ? a[p * lda + i] : a[i * lda + p];
                    if (x == 0f) continue;
                    if (x != 1f) throw new ArgumentException("A is not binary.");
                    double y = (transposeB ? b[j * ldb + p] : b[p * ldb + j]) / scale;
                    s += Clamp((int)Math.Round(y, MidpointRounding.ToEven));
                }
                float v = (float)(s * scale) * alpha;
                if (beta != 0f) v += beta * c[i * ldc + j];
                c[i * ldc + j] = v;
            }
        }
    }

    /// <summary>One product with every edge (m, n, k not multiples of the tiles; columns of mixed scale, negative, zero)
    /// through the freshly mapped kernel, compared with <see cref="Reference"/> bit for bit.</summary>
    internal static bool SelfTest(IntPtr code, IntPtr config)
    {
        const int m = 53, n = 45, k = 133;   // four row blocks: the kernel's three-block loop and its one-block rest
        var random = new Random(12345);
        var a = new float[m * k];
        var b = new float[k * n];
        for (int i = 0; i < a.Length; i++) a[i] = random.Next(2);
        for (int i = 0; i < b.Length; i++) b[i] = (float)((random.NextDouble() - 0.5) * Math.Pow(2, random.Next(-30, 30) / 10.0)) * (i % n == 7 ? 0f : 1f);
        b[5 * n + 3] = -1e-3f;
        QuantizedOperand? qb = null;
        BinaryOperand? pa = null;
        if (!TryQuantize(false, k, n, b, n, ref qb) || !TryPack(false, m, k, a, k, ref pa)) return false;
        var expected = new float[m * n];
        var actual = new float[m * n];
        Reference(false, false, m, n, k, 1f, a, k, b, n, 0f, expected, n);
        var kernel = (delegate* unmanaged<sbyte*, long, byte*, int*, long, long, byte*, void>)code;
        var scratch = new int[ScratchInts + 16];
        fixed (byte* paBytes = pa!.Buffer)
        fixed (byte* pbBytes = qb!.Buffer)
        fixed (int* ps0 = scratch)
        fixed (float* pc = actual)
        fixed (double* scales = qb.Scales)
        {
            int* ps = (int*)(((long)ps0 + 63) & ~63L);
            for (int panel = 0; panel < qb.Panels; panel++)
            {
                kernel((sbyte*)(paBytes + pa.Offset), pa.RowBytes, pbBytes + qb.Offset + (long)panel * qb.PanelBytes, ps, pa.RowBlocks, pa.KSteps, (byte*)config);
                int j0 = panel * PanelWidth;
                for (int r = 0; r < m; r++) WriteRow(ps + r * 96, scales + j0, Math.Min(PanelWidth, n - j0), 1f, 0f, pc + r * n + j0, narrow: true);
            }
        }
        return expected.AsSpan().SequenceEqual(actual);
    }
}
