using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace Microsoft.ML.DeepDensity.Persistence;

/// <summary>Little-endian writer for a model payload. Arrays are length-prefixed.</summary>
public sealed class ModelWriter
{
    private readonly Stream _stream;

    internal ModelWriter() : this(new MemoryStream()) { }

    /// <summary>A writer into <paramref name="stream"/> (e.g. one that only counts the bytes).</summary>
    internal ModelWriter(Stream stream) => _stream = stream;

    /// <summary>Writes a 32-bit integer (4 bytes, little-endian).</summary>
    public void WriteInt32(int value) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteInt32LittleEndian(b, value); _stream.Write(b); }
    /// <summary>Writes a 64-bit integer (8 bytes, little-endian).</summary>
    public void WriteInt64(long value) { Span<byte> b = stackalloc byte[8]; BinaryPrimitives.WriteInt64LittleEndian(b, value); _stream.Write(b); }
    /// <summary>Writes an unsigned 64-bit integer (8 bytes, little-endian), e.g. a seed.</summary>
    public void WriteUInt64(ulong value) { Span<byte> b = stackalloc byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(b, value); _stream.Write(b); }
    /// <summary>Writes a float32 (4 bytes, little-endian IEEE 754).</summary>
    public void WriteSingle(float value) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteSingleLittleEndian(b, value); _stream.Write(b); }
    /// <summary>Writes a float64 (8 bytes, little-endian IEEE 754).</summary>
    public void WriteDouble(double value) { Span<byte> b = stackalloc byte[8]; BinaryPrimitives.WriteDoubleLittleEndian(b, value); _stream.Write(b); }
    /// <summary>Writes a flag as one byte, 0 or 1 (<see cref="ModelReader.ReadBoolean"/> refuses any other byte).</summary>
    public void WriteBoolean(bool value) => _stream.WriteByte(value ? (byte)1 : (byte)0);

    /// <summary>Writes an enum (or small int) as Int32.</summary>
    public void WriteEnum<T>(T value) where T : struct, Enum => WriteInt32(Convert.ToInt32(value));

    /// <summary>Writes a string as its UTF-8 byte count (Int32) followed by the bytes.</summary>
    public void WriteString(string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        WriteInt32(bytes.Length);
        _stream.Write(bytes);
    }

    /// <summary>Writes a float32 array: its length (Int32), then the values; read back with <see cref="ModelReader.ReadSingles"/> or <see cref="ModelReader.ReadParameters"/>.</summary>
    public void WriteSingles(ReadOnlySpan<float> values)
    {
        WriteInt32(values.Length);
        if (BitConverter.IsLittleEndian) _stream.Write(MemoryMarshal.AsBytes(values));
        else foreach (var v in values) WriteSingle(v);
    }

    /// <summary>Writes a float64 array: its length (Int32), then the values; read back with <see cref="ModelReader.ReadDoubles"/>.</summary>
    public void WriteDoubles(ReadOnlySpan<double> values)
    {
        WriteInt32(values.Length);
        if (BitConverter.IsLittleEndian) _stream.Write(MemoryMarshal.AsBytes(values));
        else foreach (var v in values) WriteDouble(v);
    }

    /// <summary>Writes an Int32 array: its length (Int32), then the values; read back with <see cref="ModelReader.ReadInt32s"/>.</summary>
    public void WriteInt32s(ReadOnlySpan<int> values)
    {
        WriteInt32(values.Length);
        if (BitConverter.IsLittleEndian) _stream.Write(MemoryMarshal.AsBytes(values));
        else foreach (var v in values) WriteInt32(v);
    }

    internal byte[] ToArray() => ((MemoryStream)_stream).ToArray();
}

/// <summary>A write-only stream that keeps nothing and counts the bytes written to it (a model's file length without a copy of the file).</summary>
internal sealed class CountingStream : Stream
{
    private long _length;
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => _length;
    public override long Position { get => _length; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) { ValidateBufferArguments(buffer, offset, count); _length += count; }
    public override void Write(ReadOnlySpan<byte> buffer) => _length += buffer.Length;
    public override void WriteByte(byte value) => _length++;
}

/// <summary>
/// Bounds-checked reader for a model payload: every length is checked against the bytes that remain before
/// anything is allocated, so a corrupt length cannot cause a huge allocation.
/// </summary>
public sealed class ModelReader
{
    private readonly byte[] _data;
    private int _pos;
    private readonly string _kind;

    internal ModelReader(byte[] data, string kind) { _data = data; _kind = kind; }

    /// <summary>Bytes not yet read.</summary>
    public int Remaining => _data.Length - _pos;

    private ReadOnlySpan<byte> Take(int n, string what)
    {
        if (n < 0 || n > Remaining) throw Corrupt($"{what} runs past the end of the payload");
        var s = _data.AsSpan(_pos, n);
        _pos += n;
        return s;
    }

    /// <summary>Reads a 32-bit integer written by <see cref="ModelWriter.WriteInt32"/>, unchecked; prefer <see cref="ReadInt32(string, int, int)"/> for a size or count.</summary>
    public int ReadInt32() => BinaryPrimitives.ReadInt32LittleEndian(Take(4, "an integer"));
    /// <summary>Reads a 64-bit integer written by <see cref="ModelWriter.WriteInt64"/>.</summary>
    public long ReadInt64() => BinaryPrimitives.ReadInt64LittleEndian(Take(8, "an integer"));
    /// <summary>Reads an unsigned 64-bit integer written by <see cref="ModelWriter.WriteUInt64"/>.</summary>
    public ulong ReadUInt64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, "an integer"));
    /// <summary>Reads a float32 written by <see cref="ModelWriter.WriteSingle"/>; not checked for finiteness.</summary>
    public float ReadSingle() => BinaryPrimitives.ReadSingleLittleEndian(Take(4, "a number"));
    /// <summary>Reads a float64 written by <see cref="ModelWriter.WriteDouble"/>; not checked for finiteness.</summary>
    public double ReadDouble() => BinaryPrimitives.ReadDoubleLittleEndian(Take(8, "a number"));

    /// <summary>Reads a flag written by <see cref="ModelWriter.WriteBoolean"/>; a byte other than 0 or 1 is a corrupt file.</summary>
    public bool ReadBoolean()
    {
        byte b = Take(1, "a flag")[0];
        return b switch { 0 => false, 1 => true, _ => throw Corrupt(FormattableString.Invariant($"flag byte {b} is neither 0 nor 1")) };
    }

    /// <summary>Reads an Int32 and checks it lies in [min, max].</summary>
    public int ReadInt32(string name, int min, int max)
    {
        int v = ReadInt32();
        if (v < min || v > max) throw Corrupt(FormattableString.Invariant($"{name} = {v} is outside [{min}, {max}]"));
        return v;
    }

    /// <summary>Reads an enum written with <see cref="ModelWriter.WriteEnum{T}"/> and checks it is defined.</summary>
    public T ReadEnum<T>(string name) where T : struct, Enum
    {
        int v = ReadInt32();
        var e = (T)Enum.ToObject(typeof(T), v);
        if (!Enum.IsDefined(e)) throw Corrupt(FormattableString.Invariant($"{name} = {v} is not a valid {typeof(T).Name}"));
        return e;
    }

    /// <summary>Reads a string written by <see cref="ModelWriter.WriteString"/>; a UTF-8 length above <paramref name="maxLength"/> bytes (default 65,536) is a corrupt file.</summary>
    public string ReadString(int maxLength = 1 << 16)
    {
        int n = ReadInt32();
        if (n < 0 || n > maxLength) throw Corrupt(FormattableString.Invariant($"string length {n} is invalid"));
        return Encoding.UTF8.GetString(Take(n, "a string"));
    }

    /// <summary>
    /// Largest magnitude a network weight or bias may have in a file read with <see cref="ReadParameters"/> (1e6). No
    /// model trained on validated data comes near it (training rejects such a result, since every Fit ends by running
    /// the loader), while larger values overflow float32 in the products of scoring and sampling (a bias of 1e30 loads
    /// but cannot sample).
    /// </summary>
    public const float MaxParameterMagnitude = 1e6f;

    /// <summary>Whether every value is finite and within ±<see cref="MaxParameterMagnitude"/>, as <see cref="ReadParameters"/>
    /// requires: training checks its parameters with this at each epoch's end, so that weights which grew past what a file
    /// may hold while still finite count as a divergence (restore, halve the rate) rather than a model the loader refuses.</summary>
    public static bool WithinParameterRange(ReadOnlySpan<float> values)
        => values.IsEmpty || Math.Abs(System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(values)) <= MaxParameterMagnitude;   // NaN fails too

    /// <summary>Reads network parameters: finite and within ±<see cref="MaxParameterMagnitude"/>.</summary>
    public float[] ReadParameters(string name, int expectedLength)
    {
        var values = ReadSingles(name, expectedLength);
        for (int i = 0; i < values.Length; i++)
            if (Math.Abs(values[i]) > MaxParameterMagnitude) throw Corrupt(FormattableString.Invariant($"{name}[{i}] = {values[i]} is beyond ±{MaxParameterMagnitude:G}"));
        return values;
    }

    /// <summary>Reads a float array; when <paramref name="expectedLength"/> is given the stored length must equal it.</summary>
    public float[] ReadSingles(string name, int? expectedLength = null, bool requireFinite = true)
    {
        int n = ReadInt32();
        if (n < 0 || (expectedLength is int e && n != e)) throw Corrupt(FormattableString.Invariant($"{name} has length {n}{(expectedLength is int x ? FormattableString.Invariant($", expected {x}") : "")}"));
        if ((long)n * 4 > Remaining) throw Corrupt($"{name} runs past the end of the payload");
        var result = new float[n];
        var bytes = Take(n * 4, name);
        if (BitConverter.IsLittleEndian) MemoryMarshal.Cast<byte, float>(bytes).CopyTo(result);
        else for (int i = 0; i < n; i++) result[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.Slice(4 * i));
        if (requireFinite)
            for (int i = 0; i < n; i++) if (!float.IsFinite(result[i])) throw Corrupt(FormattableString.Invariant($"{name}[{i}] is not finite"));
        return result;
    }

    /// <summary>Reads a float64 array written by <see cref="ModelWriter.WriteDoubles"/>; when <paramref name="expectedLength"/> is given the stored length must equal it. Values are not checked for finiteness. <paramref name="name"/> names the array in the error message.</summary>
    public double[] ReadDoubles(string name, int? expectedLength = null)
    {
        int n = ReadInt32();
        if (n < 0 || (expectedLength is int e && n != e)) throw Corrupt(FormattableString.Invariant($"{name} has length {n}"));
        if ((long)n * 8 > Remaining) throw Corrupt($"{name} runs past the end of the payload");
        var result = new double[n];
        MemoryMarshal.Cast<byte, double>(Take(n * 8, name)).CopyTo(result);
        return result;
    }

    /// <summary>Reads an Int32 array written by <see cref="ModelWriter.WriteInt32s"/>; when <paramref name="expectedLength"/> is given the stored length must equal it. <paramref name="name"/> names the array in the error message.</summary>
    public int[] ReadInt32s(string name, int? expectedLength = null)
    {
        int n = ReadInt32();
        if (n < 0 || (expectedLength is int e && n != e)) throw Corrupt(FormattableString.Invariant($"{name} has length {n}"));
        if ((long)n * 4 > Remaining) throw Corrupt($"{name} runs past the end of the payload");
        var result = new int[n];
        MemoryMarshal.Cast<byte, int>(Take(n * 4, name)).CopyTo(result);
        return result;
    }

    /// <summary>An exception for a payload that is internally inconsistent.</summary>
    public InvalidModelFileException Corrupt(string problem) => new($"Corrupt {_kind} model: {problem}.");

    internal void EnsureConsumed()
    {
        if (Remaining != 0) throw Corrupt(FormattableString.Invariant($"{Remaining} unread bytes after the model"));
    }
}

/// <summary>Maps model-kind names in files to their readers. Each built-in model registers itself from a module
/// initializer beside its reader (see RnadeModel.RegisterKind); models in other assemblies call <see cref="Register"/>.</summary>
public static class ModelRegistry
{
    /// <summary>Reads a payload of the given payload version into a model.</summary>
    public delegate DensityModelBase PayloadReader(ModelReader reader, int payloadVersion);

    private static readonly Dictionary<string, PayloadReader> Readers = new(StringComparer.Ordinal);
    private static readonly object Gate = new();

    /// <summary>Registers a model kind (idempotent for the same reader).</summary>
    public static void Register(string kind, PayloadReader reader)
    {
        lock (Gate) Readers[kind] = reader;
    }

    internal static bool TryGetReader(string kind, out PayloadReader reader)
    {
        lock (Gate) return Readers.TryGetValue(kind, out reader!);
    }

    /// <summary>Registered kinds.</summary>
    public static IReadOnlyList<string> Kinds { get { lock (Gate) return Readers.Keys.OrderBy(k => k, StringComparer.Ordinal).ToArray(); } }
}
