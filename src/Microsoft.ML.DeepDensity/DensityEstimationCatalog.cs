using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Training;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML;

/// <summary>
/// Entry point of the DeepDensity estimators: <c>mlContext.DensityEstimation.Rnade(...)</c> (C# 14 extension property;
/// with older compilers use <c>new DensityEstimationCatalog(mlContext)</c>). Each model family adds one extension
/// method with simple arguments and one taking its options class.
/// </summary>
/// <remarks>
/// Save a fitted pipeline with <c>mlContext.Model.Save</c>; load it for scoring with
/// <c>mlContext.Model.LoadWithLiveDensityModels(path, out schema)</c>
/// (<see cref="DeepDensity.DensityModelExtensions.LoadWithLiveDensityModels(ModelOperationsCatalog, string, out DataViewSchema)"/>),
/// which scores in blocks like the fitted transformer and validates every saved model at load. The plain
/// <c>mlContext.Model.Load</c> gives the same values but scores one row per call (ML.NET allows a loaded extension
/// nothing else), finds a damaged model only when rows are read, and cannot tell the row number of a bad row.
/// </remarks>
public sealed class DensityEstimationCatalog
{
    /// <summary>Creates the catalog for <paramref name="mlContext"/> (its log receives training progress).</summary>
    /// <param name="mlContext">The context the estimators are created in.</param>
    public DensityEstimationCatalog(MLContext mlContext) => Context = mlContext ?? throw new ArgumentNullException(nameof(mlContext));

    /// <summary>The context estimators are created in.</summary>
    public MLContext Context { get; }
}

/// <summary>Catalog extension members of the DeepDensity ML.NET layer.</summary>
public static partial class DensityEstimationCatalogExtensions
{
    /// <param name="mlContext">The context the estimators are created in (its log receives training progress).</param>
    extension(MLContext mlContext)
    {
        /// <summary>DeepDensity density estimators (RNADE, ...): append LogDensity, Score and PredictedLabel columns.</summary>
        public DensityEstimationCatalog DensityEstimation => new(mlContext);
    }

    /// <summary>
    /// RNADE density estimator on a known-size Single vector column. Appends LogDensity, Score (= −LogDensity) and
    /// PredictedLabel (Score above the (1 − contamination) quantile of training scores).
    /// </summary>
    /// <param name="catalog">The catalog.</param>
    /// <param name="featureColumnName">Input column. Default <see cref="DensityEstimatorDefaults.FeatureColumnName"/>.</param>
    /// <param name="hiddenUnits">Hidden units. Default <see cref="RnadeOptions.Defaults.HiddenUnits"/>.</param>
    /// <param name="components">Gaussian components per conditional. Default <see cref="RnadeOptions.Defaults.Components"/>.</param>
    /// <param name="maxEpochs">Maximum training epochs (early stopping on a held-out 10 %). Default <see cref="RnadeOptions.Defaults.MaxEpochs"/>.</param>
    /// <param name="contamination">Expected anomaly fraction, for PredictedLabel: the threshold is that quantile of the scores of rows the model did not train on (<see cref="DensityEstimatorOptions.ThresholdRows"/>). Default <see cref="DensityEstimatorDefaults.Contamination"/>.</param>
    /// <param name="seed">Seed of initialisation, shuffling and the validation split. Default <see cref="Microsoft.ML.DeepDensity.Training.GradientTrainingOptions.Defaults.Seed"/>.</param>
    public static RnadeEstimator Rnade(this DensityEstimationCatalog catalog, string featureColumnName = DensityEstimatorDefaults.FeatureColumnName,
        int hiddenUnits = RnadeOptions.Defaults.HiddenUnits, int components = RnadeOptions.Defaults.Components,
        int maxEpochs = RnadeOptions.Defaults.MaxEpochs, double contamination = DensityEstimatorDefaults.Contamination, ulong seed = GradientTrainingOptions.Defaults.Seed)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        var options = new RnadeEstimator.Options
        {
            FeatureColumnName = featureColumnName,
            Contamination = contamination,
            ModelOptions = new RnadeOptions { HiddenUnits = hiddenUnits, Components = components, MaxEpochs = maxEpochs, Seed = seed },
        };
        return new RnadeEstimator(catalog.Context, options);
    }

    /// <summary>RNADE density estimator with full options (columns, contamination, sample column, engine options).</summary>
    /// <param name="catalog">The catalog.</param>
    /// <param name="options">Columns, contamination, sample column and the engine's options (<c>ModelOptions</c>);
    /// validated here and again at Fit (the object is kept, not copied).</param>
    public static RnadeEstimator Rnade(this DensityEstimationCatalog catalog, RnadeEstimator.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        return new RnadeEstimator(catalog.Context, options);
    }
}
