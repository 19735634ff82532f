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

    /// <inheritdoc/>
    protected override RnadeModel Train(RowMatrix data, RowMatrix? validation, RnadeOptions options,
        IProgress<TrainingProgress> progress, CancellationToken cancellationToken)
        => RnadeModel.Fit(data, options, validation, progress, cancellationToken);

    /// <inheritdoc/>
    protected override RnadeModel TrainStreamed(IRowStream data, IRowStream? validation, RnadeOptions options, StreamingOptions streaming,
        IProgress<TrainingProgress> progress, CancellationToken cancellationToken)
        => RnadeModel.Fit(data, options, validation, streaming, progress, cancellationToken);
}
