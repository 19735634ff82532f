using System.Diagnostics;
using System.Globalization;
using DeepDensity.Samples;
using Microsoft.ML.DeepDensity.Models.Nvil;
using Microsoft.ML.DeepDensity.Training;

namespace DeepDensity.Benchmarks;

/// <summary>
/// NVIL sigmoid belief networks (784-200 and 784-200-200) on binarized Fashion-MNIST against a PyTorch NVIL with the same
/// architecture (parameter counts checked), learning signal (baseline MLP 100 tanh, running c/v with α = 0.8,
/// normalisation, local signals), initialisation, Adam settings, batch size and epochs. Reports training examples/s, the
/// test log-likelihood estimate (K importance samples) with the standard error of its mean, and the validation bound
/// against wall time after every epoch (both sides include that validation pass in their clocks).
/// </summary>
/// <remarks>
/// The peer's thread count is chosen as a practitioner would: a one-epoch probe on <c>--probe-rows</c> rows at 1 and at
/// 2 threads, then the full run on the faster (small-batch PyTorch is often faster on one thread). The default test
/// subset (first 2000 test rows, K = 1000) and 30 epochs keep the whole run near ten minutes on a quiet 2-core machine;
/// <c>--test 10000</c> is the full test set (about eight more minutes: the peer estimates ~45k sample rows/s).
/// </remarks>
public sealed class NvilBenchmark : IBenchmark
{
    private const int BaselineHidden = NvilOptions.Defaults.BaselineHiddenUnits;

    public string Name => "nvil";
    public string Description => "NVIL SBN on binarized Fashion-MNIST vs PyTorch (--epochs 30 --train 50000 --test 2000 --valid 1000 --eval-k 1000 --arch 200,200-200 --batch 100 --lr 3e-4 --seed 1 --probe-rows 10000 --no-peer, --check-peer)";

    public int Run(BenchmarkArgs args)
    {
        if (!SampleData.FashionMnistAvailable())
        {
            Console.WriteLine($"Fashion-MNIST not found in {SampleData.FashionMnistDirectory}; skipping.");
            return 0;
        }
        int epochs = args.Int("epochs", 30), nTrain = args.Int("train", 50_000), nTest = args.Int("test", 2000), nValid = args.Int("valid", 1000);
        int evalK = args.Int("eval-k", 1000), batch = args.Int("batch", new NvilOptions().BatchSize), probeRows = args.Int("probe-rows", 10_000);
        // Batch 100 and Adam at 3e-4 on both sides: the library's defaults when the recorded figures (docs/models/nvil.md)
        // were taken; the default rate is 1e-3 since session 17 (--lr 1e-3). --batch 20 is the size Mnih & Gregor report (plain SGD there).
        float lr = (float)args.Double("lr", 3e-4);
        ulong seed = (ulong)args.Int("seed", 1);
        var archs = args.String("arch", "200,200-200").Split(',');
        bool peer = !args.Flag("no-peer");

        var total = Stopwatch.StartNew();
        var data = SampleData.LoadBinarizedFashionMnist();
        var train = data.Train.Slice(0, Math.Min(nTrain, data.Train.Rows));
        var valid = data.Validation.Slice(0, Math.Min(nValid, data.Validation.Rows));
        var test = data.Test.Slice(0, Math.Min(nTest, data.Test.Rows));
        Console.WriteLine($"binarized Fashion-MNIST: train {train.Rows}, validation {valid.Rows} (bound per epoch), test {test.Rows} of {data.Test.Rows}; " +
                          $"batch {batch}, Adam lr {lr:G3}, {epochs} epochs, test LL with K = {evalK}; {Environment.ProcessorCount} cores");
        string? trainPath = null, validPath = null, testPath = null, probePath = null;
        if (peer)
        {
            trainPath = Peer.WriteMatrix(train, "nvil-train");
            validPath = Peer.WriteMatrix(valid, "nvil-valid");
            testPath = Peer.WriteMatrix(test, "nvil-test");
            probePath = Peer.WriteMatrix(train.Slice(0, Math.Min(probeRows, train.Rows)), "nvil-probe");
        }

        if (args.Flag("check-peer"))
        {
            bool allSame = true;
            foreach (var arch in archs) allSame &= CheckPeer(trainPath!, train.Columns, arch.Split('-').Select(int.Parse).ToArray(), batch, lr, seed);
            return allSame ? 0 : 1;
        }

        var rows = new List<string>();
        var curves = new List<string>();
        foreach (var arch in archs)
        {
            var latent = arch.Split('-').Select(int.Parse).ToArray();
            long modelParams = NvilNetwork.ParameterCount(train.Columns, latent);
            // Baseline MLP: D → 100 tanh → one output per layer (local learning signals, the default).
            long baselineParams = (long)train.Columns * BaselineHidden + BaselineHidden + (long)BaselineHidden * latent.Length + latent.Length;
            var options = new NvilOptions
            {
                LatentDimensions = latent, MaxEpochs = epochs, BatchSize = batch, LearningRate = lr, EarlyStoppingPatience = 0,
                BaselineHiddenUnits = BaselineHidden, EvaluationSamples = evalK, EvaluationSamplesPerChunk = Math.Min(evalK, 500), Seed = seed,
            };
            var curve = new List<(double Seconds, double Bound)>();
            var proc = Process.GetCurrentProcess();
            var cpu0 = proc.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            var model = NvilModel.Fit(train, options, valid, new SyncProgress(p =>
            {
                curve.Add((p.Elapsed.TotalSeconds, p.ValidationLogLikelihood ?? double.NaN));
                Console.WriteLine($"  C#    {arch}: {p}");
            }));
            // The training loop's own clock (epochs with their validation passes), as the peer times its epochs; the
            // set-up before it (data checks, pixel means, allocation) is excluded on both sides.
            double trainSeconds = curve.Count > 0 ? curve[^1].Seconds : sw.Elapsed.TotalSeconds;
            double exs = (double)epochs * train.Rows / trainSeconds;
            proc.Refresh();
            double cpuUs = (proc.TotalProcessorTime - cpu0).TotalSeconds * 1e6 / ((double)epochs * train.Rows);
            sw.Restart();
            var ld = new float[test.Rows];
            var se = new float[test.Rows];
            model.LogDensity(test.AsSpan(), ld, se);
            double evalSeconds = sw.Elapsed.TotalSeconds;
            // Rows whose standard error is unknown (+∞: fewer than 4 effective samples) are counted, not averaged.
            var knownSe = se.Where(float.IsFinite).Select(v => (double)v).ToArray();
            int unknownSe = se.Length - knownSe.Length;
            double ll = ld.Average(v => (double)v), meanSe = knownSe.DefaultIfEmpty(double.NaN).Average();
            // Standard error of the mean over rows of the per-row estimates (each row's own SE is the IS error); unknown
            // (+∞) when a row's is.
            double setSe = Math.Sqrt(se.Sum(v => (double)v * v)) / test.Rows;
            Console.WriteLine($"  C#    {arch}: {exs:F0} train ex/s ({cpuUs:F0} CPU-µs/example), best epoch {model.TrainingSummary!.BestEpoch}, " +
                              $"test LL {ll:F2} (row SE {meanSe:F3}, SE of mean {setSe:F3}{(unknownSe > 0 ? $", {unknownSe} rows' SE unknown" : "")}), eval {evalSeconds:F1} s; parameters {modelParams} + baseline {baselineParams}");

            List<(double Seconds, double Bound)>? peerCurve = null;
            if (peer)
            {
                string common = $"--valid {validPath} --latent {arch} --batch {batch} --lr {lr.ToString(CultureInfo.InvariantCulture)} --baseline-hidden {BaselineHidden} --seed {seed}";
                var (probeCode, _, probeErr, threads) = Peer.RunTorchBest(Peer.Script("nvil_torch.py"),
                    $"--train {probePath} --test {testPath} --epochs 1 --eval-k 0 {common}", TimeSpan.FromMinutes(30), v => v["TRAIN_SECONDS"]);
                var (code, stdout, stderr) = probeCode != 0 ? (probeCode, "", probeErr)
                    : Peer.RunPython(Peer.Script("nvil_torch.py"), $"--train {trainPath} --test {testPath} --epochs {epochs} --eval-k {evalK} {common}", TimeSpan.FromHours(3), threads);
                var epochLines = stdout.Split('\n').Where(l => l.StartsWith("EPOCH", StringComparison.Ordinal)).ToList();
                foreach (var line in epochLines) Console.WriteLine($"  torch {arch}: {line.Trim()}");
                if (code != 0) { Console.WriteLine($"  PyTorch peer failed ({code}): {stderr}"); peer = false; }
                else
                {
                    var v = Peer.ReadValues(stdout);
                    double torchCpuUs = v["TRAIN_CPU_SECONDS"] * 1e6 / ((double)epochs * train.Rows);
                    bool same = (long)v["PARAMS_MODEL"] == modelParams && (long)v["PARAMS_BASELINE"] == baselineParams;
                    Console.WriteLine($"  torch {arch} ({threads} thr): {v["TRAIN_EXS"]:F0} train ex/s ({torchCpuUs:F0} CPU-µs/example), test LL {v["TEST_LL"]:F2} " +
                                      $"(row SE {v["TEST_SE"]:F3}, SE of mean {v["TEST_SE_OF_MEAN"]:F3}), eval {v["EVAL_SECONDS"]:F1} s; parameters {v["PARAMS_MODEL"]} + baseline {v["PARAMS_BASELINE"]}" +
                                      (same ? " (same as C#)" : " — PARAMETER COUNTS DIFFER FROM C#"));
                    rows.Add($"| {arch} | {modelParams:N0} + {baselineParams:N0}{(same ? "" : " (peer differs!)")} | {epochs} | {exs:F0} | {v["TRAIN_EXS"]:F0} ({threads} thr) | {exs / v["TRAIN_EXS"]:F2}x | " +
                             $"{cpuUs:F0} / {torchCpuUs:F0} | {ll:F2} ± {setSe:F2} | {v["TEST_LL"]:F2} ± {v["TEST_SE_OF_MEAN"]:F2} | {evalSeconds:F1} s / {v["EVAL_SECONDS"]:F1} s |");
                    // EPOCH e valid <bound> elapsed <seconds> train ...
                    peerCurve = epochLines.Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                        .Select(p => (double.Parse(p[5], CultureInfo.InvariantCulture), double.Parse(p[3], CultureInfo.InvariantCulture))).ToList();
                }
            }
            if (peerCurve is null) rows.Add($"| {arch} | {modelParams:N0} + {baselineParams:N0} | {epochs} | {exs:F0} | - | - | {cpuUs:F0} / - | {ll:F2} ± {setSe:F2} | - | {evalSeconds:F1} s |");
            curves.AddRange(CurveTable(arch, curve, peerCurve));
        }
        Console.WriteLine();
        Console.WriteLine($"| latent | parameters (model + baseline) | epochs | C# train ex/s | PyTorch train ex/s | speed-up | CPU-µs/example C# / PyTorch | C# test LL (K={evalK}, {test.Rows} rows) | PyTorch test LL | eval time C# / PyTorch |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in rows) Console.WriteLine(r);
        Console.WriteLine();
        Console.WriteLine("validation bound (nats, 1-sample, validation rows) against cumulative wall time, per epoch:");
        foreach (var c in curves) Console.WriteLine(c);
        Console.WriteLine($"total {total.Elapsed.TotalMinutes:F1} min");
        return 0;
    }

    /// <summary>
    /// Shows that the peer is the same model and signal: it writes perturbed parameters, the first minibatch, fixed
    /// uniforms, running c/v, its learning signals, baseline outputs, updated c/v and every parameter's gradient (the
    /// baseline's included) for one NVIL step; NvilObjective recomputes them from the same numbers (two row blocks, so
    /// the block reduction takes part too).
    /// </summary>
    private static bool CheckPeer(string trainPath, int d, int[] latent, int batch, float lr, ulong seed)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"nvil-check-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        string arch = string.Join('-', latent);
        var (code, _, stderr) = Peer.RunPython(Peer.Script("nvil_torch.py"),
            $"--train {trainPath} --valid {trainPath} --test {trainPath} --latent {arch} --batch {batch} --lr {lr.ToString(CultureInfo.InvariantCulture)} " +
            $"--baseline-hidden {BaselineHidden} --seed {seed} --check {dir}", TimeSpan.FromMinutes(5), threads: 1);
        if (code != 0) { Console.WriteLine($"peer check failed ({code}): {stderr.Trim()}"); return false; }
        float[] Read(string name) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(Path.Combine(dir, $"check-{name}.f32"))).ToArray();
        double[] Read64(string name) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(File.ReadAllBytes(Path.Combine(dir, $"check-{name}.f64"))).ToArray();

        var options = new NvilOptions { LatentDimensions = latent, BatchSize = batch, BaselineHiddenUnits = BaselineHidden };
        var net = new NvilNetwork(d, latent);
        var objective = new NvilObjective(net, options, new Microsoft.ML.DeepDensity.Randomness.RandomStream(seed));
        foreach (var p in objective.Parameters.Items) Read(p.Name).CopyTo(p.Value, 0);
        int L = latent.Length;
        var c0 = Read64("c0"); var v0 = Read64("v0");
        objective.RestoreState(c0.Concat(v0).Append(1.0).ToArray());
        objective.FixedUniforms = Enumerable.Range(0, L).Select(l => Read($"u{l}")).ToArray();
        objective.ComputeGradient(Read("x"), batch, new Microsoft.ML.DeepDensity.Randomness.RandomStream(seed));

        // Signal minus baseline (what the statistics and the inference gradient use), per signal and row.
        float[] raw = Read("raw"), cb = Read("cb");
        double worstSignal = 0, worstStat = 0, worst = 0;
        string worstName = "";
        for (int l = 0; l < L; l++)
        {
            var ours = objective.SignalMinusBaseline(l, batch);
            for (int j = 0; j < batch; j++)
                worstSignal = Math.Max(worstSignal, Math.Abs(ours[j] - (raw[j * L + l] - cb[j * L + l])) / Math.Max(1, Math.Abs(raw[j * L + l])));
        }
        double[] c1 = Read64("c1"), v1 = Read64("v1");
        for (int l = 0; l < L; l++)
            worstStat = Math.Max(worstStat, Math.Max(Math.Abs(objective.Mean[l] - c1[l]) / Math.Max(1, Math.Abs(c1[l])),
                                                     Math.Abs(objective.Variance[l] - v1[l]) / Math.Max(1, v1[l])));
        foreach (var p in objective.Parameters.Items)
        {
            var theirs = Read("grad-" + p.Name);
            double scale = Math.Max(1e-3, theirs.Max(v => Math.Abs(v)));
            double diff = p.Gradient.Zip(theirs, (a, b) => Math.Abs(a - b)).Max() / scale;
            if (diff > worst) (worst, worstName) = (diff, p.Name);
        }
        Directory.Delete(dir, recursive: true);
        bool same = worstSignal < 1e-5 && worstStat < 1e-5 && worst < 1e-4;
        Console.WriteLine($"peer check {arch} ({batch} rows, perturbed parameters, fixed uniforms): largest relative difference of the signal " +
                          $"{worstSignal:E2}, of the running c/v {worstStat:E2}; largest gradient difference {worst:E2} of the parameter's largest entry " +
                          $"({worstName}): {(same ? "same model" : "MISMATCH")}");
        return same;
    }

    /// <summary>Per-epoch table of both curves, then who first reaches a few bound levels the slower learner also reaches.</summary>
    private static IEnumerable<string> CurveTable(string arch, List<(double Seconds, double Bound)> ours, List<(double Seconds, double Bound)>? theirs)
    {
        yield return "";
        yield return $"{arch}: | epoch | C# s | C# bound | PyTorch s | PyTorch bound |";
        yield return $"{new string(' ', arch.Length)}  |---|---|---|---|---|";
        for (int e = 0; e < Math.Max(ours.Count, theirs?.Count ?? 0); e++)
        {
            string c = e < ours.Count ? $"{ours[e].Seconds:F1} | {ours[e].Bound:F2}" : "- | -";
            string t = theirs is not null && e < theirs.Count ? $"{theirs[e].Seconds:F1} | {theirs[e].Bound:F2}" : "- | -";
            yield return $"{new string(' ', arch.Length)}  | {e + 1} | {c} | {t} |";
        }
        if (theirs is null || theirs.Count == 0 || ours.Count == 0) yield break;
        double common = Math.Min(ours.Max(p => p.Bound), theirs.Max(p => p.Bound));
        foreach (double level in new[] { common - 10, common - 3, common })
        {
            static string First(List<(double Seconds, double Bound)> curve, double level)
            {
                int i = curve.FindIndex(p => p.Bound >= level);
                return i < 0 ? "never" : $"{curve[i].Seconds:F1} s (epoch {i + 1})";
            }
            yield return $"{new string(' ', arch.Length)}  bound ≥ {level:F2}: C# at {First(ours, level)}, PyTorch at {First(theirs, level)}";
        }
    }

    /// <summary>Prints progress on the training thread (Progress&lt;T&gt; would post to the thread pool, out of order).</summary>
    private sealed class SyncProgress(Action<TrainingProgress> action) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => action(value);
    }
}
