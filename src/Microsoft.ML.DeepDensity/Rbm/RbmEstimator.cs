using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Training;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Transforms
{
    /// <summary>Restricted Boltzmann machine (CD-k / PCD; exact or AIS log Z) as an ML.NET estimator; see
    /// <see cref="DensityEstimator{TModel,TModelOptions}"/> for columns and training. Bernoulli visible units need 0/1 features.</summary>
    public sealed class RbmEstimator : DensityEstimator<RbmModel, RbmOptions>
    {
        /// <summary>Columns, contamination, sample settings and the engine's <see cref="RbmOptions"/> (<c>ModelOptions</c>).</summary>
        public sealed class Options : DensityEstimatorOptions<RbmOptions> { }

        internal RbmEstimator(MLContext mlContext, Options options) : base(mlContext, options, "Rbm") { }

        /// <inheritdoc/>
        protected override RbmModel Train(RowMatrix data, RowMatrix? validation, RbmOptions options,
            IProgress<TrainingProgress> progress, CancellationToken cancellationToken)
            => RbmModel.Fit(data, options, validation, progress, cancellationToken);

        /// <inheritdoc/>
        protected override RbmModel TrainStreamed(IRowStream data, IRowStream? validation, RbmOptions options, StreamingOptions streaming,
            IProgress<TrainingProgress> progress, CancellationToken cancellationToken)
            => RbmModel.Fit(data, options, validation, streaming, progress, cancellationToken);

        /// <inheritdoc/>
        protected override string? NonBinaryRemedy(RbmOptions options)
            => $"for real-valued features set {nameof(RbmOptions.VisibleType)} = {nameof(RbmVisibleType)}.{nameof(RbmVisibleType.Gaussian)}";
    }
}

namespace Microsoft.ML
{
    public static partial class DensityEstimationCatalogExtensions
    {
        /// <summary>
        /// RBM density estimator on a known-size Single vector column. Appends LogDensity (−F(x) − log Z; exact when the
        /// smaller layer — the hidden layer for Gaussian units — has at most <see cref="RbmOptions.ExactLogPartitionMaxUnits"/>
        /// units, else an AIS estimate), Score (= −LogDensity) and PredictedLabel.
        /// </summary>
        /// <param name="catalog">The catalog.</param>
        /// <param name="featureColumnName">Input column. Default <see cref="DensityEstimatorDefaults.FeatureColumnName"/>.</param>
        /// <param name="hiddenUnits">Hidden units. Default <see cref="RbmOptions.Defaults.HiddenUnits"/>.</param>
        /// <param name="visibleType">Bernoulli (0/1 features) or Gaussian (real features). Default <see cref="RbmOptions.Defaults.VisibleType"/>.</param>
        /// <param name="maxEpochs">Training epochs; 0 (the default, <see cref="RbmOptions.Defaults.MaxEpochs"/>): as many as make a million training examples, between 1 and 1,000 (<see cref="RbmOptions.EpochsFor"/>).</param>
        /// <param name="contamination">Expected anomaly fraction, for PredictedLabel: the threshold is that quantile of the scores of rows the model did not train on (<see cref="DensityEstimatorOptions.ThresholdRows"/>). Default <see cref="DensityEstimatorDefaults.Contamination"/>.</param>
        /// <param name="seed">Seed of initialisation, Gibbs sampling, shuffling and the validation split. Default <see cref="Microsoft.ML.DeepDensity.Training.GradientTrainingOptions.Defaults.Seed"/>.</param>
        public static RbmEstimator Rbm(this DensityEstimationCatalog catalog, string featureColumnName = DensityEstimatorDefaults.FeatureColumnName,
            int hiddenUnits = RbmOptions.Defaults.HiddenUnits, RbmVisibleType visibleType = RbmOptions.Defaults.VisibleType,
            int maxEpochs = RbmOptions.Defaults.MaxEpochs,
            double contamination = DensityEstimatorDefaults.Contamination, ulong seed = GradientTrainingOptions.Defaults.Seed)
        {
            ArgumentNullException.ThrowIfNull(catalog);
            return new RbmEstimator(catalog.Context, new RbmEstimator.Options
            {
                FeatureColumnName = featureColumnName,
                Contamination = contamination,
                ModelOptions = new RbmOptions { HiddenUnits = hiddenUnits, VisibleType = visibleType, MaxEpochs = maxEpochs, Seed = seed },
            });
        }

        /// <summary>RBM density estimator with full options (columns, contamination, sample column, engine options).</summary>
        /// <param name="catalog">The catalog.</param>
        /// <param name="options">Columns, contamination, sample column and the engine's options (<c>ModelOptions</c>);
        /// validated here and again at Fit (the object is kept, not copied).</param>
        public static RbmEstimator Rbm(this DensityEstimationCatalog catalog, RbmEstimator.Options options)
        {
            ArgumentNullException.ThrowIfNull(catalog);
            ArgumentNullException.ThrowIfNull(options);
            return new RbmEstimator(catalog.Context, options);
        }
    }
}
