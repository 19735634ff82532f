using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity;

/// <summary>Recovering the DeepDensity models inside a fitted or loaded ML.NET pipeline.</summary>
public static class DensityModelExtensions
{
    /// <summary>
    /// Every density transformer in <paramref name="transformer"/> (a single transformer or a chain, nested chains
    /// included), in pipeline order. Works on live pipelines and on pipelines loaded with <c>mlContext.Model.Load</c>
    /// (where each model is rebuilt as a live, block-scoring <see cref="DensityTransformer"/> from the saved blob).
    /// </summary>
    /// <param name="transformer">A fitted or loaded transformer: a single stage or a chain.</param>
    /// <param name="mlContext">The context the stages of a loaded pipeline are rebuilt in; a new one when null.</param>
    public static IReadOnlyList<DensityTransformer> GetDensityTransformers(this ITransformer transformer, MLContext? mlContext = null)
    {
        ArgumentNullException.ThrowIfNull(transformer);
        var found = new List<DensityTransformer>();
        SurrogateStageReader? reader = null;
        Visit(transformer);
        return found;

        void Visit(ITransformer t)
        {
            switch (t)
            {
                case DensityTransformer d:
                    found.Add(d);
                    return;
                case IEnumerable<ITransformer> chain:
                    // By index: a loaded model's chunks are held by consecutive stages (one MapValue each).
                    var stages = chain.ToList();
                    for (int i = 0; i < stages.Count; i++)
                    {
                        if (stages[i] is DensityTransformer or IEnumerable<ITransformer>) { Visit(stages[i]); continue; }
                        if (LoadedModelStages(Reader(), stages, i, mlContext!, out int used) is DensityTransformer inChain)
                        {
                            found.Add(inChain);
                            i += used - 1;
                        }
                    }
                    return;
            }
            if (LoadedModelStages(Reader(), new[] { t }, 0, mlContext!, out _) is DensityTransformer loaded) found.Add(loaded);
        }

        SurrogateStageReader Reader()
        {
            mlContext ??= new MLContext();
            return reader ??= new SurrogateStageReader(mlContext);
        }
    }

    /// <summary>The live transformer decoded from the model stages of a loaded surrogate starting at
    /// <paramref name="stages"/>[<paramref name="index"/>] (the MapValue stages that turn the constant key into the
    /// model's text), and how many stages hold it; null for any other stage.</summary>
    private static DensityTransformer? LoadedModelStages(SurrogateStageReader reader, IReadOnlyList<ITransformer> stages, int index,
        MLContext mlContext, out int modelStages)
        => reader.ReadRowModel(stages, index, out modelStages) is var (model, settings) ? new DensityTransformer(mlContext, model, settings) : null;

    /// <summary>The one density transformer in <paramref name="transformer"/>; throws if there is none or several.</summary>
    /// <param name="transformer">A fitted or loaded transformer: a single stage or a chain.</param>
    /// <param name="mlContext">The context the stages of a loaded pipeline are rebuilt in; a new one when null.</param>
    public static DensityTransformer GetDensityTransformer(this ITransformer transformer, MLContext? mlContext = null)
    {
        var all = GetDensityTransformers(transformer, mlContext);
        return all.Count switch
        {
            1 => all[0],
            0 => throw new InvalidOperationException("The transformer contains no DeepDensity model" + SequenceModelHint(transformer, mlContext) + "."),
            _ => throw new InvalidOperationException(FormattableString.Invariant($"The transformer contains {all.Count} DeepDensity models; use GetDensityTransformers.")),
        };
    }

    /// <summary>Why a pipeline without a row model may still hold a DeepDensity model: a sequence model (RNN-RNADE) is
    /// recovered by its own method.</summary>
    private static string SequenceModelHint(ITransformer transformer, MLContext? mlContext)
    {
        try
        {
            var model = transformer.GetSequenceDensityModel(mlContext);
            return $" of rows, but it holds a sequence model ({model.ModelKind}): use GetSequenceDensityModel() for it (it samples with Sample(...))";
        }
        catch (Exception e) when (e is InvalidOperationException or Persistence.InvalidModelFileException) { return ""; }
    }

    /// <summary>The engine model of the one density transformer in <paramref name="transformer"/> (live or loaded).</summary>
    /// <param name="transformer">A fitted or loaded transformer: a single stage or a chain.</param>
    public static DensityModel GetDensityModel(this ITransformer transformer) => GetDensityTransformer(transformer).Model;

    /// <summary>The engine model, checked to be a <typeparamref name="TModel"/> (e.g. <c>RnadeModel</c>).</summary>
    /// <typeparam name="TModel">The expected engine model type.</typeparam>
    /// <param name="transformer">A fitted or loaded transformer: a single stage or a chain.</param>
    public static TModel GetDensityModel<TModel>(this ITransformer transformer) where TModel : DensityModel
        => GetDensityModel(transformer) as TModel
           ?? throw new InvalidOperationException($"The DeepDensity model is a {GetDensityModel(transformer).ModelKind}, not a {typeof(TModel).Name}.");

    /// <summary>The rows of <c>Model.Sample(<paramref name="count"/>, <paramref name="seed"/>)</c> of the one density model in
    /// <paramref name="transformer"/> as a lazy data view (one known-size vector column named like the model's feature
    /// column), drawn a block at a time as cursors read it, so its memory does not grow with the count (see
    /// <see cref="DensityTransformer.GenerateSamples(MLContext, int, ulong)"/>).</summary>
    /// <param name="transformer">A fitted or loaded transformer: a single stage or a chain.</param>
    /// <param name="mlContext">The context the data view is used in.</param>
    /// <param name="count">Rows to draw (non-negative).</param>
    /// <param name="seed">Seed of the draws: the same seed gives the same rows.</param>
    public static IDataView GenerateSamples(this ITransformer transformer, MLContext mlContext, int count, ulong seed)
        => GetDensityTransformer(transformer, mlContext).GenerateSamples(mlContext, count, seed);

    /// <summary><see cref="GenerateSamples(ITransformer, MLContext, int, ulong)"/> whose cursors observe
    /// <paramref name="cancellationToken"/> (see <see cref="DensityTransformer.GenerateSamples(MLContext, int, ulong, CancellationToken)"/>).</summary>
    /// <param name="transformer">A fitted or loaded transformer: a single stage or a chain.</param>
    /// <param name="mlContext">The context the data view is used in.</param>
    /// <param name="count">Rows to draw (non-negative).</param>
    /// <param name="seed">Seed of the draws: the same seed gives the same rows.</param>
    /// <param name="cancellationToken">Stops the cursors of the view.</param>
    public static IDataView GenerateSamples(this ITransformer transformer, MLContext mlContext, int count, ulong seed, CancellationToken cancellationToken)
        => GetDensityTransformer(transformer, mlContext).GenerateSamples(mlContext, count, seed, cancellationToken);

    /// <summary>
    /// Returns a pipeline equivalent to <paramref name="transformer"/> in which every saved-and-loaded DeepDensity stage
    /// (a chain of built-ins scoring one row per engine call) is replaced by the live, block-scoring
    /// <see cref="DensityTransformer"/> decoded from it — same columns and values, batched speed. Live stages and other
    /// transformers are kept as they are; the result saves like the original.
    /// </summary>
    /// <param name="transformer">A fitted or loaded transformer: a single stage or a chain.</param>
    /// <param name="mlContext">The context the stages of a loaded pipeline are rebuilt in; a new one when null.</param>
    public static ITransformer WithLiveDensityTransformers(this ITransformer transformer, MLContext? mlContext = null)
    {
        ArgumentNullException.ThrowIfNull(transformer);
        return Replace(transformer);

        ITransformer Replace(ITransformer t)
        {
            if (t is DensityTransformer || t is not IEnumerable<ITransformer> chain) return t;
            var stages = chain.ToList();
            // A loaded sequence surrogate scores through its own chain (that is its live form), but gets back the fitted
            // transformer's input-schema check: without it a Double sequence column failed with ML.NET's binding error
            // naming '__dd_rr_features', a frame of the wrong width only at the first row read inside a doubly wrapped
            // splitter exception, and a Boolean sequence id was scored as the text "True"/"False".
            if (stages.Count > 0 && stages.All(s => s is not IEnumerable<ITransformer>)
                && SequenceModelExtensions.CheckedSequenceStage(t, stages, mlContext) is SequenceDensityTransformer sequence)
                return sequence;
            // A loaded surrogate is a run of leaves of this chain, not necessarily all of it: a DensityTransformer saved on
            // its own loads as exactly its surrogate chain, to which the user may Append stages; and a fitted pipeline
            // (Concatenate → estimator) is one flat chain of leaves with the live transformer among them. Only the run
            // is replaced, so every other stage is kept.
            mlContext ??= new MLContext();
            var reader = new SurrogateStageReader(mlContext);
            var scopes = ScopesOf(t, stages);
            var replaced = new List<ITransformer>(stages.Count);
            var replacedScopes = new List<TransformerScope>(stages.Count);
            for (int i = 0; i < stages.Count;)
            {
                int modelStage = i + Surrogate.StagesBeforeModel;
                if (modelStage < stages.Count && stages[modelStage] is not IEnumerable<ITransformer>
                    && Surrogate.EndOfLoaded(stages, modelStage) is int end
                    && LoadedModelStages(reader, stages, modelStage, mlContext, out _) is DensityTransformer live)
                {
                    replaced.Add(live);
                    replacedScopes.Add(scopes[modelStage]);
                    i = end;
                    continue;
                }
                replaced.Add(Replace(stages[i]));
                replacedScopes.Add(scopes[i]);
                i++;
            }
            // The chain was one surrogate and nothing else (a DensityTransformer saved alone): the transformer itself.
            if (replaced.Count == 1 && stages.Count > 1 && replaced[0] is DensityTransformer only && replacedScopes[0] == TransformerScope.Everything) return only;
            return new TransformerChain<ITransformer>(replaced, replacedScopes);
        }
    }

    /// <summary>
    /// The <see cref="TransformerScope"/> of each of <paramref name="stages"/>, the stages of <paramref name="chain"/>.
    /// ML.NET's <c>TransformerChain.Transform</c> and <c>GetOutputSchema</c> run only the stages in scope Scoring (a label
    /// conversion appended with <c>TransformerScope.TrainTest</c> is skipped on data without the label), and
    /// <c>GetModelFor(scope)</c> filters by it; rebuilding the chain with the one-argument constructor put every stage in
    /// scope Everything, so a pipeline loaded with <c>LoadWithLiveDensityModels</c> ran its training-only stages and failed
    /// on scoring data the live pipeline and the plain <c>Model.Load</c> scored. ML.NET exposes a chain's scopes only
    /// through the public <c>GetModelFor</c> (a method of each <c>TransformerChain&lt;TLastTransformer&gt;</c>, hence reflection): a stage has
    /// a scope's bit when it is among the stages <c>GetModelFor</c> keeps for that bit, matched in order.
    /// Everything for a chain that is not a <c>TransformerChain</c>.
    /// </summary>
    internal static TransformerScope[] ScopesOf(ITransformer chain, IReadOnlyList<ITransformer> stages)
    {
        var scopes = new TransformerScope[stages.Count];
        var type = chain.GetType();
        var getModelFor = type.IsGenericType && type.GetGenericTypeDefinition() == typeof(TransformerChain<>)
            ? type.GetMethod(nameof(TransformerChain<ITransformer>.GetModelFor), new[] { typeof(TransformerScope) })
            : null;
        if (getModelFor is null)
        {
            Array.Fill(scopes, TransformerScope.Everything);
            return scopes;
        }
        foreach (var bit in new[] { TransformerScope.Training, TransformerScope.Testing, TransformerScope.Scoring })
        {
            var kept = ((IEnumerable<ITransformer>)getModelFor.Invoke(chain, new object[] { bit })!).ToList();
            for (int i = 0, j = 0; i < stages.Count && j < kept.Count; i++)
                if (ReferenceEquals(stages[i], kept[j])) { scopes[i] |= bit; j++; }
        }
        return scopes;
    }

    /// <summary>
    /// <c>mlContext.Model.Load</c>, then <see cref="WithLiveDensityTransformers"/>: the pipeline saved in
    /// <paramref name="filePath"/> with every DeepDensity stage as the live, block-scoring transformer (the ordinary
    /// load scores one row per engine call, several times slower on large views). Every DeepDensity model in the file,
    /// row or sequence model, is decoded and validated here, so a damaged one throws
    /// <see cref="Persistence.InvalidModelFileException"/> now rather than at the first row read. Two failures of
    /// ML.NET's own load are rethrown with their remedy, ML.NET's exception inside: no writable temporary directory
    /// (<see cref="IOException"/> naming <c>mlContext.TempFilePath</c>) and too little memory for the load
    /// (<see cref="InsufficientMemoryException"/>, naming the heap to allow: about 6 times the zip's size plus 25 MB, 25 times for a
    /// zip of an earlier version).
    /// </summary>
    /// <param name="catalog">The context's model operations (<c>mlContext.Model</c>).</param>
    /// <param name="filePath">The model zip written by <c>mlContext.Model.Save</c>.</param>
    /// <param name="inputSchema">The input schema saved with the pipeline.</param>
    public static ITransformer LoadWithLiveDensityModels(this ModelOperationsCatalog catalog, string filePath, out DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        DataViewSchema? schema = null;
        long? bytes = File.Exists(filePath) ? new FileInfo(filePath).Length : null;
        var loaded = ModelLoadFailures.Load(() => catalog.Load(filePath, out schema), bytes, () =>
        {
            using var zip = File.OpenRead(filePath);
            return ModelLoadFailures.FormOf(zip);
        });
        inputSchema = schema!;
        return LiveAndValidated(loaded);
    }

    /// <inheritdoc cref="LoadWithLiveDensityModels(ModelOperationsCatalog, string, out DataViewSchema)"/>
    /// <param name="stream">A readable stream holding the model zip written by <c>mlContext.Model.Save</c>.</param>
    public static ITransformer LoadWithLiveDensityModels(this ModelOperationsCatalog catalog, Stream stream, out DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        DataViewSchema? schema = null;
        long? bytes = stream is { CanSeek: true } ? stream.Length - stream.Position : null;
        long start = stream is { CanSeek: true } ? stream.Position : -1;
        var loaded = ModelLoadFailures.Load(() => catalog.Load(stream, out schema), bytes,
            () =>
            {
                if (start < 0) return ModelLoadFailures.ZipForm.Unknown;
                stream.Position = start;
                return ModelLoadFailures.FormOf(stream);
            });
        inputSchema = schema!;
        return LiveAndValidated(loaded);
    }

    /// <summary>The row models become live transformers (decoded, so validated); the sequence models, whose live form is
    /// the loaded chain itself, are decoded here too, so that a damaged one throws at load like a row model.</summary>
    private static ITransformer LiveAndValidated(ITransformer loaded)
    {
        var live = loaded.WithLiveDensityTransformers();
        SequenceModelExtensions.FindSequenceModels(live, null);
        return live;
    }
}
