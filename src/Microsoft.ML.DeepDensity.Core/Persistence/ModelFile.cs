using System.Buffers.Binary;
using System.Text;

namespace Microsoft.ML.DeepDensity.Persistence;

/// <summary>A saved model that cannot be read: corrupt, truncated, of an unknown kind or an unsupported version.</summary>
public sealed class InvalidModelFileException : IOException
{
    /// <summary>A model file that cannot be read, for the reason in <paramref name="message"/>.</summary>
    public InvalidModelFileException(string message) : base(message) { }
    /// <summary>A model file that cannot be read, for the reason in <paramref name="message"/>, found through <paramref name="inner"/> (e.g. a truncated stream).</summary>
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
    /// <summary>Absolute upper bound on a model payload: the whole file (header, payload, checksum) must fit in one
    /// .NET array. The working limit is the setting <see cref="DeepDensityEnvironment.MaxModelFileBytes"/>.</summary>
    public const long MaxPayloadLength = 0x7FFFFFC7 /* Array.MaxLength */ - (7 + MaxKindLength + 2 + 8) - 4;
    private const int ChunkBytes = 1 << 16;

    internal static void Write(Stream stream, DensityModelBase model)
    {
        var payload = new ModelWriter();
        model.WritePayload(payload);
        byte[] body = payload.ToArray();
        if (body.Length > MaxPayloadLength) throw new InvalidOperationException(FormattableString.Invariant($"The model's payload of {body.Length} bytes exceeds the format's limit of {MaxPayloadLength}."));
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

    /// <summary>The length of the file <see cref="Write"/> writes for <paramref name="model"/>: the payload is written
    /// into a stream that only counts it, so nothing of the model's size is allocated.</summary>
    internal static long Length(DensityModelBase model)
    {
        var counter = new CountingStream();
        model.WritePayload(new ModelWriter(counter));
        return 4 + 2 + 1 + Encoding.ASCII.GetByteCount(model.ModelKind) + 2 + 8 + counter.Length + 4;
    }

    internal static DensityModelBase Read(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        // Read the fixed part, check the declared payload length against the limit, then read exactly that many bytes
        // in chunks into a buffer that grows with what actually arrived: a forged length on a short (or endless) stream
        // fails with "truncated" (or a checksum mismatch) after at most the declared length, never a huge up-front
        // allocation, and never more than the limit.
        var prefix = ReadExactly(stream, 7, "header");
        int kindLength = prefix[6];
        var rest = ReadExactly(stream, kindLength + 2 + 8, "header");
        CheckMagicAndVersion(prefix);
        ulong payloadLength = BinaryPrimitives.ReadUInt64LittleEndian(rest.AsSpan(kindLength + 2));
        CheckDeclaredLength(payloadLength);
        int headerLength = prefix.Length + rest.Length;
        int total = headerLength + (int)payloadLength + 4;
        var file = new byte[Math.Min(total, headerLength + ChunkBytes)];
        prefix.CopyTo(file, 0);
        rest.CopyTo(file, prefix.Length);
        int filled = headerLength;
        while (filled < total)
        {
            if (filled == file.Length) Array.Resize(ref file, (int)Math.Min(total, 2L * file.Length));
            int got = stream.Read(file, filled, Math.Min(file.Length - filled, ChunkBytes));
            if (got <= 0) throw new InvalidModelFileException("Truncated model file: the stream ended inside the payload.");
            filled += got;
        }
        return Read(file.AsSpan(0, total));
    }

    private static void CheckDeclaredLength(ulong payloadLength)
    {
        long limit = DeepDensityEnvironment.MaxModelFileBytes; // ≤ MaxPayloadLength, so the file fits in one array
        if (payloadLength > (ulong)limit)
            throw new InvalidModelFileException(FormattableString.Invariant($"Model file too large: the header declares {payloadLength} payload bytes, more than the limit of {limit} (DeepDensityEnvironment.MaxModelFileBytes; raise it to load a legitimately larger model)."));
    }

    internal static DensityModelBase Read(ReadOnlySpan<byte> file)
    {
        if (file.Length < 7) throw new InvalidModelFileException("Truncated model file: shorter than the header.");
        CheckMagicAndVersion(file);
        int kindLength = file[6];
        int fixedLength = 7 + kindLength + 2 + 8;
        if (file.Length < fixedLength + 4) throw new InvalidModelFileException("Truncated model file: shorter than the header.");
        ulong payloadLength = BinaryPrimitives.ReadUInt64LittleEndian(file.Slice(7 + kindLength + 2));
        CheckDeclaredLength(payloadLength);
        if (payloadLength > (ulong)(file.Length - fixedLength - 4))
            throw new InvalidModelFileException(FormattableString.Invariant($"Truncated model file: the header declares {payloadLength} payload bytes but only {file.Length - fixedLength - 4} are present."));
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
        // argument to a constructor, ...) surfaces as one clear exception type, never as a crash of the caller. Not code
        // that could not be loaded: a file that passed its checksum is intact, and "Corrupt DeepGmm model: Could not load
        // file or assembly 'MathNet.Numerics'" (the library's DLL copied next to a program without its dependencies) sent
        // the user to the file instead of the deployment.
        catch (Exception e) when (e is not OutOfMemoryException && !IsMissingCode(e))
        {
            throw new InvalidModelFileException($"Corrupt {kind} model: {e.Message}", e);
        }
        payload.EnsureConsumed();
        if (model is null || model.ModelKind != kind)
            throw new InvalidModelFileException($"The reader registered for '{kind}' returned a {model?.ModelKind ?? "null"} model.");
        return model;
    }

    /// <summary>An assembly, type, member or native library the reader needs could not be loaded (missing from the
    /// deployment, or another version): the program's problem, reported as itself rather than as a corrupt model. No
    /// payload bytes can cause these: a reader reads from memory and loads no code by name.</summary>
    private static bool IsMissingCode(Exception e)
        => e is FileNotFoundException or FileLoadException or BadImageFormatException or TypeLoadException
            or MissingMemberException or TypeInitializationException;

    /// <summary>
    /// Runs the model's own payload reader on its payload and returns the reader's objection, or null when the model
    /// would load. Training ends with this, so that a fit never returns a model that saves but cannot be loaded: the
    /// loader's invariants are the one definition of a valid model.
    /// </summary>
    internal static string? LoaderRejection(DensityModelBase model)
    {
        if (!ModelRegistry.TryGetReader(model.ModelKind, out var reader)) return null;
        var writer = new ModelWriter();
        model.WritePayload(writer);
        var payload = new ModelReader(writer.ToArray(), model.ModelKind);
        try
        {
            reader(payload, model.PayloadVersion);
            payload.EnsureConsumed();
            return null;
        }
        catch (Exception e) when (e is not OutOfMemoryException) { return e.Message; }
    }

    /// <summary>Returns <paramref name="model"/> if its file would load; otherwise throws
    /// <see cref="Training.TrainingDivergedException"/> naming the broken invariant.</summary>
    internal static T EnsureTrainedModelLoadable<T>(T model) where T : DensityModelBase
    {
        if (LoaderRejection(model) is string problem)
            throw new Training.TrainingDivergedException(
                $"Training diverged: the fitted {model.ModelKind} model breaks an invariant of a valid model ({problem}), so it is not returned. " +
                "Data far from unit scale is a common cause (values beyond about 1e6 for a model that does not standardise its inputs, " +
                "such as IWAE; spreads below about 1e-35 or above 1e35 for one that does): rescale the data.");
        return model;
    }

    private static void CheckMagicAndVersion(ReadOnlySpan<byte> prefix)
    {
        if (!prefix[..4].SequenceEqual(Magic)) throw new InvalidModelFileException("Not a DeepDensity model file (bad magic bytes).");
        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(prefix[4..]);
        if (version != FormatVersion)
            throw new InvalidModelFileException(FormattableString.Invariant($"Unsupported model file format version {version} (this library reads version {FormatVersion})."));
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
