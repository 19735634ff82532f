using System.CommandLine;
using System.Globalization;
using Microsoft.ML.DeepDensity.Reporting;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Cli;

/// <summary><c>ddml report model.zip data.csv --out report.html</c>: <see cref="DensityReport"/> on a CSV file.</summary>
public static class ReportCommand
{
    public static System.CommandLine.Command Create(DdmlConsole console)
    {
        var model = ScoringCommands.ModelArgument();
        var data = new Argument<string>("data") { Description = "CSV to score and show (with the model's feature columns)." };
        var label = new Option<string?>("--label") { Description = "Anomaly label column: normal vs anomalous histogram and the ROC curve." };
        var shape = new Option<string?>("--image-shape") { Description = "HxW: draw rows as H×W images (default: when the column count is a perfect square)." };
        var top = new Option<int>("--top") { Description = "Most anomalous rows to list and draw.", DefaultValueFactory = _ => 10 };
        var samples = new Option<int>("--samples") { Description = "Generated samples to draw for image-shaped data.", DefaultValueFactory = _ => 24 };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the generated samples.", DefaultValueFactory = _ => 0 };
        var output = DdmlApp.OutOption("HTML file to write (self-contained: images are embedded).", required: true);
        var command = new System.CommandLine.Command("report", "Write a self-contained HTML report: training curves, log-density histogram, ROC, most anomalous rows, images.")
        {
            model, data, label, shape, top, samples, seed, output,
        };
        return command.WithBody(console, parse =>
        {
            var ml = new MLContext(seed: 1);
            var loaded = ModelZip.Load(ml, parse.GetValue(model)!);
            string dataFile = parse.GetValue(data)!;
            var scored = ScoringCommands.ScoreTable(ml, loaded, dataFile, parse.GetValue(label));
            int topRows = parse.GetValue(top), sampleCount = parse.GetValue(samples);
            if (topRows < 1 || sampleCount < 1) throw new CliException(ExitCodes.UsageError, "--top and --samples must be at least 1.");
            var options = new DensityReportOptions
            {
                Title = $"DeepDensity report: {Path.GetFileName(loaded.File)} on {Path.GetFileName(dataFile)}",
                FeatureNames = loaded.FeatureColumns,
                RowNames = scored.Table.Lines.Select(l => $"line {l}").ToArray(),
                Labels = scored.Labels,
                TrainingHistory = loaded.Metadata?.History.Select(h => new TrainingProgress(h.Epoch, h.Train ?? double.NaN, h.Validation,
                    h.ExamplesPerSecond, TimeSpan.FromSeconds(h.Seconds), 0f, h.Note)).ToArray(),
                ImageShape = ParseShape(parse.GetValue(shape), loaded.Model.Dimension),
                TopRows = topRows,
                SampleCount = sampleCount,
                Seed = parse.GetValue(seed),
            };
            options.Facts.Add(new("data", $"{dataFile} ({scored.Table.Rows.Count} rows)"));
            if (loaded.Metadata is { } meta)
                options.Facts.Add(new("trained", $"ddml fit --model {meta.Model} on {meta.TrainFile} ({meta.TrainRows} rows), {meta.EpochsRun} epochs" +
                                                 (meta.StoppedByUser ? ", stopped by the user" : "")));
            string html = DensityReport.Create(loaded.Model, scored.Features, options);
            string outFile = parse.GetValue(output)!;
            AtomicFile.WriteText(outFile, w => w.Write(html));
            console.Out.WriteLine($"wrote {outFile} ({html.Length / 1024} KiB)");
            return ExitCodes.Success;
        });
    }

    private static (int, int)? ParseShape(string? text, int dimension)
    {
        if (text is null) return null;
        var parts = text.ToLowerInvariant().Split('x');
        if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int h)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int w) || h < 1 || w < 1)
            throw new CliException(ExitCodes.UsageError, $"--image-shape '{text}': expected HxW, e.g. 28x28.");
        if (h * w != dimension)
            throw new CliException(ExitCodes.UsageError, $"--image-shape {h}x{w} has {h * w} pixels but the model has {dimension} features.");
        return (h, w);
    }
}
