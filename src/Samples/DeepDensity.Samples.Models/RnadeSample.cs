using Microsoft.ML;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Transforms;

namespace DeepDensity.Samples.Models;

/// <summary>RNADE: an exact density of real vectors; here the dequantised 0–17 pixel values.</summary>
public static class RnadeSample
{
    public static IEstimator<ITransformer> Pipeline(MLContext ml, DemoSize size)
        => ml.DensityEstimation.Rnade(new RnadeEstimator.Options
        {
            FeatureColumnName = nameof(Digit.Pixels),
            ModelOptions = new RnadeOptions { HiddenUnits = 50, Components = 5, MaxEpochs = size.Epochs },
        });
}
