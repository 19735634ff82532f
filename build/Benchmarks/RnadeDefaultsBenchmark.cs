using System.Diagnostics;
using DeepDensity.Samples;
using Microsoft.ML.DeepDensity;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Training;

namespace DeepDensity.Benchmarks;

/// <summary>
/// Checks Deep RNADE's defaults (<see cref="DeepRnadeOptions.Defaults"/>; since session 19 an ML.NET estimator of its own,
/// <c>DensityEstimation.DeepRnade()</c>) against the plain alternatives a user would try instead, and against the plain
/// reference: RNADE with its own defaults, the estimator next to it in the catalog. Each variant is fitted as a user's
/// <c>Fit(train, options)</c> runs (10 % held out, early stopping, the best held-out epoch kept) on Fashion-MNIST 8×8
/// (50k train, 10k validation, 10k test; real-valued, 63 dimensions) and scored on the validation and test rows.
/// </summary>
public sealed class RnadeDefaultsBenchmark : IBenchmark
{
    public string Name => "rnade-defaults";
    public string Description => "Deep RNADE defaults vs plain alternatives and RNADE's defaults on Fashion-MNIST 8x8 " +
                                 "(--seeds 1 --train 50000 --only NAME,NAME --no-rnade; --grid \"lr=...;hidden=...;orderings=...;decay=...\")";

    private static readonly OptionsVariant<DeepRnadeOptions>[] Variants =
    [
        new("defaults", _ => { }),
        new("one ordering", o => o.Orderings = 1),
        new("one fixed order", o => { o.OrderAgnostic = false; o.Orderings = 1; }),
        new("one hidden layer", o => o.HiddenLayers = 1),
        new("hidden 100", o => o.HiddenUnits = 100),
        new("rate decay 0.97 per epoch", o => o.LearningRateDecay = 0.97f),
        new("no direct connections", o => o.DirectConnections = false),
    ];

    private static readonly Dictionary<string, Action<DeepRnadeOptions, float>> GridKeys = new()
    {
        ["lr"] = (o, f) => o.LearningRate = f,
        ["hidden"] = (o, f) => o.HiddenUnits = (int)f,
        ["layers"] = (o, f) => o.HiddenLayers = (int)f,
        ["orderings"] = (o, f) => o.Orderings = (int)f,
        ["decay"] = (o, f) => o.LearningRateDecay = f,
        ["patience"] = (o, f) => o.EarlyStoppingPatience = (int)f,
    };

    public int Run(BenchmarkArgs args)
    {
        if (!SampleData.FashionMnistAvailable())
        {
            Console.WriteLine($"Fashion-MNIST not found in {SampleData.FashionMnistDirectory}; skipping.");
            return 0;
        }
        var study = new DefaultsStudy<DeepRnadeOptions>(args, Variants, "1", GridKeys);
        var data = SampleData.LoadFashionMnist8x8();
        var train = data.Train.Slice(0, Math.Min(args.Int("train", 50_000), data.Train.Rows));
        var d = new DeepRnadeOptions();
        Console.WriteLine($"Fashion-MNIST 8×8: train {train.Rows} ({d.ValidationFraction:P0} held out by Fit), scored on validation {data.Validation.Rows}, test {data.Test.Rows}; " +
                          $"Deep RNADE defaults: {d.HiddenLayers}×{d.HiddenUnits} {d.Connectivity}{(d.DirectConnections ? " + direct" : "")}, K {d.Components}, " +
                          $"{d.Orderings} orderings, {d.Optimizer} lr {d.LearningRate:G3} (decay {d.LearningRateDecay:G3}), batch {d.BatchSize}, ≤ {d.MaxEpochs} epochs, patience {d.EarlyStoppingPatience}");
        Console.WriteLine($"seeds {string.Join(",", study.Seeds)}; {Environment.ProcessorCount} cores; {CoreSpeed.Describe()}");

        foreach (var v in study.Variants)
            foreach (int seed in study.Seeds)
            {
                var o = new DeepRnadeOptions { Seed = (ulong)seed };
                v.Set(o);
                study.Add(v.Name, o.MaxEpochs, seed, Fit(() => DeepRnadeModel.Fit(train, o), data));
            }
        // The plain reference: RNADE with its own defaults, fitted and scored the same way.
        if (!args.Flag("no-rnade"))
            foreach (int seed in study.Seeds)
            {
                var o = new RnadeOptions { Seed = (ulong)seed };
                study.Add("reference: RNADE defaults", o.MaxEpochs, seed, Fit(() => RnadeModel.Fit(train, o), data));
            }
        study.PrintTable();
        return 0;
    }

    private static StudyOutcome Fit(Func<DensityModel> fit, DataSplit data)
    {
        var clock = Stopwatch.StartNew();
        DensityModel model;
        try { model = fit(); }
        catch (TrainingDivergedException) { return StudyOutcome.Diverged(clock.Elapsed.TotalSeconds); }
        double seconds = clock.Elapsed.TotalSeconds;
        var summary = model switch { DeepRnadeModel m => m.TrainingSummary, RnadeModel m => m.TrainingSummary, _ => null };
        return new StudyOutcome(model.AverageLogDensity(data.Validation), model.AverageLogDensity(data.Test), seconds, summary?.EpochsRun, summary?.BestEpoch);
    }
}
