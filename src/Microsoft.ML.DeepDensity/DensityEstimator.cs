using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Training;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.DeepDensity.Transforms;

/// <summary>
/// The generic ML.NET estimator over any DeepDensity model: reads the feature column through a cursor, trains the
/// engine model (optionally with a validation view for early stopping), learns the PredictedLabel threshold on rows it
/// did not train on (<see cref="DensityEstimatorOptions.ThresholdRows"/>), and returns a <see cref="DensityTransformer{TModel}"/>. A model family plugs in by deriving and
/// implementing <see cref="Train"/> (one line calling its static <c>Fit</c>) — no other plumbing.
/// </summary>
/// <remarks>
/// Sequence models (RNN-RNADE) do not derive from this class: a sequence model family gives
/// <see cref="SequenceDensityEstimator"/> its trainer (whole sequences, frames back to back in one vector column), and
/// RNN-RNADE adds <see cref="RnnRnadeFrameEstimator"/> for frame rows; both return a <see cref="SequenceDensityTransformer"/>.
/// </remarks>
public abstract class DensityEstimator<TModel, TModelOptions> : IEstimator<DensityTransformer<TModel>>
    where TModel : DensityModel
    where TModelOptions : class, new()
{
    private readonly MLContext _mlContext;
    private readonly DensityEstimatorOptions<TModelOptions> _options;

    /// <param name="mlContext">The context whose log receives training progress.</param>
    /// <param name="options">ML.NET-side settings and engine options (both validated here and again at Fit, before any data is read).</param>
    /// <param name="name">Component name used in log messages (e.g. "Rnade").</param>
    protected DensityEstimator(MLContext mlContext, DensityEstimatorOptions<TModelOptions> options, string name)
    {
        _mlContext = mlContext ?? throw new ArgumentNullException(nameof(mlContext));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        Name = name;
        ValidateAll();
    }

    /// <summary>The ML.NET settings and the engine's options (<see cref="ValidateModelOptions"/>), each error naming its
    /// setting, including settings set where they have no effect (<see cref="SettingEffects"/>): at construction, like
    /// ML.NET's own estimators, and again at Fit (the options object is mutable) before any data is read — a bad engine
    /// option must not surface only after the upstream stages were fitted and the training data copied.</summary>
    private void ValidateAll()
    {
        _options.Validate();
        if (_options.ModelOptions is null) throw new ArgumentNullException(nameof(DensityEstimatorOptions<TModelOptions>.ModelOptions), "ModelOptions must not be null.");
        ValidateModelOptions(_options.ModelOptions);
        if (_options.TrainingData == DensityTrainingData.Streamed)
        {
            if (!CanStream) throw CannotStream();
            ValidateStreamedModelOptions(_options.ModelOptions);
        }
        SettingEffects.CheckModelOptions(_options.ModelOptions);
    }

    /// <summary>Checks the engine's options against <see cref="DensityTrainingData.Streamed"/> training, throwing
    /// <see cref="ArgumentException"/> naming the first setting a streamed Fit cannot use (the Deep GMM streams only with
    /// its exact E-step and L-BFGS M-step): like every setting, at construction and again at Fit before any data is read,
    /// rather than from the engine after the upstream stages were fitted. The default accepts every option. Called from
    /// the base constructor, so an override must not depend on fields the derived constructor sets.</summary>
    /// <param name="options">The engine's options.</param>
    protected virtual void ValidateStreamedModelOptions(TModelOptions options) { }

    /// <summary>Whether the family overrides <see cref="TrainStreamed"/> (streamed training is per family).</summary>
    private bool CanStream => GetType().GetMethod(nameof(TrainStreamed), System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)!
        .DeclaringType != typeof(DensityEstimator<TModel, TModelOptions>);

    private NotSupportedException CannotStream()
        => new($"{Name} cannot train from a stream: set TrainingData = {nameof(DensityTrainingData.InMemory)} " +
            "(streamed training covers RNADE, Deep RNADE, RBM, Deep GMM and IWAE).");

    /// <summary>Checks the engine's options, throwing <see cref="ArgumentException"/> naming the first invalid one. The
    /// default runs the engine's own checks for gradient-trained models (<see cref="GradientTrainingOptions.Validate"/>,
    /// overridden by each family's options) and the Deep GMM (<see cref="Models.DeepGmm.DeepGmmOptions.Validate"/>);
    /// a family with other options overrides it. Called from the base constructor, so an override must not depend on
    /// fields the derived constructor sets.</summary>
    /// <param name="options">The engine's options.</param>
    protected virtual void ValidateModelOptions(TModelOptions options)
    {
        switch (options)
        {
            case GradientTrainingOptions gradient: gradient.Validate(); break;
            case Models.DeepGmm.DeepGmmOptions gmm: gmm.Validate(); break;
        }
    }

    /// <summary>Component name used in log messages.</summary>
    public string Name { get; }

    /// <summary>Trains the engine model on validated-shape data (values are validated by the engine).</summary>
    /// <param name="data">The training rows.</param>
    /// <param name="validation">Validation rows for early stopping, or null for the model's own held-out fraction.</param>
    /// <param name="options">The engine's options.</param>
    /// <param name="progress">Receives one report per epoch (or EM iteration).</param>
    /// <param name="cancellationToken">Abandons training when cancelled.</param>
    /// <returns>The trained engine model.</returns>
    protected abstract TModel Train(RowMatrix data, RowMatrix? validation, TModelOptions options,
        IProgress<TrainingProgress> progress, CancellationToken cancellationToken);

    /// <summary>Trains the engine model from streams of rows (<see cref="DensityTrainingData.Streamed"/>); families
    /// that cannot stream keep this default, which refuses with a message naming the setting.</summary>
    /// <param name="data">The training rows, read pass by pass.</param>
    /// <param name="validation">Validation rows for early stopping, or null for the model's own held-out fraction.</param>
    /// <param name="options">The engine's options.</param>
    /// <param name="streaming">The shuffle buffer's size.</param>
    /// <param name="progress">Receives one report per epoch.</param>
    /// <param name="cancellationToken">Abandons training when cancelled.</param>
    /// <returns>The trained engine model.</returns>
    protected virtual TModel TrainStreamed(IRowStream data, IRowStream? validation, TModelOptions options, StreamingOptions streaming,
        IProgress<TrainingProgress> progress, CancellationToken cancellationToken)
        => throw CannotStream();

    /// <summary>Trains on <paramref name="input"/>.</summary>
    /// <param name="input">The training data with the feature column.</param>
    public DensityTransformer<TModel> Fit(IDataView input) => Fit(input, null);

    /// <summary>Trains on <paramref name="trainData"/>, using <paramref name="validationData"/> (same feature column) for
    /// early stopping instead of a held-out fraction of the training rows.</summary>
    /// <param name="trainData">The training data with the feature column.</param>
    /// <param name="validationData">Validation data with the same feature column, or null for the model's own held-out fraction.</param>
    public DensityTransformer<TModel> Fit(IDataView trainData, IDataView? validationData)
    {
        ArgumentNullException.ThrowIfNull(trainData);
        ValidateAll();
        var column = CheckInputShape(trainData.Schema, null);
        // Before training: the fitted model would refuse this schema at Transform (a saved one would lose the column).
        ReservedColumns.Check(trainData.Schema);
        int dim = ((VectorDataViewType)column.Type).Size;
        // The settings that a validation set or the column's width makes moot, before a row is read.
        SettingEffects.CheckAtFit(_options.ModelOptions, validationData is not null, dim);
        // From the schema's width, before a row is read or copied (the in-memory path buffers the whole column first): a
        // model no file could hold, or no load would read back, is known from the options and the width alone.
        if (_options.ModelOptions is Persistence.IModelSizeOptions sized)
        {
            try { sized.PredictModelSize(dim).EnsureLoadable(); }
            catch (DataValidationException e) when (IsEngineDataSource(e)) { throw InColumn(e, column); }
        }
        // The validation view's schema before a row of either view is read: it was checked only after the training view
        // had been copied, which for a large view meant minutes before a schema error.
        DataViewSchema.Column? validationColumn = validationData is null ? null : CheckValidationShape(validationData.Schema, dim);
        if (_options.TrainingData == DensityTrainingData.Streamed) return FitStreamed(trainData, column, validationData, validationColumn, dim);
        RowMatrix data;
        RowMatrix? validation;
        try
        {
            data = ReadRows(trainData, column, dim);
            validation = validationData is null ? null : ReadRows(validationData, validationColumn!.Value, dim);
        }
        catch (OutOfMemoryException e) when (CanStream) { throw InMemoryOutOfMemory(e, dim); }

        using var channel = ((IHostEnvironment)_mlContext).Start(Name);
        channel.Info(MessageSensitivity.None,
            FormattableString.Invariant($"{Name}: training on {data.Rows} rows × {dim} columns") + (validation is null ? "" : FormattableString.Invariant($", {validation.Rows} validation rows")) + ".");
        // Every family's rules on the rows (TrainingRowChecks): too few for the columns, none held out, many copies.
        foreach (var warning in TrainingRowChecks.FitWarnings(data, _options.ModelOptions, validation is not null))
            channel.Warning(MessageSensitivity.None, $"{Name}: {warning}.");
        var progress = new ChannelProgress(channel, Name, _options.Progress);
        TModel model;
        try { model = Train(data, validation, _options.ModelOptions, progress, _options.CancellationToken); }
        catch (DataValidationException e) when (IsEngineDataSource(e)) { throw InColumn(e, column); }
        catch (TrainingDivergedException e) { throw Diverged(e, data, column.Name); }
        catch (OutOfMemoryException e) when (CanStream) { throw InMemoryOutOfMemory(e, dim); }

        // The threshold: (1 − Contamination) quantile of the scores of rows the model did not train on (the validation
        // rows, else the engine's held-out rows; with too few for the empirical quantile, its normal approximation), or of
        // the training rows (fewer than 10 of those, or ThresholdRows = Training).
        // Scoring can take as long as an epoch (IWAE, AIS), so it observes the token too: a Fit cancelled after the last
        // epoch returns no model.
        var (rows, plan) = AnomalyThreshold.InMemoryRows(_options.ThresholdRows, _options.Contamination, data, validation,
            AnomalyThreshold.Split(_options.ModelOptions), _options.CancellationToken);
        var logDensity = ScoreCancellably(model, rows, _options.CancellationToken);
        var scores = new float[logDensity.Length];
        for (int i = 0; i < scores.Length; i++) scores[i] = Scoring.ScoreFromLogDensity(logDensity[i]);
        float threshold = plan.Threshold(scores, _options.Contamination);
        return Fitted(channel, model, threshold, plan, Mean(logDensity));
    }

    /// <summary>The end of every Fit: the log's line (and warning, when the training rows set the threshold though held-out
    /// ones were asked for) and the transformer.</summary>
    private DensityTransformer<TModel> Fitted(IChannel channel, TModel model, float threshold, AnomalyThreshold.ThresholdPlan plan, double meanLogDensity)
    {
        channel.Info(MessageSensitivity.None, Trained(threshold, plan.Description, meanLogDensity));
        if (plan.Fallback is { } fallback) channel.Warning(MessageSensitivity.None, fallback.Message(Name));
        return new DensityTransformer<TModel>(_mlContext, model, _options.ToSettings(threshold))
            { ThresholdSource = plan.Description, ThresholdFallbacks = plan.Fallback is { } f ? [f] : [] };
    }

    /// <summary>Fit through cursors: the engine reads the feature column pass by pass (training, validation, then one
    /// scoring pass for the threshold: the validation view's, or the training view's keeping the held-out rows apart) and never holds it whole; every complete pass over the training view, the
    /// threshold's included, must be its first pass again (<see cref="RowStream.SamePasses"/>).</summary>
    private DensityTransformer<TModel> FitStreamed(IDataView trainData, DataViewSchema.Column column, IDataView? validationData,
        DataViewSchema.Column? validationColumn, int dim)
    {
        // The threshold's scoring pass comes after the Fit: through SamePasses it is compared with the Fit's first pass
        // like every pass of the Fit (the engine's checks share the record), so a view that changed only in that last
        // pass is refused rather than setting the threshold from other rows.
        using var channel = ((IHostEnvironment)_mlContext).Start(Name);
        var data = RowStream.SamePasses(new DataViewRowStream(trainData, column, dim, _options.CancellationToken, PassLog(channel, "training")),
            DataValidation.TrainingData);
        var validation = validationData is null ? null
            : new DataViewRowStream(validationData, validationColumn!.Value, dim, _options.CancellationToken, PassLog(channel, "validation"));
        channel.Info(MessageSensitivity.None, FormattableString.Invariant($"{Name}: training streamed from the cursor ({dim} columns") +
            (data.Count is long n ? FormattableString.Invariant($", {n} rows") : "") + $"; shuffle buffer {(_options.ShuffleBufferRows > 0 ? _options.ShuffleBufferRows.ToString(System.Globalization.CultureInfo.InvariantCulture) : "automatic")}).");
        var progress = new ChannelProgress(channel, Name, _options.Progress);
        TModel model;
        float threshold;
        double mean;
        AnomalyThreshold.ThresholdPlan plan;
        try
        {
            model = TrainStreamed(data, validation, _options.ModelOptions, new StreamingOptions { ShuffleBufferRows = _options.ShuffleBufferRows },
                progress, _options.CancellationToken);
            (threshold, mean, plan) = AnomalyThreshold.Streamed(model, data, validation, _options.ThresholdRows, _options.Contamination,
                AnomalyThreshold.Split(_options.ModelOptions), _options.CancellationToken);
        }
        catch (DataValidationException e) when (IsEngineDataSource(e)) { throw InColumn(e, column); }
        return Fitted(channel, model, threshold, plan, mean);
    }

    /// <summary>The log's line at the end of each pass a streamed Fit reads ("pass 2 over the training view: 1000000 rows in
    /// 12.3 s"), so that its preparation passes and each epoch's reading time show.</summary>
    private Action<int, long, TimeSpan> PassLog(IChannel channel, string view)
        => (pass, rows, elapsed) => channel.Info(MessageSensitivity.None, string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{Name}: pass {pass} over the {view} view: {rows} rows in {elapsed.TotalSeconds:F1} s."));

    /// <summary>Out of memory in an in-memory Fit (the column copied whole, then the training's buffers), with the way out:
    /// a bare OutOfMemoryException under a container's heap limit left a new user guessing (docs/scaling.md).</summary>
    private OutOfMemoryException InMemoryOutOfMemory(OutOfMemoryException e, int dimension)
        => new(FormattableString.Invariant($"{Name}: out of memory training in memory (the feature column's {dimension} values a row are copied whole before ") +
               "training); TrainingData = DensityTrainingData.Streamed trains from the cursor in memory bounded by the shuffle buffer " +
               "(ShuffleBufferRows; docs/scaling.md).", e);

    /// <summary>The log's line at the end of Fit: the threshold and which rows set it (e.g. "from 180 held-out rows").</summary>
    private string Trained(float threshold, string source, double meanLogDensity)
        => string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{Name}: trained; score threshold {threshold:G6} from {source} (contamination {_options.Contamination}; their mean log-density {meanLogDensity:G6}).");

    /// <summary>What a user whose values the model's input domain refuses can do (a binary model given real values):
    /// the option for real-valued data, if the family has one. Appended to the error's problem.</summary>
    /// <param name="options">The engine's options.</param>
    /// <returns>The remedy in words, or null when the family has none.</returns>
    protected virtual string? NonBinaryRemedy(TModelOptions options) => null;

    /// <summary>The engine's names for the rows it was given (it knows nothing of ML.NET columns).</summary>
    private static bool IsEngineDataSource(DataValidationException e) => e.DataSource is DataValidation.TrainingData or DataValidation.ValidationData;

    /// <summary>The engine's data error restated for the ML.NET user: the feature column by name, which data set, for a
    /// value outside a binary model's domain what to do about it, and for a NaN or infinite value that an earlier stage
    /// may have made it (<see cref="NonFiniteInput"/>).</summary>
    private DataValidationException InColumn(DataValidationException e, DataViewSchema.Column column)
    {
        string columnName = column.Name;
        // The validation view's column has the training view's name and width; its slot names are taken to be the same.
        string problem = NonFiniteInput.WithHint($"{e.Problem} in the {e.DataSource}{NonFiniteInput.SlotName(column, e.Column)}", columnName, e.Kind);
        if (e.Kind == DataProblemKind.NotBinary)
        {
            string binarise = $"binarise the column first, e.g. ml.Transforms.Expression(\"{columnName}01\", \"x => x >= 0.5f ? 1.0f : 0.0f\", \"{columnName}\")";
            problem += NonBinaryRemedy(_options.ModelOptions) is string remedy ? $"; {remedy}, or {binarise}" : $"; {binarise}";
        }
        return e.Restated(e.Row, e.Column, problem, columnName);
    }

    /// <summary>The engine's divergence restated for the ML.NET user: the feature column by name and where its largest
    /// value is (the engine's generic advice cannot say that values of 1e7, e.g. timestamps or prices, are far too large
    /// for a model that does not standardise its inputs), and how to standardise it in the pipeline.</summary>
    private static TrainingDivergedException Diverged(TrainingDivergedException e, RowMatrix data, string columnName)
    {
        var values = data.Values.AsSpan(0, data.Rows * data.Columns);
        if (values.IsEmpty) return e;
        int at = 0;
        for (int i = 1; i < values.Length; i++) if (Math.Abs(values[i]) > Math.Abs(values[at])) at = i;
        return new TrainingDivergedException(e.Message +
            FormattableString.Invariant($" The largest value of feature column '{columnName}' in the training data is {values[at]:G6} (row {at / data.Columns}, slot {at % data.Columns}); ") +
            $"standardise the column before the estimator, e.g. ml.Transforms.NormalizeMeanVariance(\"{columnName}\").");
    }

    /// <summary>Checks the feature column of a runtime schema; returns it.</summary>
    /// <param name="schema">The data view's schema.</param>
    /// <param name="expectedSize">The vector size the column must have, or null for any known size.</param>
    protected virtual DataViewSchema.Column CheckInputShape(DataViewSchema schema, int? expectedSize)
        => FeatureColumnCheck.Check(schema, _options.FeatureColumnName, expectedSize);

    /// <summary>Checks the validation view's feature column against the training view's width (nothing is trained yet, so
    /// the message compares the two views rather than saying "the model was trained on").</summary>
    private DataViewSchema.Column CheckValidationShape(DataViewSchema schema, int trainingSize)
    {
        DataViewSchema.Column column;
        try { column = CheckInputShape(schema, null); }
        catch (ArgumentException e) when (e is not DataValidationException) { throw ValidationViewErrors.Restated(e); }
        if (column.Type is VectorDataViewType { Size: int size } && size != trainingSize)
            throw ValidationViewErrors.Width(column.Name, size, trainingSize);
        return column;
    }

    /// <summary>Copies the feature column into a row matrix through one cursor (sparse vectors are densified), observing
    /// the options' <see cref="DensityEstimatorOptions.CancellationToken"/> before the first row and every
    /// <see cref="DataViewRowStream.RowsPerCancellationCheck"/> rows: reading a large view through its upstream stages can take as long as training.</summary>
    /// <param name="data">The data view.</param>
    /// <param name="column">Its feature column.</param>
    /// <param name="dimension">The column's vector size.</param>
    protected virtual RowMatrix ReadRows(IDataView data, DataViewSchema.Column column, int dimension)
    {
        var cancellationToken = _options.CancellationToken;
        cancellationToken.ThrowIfCancellationRequested();
        int capacity = TrainingRowBuffer.InitialRows(data.GetRowCount(), dimension);
        var values = new float[capacity * dimension];
        int rows = 0;
        using (var cursor = data.GetRowCursor(new[] { column }))
        {
            var getter = cursor.GetGetter<VBuffer<float>>(column);
            VBuffer<float> buffer = default;
            while (cursor.MoveNext())
            {
                if (rows == capacity)
                {
                    capacity = TrainingRowBuffer.GrownRows(capacity, dimension, column.Name, CanStream);
                    Array.Resize(ref values, capacity * dimension);
                }
                getter(ref buffer);
                if (buffer.Length != dimension)
                    throw new DataValidationException(rows, -1, FormattableString.Invariant($"the vector has {buffer.Length} values but {dimension} are expected"), column.Name) { Kind = DataProblemKind.WrongSize };
                Scoring.Densify(in buffer, values.AsSpan(rows * dimension, dimension));
                rows++;
                if (rows % DataViewRowStream.RowsPerCancellationCheck == 0) cancellationToken.ThrowIfCancellationRequested();
            }
        }
        return new RowMatrix(values, rows, dimension);
    }

    /// <inheritdoc/>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        FeatureColumnCheck.Check(inputSchema, _options.FeatureColumnName);
        ReservedColumns.Check(inputSchema);
        var o = _options;
        var outputs = new List<SchemaShape.Column>
        {
            ShapeColumns.Single(_mlContext, o.LogDensityColumnName),
            ShapeColumns.Single(_mlContext, o.ScoreColumnName),
            ShapeColumns.Boolean(_mlContext, o.PredictedLabelColumnName),
        };
        if (o.StandardErrorColumnName is not null) outputs.Add(ShapeColumns.Single(_mlContext, o.StandardErrorColumnName));
        if (o.SampleColumnName is not null) outputs.Add(ShapeColumns.SingleVector(_mlContext, o.SampleColumnName));
        return ShapeColumns.WithOutputs(inputSchema, outputs);
    }

    /// <summary>The engine's cancellable scoring (a check every <see cref="DensityModel.RowsPerCancellationCheck"/> rows,
    /// the scores of one call), and a last check: a Fit cancelled while the threshold's scores were computed returns no model.</summary>
    private static float[] ScoreCancellably(DensityModel model, RowMatrix data, CancellationToken cancellationToken)
    {
        var result = model.LogDensity(data, cancellationToken);
        cancellationToken.ThrowIfCancellationRequested();
        return result;
    }

    private static double Mean(float[] v)
    {
        double s = 0;
        foreach (var x in v) s += x;
        return v.Length == 0 ? double.NaN : s / v.Length;
    }

    /// <summary>Forwards training progress to the ML.NET log (and the user's receiver), synchronously.</summary>
    private sealed class ChannelProgress : IProgress<TrainingProgress>
    {
        private readonly IChannel _channel;
        private readonly string _name;
        private readonly IProgress<TrainingProgress>? _user;
        public ChannelProgress(IChannel channel, string name, IProgress<TrainingProgress>? user) { _channel = channel; _name = name; _user = user; }
        public void Report(TrainingProgress value)
        {
            // A diverged epoch (recovered, or the end of the run) is a warning: the user should see it without verbose logs.
            // Its report has no figures at all; a trainer without a likelihood (an RBM with Gaussian units: NaN, and its
            // reconstruction errors in Metrics) reports an ordinary epoch, which is information, not a warning.
            if (double.IsNaN(value.TrainLogLikelihood) && value.Metrics is not { Count: > 0 }) _channel.Warning(MessageSensitivity.None, $"{_name}: {value}");
            else _channel.Info(MessageSensitivity.None, $"{_name}: {value}");
            _user?.Report(value);
        }
    }
}

/// <summary>How many rows the in-memory Fit's buffer holds: bounded by what one array holds, and, while the row count is
/// unknown, started small in bytes rather than rows. A fixed start of 1,024 rows allocated 400 MB for ten rows of 100,000
/// values, and for a column of 2,200,000 values (a width the RBM trains) threw an unexplained OverflowException before a
/// row was read; doubling past the array limit threw the same for data that still fitted.</summary>
internal static class TrainingRowBuffer
{
    /// <summary>Values of the first buffer when the row count is unknown: 2^20 (4 MiB), at least one row.</summary>
    internal const int InitialValues = 1 << 20;

    /// <summary>The most rows of <paramref name="dimension"/> values one array holds.</summary>
    internal static int MaxRows(int dimension) => Array.MaxLength / Math.Max(1, dimension);

    /// <summary>The first buffer's rows: the known row count when one array holds it, else 1,024 rows or 4 MiB, whichever is less.</summary>
    internal static int InitialRows(long? knownRows, int dimension)
    {
        int max = MaxRows(dimension);
        if (knownRows is long k && k > 0 && k <= max) return (int)k;
        return Math.Clamp(InitialValues / Math.Max(1, dimension), 1, Math.Min(1024, max));
    }

    /// <summary>The buffer's rows after it filled at <paramref name="rows"/>: doubled, up to what one array holds; a full
    /// buffer at that limit is an error naming the column, the sizes and what to do.</summary>
    internal static int GrownRows(int rows, int dimension, string columnName, bool canStream)
    {
        int max = MaxRows(dimension);
        if (rows >= max)
            throw new DataValidationException(rows, -1,
                FormattableString.Invariant($"the data has more than {max} rows of {dimension} values, more than one array holds in memory ({Array.MaxLength} values); ") +
                (canStream ? "set TrainingData = DensityTrainingData.Streamed to train through a cursor without holding the data"
                           : "train on fewer rows (this model trains in memory only)"), columnName);
        return (int)Math.Min((long)rows * 2, max);
    }
}
