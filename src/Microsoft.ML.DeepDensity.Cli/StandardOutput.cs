using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Microsoft.ML.DeepDensity.Cli;

/// <summary>
/// ddml's standard output, and what happens when its reader goes away.
/// <para>.NET's <see cref="Console.Out"/> drops a write to a pipe whose reader has closed it: the runtime ignores SIGPIPE,
/// and the console stream takes the EPIPE that <c>write</c> then returns for success. So <c>ddml sample m.zip -n
/// 100000000 | head</c> drew and formatted every row for nobody, for minutes, and exited 0. When standard output is a
/// pipe or a socket (Unix), ddml writes it through a <see cref="FileStream"/> on file descriptor 1 instead, where EPIPE
/// is an <see cref="IOException"/> (<see cref="IsBrokenPipe"/>): the command stops at its next write and exits quietly
/// with <see cref="ExitCodes.BrokenPipe"/> (141, what the shell reports for <c>seq</c> in <c>seq 1e12 | head</c>).</para>
/// <para>A terminal or a file keeps <see cref="Console.Out"/>: neither can break, and a FileStream on a regular file
/// writes at its own offset (pwrite), which in <c>ddml fit ... &gt; log 2&gt;&amp;1</c> would overwrite what standard error
/// writes through the same open file. So does a non-blocking pipe (rare: a parent that shares its own), whose EAGAIN
/// the console stream waits out and a FileStream would throw. Windows keeps <see cref="Console.Out"/> too.</para>
/// </summary>
internal static class StandardOutput
{
    /// <summary>EPIPE: 32 on Linux, macOS and the BSDs. .NET's IOException for a failed write carries the raw errno as its HResult.</summary>
    private const int Epipe = 32;
    private const int FileTypeMask = 0xF000, Fifo = 0x1000, Socket = 0xC000;

    /// <summary>Whether <paramref name="e"/> is a write to a pipe (or socket) whose reader has gone: the output is not
    /// wanted any more, so ddml stops without a message (a data error reading a file is never EPIPE).</summary>
    public static bool IsBrokenPipe(Exception e) => !OperatingSystem.IsWindows() && e is IOException { HResult: Epipe };

    /// <summary>The writer for standard output: over file descriptor 1 when it is a blocking pipe or socket, else
    /// <see cref="Console.Out"/>. Its text is <see cref="Console.Out"/>'s byte for byte: the console's encoding without a
    /// byte-order mark, "\n" line ends, every write flushed (progress lines appear as they are written).</summary>
    public static TextWriter Open()
    {
        if (!IsBlockingPipe(1)) return Console.Out;
        var stream = new FileStream(new SafeFileHandle(1, ownsHandle: false), FileAccess.Write, bufferSize: 0);
        return TextWriter.Synchronized(new StreamWriter(stream, WithoutPreamble(Console.OutputEncoding), 1 << 16) { AutoFlush = true });
    }

    private static Encoding WithoutPreamble(Encoding encoding)
        => encoding.GetPreamble().Length == 0 ? encoding : encoding.CodePage == Encoding.UTF8.CodePage ? new UTF8Encoding(false) : encoding;

    /// <summary>Whether file descriptor <paramref name="fd"/> is a pipe or a socket in blocking mode, asked of the
    /// runtime's own native shim (as <see cref="AtomicFile.IsDeviceOrPipe"/> does for a path); false when that cannot be told.</summary>
    private static bool IsBlockingPipe(int fd)
    {
        if (OperatingSystem.IsWindows()) return false;
        var status = new byte[256]; // FileStatus is about 130 bytes: Flags, then Mode
        try
        {
            if (NativeFStat(fd, status) != 0) return false; // closed (ddml >&-): Console.Out, which drops the writes
            int type = BitConverter.ToInt32(status, 4) & FileTypeMask;
            if (type is not (Fifo or Socket)) return false;
            return NativeGetIsNonBlocking(fd, out int nonBlocking) == 0 && nonBlocking == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }

    [DllImport("libSystem.Native", EntryPoint = "SystemNative_FStat")]
    private static extern int NativeFStat(nint fd, byte[] status);

    [DllImport("libSystem.Native", EntryPoint = "SystemNative_FcntlGetIsNonBlocking")]
    private static extern int NativeGetIsNonBlocking(nint fd, out int isNonBlocking);
}

/// <summary>
/// Standard output as the log of a command whose output is a file (fit's progress lines, report's "wrote ..."): a reader
/// that goes away (<c>ddml fit ... | head</c>) does not abandon the work. Writes after a broken pipe are dropped, as
/// <see cref="Console.Out"/> always dropped them, so fit trains on and saves its model, and report keeps its exit code.
/// </summary>
internal sealed class LogWriter(TextWriter inner) : TextWriter
{
    private bool _readerGone;

    public override Encoding Encoding => inner.Encoding;

    public override void Write(char value) => Guard(() => inner.Write(value));
    public override void Write(char[] buffer, int index, int count) => Guard(() => inner.Write(buffer, index, count));
    public override void Write(string? value) => Guard(() => inner.Write(value));
    public override void WriteLine(string? value) => Guard(() => inner.WriteLine(value));
    public override void Flush() => Guard(inner.Flush);

    private void Guard(Action write)
    {
        if (_readerGone) return;
        try { write(); }
        catch (IOException e) when (StandardOutput.IsBrokenPipe(e)) { _readerGone = true; }
    }
}
