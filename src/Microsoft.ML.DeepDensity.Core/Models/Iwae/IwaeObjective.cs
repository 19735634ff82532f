using System.Runtime.CompilerServices;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Estimation;
using Microsoft.ML.DeepDensity.Layers;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.Iwae;

/// <summary>The k-sample bound as a training objective: fixed blocks of rows in parallel, gradients reduced in block order.</summary>
internal sealed class IwaeObjective : IGradientObjective
{
    private readonly IwaeNetwork _net;
    private readonly int _k, _rowsPerBlock;
    private readonly CancellationToken _cancellationToken;
    private readonly List<IwaeNetwork.Workspace> _workspaces = new();
    private readonly List<GradientBuffers> _gradients = new();
    private readonly GradientBuffers _direct;

    /// <summary>Blocks run at once (see <c>RnadeObjective.BlocksPerWave</c>): memory is bounded by the block size, not the
    /// batch size, and cancellation is checked between waves; gradients are still summed in block order.</summary>
    internal const int BlocksPerWave = 16;

    public IwaeObjective(IwaeNetwork net, int samples, int rowsPerBlock, CancellationToken cancellationToken = default)
    {
        _net = net; _k = samples; _rowsPerBlock = rowsPerBlock; _cancellationToken = cancellationToken;
        _direct = GradientBuffers.Of(net.Parameters);
        _forwardNetworks = [.. net.Encoders, .. net.Decoders];
    }

    private readonly Mlp[] _forwardNetworks;

    public ParameterSet Parameters => _net.Parameters;

    public double ComputeGradient(ReadOnlySpan<float> rows, int count, RandomStream random) => Run(rows, count, random, withGradient: true);

    public double Evaluate(ReadOnlySpan<float> rows, int count, RandomStream random) => Run(rows, count, random, withGradient: false);

    private double Run(ReadOnlySpan<float> rows, int count, RandomStream random, bool withGradient)
    {
        int blocks = (count + _rowsPerBlock - 1) / _rowsPerBlock;
        // The blocks read the rows in place through a pointer: check the span holds them.
        if (rows.Length < (long)count * _net.D) throw new ArgumentException($"{count} rows of {_net.D} values need {(long)count * _net.D}; {rows.Length} were given.", nameof(rows));
        // Every block runs forward through the same weights: pack each matrix once for all of them (as NvilObjective).
        using var packed = blocks > 1 ? Mlp.PackWeights(_forwardNetworks) : default;
        return Run(rows, count, random, withGradient, blocks);
    }

    private unsafe double Run(ReadOnlySpan<float> rows, int count, RandomStream random, bool withGradient, int blocks)
    {
        int d = _net.D, k = _k;
        int wave = Math.Min(blocks, BlocksPerWave);
        while (_workspaces.Count < wave) _workspaces.Add(new IwaeNetwork.Workspace(_net, _rowsPerBlock, k, forTraining: true));
        if (withGradient)
        {
            // Block 0 writes straight into the parameters' gradients; the others into private buffers added after, in
            // order. Later waves use private buffers 1..wave only (the parameters' gradients then hold the running sum).
            if (_gradients.Count == 0) _gradients.Add(_direct);
            while (_gradients.Count < (blocks > BlocksPerWave ? BlocksPerWave + 1 : blocks)) _gradients.Add(GradientBuffers.Create(_net.Parameters));
        }
        var sums = new double[blocks];
        float scale = -1f / count;
        bool parallelInside = blocks == 1;
        // The rows are read in place (pinned for the parallel blocks), not copied: a huge minibatch holds no second copy.
        fixed (float* pinned = rows)
        {
            nint address = (nint)pinned;
            for (int first = 0; first < blocks; first += BlocksPerWave)
            {
                _cancellationToken.ThrowIfCancellationRequested();
                int waveBlocks = Math.Min(BlocksPerWave, blocks - first), bufferOffset = first == 0 ? 0 : 1;
                void Block(int i)
                {
                    int b = first + i;
                    int start = b * _rowsPerBlock, n = Math.Min(_rowsPerBlock, count - start);
                    var ws = _workspaces[i];
                    var x = new ReadOnlySpan<float>((float*)address + (long)start * d, n * d);
                    _net.FillNoise(ws, n, k, random.Fork((ulong)b));
                    _net.Forward(x, n, k, ws, parallelInside);
                    Span<double> bound = n <= 512 ? stackalloc double[n] : new double[n];
                    IwaeNetwork.ReduceRows(ws.LogW, n, k, bound, withGradient ? ws.RowScale : default, scale);
                    double s = 0;
                    foreach (var v in bound) s += v;
                    sums[b] = s;
                    if (withGradient) _net.Backward(x, n, k, ws, _gradients[bufferOffset + i], parallelInside);
                }
                if (blocks == 1) Block(0); else DeepDensityEnvironment.For(0, waveBlocks, Block);
                if (!withGradient) continue;
                if (first == 0) { if (blocks > 1) GradientBuffers.SumInto(_net.Parameters, _gradients, waveBlocks); }
                else GradientBuffers.AddInto(_net.Parameters, _gradients, 1, waveBlocks);
            }
        }
        double total = 0;
        foreach (var s in sums) total += s;
        return total;
    }
}
