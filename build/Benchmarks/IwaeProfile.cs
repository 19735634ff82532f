using System.Diagnostics;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;

namespace DeepDensity.Benchmarks;

/// <summary>Times one IWAE training step (batch × k, architecture 1) against the raw GEMM work it contains.</summary>
public sealed class IwaeProfile : IBenchmark
{
    public string Name => "iwae-profile";
    public string Description => "IWAE step time vs GEMM-only time (--k 5 --batch 100 --rows-per-block 50 --steps 50 [--step-only: the step alone, e.g. for perf, and with Adam after it at --clip C (default 0)])";

    internal const int D = 784, H = 200, Z = 50;

    /// <summary>The IWAE benchmark's network (784-200-200-50 tanh, Bernoulli likelihood), Glorot-initialised with seed 1:
    /// the one the profiles time.</summary>
    internal static IwaeNetwork BenchmarkNetwork()
    {
        var net = new IwaeNetwork(D, new[] { Z }, new[] { H, H }, new[] { 100 }, Activation.Tanh, IwaeLikelihood.Bernoulli);
        net.Initialize(new RandomStream(1), default, default);
        return net;
    }

    public int Run(BenchmarkArgs args)
    {
        int k = args.Int("k", 5), batch = args.Int("batch", 100), rpb = args.Int("rows-per-block", 50), steps = args.Int("steps", 50);
        var net = BenchmarkNetwork();
        var objective = new IwaeObjective(net, k, rpb);
        var rng = new RandomStream(2);
        var x = new float[batch * D];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextDouble() < 0.3 ? 1 : 0;
        for (int i = 0; i < 60; i++) { objective.ComputeGradient(x, batch, rng.Fork((ulong)i)); objective.Evaluate(x, batch, rng.Fork((ulong)i)); }
        Thread.Sleep(300);
        for (int i = 0; i < 20; i++) { objective.ComputeGradient(x, batch, rng.Fork((ulong)i)); objective.Evaluate(x, batch, rng.Fork((ulong)i)); }
        var proc = Process.GetCurrentProcess();
        var cpu0 = proc.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++) objective.ComputeGradient(x, batch, rng.Fork((ulong)i));
        double step = sw.Elapsed.TotalSeconds / steps;
        proc.Refresh();
        double stepCpu = (proc.TotalProcessorTime - cpu0).TotalSeconds / steps;
        if (args.Flag("step-only"))
        {
            Console.WriteLine($"k={k} batch={batch} rows/block={rpb}: step {step * 1e3:F2} ms ({batch / step:F0} ex/s), CPU {stepCpu * 1e3:F2} ms");
            // The same steps with the training loop's Adam update after each (what an epoch adds to the gradient).
            var adam = new Microsoft.ML.DeepDensity.Training.AdamOptimizer();
            float clip = (float)args.Double("clip", 0); // the library's default is 10
            for (int i = 0; i < 20; i++) { objective.ComputeGradient(x, batch, rng.Fork((ulong)i)); adam.ClipAndStep(objective.Parameters, clip, 1e-4f); }
            sw.Restart();
            for (int i = 0; i < steps; i++) { objective.ComputeGradient(x, batch, rng.Fork((ulong)i)); adam.ClipAndStep(objective.Parameters, clip, 1e-4f); }
            double withAdam = sw.Elapsed.TotalSeconds / steps;
            sw.Restart();
            for (int i = 0; i < steps; i++) adam.ClipAndStep(objective.Parameters, clip, 1e-4f);
            double adamAlone = sw.Elapsed.TotalSeconds / steps;
            Console.WriteLine($"step + Adam {withAdam * 1e3:F2} ms ({batch / withAdam:F0} ex/s); Adam alone {adamAlone * 1e3:F3} ms over {objective.Parameters.Items.Sum(p => p.Value.Length)} parameters");
            return 0;
        }
        sw.Restart();
        for (int i = 0; i < steps; i++) objective.Evaluate(x, batch, rng.Fork((ulong)i));
        double fwd = sw.Elapsed.TotalSeconds / steps;

        // The same GEMMs alone (forward + backward, whole batch, GEMM-internal parallelism).
        int m = batch * k;
        var shapes = new List<(bool ta, bool tb, int m, int n, int k)>();
        void Layer(int rows, int i, int o, bool needDx)
        {
            shapes.Add((false, false, rows, o, i));            // forward
            shapes.Add((true, false, i, o, rows));             // dW
            if (needDx) shapes.Add((false, true, rows, i, o)); // dX
        }
        Layer(batch, D, H, false); Layer(batch, H, H, true); Layer(batch, H, 2 * Z, true);
        Layer(m, Z, H, true); Layer(m, H, H, true); Layer(m, H, D, true);
        double flops = shapes.Sum(s => 2.0 * s.m * s.n * s.k);
        var bufA = new float[1 << 20]; var bufB = new float[1 << 20]; var bufC = new float[1 << 20];
        for (int r = 0; r < 30; r++) foreach (var s in shapes) Gemm.Multiply(s.ta, s.tb, s.m, s.n, s.k, 1f, bufA, s.ta ? s.m : s.k, bufB, s.tb ? s.k : s.n, 0f, bufC, s.n);
        proc.Refresh();
        cpu0 = proc.TotalProcessorTime;
        sw.Restart();
        for (int i = 0; i < steps; i++)
            foreach (var s in shapes) Gemm.Multiply(s.ta, s.tb, s.m, s.n, s.k, 1f, bufA, s.ta ? s.m : s.k, bufB, s.tb ? s.k : s.n, 0f, bufC, s.n);
        double gemm = sw.Elapsed.TotalSeconds / steps;
        proc.Refresh();
        double gemmCpu = (proc.TotalProcessorTime - cpu0).TotalSeconds / steps;
        // One block's products on one thread, as a step runs them (each thread takes its own block).
        var blockShapes = new List<(bool ta, bool tb, int m, int n, int k, string what)>();
        void BlockLayer(int rows, int i, int o, bool needDx, string name)
        {
            blockShapes.Add((false, false, rows, o, i, $"{name} forward {rows}x{o}x{i}"));
            blockShapes.Add((true, false, i, o, rows, $"{name} dW {i}x{o}x{rows}"));
            if (needDx) blockShapes.Add((false, true, rows, i, o, $"{name} dX {rows}x{i}x{o}"));
        }
        int mb = rpb * k;
        BlockLayer(rpb, D, H, false, "enc1"); BlockLayer(rpb, H, H, true, "enc2"); BlockLayer(rpb, H, 2 * Z, true, "enc3");
        BlockLayer(mb, Z, H, true, "dec1"); BlockLayer(mb, H, H, true, "dec2"); BlockLayer(mb, H, D, true, "dec3");
        double blockTotal = 0;
        foreach (var s in blockShapes)
        {
            void Once() => Gemm.Multiply(s.ta, s.tb, s.m, s.n, s.k, 1f, bufA, s.ta ? s.m : s.k, bufB, s.tb ? s.k : s.n, 0f, bufC, s.n, allowParallel: false);
            for (int i = 0; i < 20; i++) Once();
            sw.Restart();
            for (int i = 0; i < steps; i++) Once();
            double t = sw.Elapsed.TotalSeconds / steps;
            blockTotal += t;
            if (args.Flag("shapes")) Console.WriteLine($"  {s.what,-28} {t * 1e6,8:F1} µs {2.0 * s.m * s.n * s.k / t / 1e9,6:F1} GFLOP/s");
        }
        Console.WriteLine($"one block's products on one thread: {blockTotal * 1e3:F2} ms ({flops / (batch / (double)rpb) / blockTotal / 1e9:F1} GFLOP/s); step CPU per block {stepCpu * rpb / batch * 1e3:F2} ms");
        Console.WriteLine($"k={k} batch={batch} rows/block={rpb}: step {step * 1e3:F2} ms ({batch / step:F0} ex/s, {flops / step / 1e9:F1} GFLOP/s), " +
                          $"forward only {fwd * 1e3:F2} ms; GEMMs alone {gemm * 1e3:F2} ms ({flops / gemm / 1e9:F1} GFLOP/s, {flops / 1e6:F0} MFLOP/step); CPU time: step {stepCpu * 1e3:F2} ms, GEMMs {gemmCpu * 1e3:F2} ms");
        return 0;
    }
}
