using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Layers;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.Rnade;

/// <summary>The deep RNADE's training objective (the order-agnostic estimate) and validation log-likelihood (exact, over
/// the first orderings of the ensemble): blocks of rows in parallel, reduced in block order, in waves of
/// <see cref="BlockWaves.BlocksPerWave"/> blocks (memory bounded by the block, cancellation between waves).</summary>
internal sealed class DeepRnadeObjective : IGradientObjective
{
    private readonly DeepRnadeNetwork _net;
    private readonly int _rowsPerBlock;
    private readonly int[]? _fixedOrder;
    private readonly bool _scaleMeanBySigma;
    private readonly double _logJacobian;
    private readonly int[][] _validationOrderings, _trainingOrderings;
    private readonly List<DeepRnadeNetwork.Workspace> _workspaces = new();
    private readonly List<GradientBuffers> _gradients = new();
    private readonly List<DeepRnadeNetwork.Workspace> _evalWorkspaces = new();
    private readonly CancellationToken _cancellationToken;
    private double[] _sums = Array.Empty<double>();

    public DeepRnadeObjective(DeepRnadeNetwork net, int rowsPerBlock, int[]? fixedOrder, bool scaleMeanBySigma, double logJacobian,
        int[][] validationOrderings, int[][] trainingOrderings, CancellationToken cancellationToken = default)
    {
        _trainingOrderings = trainingOrderings;
        _net = net; _rowsPerBlock = rowsPerBlock; _fixedOrder = fixedOrder; _scaleMeanBySigma = scaleMeanBySigma;
        _logJacobian = logJacobian; _validationOrderings = validationOrderings; _cancellationToken = cancellationToken;
    }

    public ParameterSet Parameters => _net.Parameters;

    public double ComputeGradient(ReadOnlySpan<float> rows, int count, RandomStream random) => Run(rows, count, random, withGradient: true);

    public double Evaluate(ReadOnlySpan<float> rows, int count, RandomStream random) => Run(rows, count, random, withGradient: false);

    private unsafe double Run(ReadOnlySpan<float> rows, int count, RandomStream random, bool withGradient)
    {
        int d = _net.D;
        int blocks = BlockWaves.BlockCount(count, _rowsPerBlock);
        var workspaces = withGradient ? _workspaces : _evalWorkspaces;
        while (workspaces.Count < Math.Min(blocks, BlockWaves.BlocksPerWave))
        {
            var ws = new DeepRnadeNetwork.Workspace(_net, _rowsPerBlock, withGradient);
            workspaces.Add(ws);
            if (withGradient) _gradients.Add(ws.Gradients!);
        }
        if (_sums.Length < blocks) _sums = new double[blocks];
        var sums = _sums;
        float scale = -1f / count;
        fixed (float* pRows = rows)
        {
            nint address = (nint)pRows;
            BlockWaves.Run(blocks, (b, slot) =>
            {
                var (start, n) = BlockWaves.RowsOf(b, count, _rowsPerBlock);
                var x = new ReadOnlySpan<float>((float*)address + (long)start * d, n * d);
                var ws = workspaces[slot];
                if (withGradient) sums[b] = _net.TrainBlock(x, n, ws, random.Fork((ulong)b), _fixedOrder, _trainingOrderings, scale, _scaleMeanBySigma);
                else
                {
                    Span<float> logp = n <= 1024 ? stackalloc float[n] : new float[n];
                    _net.EnsembleLogDensity(x, n, _validationOrderings, ws, logp);
                    double s = 0;
                    foreach (var v in logp) s += v;
                    sums[b] = s;
                }
            }, withGradient ? ReduceGradients : null, _cancellationToken);
        }
        double total = count * _logJacobian;
        for (int b = 0; b < blocks; b++) total += sums[b];
        return total;
    }

    /// <summary>The wave's block gradients (each workspace's own buffers) into the parameters' gradients, in block order:
    /// the first wave overwrites, later ones add.</summary>
    private void ReduceGradients(int blocksInWave, bool firstWave)
    {
        if (firstWave) GradientBuffers.SumInto(Parameters, _gradients, blocksInWave);
        else GradientBuffers.AddInto(Parameters, _gradients, 0, blocksInWave);
    }
}
