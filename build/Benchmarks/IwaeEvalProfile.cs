using System.Diagnostics;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;

namespace DeepDensity.Benchmarks;

/// <summary>
/// The IWAE's K-sample evaluation alone (784-200-200-50 tanh, Glorot weights, random 0/1 rows): its time and GFLOP/s
/// against our SGEMM at 1024³ in the same minute, to see how much of the evaluation is not the decoder's products.
/// </summary>
public sealed class IwaeEvalProfile : IBenchmark
{
    public string Name => "iwae-eval";
    public string Description => "IWAE K-sample evaluation alone: time and GFLOP/s vs SGEMM 1024³ (--rows 100 --eval-k 5000 --chunk 500 --reps 5)";

    public int Run(BenchmarkArgs args)
    {
        int rows = args.Int("rows", 100), evalK = args.Int("eval-k", 5000), chunk = args.Int("chunk", 500), reps = args.Int("reps", 5);
        const int D = IwaeProfile.D, H = IwaeProfile.H, Z = IwaeProfile.Z;
        var model = new IwaeModel(IwaeProfile.BenchmarkNetwork(), 5, evalK, chunk, 7);
        var rng = new RandomStream(2);
        var x = new float[rows * D];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextDouble() < 0.3 ? 1 : 0;
        var ll = new float[rows];
        model.LogDensity(x, ll);
        double flops = rows * 2.0 * ((double)D * H + H * H + H * 2 * Z + evalK * ((double)Z * H + H * H + (double)H * D));
        var a = new float[1024 * 1024]; var b = new float[1024 * 1024]; var c = new float[1024 * 1024];
        rng.FillGaussian(a); rng.FillGaussian(b);
        for (int rep = 0; rep < reps; rep++)
        {
            var sw = Stopwatch.StartNew();
            model.LogDensity(x, ll);
            double t = sw.Elapsed.TotalSeconds;
            sw.Restart();
            for (int i = 0; i < (args.Flag("no-gemm") ? 0 : 10); i++) Gemm.Multiply(false, false, 1024, 1024, 1024, 1f, a, 1024, b, 1024, 0f, c, 1024);
            double g = 10 * 2.0 * 1024 * 1024 * 1024 / sw.Elapsed.TotalSeconds / 1e9;
            Console.WriteLine($"  evaluation {t:F3} s, {flops / t / 1e9:F0} GFLOP/s; SGEMM 1024³ now {g:F0} GFLOP/s (ratio {flops / t / 1e9 / g:F2}); mean LL {ll.Average():F3}");
        }
        return 0;
    }
}
