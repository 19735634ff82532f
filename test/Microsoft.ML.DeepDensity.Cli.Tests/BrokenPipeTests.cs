using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Microsoft.ML.DeepDensity.Cli.Tests;

/// <summary>
/// Standard output into a reader that stops reading (<c>ddml sample m.zip -n 100000000 | head</c>). .NET's Console.Out
/// drops writes to a closed pipe, so the tool drew and wrote every row for nobody and exited 0; it now stops at its
/// next write and exits quietly with 141 (StandardOutput), as seq and cat do. These tests run the built tool in a
/// process of its own: the in-process harness writes to a StringWriter, which has no reader to lose.
/// </summary>
public class BrokenPipeTests : IDisposable
{
    private static readonly CultureInfo Ci = CultureInfo.InvariantCulture;
    private readonly CliHarness _h = new();
    public void Dispose() => _h.Dispose();

    private static string Tool => Path.Combine(AppContext.BaseDirectory, "ddml.dll");

    /// <summary>A 2-value RNADE: its rows are the cheapest to draw.</summary>
    private string RowModel()
    {
        var zip = _h.PathOf("ab.zip");
        var csv = new StringBuilder("a,b\n");
        for (int i = 0; i < 40; i++) csv.Append(Ci, $"{i % 7 * 0.5:F1},{i % 5 * 0.3 - 1:F1}\n");
        var r = _h.Run("fit", _h.Write("ab.csv", csv.ToString()), "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=2", "-p", "Components=1", "-o", zip);
        Assert.True(r.Exit == 0, r.Err);
        return zip;
    }

    /// <summary>rnnrnade on twelve sequences of two values a frame.</summary>
    private string SequenceModel()
    {
        var zip = _h.PathOf("seq.zip");
        var csv = new StringBuilder("seq,t,a,b\n");
        for (int s = 0; s < 12; s++)
            for (int t = 0; t < 8; t++) csv.Append(Ci, $"s{s},{t},{Math.Sin(s + t * 0.7):F3},{Math.Cos(s * 0.3 + t):F3}\n");
        var r = _h.Run("fit", _h.Write("frames.csv", csv.ToString()), "-m", "rnnrnade", "--sequence-id", "seq", "--order", "t", "--epochs", "1",
            "-p", "HiddenUnits=2", "-p", "RecurrentUnits=2", "-p", "Components=1", "-o", zip);
        Assert.True(r.Exit == 0, r.Err);
        return zip;
    }

    private static ProcessStartInfo Start(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Tool);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return psi;
    }

    /// <summary>
    /// Runs ddml with <paramref name="args"/>, reads three lines of its standard output and closes the pipe, as head does;
    /// returns the exit code, standard error, the lines read and how long the tool took to end after the close. The tool
    /// is killed after two minutes at the latest (the old tool ran on to the end of a two-billion-row draw).
    /// </summary>
    private static async Task<(int Exit, string Err, string[] Lines, TimeSpan AfterClose)> ReadThreeLinesAndClose(params string[] args)
    {
        using var p = Process.Start(Start(args))!;
        var err = p.StandardError.ReadToEndAsync();
        try
        {
            var lines = new string[3];
            for (int i = 0; i < lines.Length; i++)
                lines[i] = await p.StandardOutput.ReadLineAsync() ?? throw new Xunit.Sdk.XunitException($"the output ended after {i} lines: {await err}");
            p.StandardOutput.Close(); // the reader goes away
            var closed = Stopwatch.StartNew();
            bool ended = p.WaitForExit(TimeSpan.FromMinutes(2));
            var after = closed.Elapsed;
            Assert.True(ended, $"ddml {args[0]} was still running two minutes after its reader went away");
            p.WaitForExit();
            return (p.ExitCode, await err, lines, after);
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
        }
    }

    /// <summary>The data commands stop within seconds of their reader going away, exit 141 and say nothing. The old tool
    /// went on drawing (sample: two billion rows, hours), or wrote on into the void and exited 0 (score, the sequence
    /// model's sample); '-o /dev/stdout' exited 6 with "cannot write: Broken pipe".</summary>
    [Theory]
    [InlineData("sample")]
    [InlineData("sample -o /dev/stdout")]
    [InlineData("score")]
    [InlineData("sample rnnrnade")]
    public async Task ADataCommandStopsQuietlyWhenItsReaderGoesAway(string command)
    {
        if (OperatingSystem.IsWindows()) return; // Console.Out there as before (StandardOutput)
        string[] args = command switch
        {
            "sample" => new[] { "sample", RowModel(), "-n", "2000000000" },
            "sample -o /dev/stdout" => new[] { "sample", RowModel(), "-n", "2000000000", "-o", "/dev/stdout" },
            // 100,000 rows: several MiB of scores, far more than a pipe holds.
            "score" => new[] { "score", RowModel(), _h.Write("big.csv", "a,b\n" + string.Concat(Enumerable.Range(0, 100_000).Select(i => $"{i % 13 * 0.25},{i % 7 * -0.5}\n"))) },
            _ => new[] { "sample", SequenceModel(), "-n", "50000", "--length", "20" },
        };
        var (exit, err, lines, after) = await ReadThreeLinesAndClose(args);
        Assert.True(exit == ExitCodes.BrokenPipe, $"exit {exit} {after.TotalSeconds:F1} s after the reader went away; standard error: {err}");
        Assert.Equal("", err);
        Assert.True(after < TimeSpan.FromSeconds(15), $"ddml {command} took {after.TotalSeconds:F1} s to stop");
        Assert.StartsWith(command.EndsWith("rnnrnade", StringComparison.Ordinal) ? "seq,t,a,b" : "a,b", lines[0]);
    }

    /// <summary>In a shell pipeline into head, as users write it: head's lines, then 141 for ddml in PIPESTATUS, no message.</summary>
    [Fact]
    public void AShellPipelineIntoHeadEndsPromptly()
    {
        if (OperatingSystem.IsWindows()) return;
        var zip = RowModel();
        var r = Shell($"dotnet '{Tool}' sample '{zip}' -n 2000000000 --seed 3 | head -n 4; echo \"status ${{PIPESTATUS[0]}}\"", TimeSpan.FromMinutes(1));
        var lines = Encoding.UTF8.GetString(r.Out).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(5, lines.Length);
        Assert.Equal("a,b", lines[0]);
        Assert.Equal("status 141", lines[^1]);
        Assert.Equal("", r.Err);
    }

    /// <summary>Standard output through a pipe, into a file and in-process (a StringWriter) is the same bytes: the writer on
    /// file descriptor 1 (a pipe) encodes and ends lines as Console.Out (a file) does.</summary>
    [Theory]
    [InlineData("sample")]
    [InlineData("score")]
    [InlineData("info")]
    public void TheOutputIsTheSameBytesThroughAPipeAsIntoAFile(string command)
    {
        if (OperatingSystem.IsWindows()) return;
        var zip = RowModel();
        // A passed-through text column with characters beyond ASCII: the encoding is seen.
        var data = _h.Write("data.csv", "name,a,b\n" + string.Concat(Enumerable.Range(0, 3000).Select(i => $"M\u00fcller \u2013 {i},{i % 13 * 0.25},{i % 7 * -0.5}\n")));
        string[] args = command switch
        {
            "sample" => new[] { "sample", zip, "-n", "5000", "--seed", "9" },
            "score" => new[] { "score", zip, data },
            _ => new[] { "info", zip },
        };
        var expected = _h.Run(args);
        Assert.True(expected.Exit == 0, expected.Err);
        var file = _h.PathOf("out.txt");
        string quoted = string.Join(" ", new[] { Tool }.Concat(args).Select(a => "'" + a + "'"));
        Assert.Equal(0, Shell($"dotnet {quoted} > '{file}'").Exit);
        var piped = Shell($"dotnet {quoted} | cat");
        Assert.True(piped.Exit == 0, piped.Err);
        var bytes = Encoding.UTF8.GetBytes(expected.Out);
        Assert.Equal(bytes, piped.Out);
        Assert.Equal(bytes, File.ReadAllBytes(file));
    }

    /// <summary>fit's standard output is a log: its reader going away (ddml fit ... | head -n 1) costs neither the
    /// training nor the model, which is saved with exit code 0 as before.</summary>
    [Fact]
    public void FitWhoseLogReaderGoesAwayStillSavesTheModel()
    {
        if (OperatingSystem.IsWindows()) return;
        var zip = _h.PathOf("m.zip");
        var train = _h.Blob("train.csv", 300);
        var r = Shell($"dotnet '{Tool}' fit '{train}' -m rnade --exclude id,label --epochs 40 -p HiddenUnits=8 -o '{zip}' | head -n 1; echo \"status ${{PIPESTATUS[0]}}\" >&2");
        Assert.Contains("status 0", r.Err);
        Assert.DoesNotContain("ddml:", r.Err);
        Assert.Equal(0, _h.Run("info", zip).Exit);
    }

    /// <summary>On a terminal (a pseudo-terminal from script(1), where it exists) the rows are written as before.</summary>
    [Fact]
    public void OnATerminalTheRowsAreWritten()
    {
        if (!OperatingSystem.IsLinux() || !File.Exists("/usr/bin/script")) return;
        var zip = RowModel();
        var expected = _h.Run("sample", zip, "-n", "3", "--seed", "9");
        var r = Shell($"script -qec \"dotnet '{Tool}' sample '{zip}' -n 3 --seed 9\" /dev/null");
        Assert.True(r.Exit == 0, r.Err);
        // The terminal turns "\n" into "\r\n", and .NET's console may switch the keypad mode first (an escape sequence).
        string text = Encoding.UTF8.GetString(r.Out).Replace("\r\n", "\n");
        Assert.EndsWith(expected.Out, text);
    }

    /// <summary>Runs <paramref name="script"/> in bash; fails when it takes longer than <paramref name="timeout"/> (default two minutes).</summary>
    private static (int Exit, byte[] Out, string Err) Shell(string script, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        using var output = new MemoryStream();
        var limit = timeout ?? TimeSpan.FromMinutes(2);
        var reading = Task.Run(() => p.StandardOutput.BaseStream.CopyTo(output));
        try { Assert.True(reading.Wait(limit) && p.WaitForExit(limit), $"the command did not end within {limit.TotalSeconds} s: " + script); }
        finally { if (!p.HasExited) p.Kill(entireProcessTree: true); }
        return (p.ExitCode, output.ToArray(), err.GetAwaiter().GetResult());
    }
}
