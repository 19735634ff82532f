namespace Microsoft.ML.DeepDensity.Cli.Tests;

/// <summary>
/// Zips written by an earlier <c>ddml fit</c> still score the same: every model family's zip from commit 90cc356
/// (Fixtures/v90cc356) and the Gaussian IWAE's from commit a4c815c (Fixtures/va4c815c: payload version 3, standardised
/// inputs, and version 1), each folder with the commands that made them in its README, scored with today's
/// <c>ddml score</c> give that build's output text, whose floats are in shortest round-trip form, so equal text is equal bits
/// (a family whose scoring arithmetic changed since: within float rounding, <see cref="RoundingTolerance"/>).
/// </summary>
public sealed class EarlierVersionZipTests : IDisposable
{
    private readonly CliHarness _h = new();
    public void Dispose() => _h.Dispose();

    [Theory]
    [InlineData("v90cc356", "rnade", "real.csv")]
    [InlineData("v90cc356", "deeprnade", "real.csv")]
    [InlineData("v90cc356", "deepgmm", "real.csv")]
    [InlineData("v90cc356", "rbm", "bin.csv")]
    [InlineData("v90cc356", "iwae", "bin.csv")]
    [InlineData("v90cc356", "nvil", "bin.csv")]
    [InlineData("v90cc356", "rnnrnade", "seq.csv")]
    [InlineData("va4c815c", "iwae-gaussian", "tabular.csv")]
    [InlineData("va4c815c", "iwae-gaussian-raw", "tabular.csv")]
    public void ScoresTheSameAsTheBuildThatWroteIt(string folder, string model, string data)
    {
        string fixtures = Path.Combine(AppContext.BaseDirectory, "Fixtures", folder);
        var output = _h.PathOf(model + ".scores.csv");
        var r = _h.Run("score", Path.Combine(fixtures, model + ".zip"), Path.Combine(fixtures, data), "-o", output);
        Assert.True(r.Exit == 0, r.Err);
        var expected = File.ReadAllLines(Path.Combine(fixtures, model + ".scores.csv"));
        var actual = File.ReadAllLines(output);
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(expected[i] == actual[i] || (RoundingTolerance.TryGetValue(model, out double tolerance) && Close(expected[i], actual[i], tolerance)),
                $"line {i + 1}: expected '{expected[i]}', got '{actual[i]}'");
    }

    /// <summary>
    /// Families whose scoring arithmetic changed since the fixture was written, and the relative difference allowed in
    /// their numbers (every other field, and every other family, must give the same text). The Bernoulli RBM scores with
    /// the exact integer product on AVX-512 since session 33 (<c>BinaryTableProduct</c>, the bits of the AMX path) where
    /// the fixture's build used the float product: its log-densities move by float rounding (5.430823 → 5.4308233).
    /// </summary>
    private static readonly Dictionary<string, double> RoundingTolerance = new() { ["rbm"] = 1e-5 };

    /// <summary>The same fields, numbers within a relative <paramref name="tolerance"/> and the rest the same text.</summary>
    private static bool Close(string expected, string actual, double tolerance)
    {
        string[] e = expected.Split(','), a = actual.Split(',');
        if (e.Length != a.Length) return false;
        for (int j = 0; j < e.Length; j++)
        {
            if (e[j] == a[j]) continue;
            var inv = System.Globalization.CultureInfo.InvariantCulture;
            if (!double.TryParse(e[j], inv, out double x) || !double.TryParse(a[j], inv, out double y)) return false;
            if (Math.Abs(x - y) > tolerance * Math.Max(1, Math.Abs(x))) return false;
        }
        return true;
    }
}
