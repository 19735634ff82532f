using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// A validation row far off the training data's scale (a finite 3e38 where the training values are a few units): its
/// log-density under the model is not finite, and so was the validation figure. The gradient trainers took that for a
/// divergence, halved the learning rate three times and threw a divergence that blamed the training data's range and
/// advised standardising; the Deep GMM went on silently without a best iteration. Now the row is named, in the data set
/// the user gave it in, by the row number of that view (a held-out row by its row in the training view).
/// </summary>
public class UnscorableValidationRowTests
{
    private const float FarOff = 3e38f;

    private static void AssertUnscorable(DataValidationException e, long row, int column, DataSetKind dataSet)
    {
        Assert.Equal((row, column, "Features", dataSet), (e.Row, e.Column, e.DataSource, e.DataSet));
        Assert.Contains("has a log-density under the model that is not finite", e.Message);
        Assert.Contains("not a divergence of training", e.Message);
        Assert.Contains("3E+38", e.Message);
        Assert.DoesNotContain("standardise the column", e.Message);
        Assert.EndsWith($"in the {(dataSet == DataSetKind.Validation ? "validation" : "training")} data.", e.Message);
    }

    [Fact]
    public void AFarOffRowOfTheValidationViewIsNamed_NotTakenForADivergence()
    {
        var ml = new MLContext(seed: 1);
        var valid = TestData.Blob(30, seed: 2);
        valid[17].Features[2] = FarOff;
        var e = Assert.Throws<DataValidationException>(() => ml.DensityEstimation.Rnade(TestData.SmallRnade())
            .Fit(ml.Data.LoadFromEnumerable(TestData.Blob(80)), ml.Data.LoadFromEnumerable(valid)));
        AssertUnscorable(e, 17, 2, DataSetKind.Validation);
        Assert.Contains("in the validation data", e.Message);

        // Streamed: the same row of the validation view (its position in the cursor), without the value (not held).
        var streamed = Assert.Throws<DataValidationException>(() => ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.TrainingData = DensityTrainingData.Streamed))
            .Fit(ml.Data.LoadFromEnumerable(TestData.Blob(80)), ml.Data.LoadFromEnumerable(valid)));
        Assert.Equal((17L, "Features", DataSetKind.Validation), (streamed.Row, streamed.DataSource, streamed.DataSet));
        Assert.Contains("has a log-density under the model that is not finite", streamed.Message);
    }

    /// <summary>Without a validation view the engine holds out a seeded fraction of the training rows: the far-off row is
    /// named by its row in the training view, which is where the user can find it.</summary>
    [Fact]
    public void AFarOffHeldOutRowIsNamedByItsRowInTheTrainingView()
    {
        var ml = new MLContext(seed: 1);
        var options = TestData.SmallRnade();
        var train = TestData.Blob(120);
        // Which rows the engine holds out: the public split of a matrix whose rows are their own numbers.
        var numbered = new RowMatrix(Enumerable.Range(0, train.Count).Select(i => (float)i).ToArray(), train.Count, 1);
        var heldOut = TrainingLoop.Split(numbered, null, options.ModelOptions.ValidationFraction, options.ModelOptions.Seed).Validation!;
        int row = (int)heldOut[3, 0];
        train[row].Features[1] = -FarOff;
        var e = Assert.Throws<DataValidationException>(() => ml.DensityEstimation.Rnade(options).Fit(ml.Data.LoadFromEnumerable(train)));
        AssertUnscorable(e, row, 1, DataSetKind.Training);
        Assert.Contains("held out for validation (ValidationFraction = 0.1)", e.Message);
    }

    /// <summary>The Deep GMM's EM measured the validation rows too: a far-off one made the figure −∞, which never beat the
    /// best, so the run ended without a best iteration and without a word.</summary>
    [Fact]
    public void DeepGmmNamesAFarOffValidationRow()
    {
        var ml = new MLContext(seed: 1);
        var valid = TestData.Blob(40, seed: 2);
        valid[9].Features[3] = FarOff;
        var e = Assert.Throws<DataValidationException>(() => ml.DensityEstimation.DeepGmm(new DeepGmmEstimator.Options
        {
            ModelOptions = new DeepGmmOptions { Layers = new[] { 2, 2 }, MaxIterations = 3 },
        }).Fit(ml.Data.LoadFromEnumerable(TestData.Blob(150)), ml.Data.LoadFromEnumerable(valid)));
        AssertUnscorable(e, 9, 3, DataSetKind.Validation);
    }

    /// <summary>Whole sequences (one a row): the row of the validation view and the frame, named by the column.</summary>
    [Fact]
    public void AFarOffValidationSequenceIsNamedByItsRowAndFrame()
    {
        var ml = new MLContext(seed: 1);
        List<RnnRnadeTransformerTests.SequenceRow> Sequences(int count, ulong seed)
        {
            var rng = new RandomStream(seed);
            return Enumerable.Range(0, count).Select(_ =>
            {
                var values = new float[2 * 12];
                rng.FillGaussian(values);
                return new RnnRnadeTransformerTests.SequenceRow { Features = values };
            }).ToList();
        }
        var valid = Sequences(5, 2);
        valid[3].Features[2 * 4 + 1] = FarOff;   // row 3, frame 4
        var e = Assert.Throws<DataValidationException>(() => ml.DensityEstimation.RnnRnade(new SequenceDensityEstimator.Options { FrameSize = 2 },
            new RnnRnadeOptions { HiddenUnits = 4, Components = 2, RecurrentUnits = 4, MaxEpochs = 2 })
            .Fit(ml.Data.LoadFromEnumerable(Sequences(30, 1)), ml.Data.LoadFromEnumerable(valid)));
        Assert.Equal((3L, "Features", DataSetKind.Validation), (e.Row, e.DataSource, e.DataSet));
        Assert.Contains("frame 4: this frame has a log-density under the model that is not finite", e.Message);
        Assert.EndsWith("in the validation data.", e.Message);
    }

    public sealed class Frame { [VectorType(2)] public float[] Features = new float[2]; public string SequenceId = ""; public int Order; }

    /// <summary>Frame rows: the far-off frame's row of the validation view, with its sequence's id and its frame within it
    /// (the rows of the view are not in sequence order, so the engine's sequence and frame are not the row).</summary>
    [Fact]
    public void AFarOffValidationFrameRowIsNamedByItsRow()
    {
        var ml = new MLContext(seed: 1);
        List<Frame> Series(string id, int length, ulong seed)
        {
            var rng = new RandomStream(seed);
            return Enumerable.Range(0, length).Select(t =>
            {
                var f = new float[2];
                rng.FillGaussian(f);
                return new Frame { Features = f, SequenceId = id, Order = t };
            }).ToList();
        }
        var train = Series("a", 120, 1).Concat(Series("b", 120, 2)).ToList();
        // Two validation sequences, interleaved and in reverse order: sequence "q" is the second grouped, frame 6 of it is row 7.
        var p = Series("p", 10, 3);
        var q = Series("q", 10, 4);
        var rows = new List<Frame>();
        for (int t = 9; t >= 0; t--) { rows.Add(p[t]); rows.Add(q[t]); }
        q[6].Features[0] = FarOff;
        int row = rows.IndexOf(q[6]);
        var e = Assert.Throws<DataValidationException>(() => ml.DensityEstimation.RnnRnade(new RnnRnadeFrameEstimator.Options
        {
            FeatureColumnName = "Features", SequenceIdColumnName = "SequenceId", OrderColumnName = "Order",
            ModelOptions = new RnnRnadeOptions { HiddenUnits = 4, Components = 2, RecurrentUnits = 4, MaxEpochs = 2 },
        }).Fit(ml.Data.LoadFromEnumerable(train), ml.Data.LoadFromEnumerable(rows)));
        Assert.Equal((row, "Features", DataSetKind.Validation), (e.Row, e.DataSource, e.DataSet));
        Assert.Contains("sequence 'q', frame 6: this frame has a log-density under the model that is not finite", e.Message);
        Assert.EndsWith("in the validation data.", e.Message);
    }
}
