using Microsoft.ML.DeepDensity.Data;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>
/// Sequence models that standardise their frames (<see cref="SequenceModelCase.ScaleEquivarianceTolerance"/>) are the
/// same model at any scale and offset of each frame component: fitted on frames mapped to a·x + b (a from 1e-4 to 1e5,
/// offsets of up to 30 spreads, each component its own; and every value times 1e30 or 1e-30), a sequence of T frames
/// scores log p(x) − T·Σ log a_c. The row models' <see cref="RobustnessChecks"/> hold the same for rows.
/// </summary>
public class SequenceScaleChecks
{
    [Theory, MemberData(nameof(SequenceModelCases.Names), MemberType = typeof(SequenceModelCases))]
    public void ComponentsAtDifferentScalesAndOffsetsAreEachStandardised(string name)
    {
        var c = SequenceModelCases.Get(name);
        if (c.ScaleEquivarianceTolerance is not double tol) return;
        var data = c.MakeData(c.TrainingSequences, 12345);
        var reference = c.Fit(new SequenceFitRequest(data, 1)).LogDensity(data);
        var cases = new (string What, float[] Scale, float[] Offset)[]
        {
            ("per-component scales and offsets", ConformanceData.TabularScales, ConformanceData.TabularOffsets),
            ("every value × 1e30", [1e30f], [0f]),
            ("every value × 1e-30", [1e-30f], [0f]),
        };
        foreach (var (what, scale, offset) in cases)
        {
            var values = data.Values.ToArray();
            double logScalePerFrame = 0;
            for (int j = 0; j < data.FrameSize; j++) logScalePerFrame += Math.Log(scale[j % scale.Length]);
            for (int f = 0; f < data.TotalFrames; f++)
                for (int j = 0; j < data.FrameSize; j++)
                {
                    ref float v = ref values[f * data.FrameSize + j];
                    v = v * scale[j % scale.Length] + offset[j % offset.Length];
                }
            var mapped = new SequenceBatch(values, data.Offsets[..(data.Count + 1)], data.FrameSize);
            var scores = c.Fit(new SequenceFitRequest(mapped, 1)).LogDensity(mapped);
            for (int i = 0; i < data.Count; i++)
            {
                double back = scores[i] + data.Length(i) * logScalePerFrame;
                Assert.True(Math.Abs(back - reference[i]) <= tol * (1 + Math.Abs(reference[i])),
                    $"{what}, sequence {i} ({data.Length(i)} frames): log p(a·x + b) + T·Σ log a = {back}, log p(x) = {reference[i]}");
            }
        }
    }
}
