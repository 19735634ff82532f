using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Training;
using Microsoft.ML.DeepDensity.Transforms;
using Xunit;
using Xunit.Abstractions;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// RNN-RNADE's PredictedLabel thresholds (whole sequences; frame rows and their first-frame thresholds) are learned on
/// data the model did not train on, as the row models' are (<see cref="HeldOutThresholdTests"/>): the validation view,
/// else the sequences the engine held out for early stopping, else (too few) the training data. Normal digits (every
/// class but 4, pixel + U(0, 1), over 17) read as sequences of their pixel rows: an RNN-RNADE that overfits 600 of them
/// scores its training sequences far better than new ones, and a threshold from those flagged 20 % of new normal
/// sequences at contamination 0.05.
/// </summary>
[Collection(EngineSettingsCollection.Name)] // sets the engine's thread count
public class SequenceHeldOutThresholdTests(ITestOutputHelper output)
{
    public sealed class FrameRow
    {
        public float[] Features { get; set; } = [];
        public int SequenceId { get; set; }
        public float Order { get; set; }
    }

    private const double Contamination = 0.05;

    /// <summary>The normal digits as sequences of 64 values: the first <paramref name="train"/> (shuffled, seeded) for
    /// training, the rest new normal sequences of the same process.</summary>
    private static (List<RnnRnadeTransformerTests.SequenceRow> Train, List<RnnRnadeTransformerTests.SequenceRow> Fresh) Digits(int train)
    {
        var (t, f) = HeldOutThresholdTests.Digits(train);
        static RnnRnadeTransformerTests.SequenceRow Sequence(HeldOutThresholdTests.DigitRow d) => new() { Features = d.Features };
        return (t.Select(Sequence).ToList(), f.Select(Sequence).ToList());
    }

    /// <summary>The sequences as frame rows of <paramref name="frameSize"/> values, ids from <paramref name="firstId"/>,
    /// in a view whose frame column has that known size.</summary>
    private static (List<FrameRow> Rows, IDataView View) Frames(MLContext ml, IEnumerable<RnnRnadeTransformerTests.SequenceRow> sequences, int frameSize,
        int firstId = 0)
    {
        var rows = sequences.SelectMany((s, i) => Enumerable.Range(0, s.Features.Length / frameSize).Select(t => new FrameRow
        {
            Features = s.Features.AsSpan(frameSize * t, frameSize).ToArray(), SequenceId = firstId + i, Order = t,
        })).ToList();
        var schema = SchemaDefinition.Create(typeof(FrameRow));
        schema[nameof(FrameRow.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, frameSize);
        return (rows, ml.Data.LoadFromEnumerable(rows, schema));
    }

    /// <summary>An RNN-RNADE that overfits: no early stopping (the best validation epoch of 150) at a high learning rate,
    /// holding out <paramref name="fraction"/> of the sequences.</summary>
    private static RnnRnadeOptions Overfitting(double fraction = 0.2) => new()
    {
        HiddenUnits = 50, RecurrentUnits = 50, MaxEpochs = 150, LearningRate = 1e-2f, EarlyStoppingPatience = 0, ValidationFraction = fraction, Seed = 5,
    };

    private static SequenceDensityEstimator WholeSequences(MLContext ml, DensityThresholdRows rows, RnnRnadeOptions? options = null, int frameSize = 8)
        => ml.DensityEstimation.RnnRnade(new SequenceDensityEstimator.Options { FrameSize = frameSize, Contamination = Contamination, ThresholdRows = rows },
            options ?? Overfitting());

    private static RnnRnadeFrameEstimator FrameRows(MLContext ml, DensityThresholdRows rows, RnnRnadeOptions? options = null)
        => ml.DensityEstimation.RnnRnade(new RnnRnadeFrameEstimator.Options
        {
            Contamination = Contamination, ThresholdRows = rows, ModelOptions = options ?? Overfitting(),
        });

    private static double Flagged(ITransformer t, IDataView data)
    {
        var flags = t.Transform(data).GetColumn<bool>("PredictedLabel").ToArray();
        return flags.Count(b => b) / (double)flags.Length;
    }

    private static float[] Scores(ITransformer t, IDataView data) => t.Transform(data).GetColumn<float>("Score").ToArray();

    /// <summary>The defect and its repair, whole sequences: of 1,016 new normal sequences the held-out threshold flags
    /// under 2c, the training sequences' threshold more (the test fails if the threshold is learned on the training
    /// sequences again). Measured: 4.6 % (held-out, 120 sequences) vs 19.5 % (training).</summary>
    [Fact]
    public void WholeSequences_HeldOutThresholdFlagsAboutContaminationOfNewNormalSequences()
    {
        var ml = new MLContext(1);
        var (train, fresh) = Digits(600);
        var view = ml.Data.LoadFromEnumerable(train);
        var freshView = ml.Data.LoadFromEnumerable(fresh);
        var log = new List<string>();
        ml.Log += (_, e) => { if (e.Message.Contains("score threshold")) lock (log) log.Add(e.Message); };
        var heldOut = WholeSequences(ml, DensityThresholdRows.HeldOut).Fit(view);
        var training = WholeSequences(ml, DensityThresholdRows.Training).Fit(view);
        Assert.Equal(heldOut.Model.ToBytes(), training.Model.ToBytes()); // the option changes the threshold only
        double freshHeldOut = Flagged(heldOut, freshView), freshTraining = Flagged(training, freshView);
        output.WriteLine($"whole sequences: new normal flagged: held-out {freshHeldOut:P1}, training {freshTraining:P1} ({fresh.Count} sequences); " +
                         $"training sequences flagged by the held-out threshold {Flagged(heldOut, view):P1}");
        Assert.True(freshHeldOut < 2 * Contamination, $"the held-out threshold flags {freshHeldOut:P1} of new normal sequences");
        Assert.True(freshTraining >= 2 * Contamination,
            $"the training sequences' threshold flags {freshTraining:P1} of new sequences: the model does not overfit, the test shows nothing");

        // The held-out sequences are the engine's own split (120 of 600): their scores' quantile is the threshold, exactly.
        var rows = TrainingLoop.HeldOutRows(train.Count, 0.2, 5);
        Assert.Equal(120, rows.Length);
        Assert.Equal("120 held-out sequences", heldOut.ThresholdSource);
        Assert.Equal("600 training sequences", training.ThresholdSource);
        Assert.Equal(Scoring.Threshold(Scores(heldOut, ml.Data.LoadFromEnumerable(rows.Select(i => train[i]))), Contamination), heldOut.Threshold);
        Assert.Equal(Scoring.Threshold(Scores(training, view), Contamination), training.Threshold);
        Assert.Contains(log, l => l.Contains("from 120 held-out sequences (contamination 0.05)"));
        Assert.Contains(log, l => l.Contains("from 600 training sequences (contamination 0.05)"));
    }

    /// <summary>The same for frame rows (frames of 16 values, 4 a digit): the frame threshold from the 480 frames of the
    /// 120 held-out sequences, each scored in its sequence, and the first frames' thresholds from those sequences' first
    /// frames (120 windows: at least the 100 a position needs). Measured: 4.2 % vs 13.6 % of 4,064 new normal frame rows.</summary>
    [Fact]
    public void FrameRows_HeldOutThresholdsFlagAboutContaminationOfNewNormalFrames()
    {
        var ml = new MLContext(1);
        var (train, fresh) = Digits(600);
        var (trainFrames, view) = Frames(ml, train, 16);
        var (_, freshView) = Frames(ml, fresh, 16, firstId: 10_000);
        var heldOut = FrameRows(ml, DensityThresholdRows.HeldOut).Fit(view);
        var training = FrameRows(ml, DensityThresholdRows.Training).Fit(view);
        Assert.Equal(heldOut.Model.ToBytes(), training.Model.ToBytes());
        double freshHeldOut = Flagged(heldOut, freshView), freshTraining = Flagged(training, freshView);
        output.WriteLine($"frame rows: new normal flagged: held-out {freshHeldOut:P1}, training {freshTraining:P1} ({fresh.Count * 4} frame rows); " +
                         $"first-frame thresholds {heldOut.FirstFrameThresholds.Count} vs {training.FirstFrameThresholds.Count}; " +
                         $"training frames flagged by the held-out thresholds {Flagged(heldOut, view):P1}");
        Assert.True(freshHeldOut < 2 * Contamination, $"the held-out thresholds flag {freshHeldOut:P1} of new normal frame rows");
        Assert.True(freshTraining >= 2 * Contamination,
            $"the training frames' thresholds flag {freshTraining:P1} of new frame rows: the model does not overfit, the test shows nothing");

        var rows = TrainingLoop.HeldOutRows(train.Count, 0.2, 5).ToHashSet();
        Assert.Equal("480 held-out frames", heldOut.ThresholdSource);
        Assert.Equal("2400 training frames", training.ThresholdSource);
        var scores = Scores(heldOut, view);
        bool Held(int i) => rows.Contains(trainFrames[i].SequenceId);
        Assert.Equal(Scoring.Threshold(scores.Where((_, i) => Held(i)).ToArray(), Contamination), heldOut.Threshold);
        Assert.NotEmpty(heldOut.FirstFrameThresholds);
        Assert.Equal(Scoring.Threshold(scores.Where((_, i) => Held(i) && trainFrames[i].Order == 0).ToArray(), Contamination), heldOut.FirstFrameThresholds[0]);
        Assert.Equal(Scoring.Threshold(scores.Where((_, i) => trainFrames[i].Order == 0).ToArray(), Contamination), training.FirstFrameThresholds[0]);
    }

    /// <summary>A small fit (few epochs) that holds out <paramref name="fraction"/>.</summary>
    private static RnnRnadeOptions Small(double fraction = 0.1) => new()
    {
        HiddenUnits = 10, RecurrentUnits = 10, MaxEpochs = 5, ValidationFraction = fraction, Seed = 3,
    };

    /// <summary>With a validation view, its sequences' (frames') scores set the threshold, exactly, and its first frames
    /// the first-frame thresholds (150 windows).</summary>
    [Fact]
    public void ValidationViewSetsTheThresholds()
    {
        var ml = new MLContext(1);
        var (train, fresh) = Digits(300);
        var valid = fresh.Take(150).ToList();
        var validView = ml.Data.LoadFromEnumerable(valid);
        var whole = WholeSequences(ml, DensityThresholdRows.HeldOut, Small()).Fit(ml.Data.LoadFromEnumerable(train), validView);
        Assert.Equal("150 validation sequences", whole.ThresholdSource);
        Assert.Equal(Scoring.Threshold(Scores(whole, validView), Contamination), whole.Threshold);

        var (validFrames, validFrameView) = Frames(ml, valid, 8, firstId: 10_000);
        var frames = FrameRows(ml, DensityThresholdRows.HeldOut, Small()).Fit(Frames(ml, train, 8).View, validFrameView);
        Assert.Equal("1200 validation frames", frames.ThresholdSource);
        var scores = Scores(frames, validFrameView);
        Assert.Equal(Scoring.Threshold(scores, Contamination), frames.Threshold);
        if (frames.FirstFrameThresholds.Count > 0)
            Assert.Equal(Scoring.Threshold(scores.Where((_, i) => validFrames[i].Order == 0).ToArray(), Contamination), frames.FirstFrameThresholds[0]);
    }

    /// <summary>Too few units not trained on for the empirical quantile (20 at 0.05): 150 sequences hold out 15, a
    /// validation view has 10, 20 sequences of 8 frames hold out 2 (16 frames): their scores' normal approximation sets
    /// the threshold (it was the training data's, which flags more new normal sequences). Fewer than 10: 80 sequences hold
    /// out 8, a validation view of 5, 10 sequences hold out 1 (8 frames): the training data sets the thresholds, as with
    /// <see cref="DensityThresholdRows.Training"/>, the source says why and Fit warns (of the frames' and the first
    /// frames' thresholds: 1 held-out window).</summary>
    [Fact]
    public void TooFewHeldOutTakesTheTailEstimateOrTheTrainingData()
    {
        var ml = new MLContext(1);
        var warnings = new List<string>();
        ml.Log += (_, e) => { if (e.Kind == Runtime.ChannelMessageKind.Warning) lock (warnings) warnings.Add(e.Message); };
        var (train, fresh) = Digits(150);
        var view = ml.Data.LoadFromEnumerable(train);
        static string Tail(string factor) => " by a normal approximation of their scores (mean + " + factor + " sd, at least their largest; the empirical quantile needs 20)";
        Assert.Equal("15 held-out sequences" + Tail("1.819"), WholeSequences(ml, DensityThresholdRows.HeldOut, Small()).Fit(view).ThresholdSource);
        var validView = ml.Data.LoadFromEnumerable(fresh.Take(10));
        var validated = WholeSequences(ml, DensityThresholdRows.HeldOut, Small()).Fit(view, validView);
        Assert.Equal("10 validation sequences" + Tail("1.923"), validated.ThresholdSource);
        Assert.Equal(AnomalyThreshold.TailThreshold(Scores(validated, validView), Contamination), validated.Threshold);
        var frameView = Frames(ml, train.Take(20), 8).View;
        Assert.Equal("16 held-out frames" + Tail("1.807"), FrameRows(ml, DensityThresholdRows.HeldOut, Small()).Fit(frameView).ThresholdSource);
        Assert.True(warnings.Count == 1, string.Join(" | ", warnings));   // the first frames' thresholds: 2 held-out windows
        Assert.True(warnings[0].Contains("RnnRnade: the first frames' PredictedLabel thresholds were set on the ", StringComparison.Ordinal)
                    && warnings[0].Contains(" windows were held out (a threshold needs at least 10)", StringComparison.Ordinal), warnings[0]);

        warnings.Clear();
        var fewView = ml.Data.LoadFromEnumerable(train.Take(80));
        var whole = WholeSequences(ml, DensityThresholdRows.HeldOut, Small()).Fit(fewView);
        Assert.Equal("80 training sequences (8 held-out sequences, fewer than the 10 a held-out threshold needs)", whole.ThresholdSource);
        Assert.Equal(WholeSequences(ml, DensityThresholdRows.Training, Small()).Fit(fewView).Threshold, whole.Threshold);
        var fewValidated = WholeSequences(ml, DensityThresholdRows.HeldOut, Small()).Fit(view, ml.Data.LoadFromEnumerable(fresh.Take(5)));
        Assert.Equal("150 training sequences (5 validation sequences, fewer than the 10 a validation threshold needs)", fewValidated.ThresholdSource);
        Assert.Equal(Scoring.Threshold(Scores(fewValidated, view), Contamination), fewValidated.Threshold);
        Assert.True(warnings.Count == 2, string.Join(" | ", warnings));
        Assert.Contains(warnings, w => w.Contains("the PredictedLabel threshold was set on the 80 sequences of the training data because only 8 sequences were held out", StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.Contains("because only 5 sequences were given for validation", StringComparison.Ordinal));

        warnings.Clear();
        var fewFrameView = Frames(ml, train.Take(10), 8).View;
        var frames = FrameRows(ml, DensityThresholdRows.HeldOut, Small()).Fit(fewFrameView);
        var framesTraining = FrameRows(ml, DensityThresholdRows.Training, Small()).Fit(fewFrameView);
        Assert.Equal("80 training frames (8 held-out frames, fewer than the 10 a held-out threshold needs)", frames.ThresholdSource);
        Assert.Equal(framesTraining.Threshold, frames.Threshold);
        Assert.Equal(framesTraining.FirstFrameThresholds, frames.FirstFrameThresholds);
        Assert.True(warnings.Count == 2, string.Join(" | ", warnings));   // the frames' threshold and the first frames' (Training asked for: none)
    }

    /// <summary>The thresholds are the same on every run and engine thread count, follow the seed (another held-out
    /// split), and a saved and loaded model keeps them (both loads label as the fitted transformer).</summary>
    [Fact]
    public void ThresholdsAreReproducibleAndSurviveSaveAndLoad()
    {
        var ml = new MLContext(1);
        var (train, fresh) = Digits(400);
        var (_, view) = Frames(ml, train, 16);
        var (_, freshView) = Frames(ml, fresh.Take(200), 16, firstId: 10_000);
        var reference = FrameRows(ml, DensityThresholdRows.HeldOut, Small(0.25)).Fit(view);
        Assert.Equal("400 held-out frames", reference.ThresholdSource);
        foreach (int threads in new[] { 1, 2 })
        {
            DeepDensityEnvironment.MaxDegreeOfParallelism = threads;
            try
            {
                var again = FrameRows(new MLContext(), DensityThresholdRows.HeldOut, Small(0.25)).Fit(view);
                Assert.Equal(reference.Threshold, again.Threshold);
                Assert.Equal(reference.FirstFrameThresholds, again.FirstFrameThresholds);
            }
            finally { DeepDensityEnvironment.MaxDegreeOfParallelism = -1; }
        }
        var otherSeed = Small(0.25);
        otherSeed.Seed = 4;
        Assert.NotEqual(reference.Threshold, FrameRows(ml, DensityThresholdRows.HeldOut, otherSeed).Fit(view).Threshold);

        using var zip = new MemoryStream();
        ml.Model.Save(reference, view.Schema, zip);
        var expected = reference.Transform(freshView).GetColumn<bool>("PredictedLabel").ToArray();
        var plain = new MLContext().Model.Load(new MemoryStream(zip.ToArray()), out _);
        Assert.Equal(reference.Threshold, plain.GetSequenceAnomalyThreshold());
        Assert.Equal(expected, plain.Transform(freshView).GetColumn<bool>("PredictedLabel").ToArray());
        var live = new MLContext().Model.LoadWithLiveDensityModels(new MemoryStream(zip.ToArray()), out _);
        Assert.Equal(expected, live.Transform(freshView).GetColumn<bool>("PredictedLabel").ToArray());
        Assert.Equal(reference.FirstFrameThresholds, Assert.IsType<SequenceDensityTransformer>(live).FirstFrameThresholds);

        var wholeView = ml.Data.LoadFromEnumerable(train);
        var whole = WholeSequences(ml, DensityThresholdRows.HeldOut, Small(0.25), frameSize: 16).Fit(wholeView);
        Assert.Equal("100 held-out sequences", whole.ThresholdSource);
        using var wholeZip = new MemoryStream();
        ml.Model.Save(whole, wholeView.Schema, wholeZip);
        Assert.Equal(whole.Threshold, new MLContext().Model.Load(new MemoryStream(wholeZip.ToArray()), out _).GetSequenceAnomalyThreshold());
    }
}
