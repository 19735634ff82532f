using System.Numerics.Tensors;
using Microsoft.ML.DeepDensity.Layers;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.Rnade;

/// <summary>
/// The deep RNADE network of Uria, Murray &amp; Larochelle (2014): an MLP from the masked input and the mask,
/// [x ⊙ m, m] (2D inputs), through L hidden layers to the mixture outputs of every dimension (D × 3K, laid out like
/// <see cref="RnadeNetwork"/>'s [z^α | z^μ | z^σ] per dimension). The mixture density and its gradient are
/// <see cref="RnadeNetwork.Mixture"/>'s, on the outputs of one dimension for a block of rows, stored transposed.
/// With <see cref="DeepRnadeConnectivity.Autoregressive"/> the input is x alone and the weights are masked per ordering
/// (DeepRnadeNetwork.Autoregressive.cs).
/// </summary>
internal sealed partial class DeepRnadeNetwork
{
    public readonly int D, H, HiddenLayers, K;
    public readonly Activation Activation;
    public readonly DeepRnadeConnectivity Connectivity;
    public readonly Mlp Net;
    /// <summary>Autoregressive connectivity only, optional: direct input → output weights (D × D·3K, masked like the
    /// output layer with strict degrees), a linear autoregressive term added to every mixture output.</summary>
    public readonly Parameter? Direct;
    public readonly ParameterSet Parameters = new();

    public DeepRnadeNetwork(int dimension, int hidden, int hiddenLayers, int components, Activation activation,
        DeepRnadeConnectivity connectivity = DeepRnadeConnectivity.MaskedInput, bool directConnections = false)
        : this(WithinFileSize(dimension, hidden, hiddenLayers, components, connectivity, directConnections), components, activation, connectivity,
               new Mlp("deep", Inputs(dimension, connectivity), Enumerable.Repeat(hidden, hiddenLayers).ToArray(), dimension * 3 * components, activation).Layers,
               directConnections ? new float[checked(dimension * dimension * 3 * components)] : null) { }

    /// <summary>Returns <paramref name="dimension"/> once the network of these sizes is known to fit a model file
    /// (<see cref="Persistence.ModelSizePrediction.EnsureFitsAFile"/>); called in the constructor's arguments, because the
    /// layers built there would overflow first.</summary>
    private static int WithinFileSize(int dimension, int hidden, int hiddenLayers, int components, DeepRnadeConnectivity connectivity, bool directConnections)
    {
        PredictSize(dimension, hidden, hiddenLayers, components, connectivity, directConnections).EnsureFitsAFile();
        return dimension;
    }

    /// <summary>Parameters of a deep RNADE of these sizes, exactly as its layers hold them: inputs (2D masked input, D
    /// autoregressive) → H, HiddenLayers − 1 of H → H, H → D·3K, each with its biases, and the optional D × D·3K direct
    /// weights (checked 64-bit arithmetic; <see cref="long.MaxValue"/> when it overflows).</summary>
    internal static long ParameterCount(int dimension, int hidden, int hiddenLayers, int components, DeepRnadeConnectivity connectivity, bool directConnections)
        => Persistence.ModelSizePrediction.Saturating(() =>
        {
            long d = dimension, h = hidden, outputs = checked(3L * dimension * components);
            long inputs = connectivity == DeepRnadeConnectivity.Autoregressive ? d : 2 * d;
            return checked((inputs + 1) * h + (hiddenLayers - 1L) * (h + 1) * h + (h + 1) * outputs + (directConnections ? d * outputs : 0));
        });

    /// <summary>The size of a deep RNADE of these sizes (<see cref="DeepRnadeOptions.PredictModelSize"/>, checked again before allocating).</summary>
    internal static Persistence.ModelSizePrediction PredictSize(int dimension, int hidden, int hiddenLayers, int components,
        DeepRnadeConnectivity connectivity, bool directConnections)
        => new("deep RNADE", dimension, ParameterCount(dimension, hidden, hiddenLayers, components, connectivity, directConnections),
            FormattableString.Invariant($"a deep RNADE of {hiddenLayers}×{hidden} hidden units and {components} components (HiddenLayers, HiddenUnits, Components: H×D·3K output weights") +
            (directConnections ? "; DirectConnections: D×D·3K direct weights)" : ")"),
            "use fewer columns (e.g. a PCA projection), fewer HiddenUnits or fewer Components" + (directConnections ? ", or DirectConnections = false" : ""),
            RnadeOptions.MaxDimension);

    /// <summary>Wraps existing layers (a loaded model): 2D (masked input) or D (autoregressive) → H → … → H → D·3K.</summary>
    public DeepRnadeNetwork(int dimension, int components, Activation activation, DeepRnadeConnectivity connectivity, IReadOnlyList<DenseLayer> layers,
        float[]? direct = null)
    {
        D = dimension; K = components; Activation = activation; Connectivity = connectivity;
        Net = new Mlp("deep", layers);
        if (Net.Inputs != Inputs(D, connectivity) || Net.Outputs != D * K3 || layers.Count < 2)
            throw new ArgumentException(FormattableString.Invariant($"A deep RNADE ({connectivity}) needs {Inputs(D, connectivity)} inputs, at least one hidden layer and D·3K outputs."), nameof(layers));
        H = layers[0].Outputs; HiddenLayers = layers.Count - 1;
        Net.Register(Parameters);
        if (direct is not null)
        {
            if (connectivity != DeepRnadeConnectivity.Autoregressive || direct.Length != D * D * K3)
                throw new ArgumentException("Direct connections need the autoregressive connectivity and D × D·3K weights.", nameof(direct));
            Direct = new Parameter("deep.direct", direct);
            Parameters.Add(Direct);
        }
    }

    public int K3 => 3 * K;

    /// <summary>Network inputs: [x ⊙ m, m] (2D) for the masked input, x (D) for the autoregressive masks.</summary>
    public static int Inputs(int dimension, DeepRnadeConnectivity connectivity)
        => connectivity == DeepRnadeConnectivity.Autoregressive ? dimension : 2 * dimension;
    private DenseLayer Output => Net.Layers[^1];

    /// <summary>Use the scalar mixture code even when AVX2/FMA are available (tests of the portable path).</summary>
    internal bool PortableMixture { get; set; }

    /// <summary>Glorot weights; the output layer starts like <see cref="RnadeNetwork.Initialize"/>: small weights, mixture
    /// means at the columns' quantiles (D×K, standardised data), σ = 1/√K, equal weights.</summary>
    public void Initialize(RandomStream random, float[] meanQuantiles)
    {
        Net.InitializeGlorot(random);
        TensorPrimitives.Multiply(Output.Weight.Value, 0.1f, Output.Weight.Value);
        RnadeNetwork.InitializeMixtureBiases(Output.Bias.Value, D, K, meanQuantiles);
    }

    /// <summary>Scratch for one block of up to <see cref="Rows"/> rows (training or scoring). Not shared between threads.</summary>
    public sealed class Workspace
    {
        public readonly int Rows, Stride;
        public readonly Mlp.Workspace Mlp;
        /// <summary>Autoregressive connectivity: the masked weights and their gradient (null otherwise).</summary>
        public readonly MaskedView? View;
        public readonly GradientBuffers? ViewGradients;
        public readonly float[] Input, OutputGradient, Weight, ZT, DZT, XColumn, LogP, Mixture, Z, Pre;
        public readonly float[][] Hidden;
        public readonly int[] Permutation;
        public readonly GradientBuffers? Gradients;
        /// <summary>An ensemble's per-ordering log-densities (orderings × rows, then one column), grown on first use.</summary>
        public float[] Ensemble = Array.Empty<float>();
        /// <summary>One-row scoring of the autoregressive network (a one-row scoring workspace): the row's outputs
        /// transposed with its dimensions as the mixture's rows (<see cref="OneRowStride"/> = D rounded up to 8), its
        /// values and its D conditionals' log-densities. Empty otherwise.</summary>
        public readonly float[] OneRowZT = [], OneRowX = [], OneRowLogP = [];
        public readonly int OneRowStride;

        /// <param name="frozenWeights">The network's weights do not change while this workspace lives (a fitted model's
        /// scoring and sampling scratch): an autoregressive view then keeps the ordering it last masked.</param>
        public Workspace(DeepRnadeNetwork net, int rows, bool forTraining, bool frozenWeights = false)
        {
            Rows = rows; Stride = (rows + 7) / 8 * 8;
            int d = net.D, k3 = net.K3;
            ZT = new float[k3 * Stride]; DZT = new float[k3 * Stride];
            XColumn = new float[Stride]; LogP = new float[Stride];
            Mixture = new float[24 * net.K];
            Permutation = new int[d];
            if (net.Connectivity == DeepRnadeConnectivity.Autoregressive)
            {
                if (rows == 1 && !forTraining)
                {
                    OneRowStride = (d + 7) / 8 * 8;
                    OneRowZT = new float[k3 * OneRowStride];
                    OneRowX = new float[OneRowStride];
                    OneRowLogP = new float[OneRowStride];
                }
                View = new MaskedView(net, frozenWeights && !forTraining);
                Mlp = View.Net.CreateWorkspace(rows);
                Input = Weight = Pre = Z = Array.Empty<float>();
                Hidden = Array.Empty<float[]>();
                OutputGradient = forTraining ? new float[rows * d * k3] : Array.Empty<float>();
                if (forTraining) { Gradients = GradientBuffers.Create(net.Parameters); ViewGradients = GradientBuffers.Create(View.Parameters); }
            }
            else if (forTraining)
            {
                Input = new float[rows * 2 * d];
                Pre = Array.Empty<float>();
                Mlp = net.Net.CreateWorkspace(rows);
                OutputGradient = new float[rows * d * k3];
                Weight = new float[rows * d];
                Gradients = GradientBuffers.Create(net.Parameters);
                Hidden = Array.Empty<float[]>(); Z = Array.Empty<float>();
            }
            else
            {
                Mlp = null!; Input = OutputGradient = Weight = Array.Empty<float>();
                Pre = new float[rows * net.H];
                Hidden = Enumerable.Range(0, net.HiddenLayers).Select(_ => new float[rows * net.H]).ToArray();
                Z = new float[rows * k3];
            }
        }
    }

    /// <summary>
    /// One training block. Autoregressive: one of <paramref name="orderings"/> per block, all its conditionals
    /// (DeepRnadeNetwork.Autoregressive.cs). Masked input: per row, draws the observed set (d uniform in 0…D−1; the first d of a random permutation when
    /// <paramref name="fixedOrder"/> is null, else of the fixed order) and returns the sum over rows of the unbiased
    /// log-likelihood estimate (see <see cref="DeepRnadeOptions"/>). Leaves <paramref name="gradScale"/> × its gradient in
    /// the workspace's <see cref="Workspace.Gradients"/> (overwritten).
    /// </summary>
    public double TrainBlock(ReadOnlySpan<float> x, int n, Workspace ws, RandomStream random, int[]? fixedOrder, int[][] orderings, float gradScale, bool scaleMeanBySigma)
    {
        if (Connectivity == DeepRnadeConnectivity.Autoregressive)
            return TrainBlockAutoregressive(x, n, ws, random, fixedOrder, orderings, gradScale, scaleMeanBySigma);
        int d = D, k3 = K3, s = ws.Stride, width = d * k3;
        var input = ws.Input.AsSpan(0, n * 2 * d);
        input.Clear();
        var weight = ws.Weight.AsSpan(0, n * d);
        weight.Clear();
        var perm = ws.Permutation;
        for (int r = 0; r < n; r++)
        {
            int observed = random.NextInt(d);
            if (fixedOrder is null)
            {
                for (int i = 0; i < d; i++) perm[i] = i;
                random.Shuffle(perm.AsSpan());
                float w = (float)d / (d - observed);
                for (int p = observed; p < d; p++) weight[r * d + perm[p]] = w;
            }
            else
            {
                fixedOrder.CopyTo(perm, 0);
                weight[r * d + perm[observed]] = d;
            }
            for (int p = 0; p < observed; p++)
            {
                int i = perm[p];
                input[r * 2 * d + i] = x[r * d + i];
                input[r * 2 * d + d + i] = 1f;
            }
        }
        var output = Net.Forward(input, n, ws.Mlp);
        var og = ws.OutputGradient.AsSpan(0, n * width);
        var zt = ws.ZT.AsSpan(); var dzt = ws.DZT.AsSpan(); var lp = ws.LogP.AsSpan(); var xcol = ws.XColumn.AsSpan();
        double total = 0;
        for (int i = 0; i < d; i++)
        {
            Transpose(output, n, width, i * k3, k3, zt, s);
            for (int r = 0; r < n; r++) xcol[r] = x[r * d + i];
            lp.Clear();
            RnadeNetwork.Mixture(K, PortableMixture, xcol, zt, s, withGradient: true, dzt, 1f, scaleMeanBySigma, lp, ws.Mixture);
            for (int r = 0; r < n; r++)
            {
                float w = weight[r * d + i];
                total += w * lp[r];
                float g = gradScale * w;
                var dst = og.Slice(r * width + i * k3, k3);
                for (int j = 0; j < k3; j++) dst[j] = g * dzt[j * s + r];
            }
        }
        Net.Backward(input, n, ws.Mlp, og, ws.Gradients!, Span<float>.Empty, accumulateParameters: false);
        return total;
    }

    /// <summary>
    /// Exact log p(x | o) of <paramref name="n"/> rows for the ordering <paramref name="order"/> into
    /// <paramref name="logp"/>: D passes, each computing only the next dimension's mixture. The first layer's
    /// pre-activation is updated incrementally (observing x_i adds x_i·W[i] + W[D+i]).
    /// </summary>
    public void LogDensity(ReadOnlySpan<float> x, int n, int[] order, Workspace ws, Span<float> logp)
    {
        if (Connectivity == DeepRnadeConnectivity.Autoregressive) { LogDensityAutoregressive(x, n, order, ws, logp); return; }
        int d = D, h = H, k3 = K3, s = ws.Stride, width = d * k3;
        var first = Net.Layers[0];
        var pre = ws.Pre.AsSpan(0, n * h);
        for (int r = 0; r < n; r++) first.Bias.Value.CopyTo(pre.Slice(r * h, h));
        var lp = ws.LogP.AsSpan();
        lp.Clear();
        var z = ws.Z.AsSpan(0, n * k3);
        var wOut = Output.Weight.Value; var bOut = Output.Bias.Value;
        var w1 = first.Weight.Value.AsSpan();
        foreach (int i in order)
        {
            var hidden = Hidden(n, ws, pre);
            for (int r = 0; r < n; r++) bOut.AsSpan(i * k3, k3).CopyTo(z.Slice(r * k3, k3));
            Gemm.Multiply(false, false, n, k3, h, 1f, hidden, h, wOut.AsSpan(i * k3), width, 1f, z, k3, allowParallel: false);
            Transpose(z, n, k3, 0, k3, ws.ZT, s);
            for (int r = 0; r < n; r++) ws.XColumn[r] = x[r * d + i];
            RnadeNetwork.Mixture(K, PortableMixture, ws.XColumn, ws.ZT, s, withGradient: false, default, 0f, false, lp, ws.Mixture);
            for (int r = 0; r < n; r++)
            {
                var pr = pre.Slice(r * h, h);
                TensorPrimitives.MultiplyAdd(w1.Slice(i * h, h), x[r * d + i], pr, pr);
                TensorPrimitives.Add(pr, w1.Slice((d + i) * h, h), pr);
            }
        }
        lp[..n].CopyTo(logp);
    }

    /// <summary>log of the mean density over <paramref name="orderings"/> (exact: each ordering's density is normalised),
    /// log (1/E) Σ_e p(x | o_e), computed by log-sum-exp.</summary>
    public void EnsembleLogDensity(ReadOnlySpan<float> x, int n, IReadOnlyList<int[]> orderings, Workspace ws, Span<float> logp)
    {
        int e = orderings.Count;
        if (e == 1) { LogDensity(x, n, orderings[0], ws, logp); return; }
        if (ws.Ensemble.Length < e * (n + 1)) ws.Ensemble = new float[e * (n + 1)];
        var each = ws.Ensemble.AsSpan(0, e * n);
        for (int i = 0; i < e; i++) LogDensity(x, n, orderings[i], ws, each.Slice(i * n, n));
        var column = ws.Ensemble.AsSpan(e * n, e);
        float logE = MathF.Log(e);
        for (int r = 0; r < n; r++)
        {
            for (int i = 0; i < e; i++) column[i] = each[i * n + r];
            logp[r] = RowOps.LogSumExp(column) - logE;
        }
    }

    /// <summary>Ancestral sampling of one row along <paramref name="order"/> (model space) into <paramref name="x"/>.</summary>
    public void SampleRow(int[] order, Workspace ws, RandomStream random, Span<float> x)
    {
        if (Connectivity == DeepRnadeConnectivity.Autoregressive) { SampleRowAutoregressive(order, ws, random, x); return; }
        int d = D, h = H, k3 = K3, width = d * k3;
        var first = Net.Layers[0];
        var pre = ws.Pre.AsSpan(0, h);
        first.Bias.Value.CopyTo(pre);
        var z = ws.Z.AsSpan(0, k3);
        var w1 = first.Weight.Value.AsSpan();
        foreach (int i in order)
        {
            var hidden = Hidden(1, ws, pre);
            Output.Bias.Value.AsSpan(i * k3, k3).CopyTo(z);
            Gemm.Multiply(false, false, 1, k3, h, 1f, hidden, h, Output.Weight.Value.AsSpan(i * k3), width, 1f, z, k3, allowParallel: false);
            float v = SampleMixture(z, random);
            x[i] = v;
            TensorPrimitives.MultiplyAdd(w1.Slice(i * h, h), v, pre, pre);
            TensorPrimitives.Add(pre, w1.Slice((d + i) * h, h), pre);
        }
    }

    /// <summary>The last hidden layer's output (n × H) from the first layer's pre-activation.</summary>
    private ReadOnlySpan<float> Hidden(int n, Workspace ws, ReadOnlySpan<float> pre)
    {
        var hidden = ws.Hidden[0].AsSpan(0, n * H);
        Activations.Forward(Activation, pre, hidden);
        for (int l = 1; l < HiddenLayers; l++)
        {
            Net.Layers[l].Forward(ws.Hidden[l - 1], n, ws.Hidden[l]);
            hidden = ws.Hidden[l].AsSpan(0, n * H);
        }
        return hidden;
    }

    /// <summary>dst[j·s + r] = src[r·width + offset + j] for r &lt; n, j &lt; count (one dimension's outputs, transposed).</summary>
    private static void Transpose(ReadOnlySpan<float> src, int n, int width, int offset, int count, Span<float> dst, int s)
    {
        for (int r = 0; r < n; r++)
        {
            var row = src.Slice(r * width + offset, count);
            for (int j = 0; j < count; j++) dst[j * s + r] = row[j];
        }
    }
}
