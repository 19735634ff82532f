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
internal sealed class IwaeObjective : IGradientObjective, IDivergenceAdvisor
{
    private readonly IwaeNetwork _net;
    private readonly int _k, _rowsPerBlock;
    private readonly double _logJacobian;
    private readonly CancellationToken _cancellationToken;
    private readonly List<IwaeNetwork.Workspace> _workspaces = new();
    private readonly BlockGradients _gradients;
    private double[] _sums = Array.Empty<double>();

    /// <param name="logJacobian">The input standardisation's log-Jacobian, added per row so that reported bounds are
    /// those of the raw columns (0 without standardisation). It does not change the gradients.</param>
    public IwaeObjective(IwaeNetwork net, int samples, int rowsPerBlock, double logJacobian = 0, CancellationToken cancellationToken = default)
    {
        _net = net; _k = samples; _rowsPerBlock = rowsPerBlock; _logJacobian = logJacobian; _cancellationToken = cancellationToken;
        _gradients = new BlockGradients(net.Parameters);
    }

    public ParameterSet Parameters => _net.Parameters;

    /// <summary>
    /// The divergence advice for this architecture. With two or more stochastic layers whose networks between them are
    /// unbounded (ReLU or Softplus hidden units, or no DeepHiddenUnits: affine), the log σ of q(z_l | z_{l−1}) and of
    /// p(z_{l−1} | z_l) is an unbounded function of a sample whose own spread is e^{log σ}: single samples' log-weights
    /// reach −1e30 or −∞ already at the initial parameters (4.6 % of them for LatentDimensions {2, 2},
    /// HiddenUnits {}, DeepHiddenUnits {4}, ReLU, seed 1, on the conformance suite's binary data), so a lower learning rate
    /// cannot help: restoring the last good state restores the initialisation. Burda et al. use tanh (bounded) layers
    /// between the stochastic layers, where no such sample occurs (docs/models/iwae.md, "Two or more stochastic layers").
    /// </summary>
    public string? DivergenceAdvice
    {
        get
        {
            string generic = _net.Likelihood == IwaeLikelihood.Gaussian
                ? "lower LearningRate, or (if Standardize is off) standardise the inputs."
                : "lower LearningRate.";
            bool unboundedDeep = _net.Layers >= 2 && (_net.DeepHiddenUnits.Length == 0 || _net.Activation is Activation.Relu or Activation.Softplus);
            if (!unboundedDeep) return generic;
            return FormattableString.Invariant($"with {_net.Layers} stochastic layers and {(_net.DeepHiddenUnits.Length == 0 ? "no DeepHiddenUnits (affine networks)" : $"{_net.Activation} DeepHiddenUnits")} ") +
                   "between them, the log σ of each latent layer above the first is an unbounded function of the sample below it, whose spread is " +
                   "itself e^(log σ), so single samples' log-weights can be -1e30 or -∞ even at the initial parameters, which a lower learning rate " +
                   "does not fix: set Activation = Tanh with at least one DeepHiddenUnits layer (Burda et al.'s architecture), or use one stochastic " +
                   $"layer{(_k == 1 ? "; Samples > 1 makes a rare such sample harmless to the bound" : "")}. Otherwise " + generic;
        }
    }

    public double ComputeGradient(ReadOnlySpan<float> rows, int count, RandomStream random) => Run(rows, count, random, withGradient: true);

    public double Evaluate(ReadOnlySpan<float> rows, int count, RandomStream random) => Run(rows, count, random, withGradient: false);

    private unsafe double Run(ReadOnlySpan<float> rows, int count, RandomStream random, bool withGradient)
    {
        int d = _net.D, k = _k;
        int blocks = BlockWaves.BlockCount(count, _rowsPerBlock);
        // The blocks read the rows in place through a pointer: check the span holds them.
        if (rows.Length < (long)count * d) throw new ArgumentException(FormattableString.Invariant($"{count} rows of {d} values need {(long)count * d}; {rows.Length} were given."), nameof(rows));
        // Each block packs the weights it multiplies by itself: one pack shared by the blocks ran 4-5 % slower
        // per step (the other core reads it from this one's cache, and the shared pack was a region of its own).
        while (_workspaces.Count < Math.Min(blocks, BlockWaves.BlocksPerWave)) _workspaces.Add(new IwaeNetwork.Workspace(_net, _rowsPerBlock, k, forTraining: true));
        if (withGradient) _gradients.Ensure(blocks);
        if (_sums.Length < blocks) _sums = new double[blocks];
        var sums = _sums;
        float scale = -1f / count;
        bool parallelInside = blocks == 1;
        // The rows are read in place (pinned for the parallel blocks), not copied: a huge minibatch holds no second copy.
        fixed (float* pinned = rows)
        {
            nint address = (nint)pinned;
            BlockWaves.Run(blocks, (b, slot) =>
            {
                var (start, n) = BlockWaves.RowsOf(b, count, _rowsPerBlock);
                var ws = _workspaces[slot];
                var x = new ReadOnlySpan<float>((float*)address + (long)start * d, n * d);
                _net.FillNoise(ws, n, k, random.Fork((ulong)b));
                _net.Forward(x, n, k, ws, parallelInside);
                Span<double> bound = n <= 512 ? stackalloc double[n] : new double[n];
                IwaeNetwork.ReduceRows(ws.LogW, n, k, bound, withGradient ? ws.RowScale : default, scale);
                double s = 0;
                foreach (var v in bound) s += v;
                sums[b] = s;
                if (withGradient) _net.Backward(x, n, k, ws, _gradients.For(slot, firstWave: b < BlockWaves.BlocksPerWave), parallelInside);
            }, withGradient ? _gradients.Reduce : null, _cancellationToken);
        }
        double total = count * _logJacobian;
        for (int b = 0; b < blocks; b++) total += sums[b];
        return total;
    }
}
