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
    private float[] _values = new float[1 << 16];

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
                $"the sequences read so far and this row hold more than {_max:N0} values, the most one array holds; sequence " +
                "training keeps every frame in memory, so train on fewer or shorter sequences (a sample of the ids, or a window of time)", columnName);
        if (needed > _values.Length) Array.Resize(ref _values, (int)Math.Min(_max, Math.Max(2L * _values.Length, needed)));
        values.CopyTo(_values.AsSpan(Count));
        Count = (int)needed;
    }
}
