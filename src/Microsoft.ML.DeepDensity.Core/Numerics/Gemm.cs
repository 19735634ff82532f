using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.DeepDensity.Numerics;

/// <summary>
/// Single-precision general matrix multiply on row-major storage:
/// <c>C = alpha · op(A) · op(B) + beta · C</c>, where op(A) is m×k, op(B) is k×n and C is m×n.
/// </summary>
/// <remarks>
/// Goto/BLIS structure: B is packed into k-blocks of 16-column panels, A into 6-row panels, and a 6×16
/// register-blocked FMA micro-kernel accumulates into C. Row blocks of C run in parallel when the product is
/// large enough to pay for it. Every element of C is computed by one thread in a fixed summation order, so results
/// do not depend on the number of threads.
/// </remarks>
public static class Gemm
{
    private const int MR = 6;
    private const int NR = 16;
    private const int KC = 256;
    private const int MC = 72;
    private const int NC = 4096;
    /// <summary>Products smaller than this many multiply-adds run on the calling thread.</summary>
    private const long ParallelThreshold = 1L << 18;

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
                Run(job, m, n, k, allowParallel && (long)m * n * k >= ParallelThreshold && Environment.ProcessorCount > 1);
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

    private static unsafe void Run(Job job, int m, int n, int k, bool parallel)
    {
        int threads = parallel ? Math.Min(Environment.ProcessorCount, Math.Max(1, (m + MR - 1) / MR)) : 1;
        // Row-block height: small enough that every thread gets work, a multiple of MR.
        int mc = Math.Min(MC, RoundUp((m + threads - 1) / threads, MR));
        int rowBlocks = (m + mc - 1) / mc;
        var pool = ArrayPool<float>.Shared;
        for (int jc = 0; jc < n; jc += NC)
        {
            int nc = Math.Min(NC, n - jc);
            int ncPanels = (nc + NR - 1) / NR;
            for (int pc = 0; pc < k; pc += KC)
            {
                int kc = Math.Min(KC, k - pc);
                float[] bPack = pool.Rent(ncPanels * NR * kc);
                try
                {
                    fixed (float* bp = bPack) PackB(job, bp, pc, kc, jc, nc);
                    if (threads > 1 && rowBlocks > 1)
                    {
                        var bArr = bPack;
                        Parallel.For(0, rowBlocks, DeepDensityEnvironment.ParallelOptions(threads),
                            rb => RowBlock(job, bArr, rb * mc, Math.Min(mc, m - rb * mc), pc, kc, jc, nc));
                    }
                    else
                    {
                        for (int rb = 0; rb < rowBlocks; rb++)
                            RowBlock(job, bPack, rb * mc, Math.Min(mc, m - rb * mc), pc, kc, jc, nc);
                    }
                }
                finally { pool.Return(bPack); }
            }
        }
    }

    private static int RoundUp(int x, int to) => Math.Max(to, (x + to - 1) / to * to);

    private static unsafe void RowBlock(Job job, float[] bPack, int ic, int mcur, int pc, int kc, int jc, int nc)
    {
        int mPanels = (mcur + MR - 1) / MR;
        float[] aPack = ArrayPool<float>.Shared.Rent(mPanels * MR * kc);
        try
        {
            fixed (float* ap = aPack)
            fixed (float* bp = bPack)
            {
                PackA(job, ap, ic, mcur, pc, kc);
                float* tile = stackalloc float[MR * NR];
                for (int jr = 0; jr < nc; jr += NR)
                {
                    int ncur = Math.Min(NR, nc - jr);
                    float* bPanel = bp + (jr / NR) * NR * kc;
                    for (int ir = 0; ir < mcur; ir += MR)
                    {
                        int mr = Math.Min(MR, mcur - ir);
                        float* aPanel = ap + (ir / MR) * MR * kc;
                        float* cTile = job.C + (long)(ic + ir) * job.Ldc + jc + jr;
                        if (mr == MR && ncur == NR)
                            Kernel6x16(kc, aPanel, bPanel, cTile, job.Ldc, job.Alpha);
                        else
                        {
                            new Span<float>(tile, MR * NR).Clear();
                            Kernel6x16(kc, aPanel, bPanel, tile, NR, job.Alpha);
                            for (int r = 0; r < mr; r++)
                            {
                                float* dst = cTile + (long)r * job.Ldc;
                                float* src = tile + r * NR;
                                for (int cc = 0; cc < ncur; cc++) dst[cc] += src[cc];
                            }
                        }
                    }
                }
            }
        }
        finally { ArrayPool<float>.Shared.Return(aPack); }
    }

    /// <summary>Packs op(A)[ic.., pc..] into MR-row panels: panel-major, then k, then the MR rows (zero padded).</summary>
    private static unsafe void PackA(Job job, float* dst, int ic, int mcur, int pc, int kc)
    {
        for (int ir = 0; ir < mcur; ir += MR)
        {
            int mr = Math.Min(MR, mcur - ir);
            float* panel = dst + (ir / MR) * MR * kc;
            if (job.TransA)
            {
                // op(A)[i,p] = A[p, i]: rows of the panel are contiguous in the stored matrix.
                for (int p = 0; p < kc; p++)
                {
                    float* src = job.A + (long)(pc + p) * job.Lda + ic + ir;
                    float* d = panel + p * MR;
                    int r = 0;
                    for (; r < mr; r++) d[r] = src[r];
                    for (; r < MR; r++) d[r] = 0f;
                }
            }
            else
            {
                for (int r = 0; r < MR; r++)
                {
                    if (r < mr)
                    {
                        float* src = job.A + (long)(ic + ir + r) * job.Lda + pc;
                        for (int p = 0; p < kc; p++) panel[p * MR + r] = src[p];
                    }
                    else for (int p = 0; p < kc; p++) panel[p * MR + r] = 0f;
                }
            }
        }
    }

    /// <summary>Packs op(B)[pc.., jc..] into NR-column panels: panel-major, then k, then the NR columns (zero padded).</summary>
    private static unsafe void PackB(Job job, float* dst, int pc, int kc, int jc, int nc)
    {
        for (int jr = 0; jr < nc; jr += NR)
        {
            int ncur = Math.Min(NR, nc - jr);
            float* panel = dst + (jr / NR) * NR * kc;
            if (!job.TransB)
            {
                for (int p = 0; p < kc; p++)
                {
                    float* src = job.B + (long)(pc + p) * job.Ldb + jc + jr;
                    float* d = panel + p * NR;
                    if (ncur == NR && Vector256.IsHardwareAccelerated)
                    {
                        Vector256.Store(Vector256.Load(src), d);
                        Vector256.Store(Vector256.Load(src + 8), d + 8);
                    }
                    else
                    {
                        int c = 0;
                        for (; c < ncur; c++) d[c] = src[c];
                        for (; c < NR; c++) d[c] = 0f;
                    }
                }
            }
            else
            {
                // op(B)[p,j] = B[j,p]: each stored row j is one column of the panel.
                for (int c = 0; c < NR; c++)
                {
                    if (c < ncur)
                    {
                        float* src = job.B + (long)(jc + jr + c) * job.Ldb + pc;
                        for (int p = 0; p < kc; p++) panel[p * NR + c] = src[p];
                    }
                    else for (int p = 0; p < kc; p++) panel[p * NR + c] = 0f;
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Kernel6x16(int kc, float* a, float* b, float* c, int ldc, float alpha)
    {
        if (Fma.IsSupported)
        {
            Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
            Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
            for (int p = 0; p < kc; p++)
            {
                var b0 = Avx.LoadVector256(b);
                var b1 = Avx.LoadVector256(b + 8);
                var a0 = Vector256.Create(a[0]); c00 = Fma.MultiplyAdd(a0, b0, c00); c01 = Fma.MultiplyAdd(a0, b1, c01);
                var a1 = Vector256.Create(a[1]); c10 = Fma.MultiplyAdd(a1, b0, c10); c11 = Fma.MultiplyAdd(a1, b1, c11);
                var a2 = Vector256.Create(a[2]); c20 = Fma.MultiplyAdd(a2, b0, c20); c21 = Fma.MultiplyAdd(a2, b1, c21);
                var a3 = Vector256.Create(a[3]); c30 = Fma.MultiplyAdd(a3, b0, c30); c31 = Fma.MultiplyAdd(a3, b1, c31);
                var a4 = Vector256.Create(a[4]); c40 = Fma.MultiplyAdd(a4, b0, c40); c41 = Fma.MultiplyAdd(a4, b1, c41);
                var a5 = Vector256.Create(a[5]); c50 = Fma.MultiplyAdd(a5, b0, c50); c51 = Fma.MultiplyAdd(a5, b1, c51);
                a += MR; b += NR;
            }
            var va = Vector256.Create(alpha);
            Store(c, c00, c01, va); Store(c + ldc, c10, c11, va); Store(c + 2 * ldc, c20, c21, va);
            Store(c + 3 * ldc, c30, c31, va); Store(c + 4 * ldc, c40, c41, va); Store(c + 5 * ldc, c50, c51, va);
        }
        else
        {
            // Portable path (no FMA): same packed layout, accumulate in a local tile.
            float* acc = stackalloc float[MR * NR];
            new Span<float>(acc, MR * NR).Clear();
            for (int p = 0; p < kc; p++)
            {
                for (int r = 0; r < MR; r++)
                {
                    float ar = a[r];
                    float* row = acc + r * NR;
                    for (int j = 0; j < NR; j++) row[j] += ar * b[j];
                }
                a += MR; b += NR;
            }
            for (int r = 0; r < MR; r++)
                for (int j = 0; j < NR; j++) c[r * ldc + j] += alpha * acc[r * NR + j];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Store(float* c, Vector256<float> lo, Vector256<float> hi, Vector256<float> alpha)
    {
        Avx.Store(c, Fma.MultiplyAdd(lo, alpha, Avx.LoadVector256(c)));
        Avx.Store(c + 8, Fma.MultiplyAdd(hi, alpha, Avx.LoadVector256(c + 8)));
    }
}
