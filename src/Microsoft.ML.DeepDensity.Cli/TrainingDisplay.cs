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
        string train = double.IsFinite(p.TrainLogLikelihood) ? p.TrainLogLikelihood.ToString("F4", ci) : "-";
        string valid = p.ValidationLogLikelihood is double v && double.IsFinite(v) ? v.ToString("F4", ci) : "-";
        // The step's own unit: "epoch" for gradient trainers, "EM iteration" / "pretraining EM iteration" for the Deep GMM.
        return string.Format(ci, "{0} {1,4}  train {2,10}  valid {3,10}  {4,9:F0} ex/s  {5,7:F1} s{6}",
            p.Unit, p.Epoch, train, valid, p.ExamplesPerSecond, p.Elapsed.TotalSeconds, p.Note is null ? "" : "  " + p.Note);
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
            string valid = p.ValidationLogLikelihood is double v && double.IsFinite(v) ? v.ToString("F3", ci) : "-";
            string train = double.IsFinite(p.TrainLogLikelihood) ? p.TrainLogLikelihood.ToString("F3", ci) : "-";
            task.Description = Markup.Escape(string.Format(ci, "{0} {1}  train {2}  valid {3}  {4:F0} ex/s", p.Unit, p.Epoch, train, valid, p.ExamplesPerSecond));
            task.Value = Math.Min(task.MaxValue, p.Epoch);
        }
    }
}
