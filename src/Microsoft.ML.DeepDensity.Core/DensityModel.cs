using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Persistence;

namespace Microsoft.ML.DeepDensity;

/// <summary>
/// The contract every row model answers (one fixed-width row per example): its dimension, batched log-densities of many rows at once
/// (labelled with what they are), drawing samples, and saving to the versioned binary model format.
/// </summary>
/// <remarks>
/// Rows are passed as one row-major span of <c>count × Dimension</c> floats. Public members validate their input
/// (finite values, width, domain) and throw <see cref="DataValidationException"/> naming row, column and problem;
/// the protected <c>…Core</c> members see only validated data. Scoring and sampling are thread-safe: a trained
/// model is immutable and the cores must not share scratch state between calls.
/// </remarks>
public abstract partial class DensityModel : DensityModelBase
{
    /// <summary>Number of floats in one input row.</summary>
    public abstract int Dimension { get; }

    /// <summary>
    /// Writes the log-density of each row of <paramref name="rows"/> (count × <see cref="Dimension"/>, row-major)
    /// into <paramref name="logDensity"/>. For <see cref="DensityKind.Estimate"/> models, the standard error of each
    /// estimate goes into <paramref name="standardError"/> when it is non-empty (zeros for exact models): +∞ when it is
    /// unknown (an importance-sampled estimate resting on fewer than four effective samples, whose error cannot be
    /// measured from its own weights; 0 for a row whose estimate is −∞).
    /// </summary>
    public void LogDensity(ReadOnlySpan<float> rows, Span<float> logDensity, Span<float> standardError = default)
        => LogDensity(rows, logDensity, standardError, CancellationToken.None);

    /// <summary>
    /// <see cref="LogDensity(ReadOnlySpan{float}, Span{float}, Span{float})"/> that can be cancelled: the rows are
    /// validated first, then scored in groups of <see cref="RowsPerCancellationCheck"/> rows with a check of
    /// <paramref name="cancellationToken"/> before each (<see cref="OperationCanceledException"/>; the destination then
    /// holds the scores of the groups done). Works for every model, through the same <c>LogDensityCore</c>; the scores
    /// are bit for bit those of one call (row scores do not depend on the rows around them, and a group is a whole number
    /// of every built-in model's scoring blocks).
    /// </summary>
    public void LogDensity(ReadOnlySpan<float> rows, Span<float> logDensity, Span<float> standardError, CancellationToken cancellationToken)
    {
        int count = DataValidation.CheckRows(rows, Dimension, InputDomain, "rows");
        if (logDensity.Length < count)
            throw new ArgumentException(FormattableString.Invariant($"Destination has {logDensity.Length} slots for {count} rows."), nameof(logDensity));
        if (!standardError.IsEmpty && standardError.Length < count)
            throw new ArgumentException(FormattableString.Invariant($"Standard-error destination has {standardError.Length} slots for {count} rows."), nameof(standardError));
        cancellationToken.ThrowIfCancellationRequested();
        if (count == 0) return;
        var ld = logDensity[..count];
        var se = standardError.IsEmpty ? default : standardError[..count];
        se.Clear();
        ScoreInGroups(rows, count, ld, se, Math.Clamp(RowsPerCancellationCheck, 1, DefaultRowsPerCancellationCheck), cancellationToken,
            _logDensityScorer ??= LogDensityCore, null);
        CheckOutputs(ld, se, "row");
    }

    /// <summary>Rows <see cref="LogDensity(ReadOnlySpan{float}, Span{float}, Span{float}, CancellationToken)"/> scores
    /// between two checks of its token: <see cref="DefaultRowsPerCancellationCheck"/>, or fewer for a model whose rows
    /// cost more (an importance-sampled estimate with K samples per row: a power of two near 2^17 / K). A model
    /// outside the library may override it; it must be a power of two (a whole number of every scoring block).</summary>
    public virtual int RowsPerCancellationCheck => DefaultRowsPerCancellationCheck;

    /// <summary>16,384 rows: well under a second on one core for every built-in model with an exact density, and a
    /// multiple of their scoring blocks.</summary>
    public const int DefaultRowsPerCancellationCheck = 1 << 14;

    /// <summary>Rows between two checks of the token when every row costs <paramref name="samplesPerRow"/> samples: the
    /// largest power of two at most 2^17 / samples, and at most <see cref="DefaultRowsPerCancellationCheck"/>, so that
    /// the time between checks stays bounded however many samples a row takes.</summary>
    internal static int RowsPerCancellationCheckAt(int samplesPerRow)
        => Math.Min(DefaultRowsPerCancellationCheck, 1 << System.Numerics.BitOperations.Log2((uint)Math.Max(1, (1 << 17) / Math.Max(1, samplesPerRow))));

    /// <summary>Scores validated rows into one value per row (<paramref name="output"/> holds <paramref name="count"/>
    /// slots) and, when <paramref name="second"/> is non-empty, a second one (a log-density's standard error).</summary>
    private protected delegate void RowGroupScorer(ReadOnlySpan<float> rows, int count, Span<float> output, Span<float> second);

    // Made once per model: LogDensity's one-call path allocates nothing.
    private RowGroupScorer? _logDensityScorer;

    /// <summary>
    /// The one group loop of the cancellable calls (<c>LogDensity</c>, an RBM's free energy, the k-sample bound):
    /// <paramref name="count"/> validated rows scored by <paramref name="score"/> in groups of
    /// <paramref name="rowsPerCheck"/> rows, <paramref name="cancellationToken"/> checked before every group but the first
    /// (the caller checks it before any work). A token that cannot be cancelled scores all the rows in one call, as before
    /// the token existed. <paramref name="groupDone"/>, when given, hears the rows done after every group (tests cancel
    /// their token there, to see the call stop between groups).
    /// </summary>
    private protected void ScoreInGroups(ReadOnlySpan<float> rows, int count, Span<float> output, Span<float> second, int rowsPerCheck,
        CancellationToken cancellationToken, RowGroupScorer score, Action<int>? groupDone)
    {
        int d = Dimension, group = cancellationToken.CanBeCanceled ? Math.Max(1, rowsPerCheck) : Math.Max(1, count);
        for (int start = 0; start < count; start += group)
        {
            if (start > 0) cancellationToken.ThrowIfCancellationRequested();
            int n = Math.Min(group, count - start);
            score(rows.Slice(start * d, n * d), n, output.Slice(start, n), second.IsEmpty ? default : second.Slice(start, n));
            groupDone?.Invoke(start + n);
        }
    }

    /// <summary>Log-densities of <paramref name="rows"/> as a new array.</summary>
    public float[] LogDensity(RowMatrix rows) => LogDensity(rows, CancellationToken.None);

    /// <summary>Log-densities of <paramref name="rows"/> as a new array; cancellable (see
    /// <see cref="LogDensity(ReadOnlySpan{float}, Span{float}, Span{float}, CancellationToken)"/>).</summary>
    public float[] LogDensity(RowMatrix rows, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(rows);
        CheckWidth(rows);
        var result = new float[rows.Rows];
        LogDensity(rows.Values.AsSpan(0, rows.Rows * rows.Columns), result, default, cancellationToken);
        return result;
    }

    /// <summary>Mean log-density over the rows (float64 accumulation).</summary>
    public double AverageLogDensity(RowMatrix rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Rows == 0) throw new DataValidationException(-1, -1, "there are no rows (the average of no log-densities is undefined)", null) { Kind = DataProblemKind.NotEnoughData };
        var ld = LogDensity(rows);
        double s = 0;
        foreach (var v in ld) s += v;
        return s / ld.Length;
    }

    /// <summary>
    /// Draws <paramref name="count"/> rows into <paramref name="destination"/> (count × Dimension); the same seed gives the
    /// same rows, whatever the number of threads. Models should make row i depend only on (seed, i) — RNADE does — so
    /// that a prefix of a larger draw equals a smaller draw.
    /// </summary>
    public void Sample(int count, ulong seed, Span<float> destination) => Sample(count, seed, destination, CancellationToken.None);

    /// <summary>
    /// <see cref="Sample(int, ulong, Span{float})"/> that can be cancelled: every model checks
    /// <paramref name="cancellationToken"/> as it goes (an RBM before every Gibbs sweep, the others before every block of
    /// rows) and throws <see cref="OperationCanceledException"/>; <paramref name="destination"/> then holds some of the
    /// rows. The same seed gives the same rows with or without a token.
    /// </summary>
    public void Sample(int count, ulong seed, Span<float> destination, CancellationToken cancellationToken)
    {
        CheckSampleCount(count);
        if (destination.Length < (long)count * Dimension)
            throw new ArgumentException(FormattableString.Invariant($"Destination has {destination.Length} floats; {count} samples need {(long)count * Dimension}."), nameof(destination));
        if (count == 0) return;
        cancellationToken.ThrowIfCancellationRequested();
        var samples = destination[..(count * Dimension)];
        SampleCore(count, seed, samples, cancellationToken);
        CheckSamples(samples, Dimension, "sample");
    }

    /// <summary>Draws <paramref name="count"/> rows as a new matrix.</summary>
    public RowMatrix Sample(int count, ulong seed) => Sample(count, seed, CancellationToken.None);

    /// <summary>Draws <paramref name="count"/> rows as a new matrix; cancellable (see <see cref="Sample(int, ulong, Span{float}, CancellationToken)"/>).</summary>
    public RowMatrix Sample(int count, ulong seed, CancellationToken cancellationToken)
    {
        CheckSampleCount(count);
        if (count > Array.MaxLength / Math.Max(1, Dimension))
            throw new ArgumentOutOfRangeException(nameof(count), count,
                FormattableString.Invariant($"{count} samples of {Dimension} values exceed the largest array ({Array.MaxLength:N0} values); draw them in smaller batches."));
        var m = new RowMatrix(count, Dimension);
        Sample(count, seed, m.Values, cancellationToken);
        return m;
    }

    private static void CheckSampleCount(int count)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), FormattableString.Invariant($"Sample count must be non-negative (got {count})."));
    }

    /// <summary>Loads any registered row model kind; a corrupt, truncated or foreign file (or a sequence model) throws <see cref="InvalidModelFileException"/>.</summary>
    public static DensityModel Load(Stream stream) => AsRowModel(ModelFile.Read(stream));

    /// <summary>Loads a row model from bytes produced by <see cref="DensityModelBase.ToBytes"/>.</summary>
    public static DensityModel FromBytes(ReadOnlySpan<byte> bytes) => AsRowModel(ModelFile.Read(bytes));

    private static DensityModel AsRowModel(DensityModelBase model)
        => model as DensityModel ?? throw new InvalidModelFileException(
            $"The file holds a {model.ModelKind} sequence model, not a row model; load it with {nameof(SequenceDensityModel)}.{nameof(SequenceDensityModel.Load)}.");

    /// <summary>Loads and checks the model kind (another kind throws <see cref="InvalidModelFileException"/> naming both).</summary>
    public static T Load<T>(Stream stream) where T : DensityModel
    {
        var model = Load(stream);
        return model as T ?? throw new InvalidModelFileException($"The file holds a model of kind {model.ModelKind}, not the {typeof(T).Name} asked for; load it with {nameof(DensityModel)}.{nameof(Load)}(stream).");
    }

    /// <summary>Scores validated rows.</summary>
    protected abstract void LogDensityCore(ReadOnlySpan<float> rows, int count, Span<float> logDensity, Span<float> standardError);

    /// <summary>Draws <paramref name="count"/> rows; must be a pure function of the seed (thread-count independent).</summary>
    protected abstract void SampleCore(int count, ulong seed, Span<float> destination);

    /// <summary>Cancellable form of <see cref="SampleCore(int, ulong, Span{float})"/>. The built-in models check the token
    /// as they go: the RBM every Gibbs sweep, the others every sampling block (this default draws their blocks). For any
    /// other model the default ignores it and calls <see cref="SampleCore(int, ulong, Span{float})"/> (the caller checked
    /// it before the call).</summary>
    protected virtual void SampleCore(int count, ulong seed, Span<float> destination, CancellationToken cancellationToken)
    {
        if (SamplesInBlocks) SampleInBlocks(count, 0, count, seed, destination, cancellationToken);
        else SampleCore(count, seed, destination);
    }

    /// <summary>A matrix of rows must be as wide as the model (the span forms can only check that the values are whole
    /// rows, so a matrix of another width would be read as other rows).</summary>
    private protected void CheckWidth(RowMatrix rows)
    {
        if (rows.Columns != Dimension)
            throw new DataValidationException(-1, -1, FormattableString.Invariant($"the data has {rows.Columns} columns but the model expects {Dimension} (wrong vector size?)"), null) { Kind = DataProblemKind.WrongSize };
    }
}
