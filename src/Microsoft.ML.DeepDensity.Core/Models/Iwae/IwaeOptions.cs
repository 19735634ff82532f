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
/// deterministic tanh layers 200-200 on both sides, k = 5. Two stochastic layers (their architecture 2:
/// 784-100-100-100-50-50-50) are <c>LatentDimensions = {100, 50}, HiddenUnits = {100, 100}, DeepHiddenUnits = {50, 50}</c>.
/// </remarks>
public sealed class IwaeOptions : ImportanceSampledOptions
{
    /// <summary>Creates the defaults. Gradient clipping is off by default (Adam normalises step sizes; the reference
    /// implementations do not clip).</summary>
    public IwaeOptions() => GradientClipNorm = 0f;

    /// <summary>Sizes of the stochastic (Gaussian) layers z₁, …, z_L, nearest the data first (one or more). Default {50}.</summary>
    public int[] LatentDimensions { get; set; } = { 50 };

    /// <summary>Deterministic hidden layers of the networks between x and z₁ (encoder x→z₁ uses them in this order,
    /// decoder z₁→x in reverse). Empty = affine heads. Default {200, 200}.</summary>
    public int[] HiddenUnits { get; set; } = { 200, 200 };

    /// <summary>Deterministic hidden layers of the networks between z_l and z_{l+1} (only used with two or more stochastic
    /// layers). Default {100, 100}.</summary>
    public int[] DeepHiddenUnits { get; set; } = { 100, 100 };

    /// <summary>Hidden non-linearity. Default <see cref="Activation.Tanh"/>.</summary>
    public Activation Activation { get; set; } = Activation.Tanh;

    /// <summary>Observation model. Default <see cref="IwaeLikelihood.Bernoulli"/> (binary data).</summary>
    public IwaeLikelihood Likelihood { get; set; } = IwaeLikelihood.Bernoulli;

    /// <summary>Importance samples k of the training bound (k = 1 is the VAE's ELBO). Default 5.</summary>
    public int Samples { get; set; } = 5;

    /// <summary>Data rows per block processed by one thread in training (fixed so that results do not depend on the
    /// number of threads; each block holds RowsPerBlock × Samples decoder rows). In [1, <see cref="GradientTrainingOptions.MaxRowsPerBlock"/>]. Default 50.</summary>
    public int RowsPerBlock { get; set; } = 50;

    /// <summary>Initialise the decoder's output biases from the training data (Bernoulli: logit of the pixel means;
    /// Gaussian: column means and log standard deviations). Default true.</summary>
    public bool InitializeOutputBiasFromData { get; set; } = true;

    public override void Validate()
    {
        base.Validate();
        Check(LatentDimensions is { Length: >= 1 and <= 8 }, nameof(LatentDimensions), Describe(LatentDimensions), "must list 1 to 8 layer sizes");
        foreach (var v in LatentDimensions) Check(v >= 1, nameof(LatentDimensions), Describe(LatentDimensions), "entries must be at least 1");
        Check(HiddenUnits is { Length: <= 16 }, nameof(HiddenUnits), Describe(HiddenUnits), "must be a list of at most 16 layer sizes");
        foreach (var v in HiddenUnits) Check(v >= 1, nameof(HiddenUnits), Describe(HiddenUnits), "entries must be at least 1");
        Check(DeepHiddenUnits is { Length: <= 16 }, nameof(DeepHiddenUnits), Describe(DeepHiddenUnits), "must be a list of at most 16 layer sizes");
        foreach (var v in DeepHiddenUnits) Check(v >= 1, nameof(DeepHiddenUnits), Describe(DeepHiddenUnits), "entries must be at least 1");
        Check(Activation is Activation.Tanh or Activation.Relu or Activation.Softplus or Activation.Sigmoid, nameof(Activation), Activation, "must be Tanh, Relu, Softplus or Sigmoid");
        Check(Enum.IsDefined(Likelihood), nameof(Likelihood), Likelihood, "must be Bernoulli or Gaussian");
        Check(Samples >= 1 && Samples <= 100_000, nameof(Samples), Samples, "must be in [1, 100000]");
        Check(RowsPerBlock >= 1 && RowsPerBlock <= MaxRowsPerBlock, nameof(RowsPerBlock), RowsPerBlock, $"must be in [1, {MaxRowsPerBlock}]");
    }

    private static string Describe(int[]? v) => v is null ? "null" : "{" + string.Join(", ", v) + "}";
}
