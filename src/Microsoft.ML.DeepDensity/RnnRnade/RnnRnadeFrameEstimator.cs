using System.Globalization;
using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Training;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.DeepDensity.Transforms;

/// <summary>
/// RNN-RNADE on data in the usual time-series shape: one row per time step with a frame column (a known-size Single
/// vector), a sequence-id column and an order column. Each row gets LogDensity = log p(x_t | x_&lt;t) of its own
/// sequence (the per-step anomaly score), Score = −LogDensity and PredictedLabel.
/// </summary>
/// <remarks>
/// <para>Grouping and ordering rule. Training: rows are grouped by sequence id (any row order, sequences may
/// interleave) and sorted by the order column within a sequence; two rows of a sequence with the same order value are
/// an error naming the row. Scoring is streaming: rows are scored in the order the cursor delivers them, each
/// conditioned on the earlier rows of its sequence seen by the same cursor, so within a sequence the rows must arrive
/// in strictly increasing order (else an error naming the row); different sequences may interleave. Sort by (id,
/// order) or by time when the data is not already in that shape. A cursor starts every sequence afresh, and so does
/// each <c>PredictionEngine</c>-free pass; scoring the same view twice gives the same values.</para>
/// <para>Ids are compared as text (numeric ids are converted), order values as Double.</para>
/// </remarks>
public sealed class RnnRnadeFrameEstimator : IEstimator<SequenceDensityTransformer>
{
    /// <summary>Columns, contamination and the engine's <see cref="RnnRnadeOptions"/>.</summary>
    public sealed class Options
    {
        /// <summary>Input: one frame per row, a known-size Single vector. Default <see cref="DensityEstimatorDefaults.FeatureColumnName"/>.</summary>
        public string FeatureColumnName { get; set; } = DensityEstimatorDefaults.FeatureColumnName;
        /// <summary>Input: the sequence a row belongs to (text or numeric). Default <see cref="DensityEstimatorDefaults.SequenceIdColumnName"/>.</summary>
        public string SequenceIdColumnName { get; set; } = DensityEstimatorDefaults.SequenceIdColumnName;
        /// <summary>Input: the row's position in time within its sequence (numeric, or a DateTime, DateTimeOffset or TimeSpan;
        /// increasing). Default <see cref="DensityEstimatorDefaults.OrderColumnName"/>.</summary>
        public string OrderColumnName { get; set; } = DensityEstimatorDefaults.OrderColumnName;
        /// <summary>Output (Single): log p(x_t | x_&lt;t). Default <see cref="DensityEstimatorDefaults.LogDensityColumnName"/>.</summary>
        public string LogDensityColumnName { get; set; } = DensityEstimatorDefaults.LogDensityColumnName;
        /// <summary>Output (Single): −LogDensity, finite. Default <see cref="DensityEstimatorDefaults.ScoreColumnName"/>.</summary>
        public string ScoreColumnName { get; set; } = DensityEstimatorDefaults.ScoreColumnName;
        /// <summary>Output (Boolean): Score above the (1 − Contamination) quantile of the scores of the frames <see cref="ThresholdRows"/> chooses (a sequence's first frames: of the windows' first frames, <see cref="SequenceDensityTransformer.FirstFrameThresholds"/>). Default <see cref="DensityEstimatorDefaults.PredictedLabelColumnName"/>.</summary>
        public string PredictedLabelColumnName { get; set; } = DensityEstimatorDefaults.PredictedLabelColumnName;
        /// <summary>Expected anomaly fraction of the frames, in [0, 0.5]. Default <see cref="DensityEstimatorDefaults.Contamination"/>.</summary>
        public double Contamination { get; set; } = DensityEstimatorDefaults.Contamination;
        /// <summary>Which frames' scores set the PredictedLabel thresholds. <see cref="DensityThresholdRows.HeldOut"/>: frames
        /// the model did not train on: the validation view's, else those of the sequences the engine held out for early
        /// stopping (or of its held-out training windows, when there are too few sequences to split); with fewer than
        /// max(20, ⌈1 / Contamination⌉) frames a normal approximation of their scores' quantile (never below their largest),
        /// and the training frames (with a warning) below 10. The first frames' thresholds likewise, from the windows of
        /// those sequences when there are at least max(100, ⌈1 / Contamination⌉) of them (the normal approximation from 10),
        /// else from the training windows. <see cref="DensityThresholdRows.Training"/>: the training frames and windows, the rule before held-out
        /// frames were used. The Fit's log says which set them. Default <see cref="DensityEstimatorDefaults.ThresholdRows"/>.</summary>
        public DensityThresholdRows ThresholdRows { get; set; } = DensityEstimatorDefaults.ThresholdRows;
        /// <summary>Engine hyper-parameters. Default: the engine's defaults.</summary>
        public RnnRnadeOptions ModelOptions { get; set; } = new();
        /// <summary>Optional extra receiver of training progress. Default null.</summary>
        public IProgress<TrainingProgress>? Progress { get; set; }
        /// <summary>Cancels training. Default none.</summary>
        public CancellationToken CancellationToken { get; set; }

        /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting, or the first engine setting set
        /// to a value other than its default where it has no effect (docs/mlnet.md).</summary>
        public void Validate()
        {
            RnnRnadeColumns.CheckNames(
                new[] { (nameof(FeatureColumnName), FeatureColumnName), (nameof(SequenceIdColumnName), SequenceIdColumnName), (nameof(OrderColumnName), OrderColumnName) },
                new[] { (nameof(LogDensityColumnName), LogDensityColumnName), (nameof(ScoreColumnName), ScoreColumnName), (nameof(PredictedLabelColumnName), PredictedLabelColumnName) },
                Contamination);
            AnomalyThreshold.Check(ThresholdRows);
            ArgumentNullException.ThrowIfNull(ModelOptions, nameof(ModelOptions));
            ModelOptions.Validate();
            SettingEffects.CheckModelOptions(ModelOptions);
        }
    }

    private readonly MLContext _ml;
    private readonly Options _options;

    internal RnnRnadeFrameEstimator(MLContext mlContext, Options options)
    {
        _ml = mlContext ?? throw new ArgumentNullException(nameof(mlContext));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _options.Validate();
    }

    /// <summary>Trains on the sequences formed by the rows of <paramref name="input"/> (see the grouping rule).</summary>
    /// <param name="input">The frame rows: feature vector, sequence id and order columns.</param>
    public SequenceDensityTransformer Fit(IDataView input) => Fit(input, null);

    /// <summary>Trains, with the sequences of <paramref name="validationData"/> (frame rows with the same columns) as the
    /// validation set for early stopping, e.g. the later part of a single long series.</summary>
    /// <param name="trainData">The training frame rows: feature vector, sequence id and order columns.</param>
    /// <param name="validationData">Validation frame rows, or null for the model's own held-out fraction (of the sequences,
    /// or of the training windows when there are too few sequences; see <see cref="RnnRnadeOptions.TrainingWindow"/>).</param>
    public SequenceDensityTransformer Fit(IDataView trainData, IDataView? validationData)
    {
        ArgumentNullException.ThrowIfNull(trainData);
        _options.Validate();
        SettingEffects.CheckAtFit(_options.ModelOptions, validationData is not null, columns: null);
        // Before training: the fitted model would refuse this schema at Transform (a saved one would lose the column).
        ReservedColumns.Check(trainData.Schema);
        var o = _options;
        o.CancellationToken.ThrowIfCancellationRequested();
        var inputs = Inputs(trainData.Schema).Fit(trainData).Transform(trainData);
        // The validation view's columns before a row of either view is read, and named as that view's.
        IDataView? validationInputs = null;
        if (validationData is not null)
        {
            try { validationInputs = Inputs(validationData.Schema).Fit(validationData).Transform(validationData); }
            catch (ArgumentException e) when (e is not DataValidationException) { throw ValidationViewErrors.Restated(e); }
            if (validationInputs.Schema[RnnRnadeSurrogate.FeatureCol].Type is VectorDataViewType v && inputs.Schema[RnnRnadeSurrogate.FeatureCol].Type is VectorDataViewType t && v.Size != t.Size)
                throw ValidationViewErrors.Width(o.FeatureColumnName, v.Size, t.Size);
        }
        // From the schema's frame width, before the frame rows are read and grouped (the engine checks again at its Fit).
        if (inputs.Schema[RnnRnadeSurrogate.FeatureCol].Type is VectorDataViewType { Size: > 0 } frame)
            o.ModelOptions.PredictModelSize(frame.Size).EnsureLoadable();
        // A bad row names its view (DataSet, and in words), as the row and whole-sequence estimators' errors do: the row
        // alone does not say which of the two views it is in.
        SequenceBatch data;
        // The user's frame column (not the chain's copy of it) names the bad value's slot.
        try { data = Read(inputs); }
        catch (DataValidationException e) { throw ValidationViewErrors.InDataSet(e, DataSetKind.Training, trainData.Schema.GetColumnOrNull(o.FeatureColumnName)); }
        SequenceBatch? validation = null;
        if (validationInputs is not null)
        {
            try { validation = Read(validationInputs); }
            catch (DataValidationException e) { throw ValidationViewErrors.InDataSet(e, DataSetKind.Validation, validationData!.Schema.GetColumnOrNull(o.FeatureColumnName)); }
        }
        using var channel = ((IHostEnvironment)_ml).Start("RnnRnade");
        channel.Info(MessageSensitivity.None, FormattableString.Invariant($"RnnRnade: training on {data.Count} sequences ({data.TotalFrames} frame rows)."));
        if (RnnRnadeModel.WindowsNote(data, o.ModelOptions.TrainingWindow) is string windows) channel.Info(MessageSensitivity.None, "RnnRnade: " + windows + ".");
        RnnRnadeModel model;
        try { model = RnnRnadeModel.Fit(data, o.ModelOptions, validation, RnnRnadeColumns.Progress(channel, o.Progress), o.CancellationToken); }
        catch (DataValidationException e) when (UnscorableValidation.Is(e) && e.DataSet != DataSetKind.Unknown)
        {
            throw UnscorableFrame(e, e.DataSet == DataSetKind.Validation ? validationInputs! : inputs, e.DataSet);
        }
        // The frames' scores each in its whole sequence, as the scorer streams them; the thresholds from the frames the
        // model did not train on (the validation view's, else the engine's held-out ones) or the training frames.
        var frames = RnnRnadeColumns.ScoreFramesCancellably(model, data, o.CancellationToken);
        var (threshold, startThresholds, plan, startPlan) = SequenceAnomalyThreshold.FrameRows(model, data, frames, validation, o.ModelOptions,
            o.ThresholdRows, o.Contamination, o.CancellationToken);
        channel.Info(MessageSensitivity.None, string.Create(CultureInfo.InvariantCulture,
            $"RnnRnade: trained; score threshold {threshold:G6} from {plan.Description} (contamination {o.Contamination}); {startThresholds.Length} first-frame threshold{(startThresholds.Length == 1 ? "" : "s")} from {startPlan.Description}."));
        var fallbacks = new[] { plan.Fallback, startPlan.Fallback }.OfType<AnomalyThreshold.ThresholdFallback>().ToArray();
        foreach (var fallback in fallbacks) channel.Warning(MessageSensitivity.None, fallback.Message("RnnRnade"));
        var chain = RnnRnadeSurrogate.AppendModel(_ml, Inputs(trainData.Schema), model, threshold, new[] { o.FeatureColumnName, o.SequenceIdColumnName, o.OrderColumnName },
                out var chunkColumns, startThresholds)
            .Append<ITransformer>(_ml.Transforms.StatefulCustomMapping(new RnnRnadeSurrogate.FrameFactoryV2().GetMapping(),
                new RnnRnadeSurrogate.FrameFactoryV2().GetStateInitAction(), RnnRnadeSurrogate.FrameFactoryV2.ContractName));
        chain = RnnRnadeSurrogate.Finish(_ml, chain, new[]
        {
            (o.LogDensityColumnName, RnnRnadeSurrogate.LogDensityCol), (o.ScoreColumnName, RnnRnadeSurrogate.ScoreCol),
            (o.PredictedLabelColumnName, RnnRnadeSurrogate.PredictedCol),
        }, new[] { RnnRnadeSurrogate.FeatureCol, RnnRnadeSurrogate.IdCol, RnnRnadeSurrogate.OrderCol, RnnRnadeSurrogate.LogDensityCol,
                   RnnRnadeSurrogate.ScoreCol, RnnRnadeSurrogate.PredictedCol }.Concat(chunkColumns));
        var (feature, id, order) = (o.FeatureColumnName, o.SequenceIdColumnName, o.OrderColumnName);
        int frameSize = model.FrameSize;
        return new SequenceDensityTransformer(chain.Fit(trainData), model, threshold, schema => CheckColumns(schema, feature, id, order, frameSize),
            new[] { feature, id, order }, streamsRows: true, startThresholds) { ThresholdSource = plan.Description, ThresholdFallbacks = fallbacks };
    }

    /// <summary>Copies the frame, converts the id to text and the order to Double (a time: its ticks) under internal names.</summary>
    private EstimatorChain<ITransformer> Inputs(DataViewSchema schema)
    {
        var o = _options;
        var (frame, id, order) = CheckColumns(schema, o.FeatureColumnName, o.SequenceIdColumnName, o.OrderColumnName, null);
        var chain = new EstimatorChain<ITransformer>()
            .Append<ITransformer>(_ml.Transforms.CopyColumns(RnnRnadeSurrogate.FeatureCol, o.FeatureColumnName));
        // Ids compare as text. A text id is converted rather than copied, so that the fitted chain also takes a numeric id
        // column (3 → "3": the same CSV read with the id typed as a number scores as it was fitted; a copy bound a number
        // to the scorer's text input and failed with ML.NET's error naming the internal column).
        // A numeric NaN id converts to the text "NaN", which a numeric column cannot hold otherwise: it becomes empty text,
        // the missing id that training and the scorer refuse (naming the id column and the row), live and after loading.
        chain = id.Type is TextDataViewType
            ? chain.Append<ITransformer>(_ml.Transforms.Conversion.ConvertType(RnnRnadeSurrogate.IdCol, id.Name, DataKind.String))
            : chain.Append<ITransformer>(_ml.Transforms.Conversion.ConvertType(RnnRnadeSurrogate.IdCol, id.Name, DataKind.String))
                .Append<ITransformer>(_ml.Transforms.Expression(RnnRnadeSurrogate.IdCol, "id : id == \"NaN\" ? \"\" : id", RnnRnadeSurrogate.IdCol));
        return chain.Append<ITransformer>(_ml.Transforms.Conversion.ConvertType(RnnRnadeSurrogate.OrderCol, order.Name, DataKind.Double));
    }

    /// <summary>The frame, sequence-id and order columns of a runtime schema, checked with messages naming them (and, for
    /// a fitted model, the frame width against its frame size).</summary>
    internal static (DataViewSchema.Column Frame, DataViewSchema.Column Id, DataViewSchema.Column Order) CheckColumns(
        DataViewSchema schema, string featureColumnName, string sequenceIdColumnName, string orderColumnName, int? frameSize)
    {
        // Training needs the width from the schema; a fitted model knows it and, as it always has, checks a
        // variable-size frame row by row (e.g. a PredictionEngine input class without [VectorType]): the row models' check.
        var frame = FeatureColumnCheck.Check(schema, featureColumnName, frameSize, FeatureColumnCheck.Role.Frame);
        var id = schema.GetColumnOrNull(sequenceIdColumnName)
            ?? throw MissingColumn.Error("Sequence-id column", sequenceIdColumnName, schema);
        var order = schema.GetColumnOrNull(orderColumnName)
            ?? throw MissingColumn.Error("Order column", orderColumnName, schema);
        if (id.Type is not (TextDataViewType or NumberDataViewType))
            throw new ArgumentOutOfRangeException(MissingColumn.InputSchema, $"Sequence-id column '{id.Name}' must be text or numeric, but is {id.Type}{KeyIdRemedy(id.Name, id.Type is KeyDataViewType)}.");
        if (!IsOrderType(order.Type))
            throw new ArgumentOutOfRangeException(MissingColumn.InputSchema, $"Order column '{order.Name}' must be {OrderTypes}, but is {order.Type}.");
        return (frame, id, order);
    }

    /// <summary>An order value as the user's column holds it: the chain reads every order as a Double (a time as its ticks,
    /// a DateTimeOffset's UTC instant), which in a message would be "6.3839664E+17" for a date; a number round-trips in
    /// the invariant culture (a message reads the same on every machine).</summary>
    /// <remarks>A Double holds a date's ticks to 128 ticks (12.8 µs), so a time is shown to 10 µs, rounded.</remarks>
    internal static string OrderText(double order, DataViewType? columnType)
    {
        long ticks = Math.Abs(order) < long.MaxValue / 2 ? (long)Math.Round(order / 100) * 100 : 0;
        bool date = ticks >= DateTime.MinValue.Ticks && ticks <= DateTime.MaxValue.Ticks && Math.Abs(order) < long.MaxValue / 2;
        const string Stamp = "yyyy-MM-dd HH:mm:ss.FFFFF";
        return columnType switch
        {
            DateTimeDataViewType when date => new DateTime(ticks).ToString(Stamp, CultureInfo.InvariantCulture).TrimEnd('.'),
            DateTimeOffsetDataViewType when date => new DateTimeOffset(ticks, TimeSpan.Zero).ToString(Stamp, CultureInfo.InvariantCulture).TrimEnd('.') + " UTC",
            TimeSpanDataViewType when Math.Abs(order) < TimeSpan.MaxValue.Ticks / 2 => TimeSpan.FromTicks((long)order).ToString("c", CultureInfo.InvariantCulture),
            _ => order.ToString("R", CultureInfo.InvariantCulture),
        };
    }

    /// <summary>What an order column may be, in messages.</summary>
    private const string OrderTypes = "numeric or a time (DateTime, DateTimeOffset, TimeSpan)";

    /// <summary>Numbers, and the times a time-series table orders its rows by: <see cref="Inputs"/> converts the order to
    /// Double with ML.NET's own conversion, which gives a time its ticks (a DateTimeOffset's UTC instant), so rows sort by
    /// time; present-day ticks (about 6.4e17) are Doubles 128 ticks (12.8 µs) apart, so two frames of a sequence closer
    /// than that take the same order, which is refused as a repeated order naming both rows.</summary>
    private static bool IsOrderType(DataViewType type)
        => type is NumberDataViewType or DateTimeDataViewType or DateTimeOffsetDataViewType or TimeSpanDataViewType;

    /// <summary>A key id (MapValueToKey's output) names its sequence through the value it maps back to.</summary>
    private static string KeyIdRemedy(string name, bool isKey)
        => isKey ? $"; map it back to its values first, e.g. ml.Transforms.Conversion.MapKeyToValue(\"{name}\")" : "";

    /// <summary>The engine's unmeasurable validation frame (<see cref="UnscorableValidation"/>: a sequence of the grouped
    /// frames and a frame of it) as the row of <paramref name="view"/> it was read from, with the sequence's id. The grouping
    /// is not kept through training (an int a row): the id and order columns are read again, only in this case.</summary>
    private DataValidationException UnscorableFrame(DataValidationException e, IDataView view, DataSetKind dataSet)
    {
        var s = view.Schema;
        var cols = new[] { s[RnnRnadeSurrogate.IdCol], s[RnnRnadeSurrogate.OrderCol] };
        int sequence = (int)e.Row, frame = Math.Max(0, UnscorableValidation.Frame(e));
        var seen = new HashSet<string>(StringComparer.Ordinal);
        string? id = null;
        var rows = new List<(double Order, long Row)>();
        using (var cursor = view.GetRowCursor(cols))
        {
            var idGetter = cursor.GetGetter<ReadOnlyMemory<char>>(cols[0]);
            var orderGetter = cursor.GetGetter<double>(cols[1]);
            ReadOnlyMemory<char> value = default; double order = 0;
            for (long row = 0; cursor.MoveNext(); row++)
            {
                idGetter(ref value);
                string key = value.ToString();
                // Sequences are numbered in order of their ids' first rows, as Read groups them.
                if (id is null && seen.Add(key) && seen.Count == sequence + 1) id = key;
                if (key != id) continue;
                orderGetter(ref order);
                rows.Add((order, row));
            }
        }
        rows.Sort((a, b) => a.Order != b.Order ? a.Order.CompareTo(b.Order) : a.Row.CompareTo(b.Row));
        if (id is null || frame >= rows.Count) return e;
        var inner = e.Restated(rows[frame].Row, -1, $"sequence '{id}', {e.Problem}", _options.FeatureColumnName, dataSet);
        return ValidationViewErrors.InDataSet(inner, dataSet);
    }

    /// <summary>The sequences of frame rows as <see cref="Fit(IDataView, IDataView?)"/> reads them (for tests).</summary>
    internal SequenceBatch ReadFrameRows(IDataView frameRows) => Read(Inputs(frameRows.Schema).Fit(frameRows).Transform(frameRows));

    /// <summary>
    /// Groups rows by id in order of first appearance, sorted by order within a sequence. The frames are read into one
    /// buffer (as long as the rows when the view knows their count, so it is never regrown) and grouped in place: each
    /// read row's place in the grouped layout, then the frames moved there (<see cref="SequenceValueBuffer.MoveFrames"/>),
    /// so the peak is one copy of the frames and an int a row, not the read buffer and a grouped copy beside it.
    /// </summary>
    private SequenceBatch Read(IDataView view)
    {
        var s = view.Schema;
        var cols = new[] { s[RnnRnadeSurrogate.FeatureCol], s[RnnRnadeSurrogate.IdCol], s[RnnRnadeSurrogate.OrderCol] };
        int d = ((VectorDataViewType)cols[0].Type).Size;
        var frames = new SequenceValueBuffer(view.GetRowCount() is long rowCount and > 0 && rowCount <= Array.MaxLength / d ? rowCount * d : 0);
        var groups = new Dictionary<string, List<(double Order, long Row)>>(StringComparer.Ordinal);
        var firstSeen = new List<string>();
        var orderType = s.GetColumnOrNull(_options.OrderColumnName)?.Type;
        using (var cursor = view.GetRowCursor(cols))
        {
            var frameGetter = cursor.GetGetter<VBuffer<float>>(cols[0]);
            var idGetter = cursor.GetGetter<ReadOnlyMemory<char>>(cols[1]);
            var orderGetter = cursor.GetGetter<double>(cols[2]);
            VBuffer<float> buffer = default; ReadOnlyMemory<char> id = default; double order = 0;
            var dense = new float[d];
            long row = 0;
            while (cursor.MoveNext())
            {
                frameGetter(ref buffer); idGetter(ref id); orderGetter(ref order);
                Scoring.Densify(in buffer, dense);
                DataValidation.CheckRows(dense, d, InputDomain.Real, _options.FeatureColumnName, row);
                if (double.IsNaN(order)) throw new DataValidationException(row, -1, "the order value is missing", _options.OrderColumnName) { Kind = DataProblemKind.NonFiniteValue };
                string key = id.ToString();
                // A missing id (empty text; a numeric NaN arrives as empty text, see Inputs) is no sequence: grouping every
                // id-less row into one would train on a sequence that is not one.
                if (string.IsNullOrWhiteSpace(key))
                    throw new DataValidationException(row, -1, "the sequence id is missing (every frame row needs its sequence's id)", _options.SequenceIdColumnName);
                if (!groups.TryGetValue(key, out var list)) { groups[key] = list = new(); firstSeen.Add(key); }
                list.Add((order, row));
                frames.Append(dense, _options.FeatureColumnName, row);
                row++;
                if (row % DataViewRowStream.RowsPerCancellationCheck == 0) _options.CancellationToken.ThrowIfCancellationRequested();
            }
            if (row == 0) throw DataValidation.NoRowsIn(_options.FeatureColumnName);
        }
        // Every row's frame in the grouped layout (rows fit an int: their frames fit one array).
        var places = new int[frames.Count / d];
        var offsets = new int[firstSeen.Count + 1];
        int f = 0;
        for (int i = 0; i < firstSeen.Count; i++)
        {
            var list = groups[firstSeen[i]];
            list.Sort((a, b) => a.Order != b.Order ? a.Order.CompareTo(b.Order) : a.Row.CompareTo(b.Row));
            for (int j = 0; j < list.Count; j++, f++)
            {
                if (j > 0 && list[j].Order == list[j - 1].Order)
                    throw new DataValidationException(list[j].Row, -1,
                        FormattableString.Invariant($"sequence '{firstSeen[i]}' has two rows with order {OrderText(list[j].Order, orderType)} (rows {list[j - 1].Row} and {list[j].Row})"), _options.OrderColumnName);
                places[(int)list[j].Row] = f;
            }
            offsets[i + 1] = f;
        }
        frames.MoveFrames(places, d);
        return new SequenceBatch(frames.Values, offsets, d);
    }

    /// <inheritdoc/>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var o = _options;
        foreach (var (noun, name) in new[] { ("Frame column", o.FeatureColumnName), ("Sequence-id column", o.SequenceIdColumnName), ("Order column", o.OrderColumnName) })
            if (!inputSchema.Any(c => c.Name == name))
                throw MissingColumn.Error(noun, name, inputSchema);
        ReservedColumns.Check(inputSchema);
        // The types Fit requires (CheckColumns), checked here too: EstimatorChain.Fit asks for the output schema before it
        // fits the stages upstream, so a wrong type is reported before they are trained, as the row estimators do.
        SchemaShape.Column Last(string name) => inputSchema.Last(c => c.Name == name);   // the last column of a name wins
        FeatureColumnCheck.Check(inputSchema, o.FeatureColumnName, FeatureColumnCheck.Role.Frame);
        var id = Last(o.SequenceIdColumnName);
        if (id.IsKey || id.Kind != SchemaShape.Column.VectorKind.Scalar || id.ItemType is not (TextDataViewType or NumberDataViewType))
            throw new ArgumentOutOfRangeException(nameof(inputSchema),
                $"Sequence-id column '{id.Name}' must be text or numeric, but is {(id.IsKey ? "a key of " : "")}{id.ItemType} ({id.Kind}){KeyIdRemedy(id.Name, id.IsKey)}.");
        var order = Last(o.OrderColumnName);
        if (order.IsKey || order.Kind != SchemaShape.Column.VectorKind.Scalar || !IsOrderType(order.ItemType))
            throw new ArgumentOutOfRangeException(nameof(inputSchema),
                $"Order column '{order.Name}' must be {OrderTypes}, but is {(order.IsKey ? "a key of " : "")}{order.ItemType} ({order.Kind}).");
        return ShapeColumns.WithOutputs(inputSchema, new[]
        {
            ShapeColumns.Single(_ml, o.LogDensityColumnName),
            ShapeColumns.Single(_ml, o.ScoreColumnName),
            ShapeColumns.Boolean(_ml, o.PredictedLabelColumnName),
        });
    }
}
