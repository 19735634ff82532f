using Microsoft.ML;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Transforms;

namespace DeepDensity.Samples.Models;

/// <summary>RBM: binary visible units on inked pixels (an ordinary ML.NET transform binarises them), exact log Z for few hidden units.</summary>
public static class RbmSample
{
    public static IEstimator<ITransformer> Pipeline(MLContext ml, DemoSize size)
        => ml.Transforms.Expression("Ink", "p => p >= 8 ? 1.0f : 0.0f", nameof(Digit.Pixels))
            .Append(ml.DensityEstimation.Rbm(new RbmEstimator.Options
            {
                FeatureColumnName = "Ink",
                ModelOptions = new RbmOptions { HiddenUnits = 16, MaxEpochs = size.Epochs * 5 },
            }));
}
