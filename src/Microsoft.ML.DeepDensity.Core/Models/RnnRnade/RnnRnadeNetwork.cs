using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Models.RnnRnade;

/// <summary>
/// RNN-RNADE parameters (model space: standardised frames) and back-propagation through time over a block of
/// sequences. The recurrent state ĥ_t = σ(W_in x_t + W_rec ĥ_{t−1} + b_rec), ĥ_{−1} = h₀ (learned), conditions frame t's
/// RNADE through per-frame output-bias offsets r_t = W_outᵀ ĥ_{t−1} (r^α, r^μ, r^σ of every dimension) and, optionally,
/// a hidden-bias offset W_hidᵀ ĥ_{t−1}; the RNADE itself is <see cref="RnadeNetwork"/>.
/// </summary>
/// <remarks>
/// <para>Layout (row-major): W_in D×R, W_rec R×R, b_rec R, h₀ R, W_out R×(D·3K) (column d·3K + i matches RNADE's
/// output i of dimension d), W_hid R×H (empty when the hidden bias is not conditioned); R = recurrent units.</para>
/// <para>The recurrence does not depend on the RNADE's outputs, so a block first runs the recurrence over the steps
/// (one GEMM per step over the sequences still active), then feeds all its frames — every step at once — through the
/// RNADE in chunks, and back-propagates the recurrence afterwards. Sequences are packed step-major after a stable sort
/// by decreasing length, so the sequences active at step t are a prefix and no padding or mask is needed.</para>
/// </remarks>
internal sealed class RnnRnadeNetwork
{
    public readonly RnadeNetwork Rnade;
    public readonly int D, R;
    public readonly float[] WIn, WRec, BRec, H0, WOut, WHid;

    public RnnRnadeNetwork(RnadeNetwork rnade, int recurrent, bool conditionHiddenBias)
        : this(rnade, WithinFileSize(rnade, recurrent, conditionHiddenBias), new float[rnade.D * recurrent], new float[recurrent * recurrent], new float[recurrent],
            new float[recurrent], new float[recurrent * rnade.D * rnade.K3], conditionHiddenBias ? new float[recurrent * rnade.H] : Array.Empty<float>())
    { }

    public RnnRnadeNetwork(RnadeNetwork rnade, int recurrent, float[] wIn, float[] wRec, float[] bRec, float[] h0, float[] wOut, float[] wHid)
    {
        Rnade = rnade; D = rnade.D; R = recurrent;
        WIn = wIn; WRec = wRec; BRec = bRec; H0 = h0; WOut = wOut; WHid = wHid;
    }

    /// <summary>Returns <paramref name="recurrent"/> once the whole network (the RNADE and the recurrence) is known to
    /// fit a model file; called in the constructor's arguments, before the recurrent weights are allocated.</summary>
    private static int WithinFileSize(RnadeNetwork rnade, int recurrent, bool conditionHiddenBias)
    {
        PredictSize(rnade.D, rnade.H, rnade.K, recurrent, conditionHiddenBias).EnsureFitsAFile();
        return recurrent;
    }

    /// <summary>Parameters of an RNN-RNADE of these sizes, exactly as laid out above: the RNADE's
    /// (<see cref="RnadeNetwork.ParameterCount"/>), then W_in D×R, W_rec R×R, b_rec R, h₀ R, W_out R×D·3K and W_hid R×H
    /// when the hidden bias is conditioned (checked 64-bit arithmetic; <see cref="long.MaxValue"/> when it overflows).</summary>
    internal static long ParameterCount(int dimension, int hidden, int components, int recurrent, bool conditionHiddenBias)
        => Persistence.ModelSizePrediction.Saturating(() =>
        {
            long d = dimension, h = hidden, r = recurrent, k3 = 3L * components;
            long rnade = RnadeNetwork.ParameterCount(dimension, hidden, components);
            return checked(rnade + d * r + r * r + 2 * r + r * d * k3 + (conditionHiddenBias ? r * h : 0));
        });

    /// <summary>The size of an RNN-RNADE of these sizes (<see cref="RnnRnadeOptions.PredictModelSize"/>, checked again before allocating).</summary>
    internal static Persistence.ModelSizePrediction PredictSize(int dimension, int hidden, int components, int recurrent, bool conditionHiddenBias)
        => new("RNN-RNADE", dimension, ParameterCount(dimension, hidden, components, recurrent, conditionHiddenBias),
            FormattableString.Invariant($"an RNN-RNADE of {hidden} hidden units, {components} components and {recurrent} recurrent units ") +
            "(HiddenUnits, Components, RecurrentUnits: D×H·3K output weights and R×D·3K conditioning weights)",
            "use fewer columns per frame (e.g. a PCA projection), fewer HiddenUnits, Components or RecurrentUnits", RnadeOptions.MaxDimension);

    public bool ConditionsHiddenBias => WHid.Length > 0;
    public int OutputWidth => D * Rnade.K3;

    /// <summary>Small random recurrent weights; the conditioning weights start at zero so training starts from an i.i.d. RNADE.</summary>
    public void InitializeRecurrence(RandomStream random)
    {
        random.FillGaussian(WIn, 0f, 1f / MathF.Sqrt(D));
        random.FillGaussian(WRec, 0f, 1f / MathF.Sqrt(R));
        Array.Clear(BRec); Array.Clear(H0); Array.Clear(WOut); Array.Clear(WHid);
    }

    /// <summary>
    /// Scratch and gradients of one block of sequences (one thread). Arrays grow with the block's frame count and
    /// are reused; the RNADE runs over the packed frames in chunks of <see cref="RnadeNetwork.Workspace.Rows"/>.
    /// </summary>
    public sealed class Block
    {
        public readonly RnnRnadeNetwork Net;
        public readonly RnadeNetwork.Workspace Rnade;
        public readonly bool ForTraining;
        public readonly float[] OutBias, HidBias;
        public readonly float[]? GWIn, GWRec, GBRec, GH0, GWOut, GWHid;
        public float[] X = Array.Empty<float>(), Ctx = Array.Empty<float>(), DCtx = Array.Empty<float>(), LogP = Array.Empty<float>();
        /// <summary>Packed row → frame index in the caller's batch.</summary>
        public int[] RowFrame = Array.Empty<int>();
        public int[] StepStart = Array.Empty<int>(), StepCount = Array.Empty<int>();
        public int Frames, Steps;
        private int[] _rank = Array.Empty<int>(), _lengths = Array.Empty<int>();

        public Block(RnnRnadeNetwork net, int rnadeRows, bool forTraining)
        {
            Net = net; ForTraining = forTraining;
            Rnade = new RnadeNetwork.Workspace(net.Rnade, rnadeRows, forTraining);
            OutBias = new float[net.OutputWidth * Rnade.Stride];
            HidBias = new float[net.WHid.Length > 0 ? net.Rnade.H * Rnade.Stride : 0];
            if (forTraining)
            {
                GWIn = new float[net.WIn.Length]; GWRec = new float[net.WRec.Length]; GBRec = new float[net.R];
                GH0 = new float[net.R]; GWOut = new float[net.WOut.Length]; GWHid = new float[net.WHid.Length];
            }
        }

        public IEnumerable<float[]> Gradients()
        {
            var ws = Rnade;
            return new[] { ws.GW!, ws.GC!, ws.GRho!, ws.GV!, ws.GB!, GWIn!, GWRec!, GBRec!, GH0!, GWOut!, GWHid! };
        }

        /// <summary>
        /// Packs sequences <paramref name="sequences"/> (indices into <paramref name="offsets"/>, frames of
        /// <paramref name="values"/>) step-major after a stable sort by decreasing length.
        /// </summary>
        public void Pack(ReadOnlySpan<float> values, ReadOnlySpan<int> offsets, ReadOnlySpan<int> sequences)
        {
            int n = sequences.Length, d = Net.D;
            if (_rank.Length < n) _rank = new int[n];
            var rank = _rank.AsSpan(0, n);
            sequences.CopyTo(rank);
            if (_lengths.Length < n) _lengths = new int[n];
            var lengths = _lengths.AsSpan(0, n);
            for (int i = 0; i < n; i++) lengths[i] = -(offsets[rank[i] + 1] - offsets[rank[i]]);
            lengths.Sort(rank);                   // introsort is unstable: restore index order within equal lengths
            for (int i = 0; i < n;)
            {
                int j = i;
                while (j < n && lengths[j] == lengths[i]) j++;
                rank[i..j].Sort();
                i = j;
            }
            Steps = n == 0 ? 0 : -lengths[0];
            Frames = 0;
            foreach (var l in lengths) Frames -= l;
            Ensure(ref X, Frames * d); Ensure(ref Ctx, Frames * Net.R); Ensure(ref LogP, Frames);
            if (ForTraining) Ensure(ref DCtx, Frames * Net.R);
            if (RowFrame.Length < Frames) RowFrame = new int[Frames];
            if (StepStart.Length < Steps) { StepStart = new int[Steps]; StepCount = new int[Steps]; }
            int row = 0, active = n;
            for (int t = 0; t < Steps; t++)
            {
                while (active > 0 && -lengths[active - 1] <= t) active--;
                StepStart[t] = row; StepCount[t] = active;
                for (int i = 0; i < active; i++, row++)
                {
                    int frame = offsets[rank[i]] + t;
                    RowFrame[row] = frame;
                    values.Slice(frame * d, d).CopyTo(X.AsSpan(row * d, d));
                }
            }
        }

        private static void Ensure(ref float[] a, int length) { if (a.Length < length) a = new float[length]; }
    }

    /// <summary>Fills the contexts ĥ_{t−1} of every packed frame (h₀ at t = 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Recurrence(Block block)
    {
        int r = R, d = D;
        var ctx = block.Ctx;
        for (int i = 0; i < (block.Steps == 0 ? 0 : block.StepCount[0]); i++) H0.CopyTo(ctx, i * r);
        for (int t = 0; t + 1 < block.Steps; t++)
        {
            int prev = block.StepStart[t], next = block.StepStart[t + 1], n = block.StepCount[t + 1];
            var pre = ctx.AsSpan(next * r, n * r);
            for (int i = 0; i < n; i++) BRec.CopyTo(pre.Slice(i * r, r));
            Gemm.Multiply(false, false, n, r, d, 1f, block.X.AsSpan(prev * d, n * d), d, WIn, r, 1f, pre, r, allowParallel: false);
            Gemm.Multiply(false, false, n, r, r, 1f, ctx.AsSpan(prev * r, n * r), r, WRec, r, 1f, pre, r, allowParallel: false);
            TensorPrimitives.Sigmoid(pre, pre);
        }
    }

    /// <summary>
    /// Forward pass of a packed block: log p(x_t | x_&lt;t) of every packed frame into <see cref="Block.LogP"/>. With a
    /// training block, also back-propagates (gradients of <paramref name="gradScale"/> × the summed log-density,
    /// accumulated into the block's gradient buffers, which the caller clears).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Run(Block block, float gradScale, bool scaleMeanBySigma)
    {
        Recurrence(block);
        var ws = block.Rnade;
        int r = R, d = D, ow = OutputWidth, s = ws.Stride, h = Rnade.H;
        bool hid = ConditionsHiddenBias, train = block.ForTraining;
        for (int f0 = 0; f0 < block.Frames; f0 += ws.Rows)
        {
            int n = Math.Min(ws.Rows, block.Frames - f0);
            var ctx = block.Ctx.AsSpan(f0 * r, n * r);
            // rᵀ (D·3K × n, stride s) = W_outᵀ ĥᵀ; the same for the hidden-bias offset.
            Gemm.Multiply(true, true, ow, n, r, 1f, WOut, ow, ctx, r, 0f, block.OutBias, s, allowParallel: false);
            if (hid) Gemm.Multiply(true, true, h, n, r, 1f, WHid, h, ctx, r, 0f, block.HidBias, s, allowParallel: false);
            var x = block.X.AsSpan(f0 * d, n * d);
            Rnade.Forward(x, n, ws, block.LogP.AsSpan(f0, n), gradScale, scaleMeanBySigma, block.OutBias, hid ? block.HidBias : default);
            if (!train) continue;
            Rnade.Backward(x, n, ws);
            // ∂/∂r = DZ and ∂/∂(hidden offset) = DAcc, both transposed with stride s.
            var dctx = block.DCtx.AsSpan(f0 * r, n * r);
            Gemm.Multiply(true, true, r, ow, n, 1f, ctx, r, ws.DZ, s, 1f, block.GWOut, ow, allowParallel: false);
            Gemm.Multiply(true, true, n, r, ow, 1f, ws.DZ, s, WOut, ow, 0f, dctx, r, allowParallel: false);
            if (hid)
            {
                Gemm.Multiply(true, true, r, h, n, 1f, ctx, r, ws.DAcc, s, 1f, block.GWHid, h, allowParallel: false);
                Gemm.Multiply(true, true, n, r, h, 1f, ws.DAcc, s, WHid, h, 1f, dctx, r, allowParallel: false);
            }
        }
        if (train) BackwardRecurrence(block);
    }

    /// <summary>Back-propagation through time of the context gradients in <see cref="Block.DCtx"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void BackwardRecurrence(Block block)
    {
        int r = R, d = D;
        var ctx = block.Ctx; var dctx = block.DCtx;
        for (int t = block.Steps - 1; t >= 1; t--)
        {
            int cur = block.StepStart[t], prev = block.StepStart[t - 1], n = block.StepCount[t];
            // Rows of step t hold ĥ_{t−1} = σ(pre) of the first n sequences, computed from step t−1's rows.
            var dpre = dctx.AsSpan(cur * r, n * r);
            var hv = ctx.AsSpan(cur * r, n * r);
            for (int i = 0; i < dpre.Length; i++) dpre[i] *= hv[i] * (1f - hv[i]);
            Gemm.Multiply(true, false, d, r, n, 1f, block.X.AsSpan(prev * d, n * d), d, dpre, r, 1f, block.GWIn, r, allowParallel: false);
            Gemm.Multiply(true, false, r, r, n, 1f, ctx.AsSpan(prev * r, n * r), r, dpre, r, 1f, block.GWRec, r, allowParallel: false);
            for (int i = 0; i < n; i++) TensorPrimitives.Add(block.GBRec, dpre.Slice(i * r, r), block.GBRec);
            Gemm.Multiply(false, true, n, r, r, 1f, dpre, r, WRec, r, 1f, dctx.AsSpan(prev * r, n * r), r, allowParallel: false);
        }
        if (block.Steps > 0)
            for (int i = 0; i < block.StepCount[0]; i++) TensorPrimitives.Add(block.GH0, dctx.AsSpan(i * r, r), block.GH0);
    }

    /// <summary>
    /// Generates <paramref name="steps"/> frames (model space) for <paramref name="rows"/> sequences whose current
    /// contexts ĥ are in <paramref name="state"/> (rows × R, updated in place); frame t of row i goes to
    /// <paramref name="output"/>[(i·steps + t)·D]. Row i draws only from <paramref name="streams"/>[i]. The token is
    /// checked before every step: one sequence may be millions of frames.
    /// </summary>
    public void Generate(int rows, int steps, float[] state, RandomStream[] streams, Span<float> output, CancellationToken cancellationToken)
    {
        int r = R, d = D, ow = OutputWidth, h = Rnade.H;
        var outBias = new float[rows * ow];
        var hidBias = ConditionsHiddenBias ? new float[rows * h] : Array.Empty<float>();
        var x = new float[rows * d];
        var pre = new float[rows * r];
        var scratch = new RnadeNetwork.SampleScratch(Rnade, rows);
        for (int t = 0; t < steps; t++)
        {
            cancellationToken.ThrowIfCancellationRequested(); // a volatile read per step of up to 32 frames: free
            Gemm.Multiply(false, false, rows, ow, r, 1f, state, r, WOut, ow, 0f, outBias, ow, allowParallel: false);
            if (ConditionsHiddenBias) Gemm.Multiply(false, false, rows, h, r, 1f, state, r, WHid, h, 0f, hidBias, h, allowParallel: false);
            Rnade.Sample(rows, streams, x, outBias, hidBias, scratch);
            for (int i = 0; i < rows; i++) x.AsSpan(i * d, d).CopyTo(output.Slice((i * steps + t) * d, d));
            if (t + 1 == steps) break;
            Advance(rows, x, state, pre);
        }
    }

    /// <summary>Scratch of <see cref="StepLogDensity"/> (one frame at a time).</summary>
    public sealed class StepScratch(RnnRnadeNetwork net)
    {
        public readonly RnadeNetwork.Workspace Rnade = new(net.Rnade, 1, forTraining: false);
        public readonly float[] OutBias = new float[net.OutputWidth * 8], HidBias = new float[net.WHid.Length > 0 ? net.Rnade.H * 8 : 0];
        public readonly float[] LogP = new float[1];
    }

    /// <summary>log p(x | context <paramref name="state"/>) of one model-space frame (the state is not advanced).</summary>
    public float StepLogDensity(ReadOnlySpan<float> x, float[] state, StepScratch scratch)
    {
        int r = R, ow = OutputWidth, h = Rnade.H, s = scratch.Rnade.Stride;
        Gemm.Multiply(true, true, ow, 1, r, 1f, WOut, ow, state, r, 0f, scratch.OutBias, s, allowParallel: false);
        if (ConditionsHiddenBias) Gemm.Multiply(true, true, h, 1, r, 1f, WHid, h, state, r, 0f, scratch.HidBias, s, allowParallel: false);
        Rnade.Forward(x, 1, scratch.Rnade, scratch.LogP, 0f, false, scratch.OutBias, ConditionsHiddenBias ? scratch.HidBias : default);
        return scratch.LogP[0];
    }

    /// <summary>state ← σ(x W_in + state W_rec + b_rec) for <paramref name="rows"/> rows.</summary>
    public void Advance(int rows, ReadOnlySpan<float> x, float[] state, float[] scratch)
    {
        int r = R;
        var pre = scratch.AsSpan(0, rows * r);
        for (int i = 0; i < rows; i++) BRec.CopyTo(pre.Slice(i * r, r));
        Gemm.Multiply(false, false, rows, r, D, 1f, x, D, WIn, r, 1f, pre, r, allowParallel: false);
        Gemm.Multiply(false, false, rows, r, r, 1f, state, r, WRec, r, 1f, pre, r, allowParallel: false);
        TensorPrimitives.Sigmoid(pre, state.AsSpan(0, rows * r));
    }
}
