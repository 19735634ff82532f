using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML;

public static partial class DensityEstimationCatalogExtensions
{
    /// <summary>
    /// RNN-RNADE on whole sequences: each row holds one sequence, its frames back to back in a Single vector column of
    /// a multiple of <paramref name="frameSize"/> values. Appends LogDensity, LogDensityPerFrame, FrameLogDensities
    /// (log p(x_t | x_&lt;t) per frame), Score (= −LogDensityPerFrame) and PredictedLabel.
    /// </summary>
    /// <param name="catalog">The catalog.</param>
    /// <param name="featureColumnName">Input column: a Single vector (variable or known size) holding a sequence's frames back to back.</param>
    /// <param name="frameSize">Values per frame (time step).</param>
    /// <param name="hiddenUnits">RNADE hidden units. Default <see cref="RnnRnadeOptions.Defaults.HiddenUnits"/>.</param>
    /// <param name="recurrentUnits">Recurrent units. Default <see cref="RnnRnadeOptions.Defaults.RecurrentUnits"/>.</param>
    /// <param name="maxEpochs">Maximum training epochs (early stopping on a held-out 10 % of the sequences); 0 sets them from the number of training sequences (<see cref="RnnRnadeOptions.EpochsFor"/>). Default <see cref="RnnRnadeOptions.Defaults.MaxEpochs"/>.</param>
    /// <param name="contamination">Expected anomaly fraction, for PredictedLabel: the threshold is that quantile of the scores of sequences the model did not train on (<see cref="SequenceDensityEstimator.Options.ThresholdRows"/>). Default <see cref="DensityEstimatorDefaults.Contamination"/>.</param>
    /// <param name="seed">Seed of initialisation, shuffling and the validation split. Default <see cref="Microsoft.ML.DeepDensity.Training.GradientTrainingOptions.Defaults.Seed"/>.</param>
    public static SequenceDensityEstimator RnnRnade(this DensityEstimationCatalog catalog, string featureColumnName, int frameSize,
        int hiddenUnits = RnnRnadeOptions.Defaults.HiddenUnits, int recurrentUnits = RnnRnadeOptions.Defaults.RecurrentUnits,
        int maxEpochs = RnnRnadeOptions.Defaults.MaxEpochs, double contamination = DensityEstimatorDefaults.Contamination, ulong seed = Microsoft.ML.DeepDensity.Training.GradientTrainingOptions.Defaults.Seed)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return catalog.RnnRnade(new SequenceDensityEstimator.Options { FeatureColumnName = featureColumnName, FrameSize = frameSize, Contamination = contamination },
            new RnnRnadeOptions { HiddenUnits = hiddenUnits, RecurrentUnits = recurrentUnits, MaxEpochs = maxEpochs, Seed = seed });
    }

    /// <summary>RNN-RNADE on whole sequences with full options: the columns (<paramref name="options"/>, the generic
    /// sequence estimator's) and the engine's <paramref name="modelOptions"/> (null = defaults).</summary>
    /// <param name="catalog">The catalog.</param>
    /// <param name="options">Columns, <see cref="SequenceDensityEstimator.Options.FrameSize"/> (required) and contamination.</param>
    /// <param name="modelOptions">The engine's options, validated here and again at Fit before a row is read; null: <see cref="RnnRnadeOptions"/> defaults.</param>
    public static SequenceDensityEstimator RnnRnade(this DensityEstimationCatalog catalog, SequenceDensityEstimator.Options options,
        RnnRnadeOptions? modelOptions = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        var o = modelOptions ?? new RnnRnadeOptions();
        ArgumentNullException.ThrowIfNull(options);
        // Checked at construction and at every Fit before a sequence is read: the engine's settings, a model no file could
        // hold (known from them and the frame size alone; the engine checks again, but only after the whole view was read),
        // and settings set where they have no effect (at Fit also those a validation set makes moot or needs).
        return new SequenceDensityEstimator(catalog.Context, options, "RnnRnade",
            (data, validation, progress, ct) => RnnRnadeModel.Fit(data, o, validation, progress, ct),
            hasValidationSet =>
            {
                o.Validate();
                o.PredictModelSize(options.FrameSize).EnsureLoadable();
                SettingEffects.CheckModelOptions(o);
                if (hasValidationSet is bool known) SettingEffects.CheckAtFit(o, known, columns: null);
            },
            // The threshold's held-out sequences are the engine's own split; training windows held out of a few long
            // sequences are no whole sequences (the training sequences set the threshold: they are fewer than 20 anyway).
            data => RnnRnadeModel.HeldOutExamples(data, o) is var (examples, heldOut) && ReferenceEquals(examples, data) ? heldOut : []);
    }

    /// <summary>
    /// RNN-RNADE on frame rows (one row per time step: a frame vector, a sequence id and an order column). Each row gets
    /// LogDensity = log p(x_t | x_&lt;t) of its sequence, Score = −LogDensity and PredictedLabel; see
    /// <see cref="RnnRnadeFrameEstimator"/> for the grouping and ordering rule.
    /// </summary>
    /// <param name="catalog">The catalog.</param>
    /// <param name="featureColumnName">Input column: one frame per row, a known-size Single vector.</param>
    /// <param name="sequenceIdColumnName">Input column: the sequence a row belongs to (text or numeric).</param>
    /// <param name="orderColumnName">Input column: the row's position in time within its sequence (numeric, or a DateTime,
    /// DateTimeOffset or TimeSpan; increasing).</param>
    /// <param name="hiddenUnits">RNADE hidden units. Default <see cref="RnnRnadeOptions.Defaults.HiddenUnits"/>.</param>
    /// <param name="recurrentUnits">Recurrent units. Default <see cref="RnnRnadeOptions.Defaults.RecurrentUnits"/>.</param>
    /// <param name="maxEpochs">Maximum training epochs (early stopping on a held-out 10 % of the sequences); 0 sets them from the number of training sequences (<see cref="RnnRnadeOptions.EpochsFor"/>). Default <see cref="RnnRnadeOptions.Defaults.MaxEpochs"/>.</param>
    /// <param name="contamination">Expected anomaly fraction, for PredictedLabel: the threshold is that quantile of the scores of frames the model did not train on (<see cref="RnnRnadeFrameEstimator.Options.ThresholdRows"/>). Default <see cref="DensityEstimatorDefaults.Contamination"/>.</param>
    /// <param name="seed">Seed of initialisation, shuffling and the validation split. Default <see cref="Microsoft.ML.DeepDensity.Training.GradientTrainingOptions.Defaults.Seed"/>.</param>
    public static RnnRnadeFrameEstimator RnnRnade(this DensityEstimationCatalog catalog, string featureColumnName,
        string sequenceIdColumnName, string orderColumnName, int hiddenUnits = RnnRnadeOptions.Defaults.HiddenUnits, int recurrentUnits = RnnRnadeOptions.Defaults.RecurrentUnits,
        int maxEpochs = RnnRnadeOptions.Defaults.MaxEpochs,
        double contamination = DensityEstimatorDefaults.Contamination, ulong seed = Microsoft.ML.DeepDensity.Training.GradientTrainingOptions.Defaults.Seed)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new RnnRnadeFrameEstimator(catalog.Context, new RnnRnadeFrameEstimator.Options
        {
            FeatureColumnName = featureColumnName, SequenceIdColumnName = sequenceIdColumnName, OrderColumnName = orderColumnName,
            Contamination = contamination,
            ModelOptions = new RnnRnadeOptions { HiddenUnits = hiddenUnits, RecurrentUnits = recurrentUnits, MaxEpochs = maxEpochs, Seed = seed },
        });
    }

    /// <summary>RNN-RNADE on frame rows with full options.</summary>
    /// <param name="catalog">The catalog.</param>
    /// <param name="options">Columns, contamination and the engine's options (<see cref="RnnRnadeFrameEstimator.Options.ModelOptions"/>).</param>
    public static RnnRnadeFrameEstimator RnnRnade(this DensityEstimationCatalog catalog, RnnRnadeFrameEstimator.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new RnnRnadeFrameEstimator(catalog.Context, options);
    }
}
