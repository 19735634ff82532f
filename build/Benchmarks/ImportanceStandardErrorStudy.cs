using System.Globalization;
using DeepDensity.Samples;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Estimation;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Models.Nvil;

namespace DeepDensity.Benchmarks;

/// <summary>
/// Does an importance-sampled model's per-row standard error describe how its estimate moves with the evaluation seed?
/// Fits an IWAE (Gaussian on the raw 8 × 8 digits, or on the dequantised digits with <c>--dequantise</c>; Bernoulli on
/// pixels above 8 with <c>--binary</c>) or, with <c>--model nvil</c>, an NVIL on the binarised digits, for
/// <c>--epochs</c> epochs on the first <c>--train</c> rows, then scores the first <c>--test</c> test rows with K =
/// <c>--k</c> under evaluation seeds 1..<c>--seeds</c>. For each (row, seed) it takes the effective sample size
/// ESS = (Σw)²/Σw² of the row's weights and the delta-method standard error sd(w)/(√K mean(w)) (which is
/// √(K/(K−1)) · √(1/ESS − 1/K)), and compares it with the row's actual spread (the sd of its estimates across the
/// seeds). For each candidate floor F on the ESS it prints the share of (row, seed) pairs whose standard error would be
/// unknown (ESS &lt; F) and, of the rest, the share whose delta-method standard error is at least half the actual spread
/// and the median ratio of the two: the measurement behind <see cref="ImportanceSampler.MinEffectiveSamples"/>. The same
/// for the alternative it was compared with, a ceiling on the Pareto shape k̂ of the weights' tail (PSIS's diagnostic,
/// computed here only).
/// </summary>
public sealed class ImportanceStandardErrorStudy : IBenchmark
{
    public string Name => "iwae-stderr";
    public string Description => "per-row standard error vs the spread across evaluation seeds, by ESS floor " +
                                 "(--model iwae|nvil --epochs 5 --k 50 --seeds 10 --train 1000 --test 100 --dequantise --binary --fit-seed 1)";

    private static readonly double[] Floors = { 0, 1.5, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 30, 50 };
    private static readonly double[] Shapes = { 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0 };

    public int Run(BenchmarkArgs args)
    {
        string modelName = args.String("model", "iwae");
        int epochs = args.Int("epochs", 5), k = args.Int("k", 50), seeds = args.Int("seeds", 10);
        int trainRows = args.Int("train", 1000), testRows = args.Int("test", 100);
        bool dequantise = args.Flag("dequantise"), binary = args.Flag("binary") || modelName == "nvil";
        ulong fitSeed = (ulong)args.Int("fit-seed", 1);
        if (modelName is not ("iwae" or "nvil")) throw new UsageException($"--model {modelName}: iwae or nvil");
        if (dequantise && binary) throw new UsageException("--dequantise is for the Gaussian IWAE, not binary data");
        var (train, test) = Data(trainRows, testRows, dequantise, binary);
        Console.WriteLine($"{modelName}, {(binary ? "binarised" : dequantise ? "dequantised" : "raw")} digits, {train.Rows} train / {test.Rows} test rows, {epochs} epochs, K = {k}, evaluation seeds 1..{seeds}");

        ImportanceSampledModel model = modelName == "iwae"
            ? IwaeModel.Fit(train, new IwaeOptions
            {
                Likelihood = binary ? IwaeLikelihood.Bernoulli : IwaeLikelihood.Gaussian, MaxEpochs = epochs, Seed = fitSeed,
            })
            : NvilModel.Fit(train, new NvilOptions { MaxEpochs = epochs, Seed = fitSeed });
        int n = test.Rows;
        var ld = new double[seeds, n];
        var ess = new double[seeds, n];
        var reported = new float[seeds, n];
        var shape = new double[seeds, n];
        for (int s = 0; s < seeds; s++)
        {
            var m = modelName == "iwae" ? (ImportanceSampledModel)((IwaeModel)model).WithEvaluation(k, (ulong)(s + 1))
                : ((NvilModel)model).WithEvaluation(k, (ulong)(s + 1));
            var l = new float[n]; var e = new double[n]; var kh = new double[n]; var l2 = new float[n]; var se = new float[n];
            m.LogDensityWithWeights(test.AsSpan(), l, (r, w) => { e[r] = ImportanceSampler.EffectiveSampleSize(w); kh[r] = ParetoShape(w); });
            m.LogDensity(test.AsSpan(), l2, se);
            for (int r = 0; r < n; r++) { ld[s, r] = l[r]; ess[s, r] = e[r]; reported[s, r] = se[r]; shape[s, r] = kh[r]; }
        }
        // The actual spread of each row's estimate across the seeds (rows with a −∞ estimate left out).
        var spread = new double[n];
        for (int r = 0; r < n; r++)
        {
            var v = Enumerable.Range(0, seeds).Select(s => ld[s, r]).ToArray();
            if (v.Any(x => !double.IsFinite(x))) { spread[r] = double.NaN; continue; }
            double mean = v.Average();
            spread[r] = Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (seeds - 1));
        }
        double Delta(double e) => k < 2 ? 0 : Math.Sqrt(k / (k - 1.0) * Math.Max(0, 1 / e - 1.0 / k));
        var pairs = new List<(double Ess, double Delta, double Spread, double Shape)>();
        for (int s = 0; s < seeds; s++)
            for (int r = 0; r < n; r++)
                if (double.IsFinite(spread[r])) pairs.Add((ess[s, r], Delta(ess[s, r]), spread[r], shape[s, r]));
        Console.WriteLine($"rows' actual spread across seeds: median {Peer.Median(spread.Where(double.IsFinite)):F3}, " +
                          $"max {spread.Where(double.IsFinite).DefaultIfEmpty(0).Max():F3}; ESS median {Peer.Median(pairs.Select(p => p.Ess)):F2}; " +
                          $"delta-method SE median {Peer.Median(pairs.Select(p => p.Delta)):F3}, " +
                          $"{pairs.Count(p => p.Delta > 0.99)} of {pairs.Count} (row, seed) pairs ≥ 0.99");
        Console.WriteLine($"k̂ (Pareto shape of the weights' tail) median {Peer.Median(pairs.Select(p => p.Shape)):F2}");
        Console.WriteLine("known when | unknown SE | covered (SE ≥ spread/2) of the rest | median SE/spread of the rest | median spread of the rest");
        foreach (var (label, keep) in Floors.Select(f => ($"ESS ≥ {f:G4}", (Func<(double Ess, double Delta, double Spread, double Shape), bool>)(p => p.Ess >= f)))
                     .Concat(Shapes.Select(t => ($"k̂ ≤ {t:G4}", (Func<(double Ess, double Delta, double Spread, double Shape), bool>)(p => p.Shape <= t)))))
        {
            var kept = pairs.Where(keep).ToArray();
            string covered = kept.Length == 0 ? "-" : $"{100.0 * kept.Count(p => p.Delta >= 0.5 * p.Spread) / kept.Length,5:F1} %";
            string ratio = kept.Length == 0 ? "-" : Peer.Median(kept.Select(p => p.Spread > 0 ? p.Delta / p.Spread : double.PositiveInfinity)).ToString("F3", CultureInfo.InvariantCulture);
            string medSpread = kept.Length == 0 ? "-" : Peer.Median(kept.Select(p => p.Spread)).ToString("F3", CultureInfo.InvariantCulture);
            Console.WriteLine($"{label,11} | {100.0 * (pairs.Count - kept.Length) / pairs.Count,9:F1} % | {covered,11} | {ratio,8} | {medSpread}");
        }
        // What the model reports now (its own rule).
        var all = Enumerable.Range(0, seeds).SelectMany(s => Enumerable.Range(0, n).Where(r => double.IsFinite(spread[r])).Select(r => (Se: (double)reported[s, r], Spread: spread[r]))).ToArray();
        var finite = all.Where(p => double.IsFinite(p.Se)).ToArray();
        Console.WriteLine($"reported (floor {ImportanceSampler.MinEffectiveSamples}): {all.Length - finite.Length} of {all.Length} unknown (+∞); of the finite, " +
                          (finite.Length == 0 ? "none" : $"{100.0 * finite.Count(p => p.Se >= 0.5 * p.Spread) / finite.Length:F1} % ≥ spread/2, median SE/spread {Peer.Median(finite.Select(p => p.Spread > 0 ? p.Se / p.Spread : double.PositiveInfinity)):F3}"));
        return 0;
    }

    /// <summary>The number of largest weights whose tail <see cref="ParetoShape"/> fits: ⌈min(K/5, 3√K)⌉ (PSIS's).</summary>
    private static int ParetoTailLength(int samples) => (int)Math.Ceiling(Math.Min(0.2 * samples, 3 * Math.Sqrt(samples)));

    /// <summary>
    /// The estimated shape k̂ of a generalised Pareto distribution fitted to the upper tail of the weights e^a (the
    /// <see cref="ParetoTailLength"/> largest, as exceedances over the next largest), by the profile-likelihood
    /// posterior mean of Zhang and Stephens (2009) with its weakly informative prior, as in Vehtari et al.'s Pareto
    /// smoothed importance sampling diagnostic (loo's <c>gpdfit</c>). k̂ &lt; 1/2: the weights' variance is finite; above
    /// 0.7 the mean of the weights is not reliable at practical K. +∞ when the tail has fewer than 5 weights or is flat
    /// (all equal, or all zero).
    /// </summary>
    private static double ParetoShape(ReadOnlySpan<double> logWeights)
    {
        int k = logWeights.Length, m = ParetoTailLength(k);
        if (m < 5 || m >= k) return double.PositiveInfinity;
        var sorted = logWeights.ToArray();
        Array.Sort(sorted);
        double max = sorted[k - 1];
        if (!double.IsFinite(max)) return double.PositiveInfinity;
        double cut = Math.Exp(sorted[k - m - 1] - max);
        var x = new double[m];
        for (int i = 0; i < m; i++) x[i] = Math.Exp(sorted[k - m + i] - max) - cut; // ascending exceedances
        if (!(x[m - 1] > 0) || !(x[0] < x[m - 1])) return double.PositiveInfinity;
        const double prior = 3;
        int grid = 30 + (int)Math.Sqrt(m);
        double quartile = x[(int)Math.Floor(m / 4.0 + 0.5) - 1];
        if (!(quartile > 0)) quartile = x.First(v => v > 0);
        var theta = new double[grid];
        var logLik = new double[grid];
        double best = double.NegativeInfinity;
        for (int j = 0; j < grid; j++)
        {
            theta[j] = 1 / x[m - 1] + (1 - Math.Sqrt(grid / (j + 0.5))) / prior / quartile;
            double s = 0;
            foreach (var v in x) s += double.LogP1(-theta[j] * v);
            double kj = s / m; // = −k of the fit at θ_j
            logLik[j] = m * (Math.Log(-theta[j] / kj) - kj - 1);
            if (double.IsNaN(logLik[j])) logLik[j] = double.NegativeInfinity;
            if (logLik[j] > best) best = logLik[j];
        }
        double weightSum = 0, thetaHat = 0;
        for (int j = 0; j < grid; j++) { double w = Math.Exp(logLik[j] - best); weightSum += w; thetaHat += w * theta[j]; }
        thetaHat /= weightSum;
        double shape = 0;
        foreach (var v in x) shape += double.LogP1(-thetaHat * v);
        shape /= m;
        return (shape * m + 0.5 * 10) / (m + 10); // shrunk towards 0.5 (the weakly informative prior)
    }

    private static (RowMatrix Train, RowMatrix Test) Data(int trainRows, int testRows, bool dequantise, bool binary)
    {
        if (dequantise)
        {
            var split = SampleData.LoadDigits();
            return (split.Train.Slice(0, Math.Min(trainRows, split.Train.Rows)), split.Test.Slice(0, Math.Min(testRows, split.Test.Rows)));
        }
        var (pixels, _) = SampleData.ReadDigitsRaw();
        if (trainRows + testRows > pixels.Length) throw new UsageException($"--train + --test exceed the {pixels.Length} digits");
        RowMatrix Rows(int start, int count) => RowMatrix.FromRows(pixels.Skip(start).Take(count)
            .Select(p => binary ? p.Select(v => v > 8 ? 1f : 0f).ToArray() : p).ToArray());
        return (Rows(0, trainRows), Rows(trainRows, testRows));
    }
}
