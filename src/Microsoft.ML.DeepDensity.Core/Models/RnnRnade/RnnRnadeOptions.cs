using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.RnnRnade;

/// <summary>Hyper-parameters of <see cref="RnnRnadeModel"/> (the training-loop settings are inherited; a training
/// example is one sequence, so <see cref="GradientTrainingOptions.BatchSize"/> counts sequences).</summary>
public sealed class RnnRnadeOptions : GradientTrainingOptions, Persistence.IModelSizeOptions
{
    /// <inheritdoc/>
    public Persistence.ModelSizePrediction PredictModelSize(int columns)
        => RnnRnadeNetwork.PredictSize(columns, HiddenUnits, Components, RecurrentUnits, ConditionHiddenBias);

    /// <summary>The default of every setting RnnRnadeOptions declares or changes (the one place they are written; the
    /// catalog's parameters and the docs refer here). Settings not listed keep the base class's defaults.</summary>
    public new static class Defaults
    {
        /// <summary>Default of <see cref="RnnRnadeOptions.HiddenUnits"/>.</summary>
        public const int HiddenUnits = 50;
        /// <summary>Default of <see cref="RnnRnadeOptions.Components"/>.</summary>
        public const int Components = 5;
        /// <summary>Default of <see cref="RnnRnadeOptions.RecurrentUnits"/>.</summary>
        public const int RecurrentUnits = 50;
        /// <summary>Default of <see cref="RnnRnadeOptions.Activation"/>.</summary>
        public const Activation Activation = Activation.Sigmoid;
        /// <summary>Default of <see cref="RnnRnadeOptions.ConditionHiddenBias"/>.</summary>
        public const bool ConditionHiddenBias = false;
        /// <summary>Default of <see cref="RnnRnadeOptions.Standardize"/>.</summary>
        public const bool Standardize = true;
        /// <summary>Default of <see cref="RnnRnadeOptions.ScaleMeanGradientBySigma"/>.</summary>
        public const bool ScaleMeanGradientBySigma = false;
        /// <summary>Default of <see cref="RnnRnadeOptions.SequencesPerBlock"/>.</summary>
        public const int SequencesPerBlock = 16;
        /// <summary>Default of <see cref="RnnRnadeOptions.FramesPerChunk"/>.</summary>
        public const int FramesPerChunk = 64;
        /// <summary>Default of <see cref="RnnRnadeOptions.TrainingWindow"/>: on one long series (docs/models/rnn-rnade.md,
        /// "Long sequences") whole sequences lost about a nat per frame to every window; 16–64 frames converged alike, and
        /// 64 is the longest of them (the gradient reaches furthest back).</summary>
        public const int TrainingWindow = 64;
        /// <summary>Default of <see cref="GradientTrainingOptions.BatchSize"/>.</summary>
        public const int BatchSize = 32;
        /// <summary>Default of <see cref="GradientTrainingOptions.MaxEpochs"/>: 0, as many epochs as make
        /// <see cref="AutomaticEpochSteps"/> optimiser steps, within [<see cref="MinAutomaticEpochs"/>,
        /// <see cref="MaxAutomaticEpochs"/>] (<see cref="EpochsFor"/>); early stopping ends the run sooner. A training
        /// example is a sequence (a window), so an epoch is few steps: one series of 40,000 frames is 20 minibatches, and the
        /// row models' fixed 100 epochs stopped it at 0.79 nats per frame where it converges to 1.06 (docs/models/rnn-rnade.md).</summary>
        public const int MaxEpochs = 0;
        /// <summary>Optimiser steps that <c>MaxEpochs</c> = 0 aims at (the synthetic series converged in 6,000–8,000).</summary>
        public const int AutomaticEpochSteps = 10_000;
        /// <summary>The fewest epochs <c>MaxEpochs</c> = 0 gives: the row models' default.</summary>
        public const int MinAutomaticEpochs = GradientTrainingOptions.Defaults.MaxEpochs;
        /// <summary>The most epochs <c>MaxEpochs</c> = 0 gives (a few sequences train for fewer steps rather than for
        /// tens of thousands of one-step epochs).</summary>
        public const int MaxAutomaticEpochs = 1000;
    }

    /// <summary>Options with every default; <see cref="GradientTrainingOptions.BatchSize"/> is <see cref="Defaults.BatchSize"/>
    /// (sequences per batch) and <see cref="GradientTrainingOptions.MaxEpochs"/> <see cref="Defaults.MaxEpochs"/> (set from
    /// the number of training sequences) rather than the row models' defaults.</summary>
    public RnnRnadeOptions()
    {
        BatchSize = Defaults.BatchSize;
        MaxEpochs = Defaults.MaxEpochs;
    }

    /// <summary>The automatic length (<see cref="EpochsFor"/>, <see cref="PatienceFor"/>), which the training loop resolves.</summary>
    private protected override AutomaticEpochRule? EpochRule => Rule;

    private static readonly AutomaticEpochRule Rule = new(Defaults.AutomaticEpochSteps, Defaults.MinAutomaticEpochs, Defaults.MaxAutomaticEpochs);

    /// <summary>The epochs a fit on <paramref name="trainingExamples"/> training sequences (windows, after the held-out
    /// split: <see cref="RnnRnadeModel.TrainingExamples(Data.SequenceBatch, RnnRnadeOptions, bool)"/>) runs at most: <c>MaxEpochs</c> when set, otherwise ⌈<see cref="Defaults.AutomaticEpochSteps"/> / steps per
    /// epoch⌉ clamped to [<see cref="Defaults.MinAutomaticEpochs"/>, <see cref="Defaults.MaxAutomaticEpochs"/>].</summary>
    public int EpochsFor(long trainingExamples) => Resolved(trainingExamples).MaxEpochs;

    /// <summary>The early-stopping patience, in epochs, of a fit on <paramref name="trainingExamples"/> training sequences
    /// (windows): <c>EarlyStoppingPatience</c> when <c>MaxEpochs</c> is set, otherwise scaled with the automatic epochs,
    /// ⌈patience × <see cref="EpochsFor"/> / <see cref="Defaults.MinAutomaticEpochs"/>⌉, so that it is the same share of
    /// the run as for the row models (10 of 100 epochs). An epoch of one long series is one or two optimiser steps, and a
    /// patience of 10 such epochs ended the daily Seattle weather (2012–2013, 12 windows) after about 100 steps at 0.88 nats
    /// per frame above an i.i.d. RNADE on 2015; scaled (100 epochs) it gained 1.36 (docs/models/rnn-rnade.md).</summary>
    public int PatienceFor(long trainingExamples) => Resolved(trainingExamples).EarlyStoppingPatience;

    /// <summary>Hidden units H of the per-frame RNADE. Default <see cref="Defaults.HiddenUnits"/>.</summary>
    public int HiddenUnits { get; set; } = Defaults.HiddenUnits;

    /// <summary>Gaussian components K per conditional of the per-frame RNADE. Default <see cref="Defaults.Components"/>.</summary>
    public int Components { get; set; } = Defaults.Components;

    /// <summary>Units of the recurrent state ĥ (sigmoid, as in the paper). Default <see cref="Defaults.RecurrentUnits"/>.</summary>
    public int RecurrentUnits { get; set; } = Defaults.RecurrentUnits;

    /// <summary>RNADE hidden non-linearity: <see cref="Numerics.Activation.Sigmoid"/> (the RNN-RNADE paper),
    /// <see cref="Numerics.Activation.Relu"/> or <see cref="Numerics.Activation.Tanh"/>. Default <see cref="Defaults.Activation"/>.</summary>
    public Activation Activation { get; set; } = Defaults.Activation;

    /// <summary>Let the recurrent state also shift the RNADE's hidden bias c (the paper's option), besides the output
    /// biases r^α, r^μ, r^σ. Default <see cref="Defaults.ConditionHiddenBias"/>.</summary>
    public bool ConditionHiddenBias { get; set; } = Defaults.ConditionHiddenBias;

    /// <summary>Standardise every frame component to zero mean and unit variance over the training frames (stored in
    /// the model; log-densities are corrected by the Jacobian, so they are densities of the raw frames). Default <see cref="Defaults.Standardize"/>.</summary>
    public bool Standardize { get; set; } = Defaults.Standardize;

    /// <summary>Multiply the mean heads' gradients by σ (RNADE's preconditioning; not the exact gradient). Default <see cref="Defaults.ScaleMeanGradientBySigma"/>.</summary>
    public bool ScaleMeanGradientBySigma { get; set; } = Defaults.ScaleMeanGradientBySigma;

    /// <summary>Sequences per block processed by one thread (fixed so that results do not depend on the thread count); a
    /// block holds its sequences' frames (inputs, recurrent states and their gradients), so training memory is bounded by
    /// the block, not the minibatch. In [1, <see cref="GradientTrainingOptions.MaxRowsPerBlock"/>]. Default <see cref="Defaults.SequencesPerBlock"/>.</summary>
    public int SequencesPerBlock { get; set; } = Defaults.SequencesPerBlock;

    /// <summary>Frames per RNADE pass inside a block (all time steps of the block's sequences are batched). In
    /// [1, <see cref="GradientTrainingOptions.MaxRowsPerBlock"/>]. Default <see cref="Defaults.FramesPerChunk"/>.</summary>
    public int FramesPerChunk { get; set; } = Defaults.FramesPerChunk;

    /// <summary>Frames per training window (truncated back-propagation through time): a training sequence longer than
    /// this is cut into consecutive windows of at most this many frames, as even as possible, and each window is a
    /// training example of its own, started from the model's initial state. A single long series then gives many
    /// examples (minibatches, several steps an epoch, a held-out split) rather than one. 0 trains whole sequences.
    /// Validation sequences and scoring always run whole sequences. Default <see cref="Defaults.TrainingWindow"/>.</summary>
    public int TrainingWindow { get; set; } = Defaults.TrainingWindow;

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        // The limits of a model file (RNADE's): beyond them a fit would train to the end and fail its loadability check.
        Check(HiddenUnits >= 1 && HiddenUnits <= RnadeOptions.MaxHiddenUnits, nameof(HiddenUnits), HiddenUnits, FormattableString.Invariant($"must be in [1, {RnadeOptions.MaxHiddenUnits}]"));
        Check(Components >= 1 && Components <= RnadeOptions.MaxComponents, nameof(Components), Components, FormattableString.Invariant($"must be in [1, {RnadeOptions.MaxComponents}]"));
        Check(RecurrentUnits >= 1 && RecurrentUnits <= RnadeOptions.MaxHiddenUnits, nameof(RecurrentUnits), RecurrentUnits, FormattableString.Invariant($"must be in [1, {RnadeOptions.MaxHiddenUnits}]"));
        Check(Activation is Activation.Relu or Activation.Sigmoid or Activation.Tanh, nameof(Activation), Activation, "must be Relu, Sigmoid or Tanh");
        Check(SequencesPerBlock >= 1 && SequencesPerBlock <= MaxRowsPerBlock, nameof(SequencesPerBlock), SequencesPerBlock, FormattableString.Invariant($"must be in [1, {MaxRowsPerBlock}]"));
        Check(FramesPerChunk >= 1 && FramesPerChunk <= MaxRowsPerBlock, nameof(FramesPerChunk), FramesPerChunk, FormattableString.Invariant($"must be in [1, {MaxRowsPerBlock}]"));
        Check(TrainingWindow >= 0, nameof(TrainingWindow), TrainingWindow, "must be 0 (whole sequences) or a positive number of frames");
    }
}
