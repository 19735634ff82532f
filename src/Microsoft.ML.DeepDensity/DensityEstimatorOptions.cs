using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Transforms;

/// <summary>
/// The defaults of the ML.NET-side settings of every density estimator (columns, contamination, scoring block): the one
/// place they are written; the options classes, the catalog's parameters and the docs refer here. The engine's settings
/// have theirs in each options class's <c>Defaults</c> (e.g. <see cref="Models.Rnade.RnadeOptions.Defaults"/>,
/// <see cref="GradientTrainingOptions.Defaults"/>).
/// </summary>
public static class DensityEstimatorDefaults
{
    /// <summary>Input column: "Features" (ML.NET's convention).</summary>
    public const string FeatureColumnName = "Features";
    /// <summary>Output column of the log-density: "LogDensity".</summary>
    public const string LogDensityColumnName = "LogDensity";
    /// <summary>Output column of the anomaly score: "Score" (what ML.NET's anomaly evaluator reads).</summary>
    public const string ScoreColumnName = "Score";
    /// <summary>Output column of the anomaly flag: "PredictedLabel" (what ML.NET's anomaly evaluator reads).</summary>
    public const string PredictedLabelColumnName = "PredictedLabel";
    /// <summary>Sequence models' output column of the log-density divided by the number of frames: "LogDensityPerFrame".</summary>
    public const string LogDensityPerFrameColumnName = "LogDensityPerFrame";
    /// <summary>Sequence models' output column of the per-frame conditional log-densities: "FrameLogDensities".</summary>
    public const string FrameLogDensitiesColumnName = "FrameLogDensities";
    /// <summary>Frame-row input column holding the sequence id: "SequenceId".</summary>
    public const string SequenceIdColumnName = "SequenceId";
    /// <summary>Frame-row input column holding the time order within a sequence: "Order".</summary>
    public const string OrderColumnName = "Order";
    /// <summary>Expected anomaly fraction of the training data: 0.01.</summary>
    public const double Contamination = 0.01;
    /// <summary>Which rows' scores set the PredictedLabel threshold: <see cref="DensityThresholdRows.HeldOut"/> (rows the
    /// model did not train on, when there are enough of them).</summary>
    public const DensityThresholdRows ThresholdRows = DensityThresholdRows.HeldOut;
    /// <summary>Rows the live transformer scores per batched engine call: 2048.</summary>
    public const int ScoringBlockRows = 2048;
    /// <summary>Seed of the sample column's draws: 0.</summary>
    public const ulong SampleSeed = 0;
    /// <summary>How the training data is read: <see cref="DensityTrainingData.InMemory"/> (copied once; results as
    /// before streaming existed).</summary>
    public const DensityTrainingData TrainingData = DensityTrainingData.InMemory;
    /// <summary>Rows of a streamed Fit's shuffle buffer: 0 = automatic (<see cref="StreamingOptions.Defaults.ShuffleBufferRows"/>).</summary>
    public const int ShuffleBufferRows = StreamingOptions.Defaults.ShuffleBufferRows;
}

/// <summary>
/// ML.NET-side settings shared by every density estimator: which column to read, which columns to append, how the
/// anomaly threshold is learned, and optional sample / standard-error columns. Each model's options class
/// (e.g. <see cref="RnadeEstimator.Options"/>) derives from <see cref="DensityEstimatorOptions{TModelOptions}"/> and
/// adds the engine's own options object.
/// </summary>
public abstract class DensityEstimatorOptions
{
    /// <summary>Input column: a known-size vector of <see cref="float"/>. Default <see cref="DensityEstimatorDefaults.FeatureColumnName"/>.</summary>
    public string FeatureColumnName { get; set; } = DensityEstimatorDefaults.FeatureColumnName;

    /// <summary>Output column (Single): the model's log-density of the row (see the model's <see cref="DensityKind"/>). Default <see cref="DensityEstimatorDefaults.LogDensityColumnName"/>.
    /// It is the density of the features as they reach the estimator: after a normalizer (NormalizeMinMax,
    /// NormalizeMeanVariance, ...) it is the log-density of the <em>normalised</em> features. For an affine normalizer
    /// y = a ∘ x + b, the log-density of the raw features is LogDensity + Σⱼ log |aⱼ| (a constant shift, so scores,
    /// thresholds and rankings are unaffected).</summary>
    public string LogDensityColumnName { get; set; } = DensityEstimatorDefaults.LogDensityColumnName;

    /// <summary>Output column (Single): anomaly score = −LogDensity, higher = more anomalous, always finite (±∞ and NaN are
    /// clamped to ±<see cref="float.MaxValue"/>, NaN counting as most anomalous) so that ML.NET's anomaly evaluator keeps every row. Default <see cref="DensityEstimatorDefaults.ScoreColumnName"/>.</summary>
    public string ScoreColumnName { get; set; } = DensityEstimatorDefaults.ScoreColumnName;

    /// <summary>Output column (Boolean): Score &gt; the threshold learned at Fit from <see cref="Contamination"/> (on the rows <see cref="ThresholdRows"/> chooses). Default <see cref="DensityEstimatorDefaults.PredictedLabelColumnName"/>.</summary>
    public string PredictedLabelColumnName { get; set; } = DensityEstimatorDefaults.PredictedLabelColumnName;

    /// <summary>Optional output column (Single) with the standard error of the log-density (non-zero only for
    /// <see cref="DensityKind.Estimate"/> models); null = not produced. Default null.</summary>
    public string? StandardErrorColumnName { get; set; }

    /// <summary>Optional output column: one draw from the model per row (a vector like the features), reproducible from
    /// <see cref="SampleSeed"/> and the row's feature values; null = not produced. Default null.</summary>
    public string? SampleColumnName { get; set; }

    /// <summary>Seed of the <see cref="SampleColumnName"/> draws; only with a sample column (a value other than the default
    /// without one is refused). Default <see cref="DensityEstimatorDefaults.SampleSeed"/>.</summary>
    public ulong SampleSeed { get; set; } = DensityEstimatorDefaults.SampleSeed;

    /// <summary>Expected fraction of anomalies in the data: the PredictedLabel threshold is the (1 − Contamination)
    /// quantile of the scores of the rows <see cref="ThresholdRows"/> chooses, the score that ⌊Contamination · n⌋ of those n
    /// rows exceed (fewer when rows tie at it: PredictedLabel is Score &gt; threshold). By default these are rows the model
    /// did not train on, so about Contamination of new rows of the training distribution are flagged; a threshold set on
    /// the training rows flags about Contamination of them but more of new rows. In [0, 0.5]; 0 = the largest training
    /// score. Default <see cref="DensityEstimatorDefaults.Contamination"/>.</summary>
    public double Contamination { get; set; } = DensityEstimatorDefaults.Contamination;

    /// <summary>Which rows' scores set the PredictedLabel threshold. <see cref="DensityThresholdRows.HeldOut"/>: rows the
    /// model did not train on: the validation view given to <c>Fit(train, validation)</c>, else the rows the model held out
    /// of the training data (its own ValidationFraction and Seed); when those are fewer than max(20, ⌈1 / Contamination⌉),
    /// but at least 10, a normal approximation of their scores' quantile (never below their largest); fewer than 10
    /// (always with Contamination 0 or no held-out rows, e.g. the RBM's default ValidationFraction 0) the training rows,
    /// with a warning in the log (not at Contamination 0).
    /// <see cref="DensityThresholdRows.Training"/>: every training row, the rule before held-out rows were used.
    /// The Fit's log says which rows set it. Default <see cref="DensityEstimatorDefaults.ThresholdRows"/>.</summary>
    public DensityThresholdRows ThresholdRows { get; set; } = DensityEstimatorDefaults.ThresholdRows;

    /// <summary>Rows the live transformer reads ahead and scores with one batched engine call (the engine parallelises
    /// inside a block); its buffers hold this many rows (features, pass-through columns, samples), fewer when a row holds
    /// more than 8,192 values (a block holds at most 2^24 values of features, samples and known-size vector pass-through
    /// columns, 64 MiB; scores do not depend on it). In [1,
    /// <see cref="MaxScoringBlockRows"/>]. Default <see cref="DensityEstimatorDefaults.ScoringBlockRows"/>.</summary>
    public int ScoringBlockRows { get; set; } = DensityEstimatorDefaults.ScoringBlockRows;

    /// <summary>Upper bound on <see cref="ScoringBlockRows"/> (65,536: beyond it a block gains no speed and only costs
    /// memory); also enforced when a saved model is loaded.</summary>
    public const int MaxScoringBlockRows = 1 << 16;

    /// <summary>How Fit reads the training (and validation) data: <see cref="DensityTrainingData.InMemory"/> copies the
    /// feature column once; <see cref="DensityTrainingData.Streamed"/> reads it through a cursor every pass with a
    /// bounded shuffle buffer and never holds it whole (RNADE, Deep RNADE, RBM, Deep GMM and IWAE; docs/scaling.md: memory bound, local
    /// shuffle, hashed validation split). Default <see cref="DensityEstimatorDefaults.TrainingData"/>.</summary>
    public DensityTrainingData TrainingData { get; set; } = DensityEstimatorDefaults.TrainingData;

    /// <summary>Rows of the shuffle buffer of a streamed Fit (rounded up to whole batches); 0 = automatic, 64 MiB of
    /// rows. Streamed only: a value other than the default with <see cref="DensityTrainingData.InMemory"/> is refused. Default <see cref="DensityEstimatorDefaults.ShuffleBufferRows"/>.</summary>
    public int ShuffleBufferRows { get; set; } = DensityEstimatorDefaults.ShuffleBufferRows;

    /// <summary>Optional extra receiver of training progress (progress is always also written to the MLContext log). Default null.</summary>
    public IProgress<TrainingProgress>? Progress { get; set; }

    /// <summary>Cancels training (the engine checks it between minibatches). Default none.</summary>
    public CancellationToken CancellationToken { get; set; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting, or the first set to a value other
    /// than its default where it has no effect (docs/mlnet.md).</summary>
    public virtual void Validate()
    {
        NonEmpty(FeatureColumnName, nameof(FeatureColumnName));
        NonEmpty(LogDensityColumnName, nameof(LogDensityColumnName));
        NonEmpty(ScoreColumnName, nameof(ScoreColumnName));
        NonEmpty(PredictedLabelColumnName, nameof(PredictedLabelColumnName));
        if (StandardErrorColumnName is not null) NonEmpty(StandardErrorColumnName, nameof(StandardErrorColumnName));
        if (SampleColumnName is not null) NonEmpty(SampleColumnName, nameof(SampleColumnName));
        ReservedColumns.CheckSetting(nameof(FeatureColumnName), FeatureColumnName);
        ReservedColumns.CheckSetting(nameof(LogDensityColumnName), LogDensityColumnName);
        ReservedColumns.CheckSetting(nameof(ScoreColumnName), ScoreColumnName);
        ReservedColumns.CheckSetting(nameof(PredictedLabelColumnName), PredictedLabelColumnName);
        ReservedColumns.CheckSetting(nameof(StandardErrorColumnName), StandardErrorColumnName);
        ReservedColumns.CheckSetting(nameof(SampleColumnName), SampleColumnName);
        var outputs = new List<(string Setting, string Value)>
        {
            (nameof(LogDensityColumnName), LogDensityColumnName), (nameof(ScoreColumnName), ScoreColumnName),
            (nameof(PredictedLabelColumnName), PredictedLabelColumnName),
        };
        if (StandardErrorColumnName is not null) outputs.Add((nameof(StandardErrorColumnName), StandardErrorColumnName));
        if (SampleColumnName is not null) outputs.Add((nameof(SampleColumnName), SampleColumnName));
        ColumnSettings.CheckDistinct("Output", outputs);
        if (!(Contamination >= 0 && Contamination <= 0.5))
            throw new ArgumentOutOfRangeException(nameof(Contamination), FormattableString.Invariant($"Contamination must be in [0, 0.5] (got {Contamination})."));
        AnomalyThreshold.Check(ThresholdRows);
        if (!Enum.IsDefined(TrainingData))
            throw new ArgumentOutOfRangeException(nameof(TrainingData), TrainingData, "TrainingData must be InMemory or Streamed.");
        if (ShuffleBufferRows < 0)
            throw new ArgumentOutOfRangeException(nameof(ShuffleBufferRows), FormattableString.Invariant($"ShuffleBufferRows must be ≥ 0 (0 = automatic; got {ShuffleBufferRows})."));
        if (ScoringBlockRows < 1 || ScoringBlockRows > MaxScoringBlockRows)
            throw new ArgumentOutOfRangeException(nameof(ScoringBlockRows), FormattableString.Invariant($"ScoringBlockRows must be in [1, {MaxScoringBlockRows}] (got {ScoringBlockRows})."));
        // A setting set where it has no effect (ShuffleBufferRows in memory, SampleSeed without a sample column) is refused.
        SettingEffects.CheckEstimatorSettings(this);
    }

    private static void NonEmpty(string? value, string name)
    {
        if (string.IsNullOrWhiteSpace(value)) throw new ArgumentException($"{name} must be a non-empty column name.", name);
    }

    internal TransformerSettings ToSettings(float threshold) => new(
        FeatureColumnName, LogDensityColumnName, ScoreColumnName, PredictedLabelColumnName,
        StandardErrorColumnName, SampleColumnName, SampleSeed, Contamination, threshold, ScoringBlockRows);
}

/// <summary>ML.NET-side settings plus the engine's options object of one model family.</summary>
/// <typeparam name="TModelOptions">The engine options class, e.g. <see cref="Models.Rnade.RnadeOptions"/>.</typeparam>
public abstract class DensityEstimatorOptions<TModelOptions> : DensityEstimatorOptions where TModelOptions : class, new()
{
    /// <summary>The engine's hyper-parameters (network size, training loop, seed...). Default: the engine's defaults.</summary>
    public TModelOptions ModelOptions { get; set; } = new();
}

/// <summary>Everything a fitted density transformer needs besides the model (also what is saved next to the model).</summary>
internal sealed record TransformerSettings(
    string FeatureColumnName,
    string LogDensityColumnName,
    string ScoreColumnName,
    string PredictedLabelColumnName,
    string? StandardErrorColumnName,
    string? SampleColumnName,
    ulong SampleSeed,
    double Contamination,
    float Threshold,
    int ScoringBlockRows);

/// <summary>Checks on the column-name settings of the estimators' options.</summary>
internal static class ColumnSettings
{
    /// <summary>Two of <paramref name="settings"/> naming one column is an <see cref="ArgumentException"/> that names both
    /// settings and the column, its ParamName the later setting (it was "must be distinct (got a, b, a)", no ParamName).</summary>
    public static void CheckDistinct(string kind, IReadOnlyList<(string Setting, string Value)> settings)
    {
        for (int j = 1; j < settings.Count; j++)
            for (int i = 0; i < j; i++)
                if (string.Equals(settings[i].Value, settings[j].Value, StringComparison.Ordinal))
                    throw new ArgumentException($"{kind} column names must be distinct: {settings[i].Setting} and {settings[j].Setting} both name " +
                        $"'{settings[j].Value}' (got {string.Join(", ", settings.Select(o => $"{o.Setting} = {o.Value}"))}).", settings[j].Setting);
    }
}
