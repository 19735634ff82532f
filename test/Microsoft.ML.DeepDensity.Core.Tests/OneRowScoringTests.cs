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

    [Theory]
    [InlineData(9, 3, 2)]  // layer widths 27 and 18: 8-wide and scalar columns of the row kernel
    [InlineData(21, 4, 2)] // widths 84 and 42: its 64-column pass too
    public void DeepGmmRowAloneEqualsTheBlock(int d, int top, int bottom)
    {
        var data = new float[300 * d];
        new RandomStream(11).FillGaussian(data);
        var model = DeepGmmModel.Fit(new RowMatrix(data, 300, d), new DeepGmmOptions { Layers = new[] { top, bottom }, MaxIterations = 3, Seed = 5 });
        AssertRowsAloneEqualTheBlock(model, 40, 13);
    }
}
