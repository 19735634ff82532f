using Microsoft.ML.DeepDensity.Tests.Conformance;

namespace Microsoft.ML.DeepDensity.Tests.RnnRnade;

/// <summary>
/// RNN-RNADE drew every new frame into an array the size of the whole draw, then copied it into the result: a draw cost
/// twice its size, like the RBM's sampler did. Drawn from scratch it now writes straight into the result; continuing
/// prefixes, through a buffer of one block of sequences. The same bits (BitIdentityTests unchanged).
/// </summary>
[Collection(EngineSettingsCollection.Name)] // one engine thread, so that every allocation is the calling thread's
public class RnnRnadeSamplingMemoryTests
{
    [Fact]
    public void ADrawAllocatesLittleMoreThanItsResult()
    {
        var model = SequenceModelCases.Get("RnnRnade").FitStandard();
        int count = 2000, length = 500;
        long draw = (long)count * length * model.FrameSize * sizeof(float);
        var prefixes = SequenceConformanceData.Real(count, 3);
        long prefixBytes = (long)prefixes.TotalFrames * model.FrameSize * sizeof(float);
        DeepDensityEnvironment.MaxDegreeOfParallelism = 1;
        try
        {
            model.Sample(2, 3, 1); // warm-up (JIT)
            long before = GC.GetAllocatedBytesForCurrentThread();
            model.Sample(count, length, 1);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < draw * 5 / 4, $"a draw of {draw:N0} bytes allocated {allocated:N0} bytes");

            before = GC.GetAllocatedBytesForCurrentThread();
            model.Sample(prefixes, length, 1);
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            // The result holds the prefixes too; scoring them for their last states costs about as much again.
            Assert.True(allocated < draw * 5 / 4 + 4 * prefixBytes, $"continuing prefixes by {draw:N0} bytes allocated {allocated:N0} bytes");
        }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = -1; }
    }
}
