using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity;

/// <summary>
/// Reads the saved model text out of a loaded surrogate stage: in a pipeline loaded with <c>mlContext.Model.Load</c>
/// a model is a MapValue stage that turns the constant key (<see cref="Surrogate.KeyCol"/>) into its text, so feeding
/// it a one-row view of the key yields the text. Shared by the row-model and sequence-model lookups; the key view is
/// built once per reader.
/// </summary>
internal sealed class SurrogateStageReader
{
    private readonly MLContext _mlContext;
    private IDataView? _keyView;

    public SurrogateStageReader(MLContext mlContext) => _mlContext = mlContext;

    /// <summary>The text <paramref name="stage"/> writes to <paramref name="column"/> for the key row, or null when
    /// the stage is not such a surrogate (it rejects the key view or has no text column of that name).</summary>
    public string? ReadText(ITransformer stage, string column)
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
        return text.ToString();
    }
}
