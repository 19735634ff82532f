using Microsoft.ML.DeepDensity.Models.DeepGmm;
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

    /// <summary>An infinite gradient clip norm passed Validate (engine.md says a float option that is not finite is
    /// refused, naming it); 0 is the documented "no clipping".</summary>
    [Fact]
    public void AnInfiniteGradientClipNormIsRefusedNamingTheOption()
    {
        foreach (float bad in new[] { float.PositiveInfinity, float.NaN, -1f })
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => new RnadeOptions { GradientClipNorm = bad }.Validate());
            Assert.Equal(nameof(GradientTrainingOptions.GradientClipNorm), e.ParamName);
            Assert.Contains("finite", e.Message);
            Assert.Contains($"got {bad}", e.Message);
        }
        new RnadeOptions { GradientClipNorm = 0 }.Validate();
        new RnadeOptions { GradientClipNorm = float.MaxValue }.Validate();
    }

    /// <summary>Deep GMM's covariance ridge λ adds λ·var(column) to every covariance: 1e300 passed Validate and training
    /// then reported "diverged" (a singular node). Beyond <see cref="DeepGmmOptions.MaxCovarianceRidge"/> the ridge, not
    /// the data, sets the covariances; Validate refuses it naming the option, the value and the limit. At the limit a
    /// model trains.</summary>
    [Fact]
    public void ACovarianceRidgeBeyondItsLimitIsRefused_AtTheLimitAModelTrains()
    {
        foreach (double bad in new[] { Math.BitIncrement(DeepGmmOptions.MaxCovarianceRidge), 1e300, double.MaxValue })
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => new DeepGmmOptions { CovarianceRidge = bad }.Validate());
            Assert.Equal(nameof(DeepGmmOptions.CovarianceRidge), e.ParamName);
            Assert.Contains($"{DeepGmmOptions.MaxCovarianceRidge}]", e.Message);
            Assert.Contains($"got {bad}", e.Message);
        }
        var options = new DeepGmmOptions { Layers = new[] { 2, 2 }, CovarianceRidge = DeepGmmOptions.MaxCovarianceRidge, MaxIterations = 3, Seed = 7 };
        options.Validate();
        var data = Conformance.ConformanceData.Real(200, 1);
        Assert.True(double.IsFinite(DeepGmmModel.Fit(data, options).AverageLogDensity(data)));
    }

    /// <summary>An infinite Adam ε passed Validate ("positive") and made every step zero: training returned its initial
    /// parameters without a word.</summary>
    [Fact]
    public void AnInfiniteAdamEpsilonIsRefused()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new RnadeOptions { AdamEpsilon = float.PositiveInfinity }.Validate());
        Assert.Equal(nameof(GradientTrainingOptions.AdamEpsilon), e.ParamName);
        Assert.Contains("finite", e.Message);
    }

    /// <summary>An undefined optimizer passed Validate: a Fit standardised (a streamed one read two passes of) the data and
    /// built the model before the optimiser's factory threw "Unknown optimizer" with the parameter "options". It is refused
    /// by Validate, naming the setting, before a row is read, as every other enum setting is.</summary>
    [Fact]
    public void AnUndefinedOptimizerIsRefusedBeforeTheDataIsRead()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new RnadeOptions { Optimizer = (OptimizerKind)7 }.Validate());
        Assert.Equal(nameof(GradientTrainingOptions.Optimizer), e.ParamName);
        Assert.Contains("Adam or SgdMomentum", e.Message);
        Assert.Contains("got 7", e.Message);
        var stream = new NeverOpened();
        e = Assert.Throws<ArgumentOutOfRangeException>(() => RnadeModel.Fit(stream, new RnadeOptions { Optimizer = (OptimizerKind)7 }, null, null));
        Assert.Equal(nameof(GradientTrainingOptions.Optimizer), e.ParamName);
        Assert.Equal(0, stream.Opened);
    }

    private sealed class NeverOpened : IRowStream
    {
        public int Opened;
        public int Width => 3;
        public long? Count => null;
        public IRowCursor Open() { Opened++; throw new InvalidOperationException("the stream was opened"); }
    }
}
