using System.Diagnostics;
using System.Globalization;
using DeepDensity.Samples;
using Microsoft.ML.DeepDensity.Models.Nvil;
using Microsoft.ML.DeepDensity.Training;

namespace DeepDensity.Benchmarks;

/// <summary>
/// NVIL sigmoid belief networks (784-200 and 784-200-200) on binarized Fashion-MNIST against a PyTorch NVIL with the same
/// architecture, learning signal (baseline MLP 100 tanh, running c/v with α = 0.8, normalisation, local signals),
/// initialisation, Adam settings, batch size and epochs. Reports training examples/s, the test log-likelihood estimate
/// (K importance samples, full test set) with its mean standard error, and the validation bound against wall time after
/// every epoch (both sides include that validation pass in their clocks). The peer runs on 1 and on 2 threads and the
/// faster run is reported (<see cref="Peer.RunTorchBest"/>).
/// </summary>
public sealed class NvilBenchmark : IBenchmark
{
    public string Name => "nvil";
    public string Description => "NVIL SBN on binarized Fashion-MNIST vs PyTorch (--epochs 50 --train 50000 --test 10000 --valid 1000 --eval-k 1000 --arch 200,200-200 --batch 100 --lr 3e-4 --seed 1 --no-peer)";

    public int Run(BenchmarkArgs args)
    {
        if (!SampleData.FashionMnistAvailable())
        {
            Console.WriteLine($"Fashion-MNIST not found in {SampleData.FashionMnistDirectory}; skipping.");
            return 0;
        }
        int epochs = args.Int("epochs", 50), nTrain = args.Int("train", 50_000), nTest = args.Int("test", 10_000), nValid = args.Int("valid", 1000);
        int evalK = args.Int("eval-k", 1000), batch = args.Int("batch", 100);
        float lr = (float)args.Double("lr", 3e-4);
        ulong seed = (ulong)args.Int("seed", 1);
        var archs = args.String("arch", "200,200-200").Split(',');
        bool peer = !args.Flag("no-peer");

        var data = SampleData.LoadBinarizedFashionMnist();
        var train = data.Train.Slice(0, Math.Min(nTrain, data.Train.Rows));
        var valid = data.Validation.Slice(0, Math.Min(nValid, data.Validation.Rows));
        var test = data.Test.Slice(0, Math.Min(nTest, data.Test.Rows));
        Console.WriteLine($"binarized Fashion-MNIST: train {train.Rows}, validation {valid.Rows} (bound per epoch), test {test.Rows}; " +
                          $"batch {batch}, Adam lr {lr:G3}, {epochs} epochs, test LL with K = {evalK}; {Environment.ProcessorCount} cores");
        string? trainPath = null, validPath = null, testPath = null;
        if (peer)
        {
            trainPath = Peer.WriteMatrix(train, "nvil-train");
            validPath = Peer.WriteMatrix(valid, "nvil-valid");
            testPath = Peer.WriteMatrix(test, "nvil-test");
        }

        var rows = new List<string>();
        var curves = new List<string>();
        foreach (var arch in archs)
        {
            var latent = arch.Split('-').Select(int.Parse).ToArray();
            var options = new NvilOptions
            {
                LatentDimensions = latent, MaxEpochs = epochs, BatchSize = batch, LearningRate = lr, EarlyStoppingPatience = 0,
                EvaluationSamples = evalK, EvaluationSamplesPerChunk = Math.Min(evalK, 500), Seed = seed,
            };
            var curve = new List<(int Epoch, double Seconds, double Bound)>();
            var proc = Process.GetCurrentProcess();
            var cpu0 = proc.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            var model = NvilModel.Fit(train, options, valid, new SyncProgress(p =>
            {
                curve.Add((p.Epoch, p.Elapsed.TotalSeconds, p.ValidationLogLikelihood ?? double.NaN));
                Console.WriteLine($"  C#    {arch}: {p}");
            }));
            double trainSeconds = sw.Elapsed.TotalSeconds;
            double exs = (double)epochs * train.Rows / trainSeconds;
            proc.Refresh();
            double cpuUs = (proc.TotalProcessorTime - cpu0).TotalSeconds * 1e6 / ((double)epochs * train.Rows);
            sw.Restart();
            var ld = new float[test.Rows];
            var se = new float[test.Rows];
            model.LogDensity(test.AsSpan(), ld, se);
            double evalSeconds = sw.Elapsed.TotalSeconds;
            double ll = ld.Average(v => (double)v), meanSe = se.Average(v => (double)v);
            // Standard error of the mean over rows of the per-row estimates (each row's own SE is the IS error).
            double setSe = Math.Sqrt(se.Sum(v => (double)v * v)) / test.Rows;
            Console.WriteLine($"  C#    {arch}: {exs:F0} train ex/s ({cpuUs:F0} CPU-µs/example), best epoch {model.TrainingSummary!.BestEpoch}, " +
                              $"test LL {ll:F2} (row SE {meanSe:F3}, SE of mean {setSe:F3}), eval {evalSeconds:F1} s");
            curves.Add($"C# {arch}: " + string.Join("  ", curve.Select(c => $"{c.Seconds:F0}s:{c.Bound:F1}")));

            if (peer)
            {
                var (code, stdout, stderr, threads) = Peer.RunTorchBest(Peer.Script("nvil_torch.py"),
                    $"--train {trainPath} --valid {validPath} --test {testPath} --latent {arch} --epochs {epochs} --batch {batch} --lr {lr} --eval-k {evalK} --seed {seed}",
                    TimeSpan.FromHours(3), v => 1 / v["TRAIN_EXS"]);
                var epochLines = stdout.Split('\n').Where(l => l.StartsWith("EPOCH", StringComparison.Ordinal)).ToList();
                foreach (var line in epochLines) Console.WriteLine($"  torch {arch}: {line.Trim()}");
                if (code != 0) { Console.WriteLine($"  PyTorch peer failed ({code}): {stderr}"); peer = false; }
                else
                {
                    var v = Peer.ReadValues(stdout);
                    double torchCpuUs = v["TRAIN_CPU_SECONDS"] * 1e6 / ((double)epochs * train.Rows);
                    Console.WriteLine($"  torch {arch} ({threads} thr): {v["TRAIN_EXS"]:F0} train ex/s ({torchCpuUs:F0} CPU-µs/example), test LL {v["TEST_LL"]:F2} (row SE {v["TEST_SE"]:F3}, SE of mean {v["TEST_SE_OF_MEAN"]:F3}), eval {v["EVAL_SECONDS"]:F1} s");
                    rows.Add($"| {arch} | {exs:F0} | {v["TRAIN_EXS"]:F0} ({threads} thr) | {exs / v["TRAIN_EXS"]:F2}x | {cpuUs:F0} / {torchCpuUs:F0} | {ll:F2} ± {setSe:F2} | {v["TEST_LL"]:F2} ± {v["TEST_SE_OF_MEAN"]:F2} | {evalSeconds:F1} s / {v["EVAL_SECONDS"]:F1} s |");
                    // EPOCH e valid <bound> elapsed <seconds> train ...
                    curves.Add($"torch {arch}: " + string.Join("  ", epochLines.Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                        .Select(p => $"{double.Parse(p[5], CultureInfo.InvariantCulture):F0}s:{double.Parse(p[3], CultureInfo.InvariantCulture):F1}")));
                    continue;
                }
            }
            rows.Add($"| {arch} | {exs:F0} | - | - | {cpuUs:F0} / - | {ll:F2} ± {setSe:F2} | - | {evalSeconds:F1} s |");
        }
        Console.WriteLine();
        Console.WriteLine($"| latent | C# train ex/s | PyTorch train ex/s | speed-up | CPU-µs/example C# / PyTorch | C# test LL (K={evalK}) | PyTorch test LL | eval time C# / PyTorch |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        foreach (var r in rows) Console.WriteLine(r);
        Console.WriteLine();
        Console.WriteLine("validation bound against cumulative wall time (seconds:bound, one entry per epoch):");
        foreach (var c in curves) Console.WriteLine("  " + c);
        return 0;
    }

    /// <summary>Prints progress on the training thread (Progress&lt;T&gt; would post to the thread pool, out of order).</summary>
    private sealed class SyncProgress(Action<TrainingProgress> action) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => action(value);
    }
}
