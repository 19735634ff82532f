using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.DeepDensity.Numerics;

/// <summary>
/// <c>C = alpha · op(A) · B + beta · C</c> for a 0/1 matrix op(A) given by the positions of its ones
/// (<see cref="OnesIndex"/>): each row of C adds up the rows of B its ones select, so the work is the ones' share of a
/// dense product (about 0.3 of it for binarised images and the RBM's samples of them).
/// </summary>
/// <remarks>
/// <para><b>The bits of <see cref="Gemm"/>.</b> Gemm sums each k-block (<see cref="Gemm.KC"/>) as one FMA chain from +0
/// in increasing p and then sets <c>C ← fma(sum, alpha, C)</c>. With a in {0, 1} and B finite, a link
/// <c>fma(a, b, s)</c> is <c>s + b</c> rounded once when a = 1 and exactly s when a = 0 (s + ±0 = s, since a chain from
/// +0 never holds −0), so adding the selected rows in increasing p from +0, per k-block, gives the same sums, and this
/// product returns Gemm's bits. A non-finite B (where 0 · ∞ would make Gemm's result NaN) makes the products refuse,
/// and the caller runs Gemm.</para>
/// <para><b>Blocking.</b> C is computed in strips of 64 columns (up to four 16-float accumulators per row), whose columns
/// of B are first copied to a contiguous, 64-byte aligned panel (B's own rows are rarely aligned, and a load across two
/// cache lines costs two; a power-of-two row stride would also map a strip's rows to few cache sets). Within a strip, k
/// is walked in blocks of <see cref="OnesIndex.SubBlock"/> rows (32 KB, in the L1 cache) for a group of rows of C at a
/// time, the partial sums waiting in a 16 KB scratch between blocks (stored floats, so the sums are unchanged). Rows go
/// in pairs, whose sums are independent, so that the adds' latency does not bound a row's chain. The last strip's last
/// vector is the 16 columns that end at n, keeping the lanes written before it.</para>
/// <para><b>Measured</b> (the ones-gemm benchmark, one core, the RBM's shapes, the index's build included): Gemm's time
/// × 0.44–0.71 at a tenth of ones, × 0.65–0.79 at 0.3, × 0.88–1.14 at 0.5 and × 1.4–2.0 at 1. A sum costs an L1 load per
/// 16 adds, where the GEMM's register tile reuses each load many times, so it wins by skipping zeros only.</para>
/// <para>AVX-512 only (the 64-column strip is its register block): <see cref="IsUsable"/> is false elsewhere and when a
/// kernel path is forced, and callers then use Gemm, with the same bits.</para>
/// </remarks>
internal static unsafe partial class OnesGemm
{
    /// <summary>Columns per strip (four AVX-512 accumulators per row); 128 rows of B in a strip are 32 KB.</summary>
    private const int Strip = 64;
    /// <summary>Rows of C whose partial sums wait in the scratch together (16 KB).</summary>
    private const int RowGroup = 64;

    [ThreadStatic] private static float[]? t_scratch;
    [ThreadStatic] private static float[]? t_panel;

    /// <summary>Turns these products off in the whole process (tests and A/B benchmarks; the environment variable
    /// <c>DEEPDENSITY_ONES_GEMM=0</c> starts it off). Results do not change, only their speed.</summary>
    internal static volatile bool Disabled = Environment.GetEnvironmentVariable("DEEPDENSITY_ONES_GEMM") == "0";

    /// <summary>Whether callers on this thread should use these products (AVX-512, no kernel path forced).</summary>
    /// <remarks>.NET 8 lacks the AVX-512 compress that <see cref="OnesIndex"/> builds its lists with, so there the float
    /// GEMM runs (the same bits).</remarks>
#if NET9_0_OR_GREATER
    public static bool IsUsable => !Disabled && !KernelPath.IsForced && KernelPath.Best == SimdLevel.Avx512 && Vector512.IsHardwareAccelerated;
#else
    public static bool IsUsable => false;
#endif

    /// <summary>
    /// The largest share of ones for which callers use these products instead of Gemm: short of the crossover (about
    /// 0.5, see the remarks).
    /// </summary>
    public const double MaxDensity = 0.4;

    /// <summary>The same limit for a B packed once for many products (<see cref="TryPack"/>: scoring, AIS, sampling),
    /// which saves the per-call copy: at 0.5 ones such products took 0.65–0.94× Gemm's time, index included.</summary>
    public const double MaxDensityPacked = 0.5;

    [ThreadStatic] private static OnesIndex? t_rows;

    /// <summary>Whether op(A)'s ones are few enough for this product to beat Gemm (<see cref="MaxDensity"/>, or
    /// <see cref="MaxDensityPacked"/> when B is packed once).</summary>
    public static bool Pays(OnesIndex a, bool packedB = false) => Pays(a, a.Rows, packedB);

    /// <summary><see cref="Pays(OnesIndex, bool)"/> of op(A)'s first <paramref name="rows"/> rows (those indexed so far).</summary>
    public static bool Pays(OnesIndex a, int rows, bool packedB = false)
        => rows > 0 && a.Ones(0, rows) <= (packedB ? MaxDensityPacked : MaxDensity) * rows * a.Columns;

    /// <summary>
    /// <c>C = A · B</c> (beta = 0) for row-major A (m × k, row stride k), B (k × n) and C (m × n) when A is all 0/1 with few
    /// enough ones and this product is usable here; false (C untouched) otherwise, and the caller runs Gemm. The index
    /// is the calling thread's own.
    /// </summary>
    /// <param name="packedB">op(B) packed by <see cref="TryPack"/> (from the same values; then <paramref name="b"/> is not
    /// read), or null: B (k × n) packed here.</param>
    /// <param name="alpha">C = alpha · A · B.</param>
    public static bool TryMultiplyRows(ReadOnlySpan<float> a, int m, int k, ReadOnlySpan<float> b, int n, Span<float> c, Panels? packedB = null, float alpha = 1f)
    {
        if (!IsUsable) return false;
        var index = t_rows ??= new OnesIndex();
        if (!index.Reset(m, k) || !index.TryIndexRows(a, k, 0, m) || !Pays(index, packedB is not null)) return false;
        if (packedB is not null) return packedB.N == n && TryMultiply(index, 0, m, packedB, alpha, 0f, c, n);
        return TryMultiply(index, 0, m, n, alpha, b, n, 0f, c, n);
    }

    /// <summary>
    /// Rows [<paramref name="firstRow"/>, + <paramref name="rows"/>) of <c>alpha · op(A) · B + beta · C</c> into
    /// <paramref name="c"/> (row 0 of c is row <paramref name="firstRow"/>), for n columns of a row-major B (k × n,
    /// row stride <paramref name="ldb"/>; k = <see cref="OnesIndex.Columns"/>). Returns false without writing if this
    /// product is not usable here (<see cref="IsUsable"/>) or B has an entry that is not finite.
    /// </summary>
    /// <param name="transposeB">op(B) = Bᵀ: <paramref name="b"/> is stored n × k (row stride <paramref name="ldb"/>), and
    /// its panels are packed through 16 × 16 register transposes.</param>
    /// <param name="weights">Optional, laid out as C: each element of C, once its last k-block is written, is also a
    /// velocity step on it: <c>C += decay · w</c> when decay ≠ 0 (product and sum rounded separately), then
    /// <c>w += C</c> — the RBM's weight step in the pass that writes its velocity, with the bits of the separate pass
    /// it replaces. With <paramref name="storeC"/> false (only with weights) the final C is not written: a velocity
    /// nothing reads (momentum 0).</param>
    public static bool TryMultiply(OnesIndex a, int firstRow, int rows, int n, float alpha, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc, bool transposeB = false, Span<float> weights = default, float decay = 0f, bool storeC = true)
    {
        int k = a.Columns;
        int storedRows = transposeB ? n : k, storedColumns = transposeB ? k : n;
        if (firstRow < 0 || rows < 0 || firstRow + rows > a.Rows) throw new ArgumentOutOfRangeException(nameof(rows), FormattableString.Invariant($"Rows [{firstRow}, {firstRow + rows}) are not in the index's {a.Rows}."));
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n));
        if (k > 0 && n > 0 && (ldb < storedColumns || b.Length < (long)(storedRows - 1) * ldb + storedColumns))
            throw new ArgumentException(FormattableString.Invariant($"B needs {storedRows} rows of {storedColumns} values with stride {ldb}."), nameof(b));
        if (rows > 0 && n > 0 && (ldc < n || c.Length < (long)(rows - 1) * ldc + n)) throw new ArgumentException(FormattableString.Invariant($"C needs {rows} rows of {n} values with stride {ldc}."), nameof(c));
        if (!storeC && weights.IsEmpty) throw new ArgumentException("C may go unwritten only when it is a velocity nothing reads.", nameof(storeC));
        if (!weights.IsEmpty && weights.Length < c.Length) throw new ArgumentException("The weights must be laid out as C.", nameof(weights));
        if (!IsUsable || !AllFinite(b, storedRows, storedColumns, ldb)) return false;
        if (rows == 0 || n == 0) return true;
        fixed (float* pb = b, pc = c, pw = weights)
            Multiply(a, firstRow, rows, n, alpha, pb, ldb, transposeB, null, beta, pc, ldc, new Epilogue(pw, decay, storeC));
        return true;
    }

    /// <summary>
    /// <see cref="TryMultiply(OnesIndex, int, int, int, float, ReadOnlySpan{float}, int, float, Span{float}, int, bool, Span{float}, float, bool)"/> with
    /// all n columns of a B packed once by <see cref="TryPack"/>; false (C untouched) if this product is not usable here,
    /// the panels do not fit (another k) or B was not all finite.
    /// </summary>
    public static bool TryMultiply(OnesIndex a, int firstRow, int rows, Panels b, float alpha, float beta, Span<float> c, int ldc)
    {
        int n = b.N;
        if (firstRow < 0 || rows < 0 || firstRow + rows > a.Rows) throw new ArgumentOutOfRangeException(nameof(rows), FormattableString.Invariant($"Rows [{firstRow}, {firstRow + rows}) are not in the index's {a.Rows}."));
        if (rows > 0 && (ldc < n || c.Length < (long)(rows - 1) * ldc + n)) throw new ArgumentException(FormattableString.Invariant($"C needs {rows} rows of {n} values with stride {ldc}."), nameof(c));
        if (!IsUsable || !b.Finite || b.K != a.Columns) return false;
        if (rows == 0) return true;
        fixed (float* pc = c)
        fixed (float* buffer = b.Buffer)
            Multiply(a, firstRow, rows, n, alpha, null, 0, false, b.Start(buffer), beta, pc, ldc, default);
        return true;
    }

    /// <summary>The strip at column j of n: its vectors, and where its last vector starts (from j): the 16 columns that
    /// end at n in the last strip, which may overlap the vector before it (or, n mod 64 &lt; 16, the previous strip).</summary>
    private static (int Vectors, int LastColumn) StripShape(int n, int j)
    {
        int width = Math.Min(Strip, n - j), vectors = (width + 15) / 16;
        return (vectors, Math.Min(16 * (vectors - 1), n - 16 - j));
    }

    /// <summary>The product for B in place (<paramref name="b"/>, packed strip by strip here) or packed
    /// (<paramref name="packed"/>: all strips, one after another).</summary>
    private static void Multiply(OnesIndex a, int firstRow, int rows, int n, float alpha, float* b, long ldb, bool transposeB, float* packed,
        float beta, float* c, long ldc, Epilogue epilogue)
    {
        int k = a.Columns;
        if (k == 0 || alpha == 0f)
        {
            // Gemm's result when no k-block runs: beta · C (beta = 0 writes zeros without reading C).
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < n; j++)
                {
                    float v = beta == 0f ? 0f : beta == 1f ? c[r * ldc + j] : c[r * ldc + j] * beta;
                    epilogue.Apply(r * ldc + j, ref v);
                    if (epilogue.StoreC) c[r * ldc + j] = v;
                }
            return;
        }
        t_scratch ??= new float[RowGroup * Strip];
        int stride = a.SubBlocks + 1;
        fixed (int* bounds = a.Bounds, position = a.Position)
        fixed (float* scratch = t_scratch)
        {
            if (n < 16)
            {
                // Column j of op(B) = Bᵀ is row j of B: stride 1 along k.
                if (transposeB) { for (int j = 0; j < n; j++) Column(new Operands(bounds + firstRow * stride, stride, position, rows, k, 1, ldc, scratch, alpha, beta, 0, epilogue.At(j)), b + j * ldb, c + j); return; }
                for (int j = 0; j < n; j++) Column(new Operands(bounds + firstRow * stride, stride, position, rows, k, ldb, ldc, scratch, alpha, beta, 0, epilogue.At(j)), b + j, c + j);
                return;
            }
            float* panel = null;
            if (packed == null)
            {
                if (t_panel is null || t_panel.Length < k * Strip + 16) t_panel = GC.AllocateArray<float>(k * Strip + 16, pinned: true);
                panel = (float*)(((nint)Unsafe.AsPointer(ref t_panel[0]) + 63) & ~(nint)63);   // pinned: a fixed address
            }
            for (int j = 0, strip = 0; j < n; j += Strip, strip++)
            {
                // In the last strip the last vector's first 16·v − (n − j) lanes are columns written before it: they keep C.
                var (vectors, lastColumn) = StripShape(n, j);
                var keep = Vector512.LessThan(Lanes, Vector512.Create(16 * (vectors - 1) - lastColumn)).AsSingle();
                float* stripPanel = packed != null ? packed + (long)strip * k * Strip : panel;
                if (packed == null && transposeB) PackPanelTransposed(b + j * ldb, ldb, k, vectors, lastColumn, stripPanel);
                else if (packed == null) PackPanel(b + j, ldb, k, vectors, lastColumn, stripPanel);
                var s = new Operands(bounds + firstRow * stride, stride, position, rows, k, Strip, ldc, scratch, alpha, beta, lastColumn, epilogue.At(j));
                switch (vectors)
                {
                    case 4: Run<Four>(s, stripPanel, c + j, keep); break;
                    case 3: Run<Three>(s, stripPanel, c + j, keep); break;
                    case 2: Run<Two>(s, stripPanel, c + j, keep); break;
                    default: Run<One>(s, stripPanel, c + j, keep); break;
                }
            }
        }
    }

    /// <summary>The optional weight step applied to C's final values (see the weights parameter of TryMultiply):
    /// <see cref="Weights"/> is laid out as C, from the same element.</summary>
    private readonly struct Epilogue(float* weights, float decay, bool storeC)
    {
        public readonly float* Weights = weights;
        public readonly float Decay = decay;
        /// <summary>C's final values are not written (held inverted so that default(Epilogue), no weight step, stores C).</summary>
        private readonly bool _skipC = !storeC && weights != null;
        public bool StoreC => !_skipC;

        /// <summary>The epilogue for C from its element <paramref name="offset"/> on.</summary>
        public Epilogue At(long offset) => Weights == null ? this : new Epilogue(Weights + offset, Decay, StoreC);

        /// <summary>v ← v + decay · w (decay ≠ 0), then w ← w + v, for element <paramref name="offset"/> (scalar; the
        /// same roundings as the vector form).</summary>
        public void Apply(long offset, ref float v)
        {
            if (Weights == null) return;
            Weights[offset] = VectorMath.WeightStep(Weights[offset], ref v, Decay);
        }
    }

    private readonly struct Operands(int* bounds, int stride, int* position, int rows, int k, long ldb, long ldc, float* scratch, float alpha, float beta,
        int lastColumn, Epilogue epilogue)
    {
        public readonly Epilogue Epilogue = epilogue;
        /// <summary>Where the strip's last vector is in C (columns from the strip's start; in the panel it follows the others).</summary>
        public readonly int LastColumn = lastColumn;
        /// <summary>Row r's ones in block s: Position[Bounds[r·Stride + s] .. Bounds[r·Stride + s + 1]).</summary>
        public readonly int* Bounds = bounds, Position = position;
        public readonly int Stride = stride, Rows = rows, K = k;
        public readonly long Ldb = ldb, Ldc = ldc;
        public readonly float* Scratch = scratch;
        public readonly float Alpha = alpha, Beta = beta;
    }

    private interface IWidth { static abstract int Vectors { get; } }
    private struct Four : IWidth { public static int Vectors => 4; }
    private struct Three : IWidth { public static int Vectors => 3; }
    private struct Two : IWidth { public static int Vectors => 2; }
    private struct One : IWidth { public static int Vectors => 1; }

    /// <summary>One row's sums over a strip of 16 · TW.Vectors columns.</summary>
    private struct Sums<TW> where TW : struct, IWidth
    {
        private Vector512<float> _0, _1, _2, _3;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Start(bool fromZero, float* partial)
        {
            if (fromZero) { _0 = _1 = _2 = _3 = Vector512<float>.Zero; return; }
            _0 = Vector512.Load(partial);
            if (TW.Vectors >= 2) _1 = Vector512.Load(partial + 16);
            if (TW.Vectors >= 3) _2 = Vector512.Load(partial + 32);
            if (TW.Vectors >= 4) _3 = Vector512.Load(partial + 48);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Add(float* row)
        {
            _0 += Vector512.Load(row);
            if (TW.Vectors >= 2) _1 += Vector512.Load(row + 16);
            if (TW.Vectors >= 3) _2 += Vector512.Load(row + 32);
            if (TW.Vectors >= 4) _3 += Vector512.Load(row + 48);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly void Save(float* partial)
        {
            _0.Store(partial);
            if (TW.Vectors >= 2) _1.Store(partial + 16);
            if (TW.Vectors >= 3) _2.Store(partial + 32);
            if (TW.Vectors >= 4) _3.Store(partial + 48);
        }

        /// <summary>C ← fma(sum, alpha, addend) (addend: C, or beta · C in the first k-block), vector by vector in
        /// order, the last at <paramref name="lastColumn"/> with its lanes in <paramref name="keep"/> keeping C.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly void Finish(float* c, int lastColumn, bool firstBlock, float beta, Vector512<float> alpha, Vector512<float> keep)
        {
            var none = Vector512<float>.Zero;
            if (TW.Vectors == 1) { Write(c + lastColumn, _0, firstBlock, beta, alpha, keep); return; }
            Write(c, _0, firstBlock, beta, alpha, none);
            if (TW.Vectors == 2) { Write(c + lastColumn, _1, firstBlock, beta, alpha, keep); return; }
            Write(c + 16, _1, firstBlock, beta, alpha, none);
            if (TW.Vectors == 3) { Write(c + lastColumn, _2, firstBlock, beta, alpha, keep); return; }
            Write(c + 32, _2, firstBlock, beta, alpha, none);
            Write(c + lastColumn, _3, firstBlock, beta, alpha, keep);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Write(float* c, Vector512<float> sum, bool firstBlock, float beta, Vector512<float> alpha, Vector512<float> keep)
        {
            var old = Vector512.Load(c);
            var addend = !firstBlock || beta == 1f ? old : beta == 0f ? Vector512<float>.Zero : old * Vector512.Create(beta);
            Vector512.ConditionalSelect(keep, old, Avx512F.FusedMultiplyAdd(sum, alpha, addend)).Store(c);
        }

        /// <summary><see cref="Finish"/> on C's final values with the weight step of <see cref="Epilogue"/> (weights
        /// <paramref name="w"/> laid out as C). Out of line and called on a copy of the sums, so that the sums of the
        /// adding loops stay in registers (a call on them would make the JIT keep them in memory).</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public readonly void FinishWithWeightStep(float* c, int lastColumn, bool firstBlock, float beta, Vector512<float> alpha, Vector512<float> keep,
            float* w, float decay, bool storeC)
        {
            var none = Vector512<float>.Zero;
            if (TW.Vectors == 1) { WriteWithWeightStep(c, lastColumn, _0, firstBlock, beta, alpha, keep, w, decay, storeC); return; }
            WriteWithWeightStep(c, 0, _0, firstBlock, beta, alpha, none, w, decay, storeC);
            if (TW.Vectors == 2) { WriteWithWeightStep(c, lastColumn, _1, firstBlock, beta, alpha, keep, w, decay, storeC); return; }
            WriteWithWeightStep(c, 16, _1, firstBlock, beta, alpha, none, w, decay, storeC);
            if (TW.Vectors == 3) { WriteWithWeightStep(c, lastColumn, _2, firstBlock, beta, alpha, keep, w, decay, storeC); return; }
            WriteWithWeightStep(c, 32, _2, firstBlock, beta, alpha, none, w, decay, storeC);
            WriteWithWeightStep(c, lastColumn, _3, firstBlock, beta, alpha, keep, w, decay, storeC);
        }

        /// <summary>The vector at column <paramref name="j"/>, with <see cref="VectorMath.WeightStep(Vector512{float}, ref Vector512{float}, float)"/>
        /// (the separate pass's roundings). Kept lanes were written by the vector before.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void WriteWithWeightStep(float* c, int j, Vector512<float> sum, bool firstBlock, float beta, Vector512<float> alpha,
            Vector512<float> keep, float* w, float decay, bool storeC)
        {
            var old = storeC || !firstBlock || beta != 0f ? Vector512.Load(c + j) : Vector512<float>.Zero;
            var addend = !firstBlock || beta == 1f ? old : beta == 0f ? Vector512<float>.Zero : old * Vector512.Create(beta);
            var v = Avx512F.FusedMultiplyAdd(sum, alpha, addend);
            var wj = Vector512.Load(w + j);
            Vector512.ConditionalSelect(keep, wj, VectorMath.WeightStep(wj, ref v, decay)).Store(w + j);
            if (storeC) Vector512.ConditionalSelect(keep, old, v).Store(c + j);
        }
    }

    /// <summary>Row r's final values: <see cref="Sums{TW}.Finish"/>, or with the weight step when <paramref name="weights"/> is set
    /// (the sums passed by value: see <see cref="Sums{TW}.FinishWithWeightStep"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish<TW>(Sums<TW> sums, in Operands s, int r, float* c, bool firstBlock, Vector512<float> alpha, Vector512<float> keep,
        float* weights, bool storeC) where TW : struct, IWidth
    {
        if (weights == null) sums.Finish(c + r * s.Ldc, s.LastColumn, firstBlock, s.Beta, alpha, keep);
        else sums.FinishWithWeightStep(c + r * s.Ldc, s.LastColumn, firstBlock, s.Beta, alpha, keep, weights + r * s.Ldc, s.Epilogue.Decay, storeC);
    }

    /// <summary>
    /// A strip of 16 · TW.Vectors columns of C: for each block of k, rows in pairs, the two rows' selected rows of B
    /// added in step (twice the independent sums of one row, which a single row's add latency would otherwise bound).
    /// </summary>
    private static void Run<TW>(in Operands s, float* b, float* c, Vector512<float> keep) where TW : struct, IWidth
    {
        for (int g = 0; g < s.Rows; g += RowGroup) RunGroup<TW>(s, g, Math.Min(s.Rows, g + RowGroup), b, c, keep);
    }

    private static void RunGroup<TW>(in Operands s, int firstRow, int endRow, float* b, float* c, Vector512<float> keep) where TW : struct, IWidth
    {
        var alpha = Vector512.Create(s.Alpha);
        int* pos = s.Position;
        for (int block = 0; block < s.Stride - 1; block++)
        {
            int p0 = block * OnesIndex.SubBlock, pEnd = Math.Min(p0 + OnesIndex.SubBlock, s.K);
            bool fromZero = p0 % Gemm.KC == 0, last = pEnd % Gemm.KC == 0 || pEnd == s.K, firstBlock = p0 < Gemm.KC;
            // The weight step runs on C's final values only (the last k-block); earlier k-blocks store C for the next.
            bool final = pEnd == s.K;
            float* weights = final ? s.Epilogue.Weights : null;
            bool storeC = !final || s.Epilogue.StoreC;
            Sums<TW> x = default, y = default;
            int r = firstRow;
            for (; r + 2 <= endRow; r += 2)
            {
                int* bx = s.Bounds + r * s.Stride + block, by = bx + s.Stride;
                int ix = bx[0], ex = bx[1], iy = by[0], ey = by[1];
                float* px = s.Scratch + (r - firstRow) * Strip, py = px + Strip;
                x.Start(fromZero, px);
                y.Start(fromZero, py);
                // The lists are walked by pointer and each one's panel row found as a byte offset: an add of four
                // vectors then costs three scalar instructions, not six (index arithmetic, sign extensions), which the
                // loop's issue rate felt.
                int* tx = pos + ix, txEnd = pos + ex, ty = pos + iy, tyEnd = pos + ey;
                int* txCommon = tx + Math.Min(ex - ix, ey - iy);
                for (; tx < txCommon; tx++, ty++)
                {
                    x.Add(PanelRow(b, *tx));
                    y.Add(PanelRow(b, *ty));
                }
                for (; tx < txEnd; tx++) x.Add(PanelRow(b, *tx));
                for (; ty < tyEnd; ty++) y.Add(PanelRow(b, *ty));
                if (!last) { x.Save(px); y.Save(py); continue; }
                Finish(x, s, r, c, firstBlock, alpha, keep, weights, storeC);
                Finish(y, s, r + 1, c, firstBlock, alpha, keep, weights, storeC);
            }
            if (r < endRow)
            {
                int* bx = s.Bounds + r * s.Stride + block;
                float* px = s.Scratch + (r - firstRow) * Strip;
                x.Start(fromZero, px);
                for (int* t = pos + bx[0], end = pos + bx[1]; t < end; t++) x.Add(PanelRow(b, *t));
                if (!last) x.Save(px);
                else Finish(x, s, r, c, firstBlock, alpha, keep, weights, storeC);
            }
        }
    }

    /// <summary>Row p of a panel (rows of <see cref="Strip"/> floats).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float* PanelRow(float* panel, int p) => (float*)((byte*)panel + (nint)p * (Strip * sizeof(float)));

    /// <summary>One column (products narrower than 16 columns).</summary>
    private static void Column(in Operands s, float* b, float* c)
    {
        for (int r = 0; r < s.Rows; r++)
        {
            float* cr = c + r * s.Ldc;
            float sum = 0f;
            for (int block = 0; block < s.Stride - 1; block++)
            {
                int p0 = block * OnesIndex.SubBlock, pEnd = Math.Min(p0 + OnesIndex.SubBlock, s.K);
                if (p0 % Gemm.KC == 0) sum = 0f;
                int* bounds = s.Bounds + r * s.Stride + block;
                for (int t = bounds[0]; t < bounds[1]; t++) sum += b[s.Position[t] * s.Ldb];
                if (pEnd % Gemm.KC != 0 && pEnd != s.K) continue;
                float addend = p0 >= Gemm.KC || s.Beta == 1f ? *cr : s.Beta == 0f ? 0f : *cr * s.Beta;
                float v = MathF.FusedMultiplyAdd(sum, s.Alpha, addend);
                if (pEnd == s.K) s.Epilogue.Apply(r * s.Ldc, ref v);
                if (pEnd != s.K || s.Epilogue.StoreC) *cr = v;
            }
        }
    }
}
