using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Training;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Transforms
{

    /// <summary>Deep RNADE (several MADE-masked hidden layers; one ordering by default, or an ensemble of orderings trained
    /// together) as an ML.NET estimator; see <see cref="DensityEstimator{TModel,TModelOptions}"/> for columns and
    /// training. Its density is exact like RNADE's and higher on held-out data at the defaults, at one network pass per
    /// ordering per scored row.</summary>
    public sealed class DeepRnadeEstimator : DensityEstimator<DeepRnadeModel, DeepRnadeOptions>
    {
        /// <summary>Columns, contamination, sample settings and the engine's <see cref="DeepRnadeOptions"/> (<c>ModelOptions</c>).</summary>
        public sealed class Options : DensityEstimatorOptions<DeepRnadeOptions> { }

        internal DeepRnadeEstimator(MLContext mlContext, Options options) : base(mlContext, options, "DeepRnade") { }

        /// <inheritdoc/>
        protected override DeepRnadeModel Train(RowMatrix data, RowMatrix? validation, DeepRnadeOptions options,
            IProgress<TrainingProgress> progress, CancellationToken cancellationToken)
            => DeepRnadeModel.Fit(data, options, validation, progress, cancellationToken);

        /// <inheritdoc/>
        protected override DeepRnadeModel TrainStreamed(IRowStream data, IRowStream? validation, DeepRnadeOptions options, StreamingOptions streaming,
            IProgress<TrainingProgress> progress, CancellationToken cancellationToken)
            => DeepRnadeModel.Fit(data, options, validation, streaming, progress, cancellationToken);
    }
}

namespace Microsoft.ML
{
    public static partial class DensityEstimationCatalogExtensions
    {
        /// <summary>
        /// Deep RNADE density estimator on a known-size Single vector column: an RNADE with several MADE-masked hidden
        /// layers whose exact log-density averages the densities of <paramref name="orderings"/> orderings trained together
        /// (one by default: at the default sizes one ordering trained alone beats an ensemble whose orderings share the
        /// training). Appends LogDensity, Score (= −LogDensity) and PredictedLabel (Score
        /// above the (1 − contamination) quantile of training scores). The minibatch follows the training rows
        /// (<see cref="DeepRnadeOptions.Defaults.BatchSize"/>: 100 from 9,901 rows on, ⌈rows / 100⌉ down to 10 on fewer,
        /// <see cref="DeepRnadeOptions.BatchSizeFor"/>), so a small table trains 100 optimiser steps an epoch.
        /// </summary>
        /// <param name="catalog">The catalog.</param>
        /// <param name="featureColumnName">Input column. Default <see cref="DensityEstimatorDefaults.FeatureColumnName"/>.</param>
        /// <param name="hiddenUnits">Units per hidden layer. Default <see cref="DeepRnadeOptions.Defaults.HiddenUnits"/>.</param>
        /// <param name="hiddenLayers">Hidden layers. Default <see cref="DeepRnadeOptions.Defaults.HiddenLayers"/>.</param>
        /// <param name="components">Gaussian components per conditional. Default <see cref="RnadeOptions.Defaults.Components"/>.</param>
        /// <param name="orderings">Orderings the density averages (scoring costs one network pass per ordering). Default <see cref="DeepRnadeOptions.Defaults.Orderings"/>.</param>
        /// <param name="maxEpochs">Maximum training epochs (early stopping on a held-out 10 %). Default <see cref="RnadeOptions.Defaults.MaxEpochs"/>.</param>
        /// <param name="contamination">Expected anomaly fraction, for PredictedLabel: the threshold is that quantile of the scores of rows the model did not train on (<see cref="DensityEstimatorOptions.ThresholdRows"/>). Default <see cref="DensityEstimatorDefaults.Contamination"/>.</param>
        /// <param name="seed">Seed of initialisation, orderings, shuffling and the validation split. Default <see cref="Microsoft.ML.DeepDensity.Training.GradientTrainingOptions.Defaults.Seed"/>.</param>
        public static DeepRnadeEstimator DeepRnade(this DensityEstimationCatalog catalog, string featureColumnName = DensityEstimatorDefaults.FeatureColumnName,
            int hiddenUnits = DeepRnadeOptions.Defaults.HiddenUnits, int hiddenLayers = DeepRnadeOptions.Defaults.HiddenLayers,
            int components = RnadeOptions.Defaults.Components, int orderings = DeepRnadeOptions.Defaults.Orderings,
            int maxEpochs = RnadeOptions.Defaults.MaxEpochs, double contamination = DensityEstimatorDefaults.Contamination,
            ulong seed = GradientTrainingOptions.Defaults.Seed)
        {
            ArgumentNullException.ThrowIfNull(catalog);
            return new DeepRnadeEstimator(catalog.Context, new DeepRnadeEstimator.Options
            {
                FeatureColumnName = featureColumnName,
                Contamination = contamination,
                ModelOptions = new DeepRnadeOptions
                {
                    HiddenUnits = hiddenUnits, HiddenLayers = hiddenLayers, Components = components, Orderings = orderings,
                    MaxEpochs = maxEpochs, Seed = seed,
                },
            });
        }

        /// <summary>Deep RNADE density estimator with full options (columns, contamination, sample column, engine options).</summary>
        /// <param name="catalog">The catalog.</param>
        /// <param name="options">Columns, contamination, sample column and the engine's options (<c>ModelOptions</c>);
        /// validated here and again at Fit (the object is kept, not copied).</param>
        public static DeepRnadeEstimator DeepRnade(this DensityEstimationCatalog catalog, DeepRnadeEstimator.Options options)
        {
            ArgumentNullException.ThrowIfNull(catalog);
            ArgumentNullException.ThrowIfNull(options);
            return new DeepRnadeEstimator(catalog.Context, options);
        }
    }
}
