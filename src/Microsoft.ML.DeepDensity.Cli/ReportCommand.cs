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
        // Standard output only says the HTML file was written (LogWriter): a reader gone away changes nothing.
        console = console with { Out = new LogWriter(console.Out) };
        var model = ScoringCommands.ModelArgument();
        var data = new Argument<string>("data") { Description = "CSV to score and show (with the model's feature columns)." };
        var label = new Option<string?>("--label") { Description = "Anomaly label column: normal vs anomalous histogram and the ROC curve." };
        var shape = new Option<string?>("--image-shape") { Description = "HxW: draw rows as H×W images (default: when the column count is a perfect square of at least 8×8)." };
        var top = new Option<int>("--top") { Description = "Most anomalous rows to list and draw.", DefaultValueFactory = _ => 10 };
        var samples = new Option<int?>("--samples") { Description = "Generated samples to draw for image-shaped data (default 24, at most 200); rnnrnade: real and generated sequences drawn as line plots (default 4, at most 200). 0 draws none: the report has no such section." };
        var length = new Option<int?>("--length") { Description = "rnnrnade: frames per generated sequence (default: the median training sequence length; at most 100000)." };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the generated samples.", DefaultValueFactory = _ => 0 };
        var output = DdmlApp.OutOption("HTML file to write (self-contained: images are embedded).", required: true);
        var command = new System.CommandLine.Command("report", "Write a self-contained HTML report: training curves, log-density histogram, ROC, most anomalous rows, images.")
        {
            model, data, label, shape, top, samples, length, seed, output,
        };
        return command.WithBody(console, parse =>
        {
            AtomicFile.CheckTarget(parse.GetValue(output)!, (parse.GetValue(model), "model file"), (parse.GetValue(data), "data file"));
            var ml = new MLContext(seed: 1);
            var loaded = ModelZip.Load(ml, parse.GetValue(model)!);
            string dataFile = parse.GetValue(data)!;
            int topRows = parse.GetValue(top);
            if (topRows < 1 || parse.GetValue(length) < 1)
                throw new CliException(ExitCodes.UsageError, "--top and --length must be at least 1.");
            if (parse.GetValue(samples) is int negative and < 0)
                throw new CliException(ExitCodes.UsageError, FormattableString.Invariant($"--samples {negative}: must not be negative (0 draws none, and the report has no samples section)."));
            // With --samples 0 nothing is drawn, so what shapes the draws would do nothing (nothing is silently dropped).
            void NoDrawsToShape(params Option[] shaping)
            {
                if (parse.GetValue(samples) != 0) return;
                foreach (var given in shaping.Where(o => parse.GetResult(o) is { Implicit: false }))
                    throw new CliException(ExitCodes.UsageError, $"{given.Name} has no effect with --samples 0: no samples are drawn; drop {given.Name} or ask for samples.");
            }
            string title = $"DeepDensity report: {Path.GetFileName(loaded.File)} on {Path.GetFileName(dataFile)}";
            if (loaded.IsSequenceModel)
            {
                if (parse.GetValue(shape) is not null) throw new CliException(ExitCodes.UsageError, "--image-shape is for row models; rnnrnade draws sequences as line plots.");
                if (parse.GetValue(samples) is int many && many > DensityReportOptions.MaxSequencesDrawn)
                    throw new CliException(ExitCodes.UsageError, FormattableString.Invariant($"--samples {many}: at most {DensityReportOptions.MaxSequencesDrawn} real and generated sequences are drawn (as lines of one plot)."));
                NoDrawsToShape(seed, length);
                if (parse.GetValue(length) is int frames && frames > DensityReportOptions.MaxSampleLength)
                    throw new CliException(ExitCodes.UsageError, FormattableString.Invariant($"--length {frames}: generated sequences of at most {DensityReportOptions.MaxSampleLength} frames are drawn."));
                var sequenceOptions = new DensityReportOptions
                {
                    Title = title, FeatureNames = loaded.Metadata!.FeatureColumns, TrainingHistory = SequenceEvaluation.History(loaded.Metadata),
                    TopRows = topRows, Seed = parse.GetValue(seed), SampleLength = parse.GetValue(length),
                };
                if (parse.GetValue(samples) is int drawn) sequenceOptions.SequenceCount = drawn;
                string sequenceHtml = SequenceEvaluation.Report(loaded, dataFile, parse.GetValue(label), sequenceOptions);
                WarnIfOneClass(console, sequenceOptions.Labels, dataFile, parse.GetValue(label), "frame rows");
                return Write(console, parse.GetValue(output)!, sequenceHtml);
            }
            if (parse.GetValue(length) is not null) throw new CliException(ExitCodes.UsageError, "--length is for the sequence model (rnnrnade).");
            int sampleCount = parse.GetValue(samples) ?? new DensityReportOptions().SampleCount;
            if (sampleCount > DensityReportOptions.MaxImagesDrawn)
                throw new CliException(ExitCodes.UsageError, FormattableString.Invariant($"--samples {sampleCount}: at most {DensityReportOptions.MaxImagesDrawn} generated samples are drawn (as images in one grid)."));
            var imageShape = ParseShape(parse.GetValue(shape), loaded.Model.Dimension);
            // Generated samples are drawn only as images: on data that is not image-shaped --samples and --seed would be
            // taken and do nothing (nothing is silently dropped), so they are refused before the data is scored.
            if (DensityReport.ImageShape(loaded.Model.Dimension, new DensityReportOptions { ImageShape = imageShape }) is null)
                // --samples 0 asks for what happens here anyway (no samples): accepted.
                foreach (var given in new Option[] { samples, seed }.Where(o => parse.GetResult(o) is { Implicit: false } && !(o == samples && sampleCount == 0)))
                    throw new CliException(ExitCodes.UsageError, $"{given.Name} has no effect here: generated samples are drawn as images, and the model's " +
                        (loaded.Model.Dimension == 1 ? "one column is not image-shaped (one value is no image)" // 1 is a square, but not drawn
                            : FormattableString.Invariant($"{loaded.Model.Dimension} columns are not image-shaped ({ImageShapeReason(loaded.Model.Dimension)})")) + $"; give --image-shape HxW to draw them, or drop {given.Name}.");
            NoDrawsToShape(seed);
            var scored = ScoringCommands.ScoreTable(ml, loaded, dataFile, parse.GetValue(label));
            var options = new DensityReportOptions
            {
                Title = title,
                FeatureNames = loaded.FeatureColumns,
                RowNames = scored.Table.Lines.Select(l => FormattableString.Invariant($"line {l}")).ToArray(),
                Labels = scored.Labels,
                TrainingHistory = loaded.Metadata is { } m ? SequenceEvaluation.History(m) : null,
                ImageShape = imageShape,
                TopRows = topRows,
                SampleCount = sampleCount,
                Seed = parse.GetValue(seed),
            };
            options.Facts.Add(new("data", $"{dataFile} ({CsvTable.Count(scored.Table.Rows.Count, "row")})"));
            if (loaded.Metadata is { } meta)
                options.Facts.Add(new("trained", $"ddml fit --model {meta.Model} on {meta.TrainFile} ({CsvTable.Count(meta.TrainRows, "row")}), {meta.StepsRun}" +
                                                 (meta.StoppedByUser ? ", stopped by the user" : "")));
            options.Facts.Add(new("anomaly threshold", ThresholdFact(loaded, scored)));
            string html = DensityReport.Create(loaded.Model, scored.Features, options);
            WarnIfOneClass(console, scored.Labels, dataFile, parse.GetValue(label), "rows");
            return Write(console, parse.GetValue(output)!, html);
        });
    }

    /// <summary>The PredictedLabel threshold, the rows that set it (as <c>fit</c> printed them; zips from before it was
    /// recorded say the contamination only) and how many of the report's rows it flags: "score &gt; 38.03 (the (1 - 0.01)
    /// quantile of 100 held-out rows); flags 12 of 536 rows (2.2 %)".</summary>
    internal static string ThresholdFact(LoadedModel loaded, ScoredTable scored)
    {
        var density = loaded.Density;
        int flagged = scored.PredictedLabel.Count(b => b), rows = scored.PredictedLabel.Length;
        string source = loaded.Metadata?.ThresholdSource is string from
            ? string.Create(CultureInfo.InvariantCulture, $"the (1 - {density.Contamination}) quantile of {from}")
            : string.Create(CultureInfo.InvariantCulture, $"contamination {density.Contamination}");
        return string.Create(CultureInfo.InvariantCulture, $"score > {density.Threshold:G6} ({source}); flags {flagged} of {CsvTable.Count(rows, "row")}") +
               (rows > 0 ? string.Create(CultureInfo.InvariantCulture, $" ({100.0 * flagged / rows:0.0} %)") : "");
    }

    /// <summary>As <c>evaluate</c>: a label column with one class has no ROC curve; the report says so in its page, and
    /// the warning goes to standard error too (the run still succeeds).</summary>
    private static void WarnIfOneClass(DdmlConsole console, IReadOnlyList<bool>? labels, string dataFile, string? labelColumn, string items)
    {
        if (labels is not null && ScoringCommands.OneClass(labels, items) is { } which)
            ScoringCommands.WarnOneClass(console, dataFile, labelColumn!, which, "the report has no ROC curve; the other parts are written");
    }

    private static int Write(DdmlConsole console, string outFile, string html)
    {
        AtomicFile.WriteText(outFile, w => w.Write(html));
        console.Out.WriteLine(FormattableString.Invariant($"wrote {outFile} ({html.Length / 1024} KiB)"));
        return ExitCodes.Success;
    }

    /// <summary>Why a column count is not drawn as images without --image-shape: not a perfect square, or a square smaller than 8×8 (a table).</summary>
    private static string ImageShapeReason(int dimension)
    {
        int side = (int)Math.Round(Math.Sqrt(dimension));
        return side * side == dimension
            ? FormattableString.Invariant($"a perfect square, but smaller than {DensityReportOptions.MinAutomaticImageSide}×{DensityReportOptions.MinAutomaticImageSide}: read as a table")
            : "not a perfect square";
    }

    private static (int, int)? ParseShape(string? text, int dimension)
    {
        if (text is null) return null;
        var parts = text.ToLowerInvariant().Split('x');
        if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int h)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int w) || h < 1 || w < 1)
            throw new CliException(ExitCodes.UsageError, $"--image-shape '{text}': expected HxW, e.g. 28x28.");
        if ((long)h * w != dimension) // in long: 4 × 1073741840 overflowed an int to 64
            throw new CliException(ExitCodes.UsageError, FormattableString.Invariant($"--image-shape {h}x{w} has {(long)h * w} pixels but the model has {dimension} features."));
        return (h, w);
    }
}
