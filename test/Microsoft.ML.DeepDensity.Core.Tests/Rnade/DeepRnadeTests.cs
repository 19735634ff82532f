using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Tests.TestSupport;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.Rnade;

/// <summary>Deep, order-agnostic RNADE: gradients, exactness of the ensemble density, sampling, training.</summary>
public class DeepRnadeTests
{
    internal static DeepRnadeNetwork RandomNetwork(int d, int h, int layers, int k, Activation act, ulong seed,
        DeepRnadeConnectivity connectivity = DeepRnadeConnectivity.MaskedInput, bool direct = false)
    {
        var net = new DeepRnadeNetwork(d, h, layers, k, act, connectivity, direct);
        var rng = new RandomStream(seed);
        // Direct weights smaller: they make log σ linear in the earlier inputs, whose tails the moment test's grid would cut.
        // Streams by the tensor's index: string.GetHashCode is randomised per process, which made these networks (and
        // the margins of the tests on them) change from run to run.
        for (int i = 0; i < net.Parameters.Items.Count; i++)
        {
            var p = net.Parameters.Items[i];
            rng.Fork((ulong)i).FillGaussian(p.Value, 0, p == net.Direct ? 0.1f : 0.4f);
        }
        return net;
    }

    /// <summary>A random model with a non-trivial standardiser and the given orderings (autoregressive: with direct connections).</summary>
    internal static DeepRnadeModel RandomModel(int d, int[][] orderings, Activation act = Activation.Tanh, ulong seed = 3,
        DeepRnadeConnectivity connectivity = DeepRnadeConnectivity.MaskedInput)
    {
        var net = RandomNetwork(d, 6, 2, 3, act, seed, connectivity, direct: connectivity == DeepRnadeConnectivity.Autoregressive);
        var mean = Enumerable.Range(0, d).Select(i => 0.3f * i - 0.2f).ToArray();
        var scale = Enumerable.Range(0, d).Select(i => 0.7f + 0.4f * i).ToArray();
        return new DeepRnadeModel(net, orderings, new ColumnStandardizer(mean, scale));
    }

    /// <summary>Exposes the training estimate as <see cref="IGradientObjective.Evaluate"/> (the objective's own Evaluate is
    /// the exact validation log-likelihood), so that the finite differences are taken of what the gradient is of.</summary>
    internal sealed class TrainingEstimate(DeepRnadeObjective inner) : IGradientObjective
    {
        public ParameterSet Parameters => inner.Parameters;
        public double ComputeGradient(ReadOnlySpan<float> rows, int count, RandomStream random) => inner.ComputeGradient(rows, count, random);
        public double Evaluate(ReadOnlySpan<float> rows, int count, RandomStream random) => inner.ComputeGradient(rows, count, random);
    }

    [Theory]
    [InlineData(Activation.Tanh, true, 2)]
    [InlineData(Activation.Sigmoid, false, 3)]
    [InlineData(Activation.Relu, true, 1)]
    public void EveryParameterTensorMatchesFiniteDifferences(Activation act, bool orderAgnostic, int layers)
    {
        const int d = 4, rows = 9;
        var net = RandomNetwork(d, 5, layers, 3, act, seed: 4);
        // Rows per block 4 < 9 rows: exercises the multi-block reduction; the masks are drawn from the fixed noise stream.
        var objective = new DeepRnadeObjective(net, 4, orderAgnostic ? null : new[] { 2, 0, 3, 1 }, false, 0, new[] { new[] { 0, 1, 2, 3 } }, new[] { new[] { 0, 1, 2, 3 } });
        var x = new float[rows * d];
        new RandomStream(11).FillGaussian(x);
        var worst = GradientCheck.Check(new TrainingEstimate(objective), x, rows, entriesPerTensor: 20,
            step: act == Activation.Relu ? 2e-4f : 1e-2f);
        Assert.Equal(2 * (layers + 1), worst.Count);
    }

    [Fact]
    public void AMinibatchOfManyBlocksSumsEveryBlockInOrder()
    {
        // 20 blocks of 2 rows: two waves of at most 16 blocks, with the second wave's gradients added to the first's.
        const int d = 3, rows = 40, perBlock = 2;
        var net = RandomNetwork(d, 4, 2, 2, Activation.Tanh, 6);
        var x = new float[rows * d];
        new RandomStream(8).FillGaussian(x);
        var objective = new DeepRnadeObjective(net, perBlock, null, false, 0, new[] { new[] { 0, 1, 2 } }, new[] { new[] { 0, 1, 2 } });
        double total = objective.ComputeGradient(x, rows, new RandomStream(3));
        var actual = net.Parameters.Items.Select(p => (float[])p.Gradient.Clone()).ToArray();
        var expected = net.Parameters.Items.Select(p => new float[p.Value.Length]).ToArray();
        var ws = new DeepRnadeNetwork.Workspace(net, perBlock, forTraining: true);
        double sum = 0;
        for (int b = 0; b < rows / perBlock; b++)
        {
            sum += net.TrainBlock(x.AsSpan(b * perBlock * d, perBlock * d), perBlock, ws, new RandomStream(3).Fork((ulong)b), null, Array.Empty<int[]>(), -1f / rows, false);
            for (int t = 0; t < expected.Length; t++)
            {
                var g = ws.Gradients![net.Parameters.Items[t]];
                for (int i = 0; i < g.Length; i++) expected[t][i] += g[i];
            }
        }
        Assert.Equal(sum, total, 9);
        for (int t = 0; t < expected.Length; t++) Assert.Equal(expected[t], actual[t]);
    }

    [Fact]
    public void OneOrderingsDensityIsTheProductOfItsConditionals()
    {
        // With the masks of a fixed order, the training estimate D·log p(x_{o_d} | x_{o<d}) averaged over d is log p(x | o).
        const int d = 3;
        var order = new[] { 1, 2, 0 };
        var net = RandomNetwork(d, 5, 2, 2, Activation.Tanh, 9);
        var x = new float[d];
        new RandomStream(2).FillGaussian(x);
        var exact = new float[1];
        net.LogDensity(x, 1, order, new DeepRnadeNetwork.Workspace(net, 1, forTraining: false), exact);
        // The block's first draw is the row's observed count: pick, for every count, a seed that draws it.
        var ws = new DeepRnadeNetwork.Workspace(net, 1, forTraining: true);
        double sum = 0;
        for (int observed = 0; observed < d; observed++)
        {
            ulong seed = 0;
            while (new RandomStream(seed).NextInt(d) != observed) seed++;
            sum += net.TrainBlock(x, 1, ws, new RandomStream(seed), order, Array.Empty<int[]>(), 0f, false);
        }
        Assert.Equal(exact[0], sum / d, 4);
    }

    [Theory]
    [InlineData(Activation.Tanh, DeepRnadeConnectivity.MaskedInput)]
    [InlineData(Activation.Relu, DeepRnadeConnectivity.MaskedInput)]
    [InlineData(Activation.Tanh, DeepRnadeConnectivity.Autoregressive)]
    [InlineData(Activation.Relu, DeepRnadeConnectivity.Autoregressive)]
    public void EnsembleDensityIntegratesToOne(Activation act, DeepRnadeConnectivity connectivity)
    {
        var model = RandomModel(2, new[] { new[] { 0, 1 }, new[] { 1, 0 } }, act, connectivity: connectivity);
        var (integral, _, _) = RnadeDensityTests.Quadrature2D(model, 801, -25, 25);
        Assert.InRange(integral, 0.995, 1.005);
        // Each ordering on its own is normalised too, and the two differ (so the test above averages two densities).
        var one = RandomModel(2, new[] { new[] { 1, 0 } }, act, connectivity: connectivity);
        Assert.InRange(RnadeDensityTests.Quadrature2D(one, 801, -25, 25).Integral, 0.995, 1.005);
        // Over a few points (at one point two orderings' densities can nearly coincide).
        var x = new RowMatrix(new float[] { 0.3f, -0.8f, -1.5f, 2f, 2.5f, 0.7f, -0.4f, -2.2f }, 4, 2);
        var first = model.WithOrderings(1).LogDensity(x);
        var other = one.LogDensity(x);
        Assert.True(first.Zip(other, (a, b) => Math.Abs(a - b)).Max() > 0.01, "the two orderings give the same density");
    }

    [Theory]
    [InlineData(DeepRnadeConnectivity.MaskedInput)]
    [InlineData(DeepRnadeConnectivity.Autoregressive)]
    public void EnsembleOfIdenticalOrderingsEqualsTheSingleOrdering(DeepRnadeConnectivity connectivity)
    {
        var order = new[] { 2, 0, 1 };
        var single = RandomModel(3, new[] { order }, connectivity: connectivity);
        var ensemble = RandomModel(3, new[] { order, order, order, order }, connectivity: connectivity);
        var data = new RowMatrix(70, 3);
        new RandomStream(5).FillGaussian(data.Values);
        var a = single.LogDensity(data);
        var b = ensemble.LogDensity(data);
        for (int i = 0; i < a.Length; i++) Assert.Equal(a[i], b[i], 4);
    }

    [Theory]
    [InlineData(DeepRnadeConnectivity.MaskedInput)]
    [InlineData(DeepRnadeConnectivity.Autoregressive)]
    public void SampleMomentsMatchTheEnsembleDensity(DeepRnadeConnectivity connectivity)
    {
        var model = RandomModel(2, new[] { new[] { 0, 1 }, new[] { 1, 0 } }, Activation.Tanh, seed: 8, connectivity: connectivity);
        RnadeDensityTests.AssertSampleMomentsMatchQuadrature(model, 100_000, 0.04);
    }

    [Theory]
    [InlineData(DeepRnadeConnectivity.MaskedInput)]
    [InlineData(DeepRnadeConnectivity.Autoregressive)]
    public void TrainingImprovesTheValidationLikelihood(DeepRnadeConnectivity connectivity)
    {
        // Two correlated, bimodal columns plus noise: something a single Gaussian cannot model.
        var rng = new RandomStream(21);
        var data = new RowMatrix(1500, 3);
        for (int r = 0; r < data.Rows; r++)
        {
            float a = (rng.NextDouble() < 0.5 ? -2f : 2f) + 0.3f * (float)rng.NextGaussian();
            data[r, 0] = a; data[r, 1] = a * a + 0.2f * (float)rng.NextGaussian(); data[r, 2] = (float)rng.NextGaussian();
        }
        var options = new DeepRnadeOptions
        {
            HiddenUnits = 16, Components = 3, MaxEpochs = 15, Orderings = 4, LearningRate = 3e-3f, Seed = 2,
            Connectivity = connectivity, DirectConnections = connectivity == DeepRnadeConnectivity.Autoregressive,
        };
        var model = DeepRnadeModel.Fit(data, options);
        var history = model.TrainingSummary!.History;
        Assert.True(history[^1].ValidationLogLikelihood > history[0].ValidationLogLikelihood + 0.1);
        Assert.Equal(4, model.Orderings.Count);
        Assert.Equal(connectivity, model.Connectivity);
        Assert.Equal(new[] { 0, 1, 2 }, model.Orderings[0]);
        Assert.All(model.Orderings, o => Assert.Equal(new[] { 0, 1, 2 }, o.Order()));
        Assert.Throws<ArgumentException>(() => RnadeModel.Fit(data, options));
    }
}
