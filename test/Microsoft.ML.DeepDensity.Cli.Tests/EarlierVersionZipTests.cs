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
        int seColumn = Array.IndexOf(actual[0].Split(','), "StandardError");
        if (seColumn >= 0)
            KnownWhereTheyWere(expected, Path.Combine(fixtures, model + ".zip"), seColumn);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(expected[i] == actual[i] || (RoundingTolerance.TryGetValue(model, out double tolerance) && Close(expected[i], actual[i], tolerance)),
                $"line {i + 1}: expected '{expected[i]}', got '{actual[i]}'");
    }

    /// <summary>
    /// A row resting on fewer than 4 effective importance samples has StandardError Infinity (unknown) since the
    /// standard error of such rows stopped being the delta method's (which never exceeds about 1: the Gaussian
    /// IWAE's fixture has rows at 1 exactly). Where this build writes Infinity, the fixture's value must be one that only
    /// so few effective samples give (√(K/(K−1)) · √(1/ESS − 1/K) with ESS &lt; 4 at the model's K); it is then put in
    /// <paramref name="expected"/> as Infinity, so every other field is still compared as text.
    /// </summary>
    private void KnownWhereTheyWere(string[] expected, string zip, int seColumn)
    {
        var loaded = ModelZip.Load(new Microsoft.ML.MLContext(seed: 1), zip);
        int k = ((Microsoft.ML.DeepDensity.Estimation.ImportanceSampledModel)loaded.Model).EvaluationSamples;
        var actual = File.ReadAllLines(_h.PathOf(Path.GetFileNameWithoutExtension(zip) + ".scores.csv"));
        for (int i = 1; i < expected.Length; i++)
        {
            var a = actual[i].Split(',');
            if (a[seColumn] != "Infinity") continue;
            var e = expected[i].Split(',');
            double old = double.Parse(e[seColumn], System.Globalization.CultureInfo.InvariantCulture);
            double ess = 1 / (old * old * (k - 1) / k + 1.0 / k);
            Assert.True(ess < Microsoft.ML.DeepDensity.Estimation.ImportanceSampler.MinEffectiveSamples * (1 + 1e-5),
                $"line {i + 1}: StandardError Infinity now, but the fixture's {old} means {ess:F3} effective samples at K = {k}");
            e[seColumn] = "Infinity";
            expected[i] = string.Join(",", e);
        }
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
