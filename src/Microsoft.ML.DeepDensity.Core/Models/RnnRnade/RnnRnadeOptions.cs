using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.RnnRnade;

/// <summary>Hyper-parameters of <see cref="RnnRnadeModel"/> (the training-loop settings are inherited; a training
/// example is one sequence, so <see cref="GradientTrainingOptions.BatchSize"/> counts sequences).</summary>
public sealed class RnnRnadeOptions : GradientTrainingOptions
{
    public RnnRnadeOptions() => BatchSize = 32;

    /// <summary>Hidden units H of the per-frame RNADE. Default 50.</summary>
    public int HiddenUnits { get; set; } = 50;

    /// <summary>Gaussian components K per conditional of the per-frame RNADE. Default 5.</summary>
    public int Components { get; set; } = 5;

    /// <summary>Units of the recurrent state ĥ (sigmoid, as in the paper). Default 50.</summary>
    public int RecurrentUnits { get; set; } = 50;

    /// <summary>RNADE hidden non-linearity: <see cref="Numerics.Activation.Sigmoid"/> (the RNN-RNADE paper, default),
    /// <see cref="Numerics.Activation.Relu"/> or <see cref="Numerics.Activation.Tanh"/>.</summary>
    public Activation Activation { get; set; } = Activation.Sigmoid;

    /// <summary>Let the recurrent state also shift the RNADE's hidden bias c (the paper's option), besides the output
    /// biases r^α, r^μ, r^σ. Default false.</summary>
    public bool ConditionHiddenBias { get; set; }

    /// <summary>Standardise every frame component to zero mean and unit variance over the training frames (stored in
    /// the model; log-densities are corrected by the Jacobian, so they are densities of the raw frames). Default true.</summary>
    public bool Standardize { get; set; } = true;

    /// <summary>Multiply the mean heads' gradients by σ (RNADE's preconditioning; not the exact gradient). Default false.</summary>
    public bool ScaleMeanGradientBySigma { get; set; }

    /// <summary>Sequences per block processed by one thread (fixed so that results do not depend on the thread count); a
    /// block holds its sequences' frames (inputs, recurrent states and their gradients), so training memory is bounded by
    /// the block, not the minibatch. In [1, <see cref="GradientTrainingOptions.MaxRowsPerBlock"/>]. Default 16.</summary>
    public int SequencesPerBlock { get; set; } = 16;

    /// <summary>Frames per RNADE pass inside a block (all time steps of the block's sequences are batched). In
    /// [1, <see cref="GradientTrainingOptions.MaxRowsPerBlock"/>]. Default 64.</summary>
    public int FramesPerChunk { get; set; } = 64;

    public override void Validate()
    {
        base.Validate();
        Check(HiddenUnits >= 1, nameof(HiddenUnits), HiddenUnits, "must be at least 1");
        Check(Components >= 1, nameof(Components), Components, "must be at least 1");
        Check(RecurrentUnits >= 1, nameof(RecurrentUnits), RecurrentUnits, "must be at least 1");
        Check(Activation is Activation.Relu or Activation.Sigmoid or Activation.Tanh, nameof(Activation), Activation, "must be Relu, Sigmoid or Tanh");
        Check(SequencesPerBlock >= 1 && SequencesPerBlock <= MaxRowsPerBlock, nameof(SequencesPerBlock), SequencesPerBlock, $"must be in [1, {MaxRowsPerBlock}]");
        Check(FramesPerChunk >= 1 && FramesPerChunk <= MaxRowsPerBlock, nameof(FramesPerChunk), FramesPerChunk, $"must be in [1, {MaxRowsPerBlock}]");
    }
}
