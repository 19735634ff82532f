namespace Microsoft.ML.DeepDensity.Training;

/// <summary>
/// Hyper-parameters of the shared minibatch training loop. Each gradient-trained model's options class derives
/// from this, so one options object holds everything (scikit-learn style). Defaults are stated per property.
/// </summary>
public class GradientTrainingOptions
{
    /// <summary>The default of every setting GradientTrainingOptions declares or changes (the one place they are written; the
    /// catalog's parameters and the docs refer here).</summary>
    public static class Defaults
    {
        /// <summary>Default of <see cref="GradientTrainingOptions.MaxEpochs"/>.</summary>
        public const int MaxEpochs = 100;
        /// <summary>Default of <see cref="GradientTrainingOptions.BatchSize"/>.</summary>
        public const int BatchSize = 100;
        /// <summary>Default of <see cref="GradientTrainingOptions.Optimizer"/>.</summary>
        public const OptimizerKind Optimizer = OptimizerKind.Adam;
        /// <summary>Default of <see cref="GradientTrainingOptions.LearningRate"/>.</summary>
        public const float LearningRate = 1e-3f;
        /// <summary>Default of <see cref="GradientTrainingOptions.LearningRateDecay"/>.</summary>
        public const float LearningRateDecay = 1f;
        /// <summary>Default of <see cref="GradientTrainingOptions.LearningRateDecayExamples"/>.</summary>
        public const long LearningRateDecayExamples = 0;
        /// <summary>Default of <see cref="GradientTrainingOptions.Momentum"/>.</summary>
        public const float Momentum = 0.9f;
        /// <summary>Default of <see cref="GradientTrainingOptions.AdamBeta1"/>.</summary>
        public const float AdamBeta1 = 0.9f;
        /// <summary>Default of <see cref="GradientTrainingOptions.AdamBeta2"/>.</summary>
        public const float AdamBeta2 = 0.999f;
        /// <summary>Default of <see cref="GradientTrainingOptions.AdamEpsilon"/>.</summary>
        public const float AdamEpsilon = 1e-8f;
        /// <summary>Default of <see cref="GradientTrainingOptions.WeightDecay"/>.</summary>
        public const float WeightDecay = 0f;
        /// <summary>Default of <see cref="GradientTrainingOptions.GradientClipNorm"/>.</summary>
        public const float GradientClipNorm = 10f;
        /// <summary>Default of <see cref="GradientTrainingOptions.ValidationFraction"/>.</summary>
        public const double ValidationFraction = 0.1;
        /// <summary>Default of <see cref="GradientTrainingOptions.EarlyStoppingPatience"/>.</summary>
        public const int EarlyStoppingPatience = 10;
        /// <summary>Default of <see cref="GradientTrainingOptions.Seed"/>.</summary>
        public const ulong Seed = 1;
        /// <summary>Default of <see cref="GradientTrainingOptions.MaxDivergenceRecoveries"/>.</summary>
        public const int MaxDivergenceRecoveries = 3;
    }

    /// <summary>Maximum passes over the training data. Default <see cref="Defaults.MaxEpochs"/>.</summary>
    public int MaxEpochs { get; set; } = Defaults.MaxEpochs;

    /// <summary>Rows per minibatch (Deep RNADE: 0, its default, sets it from the training rows,
    /// <see cref="Models.Rnade.DeepRnadeOptions.BatchSizeFor"/>). Default <see cref="Defaults.BatchSize"/>.</summary>
    public int BatchSize { get; set; } = Defaults.BatchSize;

    /// <summary>Optimiser. Default <see cref="Defaults.Optimizer"/>.</summary>
    public OptimizerKind Optimizer { get; set; } = Defaults.Optimizer;

    /// <summary>Initial learning rate. Default <see cref="Defaults.LearningRate"/>.</summary>
    public float LearningRate { get; set; } = Defaults.LearningRate;

    /// <summary>Multiplicative learning-rate decay applied after every epoch (1 = constant), or after every
    /// <see cref="LearningRateDecayExamples"/> training examples when that is set. Default <see cref="Defaults.LearningRateDecay"/>.</summary>
    public float LearningRateDecay { get; set; } = Defaults.LearningRateDecay;

    /// <summary>Training examples per application of <see cref="LearningRateDecay"/> (0 = once per epoch). A step's rate is
    /// <c>LearningRate · LearningRateDecay^⌊e / LearningRateDecayExamples⌋</c> for the e examples the run has trained on
    /// before it, so the schedule follows the amount of training rather than the size of an epoch: a small data set keeps
    /// its rate for many epochs, a large one decays within its first. Default <see cref="Defaults.LearningRateDecayExamples"/>.</summary>
    public long LearningRateDecayExamples { get; set; } = Defaults.LearningRateDecayExamples;

    /// <summary>Momentum of <see cref="OptimizerKind.SgdMomentum"/>. Default <see cref="Defaults.Momentum"/>.</summary>
    public float Momentum { get; set; } = Defaults.Momentum;

    /// <summary>Adam β₁. Default <see cref="Defaults.AdamBeta1"/>.</summary>
    public float AdamBeta1 { get; set; } = Defaults.AdamBeta1;
    /// <summary>Adam β₂. Default <see cref="Defaults.AdamBeta2"/>.</summary>
    public float AdamBeta2 { get; set; } = Defaults.AdamBeta2;
    /// <summary>Adam ε. Default <see cref="Defaults.AdamEpsilon"/>.</summary>
    public float AdamEpsilon { get; set; } = Defaults.AdamEpsilon;

    /// <summary>L2 weight decay added to the gradient. Default <see cref="Defaults.WeightDecay"/>.</summary>
    public float WeightDecay { get; set; } = Defaults.WeightDecay;

    /// <summary>Clip the global gradient norm to this value (0 = no clipping; must be finite). Default <see cref="Defaults.GradientClipNorm"/>.</summary>
    public float GradientClipNorm { get; set; } = Defaults.GradientClipNorm;

    /// <summary>Fraction of the training rows held out for early stopping when no validation set is given (0 = none); a
    /// validation set passed to <c>Fit</c> is used as it is and this is ignored. In memory, ⌊n · fraction⌋ of the n rows
    /// (chosen by a shuffle seeded by <see cref="Seed"/>) are held out; when that is 0 (fewer than 1 / fraction rows) no row
    /// is held out, all rows train and there is no validation (null validation figures, no early stopping), and a single
    /// held-out row is a validation set of one row. A stream holds out each row with this probability by a seeded hash of
    /// its position, so a few-row stream may hold out none (then likewise no validation) or more than the fraction, and
    /// a stream all of whose rows are held out is refused. Default <see cref="Defaults.ValidationFraction"/>.</summary>
    public double ValidationFraction { get; set; } = Defaults.ValidationFraction;

    /// <summary>Stop after this many epochs without a better validation log-likelihood (0 = never stop early). With a
    /// validation set the parameters of the best validation epoch are returned whether or not the run stops early (0
    /// included), except for the RBM, whose validation score is a proxy: it returns its last epoch unless early stopping is
    /// on (<see cref="TrainingSummary.BestEpoch"/> says which). Without validation, the last epoch. Default <see cref="Defaults.EarlyStoppingPatience"/>.</summary>
    public int EarlyStoppingPatience { get; set; } = Defaults.EarlyStoppingPatience;

    /// <summary>Seed of every random choice (initialisation, shuffling, splits, noise). Default <see cref="Defaults.Seed"/>.</summary>
    public ulong Seed { get; set; } = Defaults.Seed;

    /// <summary>How many times in a row one epoch may be retried after a non-finite loss (restore the last good state, halve
    /// the learning rate). When the retries are used up, training stops: with <see cref="TrainingDivergedException"/> if
    /// no epoch had completed, else keeping the completed epochs (<see cref="TrainingSummary.StoppedByDivergence"/>).
    /// Default <see cref="Defaults.MaxDivergenceRecoveries"/>.</summary>
    public int MaxDivergenceRecoveries { get; set; } = Defaults.MaxDivergenceRecoveries;

    /// <summary>
    /// Ends training early but keeps the result (unlike the cancellation token of <c>Fit</c>, which abandons it): when
    /// signalled, training stops at the next minibatch or epoch boundary as if <c>MaxEpochs</c> had been reached, a
    /// partly done epoch is discarded, and the best parameters so far are returned (e.g. a command-line tool's first
    /// Ctrl+C). Not part of the model; never saved. Default none.
    /// </summary>
    public CancellationToken StopToken { get; set; }

    /// <summary>Upper bound on a model's training block setting (<c>RowsPerBlock</c>: rows one thread processes with its
    /// own buffers), 65,536: each block allocates activations for that many rows, and beyond a few hundred rows a block
    /// gains no speed.</summary>
    public const int MaxRowsPerBlock = 1 << 16;

    /// <summary>Whether the model accepts <c>MaxEpochs</c> = 0, meaning a number of epochs it sets from the amount of
    /// training data: by default, whether it declares an <see cref="EpochRule"/> that
    /// <see cref="TrainingLoop"/> resolves (RNN-RNADE, <see cref="Models.RnnRnade.RnnRnadeOptions.EpochsFor"/>; IWAE and
    /// NVIL, <see cref="Estimation.ImportanceSampledOptions.EpochsFor"/>); the RBM, whose own trainer sets its length
    /// (<see cref="Models.Rbm.RbmOptions.EpochsFor"/>), says so itself.</summary>
    protected virtual bool AutomaticEpochs => EpochRule is not null;

    /// <summary>Whether the model accepts <c>BatchSize</c> = 0, meaning a minibatch size it sets from the amount of
    /// training data: by default, whether it declares a <see cref="BatchRule"/> (Deep RNADE's,
    /// <see cref="Models.Rnade.DeepRnadeOptions.BatchSizeFor"/>).</summary>
    protected virtual bool AutomaticBatchSize => BatchRule is not null;

    /// <summary>Whether the model accepts <c>LearningRate</c> = 0, meaning a rate it chooses itself (the RBM's, by the
    /// kind of its visible units: <see cref="Models.Rbm.RbmOptions.LearningRateFor"/>).</summary>
    protected virtual bool AutomaticLearningRate => false;

    /// <summary>The automatic length of a model whose <c>MaxEpochs</c> = 0 aims at <see cref="TargetSteps"/> optimiser
    /// steps (RNN-RNADE, IWAE, NVIL): ⌈TargetSteps / steps per epoch⌉ clamped to [<see cref="MinEpochs"/>,
    /// <see cref="MaxEpochs"/>], with the early-stopping patience scaled alike; a stream of unknown length (large data)
    /// runs <see cref="MinEpochs"/> with the patience as set.</summary>
    private protected readonly record struct AutomaticEpochRule(int TargetSteps, int MinEpochs, int MaxEpochs);

    /// <summary>The automatic minibatch of a model whose <c>BatchSize</c> = 0 aims at <see cref="StepsPerEpoch"/>
    /// optimiser steps an epoch (Deep RNADE): ⌈examples / StepsPerEpoch⌉ clamped to [<see cref="MinBatchSize"/>,
    /// <see cref="MaxBatchSize"/>]; a stream of unknown length (large data) trains at <see cref="MaxBatchSize"/>.</summary>
    private protected readonly record struct AutomaticBatchRule(int StepsPerEpoch, int MinBatchSize, int MaxBatchSize);

    /// <summary>The rule <c>MaxEpochs</c> = 0 follows in <see cref="Resolved"/>; null (the default): no automatic length
    /// there. An options class states its rule here and nothing else: the loop applies it.</summary>
    private protected virtual AutomaticEpochRule? EpochRule => null;

    /// <summary>The rule <c>BatchSize</c> = 0 follows in <see cref="Resolved"/>; null (the default): no automatic batch.</summary>
    private protected virtual AutomaticBatchRule? BatchRule => null;

    /// <summary>
    /// These options with their automatic settings resolved for a fit on <paramref name="trainingExamples"/> training
    /// examples (rows, or RNN-RNADE's sequences and windows, after the held-out split; null: a stream of unknown length):
    /// <c>BatchSize</c> by <see cref="BatchRule"/>, then <c>MaxEpochs</c> and <c>EarlyStoppingPatience</c> by
    /// <see cref="EpochRule"/> (at the resolved batch). The one resolution of every options class:
    /// <see cref="TrainingLoop"/>.Run applies it to the options it is given, with the count its training source knows
    /// (<see cref="ITrainingSource.KnownCount"/>), so no model has to remember it.
    /// </summary>
    /// <returns>A copy with the resolved values, or these options themselves when nothing changes (no rule, or every
    /// automatic setting already set): resolving resolved options returns them as they are, whatever the count. The
    /// caller's options are never changed, so what it reads after training (e.g. <c>MaxEpochs</c> = 0) is what it set.</returns>
    internal GradientTrainingOptions Resolved(long? trainingExamples)
    {
        int batch = BatchSize, epochs = MaxEpochs, patience = EarlyStoppingPatience;
        if (BatchRule is { } batchRule)
            batch = trainingExamples is long rows ? BatchSizeFor(rows, batchRule) : BatchSize > 0 ? BatchSize : batchRule.MaxBatchSize;
        if (EpochRule is { } epochRule)
        {
            if (trainingExamples is long n)
            {
                epochs = EpochsFor(n, epochRule, batch);
                patience = PatienceFor(epochs, epochRule);
            }
            else epochs = MaxEpochs > 0 ? MaxEpochs : epochRule.MinEpochs;   // large data: the fewest epochs, the patience as set
        }
        if (batch == BatchSize && epochs == MaxEpochs && patience == EarlyStoppingPatience) return this;
        var copy = (GradientTrainingOptions)MemberwiseClone();
        copy.BatchSize = batch;
        copy.MaxEpochs = epochs;
        copy.EarlyStoppingPatience = patience;
        return copy;
    }

    /// <summary>The rule's minibatch for <paramref name="trainingExamples"/> examples: <c>BatchSize</c> when set, otherwise
    /// ⌈examples / steps per epoch⌉ clamped to the rule's bounds, so data of steps per epoch × the largest batch or more
    /// trains at the largest, and a smaller table takes as many steps an epoch as that would, down to the smallest batch
    /// (the counterpart of the epoch rule, which adds epochs instead).</summary>
    private int BatchSizeFor(long trainingExamples, AutomaticBatchRule rule)
    {
        if (BatchSize > 0) return BatchSize;
        long batch = (Math.Max(1, trainingExamples) + rule.StepsPerEpoch - 1) / rule.StepsPerEpoch;
        return (int)Math.Clamp(batch, rule.MinBatchSize, rule.MaxBatchSize);
    }

    /// <summary>The rule's most epochs: <c>MaxEpochs</c> when set, otherwise ⌈target steps / steps per epoch⌉ at
    /// <paramref name="batchSize"/>, clamped to the rule's bounds.</summary>
    private int EpochsFor(long trainingExamples, AutomaticEpochRule rule, int batchSize)
    {
        if (MaxEpochs > 0) return MaxEpochs;
        long stepsPerEpoch = (Math.Max(1, trainingExamples) + batchSize - 1) / batchSize;
        return (int)Math.Clamp((rule.TargetSteps + stepsPerEpoch - 1) / stepsPerEpoch, rule.MinEpochs, rule.MaxEpochs);
    }

    /// <summary>The patience that goes with <paramref name="epochs"/>: <c>EarlyStoppingPatience</c> when <c>MaxEpochs</c>
    /// is set (or patience is 0), otherwise ⌈patience × epochs / the rule's fewest epochs⌉, the same share of the run as
    /// 10 of the row models' 100 epochs.</summary>
    private int PatienceFor(int epochs, AutomaticEpochRule rule)
    {
        if (MaxEpochs > 0 || EarlyStoppingPatience == 0) return EarlyStoppingPatience;
        long scaled = ((long)EarlyStoppingPatience * epochs + rule.MinEpochs - 1) / rule.MinEpochs;
        return (int)Math.Min(Math.Max(scaled, EarlyStoppingPatience), int.MaxValue);
    }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid setting.</summary>
    public virtual void Validate()
    {
        if (AutomaticEpochs) Check(MaxEpochs >= 0, nameof(MaxEpochs), MaxEpochs, "must be non-negative (0: set from the amount of training data)");
        else Check(MaxEpochs >= 1, nameof(MaxEpochs), MaxEpochs, "must be at least 1");
        if (AutomaticBatchSize) Check(BatchSize >= 0, nameof(BatchSize), BatchSize, "must be non-negative (0: set from the amount of training data)");
        else Check(BatchSize >= 1, nameof(BatchSize), BatchSize, "must be at least 1");
        Check(Enum.IsDefined(Optimizer), nameof(Optimizer), Optimizer, "must be Adam or SgdMomentum");
        if (AutomaticLearningRate) Check(LearningRate >= 0 && float.IsFinite(LearningRate), nameof(LearningRate), LearningRate, "must be non-negative and finite (0: set by the model)");
        else Check(LearningRate > 0 && float.IsFinite(LearningRate), nameof(LearningRate), LearningRate, "must be positive and finite");
        Check(LearningRateDecay > 0 && LearningRateDecay <= 1, nameof(LearningRateDecay), LearningRateDecay, "must be in (0, 1]");
        Check(LearningRateDecayExamples >= 0, nameof(LearningRateDecayExamples), LearningRateDecayExamples, "must be non-negative (0: decay once per epoch)");
        Check(Momentum >= 0 && Momentum < 1, nameof(Momentum), Momentum, "must be in [0, 1)");
        Check(AdamBeta1 >= 0 && AdamBeta1 < 1, nameof(AdamBeta1), AdamBeta1, "must be in [0, 1)");
        Check(AdamBeta2 >= 0 && AdamBeta2 < 1, nameof(AdamBeta2), AdamBeta2, "must be in [0, 1)");
        Check(AdamEpsilon > 0 && float.IsFinite(AdamEpsilon), nameof(AdamEpsilon), AdamEpsilon, "must be positive and finite (an infinite ε makes every Adam step zero)");
        Check(WeightDecay >= 0 && float.IsFinite(WeightDecay), nameof(WeightDecay), WeightDecay, "must be non-negative and finite");
        Check(GradientClipNorm >= 0 && float.IsFinite(GradientClipNorm), nameof(GradientClipNorm), GradientClipNorm, "must be non-negative and finite (0 = no clipping)");
        Check(ValidationFraction >= 0 && ValidationFraction < 1, nameof(ValidationFraction), ValidationFraction, "must be in [0, 1)");
        Check(EarlyStoppingPatience >= 0, nameof(EarlyStoppingPatience), EarlyStoppingPatience, "must be non-negative");
        Check(MaxDivergenceRecoveries >= 0, nameof(MaxDivergenceRecoveries), MaxDivergenceRecoveries, "must be non-negative");
    }

    /// <summary>Helper for <see cref="Validate"/> overrides.</summary>
    protected static void Check(bool ok, string name, object? value, string rule)
    {
        if (!ok) throw OptionText.OutOfRange(name, value, rule);
    }
}

/// <summary>One progress report of a training run (per epoch or per EM iteration).</summary>
/// <param name="Epoch">Number of the step reported, counted in <paramref name="Unit"/>s.</param>
/// <param name="TrainLogLikelihood">The training figure of the step, per example, in nats, higher is better: the
/// average log-likelihood for the exact models, the model's own bound or proxy otherwise (see its options); NaN when
/// not computed (e.g. the report of a stop).</param>
/// <param name="ValidationLogLikelihood">The same figure on the validation data; null without validation data.</param>
/// <param name="ExamplesPerSecond">Training throughput of the step: examples processed per wall-clock second.</param>
/// <param name="Elapsed">Wall-clock time since training began.</param>
/// <param name="LearningRate">Step size of a gradient trainer; 0 for trainers without one (EM), and then not printed.</param>
/// <param name="Note">A remark of the trainer on this step (e.g. why training stopped), or null.</param>
/// <param name="Metrics">Extra model-specific figures by name, or null.</param>
/// <param name="Unit">What one step is: "epoch" (a pass of a gradient trainer over the data, the default), or e.g.
/// "EM iteration" and "pretraining EM iteration" (Deep GMM: an E-step plus an M-step of the model, or of the
/// top-layer GMM it is initialised from).</param>
public sealed record TrainingProgress(
    int Epoch,
    double TrainLogLikelihood,
    double? ValidationLogLikelihood,
    double ExamplesPerSecond,
    TimeSpan Elapsed,
    float LearningRate,
    string? Note = null,
    IReadOnlyDictionary<string, double>? Metrics = null,
    string Unit = "epoch")
{
    /// <inheritdoc />
    public override string ToString()
        => FormattableString.Invariant($"{Unit} {Epoch,4}  train {TrainLogLikelihood,10:F4}  valid {(ValidationLogLikelihood is double v ? v.ToString("F4", System.Globalization.CultureInfo.InvariantCulture) : "-"),10}  ") +
           FormattableString.Invariant($"{ExamplesPerSecond,10:F0} ex/s  {Elapsed.TotalSeconds,7:F1} s") + (LearningRate != 0 ? FormattableString.Invariant($"  lr {LearningRate:G3}") : "") +
           (Metrics is null ? "" : "  " + string.Join("  ", Metrics.Select(kv => FormattableString.Invariant($"{kv.Key} {kv.Value:G4}")))) +
           (Note is null ? "" : "  " + Note);
}

/// <summary>What a training run did.</summary>
/// <param name="EpochsRun">Number of entries in <paramref name="History"/>: the completed steps (epochs, or EM
/// iterations: see <see cref="TrainingProgress.Unit"/>), plus one for the report of a divergence that ended the run.</param>
/// <param name="BestEpoch">The step whose model was kept, numbered as <see cref="TrainingProgress.Epoch"/> in
/// <paramref name="History"/>: the best by validation when that model was restored (every family with a validation set,
/// whatever <see cref="GradientTrainingOptions.EarlyStoppingPatience"/>; the RBM only with early stopping on), else the
/// last completed step; 0 when no step completed.</param>
/// <param name="BestValidationLogLikelihood">The best early-stopping score (validation log-likelihood per example, or
/// the model's own score); −∞ when none was computed. It is the score of <paramref name="BestEpoch"/> except when the
/// last step was kept instead (an RBM without early stopping), where it is still the best score seen.</param>
/// <param name="FinalTrainLogLikelihood">Training figure of the last completed step (see
/// <see cref="TrainingProgress.TrainLogLikelihood"/>).</param>
/// <param name="StoppedEarly">Training stopped because the validation score did not improve for
/// <see cref="GradientTrainingOptions.EarlyStoppingPatience"/> steps.</param>
/// <param name="DivergenceRecoveries">How many times a diverged step was undone and retried at a halved learning rate.</param>
/// <param name="History">The per-step reports of the run, in order, and the report of a divergence that ended it. The
/// progress callback also receives reports that are not kept here: a divergence retried at a halved learning rate
/// (<see cref="DivergenceRecoveries"/> counts them), and Deep GMM's pretraining iterations and other initialisations
/// (this is the summary of the chosen initialisation's run).</param>
public sealed record TrainingSummary(
    int EpochsRun,
    int BestEpoch,
    double BestValidationLogLikelihood,
    double FinalTrainLogLikelihood,
    bool StoppedEarly,
    int DivergenceRecoveries,
    IReadOnlyList<TrainingProgress> History)
{
    /// <summary>The run ended because the model converged (Deep GMM's EM: the training log-likelihood gained less than
    /// <c>Tolerance</c> in an iteration) before its last allowed step.</summary>
    public bool Converged { get; init; }

    /// <summary>The run ended early because <see cref="GradientTrainingOptions.StopToken"/> (or the Deep GMM's) was
    /// signalled: the model is the best (or, for the RBM without early stopping, the last) of the steps completed before
    /// it. When none of <see cref="StoppedEarly"/>, <see cref="Converged"/>, <see cref="StoppedByRequest"/> and
    /// <see cref="StoppedByDivergence"/> is set, the run used all its steps (<c>MaxEpochs</c>, <c>MaxIterations</c>). A
    /// cancelled run (the cancellation token of <c>Fit</c>) has no summary: it throws <see cref="OperationCanceledException"/>.</summary>
    public bool StoppedByRequest { get; init; }

    /// <summary>The run ended because an epoch diverged and did not recover within
    /// <see cref="GradientTrainingOptions.MaxDivergenceRecoveries"/> retries; the model is the one of the epochs before it
    /// (the best on validation when validating). The last entry of <see cref="History"/> says where.</summary>
    public bool StoppedByDivergence { get; init; }
}

/// <summary>Training produced non-finite values and could not recover.</summary>
public sealed class TrainingDivergedException : InvalidOperationException
{
    /// <summary>Training diverged, as described by <paramref name="message"/> (which epoch, and what to change).</summary>
    public TrainingDivergedException(string message) : base(message) { }
}
