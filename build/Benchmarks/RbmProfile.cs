using System.Diagnostics;
using Microsoft.ML.DeepDensity;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Numerics.Amx;
using Microsoft.ML.DeepDensity.Randomness;

namespace DeepDensity.Benchmarks;

/// <summary>Times a PCD-1 step of the benchmark's RBM (784 × 500, batch 100) against the products it contains, each
/// block's product alone on one thread (diagnostic: what the step spends beside its products).</summary>
public sealed class RbmProfile : IBenchmark
{
    public string Name => "rbm-profile";
    public string Description => "RBM PCD-1 step time vs its products alone (--visible 784 --hidden 500 --batch 100 --steps 400 --threads -1 --density 0.4 [--float] [--step-only: the step alone, e.g. for perf])";

    public int Run(BenchmarkArgs args)
    {
        int d = args.Int("visible", 784), h = args.Int("hidden", 500), batch = args.Int("batch", 100), steps = args.Int("steps", 400);
        int threads = args.Int("threads", -1);
        int saved = DeepDensityEnvironment.MaxDegreeOfParallelism;
        DeepDensityEnvironment.MaxDegreeOfParallelism = threads;
        try { return Run(args, d, h, batch, steps); }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = saved; }
    }

    private static int Run(BenchmarkArgs args, int d, int h, int batch, int steps)
    {
        bool useFloat = args.Flag("float") || !BinaryGemm.IsUsable;
        using var off = useFloat ? BinaryGemm.Off() : default;
        var rng = new RandomStream(1);
        var machine = new RbmMachine(d, h, RbmVisibleType.Bernoulli);
        rng.FillGaussian(machine.W, 0, 0.01f);
        // Ones at --density (0.4 by default; binarized Fashion-MNIST has 0.29), and visible biases at that rate (as the
        // trainer's base-rate start), so the chains' samples have it too.
        double density = args.Double("density", 0.4);
        machine.B.AsSpan().Fill((float)Math.Log(density / (1 - density)));
        var x = new float[batch * d];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextDouble() < density ? 1 : 0;
        var trainer = new RbmTrainer(machine, batch, gibbsSteps: 1, persistent: true, persistentChains: 0) { MomentumIsZero = true };
        trainer.SetBatch(x, batch);
        void Steps(int n) { for (int i = 0; i < n; i++) trainer.Step(batch, 0.01f, 0f, 0f, rng.Fork((ulong)i)); }
        Steps(300);
        var neg = trainer.LastNegativeVisible(batch);
        double chainDensity = 0;
        foreach (float v in neg) chainDensity += v;
        Console.WriteLine($"data ones {density:F2}, chains' samples ones {chainDensity / neg.Length:F2}");
        Thread.Sleep(200);
        var proc = Process.GetCurrentProcess();
        var cpu0 = proc.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        Steps(steps);
        double step = sw.Elapsed.TotalSeconds / steps;
        proc.Refresh();
        double stepCpu = (proc.TotalProcessorTime - cpu0).TotalSeconds / steps;
        double flops = 2.0 * 4 * batch * d * h;
        if (args.Flag("step-only")) { Console.WriteLine($"PCD-1 {d}x{h} batch {batch}: step {step * 1e6:F0} µs ({batch / step:F0} ex/s), CPU {stepCpu * 1e6:F0} µs"); return 0; }

        // The step's float products per block, each alone on one thread (as the step's regions run them).
        var shapes = new List<(bool ta, bool tb, int m, int n, int k, int count, string what)>
        {
            (false, true, batch, (d + 63) / 64 * 16, h, 4, "visible: chains x W^T block"),
            (false, false, 2 * batch, (h + 63) / 64 * 16, d, 4, "hidden: data+chains x W block"),
            (true, false, 198, h, 2 * batch, 4, "update: V^T x statistics block"),
        };
        var bufA = new float[1 << 20]; var bufB = new float[1 << 20]; var bufC = new float[1 << 20];
        rng.FillGaussian(bufA); rng.FillGaussian(bufB);
        double total = 0;
        foreach (var s in shapes)
        {
            void Once() => Gemm.Multiply(s.ta, s.tb, s.m, s.n, s.k, 1f, bufA, s.ta ? s.m : s.k, bufB, s.tb ? s.k : s.n, 0f, bufC, s.n, allowParallel: false);
            for (int i = 0; i < 50; i++) Once();
            double best = double.MaxValue;
            for (int rep = 0; rep < 5; rep++)
            {
                sw.Restart();
                for (int i = 0; i < steps / 4; i++) Once();
                best = Math.Min(best, sw.Elapsed.TotalSeconds / (steps / 4));
            }
            total += best * s.count;
            Console.WriteLine($"  {s.what,-32} {s.m}x{s.n}x{s.k}: {best * 1e6,7:F1} µs ({2.0 * s.m * s.n * s.k / best / 1e9:F1} GFLOP/s), x{s.count} blocks");
        }
        Console.WriteLine($"{(useFloat ? "float GEMM" : "AMX")} PCD-1 {d}x{h} batch {batch}: step {step * 1e6:F0} µs ({batch / step:F0} ex/s, {flops / step / 1e9:F1} GFLOP/s), " +
                          $"CPU {stepCpu * 1e6:F0} µs; the blocks' products alone on one thread {total * 1e6:F0} µs ({flops / total / 1e9:F1} GFLOP/s)");
        return 0;
    }
}
