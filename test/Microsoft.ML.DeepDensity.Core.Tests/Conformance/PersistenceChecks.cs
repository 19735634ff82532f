using System.Buffers.Binary;
using System.Diagnostics;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Randomness;
using static Microsoft.ML.DeepDensity.Tests.Conformance.ConformanceAssert;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>Save → load is exact; damaged files fail fast and cleanly with <see cref="InvalidModelFileException"/>.</summary>
public class PersistenceChecks
{
    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void SaveThenLoadGivesIdenticalBytesScoresAndSamples(string name)
    {
        var f = ModelCases.Fitted(name);
        var bytes = f.Model.ToBytes();
        var fromBytes = DensityModel.FromBytes(bytes);
        var fromStream = DensityModel.Load(new MemoryStream(bytes));
        foreach (var loaded in new[] { fromBytes, fromStream })
        {
            Assert.Equal(f.Model.GetType(), loaded.GetType());
            Assert.Equal(f.Model.Dimension, loaded.Dimension);
            Assert.Equal(f.Model.DensityKind, loaded.DensityKind);
            Assert.Equal(f.Model.InputDomain, loaded.InputDomain);
            Assert.Equal(bytes, loaded.ToBytes());
            BitIdentical(f.Model.LogDensity(f.Data), loaded.LogDensity(f.Data), "log-densities after save/load");
            BitIdentical(f.Model.Sample(700, 4).AsSpan(), loaded.Sample(700, 4).AsSpan(), "samples after save/load");
        }
        // A stream that hands out a few bytes per read (network, pipes) and cannot seek.
        Assert.Equal(bytes, DensityModel.Load(new TrickleStream(bytes)).ToBytes());
        Assert.Throws<InvalidModelFileException>(() => DensityModel.Load(new TrickleStream(bytes[..^1])));
        // Two models back to back in one stream (e.g. embedded in a larger file) load one after the other.
        var other = f.Case.Fit(new FitRequest(f.Data, 2));
        var stream = new MemoryStream();
        stream.Write([7, 7, 7]);
        f.Model.Save(stream);
        other.Save(stream);
        stream.Position = 3;
        Assert.Equal(bytes, DensityModel.Load(stream).ToBytes());
        Assert.Equal(other.ToBytes(), DensityModel.Load(stream).ToBytes());
        Assert.Equal(stream.Length, stream.Position);
        Assert.Throws<InvalidModelFileException>(() => DensityModel.Load(stream)); // nothing left
        // Loading as the wrong type is a clear error too.
        Assert.Throws<InvalidModelFileException>(() => DensityModel.Load<WrongType>(new MemoryStream(bytes)));
    }

    /// <summary>
    /// 1,000 damaged variants of the container (truncations, byte flips, versions, kinds, forged lengths, garbage):
    /// every one is rejected with <see cref="InvalidModelFileException"/> by both loaders, within a second, without a
    /// large allocation.
    /// </summary>
    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void ThousandDamagedFilesAreAllRejectedCleanly(string name)
    {
        var file = ModelCases.Fitted(name).Model.ToBytes();
        var variants = ContainerVariants(file, new RandomStream(0xC0FFEE)).ToList();
        Assert.Equal(1000, variants.Count);
        foreach (var (what, bytes) in variants)
        {
            Assert.Equal(Outcome.Rejected, Load(what, bytes, fromStream: false, file.Length));
            if (bytes.Length > file.Length && bytes.AsSpan(0, file.Length).SequenceEqual(file))
            {
                // Documented: Load(Stream) reads exactly one model and leaves the stream just after it (models can be
                // embedded in larger streams); only FromBytes insists that the bytes are exactly one model.
                var stream = new MemoryStream(bytes);
                Assert.Equal(file, DensityModel.Load(stream).ToBytes());
                Assert.Equal(file.Length, stream.Position);
            }
            else Assert.Equal(Outcome.Rejected, Load(what, bytes, fromStream: true, file.Length));
        }
    }

    /// <summary>
    /// 1,000 damaged payloads wrapped in a valid checksum, which reach the model's own payload reader: truncated or
    /// padded payloads must be rejected; forged integers and flipped bytes must be rejected or give a model that scores
    /// without NaN (a flipped weight can be a valid model) — never a crash, a hang or a huge allocation.
    /// </summary>
    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void ThousandDamagedPayloadsWithValidChecksumsFailCleanlyOrLoadUsableModels(string name)
    {
        var f = ModelCases.Fitted(name);
        var file = f.Model.ToBytes();
        var parts = ModelFileParts.Parse(file);
        Assert.Equal(file, parts.Build()); // the surgery itself is exact
        var rng = new RandomStream(0xBADF11E);
        var payload = parts.Payload;
        int p = payload.Length;
        int strict = 0, lenient = 0, loaded = 0;
        var rows = f.Data.Slice(0, 30);

        void Strict(string what, byte[] bytes) { strict++; Assert.Equal(Outcome.Rejected, Load(what, bytes, false, file.Length)); }
        void Lenient(string what, byte[] bytes)
        {
            lenient++;
            if (Load(what, bytes, false, file.Length, rows) == Outcome.LoadedAndScored) loaded++;
        }

        // Truncated and padded payloads (200 + 3).
        for (int i = 0; i < 200; i++)
        {
            int length = (int)((long)i * p / 200);
            Strict($"payload truncated to {length} bytes", parts.WithPayload(payload[..length]).Build());
        }
        foreach (int extra in new[] { 1, 4, 100 })
            Strict($"payload padded by {extra} bytes", parts.WithPayload([.. payload, .. new byte[extra]]).Build());

        // Forged integers: every aligned slot of the first 64 (where the sizes and array lengths live), then random slots.
        int[] forged = { -1, 0, 1, 2, int.MaxValue, int.MinValue, 1 << 20, 0x7FC00000 /* NaN bits */, 0x7F800000 /* +inf bits */ };
        int slots = Math.Min(64, p / 4);
        for (int s = 0; s < slots; s++)
            foreach (int v in forged)
                Lenient($"int {v} at payload offset {4 * s}", ForgeInt(payload, 4 * s, v));
        while (strict + lenient < 1000 - 250)
        {
            int offset = rng.NextInt(Math.Max(1, p - 3));
            int v = forged[rng.NextInt(forged.Length)];
            Lenient($"int {v} at payload offset {offset}", ForgeInt(payload, offset, v));
        }
        // Random byte flips (1–4 bytes).
        while (strict + lenient < 1000)
        {
            int flips = 1 + rng.NextInt(4);
            var copy = Flip(payload, flips, rng);
            Lenient($"{flips} flipped payload bytes", parts.WithPayload(copy).Build());
        }
        Assert.Equal(1000, strict + lenient);
        // Most forgeries hit sizes or finiteness checks; a few land in weights and give valid (different) models.
        Assert.True(loaded < lenient, $"all {lenient} forged payloads loaded: the payload reader checks nothing");

        byte[] ForgeInt(byte[] source, int offset, int value)
        {
            var copy = (byte[])source.Clone();
            BinaryPrimitives.WriteInt32LittleEndian(copy.AsSpan(offset), value);
            return parts.WithPayload(copy).Build();
        }
    }

    internal enum Outcome { Rejected, LoadedAndScored }

    /// <summary>Loads once, asserting: only <see cref="InvalidModelFileException"/>, under a second, allocation under 10× the file + 1 MB;
    /// a model that loads must score and sample without NaN or exception.</summary>
    private static Outcome Load(string what, byte[] bytes, bool fromStream, int originalLength, Data.RowMatrix? scoreRows = null)
    {
        long budget = 10L * Math.Max(bytes.Length, originalLength) + (1 << 20);
        var stream = fromStream ? new MemoryStream(bytes, writable: false) : null;
        var clock = Stopwatch.StartNew();
        long before = GC.GetAllocatedBytesForCurrentThread();
        DensityModel? model = null;
        Exception? error = null;
        try { model = stream is null ? DensityModel.FromBytes(bytes) : DensityModel.Load(stream); }
        catch (Exception e) { error = e; }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        clock.Stop();
        string path = fromStream ? "stream" : "bytes";
        Assert.True(clock.Elapsed < TimeBounds.Within(1), $"{what} ({path}): loading took {clock.Elapsed}");
        Assert.True(allocated < budget, $"{what} ({path}): loading allocated {allocated:N0} bytes (budget {budget:N0})");
        if (error is not null)
        {
            Assert.True(error is InvalidModelFileException, $"{what} ({path}): {error.GetType().Name} instead of InvalidModelFileException: {error}");
            Assert.False(string.IsNullOrWhiteSpace(error.Message));
            return Outcome.Rejected;
        }
        Assert.True(scoreRows is not null, $"{what} ({path}): a damaged file loaded without error");
        // A forged-but-consistent payload is a valid model: it must score like one (no NaN, no exception).
        var rows = new Data.RowMatrix(scoreRows!.Rows, model!.Dimension);
        if (model.Dimension == scoreRows.Columns) scoreRows.AsSpan().CopyTo(rows.AsSpan());
        // A forged setting can turn the file into a valid model of the other input domain (a raw Gaussian RBM whose visible
        // type reads Bernoulli): score it with rows of its own domain.
        if (model.InputDomain == InputDomain.Binary)
            foreach (ref var v in rows.AsSpan()) v = v > 0.5f ? 1f : 0f;
        var ld = model.LogDensity(rows);
        Assert.DoesNotContain(ld, float.IsNaN);
        // ... and sample like one: the loader checks every invariant the sampler relies on (issue 13: biases of 1e30
        // loaded but could not sample). Bounded settings keep this quick whatever was forged.
        var sampling = Record.Exception(() => Assert.DoesNotContain(model.Sample(2, 1).Values, float.IsNaN));
        Assert.True(sampling is null, $"{what} ({path}): loaded but cannot sample: {sampling?.Message}");
        return Outcome.LoadedAndScored;
    }

    /// <summary>Exactly 1,000 damaged container variants.</summary>
    private static IEnumerable<(string, byte[])> ContainerVariants(byte[] file, RandomStream rng)
    {
        var parts = ModelFileParts.Parse(file);
        int length = file.Length;
        var list = new List<(string, byte[])>();
        // Truncations at 300 offsets spread over the whole file, including inside the header.
        var cuts = new SortedSet<int> { 0, 1, 4, 6, 7, parts.PayloadOffset - 8, parts.PayloadOffset, length - 4, length - 1 };
        for (int i = 0; cuts.Count < Math.Min(300, length); i++) cuts.Add((int)((long)i * 7919 % length));
        foreach (int cut in cuts) list.Add(($"truncated to {cut} bytes", file[..cut]));
        // Versions.
        foreach (ushort v in new ushort[] { 0, ModelFile.FormatVersion + 1, ushort.MaxValue })
        {
            var copy = (byte[])file.Clone();
            BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(4), v);
            list.Add(($"format version {v}", copy));
            list.Add(($"format version {v} with a valid CRC", (parts with { FormatVersion = v }).Build()));
        }
        foreach (ushort v in new ushort[] { 0, (ushort)(parts.PayloadVersion + 1), ushort.MaxValue })
            list.Add(($"payload version {v} with a valid CRC", (parts with { PayloadVersion = v }).Build()));
        // Kinds: unknown ones, and every other registered kind reading this payload.
        var kinds = new List<string> { "", "Nope", parts.Kind.ToLowerInvariant(), parts.Kind + "X", new string('K', 64) };
        kinds.AddRange(ModelRegistry.Kinds.Where(k => k != parts.Kind));
        foreach (var k in kinds) list.Add(($"model kind '{k}' with a valid CRC", (parts with { Kind = k }).Build()));
        foreach (int kl in new[] { 0, 1, parts.Kind.Length - 1, parts.Kind.Length + 1, 255 })
        {
            var copy = (byte[])file.Clone();
            copy[6] = (byte)kl;
            list.Add(($"kind length {kl}", copy));
        }
        // Forged payload lengths, with the checksum left stale or recomputed over the new layout.
        int lengthOffset = parts.PayloadOffset - 8;
        foreach (ulong forged in new ulong[] { 0, (ulong)parts.Payload.Length - 1, (ulong)parts.Payload.Length + 1, 1UL << 31, 1UL << 40, ulong.MaxValue, (ulong)ModelFile.MaxPayloadLength })
        {
            var copy = (byte[])file.Clone();
            BinaryPrimitives.WriteUInt64LittleEndian(copy.AsSpan(lengthOffset), forged);
            list.Add(($"payload length forged to {forged}", copy));
            list.Add(($"payload length forged to {forged} with a valid CRC", parts.Build(forged)));
        }
        // Garbage.
        list.Add(("empty file", Array.Empty<byte>()));
        list.Add(("magic only", "DDML"u8.ToArray()));
        list.Add(("zeros", new byte[length]));
        var garbage = new byte[length];
        for (int i = 0; i < length; i++) garbage[i] = (byte)rng.NextInt(256);
        list.Add(("random bytes", garbage));
        list.Add(("one trailing byte", [.. file, 0]));
        list.Add(("100 trailing bytes", [.. file, .. new byte[100]]));
        list.Add(("file twice", [.. file, .. file]));
        // The rest: 1–4 random byte flips anywhere (the CRC, or an earlier header check, must catch every one).
        while (list.Count < 1000)
        {
            int flips = 1 + rng.NextInt(4);
            var copy = Flip(file, flips, rng);
            list.Add(($"{flips} flipped bytes", copy));
        }
        return list.Take(1000);
    }

    /// <summary>XORs <paramref name="flips"/> distinct bytes with non-zero masks (so the copy always differs).</summary>
    private static byte[] Flip(byte[] source, int flips, RandomStream rng)
    {
        var copy = (byte[])source.Clone();
        var used = new HashSet<int>();
        while (used.Count < Math.Min(flips, source.Length))
        {
            int at = rng.NextInt(source.Length);
            if (used.Add(at)) copy[at] ^= (byte)(1 + rng.NextInt(255));
        }
        return copy;
    }

    /// <summary>Read-only, non-seekable, at most 7 bytes per read.</summary>
    private sealed class TrickleStream(byte[] data) : Stream
    {
        private int _pos;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count)
        {
            int n = Math.Min(Math.Min(count, 7), data.Length - _pos);
            Array.Copy(data, _pos, buffer, offset, n);
            _pos += n;
            return n;
        }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private sealed class WrongType : DensityModel
    {
        public override string ModelKind => "WrongType";
        public override int Dimension => 1;
        public override DensityKind DensityKind => DensityKind.Exact;
        protected internal override void WritePayload(ModelWriter writer) { }
        protected override void LogDensityCore(ReadOnlySpan<float> rows, int count, Span<float> logDensity, Span<float> standardError) { }
        protected override void SampleCore(int count, ulong seed, Span<float> destination) { }
    }
}
