using Microsoft.ML.DeepDensity.Persistence;

namespace Microsoft.ML.DeepDensity.Transforms;

/// <summary>
/// How a saved model's bytes (a <see cref="ModelEnvelope"/>) travel through ML.NET since the "v2" surrogate: as several
/// text values, one per MapValue stage, each carrying 15 bits per character. ML.NET reads a MapValue table at
/// <c>Model.Load</c> by decoding it, then saving it again (it keeps the compressed copy for a later save) and keeps
/// its text as UTF-16; every copy it makes is of one table at a time. Version 1 carried the model as one base64 value
/// (16 bits of memory per 6 bits of model, so ML.NET held its copies of 2.7 times the model size at once); here a
/// chunk is at most <see cref="ChunkBytes"/> of model (or 1/<see cref="MaxChunks"/> of it) and a character holds 15
/// bits (1.07 bytes of memory per byte of model), so a load's transient copies are of one chunk.
/// <para>Why text and not a byte vector: ML.NET's MapValue copies a vector value into a new buffer on every row it maps,
/// which is every row a loaded model scores, where a text value is handed over by reference. Characters 0–0x7FFF are all
/// valid UTF-16 and survive ML.NET's UTF-8 storage unchanged (no surrogates).</para>
/// <para>Each chunk's bytes: "DDMC" | u16 chunk format (1) | u16 index | u16 count | u32 total payload bytes |
/// u32 bytes in this chunk | u32 CRC-32 of the preceding header bytes and of this chunk's bytes | this chunk's bytes;
/// packed 15 bits per character, most significant first, the last character padded with zero bits.</para>
/// </summary>
internal static class ModelTextChunks
{
    /// <summary>The bytes of model a chunk carries at most (unless the model is over <see cref="MaxChunks"/> times it).</summary>
    public const int ChunkBytes = 2 << 20;

    /// <summary>The most chunks (MapValue stages) one model is split into; a larger model has larger chunks.</summary>
    public const int MaxChunks = 1024;

    private const int HeaderBytes = 22;
    private const ushort Format = 1;
    private const int BitsPerChar = 15;
    private static ReadOnlySpan<byte> Magic => "DDMC"u8;

    /// <summary>The column the MapValue stage of chunk <paramref name="index"/> writes (<c>__dd_model_0</c>, ...).</summary>
    public static string ChunkColumn(string modelColumn, int index) => modelColumn + "_" + index.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary><paramref name="payload"/> as its chunk texts, in order.</summary>
    public static string[] Encode(ReadOnlySpan<byte> payload)
        => Encode(payload, Math.Max(ChunkBytes, (int)(((long)payload.Length + MaxChunks - 1) / MaxChunks)));

    /// <summary><paramref name="payload"/> in chunks of <paramref name="size"/> bytes (tests use small ones).</summary>
    internal static string[] Encode(ReadOnlySpan<byte> payload, int size)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        int count = Math.Max(1, (int)(((long)payload.Length + size - 1) / size));
        if (count > MaxChunks) throw new ArgumentOutOfRangeException(nameof(size), FormattableString.Invariant($"{count} chunks: more than {MaxChunks}."));
        var texts = new string[count];
        Span<byte> header = stackalloc byte[HeaderBytes];
        for (int k = 0; k < count; k++)
        {
            int start = (int)Math.Min((long)k * size, payload.Length);
            var slice = payload.Slice(start, Math.Min(size, payload.Length - start));
            Magic.CopyTo(header);
            BitConverter.TryWriteBytes(header[4..], Format);
            BitConverter.TryWriteBytes(header[6..], (ushort)k);
            BitConverter.TryWriteBytes(header[8..], (ushort)count);
            BitConverter.TryWriteBytes(header[10..], (uint)payload.Length);
            BitConverter.TryWriteBytes(header[14..], (uint)slice.Length);
            BitConverter.TryWriteBytes(header[18..], Crc32.Append(Crc32.Append(0, header[..18]), slice));
            texts[k] = Pack(header, slice);
        }
        return texts;
    }

    private static string Pack(ReadOnlySpan<byte> header, ReadOnlySpan<byte> body)
    {
        var p = new Packer(checked((int)((8L * (header.Length + body.Length) + BitsPerChar - 1) / BitsPerChar)));
        p.Put(header);
        p.Put(body);
        return p.Finish();
    }

    /// <summary>Bytes into 15-bit text, most significant bits first.</summary>
    private ref struct Packer(int chars)
    {
        private readonly char[] _text = new char[chars];
        private int _at;
        private uint _acc;
        private int _have;

        public void Put(ReadOnlySpan<byte> bytes)
        {
            foreach (byte b in bytes)
            {
                _acc = (_acc << 8) | b;
                _have += 8;
                if (_have >= BitsPerChar)
                {
                    _have -= BitsPerChar;
                    _text[_at++] = (char)((_acc >> _have) & 0x7FFF);
                }
            }
        }

        public string Finish()
        {
            if (_have > 0) _text[_at++] = (char)((_acc << (BitsPerChar - _have)) & 0x7FFF);
            return new string(_text, 0, _at);
        }
    }

    /// <summary>The count of chunks <paramref name="first"/> (chunk 0) says the model has.</summary>
    public static int CountOf(ReadOnlySpan<char> first)
    {
        var h = ReadHeader(first, out _);
        if (h.Index != 0) throw Corrupt(FormattableString.Invariant($"the first model chunk says it is chunk {h.Index}"));
        return h.Count;
    }

    /// <summary>The payload the chunks carry (each decoded and checked: magic, order, count, lengths, CRC).</summary>
    public static byte[] Decode(IReadOnlyList<ReadOnlyMemory<char>> chunks)
    {
        if (chunks.Count == 0) throw Corrupt("no model chunk");
        var first = ReadHeader(chunks[0].Span, out _);
        if (first.Count != chunks.Count)
            throw Corrupt(FormattableString.Invariant($"the model says it has {first.Count} chunks but {chunks.Count} were found"));
        if (first.Total > (uint)Array.MaxLength) throw Corrupt(FormattableString.Invariant($"the model's length {first.Total} is too large"));
        // The headers first: their lengths are the file's word, so each is held to what its chunk's text can carry
        // (15 bits a character after the header) and their sum to the model's length before the payload is allocated;
        // a forged length cannot ask for more memory than the zip brought.
        var headers = new Header[chunks.Count];
        long total = 0;
        for (int k = 0; k < chunks.Count; k++)
        {
            var h = headers[k] = ReadHeader(chunks[k].Span, out _);
            if (h.Index != k || h.Count != first.Count || h.Total != first.Total)
                throw Corrupt(FormattableString.Invariant($"chunk {k} of {chunks.Count} says it is chunk {h.Index} of {h.Count} of a {h.Total}-byte model (the first says {first.Total})"));
            long capacity = (long)chunks[k].Length * BitsPerChar / 8 - HeaderBytes;
            if (h.Length > capacity) throw Corrupt(FormattableString.Invariant($"chunk {k} of {chunks.Count} is truncated: it says it holds {h.Length} bytes, its text at most {capacity}"));
            total += h.Length;
        }
        if (total != first.Total) throw Corrupt(FormattableString.Invariant($"the chunks hold {total} bytes but the model's length is {first.Total}"));
        var payload = new byte[first.Total];
        long at = 0;
        for (int k = 0; k < chunks.Count; k++)
        {
            var h = headers[k];
            ReadHeader(chunks[k].Span, out var reader);
            var dest = payload.AsSpan((int)at, (int)h.Length);
            if (!reader.TryRead(dest)) throw Corrupt(FormattableString.Invariant($"chunk {k} of {chunks.Count} is truncated or not 15-bit text"));
            if (!reader.AtPaddedEnd) throw Corrupt(FormattableString.Invariant($"chunk {k} of {chunks.Count} is longer than its header says"));
            if (Crc32.Append(Crc32.Append(0, h.Bytes.AsSpan(0, 18)), dest) != BitConverter.ToUInt32(h.Bytes, 18))
                throw Corrupt(FormattableString.Invariant($"checksum mismatch of chunk {k} of {chunks.Count}; the file was modified or damaged"));
            at += h.Length;
        }
        return payload;
    }

    private readonly record struct Header(int Index, int Count, uint Total, uint Length, byte[] Bytes);

    private static Header ReadHeader(ReadOnlySpan<char> text, out Reader reader)
    {
        var h = new byte[HeaderBytes];
        reader = new Reader(text);
        if (!reader.TryRead(h) || !h.AsSpan(0, 4).SequenceEqual(Magic)) throw Corrupt("a model chunk is not a DeepDensity chunk (bad magic or not 15-bit text)");
        ushort format = BitConverter.ToUInt16(h, 4);
        if (format != Format) throw new InvalidModelFileException(FormattableString.Invariant($"DeepDensity model chunk format {format} is not supported (this library reads {Format}); upgrade the library."));
        int index = BitConverter.ToUInt16(h, 6), count = BitConverter.ToUInt16(h, 8);
        if (count < 1 || count > MaxChunks || index >= count) throw Corrupt(FormattableString.Invariant($"a model chunk says it is chunk {index} of {count}"));
        return new Header(index, count, BitConverter.ToUInt32(h, 10), BitConverter.ToUInt32(h, 14), h);
    }

    private static InvalidModelFileException Corrupt(string what) => new($"Corrupt DeepDensity model in the ML.NET model: {what}.");

    /// <summary>Bytes out of 15-bit text, most significant bits first.</summary>
    private ref struct Reader(ReadOnlySpan<char> text)
    {
        private readonly ReadOnlySpan<char> _text = text;
        private int _at;
        private uint _acc;
        private int _have;

        public bool TryRead(Span<byte> dest)
        {
            for (int i = 0; i < dest.Length; i++)
            {
                if (_have < 8)
                {
                    if (_at >= _text.Length) return false;
                    char c = _text[_at++];
                    if (c > 0x7FFF) return false;
                    _acc = (_acc << BitsPerChar) | c;
                    _have += BitsPerChar;
                }
                _have -= 8;
                dest[i] = (byte)(_acc >> _have);
            }
            return true;
        }

        /// <summary>Every character read, and the bits left of the last one are zero padding.</summary>
        public readonly bool AtPaddedEnd => _at == _text.Length && (_acc & ((1u << _have) - 1)) == 0;
    }
}
