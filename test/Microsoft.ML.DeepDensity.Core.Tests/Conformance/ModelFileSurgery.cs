using System.Buffers.Binary;
using System.Text;
using Microsoft.ML.DeepDensity.Persistence;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>
/// Takes a saved model file apart and puts it back together with a valid checksum, so that tests can damage the
/// payload itself (which the CRC would otherwise catch first) and reach each model's payload reader.
/// </summary>
internal sealed record ModelFileParts(ushort FormatVersion, string Kind, ushort PayloadVersion, byte[] Payload)
{
    /// <summary>Layout: "DDML" | u16 format | u8 kind length | kind | u16 payload version | u64 payload length | payload | u32 CRC.</summary>
    public static ModelFileParts Parse(byte[] file)
    {
        int kindLength = file[6];
        string kind = Encoding.ASCII.GetString(file, 7, kindLength);
        int fixedLength = 7 + kindLength + 2 + 8;
        ulong payloadLength = BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(7 + kindLength + 2));
        if ((long)payloadLength + fixedLength + 4 != file.Length) throw new ArgumentException("Not a well-formed model file.");
        return new ModelFileParts(
            BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(4)), kind,
            BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(7 + kindLength)),
            file.AsSpan(fixedLength, (int)payloadLength).ToArray());
    }

    /// <summary>Offset of the payload in the file.</summary>
    public int PayloadOffset => 7 + Encoding.ASCII.GetByteCount(Kind) + 2 + 8;

    /// <summary>Assembles a file with a correct CRC over whatever was written; <paramref name="declaredLength"/> forges the length field.</summary>
    public byte[] Build(ulong? declaredLength = null)
    {
        byte[] kind = Encoding.ASCII.GetBytes(Kind);
        var ms = new MemoryStream();
        ms.Write("DDML"u8);
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt16LittleEndian(b, FormatVersion); ms.Write(b[..2]);
        ms.WriteByte((byte)kind.Length);
        ms.Write(kind);
        BinaryPrimitives.WriteUInt16LittleEndian(b, PayloadVersion); ms.Write(b[..2]);
        BinaryPrimitives.WriteUInt64LittleEndian(b, declaredLength ?? (ulong)Payload.Length); ms.Write(b);
        ms.Write(Payload);
        uint crc = Crc32.Append(0, ms.GetBuffer().AsSpan(0, (int)ms.Length));
        BinaryPrimitives.WriteUInt32LittleEndian(b, crc); ms.Write(b[..4]);
        return ms.ToArray();
    }

    public ModelFileParts WithPayload(byte[] payload) => this with { Payload = payload };
}
