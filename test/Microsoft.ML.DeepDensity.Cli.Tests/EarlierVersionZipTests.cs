namespace Microsoft.ML.DeepDensity.Cli.Tests;

/// <summary>
/// Zips written by an earlier <c>ddml fit</c> still score the same: every model family's zip from commit 90cc356
/// (Fixtures/v90cc356) and the Gaussian IWAE's from commit a4c815c (Fixtures/va4c815c: payload version 3, standardised
/// inputs, and version 1), each folder with the commands that made them in its README, scored with today's
/// <c>ddml score</c> give that build's output text, whose floats are in shortest round-trip form, so equal text is equal bits.
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
        for (int i = 0; i < expected.Length; i++) Assert.True(expected[i] == actual[i], $"line {i + 1}: expected '{expected[i]}', got '{actual[i]}'");
    }
}
