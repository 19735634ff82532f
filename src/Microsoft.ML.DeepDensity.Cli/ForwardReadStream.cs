namespace Microsoft.ML.DeepDensity.Cli;

/// <summary>The members of a read-only stream that cannot seek (a pipe, and the streams that wrap one): a subclass
/// supplies <see cref="Stream.Read(byte[], int, int)"/>; everything a forward reader does not do throws.</summary>
internal abstract class ForwardReadStream : Stream
{
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
