using Microsoft.ML;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Transforms;

namespace DeepDensity.Samples.Models;

/// <summary>Deep RNADE: RNADE with two hidden layers trained over random orderings; the exact density averages four of
/// them (each ordering costs D network passes per scored row).</summary>
public static class DeepRnadeSample
{
    public static IEstimator<ITransformer> Pipeline(MLContext ml, DemoSize size)
        => ml.DensityEstimation.DeepRnade(new DeepRnadeEstimator.Options
        {
            FeatureColumnName = nameof(Digit.Pixels),
            ModelOptions = new DeepRnadeOptions { HiddenUnits = 50, HiddenLayers = 2, Components = 5, Orderings = 4, MaxEpochs = size.Epochs },
        });
}
