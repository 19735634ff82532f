using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.DeepGmm;

/// <summary>
/// The driver's side of Deep GMM's EM as map-reduce over partitions of the rows (docs/scaling.md, "Beyond one
/// machine"). An EM iteration is (layers + 1) rounds, those of streamed EM: an E-step round, then one round per layer
/// from the top. Each round the driver broadcasts the models the workers need (<see cref="Scored"/>, <see cref="Current"/>,
/// <see cref="PendingLayer"/>), every worker computes its partition's <see cref="DeepGmmEmStatistics"/>, and the driver
/// hands the merged statistics to <see cref="Add"/>: E-step statistics start the M-step (path probabilities and
/// re-seeding), a layer's statistics optimise that layer. Needs the exact E-step and the L-BFGS M-step (as streamed EM).
/// </summary>
/// <remarks>Starts from a trained or initialised model (e.g. <see cref="DeepGmmModel.Fit(Data.RowMatrix, DeepGmmOptions?, Data.RowMatrix?, IProgress{Training.TrainingProgress}?, CancellationToken)"/>
/// on a sample); its standardiser stays fixed. An iteration from the merged statistics of one partition holding every
/// row is the in-memory EM iteration on those rows, bit for bit.</remarks>
public sealed class DeepGmmDataParallelEm
{
    private readonly DeepGmmNetwork _net;
    private readonly DeepGmmModel _start;
    private readonly DeepGmmOptions _options;
    private readonly CancellationToken _cancellationToken;
    private DeepGmmTrainer? _trainer;
    private DeepGmmModel? _scored;

    /// <summary>A run from <paramref name="start"/> (not changed) with the EM settings of <paramref name="options"/>, whose
    /// <see cref="DeepGmmOptions.Layers"/> and path probabilities must be the model's.</summary>
    public DeepGmmDataParallelEm(DeepGmmModel start, DeepGmmOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(start);
        CheckOptions(options, start.Network);
        _start = start; _options = options; _cancellationToken = cancellationToken;
        _net = start.Network.Clone();
        Current = start;
    }

    /// <summary>Checks that <paramref name="options"/> describe <paramref name="net"/> and an EM that runs in rounds.</summary>
    internal static void CheckOptions(DeepGmmOptions options, DeepGmmNetwork net)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (!options.UsesExactEStep)
            throw new NotSupportedException($"Data-parallel Deep GMM EM needs the exact E-step: {options.WhyNotExactEStep}.");
        if (options.MStep != DeepGmmMStep.Lbfgs)
            throw new NotSupportedException("Data-parallel Deep GMM EM needs MStep = Lbfgs (the minibatch M-step keeps the rows of every path).");
        // Layers not set (automatic): the model's own layers, whichever Fit chose.
        if ((!options.LayersAutomatic && !options.Layers.AsSpan().SequenceEqual(net.Components)) || (options.PathProbabilities == DeepGmmPathProbabilities.Factorized) != net.Factorized)
            throw new ArgumentException($"The options describe layers {OptionText.Show(options.Layers)} ({options.PathProbabilities}); the model has " +
                $"{OptionText.Show(net.Components)} ({(net.Factorized ? DeepGmmPathProbabilities.Factorized : DeepGmmPathProbabilities.Full)}).", nameof(options));
    }

    /// <summary>EM iterations whose M-step has begun (1 during the first M-step's layer rounds).</summary>
    public int Iteration { get; private set; }

    /// <summary>The layer whose statistics <see cref="Add"/> expects next, from the top; null: E-step statistics.</summary>
    public int? PendingLayer { get; private set; }

    /// <summary>The model as it stands (broadcast it for the E-step round, and as the current model of a layer round).</summary>
    public DeepGmmModel Current { get; private set; }

    /// <summary>During an M-step, the model the last E-step scored (workers assign rows to paths under it); else null.</summary>
    public DeepGmmModel? Scored => PendingLayer is null ? null : _scored;

    /// <summary>Mean log-likelihood per row of the standardised rows at the last E-step (null before one).</summary>
    public double? MeanLogLikelihood { get; private set; }

    /// <summary>Nodes re-seeded by the last M-step (EM has converged when the figure stops moving and this is 0).</summary>
    public int Reseeded { get; private set; }

    /// <summary>
    /// Takes the merged statistics of the round <see cref="PendingLayer"/> names, over every partition: E-step statistics
    /// record the figure and begin the M-step (the next rounds are the layers from the top); a layer's statistics
    /// optimise its nodes (after the bottom layer the iteration is done and the next round is an E-step).
    /// </summary>
    public void Add(DeepGmmEmStatistics merged)
    {
        ArgumentNullException.ThrowIfNull(merged);
        int expected = PendingLayer ?? -1;
        if (merged.Layer != expected)
            throw new ArgumentException($"Expected {(expected < 0 ? "E-step statistics" : FormattableString.Invariant($"statistics of layer {expected}"))}, got {(merged.Layer < 0 ? "E-step statistics" : FormattableString.Invariant($"layer {merged.Layer}"))}.", nameof(merged));
        if (merged.Count == 0) throw new ArgumentException("The statistics hold no rows.", nameof(merged));
        if (PendingLayer is not int layer)
        {
            var (pathWeight, sum, sq) = merged.EStepParts(_net);
            // The top layer's covariance floor scales with the columns' variances: from the first E-step's sums, which
            // see every row, as in-memory EM computes them once before training.
            _trainer ??= new DeepGmmTrainer(_net, _options, DeepGmmTrainer.ColumnVariances(sum, sq, merged.Count),
                new RandomStream(_options.Seed).Fork(0xD6));
            MeanLogLikelihood = merged.LogLikelihoodSum / merged.Count;
            _scored = Current;
            Iteration++;
            Reseeded = _trainer.BeginMStep(pathWeight, Iteration);
            PendingLayer = _net.LayerCount - 1;
        }
        else
        {
            _trainer!.OptimizeLayer(layer, merged.Moments(_net), _cancellationToken);
            _net.Refresh();
            PendingLayer = layer > 0 ? layer - 1 : null;
        }
        if (!_net.AllFinite()) throw new Training.TrainingDivergedException("Data-parallel Deep GMM EM produced non-finite parameters.");
        Current = new DeepGmmModel(_net.Clone(), _start.Standardizer);
    }

    /// <summary>The model after the last complete iteration, checked by the model loader (as every Fit's result).</summary>
    public DeepGmmModel ToModel()
    {
        if (PendingLayer is not null) throw new InvalidOperationException(FormattableString.Invariant($"The M-step of iteration {Iteration} is not complete (layer {PendingLayer} pending)."));
        return ModelFile.EnsureTrainedModelLoadable(Current);
    }
}
