using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.Rnade;

/// <summary>Hyper-parameters of <see cref="RnadeModel"/> (the training-loop settings are inherited).</summary>
public sealed class RnadeOptions : GradientTrainingOptions
{
    /// <summary>Hidden units H of the shared autoregressive layer. Default 50.</summary>
    public int HiddenUnits { get; set; } = 50;

    /// <summary>Gaussian components K per conditional. Default 10.</summary>
    public int Components { get; set; } = 10;

    /// <summary>Hidden non-linearity: <see cref="Numerics.Activation.Relu"/> (Uria et al. 2013, default) or <see cref="Numerics.Activation.Sigmoid"/> (RNN-RNADE paper).</summary>
    public Activation Activation { get; set; } = Activation.Relu;

    /// <summary>Standardise every input column to zero mean and unit variance before modelling (stored in the model; the
    /// log-density is corrected by the Jacobian, so it is the density of the raw data). Default true.</summary>
    public bool Standardize { get; set; } = true;

    /// <summary>Order in which the autoregressive model visits the input columns (a permutation of 0..D−1); null = natural order. Default null.</summary>
    public int[]? VariableOrder { get; set; }

    /// <summary>Multiply the mean's gradient by σ (Algorithm 2 of Uria et al.: tighter components move slower, allowing higher
    /// learning rates). This is a preconditioning, not the exact gradient. Default true.</summary>
    public bool ScaleMeanGradientBySigma { get; set; } = true;

    /// <summary>Rows per block processed by one thread in training and scoring (fixed so that results do not depend on the
    /// number of threads). In [1, <see cref="GradientTrainingOptions.MaxRowsPerBlock"/>]. Default 50.</summary>
    public int RowsPerBlock { get; set; } = 50;

    public override void Validate()
    {
        base.Validate();
        Check(HiddenUnits >= 1, nameof(HiddenUnits), HiddenUnits, "must be at least 1");
        Check(Components >= 1, nameof(Components), Components, "must be at least 1");
        Check(Activation is Activation.Relu or Activation.Sigmoid or Activation.Tanh, nameof(Activation), Activation, "must be Relu, Sigmoid or Tanh");
        Check(RowsPerBlock >= 1 && RowsPerBlock <= MaxRowsPerBlock, nameof(RowsPerBlock), RowsPerBlock, $"must be in [1, {MaxRowsPerBlock}]");
    }

    /// <summary>Checks <see cref="VariableOrder"/> against the data width.</summary>
    internal int[] ResolveOrder(int dimension)
    {
        if (VariableOrder is null) return Enumerable.Range(0, dimension).ToArray();
        if (VariableOrder.Length != dimension)
            throw new ArgumentOutOfRangeException(nameof(VariableOrder), $"VariableOrder has {VariableOrder.Length} entries but the data has {dimension} columns.");
        var seen = new bool[dimension];
        foreach (var v in VariableOrder)
        {
            if (v < 0 || v >= dimension || seen[v])
                throw new ArgumentOutOfRangeException(nameof(VariableOrder), $"VariableOrder must be a permutation of 0..{dimension - 1}; entry {v} is out of range or repeated.");
            seen[v] = true;
        }
        return (int[])VariableOrder.Clone();
    }
}
