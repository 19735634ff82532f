using Microsoft.ML.DeepDensity.Layers;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.Iwae;

/// <summary>
/// The IWAE's networks and the log importance weights log w = log p(x, z) − log q(z | x) of a batch, with their
/// backward pass (Burda et al. 2016; Bachman &amp; Precup 2015, §3).
/// </summary>
/// <remarks>
/// Stochastic layers z_0 … z_{L−1} (z_0 nearest the data). Inference: q(z_0|x) q(z_1|z_0) …, each a diagonal Gaussian
/// from an MLP, sampled by reparameterisation z = μ + σ ε. Generative model: p(z_{L−1}) = N(0, I), p(z_{l−1} | z_l) diagonal
/// Gaussian, p(x | z_0) Bernoulli or Gaussian. For n data rows and k samples each, the sample rows are laid out
/// data-row-major (row j = r·k + i), so every network past the first encoder runs as one GEMM over n·k rows.
/// The backward pass is the exact total derivative of the weighted Σ_j s_j log w_j (s_j = ∂L/∂log w_j) with the noise
/// ε fixed, including the path through z in log q (the full reparameterisation gradient, as in the reference IWAE).
/// </remarks>
internal sealed class IwaeNetwork
{
    public readonly int D;
    public readonly int[] Latent;
    public readonly int[] HiddenUnits, DeepHiddenUnits;
    public readonly Activation Activation;
    public readonly IwaeLikelihood Likelihood;
    /// <summary>Encoders[l]: input (x for l = 0, else z_{l−1}) → [μ | log σ] of z_l.</summary>
    public readonly Mlp[] Encoders;
    /// <summary>Decoders[0]: z_0 → parameters of p(x | z_0); Decoders[l ≥ 1]: z_l → [μ | log σ] of z_{l−1}.</summary>
    public readonly Mlp[] Decoders;
    public readonly ParameterSet Parameters = new();
    /// <summary>The soft bound on log σ of q(z₁ | x) and p(x | z₁) (<see cref="LogSigmaBound"/>), or null: unbounded (the
    /// network's output is log σ itself, as in every model before the bound and every model with hidden layers).</summary>
    public readonly LogSigmaBound? Bound;

    public IwaeNetwork(int dimension, int[] latent, int[] hiddenUnits, int[] deepHiddenUnits, Activation activation, IwaeLikelihood likelihood,
        LogSigmaBound? bound = null)
    {
        D = dimension; Latent = (int[])latent.Clone(); HiddenUnits = (int[])hiddenUnits.Clone(); DeepHiddenUnits = (int[])deepHiddenUnits.Clone();
        Activation = activation; Likelihood = likelihood;
        if (bound is not null && LogSigmaBound.Problem(likelihood, dimension, bound.HalfWidth, bound.OutputCentre) is string boundProblem)
            throw new ArgumentException(boundProblem, nameof(bound));
        Bound = bound;
        int layers = Latent.Length;
        // In 64 bits, so that layer sizes whose products overflow an int are refused here rather than by an OverflowException.
        PredictSize(D, Latent, HiddenUnits, DeepHiddenUnits, likelihood).EnsureFitsAFile();
        Encoders = new Mlp[layers];
        Decoders = new Mlp[layers];
        for (int l = 0; l < layers; l++)
        {
            var hidden = l == 0 ? HiddenUnits : DeepHiddenUnits;
            int below = l == 0 ? D : Latent[l - 1];
            Encoders[l] = new Mlp(FormattableString.Invariant($"enc{l}"), below, hidden, 2 * Latent[l], activation);
            int outWidth = l == 0 && likelihood == IwaeLikelihood.Bernoulli ? D : 2 * below;
            Decoders[l] = new Mlp(FormattableString.Invariant($"dec{l}"), Latent[l], Enumerable.Reverse(hidden).ToArray(), outWidth, activation);
        }
        foreach (var e in Encoders) e.Register(Parameters);
        foreach (var d in Decoders) d.Register(Parameters);
    }

    /// <summary>Number of parameters an architecture has, exactly as its encoders and decoders hold them (weights and
    /// biases of every layer); checked 64-bit arithmetic, <see cref="long.MaxValue"/> when it overflows. Checked against
    /// a file's size before allocating.</summary>
    public static long ParameterCount(int dimension, int[] latent, int[] hidden, int[] deepHidden, IwaeLikelihood likelihood)
        => Persistence.ModelSizePrediction.Saturating(() =>
        {
            static long Chain(long input, IEnumerable<long> hidden, long output)
            {
                long n = 0, prev = input;
                foreach (var h in hidden.Append(output)) { n = checked(n + prev * h + h); prev = h; }
                return n;
            }
            long total = 0;
            for (int l = 0; l < latent.Length; l++)
            {
                var h = (l == 0 ? hidden : deepHidden).Select(u => (long)u).ToArray();
                long below = l == 0 ? dimension : latent[l - 1];
                total = checked(total + Chain(below, h, 2L * latent[l]));
                total = checked(total + Chain(latent[l], Enumerable.Reverse(h), l == 0 && likelihood == IwaeLikelihood.Bernoulli ? dimension : 2 * below));
            }
            return total;
        });

    /// <summary>The size of an IWAE of these sizes (<see cref="IwaeOptions.PredictModelSize"/>, checked again before allocating).</summary>
    /// <remarks>DeepHiddenUnits are named only when there is a second latent layer: with one they build nothing, and
    /// naming them (the default [100, 100]) pointed a user at a setting that cannot make the model smaller.</remarks>
    internal static Persistence.ModelSizePrediction PredictSize(int dimension, int[] latent, int[] hidden, int[] deepHidden, IwaeLikelihood likelihood)
    {
        bool deep = latent.Length > 1;
        return new("IWAE", dimension, ParameterCount(dimension, latent, hidden, deepHidden, likelihood),
            $"an IWAE of hidden layers {Training.OptionText.Show(hidden)}" +
            (deep ? $", latent layers {Training.OptionText.Show(latent)} and deep hidden layers {Training.OptionText.Show(deepHidden)} " +
                    "(HiddenUnits, LatentDimensions, DeepHiddenUnits: "
                  : $" and latent layers {Training.OptionText.Show(latent)} (HiddenUnits, LatentDimensions: ") +
            "D×HiddenUnits[0] weights in the encoder and in the decoder)",
            "use fewer columns (e.g. a PCA projection) or smaller HiddenUnits" + (deep ? ", LatentDimensions or DeepHiddenUnits" : " or LatentDimensions"),
            IwaeOptions.MaxDimension);
    }

    public int Layers => Latent.Length;
    public int OutputWidth => Decoders[0].Outputs;

    /// <summary>Glorot weights, zero biases; optionally output biases from the data's column statistics.</summary>
    public void Initialize(RandomStream random, ReadOnlySpan<float> columnMean, ReadOnlySpan<float> columnStd)
    {
        for (int l = 0; l < Layers; l++)
        {
            Encoders[l].InitializeGlorot(random.Fork(1, (ulong)l));
            Decoders[l].InitializeGlorot(random.Fork(2, (ulong)l));
        }
        if (Bound is not null)
        {
            // The bounded heads start with log σ independent of their input: q(z₁ | x) at the prior's σ = 1 and p(x | z₁)
            // at the output bias (each column's standard deviation). With Glorot weights the affine encoder's log σ is
            // ±5 at unit-scale data (σ up to e^5 = 150 times the prior's), its samples z₁ reach hundreds and the decoder's
            // log σ, affine in z₁, sits at the bound for most of them: the conformance suite's model began with a training
            // bound of −2e9 nats and had not left −1e7 after 30 epochs.
            ZeroLogSigmaWeights(Encoders[0].Layers[^1], Latent[0]);
            ZeroLogSigmaWeights(Decoders[0].Layers[^1], D);
        }
        if (columnMean.IsEmpty) return;
        var bias = Decoders[0].Layers[^1].Bias.Value;
        for (int c = 0; c < D; c++)
        {
            if (Likelihood == IwaeLikelihood.Bernoulli)
            {
                float p = Math.Clamp(columnMean[c], 1e-3f, 1f - 1e-3f);
                bias[c] = MathF.Log(p / (1f - p));
            }
            else
            {
                bias[c] = columnMean[c];
                bias[D + c] = MathF.Log(MathF.Max(columnStd[c], 1e-3f));
            }
        }
    }

    /// <summary>Zeroes the weights into the log σ half [d, 2d) of a Gaussian head layer's outputs (W is inputs × outputs).</summary>
    private static void ZeroLogSigmaWeights(DenseLayer head, int d)
    {
        var w = head.Weight.Value;
        for (int i = 0; i < head.Inputs; i++) Array.Clear(w, i * head.Outputs + d, d);
    }

    /// <summary>Floats an evaluation <see cref="Workspace"/> holds per decoder row (one data row × one sample): every
    /// encoder and decoder activation, the noise and the latent draws. Scoring memory is this × rows × samples per pass.</summary>
    public long EvaluationFloatsPerSample
    {
        get
        {
            long f = 1; // LogW
            for (int l = 0; l < Layers; l++)
                f += Encoders[l].WorkspaceFloatsPerRow + Decoders[l].WorkspaceFloatsPerRow + 2L * Latent[l];
            return f;
        }
    }

    /// <summary>Scratch for up to <see cref="Workspace.MaxRows"/> data rows × <see cref="Workspace.MaxSamples"/> samples. Not thread-safe.</summary>
    public sealed class Workspace
    {
        public readonly int MaxRows, MaxSamples;
        public readonly Mlp.Workspace[] Enc, Dec;
        public readonly float[][] Noise, Z, DZ, DEnc, DDec;
        public readonly float[] LogW, RowScale, NegRowScale;
        public readonly bool ForTraining;
        /// <summary>The scoring call the decoders' weights were packed for (<see cref="PackDecoderWeights"/>; 0: none).</summary>
        public long PackedForCall;
        /// <summary>A standardising model's rows in the networks' space (scoring workspaces of such a model only; MaxRows rows).</summary>
        public float[]? StandardizedRows;


        public Workspace(IwaeNetwork net, int maxRows, int maxSamples, bool forTraining)
        {
            MaxRows = maxRows; MaxSamples = maxSamples; ForTraining = forTraining;
            int m = checked(maxRows * maxSamples);
            int L = net.Layers;
            Enc = new Mlp.Workspace[L]; Dec = new Mlp.Workspace[L];
            Noise = new float[L][]; Z = new float[L][]; DZ = new float[L][]; DEnc = new float[L][]; DDec = new float[L][];
            for (int l = 0; l < L; l++)
            {
                int encRows = l == 0 ? maxRows : m;
                Enc[l] = net.Encoders[l].CreateWorkspace(encRows);
                Dec[l] = net.Decoders[l].CreateWorkspace(m);
                Noise[l] = new float[m * net.Latent[l]];
                Z[l] = new float[m * net.Latent[l]];
                if (forTraining)
                {
                    DZ[l] = new float[m * net.Latent[l]];
                    DEnc[l] = new float[encRows * 2 * net.Latent[l]];
                    DDec[l] = new float[m * net.Decoders[l].Outputs];
                }
            }
            LogW = new float[m];
            RowScale = new float[forTraining ? m : 0];
            NegRowScale = new float[forTraining ? m : 0];
        }
    }

    /// <summary>Packs every decoder's weights into the workspace (the networks that run over all n·k sample rows; the
    /// first encoder sees only the n data rows and reads its weights in place).</summary>
    public void PackDecoderWeights(Workspace ws, bool allowParallel)
    {
        for (int l = 0; l < Layers; l++) Decoders[l].PackWeights(ws.Dec[l], allowParallel);
    }

    /// <summary>Fills the workspace's noise for n rows × k samples from one stream (layer by layer).</summary>
    public void FillNoise(Workspace ws, int n, int k, RandomStream random)
    {
        for (int l = 0; l < Layers; l++) GaussianNoise.Fill(random, ws.Noise[l].AsSpan(0, n * k * Latent[l]));
    }

    /// <summary>
    /// Forward pass with the noise in <paramref name="ws"/>: ws.LogW[r·k + i] = log p(x_r, z_ri) − log q(z_ri | x_r).
    /// With <paramref name="firstEncoderCurrent"/> the first encoder's output in ws is already that of these n rows (the
    /// previous chunk of samples of the same rows) and is not computed again.
    /// </summary>
    public void Forward(ReadOnlySpan<float> x, int n, int k, Workspace ws, bool allowParallel, bool firstEncoderCurrent = false)
    {
        if (n > ws.MaxRows || (long)n * k > (long)ws.MaxRows * ws.MaxSamples) throw new ArgumentOutOfRangeException(nameof(n), "Batch exceeds the workspace.");
        int m = n * k;
        var logW = ws.LogW.AsSpan(0, m);
        logW.Clear();
        for (int l = 0; l < Layers; l++)
        {
            int d = Latent[l], rep = l == 0 ? k : 1;
            Span<float> pq;
            if (l == 0 && firstEncoderCurrent) pq = ws.Enc[0].Result.AsSpan(0, n * Encoders[0].Outputs); // already bounded
            else
            {
                pq = Encoders[l].Forward(l == 0 ? x : ws.Z[l - 1], l == 0 ? n : m, ws.Enc[l], allowParallel);
                if (l == 0) Bound?.Apply(pq, n, d, default);
            }
            DiagonalGaussianHead.Sample(pq, rep, ws.Noise[l], m, d, ws.Z[l]);
            DiagonalGaussianHead.AccumulateLogProb(ws.Z[l], 1, pq, rep, m, d, -1f, logW);
        }
        StandardNormalHead.AccumulateLogProb(ws.Z[Layers - 1], m, Latent[Layers - 1], 1f, logW);
        for (int l = 1; l < Layers; l++)
        {
            var pp = Decoders[l].Forward(ws.Z[l], m, ws.Dec[l], allowParallel);
            DiagonalGaussianHead.AccumulateLogProb(ws.Z[l - 1], 1, pp, 1, m, Latent[l - 1], 1f, logW);
        }
        var output = Decoders[0].Forward(ws.Z[0], m, ws.Dec[0], allowParallel);
        Bound?.Apply(output, m, D, Bound.OutputCentre);
        if (Likelihood == IwaeLikelihood.Bernoulli) BernoulliHead.AccumulateLogProb(x, k, output, m, D, 1f, logW);
        else DiagonalGaussianHead.AccumulateLogProb(x, k, output, 1, m, D, 1f, logW);
    }

    /// <summary>
    /// Backward pass after <see cref="Forward"/>: writes Σ_j ws.RowScale[j] · ∂ log w_j / ∂θ into <paramref name="gradients"/>
    /// (every parameter tensor is overwritten: each layer is visited exactly once, so no clearing is needed).
    /// </summary>
    public void Backward(ReadOnlySpan<float> x, int n, int k, Workspace ws, GradientBuffers gradients, bool allowParallel)
    {
        int m = n * k;
        var s = ws.RowScale.AsSpan(0, m);
        var negS = ws.NegRowScale.AsSpan(0, m);
        for (int j = 0; j < m; j++) negS[j] = -s[j];

        // log p(x | z_0): into dz_0 through decoder 0.
        var dOut = ws.DDec[0].AsSpan(0, m * OutputWidth);
        dOut.Clear();
        var output = ws.Dec[0].Result;
        if (Likelihood == IwaeLikelihood.Bernoulli) BernoulliHead.Backward(x, k, output, m, D, s, dOut);
        else DiagonalGaussianHead.Backward(x, k, output, 1, m, D, s, default, dOut);
        Bound?.MultiplyByDerivative(output, dOut, m, D, Bound.OutputCentre);
        Decoders[0].Backward(ws.Z[0], m, ws.Dec[0], dOut, gradients, ws.DZ[0].AsSpan(0, m * Latent[0]), accumulateInput: false, allowParallel, accumulateParameters: false);

        // log p(z_{l−1} | z_l): value gradient into dz_{l−1}, parameters back through decoder l into dz_l.
        for (int l = 1; l < Layers; l++)
        {
            int below = Latent[l - 1];
            var dpp = ws.DDec[l].AsSpan(0, m * 2 * below);
            dpp.Clear();
            DiagonalGaussianHead.Backward(ws.Z[l - 1], 1, ws.Dec[l].Result, 1, m, below, s, ws.DZ[l - 1], dpp);
            Decoders[l].Backward(ws.Z[l], m, ws.Dec[l], dpp, gradients, ws.DZ[l].AsSpan(0, m * Latent[l]), accumulateInput: false, allowParallel, accumulateParameters: false);
        }
        StandardNormalHead.Backward(ws.Z[Layers - 1], m, Latent[Layers - 1], s, ws.DZ[Layers - 1]);

        // −log q(z_l | ·): value and parameter gradients.
        for (int l = 0; l < Layers; l++)
        {
            int d = Latent[l], rep = l == 0 ? k : 1, encRows = l == 0 ? n : m;
            var dpq = ws.DEnc[l].AsSpan(0, encRows * 2 * d);
            dpq.Clear();
            DiagonalGaussianHead.Backward(ws.Z[l], 1, ws.Enc[l].Result, rep, m, d, negS, ws.DZ[l], dpq);
        }

        // Reparameterisation and encoders, top layer first (dz_l is complete once encoder l+1 has been back-propagated).
        for (int l = Layers - 1; l >= 0; l--)
        {
            int d = Latent[l], rep = l == 0 ? k : 1, encRows = l == 0 ? n : m;
            var dpq = ws.DEnc[l].AsSpan(0, encRows * 2 * d);
            DiagonalGaussianHead.SampleBackward(ws.Z[l], ws.Enc[l].Result, rep, m, d, ws.DZ[l], dpq);
            if (l == 0) Bound?.MultiplyByDerivative(ws.Enc[0].Result, dpq, encRows, d, default);
            Encoders[l].Backward(l == 0 ? x : ws.Z[l - 1], encRows, ws.Enc[l], dpq, gradients,
                l == 0 ? default : ws.DZ[l - 1].AsSpan(0, m * Latent[l - 1]), accumulateInput: true, allowParallel, accumulateParameters: false);
        }
    }

    /// <summary>
    /// Normalised importance weights below this (≈ 2^-66) enter the gradient as 0. Early in training the proposal is poor
    /// and a row's log-weights spread over hundreds of nats, so most of its samples get weights of e^-100 and less:
    /// scaled by 1/batch they are subnormal floats, and every multiply that reads one in the backward GEMMs takes a
    /// microcode assist (the first epoch of the Fashion-MNIST benchmark ran at half speed). A term that small is below
    /// float resolution of the row's sum of weighted gradients (its weights sum to 1 and the largest is at least 1/k).
    /// </summary>
    public const double NegligibleWeight = 1e-20;

    /// <summary>
    /// For each data row r: bound[r] = log (1/k) Σ_i w_ri; when <paramref name="rowScale"/> is non-empty also
    /// rowScale[r·k+i] = scale · w̃_ri (normalised weights, eq. 10 / 22).
    /// </summary>
    public static void ReduceRows(ReadOnlySpan<float> logW, int n, int k, Span<double> bound, Span<float> rowScale, float scale)
    {
        double logK = Math.Log(k);
        for (int r = 0; r < n; r++)
        {
            var lw = logW.Slice(r * k, k);
            float max = float.NegativeInfinity;
            foreach (var v in lw) if (v > max) max = v;
            double sum = 0;
            foreach (var v in lw) sum += Math.Exp(v - max);
            double lse = max + Math.Log(sum);
            bound[r] = lse - logK;
            if (!rowScale.IsEmpty)
                for (int i = 0; i < k; i++)
                {
                    double w = Math.Exp(lw[i] - max) / sum;
                    rowScale[r * k + i] = w < NegligibleWeight ? 0f : scale * (float)w;
                }
        }
    }

    /// <summary>
    /// Ancestral samples z ~ p(z), x ~ p(x|z) (or the decoder mean) of <paramref name="rows"/> rows; row r draws all its
    /// noise from <paramref name="rowStreams"/>[r] only, so a row does not depend on how many rows are drawn with it.
    /// </summary>
    public void Sample(int rows, RandomStream[] rowStreams, Span<float> destination, bool mean)
    {
        int top = Latent[^1];
        var z = new float[rows * top];
        for (int r = 0; r < rows; r++) GaussianNoise.Fill(rowStreams[r], z.AsSpan(r * top, top));
        for (int l = Layers - 1; l >= 1; l--)
        {
            var ws = Decoders[l].CreateWorkspace(rows);
            var pp = Decoders[l].Forward(z, rows, ws);
            int width = Latent[l - 1];
            var below = new float[rows * width];
            var eps = new float[below.Length];
            for (int r = 0; r < rows; r++) GaussianNoise.Fill(rowStreams[r], eps.AsSpan(r * width, width));
            DiagonalGaussianHead.Sample(pp, 1, eps, rows, width, below);
            z = below;
        }
        var outWs = Decoders[0].CreateWorkspace(rows);
        var output = Decoders[0].Forward(z, rows, outWs);
        Bound?.Apply(output, rows, D, Bound.OutputCentre);
        var dst = destination[..(rows * D)];
        if (Likelihood == IwaeLikelihood.Bernoulli)
        {
            if (mean) System.Numerics.Tensors.TensorPrimitives.Sigmoid(output, dst);
            else
                for (int r = 0; r < rows; r++)
                    BernoulliHead.Sample(output.Slice(r * D, D), rowStreams[r], dst.Slice(r * D, D));
        }
        else
        {
            var eps = new float[rows * D];
            if (!mean) for (int r = 0; r < rows; r++) GaussianNoise.Fill(rowStreams[r], eps.AsSpan(r * D, D));
            DiagonalGaussianHead.Sample(output, 1, eps, rows, D, dst);
        }
    }
}

/// <summary>
/// A soft bound on log σ of a diagonal-Gaussian head: log σ = c + L·tanh((a − c)/L) of the network output a, so σ stays
/// within e^(c ± L) and equals e^a near the centre c. Used where log σ would otherwise be an affine function of an
/// unbounded input (a Gaussian IWAE with affine heads, <c>HiddenUnits = {}</c>): q(z₁ | x)'s log σ is affine in x and
/// p(x | z₁)'s affine in z₁, whose own spread is e^(log σ), so without it the tails are double-exponential (the
/// conformance suite's model drew a sample x whose encoder σ made z₁ so large that p(x | z₁)'s σ overflowed: log-density
/// −∞; docs/models/iwae.md, "Affine heads with the Gaussian likelihood"). The encoder's centre is 0 (the prior's scale),
/// the decoder's the log standard deviation of each training column (its initial output bias).
/// </summary>
internal sealed class LogSigmaBound
{
    /// <summary>L of the automatic bound: σ within e^±10 (a factor of 22,026) of the prior's scale for z₁ and of each
    /// column's standard deviation for x.</summary>
    public const float DefaultHalfWidth = 10f;

    /// <summary>Largest half-width a file may declare (beyond it the bound no longer keeps e^(c + L) finite in float).</summary>
    public const float MaxHalfWidth = 40f;

    public readonly float HalfWidth;
    /// <summary>c of p(x | z₁)'s log σ, one per column.</summary>
    public readonly float[] OutputCentre;

    /// <summary>A bound of half-width <paramref name="halfWidth"/> with the decoder's centres <paramref name="outputCentre"/>
    /// (checked, with the model's likelihood and width, by <see cref="Problem"/> where the network takes it).</summary>
    public LogSigmaBound(float halfWidth, float[] outputCentre)
    {
        HalfWidth = halfWidth; OutputCentre = (float[])outputCentre.Clone();
    }

    /// <summary>Why these values make no bound for a model of this likelihood and width, or null: the one check of the
    /// network's constructor (an argument error) and of a model file's payload (a corrupt file).</summary>
    public static string? Problem(IwaeLikelihood likelihood, int dimension, float halfWidth, ReadOnlySpan<float> centre)
    {
        if (likelihood != IwaeLikelihood.Gaussian) return "a log σ bound needs the Gaussian likelihood";
        if (!(halfWidth > 0f && halfWidth <= MaxHalfWidth)) return FormattableString.Invariant($"log σ bound {halfWidth} is outside (0, {MaxHalfWidth}]");
        if (centre.Length != dimension) return FormattableString.Invariant($"a log σ bound has {centre.Length} centres for {dimension} columns");
        foreach (var c in centre) if (!float.IsFinite(c)) return "a log σ bound centre is not finite";
        return null;
    }

    /// <summary>The centre of a column's log σ bound for p(x | z₁): log of its standard deviation, at least 1e-3 (the
    /// decoder's initial output bias, <see cref="IwaeNetwork.Initialize"/>).</summary>
    public static float CentreFor(float columnStd) => MathF.Log(MathF.Max(columnStd, 1e-3f));

    /// <summary>Bounds the log σ half of each of <paramref name="rows"/> head rows [μ (d) | log σ (d)] in place (centre
    /// 0 when <paramref name="centre"/> is empty).</summary>
    public void Apply(Span<float> heads, int rows, int d, ReadOnlySpan<float> centre)
    {
        float inv = 1f / HalfWidth;
        for (int r = 0; r < rows; r++)
        {
            var logSigma = heads.Slice(r * 2 * d + d, d);
            for (int c = 0; c < d; c++) logSigma[c] = (logSigma[c] - (centre.IsEmpty ? 0f : centre[c])) * inv;
            Activations.Tanh(logSigma, logSigma); // the same bits on every kernel path
            for (int c = 0; c < d; c++) logSigma[c] = (centre.IsEmpty ? 0f : centre[c]) + HalfWidth * logSigma[c];
        }
    }

    /// <summary>Multiplies the log σ half of each gradient row by ∂(bounded)/∂a = 1 − t², t = (bounded − c)/L read back
    /// from the bounded heads (so the network keeps only its outputs, as its layers do).</summary>
    public void MultiplyByDerivative(ReadOnlySpan<float> boundedHeads, Span<float> gradient, int rows, int d, ReadOnlySpan<float> centre)
    {
        float inv = 1f / HalfWidth;
        for (int r = 0; r < rows; r++)
        {
            int o = r * 2 * d + d;
            for (int c = 0; c < d; c++)
            {
                float t = (boundedHeads[o + c] - (centre.IsEmpty ? 0f : centre[c])) * inv;
                gradient[o + c] *= MathF.Max(0f, 1f - t * t);
            }
        }
    }
}
