using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.RnnRnade;

namespace Microsoft.ML.DeepDensity.Tests.RnnRnade;

/// <summary>
/// <see cref="RnnRnadeOptions.TrainingWindow"/>: long training sequences are cut into windows (truncated back-propagation
/// through time), so a single long series trains on many examples with a held-out split instead of one sequence a step.
/// </summary>
public class RnnRnadeTrainingWindowTests
{
    private static RnnRnadeOptions Options(int window) => new()
    {
        HiddenUnits = 6, Components = 2, RecurrentUnits = 5, MaxEpochs = 3, BatchSize = 8, SequencesPerBlock = 3, TrainingWindow = window,
    };

    [Fact]
    public void LongSequencesAreCutIntoEvenConsecutiveWindowsThatShareTheValues()
    {
        int[] lengths = { 1, 64, 65, 130, 200, 3 };
        var offsets = new int[lengths.Length + 1];
        for (int i = 0; i < lengths.Length; i++) offsets[i + 1] = offsets[i] + lengths[i];
        var values = new float[offsets[^1] * 2];
        for (int i = 0; i < values.Length; i++) values[i] = i;
        var batch = new SequenceBatch(values, offsets, 2);

        var windows = RnnRnadeModel.InWindows(batch, 64);
        var windowLengths = Enumerable.Range(0, windows.Count).Select(windows.Length).ToArray();
        // 65 → 33 + 32 (not 64 + a one-frame stub); 130 → 44 + 43 + 43; 200 → four of 50.
        Assert.Equal(new[] { 1, 64, 33, 32, 44, 43, 43, 50, 50, 50, 50, 3 }, windowLengths);
        Assert.Same(values, windows.Values);
        Assert.Equal(batch.TotalFrames, windows.TotalFrames);
        // Every window lies inside one sequence: no window crosses a sequence boundary.
        var starts = new HashSet<int>(windows.Offsets);
        Assert.All(offsets, o => Assert.Contains(o, starts));

        Assert.Same(batch, RnnRnadeModel.InWindows(batch, 0));      // whole sequences
        Assert.Same(batch, RnnRnadeModel.InWindows(batch, 200));    // nothing longer than the window
    }

    [Fact]
    public void TheNoteSaysWhatIsCut()
    {
        var batch = new SequenceBatch(new float[400], new[] { 0, 65, 195, 200 }, 1);   // 65, 130 and 5 frames
        Assert.Equal("training windows: 2 sequences longer than 64 frames cut into 5 windows of 32–44 frames (TrainingWindow; 0 trains whole sequences)",
            RnnRnadeModel.WindowsNote(batch, 64));
        Assert.Equal(6, RnnRnadeModel.InWindows(batch, 64).Count);       // the five windows and the 5-frame sequence
        Assert.Null(RnnRnadeModel.WindowsNote(batch, 0));
        Assert.Null(RnnRnadeModel.WindowsNote(batch, 130));
        Assert.StartsWith("training windows: 1 sequence longer than 100 frames cut into 2 windows of 65 frames",
            RnnRnadeModel.WindowsNote(batch, 100));
    }

    [Fact]
    public void AWindowLongerThanEverySequenceChangesNothing()
    {
        var data = RnnRnadeModelTests.VarSequences(30, 8, 21);
        byte[] whole = RnnRnadeModel.Fit(data, Options(0)).ToBytes();
        Assert.Equal(whole, RnnRnadeModel.Fit(data, Options(8)).ToBytes());
        Assert.Equal(whole, RnnRnadeModel.Fit(data, Options(RnnRnadeOptions.Defaults.TrainingWindow)).ToBytes());
        Assert.NotEqual(whole, RnnRnadeModel.Fit(data, Options(5)).ToBytes());
    }

    [Fact]
    public void ASingleLongSeriesTrainsOnWindowsWithAHeldOutSplit()
    {
        var series = RnnRnadeModelTests.VarSequences(1, 600, 5);

        // Whole: one example, so no held-out split and one sequence per epoch.
        var whole = RnnRnadeModel.Fit(series, Options(0)).TrainingSummary!;
        Assert.All(whole.History, h => Assert.Null(h.ValidationLogLikelihood));

        // Windows of 30: 20 examples, two held out (the validation fraction's 10 %), so early stopping has data.
        var windowed = RnnRnadeModel.Fit(series, Options(30)).TrainingSummary!;
        Assert.All(windowed.History, h => Assert.True(h.ValidationLogLikelihood is double v && double.IsFinite(v)));
        Assert.True(double.IsFinite(windowed.BestValidationLogLikelihood));
    }

    [Fact]
    public void ValidationSequencesGivenToFitAreNotCut()
    {
        // The validation figure is the model's log-likelihood per frame of the whole validation sequences.
        var train = RnnRnadeModelTests.VarSequences(1, 300, 5);
        var validation = RnnRnadeModelTests.VarSequences(2, 150, 6);
        var o = Options(25);
        o.EarlyStoppingPatience = 0;
        var model = RnnRnadeModel.Fit(train, o, validation);
        double perFrame = model.LogDensity(validation).Sum(v => (double)v) / validation.TotalFrames;
        Assert.Equal(perFrame, model.TrainingSummary!.History[^1].ValidationLogLikelihood!.Value, 4);
    }

    /// <summary>MaxEpochs = 0 (the default): an epoch of sequences is few steps, so the epochs follow the training
    /// sequences (windows): enough for 10,000 steps within [100, 1000]; a set value is kept.</summary>
    [Fact]
    public void TheDefaultEpochsFollowTheTrainingSequences()
    {
        var o = new RnnRnadeOptions();
        Assert.Equal(0, o.MaxEpochs);
        Assert.Equal(1000, o.EpochsFor(1));            // one step an epoch: the most
        Assert.Equal(1000, o.EpochsFor(320));          // 10 steps
        Assert.Equal(500, o.EpochsFor(625));           // 20 steps (the 40,000-frame series in windows of 64)
        Assert.Equal(100, o.EpochsFor(1_000_000));     // the fewest: the row models' default
        o.MaxEpochs = 7;
        Assert.Equal(7, o.EpochsFor(1));

        // A fit runs them: one series in 20 windows, two held out, 18 training windows a step: 1,000 epochs.
        var series = RnnRnadeModelTests.VarSequences(1, 600, 5);
        var fit = Options(30);
        fit.MaxEpochs = 0;
        fit.EarlyStoppingPatience = 0;
        fit.BatchSize = 32;
        Assert.Equal(1000, RnnRnadeModel.Fit(series, fit).TrainingSummary!.EpochsRun);
    }

    /// <summary>With the automatic epochs the early-stopping patience scales with them: the same share of the run (10 of
    /// 100 epochs). One long series is one or two steps an epoch, and a fixed patience of 10 epochs stopped the daily Seattle
    /// weather after about 100 optimiser steps (0.88 nats per frame above an i.i.d. RNADE on 2015 instead of 1.36). A set
    /// MaxEpochs, or patience 0 (off), is kept as given.</summary>
    [Fact]
    public void TheDefaultPatienceScalesWithTheAutomaticEpochs()
    {
        var o = new RnnRnadeOptions();
        Assert.Equal(100, o.PatienceFor(1));           // one step an epoch, 1,000 epochs
        Assert.Equal(50, o.PatienceFor(625));          // 500 epochs
        Assert.Equal(10, o.PatienceFor(1_000_000));    // 100 epochs: the row models' patience
        o.EarlyStoppingPatience = 3;
        Assert.Equal(30, o.PatienceFor(1));
        o.EarlyStoppingPatience = 0;
        Assert.Equal(0, o.PatienceFor(1));
        o.EarlyStoppingPatience = 10;
        o.MaxEpochs = 1000;
        Assert.Equal(10, o.PatienceFor(1));

        // A fit that stops early has waited the scaled patience after its best epoch: one series of 600 frames in 20
        // windows, 2 held out, 18 training windows: one step an epoch, 1,000 epochs, patience 100.
        var fit = Options(30);
        fit.MaxEpochs = 0;
        fit.BatchSize = 32;
        fit.LearningRate = 0.05f;  // converges, and stops, within the 1,000 epochs
        var summary = RnnRnadeModel.Fit(RnnRnadeModelTests.VarSequences(1, 600, 5), fit).TrainingSummary!;
        Assert.True(summary.StoppedEarly, $"ran {summary.EpochsRun} epochs without stopping early");
        Assert.Equal(summary.BestEpoch + 100, summary.EpochsRun);
    }

    /// <summary>
    /// <see cref="RnnRnadeModel.TrainingExamples(SequenceBatch, RnnRnadeOptions, bool)"/> is the count Fit trains on, so
    /// <c>EpochsFor</c> of it is the epochs a fit without early stopping runs (a progress bar's length): whole sequences
    /// held out among sequences of different lengths (not a tenth of all windows), windows held out of one long series,
    /// nothing held out with validation sequences or a fraction of 0, whole sequences without windows. Batches of one
    /// example make the automatic epochs differ for every count.
    /// </summary>
    [Theory]
    [InlineData(14, 8, false, 0.1)]
    [InlineData(1, 8, false, 0.1)]
    [InlineData(14, 8, true, 0.1)]
    [InlineData(14, 8, false, 0.0)]
    [InlineData(30, 0, false, 0.1)]
    public void TheTrainingExamplesAreTheOnesFitTrainsOn(int sequences, int window, bool withValidation, double fraction)
    {
        var series = RnnRnadeModelTests.VarSequences(1, 700, 9);
        var offsets = new int[sequences + 1];
        for (int i = 0; i < sequences; i++) offsets[i + 1] = offsets[i] + (sequences == 1 ? 300 : 5 + i * 11 % 34);
        var data = new SequenceBatch(series.Values, offsets, 2);
        var o = new RnnRnadeOptions
        {
            HiddenUnits = 2, Components = 1, RecurrentUnits = 2, SequencesPerBlock = 3, BatchSize = 1, EarlyStoppingPatience = 0,
            TrainingWindow = window, ValidationFraction = fraction,
        };
        long examples = RnnRnadeModel.TrainingExamples(data, o, withValidation);
        var validation = withValidation ? RnnRnadeModelTests.VarSequences(2, 50, 10) : null;
        Assert.Equal(o.EpochsFor(examples), RnnRnadeModel.Fit(data, o, validation).TrainingSummary!.EpochsRun);
        long all = RnnRnadeModel.TrainingExamples(data, window);
        if (withValidation || fraction == 0) Assert.Equal(all, examples);
        else Assert.InRange(examples, 1, all - 1);
    }

    [Fact]
    public void ANegativeWindowIsRefusedByName()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Options(-1).Validate());
        Assert.Contains(nameof(RnnRnadeOptions.TrainingWindow), e.Message);
    }
}
