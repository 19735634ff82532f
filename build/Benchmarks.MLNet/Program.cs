using System.Diagnostics;
using System.Globalization;
using DeepDensity.Samples;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Transforms;

// Scoring throughput of each model family, in the same run: (a) the engine's batched API, (b) the live ML.NET
// transformer (cursor over an IDataView, reading LogDensity), (c) the model saved to a zip and loaded back with the
// ordinary mlContext.Model.Load, (d) the loaded model with WithLiveDensityTransformers, and one row per call through a
// PredictionEngine on the live and on the loaded model. Targets: loaded ≤ 1.5× live (rows), PredictionEngine loaded ≤ 2× live.
// Besides rows/s (best of the repeats), each path reports its CPU time per row summed over all threads and the bytes it
// allocates per row (whole process: ML.NET's own cursors included): on a loaded machine the CPU ratios still mean something.
//   dotnet run -c Release --project build/Benchmarks.MLNet -- [--family all|rnade|deeprnade|deepgmm|rbm|iwae] [--rows 10000]
//       [--predict 2000] [--epochs 10] [--repeat 3]
// Smoke test (seconds): --rows 300 --predict 100 --epochs 1 --repeat 1
// Anything else (--help, a misspelt option, a missing value) prints this usage instead of starting a minutes-long run.
const string Usage = "usage: DeepDensity.Benchmarks.MLNet [--family all|rnade|deeprnade|deepgmm|rbm|iwae] [--rows 10000] [--predict 2000] [--epochs 10] [--repeat 3]\n" +
    "  scoring rows/s, CPU and bytes per row of each family's engine, live, loaded and PredictionEngine paths on the shipped digits\n" +
    "  smoke test (seconds): --rows 300 --predict 100 --epochs 1 --repeat 1";
string[] known = { "--family", "--rows", "--predict", "--epochs", "--repeat" };
for (int a = 0; a < args.Length; a += 2)
{
    if (Array.IndexOf(known, args[a]) < 0 || a + 1 >= args.Length)
    {
        bool help = args[a] is "--help" or "-h" or "-?";
        if (!help) Console.Error.WriteLine(a + 1 >= args.Length && Array.IndexOf(known, args[a]) >= 0 ? $"{args[a]} needs a value" : $"unknown argument '{args[a]}'");
        (help ? Console.Out : Console.Error).WriteLine(Usage);
        return help ? 0 : 2;
    }
}
string which = Text("--family", "all");
if (which is not ("all" or "rnade" or "deeprnade" or "deepgmm" or "rbm" or "iwae")) { Console.Error.WriteLine($"unknown family '{which}'\n{Usage}"); return 2; }
int rows = Arg("--rows", 10000), predictRows = Arg("--predict", 2000), epochs = Arg("--epochs", 10), repeat = Arg("--repeat", 3);

var digits = SampleData.LoadDigits();
int dim = digits.Train.Columns;
Console.WriteLine($"data: digits {digits.Train.Rows} training rows × {dim} dims; scoring {rows} rows (test rows tiled), PredictionEngine {predictRows} rows; {epochs} epochs/iterations");
Console.WriteLine($"machine: {Environment.ProcessorCount} cores, .NET {Environment.Version}");

var families = new (string Name, Func<MLContext, IEstimator<ITransformer>> Make)[]
{
    ("rnade", ml => ml.DensityEstimation.Rnade(new RnadeEstimator.Options
        { ModelOptions = new RnadeOptions { HiddenUnits = 50, Components = 10, MaxEpochs = epochs, Seed = 3 } })),
    ("deeprnade", ml => ml.DensityEstimation.DeepRnade(new DeepRnadeEstimator.Options
        { ModelOptions = new DeepRnadeOptions { Components = 10, MaxEpochs = epochs, Seed = 3 } })),
    ("deepgmm", ml => ml.DensityEstimation.DeepGmm(new DeepGmmEstimator.Options
        { ModelOptions = new DeepGmmOptions { Layers = new[] { 4, 4 }, MaxIterations = epochs, Seed = 3 } })),
    ("rbm", ml => ml.DensityEstimation.Rbm(new RbmEstimator.Options
        { ModelOptions = new RbmOptions { HiddenUnits = 16, VisibleType = RbmVisibleType.Gaussian, MaxEpochs = epochs, Seed = 3, SamplingBurnIn = 10, SamplingChains = 4 } })),
    ("iwae", ml => ml.DensityEstimation.Iwae(new IwaeEstimator.Options
        { ModelOptions = new IwaeOptions { Likelihood = IwaeLikelihood.Gaussian, LatentDimensions = new[] { 10 }, HiddenUnits = new[] { 64 }, EvaluationSamples = 100, MaxEpochs = epochs, Seed = 3 } })),
};

var scoring = new RowMatrix(rows, dim);
for (int i = 0; i < rows; i++) digits.Test.Row(i % digits.Test.Rows).CopyTo(scoring.Row(i));
var predictInputs = ToRows(scoring).Take(predictRows).ToArray();
Console.WriteLine($"{"family",-8} {"path",-40} {"rows/s",12} {"÷ live",8} {"cpu µs/row",12} {"bytes/row",12}");
foreach (var (name, make) in families)
{
    if (which != "all" && which != name) continue;
    var ml = new MLContext(seed: 1);
    var scoringView = ml.Data.LoadFromEnumerable(ToRows(scoring), Definition(dim));
    var transformer = make(ml).Fit(ml.Data.LoadFromEnumerable(ToRows(digits.Train), Definition(dim)));
    var model = transformer.GetDensityModel();

    var zip = Path.Combine(Path.GetTempPath(), $"dd-bench-{Environment.ProcessId}.zip");
    ml.Model.Save(transformer, scoringView.Schema, zip);
    var ml2 = new MLContext(seed: 2);
    var loaded = ml2.Model.Load(zip, out _);
    File.Delete(zip);
    var relived = loaded.WithLiveDensityTransformers(ml2);
    var liveEngine = ml.Model.CreatePredictionEngine<FeatureRow, Scored>(transformer, inputSchemaDefinition: Definition(dim));
    var loadedEngine = ml2.Model.CreatePredictionEngine<FeatureRow, Scored>(loaded, inputSchemaDefinition: Definition(dim));

    // Sanity: every path gives the engine's values.
    var engineOut = new float[rows];
    model.LogDensity(scoring.AsSpan(), engineOut);
    double maxDiff = 0;
    foreach (var view in new[] { transformer.Transform(scoringView), loaded.Transform(scoringView), relived.Transform(scoringView) })
    {
        var values = view.GetColumn<float>("LogDensity").ToArray();
        for (int i = 0; i < rows; i++) maxDiff = Math.Max(maxDiff, Math.Abs(values[i] - engineOut[i]) / Math.Max(1, Math.Abs(engineOut[i])));
    }
    for (int i = 0; i < Math.Min(predictRows, 50); i++)
        maxDiff = Math.Max(maxDiff, Math.Abs(loadedEngine.Predict(predictInputs[i]).LogDensity - liveEngine.Predict(predictInputs[i]).LogDensity));
    if (maxDiff > 1e-4) throw new InvalidOperationException($"{name}: paths disagree by {maxDiff:G3}");

    var cases = new (string Name, int Rows, Func<double> Run)[]
    {
        ("engine batched LogDensity", rows, () => { model.LogDensity(scoring.AsSpan(), engineOut); return engineOut[0]; }),
        ("engine, one row per call", predictRows, () =>
        {
            for (int i = 0; i < predictRows; i++) model.LogDensity(scoring.Row(i), engineOut.AsSpan(i, 1));
            return engineOut[0];
        }),
        ("live transformer (cursor)", rows, () => ReadColumn(transformer.Transform(scoringView), "LogDensity")),
        ("loaded with Model.Load (cursor)", rows, () => ReadColumn(loaded.Transform(scoringView), "LogDensity")),
        ("loaded + WithLiveDensityTransformers", rows, () => ReadColumn(relived.Transform(scoringView), "LogDensity")),
        ("PredictionEngine, live", predictRows, () => Predict(liveEngine)),
        ("PredictionEngine, loaded", predictRows, () => Predict(loadedEngine)),
        // ML.NET's own cost of delivering the rows (no model): what every cursor path above pays too.
        ("input view alone (cursor over Features)", rows, () => ReadVector(scoringView, "Features")),
    };
    var best = new Dictionary<string, double>();
    var cpu = new Dictionary<string, double>(); // CPU µs per row, all threads (less sensitive to a loaded machine than wall time)
    var bytes = new Dictionary<string, double>(); // bytes allocated per row, all threads
    foreach (var c in cases) c.Run(); // warm-up
    var process = Process.GetCurrentProcess();
    for (int r = 0; r < repeat; r++)
        foreach (var c in cases)
        {
            process.Refresh();
            var cpu0 = process.TotalProcessorTime;
            long bytes0 = GC.GetTotalAllocatedBytes(precise: true);
            var t = Stopwatch.StartNew();
            c.Run();
            double seconds = t.Elapsed.TotalSeconds;
            long allocated = GC.GetTotalAllocatedBytes(precise: true) - bytes0;
            process.Refresh();
            double cpuPerRow = (process.TotalProcessorTime - cpu0).TotalMicroseconds / c.Rows;
            best[c.Name] = Math.Max(best.GetValueOrDefault(c.Name), c.Rows / seconds);
            cpu[c.Name] = Math.Min(cpu.GetValueOrDefault(c.Name, double.MaxValue), cpuPerRow);
            bytes[c.Name] = Math.Min(bytes.GetValueOrDefault(c.Name, double.MaxValue), (double)allocated / c.Rows);
        }
    foreach (var c in cases)
    {
        var live = c.Name.StartsWith("PredictionEngine", StringComparison.Ordinal) || c.Name.Contains("one row") ? cases[5].Name : cases[2].Name;
        Console.WriteLine($"{name,-8} {c.Name,-40} {best[c.Name],12:N0} {best[live] / best[c.Name],7:F2}× {cpu[c.Name],12:F1} {bytes[c.Name],12:N0}");
    }
    Console.WriteLine($"{name,-8} loaded/live time {best[cases[2].Name] / best[cases[3].Name]:F2} (target ≤ 1.5); " +
        $"PredictionEngine loaded/live {best[cases[5].Name] / best[cases[6].Name]:F2} (target ≤ 2); " +
        $"CPU per row loaded/live {cpu[cases[3].Name] / cpu[cases[2].Name]:F2}, one row/batched {cpu[cases[1].Name] / cpu[cases[0].Name]:F2}");
}
return 0;

double Predict(PredictionEngine<FeatureRow, Scored> engine)
{
    double s = 0;
    foreach (var row in predictInputs) s += engine.Predict(row).LogDensity;
    return s;
}

static double ReadColumn(IDataView view, string name)
{
    var col = view.Schema[name];
    using var cursor = view.GetRowCursor(new[] { col });
    var getter = cursor.GetGetter<float>(col);
    float value = 0;
    long n = 0;
    while (cursor.MoveNext()) { getter(ref value); n++; }
    return n;
}

static double ReadVector(IDataView view, string name)
{
    var col = view.Schema[name];
    using var cursor = view.GetRowCursor(new[] { col });
    var getter = cursor.GetGetter<VBuffer<float>>(col);
    VBuffer<float> value = default;
    long n = 0;
    while (cursor.MoveNext()) { getter(ref value); n++; }
    return n;
}

static FeatureRow[] ToRows(RowMatrix m)
{
    var result = new FeatureRow[m.Rows];
    for (int i = 0; i < m.Rows; i++) result[i] = new FeatureRow { Features = m.Row(i).ToArray() };
    return result;
}

static SchemaDefinition Definition(int dim)
{
    var def = SchemaDefinition.Create(typeof(FeatureRow));
    def["Features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, dim);
    return def;
}

int Arg(string name, int fallback)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
}

string Text(string name, string fallback)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}

sealed class FeatureRow { public float[] Features { get; set; } = Array.Empty<float>(); }
sealed class Scored { public float LogDensity { get; set; } }
