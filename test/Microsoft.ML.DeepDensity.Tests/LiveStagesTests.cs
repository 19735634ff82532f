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

    /// <summary>ML.NET's TransformerChain keeps a scope per stage, and its Transform runs only the stages in scope
    /// Scoring: a label conversion appended with TransformerScope.TrainTest is skipped on scoring data without the label,
    /// and GetModelFor(TransformerScope.Scoring) leaves it out of a PredictionEngine. WithLiveDensityTransformers rebuilt
    /// the chain with every stage in scope Everything, so a pipeline loaded with LoadWithLiveDensityModels ran the
    /// training-only stage and threw "Could not find input column 'Label'" on data the live pipeline and the plain
    /// Model.Load scored.</summary>
    [Fact]
    public void StageScopesAreKept_ATrainingOnlyStageDoesNotRunWhenScoring()
    {
        var ml = new MLContext(seed: 1);
        var rows = TestData.Blob(200, outlierEvery: 20);
        var train = ml.Data.LoadFromEnumerable(rows);
        var unlabelled = ml.Data.LoadFromEnumerable(rows.Select(r => new FeaturesOnly { Features = r.Features }).ToList());
        var fitted = new EstimatorChain<ITransformer>()
            .Append(ml.Transforms.Conversion.ConvertType("IsAnomaly", "Label", DataKind.Boolean), TransformerScope.TrainTest)
            .Append(ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.ModelOptions.MaxEpochs = 2)))
            .Fit(train);
        var expected = fitted.Transform(unlabelled).GetColumn<float>("LogDensity").ToArray();

        var relived = (TransformerChain<ITransformer>)fitted.WithLiveDensityTransformers(ml);
        Assert.Equal(expected, relived.Transform(unlabelled).GetColumn<float>("LogDensity"));
        Assert.Equal(fitted.GetModelFor(TransformerScope.Scoring).Count(), relived.GetModelFor(TransformerScope.Scoring).Count());

        var reloaded = (TransformerChain<ITransformer>)Reload(ml, fitted, train.Schema, liveModels: true);
        Assert.Contains((IEnumerable<ITransformer>)reloaded, s => s is DensityTransformer);
        Assert.Equal(expected, reloaded.Transform(unlabelled).GetColumn<float>("LogDensity"));
        Assert.True(reloaded.Transform(train).Schema.GetColumnOrNull("IsAnomaly") is null, "a TrainTest stage ran in Transform");
        var engine = ml.Model.CreatePredictionEngine<FeaturesOnly, Scored>(reloaded.GetModelFor(TransformerScope.Scoring));
        Assert.Equal(expected[3], engine.Predict(new FeaturesOnly { Features = rows[3].Features }).LogDensity);

        // Saved again, the scopes are in the file: the plain load skips the stage too.
        var resaved = Reload(ml, reloaded, train.Schema, liveModels: false);
        Assert.Equal(expected, resaved.Transform(unlabelled).GetColumn<float>("LogDensity"));
    }

    private sealed class FeaturesOnly
    {
        [VectorType(Row.D)] public float[] Features { get; set; } = new float[Row.D];
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
