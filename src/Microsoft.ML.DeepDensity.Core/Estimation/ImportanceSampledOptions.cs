using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Estimation;

/// <summary>
/// Training-loop settings plus the settings of the importance-sampled log-density estimate (<see cref="ImportanceSampler"/>)
/// that IWAE and NVIL report: written once here, so both models share the same defaults, bounds and checks.
/// </summary>
public abstract class ImportanceSampledOptions : GradientTrainingOptions
{
    /// <summary>The default of every setting ImportanceSampledOptions declares or changes (the one place they are written; the
    /// catalog's parameters and the docs refer here). Settings not listed keep the base class's defaults.</summary>
    public new static class Defaults
    {
        /// <summary>Default of <see cref="ImportanceSampledOptions.EvaluationSamples"/>.</summary>
        public const int EvaluationSamples = 1000;
        /// <summary>Default of <see cref="ImportanceSampledOptions.EvaluationSamplesPerChunk"/>.</summary>
        public const int EvaluationSamplesPerChunk = 100;
        /// <summary>Default of <see cref="ImportanceSampledOptions.EvaluationSeed"/>.</summary>
        public const ulong EvaluationSeed = 0x1DAE;
        /// <summary>Default of <see cref="GradientTrainingOptions.MaxEpochs"/>: 0, the row models' 100 epochs on 10,000 rows
        /// or more (at the default batch), and on fewer as many as make <see cref="AutomaticEpochSteps"/> optimiser steps,
        /// up to <see cref="MaxAutomaticEpochs"/> (<see cref="EpochsFor"/>), with the early-stopping patience scaled
        /// alike (<see cref="PatienceFor"/>). A fixed 100 epochs of a small table is a hundred or so steps: a Gaussian
        /// IWAE stopped after 28–54 epochs on tables of 90–876 rows and lost to one full-covariance Gaussian on three of
        /// four; with the automatic epochs it beats it on all four (docs/models/iwae.md).</summary>
        public const int MaxEpochs = 0;
        /// <summary>Optimiser steps that <c>MaxEpochs</c> = 0 aims at.</summary>
        public const int AutomaticEpochSteps = 10_000;
        /// <summary>The fewest epochs <c>MaxEpochs</c> = 0 gives: the row models' default.</summary>
        public const int MinAutomaticEpochs = GradientTrainingOptions.Defaults.MaxEpochs;
        /// <summary>The most epochs <c>MaxEpochs</c> = 0 gives (one step an epoch: a table of up to a batch of rows).</summary>
        public const int MaxAutomaticEpochs = 10_000;
    }

    /// <summary>Options with every default; <see cref="GradientTrainingOptions.MaxEpochs"/> is <see cref="Defaults.MaxEpochs"/>
    /// (set from the number of training rows).</summary>
    protected ImportanceSampledOptions() => MaxEpochs = Defaults.MaxEpochs;

    /// <summary>The automatic length (<see cref="EpochsFor"/>, <see cref="PatienceFor"/>), which the training loop resolves.</summary>
    private protected override AutomaticEpochRule? EpochRule => Rule;

    private static readonly AutomaticEpochRule Rule = new(Defaults.AutomaticEpochSteps, Defaults.MinAutomaticEpochs, Defaults.MaxAutomaticEpochs);

    /// <summary>The epochs a fit on <paramref name="trainingRows"/> training rows (after the held-out split) runs at most:
    /// <c>MaxEpochs</c> when set, otherwise ⌈<see cref="Defaults.AutomaticEpochSteps"/> / steps per epoch⌉ clamped to
    /// [<see cref="Defaults.MinAutomaticEpochs"/>, <see cref="Defaults.MaxAutomaticEpochs"/>]: 100 from 100 steps an epoch
    /// on (10,000 rows at batch 100), so large data trains as with a fixed 100.</summary>
    public int EpochsFor(long trainingRows) => Resolved(trainingRows).MaxEpochs;

    /// <summary>The early-stopping patience, in epochs, of a fit on <paramref name="trainingRows"/> training rows:
    /// <c>EarlyStoppingPatience</c> when <c>MaxEpochs</c> is set (or patience is 0), otherwise scaled with the automatic
    /// epochs, ⌈patience × <see cref="EpochsFor"/> / <see cref="Defaults.MinAutomaticEpochs"/>⌉ (10 of 100 epochs
    /// stays the same share of the run: 1,000 epochs of patience for a table of one batch).</summary>
    public int PatienceFor(long trainingRows) => Resolved(trainingRows).EarlyStoppingPatience;

    /// <summary>Importance samples K of the log-density estimate the trained model reports. Default <see cref="Defaults.EvaluationSamples"/>.</summary>
    public int EvaluationSamples { get; set; } = Defaults.EvaluationSamples;

    /// <summary>Samples per row processed in one pass when estimating log-densities (bounds memory). A row's noise is
    /// drawn chunk by chunk, so another value is another draw of the estimate, as another <see cref="EvaluationSeed"/> is:
    /// the same K and as good an estimate, but not the same values (it is saved with the model, so a saved model scores as
    /// it did). Default <see cref="Defaults.EvaluationSamplesPerChunk"/>.</summary>
    public int EvaluationSamplesPerChunk { get; set; } = Defaults.EvaluationSamplesPerChunk;

    /// <summary>Seed of the log-density estimate's noise (stored in the model). Default <see cref="Defaults.EvaluationSeed"/>.</summary>
    public ulong EvaluationSeed { get; set; } = Defaults.EvaluationSeed;

    /// <summary>Most columns an IWAE or NVIL model file holds (2^24; its reader's bound, and the file-size check's before
    /// a network is allocated).</summary>
    public const int MaxDimension = 1 << 24;
    /// <summary>Upper bound on <see cref="EvaluationSamples"/> (also enforced when loading a file).</summary>
    public const int MaxEvaluationSamples = 1_000_000;
    /// <summary>Upper bound on <see cref="EvaluationSamplesPerChunk"/> (bounds scoring memory; also enforced when loading).</summary>
    public const int MaxEvaluationSamplesPerChunk = 100_000;
    /// <summary>
    /// Upper bound on the scoring scratch of one pass, in floats: the setting
    /// <see cref="DeepDensityEnvironment.MaxScoringScratchFloats"/> (default 2^26 = 256 MiB).
    /// <see cref="EvaluationSamplesPerChunk"/> × the network's activations per sample must not exceed it. Checked before
    /// training, when the evaluation settings are changed on a trained model and when a file is loaded (a small file with
    /// wide layers and a large chunk would otherwise ask for gigabytes per row); lower the chunk to stay under it, or raise
    /// the setting for a legitimately wide model. Passes over several rows are sized under it too.
    /// </summary>
    public static long MaxEvaluationScratchFloats => DeepDensityEnvironment.MaxScoringScratchFloats;

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        Check(EvaluationSamples >= 1 && EvaluationSamples <= MaxEvaluationSamples, nameof(EvaluationSamples), EvaluationSamples, FormattableString.Invariant($"must be in [1, {MaxEvaluationSamples}]"));
        Check(EvaluationSamplesPerChunk >= 1 && EvaluationSamplesPerChunk <= MaxEvaluationSamplesPerChunk, nameof(EvaluationSamplesPerChunk), EvaluationSamplesPerChunk, FormattableString.Invariant($"must be in [1, {MaxEvaluationSamplesPerChunk}]"));
    }
}
