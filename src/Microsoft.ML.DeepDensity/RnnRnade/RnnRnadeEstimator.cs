using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Training;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.DeepDensity.Transforms;

/// <summary>
/// RNN-RNADE on whole sequences: each row holds one sequence, its frames back to back in a Single vector column
/// (usually variable-size) with <see cref="Options.FrameSize"/> values per frame. Appends the sequence's LogDensity,
/// its per-frame average, the vector of per-frame conditional log-densities log p(x_t | x_&lt;t), Score
/// (= −log-density per frame, so sequences of different lengths are comparable) and PredictedLabel.
/// </summary>
public sealed class RnnRnadeEstimator : IEstimator<RnnRnadeTransformer>
{
    /// <summary>Columns, frame size, contamination and the engine's <see cref="RnnRnadeOptions"/>.</summary>
    public sealed class Options
    {
        /// <summary>Input column: a Single vector (variable or known size) holding a sequence's frames back to back. Default "Features".</summary>
        public string FeatureColumnName { get; set; } = "Features";
        /// <summary>Values per frame D (required): a row's length must be a positive multiple of it.</summary>
        public int FrameSize { get; set; }
        /// <summary>Output (Single): log p of the whole sequence. Default "LogDensity".</summary>
        public string LogDensityColumnName { get; set; } = "LogDensity";
        /// <summary>Output (Single): LogDensity / number of frames. Default "LogDensityPerFrame".</summary>
        public string LogDensityPerFrameColumnName { get; set; } = "LogDensityPerFrame";
        /// <summary>Output (variable-size Single vector): log p(x_t | x_&lt;t) of every frame, the per-step anomaly scores. Default "FrameLogDensities".</summary>
        public string FrameLogDensitiesColumnName { get; set; } = "FrameLogDensities";
        /// <summary>Output (Single): −LogDensityPerFrame, finite. Default "Score".</summary>
        public string ScoreColumnName { get; set; } = "Score";
        /// <summary>Output (Boolean): Score above the (1 − Contamination) quantile of the training sequences' scores. Default "PredictedLabel".</summary>
        public string PredictedLabelColumnName { get; set; } = "PredictedLabel";
        /// <summary>Expected anomaly fraction of the training sequences, in [0, 0.5]. Default 0.01.</summary>
        public double Contamination { get; set; } = 0.01;
        /// <summary>Engine hyper-parameters. Default: the engine's defaults.</summary>
        public RnnRnadeOptions ModelOptions { get; set; } = new();
        /// <summary>Optional extra receiver of training progress (per-frame log-likelihoods). Default null.</summary>
        public IProgress<TrainingProgress>? Progress { get; set; }
        /// <summary>Cancels training. Default none.</summary>
        public CancellationToken CancellationToken { get; set; }

        internal IEnumerable<string> Outputs => new[] { LogDensityColumnName, LogDensityPerFrameColumnName, FrameLogDensitiesColumnName, ScoreColumnName, PredictedLabelColumnName };

        /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
        public void Validate()
        {
            if (FrameSize < 1) throw new ArgumentOutOfRangeException(nameof(FrameSize), FrameSize, $"FrameSize must be at least 1 (got {FrameSize}): set it to the number of values per time step.");
            RnnRnadeColumns.CheckNames(FeatureColumnName, Outputs, Contamination);
            ArgumentNullException.ThrowIfNull(ModelOptions, nameof(ModelOptions));
            ModelOptions.Validate();
        }
    }

    private readonly MLContext _ml;
    private readonly Options _options;

    internal RnnRnadeEstimator(MLContext mlContext, Options options)
    {
        _ml = mlContext ?? throw new ArgumentNullException(nameof(mlContext));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _options.Validate();
    }

    /// <summary>Trains on the sequences of <paramref name="input"/>.</summary>
    public RnnRnadeTransformer Fit(IDataView input) => Fit(input, null);

    /// <summary>Trains, stopping early on <paramref name="validationData"/>'s log-likelihood per frame (same column) instead of a held-out fraction.</summary>
    public RnnRnadeTransformer Fit(IDataView trainData, IDataView? validationData)
    {
        ArgumentNullException.ThrowIfNull(trainData);
        _options.Validate();
        var o = _options;
        var data = Read(trainData);
        var validation = validationData is null ? null : Read(validationData);
        using var channel = ((IHostEnvironment)_ml).Start("RnnRnade");
        channel.Info(MessageSensitivity.None, $"RnnRnade: training on {data.Count} sequences ({data.TotalFrames} frames of {o.FrameSize}).");
        var model = RnnRnadeModel.Fit(data, o.ModelOptions, validation, RnnRnadeColumns.Progress(channel, o.Progress), o.CancellationToken);

        var logDensity = model.LogDensity(data);
        var scores = new float[data.Count];
        for (int i = 0; i < scores.Length; i++) scores[i] = Scoring.ScoreFromLogDensity(logDensity[i] / data.Length(i));
        float threshold = Scoring.Threshold(scores, o.Contamination);
        channel.Info(MessageSensitivity.None, $"RnnRnade: trained; score threshold {threshold:G6} (contamination {o.Contamination}).");
        return new RnnRnadeTransformer(BuildChain(model, threshold), model, threshold);
    }

    private ITransformer BuildChain(RnnRnadeModel model, float threshold)
    {
        var o = _options;
        var chain = new EstimatorChain<ITransformer>().Append<ITransformer>(_ml.Transforms.CopyColumns(RnnRnadeSurrogate.FeatureCol, o.FeatureColumnName));
        chain = RnnRnadeSurrogate.AppendModel(_ml, chain, model, threshold)
            .Append<ITransformer>(_ml.Transforms.CustomMapping(new RnnRnadeSurrogate.SequenceFactory().GetMapping(), RnnRnadeSurrogate.SequenceFactory.ContractName));
        chain = RnnRnadeSurrogate.Finish(_ml, chain, new[]
        {
            (o.LogDensityColumnName, RnnRnadeSurrogate.LogDensityCol), (o.LogDensityPerFrameColumnName, RnnRnadeSurrogate.PerFrameCol),
            (o.FrameLogDensitiesColumnName, RnnRnadeSurrogate.FramesCol), (o.ScoreColumnName, RnnRnadeSurrogate.ScoreCol),
            (o.PredictedLabelColumnName, RnnRnadeSurrogate.PredictedCol),
        }, new[] { RnnRnadeSurrogate.FeatureCol, RnnRnadeSurrogate.LogDensityCol, RnnRnadeSurrogate.PerFrameCol, RnnRnadeSurrogate.FramesCol,
                   RnnRnadeSurrogate.ScoreCol, RnnRnadeSurrogate.PredictedCol });
        // Every stage is trivial: fit on an empty view with a variable-size feature column.
        var def = SchemaDefinition.Create(typeof(RnnRnadeColumns.SequenceRow));
        def[0].ColumnName = o.FeatureColumnName;
        return chain.Fit(_ml.Data.LoadFromEnumerable(new List<RnnRnadeColumns.SequenceRow>(), def));
    }

    /// <summary>Every row's sequence; a length that is not a positive multiple of the frame size names the row.</summary>
    private SequenceBatch Read(IDataView data) => SequenceColumn.Read(data, _options.FeatureColumnName, _options.FrameSize);

    /// <inheritdoc/>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var o = _options;
        var matches = inputSchema.Where(c => c.Name == o.FeatureColumnName).ToList();
        if (matches.Count == 0)
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Sequence column '{o.FeatureColumnName}' not found in the input schema.");
        var col = matches[^1];
        if (col.ItemType != NumberDataViewType.Single || col.Kind == SchemaShape.Column.VectorKind.Scalar)
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Sequence column '{o.FeatureColumnName}' must be a vector of Single.");
        var names = new HashSet<string>(o.Outputs, StringComparer.Ordinal);
        var result = inputSchema.Where(c => !names.Contains(c.Name)).ToList();
        result.Add(ShapeColumns.Single(_ml, o.LogDensityColumnName));
        result.Add(ShapeColumns.Single(_ml, o.LogDensityPerFrameColumnName));
        result.Add(ShapeColumns.VariableSingleVector(_ml, o.FrameLogDensitiesColumnName));
        result.Add(ShapeColumns.Single(_ml, o.ScoreColumnName));
        result.Add(ShapeColumns.Boolean(_ml, o.PredictedLabelColumnName));
        return new SchemaShape(result);
    }
}

/// <summary>Checks and helpers shared by the two RNN-RNADE estimators.</summary>
internal static class RnnRnadeColumns
{
    public sealed class SequenceRow { public float[] Features = Array.Empty<float>(); }

    public static void CheckNames(string input, IEnumerable<string> outputs, double contamination)
    {
        if (string.IsNullOrWhiteSpace(input)) throw new ArgumentException("The input column name must be non-empty.");
        var list = outputs.ToList();
        if (list.Any(string.IsNullOrWhiteSpace)) throw new ArgumentException("Output column names must be non-empty.");
        if (list.Distinct(StringComparer.Ordinal).Count() != list.Count)
            throw new ArgumentException($"Output column names must be distinct (got {string.Join(", ", list)}).");
        if (!(contamination >= 0 && contamination <= 0.5))
            throw new ArgumentOutOfRangeException(nameof(contamination), contamination, $"Contamination must be in [0, 0.5] (got {contamination}).");
    }

    /// <summary>Training progress to the MLContext log and the user's receiver.</summary>
    public static IProgress<TrainingProgress> Progress(IChannel channel, IProgress<TrainingProgress>? user, string name = "RnnRnade")
        => new Reporter(channel, user, name);

    private sealed class Reporter(IChannel channel, IProgress<TrainingProgress>? user, string name) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value)
        {
            channel.Info(MessageSensitivity.None, $"{name}: {value} (log-likelihoods per frame)");
            user?.Report(value);
        }
    }
}
