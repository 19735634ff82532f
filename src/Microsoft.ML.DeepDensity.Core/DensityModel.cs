using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Persistence;

namespace Microsoft.ML.DeepDensity;

/// <summary>What a model's log-density number is.</summary>
public enum DensityKind
{
    /// <summary>The exact normalised log-density (RNADE, Deep GMM, RBM with exact log Z).</summary>
    Exact = 0,
    /// <summary>A deterministic lower bound on the log-density (e.g. an ELBO / k-sample bound).</summary>
    LowerBound = 1,
    /// <summary>A stochastic estimate, reported with a standard error (importance sampling, AIS-normalised RBM).</summary>
    Estimate = 2,
    /// <summary>An unnormalised score: the log-density up to an unknown additive constant (e.g. −free energy).</summary>
    Unnormalized = 3,
}

/// <summary>What values a model accepts in each input slot.</summary>
public enum InputDomain
{
    /// <summary>Any finite real value.</summary>
    Real = 0,
    /// <summary>Exactly 0 or 1.</summary>
    Binary = 1,
}

/// <summary>
/// The contract every DeepDensity model answers: its dimension, batched log-densities of many rows at once
/// (labelled with what they are), drawing samples, and saving to the versioned binary model format.
/// </summary>
/// <remarks>
/// Rows are passed as one row-major span of <c>count × Dimension</c> floats. Public members validate their input
/// (finite values, width, domain) and throw <see cref="DataValidationException"/> naming row, column and problem;
/// the protected <c>…Core</c> members see only validated data. Scoring and sampling are thread-safe: a trained
/// model is immutable and the cores must not share scratch state between calls.
/// </remarks>
public abstract class DensityModel
{
    /// <summary>Stable name of the model family, written into saved files (e.g. "Rnade").</summary>
    public abstract string ModelKind { get; }

    /// <summary>Number of floats in one input row.</summary>
    public abstract int Dimension { get; }

    /// <summary>Which values the input slots may take.</summary>
    public virtual InputDomain InputDomain => InputDomain.Real;

    /// <summary>What <see cref="LogDensity(ReadOnlySpan{float}, Span{float}, Span{float})"/> returns.</summary>
    public abstract DensityKind DensityKind { get; }

    /// <summary>
    /// Writes the log-density of each row of <paramref name="rows"/> (count × <see cref="Dimension"/>, row-major)
    /// into <paramref name="logDensity"/>. For <see cref="DensityKind.Estimate"/> models, the standard error of each
    /// estimate goes into <paramref name="standardError"/> when it is non-empty (zeros for exact models).
    /// </summary>
    public void LogDensity(ReadOnlySpan<float> rows, Span<float> logDensity, Span<float> standardError = default)
    {
        int count = DataValidation.CheckRows(rows, Dimension, InputDomain, "rows");
        if (logDensity.Length < count)
            throw new ArgumentException($"Destination has {logDensity.Length} slots for {count} rows.", nameof(logDensity));
        if (!standardError.IsEmpty && standardError.Length < count)
            throw new ArgumentException($"Standard-error destination has {standardError.Length} slots for {count} rows.", nameof(standardError));
        if (count == 0) return;
        if (!standardError.IsEmpty) standardError[..count].Clear();
        LogDensityCore(rows, count, logDensity[..count], standardError.IsEmpty ? default : standardError[..count]);
        CheckOutputs(logDensity[..count], standardError.IsEmpty ? default : standardError[..count]);
    }

    /// <summary>
    /// The engine-wide output contract, enforced here so that every model obeys it: a log-density is never NaN. Inputs
    /// are validated finite and parameters are checked finite when trained or loaded, so a NaN from a model's core can
    /// only come from float overflow (∞ − ∞, 0·∞) on a row so far from the data that its density underflows float32:
    /// it is reported as −∞ (with standard error 0). Ordinary rows never reach this (the conformance suite checks that
    /// they score finite). A standard error must be finite and non-negative, and zero unless the model is a
    /// <see cref="DensityKind.Estimate"/>; a violation is a model bug and fails loudly.
    /// </summary>
    private void CheckOutputs(Span<float> logDensity, Span<float> standardError)
    {
        for (int r = 0; r < logDensity.Length; r++)
            if (float.IsNaN(logDensity[r]))
            {
                logDensity[r] = float.NegativeInfinity;
                if (!standardError.IsEmpty) standardError[r] = 0f;
            }
        for (int r = 0; r < standardError.Length; r++)
        {
            float se = standardError[r];
            if (!(se >= 0) || !float.IsFinite(se) || (se != 0 && DensityKind != DensityKind.Estimate))
                throw new InvalidOperationException($"{ModelKind} produced an invalid standard error {se} for row {r} ({DensityKind} models report 0; estimates a finite non-negative value). This is a bug in the model.");
        }
    }

    /// <summary>Log-densities of <paramref name="rows"/> as a new array.</summary>
    public float[] LogDensity(RowMatrix rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        CheckWidth(rows);
        var result = new float[rows.Rows];
        LogDensity(rows.Values.AsSpan(0, rows.Rows * rows.Columns), result);
        return result;
    }

    /// <summary>Mean log-density over the rows (float64 accumulation).</summary>
    public double AverageLogDensity(RowMatrix rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Rows == 0) throw new DataValidationException(-1, -1, "the data has no rows (the average of no log-densities is undefined)", null);
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
    /// <see cref="Sample(int, ulong, Span{float})"/> that can be cancelled: models whose sampling is long (an RBM's Gibbs
    /// chains) check <paramref name="cancellationToken"/> as they go and throw <see cref="OperationCanceledException"/>;
    /// the others check it before they start. The same seed gives the same rows with or without a token.
    /// </summary>
    public void Sample(int count, ulong seed, Span<float> destination, CancellationToken cancellationToken)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), "Sample count must be non-negative.");
        if (destination.Length < (long)count * Dimension)
            throw new ArgumentException($"Destination has {destination.Length} floats; {count} samples need {(long)count * Dimension}.", nameof(destination));
        if (count == 0) return;
        cancellationToken.ThrowIfCancellationRequested();
        var samples = destination[..(count * Dimension)];
        SampleCore(count, seed, samples, cancellationToken);
        // Same contract as scoring: no NaN, and a binary model draws only 0 or 1 (checked here once for all models).
        for (int i = 0; i < samples.Length; i++)
        {
            float v = samples[i];
            if (float.IsNaN(v) || (InputDomain == InputDomain.Binary && v != 0f && v != 1f))
                throw new InvalidOperationException($"{ModelKind} drew an invalid value {v} at sample {i / Dimension}, column {i % Dimension}. This is a bug in the model.");
        }
    }

    /// <summary>Draws <paramref name="count"/> rows as a new matrix.</summary>
    public RowMatrix Sample(int count, ulong seed) => Sample(count, seed, CancellationToken.None);

    /// <summary>Draws <paramref name="count"/> rows as a new matrix; cancellable (see <see cref="Sample(int, ulong, Span{float}, CancellationToken)"/>).</summary>
    public RowMatrix Sample(int count, ulong seed, CancellationToken cancellationToken)
    {
        var m = new RowMatrix(count, Dimension);
        Sample(count, seed, m.Values, cancellationToken);
        return m;
    }

    /// <summary>Writes the model in the versioned, checksummed DeepDensity format.</summary>
    public void Save(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ModelFile.Write(stream, this);
    }

    /// <summary>Saves to a byte array.</summary>
    public byte[] ToBytes()
    {
        using var ms = new MemoryStream();
        Save(ms);
        return ms.ToArray();
    }

    /// <summary>Loads any registered model kind; a corrupt, truncated or foreign file throws <see cref="InvalidModelFileException"/>.</summary>
    public static DensityModel Load(Stream stream) => ModelFile.Read(stream);

    /// <summary>Loads a model from bytes produced by <see cref="ToBytes"/>.</summary>
    public static DensityModel FromBytes(ReadOnlySpan<byte> bytes) => ModelFile.Read(bytes);

    /// <summary>Loads and checks the model kind.</summary>
    public static T Load<T>(Stream stream) where T : DensityModel
        => Load(stream) as T ?? throw new InvalidModelFileException($"The file does not hold a {typeof(T).Name}.");

    /// <summary>Version of this kind's payload layout, written into files.</summary>
    protected internal virtual int PayloadVersion => 1;

    /// <summary>Writes the learned state (parameters, preprocessing) to <paramref name="writer"/>.</summary>
    protected internal abstract void WritePayload(ModelWriter writer);

    /// <summary>Scores validated rows.</summary>
    protected abstract void LogDensityCore(ReadOnlySpan<float> rows, int count, Span<float> logDensity, Span<float> standardError);

    /// <summary>Draws <paramref name="count"/> rows; must be a pure function of the seed (thread-count independent).</summary>
    protected abstract void SampleCore(int count, ulong seed, Span<float> destination);

    /// <summary>Cancellable form of <see cref="SampleCore(int, ulong, Span{float})"/>; a model whose sampling can run long
    /// overrides it and checks the token as it goes (the default ignores it: the caller checked it before the call).</summary>
    protected virtual void SampleCore(int count, ulong seed, Span<float> destination, CancellationToken cancellationToken)
        => SampleCore(count, seed, destination);

    private void CheckWidth(RowMatrix rows)
    {
        if (rows.Columns != Dimension)
            throw new DataValidationException(-1, -1, $"the data has {rows.Columns} columns but the model expects {Dimension} (wrong vector size?)", null);
    }
}
