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
///   CustomMapping "DeepDensity.ConstKey.v1"  -> __dd_key;   MapValue __dd_key -> __dd_rr_model (table {"m": envelope})
///   CustomMapping "DeepDensity.Sequence.v1"  -> __dd_rr_logdensity, __dd_rr_perframe, __dd_rr_frames, __dd_rr_score, __dd_rr_predicted
///   CopyColumns   user output names &lt;- __dd_rr_*;  DropColumns __dd_*
/// </code>
/// The live transformer is this same chain, so live and loaded scores are the same code. A zip loads in a process
/// where the model's kind is registered (built-in kinds always are).
/// </summary>
internal static class SequenceSurrogate
{
    private static ReadOnlySpan<byte> Magic => "DDSQ"u8;
    private const ushort Version = 1;

    /// <summary>base64 of "DDSQ" | u16 version | f32 threshold | engine model file.</summary>
    public static string Encode(SequenceDensityModel model, float threshold)
    {
        using var ms = new MemoryStream();
        ms.Write(Magic);
        ms.Write(BitConverter.GetBytes(Version));
        ms.Write(BitConverter.GetBytes(threshold));
        ms.Write(model.ToBytes());
        return Convert.ToBase64String(ms.GetBuffer(), 0, (int)ms.Length);
    }

    public static (SequenceDensityModel Model, float Threshold) Decode(ReadOnlySpan<char> text)
    {
        var bytes = new byte[text.Length * 3 / 4 + 3];
        if (!Convert.TryFromBase64Chars(text, bytes, out int length) || length < 10 || !bytes.AsSpan(0, 4).SequenceEqual(Magic))
            throw new InvalidModelFileException("Corrupt sequence model in the ML.NET model.");
        ushort version = BitConverter.ToUInt16(bytes, 4);
        if (version != Version)
            throw new InvalidModelFileException($"Sequence-model ML.NET envelope version {version} is not supported (this library reads {Version}).");
        float threshold = BitConverter.ToSingle(bytes, 6);
        if (!float.IsFinite(threshold)) // scores are finite, so a learned threshold is too; NaN would label nothing
            throw new InvalidModelFileException($"Corrupt sequence model in the ML.NET model: the threshold is {threshold}.");
        return (SequenceDensityModel.FromBytes(bytes.AsSpan(10, length - 10)), threshold);
    }

    /// <summary>The whole chain, fitted (every stage is trivial: fitted on an empty view with a variable-size feature column).</summary>
    public static ITransformer BuildChain(MLContext ml, SequenceDensityEstimator.Options o, SequenceDensityModel model, float threshold)
        => BuildChain(ml, o, Encode(model, threshold));

    /// <summary>The chain over an already encoded envelope (tests put damaged envelopes in zips through it).</summary>
    internal static ITransformer BuildChain(MLContext ml, SequenceDensityEstimator.Options o, string envelope)
    {
        var chain = new EstimatorChain<ITransformer>().Append<ITransformer>(ml.Transforms.CopyColumns(RnnRnadeSurrogate.FeatureCol, o.FeatureColumnName))
            .Append<ITransformer>(ml.Transforms.CustomMapping(new Surrogate.ConstKeyFactory().GetMapping(), Surrogate.ConstKeyFactory.ContractName))
            .Append<ITransformer>(ml.Transforms.Conversion.MapValue(RnnRnadeSurrogate.ModelCol,
                new[] { new KeyValuePair<string, string>(Surrogate.KeyValue, envelope) }, Surrogate.KeyCol))
            .Append<ITransformer>(ml.Transforms.CustomMapping(new SequenceFactory().GetMapping(), SequenceFactory.ContractName));
        chain = RnnRnadeSurrogate.Finish(ml, chain, new[]
        {
            (o.LogDensityColumnName, RnnRnadeSurrogate.LogDensityCol), (o.LogDensityPerFrameColumnName, RnnRnadeSurrogate.PerFrameCol),
            (o.FrameLogDensitiesColumnName, RnnRnadeSurrogate.FramesCol), (o.ScoreColumnName, RnnRnadeSurrogate.ScoreCol),
            (o.PredictedLabelColumnName, RnnRnadeSurrogate.PredictedCol),
        }, new[] { RnnRnadeSurrogate.FeatureCol, RnnRnadeSurrogate.LogDensityCol, RnnRnadeSurrogate.PerFrameCol, RnnRnadeSurrogate.FramesCol,
                   RnnRnadeSurrogate.ScoreCol, RnnRnadeSurrogate.PredictedCol });
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
        private readonly Surrogate.TextIdentityCache<(SequenceDensityModel, float)> _cache = new(t => Decode(t));
        public override Action<RnnRnadeSurrogate.SequenceInput, RnnRnadeSurrogate.SequenceOutput> GetMapping() => Map;

        private void Map(RnnRnadeSurrogate.SequenceInput src, RnnRnadeSurrogate.SequenceOutput dst)
        {
            var (model, threshold) = _cache.Resolve(src.Model);
            RnnRnadeSurrogate.ScoreSequence(model, threshold, src.Features, dst);
        }
    }
}
