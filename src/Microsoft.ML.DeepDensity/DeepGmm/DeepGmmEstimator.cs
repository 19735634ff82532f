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

        /// <inheritdoc/>
        protected override DeepGmmModel TrainStreamed(IRowStream data, IRowStream? validation, DeepGmmOptions options, StreamingOptions streaming,
            IProgress<TrainingProgress> progress, CancellationToken cancellationToken)
            => DeepGmmModel.Fit(data, options, validation, streaming, progress, cancellationToken);

        /// <summary>The engine's streamed Fit needs the exact E-step and the L-BFGS M-step; said here, naming the setting,
        /// when the estimator is created (it used to be a NotSupportedException from the engine, after the upstream
        /// stages had read the whole view).</summary>
        /// <param name="options">The engine's options.</param>
        protected override void ValidateStreamedModelOptions(DeepGmmOptions options)
        {
            if (!options.UsesExactEStep)
                throw new ArgumentOutOfRangeException(options.EStep == DeepGmmEStep.Heuristic ? nameof(DeepGmmOptions.EStep) : nameof(DeepGmmOptions.ExactPathLimit),
                    $"TrainingData = Streamed trains the Deep GMM with the exact E-step only: {options.WhyNotExactEStep}; or train in memory.");
            if (options.MStep != DeepGmmMStep.Lbfgs)
                throw new ArgumentOutOfRangeException(nameof(DeepGmmOptions.MStep), options.MStep,
                    $"TrainingData = Streamed trains the Deep GMM with MStep = {nameof(DeepGmmMStep.Lbfgs)} only (the minibatch M-step keeps the rows of every path); or train in memory.");
        }
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
        /// <param name="featureColumnName">Input column. Default <see cref="DensityEstimatorDefaults.FeatureColumnName"/>.</param>
        /// <param name="layers">Components per layer, bottom first. Default null: automatic (<see cref="DeepGmmOptions.Defaults.LayerCandidates"/>: <see cref="DeepGmmOptions.Defaults.Layers"/> on enough rows; on fewer the best of [1], [2, 2] and [4, 4] on the held-out rows); a value given is trained as it is.</param>
        /// <param name="maxIterations">Maximum EM iterations. Default <see cref="DeepGmmOptions.Defaults.MaxIterations"/>.</param>
        /// <param name="contamination">Expected anomaly fraction, for PredictedLabel: the threshold is that quantile of the scores of rows the model did not train on (<see cref="DensityEstimatorOptions.ThresholdRows"/>). Default <see cref="DensityEstimatorDefaults.Contamination"/>.</param>
        /// <param name="seed">Seed of initialisation, E-step restarts and the validation split. Default <see cref="DeepGmmOptions.Defaults.Seed"/>.</param>
        public static DeepGmmEstimator DeepGmm(this DensityEstimationCatalog catalog, string featureColumnName = DensityEstimatorDefaults.FeatureColumnName,
            int[]? layers = null, int maxIterations = DeepGmmOptions.Defaults.MaxIterations, double contamination = DensityEstimatorDefaults.Contamination, ulong seed = DeepGmmOptions.Defaults.Seed)
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
        /// <param name="catalog">The catalog.</param>
        /// <param name="options">Columns, contamination, sample column and the engine's options (<c>ModelOptions</c>);
        /// validated here and again at Fit (the object is kept, not copied).</param>
        public static DeepGmmEstimator DeepGmm(this DensityEstimationCatalog catalog, DeepGmmEstimator.Options options)
        {
            ArgumentNullException.ThrowIfNull(catalog);
            ArgumentNullException.ThrowIfNull(options);
            return new DeepGmmEstimator(catalog.Context, options);
        }
    }
}
