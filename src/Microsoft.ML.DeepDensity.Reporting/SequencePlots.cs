using ScottPlot;

namespace Microsoft.ML.DeepDensity.Reporting;

/// <summary>The sequence report's figures: sequences as line plots against the time step.</summary>
internal static partial class Plots
{
    private static readonly Color[] RealColors = { Colors.SteelBlue, Colors.Navy, Colors.DodgerBlue, Colors.SlateBlue, Colors.Teal, Colors.CadetBlue };
    private static readonly Color[] GeneratedColors = { Colors.OrangeRed, Colors.DarkOrange, Colors.Crimson, Colors.GoldenRod, Colors.Chocolate, Colors.DeepPink };

    /// <summary>One feature of real sequences (solid, blues) and generated ones (dashed, oranges) against the step.</summary>
    public static byte[] SequenceLines(string feature, IReadOnlyList<float[]> real, IReadOnlyList<float[]> generated)
    {
        var plot = new Plot();
        void Add(IReadOnlyList<float[]> series, Color[] colors, bool dashed, string legend)
        {
            for (int k = 0; k < series.Count; k++)
            {
                var s = plot.Add.ScatterLine(Enumerable.Range(0, series[k].Length).Select(t => (double)t).ToArray(), series[k].Select(v => (double)v).ToArray());
                s.Color = colors[k % colors.Length];
                s.LineWidth = 1.5f;
                s.MarkerSize = SinglePointMarker(series[k].Length);
                if (dashed) s.LinePattern = LinePattern.Dashed;
                if (k == 0) s.LegendText = legend;
            }
        }
        Add(real, RealColors, false, FormattableString.Invariant($"real ({real.Count})"));
        Add(generated, GeneratedColors, true, FormattableString.Invariant($"generated ({generated.Count})"));
        plot.Title(feature);
        plot.XLabel("step");
        IntegerTicks(plot);
        plot.YLabel(feature);
        plot.ShowLegend(Alignment.UpperRight);
        return Png(plot, 520, 300);
    }

    /// <summary>log p(x_t | x_&lt;t) against the step for a few sequences (the most anomalous ones and a typical one).</summary>
    public static byte[] StepLogDensity(IReadOnlyList<(string Name, float[] Values)> sequences)
    {
        var plot = new Plot();
        for (int k = 0; k < sequences.Count; k++)
        {
            var (name, values) = sequences[k];
            var s = plot.Add.Scatter(Enumerable.Range(0, values.Length).Select(t => (double)t).ToArray(), values.Select(v => float.IsFinite(v) ? v : double.NaN).ToArray());
            s.LineWidth = 1.5f;
            s.MarkerSize = 4;
            s.Color = k == sequences.Count - 1 ? Colors.Gray : GeneratedColors[k % GeneratedColors.Length];
            s.LegendText = name;
        }
        plot.Title("Per-step log-density along sequences");
        plot.XLabel("step");
        IntegerTicks(plot);
        plot.YLabel("log p(x_t | x_<t)");
        plot.ShowLegend(Alignment.LowerLeft);
        return Png(plot, 720, 360);
    }
}
