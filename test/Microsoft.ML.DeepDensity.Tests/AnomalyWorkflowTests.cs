using System.Globalization;
using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// The anomaly-detection workflow as a user of <c>ml.AnomalyDetection.Trainers.RandomizedPca</c> meets it: the
/// PredictedLabel threshold that <c>Contamination</c> sets.
/// </summary>
public class AnomalyWorkflowTests
{
    /// <summary>Contamination c on n training rows lets ⌊c·n⌋ rows score above the threshold, for the c the user wrote:
    /// 0.29 · 100 computes to 28.999999999999996 in doubles, whose floor let 28 training rows above it, not 29 (and
    /// 0.29, 0.57, 0.58 … on many other row counts).</summary>
    [Fact]
    public void ThresholdLetsContaminationTimesRowsScoreAboveIt()
    {
        for (int n = 1; n <= 300; n++)
        {
            var scores = Enumerable.Range(0, n).Select(i => (float)(i * 7919L % n) - 3.5f).ToArray(); // distinct (7919 is a prime above n), unsorted
            for (int k = 0; k <= 50; k++)
            {
                double contamination = k / 100.0;
                float threshold = Scoring.Threshold(scores, contamination);
                int above = scores.Count(s => s > threshold);
                int expected = Math.Min(k * n / 100, n - 1); // exact ⌊k·n/100⌋ (the largest score is never above)
                Assert.True(above == expected, $"contamination {contamination} on {n} rows: {above} rows above the threshold, expected {expected}");
            }
        }
    }

    /// <summary>Ties: the threshold is a training score and PredictedLabel is Score &gt; threshold, so rows tied at the
    /// threshold are all unflagged: at most ⌊c·n⌋ rows are flagged, and all-equal scores flag none.</summary>
    [Fact]
    public void ThresholdWithTiesFlagsAtMostContaminationTimesRows()
    {
        var scores = new float[] { 1, 1, 1, 2, 2, 2, 2, 3, 3, 3 };
        Assert.Equal(2f, Scoring.Threshold(scores, 0.3)); // 3 above allowed, exactly 3 above
        Assert.Equal(2f, Scoring.Threshold(scores, 0.5)); // 5 allowed, the ties at 2 keep it to 3
        Assert.Equal(3f, Scoring.Threshold(scores, 0.2)); // 2 allowed: no row above 3
        Assert.Equal(5f, Scoring.Threshold(Enumerable.Repeat(5f, 7).ToArray(), 0.5));
        Assert.Equal(4f, Scoring.Threshold(new[] { 4f }, 0.5));
    }

    public static TheoryData<string> Families()
        => new(ModelFamilyTests.Families.Keys.Concat(BinaryModelFamilyTests.Families.Keys));

    /// <summary>Through each family's estimator: Contamination 0.29 on 100 training rows flags 29 of them (real-valued
    /// data, distinct scores) or at most 29 with the 30th-highest score tied at the threshold (binary data: repeated
    /// rows score alike). It flagged 28 of the real-valued rows before. The threshold from the training rows
    /// (<see cref="DensityThresholdRows.Training"/>; by default it comes from held-out rows, here too few of them: at most 10).</summary>
    [Theory, MemberData(nameof(Families))]
    public void ContaminationFlagsThatFractionOfTheTrainingRows(string family)
    {
        var ml = new MLContext(seed: 1);
        bool binary = BinaryModelFamilyTests.Families.ContainsKey(family);
        var estimator = (binary ? BinaryModelFamilyTests.Families : ModelFamilyTests.Families)[family](ml, o => { o.Contamination = 0.29; o.ThresholdRows = DensityThresholdRows.Training; });
        var train = binary ? ml.Data.LoadFromEnumerable(BinaryModelFamilyTests.Bits(100, seed: 2)) : ml.Data.LoadFromEnumerable(TestData.Blob(100, seed: 2));
        var scored = estimator.Fit(train).Transform(train);
        var flagged = scored.GetColumn<bool>("PredictedLabel").Count(b => b);
        var scores = scored.GetColumn<float>("Score").ToArray();
        if (!binary && scores.Distinct().Count() == scores.Length) Assert.Equal(29, flagged);
        Assert.True(flagged <= 29, $"{family}: {flagged} training rows flagged, contamination allows 29");
        float threshold = scores.OrderByDescending(s => s).Skip(flagged).First();
        Assert.True(scores.Count(s => s >= threshold) >= 30, $"{family}: the threshold is not the 30th-highest training score");
    }

    /// <summary>RNN-RNADE's frame rows learn their threshold the same way: 0.29 of 100 training frames flags 29.</summary>
    [Fact]
    public void FrameRowsContaminationFlagsThatFractionOfTheTrainingFrames()
    {
        var ml = new MLContext(seed: 1);
        var r = new Random(4);
        var rows = new List<RnnRnadeTransformerTests.FrameRow>();
        for (int s = 0; s < 5; s++)
        {
            double a = 0;
            for (int t = 0; t < 20; t++)
            {
                a = 0.8 * a + 0.3 * TestData.Gauss(r);
                rows.Add(new RnnRnadeTransformerTests.FrameRow { Features = new[] { (float)a, (float)(0.5 * a + 0.1 * TestData.Gauss(r)) }, SequenceId = s, Order = t });
            }
        }
        var train = ml.Data.LoadFromEnumerable(rows);
        var model = ml.DensityEstimation.RnnRnade(new RnnRnadeFrameEstimator.Options
        {
            Contamination = 0.29, ModelOptions = new RnnRnadeOptions { HiddenUnits = 8, RecurrentUnits = 8, MaxEpochs = 10, Seed = 3 },
        }).Fit(train);
        var scores = model.Transform(train).GetColumn<float>("Score").ToArray();
        Assert.Equal(scores.Length, scores.Distinct().Count());
        Assert.Equal(29, model.Transform(train).GetColumn<bool>("PredictedLabel").Count(b => b));
    }

    /// <summary>Whole sequences learn their threshold from the per-frame scores the scorer gives: contamination k/100
    /// on 300 training sequences flags exactly ⌊k · 3⌋ of them. Fit used to take the per-frame score as the Single
    /// sequence log-density divided by the length, while the scorer divides the Double sum of the frames' log-densities
    /// and rounds once; the two differ in the last bit for about one sequence in seven, so a sequence at the threshold
    /// was flagged too (one more than the contamination allows at 0.18 and 0.46 on these data). The training sequences set
    /// the threshold here (<see cref="DensityThresholdRows.Training"/>): by default the held-out ones do, and then the
    /// training sequences flagged are no exact count.</summary>
    [Fact]
    public void WholeSequencesContaminationFlagsThatFractionOfTheTrainingSequences()
    {
        var ml = new MLContext(seed: 1);
        var r = new Random(7);
        var rows = new List<RnnRnadeTransformerTests.SequenceRow>();
        for (int i = 0; i < 300; i++)
        {
            var values = new float[2 * (3 + r.Next(6))];
            double a = r.NextDouble();
            for (int t = 0; t < values.Length / 2; t++)
            {
                a = 0.8 * a + 0.3 * TestData.Gauss(r);
                values[2 * t] = (float)a;
                values[2 * t + 1] = (float)(0.5 * a + 0.1 * TestData.Gauss(r));
            }
            rows.Add(new RnnRnadeTransformerTests.SequenceRow { Features = values });
        }
        var train = ml.Data.LoadFromEnumerable(rows);
        var wrong = new List<string>();
        for (int k = 1; k <= 50; k++)
        {
            var model = ml.DensityEstimation.RnnRnade(new SequenceDensityEstimator.Options { FrameSize = 2, Contamination = k / 100.0, ThresholdRows = DensityThresholdRows.Training },
                new RnnRnadeOptions { HiddenUnits = 8, RecurrentUnits = 8, MaxEpochs = 5 }).Fit(train);
            var scored = model.Transform(train);
            var scores = scored.GetColumn<float>("Score").ToArray();
            Assert.Equal(scores.Length, scores.Distinct().Count());
            int flagged = scored.GetColumn<bool>("PredictedLabel").Count(b => b);
            if (flagged != k * 3) wrong.Add($"contamination {k / 100.0}: {flagged} flagged, expected {k * 3}");
        }
        Assert.True(wrong.Count == 0, string.Join("; ", wrong));
    }
}

/// <summary>The metrics recipes docs/mlnet.md gives for a user of ML.NET's evaluators (ML.NET workflows, <i>Anomaly metrics</i>).</summary>
public class AnomalyMetricsRecipeTests
{
    /// <summary>AnomalyDetection.Evaluate with custom column names gives the default-named model's metrics; and
    /// BinaryClassification.EvaluateNonCalibrated on the margin Score − Threshold gives the precision and recall of our
    /// PredictedLabel (on Score itself it thresholds at 0 and calls every row an anomaly).</summary>
    [Fact]
    public void EvaluatorsGiveThePredictedLabelsMetricsThroughTheDocumentedRecipes()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TestData.Blob(400, seed: 2));
        var test = ml.Data.LoadFromEnumerable(TestData.Blob(300, seed: 3, outlierEvery: 10));
        var model = ml.DensityEstimation.Rnade(TestData.SmallRnade());
        var scored = model.Fit(train).Transform(test);
        var renamed = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => { o.ScoreColumnName = "S"; o.PredictedLabelColumnName = "P"; })).Fit(train);
        var a = ml.AnomalyDetection.Evaluate(scored);
        var b = ml.AnomalyDetection.Evaluate(renamed.Transform(test), "Label", "S", "P");
        Assert.Equal(a.AreaUnderRocCurve, b.AreaUnderRocCurve);
        Assert.Equal(a.DetectionRateAtFalsePositiveCount, b.DetectionRateAtFalsePositiveCount);
        Assert.True(a.AreaUnderRocCurve > 0.99, $"AUC {a.AreaUnderRocCurve}");

        // The recipe as docs/mlnet.md writes it, under a decimal-comma culture: interpolated in the current culture it
        // was "s => s - 61,78598", which Expression refuses.
        var transformer = renamed;
        IDataView withMargin;
        var culture = CultureInfo.CurrentCulture;
        try
        {
            CultureInfo.CurrentCulture = CultureInfo.GetCultureInfo("de-DE");
            Assert.Contains(",", $"{transformer.Threshold:R}"); // the culture writes a comma: the recipe must not
            string[] parts = transformer.Threshold.ToString("E8", CultureInfo.InvariantCulture).Split('E');
            string threshold = parts[0].Replace(".", "") + "e" + (int.Parse(parts[1], CultureInfo.InvariantCulture) - 8).ToString(CultureInfo.InvariantCulture);
            withMargin = ml.Transforms.Conversion.ConvertType("IsAnomaly", "Label", DataKind.Boolean)
                .Append(ml.Transforms.Expression("Margin", $"s => s - ({threshold})", "S"))
                .Fit(renamed.Transform(test)).Transform(renamed.Transform(test));
        }
        finally { CultureInfo.CurrentCulture = culture; }
        var m = ml.BinaryClassification.EvaluateNonCalibrated(withMargin, "IsAnomaly", "Margin", "P");
        var predicted = withMargin.GetColumn<bool>("P").ToArray();
        var actual = withMargin.GetColumn<bool>("IsAnomaly").ToArray();
        int tp = predicted.Zip(actual).Count(z => z.First && z.Second), fp = predicted.Zip(actual).Count(z => z.First && !z.Second);
        Assert.Equal((double)tp / (tp + fp), m.PositivePrecision, 12);
        Assert.Equal((double)tp / actual.Count(x => x), m.PositiveRecall, 12);
        Assert.Equal(withMargin.GetColumn<float>("Margin").Select(x => x > 0), predicted);
    }
}
