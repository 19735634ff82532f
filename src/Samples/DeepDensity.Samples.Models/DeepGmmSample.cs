using Microsoft.ML;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Transforms;

namespace DeepDensity.Samples.Models;

/// <summary>Deep GMM: a Gaussian mixture with exponentially many shared-parameter components, trained by EM.</summary>
public static class DeepGmmSample
{
    public static IEstimator<ITransformer> Pipeline(MLContext ml, DemoSize size)
        => ml.DensityEstimation.DeepGmm(new DeepGmmEstimator.Options
        {
            FeatureColumnName = nameof(Digit.Pixels),
            ModelOptions = new DeepGmmOptions { Layers = new[] { 3, 3 }, MaxIterations = size.Epochs },
        });
}
