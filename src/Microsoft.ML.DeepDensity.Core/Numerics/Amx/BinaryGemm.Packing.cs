using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.DeepDensity.Numerics.Amx;

/// <summary>BinaryGemm's operands: op(B) quantized per column into the kernel's limb tiles, op(A) packed as 0/1 bytes.</summary>
internal static unsafe partial class BinaryGemm
{
    /// <summary>
    /// Quantizes and packs op(B) (k × n; B stored row-major with stride <paramref name="ldb"/>, transposed when
    /// <paramref name="transposeB"/>) into <paramref name="result"/> (reused when large enough). Returns false, packing
    /// nothing, when B has a NaN or infinity (the float GEMM then propagates it as it should).
    /// </summary>
    /// <param name="maxima">When given (n values), the largest |entry| of each column of op(B), exactly as
    /// <see cref="Maxima"/> finds them: the panels then skip their own pass over B.</param>
    public static bool TryQuantize(bool transposeB, int k, int n, ReadOnlySpan<float> b, int ldb, ref QuantizedOperand? result, bool parallel = false,
        ReadOnlySpan<float> maxima = default)
    {
        var q = Shape(k, n, ref result);
        return QuantizePanels(transposeB, b, ldb, q, 0, q.Panels, maxima, parallel);
    }

    /// <summary>Sizes <paramref name="result"/> (reused when large enough) for op(B) of k × n, before
    /// <see cref="QuantizePanels"/> fills its panels (<see cref="TryQuantize"/> does both).</summary>
    public static QuantizedOperand Shape(int k, int n, ref QuantizedOperand? result)
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
        return q;
    }

    /// <summary>
    /// Quantizes panels [<paramref name="firstPanel"/>, + <paramref name="panelCount"/>) of op(B) into
    /// <paramref name="q"/>, sized for it by <see cref="Shape"/>: the same bytes as <see cref="TryQuantize"/> writes there,
    /// so a caller may fill an operand a few panels at a time, e.g. as it computes the rows of B that they hold. False
    /// when one of these panels holds a NaN or an infinity.
    /// </summary>
    /// <param name="maxima">As for <see cref="TryQuantize"/>: empty, or the largest |entry| of every column of op(B)
    /// (only these panels' columns are read).</param>
    public static bool QuantizePanels(bool transposeB, ReadOnlySpan<float> b, int ldb, QuantizedOperand q, int firstPanel, int panelCount,
        ReadOnlySpan<float> maxima = default, bool parallel = false)
    {
        int k = q.K, n = q.N;
        if (!maxima.IsEmpty && maxima.Length < n) throw new ArgumentException(FormattableString.Invariant($"{maxima.Length} maxima for {n} columns."), nameof(maxima));
        if (firstPanel < 0 || panelCount < 0 || firstPanel + panelCount > q.Panels) throw new ArgumentOutOfRangeException(nameof(firstPanel));
        fixed (float* pb = b)
        fixed (byte* buffer = q.Buffer)
        fixed (float* pm = q.Multipliers)
        fixed (bool* pe = q.Exact)
        fixed (float* pmax = maxima)
        {
            // Each panel finds its columns' scales and quantizes them: one parallel pass, nothing serial before it.
            var job = new QuantizeJob(pb, ldb, transposeB, k, n, buffer + q.Offset, q.PanelBytes, pm, pe, q.Scales, q.Finite, pmax);
            bool large = parallel && (long)k * n >= 1L << 16;
            if (large && !transposeB && !maxima.IsEmpty && panelCount == q.Panels && q.KSteps > 1)
            {
                // Scales from the given maxima (cheap), then the whole operand in k-steps, B's rows in order.
                bool scaled = true;
                for (int p = 0; p < q.Panels; p++) scaled &= job.SetScales(p);
                if (scaled) RunKSteps(job, q.KSteps);
            }
            else if (large && panelCount > 1) RunPanels(job, firstPanel, panelCount);
            else for (int p = firstPanel; p < firstPanel + panelCount; p++) job.Panel(p);
        }
        for (int p = firstPanel; p < firstPanel + panelCount; p++) if (!q.Finite[p]) return false;
        return true;
    }

    // Its own method: the lambda's closure is allocated only when the quantization runs in parallel.
    private static void RunPanels(QuantizeJob job, int firstPanel, int panels) => DeepDensityEnvironment.For(firstPanel, firstPanel + panels, p => job.Panel(p));
    private static void RunKSteps(QuantizeJob job, int kSteps) => DeepDensityEnvironment.For(0, kSteps, s => job.AllPanelsOfStep(s));

    /// <summary>
    /// The largest |entry| of every column (<paramref name="columnMax"/>, n values) and row (<paramref name="rowMax"/>,
    /// m values) of a stored m × n matrix in one pass (rows split over <see cref="MaximaParts"/> tasks when
    /// <paramref name="parallel"/>; a maximum does not depend on the order): <see cref="TryQuantize"/>'s maxima for B
    /// and for Bᵀ. False when an entry is NaN or infinite.
    /// </summary>
    public static bool Maxima(ReadOnlySpan<float> b, int m, int n, int ld, Span<float> columnMax, Span<float> rowMax, bool parallel = false)
    {
        int parts = parallel && (long)m * n >= 1L << 16 ? MaximaParts : 1;
        // Per-thread buffers reused across calls (the trainer calls this every step).
        var partial = t_maximaPartial is { } pb0 && pb0.Length >= parts * n ? pb0 : t_maximaPartial = new float[parts * n];
        var finite = t_maximaFinite ??= new bool[MaximaParts];
        fixed (float* pb = b)
        fixed (float* pr = rowMax)
        {
            var job = new MaximaJob(pb, m, n, ld, partial, pr, finite, parts);
            if (parts == 1) job.Part(0); else MaximaInParallel(job, parts);
        }
        var result = columnMax[..n];
        partial.AsSpan(0, n).CopyTo(result);
        for (int p = 1; p < parts; p++) System.Numerics.Tensors.TensorPrimitives.Max(result, partial.AsSpan(p * n, n), result);
        return !finite.AsSpan(0, parts).Contains(false);
    }

    [ThreadStatic] private static float[]? t_maximaPartial;
    [ThreadStatic] private static bool[]? t_maximaFinite;

    /// <summary>Row parts of <see cref="Maxima"/> (fixed, so nothing depends on the thread count).</summary>
    private const int MaximaParts = 4;

    private static void MaximaInParallel(MaximaJob job, int parts) => DeepDensityEnvironment.For(0, parts, p => job.Part(p));

    private readonly struct MaximaJob(float* b, int m, int n, int ld, float[] partial, float* rowMax, bool[] finite, int parts)
    {
        public void Part(int part)
        {
            var columnMax = partial.AsSpan(part * n, n);
            columnMax.Clear();
            var check = Vector512<float>.Zero;
            float scalarCheck = 0f;
            fixed (float* pc = columnMax)
            {
                for (int i = part * m / parts; i < (part + 1) * m / parts; i++)
                {
                    float* row = b + (long)i * ld;
                    var rm = Vector512<float>.Zero;
                    int j = 0;
                    if (Avx512F.IsSupported)
                        for (; j + 16 <= n; j += 16)
                        {
                            var x = Vector512.Load(row + j);
                            var ax = Vector512.Abs(x);
                            Avx512F.Max(Vector512.Load(pc + j), ax).Store(pc + j);
                            rm = Avx512F.Max(rm, ax);
                            check += x - x;                        // NaN iff an entry is NaN or infinite
                        }
                    float r = 0f;
                    if (j > 0) for (int t = 0; t < 16; t++) r = Math.Max(r, rm.GetElement(t));
                    for (; j < n; j++)
                    {
                        float x = row[j], ax = Math.Abs(x);
                        scalarCheck += x - x;
                        pc[j] = Math.Max(pc[j], ax);
                        r = Math.Max(r, ax);
                    }
                    rowMax[i] = r;
                }
            }
            finite[part] = Vector512.EqualsAll(check, Vector512<float>.Zero) && scalarCheck == 0f;
        }
    }

    private readonly struct QuantizeJob(float* b, int ldb, bool transposeB, int k, int n, byte* buffer, int panelBytes,
        float* multipliers, bool* exact, double[] scales, bool[] finite, float* givenMaxima)
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
            if (givenMaxima is not null)
            {
                for (int j = 0; j < width; j++)
                {
                    maxima[j] = givenMaxima[j0 + j];
                    if (!float.IsFinite(maxima[j])) finite = false;
                }
            }
            else if (!transposeB)
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
            if (!SetScales(panel)) return;
            if (transposeB && Avx512F.IsSupported) { TransposedPanel(panel, buffer + (long)panel * panelBytes, panelBytes / StepBytes); return; }
            for (int s = 0; s < panelBytes / StepBytes; s++)
                for (int h = 0; h < 2; h++) StepHalf(panel, s, h);
        }

        /// <summary>The panel's scales (<see cref="Scales"/>); false, and the panel marked, when it is not finite.</summary>
        public bool SetScales(int panel) => finite[panel] = Scales(panel);

        /// <summary>
        /// k-step <paramref name="s"/> of every panel (op(B) not transposed, every panel's scales set): B's rows
        /// [64s, 64s + 64) are read once, in order, while they fill this step's tile rows of all panels, rather than each
        /// panel walking all of B's rows down its 32 columns (a walk that measured no faster on two cores than on one
        /// for the RBM's W just written by the other core).
        /// </summary>
        public void AllPanelsOfStep(int s)
        {
            for (int panel = 0; panel * PanelWidth < n; panel++)
                for (int h = 0; h < 2; h++) StepHalf(panel, s, h);
        }

        /// <summary>The 16 tile rows of k-step <paramref name="s"/>, column half <paramref name="h"/> of a non-transposed
        /// panel whose scales are set.</summary>
        private void StepHalf(int panel, int s, int h)
        {
            byte* dst = buffer + (long)panel * panelBytes;
            int c0 = panel * PanelWidth + 16 * h;
            bool full = Avx512F.IsSupported && Avx512BW.IsSupported && c0 + 16 <= n;
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
                    StoreTileRow(row0, q0, q1, q2, q3);
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

        /// <summary>
        /// A panel of op(B) = Bᵀ: column j of op(B) is stored row j of B. Per 16 columns and 16 consecutive k, the 16 rows
        /// are loaded and quantized (one load each), transposed as a 16 × 16 matrix of int32 in registers, and then
        /// written as the non-transposed path writes them: four k per tile row, one 64-byte store per limb.
        /// </summary>
        private void TransposedPanel(int panel, byte* dst, int kSteps)
        {
            int j0 = panel * PanelWidth;
            for (int h = 0; h < 2; h++)
            {
                int c0 = j0 + 16 * h;
                for (int p0 = 0; p0 < kSteps * KStep; p0 += 16)
                {
                    int s = p0 / KStep, r0 = (p0 % KStep) / 4;
                    // Sixteen columns' k = p0 .. p0 + 15, transposed in registers (locals, not a span: the JIT keeps them in
                    // zmm registers): unpack 32- and 64-bit pairs, then two rounds of 128-bit lane shuffles.
                    var x0 = Quantized16(c0, p0); var x1 = Quantized16(c0 + 1, p0); var x2 = Quantized16(c0 + 2, p0); var x3 = Quantized16(c0 + 3, p0);
                    var x4 = Quantized16(c0 + 4, p0); var x5 = Quantized16(c0 + 5, p0); var x6 = Quantized16(c0 + 6, p0); var x7 = Quantized16(c0 + 7, p0);
                    var x8 = Quantized16(c0 + 8, p0); var x9 = Quantized16(c0 + 9, p0); var x10 = Quantized16(c0 + 10, p0); var x11 = Quantized16(c0 + 11, p0);
                    var x12 = Quantized16(c0 + 12, p0); var x13 = Quantized16(c0 + 13, p0); var x14 = Quantized16(c0 + 14, p0); var x15 = Quantized16(c0 + 15, p0);
                    var t0 = Avx512F.UnpackLow(x0, x1); var t1 = Avx512F.UnpackHigh(x0, x1);
                    var t2 = Avx512F.UnpackLow(x2, x3); var t3 = Avx512F.UnpackHigh(x2, x3);
                    var t4 = Avx512F.UnpackLow(x4, x5); var t5 = Avx512F.UnpackHigh(x4, x5);
                    var t6 = Avx512F.UnpackLow(x6, x7); var t7 = Avx512F.UnpackHigh(x6, x7);
                    var t8 = Avx512F.UnpackLow(x8, x9); var t9 = Avx512F.UnpackHigh(x8, x9);
                    var t10 = Avx512F.UnpackLow(x10, x11); var t11 = Avx512F.UnpackHigh(x10, x11);
                    var t12 = Avx512F.UnpackLow(x12, x13); var t13 = Avx512F.UnpackHigh(x12, x13);
                    var t14 = Avx512F.UnpackLow(x14, x15); var t15 = Avx512F.UnpackHigh(x14, x15);
                    var u0 = Low64(t0, t2); var u1 = High64(t0, t2); var u2 = Low64(t1, t3); var u3 = High64(t1, t3);
                    var u4 = Low64(t4, t6); var u5 = High64(t4, t6); var u6 = Low64(t5, t7); var u7 = High64(t5, t7);
                    var u8 = Low64(t8, t10); var u9 = High64(t8, t10); var u10 = Low64(t9, t11); var u11 = High64(t9, t11);
                    var u12 = Low64(t12, t14); var u13 = High64(t12, t14); var u14 = Low64(t13, t15); var u15 = High64(t13, t15);
                    var v0 = Avx512F.Shuffle4x128(u0, u4, 0x88); var v4 = Avx512F.Shuffle4x128(u0, u4, 0xDD);
                    var v1 = Avx512F.Shuffle4x128(u1, u5, 0x88); var v5 = Avx512F.Shuffle4x128(u1, u5, 0xDD);
                    var v2 = Avx512F.Shuffle4x128(u2, u6, 0x88); var v6 = Avx512F.Shuffle4x128(u2, u6, 0xDD);
                    var v3 = Avx512F.Shuffle4x128(u3, u7, 0x88); var v7 = Avx512F.Shuffle4x128(u3, u7, 0xDD);
                    var v8 = Avx512F.Shuffle4x128(u8, u12, 0x88); var v12 = Avx512F.Shuffle4x128(u8, u12, 0xDD);
                    var v9 = Avx512F.Shuffle4x128(u9, u13, 0x88); var v13 = Avx512F.Shuffle4x128(u9, u13, 0xDD);
                    var v10 = Avx512F.Shuffle4x128(u10, u14, 0x88); var v14 = Avx512F.Shuffle4x128(u10, u14, 0xDD);
                    var v11 = Avx512F.Shuffle4x128(u11, u15, 0x88); var v15 = Avx512F.Shuffle4x128(u11, u15, 0xDD);
                    // Row t of the transpose (lane c = q of column c0 + c at k = p0 + t); four k per tile row.
                    byte* row = dst + s * StepBytes + h * 1024 + r0 * 64;
                    StoreTileRow(row, Avx512F.Shuffle4x128(v0, v8, 0x88), Avx512F.Shuffle4x128(v1, v9, 0x88),
                        Avx512F.Shuffle4x128(v2, v10, 0x88), Avx512F.Shuffle4x128(v3, v11, 0x88));
                    StoreTileRow(row + 64, Avx512F.Shuffle4x128(v4, v12, 0x88), Avx512F.Shuffle4x128(v5, v13, 0x88),
                        Avx512F.Shuffle4x128(v6, v14, 0x88), Avx512F.Shuffle4x128(v7, v15, 0x88));
                    StoreTileRow(row + 128, Avx512F.Shuffle4x128(v0, v8, 0xDD), Avx512F.Shuffle4x128(v1, v9, 0xDD),
                        Avx512F.Shuffle4x128(v2, v10, 0xDD), Avx512F.Shuffle4x128(v3, v11, 0xDD));
                    StoreTileRow(row + 192, Avx512F.Shuffle4x128(v4, v12, 0xDD), Avx512F.Shuffle4x128(v5, v13, 0xDD),
                        Avx512F.Shuffle4x128(v6, v14, 0xDD), Avx512F.Shuffle4x128(v7, v15, 0xDD));
                }
            }
        }

        private static Vector512<int> Low64(Vector512<int> a, Vector512<int> b) => Avx512F.UnpackLow(a.AsInt64(), b.AsInt64()).AsInt32();
        private static Vector512<int> High64(Vector512<int> a, Vector512<int> b) => Avx512F.UnpackHigh(a.AsInt64(), b.AsInt64()).AsInt32();

        /// <summary>q of op(B)[p0 .. p0 + 15, j] (op(B) = Bᵀ: stored row j of B), 0 outside k × n.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private Vector512<int> Quantized16(int j, int p0)
        {
            if (j >= n || p0 >= k) return Vector512<int>.Zero;
            if (exact[j] && p0 + 16 <= k)
                return Vector512.Min(Avx512F.ConvertToVector512Int32(Vector512.Load(b + (long)j * ldb + p0) * Vector512.Create(multipliers[j])),
                    Vector512.Create(MaxQ));
            return Quantized16Tail(j, p0);
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private Vector512<int> Quantized16Tail(int j, int p0)
        {
            Span<int> tail = stackalloc int[16];
            for (int t = 0; t < 16; t++) tail[t] = Quantized(p0 + t, j);
            return Vector512.Create((ReadOnlySpan<int>)tail);
        }

        /// <summary>
        /// One tile row of each limb for 16 columns: q0..q3 hold the integers of four consecutive k (lane = column), and
        /// limb l's row (at <paramref name="row0"/> + 2048·l) holds, per column, the four bytes of those k.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void StoreTileRow(byte* row0, Vector512<int> q0, Vector512<int> q1, Vector512<int> q2, Vector512<int> q3)
        {
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
            var bad = Vector512<uint>.Zero;
            fixed (float* ps = src)
            fixed (byte* pd = dst)
            {
                for (; i + 16 <= src.Length; i += 16)
                {
                    var x = Vector512.Load(ps + i);
                    // x·(x − 1) is ±0 exactly for x = 0, −0 or 1, and nonzero (or NaN) for anything else, subnormals,
                    // infinities and NaN included: one check per row at the end instead of a branch per vector.
                    bad |= (x * (x - one)).AsUInt32();
                    // 1.0f is 0x3F800000 and ±0 are 0 or 0x80000000: bit 29 says which.
                    var bit = (x.AsUInt32() >> 29) & Vector512.Create(1u);
                    Avx512F.ConvertToVector128Byte(bit).Store(pd + i);
                }
            }
            if ((bad & Vector512.Create(0x7FFFFFFFu)) != Vector512<uint>.Zero) return false;
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
        if (bytes > int.MaxValue - 128) throw new InvalidOperationException(FormattableString.Invariant($"An operand of {bytes} bytes is too large for the AMX product."));
        if (buffer.Length - offset >= bytes && offset >= 0 && buffer.Length > 0) return;
        buffer = GC.AllocateUninitializedArray<byte>((int)bytes + 64, pinned: true);
        fixed (byte* p = buffer) offset = (int)((64 - ((long)p & 63)) & 63);
    }
}
