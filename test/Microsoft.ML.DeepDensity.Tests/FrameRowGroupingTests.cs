using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// The frame-row estimator's grouping of the rows it reads (by sequence id in order of first appearance, sorted by the
/// order column within a sequence). It used to copy every frame from the read buffer into a second, grouped array, so
/// the frames stood in memory twice (three times with the buffer's regrowth); it now groups them in place in the read
/// buffer, sized from the view's row count when the view knows it: the same sequences, in one copy.
/// </summary>
public class FrameRowGroupingTests
{
    public sealed class NarrowFrame { [VectorType(3)] public float[] Features = new float[3]; public string SequenceId = ""; public double Order; }
    public sealed class WideFrame { [VectorType(WideFrameSize)] public float[] Features = new float[WideFrameSize]; public string SequenceId = ""; public double Order; }

    private const int WideFrameSize = 256;

    /// <summary>Rows of 40 sequences of 1 to 30 frames, shuffled (so sequences interleave and each arrives out of order),
    /// with orders that are neither row numbers nor evenly spaced: read as the grouping rule says, frame for frame.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void FrameRowsAreGroupedByIdInOrderOfFirstAppearanceAndSortedByOrder(bool viewKnowsItsRowCount)
    {
        var ml = new MLContext(seed: 1);
        var rng = new RandomStream(3);
        var rows = new List<NarrowFrame>();
        for (int s = 0; s < 40; s++)
        {
            int length = 1 + rng.NextInt(30);
            double order = rng.NextGaussian();
            for (int t = 0; t < length; t++)
            {
                var frame = new NarrowFrame { SequenceId = $"s{s}", Order = order += 0.5 + rng.NextDouble() };
                rng.FillGaussian(frame.Features);
                rows.Add(frame);
            }
        }
        for (int i = rows.Count - 1; i > 0; i--) { int j = rng.NextInt(i + 1); (rows[i], rows[j]) = (rows[j], rows[i]); }
        var view = viewKnowsItsRowCount ? ml.Data.LoadFromEnumerable(rows) : ml.Data.LoadFromEnumerable(Stream(rows));
        Assert.Equal(viewKnowsItsRowCount, view.GetRowCount() is not null);

        var batch = Estimator(ml).ReadFrameRows(view);

        var expected = rows.GroupBy(r => r.SequenceId).Select(g => g.OrderBy(r => r.Order).ToList()).ToList(); // GroupBy keeps first appearance
        Assert.Equal(expected.Count, batch.Count);
        for (int i = 0; i < expected.Count; i++)
            Assert.Equal(expected[i].SelectMany(r => r.Features).ToArray(), batch.Sequence(i).ToArray());
    }

    /// <summary>4,096 frames of 256 values (4 MiB) from a view that knows its row count: the read allocates about the
    /// frames once. It allocated them about three times: a read buffer regrown by doubling from 64 Ki values (about
    /// twice the frames in all) and then the grouped copy.</summary>
    [Fact]
    public void ReadingFrameRowsOfAKnownCountHoldsTheFramesOnce()
    {
        var ml = new MLContext(seed: 1);
        const int count = 4096;
        var rows = WideRows(count);
        var view = ml.Data.LoadFromEnumerable(rows);
        Assert.Equal(count, view.GetRowCount());
        var estimator = Estimator(ml);
        estimator.ReadFrameRows(ml.Data.LoadFromEnumerable(WideRows(8))); // warm-up (JIT, ML.NET's first use)

        long before = GC.GetAllocatedBytesForCurrentThread();
        var batch = estimator.ReadFrameRows(view);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        long frames = (long)count * WideFrameSize * sizeof(float);
        Assert.True(allocated < frames * 3 / 2, $"reading {frames:N0} bytes of frames allocated {allocated:N0} bytes");
        Assert.Equal(count / 4, batch.Count);
        Assert.Equal(count, batch.TotalFrames);
    }

    /// <summary>Rows whose count the view does not say: the read buffer still grows by doubling (about twice the frames
    /// allocated in all), but the grouping adds no copy (it added a third).</summary>
    [Fact]
    public void GroupingFrameRowsOfAnUnknownCountAddsNoCopy()
    {
        var ml = new MLContext(seed: 1);
        const int count = 4096;
        var rows = WideRows(count);
        var view = ml.Data.LoadFromEnumerable(Stream(rows));
        Assert.Null(view.GetRowCount());
        var estimator = Estimator(ml);
        estimator.ReadFrameRows(ml.Data.LoadFromEnumerable(Stream(WideRows(8)))); // warm-up

        long before = GC.GetAllocatedBytesForCurrentThread();
        var batch = estimator.ReadFrameRows(view);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        long frames = (long)count * WideFrameSize * sizeof(float);
        Assert.True(allocated < frames * 5 / 2, $"reading {frames:N0} bytes of frames allocated {allocated:N0} bytes");
        Assert.Equal(count, batch.TotalFrames);
    }

    private static RnnRnadeFrameEstimator Estimator(MLContext ml)
        => ml.DensityEstimation.RnnRnade(new RnnRnadeFrameEstimator.Options { ModelOptions = new RnnRnadeOptions() });

    /// <summary>Four sequences a block of four rows, the frames of a block in reverse order.</summary>
    private static List<WideFrame> WideRows(int count)
    {
        var rng = new RandomStream(5);
        var rows = new List<WideFrame>(count);
        for (int r = 0; r < count; r++)
        {
            var frame = new WideFrame { SequenceId = $"s{r / 4}", Order = 3 - r % 4 };
            rng.FillGaussian(frame.Features);
            rows.Add(frame);
        }
        return rows;
    }

    /// <summary>The rows as a stream: a view of it cannot count them.</summary>
    private static IEnumerable<T> Stream<T>(IEnumerable<T> rows)
    {
        foreach (var row in rows) yield return row;
    }
}
