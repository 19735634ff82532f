using System.Globalization;
using System.Text;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Microsoft.ML.DeepDensity.Cli.Tests;

/// <summary>Runs ddml in-process and makes small CSV files in a private temporary directory.</summary>
public sealed class CliHarness : IDisposable
{
    public CliHarness() => Directory.CreateDirectory(Dir);

    public string Dir { get; } = Path.Combine(Path.GetTempPath(), "ddml-tests-" + Guid.NewGuid().ToString("N"));

    public string PathOf(string name) => Path.Combine(Dir, name);

    public (int Exit, string Out, string Err) Run(params string[] args) => Run(null, args);

    public (int Exit, string Out, string Err) Run(Interrupts? interrupts, params string[] args)
    {
        var o = new StringWriter(CultureInfo.InvariantCulture);
        var e = new StringWriter(CultureInfo.InvariantCulture);
        int exit = DdmlApp.Run(args, o, e, interrupts);
        return (exit, o.ToString(), e.ToString());
    }

    /// <summary>A CSV with an id (text) column, four correlated real columns and a label; every 15th row is far away and labelled 1.</summary>
    public string Blob(string name, int rows, int seed = 1, bool binary = false)
    {
        var rnd = new Random(seed);
        var sb = new StringBuilder("id,x1,x2,x3,x4,label\n");
        for (int i = 0; i < rows; i++)
        {
            bool outlier = i % 15 == 7;
            double a = Gauss(rnd), b = Gauss(rnd), shift = outlier ? 5 : 0;
            double[] x = { a + shift, 0.6 * a + 0.8 * b, b - a + 1, Gauss(rnd) * 0.5 - shift };
            var cells = x.Select(v => binary ? (v > 0.3 ? "1" : "0") : v.ToString("F4", CultureInfo.InvariantCulture));
            sb.Append($"row{i},").Append(string.Join(",", cells)).Append(outlier ? ",1\n" : ",0\n");
        }
        return Write(name, sb.ToString());
    }

    public string Write(string name, string content)
    {
        var path = PathOf(name);
        File.WriteAllText(path, content);
        return path;
    }

    /// <summary>No output file and no temporary file was left behind in the directory.</summary>
    public void AssertNoPartialFiles(string output)
    {
        Assert.False(File.Exists(output), $"{output} should not exist");
        Assert.Empty(Directory.GetFiles(Dir, "*.tmp", SearchOption.AllDirectories));
        Assert.Empty(Directory.GetFiles(Dir, ".*", SearchOption.AllDirectories));
    }

    public static double Gauss(Random r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());

    /// <summary>The repository root (for data/ and the built tool).</summary>
    public static string RepoRoot()
    {
        var d = new DirectoryInfo(AppContext.BaseDirectory);
        while (d is not null && !File.Exists(Path.Combine(d.FullName, "DeepDensity.ML.sln"))) d = d.Parent;
        return d?.FullName ?? throw new InvalidOperationException("repository root not found");
    }

    /// <summary>The first <paramref name="rows"/> shipped 8×8 digits as a CSV with a header (p0..p63, digit) and, if asked, an anomaly column (digit 7 = anomalous).</summary>
    public string Digits(string name, int skip, int rows, bool withAnomaly, Func<int, bool>? keep = null)
    {
        var lines = File.ReadAllLines(Path.Combine(RepoRoot(), "data", "digits.csv")).Skip(skip)
            .Where(l => keep is null || keep(int.Parse(l.Split(',')[^1], CultureInfo.InvariantCulture))).Take(rows);
        var sb = new StringBuilder(string.Join(",", Enumerable.Range(0, 64).Select(i => $"p{i}")) + ",digit" + (withAnomaly ? ",anomaly" : "") + "\n");
        foreach (var l in lines)
            sb.Append(l).Append(withAnomaly ? (l.EndsWith(",7", StringComparison.Ordinal) ? ",1" : ",0") : "").Append('\n');
        return Write(name, sb.ToString());
    }

    public void Dispose()
    {
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}
