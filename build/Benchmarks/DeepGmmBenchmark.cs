using System.Diagnostics;
using System.Globalization;
using DeepDensity.Samples;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Training;

namespace DeepDensity.Benchmarks;

/// <summary>
/// Usage: <c>deepgmm [--dataset both|fashion|digits] [--train 10000] [--grid 8,16,32] [--digits-grid 1,2,4,8]
/// [--layers auto|2,2,16] [--digits-layers auto|2,4] [--iters 100] [--deep-iters 20] [--deep-em hard|soft] [--deep-estep auto|heuristic] [--lbfgs 50]
/// [--ridge 1e-4] [--standardize] [--patience 5] [--no-peer] [--verbose]</c>.
/// Deep GMM (hard EM, path heuristic / exact E-step, L-BFGS M-step) and our 1-layer GMM against scikit-learn's
/// full-covariance GaussianMixture (component count chosen on validation) on Fashion-MNIST 8×8 and the shipped digits.
/// </summary>
public sealed class DeepGmmBenchmark : IBenchmark
{
    public string Name => "deepgmm";
    public string Description => "Deep GMM vs 1-layer GMM vs scikit-learn GaussianMixture (test LL, s per EM iteration)";

    public int Run(BenchmarkArgs args)
    {
        string which = args.String("dataset", "both");
        _verbose = args.Flag("verbose");
        int nTrain = args.Int("train", 10000);
        int iterations = args.Int("iters", 100);
        // "auto": two lower layers of 2 under a top layer with the component count chosen for the 1-layer GMM.
        string layers = args.String("layers", "auto");
        string digitLayers = args.String("digits-layers", "auto");
        int exitCode = 0;
        if (which is "both" or "fashion")
        {
            if (!SampleData.FashionMnistAvailable()) Console.WriteLine("Fashion-MNIST is not installed; skipping it.");
            else exitCode |= RunOne(SampleData.LoadFashionMnist8x8(maxTrain: nTrain), args.String("grid", "8,16,32"), layers, iterations, args);
        }
        if (which is "both" or "digits")
            exitCode |= RunOne(SampleData.LoadDigits(), args.String("digits-grid", "1,2,4,8"), digitLayers, iterations, args);
        return exitCode;
    }

    private static int[] ParseList(string s) => s.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray();

    private sealed record OurResult(string Label, double TestLl, double ValidLl, int Iterations, double SecondsPerIteration, double FitSeconds);

    private static bool _verbose;

    private sealed class ConsoleReport : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => Console.WriteLine("      " + value);
    }

    private static OurResult RunOurs(string label, DataSplit data, DeepGmmOptions options)
    {
        var clock = Stopwatch.StartNew();
        var model = DeepGmmModel.Fit(data.Train, options, data.Validation, _verbose ? new ConsoleReport() : null);
        double fit = clock.Elapsed.TotalSeconds;
        var history = model.TrainingSummary!.History;
        double perIteration = history.Count == 0 ? double.NaN
            : history.Average(h => h.Metrics is null ? double.NaN : h.Metrics["estep_s"] + h.Metrics["mstep_s"]);
        var result = new OurResult(label, model.AverageLogDensity(data.Test), model.AverageLogDensity(data.Validation), history.Count, perIteration, fit);
        Console.WriteLine($"  {label,-40} valid {result.ValidLl,9:F3}  test {result.TestLl,9:F3}  iters {result.Iterations,3}  {result.SecondsPerIteration,8:F3} s/iter  fit {fit,7:F1} s");
        return result;
    }

    private static int RunOne(DataSplit data, string grid, string deepLayerSpec, int iterations, BenchmarkArgs args)
    {
        int d = data.Train.Columns;
        Console.WriteLine($"== {data.Name}: train {data.Train.Rows}, validation {data.Validation.Rows}, test {data.Test.Rows}, D {d}");
        var files = new[] { Peer.WriteMatrix(data.Train, $"{data.Name}-train"), Peer.WriteMatrix(data.Validation, $"{data.Name}-valid"), Peer.WriteMatrix(data.Test, $"{data.Name}-test") };
        Dictionary<string, double>? peer = null;
        if (!args.Flag("no-peer"))
        {
            var (code, stdout, stderr) = Peer.RunPython(Peer.Script("deepgmm_sklearn.py"),
                $"\"{files[0]}\" \"{files[1]}\" \"{files[2]}\" {d} {grid} {Math.Max(iterations, 100)} 0", TimeSpan.FromMinutes(20));
            if (code != 0) { Console.WriteLine($"  scikit-learn peer failed ({code}): {stderr.Trim()}"); }
            else
            {
                peer = Peer.ReadValues(stdout);
                foreach (var k in grid.Split(','))
                    if (peer.TryGetValue($"K{k}_VALID", out var v))
                        Console.WriteLine($"  {"sklearn GaussianMixture K=" + k,-40} valid {v,9:F3}  test {peer[$"K{k}_TEST"],9:F3}  iters {peer[$"K{k}_ITERS"],3}  {peer[$"K{k}_ITER_S"],8:F3} s/iter  fit {peer[$"K{k}_FIT_S"],7:F1} s");
            }
        }
        int k1 = peer is not null ? (int)peer["BEST_K"] : ParseList(grid).Max();
        var deepLayers = deepLayerSpec == "auto" ? new[] { 2, 2, k1 } : ParseList(deepLayerSpec);
        var common = new DeepGmmOptions
        {
            MaxIterations = iterations, Seed = 1,
            CovarianceRidge = args.Double("ridge", new DeepGmmOptions().CovarianceRidge),
            Standardize = args.Flag("standardize"),
            EarlyStoppingPatience = args.Int("patience", new DeepGmmOptions().EarlyStoppingPatience),
            LbfgsIterations = args.Int("lbfgs", new DeepGmmOptions().LbfgsIterations),
            MinNodeWeight = args.Double("min-node-weight", 0),
            LowerLayerShrinkage = args.Double("shrinkage", new DeepGmmOptions().LowerLayerShrinkage),
            Initializations = args.Int("n-init", 1),
        };
        var gmmHard = RunOurs($"ours GMM 1 layer K={k1} (hard EM)", data, With(common, o => o.Layers = new[] { k1 }));
        var gmmSoft = RunOurs($"ours GMM 1 layer K={k1} (soft EM)", data, With(common, o => { o.Layers = new[] { k1 }; o.Em = DeepGmmEmKind.Soft; }));
        bool deepSoft = args.String("deep-em", "hard") == "soft";
        int deepIterations = args.Int("deep-iters", 20);
        var deep = RunOurs($"ours Deep GMM [{string.Join(",", deepLayers)}] ({(deepSoft ? "soft" : "hard")} EM)", data,
            With(common, o => { o.Layers = deepLayers; o.MaxIterations = deepIterations; if (deepSoft) o.Em = DeepGmmEmKind.Soft;
                if (args.String("deep-estep", "auto") == "heuristic") o.EStep = DeepGmmEStep.Heuristic; }));

        double bestSingle = Math.Max(gmmHard.TestLl, gmmSoft.TestLl);
        string bestSingleName = gmmHard.TestLl >= gmmSoft.TestLl ? "ours hard" : "ours soft";
        if (peer is not null && peer["BEST_TEST"] > bestSingle) { bestSingle = peer["BEST_TEST"]; bestSingleName = $"sklearn K={k1}"; }
        Console.WriteLine($"  RESULT {data.Name}: deep test LL {deep.TestLl:F3} vs best single-layer ({bestSingleName}) {bestSingle:F3}: " +
                          $"{(deep.TestLl - bestSingle >= 0 ? "+" : "")}{deep.TestLl - bestSingle:F3} nats/row");
        if (peer is not null)
        {
            double skIter = peer["BEST_ITER_S"];
            Console.WriteLine($"  RESULT {data.Name}: EM iteration, K={k1}: sklearn {skIter:F4} s, ours hard {gmmHard.SecondsPerIteration:F4} s " +
                              $"(sklearn/ours = {skIter / gmmHard.SecondsPerIteration:F2}x), ours soft {gmmSoft.SecondsPerIteration:F4} s " +
                              $"(sklearn/ours = {skIter / gmmSoft.SecondsPerIteration:F2}x); deep {deep.SecondsPerIteration:F4} s/iter");
        }
        return 0;
    }

    private static DeepGmmOptions With(DeepGmmOptions template, Action<DeepGmmOptions> set)
    {
        var o = new DeepGmmOptions
        {
            MaxIterations = template.MaxIterations, Seed = template.Seed, Layers = template.Layers,
            CovarianceRidge = template.CovarianceRidge, Standardize = template.Standardize,
            EarlyStoppingPatience = template.EarlyStoppingPatience, LbfgsIterations = template.LbfgsIterations,
            MinNodeWeight = template.MinNodeWeight, LowerLayerShrinkage = template.LowerLayerShrinkage,
            Initializations = template.Initializations,
        };
        set(o);
        return o;
    }
}
