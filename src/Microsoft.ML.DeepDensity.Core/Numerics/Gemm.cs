using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.DeepDensity.Numerics;

/// <summary>
/// Single-precision general matrix multiply on row-major storage:
/// <c>C = alpha · op(A) · op(B) + beta · C</c>, where op(A) is m×k, op(B) is k×n and C is m×n.
/// </summary>
/// <remarks>
/// <para>Goto/BLIS structure: op(B) is packed into k-blocks (KC) of 16-column panels, op(A) into 6-row panels, and a
/// 6×16 register-blocked FMA micro-kernel accumulates into C. Small operands are read in place instead of packed
/// (the micro-kernel takes strides), edge tiles use masked loads/stores, and pack buffers are per-thread and reused.</para>
/// <para>Determinism: every element of C is <c>C·beta</c> followed, for each k-block in order, by
/// <c>C ← fma(alpha, Σ_p op(A)[i,p]·op(B)[p,j], C)</c> with the inner sum a single FMA chain in increasing p. KC is
/// fixed, so that arithmetic depends on neither the thread count, nor how C is split between threads, nor how many
/// rows or columns the call has: the result for a row is the same whether it is multiplied alone or in a block.</para>
/// <para>Parallelism: large products are cut into independent blocks of C (row blocks, or column blocks when C is
/// wide and short); each thread packs what its block needs, so threads never wait for one another.</para>
/// </remarks>
public static class Gemm
{
    private const int MR = 6;
    private const int NR = 16;
    private const int KC = 256;
    private const int MC = 144;
    private const int NC = 4096;
    /// <summary>Products smaller than this many multiply-adds run on the calling thread.</summary>
    private const long ParallelThreshold = 1L << 19;
    /// <summary>Operands up to this many floats (per k-block) are read in place rather than packed.</summary>
    private const int InPlaceLimit = 8192;

    /// <summary><c>C = alpha · op(A) · op(B) + beta · C</c> (row-major; lda/ldb/ldc are row strides of the stored matrices).</summary>
    public static void Multiply(bool transposeA, bool transposeB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc, bool allowParallel = true)
    {
        if (m < 0 || n < 0 || k < 0) throw new ArgumentOutOfRangeException(nameof(m), "Matrix sizes must be non-negative.");
        CheckOperand(a, transposeA ? k : m, transposeA ? m : k, lda, nameof(a));
        CheckOperand(b, transposeB ? n : k, transposeB ? k : n, ldb, nameof(b));
        CheckOperand(c, m, n, ldc, nameof(c));
        if (m == 0 || n == 0) return;

        ScaleC(c, m, n, ldc, beta);
        if (k == 0 || alpha == 0f) return;

        unsafe
        {
            fixed (float* pa = a)
            fixed (float* pb = b)
            fixed (float* pc = c)
            {
                var job = new Job(pa, lda, transposeA, pb, ldb, transposeB, pc, ldc, alpha);
                bool parallel = allowParallel && (long)m * n * k >= ParallelThreshold && Environment.ProcessorCount > 1;
                if (!Fma.IsSupported) Portable(job, m, n, k);
                else if (parallel) RunParallel(job, m, n, k);
                else RunBlock(job, 0, m, 0, n, k);
            }
        }
    }

    /// <summary>Shorthand for contiguous matrices: C (m×n) = alpha·op(A)·op(B) + beta·C.</summary>
    public static void Multiply(bool transposeA, bool transposeB, int m, int n, int k,
        ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, float alpha = 1f, float beta = 0f)
        => Multiply(transposeA, transposeB, m, n, k, alpha, a, transposeA ? m : k, b, transposeB ? k : n, beta, c, n);

    private static void CheckOperand(ReadOnlySpan<float> s, int rows, int cols, int ld, string name)
    {
        if (rows == 0 || cols == 0) return;
        if (ld < cols) throw new ArgumentOutOfRangeException(name, $"Leading dimension {ld} is smaller than the row length {cols}.");
        long need = (long)(rows - 1) * ld + cols;
        if (s.Length < need) throw new ArgumentException($"Operand '{name}' has {s.Length} elements; {rows}×{cols} with stride {ld} needs {need}.", name);
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
        public Job(float* a, int lda, bool ta, float* b, int ldb, bool tb, float* c, int ldc, float alpha)
        { A = a; Lda = lda; TransA = ta; B = b; Ldb = ldb; TransB = tb; C = c; Ldc = ldc; Alpha = alpha; }
    }

    /// <summary>Cuts C into independent blocks (whole micro-panels) and runs them on the thread pool.</summary>
    private static unsafe void RunParallel(Job job, int m, int n, int k)
    {
        int threads = Environment.ProcessorCount;
        // Split the longer side of C (in micro-panel units) so every block keeps full-width kernels.
        int rowPanels = (m + MR - 1) / MR, colPanels = (n + NR - 1) / NR;
        bool byRows = rowPanels >= threads && (rowPanels * MR >= colPanels * NR || colPanels < threads);
        int panels = byRows ? rowPanels : colPanels;
        if (panels < 2) { RunBlock(job, 0, m, 0, n, k); return; }
        // A few blocks per thread balance load when another process shares a core; each block repacks its share of
        // the operands, so keep blocks large.
        int perThread = (long)m * n * k >= 1L << 26 ? 3 : 1;
        int blocks = Math.Min(panels, threads * perThread);
        int panelsPerBlock = (panels + blocks - 1) / blocks;
        blocks = (panels + panelsPerBlock - 1) / panelsPerBlock;
        DeepDensityEnvironment.For(0, blocks, blk =>
        {
            if (byRows)
            {
                int i0 = blk * panelsPerBlock * MR;
                RunBlock(job, i0, Math.Min(m - i0, panelsPerBlock * MR), 0, n, k);
            }
            else
            {
                int j0 = blk * panelsPerBlock * NR;
                RunBlock(job, 0, m, j0, Math.Min(n - j0, panelsPerBlock * NR), k);
            }
        });
    }

    [ThreadStatic] private static float[]? t_packA;
    [ThreadStatic] private static float[]? t_packB;

    /// <summary>A pinned per-thread buffer of at least <paramref name="length"/> floats, 64-byte aligned.</summary>
    private static unsafe float* Buffer(ref float[]? cache, int length)
    {
        if (cache is null || cache.Length < length + 16)
            cache = GC.AllocateUninitializedArray<float>(Math.Max(length + 16, cache?.Length * 2 ?? 0), pinned: true);
        float* p = (float*)Unsafe.AsPointer(ref cache[0]);
        return (float*)(((nuint)p + 63) & ~(nuint)63);
    }

    /// <summary>The serial algorithm on the block C[i0..i0+m, j0..j0+n].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void RunBlock(Job job, int i0, int m, int j0, int n, int k)
    {
        int kcMax = Math.Min(KC, k);
        // In place: op(A) when small, or when its rows are contiguous in k and C is too narrow to amortise packing;
        // op(B) when its rows are contiguous in n and it is small or reused by few rows. Partial edge panels of
        // in-place operands are still packed (zero padded), so the micro-kernel never reads past an operand.
        bool directA = (long)Math.Min(m, MC) * kcMax <= InPlaceLimit || (!job.TransA && n <= 3 * NR);
        bool directB = !job.TransB && ((long)kcMax * Math.Min(n, NC) <= InPlaceLimit || m <= 2 * MR);
        float* aPack = Buffer(ref t_packA, (directA ? MR : RoundUp(Math.Min(m, MC), MR)) * kcMax + 8);
        float* bPack = Buffer(ref t_packB, (directB ? NR : RoundUp(Math.Min(n, NC), NR)) * kcMax + 8);
        float* tile = stackalloc float[MR * NR];
        float alpha = job.Alpha;
        nint ldc = job.Ldc;

        for (int jc = 0; jc < n; jc += NC)
        {
            int nc = Math.Min(NC, n - jc);
            int lastJr = (nc - 1) / NR * NR;
            for (int pc = 0; pc < k; pc += KC)
            {
                int kc = Math.Min(KC, k - pc);
                if (!directB) PackB(job, bPack, pc, kc, j0 + jc, nc);
                else if (nc - lastJr < NR) PackB(job, bPack, pc, kc, j0 + jc + lastJr, nc - lastJr);
                for (int ic = 0; ic < m; ic += MC)
                {
                    int mc = Math.Min(MC, m - ic);
                    int lastIr = (mc - 1) / MR * MR;
                    if (!directA) PackA(job, aPack, i0 + ic, mc, pc, kc);
                    else if (mc - lastIr < MR) PackA(job, aPack, i0 + ic + lastIr, mc - lastIr, pc, kc);
                    for (int jr = 0; jr < nc; jr += NR)
                    {
                        int nr = Math.Min(NR, nc - jr);
                        float* bPanel; nint bks;
                        if (directB && nr == NR) { bPanel = job.B + (long)pc * job.Ldb + j0 + jc + jr; bks = job.Ldb; }
                        else { bPanel = bPack + (directB ? 0 : (long)(jr / NR) * NR * kc); bks = NR; }
                        for (int ir = 0; ir < mc; ir += MR)
                        {
                            int mr = Math.Min(MR, mc - ir);
                            float* aPanel; nint ars, aks;
                            if (directA && mr == MR)
                            {
                                int row = i0 + ic + ir;
                                if (job.TransA) { aPanel = job.A + (long)pc * job.Lda + row; ars = 1; aks = job.Lda; }
                                else { aPanel = job.A + (long)row * job.Lda + pc; ars = job.Lda; aks = 1; }
                            }
                            else { aPanel = aPack + (directA ? 0 : (long)(ir / MR) * MR * kc); ars = 1; aks = MR; }
                            float* cTile = job.C + (long)(i0 + ic + ir) * ldc + j0 + jc + jr;
                            if (mr == MR && nr == NR) Kernel6x16(kc, aPanel, ars, aks, bPanel, bks, cTile, ldc, alpha);
                            else if (mr == MR && nr == 8) Kernel6x8(kc, aPanel, ars, aks, bPanel, bks, cTile, ldc, alpha);
                            else
                            {
                                // Edge tile: acc·1 + 0 = acc exactly, then C = fma(alpha, acc, C) as in the full kernels.
                                new Span<float>(tile, MR * NR).Clear();
                                if (nr > 8) Kernel6x16(kc, aPanel, ars, aks, bPanel, bks, tile, NR, 1f);
                                else Kernel6x8(kc, aPanel, ars, aks, bPanel, bks, tile, NR, 1f);
                                EdgeStore(tile, cTile, ldc, alpha, mr, nr);
                            }
                        }
                    }
                }
            }
        }
    }

    private static int RoundUp(int x, int to) => (x + to - 1) / to * to;

    private static readonly int[] MaskTable = { -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0 };

    /// <summary>Lanes 0..count−1 set (count in 0..8).</summary>
    private static unsafe Vector256<float> Mask(int count)
    {
        fixed (int* t = MaskTable) return Avx.LoadVector256(t + 8 - count).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void EdgeStore(float* tile, float* c, nint ldc, float alpha, int mr, int nr)
    {
        var va = Vector256.Create(alpha);
        var lo = Mask(Math.Min(8, nr));
        var hi = Mask(Math.Max(0, nr - 8));
        for (int r = 0; r < mr; r++, c += ldc)
        {
            StoreMasked(c, Avx.LoadVector256(tile + r * NR), va, lo);
            if (nr > 8) StoreMasked(c + 8, Avx.LoadVector256(tile + r * NR + 8), va, hi);
        }
    }

    /// <summary>6×16 tile: C[r, 0..16) = fma(alpha, Σ_p a[r·ars + p·aks] · b[p·bks + 0..16), C) for r &lt; 6.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Kernel6x16(int kc, float* a, nint ars, nint aks, float* b, nint bks, float* c, nint ldc, float alpha)
    {
        float* a3 = a + 3 * ars;
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Avx.LoadVector256(b);
            var b1 = Avx.LoadVector256(b + 8);
            var v = Vector256.Create(a[0]); c00 = Fma.MultiplyAdd(v, b0, c00); c01 = Fma.MultiplyAdd(v, b1, c01);
            v = Vector256.Create(a[ars]); c10 = Fma.MultiplyAdd(v, b0, c10); c11 = Fma.MultiplyAdd(v, b1, c11);
            v = Vector256.Create(a[2 * ars]); c20 = Fma.MultiplyAdd(v, b0, c20); c21 = Fma.MultiplyAdd(v, b1, c21);
            v = Vector256.Create(a3[0]); c30 = Fma.MultiplyAdd(v, b0, c30); c31 = Fma.MultiplyAdd(v, b1, c31);
            v = Vector256.Create(a3[ars]); c40 = Fma.MultiplyAdd(v, b0, c40); c41 = Fma.MultiplyAdd(v, b1, c41);
            v = Vector256.Create(a3[2 * ars]); c50 = Fma.MultiplyAdd(v, b0, c50); c51 = Fma.MultiplyAdd(v, b1, c51);
            a += aks; a3 += aks; b += bks;
        }
        var va = Vector256.Create(alpha);
        Store16(c, c00, c01, va); Store16(c + ldc, c10, c11, va); Store16(c + 2 * ldc, c20, c21, va);
        Store16(c + 3 * ldc, c30, c31, va); Store16(c + 4 * ldc, c40, c41, va); Store16(c + 5 * ldc, c50, c51, va);
    }

    /// <summary>As <see cref="Kernel6x16"/> for 8 columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Kernel6x8(int kc, float* a, nint ars, nint aks, float* b, nint bks, float* c, nint ldc, float alpha)
    {
        float* a3 = a + 3 * ars;
        Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Avx.LoadVector256(b);
            c0 = Fma.MultiplyAdd(Vector256.Create(a[0]), b0, c0);
            c1 = Fma.MultiplyAdd(Vector256.Create(a[ars]), b0, c1);
            c2 = Fma.MultiplyAdd(Vector256.Create(a[2 * ars]), b0, c2);
            c3 = Fma.MultiplyAdd(Vector256.Create(a3[0]), b0, c3);
            c4 = Fma.MultiplyAdd(Vector256.Create(a3[ars]), b0, c4);
            c5 = Fma.MultiplyAdd(Vector256.Create(a3[2 * ars]), b0, c5);
            a += aks; a3 += aks; b += bks;
        }
        var va = Vector256.Create(alpha);
        Store8(c, c0, va); Store8(c + ldc, c1, va); Store8(c + 2 * ldc, c2, va);
        Store8(c + 3 * ldc, c3, va); Store8(c + 4 * ldc, c4, va); Store8(c + 5 * ldc, c5, va);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Store16(float* c, Vector256<float> lo, Vector256<float> hi, Vector256<float> alpha)
    {
        Avx.Store(c, Fma.MultiplyAdd(lo, alpha, Avx.LoadVector256(c)));
        Avx.Store(c + 8, Fma.MultiplyAdd(hi, alpha, Avx.LoadVector256(c + 8)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Store8(float* c, Vector256<float> v, Vector256<float> alpha)
        => Avx.Store(c, Fma.MultiplyAdd(v, alpha, Avx.LoadVector256(c)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreMasked(float* c, Vector256<float> v, Vector256<float> alpha, Vector256<float> mask)
        => Avx.MaskStore(c, mask, Fma.MultiplyAdd(v, alpha, Avx.MaskLoad(c, mask)));

    /// <summary>Packs op(A)[ic.., pc..] into MR-row panels: panel-major, then k, then the MR rows (zero padded).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void PackA(Job job, float* dst, int ic, int mc, int pc, int kc)
    {
        for (int ir = 0; ir < mc; ir += MR)
        {
            int mr = Math.Min(MR, mc - ir);
            float* panel = dst + (ir / MR) * MR * kc;
            if (job.TransA)
            {
                // op(A)[i,p] = A[p, i]: the panel's rows are contiguous in the stored matrix. Each 8-lane store spills
                // two lanes into the next k-step, which that step then overwrites (the buffer has slack at the end).
                float* src = job.A + (long)pc * job.Lda + ic + ir;
                var mask = Mask(mr);
                for (int p = 0; p < kc; p++, src += job.Lda)
                    Avx.Store(panel + p * MR, Avx.MaskLoad(src, mask));
            }
            else
            {
                float* r0 = job.A + (long)(ic + ir) * job.Lda + pc;
                nint lda = job.Lda;
                float* r1 = mr > 1 ? r0 + lda : null, r2 = mr > 2 ? r0 + 2 * lda : null;
                float* r3 = mr > 3 ? r0 + 3 * lda : null, r4 = mr > 4 ? r0 + 4 * lda : null, r5 = mr > 5 ? r0 + 5 * lda : null;
                int p = 0;
                if (mr == MR)
                {
                    // 8×8 transposes of (6 rows + 2 zero rows) × 8 k-steps; overlapping 8-lane stores as above.
                    for (; p + 8 <= kc; p += 8)
                    {
                        Transpose8(Avx.LoadVector256(r0 + p), Avx.LoadVector256(r1 + p), Avx.LoadVector256(r2 + p),
                            Avx.LoadVector256(r3 + p), Avx.LoadVector256(r4 + p), Avx.LoadVector256(r5 + p),
                            Vector256<float>.Zero, Vector256<float>.Zero,
                            out var t0, out var t1, out var t2, out var t3, out var t4, out var t5, out var t6, out var t7);
                        float* d = panel + p * MR;
                        Avx.Store(d, t0); Avx.Store(d + 6, t1); Avx.Store(d + 12, t2); Avx.Store(d + 18, t3);
                        Avx.Store(d + 24, t4); Avx.Store(d + 30, t5); Avx.Store(d + 36, t6);
                        // The last store must not spill past this block into a step written earlier: write 6 lanes.
                        Avx.MaskStore(d + 42, Mask(6), t7);
                    }
                }
                for (; p < kc; p++)
                {
                    float* d = panel + p * MR;
                    d[0] = r0[p];
                    d[1] = mr > 1 ? r1[p] : 0f; d[2] = mr > 2 ? r2[p] : 0f; d[3] = mr > 3 ? r3[p] : 0f;
                    d[4] = mr > 4 ? r4[p] : 0f; d[5] = mr > 5 ? r5[p] : 0f;
                }
            }
        }
    }

    /// <summary>Packs op(B)[pc.., jc..] into NR-column panels: panel-major, then k, then the NR columns (zero padded).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void PackB(Job job, float* dst, int pc, int kc, int jc, int nc)
    {
        nint ldb = job.Ldb;
        for (int jr = 0; jr < nc; jr += NR)
        {
            int ncur = Math.Min(NR, nc - jr);
            float* panel = dst + (jr / NR) * NR * kc;
            if (!job.TransB)
            {
                float* src = job.B + (long)pc * ldb + jc + jr;
                if (ncur == NR)
                {
                    for (int p = 0; p < kc; p++, src += ldb)
                    {
                        Avx.Store(panel + p * NR, Avx.LoadVector256(src));
                        Avx.Store(panel + p * NR + 8, Avx.LoadVector256(src + 8));
                    }
                }
                else
                {
                    var lo = Mask(Math.Min(8, ncur)); var hi = Mask(Math.Max(0, ncur - 8));
                    for (int p = 0; p < kc; p++, src += ldb)
                    {
                        Avx.Store(panel + p * NR, Avx.MaskLoad(src, lo));
                        Avx.Store(panel + p * NR + 8, Avx.MaskLoad(src + 8, hi));
                    }
                }
            }
            else
            {
                // op(B)[p,j] = B[j,p]: each stored row j is one column of the panel; transpose 8×8 blocks.
                float* src = job.B + (long)(jc + jr) * ldb + pc;
                for (int half = 0; half < 2; half++)
                {
                    int cols = Math.Min(8, ncur - half * 8);
                    float* d0 = panel + half * 8;
                    if (cols <= 0)
                    {
                        for (int p = 0; p < kc; p++) Avx.Store(d0 + p * NR, Vector256<float>.Zero);
                        continue;
                    }
                    float* s = src + half * 8 * ldb;
                    int p0 = 0;
                    if (cols == 8)
                    {
                        for (; p0 + 8 <= kc; p0 += 8)
                        {
                            float* q = s + p0;
                            Transpose8(Avx.LoadVector256(q), Avx.LoadVector256(q + ldb), Avx.LoadVector256(q + 2 * ldb),
                                Avx.LoadVector256(q + 3 * ldb), Avx.LoadVector256(q + 4 * ldb), Avx.LoadVector256(q + 5 * ldb),
                                Avx.LoadVector256(q + 6 * ldb), Avx.LoadVector256(q + 7 * ldb),
                                out var t0, out var t1, out var t2, out var t3, out var t4, out var t5, out var t6, out var t7);
                            float* d = d0 + p0 * NR;
                            Avx.Store(d, t0); Avx.Store(d + NR, t1); Avx.Store(d + 2 * NR, t2); Avx.Store(d + 3 * NR, t3);
                            Avx.Store(d + 4 * NR, t4); Avx.Store(d + 5 * NR, t5); Avx.Store(d + 6 * NR, t6); Avx.Store(d + 7 * NR, t7);
                        }
                    }
                    for (int p = p0; p < kc; p++)
                    {
                        float* d = d0 + p * NR;
                        int j = 0;
                        for (; j < cols; j++) d[j] = s[j * ldb + p];
                        for (; j < 8; j++) d[j] = 0f;
                    }
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8(Vector256<float> r0, Vector256<float> r1, Vector256<float> r2, Vector256<float> r3,
        Vector256<float> r4, Vector256<float> r5, Vector256<float> r6, Vector256<float> r7,
        out Vector256<float> o0, out Vector256<float> o1, out Vector256<float> o2, out Vector256<float> o3,
        out Vector256<float> o4, out Vector256<float> o5, out Vector256<float> o6, out Vector256<float> o7)
    {
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var s0 = Avx.Shuffle(t0, t2, 0x44); var s1 = Avx.Shuffle(t0, t2, 0xEE);
        var s2 = Avx.Shuffle(t1, t3, 0x44); var s3 = Avx.Shuffle(t1, t3, 0xEE);
        var s4 = Avx.Shuffle(t4, t6, 0x44); var s5 = Avx.Shuffle(t4, t6, 0xEE);
        var s6 = Avx.Shuffle(t5, t7, 0x44); var s7 = Avx.Shuffle(t5, t7, 0xEE);
        o0 = Avx.Permute2x128(s0, s4, 0x20); o1 = Avx.Permute2x128(s1, s5, 0x20);
        o2 = Avx.Permute2x128(s2, s6, 0x20); o3 = Avx.Permute2x128(s3, s7, 0x20);
        o4 = Avx.Permute2x128(s0, s4, 0x31); o5 = Avx.Permute2x128(s1, s5, 0x31);
        o6 = Avx.Permute2x128(s2, s6, 0x31); o7 = Avx.Permute2x128(s3, s7, 0x31);
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
