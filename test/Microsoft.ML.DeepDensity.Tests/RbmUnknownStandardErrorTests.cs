using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// An RBM's AIS standard error of log Z is every row's <c>StdErr</c>, and it is +∞ (unknown) when the runs' weights have
/// fewer than 4 effective samples, as an IWAE's or NVIL's row (docs/mlnet.md). Three AIS runs can never have 4, so the
/// column is +∞ on every row, live and after a save and load; the scores stay finite.
/// </summary>
public class RbmUnknownStandardErrorTests
{
    private sealed class WithStdErr
    {
        public float LogDensity { get; set; }
        public float Score { get; set; }
        public float StdErr { get; set; }
    }

    [Theory]
    [InlineData(3, false)]
    [InlineData(100, true)]
    public void StdErrIsInfiniteWhenTheAisRunsAreTooFewEffectiveSamples(int aisRuns, bool known)
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TestData.Blob(300));
        var estimator = ml.DensityEstimation.Rbm(new RbmEstimator.Options
        {
            StandardErrorColumnName = "StdErr",
            ModelOptions = new RbmOptions
            {
                HiddenUnits = 8, VisibleType = RbmVisibleType.Gaussian, MaxEpochs = 3, LearningRate = 0.01f, Seed = 7,
                ExactLogPartitionMaxUnits = 0, AisRuns = aisRuns, AisTemperatures = 200,
            },
        });
        var fitted = estimator.Fit(data);
        var model = (RbmModel)fitted.GetDensityModel();
        Assert.Equal(known, double.IsFinite(model.LogPartitionStandardError));
        var path = Path.Combine(TestTemp.Directory("dd-rbm-se"), "model.zip");
        ml.Model.Save(fitted, data.Schema, path);
        var loaded = ml.Model.Load(path, out _);
        foreach (var transformer in new[] { fitted, loaded })
        {
            var rows = ml.Data.CreateEnumerable<WithStdErr>(transformer.Transform(data), reuseRowObject: false).ToList();
            Assert.All(rows, r => Assert.Equal(known, float.IsFinite(r.StdErr)));
            Assert.All(rows, r => Assert.True(r.StdErr > 0));
            Assert.All(rows, r => Assert.True(float.IsFinite(r.LogDensity) && float.IsFinite(r.Score)));
        }
    }
}
