using System.Diagnostics;
using System.Globalization;
using DeepDensity.Samples;
using Microsoft.ML.DeepDensity;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Training;

namespace DeepDensity.Benchmarks;

/// <summary>
/// RNADE against a PyTorch reference RNADE (rnade_torch.py) under one wall-time budget: both train with the library's
/// defaults (exact gradient, no clipping, Adam 1e-3, batch 100) at H=100, K=10, early-stop on the validation set and are
/// scored on the test set with their best-on-validation parameters; each prints its curve of validation log-likelihood
/// against wall time. With <c>--deep</c>, deep and order-agnostic RNADEs (<see cref="DeepRnadeModel"/>) follow.
/// </summary>
public sealed class RnadeBenchmark : IBenchmark
{
    public string Name => "rnade";
    public string Description => "RNADE vs PyTorch under a wall-time budget: validation-LL curves, test LL, examples/s (--dataset digits|fashion, --minutes 10, " +
                                 "--hidden 100, --components 10, --lr, --batch, --clip, --sigma-scaled, --decay, --max-epochs, --train N, --seed, --no-peer, " +
                                 "--peer-threads 0=best, --deep|--deep-only [--deep-configs L×H:oa|fixed[:ar],...] [--deep-components] [--deep-minutes] [--orderings 1,2,4,8,16] [--deep-lr] [--deep-decay] [--deep-patience] [--deep-max-epochs], --profile)";

    public int Run(BenchmarkArgs args)
    {
        if (args.Flag("profile")) return Profile(args);
        string dataset = args.String("dataset", SampleData.FashionMnistAvailable() ? "fashion" : "digits");
        int? maxTrain = args.Int("train", 0) is > 0 and var t ? t : null;
        var split = dataset switch
        {
            "digits" => SampleData.LoadDigits(),
            "fashion" => SampleData.LoadFashionMnist8x8(maxTrain: maxTrain),
            _ => throw new UsageException($"--dataset must be digits or fashion (got '{dataset}')."),
        };
        var train = maxTrain is int mt && mt < split.Train.Rows ? split.Train.SelectRows(Enumerable.Range(0, mt).ToArray()) : split.Train;
        double minutes = args.Double("minutes", 10);
        int seed = args.Int("seed", 1);
        // Library defaults except the size (the protocol's H=100, K=10) and what a flag overrides.
        var options = new RnadeOptions { HiddenUnits = args.Int("hidden", 100), Components = args.Int("components", 10), Seed = (ulong)seed };
        options.MaxEpochs = args.Int("max-epochs", options.MaxEpochs);
        options.BatchSize = args.Int("batch", options.BatchSize);
        options.LearningRate = (float)args.Double("lr", options.LearningRate);
        options.LearningRateDecay = (float)args.Double("decay", options.LearningRateDecay);
        options.GradientClipNorm = (float)args.Double("clip", options.GradientClipNorm);
        options.EarlyStoppingPatience = args.Int("patience", options.EarlyStoppingPatience);
        if (args.Flag("sigma-scaled")) options.ScaleMeanGradientBySigma = true;
        Console.WriteLine($"data: {split.Name}, train {train.Rows} × {train.Columns}, validation {split.Validation.Rows}, test {split.Test.Rows}");
        Console.WriteLine($"config: H={options.HiddenUnits} K={options.Components} {options.Activation}, standardised, Adam lr={options.LearningRate:G3} " +
                          $"(decay {options.LearningRateDecay:G3}/epoch), batch {options.BatchSize}, clip {(options.GradientClipNorm > 0 ? options.GradientClipNorm.ToString("G3") : "none")}, " +
                          $"{(options.ScaleMeanGradientBySigma ? "σ-scaled mean gradient" : "exact gradient")}, at most {options.MaxEpochs} epochs, patience {options.EarlyStoppingPatience} " +
                          $"on the validation set, budget {minutes:G3} min; test LL at the best validation epoch");

        if (args.Flag("deep-only"))
        {
            RunDeep(args, train, split, options, args.Double("deep-minutes", minutes));
            return 0;
        }
        Dictionary<string, double>? peer = null;
        List<(int Epoch, double Seconds, double Valid)> peerCurve = new();
        if (!args.Flag("no-peer"))
        {
            var trainPath = Peer.WriteMatrix(train, "rnade-train");
            Peer.WriteMatrix(split.Validation, "rnade-valid");
            Peer.WriteMatrix(split.Test, "rnade-test");
            string dir = Path.GetDirectoryName(trainPath)!;
            string peerArgs = string.Join(' ', new object[] { $"\"{dir}\"", train.Columns, options.HiddenUnits, options.Components, options.MaxEpochs,
                options.BatchSize, F(options.LearningRate), seed, F(options.GradientClipNorm), options.ScaleMeanGradientBySigma ? 1 : 0,
                F(minutes * 60), options.EarlyStoppingPatience, args.Int("peer-threads", 0) }.Select(o => o.ToString()));
            if (options.LearningRateDecay != 1f) Console.WriteLine("note: the peer has no learning-rate decay");
            var (code, stdout, stderr) = Peer.RunPython(Peer.Script("rnade_torch.py"), peerArgs, TimeSpan.FromMinutes(minutes * 2 + 30));
            if (code != 0) Console.WriteLine($"peer failed ({code}): {stderr.Trim()}");
            else
            {
                peer = Peer.ReadValues(stdout);
                peerCurve = ReadCurve(stdout);
                Console.WriteLine($"peer: PyTorch {TorchVersion()}, {peer["THREADS"]} thread(s) (OMP_WAIT_POLICY=PASSIVE), fit {peer["FIT_SECONDS"]:F1} s");
            }
        }

        var clock = Stopwatch.StartNew();
        using var budget = Budget(options, minutes);
        var model = RnadeModel.Fit(train, options, split.Validation);
        double fitSeconds = clock.Elapsed.TotalSeconds;
        var summary = model.TrainingSummary!;
        var history = summary.History;
        if (history.Count == 0) { Console.WriteLine($"ours: no epoch finished within {minutes:G3} min"); return 1; }
        double trainSeconds = history.Sum(h => train.Rows / h.ExamplesPerSecond);
        double trainRate = history.Count * train.Rows / trainSeconds;
        double testLl = model.AverageLogDensity(split.Test);
        var scores = new float[split.Test.Rows];
        model.LogDensity(split.Test.AsSpan(), scores);
        double scoreRate = split.Test.Rows / Peer.MedianSeconds(() => model.LogDensity(split.Test.AsSpan(), scores), 5);
        Console.WriteLine($"ours: fit {fitSeconds:F1} s, {history.Count} epochs (best {summary.BestEpoch}); examples/s in epoch 1 {history[0].ExamplesPerSecond:F0}, " +
                          $"in the last epoch {history[^1].ExamplesPerSecond:F0}");

        PrintCurves(history.Select(h => (h.Epoch, h.Elapsed.TotalSeconds, h.ValidationLogLikelihood ?? double.NaN)).ToList(), peerCurve);
        Console.WriteLine();
        Console.WriteLine($"{"",-34} {"ours",12} {"PyTorch",12} {"ratio",8}");
        Row("test log-likelihood (nats)", testLl, peer?.GetValueOrDefault("TEST_LL", double.NaN), difference: true);
        Row("best validation log-likelihood", summary.BestValidationLogLikelihood, peer?.GetValueOrDefault("VALID_LL", double.NaN), difference: true);
        Row("best epoch", summary.BestEpoch, peer?.GetValueOrDefault("BEST_EPOCH", double.NaN), difference: true);
        Row("fit seconds (validation included)", fitSeconds, peer?.GetValueOrDefault("FIT_SECONDS", double.NaN), difference: false);
        Row("training examples/s", trainRate, peer?.GetValueOrDefault("TRAIN_EXAMPLES_PER_SECOND", double.NaN), difference: false);
        Row("scoring rows/s", scoreRate, peer?.GetValueOrDefault("SCORE_ROWS_PER_SECOND", double.NaN), difference: false);
        Console.WriteLine($"RESULT rnade H={options.HiddenUnits} K={options.Components} library defaults, {minutes:G3} min: test LL {testLl:F3}" +
                          (peer is null ? "" : $", PyTorch {peer["TEST_LL"]:F3} ({testLl - peer["TEST_LL"]:+0.000;-0.000})"));

        if (args.Flag("deep")) RunDeep(args, train, split, options, args.Double("deep-minutes", minutes));
        return 0;
    }

    /// <summary>Deep and order-agnostic RNADEs, each with the same budget; the ensemble size is chosen on validation.</summary>
    private static void RunDeep(BenchmarkArgs args, RowMatrix train, DataSplit split, RnadeOptions shallow, double minutes)
    {
        // L×H:oa = L hidden layers of H units trained order-agnostically; L×H:fixed = one (natural) order; a third part
        // ":ar" = autoregressive (MADE-masked) connectivity instead of the masked input [x ⊙ m, m]; ":ard" = the same with
        // direct input → output connections.
        var configs = args.String("deep-configs", "2x100:oa,2x200:oa,3x200:oa").Split(',', StringSplitOptions.RemoveEmptyEntries);
        var orderingGrid = args.String("orderings", "1,2,4,8,16").Split(',').Select(int.Parse).ToArray();
        foreach (var config in configs)
        {
            var parts = config.Split(':');
            var size = parts[0].Split('x');
            var options = new DeepRnadeOptions
            {
                HiddenLayers = int.Parse(size[0], CultureInfo.InvariantCulture), HiddenUnits = int.Parse(size[1], CultureInfo.InvariantCulture),
                Components = args.Int("deep-components", shallow.Components), OrderAgnostic = parts.Length < 2 || parts[1] != "fixed", Seed = shallow.Seed,
                Connectivity = parts.Length > 2 && parts[2] is "ar" or "ard" ? DeepRnadeConnectivity.Autoregressive : DeepRnadeConnectivity.MaskedInput,
                DirectConnections = parts.Length > 2 && parts[2] == "ard",
            };
            options.MaxEpochs = args.Int("deep-max-epochs", options.MaxEpochs);
            options.LearningRate = (float)args.Double("deep-lr", options.LearningRate);
            options.LearningRateDecay = (float)args.Double("deep-decay", options.LearningRateDecay);
            // The deep models' validation curves are noisy (one random mask or conditional per row and step): a longer patience.
            options.EarlyStoppingPatience = args.Int("deep-patience", options.EarlyStoppingPatience);
            options.Orderings = orderingGrid.Max();
            var clock = Stopwatch.StartNew();
            using var budget = Budget(options, minutes);
            var model = DeepRnadeModel.Fit(train, options, split.Validation);
            double fitSeconds = clock.Elapsed.TotalSeconds;
            var summary = model.TrainingSummary!;
            Console.WriteLine();
            Console.WriteLine($"deep RNADE {options.HiddenLayers}×{options.HiddenUnits} {(options.OrderAgnostic ? "order-agnostic" : "fixed order")}, {options.Connectivity}{(options.DirectConnections ? " + direct" : "")}, K={options.Components}, lr={options.LearningRate:G3} (decay {options.LearningRateDecay:G3}/epoch), " +
                              $"{model.ParameterCount} parameters: fit {fitSeconds:F1} s, {summary.EpochsRun} epochs (best {summary.BestEpoch})");
            PrintCurves(summary.History.Select(h => (h.Epoch, h.Elapsed.TotalSeconds, h.ValidationLogLikelihood ?? double.NaN)).ToList(), new());
            // Ensembles of the first k orderings: k chosen on validation, the test figure of that k reported.
            int best = 1; double bestValid = double.NegativeInfinity;
            foreach (var k in orderingGrid.Where(k => options.OrderAgnostic || k == 1))
            {
                var scoreClock = Stopwatch.StartNew();
                double valid = model.WithOrderings(k).AverageLogDensity(split.Validation);
                Console.WriteLine($"  {k,2} ordering(s): validation {valid,9:F3}  (scored in {scoreClock.Elapsed.TotalSeconds:F1} s)");
                if (valid > bestValid) { bestValid = valid; best = k; }
            }
            double test = model.WithOrderings(best).AverageLogDensity(split.Test);
            Console.WriteLine($"RESULT deep RNADE {config} ({model.ParameterCount} parameters, {fitSeconds:F0} s): {best} ordering(s) chosen on validation " +
                              $"({bestValid:F3}), test LL {test:F3}");
        }
    }

    /// <summary>The wall-time budget: the training loop's graceful stop (the epoch in progress is discarded and the best
    /// parameters on validation so far are kept), requested <paramref name="minutes"/> after the fit starts.</summary>
    private static CancellationTokenSource Budget(RnadeOptions options, double minutes)
    {
        var source = new CancellationTokenSource(TimeSpan.FromMinutes(minutes));
        options.StopToken = source.Token;
        return source;
    }

    private static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    private static List<(int Epoch, double Seconds, double Valid)> ReadCurve(string stdout)
    {
        var curve = new List<(int, double, double)>();
        foreach (var line in stdout.Split('\n'))
        {
            var p = line.Trim().Split(' ');
            if (p.Length == 4 && p[0] == "CURVE")
                curve.Add((int.Parse(p[1], CultureInfo.InvariantCulture), double.Parse(p[2], CultureInfo.InvariantCulture), double.Parse(p[3], CultureInfo.InvariantCulture)));
        }
        return curve;
    }

    /// <summary>Validation log-likelihood against wall time (validation included), one line per epoch, side by side.</summary>
    private static void PrintCurves(List<(int Epoch, double Seconds, double Valid)> ours, List<(int Epoch, double Seconds, double Valid)> peer)
    {
        Console.WriteLine($"curve: {"epoch",5} {"ours s",8} {"ours valid",11}" + (peer.Count > 0 ? $" {"torch s",8} {"torch valid",11}" : ""));
        for (int i = 0; i < Math.Max(ours.Count, peer.Count); i++)
        {
            string a = i < ours.Count ? $"{ours[i].Seconds,8:F1} {ours[i].Valid,11:F3}" : new string(' ', 20);
            string b = i < peer.Count ? $" {peer[i].Seconds,8:F1} {peer[i].Valid,11:F3}" : "";
            Console.WriteLine($"curve: {i + 1,5} {a}{b}");
        }
    }

    /// <summary>Time per minibatch of the objective's parts on random data (CPU time, so a busy machine does not distort it).</summary>
    private static int Profile(BenchmarkArgs args)
    {
        int d = 63, h = args.Int("hidden", 100), k = args.Int("components", 10), batch = args.Int("batch", 100), iters = args.Int("iterations", 300);
        bool sigma = args.Flag("sigma-scaled");
        var net = new RnadeNetwork(d, h, k, Microsoft.ML.DeepDensity.Numerics.Activation.Relu);
        var rng = new Microsoft.ML.DeepDensity.Randomness.RandomStream(3);
        net.Initialize(rng.Fork(1), new float[d * k]);
        var x = new float[batch * d];
        rng.Fork(2).FillGaussian(x);
        var objective = new RnadeObjective(net, args.Int("block", 50), sigma);
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
        Time("Forward training (50 rows, 1 thread)", () => net.Forward(x.AsSpan(0, 50 * d), 50, ws, lp, -0.01f, sigma));
        Time("Backward (50 rows, 1 thread)", () => net.Backward(x.AsSpan(0, 50 * d), 50, ws));
        var opt = Optimizer.Create(new RnadeOptions());
        Time("Adam step", () => opt.Step(objective.Parameters, 1e-5f));
        Time("Clip gradient norm", () => objective.Parameters.ClipGradientNorm(10f));
        return 0;
    }

    private static void Row(string label, double ours, double? theirs, bool difference)
    {
        string line = $"{label,-34} {ours,12:F3}";
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
