using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Tests.TestSupport;

namespace Microsoft.ML.DeepDensity.Tests.Iwae;

public class IwaeGradientTests
{
    internal static IwaeNetwork RandomNetwork(int d, int[] latent, IwaeLikelihood likelihood, Activation act, ulong seed, float std = 0.5f)
    {
        var net = new IwaeNetwork(d, latent, new[] { 5 }, new[] { 4 }, act, likelihood);
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
}
