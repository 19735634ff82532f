using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Tests.Conformance;

namespace Microsoft.ML.DeepDensity.Tests.RnnRnade;

/// <summary>
/// RNN-RNADE's Sample took no token, while every row model's sampling checks one per block: a draw of millions of frames
/// could not be stopped. It now checks before every block of sequences, every frame step and every block of prefixes
/// it conditions on. Timed, so it runs alone.
/// </summary>
[Collection(EngineSettingsCollection.Name)]
public class RnnRnadeSamplingCancellationTests
{
    private static SequenceDensityModel Model() => SequenceModelCases.Get("RnnRnade").FitStandard();

    /// <summary>One very long sequence (the frame loop), many sequences (the blocks) and many prefixes continued (the
    /// prefix scoring, then the blocks), each several seconds of drawing on one core: each cancelled mid-way throws OperationCanceledException within a second, and
    /// the model then draws exactly what it drew before.</summary>
    [Theory]
    [InlineData("one long sequence")]
    [InlineData("many sequences")]
    [InlineData("many prefixes")]
    public void ALongDrawIsCancelledWithinOneSecond(string shape)
    {
        var model = Model();
        var before = model.Sample(3, 5, 7).Values;
        var prefixes = SequenceConformanceData.Real(300_000, 5);
        CancellationChecks.AssertCancelsWithinOneSecond(token => shape switch
        {
            "one long sequence" => model.Sample(1, 2_000_000, 7, token),
            "many sequences" => model.Sample(200_000, 15, 7, token),
            _ => model.Sample(prefixes, 15, 7, token),
        });
        Assert.Equal(before, model.Sample(3, 5, 7).Values);
    }
}
