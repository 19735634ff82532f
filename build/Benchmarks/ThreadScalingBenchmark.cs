using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.ML.DeepDensity;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Models.Nvil;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Randomness;

namespace DeepDensity.Benchmarks;

/// <summary>
/// Issue #18's scaling table: for every model, training and scoring time on 1 and on 2 threads (the speed-up), whether
/// the two runs give the same bytes (they must), and the latency of scoring one row (what a PredictionEngine pays).
/// Synthetic data of fixed shapes; fixed epochs (no early stopping) so both thread counts do the same work.
/// </summary>
public sealed class ThreadScalingBenchmark : IBenchmark
{
    public string Name => "threads";
    public string Description => "1 -> 2 thread speed-up of training and scoring (median of --rounds 5 alternating rounds), and one-row latency, for every model (~10 min; --only \"RBM,RBM, large\" for some)";

    /// <summary>Times are medians over the rounds; the speed-ups are medians of the per-round ratios (a round times 1
    /// thread, then 2 threads, back to back: this VM's speed drifts by ±20 % over minutes, which one run of each
    /// measured as much as the threads).</summary>
    private sealed record Row(string Model, string Shape, double Fit1, double Fit2, double Score1, double Score2,
        double OneRowMicroseconds, bool SameBytes, double FitSpeedup, double ScoreSpeedup);

    /// <summary>Rounds per row: five since session 26, when two runs of three rounds minutes apart gave the large NVIL's
    /// training 1.16× and 1.88× (seven rounds: 1.60×).</summary>
    private static int s_rounds = 5;
    /// <summary>Models to measure (--only, separated by ';' or ','; empty: all).</summary>
    private static string[] s_only = [];
    private static bool Wanted(string name) => s_only.Length == 0 || s_only.Contains(name, StringComparer.OrdinalIgnoreCase);

    /// <summary>Rounds of [1 thread, 2 threads] of <paramref name="work"/>: median times, median ratio, the first results.</summary>
    private static (double T1, double T2, double Speedup, T Result1, T Result2) Rounds<T>(Func<T> work)
    {
        var t1 = new List<double>(); var t2 = new List<double>();
        T? r1 = default, r2 = default;
        for (int round = 0; round < s_rounds; round++)
        {
            var (a, ra) = Timed(1, work);
            var (b, rb) = Timed(2, work);
            t1.Add(a); t2.Add(b);
            if (round == 0) { r1 = ra; r2 = rb; }
        }
        return (Peer.Median(t1), Peer.Median(t2), Peer.Median(t1.Zip(t2, (a, b) => a / b)), r1!, r2!);
    }

    public int Run(BenchmarkArgs args)
    {
        double scale = args.Double("scale", 1.0);
        s_rounds = Math.Max(1, args.Int("rounds", 5));
        s_only = args.String("only", "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (s_only.Length == 1 && !s_only[0].Contains(", ")) s_only = s_only[0].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        string? jsonPath = args.String("json", "") is { Length: > 0 } j ? j : null;
        int n = (int)(20_000 * scale);
        Console.WriteLine($"machine: {Machine.Describe()}");
        Console.WriteLine($"load average before: {Machine.LoadAverage()}");
        Console.WriteLine(CoreSpeed.Describe());
        var rows = new List<Row>
        {
            Measure("RNADE", $"{n}×32, H=100, K=10, 2 epochs", Real(n, 32, 1), Real(2000, 32, 2),
                (x, t) => RnadeModel.Fit(x, new RnadeOptions { HiddenUnits = 100, MaxEpochs = 2, ValidationFraction = 0, Seed = 1 })),
            Measure("Deep RNADE", $"{n}×32, 2×100 (defaults), 2 epochs", Real(n, 32, 15), Real(2000, 32, 16),
                (x, t) => DeepRnadeModel.Fit(x, new DeepRnadeOptions { MaxEpochs = 2, ValidationFraction = 0, Seed = 1 })),
            Measure("Deep GMM", $"{n}×16, layers {{4, 4}}, 5 EM iterations", Real(n, 16, 3), Real(2000, 16, 4),
                (x, t) => DeepGmmModel.Fit(x, new DeepGmmOptions { Layers = new[] { 4, 4 }, MaxIterations = 5, PretrainIterations = 2, ValidationFraction = 0, Seed = 1 })),
            Measure("RBM", $"{n}×64 binary, H=200, 2 epochs, AIS 1000 temps", Binary(n, 64, 5), Binary(2000, 64, 6),
                (x, t) => RbmModel.Fit(x, new RbmOptions { HiddenUnits = 200, MaxEpochs = 2, AisTemperatures = 1000, AisRuns = 50, Seed = 1 })),
            Measure("IWAE", $"{n / 2}×64 binary, k=5, 2 epochs, K=100", Binary(n / 2, 64, 7), Binary(1000, 64, 8),
                (x, t) => IwaeModel.Fit(x, new IwaeOptions { MaxEpochs = 2, EvaluationSamples = 100, ValidationFraction = 0, Seed = 1 })),
            Measure("NVIL", $"{n / 2}×64 binary, 200 latents, 2 epochs, K=100", Binary(n / 2, 64, 9), Binary(1000, 64, 10),
                (x, t) => NvilModel.Fit(x, new NvilOptions { MaxEpochs = 2, EvaluationSamples = 100, ValidationFraction = 0, Seed = 1 })),
            MeasureSequences("RNN-RNADE", $"{n / 30} sequences × 30 frames × 4, 2 epochs", n / 30),
            // The README benchmarks' own shapes (784 binary inputs), where a step's work is large (issue #18's ≥ 1.7×).
            Measure("RBM, large", $"{n / 4}×784 binary, H=500, 1 epoch, AIS 100 temps", Binary(n / 4, 784, 11), Binary(500, 784, 12),
                (x, t) => RbmModel.Fit(x, new RbmOptions { HiddenUnits = 500, MaxEpochs = 1, AisTemperatures = 100, AisRuns = 16, Seed = 1 })),
            Measure("IWAE, large", $"{n / 4}×784 binary, 200-200-50, k=5, 1 epoch, K=100", Binary(n / 4, 784, 13), Binary(500, 784, 14),
                (x, t) => IwaeModel.Fit(x, new IwaeOptions { LatentDimensions = new[] { 50 }, HiddenUnits = new[] { 200, 200 }, MaxEpochs = 1, EvaluationSamples = 100, ValidationFraction = 0, Seed = 1 })),
            Measure("NVIL, large", $"{n / 4}×784 binary, 200-200 latents, 1 epoch, K=100", Binary(n / 4, 784, 15), Binary(500, 784, 16),
                (x, t) => NvilModel.Fit(x, new NvilOptions { LatentDimensions = new[] { 200, 200 }, MaxEpochs = 1, EvaluationSamples = 100, ValidationFraction = 0, Seed = 1 })),
        };
        rows.RemoveAll(r => r is null);
        Console.WriteLine($"load average after: {Machine.LoadAverage()}");
        Console.WriteLine(CoreSpeed.Describe());
        Console.WriteLine();
        Console.WriteLine(Markdown(rows));
        if (jsonPath is not null)
        {
            File.WriteAllText(jsonPath, JsonSerializer.Serialize(new { machine = Machine.Describe(), rows }, new JsonSerializerOptions { WriteIndented = true }));
            Console.WriteLine($"wrote {jsonPath}");
        }
        return rows.All(r => r.SameBytes) ? 0 : 1;
    }

    private static Row Measure<TModel>(string name, string shape, RowMatrix train, RowMatrix test, Func<RowMatrix, int, TModel> fit)
        where TModel : DensityModel
    {
        if (!Wanted(name)) return null!;
        // Warm-up (JIT, thread pool) on a slice, so the first timed run does not pay for it.
        var warm = fit(new RowMatrix(train.AsSpan()[..(Math.Min(500, train.Rows) * train.Columns)].ToArray(), Math.Min(500, train.Rows), train.Columns), 2);
        warm.LogDensity(test);
        var (fit1, fit2, fitSpeedup, model1, model2) = Rounds(() => fit(train, 0));
        var (score1, score2, scoreSpeedup, _, _) = Rounds(() => model1.LogDensity(test));
        // One row as a PredictionEngine scores it: warm up, then the median of many calls.
        var one = test.AsSpan()[..test.Columns].ToArray();
        var dest = new float[1];
        for (int i = 0; i < 200; i++) model1.LogDensity(one, dest);
        var times = new double[2000];
        for (int i = 0; i < times.Length; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            model1.LogDensity(one, dest);
            times[i] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
        }
        Array.Sort(times);
        var row = new Row(name, shape, fit1, fit2, score1, score2, times[times.Length / 2], model1.ToBytes().AsSpan().SequenceEqual(model2.ToBytes()), fitSpeedup, scoreSpeedup);
        Console.WriteLine($"{name,-10} fit {fit1,7:F2} s / {fit2,7:F2} s ({fitSpeedup:F2}x)  score {score1,7:F3} s / {score2,7:F3} s ({scoreSpeedup:F2}x)  one row {row.OneRowMicroseconds,8:F1} µs  same bytes {row.SameBytes}");
        return row;
    }

    private static Row MeasureSequences(string name, string shape, int sequences)
    {
        if (!Wanted(name)) return null!;
        var train = Sequences(sequences, 30, 4, 11);
        var test = Sequences(200, 30, 4, 12);
        RnnRnadeModel Fit(SequenceBatch data) => RnnRnadeModel.Fit(data, new RnnRnadeOptions { MaxEpochs = 2, ValidationFraction = 0, Seed = 1 });
        Fit(Sequences(20, 30, 4, 13)).LogDensity(test); // warm-up (JIT, thread pool)
        var (fit1, fit2, fitSpeedup, model1, model2) = Rounds(() => Fit(train));
        var (score1, score2, scoreSpeedup, _, _) = Rounds(() => model1.LogDensity(test));
        var one = SequenceBatch.FromSequences(new[] { test.Sequence(0).ToArray() }, 4);
        for (int i = 0; i < 100; i++) model1.LogDensity(one);
        var times = new double[1000];
        for (int i = 0; i < times.Length; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            model1.LogDensity(one);
            times[i] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
        }
        Array.Sort(times);
        var row = new Row(name, shape, fit1, fit2, score1, score2, times[times.Length / 2], model1.ToBytes().AsSpan().SequenceEqual(model2.ToBytes()), fitSpeedup, scoreSpeedup);
        Console.WriteLine($"{name,-10} fit {fit1,7:F2} s / {fit2,7:F2} s ({fitSpeedup:F2}x)  score {score1,7:F3} s / {score2,7:F3} s ({scoreSpeedup:F2}x)  one sequence {row.OneRowMicroseconds,8:F1} µs  same bytes {row.SameBytes}");
        return row;
    }

    private static (double Seconds, T Result) Timed<T>(int threads, Func<T> work)
    {
        int before = DeepDensityEnvironment.MaxDegreeOfParallelism;
        DeepDensityEnvironment.MaxDegreeOfParallelism = threads;
        try
        {
            var sw = Stopwatch.StartNew();
            var result = work();
            return (sw.Elapsed.TotalSeconds, result);
        }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = before; }
    }

    private static string Markdown(IReadOnlyList<Row> rows)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| model | shape | fit 1 thread (s) | fit 2 threads (s) | speed-up | score 1 thread (s) | score 2 threads (s) | speed-up | one row (µs) | same bytes |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var r in rows)
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Model} | {r.Shape} | {r.Fit1:F2} | {r.Fit2:F2} | {r.FitSpeedup:F2}× | {r.Score1:F3} | {r.Score2:F3} | {r.ScoreSpeedup:F2}× | {r.OneRowMicroseconds:F1} | {(r.SameBytes ? "yes" : "NO")} |"));
        return sb.ToString();
    }

    /// <summary>A mixture of a few correlated Gaussians (something for the real-valued models to learn).</summary>
    internal static RowMatrix Real(int n, int d, ulong seed)
    {
        var rng = new RandomStream(seed);
        var m = new RowMatrix(n, d);
        for (int r = 0; r < n; r++)
        {
            int c = rng.NextInt(4);
            double shared = rng.NextGaussian();
            var row = m.Row(r);
            for (int j = 0; j < d; j++) row[j] = (float)(c * 1.5 + 0.8 * shared * ((j % 3) - 1) + 0.5 * rng.NextGaussian());
        }
        return m;
    }

    /// <summary>Binary rows from a few noisy prototypes.</summary>
    internal static RowMatrix Binary(int n, int d, ulong seed)
    {
        var rng = new RandomStream(seed);
        var protos = new bool[4, d];
        for (int c = 0; c < 4; c++) for (int j = 0; j < d; j++) protos[c, j] = rng.NextDouble() < 0.5;
        var m = new RowMatrix(n, d);
        for (int r = 0; r < n; r++)
        {
            int c = rng.NextInt(4);
            var row = m.Row(r);
            for (int j = 0; j < d; j++) row[j] = (protos[c, j] ^ (rng.NextDouble() < 0.1)) ? 1f : 0f;
        }
        return m;
    }

    /// <summary>Sequences of a stable vector AR(1) process.</summary>
    internal static SequenceBatch Sequences(int count, int length, int d, ulong seed)
    {
        var rng = new RandomStream(seed);
        var list = new List<float[]>(count);
        for (int s = 0; s < count; s++)
        {
            var v = new float[length * d];
            for (int t = 0; t < length; t++)
                for (int j = 0; j < d; j++)
                    v[t * d + j] = (float)((t > 0 ? 0.8 * v[(t - 1) * d + j] : 0) + 0.5 * rng.NextGaussian());
            list.Add(v);
        }
        return SequenceBatch.FromSequences(list, d);
    }
}

/// <summary>What the machine is, for benchmark reports.</summary>
public static class Machine
{
    public static string Describe()
    {
        string model = "unknown CPU";
        var flags = new HashSet<string>();
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
            {
                if (line.StartsWith("model name", StringComparison.Ordinal)) model = line[(line.IndexOf(':') + 1)..].Trim();
                if (line.StartsWith("flags", StringComparison.Ordinal) && flags.Count == 0)
                    foreach (var f in line[(line.IndexOf(':') + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries)) flags.Add(f);
            }
        }
        catch (IOException) { }
        var simd = new[] { "avx512f", "avx512bw", "avx512vl", "avx2", "fma", "amx_tile", "amx_int8" }.Where(flags.Contains);
        return $"{model}, {Environment.ProcessorCount} logical cores, {string.Join(" ", simd)}, .NET {Environment.Version}, " +
               $"AMX binary products: {Microsoft.ML.DeepDensity.Numerics.Amx.AmxRuntime.Status}";
    }

    public static string LoadAverage()
    {
        try { return File.ReadAllText("/proc/loadavg").Trim(); } catch (IOException) { return "unknown"; }
    }
}
