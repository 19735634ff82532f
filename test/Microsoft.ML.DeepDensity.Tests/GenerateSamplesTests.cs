using System.Collections.Concurrent;
using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// <c>GenerateSamples</c> is a lazy view of the engine's draw: its rows are <c>Model.Sample(count, seed)</c> bit for bit for
/// every family (the RBM's Gibbs chains and Deep GMM's block-keyed streams included), cursors are independent and draw
/// nothing until a value is asked for, the view follows the ML.NET cursor contract, can be cancelled, and feeds a pipeline.
/// The memory bounds (a view of int.MaxValue rows) are in <see cref="GenerateSamplesMemoryTests"/>.
/// </summary>
public class GenerateSamplesTests
{
    public static TheoryData<string> Families() => new(ModelFamilyTests.Families.Keys.Concat(BinaryModelFamilyTests.Families.Keys));

    private static readonly ConcurrentDictionary<string, Lazy<DensityTransformer>> Cache = new();

    /// <summary>The family's transformer fitted once on 200 rows (transformers are immutable).</summary>
    internal static DensityTransformer Fitted(string family) => Cache.GetOrAdd(family, f => new Lazy<DensityTransformer>(() =>
    {
        var ml = new MLContext(seed: 1);
        return (DensityTransformer)(ModelFamilyTests.Families.TryGetValue(f, out var real)
            ? real(ml, null).Fit(ml.Data.LoadFromEnumerable(TestData.Blob(200, seed: 2)))
            : BinaryModelFamilyTests.Families[f](ml, null).Fit(ml.Data.LoadFromEnumerable(BinaryModelFamilyTests.Bits(200, seed: 2))));
    })).Value;

    internal static float[] ReadAll(IDataView view, string column = "Features")
    {
        var col = view.Schema[column];
        using var cursor = view.GetRowCursor(new[] { col });
        var getter = cursor.GetGetter<VBuffer<float>>(col);
        var values = new List<float>();
        VBuffer<float> v = default;
        while (cursor.MoveNext())
        {
            getter(ref v);
            values.AddRange(v.DenseValues());
        }
        return values.ToArray();
    }

    internal static void Bits(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length} values, expected {expected.Length}");
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                Assert.Fail($"{what}: value {i} is {actual[i]:R}, expected {expected[i]:R}");
    }

    /// <summary>Counts of 0, 1 and 2,500 (no multiple of a cursor's block of 1,024 rows or of any model's sampling block):
    /// the view's schema, row count and rows are the engine's draw, through the transformer and through the extension on a
    /// chain; and the rows are scored by the transformer that drew them (the view round-trips through its pipeline).</summary>
    [Theory, MemberData(nameof(Families))]
    public void TheViewIsTheEnginesDrawBitForBit(string family)
    {
        var t = Fitted(family);
        var ml = new MLContext(seed: 3);
        int d = t.Model.Dimension;
        foreach (int count in new[] { 0, 1, 2500 })
        {
            var view = t.GenerateSamples(ml, count, 5);
            Assert.Equal(count, view.GetRowCount());
            Assert.False(view.CanShuffle);
            Assert.Single(view.Schema);
            Assert.Equal(new VectorDataViewType(NumberDataViewType.Single, d), view.Schema["Features"].Type);
            var expected = t.Model.Sample(count, 5).Values;
            Bits(expected, ReadAll(view), $"{family}: GenerateSamples({count}, 5)");
            Bits(expected, ReadAll(new TransformerChain<ITransformer>(t).GenerateSamples(ml, count, 5)), $"{family}: the extension, {count} rows");
            var logDensity = t.Transform(view).GetColumn<float>("LogDensity").ToArray();
            Bits(t.Model.LogDensity(new Data.RowMatrix(expected, count, d)), logDensity, $"{family}: LogDensity of the {count} generated rows");
        }
    }

    [Fact]
    public void TheSameSeedGivesTheSameRowsAndAnotherSeedOthers()
    {
        var t = Fitted("Rnade");
        var ml = new MLContext();
        var a = ReadAll(t.GenerateSamples(ml, 300, 7));
        Bits(a, ReadAll(t.GenerateSamples(ml, 300, 7)), "two views of seed 7");
        Bits(a, ReadAll(t.GenerateSamples(new MLContext(seed: 9), 300, 7)), "seed 7 in another context");
        Assert.NotEqual(a, ReadAll(t.GenerateSamples(ml, 300, 8)));
        // A smaller draw is a prefix of a larger one (row i depends only on seed and i).
        Bits(a.AsSpan(0, 100 * t.Model.Dimension), ReadAll(t.GenerateSamples(ml, 100, 7)), "100 rows vs the first 100 of 300");
    }

    /// <summary>Two cursors of one view, moved and read in different patterns at once (one reads every row, one jumps a
    /// block and reads every third row, one only moves), each give the draw's rows and ids; the RBM's cursors each keep their
    /// own Gibbs chains, Deep GMM's their own block-keyed streams.</summary>
    [Theory]
    [InlineData("RbmBernoulli")]
    [InlineData("Rnade")]
    [InlineData("DeepGmm")]
    public void InterleavedCursorsAreIndependent(string family)
    {
        var t = Fitted(family);
        int d = t.Model.Dimension, count = 3000;
        var expected = t.Model.Sample(count, 11).Values;
        var view = t.GenerateSamples(new MLContext(), count, 11);
        var col = view.Schema[0];
        using var a = view.GetRowCursor(new[] { col });
        using var b = view.GetRowCursor(new[] { col });
        using var moving = view.GetRowCursor(new[] { col });
        var getA = a.GetGetter<VBuffer<float>>(col);
        var getB = b.GetGetter<VBuffer<float>>(col);
        var idA = a.GetIdGetter();
        var idB = b.GetIdGetter();
        VBuffer<float> va = default, vb = default;
        DataViewRowId id = default;
        var ids = new HashSet<DataViewRowId>();
        for (int i = 0; i < 1100; i++) Assert.True(b.MoveNext()); // b starts a block and some ahead
        for (int i = 0; i < count; i++)
        {
            Assert.True(a.MoveNext());
            Assert.Equal(i, a.Position);
            getA(ref va);
            Bits(expected.AsSpan(i * d, d), va.DenseValues().ToArray(), $"{family}: cursor a, row {i}");
            idA(ref id);
            Assert.True(ids.Add(id), $"{family}: row {i} has the id of another row");
            Assert.True(moving.MoveNext());
            if (b.MoveNext() && b.Position % 3 == 0)
            {
                getB(ref vb);
                Bits(expected.AsSpan((int)b.Position * d, d), vb.DenseValues().ToArray(), $"{family}: cursor b, row {b.Position}");
                idB(ref id);
                Assert.Equal(new DataViewRowId((ulong)b.Position, 0), id);
            }
        }
        Assert.False(a.MoveNext());
        Assert.Equal(-1, a.Position);
        Assert.False(moving.MoveNext());
        Assert.False(b.MoveNext());
    }

    /// <summary>The ML.NET cursor contract: a getter of an inactive column, of another schema's column or of the wrong type
    /// throws; a getter or id getter before the first row throws; IsColumnActive answers; a cursor set gives every row once.</summary>
    [Fact]
    public void CursorsFollowTheMlNetContract()
    {
        var t = Fitted("Rnade");
        var ml = new MLContext();
        var view = t.GenerateSamples(ml, 50, 1);
        var col = view.Schema[0];
        using (var none = view.GetRowCursor(Array.Empty<DataViewSchema.Column>()))
        {
            Assert.False(none.IsColumnActive(col));
            Assert.Throws<InvalidOperationException>(() => none.GetGetter<VBuffer<float>>(col));
            int rows = 0;
            while (none.MoveNext()) rows++;
            Assert.Equal(50, rows);
        }
        using var cursor = view.GetRowCursor(new[] { col });
        Assert.True(cursor.IsColumnActive(col));
        Assert.Equal(-1, cursor.Position);
        Assert.Throws<InvalidOperationException>(() => cursor.GetGetter<float>(col));
        Assert.Throws<InvalidOperationException>(() => cursor.GetGetter<VBuffer<double>>(col));
        var other = ml.Data.LoadFromEnumerable(TestData.Blob(3)).Schema["Label"];
        Assert.Throws<ArgumentOutOfRangeException>(() => cursor.GetGetter<VBuffer<float>>(other));
        Assert.Throws<ArgumentOutOfRangeException>(() => view.GetRowCursor(new[] { other }));
        var getter = cursor.GetGetter<VBuffer<float>>(col);
        var ids = cursor.GetIdGetter();
        VBuffer<float> v = default;
        DataViewRowId id = default;
        Assert.Throws<InvalidOperationException>(() => getter(ref v));
        Assert.Throws<InvalidOperationException>(() => ids(ref id));
        Assert.Equal(0, cursor.Batch);

        var set = view.GetRowCursorSet(new[] { col }, 4);
        var fromSet = new List<float>();
        foreach (var c in set)
            using (c)
            {
                var g = c.GetGetter<VBuffer<float>>(col);
                while (c.MoveNext()) { g(ref v); fromSet.AddRange(v.DenseValues()); }
            }
        Bits(t.Model.Sample(50, 1).Values, fromSet.ToArray(), "a cursor set");
    }

    /// <summary>A view whose token is cancelled stops its cursors: already cancelled, at the first row; cancelled while a
    /// cursor reads, at its next block; a cursor that only moves, at its next block's first row. Another view of the same
    /// draw reads on.</summary>
    [Fact]
    public void CancellingTheTokenStopsTheCursors()
    {
        var t = Fitted("RbmGaussian");
        var ml = new MLContext();
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => ReadAll(t.GenerateSamples(ml, 10, 1, cancelled.Token)));
        Assert.ThrowsAny<OperationCanceledException>(() => ReadAll(new TransformerChain<ITransformer>(t).GenerateSamples(ml, 10, 1, cancelled.Token)));

        using var cts = new CancellationTokenSource();
        var view = t.GenerateSamples(ml, 5000, 1, cts.Token);
        var col = view.Schema[0];
        using var reading = view.GetRowCursor(new[] { col });
        using var moving = view.GetRowCursor(new[] { col });
        var getter = reading.GetGetter<VBuffer<float>>(col);
        VBuffer<float> v = default;
        Assert.True(reading.MoveNext());
        getter(ref v);
        Assert.True(moving.MoveNext());
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => { while (reading.MoveNext()) getter(ref v); });
        Assert.ThrowsAny<OperationCanceledException>(() => { while (moving.MoveNext()) { } });
        Bits(t.Model.Sample(5000, 1).Values, ReadAll(t.GenerateSamples(ml, 5000, 1)), "a view without the token");
    }

    /// <summary>The view feeds ML.NET: a normalizer fitted on it and applied to it, a cache, TakeRows; a loaded pipeline
    /// draws the same rows as the live transformer.</summary>
    [Fact]
    public void TheViewFeedsAnMlNetPipeline()
    {
        var t = Fitted("IwaeGaussian");
        var ml = new MLContext(seed: 1);
        var view = t.GenerateSamples(ml, 1500, 2);
        var expected = t.Model.Sample(1500, 2).Values;
        var normalized = ml.Transforms.NormalizeMinMax("Scaled", "Features").Fit(view).Transform(view);
        Bits(expected, ReadAll(normalized, "Features"), "the Features column after a normalizer");
        Assert.All(ReadAll(normalized, "Scaled"), x => Assert.InRange(x, -1f, 1f));
        Bits(expected, ReadAll(ml.Data.Cache(view)), "a cached view");
        Bits(expected.AsSpan(0, 10 * t.Model.Dimension), ReadAll(ml.Data.TakeRows(view, 10)), "TakeRows(10)");
        using var ms = new MemoryStream();
        ml.Model.Save(t, view.Schema, ms);
        ms.Position = 0;
        var loaded = new MLContext().Model.Load(ms, out _);
        Bits(expected, ReadAll(loaded.GenerateSamples(ml, 1500, 2)), "the loaded pipeline's draw");
    }

    /// <summary>A cursor's block: 1,024 rows, fewer for wide rows (at most 2^22 values), a whole number of the model's
    /// sampling blocks and at least one.</summary>
    [Fact]
    public void BlocksHoldAtMost1024RowsOr4MiValues()
    {
        Assert.Equal(1024, GeneratedSamplesView.BlockRows(4, 256));
        Assert.Equal(1024, GeneratedSamplesView.BlockRows(784, 64));
        Assert.Equal(256, GeneratedSamplesView.BlockRows(10_000, 256));
        Assert.Equal(384, GeneratedSamplesView.BlockRows(10_000, 64));
        Assert.Equal(41, GeneratedSamplesView.BlockRows(100_000, 1));
        Assert.Equal(1, GeneratedSamplesView.BlockRows(1 << 23, 1));
        Assert.Equal(256, GeneratedSamplesView.BlockRows(1 << 23, 256));
    }
}

/// <summary>
/// The view's memory is a block, not the draw: a view of int.MaxValue rows (which no array holds: the eager view threw)
/// or of 5 million is made and its first 3,072 rows read at once, allocating what a view of 3,072 rows allocates to read
/// them (the eager view drew every row first: 80 MB of draw for 5 million rows of 4 values, and as much again of row
/// arrays). Serial, with the engine on one thread, so that every allocation is on the measuring thread.
/// </summary>
[Collection(EngineSettingsCollection.Name)]
public class GenerateSamplesMemoryTests
{
    [Theory]
    [InlineData("Rnade", int.MaxValue)]
    [InlineData("Rnade", 5_000_000)]
    [InlineData("RbmBernoulli", int.MaxValue)]
    [InlineData("DeepGmm", int.MaxValue)]
    [InlineData("IwaeGaussian", 5_000_000)]
    public void AHugeViewCostsABlock(string family, int count)
    {
        var t = GenerateSamplesTests.Fitted(family);
        var ml = new MLContext();
        int d = t.Model.Dimension, rows = 3072; // whole blocks: both views draw the same blocks
        var expected = t.Model.Sample(rows, 4).Values;
        try
        {
            DeepDensityEnvironment.MaxDegreeOfParallelism = 1;
            ReadFirst(t.GenerateSamples(ml, count, 4), 10, d); // JIT and the model's scratch
            long Allocated(int viewRows, out float[] first)
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                var view = t.GenerateSamples(ml, viewRows, 4);
                Assert.Equal(viewRows, view.GetRowCount());
                first = ReadFirst(view, rows, d);
                return GC.GetAllocatedBytesForCurrentThread() - before;
            }
            long small = Allocated(rows, out var all);
            long huge = Allocated(count, out var first);
            GenerateSamplesTests.Bits(expected, all, $"{family}: a view of {rows} rows");
            GenerateSamplesTests.Bits(expected, first, $"{family}: the first {rows} rows of a view of {count}");
            // What a view of the count allocates to read these rows is what a view of these rows allocates (the rows kept
            // by the test, a cursor's block, the engine's garbage per block or Gibbs sweep): nothing grows with the count.
            Assert.True(huge <= small + (64 << 10), $"{family}: a view of {count} rows allocated {huge:N0} bytes to read its first {rows} rows; a view of {rows} rows {small:N0}");
            Assert.True(huge < 16 << 20, $"{family}: a view of {count} rows allocated {huge:N0} bytes to read its first {rows} rows");
        }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = -1; }
    }

    /// <summary>A cursor that only moves draws nothing: 200,000 rows passed without a getter call allocate nothing of
    /// them (drawing them would allocate megabytes of block scratch), and the row it then reads is the draw's.</summary>
    [Fact]
    public void ACursorThatOnlyMovesDrawsNothing()
    {
        var t = GenerateSamplesTests.Fitted("Rnade");
        int d = t.Model.Dimension, skip = 200_000;
        var view = t.GenerateSamples(new MLContext(), 2_000_000, 6);
        var col = view.Schema[0];
        try
        {
            DeepDensityEnvironment.MaxDegreeOfParallelism = 1;
            using var cursor = view.GetRowCursor(new[] { col });
            var getter = cursor.GetGetter<VBuffer<float>>(col);
            Assert.True(cursor.MoveNext());
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < skip; i++) Assert.True(cursor.MoveNext());
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < 4096, $"moving a cursor over {skip:N0} rows allocated {allocated:N0} bytes");
            VBuffer<float> v = default;
            getter(ref v);
            GenerateSamplesTests.Bits(t.Model.Sample(skip + 1, 6).Row(skip), v.DenseValues().ToArray(), $"row {skip} after moving without reading");
        }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = -1; }
    }

    private static float[] ReadFirst(IDataView view, int rows, int d)
    {
        var col = view.Schema[0];
        using var cursor = view.GetRowCursor(new[] { col });
        var getter = cursor.GetGetter<VBuffer<float>>(col);
        var values = new float[rows * d];
        VBuffer<float> v = default;
        for (int r = 0; r < rows && cursor.MoveNext(); r++)
        {
            getter(ref v);
            v.GetValues().CopyTo(values.AsSpan(r * d, d));
        }
        return values;
    }
}
