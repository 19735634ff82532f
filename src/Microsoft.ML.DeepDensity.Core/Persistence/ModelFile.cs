using System.Buffers.Binary;
using System.Text;

namespace Microsoft.ML.DeepDensity.Persistence;

/// <summary>A saved model that cannot be read: corrupt, truncated, of an unknown kind or an unsupported version.</summary>
public sealed class InvalidModelFileException : IOException
{
    public InvalidModelFileException(string message) : base(message) { }
    public InvalidModelFileException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>
/// The DeepDensity binary model format (little-endian):
/// <code>
/// "DDML" | u16 format version | u8 kind length | kind (ASCII) | u16 payload version | u64 payload length | payload | u32 CRC-32 of all preceding bytes
/// </code>
/// Reading never allocates more than the bytes actually present, checks the checksum before decoding, and turns
/// every inconsistency into <see cref="InvalidModelFileException"/>.
/// </summary>
public static class ModelFile
{
    /// <summary>Current container version.</summary>
    public const ushort FormatVersion = 1;
    private static ReadOnlySpan<byte> Magic => "DDML"u8;
    private const int MaxKindLength = 64;
    /// <summary>Upper bound on a model payload (2 GiB − 1).</summary>
    public const long MaxPayloadLength = int.MaxValue - 64;

    internal static void Write(Stream stream, DensityModelBase model)
    {
        var payload = new ModelWriter();
        model.WritePayload(payload);
        byte[] body = payload.ToArray();
        byte[] kind = Encoding.ASCII.GetBytes(model.ModelKind);
        if (kind.Length is 0 or > MaxKindLength) throw new InvalidOperationException("Model kind name must be 1–64 ASCII characters.");

        var header = new byte[4 + 2 + 1 + kind.Length + 2 + 8];
        Magic.CopyTo(header);
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(4), FormatVersion);
        header[6] = (byte)kind.Length;
        kind.CopyTo(header, 7);
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(7 + kind.Length), checked((ushort)model.PayloadVersion));
        BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(9 + kind.Length), (ulong)body.Length);
        uint crc = Crc32.Append(Crc32.Append(0, header), body);
        var tail = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(tail, crc);
        stream.Write(header);
        stream.Write(body);
        stream.Write(tail);
    }

    internal static DensityModelBase Read(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        // Read the fixed part, then exactly the declared payload length, in bounded chunks: a forged length on a
        // short stream fails with "truncated" after reading what is there, never a huge up-front allocation.
        var buffer = new MemoryStream();
        var prefix = ReadExactly(stream, 7, "header");
        buffer.Write(prefix);
        int kindLength = prefix[6];
        var rest = ReadExactly(stream, kindLength + 2 + 8, "header");
        buffer.Write(rest);
        CheckMagicAndVersion(prefix);
        ulong payloadLength = BinaryPrimitives.ReadUInt64LittleEndian(rest.AsSpan(kindLength + 2));
        if (payloadLength > MaxPayloadLength) throw new InvalidModelFileException($"Corrupt model file: declared payload length {payloadLength} is impossible.");
        long remaining = (long)payloadLength + 4;
        var chunk = new byte[(int)Math.Min(remaining, 1 << 16)];
        while (remaining > 0)
        {
            int want = (int)Math.Min(remaining, chunk.Length);
            int got = stream.ReadAtLeast(chunk.AsSpan(0, want), want, throwOnEndOfStream: false);
            if (got < want) throw new InvalidModelFileException("Truncated model file: the stream ended inside the payload.");
            buffer.Write(chunk, 0, got);
            remaining -= got;
        }
        return Read(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
    }

    internal static DensityModelBase Read(ReadOnlySpan<byte> file)
    {
        if (file.Length < 7) throw new InvalidModelFileException("Truncated model file: shorter than the header.");
        CheckMagicAndVersion(file);
        int kindLength = file[6];
        int fixedLength = 7 + kindLength + 2 + 8;
        if (file.Length < fixedLength + 4) throw new InvalidModelFileException("Truncated model file: shorter than the header.");
        ulong payloadLength = BinaryPrimitives.ReadUInt64LittleEndian(file.Slice(7 + kindLength + 2));
        if (payloadLength > (ulong)(file.Length - fixedLength - 4))
            throw new InvalidModelFileException($"Truncated model file: the header declares {payloadLength} payload bytes but only {file.Length - fixedLength - 4} are present.");
        int total = fixedLength + (int)payloadLength;
        if (file.Length > total + 4) throw new InvalidModelFileException("Corrupt model file: unexpected bytes after the checksum.");
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(file.Slice(total));
        uint actual = Crc32.Append(0, file[..total]);
        if (stored != actual) throw new InvalidModelFileException("Corrupt model file: checksum mismatch (the file was modified or damaged).");

        string kind;
        try { kind = Encoding.ASCII.GetString(file.Slice(7, kindLength)); }
        catch (Exception e) { throw new InvalidModelFileException("Corrupt model file: unreadable model kind.", e); }
        int payloadVersion = BinaryPrimitives.ReadUInt16LittleEndian(file.Slice(7 + kindLength));
        if (!ModelRegistry.TryGetReader(kind, out var reader))
            throw new InvalidModelFileException($"Unknown model kind '{kind}' (known: {string.Join(", ", ModelRegistry.Kinds)}).");
        var payload = new ModelReader(file.Slice(fixedLength, (int)payloadLength).ToArray(), kind);
        DensityModelBase model;
        try { model = reader(payload, payloadVersion); }
        catch (InvalidModelFileException) { throw; }
        // Catch-all: whatever a payload reader trips over on a damaged payload (a missed bounds check, an invalid
        // argument to a constructor, ...) surfaces as one clear exception type, never as a crash of the caller.
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidModelFileException($"Corrupt {kind} model: {e.Message}", e);
        }
        payload.EnsureConsumed();
        if (model is null || model.ModelKind != kind)
            throw new InvalidModelFileException($"The reader registered for '{kind}' returned a {model?.ModelKind ?? "null"} model.");
        return model;
    }

    private static void CheckMagicAndVersion(ReadOnlySpan<byte> prefix)
    {
        if (!prefix[..4].SequenceEqual(Magic)) throw new InvalidModelFileException("Not a DeepDensity model file (bad magic bytes).");
        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(prefix[4..]);
        if (version != FormatVersion)
            throw new InvalidModelFileException($"Unsupported model file format version {version} (this library reads version {FormatVersion}).");
    }

    private static byte[] ReadExactly(Stream s, int count, string what)
    {
        var b = new byte[count];
        if (s.ReadAtLeast(b, count, throwOnEndOfStream: false) < count)
            throw new InvalidModelFileException($"Truncated model file: the stream ended inside the {what}.");
        return b;
    }
}

/// <summary>CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320).</summary>
internal static class Crc32
{
    private static readonly uint[] Table = BuildTable();

    private static uint[] BuildTable()
    {
        var t = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }

    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        uint c = ~crc;
        foreach (byte b in data) c = Table[(c ^ b) & 0xFF] ^ (c >> 8);
        return ~c;
    }
}
