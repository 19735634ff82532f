using Microsoft.ML.DeepDensity.Data;

namespace Microsoft.ML.DeepDensity.Training;

/// <summary>
/// How a model trains from an <see cref="IRowStream"/>: the shuffle buffer, the validation split and the bounded
/// sample some preparations need. See docs/scaling.md.
/// </summary>
public sealed record StreamingOptions
{
    /// <summary>The defaults, in one place (the docs and the ML.NET options refer here).</summary>
    public static class Defaults
    {
        /// <summary>Shuffle-buffer rows: 0 = automatic, <see cref="AutomaticBufferFloats"/> floats' worth of rows
        /// (64 MiB), at least one batch.</summary>
        public const int ShuffleBufferRows = 0;
        /// <summary>Floats an automatic shuffle buffer holds: 2^24 (64 MiB).</summary>
        public const int AutomaticBufferFloats = 1 << 24;
        /// <summary>Rows of the seeded uniform sample a preparation step reads at once (RNADE's initial component
        /// means): 65,536.</summary>
        public const int SampleRows = 1 << 16;
    }

    /// <summary>Rows the shuffle buffer holds (rounded up to whole batches); 0 = automatic (see
    /// <see cref="Defaults.ShuffleBufferRows"/>). The epoch's order is a full permutation only within a buffer.
    /// Default <see cref="Defaults.ShuffleBufferRows"/>.</summary>
    public int ShuffleBufferRows { get; init; } = Defaults.ShuffleBufferRows;

    /// <summary>Rows of the bounded sample used where a preparation needs rows at once. Default <see cref="Defaults.SampleRows"/>.</summary>
    public int SampleRows { get; init; } = Defaults.SampleRows;

    /// <summary>Throws naming the first invalid setting.</summary>
    public void Validate()
    {
        if (ShuffleBufferRows < 0) throw new ArgumentOutOfRangeException(nameof(ShuffleBufferRows), ShuffleBufferRows, "ShuffleBufferRows must be ≥ 0 (0 = automatic).");
        if (SampleRows < 1) throw new ArgumentOutOfRangeException(nameof(SampleRows), SampleRows, "SampleRows must be ≥ 1.");
    }

    /// <summary>Buffer rows for rows of <paramref name="width"/> floats and batches of <paramref name="batchSize"/>: a whole number of batches.</summary>
    internal int BufferRows(int width, int batchSize)
    {
        long rows = ShuffleBufferRows > 0 ? ShuffleBufferRows : Defaults.AutomaticBufferFloats / Math.Max(1, width);
        long batches = Math.Max(1, (rows + batchSize - 1) / batchSize);
        return (int)Math.Min(batches * batchSize, int.MaxValue);
    }
}

/// <summary>
/// A training set read from an <see cref="IRowStream"/> through a bounded shuffle buffer: each epoch reads one pass
/// in windows of the buffer's size, which the <see cref="TrainingDriver"/> shuffles and cuts into batches. Memory is
/// the buffer (and a batch), whatever the number of rows.
/// <para>The shuffle is <b>local</b>: a window is a run of consecutive rows, permuted within itself (seeded, the same at
/// any thread count), and windows come in stream order. In memory an epoch is a full permutation of all rows; the two
/// are the same when the buffer holds the whole pass. Data sorted by something the model should not see in order
/// (a class, a date) should be shuffled before streaming or given a buffer large enough to mix it.</para>
/// </summary>
public sealed class StreamingTrainingData : ITrainingSource
{
    private readonly IRowStream _stream;
    private readonly StreamingOptions _options;

    /// <param name="stream">The rows (already checked and transformed as the model needs).</param>
    /// <param name="options">The buffer size; null = defaults.</param>
    public StreamingTrainingData(IRowStream stream, StreamingOptions? options = null)
    {
        _stream = stream ?? throw new ArgumentNullException(nameof(stream));
        _options = options ?? new StreamingOptions();
        _options.Validate();
    }

    /// <summary>The rows.</summary>
    public IRowStream Stream => _stream;

    /// <inheritdoc/>
    public long? KnownCount => _stream.Count;

    /// <inheritdoc/>
    public IEnumerable<ITrainingData> ReadWindows(int batchSize, CancellationToken cancellationToken)
    {
        int d = _stream.Width, capacity = _options.BufferRows(d, batchSize);
        if ((long)capacity * d > Array.MaxLength)
            throw new InvalidOperationException(FormattableString.Invariant($"A shuffle buffer of {capacity} rows × {d} floats exceeds the largest array; lower ShuffleBufferRows."));
        // The buffer grows (doubling) to the window size as rows arrive, so a short pass never pays for a large buffer; a
        // stream that knows its length takes its window at once (the last doubling holds 1.5 windows for a moment).
        int first = _stream.Count is long known ? (int)Math.Clamp(known, 1, capacity) : Math.Min(capacity, RowStream.RowsPerBlock(d));
        var buffer = Allocate(null, (long)first * d, capacity, d);
        using var cursor = _stream.Open();
        while (true)
        {
            int rows = 0;
            while (rows < capacity)
            {
                if (rows * d == buffer.Length) buffer = Allocate(buffer, Math.Min((long)capacity * d, 2L * buffer.Length), capacity, d);
                // A block at a time, with a cancellation check between blocks, however large the window.
                int n = cursor.Read(buffer.AsSpan(rows * d, Math.Min(buffer.Length - rows * d, RowStream.RowsPerBlock(d) * d)));
                if (n == 0) break;
                rows += n;
                cancellationToken.ThrowIfCancellationRequested();
            }
            if (rows == 0) yield break;
            yield return TrainingData.From(new RowMatrix(buffer, rows, d));
            if (rows < capacity) yield break;
        }
    }

    /// <summary>A buffer of <paramref name="floats"/> holding <paramref name="previous"/>'s values; out of memory, the
    /// exception says which buffer and what to set (a heap limit of a container or a 32-bit process: a bare
    /// OutOfMemoryException from a resize left a user guessing).</summary>
    private float[] Allocate(float[]? previous, long floats, int capacity, int width)
    {
        try
        {
            var buffer = new float[floats];
            if (previous is not null) Array.Copy(previous, buffer, previous.Length);
            return buffer;
        }
        catch (OutOfMemoryException e)
        {
            var c = System.Globalization.CultureInfo.InvariantCulture;
            string setting = _options.ShuffleBufferRows > 0 ? "ShuffleBufferRows"
                : string.Create(c, $"ShuffleBufferRows 0: automatic, {StreamingOptions.Defaults.AutomaticBufferFloats * 4L >> 20} MiB");
            throw new OutOfMemoryException(string.Create(c, $"Out of memory for the streamed training's shuffle buffer: {floats:N0} floats ({floats * 4.0 / (1 << 20):N1} MiB) of a window of {capacity:N0} rows × {width} values ({setting}), which holds up to 1.5 windows while it grows; set ShuffleBufferRows lower (e.g. 65,536 rows) to train in less memory."), e);
        }
    }

    /// <summary>
    /// Splits a stream into training and validation rows by a seeded hash of each row's position in the pass: row i is
    /// a validation row when hash(seed, i) &lt; <paramref name="fraction"/> (about that fraction of the rows, chosen
    /// independently of the buffer and the thread count, the same rows every pass). Nothing is read here. With
    /// <paramref name="fraction"/> ≤ 0 the whole stream trains and the validation is null. The validation part of a
    /// few-row stream can be empty; a streamed Fit then trains without validation (<see cref="CheckedSplit"/> decides it).
    /// </summary>
    public static (IRowStream Train, IRowStream? Validation) Split(IRowStream stream, double fraction, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!(fraction > 0)) return (stream, null);
        if (!(fraction < 1)) throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "The validation fraction must be below 1.");
        return HashSplit(stream, fraction, seed, CancellationToken.None);
    }

    /// <summary><see cref="Split"/>'s two parts (0 &lt; <paramref name="fraction"/> &lt; 1), whose reads check
    /// <paramref name="cancellationToken"/> while they skip the other part's rows (a pass can skip all of them).</summary>
    private static (IRowStream Train, IRowStream Validation) HashSplit(IRowStream stream, double fraction, ulong seed, CancellationToken cancellationToken)
    {
        var heldOut = HeldOut(fraction, seed);
        // A few rows can all hash below the threshold: say so, rather than the model's "there are no rows".
        void NoneLeft(long rows, long kept)
        {
            if (rows > 0 && kept == 0)
                throw new DataValidationException(-1, -1, string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $"the data has {rows} row{(rows == 1 ? "" : "s")}, and the validation fraction held out of a stream (ValidationFraction = {fraction}, ") +
                    "chosen by a seeded hash of each row's position) took all of them: give more rows or a validation set, or set ValidationFraction = 0",
                    DataValidation.TrainingData) { Kind = DataProblemKind.NotEnoughData };
        }
        return (RowStream.Where(stream, i => !heldOut(i), NoneLeft, cancellationToken), RowStream.Where(stream, heldOut, cancellationToken: cancellationToken));
    }

    /// <summary>The pass position of the <paramref name="heldOutIndex"/>-th (0-based) row the hashed split of
    /// <paramref name="fraction"/> and <paramref name="seed"/> holds out: the training stream's row a validation example
    /// of the split is (about <paramref name="heldOutIndex"/> / <paramref name="fraction"/> hashes, nothing read).</summary>
    internal static long HeldOutPosition(long heldOutIndex, double fraction, ulong seed)
    {
        var heldOut = HeldOut(fraction, seed);
        for (long i = 0, found = -1; ; i++)
            if (heldOut(i) && ++found == heldOutIndex) return i;
    }

    /// <summary>Whether the row at a pass position is one the hashed split of <paramref name="fraction"/> and
    /// <paramref name="seed"/> holds out (<see cref="Split"/>'s validation rows; none when <paramref name="fraction"/> ≤ 0):
    /// the rows a streamed Fit without validation data never trained on, when <see cref="CheckedSplit"/> kept the split.</summary>
    public static Func<long, bool> HeldOutPositions(double fraction, ulong seed)
        => fraction > 0 && fraction < 1 ? HeldOut(fraction, seed) : static _ => false;

    /// <summary>Whether the row at a pass position is a validation row of the hashed split.</summary>
    private static Func<long, bool> HeldOut(double fraction, ulong seed)
    {
        ulong key = Mix(seed ^ 0x5EED_5A11_0000_0000UL);
        ulong threshold = (ulong)(fraction * 18446744073709551616.0);
        return i => Mix(key + (ulong)i * 0x9E3779B97F4A7C15UL) < threshold;
    }

    /// <summary>
    /// The checked training and validation streams of a streamed Fit: every value is checked as it is read (a bad one
    /// names its row, its position in the pass, and column), a given validation stream must have a row; without one a
    /// hashed fraction of the rows is held out (<see cref="Split"/>).
    /// </summary>
    /// <remarks>Also the common start of every streamed Fit: <paramref name="data"/> must not be null, and
    /// <paramref name="streaming"/> is set to the defaults when null and validated.
    /// <para>The one place that decides what an empty validation stream means, before any training pass: a given one is
    /// refused ("there are no rows", as in memory), and a hashed split that holds out no row (a few-row stream) is no
    /// validation (null), as in memory when ⌊n · fraction⌋ is 0. The trainers therefore never see an empty validation
    /// stream (the gradient loop refuses one with the same words). Without a known count this reads the first rows of a
    /// pass (a hashed split: up to its first held-out row, the whole pass when there is none), cancellably.</para></remarks>
    internal static (IRowStream Train, IRowStream? Validation) CheckedSplit(IRowStream data, IRowStream? validation,
        [System.Diagnostics.CodeAnalysis.NotNull] ref StreamingOptions? streaming, InputDomain domain, double validationFraction, ulong seed,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(data);
        streaming ??= new StreamingOptions();
        streaming.Validate();
        if (data.Width < 1) throw new DataValidationException(-1, -1, "rows have no columns", DataValidation.TrainingData) { Kind = DataProblemKind.NotEnoughData };
        if (validation is not null && validation.Width != data.Width)
            throw new DataValidationException(-1, -1, FormattableString.Invariant($"rows have {validation.Width} columns but {data.Width} are expected"), DataValidation.ValidationData) { Kind = DataProblemKind.WrongSize };
        var train = RowStream.Checked(data, domain, DataValidation.TrainingData);
        if (validation is not null)
        {
            var checkedValidation = RowStream.Checked(validation, domain, DataValidation.ValidationData);
            // An empty validation set is refused as in memory: its mean loss (0 / 0) read as a divergence in the gradient
            // trainers ("standardise the inputs") and was silently ignored by the others. One row is read to know (through
            // the checks: a cursor's impossible row count is refused here too).
            if ((validation.Count ?? RowStream.Head(checkedValidation, 1, cancellationToken).Rows) == 0) throw NoValidationRows();
            return (train, checkedValidation);
        }
        if (!(validationFraction > 0)) return (train, null);
        if (!(validationFraction < 1)) throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction, "The validation fraction must be below 1.");
        var (hashedTrain, hashedValidation) = HashSplit(train, validationFraction, seed, cancellationToken);
        bool holdsOutARow = data.Count is long n ? HoldsOutARow(n, HeldOut(validationFraction, seed), cancellationToken)
            : RowStream.Head(hashedValidation, 1, cancellationToken).Rows > 0;
        return (hashedTrain, holdsOutARow ? hashedValidation : null);
    }

    /// <summary>Whether a pass of <paramref name="rows"/> rows holds out a row: the first held-out position, found without
    /// reading (about 1 / fraction hashes; all of them for a stream that holds out none).</summary>
    private static bool HoldsOutARow(long rows, Func<long, bool> heldOut, CancellationToken cancellationToken)
    {
        for (long i = 0; i < rows; i++)
        {
            if (heldOut(i)) return true;
            if ((i & 0xFFFFF) == 0xFFFFF) cancellationToken.ThrowIfCancellationRequested();
        }
        return false;
    }

    /// <summary>The refusal of an empty validation set: the same words as for one in memory
    /// (<see cref="DataValidation.NoRows"/>, as <c>DataValidation.CheckTrainingData</c> says), wherever a streamed Fit or the gradient loop meets one.</summary>
    internal static DataValidationException NoValidationRows() => DataValidation.NoRowsIn(DataValidation.ValidationData);

    /// <summary>SplitMix64's finaliser: a bijective mix of 64 bits.</summary>
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
