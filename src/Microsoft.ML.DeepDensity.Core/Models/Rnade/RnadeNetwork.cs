using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Models.Rnade;

/// <summary>
/// RNADE parameters in model space (permuted, standardised inputs) and the batched forward / backward passes
/// (Uria, Murray &amp; Larochelle 2013, Algorithms 1–2), vectorised over a block of rows.
/// </summary>
/// <remarks>
/// Layout: <c>W</c> is (D−1)×H (row d = W·,d), <c>c</c> H, <c>ρ</c> D, <c>V</c> D×H×3K and <c>b</c> D×3K, where the 3K
/// outputs of dimension d are [z^α (K) | z^μ (K) | z^σ (K)], so each conditional's three heads are one GEMM.
/// Activations a_d = c + Σ_{j&lt;d} x_j W_j are accumulated recursively (O(BDH)) and, as in Algorithm 2, recomputed
/// backwards by subtraction instead of stored.
/// </remarks>
internal sealed partial class RnadeNetwork
{
    private const float HalfLog2Pi = 0.918938533204672742f;
    /// <summary>
    /// Scaled responsibilities and mixing weights below this (2^-100) enter the gradient as 0. Far components of a
    /// sharpening mixture have responsibilities of e^-87 and less; times the 1/batch scale they are subnormal floats,
    /// and every multiply that reads or writes a subnormal takes a ~100-cycle microcode assist on x86 (each dZ entry
    /// feeds ~2H multiplies of the backward GEMMs). Left alone they grew to ~10% of dZ (mostly ∂/∂μ = π·u of the
    /// σ-scaled mean update, which lacks the 1/σ factor that otherwise lifts it out of the subnormal range) and a
    /// 150-epoch fit on digits slowed from 1.4k to 0.7k examples/s; flushed, it stays at full speed (#18). A
    /// contribution of 2^-100 is far below the resolution of any sum it would join.
    /// </summary>
    private const float NegligibleGradient = 7.888609e-31f;

    public readonly int D, H, K;
    public readonly Activation Activation;
    public readonly float[] W, C, Rho, V, B;

    public RnadeNetwork(int dimension, int hidden, int components, Activation activation)
    {
        D = dimension; H = hidden; K = components; Activation = activation;
        PredictSize(D, H, K).EnsureFitsAFile();
        W = new float[Math.Max(0, D - 1) * H];
        C = new float[H];
        Rho = new float[D];
        V = new float[D * H * 3 * K];
        B = new float[D * 3 * K];
    }

    public RnadeNetwork(int dimension, int hidden, int components, Activation activation,
        float[] w, float[] c, float[] rho, float[] v, float[] b)
    {
        D = dimension; H = hidden; K = components; Activation = activation;
        W = w; C = c; Rho = rho; V = v; B = b;
    }

    public int K3 => 3 * K;

    /// <summary>Parameters of an RNADE of these sizes, exactly as laid out above: W (D−1)×H, c H, ρ D, V D×H×3K, b D×3K
    /// (checked 64-bit arithmetic; <see cref="long.MaxValue"/> when it overflows).</summary>
    internal static long ParameterCount(int dimension, int hidden, int components) => Persistence.ModelSizePrediction.Saturating(() =>
    {
        long d = dimension, h = hidden, k3 = 3L * components;
        return checked(Math.Max(0, d - 1) * h + h + d + d * h * k3 + d * k3);
    });

    /// <summary>The size of an RNADE of these sizes (<see cref="RnadeOptions.PredictModelSize"/>, checked again before allocating).</summary>
    internal static Persistence.ModelSizePrediction PredictSize(int dimension, int hidden, int components)
        => new("RNADE", dimension, ParameterCount(dimension, hidden, components),
            FormattableString.Invariant($"an RNADE of {hidden} hidden units and {components} components (HiddenUnits, Components: D×H·3K output weights)"),
            "use fewer columns (e.g. a PCA projection), fewer HiddenUnits or fewer Components", RnadeOptions.MaxDimension);

    /// <summary>Use the scalar mixture code even when AVX2/FMA are available (tests of the portable path).</summary>
    internal bool PortableMixture { get; set; }

    /// <summary>Seeded initialisation for standardised data whose column quantiles are given (D×K, used to spread the means).</summary>
    public void Initialize(RandomStream random, float[] meanQuantiles)
    {
        random.FillGaussian(W, 0f, 1f / MathF.Sqrt(Math.Max(1, D)));
        Array.Clear(C);
        Array.Fill(Rho, 1f);
        random.FillGaussian(V, 0f, 0.01f);
        InitializeMixtureBiases(B, D, K, meanQuantiles);
    }

    /// <summary>Output biases of D mixtures ([z^α | z^μ | z^σ] per dimension) that start every conditional at equal
    /// weights, means at the column quantiles (D×K) and σ = 1/√K. Shared with <see cref="DeepRnadeNetwork"/>.</summary>
    internal static void InitializeMixtureBiases(Span<float> b, int dimension, int k, ReadOnlySpan<float> meanQuantiles)
    {
        float logSigma = MathF.Log(1f / MathF.Sqrt(k));
        for (int d = 0; d < dimension; d++)
        {
            var bd = b.Slice(d * 3 * k, 3 * k);
            bd[..k].Clear();
            meanQuantiles.Slice(d * k, k).CopyTo(bd.Slice(k, k));
            bd.Slice(2 * k, k).Fill(logSigma);
        }
    }

    /// <summary>Scratch for one block of up to <see cref="Rows"/> rows. Not shared between threads.</summary>
    /// <remarks>Everything per row is stored transposed — activations <c>a[j, r]</c>, hidden units, mixture outputs
    /// <c>Z[i, r]</c> and their gradients at <c>index·Stride + r</c> — so the elementwise and mixture code runs over
    /// eight rows per vector and every per-dimension product is a GEMM that reads its operands in place.
    /// <see cref="Stride"/> is <see cref="Rows"/> rounded up to 8; padding lanes hold finite values that are never
    /// read back (inputs there are 0, gradients stay 0).</remarks>
    public sealed class Workspace
    {
        public readonly RnadeNetwork Network;
        public readonly int Rows, Stride;
        public readonly float[] A, Hidden, Z, DZ, DH, DAcc, XColumn, LogP, Mixture;
        public readonly bool ForTraining;
        public readonly float[]? GW, GC, GRho, GV, GB;

        public Workspace(RnadeNetwork net, int rows, bool forTraining)
        {
            Network = net; Rows = rows; ForTraining = forTraining;
            Stride = (rows + 7) / 8 * 8;
            A = new float[net.H * Stride];
            Hidden = new float[(forTraining ? net.D : 1) * net.H * Stride];
            Z = new float[net.K3 * Stride];
            XColumn = new float[Stride];
            LogP = new float[Stride];
            Mixture = new float[3 * net.K * 8];
            if (forTraining)
            {
                DZ = new float[net.D * net.K3 * Stride];
                DH = new float[net.H * Stride];
                DAcc = new float[net.H * Stride];
                GW = new float[net.W.Length]; GC = new float[net.C.Length]; GRho = new float[net.Rho.Length];
                GV = new float[net.V.Length]; GB = new float[net.B.Length];
            }
            else { DZ = DH = DAcc = Array.Empty<float>(); }
        }
    }

    /// <summary>
    /// log p(x) of <paramref name="rows"/> rows (model space) into <paramref name="logp"/>. With a training workspace,
    /// also stores what the backward pass needs, with dZ already scaled by <paramref name="gradScale"/>.
    /// </summary>
    /// <param name="outputBias">Optional per-row offsets added to the output biases b (a conditional RNADE, e.g. RNN-RNADE's
    /// r^α, r^μ, r^σ): D·3K rows of <see cref="Workspace.Stride"/> floats, transposed like Z (entry (d·3K + i)·Stride + r);
    /// padding lanes must be finite. Empty = none (plain RNADE).</param>
    /// <param name="hiddenBias">Optional per-row offsets added to the hidden bias c: H rows of Stride floats (entry j·Stride + r). Empty = none.</param>
    /// <remarks>With biases, the gradients of the loss with respect to them are, after <see cref="Backward"/>, in
    /// <see cref="Workspace.DZ"/> (output biases, same layout) and <see cref="Workspace.DAcc"/> (hidden bias).</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot from the first call: no slow tier-0 epoch
    public void Forward(ReadOnlySpan<float> x, int rows, Workspace ws, Span<float> logp, float gradScale, bool scaleMeanBySigma,
        ReadOnlySpan<float> outputBias = default, ReadOnlySpan<float> hiddenBias = default)
    {
        int h = H, k3 = K3, s = ws.Stride;
        var a = ws.A.AsSpan(0, h * s);
        if (hiddenBias.IsEmpty) for (int j = 0; j < h; j++) a.Slice(j * s, s).Fill(C[j]);
        else for (int j = 0; j < h; j++) TensorPrimitives.Add(hiddenBias.Slice(j * s, s), C[j], a.Slice(j * s, s));
        var lp = ws.LogP.AsSpan();
        lp.Clear();
        var xcol = ws.XColumn.AsSpan();
        xcol.Clear();
        var z = ws.Z.AsSpan(0, k3 * s);
        for (int d = 0; d < D; d++)
        {
            var hid = ws.ForTraining ? ws.Hidden.AsSpan(d * h * s, h * s) : ws.Hidden.AsSpan(0, h * s);
            TensorPrimitives.Multiply(a, Rho[d], hid);
            ApplyActivation(hid);
            // Zᵀ (3K × rows) = b_d + V_dᵀ hᵀ.
            if (outputBias.IsEmpty) for (int i = 0; i < k3; i++) z.Slice(i * s, s).Fill(B[d * k3 + i]);
            else for (int i = 0; i < k3; i++) TensorPrimitives.Add(outputBias.Slice((d * k3 + i) * s, s), B[d * k3 + i], z.Slice(i * s, s));
            // All s columns, padding included: whole 8-wide tiles are cheaper than a ragged edge, and columns are independent.
            Gemm.Multiply(true, false, k3, s, h, 1f, V.AsSpan(d * h * k3, h * k3), k3, hid, s, 1f, z, s, allowParallel: false);
            for (int r = 0; r < rows; r++) xcol[r] = x[r * D + d];
            var dz = ws.ForTraining ? ws.DZ.AsSpan(d * k3 * s, k3 * s) : default;
            Mixture(K, PortableMixture, xcol, z, s, ws.ForTraining, dz, gradScale, scaleMeanBySigma, lp, ws.Mixture);
            if (ws.ForTraining && rows < s)
                for (int i = 0; i < k3; i++) dz.Slice(i * s + rows, s - rows).Clear(); // padding rows carry no gradient
            if (d < D - 1)
            {
                // a_{d+1} = a_d + x_d W_d (one row of aᵀ per hidden unit, vectorised over the rows).
                AddOuter(a, h, s, W.AsSpan(d * h, h), 1f, xcol, default);
            }
        }
        lp[..rows].CopyTo(logp);
    }

    /// <summary>Backward pass after <see cref="Forward"/> on the same workspace; accumulates into the workspace gradients.
    /// Leaves ∂loss/∂z per row in <see cref="Workspace.DZ"/> and ∂loss/∂a₀ (= ∂loss/∂c per row) in <see cref="Workspace.DAcc"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot from the first call: no slow tier-0 epoch
    public void Backward(ReadOnlySpan<float> x, int rows, Workspace ws)
    {
        int h = H, k3 = K3, s = ws.Stride;
        var a = ws.A.AsSpan(0, h * s);       // holds a_{D-1} after Forward
        var dAcc = ws.DAcc.AsSpan(0, h * s);
        var dh = ws.DH.AsSpan(0, h * s);
        var xcol = ws.XColumn.AsSpan();
        dAcc.Clear();
        for (int d = D - 1; d >= 0; d--)
        {
            var hid = ws.Hidden.AsSpan(d * h * s, h * s);
            var dz = ws.DZ.AsSpan(d * k3 * s, k3 * s);
            var vd = V.AsSpan(d * h * k3, h * k3);
            // dV_d += h dZ (as hᵀ · dZᵀᵀ), db_d += row sums of dZᵀ, dhᵀ = V_d dZᵀ.
            Gemm.Multiply(false, true, h, k3, rows, 1f, hid, s, dz, s, 1f, ws.GV.AsSpan(d * h * k3, h * k3), k3, allowParallel: false);
            var gb = ws.GB.AsSpan(d * k3, k3);
            AddRowSums(dz, k3, s, gb);
            Gemm.Multiply(false, false, h, s, k3, 1f, vd, k3, dz, s, 0f, dh, s, allowParallel: false); // padding columns of dZᵀ are 0
            ApplyActivationDerivative(hid, dh);
            ws.GRho![d] += (float)DotAsDouble(dh, a);
            TensorPrimitives.MultiplyAdd(dh, Rho[d], dAcc, dAcc);
            if (d > 0)
            {
                for (int r = 0; r < rows; r++) xcol[r] = x[r * D + d - 1];
                // dW_{d-1}[j] += Σ_r x_{r,d-1} dAcc[j, r]; a_{d-1} = a_d − x_{d-1} W_{d-1}.
                AddOuter(a, h, s, W.AsSpan((d - 1) * h, h), -1f, xcol, dAcc, ws.GW.AsSpan((d - 1) * h, h));
            }
            else AddRowSums(dAcc, h, s, ws.GC);
        }
    }

    /// <summary>
    /// For each hidden unit j: a[j, ·] += sign·w[j]·x (rows of aᵀ, stride s), and when <paramref name="dot"/> is given,
    /// also dotOut[j] += Σ_r dot[j, r]·x[r]. One pass over rows of eight lanes instead of a library call per row.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot from the first call: no slow tier-0 epoch
    private static void AddOuter(Span<float> a, int h, int s, ReadOnlySpan<float> w, float sign, ReadOnlySpan<float> x,
        ReadOnlySpan<float> dot, Span<float> dotOut = default)
    {
        bool withDot = !dot.IsEmpty;
        if (!Vector256.IsHardwareAccelerated || s % 8 != 0)
        {
            for (int j = 0; j < h; j++)
            {
                var aj = a.Slice(j * s, s);
                if (withDot) dotOut[j] += TensorPrimitives.Dot(dot.Slice(j * s, s), x);
                TensorPrimitives.MultiplyAdd(x, sign * w[j], aj, aj);
            }
            return;
        }
        for (int j = 0; j < h; j++)
        {
            var aj = a.Slice(j * s, s);
            var c = Vector256.Create(sign * w[j]);
            var acc = Vector256<float>.Zero;
            for (int r = 0; r < s; r += 8)
            {
                var xv = Vector256.Create(x.Slice(r, 8));
                if (withDot) acc += Vector256.Create(dot.Slice(j * s + r, 8)) * xv;
                (Vector256.Create((ReadOnlySpan<float>)aj.Slice(r, 8)) + xv * c).CopyTo(aj.Slice(r, 8));
            }
            if (withDot) dotOut[j] += Vector256.Sum(acc);
        }
    }

    /// <summary>dst[i] += Σ_r m[i, r] over the full stride s (padding lanes of m are zero).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot from the first call: no slow tier-0 epoch
    private static void AddRowSums(ReadOnlySpan<float> m, int count, int s, Span<float> dst)
    {
        for (int i = 0; i < count; i++)
        {
            var row = m.Slice(i * s, s);
            if (Vector256.IsHardwareAccelerated && s % 8 == 0)
            {
                var acc = Vector256<float>.Zero;
                for (int r = 0; r < s; r += 8) acc += Vector256.Create(row.Slice(r, 8));
                dst[i] += Vector256.Sum(acc);
            }
            else dst[i] += TensorPrimitives.Sum(row);
        }
    }

    private static double DotAsDouble(ReadOnlySpan<float> u, ReadOnlySpan<float> v)
    {
        double s = 0;
        for (int i = 0; i < u.Length; i += 256)
        {
            int n = Math.Min(256, u.Length - i);
            s += TensorPrimitives.Dot(u.Slice(i, n), v.Slice(i, n));
        }
        return s;
    }

    private void ApplyActivation(Span<float> v)
    {
        switch (Activation)
        {
            case Activation.Relu: TensorPrimitives.Max(v, 0f, v); break;
            case Activation.Sigmoid: TensorPrimitives.Sigmoid(v, v); break;
            case Activation.Tanh: TensorPrimitives.Tanh(v, v); break;
            default: throw new InvalidOperationException($"Unsupported activation {Activation}.");
        }
    }

    /// <summary>g ← g ⊙ f'(ψ), written in terms of h = f(ψ).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot from the first call: no slow tier-0 epoch
    private void ApplyActivationDerivative(ReadOnlySpan<float> hidden, Span<float> g)
    {
        switch (Activation)
        {
            case Activation.Relu:
                int i = 0;
                if (Vector256.IsHardwareAccelerated)
                {
                    // Branch-free: ReLU outputs are positive about half the time, in no pattern.
                    for (; i + 8 <= g.Length; i += 8)
                    {
                        var mask = Vector256.GreaterThan(Vector256.Create(hidden.Slice(i, 8)), Vector256<float>.Zero);
                        (Vector256.Create((ReadOnlySpan<float>)g.Slice(i, 8)) & mask).CopyTo(g.Slice(i, 8));
                    }
                }
                for (; i < g.Length; i++) if (!(hidden[i] > 0f)) g[i] = 0f;
                break;
            case Activation.Sigmoid:
                for (int j = 0; j < g.Length; j++) g[j] *= hidden[j] * (1f - hidden[j]);
                break;
            case Activation.Tanh:
                for (int j = 0; j < g.Length; j++) g[j] *= 1f - hidden[j] * hidden[j];
                break;
        }
    }

    /// <summary>
    /// One conditional for a block: lp[r] += log Σ_k α_k N(x_r; μ_k, σ_k²) with z stored transposed (stride s), and
    /// with <paramref name="withGradient"/> dz = scale · ∂log p/∂z (eqs. 3–5 of the supplement; the mean's gradient times
    /// σ when <paramref name="scaleMeanBySigma"/>). Eight rows per vector when AVX2/FMA are available. Shared with
    /// <see cref="DeepRnadeNetwork"/>; <paramref name="scratch"/> has ≥ 24·<paramref name="k"/> floats.
    /// </summary>
    internal static void Mixture(int k, bool portable, ReadOnlySpan<float> x, ReadOnlySpan<float> z, int s, bool withGradient, Span<float> dz,
        float scale, bool scaleMeanBySigma, Span<float> lp, float[] scratch)
    {
        if (VectorMath.IsSupported && !portable) MixtureVector(k, x, z, s, withGradient, dz, scale, scaleMeanBySigma, lp, scratch);
        else
        {
            for (int r = 0; r < s; r++)
            {
                float xr = x[r];
                float maxA = float.NegativeInfinity;
                for (int i = 0; i < k; i++) maxA = MathF.Max(maxA, z[i * s + r]);
                float sumA = 0;
                for (int i = 0; i < k; i++) sumA += MathF.Exp(z[i * s + r] - maxA);
                float lseA = maxA + MathF.Log(sumA);
                float maxL = float.NegativeInfinity;
                for (int i = 0; i < k; i++)
                {
                    float u = (xr - z[(k + i) * s + r]) * MathF.Exp(-z[(2 * k + i) * s + r]);
                    float l = z[i * s + r] - lseA - 0.5f * u * u - z[(2 * k + i) * s + r] - HalfLog2Pi;
                    scratch[i] = l; scratch[k + i] = u;
                    maxL = MathF.Max(maxL, l);
                }
                float sumL = 0;
                for (int i = 0; i < k; i++) sumL += MathF.Exp(scratch[i] - maxL);
                float lse = maxL + MathF.Log(sumL);
                lp[r] += lse;
                if (!withGradient) continue;
                for (int i = 0; i < k; i++)
                {
                    float piS = scale * MathF.Exp(scratch[i] - lse), u = scratch[k + i];
                    float alphaS = scale * MathF.Exp(z[i * s + r] - lseA);
                    if (MathF.Abs(piS) < NegligibleGradient) piS = 0f;
                    if (MathF.Abs(alphaS) < NegligibleGradient) alphaS = 0f;
                    dz[i * s + r] = piS - alphaS;
                    float dmu = piS * u;                      // ∂/∂μ = π u / σ; times σ when preconditioned
                    dz[(k + i) * s + r] = scaleMeanBySigma ? dmu : dmu * MathF.Exp(-z[(2 * k + i) * s + r]);
                    dz[(2 * k + i) * s + r] = piS * (u * u - 1f);
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot from the first call: no slow tier-0 epoch
    private static unsafe void MixtureVector(int k, ReadOnlySpan<float> x, ReadOnlySpan<float> z, int s, bool withGradient, Span<float> dz,
        float scale, bool scaleMeanBySigma, Span<float> lp, float[] scratch)
    {
        fixed (float* px = x) fixed (float* pz = z) fixed (float* pdz = dz) fixed (float* plp = lp) fixed (float* tmp = scratch)
        {
            // tmp: per component, e^(α-logit − max) | u | e^(l − max) for the current eight rows.
            float* ea = tmp, uu = tmp + 8 * k, el = tmp + 16 * k;
            var half = Vector256.Create(0.5f);
            var c0 = Vector256.Create(HalfLog2Pi);
            var one = Vector256.Create(1f);
            var vs = Vector256.Create(scale);
            for (int r = 0; r < s; r += 8)
            {
                var xv = Avx.LoadVector256(px + r);
                var maxA = Avx.LoadVector256(pz + r);
                for (int i = 1; i < k; i++) maxA = Avx.Max(maxA, Avx.LoadVector256(pz + i * s + r));
                var sumA = Vector256<float>.Zero;
                for (int i = 0; i < k; i++)
                {
                    var e = VectorMath.Exp(Avx.Subtract(Avx.LoadVector256(pz + i * s + r), maxA));
                    Avx.Store(ea + 8 * i, e);
                    sumA = Avx.Add(sumA, e);
                }
                var lseA = Avx.Add(maxA, VectorMath.Log(sumA));
                var maxL = Vector256.Create(float.NegativeInfinity);
                for (int i = 0; i < k; i++)
                {
                    var zs = Avx.LoadVector256(pz + (2 * k + i) * s + r);
                    var u = Avx.Multiply(Avx.Subtract(xv, Avx.LoadVector256(pz + (k + i) * s + r)), VectorMath.Exp(Avx.Subtract(Vector256<float>.Zero, zs)));
                    // l = z^α − lseA − u²/2 − z^σ − ½log 2π
                    var l = Avx.Subtract(Avx.Subtract(Avx.LoadVector256(pz + i * s + r), lseA), Fma.MultiplyAdd(Avx.Multiply(u, u), half, Avx.Add(zs, c0)));
                    Avx.Store(uu + 8 * i, u);
                    Avx.Store(el + 8 * i, l);
                    maxL = Avx.Max(maxL, l);
                }
                var sumL = Vector256<float>.Zero;
                for (int i = 0; i < k; i++)
                {
                    var e = VectorMath.Exp(Avx.Subtract(Avx.LoadVector256(el + 8 * i), maxL));
                    Avx.Store(el + 8 * i, e);
                    sumL = Avx.Add(sumL, e);
                }
                Avx.Store(plp + r, Avx.Add(Avx.LoadVector256(plp + r), Avx.Add(maxL, VectorMath.Log(sumL))));
                if (!withGradient) continue;
                var invL = Avx.Divide(vs, sumL);   // scale / Σ e^(l−max): π·scale = e^(l−max) · invL
                var invA = Avx.Divide(vs, sumA);
                // |e·inv| < 2^-100 ⇔ e < 2^-100 / |inv| (e ≥ 0; inv has the sign of scale): zero such e before the
                // multiply, which would itself produce a subnormal.
                var minL = Avx.Divide(Vector256.Create(NegligibleGradient), Vector256.Abs(invL));
                var minA = Avx.Divide(Vector256.Create(NegligibleGradient), Vector256.Abs(invA));
                for (int i = 0; i < k; i++)
                {
                    var eL = Avx.LoadVector256(el + 8 * i);
                    var eA = Avx.LoadVector256(ea + 8 * i);
                    var piS = Avx.Multiply(Avx.And(eL, Avx.CompareGreaterThanOrEqual(eL, minL)), invL);
                    var alphaS = Avx.Multiply(Avx.And(eA, Avx.CompareGreaterThanOrEqual(eA, minA)), invA);
                    var u = Avx.LoadVector256(uu + 8 * i);
                    Avx.Store(pdz + i * s + r, Avx.Subtract(piS, alphaS));
                    var dmu = Avx.Multiply(piS, u);   // ∂/∂μ = π u / σ; times σ when preconditioned
                    if (!scaleMeanBySigma) dmu = Avx.Multiply(dmu, VectorMath.Exp(Avx.Subtract(Vector256<float>.Zero, Avx.LoadVector256(pz + (2 * k + i) * s + r))));
                    Avx.Store(pdz + (k + i) * s + r, dmu);
                    Avx.Store(pdz + (2 * k + i) * s + r, Fma.MultiplySubtract(piS, Avx.Multiply(u, u), piS));
                }
            }
        }
    }

    /// <summary>log Σ_k α_k N(x; μ_k, σ_k²) for one conditional with z = [z^α | z^μ | z^σ]; <paramref name="tmp"/> has ≥ K floats.</summary>
    public float MixtureLogDensity(float x, ReadOnlySpan<float> z, Span<float> tmp)
    {
        int k = K;
        var za = z[..k]; var zm = z.Slice(k, k); var zs = z.Slice(2 * k, k);
        float lseAlpha = RowOps.LogSumExp(za);
        var l = tmp[..k];
        for (int i = 0; i < k; i++)
        {
            float u = (x - zm[i]) * MathF.Exp(-zs[i]);
            l[i] = za[i] - lseAlpha - 0.5f * u * u - zs[i] - HalfLog2Pi;
        }
        return RowOps.LogSumExp(l);
    }

    /// <summary>Largest magnitude of a drawn value in standardised units.</summary>
    internal const float MaxStandardizedSample = 1e6f;

    /// <summary>Ancestral sampling of <paramref name="rows"/> rows (model space) into <paramref name="x"/>; row r draws from
    /// <paramref name="rowStreams"/>[r] only, so a row depends on its own stream and not on how many rows are drawn.</summary>
    /// <param name="outputBias">Optional per-row output-bias offsets, row-major (row r at r·D·3K, then d·3K + i); empty = none.</param>
    /// <param name="hiddenBias">Optional per-row hidden-bias offsets, row-major (row r at r·H); empty = none.</param>
    public void Sample(int rows, RandomStream[] rowStreams, Span<float> x,
        ReadOnlySpan<float> outputBias = default, ReadOnlySpan<float> hiddenBias = default, SampleScratch? scratch = null)
    {
        int h = H, k3 = K3, k = K;
        scratch ??= new SampleScratch(this, rows);
        // Every element of these is written before it is read: a reused scratch gives the same bits as a fresh one.
        var a = scratch.A.AsSpan(0, rows * h);
        var hid = scratch.Hidden.AsSpan(0, rows * h);
        var z = scratch.Z.AsSpan(0, rows * k3);
        Span<float> alpha = stackalloc float[k];
        for (int r = 0; r < rows; r++)
        {
            if (hiddenBias.IsEmpty) C.CopyTo(a.Slice(r * h, h));
            else TensorPrimitives.Add(hiddenBias.Slice(r * h, h), C, a.Slice(r * h, h));
        }
        for (int d = 0; d < D; d++)
        {
            TensorPrimitives.Multiply(a, Rho[d], hid);
            ApplyActivation(hid);
            var bd = B.AsSpan(d * k3, k3);
            if (outputBias.IsEmpty) for (int r = 0; r < rows; r++) bd.CopyTo(z.Slice(r * k3, k3));
            else for (int r = 0; r < rows; r++) TensorPrimitives.Add(outputBias.Slice((r * D + d) * k3, k3), bd, z.Slice(r * k3, k3));
            Gemm.Multiply(false, false, rows, k3, h, 1f, hid, h, V.AsSpan(d * h * k3, h * k3), k3, 1f, z, k3, allowParallel: false);
            for (int r = 0; r < rows; r++)
            {
                var zr = z.Slice(r * k3, k3);
                zr[..k].CopyTo(alpha);
                RowOps.SoftmaxRows(alpha, 1, k);
                var random = rowStreams[r];
                int comp = random.NextCategorical(alpha);
                // Saturation that no trained model reaches (σ ≤ e^80, |x| ≤ 1e6 standardised units) keeps every draw,
                // and so the next conditional's inputs, finite for any parameters the loader accepts (|θ| ≤ 1e6).
                float v = zr[k + comp] + MathF.Exp(MathF.Min(zr[2 * k + comp], 80f)) * (float)random.NextGaussian();
                v = Math.Clamp(v, -MaxStandardizedSample, MaxStandardizedSample);
                x[r * D + d] = v;
                if (d < D - 1) TensorPrimitives.MultiplyAdd(W.AsSpan(d * h, h), v, a.Slice(r * h, h), a.Slice(r * h, h));
            }
        }
    }

    /// <summary>The buffers of <see cref="Sample"/> for up to <c>rows</c> rows, for a caller that samples many times (the
    /// RNN-RNADE draws a frame per step: fresh buffers every step were most of what a long draw allocated).</summary>
    public sealed class SampleScratch(RnadeNetwork net, int rows)
    {
        public readonly float[] A = new float[rows * net.H], Hidden = new float[rows * net.H], Z = new float[rows * net.K3];
    }
}
