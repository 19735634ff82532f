using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Nvil;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;
using Xunit.Abstractions;

namespace Microsoft.ML.DeepDensity.Tests.Nvil;

public class NvilTests(ITestOutputHelper output)
{
    private static RowMatrix AllPatterns(int d)
    {
        var m = new RowMatrix(1 << d, d);
        for (int r = 0; r < m.Rows; r++) for (int c = 0; c < d; c++) m[r, c] = (r >> c) & 1;
        return m;
    }

    [Theory]
    [InlineData(new[] { 3 })]
    [InlineData(new[] { 2, 3 })]
    public void EstimateMatchesTheExactLogLikelihoodWithinItsStandardError(int[] latent)
    {
        const int D = 5;
        var net = NvilExact.RandomNetwork(D, latent, seed: 5, std: 1.2f);
        // A broad proposal (weak encoder) keeps the importance weights' variance small enough for the SE to be reliable.
        foreach (var e in net.Encoders)
            foreach (var p in new[] { e.Layers[0].Weight, e.Layers[0].Bias }) System.Numerics.Tensors.TensorPrimitives.Multiply(p.Value, 0.3f, p.Value);
        var model = new NvilModel(net, 4000, 500, 77);
        var rows = AllPatterns(D);
        var estimate = new float[rows.Rows];
        var se = new float[rows.Rows];
        model.LogDensity(rows.AsSpan(), estimate, se);
        double worst = 0;
        for (int r = 0; r < rows.Rows; r++)
        {
            double exact = NvilExact.LogLikelihood(net, rows.Row(r));
            Assert.True(se[r] > 0 && se[r] < 0.5, $"row {r}: standard error {se[r]}");
            Assert.True(Math.Abs(estimate[r] - exact) <= 4 * se[r] + 1e-4, $"row {r}: estimate {estimate[r]} ± {se[r]} vs exact {exact}");
            worst = Math.Max(worst, Math.Abs(estimate[r] - exact) / se[r]);
        }
        output.WriteLine($"worst |estimate − exact| / SE = {worst:F2}");

        // The single-sample bound averages to the exact variational bound (checks log p − log q of every sample).
        var x = rows.Row(11).ToArray();
        var one = new RowMatrix(x, 1, D);
        var draws = Enumerable.Range(0, 4000).Select(s => (double)model.Bound(one, 1, (ulong)s)[0]).ToArray();
        double mean = draws.Average(), sd = Math.Sqrt(draws.Select(v => (v - mean) * (v - mean)).Sum() / (draws.Length - 1));
        double exactBound = NvilExact.Bound(net, x);
        Assert.True(Math.Abs(mean - exactBound) < 4 * sd / Math.Sqrt(draws.Length), $"bound {mean} vs exact {exactBound}");
        Assert.True(exactBound < NvilExact.LogLikelihood(net, x), "the bound exceeds the likelihood");
    }

    /// <summary>Central differences of the exact bound (enumeration) w.r.t. every network parameter: −mean_r ∇ L(x_r).</summary>
    private static float[][] ExactLossGradient(NvilNetwork net, RowMatrix rows)
    {
        double MeanBound() => Enumerable.Range(0, rows.Rows).Average(r => NvilExact.Bound(net, rows.Row(r)));
        const float step = 1e-2f;
        return net.Parameters.Items.Select(p =>
        {
            var g = new float[p.Value.Length];
            for (int i = 0; i < g.Length; i++)
            {
                float orig = p.Value[i];
                p.Value[i] = orig + step; double plus = MeanBound();
                p.Value[i] = orig - step; double minus = MeanBound();
                p.Value[i] = orig;
                g[i] = (float)(-(plus - minus) / (2 * step));
            }
            return g;
        }).ToArray();
    }

    private static NvilOptions Settings(bool nvil) => new()
    {
        InputDependentBaseline = nvil, CenterSignal = nvil, NormalizeSignal = nvil, LocalLearningSignals = true,
        BaselineHiddenUnits = 5, RowsPerBlock = 50,
    };

    /// <summary>
    /// R minibatch gradient estimates of the network parameters (baseline parameters left out), each with the running
    /// statistics restored to <paramref name="state"/> first; inference gradients are multiplied back by max(1, √v) so
    /// that the normalised estimator is compared at the scale of the bound's gradient.
    /// </summary>
    private static List<float[][]> Estimates(NvilObjective objective, NvilNetwork net, RowMatrix batch, int calls, object state, ulong seed)
    {
        var result = new List<float[][]>();
        for (int c = 0; c < calls; c++)
        {
            objective.RestoreState(state);
            objective.ComputeGradient(batch.AsSpan(), batch.Rows, new RandomStream(seed).Fork((ulong)c));
            var g = net.Parameters.Items.Select(p => (float[])p.Gradient.Clone()).ToArray();
            for (int l = 0; l < net.Layers; l++)
            {
                int sig = objective.Mean.Length == 1 ? 0 : l;
                float unscale = (float)Math.Max(1, Math.Sqrt(objective.Variance[sig]));
                if (!objective.NormalizesSignal) unscale = 1f;
                foreach (var p in new[] { net.Encoders[l].Layers[0].Weight, net.Encoders[l].Layers[0].Bias })
                {
                    int t = IndexOf(net, p);
                    for (int i = 0; i < g[t].Length; i++) g[t][i] *= unscale;
                }
            }
            result.Add(g);
        }
        return result;
    }

    private static int IndexOf(NvilNetwork net, Parameter p)
    {
        for (int i = 0; i < net.Parameters.Items.Count; i++) if (ReferenceEquals(net.Parameters.Items[i], p)) return i;
        throw new ArgumentException(p.Name);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void GradientEstimatesAreUnbiasedForTheExactGradientOfTheBound(bool nvil)
    {
        const int D = 4;
        var net = NvilExact.RandomNetwork(D, new[] { 2, 2 }, seed: 9, std: 0.8f);
        var patterns = new[] { new float[] { 1, 0, 1, 1 }, new float[] { 0, 0, 1, 0 }, new float[] { 1, 1, 0, 0 } };
        var distinct = RowMatrix.FromRows(patterns);
        var exact = ExactLossGradient(net, distinct);
        var batch = RowMatrix.FromRows(Enumerable.Range(0, 300).Select(i => patterns[i % 3]).ToArray());

        var objective = new NvilObjective(net, Settings(nvil), new RandomStream(4));
        for (int w = 0; w < 10; w++) objective.ComputeGradient(batch.AsSpan(), batch.Rows, new RandomStream(1000 + (ulong)w));
        var state = objective.CaptureState();
        var estimates = Estimates(objective, net, batch, 300, state, 17);

        var failures = new List<string>();
        for (int t = 0; t < exact.Length; t++)
            for (int i = 0; i < exact[t].Length; i++)
            {
                var v = estimates.Select(e => (double)e[t][i]).ToArray();
                double mean = v.Average(), se = Math.Sqrt(v.Select(a => (a - mean) * (a - mean)).Sum() / (v.Length - 1) / v.Length);
                if (Math.Abs(mean - exact[t][i]) > 4.5 * se + 2e-3)
                    failures.Add($"{net.Parameters.Items[t].Name}[{i}]: mean estimate {mean:F5} ± {se:F5} vs exact {exact[t][i]:F5}");
            }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    /// <summary>
    /// The variance reduction of NVIL's learning signal, measured on a trained model: the same network's inference
    /// gradient estimated from one minibatch with the plain REINFORCE signal l(x, h) and with NVIL's
    /// (l − C_ψ(x) − c) / max(1, √v) (scaled back by max(1, √v), so both estimate the same gradient).
    /// </summary>
    [Fact]
    public void BaselineAndCentringReduceTheInferenceGradientVariance()
    {
        var generator = new NvilModel(NvilExact.RandomNetwork(10, new[] { 3 }, seed: 21, std: 2f), 100, 100, 1);
        var data = generator.Sample(2000, 3);
        var network = new NvilNetwork(10, new[] { 4 });
        network.Initialize(new RandomStream(2), default);
        var options = Settings(nvil: true);
        options.BaselineHiddenUnits = 20; options.LearningRate = 3e-3f; options.MaxEpochs = 15; options.ValidationFraction = 0;
        var trained = new NvilObjective(network, options, new RandomStream(3));
        TrainingLoop.Run(trained, data, null, options, null, default);
        var plain = new NvilObjective(network, Settings(nvil: false), new RandomStream(3));

        var batch = new RowMatrix(data.Values.AsSpan(0, 100 * 10).ToArray(), 100, 10);
        var state = trained.CaptureState();
        double TotalVariance(NvilObjective o)
        {
            var est = Estimates(o, network, batch, 200, state, 5);
            double total = 0;
            foreach (var p in new[] { network.Encoders[0].Layers[0].Weight, network.Encoders[0].Layers[0].Bias })
            {
                int t = IndexOf(network, p);
                for (int i = 0; i < p.Value.Length; i++)
                {
                    var v = est.Select(e => (double)e[t][i]).ToArray();
                    double mean = v.Average();
                    total += v.Select(a => (a - mean) * (a - mean)).Sum() / (v.Length - 1);
                }
            }
            return total;
        }
        double vPlain = TotalVariance(plain), vNvil = TotalVariance(trained);
        output.WriteLine($"inference-gradient variance: REINFORCE {vPlain:G4}, NVIL {vNvil:G4}, reduction ×{vPlain / vNvil:F1}");
        Assert.True(vPlain > 5 * vNvil, $"variance REINFORCE {vPlain} vs NVIL {vNvil}");
    }

    [Fact]
    public void TrainingOnSbnDataApproachesTheGeneratorsExactLogLikelihood()
    {
        // Uniform prior over 8 latent codes, each a distinct, fairly sharp pattern of 12 pixels.
        var generatorNet = NvilExact.RandomNetwork(12, new[] { 3 }, seed: 21, std: 2.5f);
        Array.Clear(generatorNet.Prior.Value);
        var generator = new NvilModel(generatorNet, 100, 100, 1);
        var train = generator.Sample(3000, 3);
        var test = generator.Sample(500, 4);
        double truth = Enumerable.Range(0, test.Rows).Average(r => NvilExact.LogLikelihood(generatorNet, test.Row(r)));

        double HeldOut(int epochs, float learningRate)
        {
            var model = NvilModel.Fit(train, new NvilOptions
            {
                LatentDimensions = new[] { 4 }, BaselineHiddenUnits = 20, LearningRate = learningRate, MaxEpochs = epochs, Seed = 2,
                EvaluationSamples = 500, ValidationFraction = 0,
            });
            return model.AverageLogDensity(test);
        }
        // A negligible learning rate leaves the initial network (data-layer biases at the pixel means).
        double initial = HeldOut(1, 1e-9f), late = HeldOut(40, 1e-2f);
        output.WriteLine($"held-out estimate: initial {initial:F4}, 40 epochs {late:F4}; generator exact {truth:F4}");
        // A factorised q limits how close NVIL gets (its bound is what is maximised); require most of the gap closed.
        Assert.True(late - initial > 0.6 * (truth - initial), $"training closed too little of the gap to the generator ({initial} → {late}, exact {truth})");
        Assert.True(late < truth + 0.1, $"held-out {late} exceeds the generator's exact {truth} by more than noise");
    }

    [Fact]
    public void SnapshotAndRestoreOfTheRunningStatisticsReproduceTheStep()
    {
        var net = NvilExact.RandomNetwork(6, new[] { 3, 2 }, seed: 3, std: 0.7f);
        var objective = new NvilObjective(net, new NvilOptions { RowsPerBlock = 7, SamplesPerExample = 2 }, new RandomStream(1));
        var rows = NvilExact.RandomBits(40, 6, 8);
        objective.ComputeGradient(rows.AsSpan(), rows.Rows, new RandomStream(1));
        var state = objective.CaptureState();
        objective.ComputeGradient(rows.AsSpan(), rows.Rows, new RandomStream(2));
        var first = net.Parameters.Items.Select(p => (float[])p.Gradient.Clone()).ToArray();
        var after = objective.CaptureState();
        objective.ComputeGradient(rows.AsSpan(), rows.Rows, new RandomStream(3));
        objective.RestoreState(state);
        objective.ComputeGradient(rows.AsSpan(), rows.Rows, new RandomStream(2));
        Assert.Equal((double[])after, (double[])objective.CaptureState());
        for (int t = 0; t < first.Length; t++) Assert.Equal(first[t], net.Parameters.Items[t].Gradient);
    }

    [Fact]
    public void AncestralSamplesFollowTheExactDistribution()
    {
        const int D = 4, N = 40_000;
        var net = NvilExact.RandomNetwork(D, new[] { 2, 3 }, seed: 12, std: 1.5f);
        var model = new NvilModel(net, 10, 10, 1);
        var samples = model.Sample(N, 99);
        var counts = new int[1 << D];
        for (int r = 0; r < N; r++)
        {
            int code = 0;
            for (int c = 0; c < D; c++) code |= (int)samples[r, c] << c;
            counts[code]++;
        }
        var patterns = AllPatterns(D);
        double total = 0;
        for (int code = 0; code < counts.Length; code++)
        {
            double p = Math.Exp(NvilExact.LogLikelihood(net, patterns.Row(code)));
            total += p;
            double sd = Math.Sqrt(N * p * (1 - p));
            Assert.True(Math.Abs(counts[code] - N * p) <= 4.5 * sd + 1, $"pattern {code}: {counts[code]} draws, expected {N * p:F0} ± {sd:F0}");
        }
        Assert.Equal(1.0, total, 6);
        Assert.Equal(model.Sample(10, 99).Values, model.Sample(20, 99).Values.AsSpan(0, 10 * D).ToArray());
    }

    /// <summary>The training driver restores the running statistics of the best epoch together with its parameters.</summary>
    [Fact]
    public void TheBestEpochsRunningStatisticsAreRestoredWithItsParameters()
    {
        var generator = new NvilModel(NvilExact.RandomNetwork(10, new[] { 3 }, seed: 21, std: 2f), 10, 10, 1);
        var train = generator.Sample(300, 1);
        var valid = generator.Sample(30, 2);
        var net = new NvilNetwork(10, new[] { 4 });
        net.Initialize(new RandomStream(2), default);
        var options = new NvilOptions { LatentDimensions = new[] { 4 }, BaselineHiddenUnits = 5, LearningRate = 0.05f, MaxEpochs = 12, BatchSize = 20, EarlyStoppingPatience = 0 };
        var objective = new NvilObjective(net, options, new RandomStream(3));
        var states = new Dictionary<int, double[]>();
        var parameters = new Dictionary<int, float[][]>();
        var summary = TrainingLoop.Run(objective, train, valid, options, new SyncProgress(p =>
        {
            states[p.Epoch] = (double[])objective.CaptureState();
            parameters[p.Epoch] = net.Parameters.Snapshot();
        }), default);
        Assert.True(summary.BestEpoch < summary.EpochsRun, $"the best epoch is the last ({summary.BestEpoch}); the check needs an earlier one");
        Assert.NotEqual(states[summary.EpochsRun], states[summary.BestEpoch]);
        Assert.Equal(states[summary.BestEpoch], (double[])objective.CaptureState());
        for (int t = 0; t < net.Parameters.Items.Count; t++) Assert.Equal(parameters[summary.BestEpoch][t], net.Parameters.Items[t].Value);
    }

    /// <summary>A batch of several waves (samples redrawn per wave in pass 2) gives the same bits as one wave.</summary>
    [Fact]
    public void WavesGiveTheSameGradientAsOnePass()
    {
        var net = NvilExact.RandomNetwork(6, new[] { 3, 2 }, seed: 3, std: 0.7f);
        var rows = NvilExact.RandomBits(45, 6, 8);
        var options = new NvilOptions { RowsPerBlock = 2, SamplesPerExample = 2, BaselineHiddenUnits = 3 };
        float[][] Gradient(int waveBlocks)
        {
            var objective = new NvilObjective(net, options, new RandomStream(1)) { WaveBlocks = waveBlocks };
            objective.ComputeGradient(rows.AsSpan(), rows.Rows, new RandomStream(5));
            objective.ComputeGradient(rows.AsSpan(), rows.Rows, new RandomStream(6));
            return objective.Parameters.Items.Select(p => (float[])p.Gradient.Clone()).ToArray();
        }
        var one = Gradient(1000);
        var waves = Gradient(NvilObjective.BlocksPerWave); // 23 blocks: two waves
        for (int t = 0; t < one.Length; t++) Assert.Equal(one[t], waves[t]);
    }

    private sealed class SyncProgress(Action<TrainingProgress> action) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => action(value);
    }
}
