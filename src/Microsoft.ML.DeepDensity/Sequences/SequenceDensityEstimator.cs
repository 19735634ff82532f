using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Training;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.DeepDensity.Transforms;

/// <summary>
/// Any <see cref="SequenceDensityModel"/> on whole sequences: each row holds one sequence, its frames back to back in a
/// Single vector column (usually variable-size) with <see cref="Options.FrameSize"/> values per frame. Appends the
/// sequence's LogDensity, its per-frame average, the vector of per-frame conditional log-densities log p(x_t | x_&lt;t),
/// Score (= −log-density per frame, so sequences of different lengths are comparable) and PredictedLabel. A sequence
/// model family's catalog method builds one with its own <see cref="Trainer"/>.
/// </summary>
public sealed class SequenceDensityEstimator : IEstimator<SequenceDensityTransformer>
{
    /// <summary>Trains the engine model on validated sequences (and optional validation sequences).</summary>
    /// <param name="data">The training sequences.</param>
    /// <param name="validation">Validation sequences for early stopping, or null.</param>
    /// <param name="progress">Receives one report per epoch.</param>
    /// <param name="cancellationToken">Abandons training when cancelled.</param>
    /// <returns>The trained engine model.</returns>
    public delegate SequenceDensityModel Trainer(SequenceBatch data, SequenceBatch? validation, IProgress<TrainingProgress> progress, CancellationToken cancellationToken);

    /// <summary>Columns, frame size and contamination.</summary>
    public sealed class Options
    {
        /// <summary>Input column: a Single vector (variable or known size) holding a sequence's frames back to back. Default <see cref="DensityEstimatorDefaults.FeatureColumnName"/>.</summary>
        public string FeatureColumnName { get; set; } = DensityEstimatorDefaults.FeatureColumnName;
        /// <summary>Values per frame (required): a row's length must be a positive multiple of it.</summary>
        public int FrameSize { get; set; }
        /// <summary>Output (Single): log p of the whole sequence. Default <see cref="DensityEstimatorDefaults.LogDensityColumnName"/>.</summary>
        public string LogDensityColumnName { get; set; } = DensityEstimatorDefaults.LogDensityColumnName;
        /// <summary>Output (Single): LogDensity / number of frames. Default <see cref="DensityEstimatorDefaults.LogDensityPerFrameColumnName"/>.</summary>
        public string LogDensityPerFrameColumnName { get; set; } = DensityEstimatorDefaults.LogDensityPerFrameColumnName;
        /// <summary>Output (variable-size Single vector): log p(x_t | x_&lt;t) of every frame. Default <see cref="DensityEstimatorDefaults.FrameLogDensitiesColumnName"/>.</summary>
        public string FrameLogDensitiesColumnName { get; set; } = DensityEstimatorDefaults.FrameLogDensitiesColumnName;
        /// <summary>Output (Single): −LogDensityPerFrame, finite. Default <see cref="DensityEstimatorDefaults.ScoreColumnName"/>.</summary>
        public string ScoreColumnName { get; set; } = DensityEstimatorDefaults.ScoreColumnName;
        /// <summary>Output (Boolean): Score above the (1 − Contamination) quantile of the scores of the sequences <see cref="ThresholdRows"/> chooses. Default <see cref="DensityEstimatorDefaults.PredictedLabelColumnName"/>.</summary>
        public string PredictedLabelColumnName { get; set; } = DensityEstimatorDefaults.PredictedLabelColumnName;
        /// <summary>Expected anomaly fraction of the sequences, in [0, 0.5]. Default <see cref="DensityEstimatorDefaults.Contamination"/>.</summary>
        public double Contamination { get; set; } = DensityEstimatorDefaults.Contamination;
        /// <summary>Which sequences' scores set the PredictedLabel threshold. <see cref="DensityThresholdRows.HeldOut"/>:
        /// sequences the model did not train on: the validation view's, else those the family's trainer held out for early
        /// stopping (RNN-RNADE's ValidationFraction and Seed); with fewer than max(20, ⌈1 / Contamination⌉) of those but
        /// at least 10 a normal approximation of their scores' quantile (never below their largest); the training sequences
        /// (with a warning) when they are fewer than 10, or the trainer reports none (a trainer given to the public constructor).
        /// <see cref="DensityThresholdRows.Training"/>: every training sequence, the rule before held-out sequences were
        /// used. The Fit's log says which set it. Default <see cref="DensityEstimatorDefaults.ThresholdRows"/>.</summary>
        public DensityThresholdRows ThresholdRows { get; set; } = DensityEstimatorDefaults.ThresholdRows;
        /// <summary>Optional extra receiver of training progress. Default null.</summary>
        public IProgress<TrainingProgress>? Progress { get; set; }
        /// <summary>Cancels training. Default none.</summary>
        public CancellationToken CancellationToken { get; set; }

        /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
        public void Validate()
        {
            if (FrameSize < 1) throw new ArgumentOutOfRangeException(nameof(FrameSize), FormattableString.Invariant($"FrameSize must be at least 1 (got {FrameSize}): set it to the number of values per time step."));
            RnnRnadeColumns.CheckNames(new[] { (nameof(FeatureColumnName), FeatureColumnName) }, new[]
            {
                (nameof(LogDensityColumnName), LogDensityColumnName), (nameof(LogDensityPerFrameColumnName), LogDensityPerFrameColumnName),
                (nameof(FrameLogDensitiesColumnName), FrameLogDensitiesColumnName), (nameof(ScoreColumnName), ScoreColumnName),
                (nameof(PredictedLabelColumnName), PredictedLabelColumnName),
            }, Contamination);
            AnomalyThreshold.Check(ThresholdRows);
        }
    }

    private readonly MLContext _ml;
    private readonly Options _options;
    private readonly string _name;
    private readonly Trainer _trainer;

    /// <summary>An estimator training with <paramref name="trainer"/>; <paramref name="name"/> labels its log messages.</summary>
    /// <param name="mlContext">The context whose log receives training progress.</param>
    /// <param name="options">Columns, contamination and the sequence settings (validated here).</param>
    /// <param name="name">Component name used in log messages (e.g. "RnnRnade").</param>
    /// <param name="trainer">Trains the family's engine model.</param>
    public SequenceDensityEstimator(MLContext mlContext, Options options, string name, Trainer trainer)
        : this(mlContext, options, name, trainer, (Action?)null)
    {
    }

    /// <summary>An estimator training with <paramref name="trainer"/>, whose engine options
    /// <paramref name="validateModelOptions"/> checks here and again at every Fit before a row is read (options changed
    /// after the estimator was made would otherwise be refused only by the trainer, after the whole view was read).</summary>
    /// <param name="mlContext">The context whose log receives training progress.</param>
    /// <param name="options">Columns, contamination and the sequence settings (validated here).</param>
    /// <param name="name">Component name used in log messages (e.g. "RnnRnade").</param>
    /// <param name="trainer">Trains the family's engine model.</param>
    /// <param name="validateModelOptions">Throws an <see cref="ArgumentException"/> naming a bad engine setting, or null.</param>
    public SequenceDensityEstimator(MLContext mlContext, Options options, string name, Trainer trainer, Action? validateModelOptions)
        : this(mlContext, options, name, trainer, validateModelOptions is null ? null : (Action<bool?>)(_ => validateModelOptions()), null)
    {
    }

    /// <summary>As the public constructor, with a check of the engine options that also learns, at Fit, whether a
    /// validation set was passed (null at construction): a family's settings that a validation set makes moot, or that
    /// need one, are refused before a row is read (<see cref="SettingEffects.CheckAtFit"/>); and the training sequences the
    /// trainer holds out for early stopping when given no validation sequences (<paramref name="heldOutSequences"/>: their
    /// indices; null: none), on which the threshold is learned.</summary>
    internal SequenceDensityEstimator(MLContext mlContext, Options options, string name, Trainer trainer, Action<bool?>? validateModelOptions,
        Func<SequenceBatch, int[]>? heldOutSequences)
    {
        _heldOutSequences = heldOutSequences;
        _ml = mlContext ?? throw new ArgumentNullException(nameof(mlContext));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _name = string.IsNullOrWhiteSpace(name) ? throw new ArgumentException("The model name must be non-empty.", nameof(name)) : name;
        _trainer = trainer ?? throw new ArgumentNullException(nameof(trainer));
        _validateModelOptions = validateModelOptions;
        _options.Validate();
        _validateModelOptions?.Invoke(null);
    }

    /// <summary>The training sequences the trainer holds out (indices), or null when it reports none.</summary>
    private readonly Func<SequenceBatch, int[]>? _heldOutSequences;

    /// <summary>Checks the engine options; its argument is whether Fit was given a validation set (null: not known yet).</summary>
    private readonly Action<bool?>? _validateModelOptions;

    /// <summary>Trains on the sequences of <paramref name="input"/>.</summary>
    /// <param name="input">The training data, one sequence per row.</param>
    public SequenceDensityTransformer Fit(IDataView input) => Fit(input, null);

    /// <summary>Trains, with <paramref name="validationData"/> (same column) as the model's validation set.</summary>
    /// <param name="trainData">The training data, one sequence per row.</param>
    /// <param name="validationData">Validation sequences for early stopping, or null for the model's own held-out fraction.</param>
    public SequenceDensityTransformer Fit(IDataView trainData, IDataView? validationData)
    {
        ArgumentNullException.ThrowIfNull(trainData);
        _options.Validate();
        _validateModelOptions?.Invoke(validationData is not null);
        // Before training: the fitted model would refuse this schema at Transform (a saved one would lose the column).
        ReservedColumns.Check(trainData.Schema);
        var o = _options;
        // Both views' columns before a row is read, the validation view's named as such (the message was the training
        // view's, "Sequence column 'Features' not found", and came after the whole training view had been read).
        SequenceColumn.Check(trainData.Schema, o.FeatureColumnName);
        if (validationData is not null) SequenceColumn.CheckValidation(validationData.Schema, o.FeatureColumnName);
        var data = SequenceColumn.Read(trainData, o.FeatureColumnName, o.FrameSize, DataSetKind.Training, o.CancellationToken);
        var validation = validationData is null ? null
            : SequenceColumn.Read(validationData, o.FeatureColumnName, o.FrameSize, DataSetKind.Validation, o.CancellationToken);
        using var channel = ((IHostEnvironment)_ml).Start(_name);
        channel.Info(MessageSensitivity.None, FormattableString.Invariant($"{_name}: training on {data.Count} sequences ({data.TotalFrames} frames of {o.FrameSize})."));
        SequenceDensityModel model;
        try
        {
            model = _trainer(data, validation, RnnRnadeColumns.Progress(channel, o.Progress, _name), o.CancellationToken)
                ?? throw new InvalidOperationException($"The {_name} trainer returned no model.");
        }
        // A sequence the model cannot measure: the engine's row is the view's row (one sequence a row), named by the column.
        catch (DataValidationException e) when (UnscorableValidation.Is(e) && e.DataSet != DataSetKind.Unknown)
        {
            throw ValidationViewErrors.InDataSet(e.Restated(e.Row, e.Column, e.Problem, o.FeatureColumnName), e.DataSet);
        }
        if (model.FrameSize != o.FrameSize)
            throw new InvalidOperationException(FormattableString.Invariant($"The {_name} trainer returned a model with frame size {model.FrameSize}, not {o.FrameSize}."));
        // The threshold from sequences the model did not train on (the validation view's, else the trainer's held-out
        // ones) or the training sequences, scored as the scorer scores them.
        var frames = RnnRnadeColumns.ScoreFramesCancellably(model, data, o.CancellationToken);
        var heldOut = o.ThresholdRows == DensityThresholdRows.HeldOut && validation is null ? _heldOutSequences?.Invoke(data) ?? [] : [];
        var (threshold, plan) = SequenceAnomalyThreshold.WholeSequences(model, data, frames, validation, heldOut, o.ThresholdRows,
            o.Contamination, o.CancellationToken);
        // A trainer given to the public constructor reports no held-out sequences (the estimator cannot know which ones it
        // kept apart, if any), so a held-out threshold falls back to the training sequences. The rule's own words ("0
        // held-out sequences, fewer than the 20 ...") read as if the data were too small; say what happened and why.
        bool noSplit = o.ThresholdRows == DensityThresholdRows.HeldOut && validation is null && _heldOutSequences is null;
        string source = noSplit ? AnomalyThreshold.Count(data.Count, "training", "sequence") + " (the trainer reports no held-out sequences)" : plan.Description;
        channel.Info(MessageSensitivity.None, string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{_name}: trained; score threshold {threshold:G6} from {source} (contamination {o.Contamination})."));
        // With no split the fallback has its own warning (the trainer's, not the data's, cause).
        var fallback = noSplit ? null : plan.Fallback;
        if (noSplit) channel.Warning(MessageSensitivity.None, NoHeldOutSplitWarning(_name));
        else if (fallback is not null) channel.Warning(MessageSensitivity.None, fallback.Message(_name));
        string column = o.FeatureColumnName;
        return new SequenceDensityTransformer(SequenceSurrogate.BuildChain(_ml, o, model, threshold), model, threshold,
            schema => SequenceColumn.Check(schema, column), new[] { column })
            { ThresholdSource = source, ThresholdFallbacks = fallback is null ? [] : [fallback] };
    }

    /// <summary>The Fit's warning when the threshold came from the training sequences because the trainer (one given to
    /// the public constructor) reports no held-out split and Fit was given no validation view.</summary>
    internal static string NoHeldOutSplitWarning(string name)
        => $"{name}: the PredictedLabel threshold was learned on the training sequences: this estimator's trainer (given to the " +
           "SequenceDensityEstimator constructor) reports no sequences it held out, and Fit was given no validation view. A " +
           "model scores the sequences it trained on better than new ones of the same process, so this threshold flags more " +
           "than the contamination of new normal sequences; pass validation sequences, Fit(trainData, validationData), to " +
           "learn it on sequences the model did not train on.";

    /// <inheritdoc/>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema) => SequenceColumn.OutputSchema(_ml, inputSchema, _options);
}

/// <summary>A fitted sequence model in an ML.NET pipeline: a chain of built-in ML.NET transformers carrying the model as
/// data (see <see cref="SequenceSurrogate"/>), so <c>mlContext.Model.Save</c> / <c>Load</c> work like for any pipeline.</summary>
public sealed class SequenceDensityTransformer : ITransformer
{
    private readonly ITransformer _chain;
    private readonly Action<DataViewSchema> _checkInput;
    private readonly IReadOnlyList<string> _inputs;

    /// <param name="checkInput">Checks the input columns with messages naming them (the chain's own binding errors name
    /// its internal columns, and a frame of the wrong width would only fail at the first row read).</param>
    /// <param name="inputs">The input column names (exempt from <see cref="ReservedColumns"/>: a model saved before such
    /// names were refused still scores its own columns).</param>
    /// <param name="streamsRows">The chain scores rows in order with a StatefulCustomMapping (RNN-RNADE's frame rows): see
    /// <see cref="Transform"/>.</param>
    /// <param name="firstFrameThresholds">Frame rows: <see cref="FirstFrameThresholds"/>.</param>
    internal SequenceDensityTransformer(ITransformer chain, SequenceDensityModel model, float threshold, Action<DataViewSchema> checkInput,
        IReadOnlyList<string> inputs, bool streamsRows = false, float[]? firstFrameThresholds = null)
    {
        _chain = chain; Model = model; Threshold = threshold; _checkInput = checkInput; _inputs = inputs; _streamsRows = streamsRows;
        FirstFrameThresholds = firstFrameThresholds ?? [];
    }

    private readonly bool _streamsRows;

    /// <summary>The engine model.</summary>
    public SequenceDensityModel Model { get; }

    /// <summary>Score threshold of PredictedLabel, learned at Fit from the contamination (on the sequences or frames
    /// the estimator's ThresholdRows chose).</summary>
    public float Threshold { get; }

    /// <summary>Which sequences or frames set <see cref="Threshold"/> ("80 held-out frames"), for ddml fit's report; null
    /// for a loaded model (the thresholds are saved, not where they came from).</summary>
    internal string? ThresholdSource { get; init; }

    /// <summary>Fit's warnings that training sequences, frames or windows set a threshold (for ddml); empty once loaded.</summary>
    internal IReadOnlyList<AnomalyThreshold.ThresholdFallback> ThresholdFallbacks { get; init; } = [];

    /// <summary>Frame rows: PredictedLabel's thresholds of a sequence's frames 0, 1, … where they differ from
    /// <see cref="Threshold"/> (a frame with no history is predicted less sharply; learned on the first frames of the
    /// windows the estimator's ThresholdRows chose); later frames, and whole sequences, use <see cref="Threshold"/>. Empty when none was learned.</summary>
    public IReadOnlyList<float> FirstFrameThresholds { get; }

    /// <summary>PredictedLabel's threshold of the frame at <paramref name="position"/> of its sequence (frame rows).</summary>
    /// <param name="position">The frame's place in its sequence, from 0 (as a new PredictionEngine or cursor counts it).</param>
    public float ThresholdAt(int position) => position >= 0 && position < FirstFrameThresholds.Count ? FirstFrameThresholds[position] : Threshold;

    /// <inheritdoc/>
    public bool IsRowToRowMapper => _chain.IsRowToRowMapper;

    /// <inheritdoc/>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => _chain.GetOutputSchema(Checked(inputSchema));

    /// <inheritdoc/>
    /// <remarks>For frame rows, a row of the mapper asked for one of this transformer's columns scores its input row at the
    /// first read of any of its columns, and throws <see cref="InvalidOperationException"/> at a read after input rows
    /// were moved over without one (they would be missing from their sequences' histories): see <see cref="Transform"/>.</remarks>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        var mapper = _chain.GetRowToRowMapper(Checked(inputSchema));
        return _streamsRows ? FrameRowStreaming.Wrap(mapper, Terms(mapper.InputSchema)) : mapper;
    }

    /// <summary>Lazily appends the output columns.</summary>
    /// <param name="input">The data view with the sequence column (and, for frame rows, the sequence-id and order columns).</param>
    /// <remarks>Frame rows score through ML.NET's StatefulCustomMapping, which (ML.NET 5.0.1) scores a row only when one of
    /// its outputs is read at that row, and whose cursor reads its input columns whether or not one of its outputs is
    /// asked for, but asks its source for them only when one is. So every cursor here also asks for one of this
    /// transformer's output columns (not shown as active: a read of pass-through columns alone works and scores nothing),
    /// and a cursor asked for one of them scores every row it moves over, whether or not that row's columns are read: a
    /// frame's log-density does not depend on which rows or columns the consumer reads (a filter after this transformer,
    /// a consumer reading every other row).</remarks>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        Checked(input.Schema);
        var output = _chain.Transform(input);
        return _streamsRows ? FrameRowStreaming.Wrap(output, input.Schema, Terms(input.Schema)) : output;
    }

    /// <summary>Frame rows: the type of the input's order column (the last input column), in whose terms an out-of-order
    /// row's error gives its times, and its frame column (the first), whose slot names a bad value's error gives.</summary>
    private FrameRowStreaming.InputTerms Terms(DataViewSchema input)
        => new(input.GetColumnOrNull(_inputs[^1])?.Type, input.GetColumnOrNull(_inputs[0]));

    private DataViewSchema Checked(DataViewSchema schema)
    {
        ArgumentNullException.ThrowIfNull(schema);
        _checkInput(schema);
        ReservedColumns.Check(schema, _inputs);
        return schema;
    }

    void ICanSaveModel.Save(ModelSaveContext ctx) => ((ICanSaveModel)_chain).Save(ctx);
}

/// <summary>Reading and checking a sequence column (frames back to back in a Single vector).</summary>
internal static class SequenceColumn
{
    /// <summary>Every row's sequence; a length that is not a positive multiple of the frame size, or a bad value, names the
    /// row and <paramref name="dataSet"/> (the training or the validation data: Fit reads both through the same column
    /// name, so the row alone does not say which view it is in). Observes <paramref name="cancellationToken"/> before the
    /// first row and every <see cref="DataViewRowStream.RowsPerCancellationCheck"/> rows.</summary>
    public static SequenceBatch Read(IDataView data, string columnName, int frameSize, DataSetKind dataSet, CancellationToken cancellationToken = default)
    {
        var column = Check(data.Schema, columnName);
        cancellationToken.ThrowIfCancellationRequested();
        try { return ReadChecked(data, column, frameSize, cancellationToken); }
        catch (DataValidationException e) { throw ValidationViewErrors.InDataSet(e, dataSet); }
    }

    private static SequenceBatch ReadChecked(IDataView data, DataViewSchema.Column column, int frameSize, CancellationToken cancellationToken)
    {
        var values = new SequenceValueBuffer();
        var offsets = new List<int> { 0 };
        using var cursor = data.GetRowCursor(new[] { column });
        var getter = cursor.GetGetter<VBuffer<float>>(column);
        VBuffer<float> buffer = default;
        long row = 0;
        float[] dense = Array.Empty<float>();
        while (cursor.MoveNext())
        {
            getter(ref buffer);
            if (dense.Length != buffer.Length) dense = new float[buffer.Length];
            Scoring.Densify(in buffer, dense);
            var one = RnnRnadeSurrogate.OneSequence(dense, frameSize, column.Name, row);
            try { DataValidation.CheckRows(dense, frameSize, InputDomain.Real, column.Name); }
            catch (DataValidationException e) { throw e.Restated(row, e.Column, FormattableString.Invariant($"frame {e.Row}: {e.Problem}"), column.Name, chain: false); }
            values.Append(dense, column.Name, row);
            offsets.Add(offsets[^1] + one.TotalFrames);
            row++;
            if (row % DataViewRowStream.RowsPerCancellationCheck == 0) cancellationToken.ThrowIfCancellationRequested();
        }
        if (row == 0) throw DataValidation.NoRowsIn(column.Name);
        return new SequenceBatch(values.Values, offsets.ToArray(), frameSize);
    }

    /// <summary>The sequence column of a runtime schema: present and a vector of Single (either size), named in the errors.</summary>
    public static DataViewSchema.Column Check(DataViewSchema schema, string columnName)
    {
        var column = schema.GetColumnOrNull(columnName)
            ?? throw MissingColumn.Error("Sequence column", columnName, schema);
        if (column.Type is not VectorDataViewType { ItemType: NumberDataViewType t } || t != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(MissingColumn.InputSchema,
                $"Sequence column '{column.Name}' must be a vector of Single (frames back to back), but is {column.Type}{FeatureColumnCheck.Remedy(column.Name, column.Type)}.");
        return column;
    }

    /// <summary><see cref="Check"/> for the validation view of a Fit, saying which view failed it (the user passed two),
    /// as the row estimators do.</summary>
    public static DataViewSchema.Column CheckValidation(DataViewSchema schema, string columnName)
    {
        try { return Check(schema, columnName); }
        catch (ArgumentOutOfRangeException e) { throw ValidationViewErrors.Restated(e); }
    }

    /// <summary>The input schema with the whole-sequence outputs added (a same-named column replaced in its place, as the
    /// chain's CopyColumns puts it).</summary>
    public static SchemaShape OutputSchema(MLContext ml, SchemaShape inputSchema, SequenceDensityEstimator.Options o)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var matches = inputSchema.Where(c => c.Name == o.FeatureColumnName).ToList();
        if (matches.Count == 0)
            throw MissingColumn.Error("Sequence column", o.FeatureColumnName, inputSchema);
        var col = matches[^1];
        ReservedColumns.Check(inputSchema);
        if (col.ItemType != NumberDataViewType.Single || col.Kind == SchemaShape.Column.VectorKind.Scalar)
            throw new ArgumentOutOfRangeException(nameof(inputSchema),
                $"Sequence column '{o.FeatureColumnName}' must be a vector of Single (frames back to back), but is {FeatureColumnCheck.Found(col)}.");
        return ShapeColumns.WithOutputs(inputSchema, new[]
        {
            ShapeColumns.Single(ml, o.LogDensityColumnName),
            ShapeColumns.Single(ml, o.LogDensityPerFrameColumnName),
            ShapeColumns.VariableSingleVector(ml, o.FrameLogDensitiesColumnName),
            ShapeColumns.Single(ml, o.ScoreColumnName),
            ShapeColumns.Boolean(ml, o.PredictedLabelColumnName),
        });
    }
}
