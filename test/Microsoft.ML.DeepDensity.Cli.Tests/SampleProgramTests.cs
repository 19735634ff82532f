namespace Microsoft.ML.DeepDensity.Cli.Tests;

/// <summary>Every per-model sample program runs to the end on small data (and its loaded model scores like the live one).</summary>
public class SampleProgramTests
{
    public static TheoryData<string> Samples() => new(global::DeepDensity.Samples.Models.Program.All);

    [Fact]
    public void EveryModelOfTheToolHasASample()
        => Assert.Equal(ModelCatalog.AllNames.OrderBy(n => n), global::DeepDensity.Samples.Models.Program.All.OrderBy(n => n));

    [Theory]
    [MemberData(nameof(Samples))]
    public void SampleRunsOnSmallData(string model)
        => Assert.Equal(0, global::DeepDensity.Samples.Models.Program.Main(new[] { model, "--small", Path.Combine(CliHarness.RepoRoot(), "data", "digits.csv") }));
}
