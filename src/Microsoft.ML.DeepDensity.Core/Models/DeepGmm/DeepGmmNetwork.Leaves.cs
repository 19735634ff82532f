using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Microsoft.ML.DeepDensity.Numerics;

namespace Microsoft.ML.DeepDensity.Models.DeepGmm;

/// <summary>
/// The leaf layer's fused kernel: the paths' scores from the rows that reach layer 0, without writing the
/// back-transformed rows to memory.
/// </summary>
/// <remarks>
/// Every path ends in a layer-0 node, and scoring it needs only ‖Q_i·u + e_i‖² of the row u that reached that node. The
/// GEMM route writes all K₀·D back-transformed values of every row and reads them again for the squared norms; at the
/// sizes Deep GMMs have (D ≈ 64, K₀ up to hundreds) that round trip through L2 and the per-(row, path) dot products
/// cost as much as the products themselves. This kernel keeps a 6-row × 64-column tile of z = Q_i·u + e_i in 24
/// AVX-512 registers, streams Q_iᵀ (L1-resident: D × 64 floats) and squares the tile in place. It is the scoring core of
/// the exact E-step, of validation and of every <c>LogDensity</c> call. Rows alone (a PredictionEngine) and rows in a
/// block take the same arithmetic per row — each z element is the fused multiply-add chain over u from zero, then
/// + e; each 64-column chunk is squared and summed in the same order — so a row scores the same bits either way.
/// Without AVX-512 (or with a lower <see cref="KernelPath"/> forced) the GEMM route runs; the two routes agree to
/// float rounding (the tests compare them).
/// </remarks>
internal sealed partial class DeepGmmNetwork
{
    private const int LeafChunk = 64;

    /// <summary>Columns of <see cref="LeafQt"/>: D rounded up to a multiple of 64 (four 16-float vectors).</summary>
    public int Dq { get; private set; }

    /// <summary>Per layer-0 node: Qᵀ (D rows × <see cref="Dq"/> columns, zero padded) and e padded to Dq.</summary>
    public float[][] LeafQt { get; private set; } = Array.Empty<float[]>();
    public float[][] LeafE { get; private set; } = Array.Empty<float[]>();

    /// <summary>Whether the fused leaf kernel runs on this thread (AVX-512 and no lower path forced).</summary>
    private static bool FusedLeaves => KernelPath.Current == SimdLevel.Avx512 && Vector512.IsHardwareAccelerated;

    private void RefreshLeaves()
    {
        int dq = (D + LeafChunk - 1) / LeafChunk * LeafChunk, k0 = Components[0];
        Dq = dq;
        var qt = new float[k0][];
        var e = new float[k0][];
        for (int i = 0; i < k0; i++)
        {
            var q = Q[Node(0, i)];
            var t = new float[D * dq];
            for (int r = 0; r < D; r++)
                for (int c = 0; c < D; c++) t[c * dq + r] = q[r * D + c];
            qt[i] = t;
            var ep = new float[dq];
            E[Node(0, i)].CopyTo(ep, 0);
            e[i] = ep;
        }
        LeafQt = qt; LeafE = e;
    }

    /// <summary>Scores[r·P + pathBase + i] = log π + Σ log|det Q| + log N(Q_i u_r + e_i | 0, I) for every layer-0 node i
    /// and each of <paramref name="n"/> rows u_r (<paramref name="ldu"/> floats apart).</summary>
    private unsafe void ScoreLeavesFused(ReadOnlySpan<float> u, int ldu, int n, int pathBase, double logDetSum, ScoringWorkspace ws)
    {
        if (n <= 0) return;
        if ((long)(n - 1) * ldu + D > u.Length) throw new ArgumentException("The rows are shorter than their count and stride need.", nameof(u));
        int pc = PathCount, d = D, dq = Dq;
        Span<float> ss = n <= RowsPerBlock ? stackalloc float[RowsPerBlock] : new float[n];
        var scores = ws.Scores;
        fixed (float* pu = u)
        {
            for (int i = 0; i < Components[0]; i++)
            {
                int path = pathBase + i * Stride[0];
                float offset = (float)(PathLogPrior[path] + (logDetSum + LogDet[Node(0, i)]) - D * HalfLog2Pi);
                fixed (float* pq = LeafQt[i], pe = LeafE[i])
                {
                    for (int c = 0; c < dq; c += LeafChunk)
                    {
                        bool first = c == 0;
                        int r = 0;
                        for (; r + 6 <= n; r += 6) SquaredNorms6(pu + (nint)r * ldu, ldu, d, pq + c, dq, pe + c, ss.Slice(r, 6), first);
                        for (; r < n; r++) ss[r] = SquaredNorm1(pu + (nint)r * ldu, d, pq + c, dq, pe + c, first ? 0f : ss[r], first);
                    }
                }
                for (int r = 0; r < n; r++) scores[r * pc + path] = offset - 0.5f * ss[r];
            }
        }
    }

    /// <summary>One 64-column chunk's Σ z² of one row: the same operations, per row, as <see cref="SquaredNorms6"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe float SquaredNorm1(float* u, int k, float* q, int ldq, float* e, float previous, bool first)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int j = 0; j < k; j++, q += ldq)
        {
            var b = Vector512.Create(u[j]);
            a0 = Avx512F.FusedMultiplyAdd(b, Vector512.Load(q), a0);
            a1 = Avx512F.FusedMultiplyAdd(b, Vector512.Load(q + 16), a1);
            a2 = Avx512F.FusedMultiplyAdd(b, Vector512.Load(q + 32), a2);
            a3 = Avx512F.FusedMultiplyAdd(b, Vector512.Load(q + 48), a3);
        }
        float part = Square(a0, a1, a2, a3, e);
        return first ? part : previous + part;
    }

    /// <summary>Σ over the chunk of (a + e)², in one fixed order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe float Square(Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3, float* e)
    {
        var z0 = a0 + Vector512.Load(e);
        var z1 = a1 + Vector512.Load(e + 16);
        var z2 = a2 + Vector512.Load(e + 32);
        var z3 = a3 + Vector512.Load(e + 48);
        var s = z0 * z0;
        s = Avx512F.FusedMultiplyAdd(z1, z1, s);
        s = Avx512F.FusedMultiplyAdd(z2, z2, s);
        s = Avx512F.FusedMultiplyAdd(z3, z3, s);
        return Vector512.Sum(s);
    }

    /// <summary>Six rows' Σ z² over one 64-column chunk: 24 accumulators, one pass over the chunk of Qᵀ.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void SquaredNorms6(float* u, int ldu, int k, float* q, int ldq, float* e, Span<float> ss, bool first)
    {
        float* u0 = u, u1 = u + ldu, u2 = u + 2 * ldu, u3 = u + 3 * ldu, u4 = u + 4 * ldu, u5 = u + 5 * ldu;
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default;
        Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default;
        Vector512<float> a40 = default, a41 = default, a42 = default, a43 = default;
        Vector512<float> a50 = default, a51 = default, a52 = default, a53 = default;
        for (int j = 0; j < k; j++, q += ldq)
        {
            var q0 = Vector512.Load(q); var q1 = Vector512.Load(q + 16); var q2 = Vector512.Load(q + 32); var q3 = Vector512.Load(q + 48);
            var b = Vector512.Create(u0[j]);
            a00 = Avx512F.FusedMultiplyAdd(b, q0, a00); a01 = Avx512F.FusedMultiplyAdd(b, q1, a01);
            a02 = Avx512F.FusedMultiplyAdd(b, q2, a02); a03 = Avx512F.FusedMultiplyAdd(b, q3, a03);
            b = Vector512.Create(u1[j]);
            a10 = Avx512F.FusedMultiplyAdd(b, q0, a10); a11 = Avx512F.FusedMultiplyAdd(b, q1, a11);
            a12 = Avx512F.FusedMultiplyAdd(b, q2, a12); a13 = Avx512F.FusedMultiplyAdd(b, q3, a13);
            b = Vector512.Create(u2[j]);
            a20 = Avx512F.FusedMultiplyAdd(b, q0, a20); a21 = Avx512F.FusedMultiplyAdd(b, q1, a21);
            a22 = Avx512F.FusedMultiplyAdd(b, q2, a22); a23 = Avx512F.FusedMultiplyAdd(b, q3, a23);
            b = Vector512.Create(u3[j]);
            a30 = Avx512F.FusedMultiplyAdd(b, q0, a30); a31 = Avx512F.FusedMultiplyAdd(b, q1, a31);
            a32 = Avx512F.FusedMultiplyAdd(b, q2, a32); a33 = Avx512F.FusedMultiplyAdd(b, q3, a33);
            b = Vector512.Create(u4[j]);
            a40 = Avx512F.FusedMultiplyAdd(b, q0, a40); a41 = Avx512F.FusedMultiplyAdd(b, q1, a41);
            a42 = Avx512F.FusedMultiplyAdd(b, q2, a42); a43 = Avx512F.FusedMultiplyAdd(b, q3, a43);
            b = Vector512.Create(u5[j]);
            a50 = Avx512F.FusedMultiplyAdd(b, q0, a50); a51 = Avx512F.FusedMultiplyAdd(b, q1, a51);
            a52 = Avx512F.FusedMultiplyAdd(b, q2, a52); a53 = Avx512F.FusedMultiplyAdd(b, q3, a53);
        }
        float s0 = Square(a00, a01, a02, a03, e), s1 = Square(a10, a11, a12, a13, e), s2 = Square(a20, a21, a22, a23, e);
        float s3 = Square(a30, a31, a32, a33, e), s4 = Square(a40, a41, a42, a43, e), s5 = Square(a50, a51, a52, a53, e);
        if (first) { ss[0] = s0; ss[1] = s1; ss[2] = s2; ss[3] = s3; ss[4] = s4; ss[5] = s5; }
        else { ss[0] += s0; ss[1] += s1; ss[2] += s2; ss[3] += s3; ss[4] += s4; ss[5] += s5; }
    }
}
