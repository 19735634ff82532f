using Microsoft.ML.DeepDensity.Numerics;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

/// <summary>The persistent worker team behind <see cref="DeepDensityEnvironment.For"/>: every index exactly once, nothing after return.</summary>
[Collection(Conformance.EngineSettingsCollection.Name)]
public class WorkerTeamTests
{
    [Fact]
    public void EveryIndexRunsExactlyOnceAndNothingRunsAfterReturn()
    {
        for (int round = 0; round < 2000; round++)
        {
            int n = 1 + round % 37;
            var hits = new int[n];
            int after = 0;
            bool returned = false;
            WorkerTeam.Run(0, n, int.MaxValue, i =>
            {
                if (Volatile.Read(ref returned)) Interlocked.Increment(ref after);
                Interlocked.Increment(ref hits[i]);
                if (round % 97 == 0) Thread.SpinWait(2000);
            });
            Volatile.Write(ref returned, true);
            Assert.All(hits, h => Assert.Equal(1, h));
            if (round % 500 == 0) Thread.Sleep(3);   // let the workers fall asleep now and then
            Assert.Equal(0, after);
        }
    }

    /// <summary>A kernel path forced on the calling thread (tests comparing paths) holds in every block of a region,
    /// whichever thread runs it, also when the team is busy and the region falls back to the thread pool: a block on
    /// a helper used to run the CPU's best path, so a forced multi-block scoring call mixed two paths' bits.</summary>
    [Fact]
    public async Task AForcedKernelPathHoldsInEveryBlock()
    {
        if (KernelPath.Best == SimdLevel.Portable) return; // nothing lower to force
        var threads = new System.Collections.Concurrent.ConcurrentDictionary<int, byte>();
        var levels = new SimdLevel[64];
        void Region()
        {
            using var forced = KernelPath.Force(SimdLevel.Portable);
            DeepDensityEnvironment.For(0, levels.Length, i =>
            {
                threads[Environment.CurrentManagedThreadId] = 0;
                levels[i] = KernelPath.Current;
                Thread.Sleep(1); // every thread gets blocks
            });
        }
        Region();
        Assert.True(threads.Count > 1 || Environment.ProcessorCount == 1, "the region ran on one thread");
        Assert.All(levels, l => Assert.Equal(SimdLevel.Portable, l));
        Assert.NotEqual(SimdLevel.Portable, KernelPath.Current); // the scope ended on the caller

        // The thread-pool fallback (the team busy with another caller's region).
        var teamBusy = new ManualResetEventSlim();
        var release = new ManualResetEventSlim();
        var other = Task.Run(() => WorkerTeam.Run(0, 2, int.MaxValue, i => { teamBusy.Set(); release.Wait(); }));
        teamBusy.Wait();
        try
        {
            Array.Clear(levels);
            Region();
            Assert.All(levels, l => Assert.Equal(SimdLevel.Portable, l));
        }
        finally { release.Set(); }
        await other;
    }

    [Fact]
    public void NonZeroStartAndThreadLimitAreHonoured()
    {
        var hits = new int[30];
        int running = 0, max = 0;
        WorkerTeam.Run(10, 30, 1, i =>
        {
            int now = Interlocked.Increment(ref running);
            max = Math.Max(max, now);
            Interlocked.Increment(ref hits[i]);
            Interlocked.Decrement(ref running);
        });
        Assert.Equal(1, max);
        for (int i = 0; i < 30; i++) Assert.Equal(i >= 10 ? 1 : 0, hits[i]);
    }

    [Fact]
    public async Task NestedAndConcurrentRegionsComplete()
    {
        long total = 0;
        var callers = Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            for (int r = 0; r < 200; r++)
                DeepDensityEnvironment.For(0, 6, i => DeepDensityEnvironment.For(0, 5, j => Interlocked.Add(ref total, 1)));
        })).ToArray();
        await Task.WhenAll(callers);
        Assert.Equal(4L * 200 * 6 * 5, total);
    }

    [Fact]
    public void AFailingBlockStopsTheRegionAndTheTeamStaysUsable()
    {
        int ran = 0;
        var e = Assert.Throws<InvalidOperationException>(() => WorkerTeam.Run(0, 1000, int.MaxValue, i =>
        {
            Interlocked.Increment(ref ran);
            if (i == 3) throw new InvalidOperationException("block 3");
            Thread.SpinWait(500);
        }));
        Assert.Equal("block 3", e.Message);
        Assert.True(ran < 1000, "blocks after a failure are skipped");
        int sum = 0;
        WorkerTeam.Run(0, 100, int.MaxValue, i => Interlocked.Add(ref sum, i));
        Assert.Equal(4950, sum);
    }
}
