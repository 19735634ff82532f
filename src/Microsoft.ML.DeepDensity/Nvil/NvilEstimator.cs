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

        /// <summary>Importance samples K of the catalog's log-density column: 100, fewer than the engine's
        /// <see cref="Microsoft.ML.DeepDensity.Estimation.ImportanceSampledOptions.Defaults.EvaluationSamples"/> because every scored row pays for them.</summary>
        public const int DefaultColumnEvaluationSamples = 100;

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
        /// <param name="featureColumnName">Input column. Default <see cref="DensityEstimatorDefaults.FeatureColumnName"/>.</param>
        /// <param name="latentDimensions">Binary latent layer sizes, nearest the data first. Default <see cref="NvilOptions.Defaults.LatentDimensions"/>.</param>
        /// <param name="maxEpochs">Maximum training epochs; 0 sets them from the training rows (100 on 10,000 rows or more, more on fewer: <see cref="Microsoft.ML.DeepDensity.Estimation.ImportanceSampledOptions.EpochsFor"/>). Default <see cref="Microsoft.ML.DeepDensity.Estimation.ImportanceSampledOptions.Defaults.MaxEpochs"/>.</param>
        /// <param name="evaluationSamples">Importance samples K of the log-density column (smaller than the engine's
        /// default 1000 because every scored row pays for it; raise it for tighter estimates). Default <see cref="Microsoft.ML.DeepDensity.Transforms.NvilEstimator.DefaultColumnEvaluationSamples"/>.</param>
        /// <param name="contamination">Expected anomaly fraction, for PredictedLabel: the threshold is that quantile of the scores of rows the model did not train on (<see cref="DensityEstimatorOptions.ThresholdRows"/>). Default <see cref="DensityEstimatorDefaults.Contamination"/>.</param>
        /// <param name="seed">Seed of initialisation, noise, shuffling and the validation split. Default <see cref="Microsoft.ML.DeepDensity.Training.GradientTrainingOptions.Defaults.Seed"/>.</param>
        public static NvilEstimator Nvil(this DensityEstimationCatalog catalog, string featureColumnName = DensityEstimatorDefaults.FeatureColumnName,
            int[]? latentDimensions = null, int maxEpochs = Microsoft.ML.DeepDensity.Estimation.ImportanceSampledOptions.Defaults.MaxEpochs,
            int evaluationSamples = NvilEstimator.DefaultColumnEvaluationSamples, double contamination = DensityEstimatorDefaults.Contamination, ulong seed = GradientTrainingOptions.Defaults.Seed)
        {
            ArgumentNullException.ThrowIfNull(catalog);
            return new NvilEstimator(catalog.Context, new NvilEstimator.Options
            {
                FeatureColumnName = featureColumnName,
                Contamination = contamination,
                ModelOptions = new NvilOptions
                {
                    LatentDimensions = latentDimensions ?? NvilOptions.Defaults.LatentDimensions, MaxEpochs = maxEpochs, EvaluationSamples = evaluationSamples, Seed = seed,
                },
            });
        }

        /// <summary>NVIL density estimator with full options (columns, contamination, sample column, engine options).</summary>
        /// <param name="catalog">The catalog.</param>
        /// <param name="options">Columns, contamination, sample column and the engine's options (<c>ModelOptions</c>);
        /// validated here and again at Fit (the object is kept, not copied).</param>
        public static NvilEstimator Nvil(this DensityEstimationCatalog catalog, NvilEstimator.Options options)
        {
            ArgumentNullException.ThrowIfNull(catalog);
            ArgumentNullException.ThrowIfNull(options);
            return new NvilEstimator(catalog.Context, options);
        }
    }
}
