using System.Diagnostics;
using DeepDensity.Samples;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Training;

namespace DeepDensity.Benchmarks;

/// <summary>
/// IWAE (k = 5) and VAE (k = 1) on binarized Fashion-MNIST, Burda et al. architecture 1 (784-200-200-50, tanh), against a
/// PyTorch reference with the same architecture, initialisation, optimiser, batch size and epochs (ours on 2 threads; PyTorch the faster of 1 and 2 threads).
/// Reports training examples/s and the test log-likelihood estimated with K importance samples. The speed ratios come
/// from alternating rounds after the full run (ours, then the peer on 1 and 2 threads, repeated): this VM's speed
/// drifts by ±20 % over minutes, so one C# run and one peer run minutes apart can differ by that much for no reason in
/// either program; the median of per-round ratios taken seconds apart does not.
/// </summary>
public sealed class IwaeBenchmark : IBenchmark
{
    public string Name => "iwae";
    public string Description => "IWAE/VAE on binarized Fashion-MNIST vs PyTorch (--epochs 10 --train 50000 --test 1000 --eval-k 5000 --k 5,1 --batch 100 --seed 1 --no-peer; speed: --rounds 3 alternating rounds of --round-epochs 2 and --round-test 100 rows)";

    public int Run(BenchmarkArgs args)
    {
        if (!SampleData.FashionMnistAvailable())
        {
            Console.WriteLine($"Fashion-MNIST not found in {SampleData.FashionMnistDirectory}; skipping.");
            return 0;
        }
        int epochs = args.Int("epochs", 10), nTrain = args.Int("train", 50_000), nTest = args.Int("test", 1000);
        int evalK = args.Int("eval-k", 5000), batch = args.Int("batch", 100);
        float lr = (float)args.Double("lr", 1e-3);
        ulong seed = (ulong)args.Int("seed", 1);
        var ks = args.String("k", "5,1").Split(',').Select(int.Parse).ToArray();
        bool peer = !args.Flag("no-peer");

        var data = SampleData.LoadBinarizedFashionMnist();
        var train = data.Train.Slice(0, Math.Min(nTrain, data.Train.Rows));
        var test = data.Test.Slice(0, Math.Min(nTest, data.Test.Rows));
        Console.WriteLine($"binarized Fashion-MNIST: train {train.Rows}, test {test.Rows} (of {data.Test.Rows}); 784-200-200-50 tanh, " +
                          $"batch {batch}, Adam lr {lr:G3}, {epochs} epochs, test LL with K = {evalK}; {Environment.ProcessorCount} cores");
        Console.WriteLine(CoreSpeed.Describe());
        string? trainPath = null, testPath = null;
        if (peer)
        {
            trainPath = Peer.WriteMatrix(train, "iwae-train");
            testPath = Peer.WriteMatrix(test, "iwae-test");
        }

        int rounds = args.Int("rounds", 3), roundEpochs = args.Int("round-epochs", 2), roundTestRows = Math.Min(args.Int("round-test", 100), test.Rows);
        var roundTest = test.Slice(0, roundTestRows);
        string? roundTestPath = peer && rounds > 0 ? Peer.WriteMatrix(roundTest, "iwae-round-test") : null;
        var rows = new List<string>();
        var roundRows = new List<string>();
        foreach (int k in ks)
        {
            var options = Options(k, epochs, batch, lr, evalK, seed);
            var proc = Process.GetCurrentProcess();
            var cpu0 = proc.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            var model = IwaeModel.Fit(train, options, null, new SyncProgress(p => Console.WriteLine($"  C#    k={k}: {p}")));
            double trainSeconds = sw.Elapsed.TotalSeconds;
            double exs = (double)epochs * train.Rows / trainSeconds;
            proc.Refresh();
            // CPU time (both threads) per example: less sensitive than wall time to other processes on a shared machine.
            double cpuUs = (proc.TotalProcessorTime - cpu0).TotalSeconds * 1e6 / ((double)epochs * train.Rows);
            sw.Restart();
            var ld = new float[test.Rows];
            var se = new float[test.Rows];
            model.LogDensity(test.AsSpan(), ld, se);
            double evalSeconds = sw.Elapsed.TotalSeconds;
            // Rows whose standard error is unknown (+∞: fewer than 4 effective samples) are counted, not averaged.
            double ll = ld.Average(v => (double)v), meanSe = se.Where(float.IsFinite).Select(v => (double)v).DefaultIfEmpty(double.NaN).Average();
            int unknownSe = se.Count(float.IsPositiveInfinity);
            double trainBound = model.TrainingSummary!.FinalTrainLogLikelihood;
            Console.WriteLine($"  C#    k={k}: {exs:F0} train ex/s ({cpuUs:F0} CPU-µs/example), final train bound {trainBound:F2}, test LL {ll:F2} (mean SE {meanSe:F3}{(unknownSe > 0 ? $", {unknownSe} rows' SE unknown" : "")}), eval {evalSeconds:F1} s");

            if (peer)
            {
                var (code, stdout, stderr, _) = Peer.RunTorchBest(Peer.Script("iwae_torch.py"),
                    $"--train {trainPath} --test {testPath} --k {k} --epochs {epochs} --batch {batch} --lr {lr} --eval-k {evalK} --seed {seed}",
                    TimeSpan.FromMinutes(60), v => 1 / v["TRAIN_EXS"]);
                foreach (var line in stdout.Split('\n').Where(l => l.StartsWith("EPOCH", StringComparison.Ordinal)))
                    Console.WriteLine($"  torch k={k}: {line.Trim()}");
                if (code != 0) { Console.WriteLine($"  PyTorch peer failed ({code}): {stderr}"); peer = false; }
                else
                {
                    var v = Peer.ReadValues(stdout);
                    Console.WriteLine($"  torch k={k}: {v["TRAIN_EXS"]:F0} train ex/s ({v["TRAIN_CPU_SECONDS"] * 1e6 / ((double)epochs * train.Rows):F0} CPU-µs/example), final train bound {v["TRAIN_BOUND"]:F2}, test LL {v["TEST_LL"]:F2} (mean SE {v["TEST_SE"]:F3}), eval {v["EVAL_SECONDS"]:F1} s");
                    double torchCpuUs = v["TRAIN_CPU_SECONDS"] * 1e6 / ((double)epochs * train.Rows);
                    if (rounds > 0) roundRows.Add(SpeedRounds(k, train, roundTest, trainPath!, roundTestPath!, rounds, roundEpochs, batch, lr, evalK, seed));
                    rows.Add($"| {(k == 1 ? "VAE" : "IWAE")} k={k} | {exs:F0} | {v["TRAIN_EXS"]:F0} | {exs / v["TRAIN_EXS"]:F2}x | {cpuUs:F0} / {torchCpuUs:F0} ({torchCpuUs / cpuUs:F2}x) | {ll:F2} ± {meanSe:F2} | {v["TEST_LL"]:F2} ± {v["TEST_SE"]:F2} | {evalSeconds:F1} s / {v["EVAL_SECONDS"]:F1} s |");
                    continue;
                }
            }
            rows.Add($"| {(k == 1 ? "VAE" : "IWAE")} k={k} | {exs:F0} | - | - | {cpuUs:F0} / - | {ll:F2} ± {meanSe:F2} | - | {evalSeconds:F1} s |");
        }
        Console.WriteLine();
        Console.WriteLine($"One run of each (PyTorch at the thread count of its faster training; minutes apart, so the speed figures carry the VM's drift — the rounds below are the speed reference):");
        Console.WriteLine($"| model | C# train ex/s | PyTorch train ex/s | speed-up | CPU-µs/example C# / PyTorch | C# test LL (K={evalK}) | PyTorch test LL | eval time C# / PyTorch |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        foreach (var r in rows) Console.WriteLine(r);
        if (roundRows.Count > 0)
        {
            Console.WriteLine();
            Console.WriteLine($"Speed, alternating rounds ({rounds} × [ours, then PyTorch on 1 and on 2 threads, the faster for each figure]; {roundEpochs} epochs, evaluation of {roundTest.Rows} test rows with K = {evalK}); median of the per-round ratios:");
            Console.WriteLine("| model | training speed-up (median; each round) | evaluation speed-up (median; each round) |");
            Console.WriteLine("|---|---|---|");
            foreach (var r in roundRows) Console.WriteLine(r);
        }
        return 0;
    }

    /// <summary>The benchmark's fit: k samples, fixed epochs, no validation split or early stopping; tanh, as the peer
    /// (Burda et al.'s architecture 1), whatever the library's default activation.</summary>
    private static IwaeOptions Options(int k, int epochs, int batch, float lr, int evalK, ulong seed) => new()
    {
        Activation = Activation.Tanh, Samples = k, MaxEpochs = epochs, BatchSize = batch, LearningRate = lr, ValidationFraction = 0,
        EarlyStoppingPatience = 0, EvaluationSamples = evalK, EvaluationSamplesPerChunk = Math.Min(evalK, 500), Seed = seed,
    };

    /// <summary>Rounds of [our fit and evaluation, then the peer's], seconds apart; returns the table row of median ratios.</summary>
    private static string SpeedRounds(int k, RowMatrix train, RowMatrix test, string trainPath, string testPath,
        int rounds, int epochs, int batch, float lr, int evalK, ulong seed)
    {
        var trainRatios = new List<double>();
        var evalRatios = new List<double>();
        for (int round = 1; round <= rounds; round++)
        {
            var options = Options(k, epochs, batch, lr, evalK, seed);
            var sw = Stopwatch.StartNew();
            var model = IwaeModel.Fit(train, options);
            double exs = (double)epochs * train.Rows / sw.Elapsed.TotalSeconds;
            sw.Restart();
            model.LogDensity(test.AsSpan(), new float[test.Rows]);
            double evalSeconds = sw.Elapsed.TotalSeconds;
            // The peer on 1 and on 2 threads, each figure from its faster thread count (small-batch training is often
            // fastest on one thread, the 500-sample evaluation passes on two).
            double peerExs = 0, peerEval = double.PositiveInfinity;
            string peerThreadsUsed = "";
            foreach (int threads in new[] { 1, 2 })
            {
                var (code, stdout, stderr) = Peer.RunPython(Peer.Script("iwae_torch.py"),
                    $"--train {trainPath} --test {testPath} --k {k} --epochs {epochs} --batch {batch} --lr {lr} --eval-k {evalK} --seed {seed}",
                    TimeSpan.FromMinutes(30), threads);
                if (code != 0) { Console.WriteLine($"  round {round}: PyTorch peer failed ({code}): {stderr}"); return $"| k={k} | - | - |"; }
                var v = Peer.ReadValues(stdout);
                peerExs = Math.Max(peerExs, v["TRAIN_EXS"]);
                peerEval = Math.Min(peerEval, v["EVAL_SECONDS"]);
                peerThreadsUsed += $"{(peerThreadsUsed.Length > 0 ? ", " : "")}{threads} thread{(threads > 1 ? "s" : "")}: {v["TRAIN_EXS"]:F0} ex/s, {v["EVAL_SECONDS"]:F2} s";
            }
            trainRatios.Add(exs / peerExs);
            evalRatios.Add(peerEval / evalSeconds);
            Console.WriteLine($"  round {round}, k={k}: train {exs:F0} vs {peerExs:F0} ex/s ({trainRatios[^1]:F2}x); " +
                              $"evaluation {evalSeconds:F2} vs {peerEval:F2} s ({evalRatios[^1]:F2}x) [PyTorch {peerThreadsUsed}]");
            // The evaluation is almost all the decoder's products for evalK samples per row: how close both sides run to
            // this machine's float GEMM ceiling, and what 5x would need.
            double flops = test.Rows * EvaluationFlops(train.Columns, evalK);
            double ceiling = CoreSpeed.Sgemm(1024, parallel: true, repeats: 1);
            Console.WriteLine($"    evaluation products {flops / 1e9:F0} GFLOP: ours {flops / evalSeconds / 1e9:F0} GFLOP/s, PyTorch {flops / peerEval / 1e9:F0}; " +
                              $"5x PyTorch needs {5 * flops / peerEval / 1e9:F0} GFLOP/s; our SGEMM at 1024³ on both cores now: {ceiling:F0} GFLOP/s");
        }
        string Each(List<double> x) => string.Join(", ", x.Select(r => $"{r:F2}"));
        return $"| {(k == 1 ? "VAE" : "IWAE")} k={k} | **{Peer.Median(trainRatios):F2}×** ({Each(trainRatios)}) | **{Peer.Median(evalRatios):F2}×** ({Each(evalRatios)}) |";
    }

    /// <summary>Multiply-add flops of one row's evaluation (784-200-200-50: the encoder once, the decoder for each of the
    /// <paramref name="samples"/>), twice the multiply-adds.</summary>
    private static double EvaluationFlops(int d, int samples)
    {
        const int H = 200, Z = 50;
        double encoder = (double)d * H + H * H + H * 2 * Z, decoder = (double)Z * H + H * H + (double)H * d;
        return 2 * (encoder + samples * decoder);
    }

    /// <summary>Prints progress on the training thread (Progress&lt;T&gt; would post to the thread pool, out of order).</summary>
    private sealed class SyncProgress(Action<TrainingProgress> action) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => action(value);
    }
}
