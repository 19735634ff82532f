using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.DeepDensity.Numerics;

/// <summary>
/// Single-precision general matrix multiply on row-major storage:
/// <c>C = alpha · op(A) · op(B) + beta · C</c>, where op(A) is m×k, op(B) is k×n and C is m×n.
/// </summary>
/// <remarks>
/// <para>Goto/BLIS structure: op(B) is packed into k-blocks (KC) of NR-column panels, op(A) into MR-row panels, and a
/// register-blocked FMA micro-kernel accumulates into C: 12×32 with AVX-512, 6×16 with AVX2/FMA, scalar otherwise
/// (<see cref="IGemmKernel"/>). A non-transposed op(A) and small operands are read in place instead of packed (the micro-kernel takes strides),
/// edge tiles are computed into a scratch tile and stored masked, and pack buffers are per-thread and reused.</para>
/// <para>Determinism: every element of C is <c>C·beta</c> followed, for each k-block in order, by
/// <c>C ← fma(alpha, Σ_p op(A)[i,p]·op(B)[p,j], C)</c> with the inner sum a single FMA chain in increasing p from +0.
/// KC is fixed and the same on every path, so that arithmetic depends on neither the instruction set (AVX-512, AVX2
/// and portable results are bit-identical), nor the thread count, nor how C is split between threads, nor how many
/// rows or columns the call has: the result for a row is the same whether it is multiplied alone or in a block.</para>
/// <para>Parallelism: large products are cut into independent blocks of C (row blocks, or column blocks when C is
/// wide and short); each thread packs what its block needs, so threads never wait for one another.</para>
/// </remarks>
internal static partial class Gemm
{
    /// <summary>The k-block length: part of the summation order, so the same for every kernel.</summary>
    internal const int KC = 256;
    /// <summary>Products smaller than this many multiply-adds run on the calling thread.</summary>
    private const long ParallelThreshold = 1L << 19;
    /// <summary>
    /// Products below this many multiply-adds take the AVX2 kernel even where AVX-512 is available (unless a path is
    /// forced): at RNADE's per-dimension sizes (e.g. 30×56×50) the 12×32 tiles are mostly edge tiles and the 6×16
    /// kernel measured ~1.8× faster; the results are the same bits either way.
    /// </summary>
    private const long SmallProduct = 1L << 17;
    /// <summary>Operands up to this many floats (per k-block) are read in place rather than packed.</summary>
    private const int InPlaceLimit = 8192;

    /// <summary><c>C = alpha · op(A) · op(B) + beta · C</c> (row-major; lda/ldb/ldc are row strides of the stored matrices).</summary>
    /// <remarks><paramref name="packedB"/>, when given, is op(B) already packed by <see cref="Pack"/> from the same
    /// values (the caller guarantees they have not changed since): the product then reads it instead of packing op(B)
    /// again, with the same bits. One that does not fit this call (other sizes, transposition or kernel) is ignored.
    /// <para>A non-empty <paramref name="rowBias"/> (n values; only with beta = 0) gives C = rowBias + alpha·op(A)·op(B)
    /// with rowBias added to every row: the bits of copying it into every row of C and multiplying with beta = 1, but the
    /// SIMD kernels add it as they store their first k-block, which saves that pass over C (a layer's bias).</para></remarks>
    public static void Multiply(bool transposeA, bool transposeB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc, bool allowParallel = true, PackedOperand? packedB = null, ReadOnlySpan<float> rowBias = default)
    {
        if (m < 0 || n < 0 || k < 0) throw new ArgumentOutOfRangeException(nameof(m), "Matrix sizes must be non-negative.");
        CheckOperand(a, transposeA ? k : m, transposeA ? m : k, lda, nameof(a));
        CheckOperand(b, transposeB ? n : k, transposeB ? k : n, ldb, nameof(b));
        CheckOperand(c, m, n, ldc, nameof(c));
        bool biased = !rowBias.IsEmpty;
        if (biased && (beta != 0f || rowBias.Length < n)) throw new ArgumentException("A row bias needs beta = 0 and n values.", nameof(rowBias));
        if (m == 0 || n == 0) return;
        Audit?.Invoke(a, transposeA ? k : m, transposeA ? m : k, lda, b, transposeB ? n : k, transposeB ? k : n, ldb, c, m, n, ldc, beta != 0f);

        // With beta = 0 the SIMD kernels write C in their first k-block without reading it (the bits of clearing it first,
        // fma(sum, alpha, +0), or with a row bias of copying it first, fma(sum, alpha, bias)), which saves a pass over C;
        // everything else scales C (or copies the bias into it) here.
        bool overwrite = beta == 0f && k > 0 && alpha != 0f && KernelPath.Current != SimdLevel.Portable;
        if (!overwrite)
        {
            if (biased) for (int i = 0; i < m; i++) rowBias[..n].CopyTo(c.Slice(i * ldc, n));
            else ScaleC(c, m, n, ldc, beta);
        }
        if (k == 0 || alpha == 0f) return;

        unsafe
        {
            fixed (float* pa = a)
            fixed (float* pb = b)
            fixed (float* pc = c)
            fixed (float* pBias = rowBias)
            fixed (float* pZeros = s_zeroRow)
            {
                // The row the first k-block's sums are added to instead of C (null: C is read).
                float* firstAddend = !overwrite ? null : biased ? pBias : pZeros;
                var job = new Job(pa, lda, transposeA, pb, ldb, transposeB, pc, ldc, alpha, firstAddend, biased);
                bool parallel = allowParallel && (long)m * n * k >= ParallelThreshold && Environment.ProcessorCount > 1;
                var level = KernelPath.Current;
                if (packedB is not null && packedB.Fits(transposeB, k, n, level))
                {
                    // Same bits on either kernel, so the one op(B) was packed for is used whatever the size.
                    fixed (float* pp = packedB.Buffer)
                    {
                        float* packed = packedB.Start(pp);
                        if (packedB.Level == SimdLevel.Avx512) Run<Avx512GemmKernel>(job, m, n, k, parallel, packed);
                        else Run<Avx2GemmKernel>(job, m, n, k, parallel, packed);
                    }
                    return;
                }
                if (level == SimdLevel.Avx512 && !KernelPath.IsForced && (long)m * n * k < SmallProduct) level = SimdLevel.Avx2;
                switch (level)
                {
                    case SimdLevel.Avx512: Run<Avx512GemmKernel>(job, m, n, k, parallel, null); break;
                    case SimdLevel.Avx2: Run<Avx2GemmKernel>(job, m, n, k, parallel, null); break;
                    default: Portable(job, m, n, k); break;
                }
            }
        }
    }

    /// <summary>Diagnostics only (the benchmarks' <c>subnormals</c> audit): when set, every product passes its stored
    /// operands here before it runs — A and B as stored (rows × columns with their strides), and C when it is read
    /// (beta ≠ 0). Process-wide; never set by the library.</summary>
    internal static OperandAudit? Audit;

    /// <summary>Subnormal entries of a stored rows × columns operand with row stride <paramref name="ld"/> (for an
    /// <see cref="Audit"/>).</summary>
    internal static long SubnormalEntries(ReadOnlySpan<float> s, int rows, int columns, int ld)
    {
        long count = 0;
        for (int i = 0; i < rows; i++)
            foreach (float x in s.Slice(i * ld, columns))
                if (float.IsSubnormal(x)) count++;
        return count;
    }

    internal delegate void OperandAudit(ReadOnlySpan<float> a, int aRows, int aColumns, int lda, ReadOnlySpan<float> b, int bRows, int bColumns, int ldb,
        ReadOnlySpan<float> c, int cRows, int cColumns, int ldc, bool readsC);

    /// <summary>Shorthand for contiguous matrices: C (m×n) = alpha·op(A)·op(B) + beta·C.</summary>
    public static void Multiply(bool transposeA, bool transposeB, int m, int n, int k,
        ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, float alpha = 1f, float beta = 0f)
        => Multiply(transposeA, transposeB, m, n, k, alpha, a, transposeA ? m : k, b, transposeB ? k : n, beta, c, n);

    private static void CheckOperand(ReadOnlySpan<float> s, int rows, int cols, int ld, string name)
    {
        if (rows == 0 || cols == 0) return;
        if (ld < cols) throw new ArgumentOutOfRangeException(name, FormattableString.Invariant($"Leading dimension {ld} is smaller than the row length {cols}."));
        long need = (long)(rows - 1) * ld + cols;
        if (s.Length < need) throw new ArgumentException(FormattableString.Invariant($"Operand '{name}' has {s.Length} elements; {rows}×{cols} with stride {ld} needs {need}."), name);
    }

    private static void ScaleC(Span<float> c, int m, int n, int ldc, float beta)
    {
        if (beta == 1f) return;
        for (int i = 0; i < m; i++)
        {
            var row = c.Slice(i * ldc, n);
            if (beta == 0f) row.Clear();
            else System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
        }
    }

    private readonly unsafe struct Job
    {
        public readonly float* A, B, C;
        public readonly int Lda, Ldb, Ldc;
        public readonly bool TransA, TransB;
        public readonly float Alpha;
        /// <summary>When not null, C is not read in the first k-block (beta = 0; it may hold anything): this row is added
        /// instead, a row bias indexed by C's column (<see cref="AddendIsRow"/>) or else a row of zeros for every tile.</summary>
        public readonly float* FirstAddend;
        public readonly bool AddendIsRow;
        public Job(float* a, int lda, bool ta, float* b, int ldb, bool tb, float* c, int ldc, float alpha, float* firstAddend = null, bool addendIsRow = false)
        { A = a; Lda = lda; TransA = ta; B = b; Ldb = ldb; TransB = tb; C = c; Ldc = ldc; Alpha = alpha; FirstAddend = firstAddend; AddendIsRow = addendIsRow; }
    }

    private static unsafe void Run<TK>(Job job, int m, int n, int k, bool parallel, float* packedB) where TK : struct, IGemmKernel
    {
        if (parallel) RunParallel<TK>(job, m, n, k, packedB);
        else RunBlock<TK>(job, 0, m, 0, n, k, packedB);
    }

    /// <summary>Cuts C into independent blocks (whole micro-panels) and runs them on the engine's worker team.</summary>
    private static unsafe void RunParallel<TK>(Job job, int m, int n, int k, float* packedB) where TK : struct, IGemmKernel
    {
        int threads = Environment.ProcessorCount;
        int limit = DeepDensityEnvironment.MaxDegreeOfParallelism;
        if (limit > 0) threads = Math.Min(threads, limit);
        if (threads < 2) { RunBlock<TK>(job, 0, m, 0, n, k, packedB); return; }
        // A few blocks per thread balance load when another process shares a core (blocks are claimed dynamically).
        int perThread = (long)m * n * k >= 1L << 26 ? 3 : 1;
        // Split the longer side of C (in micro-panel units) so every block keeps full-width kernels. Every row block
        // packs all of op(B) and every column block all of op(A); but a kernel that keeps A panels in L1 repacks op(A)
        // for each NC-column block anyway, so column blocks of whole NC blocks duplicate no packing at all.
        int rowPanels = (m + TK.MR - 1) / TK.MR, colPanels = (n + TK.NR - 1) / TK.NR;
        bool byRows = rowPanels >= threads && (rowPanels * TK.MR >= colPanels * TK.NR || colPanels < threads);
        int unit = byRows ? TK.MR : TK.NR;
        if (TK.APanelOuter && n >= threads * TK.NC) { byRows = false; unit = TK.NC; }
        // A packed op(B) is shared by row blocks (column blocks would need offsets into it; nothing here gains from them).
        if (packedB != null) { byRows = true; unit = TK.MR; }
        int panels = ((byRows ? m : n) + unit - 1) / unit;
        if (panels < 2) { RunBlock<TK>(job, 0, m, 0, n, k, packedB); return; }
        int blocks = Math.Min(panels, threads * perThread);
        int panelsPerBlock = (panels + blocks - 1) / blocks;
        blocks = (panels + panelsPerBlock - 1) / panelsPerBlock;
        int span = panelsPerBlock * unit;
        // Column blocks of whole NC blocks are few on a square product (four at 2048³): a block that runs slowly (this
        // VM's cores drift by 10-20 % over milliseconds) left the other thread idle for most of a block at the end, and
        // two threads ran 1.68-1.75× one. Cutting the rows into slabs as well (a multiple of MR rows, each slab at
        // least two MC blocks) gives the atomic counter more, smaller units; each unit packs its own op(B) block (one
        // more op(B) packing per slab, ~1.4 % of the product each). No element changes: a unit computes whole tiles
        // with the same k-chains.
        int slabs = 1, slabRows = m;
        if (!byRows && blocks < threads * perThread)
        {
            slabs = Math.Min((threads * perThread + blocks - 1) / blocks, Math.Max(1, m / (2 * TK.MC)));
            slabRows = RoundUp((m + slabs - 1) / slabs, TK.MR);
            slabs = (m + slabRows - 1) / slabRows;
        }
        DeepDensityEnvironment.For(0, blocks * slabs, unit =>
        {
            int blk = unit / slabs, slab = unit % slabs;
            if (byRows) RunBlock<TK>(job, blk * span, Math.Min(m - blk * span, span), 0, n, k, packedB);
            else RunBlock<TK>(job, slab * slabRows, Math.Min(m - slab * slabRows, slabRows), blk * span, Math.Min(n - blk * span, span), k, null);
        });
    }

    /// <summary>The addend of a beta = 0 product's first k-block without a row bias: +0 for a whole tile row (NR ≤ 32).</summary>
    private static readonly float[] s_zeroRow = new float[64];

    [ThreadStatic] private static float[]? t_packA;
    [ThreadStatic] private static float[]? t_packB;

    /// <summary>A pinned per-thread buffer of at least <paramref name="length"/> floats (plus slack for spilling stores), 64-byte aligned.</summary>
    private static unsafe float* Buffer(ref float[]? cache, int length)
    {
        length += 32;
        if (cache is null || cache.Length < length + 16)
            cache = GC.AllocateUninitializedArray<float>(Math.Max(length + 16, cache?.Length * 2 ?? 0), pinned: true);
        float* p = (float*)Unsafe.AsPointer(ref cache[0]);
        return (float*)(((nuint)p + 63) & ~(nuint)63);
    }

    /// <summary>The serial algorithm on the block C[i0..i0+m, j0..j0+n].</summary>
    /// <remarks>With <paramref name="packedB"/> (all of op(B) in <see cref="Pack"/>'s layout; <paramref name="j0"/> = 0) nothing of op(B) is packed here.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void RunBlock<TK>(Job job, int i0, int m, int j0, int n, int k, float* packedB) where TK : struct, IGemmKernel
    {
        int MR = TK.MR, NR = TK.NR, MC = TK.MC, NC = TK.NC;
        int kcMax = Math.Min(KC, k);
        // In place: op(A) when small, or whenever its rows are contiguous in k: the micro-kernel broadcasts A's entries
        // from MR rows, which stay in L1 across a k-block, so packing them only copies (measured 2-10% slower at the
        // models' shapes and at 1000³-2048³, power-of-two strides included); op(B) when its rows are contiguous in n and
        // it is small or reused by few rows. Partial edge panels of
        // in-place operands are still packed (zero padded), so the micro-kernel never reads past an operand.
        bool directA = (long)Math.Min(m, MC) * kcMax <= InPlaceLimit || !job.TransA;
        bool directB = packedB == null && !job.TransB && ((long)kcMax * Math.Min(n, NC) <= InPlaceLimit || m <= 2 * MR);
        float* aPack = Buffer(ref t_packA, (directA ? MR : RoundUp(Math.Min(m, MC), MR)) * kcMax);
        float* bPack = packedB != null ? null : Buffer(ref t_packB, (directB ? NR : RoundUp(Math.Min(n, NC), NR)) * kcMax);
        float* tile = stackalloc float[MR * NR];

        for (int jc = 0; jc < n; jc += NC)
        {
            int nc = Math.Min(NC, n - jc);
            int lastJr = (nc - 1) / NR * NR;
            for (int pc = 0; pc < k; pc += KC)
            {
                int kc = Math.Min(KC, k - pc);
                if (packedB != null) bPack = packedB + PackedOffset<TK>(jc, nc, pc, k);
                else if (!directB) PackB<TK>(job, bPack, pc, kc, j0 + jc, nc);
                else if (nc - lastJr < NR) PackB<TK>(job, bPack, pc, kc, j0 + jc + lastJr, nc - lastJr);
                var blk = new Block(job, directA, directB, aPack, bPack, tile, i0, j0 + jc, pc, kc);
                for (int ic = 0; ic < m; ic += MC)
                {
                    int mc = Math.Min(MC, m - ic);
                    int lastIr = (mc - 1) / MR * MR;
                    if (!directA) PackA<TK>(job, aPack, i0 + ic, mc, pc, kc);
                    else if (mc - lastIr < MR) PackA<TK>(job, aPack, i0 + ic + lastIr, mc - lastIr, pc, kc);
                    if (TK.APanelOuter)
                    {
                        for (int ir = 0; ir < mc; ir += MR)
                            for (int jr = 0; jr < nc; jr += NR) Tile<TK>(blk, ic, ir, mc, jr, nc);
                    }
                    else
                    {
                        for (int jr = 0; jr < nc; jr += NR)
                            for (int ir = 0; ir < mc; ir += MR) Tile<TK>(blk, ic, ir, mc, jr, nc);
                    }
                }
            }
        }
    }

    /// <summary>The state of one (jc, pc) step of <see cref="RunBlock{TK}"/> that every tile reads.</summary>
    private readonly unsafe struct Block(Job job, bool directA, bool directB, float* aPack, float* bPack, float* tile,
        int i0, int j0, int pc, int kc)
    {
        public readonly Job Job = job;
        public readonly bool DirectA = directA, DirectB = directB;
        public readonly float* APack = aPack, BPack = bPack, Tile = tile;
        /// <summary>First row of the block in C, first column of this NC block in C, first k of this k-block.</summary>
        public readonly int I0 = i0, J0 = j0, Pc = pc, Kc = kc;
        /// <summary>This k-block writes C without reading it (the first one of a beta = 0 product).</summary>
        public readonly bool Overwrite = job.FirstAddend != null && pc == 0;
    }

    /// <summary>One micro-tile: rows ic+ir.. of the block, columns jr.. of the current NC block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Tile<TK>(in Block s, int ic, int ir, int mc, int jr, int nc) where TK : struct, IGemmKernel
    {
        int MR = TK.MR, NR = TK.NR;
        var job = s.Job;
        int kc = s.Kc, pc = s.Pc;
        int nr = Math.Min(NR, nc - jr), mr = Math.Min(MR, mc - ir);
        float* bPanel; nint bks;
        if (s.DirectB && nr == NR) { bPanel = job.B + (long)pc * job.Ldb + s.J0 + jr; bks = job.Ldb; }
        else { bPanel = s.BPack + (s.DirectB ? 0 : (long)(jr / NR) * NR * kc); bks = NR; }
        float* aPanel; nint ars, aks;
        if (s.DirectA && mr == MR)
        {
            int row = s.I0 + ic + ir;
            if (job.TransA) { aPanel = job.A + (long)pc * job.Lda + row; ars = 1; aks = job.Lda; }
            else { aPanel = job.A + (long)row * job.Lda + pc; ars = job.Lda; aks = 1; }
        }
        else { aPanel = s.APack + (s.DirectA ? 0 : (long)(ir / MR) * MR * kc); ars = 1; aks = MR; }
        nint ldc = job.Ldc;
        float* cTile = job.C + (long)(s.I0 + ic + ir) * ldc + s.J0 + jr;
        float* addend = !s.Overwrite ? null : job.AddendIsRow ? job.FirstAddend + s.J0 + jr : job.FirstAddend;
        if (mr == MR && nr == NR)
        {
            if (ars == 1 && aks == MR && bks == NR) TK.FullPacked(kc, aPanel, bPanel, cTile, ldc, job.Alpha, addend);
            else TK.Full(kc, aPanel, ars, aks, bPanel, bks, cTile, ldc, job.Alpha, addend);
        }
        else if (mr == MR && nr == NR / 2) TK.Half(kc, aPanel, ars, aks, bPanel, bks, cTile, ldc, job.Alpha, addend);
        else
        {
            // Edge tile: acc·1 + (−0) = acc exactly (signed zeros included), then C = fma(alpha, acc, C) as in the
            // full kernels, so edge elements get the same bits as they would inside a full tile.
            // A few rows (a block of 50 rows ends in a 2-row tile): their sums alone, not a 12-row tile of mostly
            // padding (the tile's rows hold the same chains either way).
            if (mr <= SmallEdgeRows && (NR == 16 || NR == 32) && Fma.IsSupported) SmallEdgeRowSums(kc, mr, NR, aPanel, ars, aks, bPanel, bks, s.Tile);
            else
            {
                new Span<float>(s.Tile, MR * NR).Fill(-0f);
                if (nr > NR / 2) TK.Full(kc, aPanel, ars, aks, bPanel, bks, s.Tile, NR, 1f, null);
                else TK.Half(kc, aPanel, ars, aks, bPanel, bks, s.Tile, NR, 1f, null);
            }
            EdgeStore(s.Tile, NR, cTile, ldc, job.Alpha, mr, nr, addend);
        }
    }

    /// <summary>Edge tiles of at most this many rows take <see cref="SmallEdgeRowSums"/>.</summary>
    private const int SmallEdgeRows = 4;

    /// <summary>
    /// The sums of an edge tile's first <paramref name="mr"/> (≤ 4) rows over all <paramref name="nr"/> (16 or 32)
    /// columns of its B panel (packed panels are zero padded; an in-place one is whole), written to
    /// <paramref name="tile"/> (row stride <paramref name="nr"/>) for <see cref="EdgeStore"/>: per element the kernels'
    /// chain, fma(a_ip, b_pj, sum) from +0 in increasing p, two rows at a time in up to eight 8-lane sums. A full tile's
    /// kernel would do the same work for all its 6 or 12 rows (a block of 50 rows ends in a 2-row tile; a product of one
    /// row, a PredictionEngine's, is nothing but one).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void SmallEdgeRowSums(int kc, int mr, int nr, float* a, nint ars, nint aks, float* b, nint bks, float* tile)
    {
        bool wide = nr == 32;
        for (int r = 0; r < mr; r += 2)
        {
            bool two = r + 1 < mr;
            float* ar = a + r * ars;
            Vector256<float> x0 = default, x1 = default, x2 = default, x3 = default, y0 = default, y1 = default, y2 = default, y3 = default;
            float* bp = b;
            for (int p = 0; p < kc; p++, bp += bks)
            {
                var b0 = Avx.LoadVector256(bp); var b1 = Avx.LoadVector256(bp + 8);
                var ax = Vector256.Create(ar[p * aks]);
                x0 = Fma.MultiplyAdd(ax, b0, x0); x1 = Fma.MultiplyAdd(ax, b1, x1);
                Vector256<float> b2 = default, b3 = default;
                if (wide)
                {
                    b2 = Avx.LoadVector256(bp + 16); b3 = Avx.LoadVector256(bp + 24);
                    x2 = Fma.MultiplyAdd(ax, b2, x2); x3 = Fma.MultiplyAdd(ax, b3, x3);
                }
                if (!two) continue;
                var ay = Vector256.Create(ar[ars + p * aks]);
                y0 = Fma.MultiplyAdd(ay, b0, y0); y1 = Fma.MultiplyAdd(ay, b1, y1);
                if (wide) { y2 = Fma.MultiplyAdd(ay, b2, y2); y3 = Fma.MultiplyAdd(ay, b3, y3); }
            }
            float* t = tile + r * nr;
            Avx.Store(t, x0); Avx.Store(t + 8, x1);
            if (wide) { Avx.Store(t + 16, x2); Avx.Store(t + 24, x3); }
            if (!two) continue;
            t += nr;
            Avx.Store(t, y0); Avx.Store(t + 8, y1);
            if (wide) { Avx.Store(t + 16, y2); Avx.Store(t + 24, y3); }
        }
    }

    /// <summary>Machines without FMA: same blocking and summation order, scalar fused multiply-adds.</summary>
    private static unsafe void Portable(Job job, int m, int n, int k)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                float* cij = job.C + (long)i * job.Ldc + j;
                for (int pc = 0; pc < k; pc += KC)
                {
                    int kc = Math.Min(KC, k - pc);
                    float acc = 0f;
                    for (int p = pc; p < pc + kc; p++)
                    {
                        float av = job.TransA ? job.A[(long)p * job.Lda + i] : job.A[(long)i * job.Lda + p];
                        float bv = job.TransB ? job.B[(long)j * job.Ldb + p] : job.B[(long)p * job.Ldb + j];
                        acc = MathF.FusedMultiplyAdd(av, bv, acc);
                    }
                    *cij = MathF.FusedMultiplyAdd(acc, job.Alpha, *cij);
                }
            }
    }
}
