namespace Microsoft.ML.DeepDensity;

/// <summary>
/// Two failures of ML.NET's own <c>Model.Load</c> that a deployment meets and whose exceptions do not say what to do
/// (found by a deployment trial against ML.NET 5.0.1). <c>LoadWithLiveDensityModels</c> rethrows them with the remedy
/// and ML.NET's exception inside; every other failure passes through as ML.NET threw it.
/// <list type="bullet">
/// <item>No writable temporary directory (a container with a read-only file system): every load first creates a
/// directory <c>ml_dotnet_*</c> under the context's <c>TempFilePath</c> (the system's temporary path unless set), and
/// throws <see cref="UnauthorizedAccessException"/> or <see cref="IOException"/> naming that directory, which reads
/// like a problem with the model file.</item>
/// <item>Not enough memory: ML.NET reads a DeepDensity model as text values of MapValue tables, decoding each table,
/// saving it again and keeping it as UTF-16, and holds several copies of a table at once. A zip written before the
/// chunked form (<see cref="Transforms.ModelTextChunks"/>) holds the model as one table of base64:
/// 31.5 MB of it (a 31.8 MB model) allocated about 1.4 GB during the load and failed under a 600 MB heap limit
/// (<c>DOTNET_GCHeapHardLimit</c>), with an <see cref="OutOfMemoryException"/> three levels inside "Error during class
/// instantiation". The chunked form of that model, a 37.8 MB zip, loads and scores under 200 MB: ML.NET's copies are of
/// one chunk at a time.</item>
/// </list>
/// </summary>
internal static class ModelLoadFailures
{
    /// <summary>The prefix of the directory ML.NET 5.0.1's <c>Repository.GetShortTempDir</c> creates for each load.</summary>
    private const string MlNetTempDirectoryPrefix = "ml_dotnet_";

    /// <summary>How the DeepDensity models of a zip are stored, as far as the memory message needs to know.</summary>
    internal enum ZipForm
    {
        /// <summary>Not known (a stream that cannot be read again, or no DeepDensity contract found).</summary>
        Unknown,
        /// <summary>Every model in chunks ("DeepDensity.Score.v2", "DeepDensity.Sequence.v2", ...): this version's form.</summary>
        Chunked,
        /// <summary>A model as one text value: a zip of an earlier version ("DeepDensity.Score.v1", "DeepDensity.Sequence.v1", ...).</summary>
        SingleValue,
    }

    /// <summary>Runs <paramref name="load"/> (ML.NET's <c>Model.Load</c>), rethrowing the failures above explained;
    /// <paramref name="form"/> reads the zip again to tell its form (<see cref="FormOf(Stream)"/>) when the load ran out of memory.</summary>
    public static ITransformer Load(Func<ITransformer> load, long? zipBytes, Func<ZipForm>? form = null)
    {
        try { return load(); }
        // The zip is read again in the handler, not the filter: ML.NET's frames, and what they hold, are unwound by then.
        catch (Exception e) when (Explain(e, zipBytes) is not null)
        {
            throw Explain(e, zipBytes, RanOutOfMemory(e) ? Guarded(form) : ZipForm.Unknown)!;
        }
    }

    private static bool RanOutOfMemory(Exception e)
    {
        for (Exception? inner = e; inner is not null; inner = inner.InnerException)
            if (inner is OutOfMemoryException) return true;
        return false;
    }

    /// <summary>The contract names of the single-value form (row and sequence models), as ML.NET stores them in a stage's
    /// Model.key: UTF-16.</summary>
    private static readonly byte[][] SingleValueContracts = new[] { "DeepDensity.Score.v1", "DeepDensity.Sample.v1", "DeepDensity.Sequence.v1", "DeepDensity.RnnRnadeFrames.v1" }
        .Select(System.Text.Encoding.Unicode.GetBytes).ToArray();
    private static readonly byte[][] ChunkedContracts = new[] { Transforms.Surrogate.ScoreFactoryV2.ContractName,
        Transforms.SequenceSurrogate.SequenceFactoryV2.ContractName, Transforms.RnnRnadeSurrogate.FrameFactoryV2.ContractName }
        .Select(System.Text.Encoding.Unicode.GetBytes).ToArray();

    /// <summary>The form of the zip in <paramref name="stream"/>, from its position (its small Model.key entries name the
    /// scorers' contracts; the stream is left open). Only after a failed load: it reads the zip's directory again.</summary>
    internal static ZipForm FormOf(Stream stream)
    {
        using var zip = new System.IO.Compression.ZipArchive(stream, System.IO.Compression.ZipArchiveMode.Read, leaveOpen: true);
        bool chunked = false;
        foreach (var entry in zip.Entries)
        {
            if (!entry.FullName.EndsWith("Model.key", StringComparison.Ordinal) || entry.Length > 1 << 16) continue;
            using var s = entry.Open();
            var bytes = new byte[entry.Length];
            s.ReadExactly(bytes);
            if (SingleValueContracts.Any(c => bytes.AsSpan().IndexOf(c) >= 0)) return ZipForm.SingleValue;
            chunked |= ChunkedContracts.Any(c => bytes.AsSpan().IndexOf(c) >= 0);
        }
        return chunked ? ZipForm.Chunked : ZipForm.Unknown;
    }

    /// <summary><paramref name="form"/>'s answer, Unknown when it has none or the zip cannot be read again.</summary>
    private static ZipForm Guarded(Func<ZipForm>? form)
    {
        try { return form?.Invoke() ?? ZipForm.Unknown; }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or NotSupportedException
                                      or ObjectDisposedException or OutOfMemoryException)
        {
            return ZipForm.Unknown;
        }
    }

    /// <summary>The explained form of <paramref name="e"/> when it is one of the failures above; null otherwise.</summary>
    /// <param name="e">What ML.NET's load threw.</param>
    /// <param name="zipBytes">The zip's size when known (a file), for the memory message.</param>
    /// <param name="form">How the zip stores its models, for the heap the message asks for.</param>
    internal static Exception? Explain(Exception e, long? zipBytes, ZipForm form = ZipForm.Unknown)
    {
        for (Exception? inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is OutOfMemoryException)
                // InsufficientMemoryException derives from OutOfMemoryException: a caller's handler for it still catches this.
                return new InsufficientMemoryException(
                    FormattableString.Invariant($"Loading the model zip{(zipBytes is long n ? FormattableString.Invariant($" ({n / 1e6:0.#} MB)") : "")} ran out of memory inside ML.NET's Model.Load, ") +
                    "which reads each DeepDensity model in it as MapValue tables of text and holds several copies of a table while it loads: " +
                    form switch
                    {
                        ZipForm.SingleValue => "this zip holds a model as one table (written by an earlier version of DeepDensity), " +
                            "for which allow about 25 times the zip's size of managed heap (a 31.5 MB zip needed more than 600 MB). Loaded and " +
                            "saved again by this version, it is written in chunks and loads in about 6 times its zip's size plus 25 MB",
                        ZipForm.Chunked => "allow about 6 times the zip's size plus 25 MB of managed heap for the load (a 37.8 MB zip loaded and scored " +
                            "under 200 MB of heap, a 9.5 MB one under 75 MB of heap)",
                        _ => "allow about 6 times the zip's size plus 25 MB of managed heap for the load (a 37.8 MB zip loaded and scored under 200 MB " +
                            "of heap), 25 times the zip's size for " +
                            "a zip that holds a model as one table (written by an earlier version of DeepDensity)",
                    } +
                    "; set DOTNET_GCHeapHardLimit or the container's memory limit accordingly, or load the model before other large allocations. " +
                    "Once loaded, the live model keeps little more than its own size.", e);
            if (inner is UnauthorizedAccessException or IOException && inner.Message.Contains(MlNetTempDirectoryPrefix, StringComparison.Ordinal))
                return new IOException(
                    $"ML.NET's Model.Load could not create its temporary directory ({inner.Message.TrimEnd('.')}): every load of a model zip " +
                    "first creates a directory under the MLContext's TempFilePath, the system's temporary path unless set. Set " +
                    "mlContext.TempFilePath to a writable directory before loading (or TMPDIR on Linux, TEMP on Windows); the model file " +
                    "itself is only read.", e);
        }
        return null;
    }
}
