using System.Diagnostics;
using System.Globalization;
using DeepDensity.Samples;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rnade;

// Scoring throughput of a trained RNADE through (a) the engine's batched API, (b) the live ML.NET transformer (cursor over
// an IDataView, reading LogDensity) and (c) the model loaded back from an ML.NET zip (as loaded, and with its DeepDensity
// stage swapped back to the live transformer), in the same run.
//   dotnet run -c Release --project build/Benchmarks.MLNet -- [--rows 40000] [--epochs 10] [--repeat 3]
int rows = Arg("--rows", 40000), epochs = Arg("--epochs", 10), repeat = Arg("--repeat", 3);
int hidden = Arg("--hidden", 50), components = Arg("--components", 10), block = Arg("--block", 2048);

var digits = SampleData.LoadDigits();
int dim = digits.Train.Columns;
Console.WriteLine($"data: digits {digits.Train.Rows} training rows × {dim} dims; scoring {rows} rows (test rows tiled); RNADE H={hidden} K={components}, {epochs} epochs; transformer block {block} rows");
Console.WriteLine($"machine: {Environment.ProcessorCount} cores, .NET {Environment.Version}");

var ml = new MLContext(seed: 1);
var trainView = ml.Data.LoadFromEnumerable(ToRows(digits.Train), Definition(dim));
var sw = Stopwatch.StartNew();
var transformer = ml.DensityEstimation.Rnade(new Microsoft.ML.DeepDensity.Transforms.RnadeEstimator.Options
{
    ScoringBlockRows = block,
    ModelOptions = new RnadeOptions { HiddenUnits = hidden, Components = components, MaxEpochs = epochs, Seed = 3 },
}).Fit(trainView);
Console.WriteLine($"training: {sw.Elapsed.TotalSeconds:F1} s; test mean log-density {transformer.Model.AverageLogDensity(digits.Test):F3}");

// Scoring set: the test rows tiled to `rows` rows.
var scoring = new RowMatrix(rows, dim);
for (int i = 0; i < rows; i++) digits.Test.Row(i % digits.Test.Rows).CopyTo(scoring.Row(i));
var scoringView = ml.Data.LoadFromEnumerable(ToRows(scoring), Definition(dim));

var zip = Path.Combine(Path.GetTempPath(), $"dd-bench-{Environment.ProcessId}.zip");
ml.Model.Save(transformer, scoringView.Schema, zip);
var ml2 = new MLContext(seed: 2);
var loaded = ml2.Model.Load(zip, out _);
File.Delete(zip);
var relived = loaded.WithLiveDensityTransformers(ml2);

var engineOut = new float[rows];
double Engine() { transformer.Model.LogDensity(scoring.AsSpan(), engineOut); return engineOut[0]; }
double Source() => ReadColumn<VBuffer<float>>(scoringView, "Features");
double Live() => ReadColumn<float>(transformer.Transform(scoringView), "LogDensity");
double Loaded() => ReadColumn<float>(loaded.Transform(scoringView), "LogDensity");
double Relived() => ReadColumn<float>(relived.Transform(scoringView), "LogDensity");

// Sanity: all three agree.
var liveValues = transformer.Transform(scoringView).GetColumn<float>("LogDensity").ToArray();
var loadedValues = loaded.Transform(scoringView).GetColumn<float>("LogDensity").ToArray();
Engine();
double maxDiff = 0;
for (int i = 0; i < rows; i++) maxDiff = Math.Max(maxDiff, Math.Max(Math.Abs(liveValues[i] - engineOut[i]), Math.Abs(loadedValues[i] - engineOut[i])));
Console.WriteLine($"max |difference| of log-densities (live, loaded vs engine): {maxDiff:G3}");

var best = new Dictionary<string, double>();
var cases = new (string Name, Func<double> Run)[]
{
    ("engine batched LogDensity", Engine),
    ("source view only (read Features)", Source),
    ("live transformer (cursor, LogDensity)", Live),
    ("loaded from zip (cursor, LogDensity)", Loaded),
    ("loaded + WithLiveDensityTransformers", Relived),
};
foreach (var c in cases) c.Run(); // warm-up
for (int r = 0; r < repeat; r++)
    foreach (var c in cases)
    {
        var t = Stopwatch.StartNew();
        c.Run();
        double rate = rows / t.Elapsed.TotalSeconds;
        best[c.Name] = Math.Max(best.GetValueOrDefault(c.Name), rate);
    }
double engineRate = best[cases[0].Name];
Console.WriteLine($"{"path",-40} {"rows/s",12} {"engine/path",12}");
foreach (var c in cases)
    Console.WriteLine($"{c.Name,-40} {best[c.Name],12:N0} {engineRate / best[c.Name],11:F2}×");
Console.WriteLine($"live transformer time / engine time = {engineRate / best[cases[2].Name]:F2} (target ≤ 1.5)");
return 0;

static double ReadColumn<T>(IDataView view, string name)
{
    var col = view.Schema[name];
    using var cursor = view.GetRowCursor(new[] { col });
    var getter = cursor.GetGetter<T>(col);
    T value = default!;
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

sealed class FeatureRow { public float[] Features { get; set; } = Array.Empty<float>(); }
