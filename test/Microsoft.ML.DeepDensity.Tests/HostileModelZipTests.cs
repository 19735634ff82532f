using System.Buffers.Binary;
using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// Issue 13 in ML.NET zip form: the engine file travels base64 inside the zip's MapValue table, so every damaged engine
/// file the engine rejects must be rejected the same way when it arrives in a zip — by GetDensityTransformer and by
/// scoring through the loaded chain — and a Fit that cannot produce a loadable model says so.
/// </summary>
public class HostileModelZipTests
{
    private static readonly MLContext Ml = new(seed: 1);
    private static readonly IDataView Train = Ml.Data.LoadFromEnumerable(TestData.Blob(200, seed: 2));

    private static DensityTransformer Rbm() => Ml.DensityEstimation.Rbm(new RbmEstimator.Options
    {
        ModelOptions = new RbmOptions { HiddenUnits = 4, VisibleType = RbmVisibleType.Gaussian, MaxEpochs = 2, SamplingBurnIn = 20, SamplingChains = 4, Seed = 3 },
    }).Fit(Train);

    private static DensityTransformer DeepGmm() => Ml.DensityEstimation.DeepGmm(new DeepGmmEstimator.Options
    {
        ModelOptions = new DeepGmmOptions { Layers = new[] { 2, 2 }, MaxIterations = 2, Seed = 3 },
    }).Fit(Train);

    /// <summary>Saves a zip whose envelope carries <paramref name="engine"/> instead of the transformer's own file, loads it,
    /// and checks both readers reject it with <see cref="InvalidModelFileException"/>.</summary>
    private static void RejectedInAZip(DensityTransformer t, byte[] engine, string word)
    {
        var envelope = Convert.FromBase64String(ModelEnvelope.Encode(t.Model, t.Settings));
        int engineLength = t.Model.ToBytes().Length;
        var forged = new byte[envelope.Length - engineLength + engine.Length];
        envelope.AsSpan(0, envelope.Length - engineLength).CopyTo(forged);
        BinaryPrimitives.WriteInt32LittleEndian(forged.AsSpan(envelope.Length - engineLength - 4), engine.Length);
        engine.CopyTo(forged, envelope.Length - engineLength);

        var zip = new MemoryStream();
        Ml.Model.Save(Surrogate.Build(Ml, t.Settings, t.Model.Dimension, Convert.ToBase64String(forged)), Train.Schema, zip);
        zip.Position = 0;
        var loaded = new MLContext().Model.Load(zip, out _);
        Assert.Contains(word, Assert.Throws<InvalidModelFileException>(() => loaded.GetDensityTransformer()).Message);
        var e = Record.Exception(() => loaded.Transform(Train).GetColumn<float>("Score").ToArray());
        Assert.True(e is InvalidModelFileException || e?.InnerException is InvalidModelFileException, $"scoring through the loaded zip: {e}");
    }

    /// <summary>Rewrites payload bytes and the CRC of an engine file ("DDML" | u16 | u8 kind length | kind | u16 | u64 length | payload | CRC).</summary>
    private static byte[] WithPayload(byte[] file, Action<Span<byte>> change)
    {
        var copy = (byte[])file.Clone();
        int payloadOffset = 7 + copy[6] + 2 + 8;
        change(copy.AsSpan(payloadOffset, copy.Length - payloadOffset - 4));
        BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(copy.Length - 4), Crc32(copy.AsSpan(0, copy.Length - 4)));
        return copy;
    }

    internal static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        return ~c;
    }

    [Fact]
    public void TheUnmodifiedEnvelopeRoundTripsThroughTheHelper()
    {
        var t = Rbm();
        var zip = new MemoryStream();
        Ml.Model.Save(Surrogate.Build(Ml, t.Settings, t.Model.Dimension, ModelEnvelope.Encode(t.Model, t.Settings)), Train.Schema, zip);
        zip.Position = 0;
        Assert.Equal(t.Model.ToBytes(), new MLContext().Model.Load(zip, out _).GetDensityModel().ToBytes());
    }

    /// <summary>(2) an RBM asking for int.MaxValue burn-in sweeps.</summary>
    [Fact]
    public void AnRbmWithUnboundedSamplingSettingsIsRejected()
    {
        var t = Rbm();
        var file = WithPayload(t.Model.ToBytes(), p => BinaryPrimitives.WriteInt32LittleEndian(p[^12..], int.MaxValue));
        RejectedInAZip(t, file, "burn-in");
    }

    /// <summary>(4) a header declaring a payload above DeepDensityEnvironment.MaxModelFileBytes.</summary>
    [Fact]
    public void AnEngineFileDeclaringAHugePayloadIsRejected()
    {
        var t = Rbm();
        var file = t.Model.ToBytes();
        BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(7 + file[6] + 2), int.MaxValue);
        RejectedInAZip(t, file, "MaxModelFileBytes");
    }

    /// <summary>(5) an RBM whose log-Z standard error overflows float32, and a Deep GMM whose probabilities sum to 4.</summary>
    [Fact]
    public void ModelsBreakingTheirInvariantsAreRejected()
    {
        var rbm = Rbm();
        // Payload tail: log Z, its SE, lower, upper (doubles), then 5 Int32s.
        var bytes = WithPayload(rbm.Model.ToBytes(), p =>
        {
            var tail = p[^(20 + 32)..];
            BinaryPrimitives.WriteDoubleLittleEndian(tail[8..], 1e300);
        });
        RejectedInAZip(rbm, bytes, "standard error");

        var gmm = DeepGmm();
        int paths = ((DeepGmmModel)gmm.Model).PathCount;
        var unnormalised = WithPayload(gmm.Model.ToBytes(), p =>
        {
            var prior = p[^(4 * paths)..];
            for (int i = 0; i < paths; i++)
                BinaryPrimitives.WriteSingleLittleEndian(prior[(4 * i)..], MathF.Log(4f / paths)); // each ≤ 0, together 4
        });
        RejectedInAZip(gmm, unnormalised, "sum to");
    }

    /// <summary>(1) a Deep GMM fitted through ML.NET on data scaled by 1e-39 fails clearly instead of returning (and
    /// saving) a model that cannot load.</summary>
    [Fact]
    public void ADeepGmmOnDataScaledBy1e39FailsClearlyOrRoundTrips()
    {
        var rows = TestData.Blob(200, seed: 2);
        foreach (var r in rows) for (int c = 0; c < r.Features.Length; c++) r.Features[c] *= 1e-39f;
        var estimator = Ml.DensityEstimation.DeepGmm(new DeepGmmEstimator.Options { ModelOptions = new DeepGmmOptions { Layers = new[] { 2, 2 }, MaxIterations = 3, Seed = 3 } });
        DensityTransformer t;
        try { t = estimator.Fit(Ml.Data.LoadFromEnumerable(rows)); }
        catch (Exception e) when (e is Training.TrainingDivergedException or Data.DataValidationException)
        {
            Assert.Contains("rescale", e.Message);   // since session 29 the standardiser refuses the column, naming it
            if (e is Data.DataValidationException v) Assert.Contains("'Features', column 0", v.Message);
            return;
        }
        var zip = new MemoryStream();
        Ml.Model.Save(t, Train.Schema, zip);
        zip.Position = 0;
        Assert.Equal(t.Model.ToBytes(), new MLContext().Model.Load(zip, out _).GetDensityModel().ToBytes());
    }
}

/// <summary>
/// Issue 13 in zip form for NVIL and RNN-RNADE (the sequence envelope): damaged engine files and envelope settings in a
/// saved zip are rejected with <see cref="InvalidModelFileException"/> when the loaded chain scores.
/// </summary>
public class HostileSequenceAndNvilZipTests
{
    public sealed class SequenceRow { public float[] Features = Array.Empty<float>(); }

    private static byte[] HugePayload(byte[] engine)
    {
        var copy = (byte[])engine.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(copy.AsSpan(7 + copy[6] + 2), int.MaxValue);
        return copy;
    }

    private static byte[] Payload(byte[] engine) => engine[(7 + engine[6] + 2 + 8)..^4];

    /// <summary>The engine file with another payload, its length and a valid CRC.</summary>
    private static byte[] Rewrapped(byte[] engine, byte[] payload)
    {
        int payloadOffset = 7 + engine[6] + 2 + 8;
        var file = new byte[payloadOffset + payload.Length + 4];
        engine.AsSpan(0, payloadOffset).CopyTo(file);
        BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(payloadOffset - 8), (ulong)payload.Length);
        payload.CopyTo(file, payloadOffset);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(file.Length - 4), HostileModelZipTests.Crc32(file.AsSpan(0, file.Length - 4)));
        return file;
    }

    private static byte[] TruncatedPayload(byte[] engine) { var p = Payload(engine); return Rewrapped(engine, p[..(p.Length / 2)]); }

    private static void Rejected(Func<Exception?> score, string what, string word)
    {
        var e = score();
        var invalid = e as InvalidModelFileException ?? e?.InnerException as InvalidModelFileException;
        Assert.True(invalid is not null, $"{what}: {e?.GetType().Name ?? "scored"} {e}");
        Assert.Contains(word, invalid!.Message);
    }

    [Fact]
    public void AnRnnRnadeZipWithADamagedEngineFileOrThresholdIsRejected()
    {
        var ml = new MLContext(seed: 1);
        var rng = new Randomness.RandomStream(4);
        var rows = Enumerable.Range(0, 40).Select(_ => new SequenceRow { Features = Enumerable.Range(0, 2 * (2 + rng.NextInt(5))).Select(_ => (float)rng.NextGaussian()).ToArray() }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var options = new SequenceDensityEstimator.Options { FrameSize = 2 };
        var t = ml.DensityEstimation.RnnRnade(options, new Models.RnnRnade.RnnRnadeOptions { HiddenUnits = 4, Components = 2, RecurrentUnits = 3, MaxEpochs = 1 }).Fit(data);
        var engine = t.Model.ToBytes();

        string Envelope(byte[] file, float threshold)
        {
            var ms = new MemoryStream();
            ms.Write("DDSQ"u8); ms.Write(BitConverter.GetBytes((ushort)1)); ms.Write(BitConverter.GetBytes(threshold)); ms.Write(file);
            return Convert.ToBase64String(ms.ToArray());
        }
        Exception? ScoreZip(string envelope)
        {
            var zip = new MemoryStream();
            ml.Model.Save(SequenceSurrogate.BuildChain(ml, options, envelope), data.Schema, zip);
            zip.Position = 0;
            var loaded = new MLContext().Model.Load(zip, out _);
            return Record.Exception(() => loaded.Transform(data).GetColumn<float>("LogDensity").ToArray());
        }

        // LoadWithLiveDensityModels validates every DeepDensity model in the file at load (docs/mlnet.md), the sequence
        // models included: it used to return the pipeline and leave a damaged sequence model to the first row read.
        Exception? LoadLive(string envelope)
        {
            var zip = new MemoryStream();
            ml.Model.Save(SequenceSurrogate.BuildChain(ml, options, envelope), data.Schema, zip);
            zip.Position = 0;
            return Record.Exception(() => new MLContext().Model.LoadWithLiveDensityModels(zip, out _));
        }
        Assert.Null(LoadLive(Envelope(engine, t.Threshold)));
        Rejected(() => LoadLive(Envelope(engine, float.NaN)), "NaN threshold at load", "threshold");
        Rejected(() => LoadLive(Envelope(TruncatedPayload(engine), t.Threshold)), "truncated payload at load", "");
        Rejected(() => LoadLive("not base64!"), "not base64 at load", "Corrupt");
        // Version 2 carries the user's column names (version 1 above, without them, still loads): damaged names are refused.
        string Named(byte[] names, ushort version = 2)
        {
            var ms = new MemoryStream();
            ms.Write("DDSQ"u8); ms.Write(BitConverter.GetBytes(version)); ms.Write(BitConverter.GetBytes(t.Threshold)); ms.Write(names); ms.Write(engine);
            return Convert.ToBase64String(ms.ToArray());
        }
        Assert.Null(LoadLive(Named(new byte[] { 1, 3, 0, (byte)'S', (byte)'e', (byte)'q' })));
        Rejected(() => LoadLive(Named(new byte[] { 200 })), "200 column names", "column names");
        Rejected(() => LoadLive(Named(new byte[] { 1, 0, 0 })), "an empty column name", "column names");
        Rejected(() => LoadLive(Named(new byte[] { 1, 0xff, 0xff })), "a column name longer than the file", "column names");
        Rejected(() => LoadLive(Named(new byte[] { 1, 1, 0, 0xff })), "a column name that is not UTF-8", "column names");
        Rejected(() => LoadLive(Named(new byte[] { 0 }, version: 5)), "a newer envelope version", "version 5");
        // Version 3 adds a CRC of the threshold and the names (version 2 above, without it, still loads): a damaged
        // threshold byte used to load as another finite threshold, flagging other sequences. The byte is found by
        // encoding two thresholds, so this does not depend on the layout.
        var good = Convert.FromBase64String(SequenceSurrogate.Encode(t.Model, t.Threshold, new[] { "Features" }));
        var changed = Convert.FromBase64String(SequenceSurrogate.Encode(t.Model, t.Threshold * 2, new[] { "Features" }));
        int at = Enumerable.Range(0, good.Length).First(i => good[i] != changed[i]);
        good[at] = changed[at];
        Rejected(() => LoadLive(Convert.ToBase64String(good)), "a damaged threshold byte at load", "checksum mismatch");
        Rejected(() => ScoreZip(Convert.ToBase64String(good)), "a damaged threshold byte", "checksum mismatch");

        Assert.Null(ScoreZip(Envelope(engine, t.Threshold))); // the helper itself builds a working zip
        Rejected(() => ScoreZip(Envelope(engine, float.NaN)), "NaN threshold", "threshold");
        Rejected(() => ScoreZip(Envelope(engine, float.PositiveInfinity)), "infinite threshold", "threshold");
        Rejected(() => ScoreZip(Envelope(HugePayload(engine), t.Threshold)), "huge declared payload", "MaxModelFileBytes");
        Rejected(() => ScoreZip(Envelope(TruncatedPayload(engine), t.Threshold)), "truncated payload with a valid CRC", "");
        Rejected(() => ScoreZip(Envelope(engine[..^1], t.Threshold)), "truncated file", "");
    }

    /// <summary>Issue 13 (7) for the sequence estimators: a Fit whose token is cancelled when training reports its last
    /// (only) epoch throws instead of returning a model — scoring the training sequences for the threshold observes it.</summary>
    [Fact]
    public void ASequenceFitCancelledAfterTheLastEpochReturnsNoModel()
    {
        var ml = new MLContext(seed: 1);
        var rng = new Randomness.RandomStream(5);
        var rows = Enumerable.Range(0, 40).Select(_ => new SequenceRow { Features = Enumerable.Range(0, 2 * (2 + rng.NextInt(5))).Select(_ => (float)rng.NextGaussian()).ToArray() }).ToList();
        var small = new Models.RnnRnade.RnnRnadeOptions { HiddenUnits = 4, Components = 2, RecurrentUnits = 3, MaxEpochs = 1 };

        using var whole = new CancellationTokenSource();
        int reports = 0;
        var sequences = ml.DensityEstimation.RnnRnade(new SequenceDensityEstimator.Options
        {
            FrameSize = 2, CancellationToken = whole.Token, Progress = new SynchronousProgress(_ => { reports++; whole.Cancel(); }),
        }, small);
        Assert.ThrowsAny<OperationCanceledException>(() => sequences.Fit(ml.Data.LoadFromEnumerable(rows)));
        Assert.Equal(1, reports);

        var frameRows = new List<FrameRow>();
        for (int s = 0; s < rows.Count; s++)
            for (int t = 0; t < rows[s].Features.Length / 2; t++)
                frameRows.Add(new FrameRow { Features = rows[s].Features[(2 * t)..(2 * t + 2)], SequenceId = s, Order = t });
        using var frames = new CancellationTokenSource();
        reports = 0;
        var frameEstimator = ml.DensityEstimation.RnnRnade(new RnnRnadeFrameEstimator.Options
        {
            ModelOptions = small, CancellationToken = frames.Token, Progress = new SynchronousProgress(_ => { reports++; frames.Cancel(); }),
        });
        Assert.ThrowsAny<OperationCanceledException>(() => frameEstimator.Fit(ml.Data.LoadFromEnumerable(frameRows)));
        Assert.Equal(1, reports);
    }

    public sealed class FrameRow
    {
        [VectorType(2)] public float[] Features = new float[2];
        public int SequenceId;
        public float Order;
    }

    private sealed class SynchronousProgress(Action<Training.TrainingProgress> report) : IProgress<Training.TrainingProgress>
    {
        public void Report(Training.TrainingProgress value) => report(value);
    }

    [Fact]
    public void AnNvilZipWithADamagedEngineFileIsRejected()
    {
        var ml = new MLContext(seed: 1);
        var rows = TestData.Blob(200, seed: 2);
        foreach (var r in rows) for (int c = 0; c < r.Features.Length; c++) r.Features[c] = r.Features[c] > 0.5f ? 1f : 0f;
        var data = ml.Data.LoadFromEnumerable(rows);
        var t = ml.DensityEstimation.Nvil(new NvilEstimator.Options { ModelOptions = new Models.Nvil.NvilOptions { LatentDimensions = new[] { 2 }, MaxEpochs = 1, EvaluationSamples = 10 } }).Fit(data);
        var envelope = Convert.FromBase64String(ModelEnvelope.Encode(t.Model, t.Settings));
        var engine = t.Model.ToBytes();

        Exception? ScoreZip(byte[] file)
        {
            var forged = new byte[envelope.Length - engine.Length + file.Length];
            envelope.AsSpan(0, envelope.Length - engine.Length).CopyTo(forged);
            BinaryPrimitives.WriteInt32LittleEndian(forged.AsSpan(envelope.Length - engine.Length - 4), file.Length);
            file.CopyTo(forged, envelope.Length - engine.Length);
            var zip = new MemoryStream();
            ml.Model.Save(Surrogate.Build(ml, t.Settings, t.Model.Dimension, Convert.ToBase64String(forged)), data.Schema, zip);
            zip.Position = 0;
            var loaded = new MLContext().Model.Load(zip, out _);
            var e = Record.Exception(() => loaded.GetDensityTransformer());
            return e ?? Record.Exception(() => loaded.Transform(data).GetColumn<float>("Score").ToArray());
        }

        Assert.Null(ScoreZip(engine));
        Rejected(() => ScoreZip(HugePayload(engine)), "huge declared payload", "MaxModelFileBytes");
        Rejected(() => ScoreZip(TruncatedPayload(engine)), "truncated payload with a valid CRC", "");
        var firstInt = Payload(engine);
        BinaryPrimitives.WriteInt32LittleEndian(firstInt, int.MaxValue);
        Rejected(() => ScoreZip(Rewrapped(engine, firstInt)), "first payload integer forged to int.MaxValue", "");
    }
}
