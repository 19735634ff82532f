using System.Diagnostics;
using System.Globalization;
using DeepDensity.Samples;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Training;

namespace DeepDensity.Benchmarks;

/// <summary>
/// Usage: <c>deepgmm [--dataset both|fashion|digits] [--train 10000] [--grid 8,16,32,64,100,128] [--deep-grid 16,32,64,100] [--digits-grid 1,2,4,8,16]
/// [--ridges 1e-6,1e-3,1e-2] [--digits-ridges 1e-2,3e-2,1e-1,3e-1] [--shrinkages 0,100,1000,10000] [--digits-shrinkages 0,100,1000,10000]
/// [--layers 2,K;2,2,K;4,4,K;2,2,2,K] [--digits-layers 2,K;2,2,K] [--n-init 1] [--digits-n-init 5] [--iters 100]
/// [--deep-iters 60] [--deep-em hard|soft|hard,soft] [--digits-deep-em soft|hard] [--deep-estep auto|heuristic] [--lbfgs 50]
/// [--standardize] [--patience 5] [--no-peer] [--peer-minutes 180] [--concurrent] [--verbose]</c>.
/// Deep GMM against our 1-layer GMM and scikit-learn's full-covariance GaussianMixture on Fashion-MNIST 8×8 and the
/// shipped digits, every side choosing its hyper-parameters on validation from a grid of the same size and the test set
/// used only for the final figures: scikit-learn and our 1-layer GMM choose (K, covariance ridge) from the same grids (the
/// ridge adds r·var(column) to every covariance diagonal on both sides); the Deep GMM uses the 1-layer choice of ridge and
/// chooses (top-layer K, lower-layer shrinkage κ, architecture, EM variant) from the deep K grid × the κ grid × the
/// architectures (--layers, ';'-separated; K stands for each entry of the deep grid, e.g. 2,2,K; a list without K is used
/// as given) × the EM variants. Each side uses the same number of initialisations (n_init). Prints test average
/// log-likelihood, free-parameter counts, fit times, time per EM iteration, and ratios.
/// </summary>
public sealed class DeepGmmBenchmark : IBenchmark
{
    public string Name => "deepgmm";
    public string Description => "Deep GMM vs 1-layer GMM vs scikit-learn GaussianMixture, hyper-parameters chosen on validation (test LL, s per EM iteration)";

    public int Run(BenchmarkArgs args)
    {
        string which = args.String("dataset", "both");
        _verbose = args.Flag("verbose");
        int nTrain = args.Int("train", 10000);
        int exitCode = 0;
        if (which is "both" or "fashion")
        {
            if (!SampleData.FashionMnistAvailable()) Console.WriteLine("Fashion-MNIST is not installed; skipping it.");
            else exitCode |= RunOne(SampleData.LoadFashionMnist8x8(maxTrain: nTrain), new Protocol(
                args.String("grid", "8,16,32,64,100,128"), args.String("ridges", "1e-6,1e-3,1e-2"), args.String("shrinkages", "0,100,1000,10000"),
                args.String("layers", "2,K;2,2,K;4,4,K;2,2,2,K"), args.Int("n-init", 1), args.String("deep-em", "hard"),
                args.String("deep-grid", "16,32,64,100")), args);
        }
        if (which is "both" or "digits")
            exitCode |= RunOne(SampleData.LoadDigits(), new Protocol(
                args.String("digits-grid", "1,2,4,8,16"), args.String("digits-ridges", "1e-2,3e-2,1e-1,3e-1"),
                args.String("digits-shrinkages", "0,100,1000,10000"), args.String("digits-layers", "2,K;2,2,K"), args.Int("digits-n-init", 5),
                args.String("digits-deep-em", "soft"), args.String("digits-deep-grid", "1,2,4,8,16")), args);
        return exitCode;
    }

    /// <summary>Per-dataset grids: K (1-layer), covariance ridges, lower-layer shrinkages, deep architectures
    /// (';'-separated layer lists, K = each entry of <paramref name="DeepKGrid"/>), initialisations per fit, deep EM
    /// variants (comma-separated).</summary>
    private sealed record Protocol(string KGrid, string Ridges, string Shrinkages, string DeepLayers, int Initializations, string DeepEm, string DeepKGrid);

    /// <summary>Free parameters of a full-covariance GMM: K means, K symmetric covariances, K − 1 weights.</summary>
    private static long GmmParameters(int k, int d) => k * (d + (long)d * (d + 1) / 2) + k - 1;

    /// <summary>Stored parameters of a Deep GMM: a D×D map and a D-vector per node, and the path probabilities.</summary>
    private static long DeepGmmParameters(int[] layers, int d, DeepGmmPathProbabilities prior)
        => layers.Sum(k => (long)k) * ((long)d * d + d)
           + (prior == DeepGmmPathProbabilities.Full ? layers.Aggregate(1L, (p, k) => p * k) - 1 : layers.Sum(k => k - 1L));

    private static int[] ParseList(string s) => s.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray();

    private sealed record OurResult(string Label, double TestLl, double ValidLl, int Iterations, double SecondsPerIteration, double FitSeconds, long Parameters = 0,
        double ScoreRowsPerSecond = double.NaN);

    /// <summary>Scoring throughput on the test set: one batched <c>LogDensity</c> call, timed as the peer's
    /// <c>score_samples</c> is (<see cref="Peer.BestCallSeconds"/>), rows/s.</summary>
    private static double ScoringRowsPerSecond(DeepGmmModel model, RowMatrix rows)
    {
        var logDensity = new float[rows.Rows];
        return rows.Rows / Peer.BestCallSeconds(() => model.LogDensity(rows.AsSpan(), logDensity), minSeconds: 1.0);
    }

    private static bool _verbose;

    /// <summary>Verbose EM curves, one line per iteration, named by the fit they belong to (fits may run concurrently).</summary>
    private sealed class ConsoleReport(string label) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => Console.WriteLine($"      [{label}] {value}");
    }

    private static OurResult RunOurs(string label, DataSplit data, DeepGmmOptions options)
    {
        var clock = Stopwatch.StartNew();
        var model = DeepGmmModel.Fit(data.Train, options, data.Validation, _verbose ? new ConsoleReport(label) : null);
        double fit = clock.Elapsed.TotalSeconds;
        var history = model.TrainingSummary!.History;
        double perIteration = history.Count == 0 ? double.NaN
            : history.Average(h => h.Metrics is null ? double.NaN : h.Metrics["estep_s"] + h.Metrics["mstep_s"]);
        int d = data.Train.Columns;
        long parameters = options.Layers.Length == 1 ? GmmParameters(options.Layers[0], d) : DeepGmmParameters(options.Layers, d, options.PathProbabilities);
        var result = new OurResult(label, model.AverageLogDensity(data.Test), model.AverageLogDensity(data.Validation), history.Count, perIteration, fit, parameters,
            ScoringRowsPerSecond(model, data.Test));
        Console.WriteLine($"  {label,-46} valid {result.ValidLl,9:F3}  test {result.TestLl,9:F3}  iters {result.Iterations,3}  {result.SecondsPerIteration,8:F3} s/iter  fit {fit,7:F1} s  params {parameters,9}  score {result.ScoreRowsPerSecond,9:F0} rows/s");
        return result;
    }

    private static double[] ParseDoubles(string s) => s.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();

    private static int RunOne(DataSplit data, Protocol protocol, BenchmarkArgs args)
    {
        int d = data.Train.Columns;
        int iterations = args.Int("iters", 100);
        var ks = ParseList(protocol.KGrid);
        var ridges = ParseDoubles(protocol.Ridges);
        var shrinkages = ParseDoubles(protocol.Shrinkages);
        Console.WriteLine($"== {data.Name}: train {data.Train.Rows}, validation {data.Validation.Rows}, test {data.Test.Rows}, D {d}; " +
                          $"K grid {{{protocol.KGrid}}}, ridge grid {{{protocol.Ridges}}}, shrinkage grid {{{protocol.Shrinkages}}}, n_init {protocol.Initializations}");
        var files = new[] { Peer.WriteMatrix(data.Train, $"{data.Name}-train"), Peer.WriteMatrix(data.Validation, $"{data.Name}-valid"), Peer.WriteMatrix(data.Test, $"{data.Name}-test") };
        // --concurrent: the peer, our 1-layer grid and the deep grid run side by side (log-likelihoods and choices are
        // the same; fit times then measure a shared machine). The deep grid needs the 1-layer ridge first unless the
        // ridge grid has one entry.
        bool concurrent = args.Flag("concurrent");
        Dictionary<string, double>? peer = null;
        var peerTask = Task.Run(() => args.Flag("no-peer") ? ((int, string, string)?)null : Peer.RunPython(Peer.Script("deepgmm_sklearn.py"),
            $"\"{files[0]}\" \"{files[1]}\" \"{files[2]}\" {d} {protocol.KGrid} {Math.Max(iterations, 100)} 0 {protocol.Ridges} {protocol.Initializations}",
            // A guard against a hung peer, not a budget: scikit-learn's K ≤ 128 grid on 50k rows takes over half an hour.
            TimeSpan.FromMinutes(args.Int("peer-minutes", 180))));
        if (!concurrent) peerTask.Wait();
        void PrintPeer()
        {
            if (peerTask.Result is not var (code, stdout, stderr)) return;
            if (code != 0) { Console.WriteLine($"  scikit-learn peer failed ({code}): {stderr.Trim()}"); }
            else
            {
                peer = Peer.ReadValues(stdout);
                for (int ri = 0; ri < ridges.Length; ri++)
                    foreach (var k in ks)
                        if (peer.TryGetValue($"K{k}_R{ri}_VALID", out var v))
                            Console.WriteLine($"  {$"sklearn GaussianMixture K={k} ridge={ridges[ri]:g}",-46} valid {v,9:F3}  test {peer[$"K{k}_R{ri}_TEST"],9:F3}  iters {peer[$"K{k}_R{ri}_ITERS"],3}  {peer[$"K{k}_R{ri}_ITER_S"],8:F3} s/iter  fit {peer[$"K{k}_R{ri}_FIT_S"],7:F1} s  params {GmmParameters(k, d),9}" +
                                              (peer.TryGetValue($"K{k}_R{ri}_SCORE_S", out var sc) ? $"  score {data.Test.Rows / sc,9:F0} rows/s" : ""));
                Console.WriteLine($"  sklearn choice on validation: K={(int)peer["BEST_K"]} ridge={ridges[(int)peer["BEST_RIDGE_INDEX"]]:g}");
            }
        }
        if (!concurrent) PrintPeer();
        var common = new DeepGmmOptions
        {
            MaxIterations = iterations, Seed = 1,
            Standardize = args.Flag("standardize"),
            EarlyStoppingPatience = args.Int("patience", new DeepGmmOptions().EarlyStoppingPatience),
            LbfgsIterations = args.Int("lbfgs", new DeepGmmOptions().LbfgsIterations),
            MinNodeWeight = args.Double("min-node-weight", 0),
            Initializations = protocol.Initializations,
        };

        // Our 1-layer GMM (soft EM): (K, ridge) on validation, then hard EM at the choice.
        (OurResult Soft, int K, double Ridge, OurResult Hard) SingleLayer()
        {
            OurResult? best = null;
            int kBest = ks[0]; double ridgeBest = ridges[0];
            foreach (var ridge in ridges)
                foreach (var k in ks)
                {
                    var r = RunOurs($"ours GMM 1 layer K={k} ridge={ridge:g} (soft EM)", data, With(common, o => { o.Layers = new[] { k }; o.Em = DeepGmmEmKind.Soft; o.CovarianceRidge = ridge; }));
                    if (best is null || r.ValidLl > best.ValidLl) { best = r; kBest = k; ridgeBest = ridge; }
                }
            Console.WriteLine($"  ours 1-layer choice on validation: K={kBest} ridge={ridgeBest:g}");
            var hard = RunOurs($"ours GMM 1 layer K={kBest} ridge={ridgeBest:g} (hard EM)", data, With(common, o => { o.Layers = new[] { kBest }; o.CovarianceRidge = ridgeBest; }));
            return (best!, kBest, ridgeBest, hard);
        }

        // Deep GMM at the 1-layer model's covariance ridge (the data's variance floor); (top K, κ, architecture, EM
        // variant) on validation, as the paper chose its layer sizes. Concurrent fits are compared in grid order.
        int deepIterations = args.Int("deep-iters", 60);
        var architectures = new List<int[]>();
        foreach (var pattern in protocol.DeepLayers.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!pattern.Contains('K')) { architectures.Add(ParseList(pattern)); continue; }
            foreach (var k in ParseList(protocol.DeepKGrid)) architectures.Add(ParseList(pattern.Replace("K", k.ToString(CultureInfo.InvariantCulture))));
        }
        architectures = architectures.DistinctBy(l => string.Join(",", l)).ToList();
        var deepGrid = (from em in protocol.DeepEm.Split(',', StringSplitOptions.RemoveEmptyEntries)
                        from layers in architectures
                        from kappa in shrinkages
                        select (em, layers, kappa)).ToList();
        OurResult DeepFit((string Em, int[] Layers, double Kappa) point, double ridge)
            => RunOurs($"ours Deep GMM [{string.Join(",", point.Layers)}] ridge={ridge:g} κ={point.Kappa:g} ({point.Em})", data,
                With(common, o =>
                {
                    o.Layers = point.Layers; o.MaxIterations = deepIterations; o.CovarianceRidge = ridge; o.LowerLayerShrinkage = point.Kappa;
                    if (point.Em == "soft") o.Em = DeepGmmEmKind.Soft;
                    if (args.String("deep-estep", "auto") == "heuristic") o.EStep = DeepGmmEStep.Heuristic;
                }));
        OurResult[] DeepGrid(double ridge) => concurrent
            ? Task.WhenAll(deepGrid.Select(point => Task.Run(() => DeepFit(point, ridge)))).Result
            : deepGrid.Select(point => DeepFit(point, ridge)).ToArray();

        OurResult gmmSoft, gmmHard; int k1; double ridge1; OurResult[] deepResults;
        if (concurrent && ridges.Length == 1)
        {
            var single = Task.Run(SingleLayer);
            deepResults = DeepGrid(ridges[0]);
            (gmmSoft, k1, ridge1, gmmHard) = single.Result;
        }
        else
        {
            (gmmSoft, k1, ridge1, gmmHard) = SingleLayer();
            deepResults = DeepGrid(ridge1);
        }
        if (concurrent) PrintPeer();
        var deep = deepResults.Aggregate((best, r) => r.ValidLl > best.ValidLl ? r : best);
        Console.WriteLine($"  deep choice on validation: {deep!.Label}");

        // The single-layer reference is the best TEST figure among the validation-chosen single-layer models (conservative).
        double bestSingle = gmmSoft.TestLl;
        string bestSingleName = $"ours soft K={k1} ridge={ridge1:g}, {GmmParameters(k1, d)} params, fit {gmmSoft.FitSeconds:F0} s";
        if (gmmHard.TestLl > bestSingle) { bestSingle = gmmHard.TestLl; bestSingleName = $"ours hard K={k1} ridge={ridge1:g}, {GmmParameters(k1, d)} params, fit {gmmHard.FitSeconds:F0} s"; }
        if (peer is not null && peer["BEST_TEST"] > bestSingle)
        {
            bestSingle = peer["BEST_TEST"];
            bestSingleName = $"sklearn K={(int)peer["BEST_K"]} ridge={ridges[(int)peer["BEST_RIDGE_INDEX"]]:g}, {GmmParameters((int)peer["BEST_K"], d)} params, fit {peer["BEST_FIT_S"]:F0} s";
        }
        Console.WriteLine($"  RESULT {data.Name}: deep test LL {deep.TestLl:F3} ({deep.Parameters} params, fit {deep.FitSeconds:F0} s) vs best single-layer ({bestSingleName}) {bestSingle:F3}: " +
                          $"{(deep.TestLl - bestSingle >= 0 ? "+" : "")}{deep.TestLl - bestSingle:F3} nats/row " +
                          $"(chosen on validation: deep {deep.ValidLl:F3}, ours 1-layer {gmmSoft.ValidLl:F3}" +
                          (peer is not null ? $", sklearn {peer["BEST_VALID"]:F3})" : ")"));
        // EM-iteration speed at the same (K, ridge): scikit-learn's time for our chosen pair.
        int ridgeIndex = Array.IndexOf(ridges, ridge1);
        if (peer is not null && peer.TryGetValue($"K{k1}_R{ridgeIndex}_ITER_S", out var skIter))
        {
            Console.WriteLine($"  RESULT {data.Name}: EM iteration, K={k1}: sklearn {skIter:F4} s, ours hard {gmmHard.SecondsPerIteration:F4} s " +
                              $"(sklearn/ours = {skIter / gmmHard.SecondsPerIteration:F2}x), ours soft {gmmSoft.SecondsPerIteration:F4} s " +
                              $"(sklearn/ours = {skIter / gmmSoft.SecondsPerIteration:F2}x); deep {deep.SecondsPerIteration:F4} s/iter");
        }
        // Scoring speed at the same K (score_samples against one batched LogDensity call on the test rows).
        if (peer is not null && peer.TryGetValue($"K{k1}_R{ridgeIndex}_SCORE_S", out var skScore))
        {
            double skRate = data.Test.Rows / skScore;
            Console.WriteLine($"  RESULT {data.Name}: scoring {data.Test.Rows} test rows, K={k1}: sklearn score_samples {skRate:F0} rows/s, ours {gmmSoft.ScoreRowsPerSecond:F0} rows/s " +
                              $"(ours/sklearn = {gmmSoft.ScoreRowsPerSecond / skRate:F2}x); chosen deep model {deep.ScoreRowsPerSecond:F0} rows/s");
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
