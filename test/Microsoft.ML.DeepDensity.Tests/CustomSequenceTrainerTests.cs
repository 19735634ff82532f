using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Transforms;
using Xunit;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// A <see cref="SequenceDensityEstimator"/> made with its public constructor and a trainer of the user's own reports no
/// held-out sequences, so its held-out threshold fell back to the training sequences, and the log said "from 30 training
/// sequences (0 held-out sequences, fewer than the 20 a held-out threshold needs ...)", as if the data were too small.
/// The log now says the trainer reports none, and warns that the threshold was learned on the training sequences, why
/// that flags more new normal sequences, and how to learn it on others (a validation view).
/// </summary>
public class CustomSequenceTrainerTests
{
    private static List<RnnRnadeTransformerTests.SequenceRow> Sequences(int count, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => new RnnRnadeTransformerTests.SequenceRow
        {
            Features = Enumerable.Range(0, 2 * (4 + r.Next(4))).Select(_ => (float)r.NextDouble()).ToArray(),
        }).ToList();
    }

    [Fact]
    public void A_custom_trainers_threshold_says_it_came_from_the_training_sequences_and_why()
    {
        var ml = new MLContext(seed: 1);
        var lines = new List<string>();
        ml.Log += (_, e) => { if (e.Message.Contains("Custom:", StringComparison.Ordinal)) lock (lines) lines.Add(e.Message); };
        var engine = new RnnRnadeOptions { HiddenUnits = 4, RecurrentUnits = 4, MaxEpochs = 1 };
        var estimator = new SequenceDensityEstimator(ml, new SequenceDensityEstimator.Options { FrameSize = 2, Contamination = 0.05 }, "Custom",
            (data, validation, progress, ct) => RnnRnadeModel.Fit(data, engine, validation, progress, ct));
        var train = ml.Data.LoadFromEnumerable(Sequences(30, 1));

        var model = estimator.Fit(train);
        Assert.Equal("30 training sequences (the trainer reports no held-out sequences)", model.ThresholdSource);
        Assert.Contains(lines, l => l.Contains("from 30 training sequences (the trainer reports no held-out sequences) (contamination 0.05).", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("Custom: the PredictedLabel threshold was learned on the training sequences: this estimator's " +
            "trainer (given to the SequenceDensityEstimator constructor) reports no sequences it held out, and Fit was given no validation view.", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("pass validation sequences, Fit(trainData, validationData)", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("0 held-out", StringComparison.Ordinal));

        // With a validation view the threshold is learned on it, and there is nothing to warn about.
        lines.Clear();
        var validated = estimator.Fit(train, ml.Data.LoadFromEnumerable(Sequences(25, 2)));
        Assert.Equal("25 validation sequences", validated.ThresholdSource);
        Assert.DoesNotContain(lines, l => l.Contains("learned on the training sequences", StringComparison.Ordinal));

        // The built-in trainer reports its held-out sequences: no warning either.
        lines.Clear();
        var builtIn = new MLContext(seed: 1);
        var builtInLines = new List<string>();
        builtIn.Log += (_, e) => { if (e.Message.Contains("RnnRnade:", StringComparison.Ordinal)) lock (builtInLines) builtInLines.Add(e.Message); };
        builtIn.DensityEstimation.RnnRnade("Features", frameSize: 2, hiddenUnits: 4, recurrentUnits: 4, maxEpochs: 1).Fit(builtIn.Data.LoadFromEnumerable(Sequences(30, 1)));
        Assert.Contains(builtInLines, l => l.Contains("RnnRnade: trained;", StringComparison.Ordinal));
        Assert.DoesNotContain(builtInLines, l => l.Contains("reports no", StringComparison.Ordinal));
    }
}
