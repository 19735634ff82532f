using Microsoft.ML;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Transforms;

namespace DeepDensity.Samples.Models;

/// <summary>IWAE with a Gaussian decoder on the dequantised 0–17 pixel values (the Gaussian IWAE standardises its
/// inputs itself, as RNADE does); LogDensity is an importance-sampled estimate.</summary>
public static class IwaeSample
{
    public static IEstimator<ITransformer> Pipeline(MLContext ml, DemoSize size)
        => ml.DensityEstimation.Iwae(new IwaeEstimator.Options
        {
            FeatureColumnName = nameof(Digit.Pixels),
            StandardErrorColumnName = "LogDensityError",
            ModelOptions = new IwaeOptions
            {
                Likelihood = IwaeLikelihood.Gaussian, LatentDimensions = new[] { 8 }, HiddenUnits = new[] { 64 },
                MaxEpochs = size.Epochs, EvaluationSamples = size.EvaluationSamples,
            },
        });
}
