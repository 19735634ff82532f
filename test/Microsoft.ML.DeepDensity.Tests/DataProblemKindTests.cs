using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Transforms;
using Xunit;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// <see cref="DataValidationException.Kind"/> says what is wrong without the message's words, which the layers restate
/// (the column, the data set, the hint for a NaN, the row of a PredictionEngine): code that imputes a missing value or
/// binarises a column catches the kind it handles. Every route an ML.NET user meets keeps the engine's kind: Fit on the
/// training and on the validation view, the live transformer's cursor, a PredictionEngine, the plain
/// <c>Model.Load</c>'s scorer, whole sequences and frame rows.
/// </summary>
public class DataProblemKindTests
{
    private static List<Row> WithValue(List<Row> rows, int row, int column, float value)
    {
        rows[row].Features[column] = value;
        return rows;
    }

    [Fact]
    public void FitReportsTheKindOfEachProblemInTheTrainingAndValidationViews()
    {
        var ml = new MLContext(seed: 1);
        var rnade = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.ModelOptions.MaxEpochs = 2));
        var nan = Assert.Throws<DataValidationException>(() => rnade.Fit(ml.Data.LoadFromEnumerable(WithValue(TestData.Blob(40), 5, 1, float.NaN))));
        Assert.Equal((DataProblemKind.NonFiniteValue, 5L, 1), (nan.Kind, nan.Row, nan.Column));
        var inf = Assert.Throws<DataValidationException>(() => rnade.Fit(ml.Data.LoadFromEnumerable(TestData.Blob(40)),
            ml.Data.LoadFromEnumerable(WithValue(TestData.Blob(20, seed: 2), 3, 0, float.NegativeInfinity))));
        Assert.Equal((DataProblemKind.NonFiniteValue, DataSetKind.Validation), (inf.Kind, inf.DataSet));

        var empty = Assert.Throws<DataValidationException>(() => rnade.Fit(ml.Data.LoadFromEnumerable(new List<Row>())));
        Assert.Equal(DataProblemKind.NotEnoughData, empty.Kind);

        var notBinary = Assert.Throws<DataValidationException>(() => ml.DensityEstimation.Rbm(maxEpochs: 1).Fit(ml.Data.LoadFromEnumerable(TestData.Blob(20))));
        Assert.Equal(DataProblemKind.NotBinary, notBinary.Kind);
        Assert.Contains("binarise the column first", notBinary.Message);   // the remedy follows the kind, not the words

        var farOff = Assert.Throws<DataValidationException>(() => ml.DensityEstimation.Rnade(TestData.SmallRnade())
            .Fit(ml.Data.LoadFromEnumerable(TestData.Blob(80)), ml.Data.LoadFromEnumerable(WithValue(TestData.Blob(30, seed: 2), 17, 2, 3e38f))));
        Assert.Equal((DataProblemKind.UnmeasurableValidationExample, 17L), (farOff.Kind, farOff.Row));
    }

    [Fact]
    public void ScoringKeepsTheKindOnEveryRoute()
    {
        var ml = new MLContext(seed: 1);
        var model = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.ModelOptions.MaxEpochs = 2)).Fit(ml.Data.LoadFromEnumerable(TestData.Blob(40)));
        var bad = ml.Data.LoadFromEnumerable(WithValue(TestData.Blob(10, seed: 3), 4, 2, float.NaN));

        var live = Assert.Throws<DataValidationException>(() => model.Transform(bad).GetColumn<float>("LogDensity").ToList());
        Assert.Equal((DataProblemKind.NonFiniteValue, 4L), (live.Kind, live.Row));
        var engine = ml.Model.CreatePredictionEngine<Row, Scored>(model);
        var one = Assert.Throws<DataValidationException>(() => engine.Predict(new Row { Features = [1f, float.PositiveInfinity, 0f, 3f] }));
        Assert.Equal(DataProblemKind.NonFiniteValue, one.Kind);

        string path = Path.Combine(TestTemp.Directory("dd-kind"), "model.zip");
        ml.Model.Save(model, bad.Schema, path);
        var loaded = new MLContext(seed: 2).Model.Load(path, out _);
        // ML.NET reads this route on parallel cursors and wraps a worker's exception in its own.
        var plain = Assert.Throws<InvalidOperationException>(() => loaded.Transform(bad).GetColumn<float>("LogDensity").ToList());
        Assert.Equal(DataProblemKind.NonFiniteValue, Assert.IsType<DataValidationException>(plain.InnerException).Kind);
        var liveLoaded = new MLContext(seed: 2).Model.LoadWithLiveDensityModels(path, out _);
        Assert.Equal(DataProblemKind.NonFiniteValue, Assert.Throws<DataValidationException>(() => liveLoaded.Transform(bad).GetColumn<float>("LogDensity").ToList()).Kind);

        // A vector of another size than the model's (a variable-size column, so the schema cannot refuse it first).
        var ragged = ml.Data.LoadFromEnumerable(new[] { new VarRow { Features = [1f, 2f, 3f, 4f] }, new VarRow { Features = [1f, 2f, 3f] } });
        var wide = Assert.Throws<DataValidationException>(() => model.Transform(ragged).GetColumn<float>("LogDensity").ToList());
        Assert.Equal((DataProblemKind.WrongSize, 1L), (wide.Kind, wide.Row));
    }

    [Fact]
    public void SequenceRoutesKeepTheKind()
    {
        var ml = new MLContext(seed: 1);
        var sequences = ml.Data.LoadFromEnumerable(new[] { new VarRow { Features = [1f, 2f, float.NaN, 4f] } });
        var whole = Assert.Throws<DataValidationException>(() => ml.DensityEstimation.RnnRnade("Features", 2, maxEpochs: 1).Fit(sequences));
        Assert.Equal(DataProblemKind.NonFiniteValue, whole.Kind);
        var odd = ml.Data.LoadFromEnumerable(new[] { new VarRow { Features = [1f, 2f, 3f] } });
        Assert.Equal(DataProblemKind.WrongSize, Assert.Throws<DataValidationException>(() => ml.DensityEstimation.RnnRnade("Features", 2, maxEpochs: 1).Fit(odd)).Kind);

        var frames = new List<RnnRnadeTransformerTests.FrameRow>();
        for (int s = 0; s < 3; s++)
            for (int t = 0; t < 6; t++)
                frames.Add(new RnnRnadeTransformerTests.FrameRow { Features = [t, 0.5f * t], SequenceId = s, Order = t });
        frames[7].Features[1] = float.NaN;
        var frameRows = Assert.Throws<DataValidationException>(() => ml.DensityEstimation.RnnRnade("Features", "SequenceId", "Order", maxEpochs: 1)
            .Fit(ml.Data.LoadFromEnumerable(frames)));
        Assert.Equal((DataProblemKind.NonFiniteValue, 7L), (frameRows.Kind, frameRows.Row));
    }

    [Fact]
    public void TheEngineSetsTheKindWhereItChecks()
    {
        Assert.Equal(DataProblemKind.NonFiniteValue, Assert.Throws<DataValidationException>(() => DataValidation.CheckRows([0f, float.NaN], 2, InputDomain.Real, null)).Kind);
        Assert.Equal(DataProblemKind.NotBinary, Assert.Throws<DataValidationException>(() => DataValidation.CheckRows([0f, 0.5f], 2, InputDomain.Binary, null)).Kind);
        Assert.Equal(DataProblemKind.WrongSize, Assert.Throws<DataValidationException>(() => DataValidation.CheckRows([0f, 1f, 2f], 2, InputDomain.Real, null)).Kind);
        Assert.Equal(DataProblemKind.WrongSize, Assert.Throws<DataValidationException>(() => RowMatrix.FromRows([[1f, 2f], [1f]])).Kind);
        Assert.Equal(DataProblemKind.NotEnoughData, Assert.Throws<DataValidationException>(() => DataValidation.CheckTrainingData(new RowMatrix([], 0, 2), InputDomain.Real, "x")).Kind);
        // A problem the thrower does not classify is Other, the default.
        Assert.Equal(DataProblemKind.Other, new DataValidationException(-1, -1, "something else", null).Kind);
    }

    public sealed class VarRow
    {
        [VectorType] public float[] Features { get; set; } = [];
    }
}
