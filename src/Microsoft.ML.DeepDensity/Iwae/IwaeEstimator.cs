using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Training;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Transforms
{
    /// <summary>Importance-weighted auto-encoder (VAE when Samples = 1) as an ML.NET estimator; the LogDensity column is an
    /// importance-sampled estimate (set <c>StandardErrorColumnName</c> for its standard error). See
    /// <see cref="DensityEstimator{TModel,TModelOptions}"/> for columns and training. The Bernoulli decoder needs 0/1 features;
    /// the Gaussian decoder takes real features at any scale (it standardises them itself, <see cref="IwaeOptions.Standardize"/>).</summary>
    public sealed class IwaeEstimator : DensityEstimator<IwaeModel, IwaeOptions>
    {
        /// <summary>Columns, contamination, sample settings and the engine's <see cref="IwaeOptions"/> (<c>ModelOptions</c>).</summary>
        public sealed class Options : DensityEstimatorOptions<IwaeOptions> { }

        internal IwaeEstimator(MLContext mlContext, Options options) : base(mlContext, options, "Iwae") { }

        /// <inheritdoc/>
        protected override IwaeModel Train(RowMatrix data, RowMatrix? validation, IwaeOptions options,
            IProgress<TrainingProgress> progress, CancellationToken cancellationToken)
            => IwaeModel.Fit(data, options, validation, progress, cancellationToken);

        /// <inheritdoc/>
        protected override IwaeModel TrainStreamed(IRowStream data, IRowStream? validation, IwaeOptions options, StreamingOptions streaming,
            IProgress<TrainingProgress> progress, CancellationToken cancellationToken)
            => IwaeModel.Fit(data, options, validation, streaming, progress, cancellationToken);

        /// <inheritdoc/>
        protected override string? NonBinaryRemedy(IwaeOptions options)
            => $"for real-valued features set {nameof(IwaeOptions.Likelihood)} = {nameof(IwaeLikelihood)}.{nameof(IwaeLikelihood.Gaussian)}";
    }
}

namespace Microsoft.ML
{
    public static partial class DensityEstimationCatalogExtensions
    {
        /// <summary>
        /// IWAE density estimator on a known-size Single vector column. Appends LogDensity (importance-sampled estimate of
        /// log p(x) with K = evaluationSamples), Score (= −LogDensity) and PredictedLabel.
        /// </summary>
        /// <param name="catalog">The catalog.</param>
        /// <param name="featureColumnName">Input column. Default <see cref="DensityEstimatorDefaults.FeatureColumnName"/>.</param>
        /// <param name="likelihood">Bernoulli (0/1 features) or Gaussian (real features) decoder. Default <see cref="IwaeOptions.Defaults.Likelihood"/>.</param>
        /// <param name="samples">Importance samples k of the training bound (1 = VAE). Default <see cref="IwaeOptions.Defaults.Samples"/>.</param>
        /// <param name="maxEpochs">Maximum training epochs; 0 sets them from the training rows (100 on 10,000 rows or more, more on fewer: <see cref="Microsoft.ML.DeepDensity.Estimation.ImportanceSampledOptions.EpochsFor"/>). Default <see cref="Microsoft.ML.DeepDensity.Estimation.ImportanceSampledOptions.Defaults.MaxEpochs"/>.</param>
        /// <param name="evaluationSamples">Importance samples K of the log-density estimate. Default <see cref="Microsoft.ML.DeepDensity.Estimation.ImportanceSampledOptions.Defaults.EvaluationSamples"/>.</param>
        /// <param name="contamination">Expected anomaly fraction, for PredictedLabel: the threshold is that quantile of the scores of rows the model did not train on (<see cref="DensityEstimatorOptions.ThresholdRows"/>). Default <see cref="DensityEstimatorDefaults.Contamination"/>.</param>
        /// <param name="seed">Seed of initialisation, noise, shuffling and the validation split. Default <see cref="Microsoft.ML.DeepDensity.Training.GradientTrainingOptions.Defaults.Seed"/>.</param>
        public static IwaeEstimator Iwae(this DensityEstimationCatalog catalog, string featureColumnName = DensityEstimatorDefaults.FeatureColumnName,
            IwaeLikelihood likelihood = IwaeOptions.Defaults.Likelihood, int samples = IwaeOptions.Defaults.Samples,
            int maxEpochs = Microsoft.ML.DeepDensity.Estimation.ImportanceSampledOptions.Defaults.MaxEpochs, int evaluationSamples = Microsoft.ML.DeepDensity.Estimation.ImportanceSampledOptions.Defaults.EvaluationSamples,
            double contamination = DensityEstimatorDefaults.Contamination, ulong seed = GradientTrainingOptions.Defaults.Seed)
        {
            ArgumentNullException.ThrowIfNull(catalog);
            return new IwaeEstimator(catalog.Context, new IwaeEstimator.Options
            {
                FeatureColumnName = featureColumnName,
                Contamination = contamination,
                ModelOptions = new IwaeOptions { Likelihood = likelihood, Samples = samples, MaxEpochs = maxEpochs, EvaluationSamples = evaluationSamples, Seed = seed },
            });
        }

        /// <summary>IWAE density estimator with full options (columns, contamination, sample column, engine options).</summary>
        /// <param name="catalog">The catalog.</param>
        /// <param name="options">Columns, contamination, sample column and the engine's options (<c>ModelOptions</c>);
        /// validated here and again at Fit (the object is kept, not copied).</param>
        public static IwaeEstimator Iwae(this DensityEstimationCatalog catalog, IwaeEstimator.Options options)
        {
            ArgumentNullException.ThrowIfNull(catalog);
            ArgumentNullException.ThrowIfNull(options);
            return new IwaeEstimator(catalog.Context, options);
        }
    }
}
