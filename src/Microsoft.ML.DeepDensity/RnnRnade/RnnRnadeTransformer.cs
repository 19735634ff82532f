using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Models.RnnRnade;

namespace Microsoft.ML.DeepDensity.Transforms;

/// <summary>
/// A fitted RNN-RNADE in an ML.NET pipeline (whole-sequence or frame-row form). It is a chain of built-in ML.NET
/// transformers carrying the model as data (see <see cref="RnnRnadeSurrogate"/>), so <c>mlContext.Model.Save</c> /
/// <c>Load</c> work like for any pipeline and a loaded pipeline scores with the same code.
/// </summary>
public sealed class RnnRnadeTransformer : ITransformer
{
    private readonly ITransformer _chain;

    internal RnnRnadeTransformer(ITransformer chain, RnnRnadeModel model, float threshold)
    {
        _chain = chain; Model = model; Threshold = threshold;
    }

    /// <summary>The engine model.</summary>
    public RnnRnadeModel Model { get; }

    /// <summary>Score threshold of PredictedLabel, learned on the training data from the contamination.</summary>
    public float Threshold { get; }

    /// <inheritdoc/>
    public bool IsRowToRowMapper => _chain.IsRowToRowMapper;

    /// <inheritdoc/>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => _chain.GetOutputSchema(inputSchema);

    /// <inheritdoc/>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => _chain.GetRowToRowMapper(inputSchema);

    /// <summary>Lazily appends the output columns.</summary>
    public IDataView Transform(IDataView input) => _chain.Transform(input);

    void ICanSaveModel.Save(ModelSaveContext ctx) => ((ICanSaveModel)_chain).Save(ctx);
}
