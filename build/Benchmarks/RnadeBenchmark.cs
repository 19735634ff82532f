using System.Diagnostics;
using System.Globalization;
using DeepDensity.Samples;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rnade;

namespace DeepDensity.Benchmarks;

/// <summary>
/// RNADE training and scoring throughput and test log-likelihood against a PyTorch reference RNADE of the same
/// configuration (rnade_torch.py), ours on 2 threads, PyTorch the faster of 1 and 2 threads, same fixed epoch count, same data.
/// </summary>
public sealed class RnadeBenchmark : IBenchmark
{
    public string Name => "rnade";
    public string Description => "RNADE vs PyTorch: test LL, training examples/s, scoring rows/s (--dataset digits|fashion, --epochs, --train N, --hidden, --components, --seed, --no-peer, --profile)";

    public int Run(BenchmarkArgs args)
    {
        if (args.Flag("profile")) return Profile(args);
        string dataset = args.String("dataset", SampleData.FashionMnistAvailable() ? "fashion" : "digits");
        int? maxTrain = args.Int("train", 0) is > 0 and var t ? t : null;
        var split = dataset switch
        {
            "digits" => SampleData.LoadDigits(),
            "fashion" => SampleData.LoadFashionMnist8x8(maxTrain: maxTrain),
            _ => throw new ArgumentException($"--dataset must be digits or fashion (got '{dataset}')."),
        };
        var train = maxTrain is int mt && mt < split.Train.Rows ? split.Train.SelectRows(Enumerable.Range(0, mt).ToArray()) : split.Train;
        // Digits is tiny: without early stopping both models overfit after ~20 epochs, so longer runs compare overfitting.
        int epochs = args.Int("epochs", 20);
        int seed = args.Int("seed", 1);
        var options = new RnadeOptions
        {
            HiddenUnits = args.Int("hidden", 50),
            Components = args.Int("components", 10),
            MaxEpochs = epochs,
            BatchSize = args.Int("batch", 100),
            LearningRate = (float)args.Double("lr", 1e-3),
            EarlyStoppingPatience = 0,
            ValidationFraction = 0, // both train on all training rows for the fixed epoch count; validation only reported
            Seed = (ulong)seed,
        };
        Console.WriteLine($"data: {split.Name}, train {train.Rows} × {train.Columns}, validation {split.Validation.Rows}, test {split.Test.Rows}");
        Console.WriteLine($"config: H={options.HiddenUnits} K={options.Components} ReLU, standardised, Adam lr={options.LearningRate} batch={options.BatchSize}, " +
                          $"{epochs} epochs, clip 10, σ-scaled mean gradient; ours 2 threads, PyTorch the faster of 1 and 2");

        Dictionary<string, double>? peer = null;
        if (!args.Flag("no-peer"))
        {
            var trainPath = Peer.WriteMatrix(train, "rnade-train");
            Peer.WriteMatrix(split.Validation, "rnade-valid");
            Peer.WriteMatrix(split.Test, "rnade-test");
            string dir = Path.GetDirectoryName(trainPath)!;
            string peerArgs = string.Join(' ', new object[] { $"\"{dir}\"", train.Columns, options.HiddenUnits, options.Components, epochs,
                options.BatchSize, options.LearningRate.ToString("R", CultureInfo.InvariantCulture), seed }.Select(o => o.ToString()));
            var sw = Stopwatch.StartNew();
            var (code, stdout, stderr, _) = Peer.RunTorchBest(Peer.Script("rnade_torch.py"), peerArgs, TimeSpan.FromMinutes(30),
                v => 1 / v["TRAIN_EXAMPLES_PER_SECOND"]);
            if (code != 0) Console.WriteLine($"peer failed ({code}): {stderr.Trim()}");
            else
            {
                peer = Peer.ReadValues(stdout);
                Console.WriteLine($"peer: PyTorch {TorchVersion()} finished in {sw.Elapsed.TotalSeconds:F1} s");
            }
        }

        // Ours: the same protocol. Throughput from the per-epoch training time (validation excluded, as in the peer).
        var clock = Stopwatch.StartNew();
        var model = RnadeModel.Fit(train, options);
        double fitSeconds = clock.Elapsed.TotalSeconds;
        double trainSeconds = model.TrainingSummary!.History.Sum(h => train.Rows / h.ExamplesPerSecond);
        double trainRate = epochs * train.Rows / trainSeconds;
        double testLl = model.AverageLogDensity(split.Test);
        double validLl = model.AverageLogDensity(split.Validation);
        var scores = new float[split.Test.Rows];
        model.LogDensity(split.Test.AsSpan(), scores);
        double scoreSeconds = Peer.MedianSeconds(() => model.LogDensity(split.Test.AsSpan(), scores), 5);
        double scoreRate = split.Test.Rows / scoreSeconds;
        var history = model.TrainingSummary.History;
        Console.WriteLine($"ours: fit {fitSeconds:F1} s; examples/s in epoch 1 {history[0].ExamplesPerSecond:F0}, in the last epoch {history[^1].ExamplesPerSecond:F0}");

        Console.WriteLine();
        Console.WriteLine($"{"",-28} {"ours",12} {"PyTorch",12} {"ratio",8}");
        Row("test log-likelihood (nats)", testLl, peer?.GetValueOrDefault("TEST_LL", double.NaN), difference: true);
        Row("validation log-likelihood", validLl, peer?.GetValueOrDefault("VALID_LL", double.NaN), difference: true);
        Row("training examples/s", trainRate, peer?.GetValueOrDefault("TRAIN_EXAMPLES_PER_SECOND", double.NaN), difference: false);
        Row("scoring rows/s", scoreRate, peer?.GetValueOrDefault("SCORE_ROWS_PER_SECOND", double.NaN), difference: false);
        return 0;
    }

    /// <summary>Time per minibatch of the objective's parts on random data (CPU time, so a busy machine does not distort it).</summary>
    private static int Profile(BenchmarkArgs args)
    {
        int d = 63, h = args.Int("hidden", 50), k = args.Int("components", 10), batch = args.Int("batch", 100), iters = args.Int("iterations", 300);
        var net = new RnadeNetwork(d, h, k, Microsoft.ML.DeepDensity.Numerics.Activation.Relu);
        var rng = new Microsoft.ML.DeepDensity.Randomness.RandomStream(3);
        net.Initialize(rng.Fork(1), new float[d * k]);
        var x = new float[batch * d];
        rng.Fork(2).FillGaussian(x);
        var objective = new RnadeObjective(net, args.Int("block", 50), true);
        var process = Process.GetCurrentProcess();
        void Time(string label, Action action)
        {
            for (int i = 0; i < 20; i++) action();
            process.Refresh();
            var cpu = process.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < iters; i++) action();
            process.Refresh();
            Console.WriteLine($"{label,-34} wall {sw.Elapsed.TotalMilliseconds * 1000 / iters,9:F1} µs  cpu {(process.TotalProcessorTime - cpu).TotalMilliseconds * 1000 / iters,9:F1} µs");
        }
        var r = new Microsoft.ML.DeepDensity.Randomness.RandomStream(1);
        Time($"ComputeGradient ({batch} rows)", () => objective.ComputeGradient(x, batch, r));
        Time($"Evaluate ({batch} rows)", () => objective.Evaluate(x, batch, r));
        var ws = new RnadeNetwork.Workspace(net, 50, forTraining: true);
        var lp = new float[50];
        Time("Forward training (50 rows, 1 thread)", () => net.Forward(x.AsSpan(0, 50 * d), 50, ws, lp, -0.01f, true));
        Time("Backward (50 rows, 1 thread)", () => net.Backward(x.AsSpan(0, 50 * d), 50, ws));
        var opt = Microsoft.ML.DeepDensity.Training.Optimizer.Create(new RnadeOptions());
        Time("Adam step", () => opt.Step(objective.Parameters, 1e-5f));
        Time("Clip gradient norm", () => objective.Parameters.ClipGradientNorm(10f));
        return 0;
    }

    private static void Row(string label, double ours, double? theirs, bool difference)
    {
        string line = $"{label,-28} {ours,12:F3}";
        if (theirs is double p && !double.IsNaN(p))
            line += $" {p,12:F3} " + (difference ? $"{"diff " + (ours - p).ToString("+0.000;-0.000"),8}" : $"{ours / p,8:F2}");
        Console.WriteLine(line);
    }

    private static string TorchVersion()
    {
        try
        {
            var psi = new ProcessStartInfo(Peer.Python, "-c \"import torch; print(torch.__version__)\"") { RedirectStandardOutput = true, UseShellExecute = false };
            using var p = Process.Start(psi)!;
            string v = p.StandardOutput.ReadToEnd().Trim();
            p.WaitForExit();
            return v;
        }
        catch (Exception) { return "?"; }
    }
}
