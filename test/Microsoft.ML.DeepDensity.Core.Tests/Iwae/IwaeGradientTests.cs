using Microsoft.ML.DeepDensity.Layers;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Tests.TestSupport;

namespace Microsoft.ML.DeepDensity.Tests.Iwae;

public class IwaeGradientTests
{
    internal static IwaeNetwork RandomNetwork(int d, int[] latent, IwaeLikelihood likelihood, Activation act, ulong seed, float std = 0.5f,
        int[]? hiddenUnits = null, int[]? deepHiddenUnits = null)
    {
        var net = new IwaeNetwork(d, latent, hiddenUnits ?? new[] { 5 }, deepHiddenUnits ?? new[] { 4 }, act, likelihood);
        var rng = new RandomStream(seed);
        foreach (var p in net.Parameters.Items) rng.FillGaussian(p.Value, 0, std);
        return net;
    }

    internal static float[] Data(int rows, int d, IwaeLikelihood likelihood, ulong seed)
    {
        var rng = new RandomStream(seed);
        var x = new float[rows * d];
        if (likelihood == IwaeLikelihood.Bernoulli) for (int i = 0; i < x.Length; i++) x[i] = rng.NextDouble() < 0.4 ? 1f : 0f;
        else rng.FillGaussian(x);
        return x;
    }

    [Theory]
    [InlineData(1, IwaeLikelihood.Bernoulli, 1)]
    [InlineData(5, IwaeLikelihood.Bernoulli, 1)]
    [InlineData(1, IwaeLikelihood.Gaussian, 1)]
    [InlineData(5, IwaeLikelihood.Gaussian, 1)]
    [InlineData(5, IwaeLikelihood.Bernoulli, 2)]
    [InlineData(3, IwaeLikelihood.Gaussian, 2)]
    public void KSampleBoundGradientMatchesFiniteDifferencesWithNoiseFixed(int k, IwaeLikelihood likelihood, int stochasticLayers)
    {
        const int d = 6, rows = 7;
        var latent = stochasticLayers == 1 ? new[] { 3 } : new[] { 3, 2 };
        var net = RandomNetwork(d, latent, likelihood, Activation.Tanh, seed: 13);
        // 3 rows per block < 7 rows: exercises the parallel blocks and their ordered reduction.
        var objective = new IwaeObjective(net, k, rowsPerBlock: 3);
        var x = Data(rows, d, likelihood, 21);
        var worst = GradientCheck.Check(objective, x, rows, entriesPerTensor: 10, step: 5e-3f);
        Assert.Equal(net.Parameters.Items.Count, worst.Count);
    }

    /// <summary>
    /// Affine heads: with <c>HiddenUnits = {}</c> (and <c>DeepHiddenUnits = {}</c>) every encoder and decoder is a single
    /// <c>DenseLayer</c> (no hidden activation), the path the checks above, which all have hidden layers,
    /// never take; the first encoder then reads x directly and back-propagates into no input gradient. With ReLU (the
    /// Bernoulli default) and tanh, one and two stochastic layers, k = 1 (the VAE) and k = 3.
    /// </summary>
    [Theory]
    [InlineData(1, IwaeLikelihood.Bernoulli, 2, Activation.Relu, true)]
    [InlineData(1, IwaeLikelihood.Bernoulli, 2, Activation.Relu, false)]
    [InlineData(3, IwaeLikelihood.Bernoulli, 1, Activation.Tanh, false)]
    [InlineData(1, IwaeLikelihood.Gaussian, 2, Activation.Tanh, true)]
    [InlineData(3, IwaeLikelihood.Gaussian, 1, Activation.Relu, false)]
    public void TheBoundGradientOfAffineHeadsMatchesFiniteDifferences(int k, IwaeLikelihood likelihood, int stochasticLayers, Activation act, bool deepHidden)
    {
        const int d = 6, rows = 7;
        var latent = stochasticLayers == 1 ? new[] { 3 } : new[] { 3, 2 };
        var net = RandomNetwork(d, latent, likelihood, act, seed: 17, std: 0.3f, hiddenUnits: Array.Empty<int>(),
            deepHiddenUnits: deepHidden ? new[] { 4 } : Array.Empty<int>());
        Assert.All(net.Encoders.Take(1).Concat(net.Decoders.Take(1)), m => Assert.Single(m.Layers));
        var objective = new IwaeObjective(net, k, rowsPerBlock: 3);
        var x = Data(rows, d, likelihood, 23);
        // A step of 1e-3, not 5e-3: at 5e-3 a ReLU unit of decoder 1 changes sign inside the difference (the one-sided
        // slope there is −29.7 against −57.7 on the other side), which is the kink, not the gradient.
        var worst = GradientCheck.Check(objective, x, rows, entriesPerTensor: 10, step: 1e-3f);
        Assert.Equal(net.Parameters.Items.Count, worst.Count);
    }

    /// <summary>
    /// The soft log σ bound of a Gaussian IWAE with affine heads (<see cref="LogSigmaBound"/>, on q(z₁ | x) and p(x | z₁)):
    /// log σ = c + L·tanh((a − c)/L), whose derivative the backward pass takes from the bounded output. A half-width of
    /// 1.5 with centres away from 0 puts many heads on the curved part of the tanh, so a wrong or missing factor shows.
    /// </summary>
    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 1)]
    [InlineData(3, 2)]
    public void TheBoundGradientOfBoundedLogSigmaHeadsMatchesFiniteDifferences(int k, int stochasticLayers)
    {
        const int d = 6, rows = 7;
        var latent = stochasticLayers == 1 ? new[] { 3 } : new[] { 3, 2 };
        var bound = new LogSigmaBound(1.5f, new[] { 0.5f, -0.3f, 0f, 1f, -1f, 0.2f });
        var net = new IwaeNetwork(d, latent, Array.Empty<int>(), new[] { 4 }, Activation.Tanh, IwaeLikelihood.Gaussian, bound);
        var rng = new RandomStream(19);
        foreach (var p in net.Parameters.Items) rng.FillGaussian(p.Value, 0, 0.6f);
        var objective = new IwaeObjective(net, k, rowsPerBlock: 3);
        var x = Data(rows, d, IwaeLikelihood.Gaussian, 29);
        var worst = GradientCheck.Check(objective, x, rows, entriesPerTensor: 10, step: 1e-3f);
        Assert.Equal(net.Parameters.Items.Count, worst.Count);
    }

    [Fact]
    public void GradientIsTheWeightedSumOfPerSampleGradients()
    {
        // Eq. 22: ∇ log (1/k) Σ w_i = Σ w̃_i ∇ log w_i. With k = 1 per "row", duplicating the row k times and weighting by
        // the normalised weights must reproduce the k-sample gradient — checked via the objective's value instead:
        // the bound with k samples is ≥ the mean of single-sample log-weights for the same noise (Jensen), per row.
        var net = RandomNetwork(5, new[] { 2 }, IwaeLikelihood.Bernoulli, Activation.Tanh, 3);
        var x = Data(4, 5, IwaeLikelihood.Bernoulli, 4);
        var ws = new IwaeNetwork.Workspace(net, 4, 6, forTraining: false);
        net.FillNoise(ws, 4, 6, new RandomStream(9));
        net.Forward(x, 4, 6, ws, false);
        var bound = new double[4];
        IwaeNetwork.ReduceRows(ws.LogW, 4, 6, bound, default, 0);
        for (int r = 0; r < 4; r++)
        {
            double mean = 0;
            for (int i = 0; i < 6; i++) mean += ws.LogW[r * 6 + i];
            Assert.True(bound[r] >= mean / 6 - 1e-5, $"row {r}: bound {bound[r]} < mean log w {mean / 6}");
            Assert.True(bound[r] > mean / 6 + 1e-4, "weights are not all equal, so Jensen's gap must be positive");
        }
    }

    [Fact]
    public void NegligibleImportanceWeightsLeaveNoSubnormalFloatsInTheBackwardPass()
    {
        // A poor proposal spreads a row's log-weights over hundreds of nats: most normalised weights are e^-100 and less,
        // which times the 1/batch scale are subnormal floats (x86 microcode assists in the backward GEMMs, #18: the first
        // epoch of the Fashion-MNIST benchmark ran at half speed). They must enter the gradient as 0.
        const int d = 100, n = 8, k = 16;
        var net = RandomNetwork(d, new[] { 4 }, IwaeLikelihood.Bernoulli, Activation.Tanh, seed: 5, std: 4f);
        var x = Data(n, d, IwaeLikelihood.Bernoulli, 6);
        var ws = new IwaeNetwork.Workspace(net, n, k, forTraining: true);
        net.FillNoise(ws, n, k, new RandomStream(7));
        net.Forward(x, n, k, ws, allowParallel: false);
        float scale = -1f / n;
        // The case this test is about: weights whose scaled float would be subnormal.
        int negligible = 0;
        for (int r = 0; r < n; r++)
        {
            var lw = ws.LogW.AsSpan(r * k, k);
            float max = float.NegativeInfinity;
            foreach (var v in lw) max = MathF.Max(max, v);
            double sum = 0;
            foreach (var v in lw) sum += Math.Exp(v - max);
            foreach (var v in lw)
            {
                float scaled = scale * (float)(Math.Exp(v - max) / sum);
                if (scaled != 0f && float.IsSubnormal(scaled)) negligible++;
            }
        }
        Assert.True(negligible > 0, "the network must spread the log-weights far enough to produce subnormal weights");

        IwaeNetwork.ReduceRows(ws.LogW, n, k, new double[n], ws.RowScale, scale);
        var gradients = GradientBuffers.Create(net.Parameters);
        net.Backward(x, n, k, ws, gradients, allowParallel: false);
        Assert.DoesNotContain(ws.RowScale.AsSpan(0, n * k).ToArray(), float.IsSubnormal);
        Assert.Contains(ws.RowScale, v => v != 0f);
        foreach (var buffers in new[] { ws.DDec, ws.DZ, ws.DEnc })
            foreach (var buffer in buffers) Assert.DoesNotContain(buffer, float.IsSubnormal);
        foreach (var p in net.Parameters.Items)
            Assert.False(gradients[p].Any(float.IsSubnormal), $"{p.Name} gradient has a subnormal value");
    }
}
