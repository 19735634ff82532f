using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.ML.DeepDensity.Data;

namespace Microsoft.ML.DeepDensity.Reporting;

/// <summary>
/// A self-contained HTML report of a density model on some rows (every image embedded as base64 PNG, no external
/// files): training curves, a histogram of the rows' log-densities (normal vs anomalous when labels are given), the ROC
/// curve with its AUROC, the most anomalous rows, and for image-shaped rows a grid of generated samples beside real
/// rows and the most anomalous rows drawn as images. Figures are drawn with ScottPlot.
/// </summary>
public static class DensityReport
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
        if (options.Labels is { } l && l.Count != rows.Rows)
            throw new ArgumentException($"Labels has {l.Count} values for {rows.Rows} rows.", nameof(options));
        if (options.RowNames is { } rn && rn.Count != rows.Rows)
            throw new ArgumentException($"RowNames has {rn.Count} values for {rows.Rows} rows.", nameof(options));
        var logDensity = model.LogDensity(rows);
        var names = options.FeatureNames ?? Enumerable.Range(0, model.Dimension).Select(i => $"f{i}").ToArray();
        var html = new StringBuilder();
        html.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>").Append(E(options.Title)).Append("</title>\n<style>")
            .Append("body{font-family:system-ui,sans-serif;margin:24px auto;padding:0 16px;max-width:1100px;color:#222}h1{margin-bottom:4px}")
            .Append("h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}table{border-collapse:collapse;font-size:13px}")
            .Append("td,th{border:1px solid #ddd;padding:3px 7px;text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}")
            .Append(".facts td{border:none;text-align:left;padding:1px 12px 1px 0}.row{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}")
            .Append("figure{margin:0}figcaption{font-size:13px;color:#555}.note{color:#666;font-style:italic}")
            .Append("</style></head><body>\n");
        html.Append("<h1>").Append(E(options.Title)).Append("</h1>\n<table class=\"facts\">");
        var facts = new List<KeyValuePair<string, string>>(options.Facts)
        {
            new("model", $"{model.ModelKind}: {model.DensityKind} log-density, {model.InputDomain} input, dimension {model.Dimension}"),
            new("rows scored", rows.Rows.ToString(Ci)),
            new("mean log-density", Mean(logDensity).ToString("F4", Ci)),
        };
        foreach (var (k, v) in facts) html.Append("<tr><td><b>").Append(E(k)).Append("</b></td><td>").Append(E(v)).Append("</td></tr>");
        html.Append("</table>\n");

        html.Append("<h2>Training curves</h2>\n");
        if (options.TrainingHistory is { Count: > 0 } history)
            Image(html, Plots.TrainingCurves(history), "Training curves", "Mean log-likelihood per row of the training and validation data after each epoch (EM iteration for Deep GMM; pseudo-log-likelihood for the RBM).");
        else html.Append("<p class=\"note\">No training history is available for this model.</p>\n");

        html.Append("<h2>Log-densities</h2>\n<div class=\"row\">");
        var (histogram, clipped) = Plots.Histogram(logDensity, options.Labels);
        int infinite = logDensity.Count(v => !float.IsFinite(v));
        Image(html, histogram, "Histogram of log-densities",
            (options.Labels is null ? "Log-density of every scored row." : "Log-density of normal and anomalous rows (by the label column).") +
            (clipped > 0 ? $" {clipped} far outliers are counted in the leftmost bin." : "") +
            (infinite > 0 ? $" {infinite} rows with log-density −∞ are not shown." : ""));
        if (options.Labels is { } labels)
        {
            int positives = labels.Count(b => b);
            if (positives > 0 && positives < labels.Count)
            {
                var score = logDensity.Select(v => -(double)v).ToArray();
                var (curve, auroc) = Roc.Compute(score, labels);
                Image(html, Plots.Roc(curve, auroc), "ROC curve", $"{positives} anomalous and {labels.Count - positives} normal rows; AUROC {auroc.ToString("F4", Ci)}.");
            }
            else html.Append("<p class=\"note\">The labels hold only one class, so there is no ROC curve.</p>");
        }
        html.Append("</div>\n");

        var order = Enumerable.Range(0, rows.Rows).OrderBy(i => logDensity[i]).ThenBy(i => i).Take(Math.Min(options.TopRows, rows.Rows)).ToArray();
        html.Append("<h2>Most anomalous rows</h2>\n<p>The ").Append(order.Length).Append(" rows with the lowest log-density.</p>\n");
        AnomalyTable(html, rows, logDensity, order, names, options);

        if (ImageShape(model.Dimension, options) is (int h, int w))
        {
            var values = rows.Values.AsSpan(0, rows.Rows * rows.Columns);
            double low = values.Length == 0 ? 0 : TensorMin(values), high = values.Length == 0 ? 1 : TensorMax(values);
            if (!(high > low)) high = low + 1;
            int n = Math.Max(1, options.SampleCount);
            var samples = model.Sample(n, options.Seed);
            var real = rows.SelectRows(Enumerable.Range(0, Math.Min(n, rows.Rows)).ToArray());
            html.Append($"<h2>Images ({h}×{w})</h2>\n<div class=\"row\">");
            Image(html, Plots.ImageGrid("Generated samples", samples, h, w, null, low, high), "Generated samples", $"{n} draws from the model (seed {options.Seed}).");
            Image(html, Plots.ImageGrid("Real rows", real, h, w, null, low, high), "Real rows", $"The first {real.Rows} scored rows.");
            html.Append("</div>\n");
            var captions = order.Select(i => logDensity[i].ToString("F1", Ci)).ToArray();
            Image(html, Plots.ImageGrid("Most anomalous rows", rows.SelectRows(order), h, w, captions, low, high), "Most anomalous rows",
                "The rows of the table above, lowest log-density first (caption: log-density).");
        }
        html.Append("<p class=\"note\">Generated by DeepDensity.ML (figures: ScottPlot).</p>\n</body></html>\n");
        return html.ToString();
    }

    /// <summary>(height, width) when the rows are image-shaped: the given shape, or a perfect square column count.</summary>
    public static (int Height, int Width)? ImageShape(int dimension, DensityReportOptions options)
    {
        if (options.ImageShape is (int h, int w))
        {
            if (h < 1 || w < 1 || h * w != dimension)
                throw new ArgumentException($"The image shape {h}×{w} does not match the {dimension} columns.", nameof(options));
            return (h, w);
        }
        int side = (int)Math.Round(Math.Sqrt(dimension));
        return side >= 2 && side * side == dimension ? (side, side) : null;
    }

    private static void AnomalyTable(StringBuilder html, RowMatrix rows, float[] logDensity, int[] order, IReadOnlyList<string> names, DensityReportOptions options)
    {
        int shown = Math.Min(names.Count, 12);
        html.Append("<table><tr><th>rank</th><th class=\"l\">row</th><th>log-density</th>");
        if (options.Labels is not null) html.Append("<th>label</th>");
        for (int j = 0; j < shown; j++) html.Append("<th>").Append(E(names[j])).Append("</th>");
        if (shown < names.Count) html.Append("<th>…</th>");
        html.Append("</tr>\n");
        for (int k = 0; k < order.Length; k++)
        {
            int i = order[k];
            html.Append("<tr><td>").Append(k + 1).Append("</td><td class=\"l\">").Append(E(options.RowNames?[i] ?? $"row {i}")).Append("</td><td>")
                .Append(logDensity[i].ToString("F4", Ci)).Append("</td>");
            if (options.Labels is { } labels) html.Append("<td>").Append(labels[i] ? "anomalous" : "normal").Append("</td>");
            var row = rows.Row(i);
            for (int j = 0; j < shown; j++) html.Append("<td>").Append(row[j].ToString("G5", Ci)).Append("</td>");
            if (shown < names.Count) html.Append("<td>…</td>");
            html.Append("</tr>\n");
        }
        html.Append("</table>\n");
    }

    private static void Image(StringBuilder html, byte[] png, string alt, string caption)
        => html.Append("<figure><img alt=\"").Append(E(alt)).Append("\" src=\"data:image/png;base64,").Append(Convert.ToBase64String(png))
               .Append("\"><figcaption>").Append(E(caption)).Append("</figcaption></figure>\n");

    private static string E(string s) => WebUtility.HtmlEncode(s);

    private static double Mean(float[] v) => v.Length == 0 ? double.NaN : v.Average(x => (double)x);
    private static double TensorMin(ReadOnlySpan<float> v) => System.Numerics.Tensors.TensorPrimitives.Min(v);
    private static double TensorMax(ReadOnlySpan<float> v) => System.Numerics.Tensors.TensorPrimitives.Max(v);
}

/// <summary>The ROC curve of anomaly scores against labels (ties handled as one step), and the area under it.</summary>
public static class Roc
{
    /// <summary>Points from (0, 0) to (1, 1), higher score = more anomalous; the AUROC equals the Mann–Whitney statistic (ties count ½).</summary>
    public static (IReadOnlyList<(double Fpr, double Tpr)> Curve, double Auroc) Compute(IReadOnlyList<double> score, IReadOnlyList<bool> anomalous)
    {
        if (score.Count != anomalous.Count) throw new ArgumentException("score and labels differ in length.");
        int positives = anomalous.Count(b => b), negatives = anomalous.Count - positives;
        if (positives == 0 || negatives == 0) throw new ArgumentException("ROC needs both anomalous and normal rows.");
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
