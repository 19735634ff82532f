using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Tests.Conformance;
using Microsoft.ML.DeepDensity.Tests.Sequences;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

public class TrainingDriverTests
{
    /// <summary>A scripted model: its state is a number; epoch figures and divergences come from a script.</summary>
    private sealed class Scripted : ITrainableModel
    {
        public int State;
        public readonly List<float> StepRates = new();
        public readonly List<int> BatchSizes = new();
        public Func<int, EpochFigures?> Figures = e => new EpochFigures(e, null);
        public int Resets;
        private int _epochAttempt;

        public double Step(TrainingStep step) { StepRates.Add(step.LearningRate); BatchSizes.Add(step.Count); State++; return 1; }
        public EpochFigures? EndEpoch(TrainingEpoch epoch) => Figures(++_epochAttempt);
        public object Snapshot() => State;
        public void Restore(object snapshot) => State = (int)snapshot;
        public void ResetAfterDivergence() => Resets++;
    }

    private static TrainingDriverOptions Options(int epochs, int batch = 4) => new()
    {
        MaxEpochs = epochs, BatchSize = batch, Root = new RandomStream(1), LearningRate = 1f, LearningRateDecay = 0.5f, MaxDivergenceRecoveries = 2,
    };

    private static ITrainingData Rows(int n) => TrainingData.From(new RowMatrix(n, 1));

    [Fact]
    public void RunsEpochsOfBatchesWithDecayAndRestoresTheBestValidationState()
    {
        var m = new Scripted { Figures = e => new EpochFigures(-e, Validation: new[] { 1.0, 3, 2, 2.5, 1 }[e - 1]) };
        var summary = TrainingDriver.Run(m, Rows(10), Options(5), null, default);
        Assert.Equal(new[] { 4, 4, 2 }, m.BatchSizes.Take(3));
        Assert.Equal(new[] { 1f, 1f, 1f, 0.5f }, m.StepRates.Take(4));
        Assert.Equal(5, summary.EpochsRun);
        Assert.Equal(2, summary.BestEpoch);
        Assert.Equal(3.0, summary.BestValidationLogLikelihood);
        Assert.Equal(6, m.State); // the state after epoch 2 (3 steps per epoch)
    }

    [Fact]
    public void DecayPerExamplesFollowsTheExamplesTrainedOnNotTheEpochs()
    {
        // 10 rows, batches of 4 (4, 4, 2), decay 0.5 every 6 examples: a step's rate is 0.5^⌊examples before it / 6⌋.
        var m = new Scripted();
        var progress = new List<TrainingProgress>();
        TrainingDriver.Run(m, Rows(10), Options(3) with { LearningRateDecayExamples = 6 }, new SyncProgress(progress), default);
        long[] before = { 0, 4, 8, 10, 14, 18, 20, 24, 28 };
        Assert.Equal(before.Select(e => MathF.Pow(0.5f, e / 6)).ToArray(), m.StepRates.ToArray());
        // Each epoch reports the rate of its last step.
        Assert.Equal(new[] { 0.5f, 0.125f, 0.0625f }, progress.Select(p => p.LearningRate).ToArray());

        // An epoch retried after a divergence starts again from the examples before it, at the halved rate.
        var d = new Scripted { Figures = attempt => attempt == 2 ? null : new EpochFigures(0, null) };
        TrainingDriver.Run(d, Rows(10), Options(2) with { LearningRateDecayExamples = 6 }, null, default);
        Assert.Equal(new[] { 1f, 1f, 0.5f, /* epoch 2, diverged */ 0.5f, 0.25f, 0.125f, /* retried at half */ 0.25f, 0.125f, 0.0625f }, d.StepRates.ToArray());

        // 0 keeps the per-epoch decay.
        var e = new Scripted();
        TrainingDriver.Run(e, Rows(10), Options(2) with { LearningRateDecayExamples = 0 }, null, default);
        Assert.Equal(new[] { 1f, 1f, 1f, 0.5f, 0.5f, 0.5f }, e.StepRates.ToArray());
    }

    /// <summary>Parameters that grew past the ±1e6 a model file holds, while still finite, are a divergence at the end of
    /// the epoch (restore, halve the rate, retry), as for the RBM: a Gaussian IWAE on features offset by 1e7 used to train
    /// to the end and fail only in the final loader check ("breaks an invariant of a valid model").</summary>
    [Fact]
    public void ParametersBeyondTheFileRangeAreADivergenceOfTheLoop()
    {
        var rng = new RandomStream(4);
        var x = new float[200 * 4];
        for (int i = 0; i < x.Length; i++) x[i] = 1e7f + (float)rng.NextGaussian();
        var e = Assert.Throws<TrainingDivergedException>(() => Models.Iwae.IwaeModel.Fit(new RowMatrix(x, 200, 4), new Models.Iwae.IwaeOptions
        {
            Likelihood = Models.Iwae.IwaeLikelihood.Gaussian, LatentDimensions = new[] { 2 }, HiddenUnits = new[] { 8 }, MaxEpochs = 3,
            EvaluationSamples = 10, ValidationFraction = 0, Standardize = false, // standardised, these rows train (IwaeStandardizationTests)
        }));
        Assert.Contains("did not recover after 3", e.Message);
        Assert.Contains("beyond ±1e6", e.Message);
        Assert.DoesNotContain("breaks an invariant", e.Message);
    }

    [Fact]
    public void StopsEarlyAfterPatienceAndOnConvergence()
    {
        var m = new Scripted { Figures = e => new EpochFigures(0, Validation: e == 1 ? 5 : 1) };
        var s = TrainingDriver.Run(m, Rows(4), new TrainingDriverOptions { MaxEpochs = 50, Root = new RandomStream(1), EarlyStoppingPatience = 3 }, null, default);
        Assert.True(s.StoppedEarly);
        Assert.Equal(4, s.EpochsRun);
        Assert.Equal(1, m.State);

        var c = new Scripted { Figures = e => new EpochFigures(0, null, Converged: e == 3) };
        Assert.Equal(3, TrainingDriver.Run(c, Rows(4), Options(50), null, default).EpochsRun);
    }

    [Fact]
    public void PatienceCountsEpochsSinceTheLastImprovementNotAllEpochsWithoutOne()
    {
        // Every second epoch improves: with patience 2 no two epochs in a row fail to improve, so the run goes to the end
        // and keeps the last (best) epoch. A count of non-improving epochs that an improvement does not reset stopped
        // this run at epoch 4, keeping epoch 3.
        var validation = new[] { 1.0, 0.5, 2, 1.5, 3, 2.5, 4 };
        var m = new Scripted { Figures = e => new EpochFigures(0, Validation: validation[e - 1]) };
        var s = TrainingDriver.Run(m, Rows(4), Options(7) with { EarlyStoppingPatience = 2 }, null, default);
        Assert.False(s.StoppedEarly);
        Assert.Equal(7, s.EpochsRun);
        Assert.Equal(7, s.BestEpoch);
        Assert.Equal(7, m.State);
        // Two in a row after the last improvement do stop it.
        var two = new[] { 1.0, 0.5, 2, 1.5, 1.8, 9 };
        var t = new Scripted { Figures = e => new EpochFigures(0, Validation: two[e - 1]) };
        var st = TrainingDriver.Run(t, Rows(4), Options(6) with { EarlyStoppingPatience = 2 }, null, default);
        Assert.True(st.StoppedEarly);
        Assert.Equal(5, st.EpochsRun);
        Assert.Equal(3, st.BestEpoch);
        Assert.Equal(3, t.State);
    }

    [Fact]
    public void DivergenceRestoresHalvesTheRateAndRetriesThenGivesUp()
    {
        var m = new Scripted { Figures = e => e == 2 ? null : new EpochFigures(0, null) };
        var progress = new List<TrainingProgress>();
        var s = TrainingDriver.Run(m, Rows(4), Options(2), new SyncProgress(progress), default);
        Assert.Equal(1, s.DivergenceRecoveries);
        Assert.Equal(1, m.Resets);
        Assert.Equal(2, m.State); // epoch 1, then the retried epoch 2 (the diverged step was undone)
        Assert.Equal(new[] { 1f, 0.5f, 0.25f }, m.StepRates); // epoch 2 at 0.5, diverged; retried at 0.25
        Assert.Contains(progress, p => p.Note is not null && p.Note.Contains("halved"));

        var hopeless = new Scripted { Figures = _ => null };
        var e = Assert.Throws<TrainingDivergedException>(() => TrainingDriver.Run(hopeless, Rows(4), Options(3), null, default));
        Assert.Contains("did not recover after 2", e.Message);
        Assert.Equal(0, hopeless.State);

        var stop = new Scripted { Figures = e => e == 2 ? null : new EpochFigures(0, null) };
        var stopped = TrainingDriver.Run(stop, Rows(4), new TrainingDriverOptions { MaxEpochs = 9, Root = new RandomStream(1), OnDivergence = DivergencePolicy.Stop, StopNote = "stopped" }, null, default);
        Assert.Equal(2, stopped.EpochsRun);
        Assert.Equal("stopped", stopped.History[^1].Note);
        Assert.Equal(1, stop.State);
    }

    [Fact]
    public void AnEpochThatDoesNotRecoverEndsTheRunKeepingTheCompletedEpochs()
    {
        // Epochs 1–2 complete, epoch 3 diverges on every retry: the run stops with the state after epoch 2 instead of
        // throwing away what it learned, and says so.
        var m = new Scripted { Figures = e => e >= 3 ? null : new EpochFigures(0, null) };
        var progress = new List<TrainingProgress>();
        var s = TrainingDriver.Run(m, Rows(4), Options(9), new SyncProgress(progress), default);
        Assert.True(s.StoppedByDivergence);
        Assert.Equal(2, m.State);
        Assert.Equal(2, s.DivergenceRecoveries);
        Assert.Contains("did not recover after 2", s.History[^1].Note);
        Assert.Contains("stopped", progress[^1].Note);

        // The retry budget is per epoch: two separate divergences, each recovered from at once, use one retry each.
        // (The script's argument counts epoch attempts: epoch 2 fails once at attempt 2, epoch 4 once at attempt 5.)
        var twice = new Scripted { Figures = attempt => attempt is 2 or 5 ? null : new EpochFigures(0, null) };
        var ok = TrainingDriver.Run(twice, Rows(4), Options(5) with { MaxDivergenceRecoveries = 1 }, null, default);
        Assert.False(ok.StoppedByDivergence);
        Assert.Equal(2, ok.DivergenceRecoveries);
        Assert.Equal(5, twice.State);
    }

    /// <summary>The summary says why the run ended: all its epochs, early stopping, convergence, the stop token or a
    /// divergence, one flag each (before, convergence and the stop token were indistinguishable from the last epoch).</summary>
    [Fact]
    public void TheSummarySaysWhyTheRunEnded()
    {
        var all = TrainingDriver.Run(new Scripted(), Rows(4), Options(3), null, default);
        Assert.False(all.StoppedEarly || all.Converged || all.StoppedByRequest || all.StoppedByDivergence);
        Assert.Equal(3, all.EpochsRun);

        var converged = TrainingDriver.Run(new Scripted { Figures = e => new EpochFigures(0, null, Converged: e == 2) }, Rows(4), Options(9), null, default);
        Assert.True(converged.Converged);
        Assert.False(converged.StoppedEarly || converged.StoppedByRequest || converged.StoppedByDivergence);

        using var stop = new CancellationTokenSource();
        var m = new Scripted { Figures = e => { if (e == 2) stop.Cancel(); return new EpochFigures(0, null); } };
        var requested = TrainingDriver.Run(m, Rows(4), Options(9) with { StopToken = stop.Token }, null, default);
        Assert.True(requested.StoppedByRequest);
        Assert.Equal(2, requested.EpochsRun);
        Assert.False(requested.StoppedEarly || requested.Converged || requested.StoppedByDivergence);

        // A stop token signalled during the last epoch's report, after which no epoch was left, is not a stop by request.
        using var late = new CancellationTokenSource();
        var n = new Scripted { Figures = e => { if (e == 3) late.Cancel(); return new EpochFigures(0, null); } };
        Assert.False(TrainingDriver.Run(n, Rows(4), Options(3) with { StopToken = late.Token }, null, default).StoppedByRequest);

        var early = TrainingDriver.Run(new Scripted { Figures = e => new EpochFigures(0, Validation: e == 1 ? 5 : 1) }, Rows(4),
            Options(50) with { EarlyStoppingPatience = 2 }, null, default);
        Assert.True(early.StoppedEarly);
        Assert.False(early.Converged || early.StoppedByRequest || early.StoppedByDivergence);
    }

    /// <summary>BestEpoch is numbered as the history's reports: a run whose numbering continues another's
    /// (<see cref="TrainingDriverOptions.EpochNumberOffset"/>: Deep GMM after pretraining or another initialisation)
    /// used to give the run's own count (2) for the report numbered 12.</summary>
    [Fact]
    public void BestEpochIsNumberedAsTheHistory()
    {
        var m = new Scripted { Figures = e => new EpochFigures(0, Validation: new[] { 1.0, 3, 2 }[e - 1]) };
        var s = TrainingDriver.Run(m, Rows(4), Options(3) with { EpochNumberOffset = 10 }, null, default);
        Assert.Equal(new[] { 11, 12, 13 }, s.History.Select(p => p.Epoch));
        Assert.Equal(12, s.BestEpoch);
        Assert.Equal(s.BestValidationLogLikelihood, s.History.Single(p => p.Epoch == s.BestEpoch).ValidationLogLikelihood);

        // Without validation the last completed step, in the same numbering.
        var last = TrainingDriver.Run(new Scripted(), Rows(4), Options(3) with { EpochNumberOffset = 10 }, null, default);
        Assert.Equal(13, last.BestEpoch);
    }

    [Fact]
    public void CancellationStopsTheRun()
    {
        using var cts = new CancellationTokenSource();
        var m = new Scripted();
        m.Figures = e => { if (e == 2) cts.Cancel(); return new EpochFigures(0, null); };
        Assert.ThrowsAny<OperationCanceledException>(() => TrainingDriver.Run(m, Rows(4), Options(100), null, cts.Token));
    }

    [Fact]
    public void BestOfRestartsKeepsTheHighestScoreAndTheFirstOnTies()
    {
        TrainingSummary S(double train, double valid) => new(1, 1, valid, train, false, 0, Array.Empty<TrainingProgress>());
        var scores = new[] { (1.0, 5.0), (3.0, 2.0), (3.0, 7.0) };
        Assert.Equal(1, TrainingDriver.BestOfRestarts(3, byValidation: false, i => (i, S(scores[i].Item1, scores[i].Item2))).Result);
        Assert.Equal(2, TrainingDriver.BestOfRestarts(3, byValidation: true, i => (i, S(scores[i].Item1, scores[i].Item2))).Result);
    }

    /// <summary>Sequences train through the same driver; an objective's extra state is restored with the parameters.</summary>
    [Fact]
    public void SequenceGradientTrainingRestoresExtraStateWithTheBestEpoch()
    {
        var data = SequenceConformanceData.Real(80, 3);
        var valid = SequenceConformanceData.Real(20, 4);
        var model = IidGaussianSequenceModel.FitByGradient(data, new GradientTrainingOptions { MaxEpochs = 60, LearningRate = 1f, BatchSize = 10, EarlyStoppingPatience = 5 }, valid);
        var summary = model.TrainingSummary!;
        Assert.Equal((long)summary.BestEpoch * data.TotalFrames, model.FramesSeen);
        var moments = IidGaussianSequenceModel.Fit(data);
        Assert.InRange(model.AverageLogDensity(valid), moments.AverageLogDensity(valid) - 3, moments.AverageLogDensity(valid) + 1);
    }

    private sealed class SyncProgress(List<TrainingProgress> sink) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => sink.Add(value);
    }
}
