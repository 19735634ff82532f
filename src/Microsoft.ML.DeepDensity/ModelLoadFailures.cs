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
/// <item>Not enough memory: ML.NET reads a DeepDensity model as one text value (the base64 envelope) through its text
/// codec, which holds several copies of it at once: a zip holding a 31.8 MB model allocated about 1.4 GB during the
/// load and failed under a 600 MB heap limit (<c>DOTNET_GCHeapHardLimit</c>), with an
/// <see cref="OutOfMemoryException"/> three levels inside "Error during class instantiation".</item>
/// </list>
/// </summary>
internal static class ModelLoadFailures
{
    /// <summary>The prefix of the directory ML.NET 5.0.1's <c>Repository.GetShortTempDir</c> creates for each load.</summary>
    private const string MlNetTempDirectoryPrefix = "ml_dotnet_";

    /// <summary>Runs <paramref name="load"/> (ML.NET's <c>Model.Load</c>), rethrowing the failures above explained.</summary>
    public static ITransformer Load(Func<ITransformer> load, long? zipBytes)
    {
        try { return load(); }
        catch (Exception e) when (Explain(e, zipBytes) is { } explained) { throw explained; }
    }

    /// <summary>The explained form of <paramref name="e"/> when it is one of the failures above; null otherwise.</summary>
    /// <param name="e">What ML.NET's load threw.</param>
    /// <param name="zipBytes">The zip's size when known (a file), for the memory message.</param>
    internal static Exception? Explain(Exception e, long? zipBytes)
    {
        for (Exception? inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is OutOfMemoryException)
                // InsufficientMemoryException derives from OutOfMemoryException: a caller's handler for it still catches this.
                return new InsufficientMemoryException(
                    $"Loading the model zip{(zipBytes is long n ? $" ({n / 1e6:0.#} MB)" : "")} ran out of memory inside ML.NET's Model.Load, " +
                    "which reads each DeepDensity model in it as one text value and holds several copies of it while it loads: allow about " +
                    "25 times the zip's size of managed heap for the load (a 31.5 MB zip needed more than 600 MB; " +
                    "DOTNET_GCHeapHardLimit or the container's memory limit), or load the model before other large allocations. " +
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
