using System.Diagnostics;
using DeepDensity.Samples;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Training;

// `-- data-parallel [epochs]`: the same data trained by two simulated workers (docs/scaling.md, "Beyond one machine").
if (args.Length > 0 && args[0] == "data-parallel")
{
    DataParallelSample.Run(args.Length > 1 && int.TryParse(args[1], out var dpEpochs) ? dpEpochs : 20);
    return;
}

// The main job: train RNADE on the shipped 8×8 digits, report held-out log-likelihood and the most anomalous test rows.
int epochs = args.Length > 0 && int.TryParse(args[0], out var e) ? e : 40;
var data = SampleData.LoadDigits();
Console.WriteLine($"Digits 8x8 (dequantised, 63 dims): {data.Train.Rows} train / {data.Validation.Rows} validation / {data.Test.Rows} test rows");

var options = new RnadeOptions { HiddenUnits = 50, Components = 10, MaxEpochs = epochs, BatchSize = 50, LearningRate = 2e-3f, Seed = 1 };
var clock = Stopwatch.StartNew();
var model = RnadeModel.Fit(data.Train, options, data.Validation,
    new ConsoleProgress(every: 5));
var summary = model.TrainingSummary!;
Console.WriteLine($"Trained RNADE (H={model.HiddenUnits}, K={model.Components}) in {clock.Elapsed.TotalSeconds:F1} s; best epoch {summary.BestEpoch} of {summary.EpochsRun}.");

var testLd = model.LogDensity(data.Test);
Console.WriteLine($"Held-out average log-likelihood: {testLd.Average():F3} nats (train {model.AverageLogDensity(data.Train):F3}, validation {model.AverageLogDensity(data.Validation):F3})");
Console.WriteLine("Most anomalous test rows (lowest log-density):");
foreach (var (ld, i) in testLd.Select((v, i) => (v, i)).OrderBy(t => t.v).Take(5))
    Console.WriteLine($"  row {i,4}  label {data.TestLabels[i]}  log-density {ld,9:F2}");
