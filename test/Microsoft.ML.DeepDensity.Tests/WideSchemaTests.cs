using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// A feature column too wide for a model file is refused from the schema's width, before a row is read: the in-memory
/// path copied the whole column first (a 2^30-slot column asks for 4 GiB per row) and the streamed path read a pass before
/// the engine refused the width. The rows here cannot be read: enumerating them fails the test.
/// </summary>
public class WideSchemaTests
{
    public sealed class Row
    {
        public float[] Features { get; set; } = Array.Empty<float>();
    }

    private static IEnumerable<Row> Unreadable(int[] reads)
    {
        reads[0]++;
        throw new InvalidOperationException("a row was read");
#pragma warning disable CS0162 // an iterator needs a yield
        yield break;
#pragma warning restore CS0162
    }

    [Theory]
    [InlineData(1 << 30, DensityTrainingData.InMemory)]
    [InlineData(1 << 30, DensityTrainingData.Streamed)]
    [InlineData(20_000, DensityTrainingData.InMemory)]
    public void AFeatureColumnTooWideIsRefusedFromTheSchema(int width, DensityTrainingData training)
    {
        var ml = new MLContext(seed: 1);
        var reads = new int[1];
        var def = SchemaDefinition.Create(typeof(Row));
        def["Features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, width);
        var view = ml.Data.LoadFromEnumerable(Unreadable(reads), def);
        var estimator = ml.DensityEstimation.Rnade(new RnadeEstimator.Options
        {
            TrainingData = training,
            ModelOptions = new Models.Rnade.RnadeOptions { HiddenUnits = 1000, Components = 20 },
        });
        var e = Assert.Throws<DataValidationException>(() => estimator.Fit(view));
        Assert.Equal(0, reads[0]);
        Assert.Contains("Features", e.Message);
        Assert.Contains($"{width:N0} columns", e.Message);
        Assert.Contains(width == 1 << 30 ? "model files hold" : "more than a model file holds", e.Message);
    }
}
