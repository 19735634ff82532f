using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Tests.Rnade;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.Distributed;

/// <summary>Partials and statistics as workers ship them: bytes round-trip exactly; damaged bytes are refused with
/// <see cref="InvalidDataException"/> (never a hang, a huge allocation or a wrong value).</summary>
public class PartialSerializationTests
{
    private static (GradientPartial Partial, long Length) Gradient()
    {
        var objective = new RnadeObjective(RnadeGradientTests.RandomNetwork(4, 5, 2, Activation.Tanh, 1), 4, scaleMeanBySigma: false);
        var x = new float[9 * 4];
        new RandomStream(3).FillGaussian(x);
        return (GradientPartial.Compute(objective, x, 9, new RandomStream(1)), objective.Parameters.Count);
    }

    private static (DeepGmmEmStatistics EStep, DeepGmmEmStatistics Layer, DeepGmmModel Model) Statistics()
    {
        var x = new RowMatrix(120, 2);
        new RandomStream(5).FillGaussian(x.Values);
        var options = new DeepGmmOptions { Layers = new[] { 2, 2 }, MaxIterations = 1 };
        var model = DeepGmmModel.Fit(x, options);
        return (DeepGmmEmStatistics.ComputeEStep(model, options, x), DeepGmmEmStatistics.ComputeLayer(model, model, 0, options, x), model);
    }

    [Fact]
    public void GradientPartialsRoundTripExactly()
    {
        var (p, length) = Gradient();
        var back = GradientPartial.FromBytes(p.ToBytes(), length);
        Assert.Equal(p.Count, back.Count);
        Assert.Equal(BitConverter.DoubleToInt64Bits(p.ObjectiveSum), BitConverter.DoubleToInt64Bits(back.ObjectiveSum));
        Assert.Equal(p.LossGradientSum.ToArray(), back.LossGradientSum.ToArray());
        Assert.Equal(p.ToBytes(), back.ToBytes());
    }

    [Fact]
    public void DeepGmmStatisticsRoundTripExactly()
    {
        var (e, layer, model) = Statistics();
        foreach (var s in new[] { e, layer })
        {
            var back = DeepGmmEmStatistics.FromBytes(s.ToBytes(), model);
            Assert.Equal(s.Layer, back.Layer);
            Assert.Equal(s.Count, back.Count);
            Assert.Equal(s.LogLikelihoodSum, back.LogLikelihoodSum);
            Assert.Equal(s.Values.ToArray(), back.Values.ToArray());
        }
    }

    /// <summary>Every truncation, every single-bit flip and trailing bytes: each read fails with InvalidDataException.</summary>
    private static void AssertRejectsDamage(byte[] bytes, Action<byte[]> read)
    {
        for (int n = 0; n < bytes.Length; n++) Assert.Throws<InvalidDataException>(() => read(bytes[..n]));
        for (int i = 0; i < bytes.Length; i++)
            for (int bit = 0; bit < 8; bit++)
            {
                var damaged = (byte[])bytes.Clone();
                damaged[i] ^= (byte)(1 << bit);
                Assert.Throws<InvalidDataException>(() => read(damaged));
            }
        Assert.Throws<InvalidDataException>(() => read([.. bytes, 0]));
    }

    [Fact]
    public void DamagedGradientPartialsAreRefused()
    {
        var (p, length) = Gradient();
        var bytes = p.ToBytes();
        AssertRejectsDamage(bytes, b => GradientPartial.FromBytes(b, length));
        // The length is checked against the model before anything is allocated: a partial of another model is refused.
        var e = Assert.Throws<InvalidDataException>(() => GradientPartial.FromBytes(bytes, length + 1));
        Assert.Contains("another model", e.Message);
        // A header declaring the largest array in a 34-byte buffer (and a model that size) fails as truncated, before
        // any allocation.
        var forged = bytes[..34];
        BitConverter.TryWriteBytes(forged.AsSpan(26), Array.MaxLength);
        Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => GradientPartial.FromBytes(forged, Array.MaxLength)).Message);
    }

    [Fact]
    public void DamagedDeepGmmStatisticsAreRefused()
    {
        var (e, layer, model) = Statistics();
        AssertRejectsDamage(e.ToBytes(), b => DeepGmmEmStatistics.FromBytes(b, model));
        AssertRejectsDamage(layer.ToBytes(), b => DeepGmmEmStatistics.FromBytes(b, model));
        var other = DeepGmmModel.Fit(new RowMatrix(Enumerable.Range(0, 240).Select(i => (float)Math.Sin(i)).ToArray(), 120, 2),
            new DeepGmmOptions { Layers = new[] { 3, 2 }, MaxIterations = 1 });
        var ex = Assert.Throws<InvalidDataException>(() => DeepGmmEmStatistics.FromBytes(layer.ToBytes(), other));
        Assert.Contains("another model", ex.Message);
    }
}
