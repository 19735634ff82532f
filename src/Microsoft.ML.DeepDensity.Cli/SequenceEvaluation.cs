using System.Globalization;
using Microsoft.ML.DeepDensity.Reporting;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Cli;

/// <summary>
/// <c>ddml evaluate</c> and <c>ddml report</c> for the sequence model. Per-step figures use each frame row's
/// LogDensity = log p(x_t | x_&lt;t) from the ML.NET transformer (the values <c>ddml score</c> writes); per-sequence
/// figures use log p(x_1..x_T) = the sum over its steps, and as anomaly score −(log-density per frame), the whole-sequence
/// estimator's Score. With a label (one per frame row), per-step metrics are always given; per-sequence metrics too when
/// the label is constant within every sequence.
/// </summary>
public static class SequenceEvaluation
{
    private static readonly CultureInfo Ci = CultureInfo.InvariantCulture;

    public static int Evaluate(DdmlConsole console, MLContext ml, LoadedModel loaded, string dataFile, string? labelColumn)
    {
        var meta = loaded.Metadata!;
        var data = SequenceFrames.Read(dataFile, meta);
        var labels = labelColumn is null ? null : data.Table.Labels(data.Table.ColumnIndex(labelColumn, "label"));
        var (step, score, predicted) = data.Score(ml, loaded.Transformer, meta.FeatureColumns);
        var batch = data.Sequences;
        int count = batch.Count, frames = batch.TotalFrames;
        // Per sequence: the sum of its steps' log-densities (file rows gathered in sequence order).
        var total = new double[count];
        var anyFlagged = new bool[count];
        for (int i = 0; i < count; i++)
            for (int f = batch.Offsets[i]; f < batch.Offsets[i + 1]; f++) { total[i] += step[data.RowOfFrame[f]]; anyFlagged[i] |= predicted[data.RowOfFrame[f]]; }
        var w = console.Out;
        w.WriteLine(FormattableString.Invariant($"sequences               {count} ({CsvTable.Count(frames, "frame row")}; median length {DensityReport.MedianLength(batch)})"));
        var (perFrame, perFrameSe) = RatioAndClusterStandardError(total, Enumerable.Range(0, count).Select(batch.Length).ToArray());
        w.WriteLine(string.Create(Ci, $"average log-density     {perFrame:F4}{ScoringCommands.PlusMinus(perFrameSe)} per frame ") +
                    $"({ScoringCommands.StandardErrorNote(total.Select(v => (float)v).ToArray(), "sequence")}; Exact)");
        var (perSequence, perSequenceSe) = ScoringCommands.MeanAndStandardError(total.Select(v => (float)v).ToArray());
        w.WriteLine(string.Create(Ci, $"                        {perSequence:F4}{ScoringCommands.PlusMinus(perSequenceSe)} per sequence"));
        w.WriteLine($"predicted anomalies     {CsvTable.Count(predicted.Count(b => b), "frame row")} in {CsvTable.Count(anyFlagged.Count(b => b), "sequence")} " +
                    string.Create(Ci, $"(frame thresholds set at fit, contamination {meta.Contamination})"));
        if (labels is null) return ExitCodes.Success;

        w.WriteLine("per step (each frame row, score = −log p(x_t | x_<t)):");
        if (ScoringCommands.OneClassLabels(console, labels, dataFile, labelColumn!, "frame rows", "  "))
        {
            w.WriteLine("per sequence:           not computed: every sequence has the same label.");
            return ExitCodes.Success;
        }
        ScoringCommands.WriteAnomalyMetrics(w, ml, labels, score, predicted, "frame rows", "  ");
        var frameLabels = data.RowOfFrame.Select(r => labels[r]).ToArray();
        var sequenceLabels = DensityReport.ConstantLabels(batch, frameLabels);
        if (sequenceLabels is null)
            w.WriteLine("per sequence:           not computed: the label varies within a sequence (per-step metrics above).");
        else if (sequenceLabels.All(b => b) || !sequenceLabels.Any(b => b))
            w.WriteLine("per sequence:           not computed: every sequence has the same label.");
        else
        {
            w.WriteLine("per sequence (the label is constant within each; score = −log-density per frame, predicted = any step flagged):");
            var sequenceScore = Enumerable.Range(0, count).Select(i => (float)(-total[i] / batch.Length(i))).ToArray();
            ScoringCommands.WriteAnomalyMetrics(w, ml, sequenceLabels, sequenceScore, anyFlagged, "sequences", "  ");
        }
        return ExitCodes.Success;
    }

    /// <summary>
    /// The mean per frame Σ S_i / Σ T_i and its standard error with sequences as the independent units (the frames of a
    /// sequence are not independent): the ratio estimator's sqrt(m/(m−1) Σ (S_i − r T_i)²) / Σ T_i.
    /// </summary>
    public static (double Mean, double StandardError) RatioAndClusterStandardError(double[] sums, int[] lengths)
    {
        double s = sums.Sum(), t = lengths.Sum();
        double r = s / t;
        int m = sums.Length;
        if (m < 2) return (r, double.NaN);
        double ss = 0;
        for (int i = 0; i < m; i++) ss += (sums[i] - r * lengths[i]) * (sums[i] - r * lengths[i]);
        return (r, Math.Sqrt(ss * m / (m - 1)) / t);
    }

    /// <summary>The sequence report: <see cref="DensityReport.Create(SequenceDensityModel, Data.SequenceBatch, DensityReportOptions)"/>
    /// on the file's sequences, with its lines, ids and (per frame) labels.</summary>
    public static string Report(LoadedModel loaded, string dataFile, string? labelColumn, DensityReportOptions options)
    {
        var meta = loaded.Metadata!;
        var data = SequenceFrames.Read(dataFile, meta);
        if (labelColumn is not null)
        {
            var labels = data.Table.Labels(data.Table.ColumnIndex(labelColumn, "label"));
            options.Labels = data.RowOfFrame.Select(r => labels[r]).ToArray();
        }
        options.RowNames = data.RowOfFrame.Select(r => FormattableString.Invariant($"line {data.Table.Lines[r]}")).ToArray();
        options.SequenceNames = data.SequenceIds.Select(id => $"{meta.SequenceIdColumn} = {id}").ToArray();
        // The recorded median (checked against the training rows, but a zip may claim a billion of them) is a default only
        // up to what the report draws.
        options.SampleLength ??= meta.MedianSequenceLength is int median ? Math.Min(median, DensityReportOptions.MaxSampleLength) : null;
        options.Facts.Add(new("data", $"{dataFile} ({CsvTable.Count(data.Sequences.Count, "sequence")}, {CsvTable.Count(data.Table.Rows.Count, "frame row")}; " +
                                      $"sequence id '{meta.SequenceIdColumn}', order '{meta.OrderColumn}')"));
        options.Facts.Add(new("trained", $"ddml fit --model {meta.Model} on {meta.TrainFile} ({(meta.TrainSequences is int ts ? CsvTable.Count(ts, "sequence") : "? sequences")}, " +
                                         $"{CsvTable.Count(meta.TrainRows, "frame row")}), {meta.StepsRun}" + (meta.StoppedByUser ? ", stopped by the user" : "")));
        return DensityReport.Create(loaded.SequenceModel!, data.Sequences, options);
    }

    internal static TrainingProgress[] History(ToolMetadata meta) => meta.ToProgress();
}
