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
        // A device or a pipe is written to as it is (see Write): it replaces no input, and its directory (/dev/fd) need
        // not take new files.
        if (IsDeviceOrPipe(full)) return full;
        foreach (var (file, role) in inputs)
            if (file is not null && !string.IsNullOrWhiteSpace(file) && SameFile(full, Path.GetFullPath(file)))
                throw new CliException(ExitCodes.UsageError, $"--out {path} is also the {role}: it would be overwritten; write to another file.");
        if (Directory.Exists(full)) throw new CliException(ExitCodes.OutputError, $"{path}: cannot write: it is a directory.");
        string dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir))
            throw new CliException(ExitCodes.OutputError, $"{path}: the directory {dir} does not exist.");
        // A directory that exists but takes no new file (read-only, no permission) is found now too, not after training:
        // the output is written as a temporary file next to the target, so that is what is tried.
        string probe = Path.Combine(dir, FormattableString.Invariant($".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.probe.tmp"));
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

    /// <summary>Whether <paramref name="path"/> (through symbolic links) is an existing file that is neither a regular
    /// file nor a directory: a character device, a pipe or a socket. .NET has no public call for a file's type, so this
    /// asks the runtime's own native shim (SystemNative_Stat, whose FileStatus has the same layout on every platform:
    /// Flags, then Mode); where that is not available the path is taken for a regular file.</summary>
    internal static bool IsDeviceOrPipe(string path)
    {
        if (OperatingSystem.IsWindows()) return false;
        var status = new byte[256]; // FileStatus is about 130 bytes
        try
        {
            if (NativeStat(path, status) != 0) return false; // missing: a new regular file
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; }
        int type = BitConverter.ToInt32(status, 4) & 0xF000; // S_IFMT
        return type is not (0x8000 or 0x4000); // S_IFREG, S_IFDIR
    }

    [System.Runtime.InteropServices.DllImport("libSystem.Native", EntryPoint = "SystemNative_Stat")]
    private static extern int NativeStat([System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string path, byte[] status);

    public static void Write(string path, Action<Stream> write)
    {
        string full = CheckTarget(path);
        if (IsDeviceOrPipe(full))
        {
            // /dev/null, /dev/stdout, a named pipe, bash's >(gzip > f.gz) (/dev/fd/63): renaming a temporary file over it
            // replaced the device or pipe with a regular file (as root, -o /dev/null replaced /dev/null; a pipe's reader
            // waited forever). There is no half-written file to avoid: the output goes straight to it.
            try
            {
                using var stream = new FileStream(full, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
                write(stream);
                stream.Flush();
            }
            // A pipe whose reader went away (-o /dev/stdout | head) is no failure to report: the caller stops quietly.
            catch (Exception e) when ((e is IOException or UnauthorizedAccessException) && !StandardOutput.IsBrokenPipe(e))
            {
                throw new CliException(ExitCodes.OutputError, $"{path}: cannot write: {e.Message}", e);
            }
            return;
        }
        string dir = Path.GetDirectoryName(full)!;
        string temp = Path.Combine(dir, FormattableString.Invariant($".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp"));
        try
        {
            FileStream stream;
            lock (Gate)
            {
                // Ctrl+C ends the process (DeletePending) while a command may still be writing, for as long as 'sample'
                // streams: no temporary file is started after it, nor renamed over the target once it was deleted.
                if (_ending) throw new OperationCanceledException();
                Pending.TryAdd(temp, 0);
                // FileShare.Delete: on Windows DeletePending can delete the file while it is open (it goes when closed).
                stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.Delete);
            }
            using (stream)
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            lock (Gate)
            {
                if (_ending) throw new OperationCanceledException();
                File.Move(temp, full, overwrite: true);
            }
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
    private static readonly object Gate = new();
    private static bool _ending;

    /// <summary>Deletes the temporary files of writes in progress (the process is about to end: Ctrl+C); a write still
    /// running then fails with <see cref="OperationCanceledException"/> instead of starting or renaming a file.</summary>
    public static void DeletePending()
    {
        lock (Gate)
        {
            _ending = true;
            foreach (var temp in Pending.Keys)
                try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    public static void WriteText(string path, Action<TextWriter> write)
        => Write(path, s =>
        {
            using var w = new StreamWriter(s, new System.Text.UTF8Encoding(false), 1 << 16, leaveOpen: true);
            write(w);
        });
}
