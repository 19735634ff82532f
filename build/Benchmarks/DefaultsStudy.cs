using System.Globalization;

namespace DeepDensity.Benchmarks;

/// <summary>One alternative a defaults study fits: a name and what it changes in the library's default options.</summary>
public sealed record OptionsVariant<TOptions>(string Name, Action<TOptions> Set);

/// <summary>What one fit of a defaults study scored: the mean log-likelihood of the validation and test rows, the fit's
/// wall time, and, for runs that stop by themselves, how many epochs ran and which one was kept.</summary>
public sealed record StudyOutcome(double Validation, double Test, double Seconds, int? EpochsRun = null, int? BestEpoch = null)
{
    /// <summary>A fit that diverged: it counts as −∞ in the means, so a variant that diverges on any seed cannot win.</summary>
    public static StudyOutcome Diverged(double seconds) => new(double.NegativeInfinity, double.NegativeInfinity, seconds);
}

/// <summary>
/// The part every defaults benchmark shares (project rule: a default that loses to a plain alternative is a bug): which
/// variants and seeds to fit (<c>--only NAME,NAME</c> by name prefix, <c>--seeds 1,2</c>, <c>--grid "key=a,b;key=c"</c>
/// for every combination of settings instead of the fixed list), the outcomes per (variant, epochs) and seed, and the
/// closing markdown table of means over seeds with their spread. The benchmark decides how a variant is fitted and scored.
/// </summary>
public sealed class DefaultsStudy<TOptions>
{
    private readonly Dictionary<(string Variant, int Epochs), List<(int Seed, StudyOutcome Outcome)>> _results = new();

    /// <param name="gridKeys">What each <c>--grid</c> key sets, given its value.</param>
    public DefaultsStudy(BenchmarkArgs args, OptionsVariant<TOptions>[] variants, string defaultSeeds,
        IReadOnlyDictionary<string, Action<TOptions, float>> gridKeys)
    {
        Seeds = args.String("seeds", defaultSeeds).Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var only = args.String("only", "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var all = args.String("grid", "") is { Length: > 0 } grid ? Grid(grid, gridKeys) : variants;
        Variants = all.Where(v => only.Length == 0 || only.Any(o => v.Name.StartsWith(o, StringComparison.OrdinalIgnoreCase))).ToArray();
        if (Variants.Length == 0)
            throw new UsageException($"--only {string.Join(",", only)} matches no variant; the variants are: {string.Join("; ", all.Select(v => v.Name))}.");
    }

    /// <summary>The seeds of <c>--seeds</c>.</summary>
    public int[] Seeds { get; }

    /// <summary>The variants to fit, in table order: the benchmark's list (or <c>--grid</c>'s combinations) kept by <c>--only</c>.</summary>
    public OptionsVariant<TOptions>[] Variants { get; }

    /// <summary>Records one fit and prints its line.</summary>
    public void Add(string variant, int epochs, int seed, StudyOutcome outcome, string? note = null)
    {
        if (!_results.TryGetValue((variant, epochs), out var list)) _results[(variant, epochs)] = list = [];
        list.Add((seed, outcome));
        string stop = outcome.EpochsRun is int run ? $"; {run} epochs run, best {outcome.BestEpoch}" : "";
        string scores = double.IsNegativeInfinity(outcome.Validation) ? "diverged" : $"valid {outcome.Validation,9:F2}  test {outcome.Test,9:F2}";
        Console.WriteLine($"  {variant,-34} seed {seed} epochs {epochs,3}: {scores}  ({outcome.Seconds:F0} s{stop}){(note is null ? "" : "  " + note)}");
    }

    /// <summary>The outcomes of one variant at one epoch count, by seed (empty when it was not fitted).</summary>
    public IReadOnlyList<(int Seed, StudyOutcome Outcome)> Outcomes(string variant, int epochs)
        => _results.TryGetValue((variant, epochs), out var list) ? list : [];

    /// <summary>Prints the closing table: per variant and epoch count the means over seeds of the validation and test
    /// log-likelihood, the validation spread (max − min over seeds: a difference smaller than it is not a finding), the
    /// epochs run and kept (runs that stop by themselves) and the mean fit time. Rows the benchmark added outside
    /// <see cref="Variants"/> (peers) come last.</summary>
    /// <param name="epochsLabel">How an epoch count is shown (the RBM shows its 0, the default length, with its epochs).</param>
    public void PrintTable(Func<int, string>? epochsLabel = null)
    {
        bool stops = _results.Values.Any(l => l.Any(x => x.Outcome.EpochsRun is not null));
        Console.WriteLine();
        Console.WriteLine($"| variant | epochs | validation LL (mean over seeds {string.Join(",", Seeds)}) | spread | test LL (mean) |" +
                          (stops ? " epochs run (best), per seed |" : "") + " fit s (mean) |");
        Console.WriteLine("|---|---:|---:|---:|---:|" + (stops ? "---|" : "") + "---:|");
        foreach (var ((name, epochs), list) in _results
                     .OrderBy(kv => Array.FindIndex(Variants, v => v.Name == kv.Key.Variant) is var i && i < 0 ? int.MaxValue : i)
                     .ThenBy(kv => kv.Key.Variant, StringComparer.Ordinal).ThenBy(kv => kv.Key.Epochs))
        {
            var o = list.Select(x => x.Outcome).ToArray();
            string runs = stops ? " " + string.Join(", ", o.Select(x => x.EpochsRun is int r ? $"{r} ({x.BestEpoch})" : "-")) + " |" : "";
            Console.WriteLine($"| {name} | {epochsLabel?.Invoke(epochs) ?? epochs.ToString(CultureInfo.InvariantCulture)} | {o.Average(x => x.Validation):F2} | {o.Max(x => x.Validation) - o.Min(x => x.Validation):F2} | " +
                              $"{o.Average(x => x.Test):F2} |{runs} {o.Average(x => x.Seconds):F0} |");
        }
    }

    /// <summary>Every combination of the grid's values ("lr=0.05,0.1;batch=20,100"); settings not named keep the defaults.</summary>
    private static OptionsVariant<TOptions>[] Grid(string grid, IReadOnlyDictionary<string, Action<TOptions, float>> keys)
    {
        IEnumerable<OptionsVariant<TOptions>> combos = [new("", _ => { })];
        foreach (var axis in grid.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var parts = axis.Split('=', 2, StringSplitOptions.TrimEntries);
            if (parts.Length != 2 || !keys.TryGetValue(parts[0], out var set))
                throw new UsageException($"--grid: '{axis}' is not key=value,value with a known key ({string.Join(", ", keys.Keys)}).");
            var values = parts[1].Split(',', StringSplitOptions.TrimEntries);
            combos = combos.SelectMany(c => values.Select(value =>
            {
                float f = float.Parse(value, CultureInfo.InvariantCulture);
                return new OptionsVariant<TOptions>(c.Name + (c.Name.Length > 0 ? ", " : "") + parts[0] + " " + value, o => { c.Set(o); set(o, f); });
            }));
        }
        return combos.ToArray();
    }
}
