using System.Diagnostics;
using Microsoft.ML.DeepDensity.Models.Nvil;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;

namespace DeepDensity.Benchmarks;

/// <summary>Times one NVIL training step (784-pixel data, given latent layers) against the raw GEMM work it contains.</summary>
public sealed class NvilProfile : IBenchmark
{
    public string Name => "nvil-profile";
    public string Description => "NVIL step time vs GEMM-only time (--arch 200 --batch 100 --rows-per-block 50 --steps 100)";

    public int Run(BenchmarkArgs args)
    {
        var latent = args.String("arch", "200").Split('-').Select(int.Parse).ToArray();
        int batch = args.Int("batch", 100), rpb = args.Int("rows-per-block", 50), steps = args.Int("steps", 100);
        const int D = 784, BaselineHidden = 100;
        var net = new NvilNetwork(D, latent);
        net.Initialize(new RandomStream(1), default);
        var objective = new NvilObjective(net, new NvilOptions { LatentDimensions = latent, RowsPerBlock = rpb }, new RandomStream(3));
        var rng = new RandomStream(2);
        var x = new float[batch * D];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextDouble() < 0.3 ? 1 : 0;
        for (int i = 0; i < 80; i++) objective.ComputeGradient(x, batch, rng.Fork((ulong)i));
        var proc = Process.GetCurrentProcess();
        var cpu0 = proc.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++) objective.ComputeGradient(x, batch, rng.Fork((ulong)i));
        double step = sw.Elapsed.TotalSeconds / steps;
        proc.Refresh();
        double stepCpu = (proc.TotalProcessorTime - cpu0).TotalSeconds / steps;
        sw.Restart();
        for (int i = 0; i < steps; i++) objective.Evaluate(x, batch, rng.Fork((ulong)i));
        double fwd = sw.Elapsed.TotalSeconds / steps;

        // The same GEMMs alone: each dense layer forward and its weight gradient (no input gradients: the samples are
        // discrete), plus the baseline's two layers (with the hidden layer's input gradient).
        var shapes = new List<(bool ta, bool tb, int m, int n, int k)>();
        void Layer(int rows, int i, int o, bool needDx)
        {
            shapes.Add((false, false, rows, o, i));
            shapes.Add((true, false, i, o, rows));
            if (needDx) shapes.Add((false, true, rows, i, o));
        }
        for (int l = 0; l < latent.Length; l++)
        {
            int below = l == 0 ? D : latent[l - 1];
            Layer(batch, below, latent[l], false); Layer(batch, latent[l], below, false);
        }
        Layer(batch, D, BaselineHidden, false); Layer(batch, BaselineHidden, latent.Length, true);
        double flops = shapes.Sum(s => 2.0 * s.m * s.n * s.k);
        var bufA = new float[1 << 20]; var bufB = new float[1 << 20]; var bufC = new float[1 << 20];
        for (int r = 0; r < 30; r++) foreach (var s in shapes) Gemm.Multiply(s.ta, s.tb, s.m, s.n, s.k, 1f, bufA, s.ta ? s.m : s.k, bufB, s.tb ? s.k : s.n, 0f, bufC, s.n);
        sw.Restart();
        for (int i = 0; i < steps; i++)
            foreach (var s in shapes) Gemm.Multiply(s.ta, s.tb, s.m, s.n, s.k, 1f, bufA, s.ta ? s.m : s.k, bufB, s.tb ? s.k : s.n, 0f, bufC, s.n);
        double gemm = sw.Elapsed.TotalSeconds / steps;
        Console.WriteLine($"latent {string.Join('-', latent)}, batch {batch}, rows/block {rpb}: step {step * 1e3:F2} ms ({batch / step:F0} ex/s, " +
                          $"CPU {stepCpu * 1e3:F2} ms), forward only {fwd * 1e3:F2} ms; GEMMs alone {gemm * 1e3:F2} ms ({flops / gemm / 1e9:F1} GFLOP/s, {flops / 1e6:F0} MFLOP/step)");
        return 0;
    }
}
