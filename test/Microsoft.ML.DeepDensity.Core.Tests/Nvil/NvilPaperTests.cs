using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Layers;
using Microsoft.ML.DeepDensity.Models.Nvil;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;
using Xunit.Abstractions;

namespace Microsoft.ML.DeepDensity.Tests.Nvil;

/// <summary>
/// NVIL against Mnih &amp; Gregor's Algorithm 1 (papers/002), term by term, on fixed samples: the learning signals
/// (global and local), the baseline, the running statistics, and every gradient by central differences of a float64
/// reference; and the importance-sampled estimate as a bound in expectation that tightens with K.
/// </summary>
public class NvilPaperTests(ITestOutputHelper output)
{
    private const int D = 4;
    private static readonly int[] Latent = { 3, 2 };

    /// <summary>One fixed minibatch of sample rows (row j = r·k + i): data row, samples of every layer, the uniforms that drew them.</summary>
    private sealed record Draw(float[][] Uniforms, float[][][] H);

    /// <summary>h = 1 where u &lt; σ(logit) (the network's sampling rule), layer by layer, from a float64 reference of the encoders.</summary>
    private static Draw SamplesFrom(NvilNetwork net, RowMatrix rows, int k, RandomStream random)
    {
        int m = rows.Rows * k;
        var u = Latent.Select(h => { var a = new float[m * h]; random.FillUniform(a); return a; }).ToArray();
        var samples = new float[m][][];
        for (int j = 0; j < m; j++)
        {
            samples[j] = new float[net.Layers][];
            for (int l = 0; l < net.Layers; l++)
            {
                var logits = NvilExact.Logits(net.Encoders[l].Layers[0], l == 0 ? rows.Row(j / k) : samples[j][l - 1]);
                samples[j][l] = new float[logits.Length];
                for (int c = 0; c < logits.Length; c++) samples[j][l][c] = u[l][j * logits.Length + c] < 1 / (1 + Math.Exp(-logits[c])) ? 1 : 0;
            }
        }
        return new Draw(u, samples);
    }

    /// <summary>C_ψ(x) in float64: the baseline MLP layer by layer (tanh hidden, identity output).</summary>
    private static double[] BaselineOf(Mlp baseline, ReadOnlySpan<float> x)
    {
        var v = x.ToArray().Select(a => (double)a).ToArray();
        foreach (var layer in baseline.Layers)
        {
            var w = layer.Weight.Value;
            var z = layer.Bias.Value.Select(b => (double)b).ToArray();
            for (int i = 0; i < layer.Inputs; i++)
                for (int o = 0; o < layer.Outputs; o++) z[o] += v[i] * w[i * layer.Outputs + o];
            v = layer.Activation switch
            {
                Activation.Tanh => z.Select(Math.Tanh).ToArray(),
                Activation.Identity => z,
                _ => throw new NotSupportedException(layer.Activation.ToString()),
            };
        }
        return v;
    }

    /// <summary>
    /// Learning signal of each inference layer for one sample: layer 0 gets l = log p(x, h) − log q(h | x); with local
    /// signals layer l keeps only the terms that depend on h_l: log p(h_{l−1} | h_l) and above, minus log q of layer l and above.
    /// </summary>
    private static double[] Signals(NvilNetwork net, ReadOnlySpan<float> x, float[][] h, bool local)
    {
        var lp = NvilExact.LogJointTerms(net, x, h);
        var lq = NvilExact.LogPosteriorTerms(net, x, h);
        var signals = new double[local ? net.Layers : 1];
        for (int l = 0; l < signals.Length; l++) signals[l] = lp.Skip(l).Sum() - lq.Skip(l).Sum();
        return signals;
    }

    /// <summary>
    /// Algorithm 1, step by step for two minibatches (so the running statistics are started, then smoothed with α), with
    /// the objective drawing the given samples: l − C_ψ(x) per signal; c, v; and every gradient equal to the central
    /// difference of the float64 loss whose gradient Algorithm 1 accumulates, at the fixed samples and statistics:
    /// −(1/m) Σ_j [log p(x_j, h_j) + Σ_l s_lj log q(h_l,j | ·)] with s = (l − C − c)/max(1, √v) held constant, plus
    /// (1/m) Σ_j Σ_l ½ (l_lj − C_l(x_j) − c_l)² for the baseline (the regression of docs/models/nvil.md).
    /// </summary>
    [Theory]
    [InlineData(true, 1)]
    [InlineData(true, 2)]
    [InlineData(false, 2)]
    public void SignalsStatisticsAndEveryGradientFollowAlgorithm1(bool local, int k)
    {
        var net = NvilExact.RandomNetwork(D, Latent, seed: 31, std: 1.3f);
        var options = new NvilOptions { LatentDimensions = Latent, SamplesPerExample = k, BaselineHiddenUnits = 5, RowsPerBlock = 3, LocalLearningSignals = local };
        var objective = new NvilObjective(net, options, new RandomStream(4));
        // Every baseline weight and bias non-trivial, so that each one's gradient is checked against something.
        var init = new RandomStream(6);
        foreach (var layer in objective.Baseline!.Layers) { init.FillGaussian(layer.Weight.Value, 0f, 0.5f); init.FillGaussian(layer.Bias.Value, 0f, 0.5f); }
        var rows = NvilExact.RandomBits(7, D, 8);
        int m = rows.Rows * k, signals = local ? Latent.Length : 1;
        double alpha = options.SignalSmoothing;
        var previousMean = new double[signals];
        var previousVariance = new double[signals];
        bool normalised = false;

        for (int step = 0; step < 2; step++)
        {
            var draw = SamplesFrom(net, rows, k, new RandomStream(100 + (ulong)step));
            objective.FixedUniforms = draw.Uniforms;
            objective.ComputeGradient(rows.AsSpan(), rows.Rows, new RandomStream(1));

            // l − C_ψ(x) per signal and sample, as the reference computes it and as the objective did.
            var l = new double[signals][];
            var a = new double[signals][];
            for (int s = 0; s < signals; s++) { l[s] = new double[m]; a[s] = new double[m]; }
            for (int j = 0; j < m; j++)
            {
                var sig = Signals(net, rows.Row(j / k), draw.H[j], local);
                var c = BaselineOf(objective.Baseline, rows.Row(j / k));
                for (int s = 0; s < signals; s++) { l[s][j] = sig[s]; a[s][j] = sig[s] - c[s]; }
            }
            for (int s = 0; s < signals; s++)
            {
                var got = objective.SignalMinusBaseline(s, m);
                for (int j = 0; j < m; j++) Assert.True(Math.Abs(got[j] - a[s][j]) < 1e-4, $"step {step}, signal {s}, sample {j}: l − C = {got[j]}, reference {a[s][j]}");
                // c_b and v_b of the minibatch; c ← α c + (1 − α) c_b (the first minibatch starts them).
                double batchMean = a[s].Average(), batchVariance = a[s].Select(v => (v - batchMean) * (v - batchMean)).Average();
                double mean = step == 0 ? batchMean : alpha * previousMean[s] + (1 - alpha) * batchMean;
                double variance = step == 0 ? batchVariance : alpha * previousVariance[s] + (1 - alpha) * batchVariance;
                Assert.Equal(mean, objective.Mean[s], 4);
                Assert.True(Math.Abs(variance - objective.Variance[s]) < 1e-4 * Math.Max(1, variance), $"step {step}, signal {s}: v = {objective.Variance[s]}, reference {variance}");
                previousMean[s] = objective.Mean[s]; previousVariance[s] = objective.Variance[s];
                normalised |= variance > 1;
            }

            // The loss whose gradient Algorithm 1 accumulates, at these samples and statistics.
            var scale = new double[signals][];
            for (int s = 0; s < signals; s++)
                scale[s] = a[s].Select(v => (v - objective.Mean[s]) / Math.Max(1, Math.Sqrt(objective.Variance[s]))).ToArray();
            double Loss()
            {
                double loss = 0;
                for (int j = 0; j < m; j++)
                {
                    var x = rows.Row(j / k);
                    loss -= NvilExact.LogJoint(net, x, draw.H[j]);
                    var lq = NvilExact.LogPosteriorTerms(net, x, draw.H[j]);
                    for (int layer = 0; layer < net.Layers; layer++) loss -= scale[local ? layer : 0][j] * lq[layer];
                    var c = BaselineOf(objective.Baseline, x);
                    for (int s = 0; s < signals; s++) loss += 0.5 * Math.Pow(l[s][j] - c[s] - objective.Mean[s], 2);
                }
                return loss / m;
            }
            var failures = new List<string>();
            foreach (var p in objective.Parameters.Items)
                for (int i = 0; i < p.Value.Length; i++)
                {
                    float original = p.Value[i];
                    p.Value[i] = original + 1e-3f; double plusStep = p.Value[i] - original, plus = Loss();
                    p.Value[i] = original - 1e-3f; double minusStep = original - p.Value[i], minus = Loss();
                    p.Value[i] = original;
                    double reference = (plus - minus) / (plusStep + minusStep);
                    if (Math.Abs(p.Gradient[i] - reference) > 1e-3 + 1e-3 * Math.Abs(reference))
                        failures.Add($"step {step}, {p.Name}[{i}]: gradient {p.Gradient[i]:G6}, reference {reference:G6}");
                }
            Assert.True(failures.Count == 0, string.Join("\n", failures));
        }
        Assert.True(normalised, "no signal's variance exceeded 1: the division by max(1, √v) was not exercised");
    }

    /// <summary>
    /// The estimate log (1/K) Σ p(x, h_i)/q(h_i | x) on a 3-latent × 4-pixel SBN, averaged over 300 evaluation seeds and
    /// summed over all 16 patterns, against the exact Σ log p(x) (enumeration): at K = 1 its expectation is the exact
    /// variational bound; for every K it is at most the exact value; it rises with K and closes most of the gap by K = 64.
    /// </summary>
    [Fact]
    public void EstimateIsALowerBoundInExpectationThatTightensWithK()
    {
        var net = NvilExact.RandomNetwork(D, new[] { 3 }, seed: 13, std: 1.5f);
        // A broad proposal (weak encoder), as in NvilTests: the gap to log p closes within a few hundred samples.
        foreach (var p in new[] { net.Encoders[0].Layers[0].Weight, net.Encoders[0].Layers[0].Bias }) System.Numerics.Tensors.TensorPrimitives.Multiply(p.Value, 0.3f, p.Value);
        var patterns = new RowMatrix(1 << D, D);
        for (int r = 0; r < patterns.Rows; r++) for (int c = 0; c < D; c++) patterns[r, c] = (r >> c) & 1;
        double exact = 0, exactBound = 0;
        for (int r = 0; r < patterns.Rows; r++) { exact += NvilExact.LogLikelihood(net, patterns.Row(r)); exactBound += NvilExact.Bound(net, patterns.Row(r)); }
        var model = new NvilModel(net, 1, 100, 1);
        const int Seeds = 300;
        var means = new List<(int K, double Mean, double Se)>();
        foreach (int k in new[] { 1, 4, 16, 64 })
        {
            var totals = new double[Seeds];
            var estimate = new float[patterns.Rows];
            for (int s = 0; s < Seeds; s++)
            {
                model.WithEvaluation(k, evaluationSeed: (ulong)(1000 * k + s)).LogDensity(patterns.AsSpan(), estimate);
                totals[s] = estimate.Sum(v => (double)v);
            }
            double mean = totals.Average(), se = Math.Sqrt(totals.Select(v => (v - mean) * (v - mean)).Sum() / (Seeds - 1) / Seeds);
            means.Add((k, mean, se));
            output.WriteLine($"K = {k,3}: mean Σ estimate {mean:F4} ± {se:F4}; exact {exact:F4}; exact bound {exactBound:F4}");
        }
        Assert.True(Math.Abs(means[0].Mean - exactBound) < 4 * means[0].Se, $"K = 1: {means[0].Mean} ± {means[0].Se} is not the exact variational bound {exactBound}");
        Assert.True(exact - exactBound > 1, $"the test needs a real gap between the bound {exactBound} and log p {exact}");
        foreach (var (k, mean, se) in means) Assert.True(mean < exact + 4 * se, $"K = {k}: {mean} ± {se} exceeds the exact {exact}");
        for (int i = 1; i < means.Count; i++)
            Assert.True(means[i].Mean > means[i - 1].Mean + 4 * Math.Sqrt(means[i].Se * means[i].Se + means[i - 1].Se * means[i - 1].Se),
                $"K = {means[i].K} ({means[i].Mean}) is not above K = {means[i - 1].K} ({means[i - 1].Mean})");
        Assert.True(exact - means[^1].Mean < 0.2 * (exact - means[0].Mean), $"K = 64 closes too little of the K = 1 gap ({means[^1].Mean} vs {means[0].Mean}, exact {exact})");
    }
}
