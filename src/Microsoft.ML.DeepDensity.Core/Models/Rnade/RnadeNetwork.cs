using System.Numerics.Tensors;
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
internal sealed class RnadeNetwork
{
    private const float HalfLog2Pi = 0.918938533204672742f;

    public readonly int D, H, K;
    public readonly Activation Activation;
    public readonly float[] W, C, Rho, V, B;

    public RnadeNetwork(int dimension, int hidden, int components, Activation activation)
    {
        D = dimension; H = hidden; K = components; Activation = activation;
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

    /// <summary>Seeded initialisation for standardised data whose column quantiles are given (D×K, used to spread the means).</summary>
    public void Initialize(RandomStream random, float[] meanQuantiles)
    {
        random.FillGaussian(W, 0f, 1f / MathF.Sqrt(Math.Max(1, D)));
        Array.Clear(C);
        Array.Fill(Rho, 1f);
        random.FillGaussian(V, 0f, 0.01f);
        float logSigma = MathF.Log(1f / MathF.Sqrt(K));
        for (int d = 0; d < D; d++)
        {
            var bd = B.AsSpan(d * K3, K3);
            bd[..K].Clear();
            meanQuantiles.AsSpan(d * K, K).CopyTo(bd.Slice(K, K));
            bd.Slice(2 * K, K).Fill(logSigma);
        }
    }

    /// <summary>Scratch for one block of up to <see cref="Rows"/> rows. Not shared between threads.</summary>
    public sealed class Workspace
    {
        public readonly int Rows;
        public readonly float[] A, Hidden, Z, DZ, DH, DAcc;
        public readonly bool ForTraining;
        public readonly float[]? GW, GC, GRho, GV, GB;

        public Workspace(RnadeNetwork net, int rows, bool forTraining)
        {
            Rows = rows; ForTraining = forTraining;
            A = new float[rows * net.H];
            Hidden = new float[(forTraining ? net.D : 1) * rows * net.H];
            Z = new float[rows * net.K3];
            if (forTraining)
            {
                DZ = new float[net.D * rows * net.K3];
                DH = new float[rows * net.H];
                DAcc = new float[rows * net.H];
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
    public void Forward(ReadOnlySpan<float> x, int rows, Workspace ws, Span<float> logp, float gradScale, bool scaleMeanBySigma)
    {
        int h = H, k3 = K3;
        var a = ws.A.AsSpan(0, rows * h);
        for (int r = 0; r < rows; r++) C.CopyTo(a.Slice(r * h, h));
        logp[..rows].Clear();
        Span<float> tmp = stackalloc float[2 * K];
        for (int d = 0; d < D; d++)
        {
            var hid = ws.ForTraining ? ws.Hidden.AsSpan(d * rows * h, rows * h) : ws.Hidden.AsSpan(0, rows * h);
            TensorPrimitives.Multiply(a, Rho[d], hid);
            ApplyActivation(hid);
            var z = ws.Z.AsSpan(0, rows * k3);
            var bd = B.AsSpan(d * k3, k3);
            for (int r = 0; r < rows; r++) bd.CopyTo(z.Slice(r * k3, k3));
            Gemm.Multiply(false, false, rows, k3, h, 1f, hid, h, V.AsSpan(d * h * k3, h * k3), k3, 1f, z, k3, allowParallel: false);
            var dz = ws.ForTraining ? ws.DZ.AsSpan(d * rows * k3, rows * k3) : default;
            for (int r = 0; r < rows; r++)
            {
                float xd = x[r * D + d];
                var zr = z.Slice(r * k3, k3);
                logp[r] += ws.ForTraining
                    ? MixtureWithGradient(xd, zr, dz.Slice(r * k3, k3), gradScale, scaleMeanBySigma, tmp)
                    : MixtureLogDensity(xd, zr, tmp);
            }
            if (d < D - 1)
            {
                var wd = W.AsSpan(d * h, h);
                for (int r = 0; r < rows; r++)
                {
                    var ar = a.Slice(r * h, h);
                    TensorPrimitives.MultiplyAdd(wd, x[r * D + d], ar, ar);
                }
            }
        }
    }

    /// <summary>Backward pass after <see cref="Forward"/> on the same workspace; accumulates into the workspace gradients.</summary>
    public void Backward(ReadOnlySpan<float> x, int rows, Workspace ws)
    {
        int h = H, k3 = K3;
        var a = ws.A.AsSpan(0, rows * h);       // holds a_{D-1} after Forward
        var dAcc = ws.DAcc.AsSpan(0, rows * h);
        var dh = ws.DH.AsSpan(0, rows * h);
        dAcc.Clear();
        for (int d = D - 1; d >= 0; d--)
        {
            var hid = ws.Hidden.AsSpan(d * rows * h, rows * h);
            var dz = ws.DZ.AsSpan(d * rows * k3, rows * k3);
            var vd = V.AsSpan(d * h * k3, h * k3);
            Gemm.Multiply(true, false, h, k3, rows, 1f, hid, h, dz, k3, 1f, ws.GV.AsSpan(d * h * k3, h * k3), k3, allowParallel: false);
            RowOps.AccumulateColumnSums(dz, rows, k3, ws.GB.AsSpan(d * k3, k3));
            Gemm.Multiply(false, true, rows, h, k3, 1f, dz, k3, vd, k3, 0f, dh, h, allowParallel: false);
            ApplyActivationDerivative(hid, dh);
            ws.GRho![d] += (float)DotAsDouble(dh, a);
            TensorPrimitives.MultiplyAdd(dh, Rho[d], dAcc, dAcc);
            if (d > 0)
            {
                var wPrev = W.AsSpan((d - 1) * h, h);
                var gwPrev = ws.GW.AsSpan((d - 1) * h, h);
                for (int r = 0; r < rows; r++)
                {
                    float xv = x[r * D + d - 1];
                    TensorPrimitives.MultiplyAdd(dAcc.Slice(r * h, h), xv, gwPrev, gwPrev);
                    var ar = a.Slice(r * h, h);
                    TensorPrimitives.MultiplyAdd(wPrev, -xv, ar, ar);
                }
            }
            else RowOps.AccumulateColumnSums(dAcc, rows, h, ws.GC);
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
    private void ApplyActivationDerivative(ReadOnlySpan<float> hidden, Span<float> g)
    {
        switch (Activation)
        {
            case Activation.Relu:
                for (int i = 0; i < g.Length; i++) if (!(hidden[i] > 0f)) g[i] = 0f;
                break;
            case Activation.Sigmoid:
                for (int i = 0; i < g.Length; i++) g[i] *= hidden[i] * (1f - hidden[i]);
                break;
            case Activation.Tanh:
                for (int i = 0; i < g.Length; i++) g[i] *= 1f - hidden[i] * hidden[i];
                break;
        }
    }

    /// <summary>log Σ_k α_k N(x; μ_k, σ_k²) for one conditional; <paramref name="tmp"/> has ≥ 2K floats.</summary>
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

    /// <summary>As <see cref="MixtureLogDensity"/>, and writes dZ = scale · ∂log p/∂z (eqs. 3–5 of the supplement).</summary>
    private float MixtureWithGradient(float x, ReadOnlySpan<float> z, Span<float> dz, float scale, bool scaleMeanBySigma, Span<float> tmp)
    {
        int k = K;
        var za = z[..k]; var zm = z.Slice(k, k); var zs = z.Slice(2 * k, k);
        float lseAlpha = RowOps.LogSumExp(za);
        var l = tmp[..k]; var u = tmp.Slice(k, k);
        for (int i = 0; i < k; i++)
        {
            float ui = (x - zm[i]) * MathF.Exp(-zs[i]);
            u[i] = ui;
            l[i] = za[i] - lseAlpha - 0.5f * ui * ui - zs[i] - HalfLog2Pi;
        }
        float lse = RowOps.LogSumExp(l);
        for (int i = 0; i < k; i++)
        {
            float pi = MathF.Exp(l[i] - lse);
            float alpha = MathF.Exp(za[i] - lseAlpha);
            float ui = u[i];
            dz[i] = scale * (pi - alpha);
            float dmu = pi * ui;                       // ∂/∂μ = π u / σ; times σ when preconditioned
            dz[k + i] = scale * (scaleMeanBySigma ? dmu : dmu * MathF.Exp(-zs[i]));
            dz[2 * k + i] = scale * pi * (ui * ui - 1f);
        }
        return lse;
    }

    /// <summary>Ancestral sampling of <paramref name="rows"/> rows (model space) into <paramref name="x"/>; row r draws from
    /// <paramref name="rowStreams"/>[r] only, so a row depends on its own stream and not on how many rows are drawn.</summary>
    public void Sample(int rows, RandomStream[] rowStreams, Span<float> x)
    {
        int h = H, k3 = K3, k = K;
        var a = new float[rows * h];
        var hid = new float[rows * h];
        var z = new float[rows * k3];
        Span<float> alpha = stackalloc float[k];
        for (int r = 0; r < rows; r++) C.CopyTo(a.AsSpan(r * h, h));
        for (int d = 0; d < D; d++)
        {
            TensorPrimitives.Multiply(a, Rho[d], hid);
            ApplyActivation(hid);
            var bd = B.AsSpan(d * k3, k3);
            for (int r = 0; r < rows; r++) bd.CopyTo(z.AsSpan(r * k3, k3));
            Gemm.Multiply(false, false, rows, k3, h, 1f, hid, h, V.AsSpan(d * h * k3, h * k3), k3, 1f, z, k3, allowParallel: false);
            for (int r = 0; r < rows; r++)
            {
                var zr = z.AsSpan(r * k3, k3);
                zr[..k].CopyTo(alpha);
                RowOps.SoftmaxRows(alpha, 1, k);
                var random = rowStreams[r];
                int comp = random.NextCategorical(alpha);
                float v = zr[k + comp] + MathF.Exp(zr[2 * k + comp]) * (float)random.NextGaussian();
                x[r * D + d] = v;
                if (d < D - 1) TensorPrimitives.MultiplyAdd(W.AsSpan(d * h, h), v, a.AsSpan(r * h, h), a.AsSpan(r * h, h));
            }
        }
    }
}
