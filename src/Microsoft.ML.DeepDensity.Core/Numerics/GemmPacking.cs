using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.DeepDensity.Numerics;

/// <summary>Packing of op(A)/op(B) blocks into micro-panels and masked edge stores (AVX, shared by both SIMD paths).</summary>
internal static partial class Gemm
{
    private static int RoundUp(int x, int to) => (x + to - 1) / to * to;

    private static readonly int[] MaskTable = { -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0 };

    /// <summary>Lanes 0..count−1 set (count clamped to 0..8).</summary>
    private static unsafe Vector256<float> Mask(int count)
    {
        count = Math.Clamp(count, 0, 8);
        fixed (int* t = MaskTable) return Avx.LoadVector256(t + 8 - count).AsSingle();
    }

    /// <summary>C[0..mr, 0..nr) = fma(tile, alpha, C) (with an <paramref name="addend"/> row, fma(tile, alpha, addend) in every
    /// row, C not read) for a tile stored with row stride <paramref name="tileStride"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void EdgeStore(float* tile, int tileStride, float* c, nint ldc, float alpha, int mr, int nr, float* addend)
    {
        var va = Vector256.Create(alpha);
        for (int g = 0; g < nr; g += 8)
        {
            var mask = Mask(nr - g);
            float* cg = c + g, tg = tile + g;
            for (int r = 0; r < mr; r++, cg += ldc, tg += tileStride)
                Avx.MaskStore(cg, mask, Fma.MultiplyAdd(Avx.LoadVector256(tg), va, Avx.MaskLoad(addend != null ? addend + g : cg, mask)));
        }
    }

    /// <summary>
    /// Packs op(A)[ic.., pc..] into MR-row panels: panel-major, then k, then the MR rows (zero padded).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void PackA<TK>(Job job, float* dst, int ic, int mc, int pc, int kc) where TK : struct, IGemmKernel
    {
        int MR = TK.MR;
        if (job.TransA)
        {
            // op(A)[i,p] = A[p, i]: each stored row p holds step p of every panel. Reading the rows in order keeps the
            // loads sequential (a panel-by-panel walk strides by lda per step, which at power-of-two lda thrashes L1).
            int full = mc / MR * MR, rest = mc - full;
            // Lanes to load per 8-lane group: full panels, then the zero-padded last panel.
            Vector256<float> fullLo = Mask(MR), fullHi = Mask(MR - 8), edgeLo = Mask(rest), edgeHi = Mask(rest - 8);
            for (int p = 0; p < kc; p++)
            {
                float* src = job.A + (long)(pc + p) * job.Lda + ic;
                float* d = dst + p * MR;
                for (int ir = 0; ir < full; ir += MR, d += MR * kc) StoreAStep(d, src + ir, fullLo, fullHi, MR);
                if (rest > 0) StoreAStep(d, src + full, edgeLo, edgeHi, MR);
            }
            return;
        }
        // A non-transposed A is read in place (RunBlock); only its partial last panel is packed here, zero padded.
        for (int ir = 0; ir < mc; ir += MR)
        {
            int mr = Math.Min(MR, mc - ir);
            float* panel = dst + (long)(ir / MR) * MR * kc;
            nint lda = job.Lda;
            float* r0 = job.A + (long)(ic + ir) * lda + pc;
            for (int p = 0; p < kc; p++)
            {
                float* d = panel + p * MR;
                int r = 0;
                for (; r < mr; r++) d[r] = r0[r * lda + p];
                for (; r < MR; r++) d[r] = 0f;
            }
        }
    }

    /// <summary>Writes exactly MR (6 or 12) floats: the lanes of <paramref name="src"/> the masks select, zero elsewhere.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreAStep(float* d, float* src, Vector256<float> lo, Vector256<float> hi, int MR)
    {
        var v = Avx.MaskLoad(src, lo);
        if (MR == 6)
        {
            Sse.Store(d, v.GetLower());
            Sse.StoreLow(d + 4, v.GetUpper());
        }
        else
        {
            Avx.Store(d, v);
            Sse.Store(d + 8, Avx.MaskLoad(src + 8, hi).GetLower());
        }
    }

    /// <summary>
    /// op(B) packed once for several products with the same right operand (a layer's weights times several row blocks
    /// of one training step): the micro-panels <see cref="RunBlock{TK}"/> would pack, every NC-column block and k-block,
    /// for the kernel of the thread that packed it. Reused (repacked in place) by later <see cref="Pack"/> calls.
    /// </summary>
    internal sealed class PackedOperand
    {
        internal float[] Buffer = Array.Empty<float>(); // pinned
        internal bool TransB;
        internal int K, N;
        internal SimdLevel Level;

        internal bool Fits(bool transB, int k, int n, SimdLevel current)
            => transB == TransB && k == K && n == N && Level != SimdLevel.Portable && current != SimdLevel.Portable;

        /// <summary>The 64-byte-aligned start inside the pinned buffer at <paramref name="p"/>.</summary>
        internal unsafe float* Start(float* p) => (float*)(((nuint)p + 63) & ~(nuint)63);
    }

    /// <summary>Where block (jc, pc) of a packed op(B) starts: whole NC blocks of k·NC floats, then within the block k-blocks
    /// of kc·RoundUp(nc, NR) floats.</summary>
    private static long PackedOffset<TK>(int jc, int nc, int pc, int k) where TK : struct, IGemmKernel
        => (long)(jc / TK.NC) * TK.NC * k + (long)RoundUp(nc, TK.NR) * pc;

    /// <summary>
    /// Packs op(B) (k×n; B stored with row stride <paramref name="ldb"/>) for <see cref="Multiply(bool, bool, int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, Span{float}, int, bool, PackedOperand?, ReadOnlySpan{float})"/>
    /// calls that pass it as their packedB, into <paramref name="packed"/> (created or reused). Without a SIMD kernel it
    /// packs nothing and the products pack as usual. With <paramref name="allowParallel"/> the blocks are packed on the
    /// worker team.
    /// </summary>
    public static unsafe void Pack(bool transposeB, int k, int n, ReadOnlySpan<float> b, int ldb, ref PackedOperand? packed, bool allowParallel = true)
    {
        if (k < 1 || n < 1) throw new ArgumentOutOfRangeException(nameof(k), "A packed operand needs k ≥ 1 and n ≥ 1.");
        CheckOperand(b, transposeB ? n : k, transposeB ? k : n, ldb, nameof(b));
        packed ??= new PackedOperand();
        var level = KernelPath.Current;
        packed.TransB = transposeB; packed.K = k; packed.N = n; packed.Level = level;
        if (level == SimdLevel.Portable) return;
        int nr = level == SimdLevel.Avx512 ? Avx512GemmKernel.NR : Avx2GemmKernel.NR;
        long length = (long)RoundUp(n, nr) * k + 16;
        if (packed.Buffer.Length < length) packed.Buffer = GC.AllocateUninitializedArray<float>(checked((int)length), pinned: true);
        fixed (float* pb = b)
        fixed (float* pp = packed.Buffer)
        {
            var job = new Job(null, 0, false, pb, ldb, transposeB, null, 0, 1f);
            float* dst = packed.Start(pp);
            if (level == SimdLevel.Avx512) PackAll<Avx512GemmKernel>(job, dst, k, n, allowParallel);
            else PackAll<Avx2GemmKernel>(job, dst, k, n, allowParallel);
        }
    }

    private static unsafe void PackAll<TK>(Job job, float* dst, int k, int n, bool allowParallel) where TK : struct, IGemmKernel
    {
        int kBlocks = (k + KC - 1) / KC, nBlocks = (n + TK.NC - 1) / TK.NC;
        int units = kBlocks * nBlocks;
        if (allowParallel && units > 1 && (long)k * n >= 1L << 15) PackAllInParallel<TK>(job, dst, k, n, kBlocks, units);
        else for (int i = 0; i < units; i++) PackUnit<TK>(job, dst, k, n, kBlocks, i);
    }

    // Its own method: a lambda's captures are allocated on entry to the method that declares them, and a serial pack
    // (IWAE scoring packs its decoders per call, one row per call allocating nothing) must not allocate.
    private static unsafe void PackAllInParallel<TK>(Job job, float* dst, int k, int n, int kBlocks, int units) where TK : struct, IGemmKernel
    {
        nint address = (nint)dst;
        DeepDensityEnvironment.For(0, units, i => PackUnit<TK>(job, (float*)address, k, n, kBlocks, i));
    }

    /// <summary>Packs block i (NC-column block i / kBlocks, k-block i % kBlocks) of op(B) for <see cref="PackAll{TK}"/>.</summary>
    private static unsafe void PackUnit<TK>(Job job, float* dst, int k, int n, int kBlocks, int i) where TK : struct, IGemmKernel
    {
        int jc = i / kBlocks * TK.NC, pc = i % kBlocks * KC;
        int nc = Math.Min(TK.NC, n - jc), kc = Math.Min(KC, k - pc);
        PackB<TK>(job, dst + PackedOffset<TK>(jc, nc, pc, k), pc, kc, jc, nc);
    }

    /// <summary>Packs op(B)[pc.., jc..] into NR-column panels: panel-major, then k, then the NR columns (zero padded).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void PackB<TK>(Job job, float* dst, int pc, int kc, int jc, int nc) where TK : struct, IGemmKernel
    {
        int NR = TK.NR;
        nint ldb = job.Ldb;
        for (int jr = 0; jr < nc; jr += NR)
        {
            int ncur = Math.Min(NR, nc - jr);
            float* panel = dst + (long)(jr / NR) * NR * kc;
            if (!job.TransB)
            {
                float* src = job.B + (long)pc * ldb + jc + jr;
                if (ncur == NR && NR == 32)
                {
                    // The AVX-512 kernel's 32-column panels: two 512-bit copies per k-step.
                    for (int p = 0; p < kc; p++, src += ldb)
                    {
                        Vector512.Load(src).Store(panel + p * NR);
                        Vector512.Load(src + 16).Store(panel + p * NR + 16);
                    }
                }
                else if (ncur == NR)
                {
                    for (int p = 0; p < kc; p++, src += ldb)
                        for (int g = 0; g < NR; g += 8) Avx.Store(panel + p * NR + g, Avx.LoadVector256(src + g));
                }
                else
                {
                    for (int p = 0; p < kc; p++, src += ldb)
                        for (int g = 0; g < NR; g += 8) Avx.Store(panel + p * NR + g, Avx.MaskLoad(src + g, Mask(ncur - g)));
                }
                continue;
            }
            // op(B)[p,j] = B[j,p]: each stored row j is one column of the panel; transpose 8×8 blocks (16×16 blocks in
            // 512-bit registers measured slower at the IWAE's 50 × 784 × 200).
            float* rows = job.B + (long)(jc + jr) * ldb + pc;
            for (int g = 0; g < NR; g += 8)
            {
                int cols = Math.Min(8, ncur - g);
                float* d0 = panel + g;
                if (cols <= 0)
                {
                    for (int p = 0; p < kc; p++) Avx.Store(d0 + p * NR, Vector256<float>.Zero);
                    continue;
                }
                float* s = rows + g * ldb;
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
                // The k-steps the 8×8 transposes did not cover (all of them for a partial group of columns).
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
}
