using System.Diagnostics;
using Microsoft.ML.DeepDensity;
using Microsoft.ML.DeepDensity.Models.Nvil;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace DeepDensity.Benchmarks;

/// <summary>
/// Times the whole NVIL training step as the training loop runs it (gradient, finite check, Adam) on 784-pixel binary
/// data, broken into its parts, against the raw GEMM work it contains. Times are the fastest round of ten. Several batch sizes run back to back in one
/// process, so their figures share the machine's load.
/// </summary>
public sealed class NvilProfile : IBenchmark
{
    public string Name => "nvil-profile";
    public string Description => "NVIL step time, parts and GEMM-only time (--arch 200,200-200 --batch 20,100 --rows-per-block 50 --steps 200 --threads -1)";

    public int Run(BenchmarkArgs args)
    {
        var archs = args.String("arch", "200,200-200").Split(',');
        var batches = args.String("batch", "20,100").Split(',').Select(int.Parse).ToArray();
        int rpb = args.Int("rows-per-block", 50), steps = args.Int("steps", 200), threads = args.Int("threads", -1);
        DeepDensityEnvironment.MaxDegreeOfParallelism = threads;
        Console.WriteLine($"{Environment.ProcessorCount} cores, MaxDegreeOfParallelism {DeepDensityEnvironment.MaxDegreeOfParallelism}; load average {LoadAverage()}");
        foreach (var arch in archs)
            foreach (int batch in batches)
                Profile(arch.Split('-').Select(int.Parse).ToArray(), batch, rpb, steps);
        Console.WriteLine($"load average {LoadAverage()}");
        return 0;
    }

    private static void Profile(int[] latent, int batch, int rpb, int steps)
    {
        const int D = 784, BaselineHidden = 100;
        var net = new NvilNetwork(D, latent);
        net.Initialize(new RandomStream(1), default);
        var options = new NvilOptions { LatentDimensions = latent, RowsPerBlock = rpb, BaselineHiddenUnits = BaselineHidden };
        var objective = new NvilObjective(net, options, new RandomStream(3));
        var adam = Optimizer.Create(options);
        var rng = new RandomStream(2);
        // 40 % ones, about the density of binarized Fashion-MNIST.
        var x = new float[batch * D];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextDouble() < 0.4 ? 1 : 0;
        void Step(int i)
        {
            objective.ComputeGradient(x, batch, rng.Fork((ulong)i));
            adam.StepIfFinite(objective.Parameters, 1e-4f); // as the training loop without clipping
        }
        for (int i = 0; i < 100; i++) Step(i);

        var proc = Process.GetCurrentProcess();
        var cpu0 = proc.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++) Step(i);
        double stepMean = sw.Elapsed.TotalSeconds / steps;
        proc.Refresh();
        double stepCpu = (proc.TotalProcessorTime - cpu0).TotalSeconds / steps;
        double step = Time(steps, Step);
        // The same two parts timed inside the step: alone, each finds the other's data where its last call left it; in
        // the step, Adam follows a gradient (on two threads here it took 0.36-0.42 ms against 0.12 ms alone, session 27).
        double gradientInStep = 0, adamInStep = 0;
        for (int i = 0; i < steps; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            objective.ComputeGradient(x, batch, rng.Fork((ulong)i));
            long t1 = Stopwatch.GetTimestamp();
            adam.StepIfFinite(objective.Parameters, 1e-4f);
            gradientInStep += t1 - t0; adamInStep += Stopwatch.GetTimestamp() - t1;
        }
        gradientInStep /= (double)Stopwatch.Frequency * steps; adamInStep /= (double)Stopwatch.Frequency * steps;
        double grad = Time(steps, i => objective.ComputeGradient(x, batch, rng.Fork((ulong)i)));
        double fwd = Time(steps, i => objective.Evaluate(x, batch, rng.Fork((ulong)i)));
        double norm = Time(steps, _ => objective.Parameters.GradientNorm());
        double update = Time(steps, _ => adam.StepIfFinite(objective.Parameters, 1e-4f));

        // The same GEMMs alone: each dense layer forward and its weight gradient (no input gradients: the samples are
        // discrete), plus the baseline's two layers (with the hidden layer's input gradient), at the block size.
        int rows = Math.Min(batch, rpb), blocks = (batch + rpb - 1) / rpb;
        var shapes = new List<(bool ta, bool tb, int m, int n, int k)>();
        void Layer(int i, int o, bool needDx)
        {
            shapes.Add((false, false, rows, o, i));
            shapes.Add((true, false, i, o, rows));
            if (needDx) shapes.Add((false, true, rows, i, o));
        }
        for (int l = 0; l < latent.Length; l++)
        {
            int below = l == 0 ? D : latent[l - 1];
            Layer(below, latent[l], false); Layer(latent[l], below, false);
        }
        Layer(D, BaselineHidden, false); Layer(BaselineHidden, latent.Length, true);
        double flops = blocks * shapes.Sum(s => 2.0 * s.m * s.n * s.k);
        var bufA = new float[1 << 20]; var bufB = new float[1 << 20]; var bufC = new float[1 << 20];
        void Gemms(int _)
        {
            // Blocks run on separate threads in training (one block: the GEMMs themselves are parallel).
            if (blocks == 1) foreach (var s in shapes) Gemm.Multiply(s.ta, s.tb, s.m, s.n, s.k, 1f, bufA, s.ta ? s.m : s.k, bufB, s.tb ? s.k : s.n, 0f, bufC, s.n);
            else DeepDensityEnvironment.For(0, blocks, b =>
            {
                foreach (var s in shapes) Gemm.Multiply(s.ta, s.tb, s.m, s.n, s.k, 1f, bufA, s.ta ? s.m : s.k, bufB, s.tb ? s.k : s.n, 0f, bufC.AsSpan(b * (1 << 19), 1 << 19), s.n, allowParallel: false);
            });
        }
        for (int r = 0; r < 30; r++) Gemms(r);
        double gemm = Time(steps, Gemms);
        Console.WriteLine($"latent {string.Join('-', latent)}, batch {batch}: step {step * 1e3:F3} ms = {batch / step:F0} ex/s (mean {stepMean * 1e3:F3} ms, CPU {stepCpu * 1e3:F2} ms); " +
                          $"gradient {grad * 1e3:F3}, forward only {fwd * 1e3:F3}, norm {norm * 1e3:F3} (not needed without clipping), Adam with finite check {update * 1e3:F3} ms; inside the step (means): gradient {gradientInStep * 1e3:F3}, Adam {adamInStep * 1e3:F3} ms; " +
                          $"GEMMs alone {gemm * 1e3:F3} ms ({flops / gemm / 1e9:F1} GFLOP/s, {flops / 1e6:F0} MFLOP)");
    }

    /// <summary>Seconds per call: the fastest of ten rounds of steps/10 calls (the minimum is the figure least disturbed by
    /// other processes on a shared machine).</summary>
    private static double Time(int steps, Action<int> action)
    {
        int perRound = Math.Max(1, steps / 10);
        double best = double.MaxValue;
        for (int round = 0, i = 0; round < 10; round++)
        {
            var sw = Stopwatch.StartNew();
            for (int r = 0; r < perRound; r++) action(i++);
            best = Math.Min(best, sw.Elapsed.TotalSeconds / perRound);
        }
        return best;
    }

    private static string LoadAverage()
    {
        try { return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (IOException) { return "?"; }
    }
}
