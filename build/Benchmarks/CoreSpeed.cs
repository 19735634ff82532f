using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Microsoft.ML.DeepDensity.Numerics.Amx;

namespace DeepDensity.Benchmarks;

/// <summary>
/// The speed of each core right now, measured pinned to it: an AVX-512 FMA loop and (where it runs) the AMX binary
/// product. On a cloud VM a vCPU shares its physical core with a co-tenant's hyper-thread, which the load average does
/// not show: this VM's cores were seen to run at half each other's speed for minutes (the AMX unit most), and then a
/// 2-thread run is held back by the slower core while a 1-thread run lands on either. Reports print this next to the
/// load average so that a ratio can be read with the machine's state it was measured in.
/// </summary>
public static class CoreSpeed
{
    [DllImport("libc", SetLastError = true)]
    private static extern int sched_setaffinity(int pid, IntPtr cpusetsize, ref ulong mask);

    /// <summary>One line: each core's FMA GFLOP/s and AMX product G multiply-adds/s, and the slower/faster ratios.</summary>
    public static string Describe()
    {
        if (!OperatingSystem.IsLinux() || Environment.ProcessorCount > 64) return "core speeds: not measured (Linux, ≤ 64 cores only)";
        int cores = Environment.ProcessorCount;
        var fma = new double[cores];
        var amx = new double[cores];
        for (int c = 0; c < cores; c++)
        {
            int core = c;
            var thread = new Thread(() =>
            {
                ulong mask = 1UL << core;
                if (sched_setaffinity(0, 8, ref mask) != 0) { fma[core] = amx[core] = double.NaN; return; }
                fma[core] = Fma();
                amx[core] = Amx();
            });
            thread.Start();
            thread.Join();
        }
        static string Ratio(double[] x) => x.Length > 1 && x.All(double.IsFinite) && x.Max() > 0 ? $" (slowest/fastest {x.Min() / x.Max():F2})" : "";
        string fmaText = string.Join(", ", fma.Select((v, c) => $"core {c} {v:F0}"));
        string amxText = double.IsFinite(amx[0]) ? $"; AMX binary product G multiply-adds/s: {string.Join(", ", amx.Select((v, c) => $"core {c} {v:F0}"))}{Ratio(amx)}" : "";
        return $"core speeds pinned, FMA GFLOP/s: {fmaText}{Ratio(fma)}{amxText}";
    }

    /// <summary>Best of three 20-ms FMA loops (eight independent chains of 512-bit FMAs).</summary>
    private static double Fma()
    {
        if (!Vector512.IsHardwareAccelerated) return double.NaN;
        double best = 0;
        for (int round = 0; round < 3; round++)
        {
            var a0 = Vector512.Create(1f); var a1 = a0; var a2 = a0; var a3 = a0; var a4 = a0; var a5 = a0; var a6 = a0; var a7 = a0;
            var m = Vector512.Create(0.9999999f); var b = Vector512.Create(1e-7f);
            const int Iterations = 1 << 20;
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < Iterations; i++)
            {
                a0 = Vector512.FusedMultiplyAdd(a0, m, b); a1 = Vector512.FusedMultiplyAdd(a1, m, b);
                a2 = Vector512.FusedMultiplyAdd(a2, m, b); a3 = Vector512.FusedMultiplyAdd(a3, m, b);
                a4 = Vector512.FusedMultiplyAdd(a4, m, b); a5 = Vector512.FusedMultiplyAdd(a5, m, b);
                a6 = Vector512.FusedMultiplyAdd(a6, m, b); a7 = Vector512.FusedMultiplyAdd(a7, m, b);
            }
            double seconds = sw.Elapsed.TotalSeconds;
            float sink = (a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7).GetElement(0);
            if (float.IsNaN(sink)) return double.NaN;
            best = Math.Max(best, (double)Iterations * 8 * 16 * 2 / seconds / 1e9);
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
    public string Description => "each core's FMA and AMX speed, pinned, every few seconds (--samples 10 --seconds 3)";

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
