using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// A row scored alone (PredictionEngine, a model loaded into ML.NET: one row per call, on the one-row paths) gives the
/// same bits as the same row inside a block, for sizes that take the packed GEMM path and a 3K not a multiple of 8.
/// </summary>
public class OneRowScoringTests
{
    private static void AssertRowsAloneEqualTheBlock(DensityModel model, int rows, ulong seed)
    {
        int d = model.Dimension;
        var x = new float[rows * d];
        new RandomStream(seed).FillGaussian(x);
        var all = model.LogDensity(new RowMatrix(x, rows, d));
        var one = new float[1];
        for (int r = 0; r < rows; r++)
        {
            model.LogDensity(x.AsSpan(r * d, d), one);
            Assert.Equal(all[r], one[0]);
        }
    }

    [Theory]
    [InlineData(Activation.Relu, 50, 10)]
    [InlineData(Activation.Sigmoid, 37, 3)]
    [InlineData(Activation.Tanh, 64, 11)]
    [InlineData(Activation.Relu, 20, 25)] // 3K = 75: the row kernel's 64-column pass, then 8-wide
    public void RnadeRowAloneEqualsTheBlock(Activation act, int h, int k)
    {
        var net = Tests.Rnade.RnadeGradientTests.RandomNetwork(d: 12, h: h, k: k, act, seed: 3);
        AssertRowsAloneEqualTheBlock(new RnadeModel(net, Enumerable.Range(0, 12).ToArray(), ColumnStandardizer.Identity(12)), 40, 7);
    }

    /// <summary>The one-row path on each vector width the CPU has (AVX2, AVX-512) against the block forward pass, over
    /// shapes that take every chain kernel (3K padded to 8, 16, 32, 80 and 128), dimensions that leave a partial group
    /// of four and a partial 8-lane mixture, H not a multiple of 8 or 16, and H above the GEMM's 256-long k-block.</summary>
    [Theory]
    [InlineData(1, 5, 1, Activation.Relu)]
    [InlineData(7, 13, 2, Activation.Tanh)]    // 3K = 6: one 8-lane vector
    [InlineData(9, 37, 5, Activation.Sigmoid)] // 3K = 15 → 16
    [InlineData(5, 19, 7, Activation.Relu)]    // 3K = 21 → 32
    [InlineData(10, 24, 22, Activation.Relu)]  // 3K = 66 → 80: blocks of four vectors, two and one
    [InlineData(6, 16, 42, Activation.Tanh)]   // 3K = 126 → 128
    [InlineData(3, 300, 3, Activation.Relu)]   // two k-blocks
    [InlineData(2, 513, 1, Activation.Sigmoid)] // three k-blocks
    public void RnadeRowAloneEqualsTheBlockOnEveryKernelPath(int d, int h, int k, Activation act)
    {
        var net = Tests.Rnade.RnadeGradientTests.RandomNetwork(d, h, k, act, seed: (ulong)(d * 1000 + h));
        const int rows = 11;
        var x = new float[rows * d];
        new RandomStream(5).FillGaussian(x);
        var block = new float[rows];
        net.Forward(x, rows, new RnadeNetwork.Workspace(net, rows, forTraining: false), block, 0f, false);
        var ws = new RnadeNetwork.RowWorkspace(net);
        foreach (var level in new[] { SimdLevel.Avx2, SimdLevel.Avx512 })
        {
            if (level > KernelPath.Best) continue;
            using var path = KernelPath.Force(level);
            for (int r = 0; r < rows; r++)
            {
                float? one = net.LogDensityOfRow(x.AsSpan(r * d, d), ws);
                Assert.True(one.HasValue, $"no one-row path on {level}");
                Assert.True(block[r] == one!.Value, $"{level}, row {r}: block {block[r]:R}, alone {one.Value:R}");
            }
        }
        using (KernelPath.Force(SimdLevel.Portable)) Assert.Null(net.LogDensityOfRow(x.AsSpan(0, d), ws));
    }

    [Theory]
    [InlineData(9, 3, 2)]  // layer widths 27 and 18: 8-wide and scalar columns of the row kernel
    [InlineData(21, 4, 2)] // widths 84 and 42: its 64-column pass too
    [InlineData(6, 5, 2)]  // five children of the top row: a block of four, then one row alone
    public void DeepGmmRowAloneEqualsTheBlock(int d, int top, int bottom)
    {
        var data = new float[300 * d];
        new RandomStream(11).FillGaussian(data);
        var model = DeepGmmModel.Fit(new RowMatrix(data, 300, d), new DeepGmmOptions { Layers = new[] { top, bottom }, MaxIterations = 3, Seed = 5 });
        AssertRowsAloneEqualTheBlock(model, 40, 13);
    }

    /// <summary>Three layers: the one-row walk computes each node's children in one pass, two levels deep.</summary>
    [Fact]
    public void DeepGmmWithThreeLayersRowAloneEqualsTheBlock()
    {
        const int d = 7;
        var data = new float[300 * d];
        new RandomStream(12).FillGaussian(data);
        var model = DeepGmmModel.Fit(new RowMatrix(data, 300, d), new DeepGmmOptions { Layers = new[] { 3, 2, 6 }, MaxIterations = 2, Seed = 5 });
        AssertRowsAloneEqualTheBlock(model, 30, 14);
    }
}
