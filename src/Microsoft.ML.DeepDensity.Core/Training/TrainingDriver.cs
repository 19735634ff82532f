using System.Diagnostics;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Training;

/// <summary>
/// What the <see cref="TrainingDriver"/> needs from a model being trained: an update on a batch, the figures of an
/// epoch (training objective, validation, convergence), and a snapshot/restore of ALL its training state — parameters
/// and any non-parameter state (running statistics, persistent chains) — so that divergence recovery and early
/// stopping can go back to an earlier epoch exactly.
/// </summary>
public interface ITrainableModel
{
    /// <summary>One update on the examples <paramref name="step"/> selects. Returns the batch's objective sum (summed
    /// into the epoch's figure), or a non-finite value when the update diverged (the driver then restores the last
    /// good state).</summary>
    double Step(TrainingStep step);

    /// <summary>Measures the epoch after its steps; null when the state is unusable (non-finite parameters, training or
    /// validation figure), which the driver treats as a divergence. A validation example the model cannot measure with
    /// finite parameters and training figure is no divergence: the built-in trainers throw
    /// <see cref="Data.DataValidationException"/> naming it instead (docs/engine.md).</summary>
    EpochFigures? EndEpoch(TrainingEpoch epoch);

    /// <summary>An independent copy of all training state.</summary>
    object Snapshot();

    /// <summary>Puts back a state made by <see cref="Snapshot"/> (the snapshot stays usable).</summary>
    void Restore(object snapshot);

    /// <summary>After a divergence restore, forgets what a restore does not cover and should not survive (optimiser
    /// moments, momentum, chains started from the diverged state).</summary>
    void ResetAfterDivergence();
}

/// <summary>The figures of one epoch.</summary>
/// <param name="Train">Training objective per example (reported; the summary's final training figure).</param>
/// <param name="Validation">Reported validation figure (null without a validation set).</param>
/// <param name="Score">Early-stopping score, higher is better (null: <paramref name="Validation"/>; both null: no early stopping).</param>
/// <param name="Note">Note for the progress report.</param>
/// <param name="Metrics">Extra figures for the progress report.</param>
/// <param name="Converged">The model has converged: stop after this epoch (EM's tolerance).</param>
/// <param name="Examples">Examples the epoch processed, when the model reads its data itself (streamed EM makes its
/// own passes); null: those of the driver's batches (for the progress report's examples/s).</param>
public sealed record EpochFigures(double Train, double? Validation, double? Score = null, string? Note = null,
    IReadOnlyDictionary<string, double>? Metrics = null, bool Converged = false, long? Examples = null);

/// <summary>One step of an epoch: which examples, the learning rate and the step's own random stream.</summary>
public sealed class TrainingStep
{
    private ITrainingData _data = null!;
    private readonly TrainingBatch _batch = new();
    private bool _copied;

    internal TrainingStep() { }

    /// <summary>The window the next steps draw from (the whole data in memory; a buffer's worth of a stream).</summary>
    internal void SetWindow(ITrainingData window, int[] order) { _data = window; Order = order; }

    internal void Set(int epoch, int index, int start, int count, float learningRate, RandomStream random)
    {
        Epoch = epoch; Index = index; Start = start; Count = count; LearningRate = learningRate; Random = random;
        _copied = false;
    }

    /// <summary>Epoch number (1-based).</summary>
    public int Epoch { get; private set; }
    /// <summary>Batch number within the epoch (0-based, counted across a stream's windows).</summary>
    public int Index { get; private set; }
    /// <summary>This window's order of its examples (shuffled, or in order for full-batch methods); in memory the
    /// window is the whole training set. Only the first <see cref="Data"/>.Count entries are used.</summary>
    public int[] Order { get; private set; } = [];
    /// <summary>The examples <see cref="Order"/> indexes: the whole training set in memory, the current window of a stream.</summary>
    public ITrainingData Data => _data;
    /// <summary>First position of this batch in <see cref="Order"/>.</summary>
    public int Start { get; private set; }
    /// <summary>Examples in this batch.</summary>
    public int Count { get; private set; }
    /// <summary>The examples of this batch, as indices into <see cref="Data"/>.</summary>
    public ReadOnlySpan<int> Indices => Order.AsSpan(Start, Count);
    /// <summary>Current learning rate (after decay and divergence halving).</summary>
    public float LearningRate { get; private set; }
    /// <summary>This step's noise: a pure function of (seed, epoch, recoveries, batch).</summary>
    public RandomStream Random { get; private set; } = null!;

    /// <summary>The batch's examples, copied from the training data on first use.</summary>
    public TrainingBatch Batch
    {
        get
        {
            if (!_copied) { _data.CopyBatch(Indices, _batch); _copied = true; }
            return _batch;
        }
    }
}

/// <summary>What <see cref="ITrainableModel.EndEpoch"/> is told about the epoch.</summary>
/// <param name="Epoch">Epoch number (1-based).</param>
/// <param name="ObjectiveSum">Sum of the steps' objectives.</param>
/// <param name="Examples">Training examples.</param>
/// <param name="Root">The run's root stream (for seeded evaluation noise).</param>
/// <param name="LearningRate">The learning rate of the epoch.</param>
public sealed record TrainingEpoch(int Epoch, double ObjectiveSum, int Examples, RandomStream Root, float LearningRate);

/// <summary>What to do when an epoch diverges.</summary>
public enum DivergencePolicy
{
    /// <summary>Restore the last good state, halve the learning rate and retry the epoch (up to <see cref="TrainingDriverOptions.MaxDivergenceRecoveries"/> times).</summary>
    HalveLearningRateAndRetry = 0,
    /// <summary>Restore the last good state and stop (methods without a learning rate, e.g. EM).</summary>
    Stop = 1,
}

/// <summary>How the driver runs a model.</summary>
public sealed record TrainingDriverOptions
{
    /// <summary>The driver settings a gradient-trained model's options imply (epochs, batch size, learning-rate schedule,
    /// early stopping, divergence recoveries, stop token); a model adjusts the rest with <c>with { … }</c>.</summary>
    public static TrainingDriverOptions From(GradientTrainingOptions options, RandomStream root) => new()
    {
        MaxEpochs = options.MaxEpochs,
        BatchSize = options.BatchSize,
        Root = root,
        LearningRate = options.LearningRate,
        LearningRateDecay = options.LearningRateDecay,
        LearningRateDecayExamples = options.LearningRateDecayExamples,
        EarlyStoppingPatience = options.EarlyStoppingPatience,
        MaxDivergenceRecoveries = options.MaxDivergenceRecoveries,
        StopToken = options.StopToken,
    };

    /// <summary>Epochs (EM iterations) at most.</summary>
    public int MaxEpochs { get; init; }
    /// <summary>When set and the source's length is not known in advance (a stream), the run's epochs are this function
    /// of the rows its first complete epoch read; <see cref="MaxEpochs"/> then only bounds that first epoch (the RBM's
    /// default length, a million examples, on a stream).</summary>
    public Func<long, int>? EpochsForRows { get; init; }
    /// <summary>Examples per step (capped at the number of examples).</summary>
    public int BatchSize { get; init; } = int.MaxValue;
    /// <summary>Shuffle the examples every epoch (minibatch methods); false hands them over in order.</summary>
    public bool Shuffle { get; init; } = true;
    /// <summary>Root of every random stream of the run (shuffles, steps).</summary>
    public required RandomStream Root { get; init; }
    /// <summary>Initial learning rate (0 for methods without one; reported as is).</summary>
    public float LearningRate { get; init; }
    /// <summary>Factor applied to the learning rate after every epoch, or every <see cref="LearningRateDecayExamples"/> examples.</summary>
    public float LearningRateDecay { get; init; } = 1f;
    /// <summary>Training examples per application of <see cref="LearningRateDecay"/> (0: once per epoch).</summary>
    public long LearningRateDecayExamples { get; init; }
    /// <summary>Stop after this many epochs without a better validation score (0: never stop early).</summary>
    public int EarlyStoppingPatience { get; init; }
    /// <summary>Restore the state of the best validation epoch at the end even when early stopping is off.</summary>
    public bool RestoreBestWithoutEarlyStopping { get; init; } = true;
    /// <summary>What a divergence does.</summary>
    public DivergencePolicy OnDivergence { get; init; }
    /// <summary>Recoveries before <see cref="TrainingDivergedException"/> (with <see cref="DivergencePolicy.HalveLearningRateAndRetry"/>).</summary>
    public int MaxDivergenceRecoveries { get; init; }
    /// <summary>Who diverges, for messages ("Training", "RBM training").</summary>
    public string Name { get; init; } = "Training";
    /// <summary>What a divergence is for this model, for messages ("non-finite loss or gradient").</summary>
    public string DivergenceDescription { get; init; } = "non-finite loss or gradient, or parameters beyond ±1e6";
    /// <summary>The advice that ends the divergence message.</summary>
    public string DivergenceAdvice { get; init; } = "standardise the inputs or lower LearningRate.";
    /// <summary>Note of the history entry a <see cref="DivergencePolicy.Stop"/> divergence leaves.</summary>
    public string StopNote { get; init; } = "non-finite parameters: restored the previous epoch and stopped";
    /// <summary>Ends training early but keeps the result (unlike the cancellation token, which abandons it): when
    /// signalled, the run stops at the next step or epoch boundary as if <see cref="MaxEpochs"/> had been reached, a
    /// partly done epoch is discarded and the best state so far is kept (e.g. a command-line tool's first Ctrl+C).</summary>
    public CancellationToken StopToken { get; init; }
    /// <summary>What one epoch is, for progress reports ("epoch", "EM iteration").</summary>
    public string Unit { get; init; } = "epoch";
    /// <summary>Added to epoch numbers in reports (runs that continue another's numbering: pretraining, restarts).</summary>
    public int EpochNumberOffset { get; init; }
}

/// <summary>
/// The one training loop: epochs, shuffling, batches, progress, cancellation, validation with early stopping and
/// restore of the best state, divergence recovery — for every model, through <see cref="ITrainableModel"/>. Gradient
/// models plug in through <see cref="TrainingLoop"/> (the optimiser adapter), CD-trained RBMs and Deep GMM's EM through
/// their own small adapters; restarts (several initialisations) through <see cref="BestOfRestarts"/>.
/// </summary>
/// <remarks>Randomness: epoch e (after r recoveries) shuffles with Root.Fork(e, r) and step b draws from
/// Root.Fork(e, r).Fork(b), so a run is a pure function of the seed, whatever the thread count. A streamed source
/// (<see cref="StreamingTrainingData"/>) comes in windows: each window's order is shuffled in turn by the same epoch
/// stream, and batch numbers run on across windows; data in memory is one window, so the two agree when the stream's
/// buffer holds the whole pass.</remarks>
public static class TrainingDriver
{
    /// <summary>Trains <paramref name="model"/> on <paramref name="train"/>; returns what the run did.</summary>
    public static TrainingSummary Run(ITrainableModel model, ITrainingSource train, TrainingDriverOptions options,
        IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(options);
        var root = options.Root;
        int batch = (int)Math.Min(options.BatchSize, Math.Max(1, train.KnownCount ?? long.MaxValue));
        var order = Array.Empty<int>();
        var step = new TrainingStep();
        var history = new List<TrainingProgress>();

        // lr is the epoch's base rate (decayed per epoch, halved by recoveries); with LearningRateDecayExamples the decay
        // is applied per step instead, from the examples trained on before it (completed epochs and this one's steps).
        float lr = options.LearningRate;
        var decay = new ExampleDecay(options.LearningRateDecay, options.LearningRateDecayExamples);
        long examplesBefore = 0;
        object lastGood = model.Snapshot();
        object? best = null;
        double bestScore = double.NegativeInfinity;
        // recoveries counts every retry of the run (it names the retries' random streams); retriesOfThisEpoch only those
        // since the last completed epoch, which is what MaxDivergenceRecoveries bounds.
        int bestEpoch = 0, sinceBest = 0, recoveries = 0, retriesOfThisEpoch = 0, completedEpochs = 0;
        bool stoppedEarly = false, stoppedByDivergence = false, converged = false;
        double lastTrain = double.NaN;
        var clock = Stopwatch.StartNew();
        int epoch = 1, maxEpochs = options.MaxEpochs;
        var stop = options.StopToken;
        while (epoch <= maxEpochs && !stop.IsCancellationRequested)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var epochRandom = root.Fork((ulong)epoch, (ulong)recoveries);
            var epochClock = Stopwatch.StartNew();
            double objectiveSum = 0;
            bool diverged = false;
            int batchIndex = 0, n = 0;
            foreach (var window in train.ReadWindows(batch, cancellationToken))
            {
                int w = window.Count;
                if (order.Length < w) order = new int[w];
                for (int i = 0; i < w; i++) order[i] = i;
                if (options.Shuffle) epochRandom.Shuffle(order.AsSpan(0, w));
                step.SetWindow(window, order);
                for (int start = 0; start < w; start += batch, batchIndex++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    if (stop.IsCancellationRequested) break;
                    step.Set(epoch, batchIndex, start, Math.Min(batch, w - start), decay.Rate(lr, examplesBefore + n + start), epochRandom.Fork((ulong)batchIndex));
                    double objective = model.Step(step);
                    if (!double.IsFinite(objective)) { diverged = true; break; }
                    objectiveSum += objective;
                }
                n += w;
                if (diverged || stop.IsCancellationRequested) break;
            }
            if (n == 0 && !diverged && !stop.IsCancellationRequested)
                throw new InvalidOperationException(FormattableString.Invariant($"{options.Name}: the training data yielded no examples in epoch {epoch}."));
            if (stop.IsCancellationRequested)
            {
                model.Restore(lastGood); // a partly done epoch is discarded
                break;
            }
            double seconds = epochClock.Elapsed.TotalSeconds;
            var figures = diverged ? null : model.EndEpoch(new TrainingEpoch(epoch, objectiveSum, n, root, step.LearningRate));
            // An infinite training figure is a divergence too: a model under which some training row has density 0
            // (Deep GMM's minibatch M-step at an absurd rate reached −∞ with finite steps) is not a fit. (NaN is a
            // figure the model does not compute: the Gaussian RBM's pseudo-likelihood.)
            if (figures is not null && double.IsInfinity(figures.Train)) figures = null;
            if (figures is null)
            {
                model.Restore(lastGood);
                if (options.OnDivergence == DivergencePolicy.Stop)
                {
                    stoppedByDivergence = true;
                    history.Add(new TrainingProgress(options.EpochNumberOffset + epoch, double.NaN, null, 0, clock.Elapsed, lr, options.StopNote, Unit: options.Unit));
                    progress?.Report(history[^1]);
                    break;
                }
                model.ResetAfterDivergence();
                if (++retriesOfThisEpoch > options.MaxDivergenceRecoveries)
                {
                    string what = FormattableString.Invariant($"{options.Name} diverged ({options.DivergenceDescription}) in epoch {options.EpochNumberOffset + epoch} and did not recover after ") +
                                  FormattableString.Invariant($"{options.MaxDivergenceRecoveries} restarts with halved learning rates (last {lr:G3})");
                    if (completedEpochs == 0)
                        throw new TrainingDivergedException($"{what}. Parameters were restored to the last finite state; {options.DivergenceAdvice}");
                    // Epochs that completed are not thrown away: the run ends here as if MaxEpochs had been reached (the
                    // best state on validation is kept as at any end), and the summary and the last report say why.
                    stoppedByDivergence = true;
                    history.Add(new TrainingProgress(options.EpochNumberOffset + epoch, double.NaN, null, 0, clock.Elapsed, lr,
                        $"{what}: stopped, keeping the epochs before it; {options.DivergenceAdvice}", Unit: options.Unit));
                    progress?.Report(history[^1]);
                    break;
                }
                recoveries++;
                lr *= 0.5f;
                progress?.Report(new TrainingProgress(options.EpochNumberOffset + epoch, double.NaN, null, 0, clock.Elapsed, lr,
                    FormattableString.Invariant($"{options.DivergenceDescription}: restored the last good state, learning rate halved to {lr:G3}"), Unit: options.Unit));
                continue; // retry the same epoch
            }

            lastGood = model.Snapshot();
            lastTrain = figures.Train;
            if (++completedEpochs == 1 && train.KnownCount is null && options.EpochsForRows is { } epochsForRows) maxEpochs = epochsForRows(n);
            retriesOfThisEpoch = 0;
            var report = new TrainingProgress(options.EpochNumberOffset + epoch, figures.Train, figures.Validation,
                (figures.Examples ?? n) / Math.Max(seconds, 1e-9), clock.Elapsed, step.LearningRate, figures.Note, figures.Metrics, options.Unit);
            history.Add(report);
            progress?.Report(report);

            if ((figures.Score ?? figures.Validation) is double score)
            {
                if (score > bestScore)
                {
                    bestScore = score; bestEpoch = epoch; sinceBest = 0;
                    best = lastGood;
                }
                else if (options.EarlyStoppingPatience > 0 && ++sinceBest >= options.EarlyStoppingPatience)
                {
                    stoppedEarly = true;
                    break;
                }
            }
            if (figures.Converged) { converged = true; break; }
            examplesBefore += n;
            if (!decay.PerExamples) lr *= options.LearningRateDecay;
            epoch++;
        }
        if (best is not null && (options.RestoreBestWithoutEarlyStopping || options.EarlyStoppingPatience > 0)) model.Restore(best);
        else bestEpoch = completedEpochs;
        // The kept step in the numbering of the history's reports (a Deep GMM run after its pretraining iterations or
        // another initialisation used to say 4 for the report numbered 16); 0 when no step completed.
        if (bestEpoch > 0) bestEpoch += options.EpochNumberOffset;
        bool requested = stop.IsCancellationRequested && epoch <= maxEpochs && !stoppedEarly && !stoppedByDivergence && !converged;
        return new TrainingSummary(history.Count, bestEpoch, bestScore, lastTrain, stoppedEarly, recoveries, history)
            { StoppedByDivergence = stoppedByDivergence, Converged = converged, StoppedByRequest = requested };
    }

    /// <summary>
    /// Runs <paramref name="restarts"/> independent trainings (run(i) for i = 0, 1, …) and keeps the best: the highest
    /// best validation figure when <paramref name="byValidation"/>, else the highest final training figure (the first
    /// on ties). A signalled <paramref name="stopToken"/> skips the restarts not yet begun (the first always runs).
    /// </summary>
    public static (T Result, TrainingSummary Summary) BestOfRestarts<T>(int restarts, bool byValidation, Func<int, (T Result, TrainingSummary Summary)> run,
        CancellationToken stopToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(restarts, 1);
        ArgumentNullException.ThrowIfNull(run);
        (T Result, TrainingSummary Summary)? chosen = null;
        double chosenScore = double.NegativeInfinity;
        for (int i = 0; i < restarts && (i == 0 || !stopToken.IsCancellationRequested); i++)
        {
            var r = run(i);
            double score = byValidation ? r.Summary.BestValidationLogLikelihood : r.Summary.FinalTrainLogLikelihood;
            if (chosen is null || score > chosenScore) { chosen = r; chosenScore = score; }
        }
        return chosen!.Value;
    }
}

/// <summary>The rate of a step under a decay per <c>examples</c> training examples: <c>rate · decay^⌊e / examples⌋</c>,
/// the power by repeated float multiplication (IEEE operations, the same bits on every machine, as the per-epoch
/// decay's), cached for the last exponent.</summary>
internal sealed class ExampleDecay(float decay, long examples)
{
    private long _exponent;
    private float _factor = 1f;

    /// <summary>Whether the decay is per <c>examples</c> examples (else per epoch, which the driver applies itself).</summary>
    public bool PerExamples => examples > 0 && decay != 1f;

    /// <summary>The rate of a step after <paramref name="seen"/> examples; <paramref name="rate"/> itself when the decay is per epoch.</summary>
    public float Rate(float rate, long seen)
    {
        if (!PerExamples) return rate;
        long exponent = seen / examples;
        if (exponent < _exponent) { _exponent = 0; _factor = 1f; }   // a retried epoch starts again from its first example
        for (; _exponent < exponent; _exponent++) _factor *= decay;
        return rate * _factor;
    }
}
