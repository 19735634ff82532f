using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Tests.Conformance;

namespace Microsoft.ML.DeepDensity.Tests.Iwae;

/// <summary>
/// The Gaussian IWAE with affine heads (<c>HiddenUnits = {}</c>): its log σ bound (<see cref="LogSigmaBound"/>) and the
/// files of the format before it (docs/models/iwae.md, "Affine heads with the Gaussian likelihood"). The conformance
/// case <c>IwaeGaussianAffine</c> runs the whole suite on it.
/// </summary>
public class IwaeGaussianAffineTests
{
    private static IwaeOptions Options(int epochs) => new()
    {
        Likelihood = IwaeLikelihood.Gaussian, LatentDimensions = new[] { 2 }, HiddenUnits = Array.Empty<int>(), DeepHiddenUnits = new[] { 4 },
        Samples = 3, EvaluationSamples = 20, EvaluationSamplesPerChunk = 10, Seed = 1, MaxEpochs = epochs, EarlyStoppingPatience = 0,
        // The bound on the raw columns (these tests predate the standardisation; IwaeStandardizationTests has the bound
        // behind it, payload version 3).
        Standardize = false,
    };

    /// <summary>Before the bound, the conformance case's model (2 epochs on unit-scale data) began with a training bound of
    /// −1.1e35 nats and its own sample 9 of seed 3 scored −∞: the encoder's σ at that x was e^(W x) large enough that z₁,
    /// through the decoder's affine log σ, overflowed p(x | z₁)'s σ. Now the start is at the data's scale and every
    /// sample scores finite.</summary>
    [Fact]
    public void TheModelsOwnSamplesScoreFiniteAndTrainingStartsAtTheDatasScale()
    {
        var data = ConformanceData.RealUnitScale(200, 12345);
        var model = IwaeModel.Fit(data, Options(2));
        Assert.NotNull(model.Network.Bound);
        var first = model.TrainingSummary!.History[0].TrainLogLikelihood;
        Assert.True(first > -50, $"first epoch's training bound {first}");
        var logp = model.LogDensity(model.Sample(300, 3));
        Assert.All(logp, v => Assert.True(float.IsFinite(v) && v > -1e4, $"own sample scores {v}"));
    }

    /// <summary>The bound is on only where it is needed: a Gaussian model with hidden layers and a Bernoulli one with
    /// affine heads keep unbounded heads and write payload version 1 (their bytes are those before the bound).</summary>
    [Fact]
    public void OnlyGaussianModelsWithAffineHeadsAreBoundedAndOnlyTheyWritePayloadVersionTwo()
    {
        var real = ConformanceData.RealUnitScale(40, 1);
        var bounded = IwaeModel.Fit(real, Options(1));
        Assert.Equal(2, bounded.PayloadVersion);
        var loaded = (IwaeModel)DensityModel.FromBytes(bounded.ToBytes());
        Assert.Equal(bounded.Network.Bound!.HalfWidth, loaded.Network.Bound!.HalfWidth);
        Assert.Equal(bounded.Network.Bound.OutputCentre, loaded.Network.Bound.OutputCentre);

        var hidden = Options(1); hidden.HiddenUnits = new[] { 3 };
        Assert.Null(IwaeModel.Fit(real, hidden).Network.Bound);
        Assert.Equal(1, IwaeModel.Fit(real, hidden).PayloadVersion);
        var binary = Options(1); binary.Likelihood = IwaeLikelihood.Bernoulli;
        var bernoulli = IwaeModel.Fit(ConformanceData.Binary(40, 1), binary);
        Assert.Null(bernoulli.Network.Bound);
        Assert.Equal(1, bernoulli.PayloadVersion);
    }

    /// <summary>A Gaussian affine model as the previous version fitted and saved it (no bound, payload version 1) loads
    /// without a bound and scores and samples the same bits.</summary>
    [Fact]
    public void AnUnboundedFileFromBeforeTheBoundLoadsAndScoresTheSame()
    {
        var net = new IwaeNetwork(4, new[] { 2 }, Array.Empty<int>(), new[] { 4 }, Activation.Tanh, IwaeLikelihood.Gaussian);
        net.Initialize(new RandomStream(1).Fork(0x1A17), new[] { 0.1f, -0.2f, 0f, 0.3f }, new[] { 1f, 0.8f, 1.2f, 0.5f });
        var old = new IwaeModel(net, 3, 20, 10, 0x1DAE);
        Assert.Equal(1, old.PayloadVersion);
        var loaded = (IwaeModel)DensityModel.FromBytes(old.ToBytes());
        Assert.Null(loaded.Network.Bound);
        var rows = ConformanceData.RealUnitScale(30, 5);
        Assert.Equal(old.LogDensity(rows), loaded.LogDensity(rows));
        Assert.Equal(old.Sample(30, 7).Values, loaded.Sample(30, 7).Values);
    }
}
