using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Reporting;

/// <summary>What goes into a <see cref="DensityReport"/> besides the model and the rows.</summary>
public sealed class DensityReportOptions
{
    /// <summary>Heading of the page. Default "DeepDensity report".</summary>
    public string Title { get; set; } = "DeepDensity report";

    /// <summary>Name/value lines shown under the title (model, data file, options...). Default none.</summary>
    public IList<KeyValuePair<string, string>> Facts { get; } = new List<KeyValuePair<string, string>>();

    /// <summary>Column names of the rows (default f0, f1, ...).</summary>
    public IReadOnlyList<string>? FeatureNames { get; set; }

    /// <summary>How each row (for sequences: each frame, in the batch's frame order) is named in the table of anomalous
    /// rows (e.g. "line 17"); default "row i".</summary>
    public IReadOnlyList<string>? RowNames { get; set; }

    /// <summary>Anomaly labels of the rows (for sequences: of every frame, in the batch's frame order; true = anomalous):
    /// splits the histogram and gives the ROC curve. Default none.</summary>
    public IReadOnlyList<bool>? Labels { get; set; }

    /// <summary>Training progress per epoch or EM iteration, for the training curves. Default none (the section says so).</summary>
    public IReadOnlyList<TrainingProgress>? TrainingHistory { get; set; }

    /// <summary>Height × width of image-shaped rows; null = square rows of at least <see cref="MinAutomaticImageSide"/>²
    /// columns (a perfect square: 64, 81, …, 784) are drawn as images, others (a table of 4, 9 or 16 columns) are not.</summary>
    public (int Height, int Width)? ImageShape { get; set; }

    /// <summary>Rows listed (and drawn) as most anomalous. Default 10.</summary>
    public int TopRows { get; set; } = 10;

    /// <summary>Most images drawn in one grid (<see cref="SampleCount"/> at most; of the <see cref="TopRows"/> most
    /// anomalous rows, the first ones): a grid of tens of thousands is an image no one can read, and beyond about 40,000 one
    /// the plotting library cannot make.</summary>
    public const int MaxImagesDrawn = 200;

    /// <summary>The smallest side of a square row drawn as an image without <see cref="ImageShape"/>: 8 (the 8×8 digits).
    /// A perfect square of fewer columns is more often a table than an image.</summary>
    public const int MinAutomaticImageSide = 8;

    /// <summary>Generated samples drawn for image-shaped data, beside as many real rows (0 to <see cref="MaxImagesDrawn"/>;
    /// 0 draws none, and the report has no grids of generated and real rows). Default 24.</summary>
    public int SampleCount { get; set; } = 24;

    /// <summary>Seed of the generated samples. Default 0.</summary>
    public ulong Seed { get; set; }

    /// <summary>Sequences only: how each sequence is named (e.g. its id); default "sequence i".</summary>
    public IReadOnlyList<string>? SequenceNames { get; set; }

    /// <summary>Most real and generated sequences drawn (<see cref="SequenceCount"/> at most).</summary>
    public const int MaxSequencesDrawn = 200;

    /// <summary>Most frames per generated sequence (<see cref="SampleLength"/> at most): the line plots draw every one.</summary>
    public const int MaxSampleLength = 100_000;

    /// <summary>Sequences only: real and generated sequences drawn as line plots (0 to <see cref="MaxSequencesDrawn"/>; 0
    /// draws none, and the report has no section of real and generated sequences). Default 4.</summary>
    public int SequenceCount { get; set; } = 4;

    /// <summary>Sequences only: frames of each generated sequence (at most <see cref="MaxSampleLength"/>); null = the median length of the scored sequences.</summary>
    public int? SampleLength { get; set; }

    /// <summary>Sequences only: features drawn as line plots (the first ones). Default 4.</summary>
    public int FeaturesDrawn { get; set; } = 4;

    /// <summary>The settings that must agree with the model (a FeatureNames list of another length mislabelled the table
    /// of anomalous rows, or cut it short) and the counts that must not be negative.</summary>
    internal void CheckFor(int columns, string what)
    {
        if (FeatureNames is { } names && names.Count != columns)
            throw new ArgumentException(FormattableString.Invariant($"FeatureNames has {names.Count} names for {columns} {what}."), "options");
        foreach (var (name, value) in new[] { (nameof(TopRows), TopRows), (nameof(SampleCount), SampleCount), (nameof(SequenceCount), SequenceCount) })
            if (value < 0) throw new ArgumentOutOfRangeException("options", FormattableString.Invariant($"{name} must not be negative (got {value})."));
        if (SequenceCount > MaxSequencesDrawn)
            throw new ArgumentOutOfRangeException("options", FormattableString.Invariant($"{nameof(SequenceCount)} must be at most {MaxSequencesDrawn} (got {SequenceCount}): the sequences are drawn as lines of one plot."));
        if (SampleLength is int length && (length < 1 || length > MaxSampleLength))
            throw new ArgumentOutOfRangeException("options", FormattableString.Invariant($"{nameof(SampleLength)} must be in [1, {MaxSampleLength}] (got {length})."));
        if (SampleCount > MaxImagesDrawn)
            throw new ArgumentOutOfRangeException("options", FormattableString.Invariant($"{nameof(SampleCount)} must be at most {MaxImagesDrawn} (got {SampleCount}): the samples are drawn as images in one grid."));
    }
}
