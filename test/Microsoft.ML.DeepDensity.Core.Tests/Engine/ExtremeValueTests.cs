using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Models.RnnRnade;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

/// <summary>
/// A column of values near float32's limit on both sides (±3.4e38, finite and valid input) whose mean is not zero: the
/// float32 difference x − mean overflows for the values across the mean, although the standardised value is about 1.
/// RNADE and deep RNADE failed with "Initial parameters are not finite", Deep GMM with "Covariance could not be
/// regularised"; the models standardising their input now train on it and score their own training rows finite.
/// </summary>
public class ExtremeValueTests
{
    /// <summary>Gaussian columns, column 1 replaced by ±3.4e38 (two positive for every negative: the mean is about
    /// 1.1e38, so x − mean for x = −3.4e38 is beyond float32).</summary>
    private static RowMatrix Data(int rows, int columns)
    {
        var m = new RowMatrix(rows, columns);
        new Randomness.RandomStream(7).FillGaussian(m.AsSpan());
        for (int r = 0; r < rows; r++) m[r, 1] = r % 3 == 0 ? -3.4e38f : 3.4e38f;
        return m;
    }

    public static TheoryData<string> Models => new() { "RNADE", "deep RNADE", "Deep GMM" };

    [Theory]
    [MemberData(nameof(Models))]
    public void AColumnAtFloatLimitsOnBothSidesOfItsMean_TrainsAndScoresFinite(string model)
    {
        var data = Data(60, 3);
        DensityModel fitted = model switch
        {
            "RNADE" => RnadeModel.Fit(data, new RnadeOptions { HiddenUnits = 4, Components = 2, MaxEpochs = 2 }),
            "deep RNADE" => DeepRnadeModel.Fit(data, new DeepRnadeOptions { HiddenUnits = 4, Components = 2, MaxEpochs = 2 }),
            _ => DeepGmmModel.Fit(data, new DeepGmmOptions { Layers = new[] { 2, 2 }, MaxIterations = 2 }),
        };
        Assert.All(fitted.LogDensity(data), v => Assert.True(float.IsFinite(v), $"{model}: log-density {v} of a training row"));
    }

    [Fact]
    public void RnnRnadeOnFramesAtFloatLimits_TrainsAndScoresFinite()
    {
        var frames = Data(60, 3);
        var sequences = SequenceBatch.FromSequences(Enumerable.Range(0, 12).Select(i => frames.Slice(5 * i, 5).Values).ToArray(), 3);
        var model = RnnRnadeModel.Fit(sequences, new RnnRnadeOptions { HiddenUnits = 4, Components = 2, RecurrentUnits = 3, MaxEpochs = 2 });
        Assert.All(model.LogDensity(sequences), v => Assert.True(float.IsFinite(v), $"log-density {v} of a training sequence"));
    }
}
