using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Xunit;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// A model no load would read back is refused at Fit, before a row is read, as <c>ddml fit</c> refuses it. A new user's
/// 2,000-column Deep RNADE at the defaults (126 million parameters) trained at 6.4 GB and a minute an epoch, for a zip
/// whose parameters are beyond <see cref="DeepDensityEnvironment.MaxModelFileBytes"/>: neither load would have read it
/// until the setting was raised. The message names the width, the size, the setting and the options that shrink it;
/// raising the setting before Fit trains the model.
/// </summary>
[Collection(EngineSettingsCollection.Name)]
public class LoadableModelSizeTests
{
    [Fact]
    public void AWideDeepRnadeAtTheDefaultsIsRefusedBeforeItsRowsAreRead()
    {
        var ml = new MLContext(seed: 1);
        const int width = 2000;
        var schema = SchemaDefinition.Create(typeof(WideRow));
        schema[nameof(WideRow.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, width);
        var rows = new[] { new WideRow { Features = new float[width] } };
        var view = ml.Data.LoadFromEnumerable(rows, schema);
        var e = Assert.Throws<DataValidationException>(() => ml.DensityEstimation.DeepRnade("Features").Fit(view));
        Assert.Equal("Features", e.DataSource);
        Assert.Contains("2,000 columns make a deep RNADE", e.Message);
        Assert.Contains("DeepDensityEnvironment.MaxModelFileBytes: raise it before Fit", e.Message);
        Assert.Contains("so it was not trained", e.Message);
        Assert.Contains("DirectConnections = false", e.Message);
    }

    [Fact]
    public void TheLimitIsTheLoadSettingAndRaisingItTrains()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TestData.Blob(60));
        var rnade = TestData.SmallRnade(o => o.ModelOptions.MaxEpochs = 1);
        long bytes = rnade.ModelOptions.PredictModelSize(Row.D).ParameterBytes;
        var frames = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 40).Select(i => new FrameRow
        { Id = "s" + i / 5, Order = i % 5, Features = new[] { i % 4 * 0.5f, i % 3 * 0.4f } }));
        long saved = DeepDensityEnvironment.MaxModelFileBytes;
        try
        {
            DeepDensityEnvironment.MaxModelFileBytes = bytes - 1;
            var e = Assert.Throws<DataValidationException>(() => ml.DensityEstimation.Rnade(rnade).Fit(data));
            Assert.Contains(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"more than a saved model may have to load ({bytes - 1:N0} bytes"), e.Message);
            var frame = Assert.Throws<DataValidationException>(() => ml.DensityEstimation.RnnRnade("Features", "Id", "Order", maxEpochs: 1).Fit(frames));
            Assert.Contains("so it was not trained", frame.Message);
            DeepDensityEnvironment.MaxModelFileBytes = bytes * 2 + (1 << 16);
            var model = ml.DensityEstimation.Rnade(rnade).Fit(data);
            Assert.Equal(60, model.Transform(data).GetColumn<float>("LogDensity").Count(float.IsFinite));
        }
        finally { DeepDensityEnvironment.MaxModelFileBytes = saved; }
    }

    public sealed class WideRow
    {
        public float[] Features { get; set; } = Array.Empty<float>();
    }

    public sealed class FrameRow
    {
        public string Id { get; set; } = "";
        public float Order { get; set; }
        [VectorType(2)] public float[] Features { get; set; } = new float[2];
    }
}
