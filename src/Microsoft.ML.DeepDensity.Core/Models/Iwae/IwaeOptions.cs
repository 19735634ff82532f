using Microsoft.ML.DeepDensity.Estimation;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.Iwae;

/// <summary>The observation model p(x | z) of an <see cref="IwaeModel"/>.</summary>
public enum IwaeLikelihood
{
    /// <summary>Independent Bernoulli pixels with logits from the decoder (binary data; inputs must be 0 or 1).</summary>
    Bernoulli = 0,
    /// <summary>Diagonal Gaussian with mean and log σ from the decoder (real-valued data).</summary>
    Gaussian = 1,
}

/// <summary>Hyper-parameters of <see cref="IwaeModel"/> (the training-loop settings are inherited).</summary>
/// <remarks>
/// Defaults follow architecture 1 of Burda, Grosse &amp; Salakhutdinov (2016): one stochastic layer of 50 Gaussian units,
/// deterministic layers 200-200 on both sides, k = 5, with the paper's tanh for real data but ReLU for binary data (see
/// <see cref="Activation"/>). Two stochastic layers (their architecture 2:
/// 784-100-100-100-50-50-50) are <c>LatentDimensions = {100, 50}, HiddenUnits = {100, 100}, DeepHiddenUnits = {50, 50}</c>.
/// </remarks>
public sealed class IwaeOptions : ImportanceSampledOptions, Persistence.IModelSizeOptions
{
    /// <inheritdoc/>
    public Persistence.ModelSizePrediction PredictModelSize(int columns)
        => IwaeNetwork.PredictSize(columns, LatentDimensions, HiddenUnits, DeepHiddenUnits, Likelihood);

    /// <summary>The default of every setting IwaeOptions declares or changes (the one place they are written; the
    /// catalog's parameters and the docs refer here). Settings not listed keep the base class's defaults.</summary>
    public new static class Defaults
    {
        /// <summary>Default of <see cref="IwaeOptions.LatentDimensions"/>.</summary>
        public static int[] LatentDimensions => new int[] { 50 };
        /// <summary>Default of <see cref="IwaeOptions.HiddenUnits"/>.</summary>
        public static int[] HiddenUnits => new int[] { 200, 200 };
        /// <summary>Default of <see cref="IwaeOptions.DeepHiddenUnits"/>.</summary>
        public static int[] DeepHiddenUnits => new int[] { 100, 100 };
        /// <summary>Default of <see cref="IwaeOptions.Activation"/>: none, the activation follows the likelihood (<see cref="ActivationFor"/>).</summary>
        public static Activation? Activation => null;

        /// <summary>The activation a fit uses when <see cref="IwaeOptions.Activation"/> is not set. Bernoulli: ReLU, which
        /// scored 2 nats more than tanh on binarized Fashion-MNIST, beyond the spread of the seeds (the
        /// <c>latent-defaults</c> benchmark; docs/models/iwae.md, "Defaults"). Gaussian: tanh: with ReLU three of the library's
        /// small real-valued test fits failed (one diverged at every halved rate, one scored its own training rows at −1.6e20
        /// nats), and on dequantised digits and tabular columns ReLU scored the same or less (docs/models/iwae.md, "Defaults").</summary>
        public static Activation ActivationFor(IwaeLikelihood likelihood)
            => likelihood == IwaeLikelihood.Bernoulli ? Numerics.Activation.Relu : Numerics.Activation.Tanh;
        /// <summary>Default of <see cref="IwaeOptions.Likelihood"/>.</summary>
        public const IwaeLikelihood Likelihood = IwaeLikelihood.Bernoulli;
        /// <summary>Default of <see cref="IwaeOptions.Samples"/>.</summary>
        public const int Samples = 5;
        /// <summary>Default of <see cref="IwaeOptions.RowsPerBlock"/>.</summary>
        public const int RowsPerBlock = 50;
        /// <summary>Default of <see cref="IwaeOptions.InitializeOutputBiasFromData"/>.</summary>
        public const bool InitializeOutputBiasFromData = true;
        /// <summary>Default of <see cref="IwaeOptions.Standardize"/>: on. Without it, a Gaussian IWAE's tanh encoder saturates
        /// on columns far from unit scale: on four columns at scales 2e-4 to 1e5 (docs/models/iwae.md, "Standardisation")
        /// the default fit scored −62.3 nats a test row where the same fit on the standardised columns, RNADE and Deep GMM
        /// scored −18.1, −17.9 and −17.9.</summary>
        public const bool Standardize = true;
        /// <summary>Default of <see cref="GradientTrainingOptions.GradientClipNorm"/>.</summary>
        public const float GradientClipNorm = 0f;
    }

    /// <summary>Creates the defaults. Gradient clipping is off by default (Adam normalises step sizes; the reference
    /// implementations do not clip).</summary>
    public IwaeOptions() => GradientClipNorm = Defaults.GradientClipNorm;

    /// <summary>Sizes of the stochastic (Gaussian) layers z₁, …, z_L, nearest the data first (one or more). Default <see cref="Defaults.LatentDimensions"/>.</summary>
    public int[] LatentDimensions { get; set; } = Defaults.LatentDimensions;

    /// <summary>Deterministic hidden layers of the networks between x and z₁ (encoder x→z₁ uses them in this order,
    /// decoder z₁→x in reverse). Empty = affine heads. Default <see cref="Defaults.HiddenUnits"/>.</summary>
    public int[] HiddenUnits { get; set; } = Defaults.HiddenUnits;

    /// <summary>Deterministic hidden layers of the networks between z_l and z_{l+1} (only used with two or more stochastic
    /// layers). Default <see cref="Defaults.DeepHiddenUnits"/>.</summary>
    public int[] DeepHiddenUnits { get; set; } = Defaults.DeepHiddenUnits;

    /// <summary>Hidden non-linearity; null (the default) takes <see cref="Defaults.ActivationFor"/> the likelihood: ReLU for
    /// Bernoulli, tanh for Gaussian.</summary>
    public Activation? Activation { get; set; } = Defaults.Activation;

    /// <summary>The activation a fit with these options uses: <see cref="Activation"/>, or the likelihood's default.</summary>
    public Activation EffectiveActivation => Activation ?? Defaults.ActivationFor(Likelihood);

    /// <summary>Observation model. Default <see cref="Defaults.Likelihood"/> (binary data).</summary>
    public IwaeLikelihood Likelihood { get; set; } = Defaults.Likelihood;

    /// <summary>Importance samples k of the training bound (k = 1 is the VAE's ELBO). Default <see cref="Defaults.Samples"/>.</summary>
    public int Samples { get; set; } = Defaults.Samples;

    /// <summary>Data rows per block processed by one thread in training (fixed so that results do not depend on the
    /// number of threads; each block holds RowsPerBlock × Samples decoder rows). In [1, <see cref="GradientTrainingOptions.MaxRowsPerBlock"/>]. Default <see cref="Defaults.RowsPerBlock"/>.</summary>
    public int RowsPerBlock { get; set; } = Defaults.RowsPerBlock;

    /// <summary>Initialise the decoder's output biases from the training data (Bernoulli: logit of the pixel means;
    /// Gaussian: column means and log standard deviations). Default <see cref="Defaults.InitializeOutputBiasFromData"/>.</summary>
    public bool InitializeOutputBiasFromData { get; set; } = Defaults.InitializeOutputBiasFromData;

    /// <summary>Gaussian likelihood: train and score on per-column standardised inputs, (x − mean) / standard deviation
    /// of the training rows, adding the map's log-Jacobian (−Σ log standard deviation) so that log-densities, bounds and
    /// samples stay those of the raw columns. Bernoulli data are 0/1 and are never standardised. Default
    /// <see cref="Defaults.Standardize"/>.</summary>
    public bool Standardize { get; set; } = Defaults.Standardize;

    /// <summary>Whether a fit with these options standardises its inputs: <see cref="Standardize"/> with the Gaussian
    /// likelihood.</summary>
    internal bool StandardizesInputs => Standardize && Likelihood == IwaeLikelihood.Gaussian;

    /// <summary>Upper bound on every layer size (2^20), a limit of the model file: int.MaxValue units threw
    /// OverflowException, and a size between the two trained to the end and failed its loadability check.</summary>
    public const int MaxLayerUnits = 1 << 20;

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        Check(LatentDimensions is { Length: >= 1 and <= 8 }, nameof(LatentDimensions), LatentDimensions, "must list 1 to 8 layer sizes");
        foreach (var v in LatentDimensions) Check(v >= 1 && v <= MaxLayerUnits, nameof(LatentDimensions), LatentDimensions, FormattableString.Invariant($"entries must be in [1, {MaxLayerUnits}]"));
        Check(HiddenUnits is { Length: <= 16 }, nameof(HiddenUnits), HiddenUnits, "must be a list of at most 16 layer sizes");
        foreach (var v in HiddenUnits) Check(v >= 1 && v <= MaxLayerUnits, nameof(HiddenUnits), HiddenUnits, FormattableString.Invariant($"entries must be in [1, {MaxLayerUnits}]"));
        Check(DeepHiddenUnits is { Length: <= 16 }, nameof(DeepHiddenUnits), DeepHiddenUnits, "must be a list of at most 16 layer sizes");
        foreach (var v in DeepHiddenUnits) Check(v >= 1 && v <= MaxLayerUnits, nameof(DeepHiddenUnits), DeepHiddenUnits, FormattableString.Invariant($"entries must be in [1, {MaxLayerUnits}]"));
        Check(Activation is null or Numerics.Activation.Tanh or Numerics.Activation.Relu or Numerics.Activation.Softplus or Numerics.Activation.Sigmoid,
            nameof(Activation), Activation?.ToString() ?? "null", "must be null (by likelihood), Tanh, Relu, Softplus or Sigmoid");
        Check(Enum.IsDefined(Likelihood), nameof(Likelihood), Likelihood, "must be Bernoulli or Gaussian");
        Check(Samples >= 1 && Samples <= 100_000, nameof(Samples), Samples, "must be in [1, 100000]");
        Check(RowsPerBlock >= 1 && RowsPerBlock <= MaxRowsPerBlock, nameof(RowsPerBlock), RowsPerBlock, FormattableString.Invariant($"must be in [1, {MaxRowsPerBlock}]"));
    }

}
