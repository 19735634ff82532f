using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Numerics.Amx;

namespace DeepDensity.Benchmarks;

/// <summary>
/// The speed of each core right now, measured pinned to it: the engine's SGEMM and (where it runs) the AMX binary
/// product. On a cloud VM a vCPU shares its physical core with a co-tenant's hyper-thread, which the load average does
/// not show: this VM's cores were seen to run at half each other's speed for minutes (the AMX unit most), and then a
/// 2-thread run is held back by the slower core while a 1-thread run lands on either. Reports print this next to the
/// load average so that a ratio can be read with the machine's state it was measured in.
/// </summary>
public static class CoreSpeed
{
    // glibc by its soname: a bare "libc" can need the development symlink (see AmxRuntime).
    [DllImport("libc.so.6", SetLastError = true)]
    private static extern int sched_setaffinity(int pid, IntPtr cpusetsize, ref ulong mask);

    /// <summary>One line: each core's SGEMM GFLOP/s and AMX product G multiply-adds/s, and the slower/faster ratios.</summary>
    public static string Describe()
    {
        if (!OperatingSystem.IsLinux() || Environment.ProcessorCount > 64) return "core speeds: not measured (Linux, ≤ 64 cores only)";
        int cores = Environment.ProcessorCount;
        var sgemm = new double[cores];
        var amx = new double[cores];
        for (int c = 0; c < cores; c++)
        {
            int core = c;
            var thread = new Thread(() =>
            {
                if (!Pin(core)) { sgemm[core] = amx[core] = double.NaN; return; }
                sgemm[core] = Sgemm(256, parallel: false, repeats: 20);
                amx[core] = Amx();
            });
            thread.Start();
            thread.Join();
        }
        static string Ratio(double[] x) => x.Length > 1 && x.All(double.IsFinite) && x.Max() > 0 ? $" (slowest/fastest {x.Min() / x.Max():F2})" : "";
        if (!double.IsFinite(sgemm[0])) return "core speeds: not measured (could not pin a thread to a core)";
        string sgemmText = string.Join(", ", sgemm.Select((v, c) => $"core {c} {v:F0}"));
        string amxText = double.IsFinite(amx[0]) ? $"; AMX binary product G multiply-adds/s: {string.Join(", ", amx.Select((v, c) => $"core {c} {v:F0}"))}{Ratio(amx)}" : "";
        return $"core speeds pinned, SGEMM GFLOP/s: {sgemmText}{Ratio(sgemm)}{amxText}; {CrossCore()}";
    }

    /// <summary>
    /// What data moving between cores 0 and 1 costs: the one-way hand-off of a cache line (half a ping-pong's round trip
    /// on one line) and the speed at which core 1 reads 1 MB that core 0 has just written, against reading it again once
    /// it is in core 1's own caches. A parallel region that consumes what the previous region's blocks wrote on the
    /// other core (a training step's weights, statistics and samples) pays this for every line; on this workplace's AMD
    /// VM a line took about 200 ns one way (session 26; not what limits the RBM's two-thread step, see benchmarks.md).
    /// </summary>
    public static string CrossCore()
    {
        if (Environment.ProcessorCount < 2) return "cross-core: one core";
        const int Lines = 1 << 14; // 1 MB
        var flag = new long[32];   // the flag in the middle of its own lines
        var data = new long[Lines * 8];
        const int RoundTrips = 100_000, Handoffs = 20;
        double oneWayNs = double.NaN, remoteGBs = double.NaN, localGBs = double.NaN;
        // Both threads pin first and meet; if either could not pin, neither starts (so neither waits for the other).
        var pinned = new bool[2];
        using var ready = new Barrier(2);
        var other = new Thread(() =>
        {
            pinned[1] = Pin(1);
            ready.SignalAndWait();
            if (!pinned[0] || !pinned[1]) return;
            for (long i = 0; i < RoundTrips; i++)
            {
                while (Volatile.Read(ref flag[16]) != 2 * i + 1) Thread.SpinWait(1);
                Volatile.Write(ref flag[16], 2 * i + 2);
            }
            // Bulk: for each hand-off, wait for core 0's writes, read them all (remote), then read them again (local).
            double remote = 0, local = 0;
            long sink = 0;
            for (int h = 0; h < Handoffs; h++)
            {
                while (Volatile.Read(ref flag[16]) != -(h + 2)) Thread.SpinWait(1);
                long t0 = Stopwatch.GetTimestamp();
                for (int l = 0; l < data.Length; l += 8) sink += data[l];
                long t1 = Stopwatch.GetTimestamp();
                for (int l = 0; l < data.Length; l += 8) sink += data[l];
                long t2 = Stopwatch.GetTimestamp();
                remote += t1 - t0; local += t2 - t1;
                Volatile.Write(ref flag[16], -(h + 1000));
            }
            remoteGBs = data.Length * 8.0 * Handoffs / (remote / Stopwatch.Frequency) / 1e9;
            localGBs = data.Length * 8.0 * Handoffs / (local / Stopwatch.Frequency) / 1e9;
            GC.KeepAlive(sink);
        });
        var main = new Thread(() =>
        {
            pinned[0] = Pin(0);
            ready.SignalAndWait();
            if (!pinned[0] || !pinned[1]) return;
            long start = Stopwatch.GetTimestamp();
            for (long i = 0; i < RoundTrips; i++)
            {
                Volatile.Write(ref flag[16], 2 * i + 1);
                while (Volatile.Read(ref flag[16]) != 2 * i + 2) Thread.SpinWait(1);
            }
            oneWayNs = Stopwatch.GetElapsedTime(start).TotalNanoseconds / RoundTrips / 2;
            for (int h = 0; h < Handoffs; h++)
            {
                for (int l = 0; l < data.Length; l++) data[l] = h + l; // every line modified in core 0's caches
                Volatile.Write(ref flag[16], -(h + 2));
                while (Volatile.Read(ref flag[16]) != -(h + 1000)) Thread.SpinWait(1);
            }
        });
        other.Start(); main.Start();
        main.Join(); other.Join();
        if (!pinned[0] || !pinned[1]) return "cross-core: not measured (could not pin)";
        return $"cross-core (0 → 1): a cache line {oneWayNs:F0} ns one way; 1 MB just written by core 0 read at {remoteGBs:F1} GB/s (again, from core 1's caches: {localGBs:F1})";
    }

    /// <summary>Pins the calling thread to <paramref name="core"/>; false where that cannot be done.</summary>
    private static bool Pin(int core)
    {
        ulong mask = 1UL << core;
        try { return sched_setaffinity(0, 8, ref mask) == 0; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }

    /// <summary>GFLOP/s of the engine's SGEMM on n × n × n, best of three rounds of <paramref name="repeats"/> products:
    /// one thread at 256³ (in cache: near one core's FMA peak on a core of its own) for the per-core figure, both cores at
    /// 1024³ for the machine's ceiling (the <c>iwae</c> benchmark's roofline).</summary>
    public static double Sgemm(int n, bool parallel, int repeats)
    {
        var rng = new Random(1);
        var a = new float[n * n];
        var b = new float[n * n];
        var c = new float[n * n];
        for (int i = 0; i < a.Length; i++) { a[i] = (float)rng.NextDouble(); b[i] = (float)rng.NextDouble(); }
        double best = 0;
        for (int round = 0; round < 3; round++)
        {
            var sw = Stopwatch.StartNew();
            for (int r = 0; r < repeats; r++) Gemm.Multiply(false, false, n, n, n, 1f, a, n, b, n, 0f, c, n, allowParallel: parallel);
            best = Math.Max(best, 2.0 * n * n * n * repeats / sw.Elapsed.TotalSeconds / 1e9);
        }
        return best;
    }

    /// <summary>Best of three rounds of the RBM-sized exact product (192 × 784 × 512: 0/1 rows times quantized weights).</summary>
    private static double Amx()
    {
        if (!BinaryGemm.IsUsable) return double.NaN;
        const int m = 192, k = 784, n = 512;
        var rng = new Random(1);
        var a = new float[m * k];
        var b = new float[k * n];
        for (int i = 0; i < a.Length; i++) a[i] = rng.Next(2);
        for (int i = 0; i < b.Length; i++) b[i] = (float)(rng.NextDouble() - 0.5);
        BinaryGemm.QuantizedOperand? qb = null;
        BinaryGemm.BinaryOperand? pa = null;
        if (!BinaryGemm.TryQuantize(false, k, n, b, n, ref qb) || !BinaryGemm.TryPack(false, m, k, a, k, ref pa)) return double.NaN;
        var c = new float[m * n];
        double best = 0;
        for (int round = 0; round < 3; round++)
        {
            const int Repeats = 20;
            var sw = Stopwatch.StartNew();
            for (int r = 0; r < Repeats; r++) BinaryGemm.Multiply(pa!, qb!, 0, n, 1f, 0f, c, n);
            best = Math.Max(best, (double)m * n * k * Repeats / sw.Elapsed.TotalSeconds / 1e9);
        }
        return best;
    }
}

/// <summary>Watches the cores' speeds over time (how unequal they are, and how long that lasts).</summary>
public sealed class CoreSpeedBenchmark : IBenchmark
{
    public string Name => "cores";
    public string Description => "each core's SGEMM and AMX speed, pinned, every few seconds (--samples 10 --seconds 3)";

    public int Run(BenchmarkArgs args)
    {
        int samples = args.Int("samples", 10), seconds = args.Int("seconds", 3);
        Console.WriteLine($"machine: {Machine.Describe()}");
        for (int i = 0; i < samples; i++)
        {
            if (i > 0) Thread.Sleep(TimeSpan.FromSeconds(seconds));
            Console.WriteLine($"{DateTime.UtcNow:HH:mm:ss} load {Machine.LoadAverage()} | {CoreSpeed.Describe()}");
        }
        return 0;
    }
}
