using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// Frame rows with a validation view (<see cref="RnnRnadeFrameEstimator.Fit(IDataView, IDataView?)"/>), e.g. one long
/// series whose later part is held out: the model is the engine's fitted with those validation sequences, and a bad
/// validation view is refused naming it. Before, frame rows had no validation view at all.
/// </summary>
public class FrameRowValidationTests
{
    public sealed class Frame { [VectorType(2)] public float[] Features = new float[2]; public string SequenceId = ""; public int Order; }
    public sealed class WideFrame { [VectorType(3)] public float[] Features = new float[3]; public string SequenceId = ""; public int Order; }
    public sealed class NoOrderFrame { [VectorType(2)] public float[] Features = new float[2]; public string SequenceId = ""; }

    /// <summary>One sensor's series of <paramref name="length"/> readings from step <paramref name="first"/> on.</summary>
    private static List<Frame> Series(int first, int length, ulong seed)
    {
        var rng = new RandomStream(seed);
        var rows = new List<Frame>();
        for (int t = first; t < first + length; t++)
        {
            var f = new float[2];
            rng.FillGaussian(f);
            f[0] += MathF.Sin(t * 0.3f);
            f[1] += MathF.Cos(t * 0.3f);
            rows.Add(new Frame { Features = f, SequenceId = "pump", Order = t });
        }
        return rows;
    }

    private static RnnRnadeOptions ModelOptions() => new() { HiddenUnits = 4, Components = 2, RecurrentUnits = 4, MaxEpochs = 4, TrainingWindow = 40 };

    private static RnnRnadeFrameEstimator Estimator(MLContext ml) => ml.DensityEstimation.RnnRnade(new RnnRnadeFrameEstimator.Options
    {
        FeatureColumnName = "Features", SequenceIdColumnName = "SequenceId", OrderColumnName = "Order", ModelOptions = ModelOptions(),
    });

    private static SequenceBatch AsSequence(List<Frame> rows)
        => new(rows.SelectMany(r => r.Features).ToArray(), new[] { 0, rows.Count }, 2);

    [Fact]
    public void AValidationViewIsTheEnginesValidationSet()
    {
        var ml = new MLContext(seed: 1);
        var train = Series(0, 400, 3);
        var later = Series(400, 100, 4);
        var fitted = Estimator(ml).Fit(ml.Data.LoadFromEnumerable(train), ml.Data.LoadFromEnumerable(later));

        var engine = RnnRnadeModel.Fit(AsSequence(train), ModelOptions(), AsSequence(later));
        Assert.Equal(engine.ToBytes(), fitted.Model.ToBytes());
        var summary = ((RnnRnadeModel)fitted.Model).TrainingSummary!;
        Assert.All(summary.History, h => Assert.NotNull(h.ValidationLogLikelihood));
        // Not the held-out windows of the training series: that model differs.
        Assert.NotEqual(RnnRnadeModel.Fit(AsSequence(train), ModelOptions()).ToBytes(), fitted.Model.ToBytes());
    }

    [Fact]
    public void ABadValidationViewIsRefusedByNameBeforeTraining()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Series(0, 100, 3));

        var noOrder = ml.Data.LoadFromEnumerable(new[] { new NoOrderFrame { SequenceId = "pump" } });
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Estimator(ml).Fit(train, noOrder));
        Assert.StartsWith("The validation data: Order column 'Order' not found", e.Message);
        Assert.Equal("validationData", e.ParamName);

        var wide = ml.Data.LoadFromEnumerable(new[] { new WideFrame { SequenceId = "pump" } });
        e = Assert.Throws<ArgumentOutOfRangeException>(() => Estimator(ml).Fit(train, wide));
        Assert.StartsWith("The validation data: feature column 'Features' has 3 slots but the training data's has 2", e.Message);
        Assert.Equal("validationData", e.ParamName);
    }

    /// <summary>A bad frame row says which view it is in, typed (<see cref="DataValidationException.DataSet"/>: a caller
    /// holding the two views' sources, such as ddml's two files, need not read it off the message) and in words; its row
    /// is that view's, and the inner exception is the row's error as the view's reader found it. Before, the validation
    /// view's errors said it only in words (ddml matched the message's end), and the training view's not at all.</summary>
    [Fact]
    public void ABadRowNamesItsViewAndItsRow()
    {
        var ml = new MLContext(seed: 1);
        var later = Series(100, 30, 4);
        later[7].Features[1] = float.NaN;
        var e = Assert.Throws<DataValidationException>(() => Estimator(ml).Fit(ml.Data.LoadFromEnumerable(Series(0, 100, 3)), ml.Data.LoadFromEnumerable(later)));
        Assert.Equal((7L, 1, DataSetKind.Validation), (e.Row, e.Column, e.DataSet));
        // The data set follows the problem; a NaN adds the hint that an earlier stage may have made it (NonFiniteInput).
        Assert.StartsWith("value is NaN in the validation data; if an earlier pipeline stage made column 'Features'", e.Problem);
        Assert.Contains("'Features'", e.Message);
        var own = Assert.IsType<DataValidationException>(e.InnerException);
        Assert.Equal((7L, 1), (own.Row, own.Column));
        Assert.DoesNotContain("validation", own.Problem);

        var train = Series(0, 100, 3);
        train[42].Order = train[41].Order; // two rows of the sequence at one time
        e = Assert.Throws<DataValidationException>(() => Estimator(ml).Fit(ml.Data.LoadFromEnumerable(train), ml.Data.LoadFromEnumerable(Series(100, 30, 4))));
        Assert.Equal((42L, DataSetKind.Training, "Order"), (e.Row, e.DataSet, e.DataSource));
        Assert.EndsWith("(rows 41 and 42) in the training data", e.Problem);
        Assert.Equal(42L, Assert.IsType<DataValidationException>(e.InnerException).Row);
    }
}

/// <summary>
/// Sequence training data beyond what one array holds (2^31 values, which a test cannot allocate: the bound is lowered
/// for the test's flow): both readers stop with an error naming the column and the row. Before, a List&lt;float&gt;
/// threw an OutOfMemoryException that named neither.
/// </summary>
public class SequenceReadBoundTests
{
    public sealed class Window { [VectorType(6)] public float[] Features = new float[6]; }

    [Fact]
    public void FrameRowsBeyondTheBoundAreRefusedNamingTheColumnAndRow()
    {
        var ml = new MLContext(seed: 1);
        var rows = Enumerable.Range(0, 50).Select(t => new FrameRowValidationTests.Frame { Features = new[] { t * 0.1f, 1f }, SequenceId = "pump", Order = t });
        // 30 frames of 2 values fit in 61, the 31st does not.
        var e = FitWithin(61, () => ml.DensityEstimation.RnnRnade("Features", "SequenceId", "Order", maxEpochs: 1).Fit(ml.Data.LoadFromEnumerable(rows)));
        Assert.Equal(30, e.Row);
        Assert.Equal("Features", e.DataSource);
        Assert.Contains("more than 61 values", e.Message);
    }

    [Fact]
    public void WholeSequencesBeyondTheBoundAreRefusedNamingTheColumnAndRow()
    {
        var ml = new MLContext(seed: 1);
        var rows = Enumerable.Range(0, 20).Select(i => new Window { Features = Enumerable.Range(0, 6).Select(v => (float)(v + i)).ToArray() });
        // Ten sequences of 6 values fit in 60, the 11th does not.
        var e = FitWithin(60, () => ml.DensityEstimation.RnnRnade("Features", frameSize: 2, maxEpochs: 1).Fit(ml.Data.LoadFromEnumerable(rows)));
        Assert.Equal(10, e.Row);
        Assert.Equal("Features", e.DataSource);
        Assert.Contains("more than 60 values", e.Message);
    }

    /// <summary>The error of <paramref name="fit"/> with the read bound lowered to <paramref name="maxValues"/> for this flow.</summary>
    private static DataValidationException FitWithin(int maxValues, Action fit)
    {
        SequenceValueBuffer.TestMaxValues.Value = maxValues;
        try { return Assert.Throws<DataValidationException>(fit); }
        finally { SequenceValueBuffer.TestMaxValues.Value = null; }
    }

    [Fact]
    public void TheBufferGrowsToExactlyTheBound()
    {
        SequenceValueBuffer.TestMaxValues.Value = 100_000;
        try
        {
            var buffer = new SequenceValueBuffer();
            var row = new float[1000];
            for (int r = 0; r < 100; r++) { row[0] = r; buffer.Append(row, "x", r); }
            Assert.Equal(100_000, buffer.Count);
            Assert.Equal(99f, buffer.Values[99_000]);
            Assert.Throws<DataValidationException>(() => buffer.Append(new float[1], "x", 100));
        }
        finally { SequenceValueBuffer.TestMaxValues.Value = null; }
    }
}
