using static Microsoft.ML.DeepDensity.Tests.Conformance.ConformanceAssert;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>
/// A part of a draw (<c>DensityModel.OpenSampleReader</c> / <c>SampleRange</c>, which the ML.NET layer's lazy
/// <c>GenerateSamples</c> view reads a block at a time) is the whole draw's rows, bit for bit, for every model: parts
/// that cut the model's sampling blocks (Deep GMM keys its streams by block, the others by row), parts read in order and
/// backwards on one reader (the RBM's reader keeps its Gibbs chains and must start them again), draws that are no
/// multiple of a block, of 0 and 1 rows, on 1 and 2 threads; and a part of a huge draw costs the part, not the draw.
/// </summary>
[Collection(EngineSettingsCollection.Name)]
public class SampleRangeChecks
{
    private const ulong Seed = 21;
    private static readonly int[] Counts = { 0, 1, 7, 1100 };
    private static readonly int[] PartSizes = { 1, 7, 100, 256, 1024 };

    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void PartsOfADrawAreItsRows(string name)
    {
        var model = ModelCases.Fitted(name).Model;
        int d = model.Dimension;
        try
        {
            foreach (int threads in new[] { 1, 2 })
            {
                DeepDensityEnvironment.MaxDegreeOfParallelism = threads;
                foreach (int count in Counts)
                {
                    var whole = model.Sample(count, Seed).Values;
                    foreach (int part in PartSizes)
                    {
                        var reader = model.OpenSampleReader(count, Seed);
                        var read = new float[count * d];
                        for (int start = 0; start < count; start += part) Read(reader, start, Math.Min(part, count - start), read, d);
                        BitIdentical(whole, read, $"{name}, {threads} thread(s): a draw of {count} read in parts of {part}");
                        if (part < 100) continue; // backwards in small parts: the RBM's chains start again for every part
                        Array.Clear(read);
                        for (int start = (count - 1) / part * part; count > 0 && start >= 0; start -= part) Read(reader, start, Math.Min(part, count - start), read, d);
                        BitIdentical(whole, read, $"{name}, {threads} thread(s): a draw of {count} read backwards in parts of {part} on one reader");
                    }
                    foreach (var (start, n) in new[] { (0, count), (count / 3, count - count / 3), (count / 2, Math.Min(1, count - count / 2)), (count, 0) })
                    {
                        var range = new float[n * d];
                        model.SampleRange(count, start, n, Seed, range);
                        BitIdentical(whole.AsSpan(start * d, n * d), range, $"{name}, {threads} thread(s): rows [{start}, {start + n}) of a draw of {count}");
                    }
                }
            }
        }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = -1; }
    }

    private static void Read(DensityModel.SampleReader reader, int start, int n, float[] into, int d)
        => reader.Read(start, n, into.AsSpan(start * d, n * d));

    /// <summary>The first rows of a draw of int.MaxValue rows (which no array holds) are read at once, allocating a few
    /// kilobytes besides the model's block scratch, and are the first rows of a smaller draw; rows at the end of such a draw
    /// are drawn at once too by the models without chains.</summary>
    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void APartOfAHugeDrawCostsThePart(string name)
    {
        var model = ModelCases.Fitted(name).Model;
        int d = model.Dimension;
        var small = model.Sample(300, Seed).Values;
        var rows = new float[300 * d];
        try
        {
            DeepDensityEnvironment.MaxDegreeOfParallelism = 1; // every allocation on this thread
            var reader = model.OpenSampleReader(int.MaxValue, Seed);
            reader.Read(0, 300, rows); // warm: the model's scratch, the chains, JIT
            long before = GC.GetAllocatedBytesForCurrentThread();
            reader = model.OpenSampleReader(int.MaxValue, Seed);
            reader.Read(0, 300, rows);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            BitIdentical(small, rows, $"{name}: the first 300 rows of a draw of int.MaxValue");
            Assert.True(allocated < (1 << 20) + 64L * 300 * d, $"{name}: reading 300 rows of a draw of int.MaxValue allocated {allocated:N0} bytes");
            // The RBM's chains would run to the end of the draw; the test-only reference model keeps the engine's default
            // range draw, which draws the prefix (no array holds it).
            if (model is Models.Rbm.RbmModel or ReferenceBernoulliModel) return;
            var last = new float[3 * d];
            model.SampleRange(int.MaxValue, int.MaxValue - 3, 3, Seed, last);
            AllFinite(last, $"{name}: the last rows of a draw of int.MaxValue");
        }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = -1; }
    }

    /// <summary>A part outside the draw, a short destination and a negative count are refused; a cancelled token stops a
    /// read, and the reader then reads the same rows.</summary>
    [Fact]
    public void ArgumentsAreCheckedAndACancelledReadLeavesTheReaderUsable()
    {
        foreach (var name in new[] { "Rnade", "Rbm" })
        {
            var model = ModelCases.Fitted(name).Model;
            int d = model.Dimension;
            Assert.Throws<ArgumentOutOfRangeException>(() => model.OpenSampleReader(-1, Seed));
            var reader = model.OpenSampleReader(10, Seed);
            Assert.Throws<ArgumentOutOfRangeException>(() => reader.Read(-1, 2, new float[2 * d]));
            Assert.Throws<ArgumentOutOfRangeException>(() => reader.Read(9, 2, new float[2 * d]));
            Assert.Throws<ArgumentOutOfRangeException>(() => reader.Read(0, -1, new float[2 * d]));
            Assert.Throws<ArgumentException>(() => reader.Read(0, 2, new float[2 * d - 1]));
            using var cts = new CancellationTokenSource();
            cts.Cancel();
            Assert.ThrowsAny<OperationCanceledException>(() => reader.Read(0, 10, new float[10 * d], cts.Token));
            var rows = new float[10 * d];
            reader.Read(0, 10, rows);
            BitIdentical(model.Sample(10, Seed).Values, rows, $"{name}: a reader after a cancelled read");
        }
    }
}
