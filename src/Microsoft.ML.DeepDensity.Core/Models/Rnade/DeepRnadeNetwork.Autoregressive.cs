using System.Numerics;
using Microsoft.ML.DeepDensity.Layers;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.Rnade;

/// <summary>
/// The <see cref="DeepRnadeConnectivity.Autoregressive"/> network: the MLP x → H → … → H → D·3K of MADE (Germain et al.
/// 2015) with RNADE's mixture outputs. For an ordering o (dimension o_p at position p), input i has degree pos(i)+1,
/// hidden unit k of every layer has degree 1 + k mod (D−1) (every degree equally often), a unit sees the units of the
/// layer below whose degree is at most its own, and the outputs of dimension i see the last layer's units of degree
/// ≤ pos(i). So the outputs of the dimension at position p depend only on the dimensions before it: one pass gives
/// all D conditionals of p(x | o), and the density of an ordering is one pass. The weights are shared by all
/// orderings; a pass multiplies them by the ordering's mask (<see cref="MaskedView"/>), and the gradient of the
/// masked weights, masked again, is the gradient of the shared ones. Optional direct input → output weights
/// (<see cref="Direct"/>, MADE's direct connections) are masked like the output layer: dimension i sees x_j iff
/// pos(j) &lt; pos(i).
/// </summary>
internal sealed partial class DeepRnadeNetwork
{
    /// <summary>Degree of hidden unit <paramref name="k"/> (the same in every hidden layer and ordering): 1 … D−1.</summary>
    private int HiddenDegree(int k) => D > 1 ? 1 + k % (D - 1) : 1;

    /// <summary>A copy of the network's weights masked for one ordering (biases shared), with its own parameters so
    /// that the engine's <see cref="Mlp"/> runs it forward and backward. One per workspace (not shared between threads).</summary>
    internal sealed class MaskedView
    {
        public readonly Mlp Net;
        public readonly ParameterSet Parameters = new();
        /// <summary>Degrees[0]: the D inputs; Degrees[l], 1 ≤ l ≤ L: hidden layer l; Degrees[L+1]: the D·3K outputs
        /// (position of their dimension). Weight (i → j) of layer l is kept iff Degrees[l+1][j] ≥ Degrees[l][i].</summary>
        public readonly int[][] Degrees;
        /// <summary>Masked direct weights (null without direct connections).</summary>
        public readonly Parameter? Direct;
        private readonly DeepRnadeNetwork _network;
        /// <summary>The weights never change while this view lives (a fitted model's scoring scratch): then re-applying
        /// the ordering it already holds is skipped. Training and validation views re-mask on every pass.</summary>
        private readonly bool _frozenWeights;
        private int[]? _applied;

        public MaskedView(DeepRnadeNetwork network, bool frozenWeights = false)
        {
            _network = network; _frozenWeights = frozenWeights;
            var layers = network.Net.Layers;
            Net = new Mlp("masked", layers.Select(l => new DenseLayer(l.Name, l.Inputs, l.Outputs, l.Activation, new float[l.Weight.Value.Length], l.Bias.Value)).ToArray());
            Net.Register(Parameters);
            if (network.Direct is not null) { Direct = new Parameter("masked.direct", new float[network.Direct.Value.Length]); Parameters.Add(Direct); }
            Degrees = new int[layers.Count + 1][];
            Degrees[0] = new int[network.D];
            for (int l = 1; l < layers.Count; l++) Degrees[l] = Enumerable.Range(0, layers[l].Inputs).Select(network.HiddenDegree).ToArray();
            Degrees[^1] = new int[network.D * network.K3];
        }

        /// <summary>Sets the degrees of <paramref name="order"/> and masks the network's current weights into the view.</summary>
        public void Apply(int[] order)
        {
            if (_frozenWeights && ReferenceEquals(order, _applied)) return;
            _applied = order;
            int k3 = _network.K3;
            for (int p = 0; p < order.Length; p++)
            {
                Degrees[0][order[p]] = p + 1;
                Degrees[^1].AsSpan(order[p] * k3, k3).Fill(p);
            }
            var layers = _network.Net.Layers;
            for (int l = 0; l < layers.Count; l++) Mask(layers[l].Weight.Value, Net.Layers[l].Weight.Value, Degrees[l], Degrees[l + 1]);
            if (Direct is not null) Mask(_network.Direct!.Value, Direct.Value, Degrees[0], Degrees[^1]);
        }

        /// <summary>The network's outputs (rows × D·3K) for <paramref name="x"/>: the masked MLP plus the direct term.</summary>
        public Span<float> Forward(ReadOnlySpan<float> x, int n, Mlp.Workspace ws)
        {
            var output = Net.Forward(x, n, ws);
            int d = _network.D, width = Net.Outputs;
            if (Direct is not null) Gemm.Multiply(false, false, n, width, d, 1f, x, d, Direct.Value, width, 1f, output, width, allowParallel: false);
            return output;
        }

        /// <summary>Backward pass after <see cref="Forward"/>: ∂L/∂outputs <paramref name="outputGradient"/> (consumed)
        /// to the view's gradients.</summary>
        public void Backward(ReadOnlySpan<float> x, int n, Mlp.Workspace ws, Span<float> outputGradient, GradientBuffers gradients)
        {
            int d = _network.D, width = Net.Outputs;
            if (Direct is not null) Gemm.Multiply(true, false, d, width, n, 1f, x, d, outputGradient, width, 0f, gradients[Direct], width, allowParallel: false);
            Net.Backward(x, n, ws, outputGradient, gradients, Span<float>.Empty, accumulateParameters: false);
        }

        /// <summary>The shared parameters' gradient from the view's: masked weights' gradient masked again; biases as they are.</summary>
        public void MaskGradients(GradientBuffers view, GradientBuffers shared)
        {
            var layers = _network.Net.Layers;
            for (int l = 0; l < layers.Count; l++)
            {
                Mask(view[Net.Layers[l].Weight], shared[layers[l].Weight], Degrees[l], Degrees[l + 1]);
                view[Net.Layers[l].Bias].CopyTo(shared[layers[l].Bias], 0);
            }
            if (Direct is not null) Mask(view[Direct], shared[_network.Direct!], Degrees[0], Degrees[^1]);
        }

        /// <summary>dst[i, j] = src[i, j] where outDegree[j] ≥ inDegree[i], else 0 (row-major inputs × outputs).</summary>
        private static void Mask(ReadOnlySpan<float> src, Span<float> dst, int[] inDegree, int[] outDegree)
        {
            int o = outDegree.Length, width = Vector<int>.Count;
            for (int i = 0; i < inDegree.Length; i++)
            {
                var s = src.Slice(i * o, o);
                var t = dst.Slice(i * o, o);
                var threshold = new Vector<int>(inDegree[i]);
                int j = 0;
                for (; j <= o - width; j += width)
                {
                    var keep = Vector.GreaterThanOrEqual(new Vector<int>(outDegree, j), threshold);
                    Vector.ConditionalSelect(keep.As<int, float>(), new Vector<float>(s.Slice(j)), Vector<float>.Zero).CopyTo(t.Slice(j));
                }
                for (; j < o; j++) t[j] = outDegree[j] >= inDegree[i] ? s[j] : 0f;
            }
        }
    }

    /// <summary>One training block: <paramref name="fixedOrder"/>, or one ordering of <paramref name="orderings"/> drawn for the block, all D conditionals
    /// of every row trained (the log-likelihood of that ordering). Returns the block's summed log-likelihood; leaves
    /// <paramref name="gradScale"/> × its gradient in the workspace's <see cref="Workspace.Gradients"/> (overwritten).</summary>
    private double TrainBlockAutoregressive(ReadOnlySpan<float> x, int n, Workspace ws, RandomStream random, int[]? fixedOrder, int[][] orderings,
        float gradScale, bool scaleMeanBySigma)
    {
        int d = D, k3 = K3, s = ws.Stride, width = d * k3;
        var view = ws.View!;
        view.Apply(fixedOrder ?? orderings[orderings.Length == 1 ? 0 : random.NextInt(orderings.Length)]);
        var output = view.Forward(x, n, ws.Mlp);
        var og = ws.OutputGradient.AsSpan(0, n * width);
        var zt = ws.ZT.AsSpan(); var dzt = ws.DZT.AsSpan(); var lp = ws.LogP.AsSpan(); var xcol = ws.XColumn.AsSpan();
        lp.Clear();
        for (int i = 0; i < d; i++)
        {
            Transpose(output, n, width, i * k3, k3, zt, s);
            for (int r = 0; r < n; r++) xcol[r] = x[r * d + i];
            RnadeNetwork.Mixture(K, PortableMixture, xcol, zt, s, withGradient: true, dzt, gradScale, scaleMeanBySigma, lp, ws.Mixture);
            for (int r = 0; r < n; r++)
            {
                var dst = og.Slice(r * width + i * k3, k3);
                for (int j = 0; j < k3; j++) dst[j] = dzt[j * s + r];
            }
        }
        view.Backward(x, n, ws.Mlp, og, ws.ViewGradients!);
        view.MaskGradients(ws.ViewGradients!, ws.Gradients!);
        double total = 0;
        for (int r = 0; r < n; r++) total += lp[r];
        return total;
    }

    /// <summary>Exact log p(x | o) of <paramref name="n"/> rows in one masked pass.</summary>
    private void LogDensityAutoregressive(ReadOnlySpan<float> x, int n, int[] order, Workspace ws, Span<float> logp)
    {
        int d = D, k3 = K3, s = ws.Stride, width = d * k3;
        ws.View!.Apply(order);
        var output = ws.View.Forward(x, n, ws.Mlp);
        if (n == 1 && ws.OneRowStride > 0) { logp[0] = OneRowLogDensity(x, output, ws); return; }
        var lp = ws.LogP.AsSpan();
        lp.Clear();
        for (int i = 0; i < d; i++)
        {
            Transpose(output, n, width, i * k3, k3, ws.ZT, s);
            for (int r = 0; r < n; r++) ws.XColumn[r] = x[r * d + i];
            RnadeNetwork.Mixture(K, PortableMixture, ws.XColumn, ws.ZT, s, withGradient: false, default, 0f, false, lp, ws.Mixture);
        }
        lp[..n].CopyTo(logp);
    }

    /// <summary>
    /// One row's D conditionals as the rows of one mixture call: the row's D·3K outputs transposed into 3K rows of D
    /// (stride D rounded up to 8), so that the mixture's eight lanes hold eight dimensions instead of one row and seven
    /// idle lanes (a PredictionEngine's row paid D calls of which 7/8 was padding). Each lane computes what it computes
    /// for that dimension in its own call, and the conditionals are added in dimension order from 0, as the per-dimension
    /// calls add them: the same bits as the row in a block.
    /// </summary>
    private float OneRowLogDensity(ReadOnlySpan<float> x, ReadOnlySpan<float> output, Workspace ws)
    {
        int d = D, k3 = K3, sd = ws.OneRowStride;
        var zt = ws.OneRowZT.AsSpan(0, k3 * sd);
        for (int i = 0; i < d; i++)
        {
            var z = output.Slice(i * k3, k3);
            for (int j = 0; j < k3; j++) zt[j * sd + i] = z[j];
        }
        var xs = ws.OneRowX.AsSpan(0, sd);
        x[..d].CopyTo(xs);
        var lp = ws.OneRowLogP.AsSpan(0, sd);
        lp.Clear();
        RnadeNetwork.Mixture(K, PortableMixture, xs, zt, sd, withGradient: false, default, 0f, false, lp, ws.Mixture);
        float total = 0f;
        for (int i = 0; i < d; i++) total += lp[i];
        return total;
    }

    /// <summary>Ancestral sampling along <paramref name="order"/>: D masked passes of the row sampled so far (the
    /// unsampled dimensions are 0 and, by the masks, do not reach the outputs read).</summary>
    private void SampleRowAutoregressive(int[] order, Workspace ws, RandomStream random, Span<float> x)
    {
        int k3 = K3;
        ws.View!.Apply(order);
        x.Clear();
        foreach (int i in order)
        {
            var z = ws.View.Forward(x, 1, ws.Mlp).Slice(i * k3, k3);
            x[i] = SampleMixture(z, random);
        }
    }

    /// <summary>One draw from the mixture of outputs <paramref name="z"/> = [z^α | z^μ | z^σ] (standardised units).</summary>
    private float SampleMixture(ReadOnlySpan<float> z, RandomStream random)
    {
        Span<float> alpha = stackalloc float[K];
        z[..K].CopyTo(alpha);
        RowOps.SoftmaxRows(alpha, 1, K);
        int c = random.NextCategorical(alpha);
        // Saturated as in RnadeNetwork.Sample (σ ≤ e^80, |x| ≤ 1e6 standardised units), so that any file the loader
        // accepts samples finite values; a NaN mean (overflowing products of a forged file) draws 0.
        float v = z[K + c] + MathF.Exp(MathF.Min(z[2 * K + c], 80f)) * (float)random.NextGaussian();
        return float.IsNaN(v) ? 0f : Math.Clamp(v, -RnadeNetwork.MaxStandardizedSample, RnadeNetwork.MaxStandardizedSample);
    }
}
