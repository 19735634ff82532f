using ScottPlot;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Reporting;

/// <summary>The report's figures, drawn by ScottPlot and returned as PNG bytes.</summary>
internal static partial class Plots
{
    private const int Width = 720, Height = 400;

    /// <summary>Whether the history has no training likelihood but a reconstruction error per step (an RBM with Gaussian
    /// units): then the curves are the reconstruction errors, labelled so.</summary>
    public static bool ReconstructionErrorCurves(IReadOnlyList<TrainingProgress> history)
        => !history.Any(h => double.IsFinite(h.TrainLogLikelihood)) && history.Any(h => h.Metrics?.ContainsKey(ReconError) == true);

    private const string ReconError = "recon_error", ValidReconError = "valid_recon_error";

    public static byte[] TrainingCurves(IReadOnlyList<TrainingProgress> history, string unit = "row")
    {
        var plot = new Plot();
        bool recon = ReconstructionErrorCurves(history);
        double? Metric(TrainingProgress h, string key) => h.Metrics is { } m && m.TryGetValue(key, out var v) && double.IsFinite(v) ? v : null;
        var train = history.Select(h => (h.Epoch, Value: recon ? Metric(h, ReconError) : h.TrainLogLikelihood))
            .Where(p => p.Value is double v && double.IsFinite(v)).ToArray();
        var valid = history.Select(h => (h.Epoch, Value: recon ? Metric(h, ValidReconError) : h.ValidationLogLikelihood))
            .Where(p => p.Value is double v && double.IsFinite(v)).ToArray();
        foreach (var (points, name) in new[] { (train, "train"), (valid, "validation") })
        {
            if (points.Length == 0) continue;
            var s = plot.Add.ScatterLine(points.Select(p => (double)p.Epoch).ToArray(), points.Select(p => p.Value!.Value).ToArray());
            s.LegendText = name;
            s.LineWidth = 2;
            s.MarkerSize = SinglePointMarker(points.Length);
        }
        plot.Title("Training curves");
        plot.XLabel("epoch / EM iteration");
        IntegerTicks(plot);
        plot.YLabel(recon ? $"squared reconstruction error per {unit}" : $"mean log-likelihood per {unit}");
        plot.ShowLegend(Alignment.LowerRight);
        return Png(plot, Width, Height);
    }

    /// <summary>Histogram of the finite log-densities. A few far outliers would squash the rest into one bar, so the range
    /// starts at most two inter-decile ranges below the 10 % quantile; rows below it are counted in the leftmost bin.
    /// Returns the number of rows so clipped.</summary>
    public static (byte[] Png, int Clipped) Histogram(float[] logDensity, IReadOnlyList<bool>? labels, string unit = "row")
    {
        var finite = logDensity.Where(float.IsFinite).Select(v => (double)v).OrderBy(v => v).ToArray();
        double min = finite.Length > 0 ? finite[0] : -1, max = finite.Length > 0 ? finite[^1] : 0;
        if (finite.Length >= 20)
        {
            double q10 = finite[finite.Length / 10], q90 = finite[finite.Length * 9 / 10];
            min = Math.Max(min, q10 - 2 * Math.Max(q90 - q10, 1e-6));
        }
        if (!(max > min)) { min -= 0.5; max += 0.5; }
        int clipped = finite.Count(v => v < min);
        var plot = new Plot();
        void Add(IEnumerable<double> values, string name, Color color)
        {
            var hist = ScottPlot.Statistics.Histogram.WithBinCount(40, min, max);
            hist.AddRange(values.Select(v => Math.Max(v, min)));
            plot.Add.Histogram(hist, color.WithAlpha(0.6));
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = name, FillColor = color.WithAlpha(0.6) });
        }
        if (labels is null) Add(finite, unit + "s", Colors.SteelBlue);
        else
        {
            Add(Enumerable.Range(0, logDensity.Length).Where(i => !labels[i] && float.IsFinite(logDensity[i])).Select(i => (double)logDensity[i]), "normal", Colors.SteelBlue);
            Add(Enumerable.Range(0, logDensity.Length).Where(i => labels[i] && float.IsFinite(logDensity[i])).Select(i => (double)logDensity[i]), "anomalous", Colors.OrangeRed);
            plot.ShowLegend(Alignment.UpperLeft);
        }
        plot.Axes.Margins(bottom: 0);
        plot.Title($"Log-density of the scored {unit}s");
        plot.XLabel(clipped > 0 ? FormattableString.Invariant($"log-density ({clipped} {unit}s below {min:G4} counted in the leftmost bin)") : "log-density");
        plot.YLabel(unit + "s");
        return (Png(plot, Width, Height), clipped);
    }

    /// <summary>One or more ROC curves (e.g. per step and per sequence) with their AUROC in the legend.</summary>
    public static byte[] Roc(IReadOnlyList<(string Name, IReadOnlyList<(double Fpr, double Tpr)> Curve, double Auroc)> curves)
    {
        var plot = new Plot();
        var diagonal = plot.Add.ScatterLine(new[] { 0.0, 1.0 }, new[] { 0.0, 1.0 });
        diagonal.LinePattern = LinePattern.Dashed;
        diagonal.Color = Colors.Gray;
        diagonal.LegendText = "chance";
        foreach (var (name, curve, auroc) in curves)
        {
            var s = plot.Add.ScatterLine(curve.Select(p => p.Fpr).ToArray(), curve.Select(p => p.Tpr).ToArray());
            s.LineWidth = 2;
            s.LegendText = curves.Count == 1 ? FormattableString.Invariant($"model (AUROC {auroc:F3})") : FormattableString.Invariant($"{name} (AUROC {auroc:F3})");
        }
        plot.Axes.SetLimits(0, 1, 0, 1);
        plot.Title("ROC curve (score = −log-density)");
        plot.XLabel("false positive rate");
        plot.YLabel("true positive rate");
        plot.ShowLegend(Alignment.LowerRight);
        return Png(plot, 480, 460);
    }

    /// <summary>Rows drawn as grey images in a grid (one heatmap per row), with an optional caption under each.</summary>
    public static byte[] ImageGrid(string title, RowMatrix rows, int height, int width, IReadOnlyList<string>? captions, double low, double high)
    {
        int count = rows.Rows;
        int perRow = Math.Min(count, 8);
        int gridRows = (count + perRow - 1) / perRow;
        const double gap = 0.15, captionSpace = 0.3;
        double cellH = 1 + gap + (captions is null ? 0 : captionSpace);
        var plot = new Plot();
        for (int k = 0; k < count; k++)
        {
            var values = new double[height, width];
            var row = rows.Row(k);
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++) values[y, x] = row[y * width + x];
            var heatmap = plot.Add.Heatmap(values);
            heatmap.Colormap = new ScottPlot.Colormaps.Grayscale();
            heatmap.ManualRange = new ScottPlot.Range(low, high);
            double left = (k % perRow) * (1 + gap), top = -(k / perRow) * cellH;
            heatmap.Rectangle = new CoordinateRect(left, left + 1, top - 1, top);
            heatmap.Update(); // the colours were computed when the heatmap was added, before the colormap and range were set
            if (captions is not null)
            {
                var text = plot.Add.Text(captions[k], left + 0.5, top - 1.05);
                text.LabelFontSize = 11;
                text.LabelAlignment = Alignment.UpperCenter;
            }
        }
        plot.HideAxesAndGrid();
        // A tinted background: white and black pixels at a tile's edge must both stand out from it.
        plot.FigureBackground.Color = Color.FromHex("#c9d3de");
        plot.DataBackground.Color = Color.FromHex("#c9d3de");
        plot.Axes.SetLimits(-gap, perRow * (1 + gap), -gridRows * cellH, gap);
        plot.Axes.SquareUnits(); // pixels are square whatever the figure's size
        plot.Title(title);
        int pixelWidth = Math.Max(240, perRow * 90), pixelHeight = 60 + gridRows * (int)(90 * cellH);
        return Png(plot, pixelWidth, pixelHeight);
    }

    /// <summary>The marker size of a line plot of <paramref name="points"/> points: a line through one point draws
    /// nothing (a one-epoch fit had an empty training-curves figure; a one-frame sequence no line), so it gets a dot.</summary>
    private static float SinglePointMarker(int points) => points == 1 ? 7 : 0;

    /// <summary>Epochs and time steps are whole numbers: no ticks between them.</summary>
    private static void IntegerTicks(Plot plot)
        => plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };

    private static byte[] Png(Plot plot, int width, int height) => plot.GetImage(width, height).GetImageBytes(ImageFormat.Png, 100);
}
