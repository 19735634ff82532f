using System.Globalization;
using Microsoft.ML.DeepDensity.Training;
using Spectre.Console;

namespace Microsoft.ML.DeepDensity.Cli;

/// <summary>
/// Shows training progress: a live Spectre.Console progress bar (epoch, train/validation log-likelihood, examples/s,
/// ETA) on an interactive terminal, one plain line per epoch when the output is redirected (logs, CI, tests).
/// Progress arrives synchronously on the training thread, once per epoch or EM iteration.
/// </summary>
public sealed class TrainingDisplay
{
    private readonly TextWriter _out;
    private readonly bool _live;

    public TrainingDisplay(TextWriter output, bool live) { _out = output; _live = live; }

    /// <summary>Runs <paramref name="train"/>, which reports to the given receiver; <paramref name="maxEpochs"/> sizes the bar.</summary>
    public T Run<T>(string title, int maxEpochs, Func<IProgress<TrainingProgress>, T> train)
    {
        if (!_live) return train(new PlainProgress(_out));
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                     new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(title), maxValue: Math.Max(1, maxEpochs));
                result = train(new LiveProgress(task));
                task.Value = task.MaxValue;
            });
        return result;
    }

    /// <summary>One line per report.</summary>
    public static string Line(TrainingProgress p)
    {
        var ci = CultureInfo.InvariantCulture;
        var (what, train, valid, note) = Figures(p, "F4");
        // The step's own unit: "epoch" for gradient trainers, "EM iteration" / "pretraining EM iteration" for the Deep GMM.
        return string.Format(ci, "{0} {1,4}  train {2}{3,10}  valid {2}{4,10}  {5,9:F0} ex/s  {6,7:F1} s{7}",
            p.Unit, p.Epoch, what, train, valid, p.ExamplesPerSecond, p.Elapsed.TotalSeconds, note is null ? "" : "  " + note);
    }

    /// <summary>
    /// The figures a progress line shows: the train/validation log-likelihoods, or, for a trainer that has none (an RBM
    /// with Gaussian units reports NaN and its reconstruction error in <see cref="TrainingProgress.Metrics"/>), the
    /// reconstruction errors, labelled "recon error" so that they are not read as likelihoods (lower is better).
    /// </summary>
    internal static (string What, string Train, string Valid, string? Note) Figures(TrainingProgress p, string format)
    {
        var ci = CultureInfo.InvariantCulture;
        string Show(double? v) => v is double x && double.IsFinite(x) ? x.ToString(format, ci) : "-";
        if (!double.IsFinite(p.TrainLogLikelihood) && p.Metrics is { } m && m.TryGetValue("recon_error", out var recon))
            return ("recon error ", Show(recon), Show(m.TryGetValue("valid_recon_error", out var v) ? v : null),
                "(RBM with Gaussian units: no likelihood; squared reconstruction error per row, lower is better)");
        return ("", Show(p.TrainLogLikelihood), Show(p.ValidationLogLikelihood), p.Note);
    }

    private sealed class PlainProgress(TextWriter output) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) { output.WriteLine(Line(value)); output.Flush(); }
    }

    private sealed class LiveProgress(ProgressTask task) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress p)
        {
            var ci = CultureInfo.InvariantCulture;
            var (what, train, valid, _) = Figures(p, "F3");
            task.Description = Markup.Escape(string.Format(ci, "{0} {1}  train {2}{3}  valid {2}{4}  {5:F0} ex/s", p.Unit, p.Epoch, what, train, valid, p.ExamplesPerSecond));
            task.Value = Math.Min(task.MaxValue, p.Epoch);
        }
    }
}
