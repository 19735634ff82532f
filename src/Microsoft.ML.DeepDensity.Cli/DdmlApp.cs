using System.CommandLine;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Cli;

/// <summary>Where a command writes, and the interrupts it honours.</summary>
public sealed record DdmlConsole(TextWriter Out, TextWriter Error, Interrupts Interrupts, bool LiveProgress);

/// <summary>The <c>ddml</c> command tree (System.CommandLine) and the mapping of failures to one line and an exit code.</summary>
public static class DdmlApp
{
    public static readonly Option<int?> Threads = new("--threads")
    {
        Description = "Most threads the engine may use (default: all cores). Results do not depend on it.",
        Recursive = true,
    };

    public static int Run(string[] args, TextWriter output, TextWriter error, Interrupts? interrupts = null, bool liveProgress = false)
    {
        var console = new DdmlConsole(output, error, interrupts ?? new Interrupts(), liveProgress);
        var root = new RootCommand("ddml: fit, score, sample, evaluate and report DeepDensity models on CSV files. " +
                                   "Models are ordinary ML.NET model zips.");
        root.Options.Add(Threads);
        root.Subcommands.Add(FitCommand.Create(console));
        root.Subcommands.Add(ScoringCommands.Score(console));
        root.Subcommands.Add(ScoringCommands.Sample(console));
        root.Subcommands.Add(ScoringCommands.Evaluate(console));
        root.Subcommands.Add(ReportCommand.Create(console));
        root.Subcommands.Add(ScoringCommands.Info(console));

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var e in parse.Errors) error.WriteLine($"ddml: usage: {Friendly(e.Message)}");
            if (ModelFlagHint(parse, args) is string hint) error.WriteLine($"ddml: usage: {hint}");
            error.WriteLine("Run 'ddml --help' (or 'ddml COMMAND --help') for usage.");
            return ExitCodes.UsageError;
        }
        try
        {
            return parse.Invoke(new InvocationConfiguration
            {
                Output = output,
                Error = error,
                EnableDefaultExceptionHandler = false,
                ProcessTerminationTimeout = null, // Ctrl+C is ours (Interrupts), not System.CommandLine's
            });
        }
        catch (IOException e) when (StandardOutput.IsBrokenPipe(e))
        {
            return ExitCodes.BrokenPipe; // --help into a reader that went away (the commands' own writes end in Guarded)
        }
    }

    /// <summary>
    /// <c>fit</c> names the model family with <c>-m</c>; the commands that read a trained model take its zip as their
    /// first argument. A user who carries <c>-m model.zip</c> over from <c>fit</c> was told only that the data file was
    /// an "unrecognized command or argument" (the flag had been taken as the model argument): say what the command takes.
    /// </summary>
    internal static string? ModelFlagHint(ParseResult parse, string[] args)
    {
        var command = parse.CommandResult.Command;
        bool takesModelArgument = command.Arguments.Any(a => a.Name == "model");
        bool hasModelOption = command.Options.Any(o => o.Name == "--model" || o.Aliases.Contains("-m"));
        string? flag = args.FirstOrDefault(a => a is "-m" or "--model" || a.StartsWith("--model=", StringComparison.Ordinal) || a.StartsWith("-m:", StringComparison.Ordinal));
        if (!takesModelArgument || hasModelOption || flag is null) return null;
        string usage = string.Join(" ", command.Arguments.Select(a => a.Name.ToUpperInvariant() + (a.Name == "model" ? ".zip" : "")));
        return $"'ddml {command.Name}' takes the model zip as its first argument, not {flag.Split('=', ':')[0]}: ddml {command.Name} {usage} [options].";
    }

    /// <summary>System.CommandLine names the .NET type a value failed to parse as ("Cannot parse argument '-5' for option
    /// '--seed' as expected type 'System.Nullable`1[System.UInt64]'."): the user is told what kind of value it takes.</summary>
    internal static string Friendly(string message)
        => System.Text.RegularExpressions.Regex.Replace(message, @" as expected type '(?:System\.Nullable`1\[)?System\.(\w+)\]?'\.?", m => m.Groups[1].Value switch
        {
            "UInt64" => ": expected a non-negative integer (0 to 18446744073709551615).",
            "Int32" => ": expected a whole number (-2147483648 to 2147483647).",
            "Double" or "Single" => ": expected a number (e.g. 0.05).",
            var other => $": expected a value of type {other}.",
        });

    /// <summary>Runs a command body: applies --threads, turns failures into one line on standard error and an exit code.</summary>
    internal static int Guarded(DdmlConsole console, ParseResult parse, Func<ParseResult, int> body)
    {
        int previousThreads = DeepDensityEnvironment.MaxDegreeOfParallelism;
        try
        {
            if (parse.GetValue(Threads) is int threads)
            {
                if (threads < 1) throw new CliException(ExitCodes.UsageError, FormattableString.Invariant($"--threads must be at least 1 (got {threads})."));
                DeepDensityEnvironment.MaxDegreeOfParallelism = threads;
            }
            return body(parse);
        }
        catch (CliException e)
        {
            console.Error.WriteLine($"ddml: error: {OneLine(e.Message)}");
            return e.ExitCode;
        }
        catch (IOException e) when (StandardOutput.IsBrokenPipe(e))
        {
            // The reader of standard output (or of an --out pipe) went away: the rest of the output is not wanted. Stop
            // quietly, as seq or cat killed by SIGPIPE do: a message would only add noise to the reader's own output.
            return ExitCodes.BrokenPipe;
        }
        catch (OperationCanceledException)
        {
            console.Error.WriteLine("ddml: interrupted; nothing was written.");
            return ExitCodes.Interrupted;
        }
        catch (TrainingDivergedException e)
        {
            console.Error.WriteLine($"ddml: error: training failed: {OneLine(e.Message)}");
            return ExitCodes.TrainingFailed;
        }
        catch (Exception e)
        {
            console.Error.WriteLine($"ddml: internal error: {e}");
            return ExitCodes.InternalError;
        }
        finally
        {
            DeepDensityEnvironment.MaxDegreeOfParallelism = previousThreads;
        }
    }

    /// <summary>Messages from .NET (e.g. ArgumentOutOfRangeException's "Actual value was ...") may span lines; the tool prints one.</summary>
    private static string OneLine(string message)
        => string.Join(" ", message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    /// <summary>Sets the action of <paramref name="command"/> to the guarded <paramref name="body"/>.</summary>
    public static System.CommandLine.Command WithBody(this System.CommandLine.Command command, DdmlConsole console, Func<ParseResult, int> body)
    {
        command.SetAction(parse => Guarded(console, parse, body));
        return command;
    }

    public static Option<string> OutOption(string description, bool required)
        => new("--out", "-o") { Description = description, Required = required };
}
