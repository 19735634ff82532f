using Microsoft.ML;
using Microsoft.ML.DeepDensity.Models.Nvil;
using Microsoft.ML.DeepDensity.Transforms;

namespace DeepDensity.Samples.Models;

/// <summary>NVIL: a sigmoid belief network on inked pixels; LogDensity is an importance-sampled estimate.</summary>
public static class NvilSample
{
    public static IEstimator<ITransformer> Pipeline(MLContext ml, DemoSize size)
        => ml.Transforms.Expression("Ink", "p => p >= 8 ? 1.0f : 0.0f", nameof(Digit.Pixels))
            .Append(ml.DensityEstimation.Nvil(new NvilEstimator.Options
            {
                FeatureColumnName = "Ink",
                ModelOptions = new NvilOptions { LatentDimensions = new[] { 32 }, BaselineHiddenUnits = 32, MaxEpochs = size.Epochs * 5, EvaluationSamples = size.EvaluationSamples },
            }));
}
