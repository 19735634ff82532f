using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Microsoft.ML.DeepDensity.Numerics;

namespace Microsoft.ML.DeepDensity.Data;

/// <summary>Which of a Fit's data sets a <see cref="DataValidationException"/> is about.</summary>
public enum DataSetKind
{
    /// <summary>Not known, or no Fit's data (rows being scored, a data set of the caller's own).</summary>
    Unknown = 0,
    /// <summary>The training data.</summary>
    Training,
    /// <summary>The validation data (given for early stopping).</summary>
    Validation,
}

/// <summary>What kind of problem a <see cref="DataValidationException"/> reports, for code that handles some problems and
/// not others (impute or drop a missing value, binarise a value outside a binary model's domain, fix a vector size)
/// without reading the message's words, which may change.</summary>
public enum DataProblemKind
{
    /// <summary>Any other problem (offsets that decrease, a frame row's order going back in time, a cursor that returned
    /// more rows than it was asked for, data too wide for a model file, ...).</summary>
    Other = 0,
    /// <summary>A value is NaN (also ML.NET's missing value) or ±infinity.</summary>
    NonFiniteValue,
    /// <summary>A value is neither 0 nor 1 where a binary model (Bernoulli RBM or IWAE, NVIL) needs 0 or 1.</summary>
    NotBinary,
    /// <summary>A row, vector, frame or sequence has another number of values than the model (or the other rows) has.</summary>
    WrongSize,
    /// <summary>A data set has no rows, columns or sequences, or fewer than the model needs, or a sequence has no frames.</summary>
    NotEnoughData,
    /// <summary>A validation example (row, or a sequence's frame) whose log-density under the model is not finite, so
    /// early stopping cannot measure the model on the validation data: an example far outside the training data.</summary>
    UnmeasurableValidationExample,
}

/// <summary>Bad input data: names the row, the column and the problem.</summary>
public sealed class DataValidationException : ArgumentException
{
    /// <summary>A <paramref name="problem"/> at 0-based <paramref name="row"/> and <paramref name="column"/> (−1 when it is not about one row or one column); <paramref name="source"/> names the data (e.g. "training data"), or null.
    /// <see cref="DataSet"/> follows from the engine's names for its data sets (<see cref="DataValidation.TrainingData"/>, <see cref="DataValidation.ValidationData"/>).</summary>
    public DataValidationException(long row, int column, string problem, string? source)
        : this(row, column, problem, source, null) { }

    /// <summary>The same problem reported by a caller that knows more about where the data came from (an ML.NET column).</summary>
    public DataValidationException(long row, int column, string problem, string? source, Exception? innerException)
        : this(row, column, problem, source, DataValidation.DataSetNamed(source), innerException) { }

    /// <summary>The problem reported by a caller that names the data by something else than its data set (an ML.NET layer
    /// names the column in <paramref name="source"/>) and says which data set it is in <paramref name="dataSet"/>.</summary>
    public DataValidationException(long row, int column, string problem, string? source, DataSetKind dataSet, Exception? innerException)
        : base(Format(row, column, problem, source), innerException)
    {
        Row = row; Column = column; Problem = problem; DataSource = source; DataSet = dataSet;
    }

    /// <summary>Zero-based row index, or −1 when the problem is not about one row.</summary>
    public long Row { get; }
    /// <summary>Zero-based column (slot) index, or −1 when the problem is not about one column.</summary>
    public int Column { get; }
    /// <summary>The problem, in words.</summary>
    public string Problem { get; }
    /// <summary>What kind of problem it is (<see cref="DataProblemKind.Other"/> unless the thrower says). A layer that
    /// restates an error in its own terms (the ML.NET estimators name the column) keeps the kind.</summary>
    public DataProblemKind Kind { get; init; }
    /// <summary>The data source / column name the caller gave, if any.</summary>
    public string? DataSource { get; }
    /// <summary>Which of a Fit's data sets the problem is in, when the thrower knows: the engine for the data sets it names
    /// (<see cref="DataValidation.TrainingData"/>, <see cref="DataValidation.ValidationData"/>, and its training and
    /// validation sequences), the ML.NET estimators for their training and validation views (whose
    /// <see cref="DataSource"/> is the column). <see cref="DataSetKind.Unknown"/> otherwise (scoring).</summary>
    public DataSetKind DataSet { get; }

    /// <summary>
    /// This problem told again in a caller's terms (the user's row, the ML.NET column, the data set, a hint): the one way a
    /// layer restates an error, so that none loses what it is. The new exception has this one's <see cref="Kind"/>, its
    /// <see cref="DataSet"/> unless <paramref name="dataSet"/> says another, and its <see cref="Exception.Data"/> entries
    /// (what a later restatement reads back: the unmeasurable frame and figure, a frame row's order values).
    /// </summary>
    /// <param name="chain">True: this exception is the new one's inner exception (the original as the engine said it).
    /// False: the new one replaces this one and takes its inner exception instead — for an exception never thrown (a hint
    /// added to one just made) and for an engine error whose row is no row the user has (row 0 of a one-row call, a row of
    /// the scorer's block), which an unwrapping caller (<see cref="Exception.GetBaseException"/>) should not meet.</param>
    internal DataValidationException Restated(long row, int column, string problem, string? source, DataSetKind? dataSet = null, bool chain = true)
    {
        var restated = new DataValidationException(row, column, problem, source, dataSet ?? DataSet, chain ? this : InnerException) { Kind = Kind };
        foreach (System.Collections.DictionaryEntry entry in Data) restated.Data[entry.Key] = entry.Value;
        return restated;
    }

    /// <summary>This problem with its words replaced by <paramref name="problem"/> (the row, column, source and data set
    /// unchanged): <see cref="Restated"/> in place of this exception (<c>chain: false</c>).</summary>
    internal DataValidationException Reworded(string problem) => Restated(Row, Column, problem, DataSource, chain: false);

    private static string Format(long row, int column, string problem, string? source)
    {
        var where = new List<string>();
        if (source is not null) where.Add($"'{source}'");
        if (row >= 0) where.Add(FormattableString.Invariant($"row {row}"));
        if (column >= 0) where.Add(FormattableString.Invariant($"column {column}"));
        return where.Count == 0 ? $"Invalid data: {problem}." : $"Invalid data at {string.Join(", ", where)}: {problem}.";
    }
}

/// <summary>The one place input rows are checked (finite values, width, domain, emptiness).</summary>
public static class DataValidation
{
    /// <summary>The <see cref="DataValidationException.DataSource"/> of a model's training rows as the engine reports them
    /// (a layer above it, such as the ML.NET estimators, restates errors from this source in its own terms).</summary>
    public const string TrainingData = "training data";
    /// <summary>The <see cref="DataValidationException.DataSource"/> of a model's validation rows.</summary>
    public const string ValidationData = "validation data";
    /// <summary>The <see cref="DataValidationException.DataSource"/> of RNN-RNADE's training and validation sequences.</summary>
    internal const string TrainingSequences = "training sequences", ValidationSequences = "validation sequences";

    /// <summary>The data set the engine's name <paramref name="source"/> stands for (<see cref="DataValidationException.DataSet"/>).</summary>
    internal static DataSetKind DataSetNamed(string? source) => source switch
    {
        TrainingData or TrainingSequences => DataSetKind.Training,
        ValidationData or ValidationSequences => DataSetKind.Validation,
        _ => DataSetKind.Unknown,
    };

    /// <summary>The problem of a data set without rows (training or validation, in memory or streamed).</summary>
    internal const string NoRows = "there are no rows";

    /// <summary>The exception for data with no rows, named by <paramref name="source"/> (the training data, the validation
    /// data, or a column): one wording wherever a model, a split or the ML.NET layer meets an empty set.</summary>
    internal static DataValidationException NoRowsIn(string? source) => new(-1, -1, NoRows, source) { Kind = DataProblemKind.NotEnoughData };

    /// <summary>The words of a value outside a binary model's domain (callers that can suggest a remedy look for them).</summary>
    internal const string NotBinary = "is not binary (a binary model needs 0 or 1)";

    /// <summary>The problem of a NaN value (callers that know where the data came from look for it, and for
    /// <see cref="InfiniteValue"/>'s).</summary>
    internal const string NaNValue = "value is NaN";

    /// <summary>The problem of an infinite value: "value is +infinity" or "value is -infinity".</summary>
    internal static string InfiniteValue(float v) => $"value is {(v > 0 ? "+" : "-")}infinity";

    /// <summary>
    /// Checks a row-major span of rows of width <paramref name="dimension"/>; returns the row count.
    /// <paramref name="firstRow"/> offsets reported row numbers (for data read in blocks).
    /// </summary>
    public static int CheckRows(ReadOnlySpan<float> rows, int dimension, InputDomain domain, string? source, long firstRow = 0)
    {
        if (dimension <= 0) throw new ArgumentOutOfRangeException(nameof(dimension), "Dimension must be positive.");
        if (rows.Length % dimension != 0)
            throw new DataValidationException(-1, -1,
                FormattableString.Invariant($"{rows.Length} values is not a whole number of rows of width {dimension} (wrong vector size?)"), source) { Kind = DataProblemKind.WrongSize };
        int count = rows.Length / dimension;
        int start = 0;
        // A large matrix (a whole training set, checked before every fit) is scanned by row blocks on the worker team,
        // each block finding its first row that fails the fast check; the row-by-row loop below then starts at the
        // earliest such row, so the exception names the same row and column as a serial scan would.
        if ((long)rows.Length >= ParallelValues && count > 1)
            start = FirstSuspectRow(rows, dimension, count, domain);
        for (int r = start; r < count; r++)
        {
            var row = rows.Slice(r * dimension, dimension);
            if (PassesFastCheck(row, domain)) continue;
            for (int c = 0; c < dimension; c++)
            {
                float v = row[c];
                if (float.IsNaN(v)) throw new DataValidationException(firstRow + r, c, NaNValue, source) { Kind = DataProblemKind.NonFiniteValue };
                if (float.IsInfinity(v)) throw new DataValidationException(firstRow + r, c, InfiniteValue(v), source) { Kind = DataProblemKind.NonFiniteValue };
                if (domain == InputDomain.Binary && v != 0f && v != 1f)
                    throw new DataValidationException(firstRow + r, c, FormattableString.Invariant($"value {v} {NotBinary}"), source) { Kind = DataProblemKind.NotBinary };
            }
        }
        return count;
    }

    /// <summary>One vectorised pass that decides whether a row needs a closer look (the value-by-value loop that names
    /// the bad value).</summary>
    private static bool PassesFastCheck(ReadOnlySpan<float> row, InputDomain domain)
        => domain == InputDomain.Real ? RowOps.AllFinite(row) : AllBinary(row);

    /// <summary>Values from which <see cref="CheckRows"/> scans blocks of rows in parallel (4 MiB of floats).</summary>
    internal const long ParallelValues = 1L << 20;

    /// <summary>The first row whose fast check fails (count if none), found block by block in parallel.</summary>
    private static unsafe int FirstSuspectRow(ReadOnlySpan<float> rows, int dimension, int count, InputDomain domain)
    {
        int rowsPerBlock = (int)Math.Max(1, ParallelValues / 4 / dimension);
        int blocks = (count + rowsPerBlock - 1) / rowsPerBlock;
        var firstSuspect = new int[blocks];
        fixed (float* p = rows)
        {
            nint address = (nint)p;
            DeepDensityEnvironment.For(0, blocks, b =>
            {
                int r0 = b * rowsPerBlock, r1 = Math.Min(count, r0 + rowsPerBlock);
                var all = new ReadOnlySpan<float>((float*)address, count * dimension);
                int r = r0;
                for (; r < r1; r++)
                {
                    var row = all.Slice(r * dimension, dimension);
                    if (!PassesFastCheck(row, domain)) break;
                }
                firstSuspect[b] = r;
            });
        }
        for (int b = 0; b < blocks; b++)
            if (firstSuspect[b] < Math.Min(count, (b + 1) * rowsPerBlock)) return firstSuspect[b];
        return count;
    }

    /// <summary>Checks a training matrix: at least one row (the training data of every row family's Fit:
    /// <see cref="TrainingRowChecks.MinimumRows"/>, unless <paramref name="minRows"/> says otherwise), the expected width
    /// (if given), valid values.</summary>
    public static void CheckTrainingData(RowMatrix data, InputDomain domain, string source, int? expectedWidth = null, int? minRows = null)
    {
        int needed = minRows ?? (source == TrainingData ? TrainingRowChecks.MinimumRows : 1);
        ArgumentNullException.ThrowIfNull(data);
        if (data.Rows == 0) throw NoRowsIn(source);
        if (data.Columns == 0) throw new DataValidationException(-1, -1, "rows have no columns", source) { Kind = DataProblemKind.NotEnoughData };
        if (expectedWidth is int w && data.Columns != w)
            throw new DataValidationException(-1, -1, FormattableString.Invariant($"rows have {data.Columns} columns but {w} are expected"), source) { Kind = DataProblemKind.WrongSize };
        if (data.Rows < needed) throw TrainingRowChecks.TooFewRows(data.Rows, source);
        CheckRows(data.AsSpan(), data.Columns, domain, source);
    }

    /// <summary>
    /// Checks sequences for a model with frames of <paramref name="frameSize"/> floats: the frame size and valid values
    /// (a bad value is reported with the sequence as the row, the slot within the frame as the column, and the frame).
    /// </summary>
    public static void CheckSequences(SequenceBatch sequences, int frameSize, InputDomain domain, string? source)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        if (sequences.FrameSize != frameSize)
            throw new DataValidationException(-1, -1, FormattableString.Invariant($"frames have {sequences.FrameSize} values but the model expects {frameSize} (wrong frame size?)"), source) { Kind = DataProblemKind.WrongSize };
        for (int i = 0; i < sequences.Count; i++)
        {
            try { CheckRows(sequences.Sequence(i), frameSize, domain, source); }
            catch (DataValidationException e) { throw e.Restated(i, e.Column, FormattableString.Invariant($"frame {e.Row}: {e.Problem}"), source, chain: false); }
        }
    }

    /// <summary>Checks training sequences: at least <paramref name="minSequences"/>, the expected frame size, valid values.</summary>
    public static void CheckTrainingData(SequenceBatch data, InputDomain domain, string source, int expectedFrameSize, int minSequences = 1)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Count == 0) throw new DataValidationException(-1, -1, "there are no sequences", source) { Kind = DataProblemKind.NotEnoughData };
        if (data.Count < minSequences)
            throw new DataValidationException(-1, -1, FormattableString.Invariant($"the data has {data.Count} sequence{(data.Count == 1 ? "" : "s")}; at least {minSequences} sequences are needed"), source) { Kind = DataProblemKind.NotEnoughData };
        CheckSequences(data, expectedFrameSize, domain, source);
    }

    // This check and RowOps.AllFinite run once per scored row before any model arithmetic, so they are vectorised (a scalar loop is one
    // dependent add per value: ~1 µs for a 784-pixel row, more than an RBM's whole score of it).

    private static bool AllBinary(ReadOnlySpan<float> row)
    {
        int i = 0, width = Vector<float>.Count;
        // 512-bit lanes where the CPU has them (Vector<float> is 256-bit there): half the iterations for scoring's check of
        // every binary row.
        if (Vector512.IsHardwareAccelerated && row.Length >= 16)
        {
            ref float r0 = ref MemoryMarshal.GetReference(row);
            var ok = Vector512<int>.AllBitsSet;
            for (; i <= row.Length - 16; i += 16)
            {
                var v = Vector512.LoadUnsafe(ref r0, (nuint)i);
                ok &= (Vector512.Equals(v, Vector512<float>.Zero) | Vector512.Equals(v, Vector512<float>.One)).AsInt32();
            }
            if (ok != Vector512<int>.AllBitsSet) return false;
        }
        else if (Vector.IsHardwareAccelerated && row.Length >= width)
        {
            ref float r0 = ref MemoryMarshal.GetReference(row);
            var ok = Vector<int>.AllBitsSet;
            for (; i <= row.Length - width; i += width)
            {
                var v = Vector.LoadUnsafe(ref r0, (nuint)i);
                ok &= Vector.Equals(v, Vector<float>.Zero) | Vector.Equals(v, Vector<float>.One);
            }
            if (!Vector.EqualsAll(ok, Vector<int>.AllBitsSet)) return false;
        }
        for (; i < row.Length; i++) if (row[i] != 0f && row[i] != 1f) return false;
        return true;
    }
}
