using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity;

/// <summary>
/// Reads the saved model text out of a loaded surrogate stage: in a pipeline loaded with <c>mlContext.Model.Load</c>
/// a model is held by MapValue stages that turn the constant key (<see cref="Surrogate.KeyCol"/>) into its text, so
/// feeding them a one-row view of the key yields the text. Shared by the row-model and sequence-model lookups; the key
/// view is built once per reader.
/// </summary>
internal sealed class SurrogateStageReader
{
    private readonly MLContext _mlContext;
    private IDataView? _keyView;

    public SurrogateStageReader(MLContext mlContext) => _mlContext = mlContext;

    /// <summary>The text <paramref name="stage"/> writes to <paramref name="column"/> for the key row, or null when
    /// the stage is not such a surrogate (it rejects the key view or has no text column of that name).</summary>
    public string? ReadText(ITransformer stage, string column) => ReadMemory(stage, column)?.ToString();

    /// <summary><see cref="ReadText"/> without a copy: the text as the stage holds it (a MapValue hands out its table's
    /// text by reference, which stays valid while the stage lives).</summary>
    public ReadOnlyMemory<char>? ReadMemory(ITransformer stage, string column)
    {
        _keyView ??= _mlContext.Data.LoadFromEnumerable(new[] { new Surrogate.KeyRow { Key = Surrogate.KeyValue } });
        DataViewSchema output;
        try { output = stage.GetOutputSchema(_keyView.Schema); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException) { return null; }
        if (output.GetColumnOrNull(column) is not DataViewSchema.Column col || col.Type != TextDataViewType.Instance) return null;
        var view = stage.Transform(_keyView);
        using var cursor = view.GetRowCursor(new[] { view.Schema[column] });
        var getter = cursor.GetGetter<ReadOnlyMemory<char>>(view.Schema[column]);
        if (!cursor.MoveNext()) return null;
        ReadOnlyMemory<char> text = default;
        getter(ref text);
        return text;
    }

    /// <summary>
    /// The row model whose model stages start at <paramref name="stages"/>[<paramref name="index"/>] in a loaded
    /// surrogate, decoded (so validated), and how many stages hold it: one MapValue of base64 text (the "v1" chain) or
    /// one MapValue per chunk (<see cref="ModelTextChunks"/>, "v2"). Null when that stage holds no model.
    /// </summary>
    public (DensityModel Model, TransformerSettings Settings)? ReadRowModel(IReadOnlyList<ITransformer> stages, int index, out int modelStages)
        => ReadModel(stages, index, Surrogate.ModelCol, text => ModelEnvelope.Decode(text), ModelEnvelope.Decode, out modelStages) is (true, var model) ? model : null;

    /// <summary><see cref="ReadRowModel"/> for a sequence model's surrogate (its model column <c>__dd_rr_model</c>).</summary>
    public SequenceSurrogate.Envelope? ReadSequenceModel(IReadOnlyList<ITransformer> stages, int index, out int modelStages)
        => ReadModel(stages, index, RnnRnadeSurrogate.ModelCol, text => SequenceSurrogate.Decode(text), SequenceSurrogate.Decode, out modelStages) is (true, var envelope) ? envelope : null;

    private delegate T TextDecoder<T>(ReadOnlySpan<char> text);

    /// <summary>The model in <paramref name="column"/> of the stages from <paramref name="index"/> on, in either form:
    /// one base64 value ("v1", <paramref name="fromText"/>) or one chunk a stage ("v2", <paramref name="fromChunks"/>);
    /// (false, default) when that stage holds no model.</summary>
    private (bool Found, T Value) ReadModel<T>(IReadOnlyList<ITransformer> stages, int index, string column, TextDecoder<T> fromText,
        Func<IReadOnlyList<ReadOnlyMemory<char>>, T> fromChunks, out int modelStages)
    {
        modelStages = 0;
        if (ReadMemory(stages[index], column) is ReadOnlyMemory<char> v1)
        {
            modelStages = 1;
            return (true, fromText(v1.Span));
        }
        if (ReadChunks(stages, index, column) is not { } chunks) return (false, default!);
        modelStages = chunks.Count;
        return (true, fromChunks(chunks));
    }

    /// <summary>The chunks (<see cref="ModelTextChunks"/>) held by the MapValue stages from <paramref name="index"/> on,
    /// chunk k in the column <paramref name="modelColumn"/>_k; null when that stage holds no chunk 0.</summary>
    private List<ReadOnlyMemory<char>>? ReadChunks(IReadOnlyList<ITransformer> stages, int index, string modelColumn)
    {
        if (ReadMemory(stages[index], ModelTextChunks.ChunkColumn(modelColumn, 0)) is not ReadOnlyMemory<char> first) return null;
        int count = ModelTextChunks.CountOf(first.Span);
        var chunks = new List<ReadOnlyMemory<char>>(count) { first };
        for (int k = 1; k < count; k++)
        {
            string column = ModelTextChunks.ChunkColumn(modelColumn, k);
            var next = index + k < stages.Count ? ReadMemory(stages[index + k], column) : null;
            if (next is not ReadOnlyMemory<char> chunk)
                throw new InvalidModelFileException(FormattableString.Invariant($"Corrupt DeepDensity model in the ML.NET model: chunk {k} of {count} (the stage writing '{column}') is missing."));
            chunks.Add(chunk);
        }
        return chunks;
    }
}
