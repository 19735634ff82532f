using System.CommandLine;
using System.Globalization;
using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;

namespace Microsoft.ML.DeepDensity.Cli;

/// <summary>The log-densities of a CSV's rows under a loaded model, through its ML.NET transformer.</summary>
public sealed record ScoredTable(CsvTable Table, int[] FeatureColumns, RowMatrix Features, float[] LogDensity, float[] StandardError,
    float[] Score, bool[] PredictedLabel, bool[]? Labels);

/// <summary><c>ddml score</c>, <c>sample</c>, <c>evaluate</c> and <c>info</c>.</summary>
public static class ScoringCommands
{
    private static readonly CultureInfo Ci = CultureInfo.InvariantCulture;

    public static System.CommandLine.Command Score(DdmlConsole console)
    {
        var model = ModelArgument();
        var data = new Argument<string>("data") { Description = "CSV with the model's feature columns (other columns are passed through)." };
        var output = DdmlApp.OutOption("Output CSV (default: standard output): the input columns plus LogDensity, StandardError (estimate models), Score, PredictedLabel.", required: false);
        var command = new System.CommandLine.Command("score", "Append log-density, anomaly score and predicted label to every row of a CSV.") { model, data, output };
        return command.WithBody(console, parse =>
        {
            if (parse.GetValue(output) is string target) AtomicFile.CheckTarget(target, (parse.GetValue(model), "model file"), (parse.GetValue(data), "data file"));
            var ml = new MLContext(seed: 1);
            var loaded = ModelZip.Load(ml, parse.GetValue(model)!);
            if (loaded.IsSequenceModel) return SequenceCommands.Score(console, ml, loaded, parse.GetValue(data)!, parse.GetValue(output));
            var scored = ScoreTable(ml, loaded, parse.GetValue(data)!, labelColumn: null);
            bool withError = loaded.Model.DensityKind == DensityKind.Estimate;
            var extra = withError ? new[] { "LogDensity", "StandardError", "Score", "PredictedLabel" } : new[] { "LogDensity", "Score", "PredictedLabel" };
            var keep = PassThroughColumns(console, scored.Table, extra, scored.FeatureColumns);
            void Write(TextWriter w)
            {
                var t = scored.Table;
                w.WriteLine(string.Join(",", keep.Select(c => t.Header[c]).Concat(extra).Select(CsvTable.Escape)));
                for (int r = 0; r < t.Rows.Count; r++)
                {
                    var row = t.Rows[r];
                    var cells = keep.Select(c => CsvTable.Escape(row[c])).ToList();
                    cells.Add(CsvTable.Format(scored.LogDensity[r]));
                    if (withError) cells.Add(CsvTable.Format(scored.StandardError[r]));
                    cells.Add(CsvTable.Format(scored.Score[r]));
                    cells.Add(scored.PredictedLabel[r] ? "true" : "false");
                    w.WriteLine(string.Join(",", cells));
                }
            }
            WriteOutput(console, parse.GetValue(output), Write);
            if (withError && UnknownStandardErrors(scored.StandardError) is string unknown)
                console.Error.WriteLine($"ddml: note: {unknown}.");
            return ExitCodes.Success;
        });
    }

    /// <summary>"3 of 100 rows have StandardError Infinity (unknown: ...)", or null when every standard error is known.</summary>
    internal static string? UnknownStandardErrors(float[] standardErrors)
    {
        int unknown = standardErrors.Count(float.IsPositiveInfinity);
        return unknown == 0 ? null
            : FormattableString.Invariant($"{unknown} of {CsvTable.Count(standardErrors.Length, "row")} {(unknown == 1 ? "has" : "have")} StandardError Infinity (unknown: the estimate rests on fewer than ") +
              FormattableString.Invariant($"{Microsoft.ML.DeepDensity.Estimation.ImportanceSampler.MinEffectiveSamples} effective importance samples, so it may be off by far more than its weights show; a larger EvaluationSamples (IWAE, NVIL) or AisRuns (an RBM's log Z, shared by every row) may help)");
    }

    /// <summary>The mean of the known (finite) standard errors and how many are unknown (+∞).</summary>
    internal static string MeanEstimateError(float[] standardErrors)
    {
        var known = standardErrors.Where(float.IsFinite).ToArray();
        int unknown = standardErrors.Length - known.Length;
        string mean = known.Length == 0 ? "unknown" : string.Create(Ci, $"{known.Average(x => (double)x):F4}");
        return unknown == 0 ? $"{mean} (Monte Carlo standard error per row)"
            : $"{mean} (Monte Carlo standard error per row{(known.Length == 0 ? "" : $", over the {CsvTable.Count(known.Length, "row")} where it is known")}; " +
              $"{UnknownStandardErrors(standardErrors)})";
    }

    public static System.CommandLine.Command Sample(DdmlConsole console)
    {
        var model = ModelArgument();
        var count = new Option<int>("--count", "-n") { Description = "Number of rows (rnnrnade: sequences) to draw.", DefaultValueFactory = _ => 100 };
        var seed = new Option<ulong>("--seed") { Description = "Seed: the same seed gives the same rows (row or sequence i depends only on seed and i).", DefaultValueFactory = _ => 0 };
        var length = new Option<int?>("--length") { Description = FormattableString.Invariant($"rnnrnade: frames per sequence (default: the median training sequence length, else {SequenceCommands.DefaultSampleLength}).") };
        var output = DdmlApp.OutOption("Output CSV (default: standard output), with the model's feature columns (rnnrnade: sequence-id, order and feature columns, one row per frame).", required: false);
        var command = new System.CommandLine.Command("sample", "Draw rows (or sequences, as frame rows) from the model.") { model, count, seed, length, output };
        return command.WithBody(console, parse =>
        {
            int n = parse.GetValue(count);
            if (n < 1) throw new CliException(ExitCodes.UsageError, FormattableString.Invariant($"--count must be at least 1 (got {n})."));
            if (parse.GetValue(output) is string target) AtomicFile.CheckTarget(target, (parse.GetValue(model), "model file"));
            var ml = new MLContext(seed: 1);
            var loaded = ModelZip.Load(ml, parse.GetValue(model)!);
            if (loaded.IsSequenceModel)
                return SequenceCommands.Sample(console, loaded, n, parse.GetValue(length), parse.GetValue(seed), parse.GetValue(output));
            if (parse.GetValue(length) is not null)
                throw new CliException(ExitCodes.UsageError, "--length is for the sequence model (rnnrnade); this model draws rows.");
            // The lazy view of the draw, read row by row as it is written (WriteSamples): any count up to int.MaxValue
            // costs one block of rows. The first interrupt ends it (in-process; the tool's own Ctrl+C ends the process).
            if (loaded.UnitsNote("the samples are") is string note) console.Error.WriteLine($"ddml: note: {note}.");
            var view = loaded.Density.GenerateSamples(ml, n, parse.GetValue(seed), console.Interrupts.Stop);
            WriteSamples(console, view, loaded.Density.FeatureColumnName, loaded.SampleHeader, parse.GetValue(output));
            return ExitCodes.Success;
        });
    }

    /// <summary>
    /// Writes the rows of a <c>GenerateSamples</c> view under <paramref name="header"/> as one cursor draws them, each
    /// value in round-trip format (<see cref="CsvTable.Format"/>), so memory is the view's block of rows and a chunk of
    /// text whatever the count. The first row is drawn before the output is opened: a draw that fails at once leaves nothing,
    /// not even a header on standard output. A file is written through <see cref="AtomicFile"/>: a draw that fails or is
    /// interrupted part-way leaves no file (standard output, a pipe or a device has the lines written before).
    /// </summary>
    private static void WriteSamples(DdmlConsole console, IDataView view, string column, string[] header, string? outFile)
    {
        var col = view.Schema[column];
        int width = ((VectorDataViewType)col.Type).Size;
        using var cursor = view.GetRowCursor(new[] { col });
        var getter = cursor.GetGetter<VBuffer<float>>(col);
        VBuffer<float> buffer = default;
        var row = new float[width];
        bool Next()
        {
            if (!cursor.MoveNext()) return false;
            getter(ref buffer);
            buffer.CopyTo(row);
            return true;
        }
        if (!Next()) throw new InvalidOperationException("The draw has no rows."); // --count is at least 1
        WriteOutput(console, outFile, w =>
        {
            w.WriteLine(string.Join(",", header.Select(CsvTable.Escape)));
            // The lines go out in chunks of 64 Ki characters: standard output flushes every write (a system call a line).
            string newline = w.NewLine;
            var chunk = new char[1 << 16];
            var cell = new char[64]; // a value in round-trip format is at most 15 characters ("-1.2345679E-05")
            int used = 0;
            void Append(ReadOnlySpan<char> text)
            {
                if (chunk.Length - used < text.Length)
                {
                    w.Write(chunk, 0, used);
                    used = 0;
                }
                text.CopyTo(chunk.AsSpan(used));
                used += text.Length;
            }
            do
            {
                for (int j = 0; j < width; j++)
                {
                    if (j > 0) Append(",");
                    if (row[j].TryFormat(cell, out int written, "R", Ci)) Append(cell.AsSpan(0, written));
                    else Append(CsvTable.Format(row[j]));
                }
                Append(newline);
            }
            while (Next());
            w.Write(chunk, 0, used);
        });
    }

    public static System.CommandLine.Command Evaluate(DdmlConsole console)
    {
        var model = ModelArgument();
        var data = new Argument<string>("test") { Description = "Test CSV with the model's feature columns." };
        var label = new Option<string?>("--label") { Description = "Anomaly label column (1/true/anomaly vs 0/false/normal; rnnrnade: one per frame row): adds AUROC and ML.NET's anomaly metrics." };
        var command = new System.CommandLine.Command("evaluate", "Average log-density (with standard error); with --label also AUROC and ML.NET's anomaly-detection metrics.") { model, data, label };
        return command.WithBody(console, parse =>
        {
            var ml = new MLContext(seed: 1);
            var loaded = ModelZip.Load(ml, parse.GetValue(model)!);
            if (loaded.IsSequenceModel) return SequenceEvaluation.Evaluate(console, ml, loaded, parse.GetValue(data)!, parse.GetValue(label));
            var s = ScoreTable(ml, loaded, parse.GetValue(data)!, parse.GetValue(label));
            var w = console.Out;
            var (mean, se) = MeanAndStandardError(s.LogDensity);
            w.WriteLine(FormattableString.Invariant($"rows                    {s.LogDensity.Length}"));
            w.WriteLine(string.Create(Ci, $"average log-density     {mean:F4}{PlusMinus(se)} ({StandardErrorNote(s.LogDensity, "row")}; {loaded.Model.DensityKind})"));
            if (loaded.Model.DensityKind == DensityKind.Estimate)
                w.WriteLine($"mean estimate error     {MeanEstimateError(s.StandardError)}");
            w.WriteLine(string.Create(Ci, $"predicted anomalies     {s.PredictedLabel.Count(b => b)} (threshold score {loaded.Density.Threshold:G6}, contamination {loaded.Density.Contamination})"));
            if (s.Labels is { } labels && !OneClassLabels(console, labels, parse.GetValue(data)!, parse.GetValue(label)!, "rows", ""))
                WriteAnomalyMetrics(w, ml, labels, s.Score, s.PredictedLabel, "rows", "");
            return ExitCodes.Success;
        });
    }

    /// <summary>
    /// A label column with one class (a clean hold-out set: every row normal; or every row anomalous) has no ROC curve, so
    /// AUROC and the detection rate are undefined: says so on standard output (the figures that are defined were printed
    /// above it) and as a warning on standard error, and returns true; evaluate then ends with exit code 0 like any other
    /// run. False when both classes are present.
    /// </summary>
    internal static bool OneClassLabels(DdmlConsole console, bool[] labels, string dataFile, string labelColumn, string items, string prefix)
    {
        if (OneClass(labels, items) is not { } which) return false;
        console.Out.WriteLine($"{prefix}labelled anomalies".PadRight(24) + FormattableString.Invariant($"{labels.Count(b => b)} of {labels.Length} {items}"));
        console.Out.WriteLine($"{prefix}AUROC".PadRight(24) + $"undefined: {which} (AUROC needs both classes)");
        WarnOneClass(console, dataFile, labelColumn, which, "AUROC and the detection rate are undefined and not printed; the other figures are");
        return true;
    }

    /// <summary>The standard-error warning of a one-class label column (<c>evaluate</c> and <c>report</c>), ending with
    /// what the command does about it.</summary>
    internal static void WarnOneClass(DdmlConsole console, string dataFile, string labelColumn, string which, string consequence)
        => console.Error.WriteLine($"ddml: warning: {Path.GetFileName(dataFile)}: the label column '{labelColumn}' has only one class ({which}), so {consequence}.");

    /// <summary>What a label column with one class says ("every one of the N rows is labelled normal"), or null when
    /// both classes are present.</summary>
    internal static string? OneClass(IReadOnlyList<bool> labels, string items)
    {
        int positives = labels.Count(b => b);
        if (positives > 0 && positives < labels.Count) return null;
        return positives == 0 ? FormattableString.Invariant($"every one of the {labels.Count} {items} is labelled normal") : FormattableString.Invariant($"every one of the {labels.Count} {items} is labelled anomalous");
    }

    /// <summary>ML.NET's anomaly-detection metrics (AUROC, detection rate at a number of false positives = a tenth of the
    /// normal items, plus one) of <paramref name="score"/> against <paramref name="labels"/> (both classes present).</summary>
    internal static void WriteAnomalyMetrics(TextWriter w, MLContext ml, bool[] labels, float[] score, bool[] predicted, string items, string prefix)
    {
        int positives = labels.Count(b => b), falsePositives = Math.Max(1, labels.Length - positives) / 10 + 1;
        var view = ml.Data.LoadFromEnumerable(Enumerable.Range(0, labels.Length).Select(i => new MetricRow
        {
            Label = labels[i] ? 1f : 0f, Score = score[i], PredictedLabel = predicted[i],
        }));
        var metrics = ml.AnomalyDetection.Evaluate(view, falsePositiveCount: falsePositives);
        w.WriteLine($"{prefix}labelled anomalies".PadRight(24) + FormattableString.Invariant($"{positives} of {labels.Length} {items}"));
        w.WriteLine($"{prefix}AUROC".PadRight(24) + metrics.AreaUnderRocCurve.ToString("F4", Ci));
        w.WriteLine($"{prefix}detection rate at {CsvTable.Count(falsePositives, "false positive")}  " + metrics.DetectionRateAtFalsePositiveCount.ToString("F4", Ci));
    }

    public static System.CommandLine.Command Info(DdmlConsole console)
    {
        var model = ModelArgument();
        var command = new System.CommandLine.Command("info", "Describe a model zip: kind, options, dimension, training summary, file format versions.") { model };
        return command.WithBody(console, parse =>
        {
            var ml = new MLContext(seed: 1);
            var loaded = ModelZip.Load(ml, parse.GetValue(model)!);
            var meta = loaded.Metadata;
            var w = console.Out;
            if (loaded.IsSequenceModel)
            {
                w.WriteLine($"file                    {Path.GetFileName(loaded.File)} (ML.NET model zip)");
                w.WriteLine($"kind                    RnnRnade (ddml model '{meta!.Model}'): exact log-density of sequences, per frame row");
                w.WriteLine(FormattableString.Invariant($"input                   Real frames, dimension {meta.FeatureColumns.Length}; sequence id '{meta.SequenceIdColumn}', order '{meta.OrderColumn}'"));
                w.WriteLine($"features                {Abbreviate(meta.FeatureColumns)}");
                // The frame rows' threshold (Score = −log p(x_t | x_<t) > it: PredictedLabel), stored in the model like a row model's.
                float threshold = loaded.Transformer.GetSequenceAnomalyThreshold(ml);
                w.WriteLine(string.Create(Ci, $"anomaly threshold       score > {threshold:G6} per frame row") +
                            (meta.Contamination is double c ? string.Create(Ci, $" (contamination {c})") : ""));
                var (sformat, skind, spayload) = ModelZip.EngineFileVersion(loaded.SequenceModel!);
                w.WriteLine(FormattableString.Invariant($"file format             engine format {sformat} (this build reads {ModelZip.CurrentEngineFormat}), {skind} payload version {spayload}"));
                if (meta.TrainSequences is int sequences)
                    w.WriteLine(FormattableString.Invariant($"training sequences      {sequences} (median length {CsvTable.Count(meta.MedianSequenceLength ?? 0, "frame")}: the default length of 'ddml sample')"));
                WriteTraining(w, meta);
                return ExitCodes.Success;
            }
            var m = loaded.Model;
            var (format, kind, payload) = ModelZip.EngineFileVersion(m);
            w.WriteLine($"file                    {Path.GetFileName(loaded.File)} (ML.NET model zip{(meta is null ? ", no ddml metadata" : "")})");
            w.WriteLine($"kind                    {kind}{(meta is null ? "" : $" (ddml model '{meta.Model}')")}");
            w.WriteLine($"log-density             {m.DensityKind}");
            w.WriteLine(FormattableString.Invariant($"input                   {m.InputDomain}, dimension {m.Dimension}"));
            w.WriteLine($"features                {Abbreviate(loaded.FeatureColumns)}");
            w.WriteLine(string.Create(Ci, $"anomaly threshold       score > {loaded.Density.Threshold:G6} (contamination {loaded.Density.Contamination})"));
            if (loaded.UnitsNote("the threshold, scores and samples are") is string note) w.WriteLine($"note                    {note}");
            w.WriteLine(FormattableString.Invariant($"file format             engine format {format} (this build reads {ModelZip.CurrentEngineFormat}), {kind} payload version {payload}"));
            if (meta is not null) WriteTraining(w, meta);
            return ExitCodes.Success;
        });
    }

    private static void WriteTraining(TextWriter w, ToolMetadata meta)
    {
        w.WriteLine(FormattableString.Invariant($"written by              {meta.Tool}, {meta.CreatedUtc:u}"));
        if (meta.LabelColumn is not null) w.WriteLine($"label column            {meta.LabelColumn}");
        if (meta.ExcludedColumns.Length > 0) w.WriteLine($"excluded columns        {string.Join(", ", meta.ExcludedColumns.Select(CsvTable.Escape))}");
        w.WriteLine(FormattableString.Invariant($"training data           {meta.TrainFile}, {meta.TrainRows} {(meta.Model == SequenceCommands.ModelName ? "frame rows" : "rows")}") + (meta.ValidationFile is null ? "" : $"; validation {meta.ValidationFile}"));
        w.WriteLine($"training                {meta.StepsRun}" + (meta.BestEpoch is int b ? FormattableString.Invariant($", best {meta.Unit ?? "epoch"} {b}") : "") +
                    (meta.StoppedEarly ? ", stopped early (no validation gain)" : "") + (meta.StoppedByUser ? ", stopped by the user (Ctrl+C)" : "") +
                    LastFigures(meta));
        if (meta.MeanTrainLogDensity is double mean)
            w.WriteLine(string.Create(Ci, $"mean train log-density  {mean:F4}") + (meta.Model == SequenceCommands.ModelName ? " per frame" : ""));
        w.WriteLine("options");
        foreach (var (name, value) in meta.Options) w.WriteLine($"  {name,-28} {value}");
    }

    /// <summary>", last train X, valid Y" of the last step that has a training figure, as its progress line showed it: a
    /// likelihood, or for a trainer without one (a Gaussian RBM) the reconstruction error, labelled.</summary>
    private static string LastFigures(ToolMetadata meta)
    {
        var last = meta.ToProgress().LastOrDefault(p => TrainingDisplay.Figures(p, "F4").Train != "-");
        if (last is null) return "";
        var (what, train, valid, note) = TrainingDisplay.Figures(last, "F4");
        // The binary RBM's figures are pseudo-log-likelihoods (its progress lines' note says so): so does this line.
        string kind = what.Length > 0 ? $" {note}" : last.Metrics?.ContainsKey("pseudo_ll") == true ? " (pseudo-log-likelihoods)" : "";
        return $", last train {what}{train}" + (valid == "-" ? "" : $", valid {what}{valid}") + kind;
    }

    internal static Argument<string> ModelArgument() => new("model") { Description = "Model zip written by 'ddml fit' (or any ML.NET zip holding one DeepDensity model)." };

    /// <summary>Reads <paramref name="dataFile"/>, checks it has the model's columns, and scores it through the ML.NET transformer.</summary>
    public static ScoredTable ScoreTable(MLContext ml, LoadedModel loaded, string dataFile, string? labelColumn)
    {
        // Before the CSV: a pipeline that cannot take the vector ddml would feed it fails whatever the file holds, and a
        // file with the pipeline's own columns (A, B, C) was told it lacked 'f0', a column the model was never trained on.
        CheckForeignPipelineInput(ml, loaded);
        var table = CsvTable.Read(dataFile);
        var names = loaded.FeatureColumns;
        var columns = new int[names.Length];
        for (int j = 0; j < names.Length; j++)
        {
            columns[j] = Array.IndexOf(table.Header, names[j]);
            if (columns[j] < 0)
                throw CliException.DataError(dataFile, table.HeaderLine, 0, null, $"the column '{names[j]}' that the model was trained on is missing from the header.");
        }
        var features = table.Features(columns);
        var labels = labelColumn is null ? null : table.Labels(table.ColumnIndex(labelColumn, "label"));
        var input = DataViews.FromMatrix(ml, features, loaded.Density.FeatureColumnName);
        try
        {
            var view = loaded.Transformer.Transform(input);
            var logDensity = DataViews.Singles(view, loaded.Density.LogDensityColumnName);
            var standardError = loaded.Density.StandardErrorColumnName is string se ? DataViews.Singles(view, se) : new float[logDensity.Length];
            var score = DataViews.Singles(view, loaded.Density.ScoreColumnName);
            var predicted = DataViews.Booleans(view, loaded.Density.PredictedLabelColumnName);
            return new ScoredTable(table, columns, features, logDensity, standardError, score, predicted, labels);
        }
        catch (DataValidationException e)
        {
            throw FitCommand.MapDataError(e, table.Positions, columns, names);
        }
    }

    /// <summary>A zip ddml did not write is given one feature vector; a pipeline that starts elsewhere (Concatenate of
    /// scalar columns, a text column) cannot bind it. ML.NET's binding error names an internal stage, so say what happened.</summary>
    private static void CheckForeignPipelineInput(MLContext ml, LoadedModel loaded)
    {
        if (loaded.Metadata is not null) return;
        var vector = DataViews.FromMatrix(ml, new RowMatrix(0, loaded.Model.Dimension), loaded.Density.FeatureColumnName);
        try { loaded.Transformer.GetOutputSchema(vector.Schema); }
        catch (ArgumentException e) when (e is not DataValidationException)
        {
            var inputs = string.Join(", ", loaded.InputSchema.Where(c => !c.IsHidden).Select(c => $"{c.Name} ({c.Type})"));
            throw CliException.ModelError(loaded.File, $"the ML.NET pipeline in the zip has input columns {inputs}, and ddml feeds a zip it did not " +
                $"write only the DeepDensity stage's '{loaded.Density.FeatureColumnName}' vector, read from the CSV columns {Abbreviate(loaded.FeatureColumns)} " +
                $"({e.Message.Split('\n')[0]}); score this pipeline through ML.NET (mlContext.Model.LoadWithLiveDensityModels), or train it with 'ddml fit'.", e);
        }
    }

    /// <summary>
    /// The columns of <paramref name="table"/> that <c>score</c> passes through: all but those named like a column it
    /// appends (<paramref name="appended"/>: the scores of an earlier run, e.g. a scored file scored again), which are
    /// replaced, and said so on standard error, so that the output never has a column name twice (ddml could not read
    /// it back). A column the model reads (<paramref name="modelColumns"/>) with such a name is an error.
    /// </summary>
    internal static int[] PassThroughColumns(DdmlConsole console, CsvTable table, string[] appended, IEnumerable<int> modelColumns)
    {
        var model = new HashSet<int>(modelColumns);
        var keep = new List<int>();
        var replaced = new List<string>();
        for (int c = 0; c < table.Header.Length; c++)
        {
            if (!appended.Contains(table.Header[c])) { keep.Add(c); continue; }
            if (model.Contains(c))
                throw CliException.DataError(table.File, table.HeaderLine, c + 1, table.Header[c],
                    $"the model reads this column, but 'ddml score' writes a column of this name ({string.Join(", ", appended)}); rename it and fit again.");
            replaced.Add(table.Header[c]);
        }
        if (replaced.Count > 0)
            console.Error.WriteLine($"ddml: note: {Path.GetFileName(table.File)} already has the column{(replaced.Count == 1 ? "" : "s")} " +
                                    $"{string.Join(", ", replaced)} (a scored file?): replaced by this model's.");
        return keep.ToArray();
    }

    /// <summary>" ± 0.1234", or nothing for an undefined standard error (one row or sequence, or a −∞ among them: NaN,
    /// which was printed as such).</summary>
    internal static string PlusMinus(double standardError) => double.IsNaN(standardError) ? "" : string.Create(Ci, $" ± {standardError:F4}");

    /// <summary>What the standard error after an average is over, or why there is none.</summary>
    internal static string StandardErrorNote(IReadOnlyCollection<float> values, string item)
    {
        int infinite = values.Count(v => !float.IsFinite(v));
        return values.Count < 2 ? $"one {item}: no standard error"
            : infinite > 0 ? FormattableString.Invariant($"{CsvTable.Count(infinite, item)} of {values.Count} with log-density -Infinity, impossible under the model: no standard error")
            : $"standard error over {item}s";
    }

    public static (double Mean, double StandardError) MeanAndStandardError(float[] values)
    {
        double mean = values.Average(v => (double)v);
        if (values.Length < 2) return (mean, double.NaN);
        double ss = values.Sum(v => (v - mean) * (v - mean));
        return (mean, Math.Sqrt(ss / (values.Length - 1) / values.Length));
    }

    /// <summary>Column names as a list, each quoted as in a CSV header when it holds a comma or a quote (so "size, m" reads
    /// as one name); long lists abbreviated.</summary>
    internal static string Abbreviate(string[] names)
    {
        var n = names.Select(CsvTable.Escape).ToArray();
        return n.Length <= 8 ? string.Join(", ", n) : string.Join(", ", n.Take(6)) + FormattableString.Invariant($", ... {n[^1]} ({n.Length} columns)");
    }

    /// <summary>Writes to a file atomically, or to standard output.</summary>
    internal static void WriteOutput(DdmlConsole console, string? path, Action<TextWriter> write)
    {
        if (path is null) { write(console.Out); console.Out.Flush(); }
        else AtomicFile.WriteText(path, write);
    }

    private sealed class MetricRow
    {
        public float Label { get; set; }
        public float Score { get; set; }
        public bool PredictedLabel { get; set; }
    }
}
