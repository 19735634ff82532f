using System.Runtime.InteropServices;
using System.Text;

namespace Microsoft.ML.DeepDensity.Cli.Tests;

/// <summary>Inputs and outputs that are not regular files: named pipes, /dev/stdin, /dev/null, bash's &lt;(...) and &gt;(...).</summary>
public class PipesAndDevicesTests : IDisposable
{
    private readonly CliHarness _h = new();
    public void Dispose() => _h.Dispose();

    [DllImport("libc", SetLastError = true)]
    private static extern int mkfifo([MarshalAs(UnmanagedType.LPUTF8Str)] string path, uint mode);

    private string RowModel()
    {
        var zip = _h.PathOf("m.zip");
        var r = _h.Run("fit", _h.Blob("train.csv", 60), "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=4", "-o", zip);
        Assert.True(r.Exit == 0, r.Err);
        return zip;
    }

    /// <summary>'-o' naming a named pipe (or /dev/null, /dev/stdout, bash's &gt;(gzip &gt; f.gz)) wrote a temporary file and
    /// renamed it over the pipe: the pipe became a regular file and its reader waited forever (as root, '-o /dev/null'
    /// replaced /dev/null itself). The output goes into the pipe.</summary>
    [Fact]
    public void AnOutputThatIsAPipeIsWrittenIntoNotReplaced()
    {
        if (OperatingSystem.IsWindows()) return;
        var zip = RowModel();
        var fifo = _h.PathOf("out.fifo");
        Assert.Equal(0, mkfifo(fifo, Convert.ToUInt32("600", 8)));
        Assert.True(AtomicFile.IsDeviceOrPipe(fifo));
        Assert.False(AtomicFile.IsDeviceOrPipe(zip));
        Assert.False(AtomicFile.IsDeviceOrPipe(_h.Dir));
        Assert.False(AtomicFile.IsDeviceOrPipe(_h.PathOf("missing.csv")));
        // Opened for reading and writing, a pipe does not wait for a writer (Linux), and holds what ddml writes (< 64 KiB).
        using var reader = new FileStream(fifo, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        var r = _h.Run("sample", zip, "-n", "3", "--seed", "1", "-o", fifo);
        Assert.True(r.Exit == 0, r.Err);
        Assert.Equal(0, new FileInfo(fifo).Length); // still the pipe, not a regular file holding the rows
        Assert.True(AtomicFile.IsDeviceOrPipe(fifo));
        var buffer = new byte[1 << 16];
        int n = reader.Read(buffer);
        var text = Encoding.UTF8.GetString(buffer, 0, n);
        Assert.StartsWith("x1,x2,x3,x4,label\n", text);
        Assert.Equal(4, text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Empty(Directory.GetFiles(_h.Dir, ".*"));
    }
}
