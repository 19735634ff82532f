using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// A column name that is not in the input (a user's trial: <c>Rnade("Feature")</c> on a view with "Features") said only
/// "not found"; ML.NET's names are case-sensitive, so a plural or a capital is the usual slip. The message now offers the
/// near name, or lists the input's columns, on every route that checks a name: the row estimators' shape and schema
/// checks, a fitted model's Transform, the whole-sequence estimator and the frame-row estimator's three columns.
/// </summary>
public class MissingColumnMessageTests
{
    public sealed class Plural { [VectorType(Row.D)] public float[] Features { get; set; } = new float[Row.D]; }
    public sealed class Lower { [VectorType(Row.D)] public float[] features { get; set; } = new float[Row.D]; }
    public sealed class Unrelated { [VectorType(Row.D)] public float[] Pixels { get; set; } = new float[Row.D]; public float Label { get; set; } }
    public sealed class Frame { [VectorType(2)] public float[] Features { get; set; } = new float[2]; public string SequenceId { get; set; } = "a"; public int Time { get; set; } }

    [Fact]
    public void AMisspeltFeatureColumn_IsNamedWithTheNearColumn_OnEveryRoute()
    {
        var ml = new MLContext(seed: 1);
        var plural = ml.Data.LoadFromEnumerable(new[] { new Plural() });
        var estimator = ml.DensityEstimation.Rnade("Feature");
        foreach (var e in new Exception[]
        {
            Assert.ThrowsAny<ArgumentException>(() => estimator.GetOutputSchema(SchemaShapeFactory.FromType<Plural>(ml))),
            Assert.ThrowsAny<ArgumentException>(() => estimator.Fit(plural)),
        })
        {
            Assert.Contains("Feature column 'Feature' not found in the input schema; did you mean 'Features'?", e.Message);
            Assert.DoesNotContain("?.", e.Message);   // the question is the message's end, not "'Features'?."
        }

        // A fitted model given a view whose column differs only in case.
        var trained = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.ModelOptions.MaxEpochs = 1)).Fit(ml.Data.LoadFromEnumerable(TestData.Blob(50)));
        var lower = ml.Data.LoadFromEnumerable(new[] { new Lower() });
        var caseError = Assert.ThrowsAny<ArgumentException>(() => trained.Transform(lower));
        Assert.Contains("'Features' not found in the input schema; did you mean 'features'? (column names are case-sensitive)", caseError.Message);
    }

    [Fact]
    public void AnUnrelatedName_ListsTheInputsColumns()
    {
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(new[] { new Unrelated() });
        var e = Assert.ThrowsAny<ArgumentException>(() => ml.DensityEstimation.Rbm("Features").Fit(view));
        Assert.Contains("Feature column 'Features' not found in the input schema; its columns are 'Pixels', 'Label'.", e.Message);
    }

    [Fact]
    public void SequenceAndFrameRowColumns_AreNamedTheSameWay()
    {
        var ml = new MLContext(seed: 1);
        var frames = ml.Data.LoadFromEnumerable(new[] { new Frame() });
        var sequence = ml.DensityEstimation.RnnRnade("Feature", frameSize: 2);
        Assert.Contains("Sequence column 'Feature' not found in the input schema; did you mean 'Features'?",
            Assert.ThrowsAny<ArgumentException>(() => sequence.Fit(frames)).Message);
        Assert.Contains("Sequence column 'Feature' not found in the input schema; did you mean 'Features'?",
            Assert.ThrowsAny<ArgumentException>(() => sequence.GetOutputSchema(SchemaShapeFactory.FromType<Frame>(ml))).Message);

        var byId = ml.DensityEstimation.RnnRnade("Features", "SequenceID", "Time");
        Assert.Contains("Sequence-id column 'SequenceID' not found in the input schema; did you mean 'SequenceId'? (column names are case-sensitive)",
            Assert.ThrowsAny<ArgumentException>(() => byId.Fit(frames)).Message);
        Assert.Contains("Sequence-id column 'SequenceID' not found in the input schema; did you mean 'SequenceId'?",
            Assert.ThrowsAny<ArgumentException>(() => byId.GetOutputSchema(SchemaShapeFactory.FromType<Frame>(ml))).Message);
        var byOrder = ml.DensityEstimation.RnnRnade("Features", "SequenceId", "Order");
        Assert.Contains("Order column 'Order' not found in the input schema; its columns are 'Features', 'SequenceId', 'Time'.",
            Assert.ThrowsAny<ArgumentException>(() => byOrder.Fit(frames)).Message);
    }

    /// <summary>ML.NET's convention for an input column that is not there: <see cref="ArgumentOutOfRangeException"/> with
    /// ParamName "inputSchema" (its trainers from Fit and GetOutputSchema, its transformers from Transform). Ours gave the
    /// name of an internal helper's parameter ("schema", "shape"), which no public method of ours has.</summary>
    [Fact]
    public void AMissingColumn_HasMLNetsExceptionTypeAndParamName_OnEveryRoute()
    {
        var ml = new MLContext(seed: 1);
        var plural = ml.Data.LoadFromEnumerable(new[] { new Plural() });
        var shape = SchemaShapeFactory.FromType<Plural>(ml);
        var pca = ml.AnomalyDetection.Trainers.RandomizedPca("Feature");
        var mlnet = new[] { Assert.Throws<ArgumentOutOfRangeException>(() => pca.Fit(plural)), Assert.Throws<ArgumentOutOfRangeException>(() => pca.GetOutputSchema(shape)) };
        Assert.All(mlnet, e => Assert.Equal("inputSchema", e.ParamName));

        var trained = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.ModelOptions.MaxEpochs = 1)).Fit(ml.Data.LoadFromEnumerable(TestData.Blob(50)));
        var lower = ml.Data.LoadFromEnumerable(new[] { new Lower() });
        var frames = ml.Data.LoadFromEnumerable(new[] { new Frame() });
        var routes = new (string Route, Action Act)[]
        {
            ("Fit", () => ml.DensityEstimation.Rnade("Feature").Fit(plural)),
            ("GetOutputSchema(SchemaShape)", () => ml.DensityEstimation.Rnade("Feature").GetOutputSchema(shape)),
            ("Transform", () => trained.Transform(lower)),
            ("GetOutputSchema(DataViewSchema)", () => trained.GetOutputSchema(lower.Schema)),
            ("sequence Fit", () => ml.DensityEstimation.RnnRnade("Feature", frameSize: 2).Fit(frames)),
            ("sequence GetOutputSchema", () => ml.DensityEstimation.RnnRnade("Feature", frameSize: 2).GetOutputSchema(SchemaShapeFactory.FromType<Frame>(ml))),
            ("frame rows Fit", () => ml.DensityEstimation.RnnRnade("Features", "SequenceId", "Order").Fit(frames)),
            ("frame rows GetOutputSchema", () => ml.DensityEstimation.RnnRnade("Features", "SequenceId", "Order").GetOutputSchema(SchemaShapeFactory.FromType<Frame>(ml))),
        };
        foreach (var (route, act) in routes)
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(act);
            Assert.True(e.ParamName == mlnet[0].ParamName, $"{route}: ParamName {e.ParamName}, where ML.NET's is {mlnet[0].ParamName}");
            Assert.Contains("not found in the input schema", e.Message);
        }
        // A wrong type is an input-schema error too, with the same ParamName.
        Assert.Equal("inputSchema", Assert.Throws<ArgumentOutOfRangeException>(() => ml.DensityEstimation.Rnade("Label")
            .Fit(ml.Data.LoadFromEnumerable(new[] { new Unrelated() }))).ParamName);
    }

    [Theory]
    [InlineData("Feature", new[] { "Features", "Label" }, "; did you mean 'Features'?")]
    [InlineData("features", new[] { "Features", "Label" }, "; did you mean 'Features'? (column names are case-sensitive)")]
    [InlineData("Featurs", new[] { "Features", "Feature2" }, "; did you mean 'Features'?")]
    // Two names equally near: no guess.
    [InlineData("Featurex", new[] { "Features", "Featurey" }, "; its columns are 'Features', 'Featurey'")]
    // Short names: every name is within two edits of another, so none is offered.
    [InlineData("X", new[] { "Y", "Z" }, "; its columns are 'Y', 'Z'")]
    [InlineData("Anything", new string[0], "; the input has no visible columns")]
    public void TheHint_OffersOnlyAnUnambiguousNearName(string name, string[] columns, string expected)
        => Assert.Equal(expected, MissingColumn.Hint(name, columns));

    [Fact]
    public void AWideInput_ListsTwelveNamesAndCountsTheRest()
    {
        var columns = Enumerable.Range(0, 30).Select(i => $"Column{i:D2}").ToList();
        string hint = MissingColumn.Hint("Features", columns);
        Assert.StartsWith("; its columns are 'Column00', 'Column01'", hint);
        Assert.EndsWith("'Column11' and 18 more", hint);
    }
}
