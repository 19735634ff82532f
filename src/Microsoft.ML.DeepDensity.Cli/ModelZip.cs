using System.Globalization;
using System.IO.Compression;
using System.Text.Json;
using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Training;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Cli;

/// <summary>One training epoch (or EM iteration) as stored in the model zip for <c>ddml info</c> and the report.
/// <paramref name="Metrics"/> are the trainer's extra figures (finite ones; absent in older files): a Gaussian RBM has no
/// per-epoch likelihood, and its reconstruction errors there are what info and the report show instead.</summary>
public sealed record EpochRecord(int Epoch, double? Train, double? Validation, double ExamplesPerSecond, double Seconds, string? Note,
    IReadOnlyDictionary<string, double>? Metrics = null);

/// <summary>What ddml stores next to the ML.NET model in the zip (entry <see cref="ModelZip.MetadataEntry"/>).</summary>
public sealed record ToolMetadata
{
    public string Tool { get; init; } = "";
    public string Model { get; init; } = "";
    public string[] FeatureColumns { get; init; } = Array.Empty<string>();
    public string? LabelColumn { get; init; }
    /// <summary>Sequence model only: the sequence-id and order columns of the frame rows.</summary>
    public string? SequenceIdColumn { get; init; }
    public string? OrderColumn { get; init; }
    /// <summary>Sequence model only: the number of training sequences and their median length (the default length of `ddml sample`).</summary>
    public int? TrainSequences { get; init; }
    public int? MedianSequenceLength { get; init; }
    /// <summary>The --contamination of the fit (the sequence model's frame threshold; row models also keep it in the ML.NET model).</summary>
    public double? Contamination { get; init; }
    /// <summary>Row models: the rows whose scores set the PredictedLabel threshold, as fit printed them ("100 held-out rows",
    /// "the 106 training rows (fewer than 100 held-out rows …)"); absent in older files.</summary>
    public string? ThresholdSource { get; init; }
    public string[] ExcludedColumns { get; init; } = Array.Empty<string>();
    public string TrainFile { get; init; } = "";
    public int TrainRows { get; init; }
    public string? ValidationFile { get; init; }
    public SortedDictionary<string, string> Options { get; init; } = new();
    public EpochRecord[] History { get; init; } = Array.Empty<EpochRecord>();
    public int? EpochsRun { get; init; }
    /// <summary>The best step as numbered in the progress lines and <see cref="History"/> (a Deep GMM numbers its EM
    /// iterations on from its pretraining's).</summary>
    public int? BestEpoch { get; init; }
    /// <summary>What one training step is: "epoch", or "EM iteration" for the Deep GMM (absent in older files: "epoch").</summary>
    public string? Unit { get; init; }

    /// <summary>"6 epochs", "1 EM iteration": the run's length in its own unit.</summary>
    public string StepsRun => FormattableString.Invariant($"{EpochsRun} {Unit ?? "epoch"}{(EpochsRun == 1 ? "" : "s")}");
    public bool StoppedEarly { get; init; }
    public bool StoppedByUser { get; init; }
    public double? MeanTrainLogDensity { get; init; }
    public DateTime CreatedUtc { get; init; }

    public static EpochRecord[] FromHistory(IEnumerable<TrainingProgress> history)
        => history.Select(h => new EpochRecord(h.Epoch, Finite(h.TrainLogLikelihood), h.ValidationLogLikelihood is double v ? Finite(v) : null,
            h.ExamplesPerSecond, h.Elapsed.TotalSeconds, h.Note, FiniteMetrics(h.Metrics))).ToArray();

    /// <summary>The history back as progress reports (for the report's training curves and info's last figures).</summary>
    public TrainingProgress[] ToProgress()
        => History.Select(h => new TrainingProgress(h.Epoch, h.Train ?? double.NaN, h.Validation,
            h.ExamplesPerSecond, TimeSpan.FromSeconds(h.Seconds), 0f, h.Note, h.Metrics, Unit ?? "epoch")).ToArray();

    // JSON has no NaN or infinity (System.Text.Json refuses to write them).
    private static SortedDictionary<string, double>? FiniteMetrics(IReadOnlyDictionary<string, double>? metrics)
        => metrics is null || !metrics.Values.Any(double.IsFinite) ? null
            : new SortedDictionary<string, double>(metrics.Where(kv => double.IsFinite(kv.Value)).ToDictionary(kv => kv.Key, kv => kv.Value), StringComparer.Ordinal);

    private static double? Finite(double v) => double.IsFinite(v) ? v : null;
}

/// <summary>A loaded model zip: the ML.NET transformer (live, block-scoring), its density transformer and ddml's metadata.</summary>
public sealed record LoadedModel(string File, ITransformer Transformer, DensityTransformer? DensityOrNull, ToolMetadata? Metadata, DataViewSchema InputSchema,
    SequenceDensityModel? SequenceModel = null)
{
    /// <summary>A sequence model (RNN-RNADE): scored per frame row, no DensityTransformer inside.</summary>
    public bool IsSequenceModel => SequenceModel is not null;

    /// <summary>The density transformer (row models; every command routes the sequence model to its own path first).</summary>
    public DensityTransformer Density => DensityOrNull
        ?? throw new InvalidOperationException($"{System.IO.Path.GetFileName(File)} holds the sequence model '{Metadata?.Model}', not a row model.");

    public DensityModel Model => Density.Model;

    /// <summary>The feature columns to read from a CSV: as trained, or (for a zip ddml did not write) f0, f1, ...</summary>
    public string[] FeatureColumns => Metadata?.FeatureColumns ?? Enumerable.Range(0, Model.Dimension).Select(i => FormattableString.Invariant($"f{i}")).ToArray();

    /// <summary>The stages of the zip's pipeline before its DeepDensity stage, by type name (empty for a zip ddml wrote,
    /// whose model reads the CSV's columns as they are). With any, the model's threshold, scores and samples are in the
    /// units of its input vector after those stages (a normaliser's, a projection's), not of the pipeline's inputs.</summary>
    public IReadOnlyList<string> StagesBeforeModel
    {
        get
        {
            var before = new List<string>();
            bool found = false;
            void Visit(ITransformer t)
            {
                if (found) return;
                if (t is DensityTransformer) { found = true; return; }
                if (t is IEnumerable<ITransformer> chain) { foreach (var stage in chain) Visit(stage); return; }
                before.Add(t.GetType().Name.Split('`')[0]);
            }
            Visit(Transformer);
            return found ? before : Array.Empty<string>();
        }
    }

    /// <summary>The header of drawn rows: the feature columns, or for a zip ddml did not write, the slot names of the
    /// model's input vector where the pipeline gives them (a Concatenate of named columns, kept by a normaliser), else
    /// f0, f1, ...</summary>
    public string[] SampleHeader
    {
        get
        {
            if (Metadata is not null) return FeatureColumns;
            try
            {
                var column = Transformer.GetOutputSchema(InputSchema).GetColumnOrNull(Density.FeatureColumnName);
                if (column is { } c && c.HasSlotNames())
                {
                    VBuffer<ReadOnlyMemory<char>> names = default;
                    c.GetSlotNames(ref names);
                    var header = names.DenseValues().Select(n => n.ToString()).ToArray();
                    if (header.Length == Model.Dimension && header.All(h => h.Length > 0) && header.Distinct(StringComparer.Ordinal).Count() == header.Length)
                        return header;
                }
            }
            catch (ArgumentException) { } // a pipeline whose schema cannot be computed from its saved input: the numbered names
            return FeatureColumns;
        }
    }

    /// <summary>What <see cref="StagesBeforeModel"/> means for the model's numbers, in one sentence; null when there are none.</summary>
    public string? UnitsNote(string what) => StagesBeforeModel is { Count: > 0 } stages
        ? $"the zip's pipeline runs {string.Join(", ", stages)} before its DeepDensity stage, so {what} in the units of that stage's input vector " +
          $"'{Density.FeatureColumnName}' after them, not of the pipeline's own input columns"
        : null;
}

/// <summary>
/// Saving and loading the tool's model files: an ordinary ML.NET model zip (<c>mlContext.Model.Save</c> of the fitted
/// density transformer, input = a "Features" vector), plus one extra entry with ddml's metadata that ML.NET ignores.
/// </summary>
public static class ModelZip
{
    public const string FeatureColumn = "Features";
    public const string MetadataEntry = "DeepDensity/ddml.json";
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static void Save(MLContext ml, ITransformer model, DensityModelBase engineModel, DataViewSchema inputSchema, ToolMetadata metadata, string path)
    {
        // Training can make a model larger than any ddml reads (wide data: 45,000 columns make a 285 MB RNADE), and the
        // zip written would be refused by every other command, with no option to raise the limit: say so instead of
        // writing it. (The whole file is measured, its header included: at most a hundred bytes on the safe side. It is
        // counted as the model is written, not serialised into a model-sized array first.) Fit refuses most such models
        // before training (EnsureReadable); this exact check catches one whose payload's extras pass the limit.
        long bytes = engineModel.GetFileLength(), limit = DeepDensityEnvironment.MaxModelFileBytes;
        if (bytes > limit)
            throw new CliException(ExitCodes.TrainingFailed,
                FormattableString.Invariant($"the trained {engineModel.ModelKind} model is {bytes:N0} bytes, more than ddml reads ({limit:N0}; DeepDensityEnvironment.MaxModelFileBytes), ") +
                $"so {Path.GetFileName(path)} was not written: train on fewer columns (e.g. a PCA projection) or a smaller model (-p options such as HiddenUnits).");
        using var buffer = new MemoryStream();
        ml.Model.Save(model, inputSchema, buffer);
        using (var zip = new ZipArchive(buffer, ZipArchiveMode.Update, leaveOpen: true))
        {
            var entry = zip.CreateEntry(MetadataEntry, CompressionLevel.Optimal);
            using var s = entry.Open();
            JsonSerializer.Serialize(s, metadata, Json);
        }
        AtomicFile.Write(path, s => { buffer.Position = 0; buffer.CopyTo(s); });
    }

    /// <summary>
    /// Refuses, before the data is trained on, a model that ddml could not read back: one whose parameters alone (the
    /// family's exact count from the options and the width, <see cref="IModelSizeOptions.PredictModelSize"/>) exceed
    /// <see cref="DeepDensityEnvironment.MaxModelFileBytes"/>, or with more columns than the family's files hold. Exit
    /// code 5, as the check of the trained model in <see cref="Save"/> (a 45,000-column RNADE trained for the whole fit,
    /// peaking at 5.6 GB, before that check refused its 285 MB).
    /// </summary>
    public static void EnsureReadable(object engineOptions, int columns, string path)
    {
        if (engineOptions is not IModelSizeOptions sized) return;
        var size = sized.PredictModelSize(columns);
        long limit = DeepDensityEnvironment.MaxModelFileBytes;
        string? problem = size.Columns > size.MaxColumns
            ? string.Create(CultureInfo.InvariantCulture, $"{size.Columns:N0} columns are more than {size.Model} model files hold ({size.MaxColumns:N0}); use fewer columns (e.g. a PCA projection)")
            : size.ExceedsMessage(limit, "ddml reads", "DeepDensityEnvironment.MaxModelFileBytes");
        if (problem is not null)
            throw new CliException(ExitCodes.TrainingFailed,
                $"the {size.Model} model would be too large for ddml to read back, so it was not trained and {Path.GetFileName(path)} was not written: " +
                $"{problem} (options: -p Name=Value).");
    }

    public static LoadedModel Load(MLContext ml, string path)
    {
        if (Directory.Exists(path)) throw CliException.ModelError(path, "is a directory, not a model file.");
        if (!File.Exists(path)) throw CliException.ModelError(path, "file not found.");
        byte[] bytes = ReadBounded(path);

        ToolMetadata? metadata = null;
        try
        {
            using var zip = new ZipArchive(new MemoryStream(bytes, writable: false), ZipArchiveMode.Read);
            if (zip.GetEntry(MetadataEntry) is { } entry)
            {
                // The metadata is small (names, options, a line per epoch): a forged entry that inflates to gigabytes (a
                // zip bomb) is refused by its declared size, and read no further than the limit whatever it declares.
                if (entry.Length > MaxMetadataBytes)
                    throw CliException.ModelError(path, FormattableString.Invariant($"the ddml metadata entry {MetadataEntry} is larger than {MaxMetadataBytes >> 20} MiB ({entry.Length} bytes): not a file ddml wrote."));
                using var s = entry.Open();
                var json = new MemoryStream();
                var buffer = new byte[1 << 16];
                for (int got; (got = s.Read(buffer)) > 0;)
                {
                    if (json.Length + got > MaxMetadataBytes)
                        throw CliException.ModelError(path, FormattableString.Invariant($"the ddml metadata entry {MetadataEntry} is larger than {MaxMetadataBytes >> 20} MiB: not a file ddml wrote."));
                    json.Write(buffer, 0, got);
                }
                json.Position = 0;
                metadata = JsonSerializer.Deserialize<ToolMetadata>(json, Json);
                if (metadata is not null) CheckMetadata(path, metadata);
            }
        }
        catch (InvalidDataException e) { throw CliException.ModelError(path, "not a model file (not a zip archive, or a corrupt one): " + e.Message, e); }
        catch (JsonException e) { throw CliException.ModelError(path, "corrupt ddml metadata in the zip: " + e.Message, e); }

        ITransformer transformer;
        DataViewSchema schema;
        try { transformer = ml.Model.Load(new MemoryStream(bytes, writable: false), out schema); }
        catch (InvalidModelFileException e) { throw CliException.ModelError(path, "corrupt DeepDensity model: " + e.Message, e); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw CliException.ModelError(path, "not an ML.NET model zip, or a corrupt one: " + e.Message.Split('\n')[0], e);
        }
        if (metadata?.Model == SequenceCommands.ModelName && metadata.SequenceIdColumn is not null && metadata.OrderColumn is not null)
        {
            SequenceDensityModel sequence;
            try { sequence = transformer.GetSequenceDensityModel(ml); }
            catch (InvalidModelFileException e) { throw CliException.ModelError(path, "corrupt DeepDensity model: " + e.Message, e); }
            catch (InvalidOperationException e) { throw CliException.ModelError(path, "the ddml metadata names a sequence model, but: " + e.Message, e); }
            if (metadata.FeatureColumns.Length != sequence.FrameSize)
                throw CliException.ModelError(path, FormattableString.Invariant($"the metadata lists {metadata.FeatureColumns.Length} feature columns but the model's frames have {sequence.FrameSize} values."));
            return new LoadedModel(path, transformer, null, metadata, schema, sequence);
        }
        DensityTransformer density;
        try
        {
            transformer = transformer.WithLiveDensityTransformers(ml);
            density = transformer.GetDensityTransformer(ml);
        }
        catch (InvalidModelFileException e) { throw CliException.ModelError(path, "corrupt DeepDensity model: " + e.Message, e); }
        catch (InvalidOperationException e) when (HoldsSequenceModel(ml, transformer))
        {
            throw CliException.ModelError(path, "an ML.NET model holding a DeepDensity sequence model but not ddml's metadata (the frame, " +
                "sequence-id and order column names): ddml reads the sequence models that 'ddml fit --model rnnrnade' wrote.", e);
        }
        catch (InvalidOperationException e) when (CountDensityModels(ml, transformer) is int n and > 1)
        {
            throw CliException.ModelError(path, FormattableString.Invariant($"an ML.NET model holding {n} DeepDensity models: ddml reads a zip holding one ") +
                                                "(score this pipeline through ML.NET: GetDensityTransformers).", e);
        }
        catch (InvalidOperationException e) { throw CliException.ModelError(path, "an ML.NET model, but not a DeepDensity one: " + e.Message, e); }
        // The metadata must describe this model (ddml's model names are the engine kinds in lower case): one taken from
        // another zip showed that model's options and history, and the report its fit command, for this one.
        if (metadata is not null && ModelCatalog.CanonicalName(metadata.Model) is string named
            && !string.Equals(named, density.Model.ModelKind, StringComparison.OrdinalIgnoreCase))
            throw CliException.ModelError(path, $"the ddml metadata describes a '{named}' model, but the zip holds a {density.Model.ModelKind} model " +
                                                "(metadata from another zip, or an edited one).");
        if (metadata is not null && metadata.FeatureColumns.Length != density.Model.Dimension)
            throw CliException.ModelError(path, FormattableString.Invariant($"the metadata lists {metadata.FeatureColumns.Length} feature columns but the model has dimension {density.Model.Dimension}."));
        return new LoadedModel(path, transformer, density, metadata, schema);
    }

    /// <summary>Largest ddml metadata entry read (its history has a line per epoch: a few hundred bytes each).</summary>
    public const int MaxMetadataBytes = 16 << 20;

    /// <summary>Largest model zip read: the engine model's own limit (<see cref="DeepDensityEnvironment.MaxModelFileBytes"/>),
    /// as base64 text inside the zip (4/3 of it, before compression), plus room for the rest of the pipeline.</summary>
    public static long MaxZipBytes => Math.Min(Array.MaxLength, DeepDensityEnvironment.MaxModelFileBytes / 3 * 4 + (64L << 20));

    /// <summary>
    /// The file's bytes, read with a bound: a zip starts with "PK" (a file that does not, such as /dev/zero or any other
    /// endless stream, is refused after four bytes), and no more than <see cref="MaxZipBytes"/> are read (a larger regular
    /// file is refused by its length before reading).
    /// </summary>
    private static byte[] ReadBounded(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
            long limit = MaxZipBytes;
            if (stream.CanSeek && stream.Length > limit)
                throw CliException.ModelError(path, FormattableString.Invariant($"the file is {stream.Length} bytes, larger than any model ddml reads ({limit} bytes; ") +
                                                    "DeepDensityEnvironment.MaxModelFileBytes sets the engine model's limit).");
            var head = new byte[4];
            int n = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            if (n < 4 || head[0] != (byte)'P' || head[1] != (byte)'K')
                throw CliException.ModelError(path, "not a model file (not a zip archive: " + (n == 0 ? "the file is empty" : "it does not start with a zip signature") + ").");
            var content = new MemoryStream();
            content.Write(head, 0, n);
            var buffer = new byte[1 << 16];
            for (int got; (got = stream.Read(buffer)) > 0;)
            {
                if (content.Length + got > limit)
                    throw CliException.ModelError(path, FormattableString.Invariant($"the file is larger than any model ddml reads ({limit} bytes)."));
                content.Write(buffer, 0, got);
            }
            return content.ToArray();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw CliException.ModelError(path, "cannot read: " + e.Message, e); }
    }

    /// <summary>The metadata's lists must be present (JSON null is a hand-edited or foreign file: every command would
    /// trip over it), and the recorded sequence sizes must be ones a training run could have produced (the median length
    /// is sample's default length: a forged one asked for zero frames or billions).</summary>
    private static void CheckMetadata(string path, ToolMetadata m)
    {
        foreach (var (name, value) in new (string, object?)[]
                 {
                     (nameof(m.FeatureColumns), m.FeatureColumns), (nameof(m.ExcludedColumns), m.ExcludedColumns),
                     (nameof(m.Options), m.Options), (nameof(m.History), m.History),
                 })
            if (value is null) throw CliException.ModelError(path, $"corrupt ddml metadata in the zip: {name} is null.");
        if (m.FeatureColumns.Any(c => c is null) || m.ExcludedColumns.Any(c => c is null) || m.History.Any(h => h is null))
            throw CliException.ModelError(path, "corrupt ddml metadata in the zip: a list holds null.");
        // Every command reads the CSV by these names: one named twice read one column for two features (wrong scores,
        // confidently printed), and an id or order column that is also a feature cannot be both.
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var name in m.FeatureColumns.Concat(new[] { m.SequenceIdColumn, m.OrderColumn }.OfType<string>()))
        {
            if (name.Trim().Length == 0) throw CliException.ModelError(path, "corrupt ddml metadata in the zip: an empty column name.");
            if (!names.Add(name)) throw CliException.ModelError(path, $"corrupt ddml metadata in the zip: the column '{name}' is named twice.");
        }
        if (m.TrainRows < 0 || m.TrainSequences is < 1 || m.TrainSequences > m.TrainRows)
            throw CliException.ModelError(path, FormattableString.Invariant($"corrupt ddml metadata in the zip: TrainSequences {m.TrainSequences} for TrainRows {m.TrainRows}."));
        if (m.MedianSequenceLength is int median && (median < 1 || median > m.TrainRows))
            throw CliException.ModelError(path, FormattableString.Invariant($"corrupt ddml metadata in the zip: MedianSequenceLength {median} is not the median length of sequences ") +
                                                FormattableString.Invariant($"with {m.TrainRows} frame rows in all."));
    }

    private static int CountDensityModels(MLContext ml, ITransformer transformer)
    {
        try { return transformer.GetDensityTransformers(ml).Count; }
        catch (Exception e) when (e is InvalidOperationException or InvalidModelFileException) { return 0; }
    }

    private static bool HoldsSequenceModel(MLContext ml, ITransformer transformer)
    {
        try { transformer.GetSequenceDensityModel(ml); return true; }
        catch (Exception e) when (e is InvalidOperationException or InvalidModelFileException) { return false; }
    }

    /// <summary>Engine file format and payload versions of the model (read from its own header).</summary>
    public static (int Format, string Kind, int Payload) EngineFileVersion(DensityModelBase model)
    {
        var b = model.ToBytes();
        int format = BitConverter.ToUInt16(b, 4);
        int kindLength = b[6];
        string kind = System.Text.Encoding.ASCII.GetString(b, 7, kindLength);
        int payload = BitConverter.ToUInt16(b, 7 + kindLength);
        return (format, kind, payload);
    }

    public static int CurrentEngineFormat => ModelFile.FormatVersion;
}
