using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Models.Nvil;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Transforms;
using Xunit;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// Issue 18 (Scale), ML.NET side: <see cref="DensityEstimatorOptions.TrainingData"/> = Streamed trains through
/// cursors over the IDataView (here a lazily generated enumerable, never materialised by the test), gives the
/// in-memory model when the buffer holds the data, names bad rows and refuses families that cannot stream.
/// </summary>
public class StreamedTrainingTests
{
    /// <summary>The rows of <see cref="TestData.Blob"/>, generated afresh on every enumeration (every cursor).</summary>
    private static IEnumerable<Row> Generated(int n, int seed, Func<int, Row, Row>? edit = null)
    {
        var rows = TestData.Blob(n, seed); // regenerated per enumeration: the view holds no copy between passes
        for (int i = 0; i < n; i++) yield return edit is null ? rows[i] : edit(i, rows[i]);
    }

    private static RnadeEstimator.Options Rnade(DensityTrainingData mode, int buffer = 0) => new()
    {
        TrainingData = mode,
        ShuffleBufferRows = buffer,
        ModelOptions = new RnadeOptions { HiddenUnits = 8, Components = 2, MaxEpochs = 3, BatchSize = 25, ValidationFraction = 0, Seed = 3 },
    };

    /// <summary>RNADE and Deep RNADE (its engine Fit over a row stream too): streamed with a buffer holding the data
    /// gives the in-memory model and threshold, byte for byte.</summary>
    [Theory]
    [InlineData("Rnade")]
    [InlineData("DeepRnade")]
    public void StreamedWithABufferHoldingTheDataEqualsInMemory(string family)
    {
        var ml = new MLContext(1);
        var train = ml.Data.LoadFromEnumerable(Generated(400, 1));
        var valid = ml.Data.LoadFromEnumerable(Generated(100, 2));
        DensityTransformer Fit(DensityTrainingData mode, int buffer) => family == "Rnade"
            ? ml.DensityEstimation.Rnade(Rnade(mode, buffer)).Fit(train, valid)
            : ml.DensityEstimation.DeepRnade(new DeepRnadeEstimator.Options
            {
                TrainingData = mode,
                ShuffleBufferRows = buffer,
                ModelOptions = new DeepRnadeOptions { HiddenUnits = 8, Components = 2, Orderings = 2, MaxEpochs = 2, BatchSize = 25, ValidationFraction = 0, Seed = 3 },
            }).Fit(train, valid);
        var memory = Fit(DensityTrainingData.InMemory, 0);
        var streamed = Fit(DensityTrainingData.Streamed, 400);
        Assert.Equal(memory.Model.ToBytes(), streamed.Model.ToBytes());
        Assert.Equal(memory.Threshold, streamed.Threshold);
    }

    /// <summary>A streamed Fit logs every pass it reads (a trial's streamed Fit of a large CSV was silent for minutes in the
    /// passes before its first epoch): the training view's passes numbered from 1 with their row counts, the first one
    /// before the first epoch's report, and the validation view's passes apart.</summary>
    [Fact]
    public void AStreamedFitLogsEachPassItReads()
    {
        var ml = new MLContext(1);
        var lines = new List<string>();
        ml.Log += (_, e) => { if (e.Message.Contains(" over the ", StringComparison.Ordinal) || e.Message.Contains("epoch", StringComparison.Ordinal)) lock (lines) lines.Add(e.Message); };
        ml.DensityEstimation.Rnade(Rnade(DensityTrainingData.Streamed, 100))
            .Fit(ml.Data.LoadFromEnumerable(Generated(400, 1)), ml.Data.LoadFromEnumerable(Generated(100, 2)));
        string[] log;
        lock (lines) log = lines.ToArray();
        var training = log.Where(l => l.Contains("over the training view", StringComparison.Ordinal)).ToArray();
        Assert.Contains(training, l => l.Contains("pass 1 over the training view: 400 rows in ", StringComparison.Ordinal));
        Assert.True(training.Length >= 3, "one pass an epoch at least: " + string.Join(" | ", log)); // MaxEpochs 3
        Assert.Contains(log, l => l.Contains("over the validation view: 100 rows", StringComparison.Ordinal));
        int firstPass = Array.FindIndex(log, l => l.Contains("pass 1 over the training view", StringComparison.Ordinal));
        int firstEpoch = Array.FindIndex(log, l => l.Contains("epoch", StringComparison.Ordinal) && !l.Contains(" over the ", StringComparison.Ordinal));
        Assert.True(firstEpoch < 0 || firstPass < firstEpoch, string.Join(" | ", log));
    }

    [Fact]
    public void StreamedRbmAndDeepGmmTrainAndScore()
    {
        var ml = new MLContext(1);
        var bits = ml.Data.LoadFromEnumerable(Generated(500, 3, (i, r) =>
            new Row { Features = r.Features.Select(v => v > 0.7f ? 1f : 0f).ToArray() }));
        var rbm = ml.DensityEstimation.Rbm(new RbmEstimator.Options
        {
            TrainingData = DensityTrainingData.Streamed, ShuffleBufferRows = 100,
            ModelOptions = new RbmOptions { HiddenUnits = 4, MaxEpochs = 2, BatchSize = 20 },
        }).Fit(bits);
        Assert.True(double.IsFinite(rbm.Model.AverageLogDensity(new RowMatrix(new float[] { 1, 0, 1, 1 }, 1, 4))));
        var real = ml.Data.LoadFromEnumerable(Generated(600, 4));
        var gmm = ml.DensityEstimation.DeepGmm(new DeepGmmEstimator.Options
        {
            TrainingData = DensityTrainingData.Streamed, ShuffleBufferRows = 128,
            ModelOptions = new DeepGmmOptions { Layers = new[] { 2, 2 }, MaxIterations = 3 },
        }).Fit(real);
        var scored = ml.Data.CreateEnumerable<Scored>(gmm.Transform(real), reuseRowObject: false).ToList();
        Assert.All(scored, s => Assert.True(float.IsFinite(s.LogDensity)));
    }

    [Fact]
    public void StreamedIwaeWithABufferHoldingTheDataEqualsInMemory()
    {
        var ml = new MLContext(1);
        var train = ml.Data.LoadFromEnumerable(Generated(300, 5));
        IwaeEstimator.Options Options(DensityTrainingData mode) => new()
        {
            // A buffer of every row when streamed; in memory the setting has no effect and is refused (SettingEffects).
            TrainingData = mode, ShuffleBufferRows = mode == DensityTrainingData.Streamed ? 300 : 0,
            ModelOptions = new IwaeOptions { Likelihood = IwaeLikelihood.Gaussian, LatentDimensions = new[] { 2 }, HiddenUnits = new[] { 8 },
                MaxEpochs = 2, BatchSize = 30, ValidationFraction = 0, EvaluationSamples = 10 },
        };
        var memory = ml.DensityEstimation.Iwae(Options(DensityTrainingData.InMemory)).Fit(train);
        var streamed = ml.DensityEstimation.Iwae(Options(DensityTrainingData.Streamed)).Fit(train);
        Assert.Equal(memory.Model.ToBytes(), streamed.Model.ToBytes());
    }

    /// <summary>A streamed Fit on a row or two whose held-out validation fraction took every row said "the data has no
    /// rows" (or, for the Deep GMM, "0 training rows"); it now says what happened and what to do.</summary>
    [Fact]
    public void AValidationFractionThatTakesEveryRowSaysSo()
    {
        var ml = new MLContext(1);
        var one = ml.Data.LoadFromEnumerable(Generated(1, 1));
        var o = new RnadeEstimator.Options { TrainingData = DensityTrainingData.Streamed, ModelOptions = new RnadeOptions { HiddenUnits = 3, MaxEpochs = 1 } };
        var e = Assert.Throws<DataValidationException>(() => ml.DensityEstimation.Rnade(o).Fit(one));
        Assert.Contains("the data has 1 row, and the validation fraction held out of a stream (ValidationFraction = 0.1", e.Message);
        Assert.Contains("set ValidationFraction = 0", e.Message);
        var g = new DeepGmmEstimator.Options { TrainingData = DensityTrainingData.Streamed, ModelOptions = new DeepGmmOptions { MaxIterations = 1 } };
        Assert.Contains("took all of them", Assert.Throws<DataValidationException>(() => ml.DensityEstimation.DeepGmm(g).Fit(one)).Message);
        o.ModelOptions.ValidationFraction = 0;
        // One row is refused streamed as in memory (every family's minimum); two train.
        Assert.Contains("the data has 1 row; at least 2 rows are needed", Assert.Throws<DataValidationException>(() => ml.DensityEstimation.Rnade(o).Fit(one)).Message);
        Assert.NotNull(ml.DensityEstimation.Rnade(o).Fit(ml.Data.LoadFromEnumerable(Generated(2, 1))).Model);
        // No rows at all is still just that.
        Assert.Contains("there are no rows", Assert.Throws<DataValidationException>(() => ml.DensityEstimation.Rnade(o).Fit(ml.Data.LoadFromEnumerable(Generated(0, 1)))).Message);
    }

    /// <summary>An empty validation view is refused as in memory, naming the column and the data set; streamed, RNADE
    /// and IWAE took its mean loss (0 / 0) for a divergence ("standardise the inputs or lower LearningRate") and the RBM
    /// and the Deep GMM trained as if none had been given.</summary>
    [Fact]
    public void AnEmptyValidationViewIsRefusedAsInMemory()
    {
        var ml = new MLContext(1);
        var train = ml.Data.LoadFromEnumerable(Generated(200, 1));
        const DensityTrainingData streamed = DensityTrainingData.Streamed;
        var fits = new Func<IDataView, ITransformer>[]
        {
            valid => ml.DensityEstimation.Rnade(Rnade(streamed)).Fit(train, valid),
            valid => ml.DensityEstimation.Iwae(new IwaeEstimator.Options { TrainingData = streamed,
                ModelOptions = new IwaeOptions { Likelihood = IwaeLikelihood.Gaussian, MaxEpochs = 1, EvaluationSamples = 5 } }).Fit(train, valid),
            valid => ml.DensityEstimation.Rbm(new RbmEstimator.Options { TrainingData = streamed,
                ModelOptions = new RbmOptions { HiddenUnits = 3, VisibleType = RbmVisibleType.Gaussian, MaxEpochs = 1 } }).Fit(train, valid),
            valid => ml.DensityEstimation.DeepGmm(new DeepGmmEstimator.Options { TrainingData = streamed,
                ModelOptions = new DeepGmmOptions { Layers = new[] { 2, 2 }, MaxIterations = 1 } }).Fit(train, valid),
        };
        // A generated view does not know its row count (a row is read to find out); a list does.
        foreach (var empty in new[] { ml.Data.LoadFromEnumerable(Generated(0, 2)), ml.Data.LoadFromEnumerable(new List<Row>()) })
            foreach (var fit in fits)
            {
                var e = Assert.Throws<DataValidationException>(() => fit(empty));
                Assert.Equal("Features", e.DataSource);
                Assert.Contains("there are no rows in the validation data", e.Message);
            }
    }

    [Fact]
    public void ABadValueIsNamedByRowAndColumn()
    {
        var ml = new MLContext(1);
        var bad = ml.Data.LoadFromEnumerable(Generated(300, 1, (i, r) => { if (i == 123) r.Features[2] = float.PositiveInfinity; return r; }));
        var e = Assert.Throws<DataValidationException>(() => ml.DensityEstimation.Rnade(Rnade(DensityTrainingData.Streamed)).Fit(bad));
        Assert.Equal(123, e.Row);
        Assert.Equal(2, e.Column);
        Assert.Contains("infinity", e.Message);
        Assert.Equal("Features", e.DataSource);
        Assert.Contains("in the training data", e.Message);
    }

    /// <summary>
    /// A view whose passes differ (here a mapping that draws new noise on every cursor) is refused, naming the column and
    /// what to do; it trained silently on other rows every epoch. ML.NET's ShuffleRows, with or without a seed, draws
    /// its seed once, when the view is made, so its passes are the same and it streams (docs/scaling.md).
    /// </summary>
    [Fact]
    public void AViewWhosePassesDifferIsRefused()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(Generated(300, 1));
        var random = new Random(3);
        var noisy = ml.Transforms.CustomMapping<Row, Row>((a, b) => b.Features = a.Features.Select(x => x + (float)random.NextDouble() * 1e-3f).ToArray(), null)
            .Fit(data).Transform(data);
        var o = Rnade(DensityTrainingData.Streamed);
        var e = Assert.Throws<DataValidationException>(() => ml.DensityEstimation.Rnade(o).Fit(noisy));
        Assert.Equal("Features", e.DataSource);
        Assert.Contains("a pass over the data read other values than the first pass", e.Message);
        Assert.Contains("TrainingData = InMemory", e.Message);
        Assert.EndsWith("in the training data.", e.Message);
        foreach (var shuffled in new[] { ml.Data.ShuffleRows(data), ml.Data.ShuffleRows(data, shufflePoolSize: 50, shuffleSource: true) })
            Assert.Equal(ml.DensityEstimation.Rnade(o).Fit(shuffled).Model.ToBytes(), ml.DensityEstimation.Rnade(o).Fit(shuffled).Model.ToBytes());
    }

    /// <summary>The rows of <see cref="Generated"/>, counting the passes (enumerations); from pass
    /// <see cref="ChangeFrom"/> on (1-based) row 7 has another first value.</summary>
    private sealed class CountedPasses(int n) : IEnumerable<Row>
    {
        public int Passes;
        public int ChangeFrom = int.MaxValue;
        public IEnumerator<Row> GetEnumerator()
        {
            bool changed = ++Passes >= ChangeFrom;
            return Generated(n, 1, (i, r) => { if (changed && i == 7) r.Features[0] += 1; return r; }).GetEnumerator();
        }
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>
    /// The threshold's scoring pass, the last pass of a streamed Fit, is compared with the first like the Fit's own:
    /// a view that changed only in that pass was read unchecked and the PredictedLabel threshold was learned from other
    /// rows than the model's. Now refused with the same exception and words as a pass of the Fit.
    /// </summary>
    [Fact]
    public void AViewThatChangesOnlyInTheThresholdPassIsRefused()
    {
        var ml = new MLContext(1);
        var fits = new Func<IDataView, ITransformer>[]
        {
            view => ml.DensityEstimation.Rnade(Rnade(DensityTrainingData.Streamed)).Fit(view),
            view => ml.DensityEstimation.Rbm(new RbmEstimator.Options { TrainingData = DensityTrainingData.Streamed,
                ModelOptions = new RbmOptions { HiddenUnits = 3, VisibleType = RbmVisibleType.Gaussian, MaxEpochs = 2 } }).Fit(view),
        };
        foreach (var fit in fits)
        {
            var same = new CountedPasses(300);
            fit(ml.Data.LoadFromEnumerable(same));
            var changing = new CountedPasses(300) { ChangeFrom = same.Passes };  // the last pass: the threshold's
            var e = Assert.Throws<DataValidationException>(() => fit(ml.Data.LoadFromEnumerable(changing)));
            Assert.Equal(same.Passes, changing.Passes);
            Assert.Equal("Features", e.DataSource);
            Assert.Contains("a pass over the data read other values than the first pass", e.Message);
            Assert.Contains("TrainingData = InMemory", e.Message);
            Assert.EndsWith("in the training data.", e.Message);
        }
    }

    public sealed class WideRow
    {
        public float[] Features { get; set; } = Array.Empty<float>();
    }

    /// <summary>
    /// The threshold's scoring pass reads blocks of at most 2^20 floats, as every other pass (docs/scaling.md): it read
    /// 16,384 rows whatever their width, 16,384 × 784 floats (51 MB) for Fashion-MNIST's rows, and at 2^17 columns —
    /// within what an RBM's file holds — 16,384 × 2^17 overflowed an int and the Fit failed with an OverflowException
    /// after training.
    /// </summary>
    [Fact]
    public void TheThresholdPassOfWideRowsReadsBoundedBlocks()
    {
        const int width = 1 << 17;
        var ml = new MLContext(1);
        IEnumerable<WideRow> Rows()
        {
            for (int i = 0; i < 3; i++)
                yield return new WideRow { Features = Enumerable.Range(0, width).Select(j => (float)((i + j) % 2)).ToArray() };
        }
        var def = SchemaDefinition.Create(typeof(WideRow));
        def["Features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, width);
        var view = ml.Data.LoadFromEnumerable(Rows(), def);
        var fitted = ml.DensityEstimation.Rbm(new RbmEstimator.Options
        {
            TrainingData = DensityTrainingData.Streamed,
            ModelOptions = new RbmOptions { HiddenUnits = 1, MaxEpochs = 1, ValidationFraction = 0 },
        }).Fit(view);
        Assert.True(float.IsFinite(fitted.Threshold));
    }

    [Fact]
    public void AFamilyThatCannotStreamSaysSo()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(Generated(50, 1));
        var bits = ml.Data.LoadFromEnumerable(Generated(50, 1, (i, r) => new Row { Features = r.Features.Select(v => v > 0.7f ? 1f : 0f).ToArray() }));
        var e = Assert.Throws<NotSupportedException>(() => ml.DensityEstimation.Nvil(new NvilEstimator.Options
        {
            TrainingData = DensityTrainingData.Streamed, ModelOptions = new NvilOptions { MaxEpochs = 1 },
        }).Fit(bits));
        Assert.Contains("TrainingData", e.Message);
        // Said when the estimator is created, like the other settings, not after the upstream stages were fitted.
        var refused = Assert.Throws<NotSupportedException>(() => ml.DensityEstimation.Nvil(
            new NvilEstimator.Options { TrainingData = DensityTrainingData.Streamed })).Message;
        Assert.Contains("Nvil cannot train from a stream", refused);
        // The families it lists are the ones that stream (docs/mlnet.md): Deep RNADE streams too, and was left out.
        Assert.Contains("(streamed training covers RNADE, Deep RNADE, RBM, Deep GMM and IWAE)", refused);
        Assert.NotNull(ml.DensityEstimation.DeepRnade(new DeepRnadeEstimator.Options
        {
            TrainingData = DensityTrainingData.Streamed, ModelOptions = new DeepRnadeOptions { HiddenUnits = 3, MaxEpochs = 1 },
        }).Fit(data));
    }

    [Fact]
    public void CancellationStopsAStreamedFit()
    {
        var ml = new MLContext(1);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var o = Rnade(DensityTrainingData.Streamed);
        o.CancellationToken = cts.Token;
        Assert.ThrowsAny<OperationCanceledException>(() => ml.DensityEstimation.Rnade(o).Fit(ml.Data.LoadFromEnumerable(Generated(200, 1))));
    }
}
