using Microsoft.ML;
using Microsoft.ML.DeepDensity;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Transforms;

namespace DeepDensity.Samples.Models;

/// <summary>
/// RNN-RNADE: an exact density of sequences. Here each digit, read top to bottom, is a sequence of 8 frames (its pixel
/// rows, 8 values each): the whole-sequence estimator scores every image, says which of its rows is unlikely, and draws
/// new digits row by row.
/// </summary>
public static class RnnRnadeSample
{
    public const int FrameSize = 8;

    public static int Run(DemoSize size, string? path = null)
    {
        var ml = new MLContext(seed: 1);
        path ??= Path.Combine(AppContext.BaseDirectory, "data", "digits.csv");
        // Dequantised pixels (x + U(0,1)) / 17: a density of whole numbers could grow without bound on spikes at them.
        var noise = new Random(1);
        var digits = ml.Data.CreateEnumerable<Digit>(ml.Data.LoadFromTextFile<Digit>(path, separatorChar: ','), reuseRowObject: false)
            .Select(d => new Digit { Label = d.Label, Pixels = d.Pixels.Select(v => (v + (float)noise.NextDouble()) / 17f).ToArray() }).ToList();
        IDataView all = ml.Data.LoadFromEnumerable(digits);
        all = ml.Transforms.Expression("IsAnomaly", $"d => d == {AnomalyDemo.AnomalousDigit} ? 1.0f : 0.0f", nameof(Digit.Label)).Fit(all).Transform(all);
        var split = ml.Data.TrainTestSplit(all, testFraction: 0.3, seed: 1);
        IDataView train = ml.Data.TakeRows(ml.Data.FilterRowsByColumn(split.TrainSet, "IsAnomaly", upperBound: 0.5), size.TrainRows);

        // The anomaly pipeline: one sequence per row (the 64 pixels = 8 frames of 8), fitted on normal digits only.
        var pipeline = ml.DensityEstimation.RnnRnade(
            new SequenceDensityEstimator.Options { FeatureColumnName = nameof(Digit.Pixels), FrameSize = FrameSize },
            new RnnRnadeOptions { HiddenUnits = 32, Components = 3, RecurrentUnits = 32, MaxEpochs = size.Epochs });
        ITransformer model = pipeline.Fit(train);
        IDataView scored = model.Transform(split.TestSet);
        var metrics = ml.AnomalyDetection.Evaluate(scored, labelColumnName: "IsAnomaly");
        Console.WriteLine($"rnnrnade: RnnRnade, exact log-density of sequences of {FrameSize}-pixel rows; " +
                          $"detecting the {AnomalyDemo.AnomalousDigit}s: AUC {metrics.AreaUnderRocCurve:F3} (score = −log-density per row of pixels)");
        var rows = ml.Data.CreateEnumerable<SequenceScored>(scored, reuseRowObject: false).ToList();
        foreach (var r in rows.OrderBy(r => r.LogDensityPerFrame).Take(5))
        {
            int worst = Array.IndexOf(r.FrameLogDensities, r.FrameLogDensities.Min());
            Console.WriteLine($"  most anomalous: digit {r.Label}  log-density {r.LogDensity,9:F2}  least likely pixel row {worst} " +
                              $"(log p {r.FrameLogDensities[worst]:F2})  predicted anomaly {r.PredictedLabel}");
        }

        // Save as an ordinary ML.NET model zip, load it in a fresh context, score one image, draw two new digits.
        string zip = Path.Combine(Path.GetTempPath(), $"digits-rnnrnade-{Environment.ProcessId}.zip");
        try
        {
            ml.Model.Save(model, train.Schema, zip);
            var ml2 = new MLContext();
            var loaded = ml2.Model.Load(zip, out _);
            var engine = ml2.Model.CreatePredictionEngine<Digit, SequenceScored>(loaded);
            float again = engine.Predict(ml.Data.CreateEnumerable<Digit>(split.TestSet, reuseRowObject: false).First()).LogDensity;
            Console.WriteLine($"  saved, loaded, PredictionEngine on the first test image: {again:F4} (live pipeline {rows[0].LogDensity:F4})");
            var drawn = loaded.GetSequenceDensityModel(ml2).Sample(2, FrameSize, seed: 1);
            for (int t = 0; t < FrameSize; t++)
                Console.WriteLine("  " + string.Join("   ", Enumerable.Range(0, drawn.Count).Select(i =>
                    new string(drawn.Sequence(i).Slice(t * FrameSize, FrameSize).ToArray().Select(v => v < 0.25f ? '·' : v < 0.6f ? '+' : '#').ToArray()))));
            return Math.Abs(again - rows[0].LogDensity) <= 1e-3 * Math.Max(1, Math.Abs(rows[0].LogDensity)) ? 0 : 1;
        }
        finally { File.Delete(zip); }
    }

    /// <summary>What the whole-sequence pipeline appends, read back per image.</summary>
    public class SequenceScored
    {
        public float Label { get; set; }
        public float LogDensity { get; set; }
        public float LogDensityPerFrame { get; set; }
        public float[] FrameLogDensities { get; set; } = [];
        public float Score { get; set; }
        public bool PredictedLabel { get; set; }
    }
}
