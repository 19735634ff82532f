namespace Microsoft.ML.DeepDensity.Data;

/// <summary>
/// A batch of variable-length sequences of fixed-size frames, stored back to back: sequence i is frames
/// <c>Offsets[i] .. Offsets[i+1] − 1</c>, frame t occupying <c>Values[t·FrameSize .. (t+1)·FrameSize)</c>.
/// The sequence analogue of <see cref="RowMatrix"/>: the engine's unit of data for sequence models.
/// </summary>
/// <remarks>The constructor checks the layout (offsets start at 0 and rise strictly, so no sequence is empty; enough
/// values); the values themselves are checked by the model that scores or trains on them.</remarks>
public sealed class SequenceBatch
{
    /// <summary>Wraps existing arrays (not copied). <paramref name="offsets"/> has Count + 1 entries, in frames.</summary>
    public SequenceBatch(float[] values, int[] offsets, int frameSize)
    {
        ArgumentNullException.ThrowIfNull(values);
        ArgumentNullException.ThrowIfNull(offsets);
        if (frameSize <= 0) throw new ArgumentOutOfRangeException(nameof(frameSize), frameSize, "The frame size must be positive.");
        if (offsets.Length == 0) throw new ArgumentException("Offsets need at least one entry (Count + 1 entries, the first 0).", nameof(offsets));
        if (offsets[0] != 0) throw new ArgumentException(FormattableString.Invariant($"Offsets[0] must be 0 (got {offsets[0]})."), nameof(offsets));
        for (int i = 0; i + 1 < offsets.Length; i++)
            if (offsets[i + 1] <= offsets[i])
                throw new DataValidationException(i, -1, offsets[i + 1] == offsets[i]
                    ? "sequence is empty (every sequence needs at least one frame)"
                    : FormattableString.Invariant($"offsets decrease ({offsets[i]} then {offsets[i + 1]})"), "sequences") { Kind = offsets[i + 1] == offsets[i] ? DataProblemKind.NotEnoughData : DataProblemKind.Other };
        int count = offsets.Length - 1;
        if ((long)offsets[count] * frameSize > values.Length)
            throw new ArgumentException(FormattableString.Invariant($"{offsets[count]} frames of size {frameSize} need {(long)offsets[count] * frameSize} values; the array has {values.Length}."), nameof(values));
        Values = values; Offsets = offsets; FrameSize = frameSize; Count = count;
    }

    /// <summary>Copies jagged sequences (each a whole number of frames, at least one).</summary>
    public static SequenceBatch FromSequences(IReadOnlyList<float[]> sequences, int frameSize)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        if (frameSize <= 0) throw new ArgumentOutOfRangeException(nameof(frameSize), frameSize, "The frame size must be positive.");
        var offsets = new int[sequences.Count + 1];
        for (int i = 0; i < sequences.Count; i++)
        {
            var s = sequences[i] ?? throw new ArgumentNullException(nameof(sequences), FormattableString.Invariant($"Sequence {i} is null."));
            if (s.Length % frameSize != 0)
                throw new DataValidationException(i, -1, FormattableString.Invariant($"{s.Length} values is not a whole number of frames of size {frameSize} (wrong frame size?)"), "sequences") { Kind = DataProblemKind.WrongSize };
            offsets[i + 1] = checked(offsets[i] + s.Length / frameSize);
        }
        var values = new float[checked(offsets[^1] * frameSize)];
        for (int i = 0; i < sequences.Count; i++) sequences[i].CopyTo(values, offsets[i] * frameSize);
        return new SequenceBatch(values, offsets, frameSize);
    }

    /// <summary>Frame values, back to back; length ≥ TotalFrames × FrameSize.</summary>
    public float[] Values { get; }
    /// <summary>Count + 1 frame offsets: sequence i is frames Offsets[i] .. Offsets[i+1] − 1.</summary>
    public int[] Offsets { get; }
    /// <summary>Floats per frame.</summary>
    public int FrameSize { get; }
    /// <summary>Number of sequences.</summary>
    public int Count { get; }
    /// <summary>Frames of all sequences together.</summary>
    public int TotalFrames => Offsets[Count];

    /// <summary>Frames in sequence <paramref name="i"/>.</summary>
    public int Length(int i) => Offsets[i + 1] - Offsets[i];

    /// <summary>Sequence <paramref name="i"/>'s values (Length(i) × FrameSize).</summary>
    public Span<float> Sequence(int i) => Values.AsSpan(Offsets[i] * FrameSize, Length(i) * FrameSize);

    /// <summary>All frames as one span (TotalFrames × FrameSize).</summary>
    public Span<float> AsSpan() => Values.AsSpan(0, TotalFrames * FrameSize);

    /// <summary>Copies the given sequences (in order) into a new batch.</summary>
    public SequenceBatch Select(ReadOnlySpan<int> indices) => Select(indices, CancellationToken.None);

    /// <summary><see cref="Select(ReadOnlySpan{int})"/> with <paramref name="cancellationToken"/> checked before the copy
    /// and whenever a run of frames has been copied (a Fit's preparation, <see cref="Preparation"/>).</summary>
    internal SequenceBatch Select(ReadOnlySpan<int> indices, CancellationToken cancellationToken)
    {
        var offsets = new int[indices.Length + 1];
        for (int i = 0; i < indices.Length; i++) offsets[i + 1] = offsets[i] + Length(indices[i]);
        var values = new float[offsets[^1] * FrameSize];
        int run = Preparation.RowsPerCheck(FrameSize), next = 0;
        for (int i = 0; i < indices.Length; i++)
        {
            if (offsets[i] >= next) { Preparation.Check(cancellationToken); next = offsets[i] + run; }
            Sequence(indices[i]).CopyTo(values.AsSpan(offsets[i] * FrameSize));
        }
        return new SequenceBatch(values, offsets, FrameSize);
    }
}
