using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Randomness;

namespace DeepDensity.Benchmarks;

/// <summary>
/// The default of <see cref="RnnRnadeOptions.TrainingWindow"/> against its plain alternative (whole sequences, 0) and
/// other window lengths, on one long series: test log-likelihood per frame, epochs run and fit time, with curves.
/// </summary>
/// <remarks>The series is synthetic, so that it is long and its answer known to be learnable: a 3-d noisy oscillator
/// whose frequency and amplitude switch between two regimes (1 % a step, so regimes last about 100 frames) beside an
/// AR(1) channel with occasional heavy-tailed jumps. Training is one series of --frames frames, validation one series of
/// a quarter of that, test another (each from its own generator seed); the validation series is given to Fit (it is
/// scored whole), or, with --held-out, Fit holds out its own fraction (of the windows, there being one sequence).</remarks>
public sealed class RnnRnadeWindowBenchmark : IBenchmark
{
    public string Name => "rnnrnade-window";
    public string Description => "RNN-RNADE TrainingWindow on one long series: test LL per frame by window length " +
                                 "(--windows 0,16,32,64,128,256, --frames 40000, --epochs 100, --seed 1,2, --held-out, --curves)";

    public int Run(BenchmarkArgs args)
    {
        int frames = args.Int("frames", 40_000), epochs = args.Int("epochs", new RnnRnadeOptions().MaxEpochs);
        var windows = Ints(args.String("windows", "0,16,32,64,128,256"));
        var seeds = Ints(args.String("seed", "1,2"));
        bool heldOut = args.Flag("held-out"), curves = args.Flag("curves");
        var train = Series(frames, 1);
        var validation = Series(frames / 4, 2);
        var test = Series(frames / 4, 3);
        Console.WriteLine($"one training series of {frames} frames × 3; validation {(heldOut ? "held out by Fit" : $"one series of {frames / 4}")}, " +
                          $"test one series of {frames / 4}; MaxEpochs {epochs}, every other setting the default " +
                          $"(TrainingWindow default {RnnRnadeOptions.Defaults.TrainingWindow}); {Environment.ProcessorCount} cores, load {Machine.LoadAverage()}");
        Console.WriteLine($"{"window",7} {"seed",5} {"test LL/frame",14} {"epochs (best)",14} {"fit s",7}");
        var summary = new List<(int Window, double TestLl)>();
        foreach (int window in windows)
            foreach (int seed in seeds)
            {
                var options = new RnnRnadeOptions { TrainingWindow = window, MaxEpochs = epochs, Seed = (ulong)seed };
                var clock = Stopwatch.StartNew();
                var model = RnnRnadeModel.Fit(train, options, heldOut ? null : validation);
                double seconds = clock.Elapsed.TotalSeconds;
                double testLl = model.LogDensity(test).Sum(v => (double)v) / test.TotalFrames;
                var s = model.TrainingSummary!;
                summary.Add((window, testLl));
                Console.WriteLine($"{window,7} {seed,5} {testLl,14:F4} {$"{s.EpochsRun} ({s.BestEpoch})",14} {seconds,7:F1}");
                if (curves)
                    Console.WriteLine("        validation LL/frame by epoch: " + string.Join(" ", s.History.Select(h =>
                        h.ValidationLogLikelihood?.ToString("F3", CultureInfo.InvariantCulture) ?? "-")));
            }
        Console.WriteLine();
        foreach (var g in summary.GroupBy(r => r.Window))
            Console.WriteLine($"RESULT window {g.Key,4}{(g.Key == RnnRnadeOptions.Defaults.TrainingWindow ? " (default)" : g.Key == 0 ? " (whole)  " : "          ")}: " +
                              $"mean test LL/frame {g.Average(r => r.TestLl):F4} over {g.Count()} seeds");
        return 0;
    }

    private static int[] Ints(string list) => list.Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();

    /// <summary>One series of <paramref name="length"/> 3-d frames from generator seed <paramref name="seed"/>.</summary>
    internal static SequenceBatch Series(int length, ulong seed)
    {
        var rng = new RandomStream(seed);
        var values = new float[length * 3];
        double phase = 0, ar = 0;
        int regime = 0;
        for (int t = 0; t < length; t++)
        {
            if (rng.NextDouble() < 0.01) regime ^= 1;
            phase += regime == 0 ? 0.1 : 0.25;
            ar = 0.9 * ar + 0.3 * rng.NextGaussian();
            values[3 * t] = (float)(Math.Sin(phase) + 0.1 * rng.NextGaussian());
            values[3 * t + 1] = (float)(Math.Cos(phase) * (1 + regime) + 0.1 * rng.NextGaussian());
            values[3 * t + 2] = (float)(ar + (rng.NextDouble() < 0.05 ? 2 * rng.NextGaussian() : 0));
        }
        return new SequenceBatch(values, new[] { 0, length }, 3);
    }
}
