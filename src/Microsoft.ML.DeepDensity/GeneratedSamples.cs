using Microsoft.ML.Data;

namespace Microsoft.ML.DeepDensity.Transforms;

/// <summary>
/// The data view of <see cref="DensityTransformer.GenerateSamples(MLContext, int, ulong, CancellationToken)"/>: the rows of
/// the draw <c>Model.Sample(count, seed)</c>, bit for bit, drawn on demand. Nothing is drawn when the view is made; a
/// cursor draws the block of <see cref="BlockRows"/> rows holding its row when a getter first asks for a value of it (a
/// cursor that only moves draws nothing), through the engine's reader of the draw (<c>DensityModel.OpenSampleReader</c>),
/// which draws only the model's sampling blocks these rows fall in, so a cursor holds one block whatever the count:
/// 10 million rows of 784 values cost the 3 MiB of a block, not 31 GB of a draw. Cursors are independent (each has its own
/// reader and block; an RBM's reader keeps its Gibbs chains, so reading in order runs them once); the view does not
/// shuffle and gives one cursor for a cursor set (the engine draws a block's model blocks in parallel).
/// </summary>
internal sealed class GeneratedSamplesView : IDataView
{
    /// <summary>Rows a block holds at most: 1,024.</summary>
    internal const int MaxBlockRows = 1024;

    /// <summary>Values a block holds at most (2^22, 16 MiB), unless one of the model's own sampling blocks holds more.</summary>
    internal const int MaxBlockValues = 1 << 22;

    private readonly DensityModel _model;
    private readonly int _count, _blockRows;
    private readonly ulong _seed;
    private readonly CancellationToken _cancellationToken;

    public GeneratedSamplesView(DensityModel model, string columnName, int count, ulong seed, CancellationToken cancellationToken)
    {
        _model = model;
        _count = count;
        _seed = seed;
        _cancellationToken = cancellationToken;
        _blockRows = BlockRows(model.Dimension, model.SampleBlockRows);
        var b = new DataViewSchema.Builder();
        b.AddColumn(columnName, new VectorDataViewType(NumberDataViewType.Single, model.Dimension));
        Schema = b.ToSchema();
    }

    /// <summary>
    /// Rows of a cursor's block for rows of <paramref name="dimension"/> values: <see cref="MaxBlockRows"/>, fewer for wide
    /// rows so that a block holds at most <see cref="MaxBlockValues"/> values, and a whole number of the model's sampling
    /// blocks of <paramref name="modelBlockRows"/> rows (aligned blocks draw no row twice), at least one of them: a model
    /// block is what the engine draws at once anyway.
    /// </summary>
    internal static int BlockRows(int dimension, int modelBlockRows)
    {
        int rows = Math.Clamp(MaxBlockValues / Math.Max(1, dimension), 1, MaxBlockRows);
        int unit = Math.Max(1, modelBlockRows);
        return unit >= rows ? unit : rows / unit * unit;
    }

    /// <summary>Rows of a cursor's block.</summary>
    internal int RowsPerBlock => _blockRows;

    public bool CanShuffle => false;
    public DataViewSchema Schema { get; }
    public long? GetRowCount() => _count;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
        => new Cursor(this, IsActive(columnsNeeded));

    /// <summary>One cursor: the rows are drawn in blocks, and the engine draws a block in parallel.</summary>
    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => new[] { GetRowCursor(columnsNeeded, rand) };

    private bool IsActive(IEnumerable<DataViewSchema.Column> columnsNeeded)
    {
        ArgumentNullException.ThrowIfNull(columnsNeeded);
        bool active = false;
        foreach (var c in columnsNeeded)
        {
            CheckColumn(c, nameof(columnsNeeded));
            active = true;
        }
        return active;
    }

    private void CheckColumn(DataViewSchema.Column column, string parameter)
    {
        if (column.Index != 0 || column.Name != Schema[0].Name)
            throw new ArgumentOutOfRangeException(parameter, $"Column '{column.Name}' does not belong to this data view's schema.");
    }

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly GeneratedSamplesView _view;
        private readonly bool _active;
        private readonly int _dim;
        private DensityModel.SampleReader? _reader;
        private float[]? _block;
        private int _blockStart, _filled;
        private long _position = -1;
        private bool _done;

        public Cursor(GeneratedSamplesView view, bool active)
        {
            _view = view;
            _active = active;
            _dim = view._model.Dimension;
        }

        public override DataViewSchema Schema => _view.Schema;
        public override long Position => _position;
        public override long Batch => 0;

        public override bool IsColumnActive(DataViewSchema.Column column)
        {
            _view.CheckColumn(column, nameof(column));
            return _active;
        }

        /// <summary>Checks the token at every block's first row, so that a cancelled token stops a cursor that only moves
        /// within a block; the draw of a block checks it again as the engine draws.</summary>
        public override bool MoveNext()
        {
            if (_done) return false;
            if (_position + 1 >= _view._count)
            {
                _done = true;
                _position = -1;
                _block = null;
                _reader = null;
                return false;
            }
            _position++;
            if (_position % _view._blockRows == 0) _view._cancellationToken.ThrowIfCancellationRequested();
            return true;
        }

        /// <summary>The row's index in the draw: unique per row, the same in every cursor.</summary>
        public override ValueGetter<DataViewRowId> GetIdGetter()
            => (ref DataViewRowId id) =>
            {
                if (_position < 0) throw new InvalidOperationException("The cursor has no current row.");
                id = new DataViewRowId((ulong)_position, 0);
            };

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            _view.CheckColumn(column, nameof(column));
            if (!_active) throw new InvalidOperationException($"Column '{column.Name}' is not active.");
            if (typeof(TValue) != typeof(VBuffer<float>))
                throw new InvalidOperationException($"Invalid TValue '{typeof(TValue).Name}' for column '{column.Name}', expected '{typeof(VBuffer<float>).Name}'.");
            ValueGetter<VBuffer<float>> getter = (ref VBuffer<float> value) =>
            {
                var row = CurrentRow();
                var editor = VBufferEditor.Create(ref value, _dim);
                row.CopyTo(editor.Values);
                value = editor.Commit();
            };
            return (ValueGetter<TValue>)(Delegate)getter;
        }

        private ReadOnlySpan<float> CurrentRow()
        {
            if (_position < 0) throw new InvalidOperationException("The cursor has no current row.");
            int row = (int)_position;
            if (row < _blockStart || row >= _blockStart + _filled) Draw(row / _view._blockRows * _view._blockRows);
            return _block.AsSpan((row - _blockStart) * _dim, _dim);
        }

        /// <summary>Draws the block starting at <paramref name="start"/>: its reader and buffer are made at the first draw
        /// (a buffer of the rows there are, for a draw smaller than a block). A draw that throws (cancelled) leaves no block.</summary>
        private void Draw(int start)
        {
            var view = _view;
            int n = Math.Min(view._blockRows, view._count - start);
            _reader ??= view._model.OpenSampleReader(view._count, view._seed);
            _block ??= new float[Math.Min(view._blockRows, view._count) * _dim];
            _filled = 0;
            _reader.Read(start, n, _block, view._cancellationToken);
            _blockStart = start;
            _filled = n;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _done = true;
                _position = -1;
                _block = null;
                _reader = null;
            }
            base.Dispose(disposing);
        }
    }
}
