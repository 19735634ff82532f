using System.Globalization;
using System.Text;

namespace Microsoft.ML.DeepDensity.Cli.Tests;

/// <summary>
/// 'ddml sample' of a row model streams: it reads the lazy GenerateSamples view with one cursor and writes each row as it
/// comes, so its memory is one block of rows whatever -n is; a file target is still written whole or not at all.
/// </summary>
public class SampleStreamTests : IDisposable
{
    private readonly CliHarness _h = new();
    public void Dispose() => _h.Dispose();

    /// <summary>A 2-value RNADE: the cheapest rows to draw, so that a test of millions of rows is about writing them.</summary>
    private string SmallModel()
    {
        var zip = _h.PathOf("ab.zip");
        var csv = new StringBuilder("a,b\n");
        for (int i = 0; i < 40; i++) csv.Append(CultureInfo.InvariantCulture, $"{i % 7 * 0.5:F1},{i % 5 * 0.3 - 1:F1}\n");
        var r = _h.Run("fit", _h.Write("ab.csv", csv.ToString()), "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=2", "-p", "Components=1", "-o", zip);
        Assert.True(r.Exit == 0, r.Err);
        return zip;
    }

    /// <summary>
    /// Rows over several of the view's blocks (1,024 rows of 4 values) are the engine's <c>Model.Sample(n, seed)</c>, in
    /// the text the eager command wrote (each value in round-trip format, comma-separated, one line a row), the same to a
    /// file as to standard output: an RBM's chains carry on from block to block, a Deep GMM draws in its own blocks.
    /// </summary>
    [Theory]
    [InlineData("rnade", "HiddenUnits=4")]
    [InlineData("rbm", "HiddenUnits=6")]
    [InlineData("deepgmm", "Layers=2,2")]
    public void TheRowsAreTheEnginesDrawOverSeveralBlocks(string model, string option)
    {
        var zip = _h.PathOf("m.zip");
        var fit = _h.Run("fit", _h.Blob("train.csv", 120), "-m", model, "--exclude", "id,label", "--epochs", "2", "-p", option, "-o", zip);
        Assert.True(fit.Exit == 0, fit.Err);
        const int n = 2500;
        var draws = new MLContext(seed: 1).Model.Load(zip, out _).GetDensityModel().Sample(n, 7);
        var expected = new StringBuilder("x1,x2,x3,x4" + Environment.NewLine);
        for (int r = 0; r < n; r++) expected.Append(string.Join(",", draws.Row(r).ToArray().Select(CsvTable.Format))).Append(Environment.NewLine);

        var stdout = _h.Run("sample", zip, "-n", n.ToString(CultureInfo.InvariantCulture), "--seed", "7");
        Assert.True(stdout.Exit == 0, stdout.Err);
        Assert.Equal(expected.ToString(), stdout.Out);
        var file = _h.PathOf("s.csv");
        var toFile = _h.Run("sample", zip, "-n", n.ToString(CultureInfo.InvariantCulture), "--seed", "7", "-o", file);
        Assert.True(toFile.Exit == 0, toFile.Err);
        Assert.Equal(expected.ToString(), File.ReadAllText(file));
        Assert.Empty(Directory.GetFiles(_h.Dir, "*.tmp"));
    }

    /// <summary>
    /// The eager command collected the whole draw (2 million rows of 2 values: 2 million row arrays, ~100 MB) before it
    /// wrote a line. Streaming, the managed heap holds one block of rows and a line: while the command runs, the heap
    /// grows by a few megabytes, as much for 2 million rows as for 20,000.
    /// </summary>
    [Fact]
    public void MemoryDoesNotGrowWithTheCount()
    {
        var zip = SmallModel();
        string target = OperatingSystem.IsWindows() ? _h.PathOf("big.csv") : "/dev/null";
        long small = PeakHeapGrowth(() => Assert.Equal(0, _h.Run("sample", zip, "-n", "20000", "-o", target).Exit));
        long large = PeakHeapGrowth(() => Assert.Equal(0, _h.Run("sample", zip, "-n", "2000000", "-o", target).Exit));
        Assert.True(large < small + (16 << 20),
            $"sampling 2,000,000 rows raised the managed heap by {large / 1024:N0} KiB, 20,000 rows by {small / 1024:N0} KiB: it should hold one block");
    }

    /// <summary>How far the managed heap (as the garbage collections during <paramref name="run"/> left it, polled every
    /// few milliseconds: the eager command held its draw for seconds) rose above its size before.</summary>
    private static long PeakHeapGrowth(Action run)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        long baseline = GC.GetGCMemoryInfo().HeapSizeBytes, peak = baseline;
        using var done = new ManualResetEventSlim();
        var poll = new Thread(() =>
        {
            do peak = Math.Max(peak, GC.GetGCMemoryInfo().HeapSizeBytes);
            while (!done.Wait(5));
        }) { IsBackground = true };
        poll.Start();
        try { run(); }
        finally
        {
            done.Set();
            poll.Join();
        }
        return peak - baseline;
    }

    /// <summary>
    /// Interrupted part-way through the rows (a host's <see cref="Interrupts"/>; the tool's own Ctrl+C is InterruptTests'),
    /// a run writing to a file has streamed megabytes into its temporary file: it is deleted, and the file that was there
    /// before is left as it was. Exit 130.
    /// </summary>
    [Fact]
    public async Task AnInterruptPartWayLeavesTheTargetAsItWas()
    {
        var zip = SmallModel();
        var target = _h.Write("out.csv", "earlier output\n");
        var interrupts = new Interrupts();
        var run = Task.Run(() => _h.Run(interrupts, "sample", zip, "-n", "50000000", "-o", target));
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (!run.IsCompleted && DateTime.UtcNow < deadline && !Directory.GetFiles(_h.Dir, ".out.csv.*.tmp").Any(f => new FileInfo(f).Length > 1 << 20))
            await Task.Delay(20);
        if (run.IsCompleted) Assert.Fail("the run ended before it was interrupted: " + (await run).Err);
        interrupts.Signal();
        var finished = await Task.WhenAny(run, Task.Delay(TimeSpan.FromMinutes(1)));
        Assert.True(finished == run, "the run did not end after the interrupt");
        var (exit, _, err) = await run;
        Assert.True(exit == ExitCodes.Interrupted, $"exit {exit}: {err}");
        Assert.Contains("interrupted; nothing was written", err);
        Assert.Equal("earlier output\n", File.ReadAllText(target));
        Assert.Empty(Directory.GetFiles(_h.Dir, "*.tmp"));
    }

    /// <summary>The first row is drawn before the output is opened: a draw that fails at once (here interrupted before it
    /// starts) writes nothing, not even the header to standard output, and no file.</summary>
    [Fact]
    public void ADrawThatFailsAtOnceWritesNothing()
    {
        var zip = SmallModel();
        var interrupts = new Interrupts();
        interrupts.Signal();
        var r = _h.Run(interrupts, "sample", zip, "-n", "10");
        Assert.True(r.Exit == ExitCodes.Interrupted, r.Err);
        Assert.Equal("", r.Out);
        var file = _h.PathOf("s.csv");
        r = _h.Run(interrupts, "sample", zip, "-n", "10", "-o", file);
        Assert.True(r.Exit == ExitCodes.Interrupted, r.Err);
        _h.AssertNoPartialFiles(file);
    }
}
