using System.Globalization;
using System.Text.Json;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Models.Rnade;

namespace DeepDensity.Benchmarks;

/// <summary>
/// The Gaussian RBM on small real tables (docs/models/rbm.md, "Defaults"): iris (4 columns), cars (5 columns, rows
/// with a missing value dropped), Seattle weather with 3 columns (temp_max, temp_min, wind) and 4 (with precipitation),
/// from Debian's python3-vega-datasets. Each table is shuffled once (seed 42) and split 60/20/20; every RBM variant is
/// fitted on the training rows at the library's defaults but for the width (<c>--sigma</c>: a list of
/// <see cref="RbmOptions.VisibleStdDev"/> values, 0 = learned), for each seed. References: one full-covariance Gaussian
/// fitted by maximum likelihood on the training rows, and RNADE at its defaults (<c>Fit(train, validation)</c>).
/// Prints mean log-likelihood in nats per row, validation / test, per seed and as the mean over seeds.
/// </summary>
public sealed class RbmTablesBenchmark : IBenchmark
{
    private const string VegaData = "/usr/lib/python3/dist-packages/vega_datasets/_data";

    public string Name => "rbm-tables";
    public string Description => "Gaussian RBM widths vs one full-covariance Gaussian and RNADE on iris, cars, Seattle weather 3/4 columns, 60/20/20 " +
                                 "(--sigma 0.7,0 (0: learned) --seeds 1,2,3 --tables iris,cars,weather3,weather4 --hidden 100 --lr R --cd --gibbs K --no-rnade --split-seed 42)";

    public int Run(BenchmarkArgs args)
    {
        if (!Directory.Exists(VegaData)) { Console.WriteLine($"{VegaData} not found (apt-get install python3-vega-datasets)."); return 1; }
        var sigmas = args.String("sigma", "0.7,0").Split(',').Select(s => float.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var seeds = args.String("seeds", "1,2,3").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var tables = args.String("tables", "iris,cars,weather3,weather4").Split(',');
        int hidden = args.Int("hidden", RbmOptions.Defaults.HiddenUnits), splitSeed = args.Int("split-seed", 42);
        bool rnade = !args.Flag("no-rnade");
        var means = new List<(string Table, string Variant, double Valid, double Test)>();
        foreach (var table in tables)
        {
            var (tr, va, te) = Split(Load(table), splitSeed);
            Console.WriteLine($"== {table}: {tr.Columns} columns, train {tr.Rows}, validation {va.Rows}, test {te.Rows}");
            var (gv, gt) = GaussianReference(tr, va, te);
            Console.WriteLine(FormattableString.Invariant($"one full-covariance Gaussian: {gv:F3} / {gt:F3}"));
            means.Add((table, "one Gaussian", gv, gt));
            var columnScale = ColumnStandardizer.Fit(tr).Scale.ToArray();
            foreach (float sigma in sigmas)
            {
                string name = sigma == 0 ? "RBM, learned σ" : FormattableString.Invariant($"RBM, σ = {sigma}");
                var results = new List<(double V, double T)>();
                foreach (int seed in seeds)
                {
                    var o = new RbmOptions { VisibleType = RbmVisibleType.Gaussian, HiddenUnits = hidden, VisibleStdDev = sigma, Seed = (ulong)seed };
                    if (args.Double("lr", 0) > 0) o.LearningRate = (float)args.Double("lr", 0);
                    if (args.Flag("cd")) o.Algorithm = RbmTrainingAlgorithm.ContrastiveDivergence;
                    if (args.Int("gibbs", 0) > 0) o.GibbsSteps = args.Int("gibbs", 1);
                    var clock = System.Diagnostics.Stopwatch.StartNew();
                    var model = RbmModel.Fit(tr, o);
                    double v = Mean(model.LogDensity(va)), t = Mean(model.LogDensity(te)), trainLl = Mean(model.LogDensity(tr));
                    results.Add((v, t));
                    var widths = Enumerable.Range(0, tr.Columns).Select(c => (model.Standardizer!.Scale[c] / columnScale[c]).ToString("F3", CultureInfo.InvariantCulture));
                    Console.WriteLine(FormattableString.Invariant($"{name}, seed {seed}: {v:F3} / {t:F3}  (train {trainLl:F3}; {clock.Elapsed.TotalSeconds:F1} s; σ per column {string.Join(' ', widths)}; {model.TrainingSummary?.EpochsRun} epochs, {model.TrainingSummary?.DivergenceRecoveries} recoveries)"));
                }
                means.Add((table, name, results.Average(r => r.V), results.Average(r => r.T)));
            }
            if (rnade)
            {
                var results = new List<(double V, double T)>();
                foreach (int seed in seeds)
                {
                    var model = RnadeModel.Fit(tr, new RnadeOptions { Seed = (ulong)seed }, va);
                    double v = Mean(model.LogDensity(va)), t = Mean(model.LogDensity(te));
                    results.Add((v, t));
                    Console.WriteLine(FormattableString.Invariant($"RNADE defaults, seed {seed}: {v:F3} / {t:F3}"));
                }
                means.Add((table, "RNADE (defaults)", results.Average(r => r.V), results.Average(r => r.T)));
            }
        }
        Console.WriteLine();
        Console.WriteLine($"Mean over seeds {string.Join(",", seeds)}, validation / test (nats per row):");
        Console.WriteLine($"| variant | {string.Join(" | ", tables)} | sum of validation |");
        Console.WriteLine($"|---|{string.Concat(tables.Select(_ => "---|"))}---|");
        foreach (var variant in means.Select(m => m.Variant).Distinct())
        {
            var cells = tables.Select(t => means.First(m => m.Table == t && m.Variant == variant)).ToList();
            Console.WriteLine(FormattableString.Invariant($"| {variant} | {string.Join(" | ", cells.Select(c => $"{c.Valid:F2} / {c.Test:F2}"))} | {cells.Sum(c => c.Valid):F2} |"));
        }
        return 0;
    }

    private static double Mean(float[] values) => values.Average(x => (double)x);

    /// <summary>The table's rows (numeric columns; rows with a missing value dropped).</summary>
    private static List<double[]> Load(string table)
    {
        switch (table)
        {
            case "iris":
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(VegaData, "iris.json")));
                string[] cols = ["sepalLength", "sepalWidth", "petalLength", "petalWidth"];
                return doc.RootElement.EnumerateArray().Select(e => cols.Select(c => e.GetProperty(c).GetDouble()).ToArray()).ToList();
            }
            case "cars":
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(VegaData, "cars.json")));
                string[] cols = ["Miles_per_Gallon", "Displacement", "Horsepower", "Weight_in_lbs", "Acceleration"];
                return doc.RootElement.EnumerateArray()
                    .Where(e => cols.All(c => e.GetProperty(c).ValueKind == JsonValueKind.Number))
                    .Select(e => cols.Select(c => e.GetProperty(c).GetDouble()).ToArray()).ToList();
            }
            case "weather3" or "weather4":
            {
                // date,precipitation,temp_max,temp_min,wind,weather
                var lines = File.ReadAllLines(Path.Combine(VegaData, "seattle-weather.csv")).Skip(1);
                int[] cols = table == "weather3" ? [2, 3, 4] : [1, 2, 3, 4];
                return lines.Select(l => l.Split(',')).Select(f => cols.Select(c => double.Parse(f[c], CultureInfo.InvariantCulture)).ToArray()).ToList();
            }
            default: throw new UsageException($"--tables: '{table}' is not one of iris, cars, weather3, weather4.");
        }
    }

    /// <summary>One seeded shuffle, then the first 60 % train, the next 20 % validation, the rest test.</summary>
    private static (RowMatrix Train, RowMatrix Valid, RowMatrix Test) Split(List<double[]> rows, int seed)
    {
        var order = Enumerable.Range(0, rows.Count).ToArray();
        new Random(seed).Shuffle(order);
        int n = rows.Count, a = n * 6 / 10, b = n * 8 / 10, d = rows[0].Length;
        RowMatrix Take(int from, int to)
        {
            var x = new float[(to - from) * d];
            for (int r = from; r < to; r++)
                for (int j = 0; j < d; j++) x[(r - from) * d + j] = (float)rows[order[r]][j];
            return new RowMatrix(x, to - from, d);
        }
        return (Take(0, a), Take(a, b), Take(b, n));
    }

    /// <summary>One full-covariance Gaussian by maximum likelihood on the training rows: mean log-density of the
    /// validation and test rows.</summary>
    internal static (double Valid, double Test) GaussianReference(RowMatrix train, RowMatrix valid, RowMatrix test)
    {
        int n = train.Rows, d = train.Columns;
        var mu = new double[d];
        for (int r = 0; r < n; r++) for (int j = 0; j < d; j++) mu[j] += train[r, j] / (double)n;
        var cov = new double[d, d];
        for (int r = 0; r < n; r++)
            for (int i = 0; i < d; i++)
                for (int j = 0; j < d; j++) cov[i, j] += (train[r, i] - mu[i]) * (train[r, j] - mu[j]) / n;
        // Cholesky L Lᵀ = Σ.
        var l = new double[d, d];
        for (int i = 0; i < d; i++)
            for (int j = 0; j <= i; j++)
            {
                double s = cov[i, j];
                for (int k = 0; k < j; k++) s -= l[i, k] * l[j, k];
                l[i, j] = i == j ? Math.Sqrt(s) : s / l[j, j];
            }
        double logDet = 0;
        for (int i = 0; i < d; i++) logDet += 2 * Math.Log(l[i, i]);
        double Score(RowMatrix x)
        {
            double total = 0;
            var z = new double[d];
            for (int r = 0; r < x.Rows; r++)
            {
                double q = 0;
                for (int i = 0; i < d; i++)
                {
                    double s = x[r, i] - mu[i];
                    for (int k = 0; k < i; k++) s -= l[i, k] * z[k];
                    z[i] = s / l[i, i];
                    q += z[i] * z[i];
                }
                total += -0.5 * (q + logDet + d * Math.Log(2 * Math.PI));
            }
            return total / x.Rows;
        }
        return (Score(valid), Score(test));
    }
}
