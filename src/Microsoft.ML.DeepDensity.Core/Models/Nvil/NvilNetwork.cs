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
        // In 64 bits, so that layer sizes whose products overflow an int are refused here rather than by an OverflowException.
        PredictSize(D, Latent).EnsureFitsAFile();
        Encoders = new Mlp[layers];
        Decoders = new Mlp[layers];
        for (int l = 0; l < layers; l++)
        {
            int below = l == 0 ? D : Latent[l - 1];
            Encoders[l] = new Mlp(FormattableString.Invariant($"enc{l}"), below, Array.Empty<int>(), Latent[l], Activation.Identity);
            Decoders[l] = new Mlp(FormattableString.Invariant($"dec{l}"), Latent[l], Array.Empty<int>(), below, Activation.Identity);
        }
        Prior = new Parameter("prior.b", new float[Latent[^1]]);
        foreach (var e in Encoders) e.Register(Parameters);
        foreach (var d in Decoders) d.Register(Parameters);
        Parameters.Add(Prior);
    }

    public int Layers => Latent.Length;

    /// <summary>Number of parameters of an architecture (checked against a file's size before allocating).</summary>
    public static long ParameterCount(int dimension, int[] latent) => Persistence.ModelSizePrediction.Saturating(() =>
    {
        // The top prior, then per layer the encoder (below → latent, with biases) and the decoder (latent → below).
        long total = latent[^1];
        for (int l = 0; l < latent.Length; l++)
        {
            long below = l == 0 ? dimension : latent[l - 1];
            total = checked(total + 2 * below * latent[l] + below + latent[l]);
        }
        return total;
    });

    /// <summary>The size of a sigmoid belief network of these sizes (<see cref="NvilOptions.PredictModelSize"/>, checked again before allocating).</summary>
    internal static Persistence.ModelSizePrediction PredictSize(int dimension, int[] latent)
        => new("NVIL", dimension, ParameterCount(dimension, latent),
            $"a sigmoid belief network of latent layers {Training.OptionText.Show(latent)} (LatentDimensions: 2·D×LatentDimensions[0] weights)",
            "use fewer columns (e.g. a PCA projection) or smaller LatentDimensions", NvilOptions.MaxDimension);

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
    /// encoder and decoder activation, uniforms and samples of each layer, and the log-probabilities.</summary>
    public long EvaluationFloatsPerSample
    {
        get
        {
            long f = 2L + Layers + 1; // LogW, LogP, LogQ
            for (int l = 0; l < Layers; l++)
                f += Encoders[l].WorkspaceFloatsPerRow + Decoders[l].WorkspaceFloatsPerRow + 2L * Latent[l] + 1;
            return f;
        }
    }

    /// <summary>Scratch for up to <see cref="Workspace.MaxRows"/> data rows × <see cref="Workspace.MaxSamples"/> samples. Not thread-safe.</summary>
    public sealed class Workspace
    {
        public readonly int MaxRows, MaxSamples;
        public readonly Mlp.Workspace[] Enc, Dec;
        /// <summary>Uniforms that draw the samples (filled before <see cref="Forward"/>) and the samples.</summary>
        public readonly float[][] U, H;
        /// <summary>LogP[0] = log p(x | h_0), LogP[l] = log p(h_{l−1} | h_l), LogP[L] = log p(h_{L−1}); LogQ[l] = log q(h_l | ·).</summary>
        public readonly float[][] LogP, LogQ;
        /// <summary>log p(x, h) − log q(h | x) per sample row.</summary>
        public readonly float[] LogW;
        /// <summary>Training only: value − σ(logit) of each inference layer's sample (DEnc) and of each generative layer's
        /// target (DDec), written by <see cref="Forward"/> and scaled in place into logit gradients by <see cref="Backward"/>.</summary>
        public readonly float[][] DEnc, DDec;
        public readonly float[] DEnc0Rows;

        public Workspace(NvilNetwork net, int maxRows, int maxSamples, bool forTraining)
        {
            MaxRows = maxRows; MaxSamples = maxSamples;
            int m = checked(maxRows * maxSamples), L = net.Layers;
            Enc = new Mlp.Workspace[L]; Dec = new Mlp.Workspace[L];
            U = new float[L][]; H = new float[L][]; LogQ = new float[L][]; LogP = new float[L + 1][];
            DEnc = new float[L][]; DDec = new float[L][];
            for (int l = 0; l < L; l++)
            {
                int h = net.Latent[l];
                Enc[l] = net.Encoders[l].CreateWorkspace(l == 0 ? maxRows : m);
                Dec[l] = net.Decoders[l].CreateWorkspace(m);
                U[l] = new float[m * h]; H[l] = new float[m * h];
                LogQ[l] = new float[m]; LogP[l] = new float[m];
                if (forTraining)
                {
                    DEnc[l] = new float[m * h];
                    DDec[l] = new float[m * net.Decoders[l].Outputs];
                }
            }
            LogP[L] = new float[m];
            LogW = new float[m];
            DEnc0Rows = forTraining && maxSamples > 1 ? new float[maxRows * net.Latent[0]] : Array.Empty<float>();
        }
    }

    /// <summary>Fills the workspace's uniforms for n rows × k samples from one stream (layer by layer).</summary>
    public void FillUniforms(Workspace ws, int n, int k, RandomStream random)
    {
        for (int l = 0; l < Layers; l++) random.FillUniform(ws.U[l].AsSpan(0, n * k * Latent[l]));
    }

    /// <summary>
    /// Draws h ~ q(h | x) from the uniforms in <paramref name="ws"/> (h = 1 when u &lt; σ(logit)) and computes the
    /// per-layer log-probabilities and ws.LogW[r·k + i] = log p(x_r, h_ri) − log q(h_ri | x_r). A training workspace also
    /// keeps every layer's value − σ(logit) for <see cref="Backward"/> (sampling, scoring and that residual are one pass).
    /// </summary>
    public void Forward(ReadOnlySpan<float> x, int n, int k, Workspace ws, bool allowParallel)
    {
        if (n > ws.MaxRows || (long)n * k > (long)ws.MaxRows * ws.MaxSamples) throw new ArgumentOutOfRangeException(nameof(n), "Batch exceeds the workspace.");
        int m = n * k, L = Layers;
        bool training = ws.DEnc[0] is not null;
        for (int l = 0; l < L; l++)
        {
            int h = Latent[l];
            // Layer 0: one encoder pass per data row, its logits shared by the row's k samples.
            var logits = l == 0 ? Encoders[0].Forward(x, n, ws.Enc[0], allowParallel) : Encoders[l].Forward(ws.H[l - 1], m, ws.Enc[l], allowParallel);
            BernoulliHead.SampleWithLogProb(logits, l == 0 ? k : 1, ws.U[l], m, h, ws.H[l], ws.LogQ[l], training ? ws.DEnc[l].AsSpan(0, m * h) : default);
        }
        BernoulliHead.LogProbWithResidual(x, k, Decoders[0].Forward(ws.H[0], m, ws.Dec[0], allowParallel), m, D, ws.LogP[0],
            training ? ws.DDec[0].AsSpan(0, m * D) : default);
        for (int l = 1; l < L; l++)
            BernoulliHead.LogProbWithResidual(ws.H[l - 1], 1, Decoders[l].Forward(ws.H[l], m, ws.Dec[l], allowParallel), m, Latent[l - 1],
                ws.LogP[l], training ? ws.DDec[l].AsSpan(0, m * Latent[l - 1]) : default);
        // Factorised top prior: log p(h) = h·b − Σ softplus(b), one dot product per sample.
        int top = Latent[^1];
        float normalizer = VectorMath.SumSoftplus(Prior.Value, default);
        var ltop = ws.LogP[L];
        for (int j = 0; j < m; j++) ltop[j] = TensorPrimitives.Dot(ws.H[L - 1].AsSpan(j * top, top), Prior.Value) - normalizer;

        var logW = ws.LogW.AsSpan(0, m);
        ws.LogP[L].AsSpan(0, m).CopyTo(logW);
        for (int l = 0; l < L; l++)
        {
            TensorPrimitives.Add(logW, ws.LogP[l].AsSpan(0, m), logW);
            TensorPrimitives.Subtract(logW, ws.LogQ[l].AsSpan(0, m), logW);
        }
    }

    /// <summary>
    /// After <see cref="Forward"/> on a training workspace: overwrites <paramref name="gradients"/> with
    /// Σ_j modelScale[j] ∇θ log p(x_j, h_j) (generative parameters) and Σ_j inferenceScale[l][j] ∇φ log q(h_l,j | ·)
    /// (encoder l). Consumes the workspace's residuals (scaled in place).
    /// </summary>
    public void Backward(ReadOnlySpan<float> x, int n, int k, Workspace ws, ReadOnlySpan<float> modelScale,
        float[][] inferenceScale, GradientBuffers gradients, bool allowParallel)
    {
        int m = n * k, L = Layers;
        var s = modelScale[..m];
        for (int l = 0; l < L; l++)
        {
            int below = l == 0 ? D : Latent[l - 1];
            var dl = ws.DDec[l].AsSpan(0, m * below);
            ScaleRows(dl, m, below, s);
            Decoders[l].Backward(ws.H[l], m, ws.Dec[l], dl, gradients, default, allowParallel: allowParallel, accumulateParameters: false);
        }
        // Top prior: Σ_j s_j (h_j − σ(b)) = Σ_j s_j h_j − σ(b) Σ_j s_j.
        int top = Latent[^1];
        var gPrior = gradients[Prior].AsSpan();
        gPrior.Clear();
        float scaleSum = 0f;
        for (int j = 0; j < m; j++)
        {
            TensorPrimitives.MultiplyAdd(ws.H[L - 1].AsSpan(j * top, top), s[j], gPrior, gPrior);
            scaleSum += s[j];
        }
        for (int c = 0; c < top; c++) gPrior[c] -= scaleSum / (1f + MathF.Exp(-Prior.Value[c]));

        for (int l = 0; l < L; l++)
        {
            int h = Latent[l];
            var dq = ws.DEnc[l].AsSpan(0, m * h);
            ScaleRows(dq, m, h, inferenceScale[l].AsSpan(0, m));
            if (l > 0) Encoders[l].Backward(ws.H[l - 1], m, ws.Enc[l], dq, gradients, default, allowParallel: allowParallel, accumulateParameters: false);
            else if (k == 1) Encoders[0].Backward(x, n, ws.Enc[0], dq, gradients, default, allowParallel: allowParallel, accumulateParameters: false);
            else
            {
                // Sum the k samples' logit gradients onto their data row (the encoder ran once per row).
                var rows = ws.DEnc0Rows.AsSpan(0, n * h);
                rows.Clear();
                for (int j = 0; j < m; j++) TensorPrimitives.Add(rows.Slice(j / k * h, h), dq.Slice(j * h, h), rows.Slice(j / k * h, h));
                Encoders[0].Backward(x, n, ws.Enc[0], rows, gradients, default, allowParallel: allowParallel, accumulateParameters: false);
            }
        }
    }

    /// <summary>Row j of a rows × width matrix ·= scale[j].</summary>
    private static void ScaleRows(Span<float> matrix, int rows, int width, ReadOnlySpan<float> scale)
    {
        for (int j = 0; j < rows; j++) TensorPrimitives.Multiply(matrix.Slice(j * width, width), scale[j], matrix.Slice(j * width, width));
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
