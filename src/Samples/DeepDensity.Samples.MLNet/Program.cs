using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity;

// The main job: anomaly detection on the shipped 8×8 handwritten digits (data/digits.csv) through an ordinary ML.NET
// pipeline. Normal data: the digits 0–3 and 5–9. Anomalies: the digit 4, which the model never sees in training.
const int AnomalousDigit = 4;
var ml = new MLContext(seed: 1);
string path = args.Length > 0 ? args[0] : Path.Combine(AppContext.BaseDirectory, "data", "digits.csv");
IDataView all = ml.Data.LoadFromTextFile<Digit>(path, separatorChar: ',');

// Mark the anomalies (1 = a four), hold out 30 % of all rows for testing, train only on the normal rows of the rest.
all = ml.Transforms.Expression("IsAnomaly", $"d => d == {AnomalousDigit} ? 1.0f : 0.0f", nameof(Digit.Label)).Fit(all).Transform(all);
var split = ml.Data.TrainTestSplit(all, testFraction: 0.3, seed: 1);
IDataView train = ml.Data.FilterRowsByColumn(split.TrainSet, "IsAnomaly", upperBound: 0.5);
IDataView test = split.TestSet;

// The pipeline: binarise the 0–16 pixels with an ordinary ML.NET transform (ink = value ≥ 8), then an IWAE density
// model for binary vectors. It appends LogDensity, Score (= −LogDensity) and PredictedLabel (Score above the 99th
// percentile of the scores of the training rows the IWAE held out for early stopping, so about 1 % of new normal digits).
var pipeline = ml.Transforms.Expression("Ink", "p => p >= 8 ? 1.0f : 0.0f", nameof(Digit.Pixels))
    .Append(ml.DensityEstimation.Iwae("Ink", maxEpochs: 40, evaluationSamples: 200));
var clock = System.Diagnostics.Stopwatch.StartNew();
ITransformer model = pipeline.Fit(train);
Console.WriteLine($"Trained IWAE on the normal digits (all but {AnomalousDigit}s) in {clock.Elapsed.TotalSeconds:F1} s.");

IDataView scoredTest = model.Transform(test);
var rows = ml.Data.CreateEnumerable<Scored>(scoredTest, reuseRowObject: false).ToList();
var normal = rows.Where(r => r.IsAnomaly == 0).ToList();
var fours = rows.Where(r => r.IsAnomaly == 1).ToList();
Console.WriteLine($"Held-out average log-density ({model.GetDensityModel().DensityKind}: importance-sampled, K = 200): normal digits " +
                  $"{normal.Average(r => r.LogDensity):F2} nats ({normal.Count} rows), {AnomalousDigit}s {fours.Average(r => r.LogDensity):F2} nats ({fours.Count} rows)");

// ML.NET's anomaly metrics (label: IsAnomaly; score: Score = −LogDensity; PredictedLabel from the held-out rows' threshold).
var metrics = ml.AnomalyDetection.Evaluate(scoredTest, labelColumnName: "IsAnomaly");
Console.WriteLine($"Detecting the {AnomalousDigit}s: AUC {metrics.AreaUnderRocCurve:F3}, detection rate at {fours.Count} false positives " +
                  $"{metrics.DetectionRateAtFalsePositiveCount:F3}; PredictedLabel flags {rows.Count(r => r.PredictedLabel)} of {rows.Count} test rows");

Console.WriteLine("Most anomalous test rows (lowest log-density):");
foreach (var r in rows.OrderBy(r => r.LogDensity).Take(8))
    Console.WriteLine($"  digit {r.Label}  log-density {r.LogDensity,8:F2}  predicted anomaly {r.PredictedLabel}");

// Save to an ordinary ML.NET model zip, load it in a new MLContext, score one row with a PredictionEngine.
string zip = Path.Combine(Path.GetTempPath(), "digits-iwae.zip");
ml.Model.Save(model, train.Schema, zip);
var ml2 = new MLContext();
// LoadWithLiveDensityModels is ML.NET's Model.Load plus one step that validates every DeepDensity model in the file and
// gives it back its batched scorer (plain Model.Load also works, one row per call).
ITransformer loaded = ml2.Model.LoadWithLiveDensityModels(zip, out _);
var engine = ml2.Model.CreatePredictionEngine<Digit, Scored>(loaded);
var first = ml.Data.CreateEnumerable<Digit>(test, reuseRowObject: false).First();
float loadedScore = engine.Predict(first).LogDensity;
bool same = loadedScore == rows[0].LogDensity;
Console.WriteLine($"Saved to {zip}; loaded in a new MLContext, a PredictionEngine scores the first test row {loadedScore:F4} " +
                  $"(live pipeline: {rows[0].LogDensity:F4}: {(same ? "identical" : "DIFFERENT")}).");
return same ? 0 : 1;

/// <summary>One line of data/digits.csv: 64 pixel values (0–16) and the digit.</summary>
public class Digit
{
    [LoadColumn(0, 63), VectorType(64)] public float[] Pixels { get; set; } = [];
    [LoadColumn(64)] public float Label { get; set; }
}

/// <summary>What the pipeline appends, read back per row.</summary>
public class Scored
{
    public float Label { get; set; }
    public float IsAnomaly { get; set; }
    public float LogDensity { get; set; }
    public float Score { get; set; }
    public bool PredictedLabel { get; set; }
}
