using Microsoft.ML.DeepDensity.Training;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.DeepDensity.Transforms;

/// <summary>Checks and helpers shared by the sequence estimators (whole sequences and frame rows).</summary>
internal static class RnnRnadeColumns
{
    public sealed class SequenceRow { public float[] Features = Array.Empty<float>(); }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting: an empty input or output column
    /// name, a name with the reserved prefix (<see cref="ReservedColumns"/>), an input name too long to save, output names that are not distinct, a contamination outside [0, 0.5].</summary>
    public static void CheckNames(IEnumerable<(string Setting, string Value)> inputs, IEnumerable<(string Setting, string Value)> outputs, double contamination)
    {
        var list = outputs.ToList();
        foreach (var (setting, value) in inputs.Concat(list))
            if (string.IsNullOrWhiteSpace(value)) throw new ArgumentException($"{setting} must be a non-empty column name.", setting);
        foreach (var (setting, value) in inputs.Concat(list)) ReservedColumns.CheckSetting(setting, value);
        // The input names are saved with the model (its errors name them), each behind a u16 length.
        foreach (var (setting, value) in inputs)
            if (System.Text.Encoding.UTF8.GetByteCount(value) is int bytes and > SequenceSurrogate.MaxColumnNameBytes)
                throw new ArgumentException(FormattableString.Invariant($"{setting} is {bytes} bytes long in UTF-8; a saved sequence model holds column names of up to ") +
                    FormattableString.Invariant($"{SequenceSurrogate.MaxColumnNameBytes} bytes."), setting);
        // Inputs too: a frame-row model given one column as both id and order made every row a one-frame sequence.
        ColumnSettings.CheckDistinct("Input", inputs.ToList());
        ColumnSettings.CheckDistinct("Output", list);
        if (!(contamination >= 0 && contamination <= 0.5))
            throw new ArgumentOutOfRangeException("Contamination", FormattableString.Invariant($"Contamination must be in [0, 0.5] (got {contamination})."));
    }

    /// <summary>Log-density of every frame of the training data for the threshold (whole sequences sum them as their
    /// scorer does), through the engine's cancellable scoring (a check between groups of whole sequences) and a last
    /// check: a Fit cancelled after its last epoch throws instead of returning a model (issue 13).</summary>
    public static float[] ScoreFramesCancellably(SequenceDensityModel model, Data.SequenceBatch data, CancellationToken cancellationToken)
    {
        var result = new float[data.TotalFrames];
        model.FrameLogDensity(data, result, cancellationToken);
        cancellationToken.ThrowIfCancellationRequested();
        return result;
    }

    /// <summary>Training progress to the MLContext log and the user's receiver.</summary>
    public static IProgress<TrainingProgress> Progress(IChannel channel, IProgress<TrainingProgress>? user, string name = "RnnRnade")
        => new Reporter(channel, user, name);

    private sealed class Reporter(IChannel channel, IProgress<TrainingProgress>? user, string name) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value)
        {
            channel.Info(MessageSensitivity.None, $"{name}: {value} (log-likelihoods per frame)");
            user?.Report(value);
        }
    }
}
