using System.Reflection;
using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Models.Nvil;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Xunit;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// The option tables of docs/models/*.md (rows <c>| `Name` | default | meaning |</c>) must agree with the options
/// classes' defaults, so that the chapters cannot drift from the one place defaults are written.
/// </summary>
public class DocsDefaultsTests
{
    public static TheoryData<string, Type[]> Chapters() => new()
    {
        { "rnade.md", new[] { typeof(RnadeOptions), typeof(DeepRnadeOptions) } },
        { "deep-gmm.md", new[] { typeof(DeepGmmOptions) } },
        { "rbm.md", new[] { typeof(RbmOptions) } },
        { "iwae.md", new[] { typeof(IwaeOptions) } },
        { "nvil.md", new[] { typeof(NvilOptions) } },
        { "rnn-rnade.md", new[] { typeof(RnnRnadeOptions) } },
    };

    private static readonly Regex Row = new(@"^\|\s*`(?<name>\w+)`\s*\|\s*(?<value>[^|]+?)\s*\|", RegexOptions.Multiline);

    /// <summary>Where a chapter's table of a derived options class begins: its rows are that class's defaults (a setting
    /// it changes, such as Deep RNADE's HiddenUnits, differs from the base class's row above it).</summary>
    private static readonly Dictionary<Type, string> SectionOf = new()
    {
        [typeof(DeepRnadeOptions)] = "## Deep, order-agnostic RNADE",
    };

    [Theory]
    [MemberData(nameof(Chapters))]
    public void Option_tables_match_the_defaults(string chapter, Type[] optionsTypes)
    {
        string text = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "models", chapter));
        int compared = 0;
        foreach (Match m in Row.Matches(text))
        {
            string name = m.Groups["name"].Value, documented = m.Groups["value"].Value;
            // Below a derived class's section its row is that class's (the last such section before the row); above it, the others'.
            var sections = optionsTypes.Where(t => !SectionOf.ContainsKey(t) || text.IndexOf(SectionOf[t], StringComparison.Ordinal) is >= 0 and var at && at < m.Index).ToList();
            var derived = sections.LastOrDefault(t => SectionOf.ContainsKey(t) && t.GetProperty(name) is { CanWrite: true });
            var owners = derived is not null ? [derived] : sections.Where(t => !SectionOf.ContainsKey(t) && t.GetProperty(name) is { CanWrite: true }).ToList();
            if (owners.Count == 0) continue; // a table of something else (metrics, figures)
            foreach (var t in owners)
            {
                object? actual = t.GetProperty(name)!.GetValue(Activator.CreateInstance(t));
                if (actual is null)
                {
                    // "null (natural order)" and the like: the row must say so.
                    Assert.True(documented.StartsWith("null", StringComparison.Ordinal), $"docs/models/{chapter}: `{name}` is documented as '{documented}' but {t.Name}'s default is null.");
                    continue;
                }
                Assert.True(Matches(documented, actual), $"docs/models/{chapter}: `{name}` is documented as '{documented}' but {t.Name}'s default is {Format(actual)}.");
            }
            compared++;
        }
        Assert.True(compared >= 5, $"docs/models/{chapter}: only {compared} option rows found; is the table still there?");
    }

    /// <summary>Every row of a chapter's options table (<c>| option | default | meaning |</c>) names a setting of the
    /// chapter's options classes: the check above skips rows it cannot match (tables of metrics or figures), so a
    /// renamed or removed option would otherwise stay in the table unnoticed.</summary>
    [Theory]
    [MemberData(nameof(Chapters))]
    public void Option_table_rows_name_settings(string chapter, Type[] optionsTypes)
    {
        string text = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "models", chapter));
        var unknown = new List<string>();
        int rows = 0;
        foreach (Match table in OptionTable.Matches(text))
            foreach (Match m in Row.Matches(table.Value))
            {
                string name = m.Groups["name"].Value;
                rows++;
                if (!optionsTypes.Any(t => t.GetProperty(name) is { CanWrite: true })) unknown.Add(name);
            }
        Assert.True(rows >= 5, $"docs/models/{chapter}: only {rows} rows in its options tables; is the table still there?");
        Assert.True(unknown.Count == 0, $"docs/models/{chapter}: the options table lists {string.Join(", ", unknown)}, which {string.Join(" / ", optionsTypes.Select(t => t.Name))} do not have.");
    }

    // A table whose header is "| option | default | meaning |", up to the first line that is not a table row.
    private static readonly Regex OptionTable = new(@"^\|\s*option\s*\|\s*default\s*\|\s*meaning\s*\|\s*\n(?:\|.*\n?)*", RegexOptions.Multiline);

    /// <summary>Every setting an options class writes a default for (its own <c>Defaults</c> class: what it declares or
    /// changes) has a row in its chapter's table: deep-gmm.md had no row for <c>NodeObjective</c>.</summary>
    [Theory]
    [MemberData(nameof(Chapters))]
    public void Every_default_has_a_row(string chapter, Type[] optionsTypes)
    {
        string text = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "models", chapter));
        var rows = Row.Matches(text).Select(m => m.Groups["name"].Value).ToHashSet();
        foreach (var t in optionsTypes)
        {
            var defaults = t.GetNestedType("Defaults") ?? throw new InvalidOperationException($"{t.Name} has no Defaults class.");
            var missing = defaults.GetFields(BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly)
                .Where(f => f.IsLiteral && t.GetProperty(f.Name) is { CanWrite: true } && !rows.Contains(f.Name))
                .Select(f => f.Name).ToList();
            Assert.True(missing.Count == 0, $"docs/models/{chapter}: no row for {t.Name}.{string.Join(", ", missing)} (each default is documented in its chapter's options table).");
        }
    }

    /// <summary>docs/mlnet.md's **Options** paragraph gives each ML.NET setting's default in parentheses
    /// (<c>`FeatureColumnName` ("Features")</c>, <c>`ScoringBlockRows` (2048)</c>): they are the estimator options'
    /// defaults, and every setting of <c>DensityEstimatorOptions</c> is listed.</summary>
    [Fact]
    public void Mlnet_options_paragraph_matches_the_estimator_options()
    {
        string text = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "mlnet.md"));
        int start = text.IndexOf("**Options**", StringComparison.Ordinal), end = text.IndexOf("**Defaults are written once.**", StringComparison.Ordinal);
        Assert.True(start >= 0 && end > start, "docs/mlnet.md: the **Options** paragraph is gone.");
        var documented = Regex.Matches(text[start..end], @"`(?<name>\w+)` \((?<value>[^;)]*)")
            .GroupBy(m => m.Groups["name"].Value).ToDictionary(g => g.Key, g => g.First().Groups["value"].Value.Trim());
        var defaults = new Microsoft.ML.DeepDensity.Transforms.RnadeEstimator.Options();
        foreach (var p in typeof(Microsoft.ML.DeepDensity.Transforms.DensityEstimatorOptions).GetProperties().Where(p => p.CanWrite))
        {
            Assert.True(documented.TryGetValue(p.Name, out var value), $"docs/mlnet.md: the Options paragraph does not give {p.Name}'s default.");
            object? actual = p.GetValue(defaults);
            bool ok = actual switch
            {
                null => value.StartsWith("null", StringComparison.Ordinal),
                string s => value == "\"" + s + "\"",
                CancellationToken c => !c.CanBeCanceled && value == "none",
                _ => Matches(value, actual),
            };
            Assert.True(ok, $"docs/mlnet.md: {p.Name} is documented as ({value}) but its default is {Convert.ToString(actual, CultureInfo.InvariantCulture) ?? "null"}.");
        }
    }

    // docs/mlnet.md's catalog table: | `Rnade(string featureColumnName = "Features", int hiddenUnits = 50, ...)` | ... |
    private static readonly Regex CatalogRow = new(@"^\|\s*`(?<method>\w+)\((?<parameters>[^`]*)\)`\s*\|", RegexOptions.Multiline);
    private static readonly Regex Parameter = new(@"^(?<type>\S+)\s+(?<name>\w+)(\s*=\s*(?<value>.+))?$");

    /// <summary>Each catalog overload listed in docs/mlnet.md exists with those parameter names, in that order, and the
    /// defaults the table quotes are the method's.</summary>
    [Fact]
    public void Mlnet_catalog_table_matches_the_catalog_methods()
    {
        string text = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "mlnet.md"));
        var methods = typeof(DensityEstimationCatalogExtensions).GetMethods(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static);
        int compared = 0;
        foreach (Match row in CatalogRow.Matches(text))
        {
            string name = row.Groups["method"].Value;
            // Comments and parenthesised notes after a default ("null /* [4, 4] */", "null ([200])") are prose.
            string list = Regex.Replace(Regex.Replace(row.Groups["parameters"].Value, @"/\*.*?\*/", ""), @"\([^)]*\)", "");
            var documented = list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(p => Parameter.Match(p)).ToList();
            Assert.All(documented, m => Assert.True(m.Success, $"docs/mlnet.md: cannot read the parameters of `{name}(...)`."));
            var names = documented.Select(m => m.Groups["name"].Value).ToArray();
            var method = methods.SingleOrDefault(m => m.Name == name && m.GetParameters().Skip(1).Select(p => p.Name).SequenceEqual(names));
            Assert.True(method is not null, $"docs/mlnet.md lists {name}({string.Join(", ", names)}), which the catalog does not have.");
            var parameters = method!.GetParameters().Skip(1).ToArray();
            for (int i = 0; i < documented.Count; i++)
            {
                var value = documented[i].Groups["value"];
                Assert.True(value.Success == parameters[i].HasDefaultValue,
                    $"docs/mlnet.md: {name}'s `{names[i]}` is documented {(value.Success ? "with" : "without")} a default.");
                if (!value.Success) continue;
                Assert.True(DefaultMatches(value.Value.Trim(), parameters[i]),
                    $"docs/mlnet.md: {name}'s `{names[i]}` is documented as {value.Value.Trim()} but its default is {Convert.ToString(parameters[i].DefaultValue, CultureInfo.InvariantCulture) ?? "null"}.");
            }
            compared++;
        }
        Assert.True(compared >= 12, $"docs/mlnet.md: only {compared} catalog rows found; is the table still there?");
    }

    private static bool DefaultMatches(string documented, System.Reflection.ParameterInfo parameter)
    {
        object? actual = parameter.DefaultValue;
        if (actual is null) return documented == "null";
        if (actual is string s) return documented == "\"" + s + "\"";
        if (parameter.ParameterType.IsEnum) return documented == Enum.ToObject(parameter.ParameterType, actual).ToString();
        return Matches(documented, actual);
    }

    private static bool Matches(string documented, object actual)
    {
        string first = documented.Split(' ', 2)[0].Trim('(', ')', ',', ';');
        switch (actual)
        {
            case int[] list:
                var inner = Regex.Match(documented, @"^\[([^\]]*)\]");
                return inner.Success && inner.Groups[1].Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                    .Select(int.Parse).SequenceEqual(list);
            case bool b: return first.Equals(b ? "true" : "false", StringComparison.Ordinal);
            case Enum e: return first.Equals(e.ToString(), StringComparison.Ordinal);
        }
        double expected = Convert.ToDouble(actual, CultureInfo.InvariantCulture);
        double value;
        if (first.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            value = ulong.Parse(first[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        else if (!double.TryParse(first.Replace(",", "", StringComparison.Ordinal), NumberStyles.Float, CultureInfo.InvariantCulture, out value))
            return false;
        return Math.Abs(value - expected) <= 1e-6 * Math.Max(1, Math.Abs(expected));
    }

    private static string Format(object v) => v is int[] a ? "[" + string.Join(", ", a) + "]" : Convert.ToString(v, CultureInfo.InvariantCulture)!;

    internal static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "DeepDensity.ML.sln"))) return dir.FullName;
        throw new InvalidOperationException("DeepDensity.ML.sln not found above " + AppContext.BaseDirectory);
    }
}
