using System.ComponentModel;
using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.Transforms;

namespace Microsoft.ML.DeepDensity.Transforms;

/// <summary>
/// How a <see cref="SequenceDensityTransformer"/> lives in an ML.NET pipeline and its model zip: a chain of built-in,
/// loadable transformers carrying the engine model (any registered sequence kind) as data, like <see cref="Surrogate"/>:
/// <code>
///   CopyColumns   __dd_rr_features &lt;- Features
///   CustomMapping "DeepDensity.ConstKey.v1"  -> __dd_key
///   MapValue __dd_key -> __dd_rr_model_k     (one per chunk: table {"m": chunk k}, <see cref="ModelTextChunks"/>)
///   Concatenate   __dd_rr_model &lt;- __dd_rr_model_0, ...
///   CustomMapping "DeepDensity.Sequence.v2"  -> __dd_rr_logdensity, __dd_rr_perframe, __dd_rr_frames, __dd_rr_score, __dd_rr_predicted
///   CopyColumns   user output names &lt;- __dd_rr_*;  DropColumns __dd_*
/// </code>
/// Zips written before the chunks ("v1") have one MapValue __dd_key -> __dd_rr_model (table {"m": envelope in base64})
/// and "DeepDensity.Sequence.v1"; they still load and score.
/// The live transformer is this same chain, so live and loaded scores are the same code. A zip loads in a process
/// where the model's kind is registered (built-in kinds always are).
/// </summary>
internal static class SequenceSurrogate
{
    private static ReadOnlySpan<byte> Magic => "DDSQ"u8;
    /// <summary>2 adds the user's input column names (version 1, without them, still loads); 3 the CRC of the threshold and
    /// the names, which a damaged byte changed without a word (the engine file has its own CRC); 4 the thresholds of a
    /// sequence's first frames (frame rows; none in earlier versions, which label every frame by the one threshold).</summary>
    private const ushort Version = 4;

    /// <summary>The most first-frame thresholds an envelope holds (a reader's bound).</summary>
    internal const int MaxStartThresholds = 1024;
    private const int MaxColumns = 8;

    /// <summary>The longest input column name a saved model holds, in UTF-8 bytes: what its u16 length field can say. The
    /// estimators refuse longer names when created; the reader used to stop at 1024 bytes, so a model fitted on a longer
    /// (generated) name saved and then failed to load as "corrupt".</summary>
    internal const int MaxColumnNameBytes = ushort.MaxValue;

    /// <summary>A decoded envelope: the model, its PredictedLabel threshold, the user's input column names (the
    /// scorer sees only internal columns; its errors name these; empty for a version-1 envelope) and the thresholds of
    /// frames 0, 1, … of a sequence where they differ from <see cref="Threshold"/> (frame rows; empty before version 4).</summary>
    internal sealed record Envelope(SequenceDensityModel Model, float Threshold, string[] Columns, float[] StartThresholds)
    {
        /// <summary>PredictedLabel's threshold for the frame at <paramref name="position"/> of its sequence.</summary>
        public float ThresholdAt(int position) => position < StartThresholds.Length ? StartThresholds[position] : Threshold;

        /// <summary>The name of input column <paramref name="index"/>, or <paramref name="fallback"/> when the file has none.</summary>
        public string Column(int index, string fallback) => index < Columns.Length ? Columns[index] : fallback;
    }

    /// <summary>The envelope in base64: the "v1" chain's single value (tests build v1 zips with it).</summary>
    public static string Encode(SequenceDensityModel model, float threshold, IReadOnlyList<string> columns)
        => Convert.ToBase64String(EncodeBytes(model, threshold, columns));

    /// <summary>"DDSQ" | u16 version | f32 threshold | u8 column count | per column: u16 length, UTF-8 name |
    /// u16 count of first-frame thresholds | f32 each | u32 CRC-32 of the preceding bytes | engine model file.</summary>
    public static byte[] EncodeBytes(SequenceDensityModel model, float threshold, IReadOnlyList<string> columns, float[]? startThresholds = null)
    {
        startThresholds ??= [];
        if (startThresholds.Length > MaxStartThresholds) throw new ArgumentOutOfRangeException(nameof(startThresholds));
        var engine = model.ToBytes();
        using var ms = new MemoryStream(engine.Length + 1024);
        ms.Write(Magic);
        ms.Write(BitConverter.GetBytes(Version));
        ms.Write(BitConverter.GetBytes(threshold));
        ms.WriteByte((byte)columns.Count);
        foreach (var name in columns)
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes(name);
            ms.Write(BitConverter.GetBytes((ushort)bytes.Length));
            ms.Write(bytes);
        }
        ms.Write(BitConverter.GetBytes((ushort)startThresholds.Length));
        foreach (float t in startThresholds) ms.Write(BitConverter.GetBytes(t));
        ms.Write(BitConverter.GetBytes(Crc32.Append(0, ms.GetBuffer().AsSpan(0, (int)ms.Length))));
        ms.Write(engine);
        return ms.ToArray();
    }

    /// <summary>The envelope of a "v1" chain: base64 text.</summary>
    public static Envelope Decode(ReadOnlySpan<char> text)
    {
        var bytes = new byte[text.Length * 3 / 4 + 3];
        if (!Convert.TryFromBase64Chars(text, bytes, out int length))
            throw new InvalidModelFileException("Corrupt sequence model in the ML.NET model.");
        return Decode(bytes, length);
    }

    /// <summary>The envelope held in the first <paramref name="length"/> bytes of <paramref name="bytes"/>.</summary>
    public static Envelope Decode(byte[] bytes, int length)
    {
        if (length < 10 || !bytes.AsSpan(0, 4).SequenceEqual(Magic))
            throw new InvalidModelFileException("Corrupt sequence model in the ML.NET model.");
        ushort version = BitConverter.ToUInt16(bytes, 4);
        if (version is < 1 or > Version)
            throw new InvalidModelFileException(FormattableString.Invariant($"Sequence-model ML.NET envelope version {version} is not supported (this library reads 1 to {Version})."));
        float threshold = BitConverter.ToSingle(bytes, 6);
        int at = 10;
        var columns = Array.Empty<string>();
        if (version >= 2)
        {
            if (at >= length || bytes[at] > MaxColumns) throw new InvalidModelFileException("Corrupt sequence model in the ML.NET model: bad column names.");
            columns = new string[bytes[at++]];
            for (int i = 0; i < columns.Length; i++)
            {
                int n = at + 2 <= length ? BitConverter.ToUInt16(bytes, at) : -1;
                if (n < 1 || n > MaxColumnNameBytes || at + 2 + n > length)
                    throw new InvalidModelFileException("Corrupt sequence model in the ML.NET model: bad column names.");
                try { columns[i] = new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes, at + 2, n); }
                catch (System.Text.DecoderFallbackException) { throw new InvalidModelFileException("Corrupt sequence model in the ML.NET model: bad column names."); }
                at += 2 + n;
            }
        }
        var start = Array.Empty<float>();
        if (version >= 4)
        {
            int n = at + 2 <= length ? BitConverter.ToUInt16(bytes, at) : -1;
            if (n < 0 || n > MaxStartThresholds || at + 2 + 4L * n > length)
                throw new InvalidModelFileException("Corrupt sequence model in the ML.NET model: bad first-frame thresholds.");
            start = new float[n];
            for (int i = 0; i < n; i++) start[i] = BitConverter.ToSingle(bytes, at + 2 + 4 * i);
            at += 2 + 4 * n;
        }
        // Before the thresholds are checked: a damaged byte is reported as damage, not as a strange threshold.
        if (version >= 3)
        {
            if (at + 4 > length || BitConverter.ToUInt32(bytes, at) != Crc32.Append(0, bytes.AsSpan(0, at)))
                throw new InvalidModelFileException("Corrupt sequence model in the ML.NET model: checksum mismatch of the threshold and column names; " +
                    "the file was modified or damaged.");
            at += 4;
        }
        if (!float.IsFinite(threshold)) // scores are finite, so a learned threshold is too; NaN would label nothing
            throw new InvalidModelFileException(FormattableString.Invariant($"Corrupt sequence model in the ML.NET model: the threshold is {threshold}."));
        foreach (float t in start)
            if (!float.IsFinite(t)) throw new InvalidModelFileException(FormattableString.Invariant($"Corrupt sequence model in the ML.NET model: a first-frame threshold is {t}."));
        return new Envelope(SequenceDensityModel.FromBytes(bytes.AsSpan(at, length - at)), threshold, columns, start);
    }

    /// <summary>The whole chain, fitted (every stage is trivial: fitted on an empty view with a variable-size feature column).</summary>
    public static ITransformer BuildChain(MLContext ml, SequenceDensityEstimator.Options o, SequenceDensityModel model, float threshold)
        => BuildChain(ml, o, ModelTextChunks.Encode(EncodeBytes(model, threshold, new[] { o.FeatureColumnName })));

    /// <summary>The "v1" chain over an already encoded envelope, base64 (tests put damaged envelopes in zips through it).</summary>
    internal static ITransformer BuildChain(MLContext ml, SequenceDensityEstimator.Options o, string envelope)
        => BuildChain(ml, o, new[] { envelope }, chunked: false);

    /// <summary>The chain over already encoded chunks (<see cref="ModelTextChunks"/>; tests pass damaged ones).</summary>
    internal static ITransformer BuildChain(MLContext ml, SequenceDensityEstimator.Options o, string[] chunks)
        => BuildChain(ml, o, chunks, chunked: true);

    private static ITransformer BuildChain(MLContext ml, SequenceDensityEstimator.Options o, IReadOnlyList<string> model, bool chunked)
    {
        var chain = RnnRnadeSurrogate.AppendModel(ml,
            new EstimatorChain<ITransformer>().Append<ITransformer>(ml.Transforms.CopyColumns(RnnRnadeSurrogate.FeatureCol, o.FeatureColumnName)),
            model, chunked, out var modelColumns);
        chain = chain.Append<ITransformer>(chunked
            ? ml.Transforms.CustomMapping(new SequenceFactoryV2().GetMapping(), SequenceFactoryV2.ContractName)
            : ml.Transforms.CustomMapping(new SequenceFactory().GetMapping(), SequenceFactory.ContractName));
        chain = RnnRnadeSurrogate.Finish(ml, chain, new[]
        {
            (o.LogDensityColumnName, RnnRnadeSurrogate.LogDensityCol), (o.LogDensityPerFrameColumnName, RnnRnadeSurrogate.PerFrameCol),
            (o.FrameLogDensitiesColumnName, RnnRnadeSurrogate.FramesCol), (o.ScoreColumnName, RnnRnadeSurrogate.ScoreCol),
            (o.PredictedLabelColumnName, RnnRnadeSurrogate.PredictedCol),
        }, new[] { RnnRnadeSurrogate.FeatureCol, RnnRnadeSurrogate.LogDensityCol, RnnRnadeSurrogate.PerFrameCol, RnnRnadeSurrogate.FramesCol,
                   RnnRnadeSurrogate.ScoreCol, RnnRnadeSurrogate.PredictedCol }.Concat(modelColumns));
        var def = SchemaDefinition.Create(typeof(RnnRnadeColumns.SequenceRow));
        def[0].ColumnName = o.FeatureColumnName;
        return chain.Fit(ml.Data.LoadFromEnumerable(new List<RnnRnadeColumns.SequenceRow>(), def));
    }

    /// <summary>Scores one whole sequence per row with any sequence model; the score is −(log-density per frame).</summary>
    [CustomMappingFactoryAttribute(ContractName)]
    [EditorBrowsable(EditorBrowsableState.Never)]
    public sealed class SequenceFactory : CustomMappingFactory<RnnRnadeSurrogate.SequenceInput, RnnRnadeSurrogate.SequenceOutput>
    {
        public const string ContractName = "DeepDensity.Sequence.v1";
        private readonly Surrogate.TextIdentityCache<Envelope> _cache = new(t => Decode(t));
        public override Action<RnnRnadeSurrogate.SequenceInput, RnnRnadeSurrogate.SequenceOutput> GetMapping() => Map;

        private void Map(RnnRnadeSurrogate.SequenceInput src, RnnRnadeSurrogate.SequenceOutput dst)
        {
            var e = _cache.Resolve(src.Model);
            RnnRnadeSurrogate.ScoreSequence(e.Model, e.Threshold, src.Features, dst, e.Column(0, "sequence column"));
        }
    }

    /// <summary>The envelope the chunks carry (<see cref="ModelTextChunks"/>), each checked.</summary>
    internal static Envelope Decode(IReadOnlyList<ReadOnlyMemory<char>> chunks)
    {
        var bytes = ModelTextChunks.Decode(chunks);
        return Decode(bytes, bytes.Length);
    }

    /// <summary><see cref="SequenceFactory"/> over the model's chunks (the "v2" chain).</summary>
    [CustomMappingFactoryAttribute(ContractName)]
    [EditorBrowsable(EditorBrowsableState.Never)]
    public sealed class SequenceFactoryV2 : CustomMappingFactory<RnnRnadeSurrogate.SequenceInputV2, RnnRnadeSurrogate.SequenceOutput>
    {
        public const string ContractName = "DeepDensity.Sequence.v2";
        private readonly Surrogate.ChunksIdentityCache<Envelope> _cache = new(Decode);
        public override Action<RnnRnadeSurrogate.SequenceInputV2, RnnRnadeSurrogate.SequenceOutput> GetMapping() => Map;

        private void Map(RnnRnadeSurrogate.SequenceInputV2 src, RnnRnadeSurrogate.SequenceOutput dst)
        {
            var e = _cache.Resolve(src.Model);
            RnnRnadeSurrogate.ScoreSequence(e.Model, e.Threshold, src.Features, dst, e.Column(0, "sequence column"));
        }
    }
}
