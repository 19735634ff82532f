using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// <see cref="DensityModelExtensions.WithLiveDensityTransformers"/> and <c>LoadWithLiveDensityModels</c> replace only
/// the DeepDensity stages of a pipeline: every other stage stays, wherever the pipeline came from.
/// </summary>
public class LiveStagesTests
{
    /// <summary>A fitted Concatenate → RNADE pipeline is one flat chain of leaves with the live transformer among
    /// them; it used to come back as the density stage alone, without its Concatenate.</summary>
    [Fact]
    public void WithLiveDensityTransformers_KeepsTheOtherStagesOfAFittedPipeline()
    {
        var ml = new MLContext(seed: 1);
        var raw = ml.Data.LoadFromEnumerable(TestData.Raw(200));
        var fitted = ml.Transforms.Concatenate("Features", "A", "B", "C", "E")
            .Append(ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.ModelOptions.MaxEpochs = 2)))
            .Fit(raw);

        var relived = fitted.WithLiveDensityTransformers(ml);

        Assert.Equal(fitted.Transform(raw).GetColumn<float>("LogDensity"), relived.Transform(raw).GetColumn<float>("LogDensity"));
    }

    /// <summary>A transformer saved alone loads as exactly its surrogate chain; stages the user appends to that chain
    /// (TransformerChain.Append) used to be dropped by LoadWithLiveDensityModels, silently losing their columns.</summary>
    [Fact]
    public void LoadWithLiveDensityModels_KeepsStagesAppendedToALoadedModel()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TestData.Blob(200));
        // Sample and standard-error columns lengthen the surrogate: the appended stage must still be told apart.
        var live = ml.DensityEstimation.Rnade(TestData.SmallRnade(o =>
        {
            o.ModelOptions.MaxEpochs = 2;
            o.SampleColumnName = "Sample";
            o.StandardErrorColumnName = "StdErr";
        })).Fit(data);
        var loaded = (TransformerChain<ITransformer>)Reload(ml, live, data.Schema, liveModels: false);
        var appended = loaded.Append(ml.Transforms.NormalizeMinMax("Scaled", "LogDensity").Fit(loaded.Transform(data)));
        var expected = appended.Transform(data).GetColumn<float>("Scaled").ToArray();

        Assert.Equal(expected, appended.WithLiveDensityTransformers(ml).Transform(data).GetColumn<float>("Scaled"));
        var reloaded = Reload(ml, appended, data.Schema, liveModels: true);
        Assert.Equal(expected, reloaded.Transform(data).GetColumn<float>("Scaled"));
        Assert.Contains((IEnumerable<ITransformer>)reloaded, s => s is DensityTransformer);
    }

    private static ITransformer Reload(MLContext ml, ITransformer model, DataViewSchema schema, bool liveModels)
    {
        using var zip = new MemoryStream();
        ml.Model.Save(model, schema, zip);
        zip.Position = 0;
        var other = new MLContext(seed: 2);
        return liveModels ? other.Model.LoadWithLiveDensityModels(zip, out _) : other.Model.Load(zip, out _);
    }
}
