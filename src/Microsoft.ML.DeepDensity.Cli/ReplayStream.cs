namespace Microsoft.ML.DeepDensity.Cli;

/// <summary>
/// A read-only stream over one that cannot seek (a pipe), which keeps every byte it reads so that the input can be read
/// once more from its first byte (<see cref="Replay"/>), then on from where the first reading stopped. The bytes kept are
/// fewer than the cells <see cref="CsvTable"/> holds of them, so its memory bound bounds them too.
/// </summary>
internal sealed class ReplayStream(Stream inner) : ForwardReadStream
{
    private const int ChunkBytes = 1 << 16;
    private readonly List<byte[]?> _chunks = new();
    private int _lastLength; // bytes used in the last chunk
    private bool _replaying;
    private int _chunk, _offset; // the replay's position

    /// <summary>Starts reading again from the first byte (and stops keeping bytes).</summary>
    public Stream Replay()
    {
        _replaying = true;
        _chunk = _offset = 0;
        return this;
    }

    public override int Read(Span<byte> buffer)
    {
        if (!_replaying)
        {
            int read = inner.Read(buffer);
            Keep(buffer[..read]);
            return read;
        }
        while (_chunk < _chunks.Count)
        {
            int length = _chunk == _chunks.Count - 1 ? _lastLength : ChunkBytes;
            if (_offset < length)
            {
                int n = Math.Min(buffer.Length, length - _offset);
                _chunks[_chunk].AsSpan(_offset, n).CopyTo(buffer);
                _offset += n;
                return n;
            }
            _chunks[_chunk++] = null; // replayed: no longer needed
            _offset = 0;
        }
        return inner.Read(buffer);
    }

    private void Keep(ReadOnlySpan<byte> data)
    {
        while (data.Length > 0)
        {
            if (_chunks.Count == 0 || _lastLength == ChunkBytes) { _chunks.Add(new byte[ChunkBytes]); _lastLength = 0; }
            int n = Math.Min(data.Length, ChunkBytes - _lastLength);
            data[..n].CopyTo(_chunks[^1].AsSpan(_lastLength));
            _lastLength += n;
            data = data[n..];
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
}
