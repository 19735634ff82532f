using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Estimation;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Models.Nvil;
using Microsoft.ML.DeepDensity.Training;
using Xunit;

namespace Microsoft.ML.DeepDensity.Tests.Iwae;

/// <summary>
/// The IWAE's and NVIL's automatic length (<c>MaxEpochs</c> = 0, the default since session 32): a fixed 100 epochs was a
/// hundred or so optimiser steps on a table of a few hundred rows, and a Gaussian IWAE lost to one full-covariance
/// Gaussian on three of four small real tables (docs/models/iwae.md, "Small tables"). Large data must train exactly as
/// before: 100 epochs, patience 10.
/// </summary>
public class ImportanceSampledOptionsTests
{
    public static TheoryData<ImportanceSampledOptions> Both => [new IwaeOptions(), new NvilOptions()];

    [Theory]
    [MemberData(nameof(Both))]
    public void TheAutomaticLengthIsTheRowModelsOnLargeDataAndTenThousandStepsOnSmall(ImportanceSampledOptions options)
    {
        Assert.Equal(0, options.MaxEpochs);
        options.Validate();   // 0 is accepted: it means automatic
        int p = options.EarlyStoppingPatience;   // 10 (IWAE), 20 (NVIL)
        // 10,000 rows or more at batch 100: the fixed defaults of every release before.
        Assert.Equal((100, p), (options.EpochsFor(50_000), options.PatienceFor(50_000)));
        Assert.Equal((100, p), (options.EpochsFor(9_901), options.PatienceFor(9_901)));
        // Fewer: ⌈10,000 / steps an epoch⌉ epochs, at most 10,000, patience the same share of them.
        Assert.Equal((10_000, 100 * p), (options.EpochsFor(90), options.PatienceFor(90)));
        Assert.Equal((3_334, (p * 3_334 + 99) / 100), (options.EpochsFor(235), options.PatienceFor(235)));
        Assert.Equal((1_112, (p * 1_112 + 99) / 100), (options.EpochsFor(876), options.PatienceFor(876)));
        // A length the user sets is kept, and so is the patience.
        options.MaxEpochs = 30;
        options.EarlyStoppingPatience = 4;
        Assert.Equal((30, 4), (options.EpochsFor(90), options.PatienceFor(90)));
        options.MaxEpochs = -1;
        var e = Assert.Throws<ArgumentOutOfRangeException>(options.Validate);
        Assert.Contains("MaxEpochs", e.Message);
    }

    /// <summary>A fit of a small table runs past the fixed 100 epochs by default (stopped by request at 150 so the test
    /// stays short), and stops at 100 when the user asks for 100.</summary>
    [Fact]
    public void ASmallTableTrainsPastAHundredEpochsByDefault()
    {
        var random = new Random(5);
        var rows = new float[40 * 2];
        for (int i = 0; i < rows.Length; i++) rows[i] = (float)random.NextDouble();
        var data = new RowMatrix(rows, 40, 2);
        TrainingSummary Fit(int maxEpochs)
        {
            using var stop = new CancellationTokenSource();
            var options = new IwaeOptions
            {
                Likelihood = IwaeLikelihood.Gaussian, LatentDimensions = [1], HiddenUnits = [4], EvaluationSamples = 10,
                MaxEpochs = maxEpochs, EarlyStoppingPatience = 0, StopToken = stop.Token,
            };
            var progress = new Progress(p => { if (p.Epoch >= 150) stop.Cancel(); });
            return IwaeModel.Fit(data, options, progress: progress).TrainingSummary!;
        }
        var automatic = Fit(0);
        Assert.Equal(150, automatic.EpochsRun);
        Assert.True(automatic.StoppedByRequest);
        Assert.Equal(100, Fit(100).EpochsRun);
    }

    private sealed class Progress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
