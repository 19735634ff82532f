using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// The documented relation of the ML.NET sample outputs to the engine (docs/mlnet.md, "Sample"): the <c>Sample</c>
/// column of a row with features x is <c>Model.Sample(1, Scoring.RowSampleSeed(SampleSeed, x))</c>, bit for bit, in the
/// live transformer and after <c>Model.Load</c>; <c>GenerateSamples(n, seed)</c> is <c>Model.Sample(n, seed)</c>. Both
/// are draws of the features as they reach the model (after a normalizer: normalised units).
/// </summary>
public class SampleColumnRelationTests
{
    private sealed class WithSample
    {
        [VectorType] public float[] Features { get; set; } = Array.Empty<float>();
        [VectorType] public float[] Sample { get; set; } = Array.Empty<float>();
    }

    public static TheoryData<string> Families() => new() { "Rnade", "RbmBernoulli" };

    [Theory, MemberData(nameof(Families))]
    public void TheSampleColumnIsTheEngineDrawOfTheRowSeed(string family)
    {
        var ml = new MLContext(seed: 1);
        IDataView train, test;
        IEstimator<ITransformer> estimator;
        if (family == "Rnade")
        {
            train = ml.Data.LoadFromEnumerable(TestData.Blob(200));
            test = ml.Data.LoadFromEnumerable(TestData.Blob(40, seed: 9));
            estimator = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => { o.ModelOptions.MaxEpochs = 3; o.SampleColumnName = "Sample"; o.SampleSeed = 4; }));
        }
        else
        {
            train = ml.Data.LoadFromEnumerable(BinaryModelFamilyTests.Bits(200, 1));
            test = ml.Data.LoadFromEnumerable(BinaryModelFamilyTests.Bits(40, 9));
            estimator = BinaryModelFamilyTests.Families[family](ml, o => { o.SampleColumnName = "Sample"; o.SampleSeed = 4; });
        }
        var live = estimator.Fit(train);
        using var zip = new MemoryStream();
        ml.Model.Save(live, train.Schema, zip);
        zip.Position = 0;
        var loaded = new MLContext(seed: 3).Model.Load(zip, out _);
        var model = live.GetDensityModel();
        foreach (var (how, t) in new[] { ("live", live), ("loaded", loaded) })
        {
            var rows = ml.Data.CreateEnumerable<WithSample>(t.Transform(test), reuseRowObject: false).ToList();
            Assert.Equal(40, rows.Count);
            foreach (var row in rows)
                Assert.Equal(model.Sample(1, Scoring.RowSampleSeed(4, row.Features)).Values, row.Sample);
        }
        var generated = live.GenerateSamples(ml, 30, 11).GetColumn<float[]>("Features").SelectMany(r => r).ToArray();
        Assert.Equal(model.Sample(30, 11).Values, generated);
    }
}
