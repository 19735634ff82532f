using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Training;
using Microsoft.ML.DeepDensity.Tests.Conformance;

namespace Microsoft.ML.DeepDensity.Tests.Iwae;

/// <summary>
/// The conformance suite's Bernoulli VAE with affine heads and two stochastic layers (LatentDimensions {2, 2},
/// HiddenUnits {}, DeepHiddenUnits {4}, k = 1, seed 1) diverged in its first epoch. Not a gradient bug (the affine-head
/// gradients match finite differences, <see cref="IwaeGradientTests"/>) and not a learning rate: with ReLU between the
/// stochastic layers, the log σ of z₂ is an unbounded function of z₁, whose spread is e^(log σ) — 4.6 % of the initial
/// model's samples have a log-weight of −∞ (z₂ up to 2e13, p(z₁ | z₂)'s log σ down to −1.8e13), so every restore of
/// the last good state (the initialisation) diverges again. Burda et al.'s tanh between the stochastic layers bounds
/// every log σ: the same configuration trains. The user must be told that, not "lower LearningRate".
/// </summary>
public class IwaeDeepLatentDivergenceTests
{
    private static IwaeOptions Options(Activation activation) => new()
    {
        LatentDimensions = new[] { 2, 2 }, HiddenUnits = Array.Empty<int>(), DeepHiddenUnits = new[] { 4 }, Activation = activation,
        Samples = 1, EvaluationSamples = 20, EvaluationSamplesPerChunk = 10, MaxEpochs = 30, Seed = 1, EarlyStoppingPatience = 0,
    };

    [Fact]
    public void UnboundedNetworksBetweenStochasticLayersFailWithAdviceThatFixesThem()
    {
        var data = ConformanceData.Binary(200, 12345);
        var e = Assert.Throws<TrainingDivergedException>(() => IwaeModel.Fit(data, Options(Activation.Relu)));
        Assert.Contains("epoch 1", e.Message);
        Assert.Contains("Activation = Tanh", e.Message);
        Assert.Contains("Samples > 1", e.Message);

        // The advice works: tanh between the stochastic layers (Burda et al.) trains all 30 epochs, never restoring.
        var model = IwaeModel.Fit(data, Options(Activation.Tanh));
        Assert.Equal(30, model.TrainingSummary!.EpochsRun);
        Assert.Equal(0, model.TrainingSummary.DivergenceRecoveries);
        Assert.True(double.IsFinite(model.TrainingSummary.FinalTrainLogLikelihood));
        double heldOut = model.WithEvaluation(1000).LogDensity(ConformanceData.Binary(200, 777)).Average();
        Assert.True(heldOut > -6, $"held-out log-density {heldOut:F3}, expected above -6 nats (8 columns; uniform is -5.55)");
    }

    [Fact]
    public void OneStochasticLayerKeepsTheGenericAdvice()
    {
        var net = new IwaeNetwork(8, new[] { 2 }, Array.Empty<int>(), new[] { 4 }, Activation.Relu, IwaeLikelihood.Bernoulli);
        Assert.Equal("lower LearningRate.", new IwaeObjective(net, 1, 10).DivergenceAdvice);
        var gaussian = new IwaeNetwork(4, new[] { 2, 1 }, new[] { 8 }, new[] { 4 }, Activation.Tanh, IwaeLikelihood.Gaussian);
        Assert.StartsWith("lower LearningRate, or (if Standardize is off) standardise the inputs", new IwaeObjective(gaussian, 1, 10).DivergenceAdvice);
    }
}
