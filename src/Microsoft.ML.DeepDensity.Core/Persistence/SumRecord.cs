using System.Buffers.Binary;

namespace Microsoft.ML.DeepDensity.Persistence;

/// <summary>
/// The byte form of mergeable sums that workers ship to a driver (<see cref="Training.GradientPartial"/>, Deep GMM's EM
/// statistics), little-endian: u32 magic | u16 version (1) | i32 tag | i64 count | f64 scalar | i32 length |
/// f64 × length | u32 CRC-32 of all preceding bytes. A reader states the length it expects for the tag, so a record is
/// checked before anything is allocated and nothing beyond that length is; every problem is an
/// <see cref="InvalidDataException"/> naming the record's kind.
/// </summary>
internal static class SumRecord
{
    private const ushort FormatVersion = 1;
    private const int HeaderBytes = 4 + 2 + 4 + 8 + 8 + 4;

    public static byte[] Write(uint magic, int tag, long count, double scalar, ReadOnlySpan<double> values)
    {
        var bytes = new byte[checked(HeaderBytes + 8 * values.Length + 4)];
        var s = bytes.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(s, magic);
        BinaryPrimitives.WriteUInt16LittleEndian(s[4..], FormatVersion);
        BinaryPrimitives.WriteInt32LittleEndian(s[6..], tag);
        BinaryPrimitives.WriteInt64LittleEndian(s[10..], count);
        BinaryPrimitives.WriteDoubleLittleEndian(s[18..], scalar);
        BinaryPrimitives.WriteInt32LittleEndian(s[26..], values.Length);
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteDoubleLittleEndian(s[(HeaderBytes + 8 * i)..], values[i]);
        BinaryPrimitives.WriteUInt32LittleEndian(s[^4..], Crc32.Append(0, s[..^4]));
        return bytes;
    }

    /// <summary>Reads one record that must fill <paramref name="bytes"/> exactly. <paramref name="expectedLength"/> maps the
    /// tag to the number of values it must hold, or returns a problem (an unknown tag, another model).</summary>
    public static (int Tag, long Count, double Scalar, double[] Values) Read(ReadOnlySpan<byte> bytes, uint magic, string what,
        Func<int, (int Length, string? Problem)> expectedLength)
    {
        if (bytes.Length < HeaderBytes + 4) throw Corrupt(what, FormattableString.Invariant($"{bytes.Length} bytes are shorter than the {HeaderBytes + 4}-byte header and checksum (truncated)"));
        if (BinaryPrimitives.ReadUInt32LittleEndian(bytes) != magic) throw Corrupt(what, "bad magic (not this kind of record)");
        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(bytes[4..]);
        if (version != FormatVersion) throw Corrupt(what, FormattableString.Invariant($"format version {version} is not supported (expected {FormatVersion})"));
        int tag = BinaryPrimitives.ReadInt32LittleEndian(bytes[6..]);
        var (expected, problem) = expectedLength(tag);
        if (problem is not null) throw Corrupt(what, problem);
        long count = BinaryPrimitives.ReadInt64LittleEndian(bytes[10..]);
        if (count < 0) throw Corrupt(what, FormattableString.Invariant($"negative count {count}"));
        int length = BinaryPrimitives.ReadInt32LittleEndian(bytes[26..]);
        if (length != expected) throw Corrupt(what, FormattableString.Invariant($"it holds {length} values where {expected} are expected (a record of another model?)"));
        long total = HeaderBytes + 8L * length + 4;
        if (bytes.Length != total) throw Corrupt(what, FormattableString.Invariant($"{bytes.Length} bytes where {length} values take {total} ({(bytes.Length < total ? "truncated" : "trailing bytes")})"));
        if (Crc32.Append(0, bytes[..^4]) != BinaryPrimitives.ReadUInt32LittleEndian(bytes[^4..])) throw Corrupt(what, "checksum mismatch");
        var values = new double[length];
        for (int i = 0; i < length; i++) values[i] = BinaryPrimitives.ReadDoubleLittleEndian(bytes[(HeaderBytes + 8 * i)..]);
        return (tag, count, BinaryPrimitives.ReadDoubleLittleEndian(bytes[18..]), values);
    }

    public static InvalidDataException Corrupt(string what, string problem) => new($"Invalid {what}: {problem}.");
}
