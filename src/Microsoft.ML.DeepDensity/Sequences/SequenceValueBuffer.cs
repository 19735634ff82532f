using Microsoft.ML.DeepDensity.Data;

namespace Microsoft.ML.DeepDensity.Transforms;

/// <summary>
/// The frame values a sequence Fit reads into memory, back to back: a growing array bounded by what one array holds (an
/// engine <see cref="SequenceBatch"/> is one array, and sequence training has no streamed form). Past the bound the read
/// stops with a <see cref="DataValidationException"/> naming the column and the row; a <c>List&lt;float&gt;</c> threw
/// an <see cref="OutOfMemoryException"/> naming neither, after holding 8 GB twice.
/// </summary>
internal sealed class SequenceValueBuffer
{
    /// <summary>A lower bound for the current test's flow only (tests cannot allocate 2^31 values; parallel tests are unaffected).</summary>
    internal static readonly AsyncLocal<int?> TestMaxValues = new();

    private readonly int _max = TestMaxValues.Value ?? Array.MaxLength;
    private float[] _values;

    /// <summary>An empty buffer; <paramref name="expectedValues"/>, when known (the view's row count × the frame size)
    /// and within the bound, is its first size, so that a read of that many values never regrows it (a regrowth holds the
    /// old array and the new, twice as large, at once). Otherwise it starts at 2^16 values and doubles.</summary>
    public SequenceValueBuffer(long expectedValues = 0)
        => _values = new float[expectedValues > 0 && expectedValues <= _max ? expectedValues : 1 << 16];

    /// <summary>Values appended so far.</summary>
    public int Count { get; private set; }

    /// <summary>The storage: its first <see cref="Count"/> values are the data (it may be longer; a SequenceBatch allows that).</summary>
    public float[] Values => _values;

    /// <summary>Appends one row's values (a frame, or a whole sequence).</summary>
    public void Append(ReadOnlySpan<float> values, string columnName, long row)
    {
        long needed = (long)Count + values.Length;
        if (needed > _max)
            throw new DataValidationException(row, -1,
                FormattableString.Invariant($"the sequences read so far and this row hold more than {_max:N0} values, the most one array holds; sequence ") +
                "training keeps every frame in memory, so train on fewer or shorter sequences (a sample of the ids, or a window of time)", columnName);
        if (needed > _values.Length) Array.Resize(ref _values, (int)Math.Min(_max, Math.Max(2L * _values.Length, needed)));
        values.CopyTo(_values.AsSpan(Count));
        Count = (int)needed;
    }

    /// <summary>
    /// Moves frame r (of <paramref name="frameSize"/> values) to frame <paramref name="places"/>[r], for r below
    /// places.Length, in place; <paramref name="places"/> must be a permutation and is consumed (its entries are marked as
    /// their frames move). Each cycle of the permutation is followed once, carrying one frame, so grouping the frames
    /// needs a frame of scratch instead of a second array of them. The values are moved, not computed: the same bits.
    /// </summary>
    public void MoveFrames(int[] places, int frameSize)
    {
        var values = _values;
        var carried = new float[frameSize];
        for (int first = 0; first < places.Length; first++)
        {
            if (places[first] < 0 || places[first] == first) continue; // moved already, or in its place
            // Carry frame first along its cycle: the carried frame (from frame r) goes to places[r], whose own frame is
            // carried on, until the cycle comes back to frame first.
            values.AsSpan(first * frameSize, frameSize).CopyTo(carried);
            for (int r = first; ;)
            {
                int place = places[r];
                places[r] = -1;
                var target = values.AsSpan(place * frameSize, frameSize);
                if (place == first)
                {
                    carried.CopyTo(target);
                    break;
                }
                for (int i = 0; i < frameSize; i++) (target[i], carried[i]) = (carried[i], target[i]);
                r = place;
            }
        }
    }
}
