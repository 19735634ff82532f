using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Tests.Conformance;

namespace Microsoft.ML.DeepDensity.Tests.Rbm;

/// <summary>
/// The RBM's sampler drew into a second array the size of the whole draw and copied it into the destination at the
/// end: a draw into a caller's buffer cost twice its size. It now writes each chain's draws straight into the
/// destination (the same bits: BitIdentityTests unchanged).
/// </summary>
[Collection(EngineSettingsCollection.Name)] // one engine thread, so that every allocation is the calling thread's
public class RbmSamplingMemoryTests
{
    /// <summary>A wide machine (2,000 visible units) with few sweeps per row, so that the draw dwarfs what the chains
    /// allocate as they go (their state and a few random streams per sweep): the old copy alone was the draw's size.</summary>
    [Theory]
    [InlineData(RbmVisibleType.Bernoulli)]
    [InlineData(RbmVisibleType.Gaussian)]
    public void ADrawIntoACallersBufferAllocatesFarLessThanTheDraw(RbmVisibleType type)
    {
        int d = 2000, h = 4;
        var rng = new Randomness.RandomStream(5);
        var w = new float[d * h];
        rng.FillGaussian(w, 0f, 0.05f);
        var model = RbmModel.FromParameters(type, w, new float[d], new float[h],
            new RbmOptions { VisibleType = type, SamplingBurnIn = 1, SamplingThinning = 1, SamplingChains = 8 });
        const int rows = 2000;
        var destination = new float[rows * d];
        DeepDensityEnvironment.MaxDegreeOfParallelism = 1;
        try
        {
            model.Sample(10, 1, destination); // warm-up (JIT)
            long before = GC.GetAllocatedBytesForCurrentThread();
            model.Sample(rows, 1, destination);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            long draw = (long)rows * d * sizeof(float);
            Assert.True(allocated < draw / 4, $"a draw of {draw:N0} bytes allocated {allocated:N0} bytes");
        }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = -1; }
        // The same rows as a fresh matrix, with any number of threads (BitIdentityTests pin the values themselves).
        Assert.Equal(model.Sample(rows, 1).Values, destination);
    }

    /// <summary>
    /// The lazy reader of a draw (<c>OpenSampleReader</c>, which <c>GenerateSamples</c> reads a block at a time) kept
    /// every block of chains it started, with their sweep scratch, to the end of the draw: 100,000 one-draw chains of a
    /// wide model held all their state at once. A block past its last draw is now dropped (and its arrays reused), so a
    /// draw of one draw per chain read in order allocates about a block's worth, not the chains' state; parts of 100 rows
    /// cut the blocks of 32 chains, so kept blocks are exercised too. The rows are the eager draw's.
    /// </summary>
    [Theory]
    [InlineData(RbmVisibleType.Bernoulli)]
    [InlineData(RbmVisibleType.Gaussian)]
    public void AReaderOfOneDrawPerChainHoldsABlockNotTheChains(RbmVisibleType type)
    {
        const int d = 500, chains = 4096;
        var model = WideModel(type, d, chains);
        long allocated = ReadInParts(model, chains, out var rows);
        // The old reader's chain state alone: chains × (D + 2H + max(D, H)) floats and a bias row per block.
        long chainState = (long)chains * (2 * d + 2 * Hidden) * sizeof(float);
        Assert.True(allocated < chainState / 8, $"reading {chains} one-draw chains allocated {allocated:N0} bytes (their state: {chainState:N0})");
        Assert.Equal(model.Sample(chains, 1).Values, rows);
    }

    /// <summary>With several draws per chain a reader read in order must keep every chain between its draws (a chain's
    /// draw continues its previous one, and the rows put one draw of every chain before the next), but it keeps only the
    /// chains' visible units (D floats a chain), not their sweep scratch (2H + max(D, H) more).</summary>
    [Fact]
    public void AReaderOfSeveralDrawsPerChainKeepsOnlyTheVisibleUnits()
    {
        const int d = 500, chains = 2048, count = 3 * chains;
        var model = WideModel(RbmVisibleType.Bernoulli, d, chains);
        long allocated = ReadInParts(model, count, out var rows);
        long visible = (long)chains * d * sizeof(float);
        Assert.True(allocated < visible * 5 / 4, $"reading {count} rows of {chains} chains allocated {allocated:N0} bytes (their visible units: {visible:N0})");
        Assert.Equal(model.Sample(count, 1).Values, rows);
    }

    private const int Hidden = 4;

    /// <summary>A wide machine with few hidden units and one sweep per row, so that the chains' state dwarfs the rest.</summary>
    private static RbmModel WideModel(RbmVisibleType type, int d, int chains)
    {
        var rng = new Randomness.RandomStream(5);
        var w = new float[d * Hidden];
        rng.FillGaussian(w, 0f, 0.05f);
        return RbmModel.FromParameters(type, w, new float[d], new float[Hidden],
            new RbmOptions { VisibleType = type, SamplingBurnIn = 1, SamplingThinning = 1, SamplingChains = chains });
    }

    /// <summary>Reads a draw of <paramref name="count"/> rows in order in parts of 100 rows into <paramref name="rows"/> on one
    /// engine thread, and returns the bytes the reads allocated.</summary>
    private static long ReadInParts(RbmModel model, int count, out float[] rows)
    {
        int d = model.Dimension;
        rows = new float[(long)count * d];
        DeepDensityEnvironment.MaxDegreeOfParallelism = 1;
        try
        {
            model.OpenSampleReader(200, 1).Read(0, 200, rows); // warm-up (JIT)
            var reader = model.OpenSampleReader(count, 1);
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int start = 0; start < count; start += 100)
            {
                int n = Math.Min(100, count - start);
                reader.Read(start, n, rows.AsSpan(start * d, n * d));
            }
            return GC.GetAllocatedBytesForCurrentThread() - before;
        }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = -1; }
    }
}
