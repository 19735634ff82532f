using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.Rnade;

/// <summary>Hyper-parameters of <see cref="RnadeModel"/> (the training-loop settings are inherited; RNADE overrides
/// <see cref="GradientTrainingOptions.GradientClipNorm"/>, see the constructor).</summary>
/// <remarks>
/// Defaults were chosen on the validation set of Fashion-MNIST 8×8 (docs/benchmarks.md, "RNADE defaults"). One-run
/// ablation there (H=100, K=10, 25 epochs, test log-likelihood in nats): exact gradient without clipping 161.61 (83 s);
/// exact gradient, clipping at 10: 160.51; σ-scaled mean gradient, clipping at 10 (the defaults before): 155.44 (193 s);
/// σ-scaled, no clipping: 155.30.
/// </remarks>
public class RnadeOptions : GradientTrainingOptions, Persistence.IModelSizeOptions
{
    /// <inheritdoc/>
    public virtual Persistence.ModelSizePrediction PredictModelSize(int columns)
        => RnadeNetwork.PredictSize(columns, HiddenUnits, Components);

    /// <summary>The default of every setting RnadeOptions declares or changes (the one place they are written; the
    /// catalog's parameters and the docs refer here). Settings not listed keep the base class's defaults.</summary>
    public new static class Defaults
    {
        /// <summary>Default of <see cref="RnadeOptions.HiddenUnits"/>.</summary>
        public const int HiddenUnits = 50;
        /// <summary>Default of <see cref="RnadeOptions.Components"/>.</summary>
        public const int Components = 10;
        /// <summary>Default of <see cref="RnadeOptions.Activation"/>.</summary>
        public const Activation Activation = Activation.Relu;
        /// <summary>Default of <see cref="RnadeOptions.Standardize"/>.</summary>
        public const bool Standardize = true;
        /// <summary>Default of <see cref="RnadeOptions.ScaleMeanGradientBySigma"/>.</summary>
        public const bool ScaleMeanGradientBySigma = false;
        /// <summary>Default of <see cref="RnadeOptions.RowsPerBlock"/>.</summary>
        public const int RowsPerBlock = 50;
        /// <summary>Default of <see cref="GradientTrainingOptions.GradientClipNorm"/>: no clipping (Adam already normalises step sizes;
        /// clipping at 10 cost ≈ 1 nat of test log-likelihood at 25 epochs).</summary>
        public const float GradientClipNorm = 0f;
        /// <summary>Default of <see cref="GradientTrainingOptions.MaxEpochs"/>: 200, not the loop's 100, because early stopping (patience 10)
        /// ends training when it converges, and on 50k rows the validation log-likelihood was still rising after 90 epochs.</summary>
        public const int MaxEpochs = 200;
    }

    /// <summary>Creates the defaults. Gradient-norm clipping is off (<see cref="GradientTrainingOptions.GradientClipNorm"/>
    /// = 0): Adam already normalises step sizes, and clipping at 10 cost ≈ 1 nat of test log-likelihood at 25 epochs.</summary>
    public RnadeOptions()
    {
        GradientClipNorm = Defaults.GradientClipNorm;
        MaxEpochs = Defaults.MaxEpochs;
    }

    /// <summary>Hidden units H of the shared autoregressive layer. Default <see cref="Defaults.HiddenUnits"/>.</summary>
    public int HiddenUnits { get; set; } = Defaults.HiddenUnits;

    /// <summary>Gaussian components K per conditional. Default <see cref="Defaults.Components"/>.</summary>
    public int Components { get; set; } = Defaults.Components;

    /// <summary>Hidden non-linearity: <see cref="Numerics.Activation.Relu"/> (Uria et al. 2013) or <see cref="Numerics.Activation.Sigmoid"/> (RNN-RNADE paper). Default <see cref="Defaults.Activation"/>.</summary>
    public Activation Activation { get; set; } = Defaults.Activation;

    /// <summary>Standardise every input column to zero mean and unit variance before modelling (stored in the model; the
    /// log-density is corrected by the Jacobian, so it is the density of the raw data). Default <see cref="Defaults.Standardize"/>.</summary>
    public bool Standardize { get; set; } = Defaults.Standardize;

    /// <summary>Order in which the autoregressive model visits the input columns (a permutation of 0..D−1); null = natural order. Default null.</summary>
    public int[]? VariableOrder { get; set; }

    /// <summary>Multiply the mean's gradient by σ (Algorithm 2 of Uria et al.: tighter components move slower, allowing higher
    /// learning rates with plain SGD). This is a preconditioning, not the gradient of the log-likelihood; with Adam it
    /// trains worse (test log-likelihood 155.44 against 161.61 for the exact gradient after 25 epochs on Fashion-MNIST
    /// 8×8, H=100, K=10). Default <see cref="Defaults.ScaleMeanGradientBySigma"/>.</summary>
    public bool ScaleMeanGradientBySigma { get; set; } = Defaults.ScaleMeanGradientBySigma;

    /// <summary>Rows per block processed by one thread in training and scoring (fixed so that results do not depend on the
    /// number of threads). In [1, <see cref="GradientTrainingOptions.MaxRowsPerBlock"/>]. Default <see cref="Defaults.RowsPerBlock"/>.</summary>
    public int RowsPerBlock { get; set; } = Defaults.RowsPerBlock;

    // Limits on the sizes a model file stores (checked here and when a file is loaded): a fit beyond them trained to the
    // end and then failed its loadability check as "training diverged".
    /// <summary>Upper bound on <see cref="HiddenUnits"/> (2^20), also for deep RNADE and RNN-RNADE.</summary>
    public const int MaxHiddenUnits = 1 << 20;
    /// <summary>Upper bound on <see cref="Components"/> (2^16), also for deep RNADE and RNN-RNADE.</summary>
    public const int MaxComponents = 1 << 16;
    /// <summary>Most columns (RNN-RNADE: values per frame) a model file holds, 2^20: wider data is refused before
    /// training (it trained to the end and then failed its loadability check as "training diverged").</summary>
    public const int MaxDimension = 1 << 20;

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        Check(HiddenUnits >= 1 && HiddenUnits <= MaxHiddenUnits, nameof(HiddenUnits), HiddenUnits, FormattableString.Invariant($"must be in [1, {MaxHiddenUnits}]"));
        Check(Components >= 1 && Components <= MaxComponents, nameof(Components), Components, FormattableString.Invariant($"must be in [1, {MaxComponents}]"));
        Check(Activation is Activation.Relu or Activation.Sigmoid or Activation.Tanh, nameof(Activation), Activation, "must be Relu, Sigmoid or Tanh");
        Check(RowsPerBlock >= 1 && RowsPerBlock <= MaxRowsPerBlock, nameof(RowsPerBlock), RowsPerBlock, FormattableString.Invariant($"must be in [1, {MaxRowsPerBlock}]"));
    }

    /// <summary>Checks <see cref="VariableOrder"/> against the data width.</summary>
    internal int[] ResolveOrder(int dimension)
    {
        if (VariableOrder is null) return Enumerable.Range(0, dimension).ToArray();
        if (VariableOrder.Length != dimension)
            throw new ArgumentOutOfRangeException(nameof(VariableOrder), FormattableString.Invariant($"VariableOrder has {VariableOrder.Length} entries but the data has {dimension} columns."));
        var seen = new bool[dimension];
        foreach (var v in VariableOrder)
        {
            if (v < 0 || v >= dimension || seen[v])
                throw new ArgumentOutOfRangeException(nameof(VariableOrder), FormattableString.Invariant($"VariableOrder must be a permutation of 0..{dimension - 1}; entry {v} is out of range or repeated."));
            seen[v] = true;
        }
        return (int[])VariableOrder.Clone();
    }
}
