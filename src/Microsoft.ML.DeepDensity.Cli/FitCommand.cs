using System.CommandLine;
using System.Globalization;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Cli;

/// <summary><c>ddml fit train.csv --model NAME --out model.zip</c>.</summary>
public static class FitCommand
{
    public static System.CommandLine.Command Create(DdmlConsole console)
    {
        // Standard output is fit's log; its output is the model zip, which a log reader gone away must not cost.
        console = console with { Out = new LogWriter(console.Out) };
        var train = new Argument<string>("train") { Description = "Training CSV (header row; numeric columns are features unless excluded)." };
        var model = new Option<string>("--model", "-m") { Description = $"Model: {string.Join(" | ", ModelCatalog.AllNames)}.", Required = true };
        // Model names are case-insensitive (--model RNADE is rnade): the parser hands the body the canonical name, and an
        // unknown name is a usage error listing the valid ones. (AcceptOnlyFromAmong compares case-sensitively.)
        model.CustomParser = result =>
        {
            string given = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
            var name = ModelCatalog.CanonicalName(given);
            if (name is null) result.AddError($"unknown model '{given}' for --model (choose one of: {string.Join(", ", ModelCatalog.AllNames)}; case does not matter).");
            return name;
        };
        model.CompletionSources.Add(ModelCatalog.AllNames.ToArray());
        var output = DdmlApp.OutOption("Model zip to write (an ordinary ML.NET model).", required: true);
        var validation = new Option<string?>("--validation") { Description = "Validation CSV for early stopping (default: a held-out fraction of the training rows)." };
        var label = new Option<string?>("--label") { Description = "Label column (excluded from the features; recorded in the model)." };
        var exclude = new Option<string[]>("--exclude") { Description = "Columns that are not features (comma-separated or repeated: --exclude A,B or --exclude A --exclude B)." };
        var seed = new Option<ulong?>("--seed") { Description = "Seed of initialisation, shuffling and the validation split (default: the model's, 1)." };
        var epochs = new Option<int?>("--epochs") { Description = "Maximum epochs (EM iterations for deepgmm)." };
        var contamination = new Option<double>("--contamination") { Description = "Expected anomaly fraction: the PredictedLabel threshold is the (1 - F) quantile of the scores of rows the model did not train on (the --validation rows, else the ones it held out), with fewer than max(20, 1/F) of those but at least 10, a normal approximation of that quantile (mean + t sd of their scores, the normal prediction bound, at least their largest); fewer than 10, the training rows (with a warning). On a trial's small tables (106 and 341 rows, 10 and 34 held out) the share of new normal rows flagged at F 0.01 went from 5-51 % to 1-28 % (docs/mlnet.md, Small tables).", DefaultValueFactory = _ => 0.01 }.Invariant();
        var thresholdRows = new Option<Transforms.DensityThresholdRows>("--threshold-rows")
        {
            Description = "Rows whose scores set the PredictedLabel threshold: HeldOut (rows the model did not train on, as --contamination says; rnnrnade: frames of the held-out sequences) or Training (every training row; flags more of new rows the more the model overfits).",
            DefaultValueFactory = _ => Transforms.DensityEstimatorDefaults.ThresholdRows,
        };
        var sequenceId = new Option<string?>("--sequence-id") { Description = "rnnrnade: the column naming each row's sequence (one row per time step)." };
        var order = new Option<string?>("--order") { Description = "rnnrnade: the column ordering the rows of a sequence (numbers, or times such as 2026-03-29T00:30:00Z)." };
        var parameters = new Option<string[]>("--param", "-p") { Description = "Any engine option as Name=Value (e.g. -p HiddenUnits=100 -p Layers=4,4). Repeatable." };

        var command = new System.CommandLine.Command("fit", "Train a density model on a CSV file and save it as an ML.NET model zip.")
        {
            train, model, output, validation, label, exclude, seed, epochs, contamination, thresholdRows, parameters, sequenceId, order,
        };
        return command.WithBody(console, parse =>
        {
            // Before any work, for every model (rnnrnade's estimator refused it only after training, as an internal error).
            if (parse.GetValue(contamination) is var c && !(c >= 0 && c <= 0.5))
                throw new CliException(ExitCodes.UsageError, $"--contamination must be in [0, 0.5] (got {c.ToString(CultureInfo.InvariantCulture)}).");
            // A row model has no sequences: --sequence-id/--order were silently ignored (the order column became a feature).
            if (parse.GetValue(model) != SequenceCommands.ModelName && (parse.GetValue(sequenceId) is not null || parse.GetValue(order) is not null))
                throw new CliException(ExitCodes.UsageError, $"--sequence-id and --order are for --model {SequenceCommands.ModelName} (frame rows); " +
                                                             $"--model {parse.GetValue(model)} reads one row per item.");
            AtomicFile.CheckTarget(parse.GetValue(output)!, (parse.GetValue(train), "training file"), (parse.GetValue(validation), "validation file")); // before training, not after it
            console.Interrupts.CommandStopsCleanly = true; // Ctrl+C: stop training, keep the best model (Interrupts)
            return Body(parse);
        });

        int Body(ParseResult parse) => parse.GetValue(model) == SequenceCommands.ModelName
            ? SequenceCommands.Fit(console, parse.GetValue(train)!, parse.GetValue(output)!, parse.GetValue(validation), parse.GetValue(sequenceId), parse.GetValue(order),
                parse.GetValue(label), Split(parse.GetValue(exclude)), parse.GetValue(seed), parse.GetValue(epochs), parse.GetValue(contamination),
                parse.GetValue(parameters) ?? Array.Empty<string>(), parse.GetValue(thresholdRows))
            : Run(console,
            parse.GetValue(train)!, parse.GetValue(model)!, parse.GetValue(output)!, parse.GetValue(validation), parse.GetValue(label),
            Split(parse.GetValue(exclude)), parse.GetValue(seed), parse.GetValue(epochs), parse.GetValue(contamination),
            parse.GetValue(parameters) ?? Array.Empty<string>(), parse.GetValue(thresholdRows));
    }

    internal static string[] Split(string[]? values)
        => (values ?? Array.Empty<string>()).SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToArray();


    /// <summary>The engine options as trained, for the model's metadata (<c>ddml info</c>): a Deep GMM's Layers left unset
    /// is the trained network's automatic choice, e.g. "2,2 (automatic)", not the [4, 4] the unset property reads.</summary>
    private static SortedDictionary<string, string> TrainedOptions(object engineOptions, object model)
    {
        var options = EngineOptions.Describe(engineOptions);
        if (engineOptions is Microsoft.ML.DeepDensity.Models.DeepGmm.DeepGmmOptions { LayersAutomatic: true }
            && model is Microsoft.ML.DeepDensity.Models.DeepGmm.DeepGmmModel gmm)
            options[nameof(Microsoft.ML.DeepDensity.Models.DeepGmm.DeepGmmOptions.Layers)] = string.Join(",", gmm.Layers) + " (automatic)";
        return options;
    }
    private static int Run(DdmlConsole console, string trainFile, string modelName, string outFile, string? validationFile,
        string? labelColumn, string[] excluded, ulong? seed, int? epochs, double contamination, string[] parameters,
        Transforms.DensityThresholdRows thresholdRows)
    {
        var entry = ModelCatalog.Find(modelName);
        // Options are checked before the data is read (a long read, then "MaxEpochs must be at least 1"); the model's
        // defaults adapt to the data later, on a fresh options object.
        var given = Activator.CreateInstance(entry.EngineOptionsType)!;
        EngineOptions.Apply(given, new FitRequest(seed, epochs, contamination, parameters, default, default, null!, _ => { }));
        // Settings set where they have no effect, before a long read (-p Momentum=0.5 with Adam read the whole file first).
        EngineOptions.CheckSettingEffects(given, validationFile is not null, entry.AdaptsToData);
        // The tables' cells are let go once the features are read (a large file's text is several times its float
        // matrix); errors found while training need only where each row came from.
        var (data, valid, names, columns, validColumns, where, validWhere) = ReadTrainingData(console, trainFile, validationFile, labelColumn, excluded, entry.Name);
        // Return the cells' memory now, before training allocates its own: a collection in a few hundred milliseconds
        // once, against the text's gigabyte beside the model's buffers (170 MB of CSV peaked at 1.6 GB, 0.6 GB after).
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);

        var ml = new MLContext(seed: 1);
        var history = new List<TrainingProgress>();
        var display = new TrainingDisplay(console.Out, console.LiveProgress);
        var notes = new List<string>();
        var trainView = DataViews.FromMatrix(ml, data);
        var validView = valid is null ? null : DataViews.FromMatrix(ml, valid);
        var forward = new Recording(history);
        var request = new FitRequest(seed, epochs, contamination, parameters, console.Interrupts.Stop, console.Interrupts.Abort, forward, notes.Add)
        {
            ThresholdRows = thresholdRows,
        };
        // The estimator refuses a setting set where it has no effect when it is created: after the defaults adapted to the
        // data (a Gaussian IWAE standardises; a Bernoulli one does not), before training.
        Func<IDataView, IDataView?, Transforms.DensityTransformer> fit;
        object engineOptions;
        try { (fit, engineOptions) = entry.Create(ml, request, data); }
        catch (ArgumentException e) { throw EngineOptions.Refused(e); }
        foreach (var n in notes) console.Out.WriteLine(n);
        ModelZip.EnsureReadable(engineOptions, data.Columns, outFile); // before training, not after it
        // Every family's rules on the rows, as the estimator logs them (TrainingRowChecks); a held-out part of none is the
        // note after training (NoHeldOutNote), in ddml's terms.
        if (data.Rows >= TrainingRowChecks.MinimumRows)
        {
            if (TrainingRowChecks.FewRowsWarning(engineOptions, data.Rows, data.Columns) is string fewRows)
                console.Error.WriteLine($"ddml: warning: {fewRows}.");
            if (TrainingRowChecks.DuplicateRowsWarning(data, engineOptions, valid is not null) is string copies)
                console.Error.WriteLine($"ddml: warning: {copies.Replace("pass a validation view", "pass --validation FILE", StringComparison.Ordinal)}.");
        }
        var epochsProperty = engineOptions.GetType().GetProperty("MaxEpochs") ?? engineOptions.GetType().GetProperty("MaxIterations");
        int maxEpochs = epochsProperty?.GetValue(engineOptions) as int? ?? 100;
        // The RBM's, IWAE's and NVIL's default length (MaxEpochs 0) follows the training rows: the bar's size is that many epochs.
        if (engineOptions is Microsoft.ML.DeepDensity.Models.Rbm.RbmOptions rbm)
            maxEpochs = rbm.EpochsFor(valid is null ? data.Rows - (long)(data.Rows * rbm.ValidationFraction) : data.Rows);
        else if (engineOptions is Microsoft.ML.DeepDensity.Estimation.ImportanceSampledOptions latent)
            maxEpochs = latent.EpochsFor(valid is null ? data.Rows - (long)(data.Rows * latent.ValidationFraction) : data.Rows);
        var transformer = display.Run(entry.Name, maxEpochs, progress =>
        {
            forward.Display = progress;
            try { return fit(trainView, validView); }
            catch (DataValidationException e) { throw MapFitDataError(e, (where, columns), validWhere is null ? null : (validWhere, validColumns!), names); }
            // A setting refused at Fit (what the feature column's width settles: an RBM's exact log Z) is an option error.
            catch (ArgumentException e) when (EngineOptions.IsOption(engineOptions, e.ParamName)) { throw EngineOptions.Refused(e); }
            catch (ArgumentException e) { throw new CliException(ExitCodes.TrainingFailed, $"cannot train {entry.Name} on this data: {e.Message}", e); }
        });
        console.Interrupts.Abort.ThrowIfCancellationRequested();

        var model = transformer.Model;
        var summary = model.TrainingSummary;
        var meanTrain = model.AverageLogDensity(data);
        // The numbering of the progress lines (a Deep GMM numbers its EM iterations on from its pretraining); the summary's
        // BestEpoch is already in that numbering.
        int numberOffset = summary is { History.Count: > 0 } ? summary.History[0].Epoch - 1 : 0;
        var metadata = new ToolMetadata
        {
            Tool = $"ddml {typeof(FitCommand).Assembly.GetName().Version?.ToString(3)}",
            Model = entry.Name,
            FeatureColumns = names,
            LabelColumn = labelColumn,
            ExcludedColumns = excluded,
            TrainFile = Path.GetFileName(trainFile),
            TrainRows = data.Rows,
            ValidationFile = validationFile is null ? null : Path.GetFileName(validationFile),
            Options = TrainedOptions(engineOptions, model),
            History = ToolMetadata.FromHistory(history),
            EpochsRun = summary?.EpochsRun ?? history.Count,
            BestEpoch = summary?.BestEpoch,
            Unit = summary?.History.LastOrDefault()?.Unit,
            StoppedEarly = summary?.StoppedEarly ?? false,
            StoppedByUser = console.Interrupts.StopRequested,
            ThresholdSource = transformer.ThresholdSource,
            MeanTrainLogDensity = meanTrain,
            CreatedUtc = DateTime.UtcNow,
        };
        ModelZip.Save(ml, transformer, transformer.Model, trainView.Schema, metadata, outFile);
        string best = (numberOffset > 0 ? FormattableString.Invariant($" numbered {numberOffset + 1}–{numberOffset + metadata.EpochsRun}") : "") +
                      (metadata.BestEpoch is int b ? FormattableString.Invariant($" (best {b})") : "");
        console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"saved {outFile}: {entry.Name} ({model.DensityKind} log-density), {CsvTable.Count(data.Columns, "feature")}, {metadata.StepsRun}{best}, mean training log-density {meanTrain:F4}."));
        if (transformer.ThresholdSource is string thresholdSource)
            console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"anomaly threshold: score > {transformer.Threshold:G6}, the (1 - {contamination}) quantile of {thresholdSource}."));
        foreach (var fallback in transformer.ThresholdFallbacks) console.Error.WriteLine(fallback.CliMessage());
        // The engine's held-out split holds out none of a few rows: no validation, without a word.
        if (valid is null && engineOptions.GetType().GetProperty("ValidationFraction")?.GetValue(engineOptions) is double f && f > 0
            && TrainingLoop.HeldOutCount(data.Rows, f) == 0)
            console.Error.WriteLine(NoHeldOutNote(engineOptions, CsvTable.Count(data.Rows, "training row")));
        if (console.Interrupts.StopRequested)
        {
            console.Error.WriteLine($"ddml: interrupted: training was stopped early; the best model so far was saved to {outFile}.");
            return ExitCodes.Interrupted;
        }
        return ExitCodes.Success;
    }

    /// <summary>Reads the training (and validation) CSV into feature matrices, checks the label column, and prints the
    /// "fit" line and the notes on text columns.</summary>
    private static (RowMatrix Data, RowMatrix? Valid, string[] Names, int[] Columns, int[]? ValidColumns, CsvPositions Where, CsvPositions? ValidWhere)
        ReadTrainingData(DdmlConsole console, string trainFile, string? validationFile, string? labelColumn, string[] excluded, string modelName)
    {
        var table = CsvTable.Read(trainFile);
        var skip = excluded.Select(c => table.ColumnIndex(c, "excluded")).ToList();
        if (labelColumn is not null) skip.Add(table.ColumnIndex(labelColumn, "label"));
        var columns = table.NumericColumns(skip);
        if (columns.Length == 0) throw CliException.DataError(trainFile, 2, 0, null, $"no numeric feature columns (every column is excluded or text){CsvTable.SeparatorHint(table.Header)}.");
        CheckFeatureNames(table, columns);
        var names = columns.Select(c => table.Header[c]).ToArray();
        var data = table.Features(columns);
        if (labelColumn is not null) table.Labels(table.ColumnIndex(labelColumn, "label")); // checked now, not at report time
        CsvTable? validTable = validationFile is null ? null : CsvTable.Read(validationFile);
        // Read by name: its columns may be in another order, so its errors are mapped through its own positions.
        var validColumns = validTable is null ? null : names.Select(n => validTable.ColumnIndex(n, "feature")).ToArray();
        var valid = validTable?.Features(validColumns!);
        console.Out.WriteLine($"fit {modelName}: {CsvTable.Count(data.Rows, "row")} × {CsvTable.Count(data.Columns, "feature")} from {Path.GetFileName(trainFile)}" +
                              (valid is null ? "" : $", {CsvTable.Count(valid.Rows, "validation row")} from {Path.GetFileName(validationFile)}") + ".");
        ReportTextColumns(console, table, columns, skip, labelColumn is not null);
        return (data, valid, names, columns, validColumns, table.Positions, validTable?.Positions);
    }

    /// <summary>The note when the seeded held-out fraction of <paramref name="examples"/> rounds down to none: no validation
    /// figure, and no early stopping, where the options (a default, or a ValidationFraction the user set) suggest both.</summary>
    internal static string NoHeldOutNote(object options, string examples)
    {
        var type = options.GetType();
        double fraction = (double)type.GetProperty("ValidationFraction")!.GetValue(options)!;
        int patience = type.GetProperty("EarlyStoppingPatience")?.GetValue(options) as int? ?? 0;
        return string.Create(CultureInfo.InvariantCulture, $"ddml: note: no validation data: ValidationFraction {fraction} of {examples} holds out none (the count rounds down), ") +
               (patience > 0 ? FormattableString.Invariant($"so early stopping (EarlyStoppingPatience {patience}) is off") : "so no validation figure is computed") +
               "; pass --validation FILE or raise --param ValidationFraction.";
    }

    /// <summary>The columns 'ddml score' appends to its output.</summary>
    internal static readonly string[] ScoreColumns = { "LogDensity", ModelCatalog.StandardErrorColumn, "Score", "PredictedLabel" };

    /// <summary>A feature named like a column 'ddml score' appends would make a model whose scored files have that name
    /// twice: an error at fit time (naming the column), not at scoring time.</summary>
    internal static void CheckFeatureNames(CsvTable table, IEnumerable<int> columns)
    {
        foreach (int c in columns)
            if (ScoreColumns.Contains(table.Header[c]))
                throw CliException.DataError(table.File, table.HeaderLine, c + 1, table.Header[c],
                    $"'ddml score' writes a column of this name ({string.Join(", ", ScoreColumns)}): rename the column, or --exclude it.");
    }

    /// <summary>Lists the text columns fit passes over (stdout) and warns about any that holds mostly numbers (stderr);
    /// notes a feature named like an anomaly label when no --label was given (a forgotten --label trains on the answer).</summary>
    internal static void ReportTextColumns(DdmlConsole console, CsvTable table, IReadOnlyCollection<int> features, IEnumerable<int> excluded, bool labelGiven)
    {
        var (names, warnings) = table.TextColumns(features, excluded);
        // The features by name: a numeric column the user did not mean as one (an id, a row number) is seen here.
        var featureNames = features.Select(c => CsvTable.Escape(table.Header[c])).ToList();
        console.Out.WriteLine($"features: {(featureNames.Count <= 12 ? string.Join(", ", featureNames) : string.Join(", ", featureNames.Take(6)) + ", …, " + string.Join(", ", featureNames.TakeLast(2)))}");
        if (names.Length > 0) console.Out.WriteLine($"text columns (not features): {string.Join(", ", names.Select(CsvTable.Escape))}");
        foreach (var w in warnings) console.Error.WriteLine("ddml: warning: " + w);
        foreach (int c in features)
        {
            bool counts = CountsTheRows(table, c);
            if (counts || IdLikeNames.Contains(table.Header[c]))
                console.Error.WriteLine($"ddml: note: {Path.GetFileName(table.File)}: the column '{table.Header[c]}' is a feature" +
                                        (counts ? " and counts the rows (every row a new value)" : "") +
                                        $"; if it identifies rows rather than describing them, --exclude {table.Header[c]}.");
        }
        if (labelGiven) return;
        foreach (int c in features)
            if (LabelLikeNames.Contains(table.Header[c]))
                console.Error.WriteLine($"ddml: note: {Path.GetFileName(table.File)}: the column '{table.Header[c]}' is a feature; if it is the anomaly label, " +
                                        $"pass --label {table.Header[c]} (a label is never a feature), or --exclude it.");
    }

    private static readonly HashSet<string> IdLikeNames = new(StringComparer.OrdinalIgnoreCase)
        { "id", "ids", "index", "idx", "row", "rowid", "row_id", "rownum", "row_number", "record_id", "uuid", "key", "unnamed: 0" };

    /// <summary>Whether column <paramref name="c"/> holds consecutive whole numbers, one more each row (a row number or a
    /// sequential id: as a feature it makes every row look new), over at least three rows.</summary>
    private static bool CountsTheRows(CsvTable table, int c)
    {
        if (table.Rows.Count < 3) return false;
        double previous = double.NaN;
        for (int r = 0; r < table.Rows.Count; r++)
        {
            if (!double.TryParse(table.Rows[r].Cell(c), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double v)
                || v != Math.Floor(v) || (r > 0 && v != previous + 1)) return false;
            previous = v;
        }
        return true;
    }

    private static readonly HashSet<string> LabelLikeNames = new(StringComparer.OrdinalIgnoreCase)
        { "label", "labels", "anomaly", "is_anomaly", "isanomaly", "anomalous", "outlier", "is_outlier", "target" };

    /// <summary>
    /// A bad row of a fit's data as an error against the file it came from: the training file, or the validation file
    /// when the error's <see cref="DataValidationException.DataSet"/> says so (the ML.NET estimators set it on the errors
    /// of both views; no message is read). The row, column and problem are the engine's or the view's own (the inner
    /// exception), from before the ML.NET layer restated them for pipeline users (column name, data set in words, ML.NET
    /// remedies).
    /// </summary>
    internal static CliException MapFitDataError(DataValidationException e, (CsvPositions Where, int[] Columns) training,
        (CsvPositions Where, int[] Columns)? validation, IReadOnlyList<string> names)
    {
        var own = e.InnerException as DataValidationException ?? e;
        var (table, columns) = e.DataSet == DataSetKind.Validation && validation is { } v ? v : training;
        return MapDataError(own, table, columns, names);
    }

    /// <summary>An engine data error (row/slot indices) as a CSV error (file, line, column); <paramref name="row"/>, when
    /// given, is the table's row in place of <paramref name="e"/>'s (a view whose rows are in another order than the file's).</summary>
    internal static CliException MapDataError(DataValidationException e, CsvPositions table, IReadOnlyList<int> columns, IReadOnlyList<string> names, long? row = null)
    {
        long r = row ?? e.Row;
        long line = r >= 0 && r < table.Lines.Count ? table.Lines[(int)r] : 0;
        int column = e.Column >= 0 && e.Column < columns.Count ? columns[e.Column] + 1 : 0;
        string? name = e.Column >= 0 && e.Column < names.Count ? names[e.Column] : null;
        return CliException.DataError(table.File, line, column, name, e.Problem + ".");
    }

    /// <summary>Keeps every report for the model's training history and forwards it to the display.</summary>
    private sealed class Recording(List<TrainingProgress> history) : IProgress<TrainingProgress>
    {
        public IProgress<TrainingProgress>? Display { get; set; }
        public void Report(TrainingProgress value) { history.Add(value); Display?.Report(value); }
    }
}
