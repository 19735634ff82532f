using System.Numerics.Tensors;
using Microsoft.ML.DeepDensity.Layers;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.Nvil;

/// <summary>
/// A sigmoid belief network p(x, h) and its inference network q(h | x) (Mnih &amp; Gregor 2014): per-layer log-probabilities
/// of a batch of samples h ~ q, and the gradients ∇θ log p(x, h) and signal · ∇φ log q(h | x) with the samples fixed.
/// </summary>
/// <remarks>
/// Binary layers h_0 … h_{L−1} (h_0 nearest the data). Generative: p(h_{L−1}) = Π Bernoulli(σ(b)) with learned logits b,
/// p(h_{l−1} | h_l) and p(x | h_0) sigmoid layers. Inference: q(h_0 | x) q(h_1 | h_0) …, each a sigmoid layer. For n data
/// rows and k samples each, sample rows are data-row-major (row j = r·k + i), so every layer is one GEMM over the block.
/// The samples are discrete, so no gradient flows through h: each layer's gradient is a Bernoulli-logit gradient
/// (value − σ(logit)) times a per-row weight, back through its own dense layer only.
/// </remarks>
internal sealed class NvilNetwork
{
    public readonly int D;
    public readonly int[] Latent;
    /// <summary>Encoders[l]: x (l = 0) or h_{l−1} → logits of q(h_l | ·).</summary>
    public readonly Mlp[] Encoders;
    /// <summary>Decoders[0]: h_0 → logits of p(x | h_0); Decoders[l ≥ 1]: h_l → logits of p(h_{l−1} | h_l).</summary>
    public readonly Mlp[] Decoders;
    /// <summary>Logits of the factorised top prior p(h_{L−1}).</summary>
    public readonly Parameter Prior;
    public readonly ParameterSet Parameters = new();

    public NvilNetwork(int dimension, int[] latent)
    {
        D = dimension; Latent = (int[])latent.Clone();
        int layers = Latent.Length;
        Encoders = new Mlp[layers];
        Decoders = new Mlp[layers];
        for (int l = 0; l < layers; l++)
        {
            int below = l == 0 ? D : Latent[l - 1];
            Encoders[l] = new Mlp($"enc{l}", below, Array.Empty<int>(), Latent[l], Activation.Identity);
            Decoders[l] = new Mlp($"dec{l}", Latent[l], Array.Empty<int>(), below, Activation.Identity);
        }
        Prior = new Parameter("prior.b", new float[Latent[^1]]);
        foreach (var e in Encoders) e.Register(Parameters);
        foreach (var d in Decoders) d.Register(Parameters);
        Parameters.Add(Prior);
    }

    public int Layers => Latent.Length;

    /// <summary>Number of parameters of an architecture (checked against a file's size before allocating).</summary>
    public static long ParameterCount(int dimension, int[] latent)
    {
        long total = latent[^1];
        for (int l = 0; l < latent.Length; l++)
        {
            long below = l == 0 ? dimension : latent[l - 1];
            total += 2 * below * latent[l] + below + latent[l];
        }
        return total;
    }

    /// <summary>Glorot weights, zero biases and prior logits; optionally data-layer biases = logit of the pixel means.</summary>
    public void Initialize(RandomStream random, ReadOnlySpan<float> pixelMean)
    {
        for (int l = 0; l < Layers; l++)
        {
            Encoders[l].InitializeGlorot(random.Fork(1, (ulong)l));
            Decoders[l].InitializeGlorot(random.Fork(2, (ulong)l));
        }
        Array.Clear(Prior.Value);
        if (pixelMean.IsEmpty) return;
        var bias = Decoders[0].Layers[0].Bias.Value;
        for (int c = 0; c < D; c++)
        {
            float p = Math.Clamp(pixelMean[c], 1e-3f, 1f - 1e-3f);
            bias[c] = MathF.Log(p / (1f - p));
        }
    }

    /// <summary>Floats an evaluation <see cref="Workspace"/> holds per sample row (one data row × one sample): every
    /// encoder and decoder activation, uniforms, logits and samples of each layer, and the log-probabilities.</summary>
    public long EvaluationFloatsPerSample
    {
        get
        {
            long f = 2L + Latent[^1] + Layers + 1; // LogW, prior logits, LogP, LogQ
            for (int l = 0; l < Layers; l++)
                f += Encoders[l].WorkspaceFloatsPerRow + Decoders[l].WorkspaceFloatsPerRow + 3L * Latent[l] + 1;
            return f;
        }
    }

    /// <summary>Scratch for up to <see cref="Workspace.MaxRows"/> data rows × <see cref="Workspace.MaxSamples"/> samples. Not thread-safe.</summary>
    public sealed class Workspace
    {
        public readonly int MaxRows, MaxSamples;
        public readonly Mlp.Workspace[] Enc, Dec;
        /// <summary>Uniforms that draw the samples (filled before <see cref="Forward"/>), logits of q, the samples.</summary>
        public readonly float[][] U, QLogits, H;
        /// <summary>LogP[0] = log p(x | h_0), LogP[l] = log p(h_{l−1} | h_l), LogP[L] = log p(h_{L−1}); LogQ[l] = log q(h_l | ·).</summary>
        public readonly float[][] LogP, LogQ;
        /// <summary>log p(x, h) − log q(h | x) per sample row.</summary>
        public readonly float[] LogW;
        public readonly float[] PriorLogits;
        public readonly float[][] DEnc, DDec;
        public readonly float[] DEnc0Rows, DPrior;

        public Workspace(NvilNetwork net, int maxRows, int maxSamples, bool forTraining)
        {
            MaxRows = maxRows; MaxSamples = maxSamples;
            int m = checked(maxRows * maxSamples), L = net.Layers;
            Enc = new Mlp.Workspace[L]; Dec = new Mlp.Workspace[L];
            U = new float[L][]; QLogits = new float[L][]; H = new float[L][]; LogQ = new float[L][]; LogP = new float[L + 1][];
            DEnc = new float[L][]; DDec = new float[L][];
            for (int l = 0; l < L; l++)
            {
                int h = net.Latent[l];
                Enc[l] = net.Encoders[l].CreateWorkspace(l == 0 ? maxRows : m);
                Dec[l] = net.Decoders[l].CreateWorkspace(m);
                U[l] = new float[m * h]; QLogits[l] = new float[m * h]; H[l] = new float[m * h];
                LogQ[l] = new float[m]; LogP[l] = new float[m];
                if (forTraining)
                {
                    DEnc[l] = new float[m * h];
                    DDec[l] = new float[m * net.Decoders[l].Outputs];
                }
            }
            LogP[L] = new float[m];
            LogW = new float[m];
            PriorLogits = new float[m * net.Latent[^1]];
            DEnc0Rows = forTraining ? new float[maxRows * net.Latent[0]] : Array.Empty<float>();
            DPrior = forTraining ? new float[m * net.Latent[^1]] : Array.Empty<float>();
        }
    }

    /// <summary>Fills the workspace's uniforms for n rows × k samples from one stream (layer by layer).</summary>
    public void FillUniforms(Workspace ws, int n, int k, RandomStream random)
    {
        for (int l = 0; l < Layers; l++) random.FillUniform(ws.U[l].AsSpan(0, n * k * Latent[l]));
    }

    /// <summary>
    /// Draws h ~ q(h | x) from the uniforms in <paramref name="ws"/> (h = 1 when u &lt; σ(logit)) and computes the
    /// per-layer log-probabilities and ws.LogW[r·k + i] = log p(x_r, h_ri) − log q(h_ri | x_r).
    /// </summary>
    public void Forward(ReadOnlySpan<float> x, int n, int k, Workspace ws, bool allowParallel)
    {
        if (n > ws.MaxRows || (long)n * k > (long)ws.MaxRows * ws.MaxSamples) throw new ArgumentOutOfRangeException(nameof(n), "Batch exceeds the workspace.");
        int m = n * k, L = Layers;
        for (int l = 0; l < L; l++)
        {
            int h = Latent[l];
            var logits = ws.QLogits[l].AsSpan(0, m * h);
            if (l == 0)
            {
                // One encoder pass per data row; its logits are shared by the row's k samples.
                var rowLogits = Encoders[0].Forward(x, n, ws.Enc[0], allowParallel);
                for (int j = 0; j < m; j++) rowLogits.Slice(j / k * h, h).CopyTo(logits.Slice(j * h, h));
            }
            else Encoders[l].Forward(ws.H[l - 1], m, ws.Enc[l], allowParallel).CopyTo(logits);
            SampleBernoulli(logits, ws.U[l].AsSpan(0, m * h), ws.H[l].AsSpan(0, m * h));
            var lq = ws.LogQ[l].AsSpan(0, m);
            lq.Clear();
            BernoulliHead.AccumulateLogProb(ws.H[l], 1, logits, m, h, 1f, lq);
        }
        var lx = ws.LogP[0].AsSpan(0, m);
        lx.Clear();
        BernoulliHead.AccumulateLogProb(x, k, Decoders[0].Forward(ws.H[0], m, ws.Dec[0], allowParallel), m, D, 1f, lx);
        for (int l = 1; l < L; l++)
        {
            var lp = ws.LogP[l].AsSpan(0, m);
            lp.Clear();
            BernoulliHead.AccumulateLogProb(ws.H[l - 1], 1, Decoders[l].Forward(ws.H[l], m, ws.Dec[l], allowParallel), m, Latent[l - 1], 1f, lp);
        }
        int top = Latent[^1];
        var prior = ws.PriorLogits.AsSpan(0, m * top);
        for (int j = 0; j < m; j++) Prior.Value.CopyTo(prior.Slice(j * top, top));
        var ltop = ws.LogP[L].AsSpan(0, m);
        ltop.Clear();
        BernoulliHead.AccumulateLogProb(ws.H[L - 1], 1, prior, m, top, 1f, ltop);

        var logW = ws.LogW.AsSpan(0, m);
        ws.LogP[L].AsSpan(0, m).CopyTo(logW);
        for (int l = 0; l < L; l++)
        {
            TensorPrimitives.Add(logW, ws.LogP[l].AsSpan(0, m), logW);
            TensorPrimitives.Subtract(logW, ws.LogQ[l].AsSpan(0, m), logW);
        }
    }

    /// <summary>h = 1 where u &lt; σ(logit), else 0.</summary>
    private static void SampleBernoulli(ReadOnlySpan<float> logits, ReadOnlySpan<float> u, Span<float> h)
    {
        TensorPrimitives.Sigmoid(logits, h);
        for (int i = 0; i < h.Length; i++) h[i] = u[i] < h[i] ? 1f : 0f;
    }

    /// <summary>
    /// After <see cref="Forward"/>: overwrites <paramref name="gradients"/> with Σ_j modelScale[j] ∇θ log p(x_j, h_j)
    /// (generative parameters) and Σ_j inferenceScale[l][j] ∇φ log q(h_l,j | ·) (encoder l).
    /// </summary>
    public void Backward(ReadOnlySpan<float> x, int n, int k, Workspace ws, ReadOnlySpan<float> modelScale,
        float[][] inferenceScale, GradientBuffers gradients, bool allowParallel)
    {
        int m = n * k, L = Layers;
        var s = modelScale[..m];
        var dx = ws.DDec[0].AsSpan(0, m * D);
        dx.Clear();
        BernoulliHead.Backward(x, k, ws.Dec[0].Result, m, D, s, dx);
        Decoders[0].Backward(ws.H[0], m, ws.Dec[0], dx, gradients, default, allowParallel: allowParallel, accumulateParameters: false);
        for (int l = 1; l < L; l++)
        {
            int below = Latent[l - 1];
            var dl = ws.DDec[l].AsSpan(0, m * below);
            dl.Clear();
            BernoulliHead.Backward(ws.H[l - 1], 1, ws.Dec[l].Result, m, below, s, dl);
            Decoders[l].Backward(ws.H[l], m, ws.Dec[l], dl, gradients, default, allowParallel: allowParallel, accumulateParameters: false);
        }
        int top = Latent[^1];
        var dp = ws.DPrior.AsSpan(0, m * top);
        dp.Clear();
        BernoulliHead.Backward(ws.H[L - 1], 1, ws.PriorLogits, m, top, s, dp);
        var gPrior = gradients[Prior].AsSpan();
        gPrior.Clear();
        RowOps.AccumulateColumnSums(dp, m, top, gPrior);

        for (int l = 0; l < L; l++)
        {
            int h = Latent[l];
            var dq = ws.DEnc[l].AsSpan(0, m * h);
            dq.Clear();
            BernoulliHead.Backward(ws.H[l], 1, ws.QLogits[l], m, h, inferenceScale[l].AsSpan(0, m), dq);
            if (l == 0)
            {
                // Sum the k samples' logit gradients onto their data row (the encoder ran once per row).
                var rows = ws.DEnc0Rows.AsSpan(0, n * h);
                rows.Clear();
                for (int j = 0; j < m; j++) TensorPrimitives.Add(rows.Slice(j / k * h, h), dq.Slice(j * h, h), rows.Slice(j / k * h, h));
                Encoders[0].Backward(x, n, ws.Enc[0], rows, gradients, default, allowParallel: allowParallel, accumulateParameters: false);
            }
            else Encoders[l].Backward(ws.H[l - 1], m, ws.Enc[l], dq, gradients, default, allowParallel: allowParallel, accumulateParameters: false);
        }
    }

    /// <summary>
    /// Ancestral samples h ~ p(h), x ~ p(x | h) (or the data layer's probabilities) of <paramref name="rows"/> rows; row r
    /// draws all its noise from <paramref name="rowStreams"/>[r] only, so a row does not depend on the rows drawn with it.
    /// </summary>
    public void Sample(int rows, RandomStream[] rowStreams, Span<float> destination, bool mean)
    {
        int top = Latent[^1];
        var h = new float[rows * top];
        for (int r = 0; r < rows; r++) BernoulliHead.Sample(Prior.Value, rowStreams[r], h.AsSpan(r * top, top));
        for (int l = Layers - 1; l >= 1; l--)
        {
            var logits = Decoders[l].Forward(h, rows, Decoders[l].CreateWorkspace(rows));
            int width = Latent[l - 1];
            var below = new float[rows * width];
            for (int r = 0; r < rows; r++) BernoulliHead.Sample(logits.Slice(r * width, width), rowStreams[r], below.AsSpan(r * width, width));
            h = below;
        }
        var output = Decoders[0].Forward(h, rows, Decoders[0].CreateWorkspace(rows));
        var dst = destination[..(rows * D)];
        if (mean) TensorPrimitives.Sigmoid(output, dst);
        else
            for (int r = 0; r < rows; r++) BernoulliHead.Sample(output.Slice(r * D, D), rowStreams[r], dst.Slice(r * D, D));
    }
}
