using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Training;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// A data scientist comparing families reads each fit's training history (learning curves, the kept epoch, why it
/// stopped) the same way for every family: <c>GetDensityModel().TrainingSummary</c> (and
/// <c>GetSequenceDensityModel().TrainingSummary</c>). It used to be declared on each engine model class separately, so
/// a loop over families needed a cast per family or reflection (what <c>ddml fit</c> did). The history is not saved in
/// the zip: a loaded model has none.
/// </summary>
public class TrainingSummaryTests
{
    public static TheoryData<string> Families() => new(ModelFamilyTests.Families.Keys.Concat(BinaryModelFamilyTests.Families.Keys));

    [Theory]
    [MemberData(nameof(Families))]
    public void EveryFamilysHistoryIsReadFromThePipelineAlike_AndIsNotSaved(string family)
    {
        var ml = new MLContext(seed: 1);
        var pipeline = GenerateSamplesTests.Fitted(family);
        TrainingSummary? summary = pipeline.GetDensityModel().TrainingSummary;
        Assert.NotNull(summary);
        Assert.Equal(summary.EpochsRun, summary.History.Count);
        Assert.True(summary.EpochsRun > 0);
        // The kept step is one of the history's, in its numbering (a Deep GMM numbers on from its pretraining).
        Assert.Contains(summary.History, p => p.Epoch == summary.BestEpoch);
        // A Gaussian RBM has no likelihood per epoch: its curve is the reconstruction error, in Metrics.
        Assert.All(summary.History, p => Assert.True(family.StartsWith("RbmGaussian", StringComparison.Ordinal) ? p.Metrics!.ContainsKey("recon_error") : !double.IsNaN(p.TrainLogLikelihood)));

        using var zip = new MemoryStream();
        ml.Model.Save(pipeline, null, zip);
        zip.Position = 0;
        Assert.Null(new MLContext().Model.LoadWithLiveDensityModels(zip, out _).GetDensityModel().TrainingSummary);
    }

    [Fact]
    public void TheSequenceModelsHistoryIsReadTheSameWay()
    {
        var ml = new MLContext(seed: 1);
        var rng = new Random(3);
        var rows = Enumerable.Range(0, 120).Select(t => new FrameRowTimeOrderTests.StepFrame
        {
            Features = new[] { MathF.Sin(t * 0.3f) + 0.1f * (float)TestData.Gauss(rng), (float)TestData.Gauss(rng) }, SequenceId = t < 60 ? "a" : "b", Order = t,
        }).ToList();
        var fitted = ml.DensityEstimation.RnnRnade("Features", "SequenceId", "Order", hiddenUnits: 4, recurrentUnits: 4, maxEpochs: 3)
            .Fit(ml.Data.LoadFromEnumerable(rows));
        var summary = fitted.GetSequenceDensityModel().TrainingSummary;
        Assert.NotNull(summary);
        Assert.Equal(3, summary.EpochsRun);
        Assert.Same(summary, ((RnnRnadeModel)fitted.GetSequenceDensityModel()).TrainingSummary);
    }
}
