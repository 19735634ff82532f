using System.Numerics.Tensors;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.RnnRnade;

/// <summary>
/// The RNN-RNADE log-likelihood of a minibatch of sequences: fixed blocks of sequences run in parallel (recurrence,
/// RNADE over all their frames, back-propagation through time), gradients reduced in block order so the result does
/// not depend on the thread count. The gradient is that of the negative mean log-likelihood per frame.
/// A minibatch runs in waves of <see cref="BlocksPerWave"/> blocks that reuse their buffers, with a cancellation check
/// between waves: training memory is bounded by the block of sequences, not the minibatch, and the gradients are still
/// summed in block order (the same bits as one pass over every block).
/// </summary>
internal sealed class RnnRnadeObjective
{
    private readonly RnnRnadeNetwork _net;
    private readonly int _sequencesPerBlock, _framesPerChunk;
    private readonly bool _scaleMeanBySigma;
    private readonly double _frameLogJacobian;
    private readonly List<RnnRnadeNetwork.Block> _train = new(), _eval = new();
    private double[] _sums = Array.Empty<double>();
    private readonly CancellationToken _cancellationToken;

    /// <summary>Blocks run at once (the buffers held); as in RNADE's objective.</summary>
    internal const int BlocksPerWave = BlockWaves.BlocksPerWave;

    /// <summary>Blocks of buffers held for training (at most <see cref="BlocksPerWave"/>).</summary>
    internal int TrainingBlocksHeld => _train.Count;

    /// <param name="frameLogJacobian">Added per frame so objectives are log-densities of the raw (unstandardised) frames.</param>
    /// <param name="cancellationToken">Checked between waves of blocks inside one minibatch.</param>
    public RnnRnadeObjective(RnnRnadeNetwork net, int sequencesPerBlock, int framesPerChunk, bool scaleMeanBySigma, double frameLogJacobian = 0,
        CancellationToken cancellationToken = default)
    {
        _net = net; _sequencesPerBlock = sequencesPerBlock; _framesPerChunk = framesPerChunk;
        _scaleMeanBySigma = scaleMeanBySigma; _frameLogJacobian = frameLogJacobian; _cancellationToken = cancellationToken;
        var rn = net.Rnade;
        Parameters = new ParameterSet(new Parameter("W", rn.W), new Parameter("c", rn.C), new Parameter("rho", rn.Rho),
            new Parameter("V", rn.V), new Parameter("b", rn.B), new Parameter("W_in", net.WIn), new Parameter("W_rec", net.WRec),
            new Parameter("b_rec", net.BRec), new Parameter("h0", net.H0), new Parameter("W_out", net.WOut), new Parameter("W_hid", net.WHid));
    }

    public ParameterSet Parameters { get; }

    /// <summary>
    /// Sum of log p over the frames of the chosen sequences (model-space <paramref name="values"/>, frame offsets
    /// <paramref name="offsets"/>); with <paramref name="withGradient"/>, overwrites the parameters' gradients with
    /// those of −(mean log-likelihood per frame).
    /// </summary>
    public double Run(float[] values, int[] offsets, ReadOnlySpan<int> sequences, bool withGradient)
    {
        int count = sequences.Length;
        int blocks = BlockWaves.BlockCount(count, _sequencesPerBlock);
        var pool = withGradient ? _train : _eval;
        while (pool.Count < Math.Min(blocks, BlocksPerWave)) pool.Add(new RnnRnadeNetwork.Block(_net, _framesPerChunk, withGradient));
        if (_sums.Length < blocks) _sums = new double[blocks];
        long frames = 0;
        foreach (var i in sequences) frames += offsets[i + 1] - offsets[i];
        float scale = -1f / frames;
        var sums = _sums;
        var seqs = sequences.ToArray();
        if (withGradient) Parameters.ZeroGradients();
        BlockWaves.Run(blocks, (b, slot) =>
        {
            var block = pool[slot];
            var (start, n) = BlockWaves.RowsOf(b, count, _sequencesPerBlock);
            block.Pack(values, offsets, seqs.AsSpan(start, n));
            if (withGradient) foreach (var g in block.Gradients()) Array.Clear(g);
            _net.Run(block, scale, _scaleMeanBySigma);
            double s = 0;
            for (int f = 0; f < block.Frames; f++) s += block.LogP[f];
            sums[b] = s;
        }, withGradient ? (waveBlocks, _) => AddGradients(pool, waveBlocks) : null, _cancellationToken);
        double total = frames * _frameLogJacobian;
        for (int b = 0; b < blocks; b++) total += sums[b];
        return total;
    }

    /// <summary>A wave's block gradients added to the parameters' (zeroed at the start of the minibatch), in block order.</summary>
    private void AddGradients(List<RnnRnadeNetwork.Block> pool, int blocksInWave)
    {
        for (int i = 0; i < blocksInWave; i++)
        {
            int t = 0;
            foreach (var g in pool[i].Gradients())
            {
                var dst = Parameters.Items[t++].Gradient;
                TensorPrimitives.Add(dst, g, dst);
            }
        }
    }
}
