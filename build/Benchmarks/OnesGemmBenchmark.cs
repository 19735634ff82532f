using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;

namespace DeepDensity.Benchmarks;

/// <summary>The RBM's products with a 0/1 left operand on one thread: the float GEMM against OnesGemm (sums of the rows
/// the ones select) at several densities, the index build timed apart, B packed per call or once, the bits compared.</summary>
public sealed class OnesGemmBenchmark : IBenchmark
{
    public string Name => "ones-gemm";
    public string Description => "0/1 x float products: Gemm vs OnesGemm on one thread at the RBM's shapes (--reps 200 --only <shape name> --density d)";

    public int Run(BenchmarkArgs args)
    {
        int reps = args.Int("reps", 200);
        string only = args.String("only", "");
        double onlyDensity = args.Double("density", 0);
        var rng = new RandomStream(7);
        var shapes = new (bool ta, bool tb, int m, int n, int k, string what)[]
        {
            (false, false, 200, 128, 784, "step hidden block: data+chains x W"),
            (true, false, 198, 500, 200, "step update block: V^T x statistics"),
            (false, true, 100, 208, 500, "step visible block: chains x W^T"),
            (false, false, 64, 500, 784, "scoring block: rows x W"),
        };
        Console.WriteLine($"machine: {Machine.Describe()}; OnesGemm usable: {OnesGemm.IsUsable}, used up to {OnesGemm.MaxDensity} ones");
        double ceiling = LoadAddCeiling();
        Console.WriteLine($"load-add ceiling: {ceiling / 1e9:F2} G AVX-512 load+adds/s on this core (L1-resident rows picked by data, 8 independent sums): " +
                          "the rate no sum of selected rows can pass; OnesGemm's share of it is printed per shape (packed B)");
        foreach (var (ta, tb, m, n, k, what) in shapes)
        foreach (double density in new[] { 0.1, 0.2, 0.3, 0.5, 1.0 })
        {
            if (!what.StartsWith(only, StringComparison.Ordinal) || (onlyDensity > 0 && density != onlyDensity)) continue;
            var a = new float[m * k];
            for (int i = 0; i < a.Length; i++) a[i] = rng.NextDouble() < density ? 1f : 0f;
            var b = new float[k * n];
            rng.FillGaussian(b);
            var c0 = new float[m * n];
            rng.FillGaussian(c0);
            var (c1, c2, c3) = (c0.ToArray(), c0.ToArray(), c0.ToArray());
            int lda = ta ? m : k;
            var index = new OnesIndex();
            // B as stored: k × n, or n × k when op(B) = Bᵀ (the visible region's W rows).
            int ldb = tb ? k : n;
            OnesGemm.Panels? panels = null;
            bool packable = !tb && OnesGemm.TryPack(b, k, n, ldb, ref panels);
            void Dense() => Gemm.Multiply(ta, tb, m, n, k, 0.5f, a, lda, b, ldb, 0.9f, c1, n, allowParallel: false);
            void Build() => index.TryBuild(ta, m, k, a, lda);
            void Sparse() => OnesGemm.TryMultiply(index, 0, m, n, 0.5f, b, ldb, 0.9f, c2, n, tb);
            void Packed() => OnesGemm.TryMultiply(index, 0, m, panels!, 0.5f, 0.9f, c3, n);
            Build();
            Dense(); Sparse();
            if (packable) Packed();
            bool same = c1.AsSpan().SequenceEqual(c2) && (!packable || c1.AsSpan().SequenceEqual(c3));
            double td = Time(Dense, reps), tbuild = Time(Build, reps), ts = Time(Sparse, reps), tp = packable ? Time(Packed, reps) : double.NaN;
            Console.WriteLine($"{what,-40} {m}x{n}x{k}{(ta ? " (A^T)" : "")}{(tb ? " (B^T)" : "")} ones {density:F1}: Gemm {td * 1e6,7:F1} µs ({2.0 * m * n * k / td / 1e9,5:F1} GFLOP/s); " +
                              $"index {tbuild * 1e6,6:F1} µs, OnesGemm {ts * 1e6,7:F1} µs (B packed once {tp * 1e6,7:F1}): Gemm's time x {(ts + tbuild) / td:F2} with the index; same bits: {same}" +
                              (packable ? $"; {OnesAdds(a, n) / tp / ceiling:P0} of the load-add ceiling" : ""));
        }
        return 0;
    }

    /// <summary>Vector adds a sum of selected rows makes: one per one of A and 16 columns of B.</summary>
    private static double OnesAdds(float[] a, int n)
    {
        long ones = 0;
        foreach (float x in a) if (x == 1f) ones++;
        return ones * (double)((n + 15) / 16);
    }

    /// <summary>
    /// The one-core rate of the operation every sum of selected rows is made of: a 64-byte load from a row picked by the
    /// data, added into an accumulator. Rows of a 32 KB block (in the L1 cache), picked 8 at a time by the nibbles of
    /// random words, into 8 independent sums: no cache misses and no dependency chains, so nothing but the core limits it.
    /// </summary>
    private static unsafe double LoadAddCeiling()
    {
        const int Words = 4096, Rounds = 400;
        int* rows = (int*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc(32 * 1024, 64);
        try
        {
            for (int i = 0; i < 8 * 1024; i++) rows[i] = i;
            var words = new uint[Words];
            var rng = new RandomStream(11);
            for (int i = 0; i < Words; i++) words[i] = (uint)rng.NextUInt64();
            double best = 0;
            fixed (uint* w = words)
                for (int round = 0; round < 5; round++)
                {
                    var clock = Stopwatch.StartNew();
                    for (int r = 0; r < Rounds; r++) s_sink += LoadAdds(rows, w, Words);
                    best = Math.Max(best, (double)Rounds * Words * 32 / clock.Elapsed.TotalSeconds);
                }
            return best;
        }
        finally { System.Runtime.InteropServices.NativeMemory.AlignedFree(rows); }
    }

    /// <summary>Where the loop's sums go, so that the JIT keeps the loop.</summary>
    private static int s_sink;

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static unsafe int LoadAdds(int* rows, uint* words, int count)
    {
        Vector512<int> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
        for (int i = 0; i < count; i++)
        {
            uint w = words[i];
            for (int j = 0; j < 8; j += 2, w >>= 8)
            {
                int* e = rows + (int)(w & 31) * 256, f = rows + (int)((w >> 4) & 31) * 256;
                a0 += Vector512.Load(e); a1 += Vector512.Load(e + 16); a2 += Vector512.Load(e + 32); a3 += Vector512.Load(e + 48);
                b0 += Vector512.Load(f); b1 += Vector512.Load(f + 16); b2 += Vector512.Load(f + 32); b3 += Vector512.Load(f + 48);
            }
        }
        return (a0 + a1 + a2 + a3 + b0 + b1 + b2 + b3).GetElement(0);
    }

    private static double Time(Action run, int reps)
    {
        // Warm-up by time, not calls: the JIT recompiles a hot method with full optimisation only after a delay
        // (100 ms by default), and 20 calls of a short product ended before it, so the timed calls of the first shapes
        // ran the unoptimised sums (the visible block showed 1.3-1.5x Gemm's time; optimised, 0.5-0.9x).
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < 20 || sw.ElapsedMilliseconds < 400; i++) run();
        double best = double.MaxValue;
        for (int round = 0; round < 5; round++)
        {
            sw.Restart();
            for (int i = 0; i < reps; i++) run();
            best = Math.Min(best, sw.Elapsed.TotalSeconds / reps);
        }
        return best;
    }
}
