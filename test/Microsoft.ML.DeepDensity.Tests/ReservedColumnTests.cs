using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// Column names starting with <c>__dd_</c> are the internal columns of the saved chain (Surrogate, SequenceSurrogate):
/// a user column of such a name was dropped by a saved model's DropColumns (or hidden by its CopyColumns) and came back
/// from <c>mlContext.Model.Load</c> as nothing, or as a PredictionEngine's default value, without a word. Now every
/// entry point refuses it, naming the column and the way to rename it.
/// </summary>
public class ReservedColumnTests
{
    public sealed class RowWithReserved
    {
        public float[] Features { get; set; } = Array.Empty<float>();   // its width set by a SchemaDefinition: the families' data differ
        [ColumnName("__dd_score")] public float UserScore { get; set; }
    }

    public sealed class SequenceWithReserved
    {
        public float[] Features = new float[4];
        [ColumnName("__dd_rr_model")] public string UserModel = "";
    }

    public sealed class FrameWithReserved
    {
        [VectorType(2)] public float[] Features = new float[2];
        public string SequenceId = "";
        public float Order;
        [ColumnName("__dd_rr_id")] public string UserId = "";
    }

    public sealed class SequenceRow { public float[] Features = new float[4]; }
    public sealed class FrameRow { [VectorType(2)] public float[] Features = new float[2]; public string SequenceId = ""; public float Order; }

    /// <summary>Every way a reserved input column reaches one of our stages throws an ArgumentException that names it.</summary>
    /// <summary>The transformer saved to a zip and loaded with live density stages in a new MLContext.</summary>
    private static (MLContext Context, ITransformer Live) SavedAndLoadedLive(MLContext ml, ITransformer transformer, DataViewSchema schema)
    {
        using var zip = new MemoryStream();
        ml.Model.Save(transformer, schema, zip);
        zip.Position = 0;
        var ml2 = new MLContext(seed: 2);
        return (ml2, ml2.Model.LoadWithLiveDensityModels(zip, out _));
    }

    internal static void AssertRefused(string column, params Action[] uses)
    {
        foreach (var use in uses)
        {
            var e = Assert.ThrowsAny<ArgumentException>(use);
            Assert.Contains($"'{column}'", e.Message);
            Assert.Contains("'__dd_' is reserved", e.Message);
            Assert.Contains("CopyColumns", e.Message);
        }
    }

    /// <summary>A row model family: its estimator (shape, Fit), its fitted transformer (schema, Transform, row mapper,
    /// PredictionEngine) and the transformer loaded back with LoadWithLiveDensityModels, and the option names.</summary>
    internal static void RowFamily(MLContext ml, PipelineChecks.Family make, IDataView train, IReadOnlyList<float[]> features)
    {
        var estimator = make(ml, null);
        var transformer = estimator.Fit(train);
        var rows = features.Select((x, i) => new RowWithReserved { Features = x, UserScore = i }).ToList();
        var def = SchemaDefinition.Create(typeof(RowWithReserved));
        def["Features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, features[0].Length);
        var input = ml.Data.LoadFromEnumerable(rows, def);
        var (ml2, live) = SavedAndLoadedLive(ml, transformer, train.Schema);
        AssertRefused("__dd_score",
            () => estimator.GetOutputSchema(SchemaShapeFactory.FromType<RowWithReserved>(ml, def)),
            () => estimator.Fit(input),
            () => transformer.GetOutputSchema(input.Schema),
            () => transformer.Transform(input),
            () => transformer.GetRowToRowMapper(input.Schema),
            () => ml.Model.CreatePredictionEngine<RowWithReserved, Scored>(transformer, inputSchemaDefinition: def),
            () => live.Transform(ml2.Data.LoadFromEnumerable(rows, def)));

        // The same prefix in a column-name option: refused when the estimator is created, naming the option.
        foreach (var (option, set) in new (string, Action<DensityEstimatorOptions>)[]
        {
            ("FeatureColumnName", o => o.FeatureColumnName = "__dd_features"), ("LogDensityColumnName", o => o.LogDensityColumnName = "__dd_logdensity"),
            ("ScoreColumnName", o => o.ScoreColumnName = "__dd_x"), ("PredictedLabelColumnName", o => o.PredictedLabelColumnName = "__dd_predicted"),
            ("StandardErrorColumnName", o => o.StandardErrorColumnName = "__dd_stderr"), ("SampleColumnName", o => o.SampleColumnName = "__dd_sample"),
        })
        {
            var e = Assert.ThrowsAny<ArgumentException>(() => make(ml, set));
            Assert.Contains(option, e.Message);
            Assert.Contains("'__dd_' is reserved", e.Message);
        }
    }

    [Fact]
    public void WholeSequences_AReservedInputColumnOrOptionName_IsRefused()
    {
        var ml = new MLContext(seed: 1);
        var estimator = ml.DensityEstimation.RnnRnade(new SequenceDensityEstimator.Options { FrameSize = 2 },
            new RnnRnadeOptions { HiddenUnits = 3, Components = 2, RecurrentUnits = 3, MaxEpochs = 1 });
        var clean = Enumerable.Range(0, 20).Select(i => new SequenceRow { Features = new float[] { i, 1, -i, 2 } }).ToList();
        var transformer = estimator.Fit(ml.Data.LoadFromEnumerable(clean));
        var rows = clean.Select((r, i) => new SequenceWithReserved { Features = r.Features, UserModel = "mine" + i }).ToList();
        var input = ml.Data.LoadFromEnumerable(rows);
        var (ml2, live) = SavedAndLoadedLive(ml, transformer, ml.Data.LoadFromEnumerable(clean).Schema);
        AssertRefused("__dd_rr_model",
            () => estimator.GetOutputSchema(SchemaShapeFactory.FromType<SequenceWithReserved>(ml)),
            () => estimator.Fit(input),
            () => transformer.GetOutputSchema(input.Schema),
            () => transformer.Transform(input),
            () => ml.Model.CreatePredictionEngine<SequenceWithReserved, Scored>(transformer),
            () => live.Transform(ml2.Data.LoadFromEnumerable(rows)));
        var e = Assert.ThrowsAny<ArgumentException>(() => ml.DensityEstimation.RnnRnade(
            new SequenceDensityEstimator.Options { FrameSize = 2, ScoreColumnName = "__dd_rr_score" }));
        Assert.Contains("ScoreColumnName", e.Message);
        Assert.Contains("'__dd_' is reserved", e.Message);
    }

    [Fact]
    public void FrameRows_AReservedInputColumnOrOptionName_IsRefused()
    {
        var ml = new MLContext(seed: 1);
        RnnRnadeFrameEstimator.Options Options(Action<RnnRnadeFrameEstimator.Options>? configure = null)
        {
            var o = new RnnRnadeFrameEstimator.Options { ModelOptions = new RnnRnadeOptions { HiddenUnits = 3, Components = 2, RecurrentUnits = 3, MaxEpochs = 1 } };
            configure?.Invoke(o);
            return o;
        }
        var estimator = ml.DensityEstimation.RnnRnade(Options());
        var clean = Enumerable.Range(0, 40).Select(i => new FrameRow { Features = new float[] { i % 5, -(i % 3) }, SequenceId = "s" + i / 8, Order = i % 8 }).ToList();
        var transformer = estimator.Fit(ml.Data.LoadFromEnumerable(clean));
        var rows = clean.Select(r => new FrameWithReserved { Features = r.Features, SequenceId = r.SequenceId, Order = r.Order, UserId = "mine" }).ToList();
        var input = ml.Data.LoadFromEnumerable(rows);
        var (ml2, live) = SavedAndLoadedLive(ml, transformer, ml.Data.LoadFromEnumerable(clean).Schema);
        AssertRefused("__dd_rr_id",
            () => estimator.GetOutputSchema(SchemaShapeFactory.FromType<FrameWithReserved>(ml)),
            () => estimator.Fit(input),
            () => transformer.GetOutputSchema(input.Schema),
            () => transformer.Transform(input),
            () => ml.Model.CreatePredictionEngine<FrameWithReserved, Scored>(transformer),
            () => live.Transform(ml2.Data.LoadFromEnumerable(rows)));
        foreach (var (option, set) in new (string, Action<RnnRnadeFrameEstimator.Options>)[]
        {
            ("SequenceIdColumnName", o => o.SequenceIdColumnName = "__dd_id"), ("OrderColumnName", o => o.OrderColumnName = "__dd_rr_order"),
            ("PredictedLabelColumnName", o => o.PredictedLabelColumnName = "__dd_p"),
        })
        {
            var e = Assert.ThrowsAny<ArgumentException>(() => ml.DensityEstimation.RnnRnade(Options(set)));
            Assert.Contains(option, e.Message);
            Assert.Contains("'__dd_' is reserved", e.Message);
        }
    }

    /// <summary>A zip written before names were checked, whose output column has a reserved name, still loads (both ways)
    /// and scores; saving such a transformer again is refused, since its saved chain would drop that column.</summary>
    [Fact]
    public void AnOldZipWithAReservedOutputName_StillLoads_ButIsNotSavedAgain()
    {
        var ml = new MLContext(seed: 1);
        var fitted = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.ModelOptions.MaxEpochs = 2)).Fit(ml.Data.LoadFromEnumerable(TestData.Blob(100)));
        var settings = fitted.Settings with { StandardErrorColumnName = "__dd_mine" };
        var old = Surrogate.Build(ml, settings, fitted.Model.Dimension, ModelEnvelope.Encode(fitted.Model, settings));
        var test = TestData.Blob(5, seed: 3);
        using var zip = new MemoryStream();
        ml.Model.Save(old, ml.Data.LoadFromEnumerable(test).Schema, zip);
        var ml2 = new MLContext(seed: 2);
        zip.Position = 0;
        var plain = ml2.Model.Load(zip, out _);
        var expected = fitted.Transform(ml.Data.LoadFromEnumerable(test)).GetColumn<float>("LogDensity").ToArray();
        Assert.Equal(expected, plain.Transform(ml2.Data.LoadFromEnumerable(test)).GetColumn<float>("LogDensity").ToArray());
        zip.Position = 0;
        var live = ml2.Model.LoadWithLiveDensityModels(zip, out var schema);
        var scored = live.Transform(ml2.Data.LoadFromEnumerable(test));
        Assert.Equal(expected, scored.GetColumn<float>("LogDensity").ToArray());
        Assert.Equal(5, scored.GetColumn<float>("__dd_mine").Count());
        var e = Assert.Throws<InvalidOperationException>(() => ml2.Model.Save(live, schema, new MemoryStream()));
        Assert.Contains("StandardErrorColumnName", e.Message);
        Assert.Contains("'__dd_mine'", e.Message);
        Assert.Contains("'__dd_' is reserved", e.Message);
    }
}
