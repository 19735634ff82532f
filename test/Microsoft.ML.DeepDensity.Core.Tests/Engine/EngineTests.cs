using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

public class RandomStreamTests
{
    [Fact]
    public void SameSeedSameStreamDifferentSeedDifferentStream()
    {
        var a = new RandomStream(5); var b = new RandomStream(5); var c = new RandomStream(6);
        var xa = Enumerable.Range(0, 100).Select(_ => a.NextUInt64()).ToArray();
        Assert.Equal(xa, Enumerable.Range(0, 100).Select(_ => b.NextUInt64()).ToArray());
        Assert.NotEqual(xa, Enumerable.Range(0, 100).Select(_ => c.NextUInt64()).ToArray());
    }

    [Fact]
    public void ForksDependOnKeyNotOnConsumption()
    {
        var a = new RandomStream(9);
        var f1 = a.Fork(3).NextUInt64();
        for (int i = 0; i < 10; i++) a.NextUInt64();
        Assert.Equal(f1, a.Fork(3).NextUInt64());
        Assert.NotEqual(f1, a.Fork(4).NextUInt64());
        Assert.NotEqual(a.Fork(1, 2).NextUInt64(), a.Fork(2, 1).NextUInt64());
    }

    [Fact]
    public void UniformFillsAreUniformIndependentAndTheSameWithOrWithoutAvx2()
    {
        foreach (int length in new[] { 63, 64, 65, 71, 1000, 200_003 })
        {
            var vector = new float[length];
            var scalar = new float[length];
            new RandomStream(5).Fork(9).FillUniform(vector, -2f, 3f);
            try
            {
                RandomStream.ScalarLanesOnly = true;
                new RandomStream(5).Fork(9).FillUniform(scalar, -2f, 3f);
            }
            finally { RandomStream.ScalarLanesOnly = false; }
            Assert.Equal(scalar, vector);
            Assert.All(vector, v => Assert.True(v >= -2f && v < 3f));
        }
        // Moments, a 32-bin chi-square and lag-1 / lag-8 correlations (lag 8 = the same lane one step later).
        var u = new float[400_000];
        var r = new RandomStream(11);
        r.FillUniform(u.AsSpan(0, 200_000));
        r.FillUniform(u.AsSpan(200_000));   // the stream moved on: the second fill is not a copy of the first
        Assert.NotEqual(u.AsSpan(0, 1000).ToArray(), u.AsSpan(200_000, 1000).ToArray());
        double mean = u.Average(v => (double)v), var = u.Average(v => (v - mean) * (v - mean));
        Assert.InRange(mean, 0.5 - 0.003, 0.5 + 0.003);
        Assert.InRange(var, 1.0 / 12 - 0.002, 1.0 / 12 + 0.002);
        var bins = new int[32];
        foreach (var v in u) bins[(int)(v * 32)]++;
        double expected = u.Length / 32.0, chi2 = bins.Sum(b => (b - expected) * (b - expected) / expected);
        Assert.True(chi2 < 70, $"chi-square {chi2:F1} with 31 degrees of freedom");   // p ≈ 1e-4
        foreach (int lag in new[] { 1, 2, 8 })
        {
            double c = 0;
            for (int i = lag; i < u.Length; i++) c += (u[i] - 0.5) * (u[i - lag] - 0.5);
            c /= (u.Length - lag) / 12.0;
            Assert.True(Math.Abs(c) < 0.01, $"lag-{lag} correlation {c:F4}");
        }
    }

    [Fact]
    public void GaussianAndUniformMomentsAreRight()
    {
        var r = new RandomStream(1);
        var g = new float[200_000];
        r.FillGaussian(g);
        double m = g.Average(v => (double)v), v2 = g.Average(v => (double)v * v);
        Assert.InRange(m, -0.01, 0.01);
        Assert.InRange(v2, 0.98, 1.02);
        var counts = new int[7];
        for (int i = 0; i < 70_000; i++) counts[r.NextInt(7)]++;
        Assert.All(counts, c => Assert.InRange(c, 9_500, 10_500));
    }

    [Fact]
    public void CategoricalFollowsProbabilities()
    {
        var r = new RandomStream(2);
        var p = new[] { 0.1f, 0.0f, 0.6f, 0.3f };
        var counts = new int[4];
        for (int i = 0; i < 100_000; i++) counts[r.NextCategorical(p)]++;
        Assert.Equal(0, counts[1]);
        Assert.InRange(counts[2] / 100_000.0, 0.59, 0.61);
    }
}

public class RowOpsTests
{
    [Fact]
    public void VectorisedLogSumExpMatchesTheDefinition()
    {
        var scratch = new float[300];
        var x = Enumerable.Range(0, 257).Select(i => (float)(50 * Math.Sin(i * 0.37))).ToArray();
        double expected = x.Max() + Math.Log(x.Sum(v => Math.Exp(v - x.Max())));
        Assert.Equal(expected, RowOps.LogSumExp(x, scratch), 5);
        Assert.Equal(1000 + Math.Log(2), RowOps.LogSumExp(new[] { 1000f, 1000f }, scratch), 5);
        Assert.Equal(double.NegativeInfinity, RowOps.LogSumExp(new[] { float.NegativeInfinity, float.NegativeInfinity }, scratch));
        Assert.True(double.IsNaN(RowOps.LogSumExp(new[] { 1f, float.NaN }, scratch)));
    }

    /// <summary>A matrix large enough to be summed in column ranges on several threads gives the serial pass's bits
    /// (its rows summed a few at a time, each call below the parallel size) at one thread and at two.</summary>
    [Theory]
    [InlineData(784)]
    [InlineData(100)]
    [InlineData(67)]
    public void ColumnSumsOfALargeMatrixAreTheSerialPassesBitsAtAnyThreadCount(int cols)
    {
        int rows = (int)(RowOps.ParallelColumnSumValues / cols) + 29;
        var x = new float[rows * cols];
        new RandomStream(3).FillGaussian(x, 0f, 1e3f);
        x[5] = 3e38f; x[cols + 1] = 1e-30f;
        var sum = new double[cols]; var sq = new double[cols];
        for (int r = 0; r < rows; r += 100)
        {
            int n = Math.Min(100, rows - r);
            RowOps.AddColumnSumsAsDouble(x.AsSpan(r * cols, n * cols), n, sum, sq);
        }
        int saved = DeepDensityEnvironment.MaxDegreeOfParallelism;
        try
        {
            foreach (int threads in new[] { 1, 2 })
            {
                DeepDensityEnvironment.MaxDegreeOfParallelism = threads;
                var s = new double[cols]; var q = new double[cols]; var sumOnly = new double[cols];
                RowOps.AddColumnSumsAsDouble(x, rows, s, q);
                RowOps.AddColumnSumsAsDouble(x, rows, sumOnly);
                Assert.Equal(sum, s);
                Assert.Equal(sq, q);
                Assert.Equal(sum, sumOnly);
            }
        }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = saved; }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(16)]
    [InlineData(37)]
    [InlineData(784)]
    public void VectorisedColumnSumsAreTheSequentialDoubleSumsBitForBit(int cols)
    {
        var rng = new RandomStream((ulong)cols);
        const int rows = 53;
        var x = new float[rows * cols];
        rng.FillGaussian(x, 0f, 1e3f);
        x[0] = 1e-30f; x[^1] = 3.4e38f; // tiny and huge values: float64 rounding shows if the order or the ops differ
        var sum = new double[cols]; var sq = new double[cols]; var sumOnly = new double[cols];
        sum[0] = 0.1; sq[0] = 0.2; sumOnly[0] = 0.1; // accumulates into what is there
        RowOps.AddColumnSumsAsDouble(x, rows, sum, sq);
        RowOps.AddColumnSumsAsDouble(x, rows, sumOnly);
        for (int c = 0; c < cols; c++)
        {
            double s = c == 0 ? 0.1 : 0, q = c == 0 ? 0.2 : 0;
            for (int r = 0; r < rows; r++) { s += x[r * cols + c]; q += (double)x[r * cols + c] * x[r * cols + c]; }
            Assert.Equal(BitConverter.DoubleToInt64Bits(s), BitConverter.DoubleToInt64Bits(sum[c]));
            Assert.Equal(BitConverter.DoubleToInt64Bits(q), BitConverter.DoubleToInt64Bits(sq[c]));
            Assert.Equal(BitConverter.DoubleToInt64Bits(s), BitConverter.DoubleToInt64Bits(sumOnly[c]));
        }
    }

    [Theory]
    [InlineData(3)]
    [InlineData(8)]
    [InlineData(21)]
    [InlineData(64)]
    public void VectorisedWelfordMomentsAreTheScalarRecurrenceBitForBit(int cols)
    {
        var rng = new RandomStream(100 + (ulong)cols);
        const int rows = 77;
        var x = new float[rows * cols];
        rng.FillGaussian(x, 5f, 30f);
        var moments = new ColumnStandardizer.Moments(cols);
        moments.Add(x.AsSpan(0, 40 * cols), 40); // two calls, as a stream's blocks
        moments.Add(x.AsSpan(40 * cols), rows - 40);
        for (int c = 0; c < cols; c++)
        {
            double mean = 0, m2 = 0;
            for (int r = 0; r < rows; r++)
            {
                double delta = x[r * cols + c] - mean;
                mean += delta / (r + 1);
                m2 += delta * (x[r * cols + c] - mean);
            }
            Assert.Equal(BitConverter.DoubleToInt64Bits(mean), BitConverter.DoubleToInt64Bits(moments.Mean[c]));
            Assert.Equal(BitConverter.DoubleToInt64Bits(m2), BitConverter.DoubleToInt64Bits(moments.SumOfSquaredDeviations[c]));
        }
    }

    [Fact]
    public void LogSumExpIsStableAndExact()
    {
        Assert.Equal(1000 + Math.Log(2), RowOps.LogSumExp(new[] { 1000f, 1000f }), 3);
        Assert.Equal(-1000 + Math.Log(3), RowOps.LogSumExp(new[] { -1000f, -1000f, -1000f }), 3);
        Assert.Equal(float.NegativeInfinity, RowOps.LogSumExp(new[] { float.NegativeInfinity, float.NegativeInfinity }));
        var x = new float[] { 1, 2, 3, -1, 0, 5 };
        var dst = new float[2];
        RowOps.LogSumExpRows(x, 2, 3, dst);
        Assert.Equal(Math.Log(Math.Exp(1) + Math.Exp(2) + Math.Exp(3)), dst[0], 5);
        Assert.Equal(Math.Log(Math.Exp(-1) + 1 + Math.Exp(5)), dst[1], 5);
    }

    [Fact]
    public void SoftmaxRowsSumToOne()
    {
        var x = new float[] { 1, 2, 3, 500, 501, 499 };
        RowOps.SoftmaxRows(x, 2, 3);
        Assert.Equal(1.0, x[0] + x[1] + x[2], 5);
        Assert.Equal(1.0, x[3] + x[4] + x[5], 5);
        Assert.Equal(Math.Exp(1) / (1 + Math.E + Math.Exp(-1)), x[4], 5);
    }

    [Fact]
    public void LongSumsAccumulateInDouble()
    {
        var ones = Enumerable.Repeat(0.1f, 10_000_000).ToArray();
        Assert.Equal(1_000_000.0, RowOps.SumAsDouble(ones), 0);
    }

    [Theory]
    [InlineData(Activation.Sigmoid)]
    [InlineData(Activation.Tanh)]
    [InlineData(Activation.Softplus)]
    [InlineData(Activation.Relu)]
    public void ActivationDerivativesMatchFiniteDifferences(Activation act)
    {
        var pre = new[] { -2.5f, -0.3f, 0.2f, 1.7f };
        var post = new float[4];
        Activations.Forward(act, pre, post);
        var g = new float[] { 1, 1, 1, 1 };
        Activations.MultiplyByDerivative(act, post, g); // the derivative the layers use, from the output alone
        for (int i = 0; i < 4; i++)
        {
            var lo = new float[1]; var hi = new float[1];
            Activations.Forward(act, new[] { pre[i] - 1e-3f }, lo);
            Activations.Forward(act, new[] { pre[i] + 1e-3f }, hi);
            Assert.Equal((hi[0] - lo[0]) / 2e-3, g[i], 2);
        }
    }
}

public class OptimizerTests
{
    private static double MinimiseQuadratic(Optimizer opt, float lr, int steps)
    {
        // f(w) = ½ Σ c_i (w_i − t_i)²
        var w = new float[] { 5, -3, 0.5f };
        var p = new ParameterSet(new Parameter("w", w));
        float[] c = { 1, 10, 0.1f }, t = { 1, 2, -1 };
        for (int s = 0; s < steps; s++)
        {
            for (int i = 0; i < 3; i++) p.Items[0].Gradient[i] = c[i] * (w[i] - t[i]);
            opt.Step(p, lr);
        }
        return Enumerable.Range(0, 3).Sum(i => Math.Abs(w[i] - t[i]));
    }

    [Fact]
    public void AdamAndMomentumConverge()
    {
        Assert.True(MinimiseQuadratic(new AdamOptimizer(), 0.05f, 3000) < 1e-2);
        Assert.True(MinimiseQuadratic(new SgdMomentumOptimizer(0.9f), 0.01f, 3000) < 1e-2);
    }

    [Fact]
    public void ClippingBoundsTheGlobalNorm()
    {
        var p = new ParameterSet(new Parameter("a", new float[2]), new Parameter("b", new float[1]));
        p.Items[0].Gradient[0] = 3; p.Items[0].Gradient[1] = 4; p.Items[1].Gradient[0] = 12;
        double before = p.ClipGradientNorm(1.3);
        Assert.Equal(13, before, 5);
        Assert.Equal(1.3, p.GradientNorm(), 5);
        Assert.Equal(0.3f, p.Items[0].Gradient[0], 5);
    }

    /// <summary>A set above ParameterSet.ParallelThreshold (its norm and updates run on the engine's threads).</summary>
    private static ParameterSet LargeSet(int seed, float gradientScale)
    {
        var rng = new Microsoft.ML.DeepDensity.Randomness.RandomStream((ulong)seed);
        var a = new float[70_001]; var b = new float[33];
        rng.FillGaussian(a); rng.FillGaussian(b);
        var set = new ParameterSet(new Parameter("a", a), new Parameter("b", b));
        foreach (var p in set.Items) { rng.FillGaussian(p.Gradient); System.Numerics.Tensors.TensorPrimitives.Multiply(p.Gradient, gradientScale, p.Gradient); }
        return set;
    }

    [Fact]
    public void GradientNormIsTheSameOnAnyThreadCountAndExact()
    {
        var set = LargeSet(3, 1f);
        double exact = Math.Sqrt(set.Items.Sum(p => p.Gradient.Sum(g => (double)g * g)));
        int saved = DeepDensityEnvironment.MaxDegreeOfParallelism;
        try
        {
            DeepDensityEnvironment.MaxDegreeOfParallelism = 1;
            double one = set.GradientNorm();
            DeepDensityEnvironment.MaxDegreeOfParallelism = -1;
            for (int i = 0; i < 20; i++) Assert.Equal(BitConverter.DoubleToInt64Bits(one), BitConverter.DoubleToInt64Bits(set.GradientNorm()));
            Assert.Equal(exact, one, exact * 1e-12);
        }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = saved; }
    }

    /// <summary>The loop's clipped step folds the clipping factor into Adam's pass: the same bits as clipping the
    /// buffers in place and then stepping (small and large sets, clipping active and not).</summary>
    [Theory]
    [InlineData(0.01f)]
    [InlineData(1f)]
    public void ClippedStepEqualsClippingThenStepping(float gradientScale)
    {
        foreach (bool large in new[] { false, true })
        {
            ParameterSet Make() => large ? LargeSet(7, gradientScale) : SmallSet(gradientScale);
            var fused = Make(); var twoPass = Make();
            var adamFused = new AdamOptimizer(weightDecay: 1e-3f); var adamTwoPass = new AdamOptimizer(weightDecay: 1e-3f);
            const float clip = 10f;
            for (int step = 0; step < 3; step++)
            {
                double norm = twoPass.ClipGradientNorm(clip);
                Assert.True(gradientScale < 0.1f ? norm < clip : norm > clip, $"the case must {(gradientScale < 0.1f ? "not " : "")}clip (norm {norm})");
                Assert.True(adamTwoPass.StepIfFinite(twoPass, 1e-2f));
                Assert.True(adamFused.ClipAndStep(fused, clip, 1e-2f));
                for (int i = 0; i < fused.Items.Count; i++)
                {
                    Assert.Equal(twoPass.Items[i].Value, fused.Items[i].Value);
                    // The next step's gradients: the same on both sides (the two-pass side's buffers were scaled).
                    var rng = new Microsoft.ML.DeepDensity.Randomness.RandomStream((ulong)(100 + step * 10 + i));
                    rng.FillGaussian(fused.Items[i].Gradient);
                    System.Numerics.Tensors.TensorPrimitives.Multiply(fused.Items[i].Gradient, gradientScale * (large ? 1f : 50f), fused.Items[i].Gradient);
                    fused.Items[i].Gradient.CopyTo(twoPass.Items[i].Gradient, 0);
                }
            }
        }

        static ParameterSet SmallSet(float gradientScale)
        {
            var set = new ParameterSet(new Parameter("w", Enumerable.Range(0, 91).Select(i => MathF.Sin(i)).ToArray()));
            var g = set.Items[0].Gradient;
            for (int i = 0; i < g.Length; i++) g[i] = MathF.Cos(3 * i) * gradientScale * 100f;
            return set;
        }
    }

    [Fact]
    public void NonFiniteGradientStopsTheClippedStep()
    {
        var set = LargeSet(9, 1f);
        set.Items[1].Gradient[5] = float.NaN;
        var before = set.Items[0].Value.ToArray();
        Assert.False(new AdamOptimizer().ClipAndStep(set, 10f, 1e-2f));
        Assert.Equal(before, set.Items[0].Value);
    }
}

public class TrainingSplitTests
{
    [Fact]
    public void ValidationSplitIsSeededAndDisjoint()
    {
        var m = new RowMatrix(100, 1);
        for (int i = 0; i < 100; i++) m[i, 0] = i;
        var (t1, v1) = TrainingLoop.Split(m, null, 0.2, 4);
        var (t2, v2) = TrainingLoop.Split(m, null, 0.2, 4);
        Assert.Equal(80, t1.Rows);
        Assert.Equal(20, v1!.Rows);
        Assert.Equal(v1.Values, v2!.Values);
        Assert.Empty(t1.Values.Intersect(v1.Values));
        var (_, v3) = TrainingLoop.Split(m, null, 0.2, 5);
        Assert.NotEqual(v1.Values, v3!.Values);
    }
}
