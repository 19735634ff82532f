using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Microsoft.ML.DeepDensity.Numerics;

namespace Microsoft.ML.DeepDensity.Models.Rnade;

/// <summary>
/// The one-row scoring path (a PredictionEngine, a model loaded into ML.NET: one row per engine call), bit-identical
/// to the row's score inside a block of <see cref="Forward"/>.
/// </summary>
/// <remarks>
/// A row alone has no rows to vectorise over, and done one conditional after another it is latency-bound: each d is an
/// FMA chain over the H hidden units, then a mixture's chain of exp/log and scalar reductions. But only the activations
/// depend on earlier dimensions (a_d on x_&lt;d), and those are cheap. So the row is scored in three passes: all D
/// hidden vectors; then every output z_d = b_d + V_dᵀ h_d with the chains of several d (and column blocks) interleaved,
/// each chain still the GEMM kernel's (one FMA chain over j from zero per k-block of <c>KC</c> = 256, added to z);
/// then all D mixtures at once through the block path's own <see cref="MixtureVector"/>, with the lanes running over
/// dimensions instead of rows (z transposed to 3K × D), and the D log-densities summed in order from zero as the block
/// path's per-row accumulator does.
/// </remarks>
internal sealed partial class RnadeNetwork
{
    /// <summary>The GEMM's k-block length (part of its summation order, <see cref="Gemm"/>).</summary>
    private const int GemmKBlock = 256;

    /// <summary>Scratch of <see cref="LogDensityOfRow"/>. Not shared between threads.</summary>
    public sealed class RowWorkspace
    {
        /// <summary>V with each row of 3K outputs padded with zeros to <see cref="K3Padded"/> (8, or a multiple of 16), so
        /// every chain runs over whole 8- or 16-lane vectors.</summary>
        public readonly float[] VPadded;
        public readonly int K3Padded, DPadded;
        /// <summary>Hidden: h_d for every d (D×H); Acc: a k-block's chains (DPadded×K3Padded,
        /// rows past D stay 0); Z: outputs transposed (K3Padded × DPadded, entry i·DPadded + d); BiasT: b likewise
        /// (padding 0, so Z's padding lanes are 0); X, LogP: per d (DPadded).</summary>
        public readonly float[] Hidden, Acc, Z, BiasT, X, LogP, Mixture;

        public RowWorkspace(RnadeNetwork net)
        {
            int k3 = net.K3;
            K3Padded = k3 <= 8 ? 8 : (k3 + 15) / 16 * 16;
            DPadded = (net.D + 7) / 8 * 8;
            VPadded = new float[net.D * net.H * K3Padded];
            for (int row = 0; row < net.D * net.H; row++) net.V.AsSpan(row * k3, k3).CopyTo(VPadded.AsSpan(row * K3Padded));
            Hidden = new float[net.D * net.H]; Acc = new float[DPadded * K3Padded];
            Z = new float[K3Padded * DPadded]; BiasT = new float[K3Padded * DPadded];
            for (int d = 0; d < net.D; d++)
                for (int i = 0; i < k3; i++) BiasT[i * DPadded + d] = net.B[d * k3 + i];
            X = new float[DPadded]; LogP = new float[DPadded];
            Mixture = new float[3 * net.K * 8];
        }
    }

    /// <summary>
    /// Log-density (model space) of one row, bit-identical to its score in a block of <see cref="Forward"/> (see the
    /// class remarks for how). Null when the block path's mixture is not the vectorised one (no AVX2/FMA,
    /// <see cref="PortableMixture"/>) or the portable kernels are forced: the caller then uses the block path.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public unsafe float? LogDensityOfRow(ReadOnlySpan<float> x, RowWorkspace ws)
    {
        if (!VectorMath.IsSupported || PortableMixture || KernelPath.Current == SimdLevel.Portable) return null;
        int d = D, h = H, k3p = ws.K3Padded, dp = ws.DPadded;
        RowHiddenUnits(x, ws);
        bool wide = KernelPath.Current == SimdLevel.Avx512 && k3p % 16 == 0;
        fixed (float* pv = ws.VPadded) fixed (float* ph = ws.Hidden) fixed (float* pacc = ws.Acc)
        fixed (float* pz = ws.Z) fixed (float* pbt = ws.BiasT)
        {
            var args = new ChainArgs { V = pv, Hidden = ph, Acc = pacc, H = h, K3Padded = k3p, VStride = (nint)h * k3p };
            for (int j0 = 0; j0 < h || j0 == 0; j0 += GemmKBlock)
            {
                args.J0 = j0; args.J1 = Math.Min(h, j0 + GemmKBlock);
                if (wide) RowChains<Lanes512, Vector512<float>>(args, d);
                else RowChains<Lanes256, Vector256<float>>(args, d);
                // z = b + S₀, then z + S₁, …: the GEMM's C ← fma(S, 1, C) per k-block, with C starting at b.
                AddTransposed(pacc, k3p, j0 == 0 ? pbt : pz, pz, dp);
            }
        }
        x.CopyTo(ws.X);
        var lp = ws.LogP.AsSpan();
        lp.Clear();
        MixtureVector(K, ws.X, ws.Z, dp, false, default, 0f, false, lp, ws.Mixture);
        float sum = 0f;
        for (int r = 0; r < d; r++) sum += lp[r];
        return sum;
    }

    /// <summary>Hidden[d·H + j] = f(ρ_d a_d[j]) for every d, with a_0 = c and a_{d+1} = a_d + x_d W_d (unfused, as
    /// <see cref="AddOuter"/>): elementwise operations, so the same bits in any layout. Blocks of 32 hidden units stay in
    /// registers while d runs, so the recursion's latency overlaps across the block; units past H are masked.</summary>
    private unsafe void RowHiddenUnits(ReadOnlySpan<float> x, RowWorkspace ws)
    {
        int h = H, dims = D;
        var lane = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
        fixed (float* pc = C) fixed (float* pw = W) fixed (float* prho = Rho) fixed (float* px = x) fixed (float* ph = ws.Hidden)
        {
            for (int j = 0; j < h; j += 32)
            {
                var k0 = Avx2.CompareGreaterThan(Vector256.Create(h - j), lane).AsSingle();
                var k1 = Avx2.CompareGreaterThan(Vector256.Create(h - j - 8), lane).AsSingle();
                var k2 = Avx2.CompareGreaterThan(Vector256.Create(h - j - 16), lane).AsSingle();
                var k3 = Avx2.CompareGreaterThan(Vector256.Create(h - j - 24), lane).AsSingle();
                var a0 = Avx.MaskLoad(pc + j, k0); var a1 = Avx.MaskLoad(pc + j + 8, k1);
                var a2 = Avx.MaskLoad(pc + j + 16, k2); var a3 = Avx.MaskLoad(pc + j + 24, k3);
                for (int d = 0; d < dims; d++)
                {
                    var rho = Vector256.Create(prho[d]);
                    float* hid = ph + (nint)d * h + j;
                    Avx.MaskStore(hid, k0, Avx.Multiply(a0, rho)); Avx.MaskStore(hid + 8, k1, Avx.Multiply(a1, rho));
                    Avx.MaskStore(hid + 16, k2, Avx.Multiply(a2, rho)); Avx.MaskStore(hid + 24, k3, Avx.Multiply(a3, rho));
                    if (d == dims - 1) break;
                    var xd = Vector256.Create(px[d]);
                    float* w = pw + (nint)d * h + j;
                    a0 = Avx.Add(a0, Avx.Multiply(Avx.MaskLoad(w, k0), xd)); a1 = Avx.Add(a1, Avx.Multiply(Avx.MaskLoad(w + 8, k1), xd));
                    a2 = Avx.Add(a2, Avx.Multiply(Avx.MaskLoad(w + 16, k2), xd)); a3 = Avx.Add(a3, Avx.Multiply(Avx.MaskLoad(w + 24, k3), xd));
                }
            }
        }
        ApplyActivation(ws.Hidden);
    }

    /// <summary>z[i·dp + r] = from[i·dp + r] + acc[r·k3p + i] for all r &lt; dp, i &lt; k3p (acc is dp × k3p; both sizes are
    /// multiples of 8): 8×8 blocks transposed in registers, then one vector add per output row.</summary>
    private static unsafe void AddTransposed(float* acc, int k3p, float* from, float* z, int dp)
    {
        for (int r = 0; r < dp; r += 8)
            for (int i = 0; i < k3p; i += 8)
            {
                float* src = acc + (nint)r * k3p + i;
                var t0 = Avx.UnpackLow(Avx.LoadVector256(src), Avx.LoadVector256(src + k3p));
                var t1 = Avx.UnpackHigh(Avx.LoadVector256(src), Avx.LoadVector256(src + k3p));
                var t2 = Avx.UnpackLow(Avx.LoadVector256(src + 2 * k3p), Avx.LoadVector256(src + 3 * k3p));
                var t3 = Avx.UnpackHigh(Avx.LoadVector256(src + 2 * k3p), Avx.LoadVector256(src + 3 * k3p));
                var t4 = Avx.UnpackLow(Avx.LoadVector256(src + 4 * k3p), Avx.LoadVector256(src + 5 * k3p));
                var t5 = Avx.UnpackHigh(Avx.LoadVector256(src + 4 * k3p), Avx.LoadVector256(src + 5 * k3p));
                var t6 = Avx.UnpackLow(Avx.LoadVector256(src + 6 * k3p), Avx.LoadVector256(src + 7 * k3p));
                var t7 = Avx.UnpackHigh(Avx.LoadVector256(src + 6 * k3p), Avx.LoadVector256(src + 7 * k3p));
                var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
                var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
                var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
                var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
                float* dst = z + (nint)i * dp + r, add = from + (nint)i * dp + r;
                Avx.Store(dst, Avx.Add(Avx.LoadVector256(add), Avx.Permute2x128(u0, u4, 0x20)));
                Avx.Store(dst + dp, Avx.Add(Avx.LoadVector256(add + dp), Avx.Permute2x128(u1, u5, 0x20)));
                Avx.Store(dst + 2 * dp, Avx.Add(Avx.LoadVector256(add + 2 * dp), Avx.Permute2x128(u2, u6, 0x20)));
                Avx.Store(dst + 3 * dp, Avx.Add(Avx.LoadVector256(add + 3 * dp), Avx.Permute2x128(u3, u7, 0x20)));
                Avx.Store(dst + 4 * dp, Avx.Add(Avx.LoadVector256(add + 4 * dp), Avx.Permute2x128(u0, u4, 0x31)));
                Avx.Store(dst + 5 * dp, Avx.Add(Avx.LoadVector256(add + 5 * dp), Avx.Permute2x128(u1, u5, 0x31)));
                Avx.Store(dst + 6 * dp, Avx.Add(Avx.LoadVector256(add + 6 * dp), Avx.Permute2x128(u2, u6, 0x31)));
                Avx.Store(dst + 7 * dp, Avx.Add(Avx.LoadVector256(add + 7 * dp), Avx.Permute2x128(u3, u7, 0x31)));
            }
    }

    private unsafe struct ChainArgs
    {
        public float* V, Hidden, Acc;
        public int H, K3Padded, J0, J1;
        public nint VStride;
    }

    /// <summary>
    /// Acc[d·K3Padded + c] = Σ_{j0 ≤ j &lt; j1} V_d[j, c] h_d[j] for every d and c, each sum one FMA chain in increasing j
    /// from +0. Eight (or four) chains are interleaved in one loop over j — blocks of four vectors for two d, of two
    /// for four d, of one for four d — so the FMA latency is hidden without changing any chain. A group's missing d
    /// repeat the last one (same values written twice).
    /// </summary>
    private static unsafe void RowChains<TL, TV>(in ChainArgs a, int dims) where TL : struct, ILanes<TV> where TV : struct
    {
        int vectors = a.K3Padded / TL.Width, col = 0;
        for (; vectors - col / TL.Width >= 4; col += 4 * TL.Width)
            for (int d = 0; d < dims; d += 2) Chains2x4<TL, TV>(a, d, Math.Min(d + 1, dims - 1), col);
        for (; vectors - col / TL.Width >= 2; col += 2 * TL.Width)
            for (int d = 0; d < dims; d += 4) Chains4x2<TL, TV>(a, d, Math.Min(d + 1, dims - 1), Math.Min(d + 2, dims - 1), Math.Min(d + 3, dims - 1), col);
        for (; vectors - col / TL.Width >= 1; col += TL.Width)
            for (int d = 0; d < dims; d += 4) Chains4x1<TL, TV>(a, d, Math.Min(d + 1, dims - 1), Math.Min(d + 2, dims - 1), Math.Min(d + 3, dims - 1), col);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Chains2x4<TL, TV>(in ChainArgs a, int d0, int d1, int col) where TL : struct, ILanes<TV> where TV : struct
    {
        int w = TL.Width;
        nint ld = a.K3Padded;
        float* v0 = a.V + d0 * a.VStride + col, v1 = a.V + d1 * a.VStride + col;
        float* h0 = a.Hidden + (nint)d0 * a.H, h1 = a.Hidden + (nint)d1 * a.H;
        TV s00 = default, s01 = default, s02 = default, s03 = default, s10 = default, s11 = default, s12 = default, s13 = default;
        for (int j = a.J0; j < a.J1; j++)
        {
            nint o = j * ld;
            var b0 = TL.Broadcast(h0 + j);
            s00 = TL.Fma(TL.Load(v0 + o), b0, s00); s01 = TL.Fma(TL.Load(v0 + o + w), b0, s01);
            s02 = TL.Fma(TL.Load(v0 + o + 2 * w), b0, s02); s03 = TL.Fma(TL.Load(v0 + o + 3 * w), b0, s03);
            var b1 = TL.Broadcast(h1 + j);
            s10 = TL.Fma(TL.Load(v1 + o), b1, s10); s11 = TL.Fma(TL.Load(v1 + o + w), b1, s11);
            s12 = TL.Fma(TL.Load(v1 + o + 2 * w), b1, s12); s13 = TL.Fma(TL.Load(v1 + o + 3 * w), b1, s13);
        }
        float* c0 = a.Acc + d0 * ld + col, c1 = a.Acc + d1 * ld + col;
        TL.Store(s00, c0); TL.Store(s01, c0 + w); TL.Store(s02, c0 + 2 * w); TL.Store(s03, c0 + 3 * w);
        TL.Store(s10, c1); TL.Store(s11, c1 + w); TL.Store(s12, c1 + 2 * w); TL.Store(s13, c1 + 3 * w);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Chains4x2<TL, TV>(in ChainArgs a, int d0, int d1, int d2, int d3, int col) where TL : struct, ILanes<TV> where TV : struct
    {
        int w = TL.Width;
        nint ld = a.K3Padded;
        float* v0 = a.V + d0 * a.VStride + col, v1 = a.V + d1 * a.VStride + col, v2 = a.V + d2 * a.VStride + col, v3 = a.V + d3 * a.VStride + col;
        float* h0 = a.Hidden + (nint)d0 * a.H, h1 = a.Hidden + (nint)d1 * a.H, h2 = a.Hidden + (nint)d2 * a.H, h3 = a.Hidden + (nint)d3 * a.H;
        TV s00 = default, s01 = default, s10 = default, s11 = default, s20 = default, s21 = default, s30 = default, s31 = default;
        for (int j = a.J0; j < a.J1; j++)
        {
            nint o = j * ld;
            var b0 = TL.Broadcast(h0 + j); var b1 = TL.Broadcast(h1 + j);
            s00 = TL.Fma(TL.Load(v0 + o), b0, s00); s01 = TL.Fma(TL.Load(v0 + o + w), b0, s01);
            s10 = TL.Fma(TL.Load(v1 + o), b1, s10); s11 = TL.Fma(TL.Load(v1 + o + w), b1, s11);
            var b2 = TL.Broadcast(h2 + j); var b3 = TL.Broadcast(h3 + j);
            s20 = TL.Fma(TL.Load(v2 + o), b2, s20); s21 = TL.Fma(TL.Load(v2 + o + w), b2, s21);
            s30 = TL.Fma(TL.Load(v3 + o), b3, s30); s31 = TL.Fma(TL.Load(v3 + o + w), b3, s31);
        }
        TL.Store(s00, a.Acc + d0 * ld + col); TL.Store(s01, a.Acc + d0 * ld + col + w);
        TL.Store(s10, a.Acc + d1 * ld + col); TL.Store(s11, a.Acc + d1 * ld + col + w);
        TL.Store(s20, a.Acc + d2 * ld + col); TL.Store(s21, a.Acc + d2 * ld + col + w);
        TL.Store(s30, a.Acc + d3 * ld + col); TL.Store(s31, a.Acc + d3 * ld + col + w);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Chains4x1<TL, TV>(in ChainArgs a, int d0, int d1, int d2, int d3, int col) where TL : struct, ILanes<TV> where TV : struct
    {
        nint ld = a.K3Padded;
        float* v0 = a.V + d0 * a.VStride + col, v1 = a.V + d1 * a.VStride + col, v2 = a.V + d2 * a.VStride + col, v3 = a.V + d3 * a.VStride + col;
        float* h0 = a.Hidden + (nint)d0 * a.H, h1 = a.Hidden + (nint)d1 * a.H, h2 = a.Hidden + (nint)d2 * a.H, h3 = a.Hidden + (nint)d3 * a.H;
        TV s0 = default, s1 = default, s2 = default, s3 = default;
        for (int j = a.J0; j < a.J1; j++)
        {
            nint o = j * ld;
            s0 = TL.Fma(TL.Load(v0 + o), TL.Broadcast(h0 + j), s0);
            s1 = TL.Fma(TL.Load(v1 + o), TL.Broadcast(h1 + j), s1);
            s2 = TL.Fma(TL.Load(v2 + o), TL.Broadcast(h2 + j), s2);
            s3 = TL.Fma(TL.Load(v3 + o), TL.Broadcast(h3 + j), s3);
        }
        TL.Store(s0, a.Acc + d0 * ld + col); TL.Store(s1, a.Acc + d1 * ld + col);
        TL.Store(s2, a.Acc + d2 * ld + col); TL.Store(s3, a.Acc + d3 * ld + col);
    }

    /// <summary>The vector operations of <see cref="RowChains"/> at one width (a fused multiply-add rounds the same at any).</summary>
    private unsafe interface ILanes<TV> where TV : struct
    {
        static abstract int Width { get; }
        static abstract TV Load(float* p);
        static abstract TV Broadcast(float* p);
        static abstract TV Fma(TV m, TV b, TV acc);
        static abstract void Store(TV v, float* p);
    }

    private readonly unsafe struct Lanes256 : ILanes<Vector256<float>>
    {
        public static int Width => 8;
        public static Vector256<float> Load(float* p) => Avx.LoadVector256(p);
        public static Vector256<float> Broadcast(float* p) => Vector256.Create(*p);
        public static Vector256<float> Fma(Vector256<float> m, Vector256<float> b, Vector256<float> acc) => System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(m, b, acc);
        public static void Store(Vector256<float> v, float* p) => Avx.Store(p, v);
    }

    private readonly unsafe struct Lanes512 : ILanes<Vector512<float>>
    {
        public static int Width => 16;
        public static Vector512<float> Load(float* p) => Avx512F.LoadVector512(p);
        public static Vector512<float> Broadcast(float* p) => Vector512.Create(*p);
        public static Vector512<float> Fma(Vector512<float> m, Vector512<float> b, Vector512<float> acc) => Avx512F.FusedMultiplyAdd(m, b, acc);
        public static void Store(Vector512<float> v, float* p) => Avx512F.Store(p, v);
    }
}
