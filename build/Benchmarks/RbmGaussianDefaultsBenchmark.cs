using System.Globalization;
using DeepDensity.Samples;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rbm;

namespace DeepDensity.Benchmarks;

/// <summary>
/// The Gaussian-visible RBM's defaults against the choices a careful engineer would try and against plain references on
/// the same split (session 37; docs/models/rbm.md, "Correlated real data"): synthetic mixtures of correlated Gaussians
/// (<c>--data mixture</c>: 16 columns, 4 clusters of unequal weight, within-cluster correlation ±0.8, seeded; the user
/// trial's kind of data) and the real digits (<c>--data digits-real</c>). Every variant is fitted for each checkpoint
/// epoch count (a fit for e epochs is the first e epochs of the default-length fit: the rate decays by examples) and
/// scored on validation and test rows (exact log Z up to 20 hidden units, AIS at the library's settings above). The
/// note of each fit gives the divergence retries (at half the rate) the driver needed. References: one full-covariance
/// Gaussian and one diagonal Gaussian fitted in closed form on the training rows (exact), the mixture's own density
/// (synthetic data), and scikit-learn's GaussianMixture with full covariances and its number of components chosen on
/// the validation rows (<c>--no-peer</c> skips it).
/// A variant named "whitened …" fits the RBM to the rows whitened by the training rows' Cholesky factor
/// (z = L⁻¹(x − μ)) and adds the Jacobian −Σ log L_ii: a full linear map the library does not store, measured here only
/// to see whether decorrelating the inputs is what the RBM lacks.
/// </summary>
public sealed class RbmGaussianDefaultsBenchmark : IBenchmark
{
    public string Name => "rbm-gaussian";
    public string Description => "Gaussian RBM defaults vs candidates and full-covariance / diagonal Gaussians / GMM on correlated mixtures and real digits, " +
                                 "validation/test LL curves (--data mixture|digits-real --seeds 1,2,3 --epochs 1,10,0 (0: the default length) " +
                                 "--rows 3000 --clusters 4 --dims 16 --rho 0.8 --spread 2 --shared --data-seed 1 --only NAME,NAME --no-peer; --grid \"lr=0.01;hidden=50\")";

    private static readonly OptionsVariant<RbmOptions>[] Variants =
    [
        new("defaults", _ => { }),
        new("former defaults (sigma 0.7, rate 0.05)", o => { o.VisibleStdDev = 0.7f; o.LearningRate = 0.05f; }),
        new("rate 0.02", o => o.LearningRate = 0.02f),
        new("rate 0.01", o => o.LearningRate = 0.01f),
        new("rate 0.005", o => o.LearningRate = 0.005f),
        new("rate 0.002", o => o.LearningRate = 0.002f),
        new("momentum 0", o => o.Momentum = 0),
        new("momentum 0.9, rate 0.01", o => { o.Momentum = 0.9f; o.LearningRate = 0.01f; }),
        new("weight decay 1e-3", o => o.WeightDecay = 1e-3f),
        new("weight decay 0", o => o.WeightDecay = 0),
        new("hidden 20 (exact log Z)", o => o.HiddenUnits = 20),
        new("hidden 50", o => o.HiddenUnits = 50),
        new("hidden 200", o => o.HiddenUnits = 200),
        new("CD-1", o => o.Algorithm = RbmTrainingAlgorithm.ContrastiveDivergence),
        new("PCD-5", o => o.GibbsSteps = 5),
        new("sigma 1", o => o.VisibleStdDev = 1),
        new("sigma 0.5", o => o.VisibleStdDev = 0.5f),
        new("sigma learned", o => o.VisibleStdDev = 0),
        new("sigma 0.5, rate 0.02", o => { o.VisibleStdDev = 0.5f; o.LearningRate = 0.02f; }),
        new("sigma 0.5, rate 0.03", o => { o.VisibleStdDev = 0.5f; o.LearningRate = 0.03f; }),
        new("sigma 0.6, rate 0.03", o => { o.VisibleStdDev = 0.6f; o.LearningRate = 0.03f; }),
        new("sigma 0.5, rate 0.02, hidden 200", o => { o.VisibleStdDev = 0.5f; o.LearningRate = 0.02f; o.HiddenUnits = 200; }),
        new("whitened", _ => { }),
        new("whitened, sigma 0.5, rate 0.02", o => { o.VisibleStdDev = 0.5f; o.LearningRate = 0.02f; }),
        new("whitened, rate 0.01", o => o.LearningRate = 0.01f),
    ];

    private static readonly Dictionary<string, Action<RbmOptions, float>> GridKeys = new()
    {
        ["lr"] = (o, f) => o.LearningRate = f,
        ["momentum"] = (o, f) => o.Momentum = f,
        ["wd"] = (o, f) => o.WeightDecay = f,
        ["lrdecay"] = (o, f) => o.LearningRateDecay = f,
        ["batch"] = (o, f) => o.BatchSize = (int)f,
        ["hidden"] = (o, f) => o.HiddenUnits = (int)f,
        ["sigma"] = (o, f) => o.VisibleStdDev = f,
        ["k"] = (o, f) => o.GibbsSteps = (int)f,
        ["cd"] = (o, f) => o.Algorithm = f != 0 ? RbmTrainingAlgorithm.ContrastiveDivergence : RbmTrainingAlgorithm.PersistentContrastiveDivergence,
        ["epochs"] = (o, f) => o.MaxEpochs = (int)f,
    };

    public int Run(BenchmarkArgs args)
    {
        var study = new DefaultsStudy<RbmOptions>(args, Variants, "1,2,3", GridKeys);
        var checkpoints = args.String("epochs", "1,10,0").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        string dataName = args.String("data", "mixture");
        RowMatrix train, valid, test;
        Func<RowMatrix, double>? truth = null;
        if (dataName == "digits-real")
        {
            var g = SampleData.LoadDigits();
            (train, valid, test) = (g.Train, g.Validation, g.Test);
            Console.WriteLine($"real digits (dequantised, 63 dims): train {train.Rows}, validation {valid.Rows}, test {test.Rows}");
        }
        else if (dataName == "mixture")
        {
            int rows = args.Int("rows", 3000), k = args.Int("clusters", 4), d = args.Int("dims", 16), dataSeed = args.Int("data-seed", 1);
            double rho = args.Double("rho", 0.8), spread = args.Double("spread", 2);
            bool shared = args.Flag("shared");
            var mixture = CorrelatedMixture.Create(d, k, rho, dataSeed, spread, shared);
            train = mixture.Sample(rows, dataSeed * 1000 + 1);
            valid = mixture.Sample(Math.Max(500, rows / 3), dataSeed * 1000 + 2);
            test = mixture.Sample(Math.Max(500, rows / 3), dataSeed * 1000 + 3);
            truth = x => Enumerable.Range(0, x.Rows).Average(r => mixture.LogDensity(x.Row(r)));
            Console.WriteLine(FormattableString.Invariant($"correlated mixture (data seed {dataSeed}): {d} columns, {k} clusters of weights {string.Join(", ", mixture.Weights.Select(w => w.ToString("F2", CultureInfo.InvariantCulture)))}, within-cluster correlation ±{rho}{(shared ? " along one shared direction" : "")}, cluster means N(0, {spread}²) per column; ") +
                              $"train {train.Rows}, validation {valid.Rows}, test {test.Rows}");
        }
        else throw new UsageException($"--data {dataName}: mixture or digits-real.");

        var defaults = new RbmOptions { VisibleType = RbmVisibleType.Gaussian };
        int defaultEpochs = defaults.EpochsFor(train.Rows);
        Console.WriteLine($"library defaults (Gaussian units): H {defaults.HiddenUnits}, {defaults.Algorithm}-{defaults.GibbsSteps}, batch {defaults.BatchSize}, lr {defaults.LearningRateFor(defaults.VisibleType)}, " +
                          $"momentum {defaults.Momentum}, weight decay {defaults.WeightDecay}, σ {defaults.VisibleStdDev}, {defaultEpochs} epochs (MaxEpochs {defaults.MaxEpochs}); AIS {defaults.AisRuns} runs × {defaults.AisTemperatures} β");
        Console.WriteLine($"seeds {string.Join(",", study.Seeds)}; checkpoints (epochs) {string.Join(",", checkpoints)}");

        // References on the same split.
        var (fullValid, fullTest) = RbmTablesBenchmark.GaussianReference(train, valid, test);
        var (diagValid, diagTest) = DiagonalGaussian(train, valid, test);
        study.Add("reference: one full-covariance Gaussian", 0, 0, new StudyOutcome(fullValid, fullTest, 0));
        study.Add("reference: one diagonal Gaussian", 0, 0, new StudyOutcome(diagValid, diagTest, 0));
        if (truth is not null) study.Add("reference: the true mixture density", 0, 0, new StudyOutcome(truth(valid), truth(test), 0));
        if (!args.Flag("no-peer")) GmmPeer(study, train, valid, test);

        var whitener = Whitener.Fit(train);
        foreach (var v in study.Variants)
        {
            bool whiten = v.Name.StartsWith("whitened", StringComparison.Ordinal);
            var (tr, va, te) = whiten ? (whitener.Apply(train), whitener.Apply(valid), whitener.Apply(test)) : (train, valid, test);
            double jacobian = whiten ? whitener.LogJacobian : 0;
            foreach (int seed in study.Seeds)
                foreach (int epochs in checkpoints)
                {
                    var o = new RbmOptions { Seed = (ulong)seed, MaxEpochs = epochs, VisibleType = RbmVisibleType.Gaussian };
                    v.Set(o);
                    var clock = System.Diagnostics.Stopwatch.StartNew();
                    RbmModel model;
                    try { model = RbmModel.Fit(tr, o); }
                    catch (Microsoft.ML.DeepDensity.Training.TrainingDivergedException e)
                    {
                        study.Add(v.Name, epochs, seed, StudyOutcome.Diverged(clock.Elapsed.TotalSeconds), e.Message[..Math.Min(120, e.Message.Length)] + "…");
                        continue;
                    }
                    var s = model.TrainingSummary!;
                    var errors = s.History.Where(p => p.Metrics is not null).Select(p => p.Metrics!["recon_error"]).ToArray();
                    string note = FormattableString.Invariant($"retries {s.DivergenceRecoveries}, final rate {s.History[^1].LearningRate:G3}, recon error first/last {errors.FirstOrDefault():G3}/{errors.LastOrDefault():G3}, ") +
                                  FormattableString.Invariant($"max {(errors.Length > 0 ? errors.Max() : 0):G3}; log Z {model.LogPartition:F2} ± {model.LogPartitionStandardError:F2} ({model.LogPartitionMethod})");
                    study.Add(v.Name, epochs, seed, new StudyOutcome(Mean(model.LogDensity(va)) + jacobian, Mean(model.LogDensity(te)) + jacobian, clock.Elapsed.TotalSeconds), note);
                }
        }
        study.PrintTable(epochs => epochs == 0 ? $"default ({defaultEpochs})" : epochs.ToString(CultureInfo.InvariantCulture));
        return 0;
    }

    private static double Mean(float[] values) => values.Average(x => (double)x);

    private static void GmmPeer(DefaultsStudy<RbmOptions> study, RowMatrix train, RowMatrix valid, RowMatrix test)
    {
        string a = string.Join(' ', $"\"{Peer.WriteMatrix(train, "rbm-gaussian-train")}\"", $"\"{Peer.WriteMatrix(valid, "rbm-gaussian-valid")}\"",
            $"\"{Peer.WriteMatrix(test, "rbm-gaussian-test")}\"", train.Columns.ToString(CultureInfo.InvariantCulture), "8", "0");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (code, stdout, stderr) = Peer.RunPython(Peer.Script("gmm_sklearn.py"), a, TimeSpan.FromMinutes(30));
        if (code != 0) { Console.WriteLine($"scikit-learn GaussianMixture: failed ({code}): {stderr.Trim()}"); return; }
        var values = Peer.ReadValues(stdout);
        Console.WriteLine("scikit-learn GaussianMixture validation by k: " + string.Join(", ", values.Where(kv => kv.Key.StartsWith("VALID_K", StringComparison.Ordinal))
            .Select(kv => FormattableString.Invariant($"{kv.Key[7..]}: {kv.Value:F2}"))));
        study.Add($"reference: scikit-learn GaussianMixture (full, k {values["K"]} of 1–8 on validation)", 0, 0,
            new StudyOutcome(values["VALID"], values["TEST"], clock.Elapsed.TotalSeconds));
    }

    /// <summary>One diagonal Gaussian by maximum likelihood on the training rows (exact).</summary>
    private static (double Valid, double Test) DiagonalGaussian(RowMatrix train, RowMatrix valid, RowMatrix test)
    {
        int n = train.Rows, d = train.Columns;
        var mu = new double[d];
        var variance = new double[d];
        for (int r = 0; r < n; r++) for (int j = 0; j < d; j++) mu[j] += train[r, j] / (double)n;
        for (int r = 0; r < n; r++) for (int j = 0; j < d; j++) variance[j] += (train[r, j] - mu[j]) * (train[r, j] - mu[j]) / n;
        double Score(RowMatrix x)
        {
            double total = 0;
            for (int r = 0; r < x.Rows; r++)
                for (int j = 0; j < d; j++)
                {
                    double z = x[r, j] - mu[j];
                    total += -0.5 * (z * z / variance[j] + Math.Log(2 * Math.PI * variance[j]));
                }
            return total / x.Rows;
        }
        return (Score(valid), Score(test));
    }

    /// <summary>z = L⁻¹(x − μ) with L Lᵀ the training rows' covariance; log|dz/dx| = −Σ log L_ii.</summary>
    private sealed class Whitener
    {
        private double[] _mu = [];
        private double[,] _l = new double[0, 0];
        public double LogJacobian { get; private set; }

        public static Whitener Fit(RowMatrix train)
        {
            int n = train.Rows, d = train.Columns;
            var mu = new double[d];
            for (int r = 0; r < n; r++) for (int j = 0; j < d; j++) mu[j] += train[r, j] / (double)n;
            var cov = new double[d, d];
            for (int r = 0; r < n; r++)
                for (int i = 0; i < d; i++)
                    for (int j = 0; j < d; j++) cov[i, j] += (train[r, i] - mu[i]) * (train[r, j] - mu[j]) / n;
            var l = new double[d, d];
            for (int i = 0; i < d; i++)
                for (int j = 0; j <= i; j++)
                {
                    double s = cov[i, j];
                    for (int k = 0; k < j; k++) s -= l[i, k] * l[j, k];
                    l[i, j] = i == j ? Math.Sqrt(s) : s / l[j, j];
                }
            double logJ = 0;
            for (int i = 0; i < d; i++) logJ -= Math.Log(l[i, i]);
            return new Whitener { _mu = mu, _l = l, LogJacobian = logJ };
        }

        public RowMatrix Apply(RowMatrix x)
        {
            int d = x.Columns;
            var z = new float[x.Rows * d];
            var zi = new double[d];
            for (int r = 0; r < x.Rows; r++)
                for (int i = 0; i < d; i++)
                {
                    double s = x[r, i] - _mu[i];
                    for (int k = 0; k < i; k++) s -= _l[i, k] * zi[k];
                    zi[i] = s / _l[i, i];
                    z[r * d + i] = (float)zi[i];
                }
            return new RowMatrix(z, x.Rows, d);
        }
    }
}

/// <summary>
/// A seeded mixture of correlated Gaussians (the session-37 trial's kind of data): cluster k has weight ∝ k + 1, mean
/// N(0, spread²) per column, column scales in [0.5, 2] and correlation ρ·s_i·s_j with random signs s (so every cluster is
/// strongly correlated, along a different direction; with <c>shared</c> every cluster has the same signs and scales, so
/// the columns are strongly correlated overall too).
/// </summary>
public sealed class CorrelatedMixture
{
    private readonly int _d;
    private readonly double[][] _means;
    private readonly double[][,] _cholesky;
    private readonly double[] _logNormalizer;
    public double[] Weights { get; }

    private CorrelatedMixture(int d, double[] weights, double[][] means, double[][,] cholesky)
    {
        _d = d; Weights = weights; _means = means; _cholesky = cholesky;
        _logNormalizer = cholesky.Select(l =>
        {
            double logDet = 0;
            for (int i = 0; i < d; i++) logDet += Math.Log(l[i, i]);
            return -logDet - 0.5 * d * Math.Log(2 * Math.PI);
        }).ToArray();
    }

    public static CorrelatedMixture Create(int d, int k, double rho, int seed, double spread = 2, bool shared = false)
    {
        var r = new Random(seed);
        double Normal() => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());
        var weights = Enumerable.Range(1, k).Select(i => (double)i).ToArray();
        double total = weights.Sum();
        for (int i = 0; i < k; i++) weights[i] /= total;
        var means = new double[k][];
        var chol = new double[k][,];
        double[]? sharedScale = null, sharedSign = null;
        for (int c = 0; c < k; c++)
        {
            means[c] = Enumerable.Range(0, d).Select(_ => spread * Normal()).ToArray();
            var scale = Enumerable.Range(0, d).Select(_ => 0.5 + 1.5 * r.NextDouble()).ToArray();
            var sign = Enumerable.Range(0, d).Select(_ => r.NextDouble() < 0.5 ? -1.0 : 1.0).ToArray();
            if (shared && c > 0) { scale = sharedScale!; sign = sharedSign!; }
            sharedScale ??= scale; sharedSign ??= sign;
            var cov = new double[d, d];
            for (int i = 0; i < d; i++)
                for (int j = 0; j < d; j++) cov[i, j] = scale[i] * scale[j] * (i == j ? 1 : rho * sign[i] * sign[j]);
            var l = new double[d, d];
            for (int i = 0; i < d; i++)
                for (int j = 0; j <= i; j++)
                {
                    double s = cov[i, j];
                    for (int q = 0; q < j; q++) s -= l[i, q] * l[j, q];
                    l[i, j] = i == j ? Math.Sqrt(s) : s / l[j, j];
                }
            chol[c] = l;
        }
        return new CorrelatedMixture(d, weights, means, chol);
    }

    public RowMatrix Sample(int n, int seed)
    {
        var r = new Random(seed);
        double Normal() => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());
        var x = new float[n * _d];
        var e = new double[_d];
        for (int row = 0; row < n; row++)
        {
            double u = r.NextDouble();
            int c = 0;
            while (c < Weights.Length - 1 && u >= Weights[c]) { u -= Weights[c]; c++; }
            for (int i = 0; i < _d; i++) e[i] = Normal();
            for (int i = 0; i < _d; i++)
            {
                double s = _means[c][i];
                for (int j = 0; j <= i; j++) s += _cholesky[c][i, j] * e[j];
                x[row * _d + i] = (float)s;
            }
        }
        return new RowMatrix(x, n, _d);
    }

    public double LogDensity(ReadOnlySpan<float> x)
    {
        var terms = new double[Weights.Length];
        var z = new double[_d];
        for (int c = 0; c < Weights.Length; c++)
        {
            double q = 0;
            for (int i = 0; i < _d; i++)
            {
                double s = x[i] - _means[c][i];
                for (int j = 0; j < i; j++) s -= _cholesky[c][i, j] * z[j];
                z[i] = s / _cholesky[c][i, i];
                q += z[i] * z[i];
            }
            terms[c] = Math.Log(Weights[c]) + _logNormalizer[c] - 0.5 * q;
        }
        double m = terms.Max();
        return m + Math.Log(terms.Sum(t => Math.Exp(t - m)));
    }
}
