using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Training;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Transforms
{
    /// <summary>Deep Gaussian mixture model (hard/soft EM, path heuristic, L-BFGS M-step; exact log-density) as an ML.NET
    /// estimator; see <see cref="DensityEstimator{TModel,TModelOptions}"/> for columns and training.</summary>
    public sealed class DeepGmmEstimator : DensityEstimator<DeepGmmModel, DeepGmmOptions>
    {
        /// <summary>Columns, contamination, sample settings and the engine's <see cref="DeepGmmOptions"/> (<c>ModelOptions</c>).</summary>
        public sealed class Options : DensityEstimatorOptions<DeepGmmOptions> { }

        internal DeepGmmEstimator(MLContext mlContext, Options options) : base(mlContext, options, "DeepGmm") { }

        /// <inheritdoc/>
        protected override DeepGmmModel Train(RowMatrix data, RowMatrix? validation, DeepGmmOptions options,
            IProgress<TrainingProgress> progress, CancellationToken cancellationToken)
            => DeepGmmModel.Fit(data, options, validation, progress, cancellationToken);
    }
}

namespace Microsoft.ML
{
    public static partial class DensityEstimationCatalogExtensions
    {
        /// <summary>
        /// Deep GMM density estimator on a known-size Single vector column. Appends LogDensity (exact: log-sum-exp over all
        /// paths), Score (= −LogDensity) and PredictedLabel. A single layer is a full-covariance GMM.
        /// </summary>
        /// <param name="catalog">The catalog.</param>
        /// <param name="featureColumnName">Input column. Default "Features".</param>
        /// <param name="layers">Components per layer, bottom first. Default {4, 4}.</param>
        /// <param name="maxIterations">Maximum EM iterations. Default 100.</param>
        /// <param name="contamination">Expected anomaly fraction of the training data, for PredictedLabel. Default 0.01.</param>
        /// <param name="seed">Seed of initialisation, E-step restarts and the validation split. Default 1.</param>
        public static DeepGmmEstimator DeepGmm(this DensityEstimationCatalog catalog, string featureColumnName = "Features",
            int[]? layers = null, int maxIterations = 100, double contamination = 0.01, ulong seed = 1)
        {
            ArgumentNullException.ThrowIfNull(catalog);
            var model = new DeepGmmOptions { MaxIterations = maxIterations, Seed = seed };
            if (layers is not null) model.Layers = layers;
            return new DeepGmmEstimator(catalog.Context, new DeepGmmEstimator.Options
            {
                FeatureColumnName = featureColumnName,
                Contamination = contamination,
                ModelOptions = model,
            });
        }

        /// <summary>Deep GMM density estimator with full options (columns, contamination, sample column, engine options).</summary>
        public static DeepGmmEstimator DeepGmm(this DensityEstimationCatalog catalog, DeepGmmEstimator.Options options)
        {
            ArgumentNullException.ThrowIfNull(catalog);
            ArgumentNullException.ThrowIfNull(options);
            return new DeepGmmEstimator(catalog.Context, options);
        }
    }
}
