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
internal static unsafe class BinaryGemm
{
    /// <summary>Columns per panel (one kernel call: two 16-column halves × three limbs of int32 accumulator tiles).</summary>
    public const int PanelWidth = 32;
    /// <summary>Rows per accumulator tile.</summary>
    public const int BlockRows = 16;
    /// <summary>k per tile step (64 bytes of a row).</summary>
    public const int KStep = 64;
    private const int StepBytes = 6 * 1024;
    /// <summary>Row blocks per kernel call: the int32 results of a call fit a 48 KB scratch.</summary>
    private const int BlocksPerCall = 8;
    private const int ScratchInts = BlocksPerCall * BlockRows * 96;
    /// <summary>Whether callers on this thread should use these products: AMX and AVX-512 present, no kernel path forced
    /// on this thread (<see cref="KernelPath.Force"/>), and not turned off by <see cref="Off"/>. Callers decide once per
    /// call or step, on the calling thread, so their worker blocks follow.</summary>
    public static bool IsUsable => t_off == 0 && !KernelPath.IsForced && KernelPath.Best == SimdLevel.Avx512 && AmxRuntime.IsAvailable;

    [ThreadStatic] private static int t_off;

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

        /// <summary>Whether this operand is op(B) for k × n products.</summary>
        public bool Fits(int k, int n) => K == k && N == n;
    }

    /// <summary>op(A), m × k of zeros and ones, as signed bytes in rows of KSteps × 64 bytes, rows padded to 16.</summary>
    public sealed class BinaryOperand
    {
        internal int M, K, KSteps, RowBlocks;
        internal byte[] Buffer = [];
        internal int Offset;
        internal int RowBytes => KSteps * KStep;
    }

    // ------------------------------------------------------------------ packing

    /// <summary>
    /// Quantizes and packs op(B) (k × n; B stored row-major with stride <paramref name="ldb"/>, transposed when
    /// <paramref name="transposeB"/>) into <paramref name="result"/> (reused when large enough). Returns false, packing
    /// nothing, when B has a NaN or infinity (the float GEMM then propagates it as it should).
    /// </summary>
    public static bool TryQuantize(bool transposeB, int k, int n, ReadOnlySpan<float> b, int ldb, ref QuantizedOperand? result, bool parallel = false)
    {
        var q = result ??= new QuantizedOperand();
        int kSteps = Math.Max(1, (k + KStep - 1) / KStep), panels = (n + PanelWidth - 1) / PanelWidth;
        q.K = k; q.N = n; q.KSteps = kSteps; q.Panels = panels;
        Reserve(ref q.Buffer, ref q.Offset, (long)panels * kSteps * StepBytes);
        if (q.Scales.Length < panels * PanelWidth)
        {
            q.Scales = new double[panels * PanelWidth];
            q.Multipliers = new float[panels * PanelWidth];
            q.Exact = new bool[panels * PanelWidth];
            q.Finite = new bool[panels];
        }
        fixed (float* pb = b)
        fixed (byte* buffer = q.Buffer)
        fixed (float* pm = q.Multipliers)
        fixed (bool* pe = q.Exact)
        {
            // Each panel finds its columns' scales and quantizes them: one parallel pass, nothing serial before it.
            var job = new QuantizeJob(pb, ldb, transposeB, k, n, buffer + q.Offset, q.PanelBytes, pm, pe, q.Scales, q.Finite);
            if (parallel && (long)k * n >= 1L << 16 && panels > 1) RunPanels(job, panels);
            else for (int p = 0; p < panels; p++) job.Panel(p);
        }
        for (int p = 0; p < panels; p++) if (!q.Finite[p]) return false;
        return true;
    }

    // Its own method: the lambda's closure is allocated only when the quantization runs in parallel.
    private static void RunPanels(QuantizeJob job, int panels) => DeepDensityEnvironment.For(0, panels, p => job.Panel(p));

    private readonly struct QuantizeJob(float* b, int ldb, bool transposeB, int k, int n, byte* buffer, int panelBytes,
        float* multipliers, bool* exact, double[] scales, bool[] finite)
    {
        /// <summary>The panel's column scales: 2^-e_j with the largest |entry| of column j in [2^22, 2^23) after scaling
        /// by 2^e_j (e_j = 0 for a zero or padding column); false when the panel holds a NaN or an infinity.</summary>
        private bool Scales(int panel)
        {
            int j0 = panel * PanelWidth;
            Span<float> maxima = stackalloc float[PanelWidth];
            maxima.Clear();
            int width = Math.Min(PanelWidth, n - j0);
            bool finite = true;
            if (!transposeB)
            {
                if (width == PanelWidth && Avx512F.IsSupported)
                {
                    Vector512<float> m0 = default, m1 = default, check = default;
                    for (int p = 0; p < k; p++)
                    {
                        var x0 = Vector512.Load(b + (long)p * ldb + j0);
                        var x1 = Vector512.Load(b + (long)p * ldb + j0 + 16);
                        m0 = Avx512F.Max(m0, Vector512.Abs(x0));
                        m1 = Avx512F.Max(m1, Vector512.Abs(x1));
                        check += (x0 - x0) + (x1 - x1);            // NaN iff an entry is NaN or infinite
                    }
                    finite = Vector512.EqualsAll(check, Vector512<float>.Zero);
                    m0.CopyTo(maxima);
                    m1.CopyTo(maxima[16..]);
                }
                else
                {
                    for (int p = 0; p < k; p++)
                        for (int j = 0; j < width; j++)
                        {
                            float x = b[(long)p * ldb + j0 + j];
                            if (!float.IsFinite(x)) finite = false;
                            maxima[j] = Math.Max(maxima[j], Math.Abs(x));
                        }
                }
            }
            else
            {
                for (int j = 0; j < width; j++)
                {
                    var row = new ReadOnlySpan<float>(b + (long)(j0 + j) * ldb, k);
                    // MaxMagnitude returns NaN when the row has one; an infinity is its own maximum.
                    float max = k == 0 ? 0f : Math.Abs(System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(row));
                    if (!float.IsFinite(max)) finite = false;
                    maxima[j] = max;
                }
            }
            if (!finite) return false;
            for (int jj = 0; jj < PanelWidth; jj++)
            {
                int j = j0 + jj;
                float max = maxima[jj];
                int e = max == 0f ? 0 : 22 - Math.ILogB(max);
                scales[j] = Math.ScaleB(1.0, -e);
                // 2^e as a float multiplier is exact (x·2^e is then exact or below 2^-126, which rounds to 0 either way)
                // when it is a normal float; columns whose largest entry is below 2^-105 take the double path.
                exact[j] = e <= 127;
                multipliers[j] = exact[j] ? MathF.ScaleB(1f, e) : 0f;
            }
            return true;
        }

        /// <summary>q for op(B)[p, j] (0 outside k × n).</summary>
        private int Quantized(int p, int j)
        {
            if (p >= k || j >= n) return 0;
            float x = transposeB ? b[(long)j * ldb + p] : b[(long)p * ldb + j];
            double y = exact[j] ? x * multipliers[j] : x / scales[j];
            return Clamp((int)Math.Round(y, MidpointRounding.ToEven));
        }

        public void Panel(int panel)
        {
            finite[panel] = Scales(panel);
            if (!finite[panel]) return;
            byte* dst = buffer + (long)panel * panelBytes;
            int kSteps = panelBytes / StepBytes;
            int j0 = panel * PanelWidth;
            if (transposeB && Avx512F.IsSupported) { TransposedPanel(panel, dst, kSteps); return; }
            bool vector = !transposeB && Avx512F.IsSupported && Avx512BW.IsSupported;
            for (int s = 0; s < kSteps; s++)
                for (int h = 0; h < 2; h++)
                {
                    int c0 = j0 + 16 * h;
                    bool full = vector && c0 + 16 <= n;
                    bool allExact = true;
                    for (int j = c0; j < c0 + 16; j++) allExact &= exact[j];
                    for (int r = 0; r < 16; r++)
                    {
                        int p0 = s * KStep + 4 * r;
                        byte* row0 = dst + s * StepBytes + h * 1024 + r * 64;
                        if (full && allExact)
                        {
                            var mul = Vector512.Load(multipliers + c0);
                            var q0 = QuantizeRow(p0, c0, mul);
                            var q1 = QuantizeRow(p0 + 1, c0, mul);
                            var q2 = QuantizeRow(p0 + 2, c0, mul);
                            var q3 = QuantizeRow(p0 + 3, c0, mul);
                            var mask = Vector512.Create(0xFF);
                            for (int l = 0; l < 3; l++)
                            {
                                int shift = 8 * l;
                                var word = (Vector512.ShiftRightArithmetic(q0, shift) & mask)
                                    | ((Vector512.ShiftRightArithmetic(q1, shift) & mask) << 8)
                                    | ((Vector512.ShiftRightArithmetic(q2, shift) & mask) << 16)
                                    | (Vector512.ShiftRightArithmetic(q3, shift) << 24);
                                word.Store((int*)(row0 + l * 2048));
                            }
                        }
                        else
                        {
                            for (int j = 0; j < 16; j++)
                                for (int t = 0; t < 4; t++)
                                {
                                    int v = Quantized(p0 + t, c0 + j);
                                    for (int l = 0; l < 3; l++) row0[l * 2048 + 4 * j + t] = (byte)(v >> (8 * l));
                                }
                        }
                    }
                }
        }

        /// <summary>
        /// A panel of op(B) = Bᵀ: column j of op(B) is stored row j of B, so 16 consecutive k of a column are one load;
        /// their limbs (16 bytes each) are the 4-byte words of that column in four consecutive tile rows.
        /// </summary>
        private void TransposedPanel(int panel, byte* dst, int kSteps)
        {
            int j0 = panel * PanelWidth;
            Span<int> tail = stackalloc int[16];
            for (int jj = 0; jj < PanelWidth; jj++)
            {
                int j = j0 + jj, h = jj / 16, col = jj % 16;
                bool inside = j < n;
                var mul = Vector512.Create(inside && exact[j] ? multipliers[j] : 0f);
                for (int p0 = 0; p0 < kSteps * KStep; p0 += 16)
                {
                    int s = p0 / KStep, r0 = (p0 % KStep) / 4;
                    Vector512<int> q;
                    if (!inside || p0 >= k) q = Vector512<int>.Zero;
                    else if (exact[j] && p0 + 16 <= k)
                        q = Vector512.Min(Avx512F.ConvertToVector512Int32(Vector512.Load(b + (long)j * ldb + p0) * mul), Vector512.Create(MaxQ));
                    else
                    {
                        for (int t = 0; t < 16; t++) tail[t] = Quantized(p0 + t, j);
                        q = Vector512.Create((ReadOnlySpan<int>)tail);
                    }
                    for (int l = 0; l < 3; l++)
                    {
                        var limb = Avx512F.ConvertToVector128Byte(Vector512.ShiftRightArithmetic(q, 8 * l)).AsUInt32();
                        byte* tile = dst + s * StepBytes + (l * 2 + h) * 1024 + col * 4;
                        *(uint*)(tile + (r0 + 0) * 64) = limb.GetElement(0);
                        *(uint*)(tile + (r0 + 1) * 64) = limb.GetElement(1);
                        *(uint*)(tile + (r0 + 2) * 64) = limb.GetElement(2);
                        *(uint*)(tile + (r0 + 3) * 64) = limb.GetElement(3);
                    }
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private Vector512<int> QuantizeRow(int p, int c0, Vector512<float> mul)
        {
            if (p >= k) return Vector512<int>.Zero;
            var x = Vector512.Load(b + (long)p * ldb + c0) * mul;
            // vcvtps2dq rounds by MXCSR: half to even, as Math.Round above.
            var q = Avx512F.ConvertToVector512Int32(x);
            return Vector512.Min(q, Vector512.Create(MaxQ));
        }
    }

    private const int MaxQ = (1 << 23) - 1;
    private static int Clamp(int q) => Math.Min(q, MaxQ);

    /// <summary>
    /// Packs op(A) (m × k) as signed bytes into <paramref name="result"/> (reused when large enough); false, when an
    /// entry is neither 0 nor 1.
    /// </summary>
    public static bool TryPack(bool transposeA, int m, int k, ReadOnlySpan<float> a, int lda, ref BinaryOperand? result, bool parallel = false)
    {
        var op = result ??= new BinaryOperand();
        int kSteps = Math.Max(1, (k + KStep - 1) / KStep), rowBlocks = (m + BlockRows - 1) / BlockRows;
        op.M = m; op.K = k; op.KSteps = kSteps; op.RowBlocks = rowBlocks;
        int rowBytes = op.RowBytes;
        Reserve(ref op.Buffer, ref op.Offset, (long)rowBlocks * BlockRows * rowBytes);
        int groups = (m + PackGroupRows - 1) / PackGroupRows;
        bool ok;
        fixed (float* pa = a)
        fixed (byte* pd = op.Buffer)
        {
            var job = new PackJob(pa, lda, transposeA, m, k, pd + op.Offset, rowBytes);
            if (parallel && groups > 1 && (long)m * k >= 1L << 16) ok = PackInParallel(job, groups);
            else
            {
                ok = true;
                for (int g = 0; g < groups && ok; g++) ok = job.Group(g);
            }
            // The padding rows of the last 16-row block.
            new Span<byte>(pd + op.Offset + (long)m * rowBytes, (rowBlocks * BlockRows - m) * rowBytes).Clear();
        }
        return ok;
    }

    /// <summary>Output rows per packing task (the transposed packing's bit blocks are 64 rows wide).</summary>
    private const int PackGroupRows = 64;

    // Its own method: the closure is allocated only for a parallel packing.
    private static bool PackInParallel(PackJob job, int groups)
    {
        int failed = 0;
        DeepDensityEnvironment.For(0, groups, g => { if (!job.Group(g)) Volatile.Write(ref failed, 1); });
        return failed == 0;
    }

    private readonly struct PackJob(float* a, int lda, bool transposeA, int m, int k, byte* bytes, int rowBytes)
    {
        /// <summary>Output rows [64g, 64g + 64) ∩ [0, m); false if an entry is neither 0 nor 1.</summary>
        public bool Group(int g)
        {
            int i0 = g * PackGroupRows, i1 = Math.Min(m, i0 + PackGroupRows);
            if (!transposeA)
            {
                for (int i = i0; i < i1; i++)
                {
                    var dst = new Span<byte>(bytes + (long)i * rowBytes, rowBytes);
                    if (!PackRow(new ReadOnlySpan<float>(a + (long)i * lda, k), dst[..k])) return false;
                    dst[k..].Clear();
                }
                return true;
            }
            new Span<byte>(bytes + (long)i0 * rowBytes, (i1 - i0) * rowBytes).Clear();
            return PackTransposed(i0, i1);
        }

        /// <summary>
        /// op(A) = Aᵀ for A stored k × m, output rows [i0, i1): byte (i, p) = A[p, i]. For a whole group of 64, eight
        /// stored rows at a time are read as bit masks over the 64 columns; each 8 × 8 bit block is transposed in a
        /// register (three delta swaps) and spread to eight 0/1 bytes by PDEP, one 8-byte store per output row.
        /// </summary>
        private bool PackTransposed(int i0, int i1)
        {
            int p0 = 0;
            if (i1 - i0 == PackGroupRows && Avx512F.IsSupported && System.Runtime.Intrinsics.X86.Bmi2.X64.IsSupported)
            {
                Span<ulong> words = stackalloc ulong[8];
                for (; p0 + 8 <= k; p0 += 8)
                {
                    for (int t = 0; t < 8; t++)
                        if (!RowBits64(a + (long)(p0 + t) * lda + i0, out words[t])) return false;
                    for (int j = 0; j < 8; j++)
                    {
                        ulong x = 0;
                        for (int t = 0; t < 8; t++) x |= ((words[t] >> (8 * j)) & 0xFF) << (8 * t);
                        x = Transpose8x8(x);
                        byte* dst = bytes + (long)(i0 + 8 * j) * rowBytes + p0;
                        for (int c = 0; c < 8; c++)
                            *(ulong*)(dst + (long)c * rowBytes) = System.Runtime.Intrinsics.X86.Bmi2.X64.ParallelBitDeposit((x >> (8 * c)) & 0xFF, 0x0101010101010101UL);
                    }
                }
            }
            for (int p = p0; p < k; p++)
                for (int i = i0; i < i1; i++)
                {
                    float x = a[(long)p * lda + i];
                    if (x == 1f) bytes[(long)i * rowBytes + p] = 1;
                    else if (x != 0f) return false;
                }
            return true;
        }
    }

    /// <summary>Bit i = (x[i] == 1) for 64 floats; false when one is neither 0 nor 1.</summary>
    private static bool RowBits64(float* x, out ulong bits)
    {
        bits = 0;
        var one = Vector512.Create(1f);
        for (int q = 0; q < 4; q++)
        {
            var v = Vector512.Load(x + 16 * q);
            var isOne = Vector512.Equals(v, one);
            var ok = isOne | Vector512.Equals(v, Vector512<float>.Zero);
            if (ok.AsInt32() != Vector512<int>.AllBitsSet) return false;
            bits |= (ulong)isOne.ExtractMostSignificantBits() << (16 * q);
        }
        return true;
    }

    /// <summary>Transposes the 8 × 8 bit matrix with bit 8r + c at row r, column c.</summary>
    internal static ulong Transpose8x8(ulong x)
    {
        ulong t = (x ^ (x >> 7)) & 0x00AA00AA00AA00AAUL; x ^= t ^ (t << 7);
        t = (x ^ (x >> 14)) & 0x0000CCCC0000CCCCUL; x ^= t ^ (t << 14);
        t = (x ^ (x >> 28)) & 0x00000000F0F0F0F0UL; x ^= t ^ (t << 28);
        return x;
    }

    private static bool PackRow(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int i = 0;
        if (Avx512F.IsSupported)
        {
            var one = Vector512.Create(1f);
            fixed (float* ps = src)
            fixed (byte* pd = dst)
            {
                for (; i + 16 <= src.Length; i += 16)
                {
                    var x = Vector512.Load(ps + i);
                    var ok = Vector512.Equals(x, one) | Vector512.Equals(x, Vector512<float>.Zero);
                    if (ok.AsInt32() != Vector512<int>.AllBitsSet) return false;
                    // 1.0f is 0x3F800000 and ±0 are 0 or 0x80000000: bit 29 says which.
                    var bit = (x.AsUInt32() >> 29) & Vector512.Create(1u);
                    Avx512F.ConvertToVector128Byte(bit).Store(pd + i);
                }
            }
        }
        for (; i < src.Length; i++)
        {
            float x = src[i];
            if (x == 1f) dst[i] = 1;
            else if (x == 0f) dst[i] = 0;
            else return false;
        }
        return true;
    }

    private static void Reserve(ref byte[] buffer, ref int offset, long bytes)
    {
        if (bytes > int.MaxValue - 128) throw new InvalidOperationException($"An operand of {bytes} bytes is too large for the AMX product.");
        if (buffer.Length - offset >= bytes && offset >= 0 && buffer.Length > 0) return;
        buffer = GC.AllocateUninitializedArray<byte>((int)bytes + 64, pinned: true);
        fixed (byte* p = buffer) offset = (int)((64 - ((long)p & 63)) & 63);
    }

    // ------------------------------------------------------------------ the product

    [ThreadStatic] private static int[]? t_scratch;

    /// <summary>
    /// Columns [<paramref name="firstColumn"/>, firstColumn + <paramref name="columns"/>) ∩ [0, n) of
    /// <c>C = alpha · A · B + beta · C</c> on the calling thread (C is m × n with row stride <paramref name="ldc"/>), for
    /// all rows, or for the rows of 16-row blocks [firstRowBlock, firstRowBlock + rowBlockCount) when given. The kernel
    /// computes whole 32-column panels; a range that starts or ends inside one writes only its own columns.
    /// </summary>
    public static void Multiply(BinaryOperand a, QuantizedOperand b, int firstColumn, int columns, float alpha, float beta, Span<float> c, int ldc,
        int firstRowBlock = 0, int rowBlockCount = -1)
    {
        if (a.K != b.K) throw new ArgumentException($"A has k = {a.K} and B has k = {b.K}.");
        if (!AmxRuntime.IsAvailable) throw new InvalidOperationException("AMX is not available: " + AmxRuntime.Status);
        int m = a.M, n = b.N;
        int endColumn = Math.Min(n, firstColumn + columns);
        if (m == 0 || endColumn <= firstColumn) return;
        if ((long)(m - 1) * ldc + n > c.Length) throw new ArgumentException("C is too short for m × n with its stride.", nameof(c));
        int endBlock = rowBlockCount < 0 ? a.RowBlocks : Math.Min(a.RowBlocks, firstRowBlock + rowBlockCount);
        bool narrow = a.K < 1 << 16;
        var scratch = t_scratch ??= GC.AllocateUninitializedArray<int>(ScratchInts + 16, pinned: true);
        fixed (byte* pa = a.Buffer)
        fixed (byte* pb = b.Buffer)
        fixed (int* ps0 = scratch)
        fixed (float* pc = c)
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
                        WriteRow(ps + r * 96 + offset, scales + j0, j1 - j0, alpha, beta, pc + (long)(i0 + r) * ldc + j0, narrow);
                }
            }
        }
    }

    /// <summary>C[j] = alpha·float(S_j·scale_j) + beta·C[j] for one row of a panel (S from the three limb sums).</summary>
    private static void WriteRow(int* sums, double* scales, int width, float alpha, float beta, float* c, bool narrow)
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
                v.Store(c + j);
            }
        }
        for (; j < width; j++)
        {
            float v = (float)((sums[64 + j] * 65536.0 + sums[32 + j] * 256.0 + sums[j]) * scales[j]) * alpha;
            if (beta != 0f) v += beta * c[j];
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
        bool parallel = allowParallel && panels > 1 && (long)m * b.N * k >= 1L << 19 && Environment.ProcessorCount > 1;
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
        const int m = 21, n = 45, k = 133;
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
