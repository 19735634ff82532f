using System.Diagnostics;
using Microsoft.ML.DeepDensity;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Randomness;

namespace DeepDensity.Benchmarks;

/// <summary>Times the Bernoulli RBM's scoring (log-density of many 0/1 rows) on random weights, for profiling.</summary>
public sealed class RbmScoringProfile : IBenchmark
{
    public string Name => "rbm-score";
    public string Description => "RBM scoring rows/s on random weights (--visible 784 --hidden 500 --rows 50000 --density 0.29 --seconds 3 --threads -1)";

    public int Run(BenchmarkArgs args)
    {
        int d = args.Int("visible", 784), h = args.Int("hidden", 500), rows = args.Int("rows", 50000);
        double density = args.Double("density", 0.29), seconds = args.Double("seconds", 3);
        int threads = args.Int("threads", -1);
        int saved = DeepDensityEnvironment.MaxDegreeOfParallelism;
        DeepDensityEnvironment.MaxDegreeOfParallelism = threads;
        try
        {
            var rng = new RandomStream(1);
            var machine = new RbmMachine(d, h, RbmVisibleType.Bernoulli);
            rng.FillGaussian(machine.W, 0, 0.05f);
            rng.FillGaussian(machine.B, 0, 0.5f);
            rng.FillGaussian(machine.C, 0, 0.5f);
            var model = new RbmModel(machine, null, LogPartitionMethod.AnnealedImportanceSampling, 100, 0, 100, 100, 1, 1, 0, 1, 1);
            var x = new float[rows * d];
            for (int i = 0; i < x.Length; i++) x[i] = rng.NextDouble() < density ? 1 : 0;
            var ll = new float[rows];
            model.LogDensity(x, ll);
            double best = double.MaxValue; int calls = 0;
            var total = Stopwatch.StartNew();
            while (total.Elapsed.TotalSeconds < seconds || calls < 2)
            {
                var sw = Stopwatch.StartNew();
                model.LogDensity(x, ll);
                best = Math.Min(best, sw.Elapsed.TotalSeconds); calls++;
            }
            double sum = 0; foreach (var v in ll) sum += v;
            Console.WriteLine($"RBM {d}x{h} scoring {rows} rows at density {density}: {rows / best:F0} rows/s (best of {calls}); mean log-density {sum / rows:F4}");
        }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = saved; }
        return 0;
    }
}
