using Microsoft.ML;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Transforms;

namespace DeepDensity.Samples.Models;

/// <summary>IWAE with a Gaussian decoder on the dequantised pixels scaled by 1/16; LogDensity is an importance-sampled estimate.</summary>
public static class IwaeSample
{
    public static IEstimator<ITransformer> Pipeline(MLContext ml, DemoSize size)
        => ml.Transforms.Expression("Scaled", "p => p / 16", nameof(Digit.Pixels))
            .Append(ml.DensityEstimation.Iwae(new IwaeEstimator.Options
            {
                FeatureColumnName = "Scaled",
                StandardErrorColumnName = "LogDensityError",
                ModelOptions = new IwaeOptions
                {
                    Likelihood = IwaeLikelihood.Gaussian, LatentDimensions = new[] { 8 }, HiddenUnits = new[] { 64 },
                    MaxEpochs = size.Epochs, EvaluationSamples = size.EvaluationSamples,
                },
            }));
}
