using System.Globalization;
using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Cli;

/// <summary>
/// The sequence model (RNN-RNADE) on frame rows: one CSV row per time step, a sequence-id column and an order column.
/// It has its own ML.NET transformer (not a DensityTransformer), so fit, score and info have a sequence path; sample,
/// evaluate and report are not offered for it yet.
/// </summary>
public static class SequenceCommands
{
    public const string ModelName = "rnnrnade";
    private const string IdColumn = "SequenceId", OrderColumn = "Order";

    private sealed class FrameRow
    {
        public float[] Features = Array.Empty<float>();
        public string SequenceId = "";
        public double Order;
    }

    /// <summary>A view of frame rows: the feature vector, the id (text) and the order (Double).</summary>
    private static IDataView FrameView(MLContext ml, RowMatrix frames, string[] ids, double[] order)
    {
        var rows = Enumerable.Range(0, frames.Rows).Select(i => new FrameRow { Features = frames.Row(i).ToArray(), SequenceId = ids[i], Order = order[i] }).ToArray();
        var def = SchemaDefinition.Create(typeof(FrameRow));
        def[nameof(FrameRow.Features)].ColumnName = ModelZip.FeatureColumn;
        def[ModelZip.FeatureColumn].ColumnType = new VectorDataViewType(NumberDataViewType.Single, frames.Columns);
        return ml.Data.LoadFromEnumerable(rows, def);
    }

    private static (string[] Ids, double[] Order) IdsAndOrder(CsvTable table, int idColumn, int orderColumn)
    {
        var ids = table.Rows.Select(r => r[idColumn].Trim()).ToArray();
        var order = new double[table.Rows.Count];
        for (int r = 0; r < order.Length; r++)
        {
            string s = table.Rows[r][orderColumn].Trim();
            if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out order[r]) || !double.IsFinite(order[r]))
                throw CliException.DataError(table.File, table.Lines[r], orderColumn + 1, table.Header[orderColumn], $"'{s}' is not a finite number (the order column).");
        }
        return (ids, order);
    }

    public static int Fit(DdmlConsole console, string trainFile, string outFile, string? sequenceId, string? orderName, string? labelColumn,
        string[] excluded, ulong? seed, int? epochs, double contamination, string[] parameters)
    {
        if (sequenceId is null || orderName is null)
            throw new CliException(ExitCodes.UsageError, "--model rnnrnade needs --sequence-id COL and --order COL (one row per time step).");
        var table = CsvTable.Read(trainFile);
        int idIndex = table.ColumnIndex(sequenceId, "sequence-id"), orderIndex = table.ColumnIndex(orderName, "order");
        var skip = excluded.Select(c => table.ColumnIndex(c, "excluded")).Append(idIndex).Append(orderIndex).ToList();
        if (labelColumn is not null) skip.Add(table.ColumnIndex(labelColumn, "label"));
        var columns = table.NumericColumns(skip);
        if (columns.Length == 0) throw CliException.DataError(trainFile, 2, 0, null, "no numeric feature columns (every column is excluded or text).");
        var names = columns.Select(c => table.Header[c]).ToArray();
        var frames = table.Features(columns);
        var (ids, order) = IdsAndOrder(table, idIndex, orderIndex);

        var ml = new MLContext(seed: 1);
        var history = new List<TrainingProgress>();
        var engine = new RnnRnadeOptions();
        var request = new FitRequest(seed, epochs, contamination, parameters, console.Interrupts.Stop, console.Interrupts.Abort, null!, _ => { });
        EngineOptions.Apply(engine, request);
        var view = FrameView(ml, frames, ids, order);
        console.Out.WriteLine($"fit {ModelName}: {ids.Distinct().Count()} sequences, {frames.Rows} frames × {frames.Columns} features from {Path.GetFileName(trainFile)}.");
        var display = new TrainingDisplay(console.Out, console.LiveProgress);
        var transformer = display.Run(ModelName, engine.MaxEpochs, progress =>
        {
            var estimator = ml.DensityEstimation.RnnRnade(new Transforms.RnnRnadeFrameEstimator.Options
            {
                FeatureColumnName = ModelZip.FeatureColumn, SequenceIdColumnName = IdColumn, OrderColumnName = OrderColumn,
                Contamination = contamination, ModelOptions = engine, CancellationToken = console.Interrupts.Abort,
                Progress = new Progress(history, progress),
            });
            try { return estimator.Fit(view); }
            catch (DataValidationException e) { throw FitCommand.MapDataError(e, table, columns, names); }
            catch (ArgumentException e) { throw new CliException(ExitCodes.TrainingFailed, $"cannot train {ModelName} on this data: {e.Message}", e); }
        });
        console.Interrupts.Abort.ThrowIfCancellationRequested();
        var summary = (transformer.Model as RnnRnadeModel)?.TrainingSummary;
        var metadata = new ToolMetadata
        {
            Tool = $"ddml {typeof(FitCommand).Assembly.GetName().Version?.ToString(3)}",
            Model = ModelName, FeatureColumns = names, LabelColumn = labelColumn, ExcludedColumns = excluded,
            SequenceIdColumn = sequenceId, OrderColumn = orderName,
            TrainFile = Path.GetFileName(trainFile), TrainRows = frames.Rows,
            Options = EngineOptions.Describe(engine), History = ToolMetadata.FromHistory(history),
            EpochsRun = summary?.EpochsRun ?? history.Count, BestEpoch = summary?.BestEpoch, StoppedEarly = summary?.StoppedEarly ?? false,
            StoppedByUser = console.Interrupts.StopRequested, CreatedUtc = DateTime.UtcNow,
        };
        ModelZip.Save(ml, transformer, view.Schema, metadata, outFile);
        console.Out.WriteLine($"saved {outFile}: {ModelName} (exact log-density per frame), {names.Length} features per frame, {metadata.EpochsRun} epochs.");
        if (console.Interrupts.StopRequested)
        {
            console.Error.WriteLine($"ddml: interrupted: training was stopped early; the best model so far was saved to {outFile}.");
            return ExitCodes.Interrupted;
        }
        return ExitCodes.Success;
    }

    /// <summary>Per frame row: LogDensity = log p(x_t | x_&lt;t) of its sequence, Score, PredictedLabel (rows of a sequence in increasing order).</summary>
    public static int Score(DdmlConsole console, MLContext ml, LoadedModel loaded, string dataFile, string? outFile)
    {
        var meta = loaded.Metadata!;
        var table = CsvTable.Read(dataFile);
        var columns = meta.FeatureColumns.Select(n => Array.IndexOf(table.Header, n) is int i && i >= 0 ? i
            : throw CliException.DataError(dataFile, 1, 0, null, $"the column '{n}' that the model was trained on is missing from the header.")).ToArray();
        int idIndex = table.ColumnIndex(meta.SequenceIdColumn!, "sequence-id"), orderIndex = table.ColumnIndex(meta.OrderColumn!, "order");
        var frames = table.Features(columns);
        var (ids, order) = IdsAndOrder(table, idIndex, orderIndex);
        var scored = loaded.Transformer.Transform(FrameView(ml, frames, ids, order));
        float[] logDensity, score;
        bool[] predicted;
        try
        {
            logDensity = DataViews.Singles(scored, "LogDensity");
            score = DataViews.Singles(scored, "Score");
            predicted = DataViews.Booleans(scored, "PredictedLabel");
        }
        catch (DataValidationException e) { throw FitCommand.MapDataError(e, table, columns, meta.FeatureColumns); }
        ScoringCommands.WriteOutput(console, outFile, w =>
        {
            w.WriteLine(string.Join(",", table.Header.Concat(new[] { "LogDensity", "Score", "PredictedLabel" }).Select(CsvTable.Escape)));
            for (int r = 0; r < table.Rows.Count; r++)
                w.WriteLine(string.Join(",", table.Rows[r].Select(CsvTable.Escape)) + "," + CsvTable.Format(logDensity[r]) + "," +
                            CsvTable.Format(score[r]) + "," + (predicted[r] ? "true" : "false"));
        });
        return ExitCodes.Success;
    }

    private sealed class Progress(List<TrainingProgress> history, IProgress<TrainingProgress> display) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) { history.Add(value); display.Report(value); }
    }
}
