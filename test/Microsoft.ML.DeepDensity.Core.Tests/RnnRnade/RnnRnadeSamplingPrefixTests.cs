using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Tests.Conformance;

namespace Microsoft.ML.DeepDensity.Tests.RnnRnade;

/// <summary>
/// What holds between RNN-RNADE draws of different sizes (docs/models/rnn-rnade.md, "Sampling: what matches what"):
/// a draw of fewer sequences is the first sequences of a larger one, a draw of L frames is the first L frames of a draw
/// of more, and a continuation of a drawn prefix with the same seed is a new draw, not the rest of the longer draw.
/// </summary>
public class RnnRnadeSamplingPrefixTests
{
    [Theory]
    [InlineData("RnnRnade")]
    [InlineData("RnnRnadeConditionedTanhRaw")]
    public void ShorterAndFewerDrawsArePrefixesOfLongerAndMoreNumerousOnes(string name)
    {
        var m = SequenceModelCases.Get(name).FitStandard();
        int d = m.FrameSize;
        // 70 sequences: three sampling blocks of 32.
        var large = m.Sample(70, 12, 17);
        foreach (var (count, length) in new[] { (1, 1), (70, 5), (40, 12), (3, 11), (2, 12), (5, 3), (17, 12), (31, 7), (32, 12), (33, 2), (64, 12), (65, 9) })
        {
            var small = m.Sample(count, length, 17);
            for (int i = 0; i < count; i++)
                Assert.Equal(large.Sequence(i)[..(length * d)].ToArray(), small.Sequence(i).ToArray());
        }
        // A continuation of the first 5 frames with the same seed is a fresh draw of the 7 frames after them.
        var continued = m.Sample(m.Sample(70, 5, 17), 7, 17);
        Assert.Equal(large.Sequence(0)[..(5 * d)].ToArray(), continued.Sequence(0)[..(5 * d)].ToArray());
        Assert.NotEqual(large.Sequence(0)[(5 * d)..].ToArray(), continued.Sequence(0)[(5 * d)..].ToArray());
        // The same prefixes, seed and index give the same continuation; another number of prefixes does not change it.
        var prefixes = m.Sample(70, 5, 17);
        foreach (int count in new[] { 1, 2, 4, 31, 32, 33, 65 })
        {
            var fewer = m.Sample(prefixes.Select(Enumerable.Range(0, count).ToArray()), 7, 17);
            for (int i = 0; i < count; i++) Assert.Equal(continued.Sequence(i).ToArray(), fewer.Sequence(i).ToArray());
        }
    }
}
