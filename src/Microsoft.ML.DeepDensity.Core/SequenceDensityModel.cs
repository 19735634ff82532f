using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Persistence;

namespace Microsoft.ML.DeepDensity;

/// <summary>
/// The contract every sequence model answers (one variable-length sequence of fixed-size frames per example): the
/// frame size, batched log-densities of whole sequences and of every frame given its past, sampling new sequences and
/// continuing given prefixes, and the same versioned model file and registry as <see cref="DensityModel"/>.
/// </summary>
/// <remarks>
/// Public members validate their input (frame size, finite values, domain; <see cref="SequenceBatch"/> itself rejects
/// empty sequences) and throw <see cref="DataValidationException"/> naming sequence, slot, frame and problem; the
/// protected <c>…Core</c> members see only validated data. Scoring and sampling are thread-safe: a trained model is
/// immutable and the cores must not share scratch state between calls.
/// </remarks>
public abstract class SequenceDensityModel : DensityModelBase
{
    /// <summary>Number of floats in one frame.</summary>
    public abstract int FrameSize { get; }

    /// <summary>
    /// Writes log p(x_1..x_T) of each sequence (the sum over its frames of log p(x_t | x_&lt;t)) into
    /// <paramref name="logDensity"/>; for <see cref="DensityKind.Estimate"/> models, its standard error into
    /// <paramref name="standardError"/> when that is non-empty (zeros for exact models).
    /// </summary>
    public void LogDensity(SequenceBatch sequences, Span<float> logDensity, Span<float> standardError = default)
        => LogDensity(sequences, logDensity, standardError, CancellationToken.None);

    /// <summary>
    /// <see cref="LogDensity(SequenceBatch, Span{float}, Span{float})"/> that can be cancelled, as the row models'
    /// <see cref="DensityModel.LogDensity(ReadOnlySpan{float}, Span{float}, Span{float}, CancellationToken)"/>: the
    /// sequences are validated, then scored in groups of whole sequences of up to <see cref="FramesPerCancellationCheck"/>
    /// frames (a longer sequence is a group of its own) with a check of <paramref name="cancellationToken"/> before each
    /// (<see cref="OperationCanceledException"/>; the destination then holds the groups done). A sequence's score does not
    /// depend on the sequences scored with it, so the scores are those of one call; the protected
    /// <c>LogDensityCore</c> is unchanged, so a model written outside the library gets this too.
    /// </summary>
    public void LogDensity(SequenceBatch sequences, Span<float> logDensity, Span<float> standardError, CancellationToken cancellationToken)
    {
        Check(sequences);
        int count = sequences.Count;
        if (logDensity.Length < count)
            throw new ArgumentException(FormattableString.Invariant($"Destination has {logDensity.Length} slots for {count} sequences."), nameof(logDensity));
        if (!standardError.IsEmpty && standardError.Length < count)
            throw new ArgumentException(FormattableString.Invariant($"Standard-error destination has {standardError.Length} slots for {count} sequences."), nameof(standardError));
        cancellationToken.ThrowIfCancellationRequested();
        if (count == 0) return;
        var ld = logDensity[..count];
        var se = standardError.IsEmpty ? default : standardError[..count];
        se.Clear();
        InGroups(sequences, ld, se, perFrame: false, cancellationToken, FramesPerCancellationCheck, _sequenceScorer ??= LogDensityCore, null);
        CheckOutputs(ld, se, "sequence");
    }

    /// <summary>Scores a batch (or a group of its sequences) into its destinations: <c>LogDensityCore</c>, or the frame
    /// scores with an empty second destination.</summary>
    private protected delegate void GroupScorer(SequenceBatch group, Span<float> destination, Span<float> second);

    // Made once per model: the one-call path allocates nothing.
    private GroupScorer? _sequenceScorer, _frameScorer;

    /// <summary>
    /// The one group loop of the cancellable calls: <paramref name="score"/> on the whole batch when the token cannot be
    /// cancelled or the frames fit one group, else on groups of whole sequences of up to <paramref name="framesPerCheck"/>
    /// frames (a longer sequence a group of its own), with a check of <paramref name="cancellationToken"/> before every
    /// group but the first. The destinations are sliced per sequence, or per frame with <paramref name="perFrame"/>.
    /// <paramref name="groupDone"/>, when given, hears the sequences done after every group (tests cancel their token there).
    /// </summary>
    private void InGroups(SequenceBatch sequences, Span<float> destination, Span<float> second, bool perFrame, CancellationToken cancellationToken,
        int framesPerCheck, GroupScorer score, Action<int>? groupDone)
    {
        if (!cancellationToken.CanBeCanceled || sequences.TotalFrames <= framesPerCheck)
        {
            score(sequences, destination, second);
            groupDone?.Invoke(sequences.Count);
            return;
        }
        for (int first = 0, end; first < sequences.Count; first = end)
        {
            if (first > 0) cancellationToken.ThrowIfCancellationRequested();
            end = GroupEnd(sequences, first, framesPerCheck);
            int from = perFrame ? sequences.Offsets[first] : first, to = perFrame ? sequences.Offsets[end] : end;
            var group = Group(sequences, first, end, out var rented);
            try { score(group, destination[from..to], second.IsEmpty ? default : second[from..to]); }
            finally { System.Buffers.ArrayPool<float>.Shared.Return(rented); }
            groupDone?.Invoke(end);
        }
    }

    /// <summary>Frames the cancellable <c>LogDensity</c> and <c>FrameLogDensity</c> score between two checks of their
    /// token, in whole sequences (65,536).</summary>
    public const int FramesPerCancellationCheck = 1 << 16;

    /// <summary>The end of the group of whole sequences from <paramref name="first"/>: up to
    /// <paramref name="framesPerCheck"/> frames (<see cref="FramesPerCancellationCheck"/> in the public calls), or the one
    /// sequence if it is longer.</summary>
    private static int GroupEnd(SequenceBatch sequences, int first, int framesPerCheck = FramesPerCancellationCheck)
    {
        int end = first + 1;
        while (end < sequences.Count && sequences.Offsets[end + 1] - sequences.Offsets[first] <= framesPerCheck) end++;
        return end;
    }

    /// <summary>Sequences [<paramref name="first"/>, <paramref name="end"/>) as a batch of their own, their frames copied
    /// into <paramref name="rented"/> (from the shared pool; the caller returns it). A sequence's scores do not depend on
    /// the sequences scored with it, so a group scores as it would in the whole batch.</summary>
    private SequenceBatch Group(SequenceBatch sequences, int first, int end, out float[] rented)
    {
        int d = FrameSize, start = sequences.Offsets[first], frames = sequences.Offsets[end] - start;
        var offsets = new int[end - first + 1];
        for (int i = first; i <= end; i++) offsets[i - first] = sequences.Offsets[i] - start;
        rented = System.Buffers.ArrayPool<float>.Shared.Rent(frames * d);
        sequences.Values.AsSpan(start * d, frames * d).CopyTo(rented);
        return new SequenceBatch(rented, offsets, d);
    }

    /// <summary>Log-densities of the sequences as a new array.</summary>
    public float[] LogDensity(SequenceBatch sequences) => LogDensity(sequences, CancellationToken.None);

    /// <summary>Log-densities of the sequences as a new array; cancellable (see
    /// <see cref="LogDensity(SequenceBatch, Span{float}, Span{float}, CancellationToken)"/>).</summary>
    public float[] LogDensity(SequenceBatch sequences, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        var result = new float[sequences.Count];
        LogDensity(sequences, result, default, cancellationToken);
        return result;
    }

    /// <summary>Writes log p(x_t | x_&lt;t) of every frame (TotalFrames values, in the batch's frame order).</summary>
    public void FrameLogDensity(SequenceBatch sequences, Span<float> frameLogDensity)
        => FrameLogDensity(sequences, frameLogDensity, CancellationToken.None);

    /// <summary><see cref="FrameLogDensity(SequenceBatch, Span{float})"/> that can be cancelled, in the groups of whole
    /// sequences of <see cref="LogDensity(SequenceBatch, Span{float}, Span{float}, CancellationToken)"/>; bit for bit the
    /// one-call values.</summary>
    public void FrameLogDensity(SequenceBatch sequences, Span<float> frameLogDensity, CancellationToken cancellationToken)
    {
        Check(sequences);
        int frames = sequences.TotalFrames;
        if (frameLogDensity.Length < frames)
            throw new ArgumentException(FormattableString.Invariant($"Destination has {frameLogDensity.Length} slots for {frames} frames."), nameof(frameLogDensity));
        cancellationToken.ThrowIfCancellationRequested();
        if (frames == 0) return;
        var destination = frameLogDensity[..frames];
        FrameLogDensityInGroups(sequences, destination, cancellationToken, FramesPerCancellationCheck, null);
        CheckOutputs(destination, default, "frame");
    }

    /// <summary>The frame scores of validated <paramref name="sequences"/> into <paramref name="destination"/> (TotalFrames
    /// slots) through the one group loop (<see cref="InGroups"/>); shared with the models' own cancellable calls
    /// (RNN-RNADE's one-step-ahead density).</summary>
    private protected void FrameLogDensityInGroups(SequenceBatch sequences, Span<float> destination, CancellationToken cancellationToken,
        int framesPerCheck, Action<int>? groupDone)
        => InGroups(sequences, destination, default, perFrame: true, cancellationToken, framesPerCheck,
            _frameScorer ??= (group, frames, _) => FrameLogDensityCore(group, frames), groupDone);

    /// <summary>Mean log-density per sequence (float64 accumulation).</summary>
    public double AverageLogDensity(SequenceBatch sequences)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        if (sequences.Count == 0) throw new DataValidationException(-1, -1, "there are no sequences (the average of no log-densities is undefined)", null) { Kind = DataProblemKind.NotEnoughData };
        double s = 0;
        foreach (var v in LogDensity(sequences)) s += v;
        return s / sequences.Count;
    }

    /// <summary>Draws <paramref name="count"/> sequences of <paramref name="length"/> frames; sequence i depends only on (seed, i).</summary>
    public SequenceBatch Sample(int count, int length, ulong seed) => Sample(count, length, seed, CancellationToken.None);

    /// <summary>
    /// <see cref="Sample(int, int, ulong)"/> that can be cancelled, as the row models' <see cref="DensityModel.Sample(int, ulong, CancellationToken)"/>:
    /// the token is checked before any work and then as the model goes (RNN-RNADE before every block of sequences and
    /// every frame step), throwing <see cref="OperationCanceledException"/>. The same seed gives the same sequences with
    /// or without a token.
    /// </summary>
    public SequenceBatch Sample(int count, int length, ulong seed, CancellationToken cancellationToken)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "Sample count must be non-negative.");
        if (length < 1) throw new ArgumentOutOfRangeException(nameof(length), length, "Sampled sequences need at least one frame.");
        CheckSampleSize((long)count * length, count, length);
        var offsets = new int[count + 1];
        for (int i = 0; i < count; i++) offsets[i + 1] = checked(offsets[i] + length);
        cancellationToken.ThrowIfCancellationRequested();
        var result = new SequenceBatch(new float[checked((long)offsets[count] * FrameSize)], offsets, FrameSize);
        if (count > 0) SampleCore(null, result, length, seed, cancellationToken);
        CheckSamples(result.AsSpan(), FrameSize, "frame");
        return result;
    }

    /// <summary>
    /// Continues each of <paramref name="prefixes"/> by <paramref name="extraFrames"/> frames drawn from p(x_t | x_&lt;t);
    /// the result holds each prefix followed by its continuation. Continuation i depends only on (seed, i, prefix i).
    /// Its noise is not that of a fresh draw with the same seed: continuing sequences drawn with seed s by more frames
    /// with seed s again gives a valid draw of the longer sequences (not the same bits as drawing them at that length),
    /// and so does a rolling forecast that continues its own output with one seed.
    /// </summary>
    public SequenceBatch Sample(SequenceBatch prefixes, int extraFrames, ulong seed) => Sample(prefixes, extraFrames, seed, CancellationToken.None);

    /// <summary><see cref="Sample(SequenceBatch, int, ulong)"/> that can be cancelled (see <see cref="Sample(int, int, ulong, CancellationToken)"/>).</summary>
    public SequenceBatch Sample(SequenceBatch prefixes, int extraFrames, ulong seed, CancellationToken cancellationToken)
    {
        Check(prefixes);
        if (extraFrames < 0) throw new ArgumentOutOfRangeException(nameof(extraFrames), extraFrames, "Extra frames must be non-negative.");
        int count = prefixes.Count, d = FrameSize;
        CheckSampleSize(prefixes.TotalFrames + (long)count * extraFrames, count, extraFrames);
        var offsets = new int[count + 1];
        for (int i = 0; i < count; i++) offsets[i + 1] = checked(offsets[i] + prefixes.Length(i) + extraFrames);
        cancellationToken.ThrowIfCancellationRequested();
        var result = new SequenceBatch(new float[checked((long)offsets[count] * d)], offsets, d);
        for (int i = 0; i < count; i++) prefixes.Sequence(i).CopyTo(result.Values.AsSpan(offsets[i] * d));
        if (count > 0 && extraFrames > 0) SampleCore(prefixes, result, extraFrames, seed, cancellationToken);
        CheckSamples(result.AsSpan(), d, "frame");
        return result;
    }

    /// <summary>The draw fits one array of values (else a clear error instead of an overflow or an out-of-memory crash).</summary>
    private void CheckSampleSize(long frames, int count, int length)
    {
        if (frames > Array.MaxLength / Math.Max(1, FrameSize))
            throw new ArgumentOutOfRangeException(nameof(count), count,
                FormattableString.Invariant($"{count} sequences of {length} (new) frames of {FrameSize} values exceed the largest array ({Array.MaxLength:N0} values); draw them in smaller batches."));
    }

    /// <summary>Loads a sequence model; a corrupt, truncated or foreign file (or a row model) throws <see cref="InvalidModelFileException"/>.</summary>
    public static SequenceDensityModel Load(Stream stream) => AsSequenceModel(ModelFile.Read(stream));

    /// <summary>Loads a sequence model from bytes produced by <see cref="DensityModelBase.ToBytes"/>.</summary>
    public static SequenceDensityModel FromBytes(ReadOnlySpan<byte> bytes) => AsSequenceModel(ModelFile.Read(bytes));

    private static SequenceDensityModel AsSequenceModel(DensityModelBase model)
        => model as SequenceDensityModel ?? throw new InvalidModelFileException(
            $"The file holds a {model.ModelKind} row model, not a sequence model; load it with {nameof(DensityModel)}.{nameof(DensityModel.Load)}.");

    /// <summary>Scores validated sequences. The default sums <see cref="FrameLogDensityCore"/> per sequence (float64);
    /// override when the model has a cheaper or stochastic whole-sequence estimate.</summary>
    protected virtual void LogDensityCore(SequenceBatch sequences, Span<float> logDensity, Span<float> standardError)
    {
        // A pooled buffer: scoring makes no garbage per frame once warm.
        var rented = System.Buffers.ArrayPool<float>.Shared.Rent(sequences.TotalFrames);
        try
        {
            var frames = rented.AsSpan(0, sequences.TotalFrames);
            FrameLogDensityCore(sequences, frames);
            for (int i = 0; i < sequences.Count; i++)
            {
                double s = 0;
                for (int t = sequences.Offsets[i]; t < sequences.Offsets[i + 1]; t++) s += frames[t];
                logDensity[i] = (float)s;
            }
        }
        finally { System.Buffers.ArrayPool<float>.Shared.Return(rented); }
    }

    /// <summary>log p(x_t | x_&lt;t) of every frame of validated sequences.</summary>
    protected abstract void FrameLogDensityCore(SequenceBatch sequences, Span<float> frameLogDensity);

    /// <summary>
    /// Fills the last <paramref name="newFrames"/> frames of every sequence of <paramref name="destination"/> (whose
    /// earlier frames hold the prefix, if any): <paramref name="prefixes"/> is null when sampling from scratch. Must be a
    /// pure function of (seed, sequence index, prefix), independent of the thread count. A continuation must not replay
    /// the noise a fresh draw of the same seed and index used for the prefix's frames (key its stream by the prefix
    /// length too, e.g. <c>root.Fork(i, prefixLength)</c>): else continuing a draw with its own seed correlates the new
    /// frames with the old ones beyond the model (the conformance suite checks this).
    /// </summary>
    protected abstract void SampleCore(SequenceBatch? prefixes, SequenceBatch destination, int newFrames, ulong seed);

    /// <summary>Cancellable form of <see cref="SampleCore(SequenceBatch?, SequenceBatch, int, ulong)"/>; the built-in
    /// models override it and check the token as they go (the default ignores it: the caller checked it before the call,
    /// so a model written before the token existed keeps compiling and working).</summary>
    protected virtual void SampleCore(SequenceBatch? prefixes, SequenceBatch destination, int newFrames, ulong seed, CancellationToken cancellationToken)
        => SampleCore(prefixes, destination, newFrames, seed);

    private void Check(SequenceBatch sequences)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        DataValidation.CheckSequences(sequences, FrameSize, InputDomain, "sequences");
    }
}
