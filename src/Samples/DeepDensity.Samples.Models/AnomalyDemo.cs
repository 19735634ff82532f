using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity;

namespace DeepDensity.Samples.Models;

/// <summary>The part every model's sample shares: the anomaly pipeline around the model, save/load, PredictionEngine.</summary>
public static class AnomalyDemo
{
    public const int AnomalousDigit = 4;

    public static int Run(string name, Func<MLContext, DemoSize, IEstimator<ITransformer>> modelPipeline, DemoSize size, string? path = null)
    {
        var ml = new MLContext(seed: 1);
        path ??= Path.Combine(AppContext.BaseDirectory, "data", "digits.csv");
        IDataView all = Dequantized(ml, ml.Data.LoadFromTextFile<Digit>(path, separatorChar: ','));
        all = ml.Transforms.Expression("IsAnomaly", $"d => d == {AnomalousDigit} ? 1.0f : 0.0f", nameof(Digit.Label)).Fit(all).Transform(all);
        var split = ml.Data.TrainTestSplit(all, testFraction: 0.3, seed: 1);
        IDataView train = ml.Data.TakeRows(ml.Data.FilterRowsByColumn(split.TrainSet, "IsAnomaly", upperBound: 0.5), size.TrainRows);

        // The anomaly pipeline: the model's own transforms and estimator, fitted on normal digits only.
        ITransformer model = modelPipeline(ml, size).Fit(train);
        IDataView scored = model.Transform(split.TestSet);
        var metrics = ml.AnomalyDetection.Evaluate(scored, labelColumnName: "IsAnomaly");
        var density = model.GetDensityModel();
        Console.WriteLine($"{name}: {density.ModelKind}, {density.DensityKind} log-density of {density.Dimension} values; " +
                          $"detecting the {AnomalousDigit}s: AUC {metrics.AreaUnderRocCurve:F3}");
        var rows = ml.Data.CreateEnumerable<Scored>(scored, reuseRowObject: false).ToList();
        foreach (var r in rows.OrderBy(r => r.LogDensity).Take(5))
            Console.WriteLine($"  most anomalous: digit {r.Label}  log-density {r.LogDensity,9:F2}  predicted anomaly {r.PredictedLabel}");

        // Save as an ordinary ML.NET model zip, load it in a fresh context, score the first test row one at a time.
        string zip = Path.Combine(Path.GetTempPath(), $"digits-{name}-{Environment.ProcessId}.zip");
        try
        {
            ml.Model.Save(model, train.Schema, zip);
            var ml2 = new MLContext();
            var engine = ml2.Model.CreatePredictionEngine<Digit, Scored>(ml2.Model.Load(zip, out _));
            float again = engine.Predict(ml.Data.CreateEnumerable<Digit>(split.TestSet, reuseRowObject: false).First()).LogDensity;
            // Importance-sampled models draw per row, so their loaded score may differ in the last digits; exact ones are identical.
            bool close = Math.Abs(again - rows[0].LogDensity) <= 1e-3 * Math.Max(1, Math.Abs(rows[0].LogDensity));
            Console.WriteLine($"  saved, loaded, PredictionEngine on the first test row: {again:F4} (live pipeline {rows[0].LogDensity:F4})");
            return close ? 0 : 1;
        }
        finally { File.Delete(zip); }
    }

    /// <summary>
    /// Each pixel plus its own seeded uniform draw in [0, 1). The pixels are integers 0–16, and a continuous density fitted
    /// to integers grows without bound on the values a column always takes (a border pixel that is always 0): the
    /// real-valued models then give rows that differ there log-densities near −10^5, which measure the spike, not the
    /// digit. A density of the dequantised pixels is a proper one (its integral over each unit cell is the probability of
    /// the integer row), as in the RNADE paper; the binary models' threshold (p ≥ 8) sees the same pixels as before.
    /// </summary>
    private static IDataView Dequantized(MLContext ml, IDataView digits)
    {
        var random = new Random(7);
        var rows = ml.Data.CreateEnumerable<Digit>(digits, reuseRowObject: false)
            .Select(d => new Digit { Pixels = d.Pixels.Select(p => p + (float)random.NextDouble()).ToArray(), Label = d.Label })
            .ToList();
        return ml.Data.LoadFromEnumerable(rows);
    }
}

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
    public float LogDensity { get; set; }
    public float Score { get; set; }
    public bool PredictedLabel { get; set; }
}
