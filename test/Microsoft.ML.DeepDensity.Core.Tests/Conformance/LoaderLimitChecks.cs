using System.Buffers.Binary;
using System.Diagnostics;
using Microsoft.ML.DeepDensity.Persistence;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>
/// Files that could hurt the reader by their size: a valid header followed by endless bytes, and payloads above the
/// documented limit <see cref="DeepDensityEnvironment.MaxModelFileBytes"/>. Serial: the limit is process-wide.
/// </summary>
[Collection(EngineSettingsCollection.Name)]
public class LoaderLimitChecks
{
    /// <summary>
    /// A stream with a valid header of this kind and endless zeros: a declared length above the limit is rejected before
    /// any payload byte is read; one at the limit is read in chunks up to the declared length and then rejected (checksum),
    /// with memory bounded by the declared length — never an <see cref="OutOfMemoryException"/> or a hang.
    /// </summary>
    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void AValidHeaderFollowedByEndlessZerosIsRejectedWithBoundedMemory(string name)
    {
        var parts = ModelFileParts.Parse(ModelCases.Fitted(name).Model.ToBytes());
        DeclaredPayloadsAboveTheLimitAreRefusedUnread(parts, s => DensityModel.Load(s));
        APayloadAtTheLimitIsReadToItsLengthAndRefused(parts, s => DensityModel.Load(s));
    }

    /// <summary>The limit is a setting, not a silent cap: a model above it is refused by both loaders with a message
    /// naming the setting, and loads once the setting is raised.</summary>
    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void AModelAboveTheFileSizeLimitIsRefusedByNameAndLoadsWhenTheLimitIsRaised(string name)
    {
        var bytes = ModelCases.Fitted(name).Model.ToBytes();
        long saved = DeepDensityEnvironment.MaxModelFileBytes;
        try
        {
            DeepDensityEnvironment.MaxModelFileBytes = ModelFileParts.Parse(bytes).Payload.Length - 1;
            Assert.Contains("MaxModelFileBytes", Assert.Throws<InvalidModelFileException>(() => DensityModel.FromBytes(bytes)).Message);
            Assert.Contains("MaxModelFileBytes", Assert.Throws<InvalidModelFileException>(() => DensityModel.Load(new MemoryStream(bytes))).Message);
            DeepDensityEnvironment.MaxModelFileBytes = ModelFileParts.Parse(bytes).Payload.Length;
            Assert.Equal(bytes, DensityModel.FromBytes(bytes).ToBytes());
            Assert.Equal(bytes, DensityModel.Load(new MemoryStream(bytes)).ToBytes());
        }
        finally { DeepDensityEnvironment.MaxModelFileBytes = saved; }
        Assert.Throws<ArgumentOutOfRangeException>(() => DeepDensityEnvironment.MaxModelFileBytes = 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => DeepDensityEnvironment.MaxModelFileBytes = ModelFile.MaxPayloadLength + 1);
    }

    /// <summary>Sequence models share the container: the same endless-zeros and file-size-limit checks through
    /// <see cref="SequenceDensityModel.Load"/> and <see cref="SequenceDensityModel.FromBytes"/>.</summary>
    [Theory, MemberData(nameof(SequenceModelCases.Names), MemberType = typeof(SequenceModelCases))]
    public void SequenceModelsRejectEndlessZerosAndFilesAboveTheLimitByName(string name)
    {
        var bytes = SequenceModelCases.Get(name).FitStandard().ToBytes();
        var parts = ModelFileParts.Parse(bytes);
        DeclaredPayloadsAboveTheLimitAreRefusedUnread(parts, s => SequenceDensityModel.Load(s));
        APayloadAtTheLimitIsReadToItsLengthAndRefused(parts, s => SequenceDensityModel.Load(s));
        long saved = DeepDensityEnvironment.MaxModelFileBytes;
        try
        {
            DeepDensityEnvironment.MaxModelFileBytes = parts.Payload.Length - 1;
            Assert.Contains("MaxModelFileBytes", Assert.Throws<InvalidModelFileException>(() => SequenceDensityModel.FromBytes(bytes)).Message);
            DeepDensityEnvironment.MaxModelFileBytes = parts.Payload.Length;
            Assert.Equal(bytes, SequenceDensityModel.Load(new MemoryStream(bytes)).ToBytes());
        }
        finally { DeepDensityEnvironment.MaxModelFileBytes = saved; }
    }

    /// <summary>With the limit at 4 MiB, a header declaring exactly that followed by endless zeros is read in chunks to the
    /// declared length and the checksum, then refused, in memory bounded by the declared length.</summary>
    private static void APayloadAtTheLimitIsReadToItsLengthAndRefused(ModelFileParts parts, Action<Stream> load)
    {
        long saved = DeepDensityEnvironment.MaxModelFileBytes;
        try
        {
            const int limit = 4 << 20;
            DeepDensityEnvironment.MaxModelFileBytes = limit;
            var stream = new EndlessStream(Header(parts, limit));
            var clock = Stopwatch.StartNew();
            var (error, allocated) = Measure(() => load(stream));
            Assert.IsType<InvalidModelFileException>(error);
            Assert.Equal(limit + 4, stream.PayloadBytesRead); // exactly the declared payload and the checksum
            Assert.True(allocated < 2L * limit + (1 << 20), $"allocated {allocated:N0} bytes for a {limit:N0}-byte declared payload");
            Assert.True(clock.Elapsed < TimeBounds.Within(2), $"took {clock.Elapsed}");
        }
        finally { DeepDensityEnvironment.MaxModelFileBytes = saved; }
    }

    /// <summary>Headers declaring payloads above the limit, followed by endless zeros: refused naming the setting before
    /// any payload byte is read, in under 1 MB.</summary>
    private static void DeclaredPayloadsAboveTheLimitAreRefusedUnread(ModelFileParts parts, Action<Stream> load)
    {
        foreach (ulong declared in new ulong[] { (ulong)ModelFile.MaxPayloadLength, int.MaxValue, 1UL << 31, (ulong)DeepDensityEnvironment.MaxModelFileBytes + 1 })
        {
            var stream = new EndlessStream(Header(parts, declared));
            var (error, allocated) = Measure(() => load(stream));
            Assert.IsType<InvalidModelFileException>(error);
            Assert.Contains("MaxModelFileBytes", error.Message);
            Assert.True(stream.PayloadBytesRead == 0, $"declared {declared}: {stream.PayloadBytesRead} payload bytes were read before rejecting");
            Assert.True(allocated < 1 << 20, $"declared {declared}: allocated {allocated:N0} bytes");
        }
    }

    private static byte[] Header(ModelFileParts parts, ulong declaredLength)
    {
        var file = (parts with { Payload = Array.Empty<byte>() }).Build(declaredLength);
        return file[..^4]; // drop the checksum: the endless bytes follow the length field
    }

    private static (Exception Error, long Allocated) Measure(Action action)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        Exception? error = null;
        try { action(); }
        catch (Exception e) { error = e; }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(error is not null, "the load succeeded");
        return (error!, allocated);
    }

    /// <summary>A header, then zeros forever; counts the bytes handed out after the header.</summary>
    private sealed class EndlessStream(byte[] header) : Stream
    {
        private long _position;
        public long PayloadBytesRead => Math.Max(0, _position - header.Length);
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count)
        {
            for (int i = 0; i < count; i++)
                buffer[offset + i] = _position + i < header.Length ? header[_position + i] : (byte)0;
            _position += count;
            return count;
        }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
