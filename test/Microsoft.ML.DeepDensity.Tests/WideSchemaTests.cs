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

    /// <summary>A wide column a model can train on, with a few rows whose count the view does not know (a generator,
    /// a text file): the in-memory Fit started with a buffer of 1,024 rows, 400 MB for ten rows of 100,000 values, and for
    /// 2,200,000 values (an RBM of one hidden unit: 4.4 million parameters) threw an unexplained OverflowException
    /// before a row was read. It now buffers 4 MiB to start and grows with the rows.</summary>
    [Fact]
    public void AWideColumnWithFewRowsOfUnknownCountTrainsInMemory()
    {
        const int width = 2_200_000;
        var ml = new MLContext(seed: 1);
        var def = SchemaDefinition.Create(typeof(Row));
        def["Features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, width);
        static IEnumerable<Row> Rows()
        {
            var r = new Random(1);
            for (int i = 0; i < 3; i++) yield return new Row { Features = Enumerable.Range(0, width).Select(_ => (float)r.NextDouble()).ToArray() };
        }
        var view = ml.Data.LoadFromEnumerable(Rows(), def);
        Assert.Null(view.GetRowCount());
        var model = ml.DensityEstimation.Rbm(new RbmEstimator.Options
        {
            ModelOptions = new Models.Rbm.RbmOptions { HiddenUnits = 1, VisibleType = Models.Rbm.RbmVisibleType.Gaussian, MaxEpochs = 1, SamplingChains = 1 },
        }).Fit(view);
        Assert.Equal(width, model.Model.Dimension);
        Assert.Equal(3, model.Transform(view).GetColumn<float>("LogDensity").Count(float.IsFinite));
    }

    /// <summary>The buffer's rows: the known count when one array holds it; otherwise 1,024 rows or 4 MiB, whichever is
    /// less; doubling stops at what one array holds, and a full buffer there is an error naming the column and what to
    /// do (it was an OverflowException from the doubling, at half the rows an array holds).</summary>
    [Fact]
    public void TheInMemoryBufferGrowsWithinWhatAnArrayHolds()
    {
        Assert.Equal(10, TrainingRowBuffer.InitialRows(10, 2_200_000));
        Assert.Equal(1, TrainingRowBuffer.InitialRows(null, 2_200_000));
        Assert.Equal(10, TrainingRowBuffer.InitialRows(null, 100_000));
        Assert.Equal(1024, TrainingRowBuffer.InitialRows(null, 784));
        Assert.Equal(1024, TrainingRowBuffer.InitialRows(long.MaxValue, 784));
        int max = Array.MaxLength / 784;
        Assert.Equal(max, TrainingRowBuffer.GrownRows(max / 2 + 1, 784, "Features", canStream: true));
        var e = Assert.Throws<DataValidationException>(() => TrainingRowBuffer.GrownRows(max, 784, "Features", canStream: true));
        Assert.Equal("Features", e.DataSource);
        Assert.Contains($"more than {max} rows of 784 values", e.Message);
        Assert.Contains("TrainingData = DensityTrainingData.Streamed", e.Message);
        Assert.Contains("in memory only", Assert.Throws<DataValidationException>(() => TrainingRowBuffer.GrownRows(max, 784, "Features", canStream: false)).Message);
    }

    /// <summary>Scoring wide rows: the live transformer's block held 2,048 rows whatever their width when the view does
    /// not know its row count, 820 MB per cursor for 100,000 values, and at 1,100,000 values its size overflowed
    /// (OverflowException from Transform's cursor). A block now holds at most 2^24 feature values; the scores are the
    /// engine's.</summary>
    [Theory]
    [InlineData(100_000)]
    [InlineData(1_100_000)]
    public void WideRowsScoreInBlocksOfBoundedSize(int width)
    {
        var ml = new MLContext(seed: 1);
        var def = SchemaDefinition.Create(typeof(Row));
        def["Features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, width);
        var rows = new List<float[]>();
        var r = new Random(2);
        for (int i = 0; i < 3; i++) rows.Add(Enumerable.Range(0, width).Select(_ => (float)r.NextDouble()).ToArray());
        IEnumerable<Row> Rows() { foreach (var row in rows) yield return new Row { Features = row }; }
        var view = ml.Data.LoadFromEnumerable(Rows(), def);
        Assert.Null(view.GetRowCount());
        var model = ml.DensityEstimation.Rbm(new RbmEstimator.Options
        {
            ModelOptions = new Models.Rbm.RbmOptions { HiddenUnits = 1, VisibleType = Models.Rbm.RbmVisibleType.Gaussian, MaxEpochs = 1, SamplingChains = 1 },
        }).Fit(view);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var scored = model.Transform(view).GetColumn<float>("LogDensity").ToArray();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(model.Model.LogDensity(RowMatrix.FromRows(rows)), scored);
        Assert.True(allocated < 4L * ((1 << 24) + 4 * width), $"scoring 3 rows of {width} values allocated {allocated:N0} bytes");
    }

    public sealed class ImageRow
    {
        [VectorType(4)] public float[] Features { get; set; } = new float[4];
        [VectorType(150_000)] public float[] Pixels { get; set; } = Array.Empty<float>();
    }

    public sealed class ImageScore
    {
        public float LogDensity { get; set; }
        [VectorType(150_000)] public float[] Pixels { get; set; } = Array.Empty<float>();
    }

    /// <summary>A wide pass-through column beside narrow features (an image next to the features computed from it): the
    /// block read ahead held 2,048 copies of it, 1.2 GB for 150,000 values. The block's bound counts the known-size vector
    /// columns it carries; every row still gets its own pass-through values and the engine's scores.</summary>
    [Fact]
    public void AWidePassThroughColumnIsHeldForABoundedBlock()
    {
        var ml = new MLContext(seed: 1);
        static IEnumerable<ImageRow> Rows(int n)
        {
            var r = new Random(3);
            var pixels = new float[150_000];   // one array, so that the source allocates nothing per row
            for (int i = 0; i < n; i++)
            {
                if (i > 0) pixels[(i - 1) % pixels.Length] = 0;
                pixels[i % pixels.Length] = i;
                yield return new ImageRow { Features = new[] { (float)r.NextDouble(), (float)r.NextDouble(), (float)r.NextDouble(), (float)r.NextDouble() }, Pixels = pixels };
            }
        }
        var model = ml.DensityEstimation.Rnade(hiddenUnits: 4, components: 2, maxEpochs: 2).Fit(ml.Data.LoadFromEnumerable(Rows(300)));
        var view = ml.Data.LoadFromEnumerable(Rows(3000));
        var expected = model.Model.LogDensity(RowMatrix.FromRows(Rows(3000).Select(r => r.Features).ToList()));
        long before = GC.GetAllocatedBytesForCurrentThread();
        int n = 0;
        foreach (var row in ml.Data.CreateEnumerable<ImageScore>(model.Transform(view), reuseRowObject: true))
        {
            Assert.Equal(expected[n], row.LogDensity);
            Assert.Equal(n, row.Pixels[n % row.Pixels.Length]);
            n++;
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(3000, n);
        Assert.True(allocated < 300_000_000, $"scoring beside a 150,000-value pass-through column allocated {allocated:N0} bytes");
    }
}
