using System.Globalization;
using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Training;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Cli;

/// <summary>
/// The sequence model (RNN-RNADE) on frame rows: one CSV row per time step, a sequence-id column and an order column.
/// It has its own ML.NET transformer (not a DensityTransformer), so every command has a sequence path (evaluate and
/// report: <see cref="SequenceEvaluation"/>).
/// </summary>
public static class SequenceCommands
{
    public const string ModelName = "rnnrnade";
    /// <summary>Frames per generated sequence when the model zip does not record the median training length.</summary>
    public const int DefaultSampleLength = 20;
    /// <summary>Longest recorded median training length that 'sample' takes as its default length (a longer one needs --length).</summary>
    public const int MaxDefaultSampleLength = 1_000_000;

    public static int Fit(DdmlConsole console, string trainFile, string outFile, string? validationFile, string? sequenceId, string? orderName, string? labelColumn,
        string[] excluded, ulong? seed, int? epochs, double contamination, string[] parameters,
        Transforms.DensityThresholdRows thresholdRows = Transforms.DensityEstimatorDefaults.ThresholdRows)
    {
        if (sequenceId is null || orderName is null)
            throw new CliException(ExitCodes.UsageError, "--model rnnrnade needs --sequence-id COL and --order COL (one row per time step).");
        if (sequenceId == orderName)
            throw new CliException(ExitCodes.UsageError, $"--sequence-id and --order name the same column '{sequenceId}': the order of the rows within a sequence is another column.");
        if (labelColumn is not null && (labelColumn == sequenceId || labelColumn == orderName))
            throw new CliException(ExitCodes.UsageError, $"--label '{labelColumn}' is also the {(labelColumn == sequenceId ? "--sequence-id" : "--order")} column: the label is a column of its own.");
        var engine = new RnnRnadeOptions();
        var request = new FitRequest(seed, epochs, contamination, parameters, console.Interrupts.Stop, console.Interrupts.Abort, null!, _ => { });
        EngineOptions.Apply(engine, request); // a bad option is a usage error before the data is read
        // So is one set where it has no effect (rnnrnade's defaults do not adapt to the data).
        EngineOptions.CheckSettingEffects(engine, validationFile is not null, adaptsToData: false);
        var table = CsvTable.Read(trainFile);
        int idIndex = table.ColumnIndex(sequenceId, "sequence-id"), orderIndex = table.ColumnIndex(orderName, "order");
        var skip = excluded.Select(c => table.ColumnIndex(c, "excluded")).Append(idIndex).Append(orderIndex).ToList();
        if (labelColumn is not null) skip.Add(table.ColumnIndex(labelColumn, "label"));
        if (labelColumn is not null) table.Labels(table.ColumnIndex(labelColumn, "label")); // checked now, not at report time
        var columns = table.NumericColumns(skip);
        if (columns.Length == 0) throw CliException.DataError(trainFile, 2, 0, null, $"no numeric feature columns (every column is excluded or text){CsvTable.SeparatorHint(table.Header)}.");
        FitCommand.CheckFeatureNames(table, columns.Append(idIndex).Append(orderIndex));
        ModelZip.EnsureReadable(engine, columns.Length, outFile); // before the frames are grouped and trained on
        var names = columns.Select(c => table.Header[c]).ToArray();
        var data = SequenceFrames.Read(table, columns, idIndex, orderIndex);
        var frames = data.Frames;
        // Validation frame rows (e.g. the later part of one long series), read by name like the row models' file.
        CsvTable? validTable = validationFile is null ? null : CsvTable.Read(validationFile);
        var validColumns = validTable is null ? null : names.Select(n => validTable.ColumnIndex(n, "feature")).ToArray();
        var valid = validTable is null ? null
            : SequenceFrames.Read(validTable, validColumns!, validTable.ColumnIndex(sequenceId, "sequence-id"), validTable.ColumnIndex(orderName, "order"));

        var ml = new MLContext(seed: 1);
        var history = new List<TrainingProgress>();
        var view = data.View(ml, Enumerable.Range(0, frames.Rows).ToArray());
        var validView = valid?.View(ml, Enumerable.Range(0, valid.Frames.Rows).ToArray());
        console.Out.WriteLine($"fit {ModelName}: {CsvTable.Count(data.Sequences.Count, "sequence")}, {CsvTable.Count(frames.Rows, "frame")} × {CsvTable.Count(frames.Columns, "feature")} from {Path.GetFileName(trainFile)}" +
                              (valid is null ? "" : $", {CsvTable.Count(valid.Sequences.Count, "validation sequence")} ({CsvTable.Count(valid.Frames.Rows, "frame")}) from {Path.GetFileName(validationFile)}") + ".");
        FitCommand.ReportTextColumns(console, table, columns, skip, labelColumn is not null);
        if (RnnRnadeModel.WindowsNote(data.Sequences, engine.TrainingWindow) is string windows) console.Out.WriteLine(windows);
        var display = new TrainingDisplay(console.Out, console.LiveProgress);
        // The bar's length: the epochs the fit runs at most, from the engine's own count of the sequences and windows it
        // trains on (its seeded held-out split when there is no validation file; MaxEpochs 0 sets the epochs from it).
        // The estimator groups the frame rows as SequenceFrames does, so the engine is given these very sequences.
        long examples = RnnRnadeModel.TrainingExamples(data.Sequences, engine, withValidation: valid is not null);
        int maxEpochs = engine.EpochsFor(examples);
        // Nothing held out (a few short sequences: neither they nor their windows split): as many examples as with a file.
        bool noneHeldOut = valid is null && engine.ValidationFraction > 0 && examples == RnnRnadeModel.TrainingExamples(data.Sequences, engine, withValidation: true);
        console.Out.WriteLine($"training: {CsvTable.Count(examples, "training example")} an epoch (sequences, long ones as windows), at most {CsvTable.Count(maxEpochs, "epoch")}" +
                              (engine.MaxEpochs == 0 ? " (MaxEpochs 0: set from them)." : "."));
        var transformer = display.Run(ModelName, maxEpochs, progress =>
        {
            var estimator = ml.DensityEstimation.RnnRnade(new Transforms.RnnRnadeFrameEstimator.Options
            {
                FeatureColumnName = ModelZip.FeatureColumn, SequenceIdColumnName = SequenceFrames.IdColumn, OrderColumnName = SequenceFrames.OrderColumn,
                Contamination = contamination, ThresholdRows = thresholdRows, ModelOptions = engine, CancellationToken = console.Interrupts.Abort,
                Progress = new Progress(history, progress),
            });
            try { return estimator.Fit(view, validView); }
            catch (DataValidationException e) { throw FitCommand.MapFitDataError(e, (table.Positions, columns), validTable is null ? null : (validTable.Positions, validColumns!), names); }
            catch (ArgumentException e) when (EngineOptions.IsOption(engine, e.ParamName)) { throw EngineOptions.Refused(e); }
            catch (ArgumentException e) { throw new CliException(ExitCodes.TrainingFailed, $"cannot train {ModelName} on this data: {e.Message}", e); }
        });
        console.Interrupts.Abort.ThrowIfCancellationRequested();
        var summary = transformer.Model.TrainingSummary;
        double meanPerFrame = transformer.Model.LogDensity(data.Sequences).Sum(v => (double)v) / data.Sequences.TotalFrames;
        var metadata = new ToolMetadata
        {
            Tool = $"ddml {typeof(FitCommand).Assembly.GetName().Version?.ToString(3)}",
            Model = ModelName, FeatureColumns = names, LabelColumn = labelColumn, ExcludedColumns = excluded,
            SequenceIdColumn = sequenceId, OrderColumn = orderName,
            TrainFile = Path.GetFileName(trainFile), TrainRows = frames.Rows,
            ValidationFile = validationFile is null ? null : Path.GetFileName(validationFile),
            TrainSequences = data.Sequences.Count, MedianSequenceLength = Reporting.DensityReport.MedianLength(data.Sequences),
            Options = EngineOptions.Describe(engine), History = ToolMetadata.FromHistory(history),
            EpochsRun = summary?.EpochsRun ?? history.Count, BestEpoch = summary?.BestEpoch, StoppedEarly = summary?.StoppedEarly ?? false,
            StoppedByUser = console.Interrupts.StopRequested, MeanTrainLogDensity = meanPerFrame, Contamination = contamination, CreatedUtc = DateTime.UtcNow,
        };
        ModelZip.Save(ml, transformer, transformer.Model, view.Schema, metadata, outFile);
        console.Out.WriteLine(FormattableString.Invariant($"saved {outFile}: {ModelName} (exact log-density per frame), {CsvTable.Count(names.Length, "feature")} per frame, ") +
                              FormattableString.Invariant($"{metadata.StepsRun}, mean training log-density {meanPerFrame:F4} per frame."));
        if (transformer.ThresholdSource is string thresholdSource)
            console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"anomaly threshold: score > {transformer.Threshold:G6} per frame row, the (1 - {contamination}) quantile of {thresholdSource}."));
        foreach (var fallback in transformer.ThresholdFallbacks) console.Error.WriteLine(fallback.CliMessage());
        if (noneHeldOut) console.Error.WriteLine(FitCommand.NoHeldOutNote(engine, CsvTable.Count(data.Sequences.Count, "training sequence") + " (or of their windows)"));
        if (console.Interrupts.StopRequested)
        {
            console.Error.WriteLine($"ddml: interrupted: training was stopped early; the best model so far was saved to {outFile}.");
            return ExitCodes.Interrupted;
        }
        return ExitCodes.Success;
    }

    /// <summary>Per frame row (in file order): LogDensity = log p(x_t | x_&lt;t) of its sequence, Score, PredictedLabel.</summary>
    public static int Score(DdmlConsole console, MLContext ml, LoadedModel loaded, string dataFile, string? outFile)
    {
        var meta = loaded.Metadata!;
        var data = SequenceFrames.Read(dataFile, meta);
        var (logDensity, score, predicted) = data.Score(ml, loaded.Transformer, meta.FeatureColumns);
        var table = data.Table;
        var extra = new[] { "LogDensity", "Score", "PredictedLabel" };
        var keep = ScoringCommands.PassThroughColumns(console, table, extra,
            data.FeatureColumns.Append(table.ColumnIndex(meta.SequenceIdColumn!, "sequence-id")).Append(table.ColumnIndex(meta.OrderColumn!, "order")));
        ScoringCommands.WriteOutput(console, outFile, w =>
        {
            w.WriteLine(string.Join(",", keep.Select(c => table.Header[c]).Concat(extra).Select(CsvTable.Escape)));
            for (int r = 0; r < table.Rows.Count; r++)
                w.WriteLine(string.Join(",", keep.Select(c => CsvTable.Escape(table.Rows[r][c]))) + "," + CsvTable.Format(logDensity[r]) + "," +
                            CsvTable.Format(score[r]) + "," + (predicted[r] ? "true" : "false"));
        });
        return ExitCodes.Success;
    }

    /// <summary>
    /// <paramref name="count"/> sequences of <paramref name="length"/> frames (default: the median training length
    /// recorded in the zip, else <see cref="DefaultSampleLength"/>) as frame rows: id "sample{i}", order 0..length−1,
    /// then the training feature columns. Sequence i depends only on (seed, i).
    /// </summary>
    public static int Sample(DdmlConsole console, LoadedModel loaded, int count, int? length, ulong seed, string? outFile)
    {
        var meta = loaded.Metadata!;
        int frames = length ?? meta.MedianSequenceLength ?? DefaultSampleLength;
        if (frames < 1) throw new CliException(ExitCodes.UsageError, FormattableString.Invariant($"--length must be at least 1 (got {frames})."));
        // One draw is one array of count × frames × frame values (the engine's limit): say so in the options' terms.
        int d = loaded.SequenceModel!.FrameSize;
        long mostFrames = Array.MaxLength / Math.Max(1, d);
        // The default length is the zip's recorded median training length: a message about it must not blame --length.
        string lengthIs = length is null ? FormattableString.Invariant($"the model's median training length {frames} (the default --length)") : FormattableString.Invariant($"--length {frames}");
        if (length is null && frames > MaxDefaultSampleLength) // a forged zip (a billion rows, median half of them) must not allocate gigabytes unasked
            throw new CliException(ExitCodes.UsageError, FormattableString.Invariant($"{lengthIs} is the default only up to {MaxDefaultSampleLength} frames: give --length."));
        if (frames > mostFrames)
            throw new CliException(ExitCodes.UsageError, FormattableString.Invariant($"{lengthIs}: at most {mostFrames} frames of {d} values can be drawn at once; give a shorter --length."));
        if (length is null && (long)count * frames > mostFrames)
            throw new CliException(ExitCodes.UsageError, FormattableString.Invariant($"--count {count} sequences of {lengthIs} are more than one draw holds ") +
                                                         FormattableString.Invariant($"({mostFrames} frames of {d} values): give a shorter --length or a smaller --count."));
        if ((long)count * frames > mostFrames)
            throw new CliException(ExitCodes.UsageError, FormattableString.Invariant($"--count {count}: at most {mostFrames / frames} sequences of {frames} frames of {d} values ") +
                                                         "can be drawn at once (draw fewer; sequence i depends only on --seed and i).");
        var sequences = loaded.SequenceModel!.Sample(count, frames, seed);
        ScoringCommands.WriteOutput(console, outFile, w =>
        {
            w.WriteLine(string.Join(",", new[] { meta.SequenceIdColumn!, meta.OrderColumn! }.Concat(meta.FeatureColumns).Select(CsvTable.Escape)));
            var cells = new string[d + 2];
            for (int i = 0; i < sequences.Count; i++)
            {
                var s = sequences.Sequence(i);
                for (int t = 0; t < frames; t++)
                {
                    cells[0] = FormattableString.Invariant($"sample{i}");
                    cells[1] = t.ToString(CultureInfo.InvariantCulture);
                    for (int j = 0; j < d; j++) cells[j + 2] = CsvTable.Format(s[t * d + j]);
                    w.WriteLine(string.Join(",", cells));
                }
            }
        });
        return ExitCodes.Success;
    }

    private sealed class Progress(List<TrainingProgress> history, IProgress<TrainingProgress> display) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) { history.Add(value); display.Report(value); }
    }
}
