using Microsoft.ML.DeepDensity.Data;

namespace Microsoft.ML.DeepDensity.Training;

/// <summary>
/// Where the training driver reads an epoch from: one pass over the examples as a sequence of <em>windows</em>, each an
/// <see cref="ITrainingData"/> the driver shuffles and cuts into batches. Data held in memory is one window (the whole
/// set: a full permutation per epoch); a stream (<see cref="StreamingTrainingData"/>) is read window by window through a
/// bounded buffer, so its shuffle is local to a window. Both go through the same epoch loop.
/// </summary>
public interface ITrainingSource
{
    /// <summary>Examples per pass when known without reading a pass (null: unknown until a pass has been read).</summary>
    long? KnownCount { get; }

    /// <summary>
    /// One pass over the examples, in windows of a whole multiple of <paramref name="batchSize"/> examples (only the
    /// last may be shorter; data in memory is one window whatever the size). A window is valid until the next is
    /// requested. Every pass yields the same examples in the same order.
    /// </summary>
    IEnumerable<ITrainingData> ReadWindows(int batchSize, CancellationToken cancellationToken);
}

/// <summary>
/// A training set as the training driver sees it: a number of examples (rows or sequences) and a way to copy a batch
/// of them, given their indices, into a reusable <see cref="TrainingBatch"/>. Rows and sequences go through the same
/// loop; held in memory it is its own single window (<see cref="ITrainingSource"/>), streamed data comes as windows
/// of this. Wrap data with <see cref="TrainingData.From(RowMatrix)"/> or <see cref="TrainingData.From(SequenceBatch)"/>.
/// </summary>
public interface ITrainingData : ITrainingSource
{
    long? ITrainingSource.KnownCount => Count;

    IEnumerable<ITrainingData> ITrainingSource.ReadWindows(int batchSize, CancellationToken cancellationToken) => [this];

    /// <summary>Number of examples.</summary>
    int Count { get; }

    /// <summary>Copies examples <paramref name="indices"/> (in that order) into <paramref name="batch"/>, reusing its storage.</summary>
    void CopyBatch(ReadOnlySpan<int> indices, TrainingBatch batch);

    /// <summary>The given examples (in order) as a new, independent training set (e.g. a validation split).</summary>
    ITrainingData Select(ReadOnlySpan<int> indices);
}

/// <summary>A reusable buffer holding one batch of examples: <see cref="Rows"/> for row data, <see cref="Sequences"/> for sequence data.</summary>
public sealed class TrainingBatch
{
    private float[] _values = Array.Empty<float>();

    /// <summary>Examples in the batch.</summary>
    public int Count { get; private set; }

    /// <summary>Floats per row (row data) or per frame (sequence data).</summary>
    public int Width { get; private set; }

    /// <summary>The batch's rows, Count × Width row-major (row data).</summary>
    public ReadOnlySpan<float> Rows => _values.AsSpan(0, Count * Width);

    /// <summary>The batch's sequences (sequence data; null for row data). A view of the buffer: valid until the next copy.</summary>
    public SequenceBatch? Sequences { get; private set; }

    /// <summary>Makes room for <paramref name="count"/> rows of <paramref name="width"/> floats and returns them to fill.</summary>
    public Span<float> PrepareRows(int count, int width)
    {
        Count = count; Width = width; Sequences = null;
        Ensure(checked(count * width));
        return _values.AsSpan(0, count * width);
    }

    /// <summary>Makes room for sequences of the given lengths (in frames of <paramref name="frameSize"/>) and returns their values to fill.</summary>
    public Span<float> PrepareSequences(ReadOnlySpan<int> lengths, int frameSize)
    {
        var offsets = new int[lengths.Length + 1];
        for (int i = 0; i < lengths.Length; i++) offsets[i + 1] = checked(offsets[i] + lengths[i]);
        Ensure(checked(offsets[^1] * frameSize));
        Count = lengths.Length; Width = frameSize;
        Sequences = new SequenceBatch(_values, offsets, frameSize);
        return _values.AsSpan(0, offsets[^1] * frameSize);
    }

    private void Ensure(int length)
    {
        if (_values.Length < length) _values = new float[Math.Max(length, _values.Length * 2)];
        // A SequenceBatch view keeps the old array; a new one is made by the next PrepareSequences.
    }
}

/// <summary>Training sets over the engine's data types.</summary>
public static class TrainingData
{
    /// <summary>One example per row.</summary>
    public static ITrainingData From(RowMatrix rows) => new RowData(rows ?? throw new ArgumentNullException(nameof(rows)));

    /// <summary>One example per sequence.</summary>
    public static ITrainingData From(SequenceBatch sequences) => new SequenceData(sequences ?? throw new ArgumentNullException(nameof(sequences)));

    /// <summary>The row matrix behind <paramref name="data"/> when it is a row set made by <see cref="From(RowMatrix)"/>
    /// (RBM's trainer gathers its batch straight from it), else null.</summary>
    internal static RowMatrix? Matrix(ITrainingData data) => (data as RowData)?.Matrix;

    /// <summary>Batch values from which <see cref="RowData.CopyBatch"/> gathers in <see cref="GatherParts"/> parts on the worker team.</summary>
    internal const long ParallelGatherValues = 1L << 15;
    private const int GatherParts = 2;

    /// <summary>The calling thread's gather: its delegate is made once, so a step's parallel gather allocates nothing.</summary>
    [ThreadStatic] private static Gather? t_gather;

    /// <summary>Copies rows indices[r] of a matrix to row r of a batch, in parts on the worker team.</summary>
    private sealed unsafe class Gather
    {
        private readonly Action<int> _part;
        private float[] _values = [];
        private int* _indices;
        private float* _destination;
        private int _rows, _width, _parts;

        public Gather() => _part = CopyPart;

        public void Run(float[] values, int* indices, float* destination, int rows, int width, int parts)
        {
            _values = values; _indices = indices; _destination = destination; _rows = rows; _width = width; _parts = parts;
            try { DeepDensityEnvironment.For(0, parts, _part); }
            finally { _values = []; _indices = null; _destination = null; }
        }

        private void CopyPart(int part)
        {
            int d = _width;
            for (int r = part * _rows / _parts; r < (part + 1) * _rows / _parts; r++)
                _values.AsSpan(_indices[r] * d, d).CopyTo(new Span<float>(_destination + (long)r * d, d));
        }
    }

    private sealed class RowData(RowMatrix m) : ITrainingData
    {
        public RowMatrix Matrix => m;
        public int Count => m.Rows;

        public unsafe void CopyBatch(ReadOnlySpan<int> indices, TrainingBatch batch)
        {
            int d = m.Columns, n = indices.Length;
            var dst = batch.PrepareRows(n, d);
            // A minibatch of wide rows (100 × 784) is gathered from all over a large matrix, mostly from memory rather
            // than cache, on the thread that then waits for it: two cores each fetch half the rows (a plain copy, so
            // the batch is the same at any thread count).
            int parts = (long)n * d >= ParallelGatherValues ? Math.Min(n, GatherParts) : 1;
            if (parts == 1)
            {
                for (int r = 0; r < n; r++) m.Row(indices[r]).CopyTo(dst.Slice(r * d, d));
                return;
            }
            fixed (int* pi = indices)
            fixed (float* pd = dst)
                (t_gather ??= new Gather()).Run(m.Values, pi, pd, n, d, parts);
        }

        public ITrainingData Select(ReadOnlySpan<int> indices) => new RowData(m.SelectRows(indices));
    }

    private sealed class SequenceData(SequenceBatch s) : ITrainingData
    {
        public int Count => s.Count;

        public void CopyBatch(ReadOnlySpan<int> indices, TrainingBatch batch)
        {
            Span<int> lengths = indices.Length <= 256 ? stackalloc int[indices.Length] : new int[indices.Length];
            for (int i = 0; i < indices.Length; i++) lengths[i] = s.Length(indices[i]);
            var dst = batch.PrepareSequences(lengths, s.FrameSize);
            var offsets = batch.Sequences!.Offsets;
            for (int i = 0; i < indices.Length; i++) s.Sequence(indices[i]).CopyTo(dst[(offsets[i] * s.FrameSize)..]);
        }

        public ITrainingData Select(ReadOnlySpan<int> indices) => new SequenceData(s.Select(indices));
    }
}
