using System.Globalization;

namespace Microsoft.ML.DeepDensity.Persistence;

/// <summary>
/// Options of a model family whose size follows from the width of the data (every family's options implement it):
/// the model's size is known from the options and the number of columns alone, before a row is read.
/// </summary>
public interface IModelSizeOptions
{
    /// <summary>The size of the model these options train on rows (RNN-RNADE: frames) of <paramref name="columns"/>
    /// values: the exact parameter count of the network a Fit builds, computed in 64-bit checked arithmetic (saturating
    /// at <see cref="long.MaxValue"/>, so that no width overflows it). Every Fit refuses a model that could not be saved
    /// (<see cref="ModelSizePrediction.FitsAFile"/>) with this before it reads the data.</summary>
    /// <param name="columns">Values per row (per frame).</param>
    ModelSizePrediction PredictModelSize(int columns);
}

/// <summary>The size of a model before it is built (<see cref="IModelSizeOptions.PredictModelSize"/>).</summary>
public sealed record ModelSizePrediction
{
    internal ModelSizePrediction(string model, int columns, long parameterCount, string architecture, string remedy, int maxColumns)
    {
        Model = model; Columns = columns; ParameterCount = parameterCount; Architecture = architecture; Remedy = remedy; MaxColumns = maxColumns;
    }

    /// <summary>The model kind in words ("RNADE").</summary>
    public string Model { get; }
    /// <summary>Values per row (per frame) the model is built for.</summary>
    public int Columns { get; }
    /// <summary>Parameters of the model (float32 values of its file); <see cref="long.MaxValue"/> when the count exceeds a long.</summary>
    public long ParameterCount { get; }
    /// <summary>Bytes of the parameters in a model file (4 per parameter, saturating): a lower bound of the payload,
    /// which adds the standardisation, the order and the sizes (a few values per column, and a few hundred bytes).</summary>
    public long ParameterBytes => ParameterCount > long.MaxValue / sizeof(float) ? long.MaxValue : ParameterCount * sizeof(float);
    /// <summary>The most columns the family's files hold (the reader's bound).</summary>
    public int MaxColumns { get; }
    /// <summary>The architecture and the options that drive its size, in words ("an RNADE of 100 hidden units and 10
    /// components (D×H·3K output weights)").</summary>
    public string Architecture { get; }
    /// <summary>What makes the model smaller, in words ("use fewer columns (e.g. a PCA projection), fewer HiddenUnits or Components").</summary>
    public string Remedy { get; }

    /// <summary>Whether a model file can hold the model: at most <see cref="MaxColumns"/> columns and parameters of at
    /// most <see cref="ModelFile.MaxPayloadLength"/> bytes.</summary>
    public bool FitsAFile => Columns <= MaxColumns && ParameterBytes <= ModelFile.MaxPayloadLength;

    /// <summary>Why the model's parameters do not fit <paramref name="limitBytes"/> bytes (named
    /// <paramref name="limitName"/>, with <paramref name="limitNote"/> after the number, e.g. the setting), in one
    /// sentence naming the width, the options that drive the size, the size, the limit and the remedy; null when they fit.</summary>
    public string? ExceedsMessage(long limitBytes, string limitName, string? limitNote = null) => ExceedsMessage(limitBytes, limitName, limitNote, "");

    private string? ExceedsMessage(long limitBytes, string limitName, string? limitNote, string consequence)
        => ParameterBytes <= limitBytes ? null : string.Create(CultureInfo.InvariantCulture,
            $"{Columns:N0} columns make {Architecture}: {Count} parameters ({Human}), {Bytes}, more than {limitName} ({limitBytes:N0} bytes{(limitNote is null ? "" : "; " + limitNote)}){consequence}; {Remedy}");

    private string Count => ParameterCount == long.MaxValue ? "more than 9.2e18" : ParameterCount.ToString("N0", CultureInfo.InvariantCulture);
    private string Bytes => ParameterBytes == long.MaxValue ? "more than 9.2e18 bytes" : ParameterBytes.ToString("N0", CultureInfo.InvariantCulture) + " bytes";
    private string Human => ParameterBytes >= 1L << 30
        ? string.Create(CultureInfo.InvariantCulture, $"{ParameterBytes / (double)(1L << 30):N1} GiB")
        : string.Create(CultureInfo.InvariantCulture, $"{ParameterBytes / (double)(1L << 20):N1} MiB");

    /// <summary>
    /// Refuses, before any row is read and anything model-sized is allocated, a model that no file could hold: more
    /// columns than the family's files hold, or parameters beyond <see cref="ModelFile.MaxPayloadLength"/> bytes. It
    /// could never be saved, and its tensor sizes, products of the width, would overflow array lengths (silently
    /// wrapping to a wrong size, or asking for tens of gigabytes) or train for hours first. The width of the data is
    /// what makes such a model too large, so it is reported as a <see cref="Data.DataValidationException"/> on the
    /// training data.
    /// </summary>
    internal void EnsureFitsAFile()
    {
        if (Columns > MaxColumns)
            throw new Data.DataValidationException(-1, -1, string.Create(CultureInfo.InvariantCulture,
                $"{Columns:N0} columns are more than {Model} model files hold ({MaxColumns:N0}); use fewer columns (e.g. a PCA projection)"),
                Data.DataValidation.TrainingData);
        if (ExceedsMessage(ModelFile.MaxPayloadLength, "a model file holds", null, ", so the model could never be saved") is string problem)
            throw new Data.DataValidationException(-1, -1, problem, Data.DataValidation.TrainingData);
    }

    /// <summary>
    /// <see cref="EnsureFitsAFile"/>, and refuses a model whose parameters exceed
    /// <see cref="DeepDensityEnvironment.MaxModelFileBytes"/> (the ML.NET estimators' Fit, as <c>ddml fit</c>): it would
    /// train and save, and then no load would read the zip back until the setting is raised. At the widths where this
    /// happens the train is long and large (a new user's 2,000-column deep RNADE at the defaults: 126 million parameters,
    /// 6.4 GB of memory and a minute an epoch, for a zip no load would read). Raising the setting before Fit trains it.
    /// </summary>
    internal void EnsureLoadable()
    {
        EnsureFitsAFile();
        if (ExceedsMessage(DeepDensityEnvironment.MaxModelFileBytes, "a saved model may have to load",
                "DeepDensityEnvironment.MaxModelFileBytes: raise it before Fit to train, save and load a model this large",
                ", so it was not trained") is string problem)
            throw new Data.DataValidationException(-1, -1, problem, Data.DataValidation.TrainingData);
    }

    /// <summary>The exact count of <paramref name="count"/> in checked 64-bit arithmetic; <see cref="long.MaxValue"/> when it overflows.</summary>
    internal static long Saturating(Func<long> count)
    {
        try { return count(); }
        catch (OverflowException) { return long.MaxValue; }
    }
}
