using System.Diagnostics;
using Microsoft.ML.DeepDensity.Layers;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;

namespace DeepDensity.Benchmarks;

/// <summary>Single-thread CPU time of the IWAE's non-GEMM kernels vs the decoder output GEMM (diagnostic).</summary>
public sealed class IwaeKernelProfile : IBenchmark
{
    public string Name => "iwae-kernels";
    public string Description => "CPU time of IWAE elementwise kernels vs one GEMM (diagnostic)";

    public int Run(BenchmarkArgs args)
    {
        int m = args.Int("rows", 250), d = 784, h = 200, reps = args.Int("reps", 40);
        var rng = new RandomStream(1);
        var logits = new float[m * d]; rng.FillGaussian(logits, 0, 2);
        var x = new float[m / 5 * d]; for (int i = 0; i < x.Length; i++) x[i] = rng.NextDouble() < 0.3 ? 1 : 0;
        var hid = new float[m * h]; rng.FillGaussian(hid);
        var w = new float[h * d]; rng.FillGaussian(w);
        var acc = new float[m]; var scale = new float[m]; Array.Fill(scale, 0.01f);
        var grad = new float[m * d];
        var noise = new float[m * 50];
        var tanh = new float[m * h];
        void Time(string name, Action a)
        {
            for (int i = 0; i < 200; i++) a(); Thread.Sleep(300); for (int i = 0; i < 50; i++) a();
            // The best of 20 batches (wall time of one thread): the VM is shared, and the CPU clock ticks too coarsely for means.
            double t = double.MaxValue;
            for (int batch = 0; batch < 20; batch++)
            {
                var sw = Stopwatch.StartNew();
                for (int i = 0; i < Math.Max(1, reps / 20); i++) a();
                t = Math.Min(t, sw.Elapsed.TotalMilliseconds / Math.Max(1, reps / 20));
            }
            Console.WriteLine($"  {name,-40} {t,8:F3} ms (best batch)");
        }
        Time($"GEMM {m}x{d}x{h} (1 thread)", () => Gemm.Multiply(false, false, m, d, h, 1f, hid, h, w, d, 0f, logits, d, false));
        var w2 = new float[h * h]; rng.FillGaussian(w2);
        var w3 = new float[50 * h]; rng.FillGaussian(w3);
        var z50 = new float[m * 50]; rng.FillGaussian(z50);
        Time($"GEMM {m}x{h}x{h} (1 thread)", () => Gemm.Multiply(false, false, m, h, h, 1f, hid, h, w2, h, 0f, tanh, h, false));
        Time($"GEMM {m}x{h}x50 (1 thread)", () => Gemm.Multiply(false, false, m, h, 50, 1f, z50, 50, w3, h, 0f, tanh, h, false));
        rng.FillGaussian(logits, 0, 2);
        Time("Bernoulli log-prob", () => BernoulliHead.AccumulateLogProb(x, 5, logits, m, d, 1f, acc));
        Time("Bernoulli log-prob (AVX2 path)", () => { using var _ = KernelPath.Force(SimdLevel.Avx2); BernoulliHead.AccumulateLogProb(x, 5, logits, m, d, 1f, acc); });
        Time("Bernoulli log-prob (portable path)", () => { using var _ = KernelPath.Force(SimdLevel.Portable); BernoulliHead.AccumulateLogProb(x, 5, logits, m, d, 1f, acc); });
        Time("Bernoulli backward", () => BernoulliHead.Backward(x, 5, logits, m, d, scale, grad));
        Time("tanh forward m×h", () => Activations.Forward(Activation.Tanh, hid, tanh));
        // A fresh gradient each call (repeated in place it would decay into subnormals, timing those instead).
        var fresh = new float[m * h]; rng.FillGaussian(fresh);
        var dh = new float[m * h];
        Time("copy m×h (part of the next)", () => fresh.CopyTo(dh, 0));
        Time("tanh derivative m×h", () => { fresh.CopyTo(dh, 0); Activations.MultiplyByDerivative(Activation.Tanh, tanh, dh); });
        Time("column sums m×d", () => RowOps.AccumulateColumnSums(grad, m, d, acc.Length >= d ? acc : new float[d]));
        Time("Gaussian noise m×50", () => GaussianNoise.Fill(rng, noise));
        Time("Gaussian noise m×50 (AVX2 path)", () => { using var _ = KernelPath.Force(SimdLevel.Avx2); GaussianNoise.Fill(rng, noise); });
        var row = logits; var tmp = new float[row.Length];
        Time("TP.Exp", () => System.Numerics.Tensors.TensorPrimitives.Exp(row, tmp));
        Time("TP.LogP1", () => System.Numerics.Tensors.TensorPrimitives.LogP1(row, tmp));
        Time("TP.Log", () => System.Numerics.Tensors.TensorPrimitives.Log(row, tmp));
        Time("TP.Sigmoid", () => System.Numerics.Tensors.TensorPrimitives.Sigmoid(row, tmp));
        Time("TP.Abs", () => System.Numerics.Tensors.TensorPrimitives.Abs(row, tmp));
        Time("TP.Max0", () => System.Numerics.Tensors.TensorPrimitives.Max(row, 0f, tmp));
        Time("TP.Negate", () => System.Numerics.Tensors.TensorPrimitives.Negate(row, tmp));
        Time("TP.MultiplyAdd", () => System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(row, 0.5f, tmp, tmp));
        return 0;
    }
}
