using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Nvil;
using Microsoft.ML.DeepDensity.Training;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Transforms
{
    /// <summary>Sigmoid belief network trained by NVIL as an ML.NET estimator; the LogDensity column is an
    /// importance-sampled estimate (set <c>StandardErrorColumnName</c> for its standard error). See
    /// <see cref="DensityEstimator{TModel,TModelOptions}"/> for columns and training. Features must be 0 or 1.</summary>
    public sealed class NvilEstimator : DensityEstimator<NvilModel, NvilOptions>
    {
        /// <summary>Columns, contamination, sample settings and the engine's <see cref="NvilOptions"/> (<c>ModelOptions</c>).</summary>
        public sealed class Options : DensityEstimatorOptions<NvilOptions> { }

        internal NvilEstimator(MLContext mlContext, Options options) : base(mlContext, options, "Nvil") { }

        /// <inheritdoc/>
        protected override NvilModel Train(RowMatrix data, RowMatrix? validation, NvilOptions options,
            IProgress<TrainingProgress> progress, CancellationToken cancellationToken)
            => NvilModel.Fit(data, options, validation, progress, cancellationToken);
    }
}

namespace Microsoft.ML
{
    public static partial class DensityEstimationCatalogExtensions
    {
        /// <summary>
        /// NVIL sigmoid belief network density estimator on a known-size Single vector column of 0/1 values. Appends
        /// LogDensity (importance-sampled estimate of log p(x) with K = evaluationSamples), Score (= −LogDensity) and PredictedLabel.
        /// </summary>
        /// <param name="catalog">The catalog.</param>
        /// <param name="featureColumnName">Input column. Default "Features".</param>
        /// <param name="latentDimensions">Binary latent layer sizes, nearest the data first. Default {200}.</param>
        /// <param name="maxEpochs">Maximum training epochs. Default 100.</param>
        /// <param name="evaluationSamples">Importance samples K of the log-density column (smaller than the engine's
        /// default 1000 because every scored row pays for it; raise it for tighter estimates). Default 100.</param>
        /// <param name="contamination">Expected anomaly fraction of the training data, for PredictedLabel. Default 0.01.</param>
        /// <param name="seed">Seed of initialisation, noise and the validation split. Default 1.</param>
        public static NvilEstimator Nvil(this DensityEstimationCatalog catalog, string featureColumnName = "Features",
            int[]? latentDimensions = null, int maxEpochs = 100, int evaluationSamples = 100, double contamination = 0.01, ulong seed = 1)
        {
            ArgumentNullException.ThrowIfNull(catalog);
            return new NvilEstimator(catalog.Context, new NvilEstimator.Options
            {
                FeatureColumnName = featureColumnName,
                Contamination = contamination,
                ModelOptions = new NvilOptions
                {
                    LatentDimensions = latentDimensions ?? new[] { 200 }, MaxEpochs = maxEpochs, EvaluationSamples = evaluationSamples, Seed = seed,
                },
            });
        }

        /// <summary>NVIL density estimator with full options (columns, contamination, sample column, engine options).</summary>
        public static NvilEstimator Nvil(this DensityEstimationCatalog catalog, NvilEstimator.Options options)
        {
            ArgumentNullException.ThrowIfNull(catalog);
            ArgumentNullException.ThrowIfNull(options);
            return new NvilEstimator(catalog.Context, options);
        }
    }
}
