namespace Microsoft.ML.DeepDensity.Data;

/// <summary>A dense row-major float32 matrix: the engine's unit of data (one row per example).</summary>
public sealed class RowMatrix
{
    /// <summary>Allocates a zeroed rows×columns matrix.</summary>
    public RowMatrix(int rows, int columns)
    {
        if (rows < 0) throw new ArgumentOutOfRangeException(nameof(rows));
        if (columns < 0) throw new ArgumentOutOfRangeException(nameof(columns));
        Rows = rows; Columns = columns;
        Values = new float[checked(rows * columns)];
    }

    /// <summary>Wraps an existing row-major array (not copied).</summary>
    public RowMatrix(float[] values, int rows, int columns)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (rows < 0 || columns < 0 || (long)rows * columns > values.Length)
            throw new ArgumentException(FormattableString.Invariant($"A {rows}×{columns} matrix needs {(long)rows * columns} values; the array has {values.Length}."));
        Values = values; Rows = rows; Columns = columns;
    }

    /// <summary>Copies jagged rows; every row must have the same length.</summary>
    public static RowMatrix FromRows(IReadOnlyList<float[]> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        int cols = rows.Count == 0 ? 0 : rows[0]?.Length ?? throw new ArgumentNullException(nameof(rows), "Row 0 is null.");
        var m = new RowMatrix(rows.Count, cols);
        for (int i = 0; i < rows.Count; i++)
        {
            var r = rows[i] ?? throw new ArgumentNullException(nameof(rows), FormattableString.Invariant($"Row {i} is null."));
            if (r.Length != cols)
                throw new DataValidationException(i, -1, FormattableString.Invariant($"row has {r.Length} values but row 0 has {cols}"), null) { Kind = DataProblemKind.WrongSize };
            r.CopyTo(m.Values, i * cols);
        }
        return m;
    }

    /// <summary>Number of rows.</summary>
    public int Rows { get; }
    /// <summary>Number of columns (floats per row).</summary>
    public int Columns { get; }
    /// <summary>Row-major storage; length ≥ Rows × Columns.</summary>
    public float[] Values { get; }

    /// <summary>Row <paramref name="i"/> as a span.</summary>
    public Span<float> Row(int i) => Values.AsSpan(i * Columns, Columns);

    /// <summary>All rows as one span.</summary>
    public Span<float> AsSpan() => Values.AsSpan(0, Rows * Columns);

    /// <summary>Element accessor.</summary>
    public float this[int row, int column]
    {
        get => Values[row * Columns + column];
        set => Values[row * Columns + column] = value;
    }

    /// <summary>Copies the given rows (in order) into a new matrix.</summary>
    public RowMatrix SelectRows(ReadOnlySpan<int> indices) => SelectRows(indices, CancellationToken.None);

    /// <summary><see cref="SelectRows(ReadOnlySpan{int})"/> with <paramref name="cancellationToken"/> checked before every
    /// run of rows (<see cref="Preparation"/>).</summary>
    internal RowMatrix SelectRows(ReadOnlySpan<int> indices, CancellationToken cancellationToken)
    {
        var m = new RowMatrix(indices.Length, Columns);
        int run = Preparation.RowsPerCheck(Columns);
        for (int i = 0; i < indices.Length; i++)
        {
            if (i % run == 0) Preparation.Check(cancellationToken);
            Row(indices[i]).CopyTo(m.Row(i));
        }
        return m;
    }

    /// <summary>Copies rows [start, start+count) into a new matrix.</summary>
    public RowMatrix Slice(int start, int count)
    {
        var m = new RowMatrix(count, Columns);
        Values.AsSpan(start * Columns, count * Columns).CopyTo(m.Values);
        return m;
    }
}
