using System.ComponentModel;
using System.Runtime.InteropServices;
using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.Transforms;

namespace Microsoft.ML.DeepDensity.Transforms;

/// <summary>
/// What a density transformer writes into an ML.NET model zip. ML.NET keeps <c>ModelSaveContext</c> internal, so an
/// outside transformer cannot save its own state; instead it saves this chain of loadable transformers, which carries
/// the model as data (dotnet/machinelearning#4911):
/// <code>
///   CopyColumns   __dd_features &lt;- Features
///   CustomMapping "DeepDensity.ConstKey.v1"  -> __dd_key  (constant text "m")
///   MapValue      __dd_key -> __dd_model_0   (table {"m": chunk 0}; ML.NET stores the table in the zip)
///   ...           one MapValue per chunk     (__dd_model_1, ...: <see cref="ModelTextChunks"/>)
///   Concatenate   __dd_model &lt;- __dd_model_0, __dd_model_1, ...   (a vector of text: the chunks by reference)
///   CustomMapping "DeepDensity.Score.v2"     -> __dd_logdensity, __dd_score, __dd_predicted, __dd_stderr
///   CustomMapping "DeepDensity.Sample.v2"    -> __dd_sample                (only with a sample column)
///   CopyColumns   LogDensity &lt;- __dd_logdensity, Score &lt;- __dd_score, ...
///   DropColumns   __dd_*
/// </code>
/// The envelope (<see cref="ModelEnvelope"/>) holds the engine's own model file, which names its kind, so the same two
/// scorers serve every model family. Contract names are versioned: a change of their columns gets a new name. The "v1"
/// chain, which zips written before the chunks hold (and still load and score), has one MapValue __dd_key -> __dd_model
/// whose table is {"m": the envelope in base64} and the "v1" scorers, whose model column is that one text; ML.NET held
/// copies of 2.7 times the model at once while loading it (docs/mlnet.md, "Memory and time of a load").
/// <para>What ML.NET 5.0.1 runs of ours at <c>Model.Load</c>: each factory's parameterless constructor and
/// <c>GetMapping()</c> (LambdaTransform.Create → ComponentCatalog.GetExtensionValue → CustomMappingFactory.CreateTransformer),
/// with neither the blob (ML.NET's MapValue loader reads it) nor the environment — so the blob is validated at the first
/// row read and nothing can be written to MLContext.Log.
/// A loaded model scores one row per engine call: a CustomMapping sees one row at a time and cannot read ahead,
/// and ML.NET keeps every other extension point internal. <see cref="DensityModelExtensions.WithLiveDensityTransformers"/>
/// or <c>mlContext.Model.LoadWithLiveDensityModels</c> give back the block-scoring transformer (and validate the blob
/// at load). Errors: a bad row throws <see cref="DataValidationException"/> naming the feature column and the slot;
/// the row number is not visible to a mapping, so it is reported as unknown (−1). ML.NET runs the mapping on parallel
/// worker cursors and wraps what a worker throws in an InvalidOperationException ("Splitter/consolidator worker...")
/// whose inner exception is ours; a PredictionEngine or the live transformer throws it unwrapped.</para>
/// </summary>
internal static class Surrogate
{
    public const string FeatureCol = "__dd_features";
    public const string KeyCol = "__dd_key";
    public const string ModelCol = "__dd_model";
    public const string LogDensityCol = "__dd_logdensity";
    public const string ScoreCol = "__dd_score";
    public const string PredictedCol = "__dd_predicted";
    public const string StdErrCol = "__dd_stderr";
    public const string SampleCol = "__dd_sample";
    public const string KeyValue = "m";

    /// <summary>Stages <see cref="Build(MLContext, TransformerSettings, int, string)"/> puts before the model stage (the
    /// MapValue yielding the envelope): the feature copy and the constant key.</summary>
    public const int StagesBeforeModel = 2;

    /// <summary>The index after the last stage of the loaded surrogate whose model stage is
    /// <paramref name="stages"/>[<paramref name="modelStage"/>], in a chain of leaves that may hold other stages after
    /// it: <see cref="Build(MLContext, TransformerSettings, int, string)"/> ends every surrogate with the DropColumns of
    /// its internal columns and puts only CustomMapping and CopyColumns stages between the model stage and it. Null
    /// when no DropColumns follows.</summary>
    public static int? EndOfLoaded(IReadOnlyList<ITransformer> stages, int modelStage)
    {
        for (int i = modelStage + 1; i < stages.Count; i++)
            if (stages[i] is ColumnSelectingTransformer) return i + 1;
        return null;
    }

    public static ITransformer Build(MLContext ml, DensityTransformer t)
    {
        CheckSavable(t.Settings);
        return Build(ml, t.Settings, t.Model.Dimension, ModelTextChunks.Encode(ModelEnvelope.EncodeBytes(t.Model, t.Settings)));
    }

    /// <summary>A transformer loaded from a zip written before <see cref="ReservedColumns"/> existed may name a column with
    /// the chain's prefix; this chain would drop it from what the saved model gives back, so it is not saved again.</summary>
    private static void CheckSavable(TransformerSettings s)
    {
        foreach (var (setting, value) in new[]
        {
            (nameof(s.FeatureColumnName), s.FeatureColumnName), (nameof(s.LogDensityColumnName), s.LogDensityColumnName),
            (nameof(s.ScoreColumnName), s.ScoreColumnName), (nameof(s.PredictedLabelColumnName), s.PredictedLabelColumnName),
            (nameof(s.StandardErrorColumnName), s.StandardErrorColumnName), (nameof(s.SampleColumnName), s.SampleColumnName),
        })
            if (ReservedColumns.IsReserved(value))
                throw new InvalidOperationException($"This density transformer (loaded from an older model file) has {setting} '{value}': the " +
                    $"column-name prefix '{ReservedColumns.Prefix}' is reserved for DeepDensity's internal columns, and the saved model would drop " +
                    "that column. Fit the model again with another column name to save it; the file it came from still loads and scores.");
    }

    /// <summary>The "v1" chain carrying <paramref name="envelope"/> (base64) as it is: what earlier versions wrote (tests
    /// pass damaged ones).</summary>
    internal static ITransformer Build(MLContext ml, TransformerSettings s, int dimension, string envelope)
        => Build(ml, s, dimension, new[] { envelope }, chunked: false);

    /// <summary>The "v2" chain carrying <paramref name="chunks"/> (<see cref="ModelTextChunks"/>) as they are (tests pass
    /// damaged ones).</summary>
    internal static ITransformer Build(MLContext ml, TransformerSettings s, int dimension, string[] chunks)
        => Build(ml, s, dimension, chunks, chunked: true);

    private static ITransformer Build(MLContext ml, TransformerSettings s, int dimension, IReadOnlyList<string> model, bool chunked)
    {
        // One flat EstimatorChain (IEstimator.Append would nest a chain per stage), so that a loaded surrogate is one
        // chain of leaves that GetDensityTransformers / WithLiveDensityTransformers can recognise and replace.
        var pipeline = new EstimatorChain<ITransformer>()
            .Append<ITransformer>(ml.Transforms.CopyColumns(FeatureCol, s.FeatureColumnName))
            .Append<ITransformer>(ml.Transforms.CustomMapping(new ConstKeyFactory().GetMapping(), ConstKeyFactory.ContractName));
        var drop = new List<string> { FeatureCol, KeyCol, ModelCol, LogDensityCol, ScoreCol, PredictedCol, StdErrCol };
        if (chunked)
        {
            var chunkColumns = new string[model.Count];
            for (int k = 0; k < model.Count; k++)
            {
                chunkColumns[k] = ModelTextChunks.ChunkColumn(ModelCol, k);
                pipeline = pipeline.Append<ITransformer>(ml.Transforms.Conversion.MapValue(chunkColumns[k],
                    new[] { new KeyValuePair<string, string>(KeyValue, model[k]) }, KeyCol));
            }
            drop.AddRange(chunkColumns);
            pipeline = pipeline.Append<ITransformer>(ml.Transforms.Concatenate(ModelCol, chunkColumns))
                .Append<ITransformer>(ml.Transforms.CustomMapping(new ScoreFactoryV2().GetMapping(), ScoreFactoryV2.ContractName));
        }
        else
            pipeline = pipeline
                .Append<ITransformer>(ml.Transforms.Conversion.MapValue(ModelCol, new[] { new KeyValuePair<string, string>(KeyValue, model[0]) }, KeyCol))
                .Append<ITransformer>(ml.Transforms.CustomMapping(new ScoreFactory().GetMapping(), ScoreFactory.ContractName));
        var copies = new List<(string Output, string Input)>
        {
            (s.LogDensityColumnName, LogDensityCol),
            (s.ScoreColumnName, ScoreCol),
            (s.PredictedLabelColumnName, PredictedCol),
        };
        if (s.StandardErrorColumnName is not null) copies.Add((s.StandardErrorColumnName, StdErrCol));
        if (s.SampleColumnName is not null)
        {
            pipeline = pipeline.Append<ITransformer>(chunked
                ? ml.Transforms.CustomMapping(new SampleFactoryV2().GetMapping(), SampleFactoryV2.ContractName)
                : ml.Transforms.CustomMapping(new SampleFactory().GetMapping(), SampleFactory.ContractName));
            copies.Add((s.SampleColumnName, SampleCol));
            drop.Add(SampleCol);
        }
        foreach (var (output, input) in copies) pipeline = pipeline.Append<ITransformer>(ml.Transforms.CopyColumns(output, input));
        pipeline = pipeline.Append<ITransformer>(ml.Transforms.DropColumns(drop.ToArray()));

        // Every stage is trivial: fit on an empty view that has only the feature column.
        var def = SchemaDefinition.Create(typeof(FeatureRow));
        def[0].ColumnName = s.FeatureColumnName;
        def[0].ColumnType = new VectorDataViewType(NumberDataViewType.Single, dimension);
        var empty = ml.Data.LoadFromEnumerable(new List<FeatureRow>(), def);
        return pipeline.Fit(empty);
    }

    /// <summary>Row class of the empty view the surrogate is fitted on.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public sealed class FeatureRow { public float[] Features = Array.Empty<float>(); }

    // ---------------- constant key ----------------
    /// <summary>No input columns.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public sealed class NoInput { }

    /// <summary>The constant key the MapValue table is looked up with.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public sealed class KeyRow
    {
        [ColumnName(KeyCol)] public string Key = "";
    }

    /// <summary>Loaded by ML.NET by contract name; emits the constant key.</summary>
    [CustomMappingFactoryAttribute(ContractName)]
    [EditorBrowsable(EditorBrowsableState.Never)]
    public sealed class ConstKeyFactory : CustomMappingFactory<NoInput, KeyRow>
    {
        public const string ContractName = "DeepDensity.ConstKey.v1";
        public override Action<NoInput, KeyRow> GetMapping() => static (_, dst) => dst.Key = KeyValue;
    }

    // ---------------- scoring ----------------
    /// <summary>Scorer input: the features and the model envelope.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public sealed class ScoreInput
    {
        [ColumnName(FeatureCol)] public float[] Features = Array.Empty<float>();
        // ReadOnlyMemory<char>, not string: passed by reference, not copied per row.
        [ColumnName(ModelCol)] public ReadOnlyMemory<char> Model;
    }

    /// <summary>Scorer output.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public sealed class ScoreOutput
    {
        [ColumnName(LogDensityCol)] public float LogDensity;
        [ColumnName(ScoreCol)] public float Score;
        [ColumnName(PredictedCol)] public bool PredictedLabel;
        [ColumnName(StdErrCol)] public float StandardError;
    }

    /// <summary>Instantiated by ML.NET on load; decodes the envelope once (cached by the identity of its backing text) and scores rows.</summary>
    [CustomMappingFactoryAttribute(ContractName)]
    [EditorBrowsable(EditorBrowsableState.Never)]
    public sealed class ScoreFactory : CustomMappingFactory<ScoreInput, ScoreOutput>
    {
        public const string ContractName = "DeepDensity.Score.v1";
        private readonly EnvelopeCache _cache = new();

        public override Action<ScoreInput, ScoreOutput> GetMapping() => Map;

        private void Map(ScoreInput src, ScoreOutput dst) => ScoreRow(_cache.Resolve(src.Model), src.Features, dst);
    }

    /// <summary>Scorer input of the "v2" chain: the features and the model's chunks (<see cref="ModelTextChunks"/>).</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public sealed class ScoreInputV2
    {
        [ColumnName(FeatureCol)] public float[] Features = Array.Empty<float>();
        // ReadOnlyMemory<char>, not string: the chunks are passed by reference, not copied per row.
        [ColumnName(ModelCol)] public ReadOnlyMemory<char>[] Model = Array.Empty<ReadOnlyMemory<char>>();
    }

    /// <summary>Instantiated by ML.NET on load of a "v2" chain; decodes the chunks once (cached by the identity of their
    /// backing texts) and scores rows.</summary>
    [CustomMappingFactoryAttribute(ContractName)]
    [EditorBrowsable(EditorBrowsableState.Never)]
    public sealed class ScoreFactoryV2 : CustomMappingFactory<ScoreInputV2, ScoreOutput>
    {
        public const string ContractName = "DeepDensity.Score.v2";
        private readonly EnvelopeCache _cache = new();

        public override Action<ScoreInputV2, ScoreOutput> GetMapping() => Map;

        private void Map(ScoreInputV2 src, ScoreOutput dst) => ScoreRow(_cache.Resolve(src.Model), src.Features, dst);
    }

    private static void ScoreRow((DensityModel Model, TransformerSettings Settings) decoded, float[] features, ScoreOutput dst)
    {
        var (model, s) = decoded;
        Span<float> ld = stackalloc float[1];
        Span<float> se = stackalloc float[1];
        CheckWidth(features, model, s);
        try { model.LogDensity(features, ld, se); }
        catch (DataValidationException e) { throw RowProblem(e, s); }
        dst.LogDensity = ld[0];
        dst.Score = Scoring.ScoreFromLogDensity(ld[0]);
        dst.PredictedLabel = dst.Score > s.Threshold;
        dst.StandardError = se[0];
    }

    /// <summary>Sampler input: the features (they seed the draw) and the model envelope.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public sealed class SampleOutput
    {
        [ColumnName(SampleCol)] public float[] Sample = Array.Empty<float>();
    }

    /// <summary>Draws one sample per row, seeded by (SampleSeed, row features), like the live transformer.</summary>
    [CustomMappingFactoryAttribute(ContractName)]
    [EditorBrowsable(EditorBrowsableState.Never)]
    public sealed class SampleFactory : CustomMappingFactory<ScoreInput, SampleOutput>
    {
        public const string ContractName = "DeepDensity.Sample.v1";
        private readonly EnvelopeCache _cache = new();

        public override Action<ScoreInput, SampleOutput> GetMapping() => Map;

        private void Map(ScoreInput src, SampleOutput dst) => SampleRow(_cache.Resolve(src.Model), src.Features, dst);
    }

    /// <summary>The sampler of the "v2" chain (<see cref="SampleFactory"/> over the model's chunks).</summary>
    [CustomMappingFactoryAttribute(ContractName)]
    [EditorBrowsable(EditorBrowsableState.Never)]
    public sealed class SampleFactoryV2 : CustomMappingFactory<ScoreInputV2, SampleOutput>
    {
        public const string ContractName = "DeepDensity.Sample.v2";
        private readonly EnvelopeCache _cache = new();

        public override Action<ScoreInputV2, SampleOutput> GetMapping() => Map;

        private void Map(ScoreInputV2 src, SampleOutput dst) => SampleRow(_cache.Resolve(src.Model), src.Features, dst);
    }

    private static void SampleRow((DensityModel Model, TransformerSettings Settings) decoded, float[] features, SampleOutput dst)
    {
        var (model, s) = decoded;
        CheckWidth(features, model, s);
        try { DataValidation.CheckRows(features, model.Dimension, model.InputDomain, s.FeatureColumnName); }
        catch (DataValidationException e) { throw RowProblem(e, s); }
        if (dst.Sample.Length != model.Dimension) dst.Sample = new float[model.Dimension];
        model.Sample(1, Scoring.RowSampleSeed(s.SampleSeed, features), dst.Sample);
    }

    private static void CheckWidth(float[] features, DensityModel model, TransformerSettings s)
    {
        if (features.Length != model.Dimension)
            throw RowProblem(new DataValidationException(-1, -1, FormattableString.Invariant($"the row has {features.Length} values but the model expects {model.Dimension}"), null) { Kind = DataProblemKind.WrongSize }, s);
    }

    /// <summary>The engine's row error, restated for the user's feature column; the row number is unknown here (a mapping
    /// sees values, not positions), and saying so beats the engine's row 0 of a one-row call (so it replaces the engine's).</summary>
    private static DataValidationException RowProblem(DataValidationException e, TransformerSettings s)
        => NonFiniteInput.WithHint(e.Restated(-1, e.Column, e.Problem + " (row number unknown: a model loaded with mlContext.Model.Load scores row by row without " +
            "seeing row positions; read through a single cursor, WithLiveDensityTransformers or LoadWithLiveDensityModels reports it)", s.FeatureColumnName, chain: false));

    /// <summary>One decoded envelope per factory, keyed by the identity of the text backing it (string or char[]),
    /// so that the per-row cost is O(1) whatever the model size.</summary>
    internal sealed class EnvelopeCache
    {
        private readonly TextIdentityCache<(DensityModel, TransformerSettings)> _inner = new(text =>
        {
            try { return ModelEnvelope.Decode(text); }
            catch (InvalidModelFileException e) { throw AtFirstRow(e); }
        });

        /// <summary>The chunks of a "v2" chain, decoded once per set of backing texts.</summary>
        private readonly ChunksIdentityCache<(DensityModel, TransformerSettings)> _chunks = new(chunks =>
        {
            try { return ModelEnvelope.Decode(chunks); }
            catch (InvalidModelFileException e) { throw AtFirstRow(e); }
        });

        /// <summary>A damaged envelope found when the first row is read (ML.NET runs nothing of ours with it at load),
        /// reported with what the user can do about it.</summary>
        private static InvalidModelFileException AtFirstRow(InvalidModelFileException e)
            => new(e.Message + " (found at the first row read: a model loaded with mlContext.Model.Load is " +
                "decoded when rows are read; mlContext.Model.LoadWithLiveDensityModels validates it at load)", e);

        /// <summary>Decodes so far (diagnostics: must stay tiny, not one per row).</summary>
        public static int TotalDecodes => TextIdentityCache<(DensityModel, TransformerSettings)>.TotalDecodes
                                          + ChunksIdentityCache<(DensityModel, TransformerSettings)>.TotalDecodes;

        public (DensityModel, TransformerSettings) Resolve(ReadOnlyMemory<char> text) => _inner.Resolve(text);

        public (DensityModel, TransformerSettings) Resolve(ReadOnlyMemory<char>[] chunks) => _chunks.Resolve(chunks);
    }

    /// <summary><see cref="TextIdentityCache{T}"/> for several texts (a "v2" chain's chunks, which ML.NET hands a
    /// CustomMapping by reference on every row): reused while every chunk has the same backing text and range.</summary>
    internal sealed class ChunksIdentityCache<T>(Func<IReadOnlyList<ReadOnlyMemory<char>>, T> decode)
    {
        private sealed record Entry(ReadOnlyMemory<char>[] Chunks, T Value);
        private volatile Entry? _entry;

        /// <summary>Decodes so far of this value type (diagnostics).</summary>
        public static int TotalDecodes;

        public T Resolve(ReadOnlyMemory<char>[] chunks)
        {
            var e = _entry;
            if (e is not null && SameTexts(e.Chunks, chunks)) return e.Value;
            // The array is ML.NET's, refilled on every row: keep a copy of the (by-reference) chunks.
            var kept = (ReadOnlyMemory<char>[])chunks.Clone();
            var value = decode(kept);
            Interlocked.Increment(ref TotalDecodes);
            _entry = new Entry(kept, value);
            return value;
        }

        private static bool SameTexts(ReadOnlyMemory<char>[] a, ReadOnlyMemory<char>[] b)
        {
            if (a.Length != b.Length) return false;
            for (int i = 0; i < a.Length; i++)
            {
                var (x, y) = (a[i], b[i]);
                if (x.Length != y.Length) return false;
                if (MemoryMarshal.TryGetString(x, out var xs, out int xStart, out _) && MemoryMarshal.TryGetString(y, out var ys, out int yStart, out _))
                {
                    if (!ReferenceEquals(xs, ys) || xStart != yStart) return false;
                }
                else if (MemoryMarshal.TryGetArray(x, out ArraySegment<char> xa) && MemoryMarshal.TryGetArray(y, out ArraySegment<char> ya))
                {
                    if (!ReferenceEquals(xa.Array, ya.Array) || xa.Offset != ya.Offset) return false;
                }
                else return false;
            }
            return true;
        }
    }

    /// <summary>The last value decoded from a text, reused while the same backing string or char[] (and range) comes back:
    /// ML.NET hands a CustomMapping the same MapValue text on every row.</summary>
    internal sealed class TextIdentityCache<T>(TextIdentityCache<T>.Decoder decode)
    {
        public delegate T Decoder(ReadOnlySpan<char> text);
        private sealed record Entry(object Owner, int Start, int Length, T Value);
        private volatile Entry? _entry;

        /// <summary>Decodes so far of this value type (diagnostics).</summary>
        public static int TotalDecodes;

        public T Resolve(ReadOnlyMemory<char> text)
        {
            object? owner = null; int start = 0, length = text.Length;
            if (MemoryMarshal.TryGetString(text, out var str, out int ss, out int sl)) { owner = str; start = ss; length = sl; }
            else if (MemoryMarshal.TryGetArray(text, out ArraySegment<char> seg)) { owner = seg.Array; start = seg.Offset; length = seg.Count; }
            var e = _entry;
            if (e is not null && owner is not null && ReferenceEquals(e.Owner, owner) && e.Start == start && e.Length == length)
                return e.Value;
            var value = decode(text.Span);
            Interlocked.Increment(ref TotalDecodes);
            _entry = new Entry(owner ?? new object(), start, length, value);
            return value;
        }
    }
}
