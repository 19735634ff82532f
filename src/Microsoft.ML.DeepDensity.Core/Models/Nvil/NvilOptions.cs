using Microsoft.ML.DeepDensity.Estimation;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.Nvil;

/// <summary>Hyper-parameters of <see cref="NvilModel"/> (the training-loop settings are inherited).</summary>
/// <remarks>
/// Defaults follow Mnih &amp; Gregor (2014): a sigmoid belief network with one layer of 200 binary latents, an inference
/// network of sigmoid layers mirroring it, an input-dependent baseline with one hidden layer of 100 tanh units, running
/// signal statistics with α = 0.8 and variance normalisation. Two latent layers are <c>LatentDimensions = {200, 200}</c>.
/// Setting <see cref="InputDependentBaseline"/>, <see cref="CenterSignal"/> and <see cref="NormalizeSignal"/> all to
/// false gives plain REINFORCE (the ablation the paper compares against).
/// </remarks>
public sealed class NvilOptions : ImportanceSampledOptions, Persistence.IModelSizeOptions
{
    /// <inheritdoc/>
    public Persistence.ModelSizePrediction PredictModelSize(int columns) => NvilNetwork.PredictSize(columns, LatentDimensions);

    /// <summary>The default of every setting NvilOptions declares or changes (the one place they are written; the
    /// catalog's parameters and the docs refer here). Settings not listed keep the base class's defaults.</summary>
    public new static class Defaults
    {
        /// <summary>Default of <see cref="NvilOptions.LatentDimensions"/>.</summary>
        public static int[] LatentDimensions => new int[] { 200 };
        /// <summary>Default of <see cref="NvilOptions.SamplesPerExample"/>.</summary>
        public const int SamplesPerExample = 1;
        /// <summary>Default of <see cref="NvilOptions.InputDependentBaseline"/>.</summary>
        public const bool InputDependentBaseline = true;
        /// <summary>Default of <see cref="NvilOptions.BaselineHiddenUnits"/>.</summary>
        public const int BaselineHiddenUnits = 100;
        /// <summary>Default of <see cref="NvilOptions.CenterSignal"/>.</summary>
        public const bool CenterSignal = true;
        /// <summary>Default of <see cref="NvilOptions.NormalizeSignal"/>.</summary>
        public const bool NormalizeSignal = true;
        /// <summary>Default of <see cref="NvilOptions.SignalSmoothing"/>.</summary>
        public const double SignalSmoothing = 0.8;
        /// <summary>Default of <see cref="NvilOptions.LocalLearningSignals"/>.</summary>
        public const bool LocalLearningSignals = true;
        /// <summary>Default of <see cref="NvilOptions.RowsPerBlock"/>.</summary>
        public const int RowsPerBlock = 50;
        /// <summary>Default of <see cref="NvilOptions.InitializeOutputBiasFromData"/>.</summary>
        public const bool InitializeOutputBiasFromData = true;
        /// <summary>Default of <see cref="GradientTrainingOptions.GradientClipNorm"/>.</summary>
        public const float GradientClipNorm = 0f;
        /// <summary>Default of <see cref="GradientTrainingOptions.EarlyStoppingPatience"/>.</summary>
        public const int EarlyStoppingPatience = 20;
    }

    /// <summary>Creates the defaults: no gradient clipping (the signal normalisation bounds the step), a larger patience
    /// because the validation bound is itself noisy. The learning rate is the loop's (Adam at 1e-3): the former 3e-4,
    /// chosen because score-function gradients are noisy, scored 3.7 nats less on binarized Fashion-MNIST in the default
    /// 100 epochs, beyond the spread of the seeds (the <c>latent-defaults</c> benchmark; docs/models/nvil.md, "Defaults").</summary>
    public NvilOptions()
    {
        GradientClipNorm = Defaults.GradientClipNorm;
        EarlyStoppingPatience = Defaults.EarlyStoppingPatience;
    }

    /// <summary>Sizes of the binary latent layers h₁, …, h_L, nearest the data first (one or more). Default <see cref="Defaults.LatentDimensions"/>.</summary>
    public int[] LatentDimensions { get; set; } = Defaults.LatentDimensions;

    /// <summary>Samples h ~ q(h | x) per training row per step (their gradients are averaged). Default <see cref="Defaults.SamplesPerExample"/>.</summary>
    public int SamplesPerExample { get; set; } = Defaults.SamplesPerExample;

    /// <summary>Subtract the input-dependent baseline C_ψ(x) (an MLP with one hidden layer) from the learning signal. Default <see cref="Defaults.InputDependentBaseline"/>.</summary>
    public bool InputDependentBaseline { get; set; } = Defaults.InputDependentBaseline;

    /// <summary>Hidden tanh units of the baseline MLP C_ψ(x). Default <see cref="Defaults.BaselineHiddenUnits"/>.</summary>
    public int BaselineHiddenUnits { get; set; } = Defaults.BaselineHiddenUnits;

    /// <summary>Subtract the running mean c of the signal (after the baseline). Default <see cref="Defaults.CenterSignal"/>.</summary>
    public bool CenterSignal { get; set; } = Defaults.CenterSignal;

    /// <summary>Divide the centred signal by max(1, √v), v its running variance. Default <see cref="Defaults.NormalizeSignal"/>.</summary>
    public bool NormalizeSignal { get; set; } = Defaults.NormalizeSignal;

    /// <summary>Exponential smoothing α of the running mean and variance: c ← α c + (1 − α) c_batch. Default <see cref="Defaults.SignalSmoothing"/>.</summary>
    public double SignalSmoothing { get; set; } = Defaults.SignalSmoothing;

    /// <summary>Give each inference layer its own learning signal (only the terms of log p − log q that depend on that
    /// layer's sample), with its own baseline output and statistics (the paper's local learning signals). Only matters
    /// with two or more latent layers. Default <see cref="Defaults.LocalLearningSignals"/>.</summary>
    public bool LocalLearningSignals { get; set; } = Defaults.LocalLearningSignals;

    /// <summary>Data rows per block processed by one thread in training (fixed so that results do not depend on the
    /// number of threads). In [1, <see cref="GradientTrainingOptions.MaxRowsPerBlock"/>]. Default <see cref="Defaults.RowsPerBlock"/>.</summary>
    public int RowsPerBlock { get; set; } = Defaults.RowsPerBlock;

    /// <summary>Initialise the data layer's biases to the logits of the training pixel means. Default <see cref="Defaults.InitializeOutputBiasFromData"/>.</summary>
    public bool InitializeOutputBiasFromData { get; set; } = Defaults.InitializeOutputBiasFromData;


    /// <summary>Upper bound on every layer size (latent layers and the baseline's hidden units), 2^16: the limit the
    /// model file's reader checks.</summary>
    public const int MaxLayerUnits = 1 << 16;

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        Check(LatentDimensions is { Length: >= 1 and <= 8 }, nameof(LatentDimensions), LatentDimensions, "must list 1 to 8 layer sizes");
        foreach (var v in LatentDimensions) Check(v >= 1 && v <= MaxLayerUnits, nameof(LatentDimensions), LatentDimensions, FormattableString.Invariant($"entries must be in [1, {MaxLayerUnits}]"));
        Check(SamplesPerExample >= 1 && SamplesPerExample <= 10_000, nameof(SamplesPerExample), SamplesPerExample, "must be in [1, 10000]");
        Check(BaselineHiddenUnits >= 1 && BaselineHiddenUnits <= MaxLayerUnits, nameof(BaselineHiddenUnits), BaselineHiddenUnits, FormattableString.Invariant($"must be in [1, {MaxLayerUnits}]"));
        Check(SignalSmoothing >= 0 && SignalSmoothing < 1, nameof(SignalSmoothing), SignalSmoothing, "must be in [0, 1)");
        Check(RowsPerBlock >= 1 && RowsPerBlock <= MaxRowsPerBlock, nameof(RowsPerBlock), RowsPerBlock, FormattableString.Invariant($"must be in [1, {MaxRowsPerBlock}]"));
    }

}
