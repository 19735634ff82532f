using Microsoft.ML;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Transforms;

namespace DeepDensity.Samples.Models;

/// <summary>Deep RNADE: RNADE with two MADE-masked hidden layers (100 units each by default) and one ordering; an exact
/// density like RNADE's.</summary>
public static class DeepRnadeSample
{
    public static IEstimator<ITransformer> Pipeline(MLContext ml, DemoSize size)
        => ml.DensityEstimation.DeepRnade(new DeepRnadeEstimator.Options
        {
            FeatureColumnName = nameof(Digit.Pixels),
            ModelOptions = new DeepRnadeOptions { Components = 5, MaxEpochs = size.Epochs },
        });
}
