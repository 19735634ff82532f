using System.Text;
using Microsoft.ML.DeepDensity.Data;

namespace Microsoft.ML.DeepDensity.Reporting;

/// <summary>The report of a sequence model (e.g. RNN-RNADE): per-step log-densities, anomalous steps and sequences, line plots.</summary>
public static partial class DensityReport
{
    /// <summary>The report of the one DeepDensity sequence model in an ML.NET pipeline (live or loaded) on <paramref name="sequences"/>.</summary>
    public static string Create(ITransformer model, SequenceBatch sequences, DensityReportOptions? options = null)
        => Create(model.GetSequenceDensityModel(), sequences, options);

    /// <summary>
    /// The report of a sequence model on <paramref name="sequences"/>: training curves (per frame), a histogram of the
    /// per-step log-densities log p(x_t | x_&lt;t), the ROC curve per step and — when the labels are constant within every
    /// sequence — per sequence (score = −mean log-density per frame), the most anomalous steps and sequences, the
    /// per-step log-density along the most anomalous sequences, and real sequences beside generated ones as line plots.
    /// <see cref="DensityReportOptions.Labels"/> and <see cref="DensityReportOptions.RowNames"/> are per frame, in the
    /// batch's frame order.
    /// </summary>
    public static string Create(SequenceDensityModel model, SequenceBatch sequences, DensityReportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(sequences);
        options ??= new DensityReportOptions();
        options.CheckFor(model.FrameSize, "values per frame");
        int frames = sequences.TotalFrames, count = sequences.Count;
        if (options.Labels is { } l && l.Count != frames)
            throw new ArgumentException(FormattableString.Invariant($"Labels has {l.Count} values for {frames} frames."), nameof(options));
        if (options.RowNames is { } rn && rn.Count != frames)
            throw new ArgumentException(FormattableString.Invariant($"RowNames has {rn.Count} values for {frames} frames."), nameof(options));
        if (options.SequenceNames is { } sn && sn.Count != count)
            throw new ArgumentException(FormattableString.Invariant($"SequenceNames has {sn.Count} values for {count} sequences."), nameof(options));
        var step = new float[frames];
        model.FrameLogDensity(sequences, step);
        var total = new double[count];
        for (int i = 0; i < count; i++)
            for (int f = sequences.Offsets[i]; f < sequences.Offsets[i + 1]; f++) total[i] += step[f];
        var perFrame = Enumerable.Range(0, count).Select(i => (float)(total[i] / sequences.Length(i))).ToArray();
        string SequenceName(int i) => options.SequenceNames?[i] ?? FormattableString.Invariant($"sequence {i}");
        var lengths = Enumerable.Range(0, count).Select(sequences.Length).OrderBy(n => n).ToArray();

        var html = ReportHtml.Begin(options.Title, new List<KeyValuePair<string, string>>(options.Facts)
        {
            new("model", FormattableString.Invariant($"{model.ModelKind}: {model.DensityKind} log-density of sequences, frame size {model.FrameSize}")),
            new("sequences scored", FormattableString.Invariant($"{count} ({frames} frames; length {lengths[0]}–{lengths[^1]}, median {MedianLength(sequences)})")),
            new("mean log-density per frame", (total.Sum() / frames).ToString("F4", Ci)),
            new("mean log-density per sequence", total.Average().ToString("F4", Ci)),
        });
        ReportHtml.TrainingSection(html, options.TrainingHistory, "frame");

        html.Append("<h2>Per-step log-densities</h2>\n<div class=\"row\">");
        ReportHtml.Histogram(html, step, options.Labels, "step");
        bool[]? sequenceLabels = null;
        if (options.Labels is { } labels)
        {
            sequenceLabels = ConstantLabels(sequences, labels);
            var curves = new List<(string, IReadOnlyList<(double, double)>, double)>();
            var captions = new List<string>();
            int positives = labels.Count(b => b);
            if (positives > 0 && positives < frames)
            {
                var (curve, auroc) = Roc.Compute(step.Select(v => -(double)v).ToArray(), labels);
                curves.Add(("per step", curve, auroc));
                captions.Add(FormattableString.Invariant($"per step: {positives} anomalous and {frames - positives} normal steps, AUROC {auroc.ToString("F4", Ci)}"));
            }
            if (sequenceLabels is not null && sequenceLabels.Count(b => b) is int sp && sp > 0 && sp < count)
            {
                var (curve, auroc) = Roc.Compute(perFrame.Select(v => -(double)v).ToArray(), sequenceLabels);
                curves.Add(("per sequence", curve, auroc));
                captions.Add(FormattableString.Invariant($"per sequence (score = −mean log-density per frame): {sp} anomalous and {count - sp} normal sequences, AUROC {auroc.ToString("F4", Ci)}"));
            }
            else if (sequenceLabels is null) captions.Add("no per-sequence curve: the label varies within a sequence");
            if (curves.Count > 0) ReportHtml.Image(html, Plots.Roc(curves), "ROC curve", string.Join("; ", captions) + ".");
            else html.Append("<p class=\"note\">The labels hold only one class, so there is no ROC curve.</p>");
        }
        html.Append("</div>\n");

        var names = options.FeatureNames ?? Enumerable.Range(0, model.FrameSize).Select(i => FormattableString.Invariant($"f{i}")).ToArray();
        var sequenceOf = new int[frames];
        for (int i = 0; i < count; i++) sequenceOf.AsSpan(sequences.Offsets[i], sequences.Length(i)).Fill(i);
        var topSteps = Enumerable.Range(0, frames).OrderBy(f => step[f]).ThenBy(f => f).Take(Math.Min(options.TopRows, frames)).ToArray();
        html.Append("<h2>Most anomalous steps</h2>\n<p>").Append(ReportHtml.The(topSteps.Length, "step")).Append(" with the lowest log p(x_t | x_&lt;t).</p>\n<table>");
        int shown = Math.Min(names.Count, 10);
        var more = shown < names.Count ? new[] { "…" } : Array.Empty<string>();
        var left = new[] { 1, 2 };
        ReportHtml.TableRow(html, new[] { "rank", "row", "sequence", "step", "log-density" }.Concat(options.Labels is null ? Array.Empty<string>() : new[] { "label" })
            .Concat(names.Take(shown)).Concat(more), left, header: true);
        for (int k = 0; k < topSteps.Length; k++)
        {
            int f = topSteps[k], i = sequenceOf[f];
            ReportHtml.TableRow(html, new[] { (k + 1).ToString(Ci), options.RowNames?[f] ?? FormattableString.Invariant($"frame {f}"), SequenceName(i),
                    (f - sequences.Offsets[i]).ToString(Ci), step[f].ToString("F4", Ci) }
                .Concat(options.Labels is { } lb ? new[] { lb[f] ? "anomalous" : "normal" } : Array.Empty<string>())
                .Concat(sequences.Sequence(i).Slice((f - sequences.Offsets[i]) * model.FrameSize, shown).ToArray().Select(v => v.ToString("G5", Ci))).Concat(more), left);
        }
        html.Append("</table>\n");

        var topSequences = Enumerable.Range(0, count).OrderBy(i => perFrame[i]).ThenBy(i => i).Take(Math.Min(options.TopRows, count)).ToArray();
        html.Append("<h2>Most anomalous sequences</h2>\n<p>").Append(ReportHtml.The(topSequences.Length, "sequence"))
            .Append(" with the lowest mean log-density per frame.</p>\n<table>");
        ReportHtml.TableRow(html, new[] { "rank", "sequence", "frames", "log-density per frame", "log-density", "lowest step", "its log-density" }
            .Concat(options.Labels is null ? Array.Empty<string>() : new[] { "label" }), new[] { 1, 7 }, header: true);
        foreach (var (i, k) in topSequences.Select((i, k) => (i, k)))
        {
            int o = sequences.Offsets[i], lowest = Enumerable.Range(o, sequences.Length(i)).OrderBy(f => step[f]).First();
            string label = options.Labels is not { } lb ? "" : sequenceLabels is not null ? (sequenceLabels[i] ? "anomalous" : "normal")
                : FormattableString.Invariant($"{Enumerable.Range(o, sequences.Length(i)).Count(f => lb[f])} of {sequences.Length(i)} steps anomalous");
            ReportHtml.TableRow(html, new[] { (k + 1).ToString(Ci), SequenceName(i), sequences.Length(i).ToString(Ci), perFrame[i].ToString("F4", Ci),
                    total[i].ToString("F4", Ci), (lowest - o).ToString(Ci), step[lowest].ToString("F4", Ci) }
                .Concat(options.Labels is null ? Array.Empty<string>() : new[] { label }), new[] { 1, 7 });
        }
        html.Append("</table>\n");
        var typical = Enumerable.Range(0, count).OrderBy(i => perFrame[i]).ThenBy(i => i).ElementAt(count / 2);
        var traced = topSequences.Take(Math.Min(3, count - 1)).Append(typical)
            .Select(i => (Name: SequenceName(i) + (i == typical ? " (typical: median)" : ""), Values: step.AsSpan(sequences.Offsets[i], sequences.Length(i)).ToArray())).ToList();
        ReportHtml.Image(html, Plots.StepLogDensity(traced), "Per-step log-density along sequences",
            "log p(x_t | x_<t) at every step of the most anomalous sequences, and of the median sequence (grey) for comparison.");

        // SequenceCount 0 draws no sequences: the report has no section of real and generated ones.
        if (options.SequenceCount == 0) return ReportHtml.End(html);
        int n = options.SequenceCount, length = options.SampleLength ?? Math.Min(MedianLength(sequences), DensityReportOptions.MaxSampleLength);
        var generated = model.Sample(n, length, options.Seed);
        // Real sequences to compare the draws with: normal ones when the labels say which.
        var realIndices = Enumerable.Range(0, count).Where(i => sequenceLabels is null || !sequenceLabels[i]).Take(n).ToArray();
        int realCount = realIndices.Length, drawn = Math.Min(Math.Max(1, options.FeaturesDrawn), model.FrameSize);
        html.Append("<h2>Real and generated sequences</h2>\n<p>The first ").Append(realCount).Append(sequenceLabels is null ? "" : " normal")
            .Append(" scored sequences (solid) and ").Append(n)
            .Append(" sequences of ").Append(length).Append(" frames drawn from the model (dashed, seed ").Append(options.Seed).Append(')')
            .Append(drawn < model.FrameSize ? FormattableString.Invariant($"; the first {drawn} of {model.FrameSize} features") : "").Append(".</p>\n<div class=\"row\">");
        for (int j = 0; j < drawn; j++)
        {
            var real = realIndices.Select(i => Feature(sequences, i, j)).ToArray();
            var fake = Enumerable.Range(0, n).Select(i => Feature(generated, i, j)).ToArray();
            ReportHtml.Image(html, Plots.SequenceLines(names[j], real, fake), $"Sequences: {names[j]}", $"Feature {names[j]} against the step.");
        }
        html.Append("</div>\n");
        return ReportHtml.End(html);
    }

    /// <summary>The median sequence length (the lower middle one for an even count): the default length of generated sequences.</summary>
    public static int MedianLength(SequenceBatch sequences)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        if (sequences.Count == 0) throw new ArgumentException("There are no sequences.", nameof(sequences));
        var lengths = Enumerable.Range(0, sequences.Count).Select(sequences.Length).OrderBy(n => n).ToArray();
        return lengths[(lengths.Length - 1) / 2];
    }

    /// <summary>One label per sequence when the frame labels are constant within every sequence, else null.</summary>
    public static bool[]? ConstantLabels(SequenceBatch sequences, IReadOnlyList<bool> frameLabels)
    {
        var result = new bool[sequences.Count];
        for (int i = 0; i < sequences.Count; i++)
        {
            result[i] = frameLabels[sequences.Offsets[i]];
            for (int f = sequences.Offsets[i] + 1; f < sequences.Offsets[i + 1]; f++)
                if (frameLabels[f] != result[i]) return null;
        }
        return result;
    }

    private static float[] Feature(SequenceBatch batch, int sequence, int feature)
    {
        var s = batch.Sequence(sequence);
        int d = batch.FrameSize;
        var result = new float[s.Length / d];
        for (int t = 0; t < result.Length; t++) result[t] = s[t * d + feature];
        return result;
    }
}
