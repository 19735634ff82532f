using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Tests.Conformance;
using Microsoft.ML.DeepDensity.Training;
using Xunit;

namespace Microsoft.ML.DeepDensity.Tests.Rnade;

/// <summary>
/// Deep RNADE's automatic minibatch (<c>BatchSize</c> = 0, the default since session 33): at a fixed 100 an epoch of a
/// table of a few hundred rows was one to nine optimiser steps, and the 2×100 network lost to one full-covariance
/// Gaussian on iris and to RNADE's defaults on three of four small real tables (docs/models/rnade.md, "Small tables").
/// Large data must train exactly as before: batch 100, 200 epochs, patience 10.
/// </summary>
public class DeepRnadeOptionsTests
{
    [Fact]
    public void TheAutomaticBatchIsTheRowModelsOnLargeDataAndAHundredStepsAnEpochOnSmall()
    {
        var options = new DeepRnadeOptions();
        Assert.Equal(0, options.BatchSize);
        options.Validate();   // 0 is accepted: it means automatic
        // 9,901 training rows or more: the fixed 100 of every release before (Fashion-MNIST 8×8: 45,000 after the split).
        Assert.Equal(100, options.BatchSizeFor(45_000));
        Assert.Equal(100, options.BatchSizeFor(10_000));
        Assert.Equal(100, options.BatchSizeFor(9_901));
        // Fewer: ⌈rows / 100⌉, so an epoch is still 100 steps, down to batches of 10 (tables under 1,000 rows).
        Assert.Equal(99, options.BatchSizeFor(9_900));
        Assert.Equal(20, options.BatchSizeFor(2_000));
        Assert.Equal(11, options.BatchSizeFor(1_078));
        Assert.Equal(10, options.BatchSizeFor(1_000));
        Assert.Equal(10, options.BatchSizeFor(876));
        Assert.Equal(10, options.BatchSizeFor(90));
        Assert.Equal(10, options.BatchSizeFor(1));
        // The length and the patience are RNADE's, whatever the rows.
        var small = options.Resolved(876);
        Assert.Equal((10, 200, 10), (small.BatchSize, small.MaxEpochs, small.EarlyStoppingPatience));
        Assert.Equal(100, options.Resolved(null).BatchSize);   // a stream of unknown length is large data
        Assert.Equal(0, options.BatchSize);                    // resolving copies; the caller's options are left alone
        // A batch the user sets is kept.
        options.BatchSize = 37;
        Assert.Equal((37, 37, 37), (options.BatchSizeFor(90), options.BatchSizeFor(45_000), options.Resolved(null).BatchSize));
        options.BatchSize = -1;
        var e = Assert.Throws<ArgumentOutOfRangeException>(options.Validate);
        Assert.Contains("BatchSize", e.Message);
        // RNADE keeps its fixed batch: 0 is refused there.
        Assert.Throws<ArgumentOutOfRangeException>(() => new RnadeOptions { BatchSize = 0 }.Validate());
    }

    /// <summary>On large data the options a fit runs with are the former defaults, setting by setting: the loop's batch of
    /// 100 and every other default unchanged.</summary>
    [Fact]
    public void OnLargeDataTheResolvedOptionsAreTheFormerDefaults()
    {
        var resolved = new DeepRnadeOptions().Resolved(45_000);
        var defaults = new DeepRnadeOptions();
        Assert.Equal(GradientTrainingOptions.Defaults.BatchSize, resolved.BatchSize);
        Assert.Equal(RnadeOptions.Defaults.MaxEpochs, resolved.MaxEpochs);
        Assert.Equal(GradientTrainingOptions.Defaults.EarlyStoppingPatience, resolved.EarlyStoppingPatience);
        foreach (var p in typeof(DeepRnadeOptions).GetProperties().Where(p => p.CanRead && p.CanWrite && p.Name != nameof(GradientTrainingOptions.BatchSize)))
            Assert.Equal(p.GetValue(defaults), p.GetValue(resolved));
    }

    /// <summary>A fit trains with the resolved batch: on a small table the default is the explicit batch of 10 (and not
    /// 100), on 10,000 training rows the explicit 100, in memory and streamed alike.</summary>
    [Fact]
    public void AFitTrainsWithTheResolvedBatch()
    {
        static DeepRnadeOptions Options(int batch) => new()
        {
            HiddenUnits = 6, Components = 2, MaxEpochs = 2, EarlyStoppingPatience = 0, ValidationFraction = 0, Seed = 3, BatchSize = batch,
        };
        var small = ConformanceData.Real(300, 5);
        byte[] automatic = DeepRnadeModel.Fit(small, Options(0)).ToBytes();
        Assert.Equal(DeepRnadeModel.Fit(small, Options(10)).ToBytes(), automatic);
        Assert.NotEqual(DeepRnadeModel.Fit(small, Options(100)).ToBytes(), automatic);
        // Streamed through a buffer holding the pass (no split: the stream's length is known) it is the same model.
        Assert.Equal(automatic, DeepRnadeModel.Fit(RowStream.From(small), Options(0), null, new StreamingOptions { ShuffleBufferRows = 300 }).ToBytes());

        var large = ConformanceData.Real(10_000, 6);
        var oneEpoch = Options(0);
        oneEpoch.MaxEpochs = 1;
        var explicitBatch = Options(100);
        explicitBatch.MaxEpochs = 1;
        Assert.Equal(DeepRnadeModel.Fit(large, explicitBatch).ToBytes(), DeepRnadeModel.Fit(large, oneEpoch).ToBytes());
    }
}
