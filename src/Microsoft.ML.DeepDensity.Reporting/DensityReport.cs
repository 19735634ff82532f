using System.Globalization;
using System.Text;
using Microsoft.ML.DeepDensity.Data;

namespace Microsoft.ML.DeepDensity.Reporting;

/// <summary>
/// A self-contained HTML report of a density model on some rows (every image embedded as base64 PNG, no external
/// files): training curves, a histogram of the rows' log-densities (normal vs anomalous when labels are given), the ROC
/// curve with its AUROC, the most anomalous rows, and for image-shaped rows a grid of generated samples beside real
/// rows and the most anomalous rows drawn as images. Figures are drawn with ScottPlot.
/// </summary>
public static partial class DensityReport
{
    private static readonly CultureInfo Ci = CultureInfo.InvariantCulture;

    /// <summary>The report of the one DeepDensity model in an ML.NET pipeline (live or loaded) on <paramref name="rows"/>.</summary>
    public static string Create(ITransformer model, RowMatrix rows, DensityReportOptions? options = null)
        => Create(model.GetDensityModel(), rows, options);

    /// <summary>The report of <paramref name="model"/> on <paramref name="rows"/> (its log-densities are computed here).</summary>
    public static string Create(DensityModel model, RowMatrix rows, DensityReportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(rows);
        options ??= new DensityReportOptions();
        options.CheckFor(model.Dimension, "columns");
        if (options.Labels is { } l && l.Count != rows.Rows)
            throw new ArgumentException(FormattableString.Invariant($"Labels has {l.Count} values for {rows.Rows} rows."), nameof(options));
        if (options.RowNames is { } rn && rn.Count != rows.Rows)
            throw new ArgumentException(FormattableString.Invariant($"RowNames has {rn.Count} values for {rows.Rows} rows."), nameof(options));
        var logDensity = model.LogDensity(rows);
        var names = options.FeatureNames ?? Enumerable.Range(0, model.Dimension).Select(i => FormattableString.Invariant($"f{i}")).ToArray();
        var html = ReportHtml.Begin(options.Title, new List<KeyValuePair<string, string>>(options.Facts)
        {
            new("model", FormattableString.Invariant($"{model.ModelKind}: {model.DensityKind} log-density, {model.InputDomain} input, dimension {model.Dimension}")),
            new("rows scored", rows.Rows.ToString(Ci)),
            new("mean log-density", ReportHtml.Mean(logDensity).ToString("F4", Ci)),
        });
        ReportHtml.TrainingSection(html, options.TrainingHistory, "row");

        html.Append("<h2>Log-densities</h2>\n<div class=\"row\">");
        ReportHtml.Histogram(html, logDensity, options.Labels, "row");
        if (options.Labels is { } labels)
        {
            int positives = labels.Count(b => b);
            if (positives > 0 && positives < labels.Count)
            {
                var score = logDensity.Select(v => -(double)v).ToArray();
                var (curve, auroc) = Roc.Compute(score, labels);
                ReportHtml.Image(html, Plots.Roc(new[] { ("rows", curve, auroc) }), "ROC curve",
                    FormattableString.Invariant($"{positives} anomalous and {labels.Count - positives} normal rows; AUROC {auroc.ToString("F4", Ci)}."));
            }
            else html.Append("<p class=\"note\">The labels hold only one class, so there is no ROC curve.</p>");
        }
        html.Append("</div>\n");

        var order = Enumerable.Range(0, rows.Rows).OrderBy(i => logDensity[i]).ThenBy(i => i).Take(Math.Min(options.TopRows, rows.Rows)).ToArray();
        html.Append("<h2>Most anomalous rows</h2>\n<p>").Append(ReportHtml.The(order.Length, "row")).Append(" with the lowest log-density.</p>\n");
        AnomalyTable(html, rows, logDensity, order, names, options);

        if (ImageShape(model.Dimension, options) is (int h, int w))
        {
            var values = rows.Values.AsSpan(0, rows.Rows * rows.Columns);
            double low = values.Length == 0 ? 0 : TensorMin(values), high = values.Length == 0 ? 1 : TensorMax(values);
            if (!(high > low)) high = low + 1;
            html.Append(FormattableString.Invariant($"<h2>Images ({h}×{w})</h2>\n"));
            // SampleCount 0 draws no samples: no grid of them, nor of real rows to compare them with.
            if (options.SampleCount is int n and > 0)
            {
                var samples = model.Sample(n, options.Seed);
                var real = rows.SelectRows(Enumerable.Range(0, Math.Min(n, rows.Rows)).ToArray());
                html.Append("<div class=\"row\">");
                ReportHtml.Image(html, Plots.ImageGrid("Generated samples", samples, h, w, null, low, high), "Generated samples", FormattableString.Invariant($"{n} draws from the model (seed {options.Seed})."));
                ReportHtml.Image(html, Plots.ImageGrid("Real rows", real, h, w, null, low, high), "Real rows", real.Rows == 1 ? "The first scored row." : FormattableString.Invariant($"The first {real.Rows} scored rows."));
                html.Append("</div>\n");
            }
            var drawn = order.Take(DensityReportOptions.MaxImagesDrawn).ToArray();
            var captions = drawn.Select(i => logDensity[i].ToString("F1", Ci)).ToArray();
            ReportHtml.Image(html, Plots.ImageGrid("Most anomalous rows", rows.SelectRows(drawn), h, w, captions, low, high), "Most anomalous rows",
                (drawn.Length < order.Length ? FormattableString.Invariant($"The first {drawn.Length} of the {order.Length} rows of the table above") : "The rows of the table above") +
                ", lowest log-density first (caption: log-density).");
        }
        return ReportHtml.End(html);
    }

    /// <summary>(height, width) when the rows are image-shaped: the given shape, or a perfect square column count of at
    /// least <see cref="DensityReportOptions.MinAutomaticImageSide"/>² (8×8). Fewer columns are a table, not an image:
    /// 4, 9 or 16 tabular columns (the Seattle weather's precipitation, temperatures and wind) used to be drawn as 2×2
    /// "images"; give <see cref="DensityReportOptions.ImageShape"/> to draw them.</summary>
    public static (int Height, int Width)? ImageShape(int dimension, DensityReportOptions options)
    {
        if (options.ImageShape is (int h, int w))
        {
            if (h < 1 || w < 1 || (long)h * w != dimension) // in long: an int product can overflow to the dimension
                throw new ArgumentException(FormattableString.Invariant($"The image shape {h}×{w} does not match the {dimension} columns."), nameof(options));
            return (h, w);
        }
        int side = (int)Math.Round(Math.Sqrt(dimension));
        return side >= DensityReportOptions.MinAutomaticImageSide && side * side == dimension ? (side, side) : null;
    }

    private static void AnomalyTable(StringBuilder html, RowMatrix rows, float[] logDensity, int[] order, IReadOnlyList<string> names, DensityReportOptions options)
    {
        int shown = Math.Min(names.Count, 12);
        var left = new[] { 1 };
        html.Append("<table>");
        ReportHtml.TableRow(html, new[] { "rank", "row", "log-density" }.Concat(options.Labels is null ? Array.Empty<string>() : new[] { "label" })
            .Concat(names.Take(shown)).Concat(shown < names.Count ? new[] { "…" } : Array.Empty<string>()), left, header: true);
        for (int k = 0; k < order.Length; k++)
        {
            int i = order[k];
            var row = rows.Row(i).ToArray();
            ReportHtml.TableRow(html, new[] { (k + 1).ToString(Ci), options.RowNames?[i] ?? FormattableString.Invariant($"row {i}"), logDensity[i].ToString("F4", Ci) }
                .Concat(options.Labels is { } labels ? new[] { labels[i] ? "anomalous" : "normal" } : Array.Empty<string>())
                .Concat(row.Take(shown).Select(v => v.ToString("G5", Ci))).Concat(shown < names.Count ? new[] { "…" } : Array.Empty<string>()), left);
        }
        html.Append("</table>\n");
    }

    private static double TensorMin(ReadOnlySpan<float> v) => System.Numerics.Tensors.TensorPrimitives.Min(v);
    private static double TensorMax(ReadOnlySpan<float> v) => System.Numerics.Tensors.TensorPrimitives.Max(v);
}

/// <summary>The ROC curve of anomaly scores against labels (ties handled as one step), and the area under it.</summary>
public static class Roc
{
    /// <summary>Points from (0, 0) to (1, 1), higher score = more anomalous; the AUROC equals the Mann–Whitney statistic (ties count ½).
    /// A NaN score is an <see cref="ArgumentException"/> naming its index (±∞ are fine).</summary>
    public static (IReadOnlyList<(double Fpr, double Tpr)> Curve, double Auroc) Compute(IReadOnlyList<double> score, IReadOnlyList<bool> anomalous)
    {
        if (score.Count != anomalous.Count) throw new ArgumentException("score and labels differ in length.");
        int positives = anomalous.Count(b => b), negatives = anomalous.Count - positives;
        if (positives == 0 || negatives == 0) throw new ArgumentException("ROC needs both anomalous and normal rows.");
        // A NaN never equals itself: the tie loop below would not advance past it (the call hung forever).
        for (int i = 0; i < score.Count; i++)
            if (double.IsNaN(score[i])) throw new ArgumentException(FormattableString.Invariant($"score[{i}] is NaN: the ROC curve needs comparable scores."), nameof(score));
        var order = Enumerable.Range(0, score.Count).OrderByDescending(i => score[i]).ToArray();
        var curve = new List<(double, double)> { (0, 0) };
        double tp = 0, fp = 0, area = 0;
        for (int k = 0; k < order.Length;)
        {
            double s = score[order[k]];
            double tpStep = 0, fpStep = 0;
            for (; k < order.Length && score[order[k]] == s; k++)
                if (anomalous[order[k]]) tpStep++; else fpStep++;
            area += fpStep * (tp + tpStep / 2);
            tp += tpStep; fp += fpStep;
            curve.Add((fp / negatives, tp / positives));
        }
        return (curve, area / ((double)positives * negatives));
    }
}
