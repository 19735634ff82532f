using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Transforms;

namespace DeepDensity.Benchmarks;

/// <summary>
/// Issue #18 (Scale): streamed training through the ML.NET estimators (<c>TrainingData = Streamed</c>) on 0.25M–2M
/// rows generated on the fly behind an IDataView (each cursor regenerates them; nothing is materialised), for RNADE,
/// Deep GMM and the RBM with a fixed number of epochs / EM iterations. Each (model, size) runs in a fresh child process
/// so that its peak working set (<see cref="Process.PeakWorkingSet64"/>) is its own; the table shows time, rows/s
/// (rows × epochs ÷ seconds) and the peak against the process's working set just before Fit (runtime, ML.NET, JIT).
/// Memory should stay flat as rows double (O(buffer + batch + model)) and time should double.
///   dotnet run -c Release --project build/Benchmarks -- scale [--sizes 250000,500000,1000000,2000000]
///       [--models rnade,deepgmm,rbm] [--epochs 2] [--dim 16] [--buffer 65536 (0 = automatic)] [--heap-limit MiB]
/// Smoke test (seconds): scale --sizes 2000,4000 --epochs 1
/// </summary>
public sealed class ScaleBenchmark : IBenchmark
{
    public string Name => "scale";
    public string Description => "streamed training from a generated IDataView, 0.25M-2M rows: time, rows/s, peak working set (~3 min)";

    public int Run(BenchmarkArgs args)
    {
        if (args.Flag("child")) return RunChild(args);
        var sizes = args.String("sizes", "250000,500000,1000000,2000000").Split(',').Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var models = args.String("models", "rnade,deepgmm,rbm").Split(',');
        // A fixed buffer well below the smallest size (the automatic one, 64 MiB, would hold 1M rows of 16 columns whole).
        int epochs = args.Int("epochs", 2), dim = args.Int("dim", 16), buffer = args.Int("buffer", 65536);
        // Optional GC heap hard limit of the children (MiB): a run that finishes under a limit below its data's size
        // never held the data (the peak working set also counts garbage the GC has not yet returned).
        int heapLimit = args.Int("heap-limit", 0);
        Console.WriteLine($"machine: {Machine.Describe()}");
        Console.WriteLine($"load average before: {Machine.LoadAverage()}");
        Console.WriteLine($"streamed training (TrainingData = Streamed, shuffle buffer {(buffer > 0 ? buffer.ToString(CultureInfo.InvariantCulture) : "automatic")}), " +
            $"{dim} columns generated per cursor, {epochs} epochs / EM iterations; one child process per run" +
            (heapLimit > 0 ? $"; GC heap hard limit {heapLimit} MiB" : "") + "\n");
        Console.WriteLine("| model | rows | fit (s) | rows/s | peak working set (MiB) | before Fit (MiB) | peak − before (MiB) |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var model in models)
            foreach (var rows in sizes)
            {
                var r = Child($"scale --child --model {model} --rows {rows} --epochs {epochs} --dim {dim} --buffer {buffer}", heapLimit);
                if (r is null) { Console.WriteLine($"| {model} | {rows:N0} | failed | | | | |"); continue; }
                var (seconds, peak, before) = r.Value;
                Console.WriteLine($"| {model} | {rows:N0} | {seconds:F1} | {rows * (double)epochs / seconds:N0} | {peak / 1048576.0:F0} | {before / 1048576.0:F0} | {(peak - before) / 1048576.0:F0} |");
            }
        Console.WriteLine($"\nload average after: {Machine.LoadAverage()}");
        return 0;
    }

    /// <summary>Runs this benchmark in a new process; returns its RESULT line (seconds, peak working set, working set before Fit).</summary>
    private static (double Seconds, long Peak, long Before)? Child(string arguments, int heapLimitMiB)
    {
        string self = typeof(ScaleBenchmark).Assembly.Location;
        var psi = new ProcessStartInfo(Environment.ProcessPath!, (Environment.ProcessPath!.EndsWith(".exe", StringComparison.Ordinal) || Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet" ? $"\"{self}\" " : "") + arguments)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        if (heapLimitMiB > 0) psi.Environment["DOTNET_GCHeapHardLimit"] = "0x" + ((long)heapLimitMiB << 20).ToString("X", CultureInfo.InvariantCulture);
        using var p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd(), stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        var line = stdout.Split('\n').FirstOrDefault(l => l.StartsWith("RESULT ", StringComparison.Ordinal));
        if (p.ExitCode != 0 || line is null) { Console.Error.WriteLine($"child failed ({arguments}):\n{stdout}\n{stderr}"); return null; }
        var f = line.Split(' ');
        return (double.Parse(f[1], CultureInfo.InvariantCulture), long.Parse(f[2], CultureInfo.InvariantCulture), long.Parse(f[3], CultureInfo.InvariantCulture));
    }

    private static int RunChild(BenchmarkArgs args)
    {
        string model = args.String("model", "rnade");
        long rows = args.Int("rows", 250_000);
        int epochs = args.Int("epochs", 2), dim = args.Int("dim", 16), buffer = args.Int("buffer", 0);
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(Generate(rows, dim, binary: model == "rbm"), Definition(dim));
        var estimator = Estimator(ml, model, epochs, buffer);
        using var self = Process.GetCurrentProcess();
        self.Refresh();
        long before = self.WorkingSet64;
        var clock = Stopwatch.StartNew();
        var transformer = estimator.Fit(view);
        double seconds = clock.Elapsed.TotalSeconds;
        self.Refresh();
        GC.KeepAlive(transformer);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"RESULT {seconds:R} {self.PeakWorkingSet64} {before}"));
        return 0;
    }

    private static IEstimator<ITransformer> Estimator(MLContext ml, string model, int epochs, int buffer) => model switch
    {
        "rnade" => ml.DensityEstimation.Rnade(new RnadeEstimator.Options
        {
            TrainingData = DensityTrainingData.Streamed, ShuffleBufferRows = buffer,
            ModelOptions = new RnadeOptions { HiddenUnits = 50, Components = 10, MaxEpochs = epochs, Seed = 3 },
        }),
        "deepgmm" => ml.DensityEstimation.DeepGmm(new DeepGmmEstimator.Options
        {
            TrainingData = DensityTrainingData.Streamed, ShuffleBufferRows = buffer,
            ModelOptions = new DeepGmmOptions { Layers = new[] { 4, 4 }, MaxIterations = epochs, Seed = 3 },
        }),
        "rbm" => ml.DensityEstimation.Rbm(new RbmEstimator.Options
        {
            TrainingData = DensityTrainingData.Streamed, ShuffleBufferRows = buffer,
            ModelOptions = new RbmOptions { HiddenUnits = 64, MaxEpochs = epochs, Seed = 3 },
        }),
        _ => throw new UsageException($"Unknown model '{model}' (rnade, deepgmm, rbm)."),
    };

    private sealed class GeneratedRow
    {
        public float[] Features { get; set; } = [];
    }

    private static SchemaDefinition Definition(int dim)
    {
        var d = SchemaDefinition.Create(typeof(GeneratedRow));
        d[nameof(GeneratedRow.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, dim);
        return d;
    }

    /// <summary>Row i of a mixture of four correlated Gaussian clusters, from a SplitMix64 sequence seeded by i (the
    /// same rows on every enumeration, i.e. every cursor; binary: thresholded at 0).</summary>
    private static IEnumerable<GeneratedRow> Generate(long rows, int dim, bool binary)
    {
        for (long i = 0; i < rows; i++)
        {
            ulong state = (ulong)i * 0xD1B54A32D192ED03UL + 0x5CA1E;
            int cluster = (int)(Next(ref state) & 3);
            var x = new float[dim];
            double previous = 0;
            for (int c = 0; c < dim; c++)
            {
                double u1 = ((Next(ref state) >> 11) + 1) * (1.0 / 9007199254740993.0), u2 = (Next(ref state) >> 11) * (1.0 / 9007199254740992.0);
                double v = ((cluster + c) % 4 - 1.5) + 0.7 * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2) + 0.4 * previous;
                previous = v;
                x[c] = binary ? (v > 0 ? 1f : 0f) : (float)v;
            }
            yield return new GeneratedRow { Features = x };
        }
    }

    private static ulong Next(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
