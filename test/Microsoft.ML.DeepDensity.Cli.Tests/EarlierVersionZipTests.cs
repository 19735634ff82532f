namespace Microsoft.ML.DeepDensity.Cli.Tests;

/// <summary>
/// Zips written by an earlier <c>ddml fit</c> still score the same: every model family's zip from commit 90cc356
/// (Fixtures/v90cc356, with the commands that made them in its README) scored with today's <c>ddml score</c> gives that
/// build's output text, whose floats are in shortest round-trip form, so equal text is equal bits.
/// </summary>
public sealed class EarlierVersionZipTests : IDisposable
{
    private readonly CliHarness _h = new();
    public void Dispose() => _h.Dispose();

    private static string Folder => Path.Combine(AppContext.BaseDirectory, "Fixtures", "v90cc356");

    [Theory]
    [InlineData("rnade", "real.csv")]
    [InlineData("deeprnade", "real.csv")]
    [InlineData("deepgmm", "real.csv")]
    [InlineData("rbm", "bin.csv")]
    [InlineData("iwae", "bin.csv")]
    [InlineData("nvil", "bin.csv")]
    [InlineData("rnnrnade", "seq.csv")]
    public void ScoresTheSameAsTheBuildThatWroteIt(string model, string data)
    {
        var output = _h.PathOf(model + ".scores.csv");
        var r = _h.Run("score", Path.Combine(Folder, model + ".zip"), Path.Combine(Folder, data), "-o", output);
        Assert.True(r.Exit == 0, r.Err);
        var expected = File.ReadAllLines(Path.Combine(Folder, model + ".scores.csv"));
        var actual = File.ReadAllLines(output);
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.True(expected[i] == actual[i], $"line {i + 1}: expected '{expected[i]}', got '{actual[i]}'");
    }
}
