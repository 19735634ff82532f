using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace Microsoft.ML.DeepDensity.Numerics;

/// <summary>
/// A persistent team of worker threads for the engine's short parallel regions (GEMMs of a minibatch, elementwise
/// sampling passes): the calling thread plus up to ProcessorCount − 1 dedicated background threads that spin briefly
/// after each region before they sleep, as OpenBLAS's threads do. A training step issues several regions of 0.1–1 ms;
/// waking thread-pool workers for each costs 50–100 µs and, worse, lets the caller run every block itself when a worker
/// is late, so a step scaled poorly on two cores. Blocks are handed out by an atomic counter; callers guarantee that
/// blocks write disjoint outputs, so which thread runs a block never changes a result.
/// </summary>
/// <remarks>
/// One region runs at a time. A call from inside a region (nested parallelism) runs inline on its thread; a call from
/// another thread while the team is busy falls back to <see cref="Parallel.For(int, int, ParallelOptions, Action{int})"/>.
/// </remarks>
internal static class WorkerTeam
{
    /// <summary>How long an idle worker polls for the next region before it blocks (the gaps inside a training step are shorter).</summary>
    private static readonly long SpinTicks = Stopwatch.Frequency / 2000; // 0.5 ms

    private static readonly object InitLock = new();
    private static Worker[]? _workers;
    private static int _busy;               // 1 while a region runs
    private static long _generation;        // bumped once per region
    private static Region? _region;

    [ThreadStatic] private static bool t_inRegion;

    /// <summary>
    /// Runs <paramref name="body"/> for every index in [<paramref name="from"/>, <paramref name="to"/>) on at most
    /// <paramref name="maxThreads"/> threads (including the caller). The first exception thrown by a block is rethrown
    /// as itself once every started block has finished.
    /// </summary>
    public static void Run(int from, int to, int maxThreads, Action<int> body)
    {
        int count = to - from;
        int threads = Math.Min(Math.Min(maxThreads, Environment.ProcessorCount), count);
        if (threads <= 1 || t_inRegion)
        {
            for (int i = from; i < to; i++) body(i);
            return;
        }
        // A path forced on the caller (tests comparing paths) is thread-static: blocks on other threads must force it too.
        body = KernelPath.Carried(body);
        if (Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            RunOnThreadPool(from, to, threads, body);
            return;
        }
        try
        {
            var workers = _workers ?? StartWorkers();
            var region = new Region(from, to, body, threads - 1);
            Volatile.Write(ref _region, region);
            Interlocked.Increment(ref _generation);
            for (int w = 0; w < threads - 1 && w < workers.Length; w++) workers[w].Wake();
            t_inRegion = true;
            try { region.Work(); }
            finally { t_inRegion = false; }
            // Every index is claimed now; wait only for blocks still running on helpers (a helper that wakes late finds
            // nothing left and never touches the caller's data).
            WaitForHelpers(region, count);
            Volatile.Write(ref _region, null);
            region.Error?.Throw();
        }
        finally { Volatile.Write(ref _busy, 0); }
    }

    /// <summary>How long the caller polls with pause instructions alone for the helpers' last blocks before it also
    /// yields its core (they usually end within tens of microseconds).</summary>
    private static readonly long CallerSpinTicks = Stopwatch.Frequency / 5000; // 0.2 ms

    /// <summary>Waits until every claimed block of <paramref name="region"/> has ended.</summary>
    /// <remarks>SpinWait.SpinOnce soon turns into sched_yield calls; a system call is dear in a VM (on this workplace's
    /// AMD VM the caller of an RBM step spent 1.7 % of its time in them), and the caller inside one reacts late to the
    /// helper's last block. Pause-only polling first, bounded in time so an oversubscribed machine still gets the core
    /// back.</remarks>
    private static void WaitForHelpers(Region region, int count)
    {
        if (Volatile.Read(ref region.Finished) >= count) return;
        long start = Stopwatch.GetTimestamp();
        while (Volatile.Read(ref region.Finished) < count && Stopwatch.GetTimestamp() - start < CallerSpinTicks) Thread.SpinWait(8);
        var spinner = new SpinWait();
        while (Volatile.Read(ref region.Finished) < count) spinner.SpinOnce(sleep1Threshold: -1);
    }

    private static void RunOnThreadPool(int from, int to, int threads, Action<int> body)
    {
        try { Parallel.For(from, to, new ParallelOptions { MaxDegreeOfParallelism = threads }, body); }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }
    }

    private static Worker[] StartWorkers()
    {
        lock (InitLock)
        {
            if (_workers is not null) return _workers;
            var workers = new Worker[Math.Max(0, Environment.ProcessorCount - 1)];
            for (int w = 0; w < workers.Length; w++) workers[w] = new Worker(w);
            Volatile.Write(ref _workers, workers);
            return workers;
        }
    }

    private sealed class Region(int from, int to, Action<int> body, int helpers)
    {
        private int _next = from;
        private int _failed;
        /// <summary>Claimed indices whose block has ended (run, failed, or skipped after a failure).</summary>
        public int Finished;
        /// <summary>Helpers allowed to join (the region may want fewer threads than the team has).</summary>
        public int Seats = helpers;
        public ExceptionDispatchInfo? Error;

        /// <summary>Claims and runs blocks until none is left; after a failure the remaining blocks are skipped.</summary>
        public void Work()
        {
            while (true)
            {
                int i = Interlocked.Increment(ref _next) - 1;
                if (i >= to) return;
                if (Volatile.Read(ref _failed) == 0)
                {
                    try { body(i); }
                    catch (Exception e)
                    {
                        if (Interlocked.Exchange(ref _failed, 1) == 0) Error = ExceptionDispatchInfo.Capture(e);
                    }
                }
                Interlocked.Increment(ref Finished);
            }
        }
    }

    private sealed class Worker
    {
        private readonly SemaphoreSlim _signal = new(0);
        private int _sleeping;

        public Worker(int index)
        {
            var thread = new Thread(Loop) { IsBackground = true, Name = FormattableString.Invariant($"DeepDensity worker {index + 1}") };
            thread.Start();
        }

        /// <summary>Called by the region's owner after it bumped the generation: releases the worker if it sleeps.</summary>
        public void Wake()
        {
            if (Interlocked.Exchange(ref _sleeping, 0) == 1) _signal.Release();
        }

        private void Loop()
        {
            long seen = Volatile.Read(ref _generation);
            t_inRegion = true;
            while (true)
            {
                seen = WaitForRegion(seen);
                JoinRegion();
            }
        }

        /// <summary>Joins the current region, if any. A method of its own so that no stack slot of the idle loop keeps
        /// the last region — and the model its body captured — alive while the worker waits.</summary>
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        private static void JoinRegion()
        {
            var region = Volatile.Read(ref _region);
            if (region is null) return;
            if (Interlocked.Decrement(ref region.Seats) < 0) return;   // region wants fewer helpers
            region.Work();
        }

        private long WaitForRegion(long seen)
        {
            long start = Stopwatch.GetTimestamp();
            long generation;
            while ((generation = Volatile.Read(ref _generation)) == seen)
            {
                if (Stopwatch.GetTimestamp() - start < SpinTicks) { Thread.SpinWait(20); continue; }
                // Announce sleep, then re-check so a region started in between is not missed.
                Interlocked.Exchange(ref _sleeping, 1);
                if (Volatile.Read(ref _generation) != seen)
                {
                    // Either we cancel the announcement, or the owner already released us: consume that release.
                    if (Interlocked.Exchange(ref _sleeping, 0) == 0) _signal.Wait();
                }
                else _signal.Wait();
                start = Stopwatch.GetTimestamp();
            }
            return generation;
        }
    }
}
