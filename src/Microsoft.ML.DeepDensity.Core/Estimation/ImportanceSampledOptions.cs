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
    }

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
        Check(EvaluationSamples >= 1 && EvaluationSamples <= MaxEvaluationSamples, nameof(EvaluationSamples), EvaluationSamples, $"must be in [1, {MaxEvaluationSamples}]");
        Check(EvaluationSamplesPerChunk >= 1 && EvaluationSamplesPerChunk <= MaxEvaluationSamplesPerChunk, nameof(EvaluationSamplesPerChunk), EvaluationSamplesPerChunk, $"must be in [1, {MaxEvaluationSamplesPerChunk}]");
    }
}
