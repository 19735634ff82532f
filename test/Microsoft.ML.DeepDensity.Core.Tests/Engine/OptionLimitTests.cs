using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

/// <summary>
/// Sizes a model file bounds are bounded by the options too, at the same limit: at the limit Validate passes, one beyond
/// it names the setting. Before, RNADE with 65,537 components trained to the end and then failed as "training diverged"
/// (its file would not load), deep RNADE with int.MaxValue orderings and an RBM with int.MaxValue hidden units threw
/// OutOfMemoryException, IWAE with int.MaxValue units OverflowException, and an infinite weight decay "diverged".
/// </summary>
public class OptionLimitTests
{
    public static TheoryData<string, int> Limits => new()
    {
        { "RnadeOptions.HiddenUnits", RnadeOptions.MaxHiddenUnits },
        { "RnadeOptions.Components", RnadeOptions.MaxComponents },
        { "DeepRnadeOptions.Components", RnadeOptions.MaxComponents },
        { "DeepRnadeOptions.HiddenLayers", DeepRnadeOptions.MaxHiddenLayers },
        { "DeepRnadeOptions.Orderings", DeepRnadeOptions.MaxOrderings },
        { "RnnRnadeOptions.Components", RnadeOptions.MaxComponents },
        { "RnnRnadeOptions.RecurrentUnits", RnadeOptions.MaxHiddenUnits },
        { "RbmOptions.HiddenUnits", RbmOptions.MaxHiddenUnits },
        { "IwaeOptions.LatentDimensions", IwaeOptions.MaxLayerUnits },
        { "IwaeOptions.HiddenUnits", IwaeOptions.MaxLayerUnits },
        { "IwaeOptions.DeepHiddenUnits", IwaeOptions.MaxLayerUnits },
    };

    private static GradientTrainingOptions With(string setting, int value)
    {
        var (type, property) = (setting.Split('.')[0], setting.Split('.')[1]);
        GradientTrainingOptions options = type switch
        {
            "RnadeOptions" => new RnadeOptions(),
            "DeepRnadeOptions" => new DeepRnadeOptions(),
            "RnnRnadeOptions" => new RnnRnadeOptions(),
            "RbmOptions" => new RbmOptions(),
            _ => new IwaeOptions(),
        };
        var p = options.GetType().GetProperty(property)!;
        p.SetValue(options, p.PropertyType == typeof(int[]) ? new[] { value } : value);
        return options;
    }

    [Theory]
    [MemberData(nameof(Limits))]
    public void ASizeAtTheFileLimitIsValid_OneBeyondIsRefusedNamingTheSetting(string setting, int limit)
    {
        With(setting, limit).Validate();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => With(setting, limit + 1).Validate());
        Assert.Equal(setting.Split('.')[1], e.ParamName);
        Assert.Contains($"{limit}]", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => With(setting, int.MaxValue).Validate());
    }

    [Fact]
    public void AnInfiniteWeightDecayIsRefused()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new RnadeOptions { WeightDecay = float.PositiveInfinity }.Validate());
        Assert.Equal(nameof(GradientTrainingOptions.WeightDecay), e.ParamName);
        Assert.Contains("finite", e.Message);
    }
}
