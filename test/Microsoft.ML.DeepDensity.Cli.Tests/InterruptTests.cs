using System.Diagnostics;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Models.Nvil;

namespace Microsoft.ML.DeepDensity.Cli.Tests;

/// <summary>Ctrl+C: the first stops training and saves the best model so far; the second abandons and writes nothing.</summary>
public class InterruptTests : IDisposable
{
    private readonly CliHarness _h = new();
    public void Dispose() => _h.Dispose();

    [Fact]
    public void FirstInterruptSavesTheModelSoFar()
    {
        var train = _h.Blob("train.csv", 200);
        var zip = _h.PathOf("m.zip");
        var interrupts = new Interrupts();
        interrupts.Signal(); // before the first minibatch: the model is the initial one, still complete and loadable
        var r = _h.Run(interrupts, "fit", train, "-m", "rnade", "--exclude", "id,label", "--epochs", "50", "-p", "HiddenUnits=4", "-o", zip);
        Assert.Equal(ExitCodes.Interrupted, r.Exit);
        Assert.Contains("the best model so far was saved", r.Err);
        var info = _h.Run("info", zip);
        Assert.Equal(0, info.Exit);
        Assert.Contains("stopped by the user", info.Out);
        Assert.Empty(Directory.GetFiles(_h.Dir, "*.tmp"));
    }

    [Fact]
    public void SecondInterruptWritesNothing()
    {
        var train = _h.Blob("train.csv", 200);
        var zip = _h.PathOf("m.zip");
        var interrupts = new Interrupts();
        interrupts.Signal();
        interrupts.Signal();
        var r = _h.Run(interrupts, "fit", train, "-m", "rnade", "--exclude", "id,label", "--epochs", "50", "-p", "HiddenUnits=4", "-o", zip);
        Assert.Equal(ExitCodes.Interrupted, r.Exit);
        Assert.Contains("nothing was written", r.Err);
        _h.AssertNoPartialFiles(zip);
    }

    /// <summary>What each signal says: a second SIGTERM abandons (as a second Ctrl+C does), and the messages say so.</summary>
    [Fact]
    public void SigtermMessagesNameTheSignalAndWhatASecondOneDoes()
    {
        var log = new StringWriter();
        var interrupts = new Interrupts();
        interrupts.Signal(log, sigterm: true);
        Assert.True(interrupts.Stop.IsCancellationRequested);
        Assert.False(interrupts.Abort.IsCancellationRequested);
        interrupts.Signal(log, sigterm: true);
        Assert.True(interrupts.Abort.IsCancellationRequested);
        Assert.Equal(
            "ddml: received SIGTERM: stopping training and keeping the best model so far (send SIGTERM again to abandon without writing)." + Environment.NewLine +
            "ddml: second signal (SIGTERM): abandoning; nothing will be written." + Environment.NewLine, log.ToString());

        var ctrlC = new StringWriter();
        new Interrupts().Signal(ctrlC);
        Assert.Contains("press Ctrl+C again to abandon without writing", ctrlC.ToString());
    }

    /// <summary>The engine's StopToken: a pre-signalled token ends every trainer at once with a finite, usable model.</summary>
    [Fact]
    public void StopTokenEndsEveryTrainerWithAUsableModel()
    {
        using var stop = new CancellationTokenSource();
        stop.Cancel();
        var rnd = new Random(3);
        var data = RowMatrix.FromRows(Enumerable.Range(0, 80).Select(_ => new[] { (float)CliHarness.Gauss(rnd), (float)CliHarness.Gauss(rnd), rnd.Next(2) }).ToArray());
        var binary = RowMatrix.FromRows(Enumerable.Range(0, 80).Select(i => new[] { (float)(i % 2), (float)(i / 2 % 2), (float)(i / 4 % 2) }).ToArray());
        DensityModel[] models =
        {
            RnadeModel.Fit(data, new RnadeOptions { HiddenUnits = 4, MaxEpochs = 1000, StopToken = stop.Token }),
            DeepGmmModel.Fit(data, new DeepGmmOptions { Layers = new[] { 2, 2 }, MaxIterations = 1000, StopToken = stop.Token }),
            RbmModel.Fit(binary, new RbmOptions { HiddenUnits = 3, MaxEpochs = 1000, StopToken = stop.Token }),
            IwaeModel.Fit(binary, new IwaeOptions { LatentDimensions = new[] { 2 }, HiddenUnits = new[] { 4 }, MaxEpochs = 1000, EvaluationSamples = 10, EvaluationSamplesPerChunk = 10, StopToken = stop.Token }),
            NvilModel.Fit(binary, new NvilOptions { LatentDimensions = new[] { 2 }, BaselineHiddenUnits = 2, MaxEpochs = 1000, EvaluationSamples = 10, EvaluationSamplesPerChunk = 10, StopToken = stop.Token }),
        };
        Assert.Equal(0, ((RnadeModel)models[0]).TrainingSummary!.EpochsRun);
        Assert.Equal(0, ((RbmModel)models[2]).TrainingSummary!.EpochsRun);
        Assert.Equal(0, ((IwaeModel)models[3]).TrainingSummary!.EpochsRun);
        Assert.Equal(0, ((DeepGmmModel)models[1]).TrainingSummary!.EpochsRun);
        Assert.Equal(0, ((NvilModel)models[4]).TrainingSummary!.EpochsRun);
        foreach (var m in models)
            Assert.All(m.LogDensity(m.InputDomain == InputDomain.Binary ? binary : data), v => Assert.True(float.IsFinite(v)));
    }

    /// <summary>A real SIGINT to the tool while it trains: it stops after the current minibatch, saves a complete model, exits 130.</summary>
    [Fact]
    public void SigintDuringTrainingSavesACompleteModel()
    {
        var (exit, zip, stdout) = InterruptRealProcess();
        Assert.True(exit == ExitCodes.Interrupted, $"exit {exit}, expected {ExitCodes.Interrupted}; output:\n{stdout}");
        Assert.True(File.Exists(zip), stdout);
        var info = _h.Run("info", zip);
        Assert.Equal(0, info.Exit);
        Assert.Contains("stopped by the user", info.Out);
        Assert.Empty(Directory.GetFiles(_h.Dir, "*.tmp"));
    }

    /// <summary>
    /// A real SIGINT to 'ddml score' (which has no cancellation points): the signal was swallowed (the handler kept the
    /// process alive for fit's clean stop), so score ran on for minutes and wrote its output. It now ends at once with
    /// 130, writing nothing.
    /// </summary>
    [Fact]
    public async Task SigintDuringScoreEndsItWritingNothing()
    {
        var zip = _h.PathOf("slow.zip");
        // 20,000 importance samples a row: scoring 1,000 rows on one thread takes minutes.
        var fit = _h.Run("fit", _h.Blob("train.csv", 30), "-m", "iwae", "--exclude", "id,label", "--epochs", "1",
            "-p", "EvaluationSamples=20000", "-p", "EvaluationSamplesPerChunk=1000", "-o", zip);
        Assert.True(fit.Exit == 0, fit.Err);
        var data = _h.Blob("data.csv", 1000, seed: 3);
        var output = _h.PathOf("scores.csv");
        // Loaded and scoring: two seconds of the process's own CPU time, not of the clock. A fixed three-second wait
        // could end, on a loaded machine, before the runtime had even run the tool's first line (which installs its
        // Ctrl+C handler), and the signal then killed it without the message this test reads.
        var (exit, stderr) = await SigintWhen("score", p => p.TotalProcessorTime >= TimeSpan.FromSeconds(2), 100,
            "score", zip, data, "-o", output, "--threads", "1");
        Assert.True(exit == ExitCodes.Interrupted, $"exit {exit}: {stderr}");
        Assert.Contains("interrupted; nothing was written", stderr);
        _h.AssertNoPartialFiles(output);
    }

    /// <summary>
    /// A real SIGINT to 'ddml sample -o FILE' while it streams rows into its temporary file (megabytes of a draw of two
    /// billion rows, which the eager command could not even hold): the process ends at once with 130, the temporary file
    /// is deleted and no output file is left.
    /// </summary>
    [Fact]
    public async Task SigintWhileSampleStreamsLeavesNoPartialFile()
    {
        if (OperatingSystem.IsWindows()) return; // kill -INT
        var zip = _h.PathOf("m.zip");
        var fit = _h.Run("fit", _h.Blob("train.csv", 60), "-m", "rnade", "--exclude", "id,label", "--epochs", "1", "-p", "HiddenUnits=4", "-o", zip);
        Assert.True(fit.Exit == 0, fit.Err);
        var output = _h.PathOf("samples.csv");
        var (exit, stderr) = await SigintWhen("sample", _ => Directory.GetFiles(_h.Dir, ".samples.csv.*.tmp").Any(f => new FileInfo(f).Length > 1 << 20), 20,
            "sample", zip, "-n", "2000000000", "-o", output);
        Assert.True(exit == ExitCodes.Interrupted, $"exit {exit}: {stderr}");
        Assert.Contains("interrupted; nothing was written", stderr);
        _h.AssertNoPartialFiles(output);
    }

    /// <summary>
    /// SIGTERM (timeout, docker stop) is the first Ctrl+C: it ended the tool at once with 143, saving nothing. Its message
    /// told the sender (a process, or a person at another terminal) to "press Ctrl+C again"; it now names the signal.
    /// </summary>
    [Fact]
    public void SigtermDuringTrainingSavesACompleteModel()
    {
        if (OperatingSystem.IsWindows()) return; // kill -TERM
        var (exit, zip, stdout) = InterruptRealProcess("TERM");
        Assert.True(exit == ExitCodes.Interrupted, $"exit {exit}, expected {ExitCodes.Interrupted}; output:\n{stdout}");
        Assert.Contains("ddml: received SIGTERM: stopping training and keeping the best model so far (send SIGTERM again to abandon without writing).", stdout);
        Assert.DoesNotContain("Ctrl+C", stdout);
        Assert.Contains("the best model so far was saved", stdout);
        var info = _h.Run("info", zip);
        Assert.Equal(0, info.Exit);
        Assert.Contains("stopped by the user", info.Out);
        Assert.Empty(Directory.GetFiles(_h.Dir, "*.tmp"));
    }

    /// <summary>
    /// How the tests start ddml (then add "ddml.dll" and its arguments): <c>dotnet</c>, through coreutils'
    /// <c>env --default-signal=INT</c> when this process ignores SIGINT. A shell without job control starts a background
    /// command (<c>bash .ci/run &amp;</c>, <c>nohup</c>) with SIGINT and SIGQUIT ignored, every process below it inherits
    /// that, and the runtime keeps an ignored SIGINT ignored: these tests then saw a ddml that never heard the signal
    /// (fit ran to the end, score "did not end after SIGINT") on a tree that was right. A user's own background ddml is
    /// left as the shell started it; only the tests restore the default, to test what a terminal's Ctrl+C does.
    /// </summary>
    private static ProcessStartInfo DdmlProcess()
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (SigintIgnoredHere.Value)
        {
            psi.FileName = "env";
            psi.ArgumentList.Add("--default-signal=INT");
            psi.ArgumentList.Add("dotnet");
        }
        return psi;
    }

    /// <summary>Whether this process ignores SIGINT (bit 2 of SigIgn in /proc/self/status).</summary>
    private static readonly Lazy<bool> SigintIgnoredHere = new(() =>
    {
        if (!File.Exists("/proc/self/status")) return false;
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal));
        return line is not null && (Convert.ToUInt64(line["SigIgn:".Length..].Trim(), 16) & 2UL) != 0;
    });

    private (int Exit, string Zip, string Stdout) InterruptRealProcess(string signal = "INT")
    {
        // 20,000 rows and 64 hidden units make an epoch tens of milliseconds: on a loaded machine the signal can take seconds
        // to land, and the run must still be training (not finished or diverged after hundreds of tiny epochs) when it does.
        var train = _h.Blob("train.csv", 20_000);
        var zip = _h.PathOf("m.zip");
        var tool = Path.Combine(AppContext.BaseDirectory, "ddml.dll");
        var psi = DdmlProcess();
        // x3 = b − a + 1 is a linear function of x1 and x2 (CliHarness.Blob): with it the normal rows lie on a plane, the
        // likelihood is unbounded and, at ~3 ms an epoch on a quiet machine, the run can end in divergence before the
        // signal lands. Without x3 the density is proper and the run is still training when SIGINT arrives.
        foreach (var a in new[] { tool, "fit", train, "-m", "rnade", "--exclude", "id,label,x3", "--epochs", "100000", "-p", "EarlyStoppingPatience=0", "-p", "HiddenUnits=64", "-o", zip })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var output = new System.Text.StringBuilder();
        var epochs = 0;
        using var twoEpochs = new ManualResetEventSlim();
        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (output) output.AppendLine(e.Data);
            if (e.Data.StartsWith("epoch", StringComparison.Ordinal) && Interlocked.Increment(ref epochs) >= 2) twoEpochs.Set();
        };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        try
        {
            // The output is read under its lock and only on failure: the reader threads append to it concurrently.
            string Output() { lock (output) return output.ToString(); }
            if (!twoEpochs.Wait(TimeSpan.FromMinutes(3))) Assert.Fail("the tool did not report two epochs: " + Output());
            using (var kill = Process.Start("kill", new[] { "-" + signal, p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) })!) kill.WaitForExit();
            if (!p.WaitForExit(TimeSpan.FromMinutes(2))) Assert.Fail($"the tool did not exit after SIG{signal}: " + Output());
            p.WaitForExit();
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
        }
        lock (output) return (p.ExitCode, zip, output.ToString());
    }

    /// <summary>Runs ddml with <paramref name="args"/> in a process of its own, sends it SIGINT once <paramref name="ready"/>
    /// holds (polled every <paramref name="pollMs"/> ms, for at most two minutes), and returns its exit code and standard
    /// error; the command must still be running at the signal and must end within 30 s of it.</summary>
    private static async Task<(int Exit, string Err)> SigintWhen(string what, Func<Process, bool> ready, int pollMs, params string[] args)
    {
        var psi = DdmlProcess();
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "ddml.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        try
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
            while (!p.HasExited && !ready(p) && DateTime.UtcNow < deadline)
                await Task.Delay(TimeSpan.FromMilliseconds(pollMs));
            Assert.False(p.HasExited, $"{what} ended before the signal");
            Assert.True(DateTime.UtcNow < deadline, $"{what} was not ready for the signal within two minutes");
            using (var kill = Process.Start("kill", new[] { "-INT", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) })!) kill.WaitForExit();
            Assert.True(p.WaitForExit(TimeSpan.FromSeconds(30)), $"{what} did not end after SIGINT");
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
        }
        return (p.ExitCode, await err);
    }
}
