using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Transforms;

/// <summary>How an estimator reads its training data.</summary>
public enum DensityTrainingData
{
    /// <summary>Copy the feature column into memory once, then train on the copy (every epoch a full permutation).</summary>
    InMemory = 0,
    /// <summary>Read the feature column through a new cursor every pass and train through a bounded shuffle buffer;
    /// the data is never held whole (docs/scaling.md). For data larger than memory.</summary>
    Streamed = 1,
}

/// <summary>
/// The feature column of an <see cref="IDataView"/> as an engine <see cref="IRowStream"/>: every pass opens a new
/// cursor, so the data is never copied whole. A vector of the wrong length throws
/// <see cref="DataValidationException"/> naming the column and the row (its position in the cursor). Every read observes
/// <paramref name="cancellationToken"/>: a pass that trains nothing (the standardiser's, the moments') reads the whole view.
/// <paramref name="passRead"/>, when given, hears of every pass that ends (its number from 1, rows read, time taken): a
/// streamed Fit's passes before the first epoch (counts, the standardiser, the moments) took minutes on a large view
/// with nothing in the log.
/// </summary>
internal sealed class DataViewRowStream(IDataView data, DataViewSchema.Column column, int dimension, CancellationToken cancellationToken = default,
    Action<int, long, TimeSpan>? passRead = null) : IRowStream
{
    private int _passes;

    /// <summary>Rows read between two checks of the cancellation token wherever Fit reads a view (this stream's passes,
    /// the copies of the row models, sequences and frame rows): reading a large view through its upstream stages can take
    /// as long as an epoch.</summary>
    internal const int RowsPerCancellationCheck = 1024;

    public int Width => dimension;
    public long? Count => data.GetRowCount();
    public IRowCursor Open()
    {
        var cursor = new Cursor(data.GetRowCursor(new[] { column }), column, dimension, cancellationToken);
        if (passRead is not null)
        {
            int pass = Interlocked.Increment(ref _passes);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            cursor.Ended = rows => passRead(pass, rows, clock.Elapsed);
        }
        return cursor;
    }

    private sealed class Cursor : IRowCursor
    {
        private readonly DataViewRowCursor _cursor;
        private readonly ValueGetter<VBuffer<float>> _getter;
        private readonly string _name;
        private readonly int _dimension;
        private VBuffer<float> _buffer;
        private readonly CancellationToken _cancellationToken;
        private long _row;

        public Cursor(DataViewRowCursor cursor, DataViewSchema.Column column, int dimension, CancellationToken cancellationToken)
        {
            _cursor = cursor; _getter = cursor.GetGetter<VBuffer<float>>(column); _name = column.Name; _dimension = dimension;
            _cancellationToken = cancellationToken;
        }

        public int Read(Span<float> destination)
        {
            int rows = 0, capacity = destination.Length / _dimension;
            _cancellationToken.ThrowIfCancellationRequested();
            while (rows < capacity && _cursor.MoveNext())
            {
                if (rows % RowsPerCancellationCheck == RowsPerCancellationCheck - 1) _cancellationToken.ThrowIfCancellationRequested();
                _getter(ref _buffer);
                if (_buffer.Length != _dimension)
                    throw new DataValidationException(_row, -1, FormattableString.Invariant($"the vector has {_buffer.Length} values but {_dimension} are expected"), _name) { Kind = DataProblemKind.WrongSize };
                Scoring.Densify(in _buffer, destination.Slice(rows * _dimension, _dimension));
                rows++; _row++;
            }
            return rows;
        }

        /// <summary>Called once, at the first Dispose, with the rows read.</summary>
        public Action<long>? Ended { get; set; }

        public void Dispose()
        {
            _cursor.Dispose();
            var ended = Ended;
            Ended = null;
            ended?.Invoke(_row);
        }
    }
}
