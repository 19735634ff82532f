using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Transforms;

/// <summary>RNADE (real-valued neural autoregressive density estimator) as an ML.NET estimator; see
/// <see cref="DensityEstimator{TModel,TModelOptions}"/> for columns and training.</summary>
public sealed class RnadeEstimator : DensityEstimator<RnadeModel, RnadeOptions>
{
    /// <summary>Columns, contamination, sample settings and the engine's <see cref="RnadeOptions"/> (<c>ModelOptions</c>).</summary>
    public sealed class Options : DensityEstimatorOptions<RnadeOptions> { }

    internal RnadeEstimator(MLContext mlContext, Options options) : base(mlContext, options, "Rnade") { }

    /// <summary>The engine's checks, and a <see cref="DeepRnadeOptions"/> (a subclass, so <c>ModelOptions</c> takes it)
    /// refused when the estimator is created: the engine's RNADE Fit refuses it only after the training data was copied,
    /// and its message names the engine's call rather than the catalog method that trains a deep RNADE.</summary>
    /// <param name="options">The engine's options.</param>
    protected override void ValidateModelOptions(RnadeOptions options)
    {
        if (options is DeepRnadeOptions)
            throw new ArgumentException("ModelOptions is a DeepRnadeOptions, the options of a deep RNADE: train it with " +
                "mlContext.DensityEstimation.DeepRnade(new DeepRnadeEstimator.Options { ModelOptions = ... }).", nameof(DensityEstimatorOptions<RnadeOptions>.ModelOptions));
        base.ValidateModelOptions(options);
    }

    /// <inheritdoc/>
    protected override RnadeModel Train(RowMatrix data, RowMatrix? validation, RnadeOptions options,
        IProgress<TrainingProgress> progress, CancellationToken cancellationToken)
        => RnadeModel.Fit(data, options, validation, progress, cancellationToken);

    /// <inheritdoc/>
    protected override RnadeModel TrainStreamed(IRowStream data, IRowStream? validation, RnadeOptions options, StreamingOptions streaming,
        IProgress<TrainingProgress> progress, CancellationToken cancellationToken)
        => RnadeModel.Fit(data, options, validation, streaming, progress, cancellationToken);
}
