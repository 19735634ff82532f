using Microsoft.ML.DeepDensity.Data;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>
/// Issue 18: scoring allocates nothing per row in steady state. After a warm-up (scratch created, code compiled), scoring
/// one row per call allocates nothing at all, and scoring N rows in one call allocates at most a per-call constant (the
/// parallel loop's closure), the same for 512 and for 8,192 rows — so a long scoring run makes no garbage.
/// Every model case, row and sequence models (<see cref="SequenceModelCases"/>), inherits it.
/// </summary>
/// <remarks>In the serial collection: <see cref="GC.GetTotalAllocatedBytes"/> counts every thread of the process (the
/// scoring workers' too), so no other test may run meanwhile.</remarks>
[Collection(EngineSettingsCollection.Name)]
public class ScoringAllocationChecks
{
    /// <summary>What one call may allocate whatever its row count (closures, the worker team's bookkeeping).</summary>
    private const long PerCall = 4096;

    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void ScoringOneRowPerCallAllocatesNothingOnceWarm(string name)
    {
        var f = ModelCases.Fitted(name);
        var model = f.Model;
        var output = new float[1];
        var se = new float[1];
        void ScoreRows(int count)
        {
            for (int i = 0; i < count; i++)
            {
                var row = f.Data.Row(i % f.Data.Rows);
                model.LogDensity(row, output, se);
                model.LogDensity(row, output);
            }
        }
        ScoreRows(200); // warm-up: scratch, JIT tiers
        // This thread's allocations only: a one-row call runs on the caller's thread, and the runtime's background
        // tier-up compilation (which allocates) must not count. The least of three windows: a per-row allocation shows
        // in every window, while a one-off of the runtime's own on this thread (a late tier transition or type load; one
        // full-suite run in many saw 6.5 KB once) does not make the model allocate per row.
        long allocated = long.MaxValue;
        for (int window = 0; window < 3; window++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            ScoreRows(500);
            allocated = Math.Min(allocated, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.True(allocated <= PerCall, $"{name}: 1,000 one-row calls allocated {allocated:N0} bytes ({allocated / 1000.0:F1} per row)");
    }

    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void ScoringManyRowsAllocatesAPerCallConstantNotPerRow(string name)
    {
        var f = ModelCases.Fitted(name);
        var model = f.Model;
        var rows = Tile(f.Data, 8192);
        var output = new float[rows.Rows];
        var se = new float[rows.Rows];
        void Score(int count) => model.LogDensity(rows.Values.AsSpan(0, count * rows.Columns), output, se);
        for (int i = 0; i < 3; i++) { Score(rows.Rows); Score(512); } // warm-up
        long small = Allocated(() => Score(512));
        long large = Allocated(() => Score(8192));
        Assert.True(large <= small + PerCall && small <= 16 * PerCall,
            $"{name}: scoring 512 rows allocated {small:N0} bytes, 8,192 rows {large:N0} ({(large - small) / 7680.0:F1} more per row)");
    }

    [Theory, MemberData(nameof(SequenceModelCases.Names), MemberType = typeof(SequenceModelCases))]
    public void SequenceScoringAllocatesAPerCallConstantNotPerSequence(string name)
    {
        var c = SequenceModelCases.Get(name);
        var data = c.MakeData(2048, 12345);
        var model = c.Fit(new SequenceFitRequest(c.MakeData(100, 1), 1) { Epochs = 1 });
        var output = new float[data.Count];
        var small = data.Select(Enumerable.Range(0, 128).ToArray());
        for (int i = 0; i < 3; i++) { model.LogDensity(data, output); model.LogDensity(small, output); }
        long a = Allocated(() => model.LogDensity(small, output));
        long b = Allocated(() => model.LogDensity(data, output));
        Assert.True(b <= a + PerCall && a <= 16 * PerCall,
            $"{name}: scoring 128 sequences allocated {a:N0} bytes, 2,048 sequences {b:N0}");
    }

    private static RowMatrix Tile(RowMatrix data, int rows)
    {
        var m = new RowMatrix(rows, data.Columns);
        for (int r = 0; r < rows; r++) data.Row(r % data.Rows).CopyTo(m.Row(r));
        return m;
    }

    /// <summary>Bytes allocated by every thread while <paramref name="action"/> runs (the scoring workers' too), the least
    /// of three runs: what the runtime allocates on its own meanwhile (tier-up compilation) is not the model's.</summary>
    private static long Allocated(Action action)
    {
        long least = long.MaxValue;
        for (int i = 0; i < 3; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            long before = GC.GetTotalAllocatedBytes(precise: true);
            action();
            least = Math.Min(least, GC.GetTotalAllocatedBytes(precise: true) - before);
        }
        return least;
    }
}
