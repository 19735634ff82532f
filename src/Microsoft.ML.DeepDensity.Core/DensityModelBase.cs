using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Training;

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
/// What every DeepDensity model shares, whether it scores fixed-width rows (<see cref="DensityModel"/>) or
/// variable-length sequences of frames (<see cref="SequenceDensityModel"/>): its kind, what its log-density means, its
/// input domain, and the versioned binary model file (one format and one registry of kinds for both).
/// </summary>
public abstract class DensityModelBase
{
    private protected DensityModelBase() { }

    /// <summary>Stable name of the model family, written into saved files (e.g. "Rnade").</summary>
    public abstract string ModelKind { get; }

    /// <summary>Which values the input slots may take.</summary>
    public virtual InputDomain InputDomain => InputDomain.Real;

    /// <summary>What the model's log-density numbers are.</summary>
    public abstract DensityKind DensityKind { get; }

    /// <summary>What training did: the steps run, the kept (best) step, why the run ended and the per-step history
    /// (training and validation figures, for learning curves); log-likelihoods are per example (per frame for a sequence
    /// model). Null for a model that was not trained in this process: one loaded from a file or an ML.NET zip (the
    /// history is not saved with the model) or imported. On the base class so that every family's summary is read the
    /// same way, e.g. <c>transformer.GetDensityModel().TrainingSummary</c> in ML.NET, whatever the family; a model family
    /// of another assembly sets it from its own Fit.</summary>
    public TrainingSummary? TrainingSummary { get; protected internal set; }

    /// <summary>Writes the model in the versioned, checksummed DeepDensity format.</summary>
    public void Save(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ModelFile.Write(stream, this);
    }

    /// <summary>The number of bytes <see cref="Save"/> writes (and <see cref="ToBytes"/> returns), counted as the model is
    /// written without holding a copy of the file: nothing of the model's size is allocated.</summary>
    public long GetFileLength() => ModelFile.Length(this);

    /// <summary>Saves to a byte array.</summary>
    public byte[] ToBytes()
    {
        using var ms = new MemoryStream();
        Save(ms);
        return ms.ToArray();
    }

    /// <summary>Loads any registered model kind, row or sequence; a corrupt, truncated or foreign file throws <see cref="InvalidModelFileException"/>.</summary>
    public static DensityModelBase LoadAny(Stream stream) => ModelFile.Read(stream);

    /// <summary>Loads any registered model kind from bytes produced by <see cref="ToBytes"/>.</summary>
    public static DensityModelBase LoadAny(ReadOnlySpan<byte> bytes) => ModelFile.Read(bytes);

    /// <summary>Version of this kind's payload layout, written into files.</summary>
    protected internal virtual int PayloadVersion => 1;

    /// <summary>Writes the learned state (parameters, preprocessing) to <paramref name="writer"/>.</summary>
    protected internal abstract void WritePayload(ModelWriter writer);

    /// <summary>
    /// The engine-wide output contract, enforced by the public members so that every model obeys it: a log-density is
    /// never NaN. Inputs are validated finite and parameters are checked finite when trained or loaded, so a NaN from a
    /// model's core can only come from float overflow (∞ − ∞, 0·∞) on an input so far from the data that its density
    /// underflows float32: it is reported as −∞ (with standard error 0). A standard error must be non-negative and
    /// zero unless the model is a <see cref="DensityKind.Estimate"/>, whose standard error is finite or +∞ (unknown: an
    /// importance-sampled estimate that rests on too few effective samples to say how far off it may be); NaN, a
    /// negative value or a non-zero one from an exact model is a model bug and fails loudly. <paramref name="unit"/> names what one value is about ("row", "sequence", "frame").
    /// </summary>
    private protected void CheckOutputs(Span<float> logDensity, Span<float> standardError, string unit)
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
            if (!(se >= 0) || (se != 0 && DensityKind != DensityKind.Estimate))
                throw new InvalidOperationException(FormattableString.Invariant($"{ModelKind} produced an invalid standard error {se} for {unit} {r} ({DensityKind} models report 0; estimates a non-negative value, +∞ when unknown). This is a bug in the model."));
        }
    }

    /// <summary>Same contract for drawn values: no NaN, and a binary model draws only 0 or 1. <paramref name="firstIndex"/>
    /// numbers the first of the <paramref name="unit"/>s (a range of a larger draw starts there).</summary>
    private protected void CheckSamples(ReadOnlySpan<float> samples, int width, string unit, long firstIndex = 0)
    {
        for (int i = 0; i < samples.Length; i++)
        {
            float v = samples[i];
            if (float.IsNaN(v) || (InputDomain == InputDomain.Binary && v != 0f && v != 1f))
                throw new InvalidOperationException(FormattableString.Invariant($"{ModelKind} drew an invalid value {v} at {unit} {firstIndex + i / width}, column {i % width}. This is a bug in the model."));
        }
    }
}
