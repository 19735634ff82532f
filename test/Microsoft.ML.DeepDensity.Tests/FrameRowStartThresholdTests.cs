using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// PredictedLabel of frame rows at the start of a sequence. A frame with no history is predicted less sharply than one
/// with context, and the one threshold (a quantile of training frames, nearly all with context) flagged the first frames
/// of nearly every normal sequence: a new user's trial saw 200 of 200 first frames flagged. The first positions now
/// have thresholds of their own, learned on the training windows' first frames, and saved with the model.
/// </summary>
public class FrameRowStartThresholdTests(Xunit.Abstractions.ITestOutputHelper output)
{
    public sealed class Row
    {
        [VectorType(2)] public float[] Features = new float[2];
        public int SequenceId;
        public float Order;
    }

    public sealed class Scored
    {
        public float Score { get; set; }
        public bool PredictedLabel { get; set; }
    }

    /// <summary>Sequences of a slowly rotating AR(1) in two dimensions (context predicts a frame far better than none),
    /// one row per frame, sequence by sequence.</summary>
    private static List<Row> Rows(int sequences, int length, ulong seed, int firstId = 0)
    {
        var rng = new RandomStream(seed);
        var rows = new List<Row>();
        double c = 0.99 * Math.Cos(0.4), sn = 0.99 * Math.Sin(0.4), sd = 0.3 / Math.Sqrt(1 - 0.99 * 0.99);
        for (int s = 0; s < sequences; s++)
        {
            double a = rng.NextGaussian() * sd, b = rng.NextGaussian() * sd;
            for (int t = 0; t < length; t++)
            {
                if (t > 0) (a, b) = (c * a - sn * b + 0.3 * rng.NextGaussian(), sn * a + c * b + 0.3 * rng.NextGaussian());
                rows.Add(new Row { Features = new[] { (float)a, (float)b }, SequenceId = firstId + s, Order = t });
            }
        }
        return rows;
    }

    [Fact]
    public void TheFirstFramesOfNormalSequences_AreFlaggedAboutAsOftenAsTheRest_AfterSaveAndLoadToo()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Rows(4, 2000, seed: 1));   // long series: trained on windows of 64 frames
        var transformer = (Transforms.SequenceDensityTransformer)ml.DensityEstimation.RnnRnade("Features", "SequenceId", "Order", maxEpochs: 100).Fit(train);
        float global = transformer.GetSequenceAnomalyThreshold();

        var test = Rows(400, 12, seed: 2, firstId: 10_000);
        var view = ml.Data.LoadFromEnumerable(test);
        var scored = ml.Data.CreateEnumerable<Scored>(transformer.Transform(view), reuseRowObject: false).ToList();
        var first = Enumerable.Range(0, test.Count).Where(i => test[i].Order == 0).ToList();
        double oneThreshold = first.Count(i => scored[i].Score > global) / (double)first.Count;
        double flaggedFirst = first.Count(i => scored[i].PredictedLabel) / (double)first.Count;
        double flaggedLater = Enumerable.Range(0, test.Count).Where(i => test[i].Order >= 6).Count(i => scored[i].PredictedLabel)
            / (double)test.Count(r => r.Order >= 6);
        // The one threshold flags a large share of first frames; their own far fewer.
        output.WriteLine($"first frames flagged: one threshold {oneThreshold:P1}, their own {flaggedFirst:P1}; later frames {flaggedLater:P1}; " +
                         $"first-frame thresholds {transformer.FirstFrameThresholds.Count}");
        // The one threshold comes from the held-out windows' frames (12 of 124), which score worse than the training
        // frames it came from before, so it flags fewer first frames than then (24 %, was 40 %): still far too many.
        Assert.True(oneThreshold > 0.2, $"the one threshold flags {oneThreshold:P1} of first frames: the case does not test anything");
        // Position 0's threshold was a quantile of the training windows' first frames (one per 64 frames, 124 here), rougher
        // than the one threshold: 5 % of these first frames were flagged, against 40 % by the one threshold. The 12 held-out
        // windows are fewer than the 100 a position's empirical quantile needs, so it is now their normal approximation.
        Assert.True(flaggedFirst < 0.1 && flaggedFirst < oneThreshold / 4,
            $"{flaggedFirst:P1} of normal first frames flagged (one threshold: {oneThreshold:P1}; later frames: {flaggedLater:P1})");
        Assert.True(flaggedLater < 0.05, $"{flaggedLater:P1} of normal later frames flagged");

        // The thresholds travel in the zip: both loads and a PredictionEngine label as the live transformer.
        using var zip = new MemoryStream();
        ml.Model.Save(transformer, train.Schema, zip);
        var expected = scored.Select(s => s.PredictedLabel).ToArray();
        foreach (var loaded in new[] { new MLContext().Model.Load(new MemoryStream(zip.ToArray()), out _),
                                       new MLContext().Model.LoadWithLiveDensityModels(new MemoryStream(zip.ToArray()), out _) })
        {
            Assert.Equal(expected, loaded.Transform(view).GetColumn<bool>("PredictedLabel").ToArray());
            var engine = new MLContext().Model.CreatePredictionEngine<Row, Scored>(loaded);
            for (int i = 0; i < 48; i++) Assert.Equal(expected[i], engine.Predict(test[i]).PredictedLabel);
        }
    }
}
