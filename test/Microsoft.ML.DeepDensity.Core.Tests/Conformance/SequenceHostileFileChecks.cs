using System.Buffers.Binary;
using System.Diagnostics;
using System.Reflection;
using System.Runtime.CompilerServices;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>
/// Issue 13 for sequence models (every <see cref="SequenceModelCases.All"/> entry inherits it): damaged files that reach
/// the payload reader fail with <see cref="InvalidModelFileException"/> quickly and in bounded memory, or load a model that
/// scores and samples without NaN; container damage is rejected; data at subnormal scale fits or fails clearly and never
/// saves what cannot be loaded; a dropped model is collected with its scratch; absurd sampling requests fail clearly.
/// </summary>
public class SequenceHostileFileChecks
{
    private static readonly Dictionary<string, Lazy<(SequenceDensityModel Model, SequenceBatch Data)>> Fitted =
        SequenceModelCases.All.ToDictionary(c => c.Name, c => new Lazy<(SequenceDensityModel, SequenceBatch)>(() =>
        {
            var data = c.MakeData(c.TrainingSequences, 12345);
            return (c.Fit(new SequenceFitRequest(data, 1)), data);
        }));

    /// <summary>1,000 damaged payloads wrapped in a valid checksum (truncated and padded: rejected; forged integers
    /// and flipped bytes: rejected, or a model that scores and samples without NaN).</summary>
    [Theory, MemberData(nameof(SequenceModelCases.Names), MemberType = typeof(SequenceModelCases))]
    public void ThousandDamagedPayloadsWithValidChecksumsFailCleanlyOrLoadUsableModels(string name)
    {
        var (model, data) = Fitted[name].Value;
        var file = model.ToBytes();
        var parts = ModelFileParts.Parse(file);
        Assert.Equal(file, parts.Build());
        var payload = parts.Payload;
        int p = payload.Length, strict = 0, lenient = 0, loaded = 0;
        var rng = new RandomStream(0x5E9BAD);
        var score = data.Select(Enumerable.Range(0, 10).ToArray());

        for (int i = 0; i < 200; i++)
        {
            strict++;
            Assert.False(Load($"payload truncated to {i * p / 200}", parts.WithPayload(payload[..(int)((long)i * p / 200)]).Build(), file.Length, null));
        }
        foreach (int extra in new[] { 1, 4, 100 })
        {
            strict++;
            Assert.False(Load($"payload padded by {extra}", parts.WithPayload([.. payload, .. new byte[extra]]).Build(), file.Length, null));
        }
        int[] forged = { -1, 0, 1, 2, int.MaxValue, int.MinValue, 1 << 20, 1 << 30, 0x7FC00000, 0x7F800000 };
        for (int s = 0; s < Math.Min(64, p / 4); s++)
            foreach (int v in forged) Lenient($"int {v} at payload offset {4 * s}", Forge(4 * s, v));
        while (strict + lenient < 750)
        {
            int offset = rng.NextInt(Math.Max(1, p - 3));
            int v = forged[rng.NextInt(forged.Length)];
            Lenient($"int {v} at payload offset {offset}", Forge(offset, v));
        }
        while (strict + lenient < 1000)
        {
            var copy = (byte[])payload.Clone();
            int flips = 1 + rng.NextInt(4);
            for (int f = 0; f < flips; f++) copy[rng.NextInt(p)] ^= (byte)(1 + rng.NextInt(255));
            Lenient($"{flips} flipped payload bytes", parts.WithPayload(copy).Build());
        }
        Assert.True(loaded < lenient, $"all {lenient} forged payloads loaded: the payload reader checks nothing");

        void Lenient(string what, byte[] bytes) { lenient++; if (Load(what, bytes, file.Length, score)) loaded++; }
        byte[] Forge(int offset, int value)
        {
            var copy = (byte[])payload.Clone();
            BinaryPrimitives.WriteInt32LittleEndian(copy.AsSpan(offset), value);
            return parts.WithPayload(copy).Build();
        }
    }

    /// <summary>Container damage (truncations anywhere, flipped bytes, forged payload lengths, other kinds) is rejected by
    /// both loaders with <see cref="InvalidModelFileException"/>.</summary>
    [Theory, MemberData(nameof(SequenceModelCases.Names), MemberType = typeof(SequenceModelCases))]
    public void DamagedContainersAreRejected(string name)
    {
        var file = Fitted[name].Value.Model.ToBytes();
        var parts = ModelFileParts.Parse(file);
        var rng = new RandomStream(0xC0417);
        var variants = new List<(string, byte[])>();
        for (int i = 0; i < 100; i++) { int cut = (int)((long)i * file.Length / 100); variants.Add(($"truncated to {cut}", file[..cut])); }
        for (int i = 0; i < 100; i++)
        {
            var copy = (byte[])file.Clone();
            copy[rng.NextInt(copy.Length)] ^= (byte)(1 + rng.NextInt(255));
            variants.Add(("a flipped byte", copy));
        }
        foreach (ulong forged in new ulong[] { 0, 1UL << 31, 1UL << 40, ulong.MaxValue, (ulong)ModelFile.MaxPayloadLength })
        {
            variants.Add(($"payload length {forged} with a valid CRC", parts.Build(forged)));
            var copy = (byte[])file.Clone();
            BinaryPrimitives.WriteUInt64LittleEndian(copy.AsSpan(parts.PayloadOffset - 8), forged);
            variants.Add(($"payload length {forged}", copy));
        }
        foreach (var kind in ModelRegistry.Kinds.Where(k => k != parts.Kind))
            variants.Add(($"kind {kind} with a valid CRC", (parts with { Kind = kind }).Build()));
        foreach (var (what, bytes) in variants)
        {
            Assert.False(Load(what, bytes, file.Length, null));
            var e = Record.Exception(() => SequenceDensityModel.Load(new MemoryStream(bytes)));
            Assert.True(e is InvalidModelFileException, $"{what} (stream): {e?.GetType().Name ?? "loaded"}");
        }
    }

    /// <summary>Issue 13 (1) for sequences: frames scaled to 1e-39 / 1e-43 (subnormal) fit, or fail with a clear
    /// exception; a fitted model saves a file that loads and scores the same.</summary>
    [Theory, MemberData(nameof(SequenceModelCases.Names), MemberType = typeof(SequenceModelCases))]
    public void SubnormalScaleDataFitsOrFailsClearlyAndNeverSavesAnUnloadableFile(string name)
    {
        var c = SequenceModelCases.Get(name);
        foreach (float scale in new[] { 1e-30f, 1e-39f, 1e-43f, 1e30f })
        {
            var data = c.MakeData(c.TrainingSequences, 12345);
            var values = data.Values.ToArray();
            foreach (ref float v in values.AsSpan(0, data.TotalFrames * data.FrameSize)) v *= scale;
            var scaled = new SequenceBatch(values, data.Offsets[..(data.Count + 1)], data.FrameSize);
            SequenceDensityModel model;
            try { model = c.Fit(new SequenceFitRequest(scaled, 1)); }
            catch (Exception e) when (e is DataValidationException or TrainingDivergedException)
            {
                Assert.False(string.IsNullOrWhiteSpace(e.Message));
                continue;
            }
            var reloaded = SequenceDensityModel.FromBytes(model.ToBytes());
            var scores = model.LogDensity(scaled);
            Assert.Equal(scores, reloaded.LogDensity(scaled));
            Assert.DoesNotContain(scores, float.IsNaN);
            Assert.DoesNotContain(model.Sample(3, 5, 1).Values, float.IsNaN);
            if (!float.IsNormal(scale))   // the sequences must still be told apart (not standardised as constant)
                Assert.True(scores.Distinct().Count() > 1, $"{name} fitted on frames scaled by {scale} scores every sequence {scores[0]}");
        }
    }

    /// <summary>After a model has scored (in blocks, from 4 threads) and sampled, dropping it frees it and what it holds.</summary>
    [Theory, MemberData(nameof(SequenceModelCases.Names), MemberType = typeof(SequenceModelCases))]
    public void ScratchIsReleasedWithTheModel(string name)
    {
        var (model, data) = Fitted[name].Value;
        var references = UseAndForget(model.ToBytes(), data);
        for (int i = 0; i < 3; i++) { GC.Collect(); GC.WaitForPendingFinalizers(); }
        foreach (var (what, reference) in references)
            Assert.False(reference.IsAlive, $"{what} is still alive after the model was dropped");
    }

    /// <summary>Scoring one short sequence allocates memory bounded by the file's size (the model's own sizes) plus 8 MiB.</summary>
    [Theory, MemberData(nameof(SequenceModelCases.Names), MemberType = typeof(SequenceModelCases))]
    public void ScoringOneSequenceAllocatesMemoryBoundedByTheFile(string name)
    {
        var (model, data) = Fitted[name].Value;
        var bytes = model.ToBytes();
        var loaded = SequenceDensityModel.FromBytes(bytes);
        var one = data.Select(new[] { 0 });
        long before = GC.GetAllocatedBytesForCurrentThread();
        var ld = loaded.LogDensity(one);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(float.IsFinite(ld[0]));
        Assert.True(allocated < 16L * bytes.Length + (8 << 20), $"scoring one sequence allocated {allocated:N0} bytes (file {bytes.Length:N0})");
    }

    /// <summary>Sampling requests whose output cannot exist (negative, or more values than an array holds) fail with an
    /// <see cref="ArgumentException"/> at once, not an overflow or an out-of-memory crash.</summary>
    [Theory, MemberData(nameof(SequenceModelCases.Names), MemberType = typeof(SequenceModelCases))]
    public void AbsurdSamplingRequestsFailClearly(string name)
    {
        var (model, data) = Fitted[name].Value;
        foreach (var (count, length) in new[] { (-1, 5), (2, -1), (int.MaxValue, int.MaxValue), (1, int.MaxValue), (int.MaxValue, 1), (65536, 65536) })
        {
            var clock = Stopwatch.StartNew();
            var e = Record.Exception(() => model.Sample(count, length, 1));
            Assert.True(e is ArgumentException, $"Sample({count}, {length}): {e?.GetType().Name ?? "no exception"} {e?.Message}");
            Assert.True(clock.Elapsed < TimeBounds.Within(1));
        }
        var prefixes = data.Select(new[] { 0, 1 });
        foreach (int extra in new[] { -1, int.MaxValue })
            Assert.ThrowsAny<ArgumentException>(() => model.Sample(prefixes, extra, 1));
    }

    /// <summary>Model-specific (RNN-RNADE): a 1.5 MB file declaring 65,536 recurrent units and an empty W_rec (rec²
    /// wraps to 0 in int arithmetic) is refused at load, not loaded as a model that crashes when it scores.</summary>
    [Fact]
    public void AnRnnRnadeWhoseRecurrentWeightSizeWrapsIsRefused()
    {
        const int rec = 1 << 16;
        var rnade = new Models.Rnade.RnadeNetwork(1, 1, 1, Numerics.Activation.Tanh);
        var net = new Models.RnnRnade.RnnRnadeNetwork(rnade, rec, new float[rec], Array.Empty<float>(), new float[rec], new float[rec], new float[rec * 3], Array.Empty<float>());
        var bytes = new Models.RnnRnade.RnnRnadeModel(net, ColumnStandardizer.Identity(1)).ToBytes();
        Assert.Contains("exceed the payload", Assert.Throws<InvalidModelFileException>(() => SequenceDensityModel.FromBytes(bytes)).Message);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static List<(string, WeakReference)> UseAndForget(byte[] bytes, SequenceBatch data)
    {
        var model = SequenceDensityModel.FromBytes(bytes);
        model.LogDensity(data);
        model.FrameLogDensity(data.Select(new[] { 0 }), new float[data.Length(0)]);
        Parallel.For(0, 4, _ => model.LogDensity(data.Select(new[] { 1, 2, 3 })));
        model.Sample(5, 4, 1);
        var references = new List<(string, WeakReference)> { ("the model", new WeakReference(model)) };
        for (var type = model.GetType(); type is not null && type != typeof(object); type = type.BaseType)
            foreach (var field in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
                if (!field.FieldType.IsValueType && field.GetValue(model) is { } value && value is not string)
                    references.Add(($"field {type.Name}.{field.Name}", new WeakReference(value)));
        return references;
    }

    /// <summary>Loads from bytes: only <see cref="InvalidModelFileException"/>, under a second, allocation under 10× the
    /// file + 1 MB. A model that loads must score <paramref name="score"/> and sample without NaN. True if it loaded.</summary>
    private static bool Load(string what, byte[] bytes, int originalLength, SequenceBatch? score)
    {
        long budget = 10L * Math.Max(bytes.Length, originalLength) + (1 << 20);
        var clock = Stopwatch.StartNew();
        long before = GC.GetAllocatedBytesForCurrentThread();
        SequenceDensityModel? model = null;
        Exception? error = null;
        try { model = SequenceDensityModel.FromBytes(bytes); }
        catch (Exception e) { error = e; }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(clock.Elapsed < TimeBounds.Within(1), $"{what}: loading took {clock.Elapsed}");
        Assert.True(allocated < budget, $"{what}: loading allocated {allocated:N0} bytes (budget {budget:N0})");
        if (error is not null)
        {
            Assert.True(error is InvalidModelFileException, $"{what}: {error.GetType().Name} instead of InvalidModelFileException: {error}");
            return false;
        }
        Assert.True(score is not null, $"{what}: a damaged file loaded without error");
        var input = score!;
        if (model!.FrameSize != input.FrameSize)
        {
            var frames = new float[input.TotalFrames * model.FrameSize];
            input = new SequenceBatch(frames, input.Offsets[..(input.Count + 1)], model.FrameSize);
        }
        Assert.DoesNotContain(model.LogDensity(input), float.IsNaN);
        var sampling = Record.Exception(() => Assert.DoesNotContain(model.Sample(2, 3, 1).Values, float.IsNaN));
        Assert.True(sampling is null, $"{what}: loaded but cannot sample: {sampling?.Message}");
        return true;
    }
}
