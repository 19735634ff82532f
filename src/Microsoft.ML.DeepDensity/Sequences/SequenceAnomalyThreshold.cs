using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using static Microsoft.ML.DeepDensity.Transforms.AnomalyThreshold;

namespace Microsoft.ML.DeepDensity.Transforms;

/// <summary>
/// The PredictedLabel thresholds of the sequence estimators, by the row models' rule (<see cref="AnomalyThreshold.Choose"/>)
/// with sequences or frames in place of rows: the (1 − contamination) quantile of the scores of the validation view's
/// sequences, else of those the engine held out for early stopping (<see cref="RnnRnadeModel.HeldOutExamples"/>: its
/// own split, not a second one; too few for the empirical quantile, its normal approximation), else of the training
/// data (fewer than <see cref="AnomalyThreshold.MinimumTailRows"/> of those, or <see cref="DensityThresholdRows.Training"/>).
/// A sequence model scores its training sequences better than new ones of the same process, as a row model does its rows,
/// so a threshold set on them flags more than the contamination of new normal sequences.
/// </summary>
internal static class SequenceAnomalyThreshold
{
    /// <summary>Frames at one position that its own start threshold needs at least (and 1 / contamination); the windows a
    /// held-out or validation set needs for its start thresholds (else the training windows set them).</summary>
    internal const int MinStartFrames = 100;

    /// <summary>Whole sequences: the threshold of Score = −log-density per frame over sequences (counted as sequences), and
    /// its description for the log ("12 held-out sequences").</summary>
    /// <param name="frameLogDensities"><paramref name="data"/>'s frames' log-densities (the scorer's values).</param>
    /// <param name="heldOut">The training sequences the trainer held out (indices into <paramref name="data"/>; empty when
    /// it held out none, or held out parts of sequences, which are no whole sequences).</param>
    internal static (float Threshold, ThresholdPlan Plan) WholeSequences(SequenceDensityModel model, SequenceBatch data, float[] frameLogDensities,
        SequenceBatch? validation, int[] heldOut, DensityThresholdRows choice, double contamination, CancellationToken cancellationToken)
    {
        var plan = Choose(choice, contamination, data.Count, validation?.Count, heldOut.Length, "sequence");
        var scores = plan.Set switch
        {
            ThresholdSet.Validation => SequenceScores(validation!, RnnRnadeColumns.ScoreFramesCancellably(model, validation!, cancellationToken), null),
            ThresholdSet.HeldOut => SequenceScores(data, frameLogDensities, heldOut),
            _ => SequenceScores(data, frameLogDensities, null),
        };
        return (plan.Threshold(scores, contamination), plan);
    }

    /// <summary>Each sequence's score exactly as the scorer computes it (from the frames' conditionals,
    /// <see cref="RnnRnadeSurrogate.Totals"/>), so that ⌊contamination · n⌋ of those n sequences score above the threshold.</summary>
    private static float[] SequenceScores(SequenceBatch sequences, float[] frameLogDensities, int[]? indices)
    {
        var scores = new float[indices?.Length ?? sequences.Count];
        for (int k = 0; k < scores.Length; k++)
        {
            int i = indices is null ? k : indices[k];
            scores[k] = Scoring.ScoreFromLogDensity(RnnRnadeSurrogate.Totals(frameLogDensities.AsSpan(sequences.Offsets[i], sequences.Length(i))).PerFrame);
        }
        return scores;
    }

    /// <summary>
    /// Frame rows: the threshold of the frames' scores (counted as frames: the quantile is over frames; each scored in its
    /// whole sequence, as the scorer streams it), the first positions' thresholds (<see cref="StartThresholds"/>, from
    /// windows each scored from the initial state, counted as windows: one frame a position each) and which frames and
    /// windows set them, for the log. The held-out
    /// frames are those of the sequences, or training windows (one long series), the engine held out; the held-out
    /// windows are those sequences cut as the model trained on them, or those windows.
    /// </summary>
    /// <param name="frameLogDensities"><paramref name="data"/>'s frames' log-densities, each in its whole sequence.</param>
    internal static (float Threshold, float[] StartThresholds, ThresholdPlan Plan, ThresholdPlan StartPlan) FrameRows(RnnRnadeModel model, SequenceBatch data,
        float[] frameLogDensities, SequenceBatch? validation, RnnRnadeOptions options, DensityThresholdRows choice, double contamination,
        CancellationToken cancellationToken)
    {
        // The split (a shuffle) only when its examples may be used.
        var (examples, heldOut) = choice == DensityThresholdRows.HeldOut && validation is null
            ? RnnRnadeModel.HeldOutExamples(data, options) : (data, Array.Empty<int>());
        long heldOutFrames = 0;
        foreach (int i in heldOut) heldOutFrames += examples.Length(i);
        bool own = choice == DensityThresholdRows.HeldOut;
        var validationFrames = own && validation is not null ? RnnRnadeColumns.ScoreFramesCancellably(model, validation, cancellationToken) : null;
        var plan = Choose(choice, contamination, data.TotalFrames, validation?.TotalFrames, heldOutFrames, "frame");
        float[] scores = plan.Set switch
        {
            ThresholdSet.Validation => validationFrames!.Select(Scoring.ScoreFromLogDensity).ToArray(),
            ThresholdSet.HeldOut => FrameScores(examples, frameLogDensities, heldOut),
            _ => frameLogDensities.Select(Scoring.ScoreFromLogDensity).ToArray(),
        };
        float threshold = plan.Threshold(scores, contamination);

        int window = options.TrainingWindow;
        var ownWindows = !own ? null
            : validation is not null ? RnnRnadeModel.InWindows(validation, window)
            : heldOut.Length == 0 ? null
            : ReferenceEquals(examples, data) ? RnnRnadeModel.InWindows(data.Select(heldOut, cancellationToken), window) : examples.Select(heldOut, cancellationToken);
        // The validation view's windows count as validation units, the held-out ones as held-out (the description and warning say which).
        var startPlan = Choose(choice, contamination, RnnRnadeModel.TrainingExamples(data, window), validation is null ? null : ownWindows?.Count, ownWindows?.Count ?? 0,
            "window", StartWindowsNeeded(contamination));
        var windows = startPlan.Set == ThresholdSet.Training ? RnnRnadeModel.InWindows(data, window) : ownWindows!;
        // A window set that is not cut scores as its sequences: their frames' log-densities are already known.
        var windowFrames = ReferenceEquals(windows, data) ? frameLogDensities
            : ReferenceEquals(windows, validation) ? validationFrames!
            : RnnRnadeColumns.ScoreFramesCancellably(model, windows, cancellationToken);
        var start = StartThresholds(windows, windowFrames, contamination, threshold, startPlan.Tail);
        return (threshold, start, plan, startPlan);
    }

    /// <summary>The scores of the frames of <paramref name="examples"/>' examples <paramref name="indices"/>, from
    /// <paramref name="frameLogDensities"/> (examples number their frames as the training data does).</summary>
    private static float[] FrameScores(SequenceBatch examples, float[] frameLogDensities, int[] indices)
    {
        var scores = new List<float>();
        foreach (int i in indices)
            for (int f = examples.Offsets[i]; f < examples.Offsets[i + 1]; f++) scores.Add(Scoring.ScoreFromLogDensity(frameLogDensities[f]));
        return scores.ToArray();
    }

    /// <summary>max(<see cref="MinStartFrames"/>, ⌈1 / contamination⌉): the windows a position's own threshold needs;
    /// <see cref="int.MaxValue"/> (never) for contamination 0.</summary>
    private static int StartWindowsNeeded(double contamination)
        => contamination > 0 ? (int)Math.Min(int.MaxValue, Math.Max(MinStartFrames, Math.Ceiling(1 / contamination))) : int.MaxValue;

    /// <summary>
    /// PredictedLabel's thresholds of a sequence's first frames. A frame with no history (the first of a sequence, or of
    /// a new PredictionEngine's or cursor's view of it) is predicted less sharply than one with context, so the one
    /// threshold, a quantile of frames nearly all of which have context, flagged the first frames of nearly every
    /// normal sequence. Position p's threshold is the same quantile of the frames at position p of
    /// <paramref name="windows"/> (windows as the model trains on them, each from the initial state), for p = 0, 1, …
    /// while it is above <paramref name="threshold"/> and at least max(<see cref="MinStartFrames"/>, 1 / contamination)
    /// windows reach p; later frames use <paramref name="threshold"/>. Empty when the first position has too few frames.
    /// With <paramref name="tail"/> (held-out or validation windows too few for the empirical quantile at position 0) each
    /// position's threshold is the tail estimate (<see cref="TailThreshold"/>) of at least <see cref="MinimumTailRows"/>.
    /// </summary>
    internal static float[] StartThresholds(SequenceBatch windows, float[] logDensities, double contamination, float threshold, bool tail = false)
    {
        int needed = tail ? MinimumTailRows : StartWindowsNeeded(contamination);
        var result = new List<float>();
        var atPosition = new List<float>();
        for (int p = 0; p < SequenceSurrogate.MaxStartThresholds; p++)
        {
            atPosition.Clear();
            for (int i = 0; i < windows.Count; i++)
                if (windows.Length(i) > p) atPosition.Add(Scoring.ScoreFromLogDensity(logDensities[windows.Offsets[i] + p]));
            if (atPosition.Count < needed) break;
            float own = tail ? TailThreshold(atPosition.ToArray(), contamination) : Scoring.Threshold(atPosition.ToArray(), contamination);
            if (!(own > threshold)) break;
            result.Add(own);
        }
        return result.ToArray();
    }
}
