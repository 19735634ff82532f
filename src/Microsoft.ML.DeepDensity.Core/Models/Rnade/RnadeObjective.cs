using System.Runtime.CompilerServices;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.Rnade;

/// <summary>The RNADE log-likelihood as a training objective: blocks of rows in parallel, reduced in block order.</summary>
internal sealed class RnadeObjective : IGradientObjective
{
    private readonly RnadeNetwork _net;
    private readonly int _rowsPerBlock;
    private readonly bool _scaleMeanBySigma;
    private readonly double _logJacobian;
    private readonly CancellationToken _cancellationToken;
    private readonly List<RnadeNetwork.Workspace> _workspaces = new();
    private readonly List<RnadeNetwork.Workspace> _evalWorkspaces = new();
    private double[] _sums = Array.Empty<double>();

    /// <summary>Blocks run at once (<see cref="BlockWaves"/>): training memory is bounded by the block size, not the batch
    /// size (a 200k-row batch used to hold 4,000 workspaces), and a huge batch stops within a wave of cancellation.</summary>
    internal const int BlocksPerWave = BlockWaves.BlocksPerWave;

    /// <summary>Training workspaces held (at most <see cref="BlocksPerWave"/>).</summary>
    internal int WorkspaceCount => _workspaces.Count;

    /// <param name="logJacobian">Added per row so reported objectives are log-densities of the raw (unstandardised) data.</param>
    /// <param name="cancellationToken">Checked between waves of blocks inside one minibatch.</param>
    public RnadeObjective(RnadeNetwork net, int rowsPerBlock, bool scaleMeanBySigma, double logJacobian = 0, CancellationToken cancellationToken = default)
    {
        _net = net; _rowsPerBlock = rowsPerBlock; _scaleMeanBySigma = scaleMeanBySigma; _logJacobian = logJacobian;
        _cancellationToken = cancellationToken;
        Parameters = new ParameterSet(new Parameter("W", net.W), new Parameter("c", net.C), new Parameter("rho", net.Rho),
            new Parameter("V", net.V), new Parameter("b", net.B));
    }

    public ParameterSet Parameters { get; }

    public double ComputeGradient(ReadOnlySpan<float> rows, int count, RandomStream random)
        => Run(rows, count, withGradient: true);

    public double Evaluate(ReadOnlySpan<float> rows, int count, RandomStream random)
        => Run(rows, count, withGradient: false);

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private double Run(ReadOnlySpan<float> rows, int count, bool withGradient)
    {
        int d = _net.D;
        int blocks = BlockWaves.BlockCount(count, _rowsPerBlock);
        // Evaluation (validation) needs no stored activations or gradients: it has its own lighter workspaces.
        var workspaces = withGradient ? _workspaces : _evalWorkspaces;
        while (workspaces.Count < Math.Min(blocks, BlocksPerWave)) workspaces.Add(new RnadeNetwork.Workspace(_net, _rowsPerBlock, forTraining: withGradient));
        if (_sums.Length < blocks) _sums = new double[blocks];
        var sums = _sums;
        float scale = -1f / count;
        unsafe
        {
            fixed (float* pRows = rows)
            {
                nint address = (nint)pRows;
                BlockWaves.Run(blocks, (b, slot) =>
                {
                    var (start, n) = BlockWaves.RowsOf(b, count, _rowsPerBlock);
                    BlockCore(new ReadOnlySpan<float>((float*)address + (long)start * d, n * d), n, workspaces[slot], b);
                }, withGradient ? (wave, firstWave) => ReduceGradients(wave, accumulate: !firstWave) : null, _cancellationToken);
            }
        }
        void BlockCore(ReadOnlySpan<float> x, int n, RnadeNetwork.Workspace ws, int b)
        {
            Span<float> logp = n <= 1024 ? stackalloc float[n] : new float[n];
            _net.Forward(x, n, ws, logp, scale, _scaleMeanBySigma);
            double s = 0;
            foreach (var v in logp) s += v;
            sums[b] = s;
            if (withGradient)
            {
                Array.Clear(ws.GW!); Array.Clear(ws.GC!); Array.Clear(ws.GRho!); Array.Clear(ws.GV!); Array.Clear(ws.GB!);
                _net.Backward(x, n, ws);
            }
        }
        double total = count * _logJacobian;
        for (int b = 0; b < blocks; b++) total += sums[b];
        return total;
    }

    /// <summary>Floats of one parameter tensor reduced per parallel chunk (fixed, so the work split never depends on threads).</summary>
    private const int ReduceChunk = 8192;

    /// <summary>
    /// Parameter gradients = Σ_b block gradients, summed in block order for every element (so the same bits at any
    /// thread count), in parallel over fixed chunks of the parameters: done serially, this pass over every parameter
    /// for every block was a serial tail of each step that kept the step below two cores.
    /// </summary>
    /// <param name="blocks">Workspaces of this wave (in block order).</param>
    /// <param name="accumulate">Add to the gradients of earlier waves instead of overwriting them.</param>
    private void ReduceGradients(int blocks, bool accumulate)
    {
        var items = Parameters.Items;
        int chunks = 0;
        foreach (var p in items) chunks += (p.Gradient.Length + ReduceChunk - 1) / ReduceChunk;
        if (chunks == 1 || blocks == 1) { for (int c = 0; c < chunks; c++) ReduceChunkAt(c, blocks, accumulate); return; }
        DeepDensityEnvironment.For(0, chunks, c => ReduceChunkAt(c, blocks, accumulate));
    }

    private void ReduceChunkAt(int chunk, int blocks, bool accumulate)
    {
        var items = Parameters.Items;
        for (int t = 0; t < items.Count; t++)
        {
            int n = items[t].Gradient.Length, count = (n + ReduceChunk - 1) / ReduceChunk;
            if (chunk >= count) { chunk -= count; continue; }
            int start = chunk * ReduceChunk, length = Math.Min(ReduceChunk, n - start);
            var dst = items[t].Gradient.AsSpan(start, length);
            if (!accumulate) dst.Clear();
            for (int b = 0; b < blocks; b++)
            {
                var ws = _workspaces[b];
                float[] src = t switch { 0 => ws.GW!, 1 => ws.GC!, 2 => ws.GRho!, 3 => ws.GV!, _ => ws.GB! };
                System.Numerics.Tensors.TensorPrimitives.Add(dst, src.AsSpan(start, length), dst);
            }
            return;
        }
    }
}
