namespace Microsoft.ML.DeepDensity.Cli;

/// <summary>Exit codes of <c>ddml</c> (documented in docs/cli.md; scripts rely on them, so they never change meaning).</summary>
public static class ExitCodes
{
    /// <summary>The command did what it was asked.</summary>
    public const int Success = 0;
    /// <summary>An unexpected failure (a bug): the message and stack trace go to standard error.</summary>
    public const int InternalError = 1;
    /// <summary>The command line is wrong: unknown command or option, missing argument, bad option value.</summary>
    public const int UsageError = 2;
    /// <summary>A data file (CSV) cannot be used: missing, unreadable, ragged row, non-numeric or non-finite cell, bad label, missing column.</summary>
    public const int BadData = 3;
    /// <summary>A model file cannot be used: missing, not a zip, not an ML.NET model, no DeepDensity model inside, corrupt.</summary>
    public const int BadModel = 4;
    /// <summary>Training failed: invalid model options for this data, training diverged, or the model is too large for ddml to read back.</summary>
    public const int TrainingFailed = 5;
    /// <summary>An output file could not be written (nothing is left half-written).</summary>
    public const int OutputError = 6;
    /// <summary>Stopped by Ctrl+C (SIGINT). After one Ctrl+C, fit still saves the best model so far; after a second, nothing is written.</summary>
    public const int Interrupted = 130;
    /// <summary>The reader of the output went away (<c>ddml sample m.zip -n 100000000 | head</c>): the command stopped at its
    /// next write, quietly. 128 + SIGPIPE, the status the shell reports for a program killed by a broken pipe.</summary>
    public const int BrokenPipe = 141;
}

/// <summary>A failure with a one-line message for the user and the exit code that goes with it.</summary>
public sealed class CliException : Exception
{
    public CliException(int exitCode, string message, Exception? inner = null) : base(message, inner) => ExitCode = exitCode;

    /// <summary>One of <see cref="ExitCodes"/>.</summary>
    public int ExitCode { get; }

    /// <summary>A bad data file: names the file, the line (1 = header) and the column when known.</summary>
    public static CliException DataError(string file, long line, int column, string? columnName, string problem)
    {
        var where = Path.GetFileName(file);
        if (line > 0) where += FormattableString.Invariant($", line {line}");
        if (column > 0) where += FormattableString.Invariant($", column {column}") + (columnName is null ? "" : $" ('{columnName}')");
        return new CliException(ExitCodes.BadData, $"{where}: {problem}");
    }

    /// <summary>A bad model file.</summary>
    public static CliException ModelError(string file, string problem, Exception? inner = null)
        => new(ExitCodes.BadModel, $"{Path.GetFileName(file)}: {problem}", inner);
}
