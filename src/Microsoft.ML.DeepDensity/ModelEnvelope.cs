using System.Text;
using Microsoft.ML.DeepDensity.Persistence;

namespace Microsoft.ML.DeepDensity.Transforms;

/// <summary>
/// The model as the surrogate stores it in the model zip:
/// <code>"DDMN" | u16 envelope version | transformer settings | u32 CRC-32 of the preceding bytes | i32 length | engine model file (DensityModel.ToBytes)</code>;
/// base64 in one MapValue text value in the "v1" surrogate, split into 15-bit text chunks (<see cref="ModelTextChunks"/>)
/// since "v2".
/// The engine file says its own kind, so one scorer serves every model family; it carries its own CRC. Version 1 had no
/// CRC of the settings (still read).
/// </summary>
internal static class ModelEnvelope
{
    /// <summary>2 adds the CRC of the settings: ML.NET stores the MapValue table's text as it is, so a damaged byte of a
    /// version-1 zip became another finite threshold (every row flagged), another seed or a renamed output column,
    /// loaded without a word.</summary>
    public const ushort Version = 2;
    private static ReadOnlySpan<byte> Magic => "DDMN"u8;

    /// <summary>The envelope as base64 text: the "v1" surrogate's single value (tests build v1 zips with it).</summary>
    public static string Encode(DensityModel model, TransformerSettings s)
    {
        var bytes = EncodeBytes(model, s);
        return Convert.ToBase64String(bytes);
    }

    /// <summary>The envelope's bytes.</summary>
    public static byte[] EncodeBytes(DensityModel model, TransformerSettings s)
    {
        var engine = model.ToBytes();
        using var ms = new MemoryStream(engine.Length + 1024);
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic);
            w.Write(Version);
            w.Write(s.FeatureColumnName);
            w.Write(s.LogDensityColumnName);
            w.Write(s.ScoreColumnName);
            w.Write(s.PredictedLabelColumnName);
            w.Write(s.StandardErrorColumnName ?? "");
            w.Write(s.SampleColumnName ?? "");
            w.Write(s.SampleSeed);
            w.Write(s.Contamination);
            w.Write(s.Threshold);
            w.Write(s.ScoringBlockRows);
            w.Flush();
            w.Write(Crc32.Append(0, ms.GetBuffer().AsSpan(0, (int)ms.Length)));
            w.Write(engine.Length);
            w.Write(engine);
        }
        return ms.ToArray();
    }

    /// <summary>The envelope of a "v1" surrogate: base64 text.</summary>
    public static (DensityModel Model, TransformerSettings Settings) Decode(ReadOnlySpan<char> text)
    {
        byte[] bytes = new byte[text.Length * 3 / 4 + 3];
        if (!Convert.TryFromBase64Chars(text, bytes, out int length))
            throw new InvalidModelFileException("Corrupt DeepDensity model in the ML.NET model: the stored text is not base64.");
        return Decode(bytes, length);
    }

    /// <summary>The envelope of a "v2" surrogate: its text chunks (<see cref="ModelTextChunks"/>).</summary>
    public static (DensityModel Model, TransformerSettings Settings) Decode(IReadOnlyList<ReadOnlyMemory<char>> chunks)
    {
        var bytes = ModelTextChunks.Decode(chunks);
        return Decode(bytes, bytes.Length);
    }

    /// <summary>The envelope held in the first <paramref name="length"/> bytes of <paramref name="bytes"/>.</summary>
    public static (DensityModel Model, TransformerSettings Settings) Decode(byte[] bytes, int length)
    {
        try
        {
            using var r = new BinaryReader(new MemoryStream(bytes, 0, length, writable: false), Encoding.UTF8);
            if (!r.ReadBytes(4).AsSpan().SequenceEqual(Magic))
                throw new InvalidModelFileException("Corrupt DeepDensity model in the ML.NET model: bad magic.");
            ushort version = r.ReadUInt16();
            if (version is < 1 or > Version)
                throw new InvalidModelFileException(FormattableString.Invariant($"DeepDensity ML.NET envelope version {version} is not supported (this library reads 1 to {Version}); upgrade the library."));
            string feature = r.ReadString(), logDensity = r.ReadString(), score = r.ReadString(), predicted = r.ReadString();
            string stdErr = r.ReadString(), sample = r.ReadString();
            ulong sampleSeed = r.ReadUInt64();
            double contamination = r.ReadDouble();
            float threshold = r.ReadSingle();
            int blockRows = r.ReadInt32();
            // Before the settings are trusted or checked: a damaged byte is reported as damage, not as a strange setting.
            int settingsEnd = (int)r.BaseStream.Position;
            if (version >= 2 && r.ReadUInt32() != Crc32.Append(0, bytes.AsSpan(0, settingsEnd)))
                throw new InvalidModelFileException("Corrupt DeepDensity model in the ML.NET model: checksum mismatch of the transformer settings " +
                    "(column names, threshold, contamination, sample seed, block size); the file was modified or damaged.");
            // The settings are checked like the options they came from: a forged zip must not make a cursor allocate
            // int.MaxValue rows or compare scores with a NaN threshold.
            if (blockRows < 1 || blockRows > DensityEstimatorOptions.MaxScoringBlockRows)
                throw new InvalidModelFileException(FormattableString.Invariant($"Corrupt DeepDensity model in the ML.NET model: ScoringBlockRows {blockRows} is outside [1, {DensityEstimatorOptions.MaxScoringBlockRows}]."));
            if (!(contamination >= 0 && contamination <= 0.5))
                throw new InvalidModelFileException(FormattableString.Invariant($"Corrupt DeepDensity model in the ML.NET model: Contamination {contamination} is outside [0, 0.5]."));
            if (!float.IsFinite(threshold)) // scores are finite, so a learned threshold is too
                throw new InvalidModelFileException(FormattableString.Invariant($"Corrupt DeepDensity model in the ML.NET model: the threshold is {threshold}."));
            int engineLength = r.ReadInt32();
            if (engineLength < 0 || engineLength > length) throw new InvalidModelFileException("Corrupt DeepDensity model in the ML.NET model: bad engine length.");
            int engineStart = (int)r.BaseStream.Position;
            if (engineLength > length - engineStart) throw new InvalidModelFileException("Truncated DeepDensity model in the ML.NET model.");
            if (engineStart + engineLength != length) throw new InvalidModelFileException("Corrupt DeepDensity model in the ML.NET model: trailing bytes after the engine model.");
            var engine = bytes.AsSpan(engineStart, engineLength);
            var settings = new TransformerSettings(feature, logDensity, score, predicted,
                stdErr.Length == 0 ? null : stdErr, sample.Length == 0 ? null : sample,
                sampleSeed, contamination, threshold, blockRows);
            CheckNames(settings);
            var model = DensityModel.FromBytes(engine);
            return (model, settings);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidModelFileException("Truncated DeepDensity model in the ML.NET model.", e);
        }
        catch (Exception e) when (e is FormatException or ArgumentException or OverflowException)
        {
            throw new InvalidModelFileException("Corrupt DeepDensity model in the ML.NET model: " + e.Message, e);
        }
    }

    /// <summary>The column names obey what the estimator's options allow (non-empty, distinct outputs).</summary>
    private static void CheckNames(TransformerSettings s)
    {
        var outputs = new List<string?> { s.LogDensityColumnName, s.ScoreColumnName, s.PredictedLabelColumnName };
        if (s.StandardErrorColumnName is not null) outputs.Add(s.StandardErrorColumnName);
        if (s.SampleColumnName is not null) outputs.Add(s.SampleColumnName);
        if (outputs.Append(s.FeatureColumnName).Any(string.IsNullOrWhiteSpace))
            throw new InvalidModelFileException("Corrupt DeepDensity model in the ML.NET model: an empty column name.");
        if (outputs.Distinct(StringComparer.Ordinal).Count() != outputs.Count)
            throw new InvalidModelFileException("Corrupt DeepDensity model in the ML.NET model: the output column names are not distinct.");
    }
}
