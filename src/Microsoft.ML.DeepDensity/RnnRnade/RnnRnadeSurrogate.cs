using System.ComponentModel;
using System.Text;
using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.Transforms;

namespace Microsoft.ML.DeepDensity.Transforms;

/// <summary>
/// How sequence models live in an ML.NET pipeline and its model zip: as a chain of built-in, loadable transformers that
/// carries the engine model as data (the route of <see cref="Surrogate"/>), ending in a CustomMapping that scores whole
/// sequences (<see cref="SequenceSurrogate"/>, any sequence model) or a StatefulCustomMapping that scores RNN-RNADE
/// frame rows in arrival order:
/// <code>
///   CopyColumns   __dd_rr_features &lt;- Features  (and, for frame rows, __dd_rr_id / __dd_rr_order converted)
///   CustomMapping "DeepDensity.ConstKey.v1"     -> __dd_key
///   MapValue      __dd_key -> __dd_rr_model_k   (one per chunk: table {"m": chunk k}, <see cref="ModelTextChunks"/>)
///   Concatenate   __dd_rr_model &lt;- __dd_rr_model_0, ...
///   CustomMapping "DeepDensity.Sequence.v2"  or  StatefulCustomMapping "DeepDensity.RnnRnadeFrames.v2"
///   CopyColumns   user output names &lt;- __dd_rr_*;  DropColumns __dd_*
/// </code>
/// Zips written before the chunks ("v1") hold the envelope as one base64 value (MapValue __dd_key -> __dd_rr_model) read
/// by "DeepDensity.Sequence.v1" / "DeepDensity.RnnRnadeFrames.v1"; they still load and score.
/// The live transformer is this same chain, so live and loaded scores are the same code.
/// </summary>
internal static class RnnRnadeSurrogate
{
    public const string FeatureCol = "__dd_rr_features", ModelCol = "__dd_rr_model", IdCol = "__dd_rr_id", OrderCol = "__dd_rr_order";
    public const string LogDensityCol = "__dd_rr_logdensity", PerFrameCol = "__dd_rr_perframe", FramesCol = "__dd_rr_frames";
    public const string ScoreCol = "__dd_rr_score", PredictedCol = "__dd_rr_predicted";
    /// <summary>Appends the constant key and the model's chunks, concatenated into the model column (after the input
    /// copies); <paramref name="chunkColumns"/> are the chunks' columns, for the final DropColumns.</summary>
    public static EstimatorChain<ITransformer> AppendModel(MLContext ml, EstimatorChain<ITransformer> chain, SequenceDensityModel model, float threshold,
        IReadOnlyList<string> columns, out string[] chunkColumns, float[]? startThresholds = null)
        => AppendModel(ml, chain, ModelTextChunks.Encode(SequenceSurrogate.EncodeBytes(model, threshold, columns, startThresholds)), chunked: true, out chunkColumns);

    /// <summary>Appends the constant key and <paramref name="model"/>: chunks concatenated into the model column, or (the
    /// "v1" chain, <paramref name="chunked"/> false) one base64 envelope as the model column.</summary>
    public static EstimatorChain<ITransformer> AppendModel(MLContext ml, EstimatorChain<ITransformer> chain, IReadOnlyList<string> model, bool chunked,
        out string[] chunkColumns)
    {
        chain = chain.Append<ITransformer>(ml.Transforms.CustomMapping(new Surrogate.ConstKeyFactory().GetMapping(), Surrogate.ConstKeyFactory.ContractName));
        if (!chunked)
        {
            chunkColumns = Array.Empty<string>();
            return chain.Append<ITransformer>(ml.Transforms.Conversion.MapValue(ModelCol,
                new[] { new KeyValuePair<string, string>(Surrogate.KeyValue, model[0]) }, Surrogate.KeyCol));
        }
        chunkColumns = new string[model.Count];
        for (int k = 0; k < model.Count; k++)
        {
            chunkColumns[k] = ModelTextChunks.ChunkColumn(ModelCol, k);
            chain = chain.Append<ITransformer>(ml.Transforms.Conversion.MapValue(chunkColumns[k],
                new[] { new KeyValuePair<string, string>(Surrogate.KeyValue, model[k]) }, Surrogate.KeyCol));
        }
        return chain.Append<ITransformer>(ml.Transforms.Concatenate(ModelCol, chunkColumns));
    }

    /// <summary>Copies the internal outputs to the user's names and drops every internal column.</summary>
    public static EstimatorChain<ITransformer> Finish(MLContext ml, EstimatorChain<ITransformer> chain,
        IEnumerable<(string Output, string Input)> copies, IEnumerable<string> internals)
    {
        foreach (var (output, input) in copies) chain = chain.Append<ITransformer>(ml.Transforms.CopyColumns(output, input));
        return chain.Append<ITransformer>(ml.Transforms.DropColumns(internals.Append(Surrogate.KeyCol).Append(ModelCol).ToArray()));
    }

    /// <summary>Frames back to back in one vector → a one-sequence batch; a length that is not a whole number of frames is an error.</summary>
    public static SequenceBatch OneSequence(float[] values, int frameSize, string column, long row = -1)
    {
        if (values.Length == 0 || values.Length % frameSize != 0)
            throw new DataValidationException(row, -1,
                FormattableString.Invariant($"the sequence has {values.Length} values, which is not a positive multiple of the frame size {frameSize}"), column)
            { Kind = values.Length == 0 ? DataProblemKind.NotEnoughData : DataProblemKind.WrongSize };
        return new SequenceBatch(values, new[] { 0, values.Length / frameSize }, frameSize);
    }

    // ---------------- whole sequences ----------------
    [EditorBrowsable(EditorBrowsableState.Never)]
    public sealed class SequenceInput
    {
        [ColumnName(FeatureCol)] public float[] Features = Array.Empty<float>();
        [ColumnName(ModelCol)] public ReadOnlyMemory<char> Model;
    }

    /// <summary><see cref="SequenceInput"/> of the "v2" chain: the model's chunks, by reference.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public sealed class SequenceInputV2
    {
        [ColumnName(FeatureCol)] public float[] Features = Array.Empty<float>();
        [ColumnName(ModelCol)] public ReadOnlyMemory<char>[] Model = Array.Empty<ReadOnlyMemory<char>>();
    }

    [EditorBrowsable(EditorBrowsableState.Never)]
    public sealed class SequenceOutput
    {
        [ColumnName(LogDensityCol)] public float LogDensity;
        [ColumnName(PerFrameCol)] public float PerFrame;
        [ColumnName(FramesCol)] public float[] Frames = Array.Empty<float>();
        [ColumnName(ScoreCol)] public float Score;
        [ColumnName(PredictedCol)] public bool PredictedLabel;
    }

    /// <summary>One whole sequence's outputs from any sequence model (shared with <see cref="SequenceSurrogate"/>).</summary>
    internal static void ScoreSequence(SequenceDensityModel model, float threshold, float[] features, SequenceOutput dst, string column)
    {
        SequenceBatch batch;
        // The engine numbers the sequences of its batch, and this batch is the one row: its "row 0" is not the row's
        // number, which this stateless mapping never sees; say what is known instead of a wrong row.
        try
        {
            batch = OneSequence(features, model.FrameSize, column);
            if (dst.Frames.Length != batch.TotalFrames) dst.Frames = new float[batch.TotalFrames];
            model.FrameLogDensity(batch, dst.Frames);
        }
        catch (DataValidationException e) { throw WholeSequenceRowError(e, column); }
        (dst.LogDensity, dst.PerFrame) = Totals(dst.Frames);
        dst.Score = Scoring.ScoreFromLogDensity(dst.PerFrame);
        dst.PredictedLabel = dst.Score > threshold;
    }

    /// <summary>A sequence's log-density and log-density per frame from its frames' conditionals: the Double sum, each
    /// rounded to Single once. The scorer reports these, and Fit learns the threshold from the same per-frame values
    /// (the Single sequence log-density divided by the length differs in the last bit for some sequences, which flagged
    /// a training sequence at the threshold).</summary>
    internal static (float LogDensity, float PerFrame) Totals(ReadOnlySpan<float> frames)
    {
        double sum = 0;
        foreach (var v in frames) sum += v;
        return ((float)sum, (float)(sum / frames.Length));
    }

    /// <summary>
    /// A bad whole-sequence row, said as the other scorers say it: in a PredictionEngine, "the input row of a
    /// PredictionEngine or row mapper" (no row of any data view); on a cursor, that the row number is unknown. The mapping
    /// is stateless and sees neither the row's position nor who reads it, so on this error path only (never per row) the
    /// call stack says whether a PredictionEngine asked; a row mapper used directly gets the cursor's wording, still true.
    /// </summary>
    private static DataValidationException WholeSequenceRowError(DataValidationException e, string column)
        => NonFiniteInput.WithHint(e.Restated(-1, e.Column, e.Problem + (CalledByPredictionEngine()
            ? " (in the input row of a PredictionEngine or row mapper; not a row number of any data view; frames count from 0)"
            : " (row number unknown: the whole-sequence scorer sees each row's values, not its position, live and after loading; frames count from 0)"), column, chain: false));

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static bool CalledByPredictionEngine()
    {
        foreach (var frame in new System.Diagnostics.StackTrace(false).GetFrames())
            for (var type = frame.GetMethod()?.DeclaringType; type is not null; type = type.DeclaringType)
                if (type.Namespace == "Microsoft.ML" && type.Name.StartsWith("PredictionEngine", StringComparison.Ordinal)) return true;
        return false;
    }

    // ---------------- frame rows ----------------
    [EditorBrowsable(EditorBrowsableState.Never)]
    public sealed class FrameInput
    {
        [ColumnName(FeatureCol)] public float[] Frame = Array.Empty<float>();
        [ColumnName(IdCol)] public ReadOnlyMemory<char> SequenceId;
        [ColumnName(OrderCol)] public double Order;
        [ColumnName(ModelCol)] public ReadOnlyMemory<char> Model;
    }

    /// <summary><see cref="FrameInput"/> of the "v2" chain: the model's chunks, by reference.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public sealed class FrameInputV2
    {
        [ColumnName(FeatureCol)] public float[] Frame = Array.Empty<float>();
        [ColumnName(IdCol)] public ReadOnlyMemory<char> SequenceId;
        [ColumnName(OrderCol)] public double Order;
        [ColumnName(ModelCol)] public ReadOnlyMemory<char>[] Model = Array.Empty<ReadOnlyMemory<char>>();
    }

    [EditorBrowsable(EditorBrowsableState.Never)]
    public sealed class FrameOutput
    {
        [ColumnName(LogDensityCol)] public float LogDensity;
        [ColumnName(ScoreCol)] public float Score;
        [ColumnName(PredictedCol)] public bool PredictedLabel;
    }

    /// <summary>Per cursor (or per PredictionEngine): the open sequences (recurrent state and last order value) by id.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public sealed class FrameState
    {
        internal readonly Dictionary<string, (RnnRnadeStream Stream, double Order)> Open = new(StringComparer.Ordinal);
        /// <summary>The scratch every open sequence's stream scores in (one cursor or engine scores one row at a time), so
        /// that an open sequence holds its recurrent state alone: a stream of its own held about 6 KB a sequence id.</summary>
        internal RnnRnadeStream.Workspace? Work;
        internal long Rows;
        /// <summary>True when the state belongs to a row mapper (a PredictionEngine) rather than a cursor: then
        /// <see cref="Rows"/> counts the engine's predictions, which are no rows of any data view.</summary>
        internal bool InRowMapper;

        /// <summary>A problem with the row being mapped: on a cursor at its row (counted from the cursor's start, the row's
        /// index in the view); in a row mapper as "the input row", with the prediction's number, as the row models say it.</summary>
        internal DataValidationException RowError(long row, int column, string problem, string source, DataProblemKind kind = DataProblemKind.Other)
            => RowError(row, new DataValidationException(-1, column, problem, source) { Kind = kind }, problem);

        /// <summary><see cref="RowError(long, int, string, string, DataProblemKind)"/> for <paramref name="e"/>, a problem
        /// found in the row (its own row is not the row's number), in the words <paramref name="problem"/>.</summary>
        internal DataValidationException RowError(long row, DataValidationException e, string problem)
            => NonFiniteInput.WithHint(!InRowMapper
                ? e.Restated(row, e.Column, problem, e.DataSource, chain: false)
                : e.Restated(-1, e.Column, problem + string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $" (in the input row of a PredictionEngine or row mapper: the input of its prediction number {row + 1}, counting from 1; not a row number of any data view)"), e.DataSource, chain: false));

        /// <summary>
        /// Whether ML.NET is creating this state for a row mapper. The mapping sees neither the row nor its position, and
        /// ML.NET 5's StatefulCustomMappingTransformer calls the state initialiser from exactly two places: its cursor's
        /// constructor and its row mapper's <c>CreateGetters</c> (what a PredictionEngine and <c>GetRowToRowMapper</c> use).
        /// The first caller outside this assembly says which. Once per cursor or engine, not per row; should ML.NET move the
        /// call, a row mapper falls back to the old wording (its prediction count reported as the row), never a cursor.
        /// </summary>
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)] // its frame is ours, and skipped by assembly
        internal static bool CreatedByRowMapper()
        {
            var own = typeof(FrameState).Assembly;
            foreach (var frame in new System.Diagnostics.StackTrace(false).GetFrames())
            {
                var method = frame.GetMethod();
                if (method is null || method.DeclaringType?.Assembly == own) continue;
                return method.Name.Contains("CreateGetters", StringComparison.Ordinal);
            }
            return false;
        }
    }

    /// <summary>Scores frame rows in arrival order: each row gets log p(x_t | earlier rows of its sequence).</summary>
    [CustomMappingFactoryAttribute(ContractName)]
    [EditorBrowsable(EditorBrowsableState.Never)]
    public sealed class FrameFactory : StatefulCustomMappingFactory<FrameInput, FrameOutput, FrameState>
    {
        public const string ContractName = "DeepDensity.RnnRnadeFrames.v1";
        private readonly Cache _cache = new();
        public override Action<FrameInput, FrameOutput, FrameState> GetMapping() => Map;
        public override Action<FrameState> GetStateInitAction() => static state => state.InRowMapper = FrameState.CreatedByRowMapper();

        private void Map(FrameInput src, FrameOutput dst, FrameState state) => MapFrame(_cache.Resolve(src.Model), src.Frame, src.SequenceId, src.Order, dst, state);
    }

    /// <summary><see cref="FrameFactory"/> over the model's chunks (the "v2" chain).</summary>
    [CustomMappingFactoryAttribute(ContractName)]
    [EditorBrowsable(EditorBrowsableState.Never)]
    public sealed class FrameFactoryV2 : StatefulCustomMappingFactory<FrameInputV2, FrameOutput, FrameState>
    {
        public const string ContractName = "DeepDensity.RnnRnadeFrames.v2";
        private readonly Cache _cache = new();
        public override Action<FrameInputV2, FrameOutput, FrameState> GetMapping() => Map;
        public override Action<FrameState> GetStateInitAction() => static state => state.InRowMapper = FrameState.CreatedByRowMapper();

        private void Map(FrameInputV2 src, FrameOutput dst, FrameState state) => MapFrame(_cache.Resolve(src.Model), src.Frame, src.SequenceId, src.Order, dst, state);
    }

    private static void MapFrame((RnnRnadeModel Model, SequenceSurrogate.Envelope Envelope) decoded, float[] frame,
        ReadOnlyMemory<char> sequenceId, double order, FrameOutput dst, FrameState state)
    {
        var (model, envelope) = decoded;
        string frameColumn = envelope.Column(0, "frame column"), orderColumn = envelope.Column(2, "order column");
        long row = state.Rows++;
        if (frame.Length != model.FrameSize)
            throw state.RowError(row, -1, FormattableString.Invariant($"the frame has {frame.Length} values but the model's frame size is {model.FrameSize}"), frameColumn, DataProblemKind.WrongSize);
        if (double.IsNaN(order)) throw state.RowError(row, -1, "the order value is missing (NaN; the saved chain reads a text order column as a number, and text that is not one as NaN)", orderColumn, DataProblemKind.NonFiniteValue);
        if (sequenceId.Span.IsWhiteSpace())
            throw state.RowError(row, -1, "the sequence id is missing (every frame row needs its sequence's id)", envelope.Column(1, "sequence-id column"));
        string id = sequenceId.ToString();
        // Checked here, with the row's number, before the stream sees it: the stream counts frames of its own sequence,
        // and a NaN would otherwise be reported at that frame's index as if it were the row.
        try { DataValidation.CheckRows(frame, model.FrameSize, InputDomain.Real, frameColumn, row); }
        catch (DataValidationException e) { throw state.RowError(row, e, $"{e.Problem} (sequence '{id}')"); }
        if (!state.Open.TryGetValue(id, out var open))
            open = (model.StartStream(state.Work ??= model.NewStreamWorkspace()), double.NegativeInfinity);   // a stream checks it is its model's
        else if (!(order > open.Order))
        {
            var e = state.RowError(row, -1, $"sequence '{id}' has {OrderAfter(order, open.Order, null)}: the rows of a sequence must arrive in increasing order " +
                "(scoring streams each sequence in row order, where training sorted it; sort the rows by order within each sequence before scoring)", orderColumn);
            e.Data[OrderValuesKey] = new[] { order, open.Order };
            throw e;
        }
        int position = open.Stream.Length;   // the frame's place in its sequence, for its threshold
        float ld = open.Stream.Append(frame);
        state.Open[id] = (open.Stream, order);
        dst.LogDensity = ld;
        dst.Score = Scoring.ScoreFromLogDensity(ld);
        dst.PredictedLabel = dst.Score > envelope.ThresholdAt(position);
    }

    /// <summary>Key in <see cref="Exception.Data"/> of an out-of-order row's error: its order value and the one before it
    /// (a double[2], as the chain reads them: a time as its ticks), which the transformer words as the input's order column
    /// holds them (<see cref="InOrderColumnTerms"/>).</summary>
    internal const string OrderValuesKey = "DeepDensity.OrderValues";

    /// <summary>"order X after Y", the values as a column of <paramref name="orderType"/> holds them (null: as numbers).</summary>
    private static string OrderAfter(double order, double previous, DataViewType? orderType)
        => $"order {RnnRnadeFrameEstimator.OrderText(order, orderType)} after {RnnRnadeFrameEstimator.OrderText(previous, orderType)}";

    /// <summary>
    /// An out-of-order row's error (<see cref="OrderValuesKey"/>) with its order values as the order column of the input
    /// being scored holds them (<paramref name="orderType"/>: a DateTime as a date and time, not its ticks); null when
    /// <paramref name="e"/> is no such error or the words do not change (a numeric column). The scorer in the chain sees
    /// only the Double the chain converted the column to, and a saved model does not record the column's type; the
    /// transformer scoring the input knows it from the input's schema, live and after LoadWithLiveDensityModels.
    /// </summary>
    internal static DataValidationException? InOrderColumnTerms(DataValidationException e, DataViewType? orderType)
    {
        if (orderType is null || e.Data[OrderValuesKey] is not double[] { Length: 2 } values) return null;
        string raw = OrderAfter(values[0], values[1], null), shown = OrderAfter(values[0], values[1], orderType);
        if (raw == shown || !e.Problem.Contains(raw, StringComparison.Ordinal)) return null;
        return e.Reworded(e.Problem.Replace(raw, shown, StringComparison.Ordinal));   // keeps the order values in its Data
    }

    /// <summary>One decoded envelope (<see cref="SequenceSurrogate"/>'s) per factory, keyed by the identity of the text backing it.</summary>
    private sealed class Cache
    {
        private readonly Surrogate.TextIdentityCache<(RnnRnadeModel, SequenceSurrogate.Envelope)> _inner = new(t => Frames(SequenceSurrogate.Decode(t)));
        private readonly Surrogate.ChunksIdentityCache<(RnnRnadeModel, SequenceSurrogate.Envelope)> _chunks = new(c => Frames(SequenceSurrogate.Decode(c)));

        private static (RnnRnadeModel, SequenceSurrogate.Envelope) Frames(SequenceSurrogate.Envelope e)
            => (e.Model as RnnRnadeModel ?? throw new InvalidModelFileException($"The frame-row scorer holds a {e.Model.ModelKind} model, not an RNN-RNADE."), e);

        /// <summary>The model and its envelope (thresholds, and the user's column names: frame, sequence id, order).</summary>
        public (RnnRnadeModel Model, SequenceSurrogate.Envelope Envelope) Resolve(ReadOnlyMemory<char> text) => _inner.Resolve(text);

        /// <summary><see cref="Resolve(ReadOnlyMemory{char})"/> for the chunks of a "v2" chain.</summary>
        public (RnnRnadeModel Model, SequenceSurrogate.Envelope Envelope) Resolve(ReadOnlyMemory<char>[] chunks) => _chunks.Resolve(chunks);
    }
}
