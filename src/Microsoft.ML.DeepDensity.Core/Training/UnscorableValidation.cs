using System.Globalization;
using Microsoft.ML.DeepDensity.Data;

namespace Microsoft.ML.DeepDensity.Training;

/// <summary>
/// A validation example the model cannot measure: its values are finite, the parameters are finite and within what a
/// model file holds and the training figure is finite, yet the validation figure is not (a row with a value of 3e38
/// where the training rows are in [0, 1]: −∞ or NaN once standardised). A halved learning rate cannot change that, and
/// the divergence message the trainers used to end with blamed the training data's range. The one place that finds the
/// example — only then, so a run whose validation figure is finite spends nothing on it — and words the error, for every
/// trainer that measures validation data (the gradient loop, the RBM's monitor, Deep GMM's EM); and the one place that
/// restates the example as a row the user can find (the validation data's own row, or the training row a held-out split
/// took it from), for every Fit.
/// </summary>
internal static class UnscorableValidation
{
    /// <summary>Words every such problem contains.</summary>
    internal const string Marker = "under the model that is not finite";

    /// <summary>Key in <see cref="Exception.Data"/> of the frame (0-based, an int) from which a sequence's log-density is not
    /// finite; the exception's row is the sequence.</summary>
    internal const string FrameKey = "DeepDensity.UnscorableFrame";

    /// <summary>Key in <see cref="Exception.Data"/> of the figure that was measured (a string: "log-density", the RBM
    /// monitor's), which a restatement names again.</summary>
    private const string FigureKey = "DeepDensity.UnscorableFigure";

    /// <summary>Whether <paramref name="e"/> is about an example the model cannot measure.</summary>
    internal static bool Is(DataValidationException e) => e.Kind == DataProblemKind.UnmeasurableValidationExample;

    /// <summary>The exception for such an example: row (or sequence) <paramref name="row"/>, from frame
    /// <paramref name="frame"/> on for a sequence (−1: a row), of <paramref name="source"/>.</summary>
    private static DataValidationException Create(long row, int column, int frame, string problem, string source, string figure)
    {
        var e = new DataValidationException(row, column, problem, source) { Kind = DataProblemKind.UnmeasurableValidationExample };
        if (frame >= 0) e.Data[FrameKey] = frame;
        e.Data[FigureKey] = figure;
        return e;
    }

    /// <summary>The frame of <paramref name="e"/>'s sequence from which its log-density is not finite, or −1 (rows).</summary>
    internal static int Frame(DataValidationException e) => e.Data[FrameKey] is int f ? f : -1;

    /// <summary>
    /// The first example of <paramref name="validation"/> (its position in a pass) whose figure is not finite, and for a
    /// sequence the first frame from which it is not; null when there is none (the total was not finite for another reason,
    /// which the caller treats as before). <paramref name="figure"/>(batch, block) measures a batch as the trainer does
    /// block number <paramref name="blockSize"/>-block <c>block</c> (numbered across the windows): the blocks are measured
    /// whole first, then the examples of the first non-finite one one by one, then that example's prefixes.
    /// </summary>
    internal static (long Example, int Frame)? Find(ITrainingSource validation, int blockSize, Func<TrainingBatch, int, double> figure,
        CancellationToken cancellationToken)
    {
        var batch = new TrainingBatch();
        var one = new TrainingBatch();
        foreach (var block in TrainingLoop.Blocks(validation, blockSize, batch, cancellationToken))
        {
            if (double.IsFinite(figure(batch, block.Number))) continue;
            for (int i = 0; i < block.Count; i++)
            {
                block.Window.CopyBatch([block.Start + i], one);
                if (!double.IsFinite(figure(one, block.Number))) return (block.First + i, FirstFrame(one, block.Number, figure));
            }
        }
        return null;
    }

    /// <summary>The first frame from which the one sequence of <paramref name="one"/> has a non-finite figure (its shortest
    /// such prefix, by bisection: a frame's non-finite conditional keeps every longer prefix's sum non-finite); −1 for rows.</summary>
    private static int FirstFrame(TrainingBatch one, int block, Func<TrainingBatch, int, double> figure)
    {
        if (one.Sequences is not { } s) return -1;
        var frames = s.Sequence(0).ToArray();
        int length = s.Length(0), frameSize = s.FrameSize;
        var prefix = new TrainingBatch();
        int lo = 1, hi = length;   // the prefix of hi frames is not finite
        while (lo < hi)
        {
            int mid = lo + (hi - lo) / 2;
            frames.AsSpan(0, mid * frameSize).CopyTo(prefix.PrepareSequences([mid], frameSize));
            if (double.IsFinite(figure(prefix, block))) lo = mid + 1; else hi = mid;
        }
        return hi - 1;
    }

    /// <summary>The trainer's error: example <paramref name="example"/> of the validation data (a row, or a sequence and
    /// <paramref name="frame"/>) as the engine was given it. A Fit restates it in its user's rows
    /// (<see cref="InUserRows(DataValidationException, RowMatrix, RowMatrix?, double, ulong)"/>).</summary>
    /// <param name="figure">What was measured ("log-density"; the RBM monitor's "free energy or reconstruction error").</param>
    internal static DataValidationException Error(long example, int frame, string figure = "log-density")
        => Create(example, -1, frame, Problem(frame, null, null, figure),
            frame >= 0 ? DataValidation.ValidationSequences : DataValidation.ValidationData, figure);

    /// <summary>The problem in words: a row (or frame <paramref name="frame"/> of a sequence) of the validation data, or held
    /// out of the training data (<paramref name="heldOut"/>: the split in words), with <paramref name="detail"/> (its
    /// extreme value, in parentheses) when known. Ends so that a layer above may name the data set after it
    /// ("… correct or remove the row in the validation data").</summary>
    internal static string Problem(int frame, string? heldOut, string? detail, string figure = "log-density")
    {
        string noun = frame >= 0 ? "frame" : "row";
        string where = heldOut is null ? "the validation data" : frame >= 0 ? "the held-out sequences" : "the held-out rows";
        return (frame >= 0 ? FormattableString.Invariant($"frame {frame}: ") : "") +
               $"this {noun}{(heldOut is null ? "" : $", {heldOut},")} has a {figure} {Marker}, so early stopping cannot measure the model on {where}: " +
               $"the {noun} lies far outside the {(heldOut is null ? "training data" : $"other training {noun}s")}{(detail is null ? "" : $" ({detail})")}; " +
               $"this is not a divergence of training — correct or remove the {noun}";
    }

    /// <summary>How a held-out split is described in <see cref="Problem"/>.</summary>
    internal static string HeldOutWords(double fraction, string what = "held out for validation")
        => string.Create(CultureInfo.InvariantCulture, $"{what} (ValidationFraction = {fraction:R})");

    /// <summary>Runs a Fit's training, restating an example it cannot measure (<see cref="InUserRows(DataValidationException, RowMatrix, RowMatrix?, double, ulong)"/>)
    /// as a row of the caller's data: the one wrapper every in-memory Fit puts around its trainer.</summary>
    internal static T NamingUserRows<T>(Func<T> train, RowMatrix data, RowMatrix? validation, double fraction, ulong seed)
    {
        try { return train(); }
        catch (DataValidationException e) when (Is(e)) { throw InUserRows(e, data, validation, fraction, seed); }
    }

    /// <summary><see cref="NamingUserRows{T}(Func{T}, RowMatrix, RowMatrix?, double, ulong)"/> for a streamed Fit.</summary>
    internal static T NamingUserRows<T>(Func<T> train, IRowStream? validation, double fraction, ulong seed)
    {
        try { return train(); }
        catch (DataValidationException e) when (Is(e)) { throw InUserRows(e, validation, fraction, seed); }
    }

    /// <summary>
    /// <paramref name="e"/> (from a Fit in memory on <paramref name="data"/>, with <paramref name="validation"/> or the
    /// seeded held-out split of <paramref name="fraction"/> and <paramref name="seed"/>) in the user's rows: the validation
    /// data's row, or the training row the split held out; with the column whose value is furthest beyond that column's
    /// largest magnitude in the training rows, and both values in words, when it is ten times that at least. Any other
    /// exception is returned as it is.
    /// </summary>
    internal static DataValidationException InUserRows(DataValidationException e, RowMatrix data, RowMatrix? validation, double fraction, ulong seed)
    {
        if (!Is(e) || e.DataSource != DataValidation.ValidationData || e.Row < 0) return e;
        if (validation is not null)
            return WithValues(e.Row, null, validation, data, null, DataValidation.ValidationData, e);
        if (TrainingLoop.SplitIndices(data.Rows, fraction, seed) is not { } split || e.Row >= split.Validation.Length) return e;
        return WithValues(split.Validation[e.Row], HeldOutWords(fraction), data, data, split.Train, DataValidation.TrainingData, e);
    }

    /// <summary><paramref name="e"/> from a streamed Fit: unchanged for a given validation stream (its position is the
    /// row), the training stream's position of the row a hashed split held out otherwise
    /// (<see cref="StreamingTrainingData.HeldOutPosition"/>). Any other exception is returned as it is.</summary>
    internal static DataValidationException InUserRows(DataValidationException e, IRowStream? validation, double fraction, ulong seed)
    {
        if (!Is(e) || e.DataSource != DataValidation.ValidationData || e.Row < 0 || validation is not null) return e;
        return Create(StreamingTrainingData.HeldOutPosition(e.Row, fraction, seed), -1, -1,
            Problem(-1, HeldOutWords(fraction, "held out for validation by a seeded hash of its position"), null, FigureOf(e)), DataValidation.TrainingData, FigureOf(e));
    }

    /// <summary>A held-out example restated as training sequence <paramref name="sequence"/> from frame
    /// <paramref name="frame"/> on (RNN-RNADE's held-out sequences or windows).</summary>
    internal static DataValidationException HeldOutSequence(int sequence, int frame, double fraction, string what)
        => Create(sequence, -1, frame, Problem(frame, HeldOutWords(fraction, what), null), DataValidation.TrainingSequences, "log-density");

    /// <summary>The figure named in <paramref name="e"/>'s problem ("log-density", the RBM monitor's).</summary>
    private static string FigureOf(DataValidationException e) => e.Data[FigureKey] as string ?? "log-density";

    /// <summary>Row <paramref name="row"/> of <paramref name="raw"/> (the user's values) named with the value furthest
    /// beyond its column's largest magnitude in the training rows (<paramref name="trainRows"/> of <paramref name="data"/>,
    /// all when null), if one is ten times that at least: its column, and the two values in words. Otherwise the row alone
    /// (column −1).</summary>
    private static DataValidationException WithValues(long row, string? heldOut, RowMatrix raw, RowMatrix data, int[]? trainRows,
        string source, DataValidationException e)
    {
        var values = raw.Row((int)row);
        var trainLargest = new float[values.Length];
        int trainCount = trainRows?.Length ?? data.Rows;
        for (int i = 0; i < trainCount; i++)
        {
            var r = data.Row(trainRows is null ? i : trainRows[i]);
            for (int c = 0; c < r.Length; c++) trainLargest[c] = Math.Max(trainLargest[c], Math.Abs(r[c]));
        }
        int column = -1;
        double furthest = 10;  // |value| / the column's largest training magnitude: "far beyond" is ten times at least
        for (int c = 0; c < values.Length; c++)
        {
            double ratio = trainLargest[c] > 0 ? Math.Abs(values[c]) / (double)trainLargest[c] : values[c] != 0 ? double.PositiveInfinity : 0;
            if (ratio > furthest) { furthest = ratio; column = c; }
        }
        string? detail = column < 0 ? null : string.Create(CultureInfo.InvariantCulture,
            $"its value {values[column]:G6} is far beyond the largest magnitude of that column in the training rows, {trainLargest[column]:G6}");
        return Create(row, column, -1, Problem(-1, heldOut, detail, FigureOf(e)), source, FigureOf(e));
    }
}
