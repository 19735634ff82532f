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
}
