using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Transforms;
using Microsoft.ML.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// The "v2" surrogate: a model saved into an ML.NET zip as 15-bit text chunks, one MapValue stage each
/// (<see cref="ModelTextChunks"/>), scored by "DeepDensity.Score.v2". Zips of the "v1" form (one base64 value) are
/// covered by <see cref="EarlierVersionFileTests"/> and <see cref="LoadedModelErrorTests"/>.
/// </summary>
public class ChunkedModelZipTests
{
    private static readonly DataViewSchema Schema = new MLContext().Data.LoadFromEnumerable(TestData.Blob(1)).Schema;

    private static (MLContext Ml, DensityTransformer Live) Trained(bool sample = false)
    {
        var ml = new MLContext(seed: 1);
        var t = ml.DensityEstimation.Rnade(TestData.SmallRnade(o =>
        {
            o.ModelOptions.MaxEpochs = 2;
            if (sample) o.SampleColumnName = "Sample";
        })).Fit(ml.Data.LoadFromEnumerable(TestData.Blob(100)));
        return (ml, t);
    }

    private static byte[] Zip(MLContext ml, ITransformer model)
    {
        using var zip = new MemoryStream();
        ml.Model.Save(model, Schema, zip);
        return zip.ToArray();
    }

    /// <summary>The chunks of <paramref name="live"/>'s envelope, <paramref name="size"/> bytes each.</summary>
    private static string[] Chunks(DensityTransformer live, int size) => ModelTextChunks.Encode(ModelEnvelope.EncodeBytes(live.Model, live.Settings), size);

    private static List<ITransformer> Leaves(ITransformer t)
        => t is IEnumerable<ITransformer> chain ? chain.SelectMany(Leaves).ToList() : new List<ITransformer> { t };

    [Fact]
    public void ChunksRoundTrip_AtEverySizeAndLength()
    {
        var rnd = new Random(3);
        foreach (int length in new[] { 0, 1, 2, 14, 15, 16, 29, 30, 31, 1000, 4097 })
        {
            var payload = new byte[length];
            rnd.NextBytes(payload);
            foreach (int size in new[] { 1, 7, 64, 4096 })
            {
                if ((length + size - 1) / size > ModelTextChunks.MaxChunks) continue;
                var chunks = ModelTextChunks.Encode(payload, size);
                Assert.Equal(Math.Max(1, (length + size - 1) / size), chunks.Length);
                Assert.All(chunks, c => Assert.All(c, ch => Assert.InRange(ch, '\0', '\u7FFF'))); // no surrogates: UTF-8 keeps them
                Assert.Equal(payload, ModelTextChunks.Decode(chunks.Select(c => c.AsMemory()).ToList()));
            }
        }
        // The default size: one chunk up to ChunkBytes, then as many as needed, at most MaxChunks.
        Assert.Single(ModelTextChunks.Encode(new byte[ModelTextChunks.ChunkBytes]));
        Assert.Equal(2, ModelTextChunks.Encode(new byte[ModelTextChunks.ChunkBytes + 1]).Length);
    }

    [Fact]
    public void AForgedModelLength_IsRefusedBeforeItIsAllocated()
    {
        // A one-chunk model whose header claims 2^31 - 2 bytes, with a matching CRC, as a forger would write it: the length
        // is checked against what the chunk's text can hold before the payload array exists.
        var forged = ModelTextChunks.Encode(new byte[100], 4096)[0].ToCharArray();
        var header = Unpack(forged, 22);
        BitConverter.TryWriteBytes(header.AsSpan(10), (uint)Array.MaxLength);
        BitConverter.TryWriteBytes(header.AsSpan(18), Crc(header.AsSpan(0, 18), new byte[100]));
        var text = RePack(header, forged);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidModelFileException>(() => ModelTextChunks.Decode(new[] { text.AsMemory() }));
        Assert.Contains("the chunks hold 100 bytes but the model's length is", e.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "allocated the forged length");
    }

    /// <summary>CRC-32 (IEEE, as the chunk header's) of <paramref name="a"/> then <paramref name="b"/>.</summary>
    private static uint Crc(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        uint c = ~0u;
        foreach (var part in new[] { a.ToArray(), b.ToArray() })
            foreach (byte x in part)
            {
                c ^= x;
                for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            }
        return ~c;
    }

    /// <summary>The first <paramref name="count"/> bytes packed in 15-bit <paramref name="text"/>.</summary>
    private static byte[] Unpack(char[] text, int count)
    {
        var bytes = new byte[count];
        uint acc = 0; int have = 0, at = 0;
        for (int i = 0; i < count; i++)
        {
            if (have < 8) { acc = (acc << 15) | text[at++]; have += 15; }
            have -= 8;
            bytes[i] = (byte)(acc >> have);
        }
        return bytes;
    }

    /// <summary><paramref name="text"/> with its leading bytes replaced by <paramref name="header"/>.</summary>
    private static string RePack(byte[] header, char[] text)
    {
        var all = Unpack(text, text.Length * 15 / 8);
        header.CopyTo(all, 0);
        var chars = new char[text.Length];
        uint acc = 0; int have = 0, at = 0;
        foreach (byte b in all)
        {
            acc = (acc << 8) | b; have += 8;
            if (have >= 15) { have -= 15; chars[at++] = (char)((acc >> have) & 0x7FFF); }
        }
        if (have > 0 && at < chars.Length) chars[at++] = (char)((acc << (15 - have)) & 0x7FFF);
        return new string(chars, 0, at);
    }

    [Fact]
    public void ANewZip_HoldsTheChunkedForm_AndScoresTheLiveBits_ThroughBothLoads()
    {
        var (ml, live) = Trained(sample: true);
        var zip = Zip(ml, Surrogate.Build(ml, live.Settings, live.Model.Dimension, Chunks(live, 100)));
        int chunks = Chunks(live, 100).Length;
        Assert.True(chunks > 5, $"{chunks} chunks");
        var rows = TestData.Blob(200, seed: 4);
        var view = ml.Data.LoadFromEnumerable(rows);
        var expected = live.Transform(view).GetColumn<float>("LogDensity").ToArray();
        var expectedSample = live.Transform(view).GetColumn<float[]>("Sample").ToArray();

        var ml2 = new MLContext(seed: 3);
        var plain = ml2.Model.Load(new MemoryStream(zip), out _);
        Assert.Equal(chunks, Leaves(plain).Count(s => s is ValueMappingTransformer)); // one MapValue per chunk
        var fast = ml2.Model.LoadWithLiveDensityModels(new MemoryStream(zip), out _);
        Assert.IsType<DensityTransformer>(fast);
        Assert.Equal(live.Settings, plain.GetDensityTransformer(ml2).Settings);
        foreach (var t in new[] { plain, fast })
        {
            var output = t.Transform(ml2.Data.LoadFromEnumerable(rows));
            Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), output.GetColumn<float>("LogDensity").Select(BitConverter.SingleToInt32Bits));
            Assert.Equal(expectedSample, output.GetColumn<float[]>("Sample").ToArray());
            var engine = ml2.Model.CreatePredictionEngine<Row, Scored>(t);
            for (int i = 0; i < 20; i++)
                Assert.Equal(BitConverter.SingleToInt32Bits(expected[i]), BitConverter.SingleToInt32Bits(engine.Predict(rows[i]).LogDensity));
            // Saved again (the loaded chain as ML.NET keeps it, or the live transformer), it still loads and scores the same.
            var again = new MLContext(seed: 5).Model.Load(new MemoryStream(Zip(ml2, t)), out _);
            Assert.Equal(expected, again.Transform(ml2.Data.LoadFromEnumerable(rows)).GetColumn<float>("LogDensity").ToArray());
        }
    }

    [Fact]
    public void SavingAFittedTransformer_WritesTheChunkedForm()
    {
        var (ml, live) = Trained();
        // The chain a DensityTransformer saves, inside a user pipeline with a stage before and after it.
        var pipeline = new TransformerChain<ITransformer>(ml.Transforms.CopyColumns("Copy", "Label").Fit(ml.Data.LoadFromEnumerable(TestData.Blob(1))), live)
            .Append(ml.Transforms.CopyColumns("Score2", "Score").Fit(live.Transform(ml.Data.LoadFromEnumerable(TestData.Blob(1)))));
        var zip = Zip(ml, pipeline);
        var ml2 = new MLContext(seed: 3);
        var plain = ml2.Model.Load(new MemoryStream(zip), out _);
        Assert.Contains(Leaves(plain), s => s is ColumnConcatenatingTransformer); // the chunks' Concatenate: the v2 chain
        var rows = ml2.Data.LoadFromEnumerable(TestData.Blob(100, seed: 5));
        var expected = pipeline.Transform(rows).GetColumn<float>("Score2").ToArray();
        Assert.Equal(expected, plain.Transform(rows).GetColumn<float>("Score2").ToArray());
        var fast = ml2.Model.LoadWithLiveDensityModels(new MemoryStream(zip), out _);
        Assert.Single(Leaves(fast).OfType<DensityTransformer>());
        Assert.Equal(expected, fast.Transform(rows).GetColumn<float>("Score2").ToArray());
        Assert.Single(plain.GetDensityTransformers(ml2));
    }

    public static TheoryData<string, string> ChunkDamages() => new()
    {
        { "flipped bit", "checksum mismatch of chunk 1 of" },
        { "not 15-bit text", "not 15-bit text" },
        { "truncated chunk", "chunk 2 of" },
        { "longer chunk", "longer than its header says" },
        { "swapped chunks", "says it is chunk" },
        { "bad magic", "bad magic" },
        { "chunk missing", "chunk" },
        { "envelope CRC", "checksum mismatch of the transformer settings" },
    };

    [Theory, MemberData(nameof(ChunkDamages))]
    public void DamagedChunks_ThrowInvalidModelFileException_AtLoadWithLiveDensityModels_OrAtTheFirstRead(string damage, string says)
    {
        var (ml, live) = Trained();
        var good = Chunks(live, 64);
        Assert.True(good.Length >= 4);
        var bad = (string[])good.Clone();
        static string Set(string s, int at, char c) => s[..at] + c + s[(at + 1)..];
        switch (damage)
        {
            case "flipped bit": bad[1] = Set(bad[1], 20, (char)(bad[1][20] ^ 0x10)); break;
            case "not 15-bit text": bad[1] = Set(bad[1], 20, '\u9000'); break;
            case "truncated chunk": bad[2] = bad[2][..^3]; break;
            case "longer chunk": bad[2] += "\0"; break;
            case "swapped chunks": (bad[1], bad[2]) = (bad[2], bad[1]); break;
            case "bad magic": bad[0] = Set(bad[0], 0, 'x'); break;
            case "chunk missing": bad = bad[..^1]; break;
            case "envelope CRC":
                var bytes = ModelEnvelope.EncodeBytes(live.Model, live.Settings);
                bytes[8] ^= 1; // inside the feature column's name: a byte the settings' CRC covers
                bad = ModelTextChunks.Encode(bytes, 64);
                break;
            default: throw new ArgumentOutOfRangeException(nameof(damage));
        }
        var zip = Zip(ml, Surrogate.Build(ml, live.Settings, live.Model.Dimension, bad));
        var ml2 = new MLContext(seed: 3);
        // The one-call load validates the model.
        var atLoad = Assert.Throws<InvalidModelFileException>(() => ml2.Model.LoadWithLiveDensityModels(new MemoryStream(zip), out _));
        Assert.Contains(says, atLoad.Message);
        // The ordinary load runs nothing of ours on the chunks: the first read throws, saying what to do.
        var loaded = ml2.Model.Load(new MemoryStream(zip), out _);
        Assert.Throws<InvalidModelFileException>(() => loaded.GetDensityModel());
        var output = loaded.Transform(ml2.Data.LoadFromEnumerable(TestData.Blob(50)));
        var atRead = LoadedModelErrorTests.Innermost<InvalidModelFileException>(Assert.ThrowsAny<Exception>(() => output.GetColumn<float>("LogDensity").ToArray()));
        Assert.Contains("LoadWithLiveDensityModels validates it at load", atRead.Message);
        if (damage != "chunk missing") Assert.Contains(says, atRead.Message);
        Assert.Throws<InvalidModelFileException>(() => ml2.Model.CreatePredictionEngine<Row, Scored>(loaded).Predict(TestData.Blob(1)[0]));
    }

    // ---------------- sequence models ----------------
    private static (MLContext Ml, IDataView Data, SequenceDensityEstimator.Options Options, SequenceDensityTransformer Live) SequenceTrained()
    {
        var ml = new MLContext(seed: 1);
        var rng = new Randomness.RandomStream(4);
        var rows = Enumerable.Range(0, 40).Select(_ => new HostileSequenceAndNvilZipTests.SequenceRow
        {
            Features = Enumerable.Range(0, 2 * (2 + rng.NextInt(5))).Select(_ => (float)rng.NextGaussian()).ToArray(),
        }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var options = new SequenceDensityEstimator.Options { FrameSize = 2 };
        var live = ml.DensityEstimation.RnnRnade(options, new Models.RnnRnade.RnnRnadeOptions { HiddenUnits = 8, Components = 2, RecurrentUnits = 6, MaxEpochs = 1 }).Fit(data);
        return (ml, data, options, live);
    }

    private static string[] SequenceChunks(SequenceDensityTransformer live, int size)
        => ModelTextChunks.Encode(SequenceSurrogate.EncodeBytes(live.Model, live.Threshold, new[] { "Features" }), size);

    [Fact]
    public void ASequenceModelInChunks_ScoresTheLiveBits_ThroughBothLoads()
    {
        var (ml, data, options, live) = SequenceTrained();
        var chunks = SequenceChunks(live, 100);
        Assert.True(chunks.Length > 3, $"{chunks.Length} chunks");
        var expected = live.Transform(data).GetColumn<float[]>("FrameLogDensities").ToArray();
        foreach (var saved in new[] { live, SequenceSurrogate.BuildChain(ml, options, chunks) }) // the estimator's form (one chunk), and several
        {
            using var zip = new MemoryStream();
            ml.Model.Save(saved, data.Schema, zip);
            var ml2 = new MLContext(seed: 3);
            var plain = ml2.Model.Load(new MemoryStream(zip.ToArray()), out _);
            Assert.Contains(Leaves(plain), s => s is ColumnConcatenatingTransformer);
            var fast = ml2.Model.LoadWithLiveDensityModels(new MemoryStream(zip.ToArray()), out _);
            Assert.IsType<SequenceDensityTransformer>(fast);
            foreach (var t in new[] { plain, fast })
                Assert.Equal(expected, t.Transform(data).GetColumn<float[]>("FrameLogDensities").ToArray());
            Assert.Equal(live.Threshold, plain.GetSequenceAnomalyThreshold(ml2));
            Assert.Equal(live.Model.ToBytes(), plain.GetSequenceDensityModel(ml2).ToBytes());
        }
    }

    [Fact]
    public void ADamagedSequenceChunk_ThrowsInvalidModelFileException_AtLoadWithLiveDensityModels_OrAtTheFirstRead()
    {
        var (ml, data, options, live) = SequenceTrained();
        var bad = SequenceChunks(live, 100);
        bad[1] = bad[1][..20] + (char)(bad[1][20] ^ 0x100) + bad[1][21..];
        using var zip = new MemoryStream();
        ml.Model.Save(SequenceSurrogate.BuildChain(ml, options, bad), data.Schema, zip);
        var ml2 = new MLContext(seed: 3);
        var atLoad = Assert.Throws<InvalidModelFileException>(() => ml2.Model.LoadWithLiveDensityModels(new MemoryStream(zip.ToArray()), out _));
        Assert.Contains("checksum mismatch of chunk 1 of", atLoad.Message);
        var loaded = ml2.Model.Load(new MemoryStream(zip.ToArray()), out _);
        Assert.Throws<InvalidModelFileException>(() => loaded.GetSequenceDensityModel(ml2));
        var atRead = LoadedModelErrorTests.Innermost<InvalidModelFileException>(Assert.ThrowsAny<Exception>(() => loaded.Transform(data).GetColumn<float>("LogDensity").ToArray()));
        Assert.Contains("checksum mismatch of chunk 1 of", atRead.Message);
    }
}

/// <summary>What a load of the chunked form allocates, against the "v1" form of the same model: process-wide
/// allocation (ML.NET loads a MapValue table on worker threads too), so it runs alone.</summary>
[Collection(ProcessWideCountersCollection.Name)]
public class ChunkedModelLoadMemoryTests
{
    [Fact]
    public void LoadingAModelOfSomeMegabytes_AllocatesABoundedMultipleOfItsSize()
    {
        var ml = new MLContext(seed: 1);
        var rows = Enumerable.Range(0, 40).Select(i => new WideRow { Features = Enumerable.Range(0, WideRow.D).Select(j => (float)Math.Sin(i * 0.7 + j)).ToArray() }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var live = ml.DensityEstimation.Rnade(new RnadeEstimator.Options
        {
            ModelOptions = new Models.Rnade.RnadeOptions { HiddenUnits = 200, Components = 10, MaxEpochs = 1, Seed = 7 },
        }).Fit(data);
        int modelBytes = live.Model.ToBytes().Length;
        Assert.InRange(modelBytes, 2_500_000, 8_000_000);
        byte[] Save(ITransformer t) { using var s = new MemoryStream(); ml.Model.Save(t, data.Schema, s); return s.ToArray(); }
        var chunked = Save(live);
        var v1 = Save(Surrogate.Build(ml, live.Settings, live.Model.Dimension, ModelEnvelope.Encode(live.Model, live.Settings)));

        long Allocated(byte[] zip)
        {
            var ml2 = new MLContext(seed: 2);
            ml2.Model.LoadWithLiveDensityModels(new MemoryStream(zip), out _); // warm up: JIT, ML.NET's catalog
            GC.Collect();
            long before = GC.GetTotalAllocatedBytes(precise: true);
            var t = ml2.Model.LoadWithLiveDensityModels(new MemoryStream(zip), out _);
            long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
            GC.KeepAlive(t);
            return allocated;
        }
        long chunkedBytes = Allocated(chunked), v1Bytes = Allocated(v1);
        // Measured: 105 MB for the chunked form of a 3.2 MB model (33 times), 144 MB for v1 (45 times): ML.NET decodes each
        // MapValue table, saves it again and keeps it as UTF-16. Generous bounds, not a timing; what the chunks cut most is
        // the peak (one chunk's copies at a time), which a heap limit shows (docs/mlnet.md) and a test cannot measure cheaply.
        Assert.True(chunkedBytes < 50L * modelBytes, $"chunked form: {chunkedBytes / 1e6:0.0} MB allocated for a {modelBytes / 1e6:0.0} MB model");
        Assert.True(chunkedBytes < v1Bytes, $"chunked {chunkedBytes / 1e6:0.0} MB, v1 {v1Bytes / 1e6:0.0} MB");
    }

    public sealed class WideRow
    {
        public const int D = 128;
        [VectorType(D)] public float[] Features { get; set; } = new float[D];
    }
}
