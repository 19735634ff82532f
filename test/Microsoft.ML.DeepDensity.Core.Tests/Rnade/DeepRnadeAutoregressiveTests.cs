using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Tests.TestSupport;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.Rnade;

/// <summary>The deep RNADE with autoregressive (MADE-masked) connectivity: gradients through the masks, the
/// autoregressive property, exactness and normalisation of the ensemble density, save/load, training.</summary>
public class DeepRnadeAutoregressiveTests
{
    private static DeepRnadeNetwork RandomNetwork(int d, int h, int layers, int k, Activation act, ulong seed, bool direct = false)
        => DeepRnadeTests.RandomNetwork(d, h, layers, k, act, seed, DeepRnadeConnectivity.Autoregressive, direct);

    [Theory]
    [InlineData(Activation.Tanh, true, 2, false)]
    [InlineData(Activation.Tanh, true, 2, true)]
    [InlineData(Activation.Sigmoid, false, 3, true)]
    [InlineData(Activation.Relu, true, 1, true)]
    public void EveryParameterTensorMatchesFiniteDifferences(Activation act, bool orderAgnostic, int layers, bool direct)
    {
        const int d = 4, rows = 9;
        // H = 7 > D−1: every hidden degree occurs, and the masks leave some weights of every tensor connected.
        var net = RandomNetwork(d, 7, layers, 3, act, seed: 4, direct);
        var orderings = new[] { new[] { 2, 0, 3, 1 }, new[] { 0, 1, 2, 3 }, new[] { 3, 1, 0, 2 } };
        // Rows per block 4 < 9 rows: several blocks, each with its own ordering drawn from the fixed noise stream.
        var objective = new DeepRnadeObjective(net, 4, orderAgnostic ? null : orderings[0], false, 0, orderings[..1], orderings);
        var x = new float[rows * d];
        new RandomStream(11).FillGaussian(x);
        var worst = GradientCheck.Check(new DeepRnadeTests.TrainingEstimate(objective), x, rows, entriesPerTensor: 20,
            step: act == Activation.Relu ? 2e-4f : 1e-2f);
        Assert.Equal(2 * (layers + 1) + (direct ? 1 : 0), worst.Count);
    }

    [Theory]
    [InlineData(1, false)]
    [InlineData(3, false)]
    [InlineData(2, true)]
    public void OutputsOfADimensionIgnoreItAndTheDimensionsAfterIt(int layers, bool direct)
    {
        const int d = 5;
        var net = RandomNetwork(d, 9, layers, 2, Activation.Tanh, seed: 12, direct);
        var order = new[] { 3, 0, 4, 2, 1 };
        var ws = new DeepRnadeNetwork.Workspace(net, 1, forTraining: false);
        ws.View!.Apply(order);
        int k3 = net.K3;
        var x = new float[d];
        new RandomStream(1).FillGaussian(x);
        var baseline = ws.View.Forward(x, 1, ws.Mlp).ToArray();
        for (int p = 0; p < d; p++)
        for (int q = 0; q < d; q++)
        {
            var moved = (float[])x.Clone();
            moved[order[q]] += 1.5f;
            var outputs = ws.View.Forward(moved, 1, ws.Mlp).Slice(order[p] * k3, k3).ToArray();
            var before = baseline.AsSpan(order[p] * k3, k3).ToArray();
            if (q >= p) Assert.Equal(before, outputs);            // exactly: the masked weights are zeros
            else Assert.NotEqual(before, outputs);                // and the earlier dimensions do reach it
        }
    }

    [Fact]
    public void TrainingValueOfAnOrderingIsItsExactLogDensity()
    {
        const int d = 4, rows = 6;
        var net = RandomNetwork(d, 8, 2, 2, Activation.Relu, 9);
        var order = new[] { 1, 3, 0, 2 };
        var x = new float[rows * d];
        new RandomStream(2).FillGaussian(x);
        var exact = new float[rows];
        net.LogDensity(x, rows, order, new DeepRnadeNetwork.Workspace(net, rows, forTraining: false), exact);
        var ws = new DeepRnadeNetwork.Workspace(net, rows, forTraining: true);
        double trained = net.TrainBlock(x, rows, ws, new RandomStream(1), order, Array.Empty<int[]>(), 0f, false);
        Assert.Equal(exact.Sum(v => (double)v), trained, 3);
        // A different ordering gives a different (also normalised) density.
        net.LogDensity(x, rows, new[] { 0, 1, 2, 3 }, new DeepRnadeNetwork.Workspace(net, rows, forTraining: false), exact);
        Assert.NotEqual(exact.Sum(v => (double)v), trained, 2);
    }

    [Fact]
    public void SaveAndLoadGiveTheSameBitsAndKeepTheConnectivity()
    {
        var model = DeepRnadeTests.RandomModel(4, new[] { new[] { 0, 1, 2, 3 }, new[] { 3, 1, 2, 0 } }, Activation.Relu, connectivity: DeepRnadeConnectivity.Autoregressive);
        using var stream = new MemoryStream();
        model.Save(stream);
        stream.Position = 0;
        var loaded = Assert.IsType<DeepRnadeModel>(DensityModel.Load(stream));
        Assert.Equal(DeepRnadeConnectivity.Autoregressive, loaded.Connectivity);
        Assert.True(loaded.DirectConnections);
        var data = new RowMatrix(33, 4);
        new RandomStream(6).FillGaussian(data.Values);
        Assert.Equal(model.LogDensity(data), loaded.LogDensity(data));
        using var again = new MemoryStream();
        loaded.Save(again);
        Assert.Equal(stream.ToArray(), again.ToArray());
    }

    /// <summary>A row scored alone takes the one-row path (its D conditionals as the lanes of one mixture call, D not a
    /// multiple of 8 here, and D above 8): the same bits as the row inside a block, for one ordering and for an
    /// ensemble.</summary>
    [Theory]
    [InlineData(3, 1)]
    [InlineData(11, 1)]
    [InlineData(11, 3)]
    public void ARowScoredAloneHasTheBitsOfTheRowInABlock(int d, int orderings)
    {
        var data = new RowMatrix(300, d);
        new RandomStream(5).FillGaussian(data.Values);
        for (int i = 0; i < data.Values.Length; i += d) data.Values[i + 1] += 0.8f * data.Values[i]; // a dependence to learn
        var model = DeepRnadeModel.Fit(data, new DeepRnadeOptions { HiddenUnits = 12, Components = 3, Orderings = orderings, MaxEpochs = 3, Seed = 4 });
        var block = model.LogDensity(data);
        var one = new float[1];
        for (int r = 0; r < data.Rows; r += 13)
        {
            model.LogDensity(data.Row(r), one);
            Assert.True(BitConverter.SingleToInt32Bits(one[0]) == BitConverter.SingleToInt32Bits(block[r]), $"row {r}: alone {one[0]:R}, in a block {block[r]:R}");
        }
    }

    [Fact]
    public void TheDefaultsAreAutoregressiveWithDirectConnectionsWhichTheMaskedInputIgnores()
    {
        var data = new RowMatrix(40, 2);
        new RandomStream(1).FillGaussian(data.Values);
        var fit = DeepRnadeModel.Fit(data, new DeepRnadeOptions { HiddenUnits = 4, MaxEpochs = 1 });
        Assert.Equal(DeepRnadeConnectivity.Autoregressive, fit.Connectivity);
        Assert.True(fit.DirectConnections);
        var masked = DeepRnadeModel.Fit(data, new DeepRnadeOptions { HiddenUnits = 4, MaxEpochs = 1, Connectivity = DeepRnadeConnectivity.MaskedInput });
        Assert.False(masked.DirectConnections);
    }
}
