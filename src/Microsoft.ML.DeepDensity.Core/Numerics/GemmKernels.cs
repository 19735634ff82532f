using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.DeepDensity.Numerics;

/// <summary>
/// A register-blocked GEMM micro-kernel and the blocking that suits it. Every kernel computes, for each element of its
/// MR×NR tile, <c>C ← fma(Σ_p a[r·ars + p·aks] · b[p·bks + col], alpha, C)</c> with the inner sum one FMA chain in
/// increasing p starting from +0 — the same arithmetic on every path, so all paths give bit-identical results. With an
/// <c>addend</c> row (the first k-block of a product with beta = 0) the C it reads is that row, the same for every row of
/// the tile, instead of memory: a row of +0 gives the bits of clearing C first, a bias row those of copying the bias into
/// every row of C first, each without the pass over C that it saves.
/// </summary>
internal unsafe interface IGemmKernel
{
    /// <summary>Rows of a micro-tile (rows of an op(A) panel).</summary>
    static abstract int MR { get; }
    /// <summary>Columns of a micro-tile (columns of an op(B) panel); a multiple of 8.</summary>
    static abstract int NR { get; }
    /// <summary>Rows of op(A) packed per block.</summary>
    static abstract int MC { get; }
    /// <summary>Columns of op(B) packed per block (KC × NC floats are meant to stay in L2).</summary>
    static abstract int NC { get; }
    /// <summary>
    /// True: each op(A) micro-panel stays in L1 while all op(B) panels of the block stream past it (wide NR kernels,
    /// whose B panel would fill L1); false: each op(B) panel stays in L1 while the op(A) panels stream.
    /// </summary>
    static abstract bool APanelOuter { get; }
    /// <summary>The full MR×NR tile.</summary>
    static abstract void Full(int kc, float* a, nint ars, nint aks, float* b, nint bks, float* c, nint ldc, float alpha, float* addend);
    /// <summary><see cref="Full"/> on packed panels (ars = 1, aks = MR, bks = NR).</summary>
    static abstract void FullPacked(int kc, float* a, float* b, float* c, nint ldc, float alpha, float* addend);
    /// <summary>An MR×(NR/2) tile, for panels with at most NR/2 live columns.</summary>
    static abstract void Half(int kc, float* a, nint ars, nint aks, float* b, nint bks, float* c, nint ldc, float alpha, float* addend);
}

/// <summary>AVX2/FMA: 6×16 tiles (12 ymm accumulators).</summary>
internal readonly struct Avx2GemmKernel : IGemmKernel
{
    public static int MR => 6;
    public static int NR => 16;
    public static int MC => 144;
    public static int NC => 4096;
    public static bool APanelOuter => false;

    public static unsafe void FullPacked(int kc, float* a, float* b, float* c, nint ldc, float alpha, float* addend)
        => Full(kc, a, 1, MR, b, NR, c, ldc, alpha, addend);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe void Full(int kc, float* a, nint ars, nint aks, float* b, nint bks, float* c, nint ldc, float alpha, float* addend)
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
        Store(c, c00, c01, va, addend); Store(c + ldc, c10, c11, va, addend);
        c += 2 * ldc; Store(c, c20, c21, va, addend); Store(c + ldc, c30, c31, va, addend);
        c += 2 * ldc; Store(c, c40, c41, va, addend); Store(c + ldc, c50, c51, va, addend);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe void Half(int kc, float* a, nint ars, nint aks, float* b, nint bks, float* c, nint ldc, float alpha, float* addend)
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
        Store(c, c0, va, addend); Store(c + ldc, c1, va, addend); Store(c + 2 * ldc, c2, va, addend);
        Store(c + 3 * ldc, c3, va, addend); Store(c + 4 * ldc, c4, va, addend); Store(c + 5 * ldc, c5, va, addend);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Store(float* c, Vector256<float> acc, Vector256<float> alpha, float* addend)
        => Avx.Store(c, Fma.MultiplyAdd(acc, alpha, Avx.LoadVector256(addend != null ? addend : c)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Store(float* c, Vector256<float> lo, Vector256<float> hi, Vector256<float> alpha, float* addend)
    {
        Store(c, lo, alpha, addend);
        Store(c + 8, hi, alpha, addend != null ? addend + 8 : null);
    }
}

/// <summary>
/// AVX-512F: 12×32 tiles (24 zmm accumulators, two B vectors, A broadcast from memory), the BLIS/OpenBLAS SkylakeX
/// shape transposed to row-major C. The 12×KC op(A) panel (12 KB) stays in L1 while the 32-column op(B) panels of a
/// KC×NC block (512 KB, within L2 on every AVX-512 part) stream past it.
/// </summary>
internal readonly struct Avx512GemmKernel : IGemmKernel
{
    public static int MR => 12;
    public static int NR => 32;
    public static int MC => 240;
    public static int NC => 512;
    public static bool APanelOuter => true;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe void Full(int kc, float* a, nint ars, nint aks, float* b, nint bks, float* c, nint ldc, float alpha, float* addend)
    {
        float* a4 = a + 4 * ars, a8 = a + 8 * ars;
        nint ars2 = 2 * ars, ars3 = 3 * ars;
        Vector512<float> c0a = default, c0b = default, c1a = default, c1b = default, c2a = default, c2b = default;
        Vector512<float> c3a = default, c3b = default, c4a = default, c4b = default, c5a = default, c5b = default;
        Vector512<float> c6a = default, c6b = default, c7a = default, c7b = default, c8a = default, c8b = default;
        Vector512<float> c9a = default, c9b = default, cAa = default, cAb = default, cBa = default, cBb = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Avx512F.LoadVector512(b);
            var b1 = Avx512F.LoadVector512(b + 16);
            var v = Vector512.Create(a[0]); c0a = Avx512F.FusedMultiplyAdd(v, b0, c0a); c0b = Avx512F.FusedMultiplyAdd(v, b1, c0b);
            v = Vector512.Create(a[ars]); c1a = Avx512F.FusedMultiplyAdd(v, b0, c1a); c1b = Avx512F.FusedMultiplyAdd(v, b1, c1b);
            v = Vector512.Create(a[ars2]); c2a = Avx512F.FusedMultiplyAdd(v, b0, c2a); c2b = Avx512F.FusedMultiplyAdd(v, b1, c2b);
            v = Vector512.Create(a[ars3]); c3a = Avx512F.FusedMultiplyAdd(v, b0, c3a); c3b = Avx512F.FusedMultiplyAdd(v, b1, c3b);
            v = Vector512.Create(a4[0]); c4a = Avx512F.FusedMultiplyAdd(v, b0, c4a); c4b = Avx512F.FusedMultiplyAdd(v, b1, c4b);
            v = Vector512.Create(a4[ars]); c5a = Avx512F.FusedMultiplyAdd(v, b0, c5a); c5b = Avx512F.FusedMultiplyAdd(v, b1, c5b);
            v = Vector512.Create(a4[ars2]); c6a = Avx512F.FusedMultiplyAdd(v, b0, c6a); c6b = Avx512F.FusedMultiplyAdd(v, b1, c6b);
            v = Vector512.Create(a4[ars3]); c7a = Avx512F.FusedMultiplyAdd(v, b0, c7a); c7b = Avx512F.FusedMultiplyAdd(v, b1, c7b);
            v = Vector512.Create(a8[0]); c8a = Avx512F.FusedMultiplyAdd(v, b0, c8a); c8b = Avx512F.FusedMultiplyAdd(v, b1, c8b);
            v = Vector512.Create(a8[ars]); c9a = Avx512F.FusedMultiplyAdd(v, b0, c9a); c9b = Avx512F.FusedMultiplyAdd(v, b1, c9b);
            v = Vector512.Create(a8[ars2]); cAa = Avx512F.FusedMultiplyAdd(v, b0, cAa); cAb = Avx512F.FusedMultiplyAdd(v, b1, cAb);
            v = Vector512.Create(a8[ars3]); cBa = Avx512F.FusedMultiplyAdd(v, b0, cBa); cBb = Avx512F.FusedMultiplyAdd(v, b1, cBb);
            a += aks; a4 += aks; a8 += aks; b += bks;
        }
        var va = Vector512.Create(alpha);
        Store(c, c0a, c0b, va, addend); c += ldc; Store(c, c1a, c1b, va, addend); c += ldc; Store(c, c2a, c2b, va, addend); c += ldc;
        Store(c, c3a, c3b, va, addend); c += ldc; Store(c, c4a, c4b, va, addend); c += ldc; Store(c, c5a, c5b, va, addend); c += ldc;
        Store(c, c6a, c6b, va, addend); c += ldc; Store(c, c7a, c7b, va, addend); c += ldc; Store(c, c8a, c8b, va, addend); c += ldc;
        Store(c, c9a, c9b, va, addend); c += ldc; Store(c, cAa, cAb, va, addend); c += ldc; Store(c, cBa, cBb, va, addend);
    }

    /// <summary>
    /// <see cref="Full"/> for packed panels (A rows 1 apart and k-steps 12 apart, B k-steps 32 apart, both 64-byte
    /// aligned): constant offsets and a 4× unrolled k-loop keep the loop to the 38 vector instructions a step needs.
    /// Same arithmetic as <see cref="Full"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe void FullPacked(int kc, float* a, float* b, float* c, nint ldc, float alpha, float* addend)
    {
        Vector512<float> c0a = default, c0b = default, c1a = default, c1b = default, c2a = default, c2b = default, c3a = default, c3b = default, c4a = default, c4b = default, c5a = default, c5b = default;
        Vector512<float> c6a = default, c6b = default, c7a = default, c7b = default, c8a = default, c8b = default, c9a = default, c9b = default, cAa = default, cAb = default, cBa = default, cBb = default;
        Vector512<float> b0, b1, v;
        int p = 0;
        for (; p + 4 <= kc; p += 4)
        {
            b0 = Avx512F.LoadVector512(b + 0); b1 = Avx512F.LoadVector512(b + 16);
            v = Vector512.Create(a[0]); c0a = Avx512F.FusedMultiplyAdd(v, b0, c0a); c0b = Avx512F.FusedMultiplyAdd(v, b1, c0b);
            v = Vector512.Create(a[1]); c1a = Avx512F.FusedMultiplyAdd(v, b0, c1a); c1b = Avx512F.FusedMultiplyAdd(v, b1, c1b);
            v = Vector512.Create(a[2]); c2a = Avx512F.FusedMultiplyAdd(v, b0, c2a); c2b = Avx512F.FusedMultiplyAdd(v, b1, c2b);
            v = Vector512.Create(a[3]); c3a = Avx512F.FusedMultiplyAdd(v, b0, c3a); c3b = Avx512F.FusedMultiplyAdd(v, b1, c3b);
            v = Vector512.Create(a[4]); c4a = Avx512F.FusedMultiplyAdd(v, b0, c4a); c4b = Avx512F.FusedMultiplyAdd(v, b1, c4b);
            v = Vector512.Create(a[5]); c5a = Avx512F.FusedMultiplyAdd(v, b0, c5a); c5b = Avx512F.FusedMultiplyAdd(v, b1, c5b);
            v = Vector512.Create(a[6]); c6a = Avx512F.FusedMultiplyAdd(v, b0, c6a); c6b = Avx512F.FusedMultiplyAdd(v, b1, c6b);
            v = Vector512.Create(a[7]); c7a = Avx512F.FusedMultiplyAdd(v, b0, c7a); c7b = Avx512F.FusedMultiplyAdd(v, b1, c7b);
            v = Vector512.Create(a[8]); c8a = Avx512F.FusedMultiplyAdd(v, b0, c8a); c8b = Avx512F.FusedMultiplyAdd(v, b1, c8b);
            v = Vector512.Create(a[9]); c9a = Avx512F.FusedMultiplyAdd(v, b0, c9a); c9b = Avx512F.FusedMultiplyAdd(v, b1, c9b);
            v = Vector512.Create(a[10]); cAa = Avx512F.FusedMultiplyAdd(v, b0, cAa); cAb = Avx512F.FusedMultiplyAdd(v, b1, cAb);
            v = Vector512.Create(a[11]); cBa = Avx512F.FusedMultiplyAdd(v, b0, cBa); cBb = Avx512F.FusedMultiplyAdd(v, b1, cBb);
            b0 = Avx512F.LoadVector512(b + 32); b1 = Avx512F.LoadVector512(b + 48);
            v = Vector512.Create(a[12]); c0a = Avx512F.FusedMultiplyAdd(v, b0, c0a); c0b = Avx512F.FusedMultiplyAdd(v, b1, c0b);
            v = Vector512.Create(a[13]); c1a = Avx512F.FusedMultiplyAdd(v, b0, c1a); c1b = Avx512F.FusedMultiplyAdd(v, b1, c1b);
            v = Vector512.Create(a[14]); c2a = Avx512F.FusedMultiplyAdd(v, b0, c2a); c2b = Avx512F.FusedMultiplyAdd(v, b1, c2b);
            v = Vector512.Create(a[15]); c3a = Avx512F.FusedMultiplyAdd(v, b0, c3a); c3b = Avx512F.FusedMultiplyAdd(v, b1, c3b);
            v = Vector512.Create(a[16]); c4a = Avx512F.FusedMultiplyAdd(v, b0, c4a); c4b = Avx512F.FusedMultiplyAdd(v, b1, c4b);
            v = Vector512.Create(a[17]); c5a = Avx512F.FusedMultiplyAdd(v, b0, c5a); c5b = Avx512F.FusedMultiplyAdd(v, b1, c5b);
            v = Vector512.Create(a[18]); c6a = Avx512F.FusedMultiplyAdd(v, b0, c6a); c6b = Avx512F.FusedMultiplyAdd(v, b1, c6b);
            v = Vector512.Create(a[19]); c7a = Avx512F.FusedMultiplyAdd(v, b0, c7a); c7b = Avx512F.FusedMultiplyAdd(v, b1, c7b);
            v = Vector512.Create(a[20]); c8a = Avx512F.FusedMultiplyAdd(v, b0, c8a); c8b = Avx512F.FusedMultiplyAdd(v, b1, c8b);
            v = Vector512.Create(a[21]); c9a = Avx512F.FusedMultiplyAdd(v, b0, c9a); c9b = Avx512F.FusedMultiplyAdd(v, b1, c9b);
            v = Vector512.Create(a[22]); cAa = Avx512F.FusedMultiplyAdd(v, b0, cAa); cAb = Avx512F.FusedMultiplyAdd(v, b1, cAb);
            v = Vector512.Create(a[23]); cBa = Avx512F.FusedMultiplyAdd(v, b0, cBa); cBb = Avx512F.FusedMultiplyAdd(v, b1, cBb);
            b0 = Avx512F.LoadVector512(b + 64); b1 = Avx512F.LoadVector512(b + 80);
            v = Vector512.Create(a[24]); c0a = Avx512F.FusedMultiplyAdd(v, b0, c0a); c0b = Avx512F.FusedMultiplyAdd(v, b1, c0b);
            v = Vector512.Create(a[25]); c1a = Avx512F.FusedMultiplyAdd(v, b0, c1a); c1b = Avx512F.FusedMultiplyAdd(v, b1, c1b);
            v = Vector512.Create(a[26]); c2a = Avx512F.FusedMultiplyAdd(v, b0, c2a); c2b = Avx512F.FusedMultiplyAdd(v, b1, c2b);
            v = Vector512.Create(a[27]); c3a = Avx512F.FusedMultiplyAdd(v, b0, c3a); c3b = Avx512F.FusedMultiplyAdd(v, b1, c3b);
            v = Vector512.Create(a[28]); c4a = Avx512F.FusedMultiplyAdd(v, b0, c4a); c4b = Avx512F.FusedMultiplyAdd(v, b1, c4b);
            v = Vector512.Create(a[29]); c5a = Avx512F.FusedMultiplyAdd(v, b0, c5a); c5b = Avx512F.FusedMultiplyAdd(v, b1, c5b);
            v = Vector512.Create(a[30]); c6a = Avx512F.FusedMultiplyAdd(v, b0, c6a); c6b = Avx512F.FusedMultiplyAdd(v, b1, c6b);
            v = Vector512.Create(a[31]); c7a = Avx512F.FusedMultiplyAdd(v, b0, c7a); c7b = Avx512F.FusedMultiplyAdd(v, b1, c7b);
            v = Vector512.Create(a[32]); c8a = Avx512F.FusedMultiplyAdd(v, b0, c8a); c8b = Avx512F.FusedMultiplyAdd(v, b1, c8b);
            v = Vector512.Create(a[33]); c9a = Avx512F.FusedMultiplyAdd(v, b0, c9a); c9b = Avx512F.FusedMultiplyAdd(v, b1, c9b);
            v = Vector512.Create(a[34]); cAa = Avx512F.FusedMultiplyAdd(v, b0, cAa); cAb = Avx512F.FusedMultiplyAdd(v, b1, cAb);
            v = Vector512.Create(a[35]); cBa = Avx512F.FusedMultiplyAdd(v, b0, cBa); cBb = Avx512F.FusedMultiplyAdd(v, b1, cBb);
            b0 = Avx512F.LoadVector512(b + 96); b1 = Avx512F.LoadVector512(b + 112);
            v = Vector512.Create(a[36]); c0a = Avx512F.FusedMultiplyAdd(v, b0, c0a); c0b = Avx512F.FusedMultiplyAdd(v, b1, c0b);
            v = Vector512.Create(a[37]); c1a = Avx512F.FusedMultiplyAdd(v, b0, c1a); c1b = Avx512F.FusedMultiplyAdd(v, b1, c1b);
            v = Vector512.Create(a[38]); c2a = Avx512F.FusedMultiplyAdd(v, b0, c2a); c2b = Avx512F.FusedMultiplyAdd(v, b1, c2b);
            v = Vector512.Create(a[39]); c3a = Avx512F.FusedMultiplyAdd(v, b0, c3a); c3b = Avx512F.FusedMultiplyAdd(v, b1, c3b);
            v = Vector512.Create(a[40]); c4a = Avx512F.FusedMultiplyAdd(v, b0, c4a); c4b = Avx512F.FusedMultiplyAdd(v, b1, c4b);
            v = Vector512.Create(a[41]); c5a = Avx512F.FusedMultiplyAdd(v, b0, c5a); c5b = Avx512F.FusedMultiplyAdd(v, b1, c5b);
            v = Vector512.Create(a[42]); c6a = Avx512F.FusedMultiplyAdd(v, b0, c6a); c6b = Avx512F.FusedMultiplyAdd(v, b1, c6b);
            v = Vector512.Create(a[43]); c7a = Avx512F.FusedMultiplyAdd(v, b0, c7a); c7b = Avx512F.FusedMultiplyAdd(v, b1, c7b);
            v = Vector512.Create(a[44]); c8a = Avx512F.FusedMultiplyAdd(v, b0, c8a); c8b = Avx512F.FusedMultiplyAdd(v, b1, c8b);
            v = Vector512.Create(a[45]); c9a = Avx512F.FusedMultiplyAdd(v, b0, c9a); c9b = Avx512F.FusedMultiplyAdd(v, b1, c9b);
            v = Vector512.Create(a[46]); cAa = Avx512F.FusedMultiplyAdd(v, b0, cAa); cAb = Avx512F.FusedMultiplyAdd(v, b1, cAb);
            v = Vector512.Create(a[47]); cBa = Avx512F.FusedMultiplyAdd(v, b0, cBa); cBb = Avx512F.FusedMultiplyAdd(v, b1, cBb);
            a += 48; b += 128;
        }
        for (; p < kc; p++)
        {
            b0 = Avx512F.LoadVector512(b + 0); b1 = Avx512F.LoadVector512(b + 16);
            v = Vector512.Create(a[0]); c0a = Avx512F.FusedMultiplyAdd(v, b0, c0a); c0b = Avx512F.FusedMultiplyAdd(v, b1, c0b);
            v = Vector512.Create(a[1]); c1a = Avx512F.FusedMultiplyAdd(v, b0, c1a); c1b = Avx512F.FusedMultiplyAdd(v, b1, c1b);
            v = Vector512.Create(a[2]); c2a = Avx512F.FusedMultiplyAdd(v, b0, c2a); c2b = Avx512F.FusedMultiplyAdd(v, b1, c2b);
            v = Vector512.Create(a[3]); c3a = Avx512F.FusedMultiplyAdd(v, b0, c3a); c3b = Avx512F.FusedMultiplyAdd(v, b1, c3b);
            v = Vector512.Create(a[4]); c4a = Avx512F.FusedMultiplyAdd(v, b0, c4a); c4b = Avx512F.FusedMultiplyAdd(v, b1, c4b);
            v = Vector512.Create(a[5]); c5a = Avx512F.FusedMultiplyAdd(v, b0, c5a); c5b = Avx512F.FusedMultiplyAdd(v, b1, c5b);
            v = Vector512.Create(a[6]); c6a = Avx512F.FusedMultiplyAdd(v, b0, c6a); c6b = Avx512F.FusedMultiplyAdd(v, b1, c6b);
            v = Vector512.Create(a[7]); c7a = Avx512F.FusedMultiplyAdd(v, b0, c7a); c7b = Avx512F.FusedMultiplyAdd(v, b1, c7b);
            v = Vector512.Create(a[8]); c8a = Avx512F.FusedMultiplyAdd(v, b0, c8a); c8b = Avx512F.FusedMultiplyAdd(v, b1, c8b);
            v = Vector512.Create(a[9]); c9a = Avx512F.FusedMultiplyAdd(v, b0, c9a); c9b = Avx512F.FusedMultiplyAdd(v, b1, c9b);
            v = Vector512.Create(a[10]); cAa = Avx512F.FusedMultiplyAdd(v, b0, cAa); cAb = Avx512F.FusedMultiplyAdd(v, b1, cAb);
            v = Vector512.Create(a[11]); cBa = Avx512F.FusedMultiplyAdd(v, b0, cBa); cBb = Avx512F.FusedMultiplyAdd(v, b1, cBb);
            a += 12; b += 32;
        }
        var va = Vector512.Create(alpha);
        Store(c, c0a, c0b, va, addend); c += ldc; Store(c, c1a, c1b, va, addend); c += ldc; Store(c, c2a, c2b, va, addend); c += ldc;
        Store(c, c3a, c3b, va, addend); c += ldc; Store(c, c4a, c4b, va, addend); c += ldc; Store(c, c5a, c5b, va, addend); c += ldc;
        Store(c, c6a, c6b, va, addend); c += ldc; Store(c, c7a, c7b, va, addend); c += ldc; Store(c, c8a, c8b, va, addend); c += ldc;
        Store(c, c9a, c9b, va, addend); c += ldc; Store(c, cAa, cAb, va, addend); c += ldc; Store(c, cBa, cBb, va, addend);
    }


    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe void Half(int kc, float* a, nint ars, nint aks, float* b, nint bks, float* c, nint ldc, float alpha, float* addend)
    {
        float* a4 = a + 4 * ars, a8 = a + 8 * ars;
        nint ars2 = 2 * ars, ars3 = 3 * ars;
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        Vector512<float> c6 = default, c7 = default, c8 = default, c9 = default, cA = default, cB = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Avx512F.LoadVector512(b);
            c0 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[0]), b0, c0);
            c1 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[ars]), b0, c1);
            c2 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[ars2]), b0, c2);
            c3 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[ars3]), b0, c3);
            c4 = Avx512F.FusedMultiplyAdd(Vector512.Create(a4[0]), b0, c4);
            c5 = Avx512F.FusedMultiplyAdd(Vector512.Create(a4[ars]), b0, c5);
            c6 = Avx512F.FusedMultiplyAdd(Vector512.Create(a4[ars2]), b0, c6);
            c7 = Avx512F.FusedMultiplyAdd(Vector512.Create(a4[ars3]), b0, c7);
            c8 = Avx512F.FusedMultiplyAdd(Vector512.Create(a8[0]), b0, c8);
            c9 = Avx512F.FusedMultiplyAdd(Vector512.Create(a8[ars]), b0, c9);
            cA = Avx512F.FusedMultiplyAdd(Vector512.Create(a8[ars2]), b0, cA);
            cB = Avx512F.FusedMultiplyAdd(Vector512.Create(a8[ars3]), b0, cB);
            a += aks; a4 += aks; a8 += aks; b += bks;
        }
        var va = Vector512.Create(alpha);
        Store(c, c0, va, addend); c += ldc; Store(c, c1, va, addend); c += ldc; Store(c, c2, va, addend); c += ldc; Store(c, c3, va, addend); c += ldc;
        Store(c, c4, va, addend); c += ldc; Store(c, c5, va, addend); c += ldc; Store(c, c6, va, addend); c += ldc; Store(c, c7, va, addend); c += ldc;
        Store(c, c8, va, addend); c += ldc; Store(c, c9, va, addend); c += ldc; Store(c, cA, va, addend); c += ldc; Store(c, cB, va, addend);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Store(float* c, Vector512<float> acc, Vector512<float> alpha, float* addend)
        => Avx512F.Store(c, Avx512F.FusedMultiplyAdd(acc, alpha, Avx512F.LoadVector512(addend != null ? addend : c)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Store(float* c, Vector512<float> lo, Vector512<float> hi, Vector512<float> alpha, float* addend)
    {
        Store(c, lo, alpha, addend);
        Store(c + 16, hi, alpha, addend != null ? addend + 16 : null);
    }
}
