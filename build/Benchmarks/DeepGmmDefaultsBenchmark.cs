using System.Diagnostics;
using System.Globalization;
using DeepDensity.Samples;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;

namespace DeepDensity.Benchmarks;

/// <summary>
/// Usage: <c>deepgmm-defaults [--sets wine,bc,mix6,mix20,wide,digits,fashion] [--layers "1;2;4;8;2,2;2,4;4,4"]
/// [--sizes 100,300,1000,3000,10000] [--splits 3] [--wide 1000x200] [--fashion-train 10000] [--seed 1] [--no-peer]</c>.
/// The Deep GMM's default architecture against the alternatives a user would try (session 37: a new user's trial found
/// the default Layers = [4, 4] 11 nats/row behind Layers = [1] on wine). Every architecture is fitted as a user's
/// <c>Fit(train, options)</c> runs (all other options at their defaults: 10 % of the training rows held out for early
/// stopping), scored on a validation set (for choosing) and a test set (for reporting). Data: wine and breast cancer
/// (scikit-learn's bundled UCI copies, --splits seeded 60/20/20 splits), random full-covariance mixtures of 5 components at several
/// training sizes (6 and 20 columns; 1,000 validation and 5,000 test rows; --splits draws of all three), i.i.d. standard-normal wide data (truth
/// −D/2·log 2πe per row), the digits and Fashion-MNIST 8×8 of the deepgmm benchmark. The reference is scikit-learn's
/// GaussianMixture on the same splits, K ∈ {1, 2, 3, 4, 6, 8} × covariance type chosen on validation.
/// </summary>
public sealed class DeepGmmDefaultsBenchmark : IBenchmark
{
    public string Name => "deepgmm-defaults";
    public string Description => "Deep GMM architectures (Layers) on small, wide and mid-size tables vs scikit-learn's validation-chosen GaussianMixture (--sets, --layers)";

    private sealed record Set(string Name, RowMatrix Train, RowMatrix Validation, RowMatrix Test, double Truth = double.NaN)
    {
        /// <summary>The table row the set is averaged into (the name without its split).</summary>
        public string Group { get; init; } = Name;
    }

    private sealed record Row(string Set, string Group, string Layers, double Validation, double Test, double HeldOut, double Seconds, int Iterations);

    public int Run(BenchmarkArgs args)
    {
        var sets = args.String("sets", "wine,bc,mix6,mix20,wide,digits,fashion").Split(',', StringSplitOptions.RemoveEmptyEntries);
        var layers = args.String("layers", "1;2;4;8;2,2;2,4;4,4").Split(';', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(',').Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray()).ToArray();
        var sizes = args.String("sizes", "100,300,1000,3000,10000").Split(',').Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        ulong seed = (ulong)args.Int("seed", 1);
        bool peer = !args.Flag("no-peer");
        Console.WriteLine($"Deep GMM defaults study: layers {string.Join(" ", layers.Select(Show))}, default {Show(DeepGmmOptions.Defaults.Layers)}; seed {seed}; " +
                          $"{Environment.ProcessorCount} cores; {CoreSpeed.Describe()}");
        var all = new List<Row>();
        var peers = new Dictionary<string, (double Valid, double Test, string Choice)>();
        foreach (var set in Sets(sets, sizes, args))
        {
            Console.WriteLine($"\n## {set.Name}: train {set.Train.Rows} × {set.Train.Columns}, validation {set.Validation.Rows}, test {set.Test.Rows}" +
                              (double.IsNaN(set.Truth) ? "" : $"; truth {set.Truth:F2} nats/row"));
            foreach (var l in layers)
            {
                var o = new DeepGmmOptions { Layers = l, Seed = seed };
                var clock = Stopwatch.StartNew();
                var model = DeepGmmModel.Fit(set.Train, o);
                double s = clock.Elapsed.TotalSeconds;
                var row = new Row(set.Name, set.Group, Show(l), model.AverageLogDensity(set.Validation), model.AverageLogDensity(set.Test),
                    model.TrainingSummary?.BestValidationLogLikelihood ?? double.NaN, s, model.TrainingSummary?.EpochsRun ?? 0);
                all.Add(row);
                Console.WriteLine($"  {row.Layers,-8} valid {row.Validation,10:F2}  test {row.Test,10:F2}  held-out 10 % {row.HeldOut,10:F2}  ({row.Iterations} it, {s:F1} s)");
            }
            if (peer)
            {
                var (code, stdout, stderr) = Peer.RunPython(Peer.Script("deepgmm_defaults_sklearn.py"),
                    $"fit {Peer.WriteMatrix(set.Train, Own("train"))} {Peer.WriteMatrix(set.Validation, Own("valid"))} {Peer.WriteMatrix(set.Test, Own("test"))} " +
                    $"{set.Train.Columns} 1,2,3,4,6,8 {seed}", TimeSpan.FromMinutes(60));
                var v = Peer.ReadValues(stdout);
                if (code != 0 || !v.ContainsKey("BEST_TEST")) Console.WriteLine($"  scikit-learn peer failed ({code}): {stderr}");
                else
                {
                    string choice = $"K {v["BEST_K"]}, {new[] { "full", "tied", "diag", "spherical" }[(int)v["BEST_COV"]]}";
                    peers[set.Name] = (v["BEST_VALID"], v["BEST_TEST"], choice);
                    Console.WriteLine($"  sklearn  valid {v["BEST_VALID"],10:F2}  test {v["BEST_TEST"],10:F2}  ({choice})");
                }
            }
        }

        // Closing table: mean test nats/row over the splits per group and architecture, the architecture best on mean
        // validation in bold; then two per-split choices: on the validation set, and on the fit's own 10 % held-out
        // rows (what an automatic choice inside Fit would see), each reported on test.
        Console.WriteLine();
        Console.WriteLine("| set (splits) | " + string.Join(" | ", layers.Select(Show)) + " | chosen per split on validation | on the fit's own held-out 10 % | scikit-learn (val-chosen) |");
        Console.WriteLine("|---|" + string.Concat(layers.Select(_ => "---:|")) + "---:|---:|---:|");
        foreach (var group in all.Select(r => r.Group).Distinct())
        {
            var rows = all.Where(r => r.Group == group).ToArray();
            var splits = rows.Select(r => r.Set).Distinct().ToArray();
            double Mean(int[] l, Func<Row, double> f) => rows.Where(r => r.Layers == Show(l)).Average(f);
            var bestL = layers.MaxBy(l => Mean(l, r => r.Validation))!;
            string cells = string.Join(" | ", layers.Select(l => l == bestL ? $"**{Mean(l, r => r.Test):F2}**" : $"{Mean(l, r => r.Test):F2}"));
            var byValid = splits.Select(sp => rows.Where(r => r.Set == sp).MaxBy(r => r.Validation)!).ToArray();
            var byHeldOut = splits.Select(sp => rows.Where(r => r.Set == sp).MaxBy(r => r.HeldOut)!).ToArray();
            string Choice(Row[] c) => $"{c.Average(r => r.Test):F2} ({string.Join(" ", c.Select(r => r.Layers))})";
            var sk = splits.Where(peers.ContainsKey).Select(sp => peers[sp]).ToArray();
            string skCell = sk.Length == splits.Length ? $"{sk.Average(p => p.Test):F2} ({string.Join("; ", sk.Select(p => p.Choice))})" : "-";
            Console.WriteLine($"| {group} ({splits.Length}) | {cells} | {Choice(byValid)} | {Choice(byHeldOut)} | {skCell} |");
        }
        Console.WriteLine("\nFit seconds (mean over splits):");
        Console.WriteLine("| set | " + string.Join(" | ", layers.Select(Show)) + " |");
        Console.WriteLine("|---|" + string.Concat(layers.Select(_ => "---:|")));
        foreach (var group in all.Select(r => r.Group).Distinct())
            Console.WriteLine($"| {group} | " + string.Join(" | ", layers.Select(l => $"{all.Where(r => r.Group == group && r.Layers == Show(l)).Average(r => r.Seconds):F1}")) + " |");
        return 0;
    }

    /// <summary>A file name of this process's own (two runs at once must not read each other's splits).</summary>
    private static string Own(string name) => $"dd-{Environment.ProcessId}-{name}";

    private static string Show(int[] layers) => "[" + string.Join(",", layers) + "]";

    private static IEnumerable<Set> Sets(string[] names, int[] sizes, BenchmarkArgs args)
    {
        int splits = args.Int("splits", 3);
        foreach (var name in names)
            switch (name)
            {
                case "wine": for (int sp = 0; sp < splits; sp++) yield return Table("wine", "wine", sp); break;
                case "bc": for (int sp = 0; sp < splits; sp++) yield return Table("breast cancer", "breast_cancer", sp); break;
                case "mix6" or "mix20":
                    int d = name == "mix6" ? 6 : 20;
                    foreach (int n in sizes) for (int sp = 0; sp < splits; sp++) yield return Mixture(n, d, seed: 17, sp);
                    break;
                case "wide":
                    foreach (var spec in args.String("wide", "300x100,1000x200").Split(','))
                    {
                        var parts = spec.Split('x').Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray();
                        yield return Wide(parts[0], parts[1]);
                    }
                    break;
                case "digits":
                    var digits = SampleData.LoadDigits();
                    yield return new Set("digits", digits.Train, digits.Validation, digits.Test);
                    break;
                case "fashion":
                    if (!SampleData.FashionMnistAvailable()) { Console.WriteLine("Fashion-MNIST is not installed; skipping it."); break; }
                    int nTrain = args.Int("fashion-train", 10000);
                    var f = SampleData.LoadFashionMnist8x8(maxTrain: nTrain);
                    yield return new Set($"Fashion-MNIST 8×8 ({nTrain / 1000}k)", f.Train, f.Validation, f.Test);
                    break;
                default: throw new UsageException($"--sets: unknown set '{name}' (wine, bc, mix6, mix20, wide, digits, fashion)");
            }
    }

    /// <summary>A bundled scikit-learn table, seeded 60/20/20 split.</summary>
    private static Set Table(string label, string name, int split)
    {
        string path = Path.Combine(Path.GetTempPath(), "deepdensity-bench", Own(name) + ".f32");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var (code, stdout, stderr) = Peer.RunPython(Peer.Script("deepgmm_defaults_sklearn.py"), $"dump {name} {path}", TimeSpan.FromMinutes(5));
        if (code != 0) throw new UsageException($"could not read scikit-learn's {name}: {stderr}");
        var v = Peer.ReadValues(stdout);
        int rows = (int)v["ROWS"], cols = (int)v["COLS"];
        var values = new float[rows * cols];
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).Clear();
        File.ReadAllBytes(path).CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
        var order = Enumerable.Range(0, rows).ToArray();
        new Random(42 + split).Shuffle(order);
        int nTrain = (int)(rows * 0.6), nValid = (int)(rows * 0.2);
        RowMatrix Take(IEnumerable<int> idx) => RowMatrix.FromRows(idx.Select(i => values.AsSpan(i * cols, cols).ToArray()).ToList());
        return new Set($"{label} ({nTrain} × {cols}) split {split}", Take(order.Take(nTrain)), Take(order.Skip(nTrain).Take(nValid)), Take(order.Skip(nTrain + nValid)))
            { Group = $"{label} ({nTrain} × {cols})" };
    }

    /// <summary>5 random full-covariance Gaussians (means N(0, 9 I), covariances A·Aᵀ/D + 0.1 I, weights ∝ U(0.5, 1.5)).</summary>
    private static Set Mixture(int n, int d, int seed, int split)
    {
        var rng = new Random(seed + d);
        const int k = 5;
        var means = new double[k][];
        var chol = new double[k][,];
        var w = new double[k];
        for (int c = 0; c < k; c++)
        {
            means[c] = Enumerable.Range(0, d).Select(_ => 3 * Normal(rng)).ToArray();
            var a = new double[d, d];
            for (int i = 0; i < d; i++) for (int j = 0; j < d; j++) a[i, j] = Normal(rng);
            var cov = new double[d, d];
            for (int i = 0; i < d; i++)
                for (int j = 0; j < d; j++)
                {
                    double s = 0;
                    for (int t = 0; t < d; t++) s += a[i, t] * a[j, t];
                    cov[i, j] = s / d + (i == j ? 0.1 : 0);
                }
            chol[c] = Cholesky(cov, d);
            w[c] = 0.5 + rng.NextDouble();
        }
        double total = w.Sum();
        RowMatrix Draw(int rows, Random r)
        {
            var m = new RowMatrix(rows, d);
            for (int row = 0; row < rows; row++)
            {
                double u = r.NextDouble() * total;
                int c = 0;
                while (c < k - 1 && (u -= w[c]) > 0) c++;
                var z = Enumerable.Range(0, d).Select(_ => Normal(r)).ToArray();
                for (int i = 0; i < d; i++)
                {
                    double s = means[c][i];
                    for (int j = 0; j <= i; j++) s += chol[c][i, j] * z[j];
                    m[row, i] = (float)s;
                }
            }
            return m;
        }
        return new Set($"mixture {n} × {d} draw {split}", Draw(n, new Random(seed * 31 + n + 1000 * split)), Draw(1000, new Random(seed * 37 + 1 + 1000 * split)),
            Draw(5000, new Random(seed * 41 + 2 + 1000 * split))) { Group = $"mixture {n} × {d}" };
    }

    private static Set Wide(int n, int d)
    {
        RowMatrix Draw(int rows, Random r)
        {
            var m = new RowMatrix(rows, d);
            for (int i = 0; i < rows; i++) for (int j = 0; j < d; j++) m[i, j] = (float)Normal(r);
            return m;
        }
        return new Set($"wide N(0,1) {n} × {d}", Draw(n, new Random(5)), Draw(1000, new Random(6)), Draw(2000, new Random(7)),
            -0.5 * d * Math.Log(2 * Math.PI * Math.E));
    }

    private static double Normal(Random r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());

    private static double[,] Cholesky(double[,] a, int d)
    {
        var l = new double[d, d];
        for (int i = 0; i < d; i++)
            for (int j = 0; j <= i; j++)
            {
                double s = a[i, j];
                for (int t = 0; t < j; t++) s -= l[i, t] * l[j, t];
                l[i, j] = i == j ? Math.Sqrt(s) : s / l[j, j];
            }
        return l;
    }
}
