using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Microsoft.ML.DeepDensity.Cli.Tests;

/// <summary>Inputs and outputs that are not regular files: named pipes, /dev/stdin, /dev/null, bash's &lt;(...) and &gt;(...).</summary>
public class PipesAndDevicesTests : IDisposable
{
    private readonly CliHarness _h = new();
    public void Dispose() => _h.Dispose();

    [DllImport("libc.so.6", SetLastError = true)] // glibc by its soname: a bare "libc" can need the development symlink (see AmxRuntime)
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

    /// <summary>A file that is not UTF-8 is read again as Latin-1; a pipe (cat data.csv | ddml score m.zip /dev/stdin, a
    /// named pipe, bash's &lt;(...)) was opened again and read on from where the UTF-8 attempt stopped: "line 2: the row
    /// has 3 fields but the header has 1", or a wait for a named pipe's next writer that never came. Every row is read.</summary>
    [Fact]
    public async Task ALatin1FileThroughAPipeIsReadWhole()
    {
        var bytes = Latin1Rows(3000, mullerAt: 2500);
        var table = CsvTable.Read(new OneWayStream(new MemoryStream(bytes)), "stdin");
        Assert.Equal(3000, table.Rows.Count);
        Assert.Equal("M\u00fcller", table.Rows[2500][0]);
        Assert.Equal(new[] { "name", "a", "b" }, table.Header);
        Assert.Equal(Encoding.Latin1.GetString(bytes), string.Concat(new[] { string.Join(",", table.Header) }.Concat(table.Rows.Select(r => string.Join(",", r))).Select(l => l + "\n")));
        if (OperatingSystem.IsWindows()) return;

        // Through ddml, from a named pipe (opened once: a second open would wait for a writer that never comes).
        var zip = _h.PathOf("ab.zip");
        var fit = _h.Run("fit", _h.Write("ab.csv", "a,b\n1,2\n3,5\n4,4\n2,2\n"), "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=2", "-o", zip);
        Assert.True(fit.Exit == 0, fit.Err);
        var fifo = _h.PathOf("in.fifo");
        Assert.Equal(0, mkfifo(fifo, Convert.ToUInt32("600", 8)));
        var writer = Task.Run(() => { using var w = new FileStream(fifo, FileMode.Open, FileAccess.Write); w.Write(bytes); });
        var score = Task.Run(() => _h.Run("score", zip, fifo));
        if (await Task.WhenAny(score, Task.Delay(TimeSpan.FromSeconds(60))) != score)
        {
            using (new FileStream(fifo, FileMode.Open, FileAccess.Write)) { } // let the waiting reader see the end
            Assert.Fail("ddml score waited for the named pipe to be written again");
        }
        await writer;
        var (exit, output, err) = await score;
        Assert.True(exit == 0, err);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3001, lines.Length);
        Assert.StartsWith("M\u00fcller,", lines[2501]);
    }

    private static byte[] Latin1Rows(int rows, int mullerAt)
    {
        var sb = new StringBuilder("name,a,b\n");
        for (int i = 0; i < rows; i++) sb.Append(i == mullerAt ? "M\u00fcller" : $"n{i}").Append(CultureInfo.InvariantCulture, $",{i % 7 * 0.5:F1},{i % 5:F1}\n");
        return Encoding.Latin1.GetBytes(sb.ToString());
    }

    /// <summary>A stream that cannot seek, as a pipe.</summary>
    private sealed class OneWayStream(Stream inner) : ForwardReadStream
    {
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, Math.Min(count, 1000));
    }
}
