namespace Microsoft.ML.DeepDensity.Cli;

/// <summary>
/// Writes an output file so that it is either complete or absent: the content goes to a hidden temporary file in the
/// same directory, which is renamed over the target only after it was fully written and flushed. A failure or an
/// interruption deletes the temporary file, so no half-written output is ever left behind.
/// </summary>
public static class AtomicFile
{
    /// <summary>
    /// Checks that <paramref name="path"/> can be an output file (a name, in a directory that exists, not a directory
    /// itself) and returns its full path. Commands call it before their work, so that a fit does not train for hours and
    /// then fail to save.
    /// </summary>
    public static string CheckTarget(string path) => CheckTarget(path, Array.Empty<(string?, string)>());

    /// <summary><see cref="CheckTarget(string)"/>, and the output must not be one of the command's
    /// <paramref name="inputs"/> (file, what it is): '-o' naming the model or the data replaced it without a word.</summary>
    public static string CheckTarget(string path, params (string? File, string Role)[] inputs)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new CliException(ExitCodes.UsageError, "--out: the output file name is empty.");
        string full = Path.GetFullPath(path);
        foreach (var (file, role) in inputs)
            if (file is not null && !string.IsNullOrWhiteSpace(file) && SameFile(full, Path.GetFullPath(file)))
                throw new CliException(ExitCodes.UsageError, $"--out {path} is also the {role}: it would be overwritten; write to another file.");
        if (Directory.Exists(full)) throw new CliException(ExitCodes.OutputError, $"{path}: cannot write: it is a directory.");
        string dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir))
            throw new CliException(ExitCodes.OutputError, $"{path}: the directory {dir} does not exist.");
        // A directory that exists but takes no new file (read-only, no permission) is found now too, not after training:
        // the output is written as a temporary file next to the target, so that is what is tried.
        string probe = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.probe.tmp");
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose)) { }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException(ExitCodes.OutputError, $"{path}: cannot write: {e.Message}", e);
        }
        finally
        {
            try { File.Delete(probe); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
        return full;
    }

    /// <summary>The same path, or the same file through a symbolic link.</summary>
    private static bool SameFile(string a, string b)
    {
        if (string.Equals(a, b, OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal)) return true;
        try
        {
            if (!File.Exists(a) || !File.Exists(b)) return false;
            var ra = new FileInfo(a).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? a;
            var rb = new FileInfo(b).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? b;
            return string.Equals(ra, rb, StringComparison.Ordinal);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    public static void Write(string path, Action<Stream> write)
    {
        string full = CheckTarget(path);
        string dir = Path.GetDirectoryName(full)!;
        string temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        Pending.TryAdd(temp, 0);
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e)
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            if (e is IOException or UnauthorizedAccessException)
                throw new CliException(ExitCodes.OutputError, $"{path}: cannot write: {e.Message}", e);
            throw;
        }
        finally
        {
            Pending.TryRemove(temp, out _);
        }
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> Pending = new();

    /// <summary>Deletes the temporary files of writes in progress (the process is about to end: Ctrl+C).</summary>
    public static void DeletePending()
    {
        foreach (var temp in Pending.Keys)
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    public static void WriteText(string path, Action<TextWriter> write)
        => Write(path, s =>
        {
            using var w = new StreamWriter(s, new System.Text.UTF8Encoding(false), 1 << 16, leaveOpen: true);
            write(w);
        });
}
