using Microsoft.ML.DeepDensity.Layers;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Tests.TestSupport;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.Layers;

/// <summary>An MLP feeding a distribution head, as an objective: Σ_rows log p(target_row | MLP(x_row)).</summary>
public sealed class MlpHeadObjective : IGradientObjective
{
    public enum Head { Gaussian, Bernoulli, Linear }

    private readonly Mlp _mlp;
    private readonly Head _head;
    private readonly float[] _targets;
    private readonly int _targetWidth;

    internal MlpHeadObjective(Mlp mlp, Head head, float[] targets, int targetWidth)
    {
        _mlp = mlp; _head = head; _targets = targets; _targetWidth = targetWidth;
        Parameters = new ParameterSet();
        mlp.Register(Parameters);
    }

    public ParameterSet Parameters { get; }
    public float[]? LastInputGradient { get; private set; }

    public double ComputeGradient(ReadOnlySpan<float> rows, int count, RandomStream random)
    {
        var ws = _mlp.CreateWorkspace(count);
        var y = _mlp.Forward(rows, count, ws);
        double total = Score(y, count);
        var scale = Enumerable.Repeat(-1f / count, count).ToArray();
        var dy = new float[count * _mlp.Outputs];
        int d = _targetWidth;
        switch (_head)
        {
            case Head.Gaussian: DiagonalGaussianHead.Backward(_targets, 1, y, 1, count, d, scale, default, dy); break;
            case Head.Bernoulli: BernoulliHead.Backward(_targets, 1, y, count, d, scale, dy); break;
            default: for (int i = 0; i < dy.Length; i++) dy[i] = scale[0] * _targets[i]; break;
        }
        Parameters.ZeroGradients();
        LastInputGradient = new float[count * _mlp.Inputs];
        _mlp.Backward(rows, count, ws, dy, GradientBuffers.Of(Parameters), LastInputGradient);
        return total;
    }

    public double Evaluate(ReadOnlySpan<float> rows, int count, RandomStream random)
    {
        var ws = _mlp.CreateWorkspace(count);
        return Score(_mlp.Forward(rows, count, ws), count);
    }

    private double Score(ReadOnlySpan<float> y, int count)
    {
        var acc = new float[count];
        int d = _targetWidth;
        switch (_head)
        {
            case Head.Gaussian: DiagonalGaussianHead.AccumulateLogProb(_targets, 1, y, 1, count, d, 1f, acc); break;
            case Head.Bernoulli: BernoulliHead.AccumulateLogProb(_targets, 1, y, count, d, 1f, acc); break;
            default: for (int r = 0; r < count; r++) for (int c = 0; c < d; c++) acc[r] += _targets[r * d + c] * y[r * d + c]; break;
        }
        double s = 0;
        foreach (var v in acc) s += v;
        return s;
    }
}

public class LayerKitTests
{
    private static Mlp RandomMlp(int inputs, int[] hidden, int outputs, Activation act, ulong seed)
    {
        var mlp = new Mlp("m", inputs, hidden, outputs, act);
        var rng = new RandomStream(seed);
        foreach (var l in mlp.Layers)
        {
            rng.FillGaussian(l.Weight.Value, 0, 0.6f);
            rng.FillGaussian(l.Bias.Value, 0, 0.3f);
        }
        return mlp;
    }

    [Theory]
    [InlineData(Activation.Tanh, MlpHeadObjective.Head.Linear)]
    [InlineData(Activation.Sigmoid, MlpHeadObjective.Head.Linear)]
    [InlineData(Activation.Softplus, MlpHeadObjective.Head.Gaussian)]
    [InlineData(Activation.Tanh, MlpHeadObjective.Head.Bernoulli)]
    [InlineData(Activation.Relu, MlpHeadObjective.Head.Bernoulli)]
    public void MlpAndHeadGradientsMatchFiniteDifferences(Activation act, MlpHeadObjective.Head head)
    {
        const int rows = 7, inputs = 4, d = 3;
        int outputs = head == MlpHeadObjective.Head.Gaussian ? 2 * d : d;
        var mlp = RandomMlp(inputs, new[] { 6, 5 }, outputs, act, 5);
        var rng = new RandomStream(8);
        var x = new float[rows * inputs];
        rng.FillGaussian(x);
        var targets = new float[rows * d];
        if (head == MlpHeadObjective.Head.Bernoulli) for (int i = 0; i < targets.Length; i++) targets[i] = rng.NextDouble() < 0.5 ? 1 : 0;
        else rng.FillGaussian(targets);
        var objective = new MlpHeadObjective(mlp, head, targets, d);
        var worst = GradientCheck.Check(objective, x, rows, entriesPerTensor: 15, step: act == Activation.Relu ? 1e-3f : 1e-2f);
        Assert.Equal(6, worst.Count);

        // Input gradient (what chains MLPs together): ∂(−mean objective)/∂x by central differences.
        objective.ComputeGradient(x, rows, new RandomStream(1));
        var analytic = objective.LastInputGradient!;
        const float h = 1e-2f;
        for (int i = 0; i < x.Length; i += 3)
        {
            float orig = x[i];
            x[i] = orig + h; double fp = objective.Evaluate(x, rows, new RandomStream(1));
            x[i] = orig - h; double fm = objective.Evaluate(x, rows, new RandomStream(1));
            x[i] = orig;
            double numeric = -(fp - fm) / (2 * h * rows);
            Assert.True(Math.Abs(numeric - analytic[i]) <= 2e-3 + 3e-2 * Math.Abs(numeric), $"x[{i}]: analytic {analytic[i]}, numeric {numeric}");
        }
    }

    [Fact]
    public void GaussianHeadWithRepeatedParametersSumsGradientsAndMatchesClosedForm()
    {
        // Two parameter rows, each shared by 3 value rows.
        const int d = 2;
        var p = new float[] { 0.5f, -1f, 0.2f, -0.3f, /* row 1 */ 1f, 2f, -0.5f, 0.1f };
        var v = new float[] { 0.1f, 0.2f, 0.3f, -0.4f, 1f, -1f, 2f, 2f, 0f, 0f, 1.5f, 0.5f };
        var acc = new float[6];
        DiagonalGaussianHead.AccumulateLogProb(v, 1, p, 3, 6, d, 1f, acc);
        for (int j = 0; j < 6; j++)
        {
            int pr = j / 3;
            double lp = 0;
            for (int c = 0; c < d; c++)
            {
                double mu = p[pr * 4 + c], ls = p[pr * 4 + d + c], u = (v[j * d + c] - mu) / Math.Exp(ls);
                lp += -0.5 * u * u - ls - 0.5 * Math.Log(2 * Math.PI);
            }
            Assert.Equal(lp, acc[j], 4);
        }
        var scale = new float[] { 1, 1, 1, 1, 1, 1 };
        var gp = new float[p.Length];
        DiagonalGaussianHead.Backward(v, 1, p, 3, 6, d, scale, default, gp);
        // ∂/∂μ of Σ_j log p summed over the three rows sharing parameter row 0, component 0.
        double expect = 0;
        for (int j = 0; j < 3; j++) expect += (v[j * d] - p[0]) / Math.Exp(2 * p[d]);
        Assert.Equal(expect, gp[0], 4);
    }

    [Fact]
    public void BulkGaussianNoiseHasStandardMomentsAndIsSeedDeterministic()
    {
        var a = new float[200_001];
        GaussianNoise.Fill(new RandomStream(3), a);
        double m = 0, s2 = 0, m4 = 0;
        foreach (var v in a) { m += v; s2 += v * v; m4 += (double)v * v * v * v; }
        m /= a.Length; s2 /= a.Length; m4 /= a.Length;
        Assert.InRange(m, -0.01, 0.01);
        Assert.InRange(s2, 0.98, 1.02);
        Assert.InRange(m4, 2.9, 3.1); // Gaussian kurtosis
        var b = new float[a.Length];
        GaussianNoise.Fill(new RandomStream(3), b);
        Assert.Equal(a, b);
        Assert.True(a[^1] != 0f);
    }

    [Fact]
    public void ParallelBlockGradientsReduceToTheSingleBlockGradient()
    {
        var mlp = RandomMlp(3, new[] { 4 }, 2, Activation.Tanh, 2);
        var ps = new ParameterSet();
        mlp.Register(ps);
        var x = new float[10 * 3];
        new RandomStream(4).FillGaussian(x);
        var dyAll = new float[10 * 2];
        new RandomStream(5).FillGaussian(dyAll);

        var ws = mlp.CreateWorkspace(10);
        mlp.Forward(x, 10, ws);
        ps.ZeroGradients();
        mlp.Backward(x, 10, ws, (float[])dyAll.Clone(), GradientBuffers.Of(ps), default);
        var whole = ps.Items.Select(p => (float[])p.Gradient.Clone()).ToArray();

        var blocks = new[] { GradientBuffers.Create(ps), GradientBuffers.Create(ps) };
        for (int b = 0; b < 2; b++)
        {
            var wsb = mlp.CreateWorkspace(5);
            var xb = x.AsSpan(b * 15, 15);
            mlp.Forward(xb, 5, wsb);
            mlp.Backward(xb, 5, wsb, dyAll.AsSpan(b * 10, 10).ToArray(), blocks[b], default);
        }
        GradientBuffers.SumInto(ps, blocks, 2);
        for (int t = 0; t < whole.Length; t++)
            for (int i = 0; i < whole[t].Length; i++) Assert.Equal(whole[t][i], ps.Items[t].Gradient[i], 4);
    }
}

/// <summary>The fused Bernoulli kernels of score-function training against a float64 reference, and the chunked
/// parallel optimiser step and gradient sum against one pass.</summary>
public class FusedBernoulliAndChunkTests
{
    private static double Sigmoid(double z) => 1 / (1 + Math.Exp(-z));
    private static double Softplus(double z) => Math.Max(z, 0) + Math.Log(1 + Math.Exp(-Math.Abs(z)));

    [Fact]
    public void SampleWithLogProb_matches_the_reference_with_shared_logit_rows()
    {
        const int Rows = 6, D = 13, Repeat = 2; // 13 = one 8-lane vector and a scalar tail
        var rng = new RandomStream(5);
        var logits = new float[Rows / Repeat * D];
        rng.FillGaussian(logits, 0, 4f);
        logits[0] = 40f; logits[1] = -40f; logits[2] = 0f;
        var u = new float[Rows * D];
        rng.FillUniform(u);
        var h = new float[Rows * D]; var lq = new float[Rows]; var res = new float[Rows * D];
        BernoulliHead.SampleWithLogProb(logits, Repeat, u, Rows, D, h, lq, res);
        for (int j = 0; j < Rows; j++)
        {
            double expected = 0;
            for (int c = 0; c < D; c++)
            {
                double z = logits[j / Repeat * D + c], p = Sigmoid(z);
                if (Math.Abs(u[j * D + c] - p) > 1e-5) Assert.Equal(u[j * D + c] < p ? 1f : 0f, h[j * D + c]);
                Assert.Equal(h[j * D + c] - p, res[j * D + c], 5);
                expected += h[j * D + c] * z - Softplus(z);
            }
            Assert.Equal(expected, lq[j], 3);
        }
    }

    [Fact]
    public void LogProbWithResidual_matches_the_reference_and_propagates_NaN()
    {
        const int Rows = 6, D = 21, Repeat = 3;
        var rng = new RandomStream(6);
        var logits = new float[Rows * D];
        rng.FillGaussian(logits, 0, 5f);
        var x = new float[Rows / Repeat * D];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextDouble() < 0.4 ? 1 : 0;
        var lp = new float[Rows]; var res = new float[Rows * D];
        BernoulliHead.LogProbWithResidual(x, Repeat, logits, Rows, D, lp, res);
        for (int j = 0; j < Rows; j++)
        {
            double expected = 0;
            for (int c = 0; c < D; c++)
            {
                double z = logits[j * D + c], xv = x[j / Repeat * D + c];
                Assert.Equal(xv - Sigmoid(z), res[j * D + c], 5);
                expected += xv * z - Softplus(z);
            }
            Assert.Equal(expected, lp[j], 3);
        }
        logits[3] = float.NaN;              // in the vector part of row 0
        logits[D + D - 1] = float.NaN;      // in the scalar tail of row 1
        BernoulliHead.LogProbWithResidual(x, Repeat, logits, Rows, D, lp, default);
        Assert.True(float.IsNaN(lp[0]) && float.IsNaN(lp[1]) && float.IsFinite(lp[2]));
    }

    [Fact]
    public void Chunked_Adam_step_and_gradient_sum_are_bit_identical_to_one_thread()
    {
        float[][] Run(int threads)
        {
            int saved = DeepDensityEnvironment.MaxDegreeOfParallelism;
            DeepDensityEnvironment.MaxDegreeOfParallelism = threads;
            try
            {
                var rng = new RandomStream(7);
                var ps = new ParameterSet(new Parameter("a", new float[3 * ParameterSet.ChunkLength + 5]), new Parameter("b", new float[ParameterSet.ChunkLength + 3]));
                foreach (var p in ps.Items) rng.FillGaussian(p.Value, 0, 1f);
                var blocks = new[] { GradientBuffers.Of(ps), GradientBuffers.Create(ps), GradientBuffers.Create(ps) };
                var adam = new AdamOptimizer();
                for (int step = 0; step < 3; step++)
                {
                    foreach (var b in blocks) foreach (var p in ps.Items) rng.FillGaussian(b[p], 0, 1f);
                    GradientBuffers.SumInto(ps, blocks, 2);
                    GradientBuffers.AddInto(ps, blocks, 2, 1);
                    adam.Step(ps, 1e-2f);
                }
                return ps.Items.Select(p => p.Value.Concat(p.Gradient).ToArray()).ToArray();
            }
            finally { DeepDensityEnvironment.MaxDegreeOfParallelism = saved; }
        }
        Assert.True(3 * ParameterSet.ChunkLength + 5 + ParameterSet.ChunkLength + 3 >= ParameterSet.ParallelThreshold); // runs in chunks
        var one = Run(1);
        var all = Run(-1);
        for (int t = 0; t < one.Length; t++) Assert.Equal(one[t], all[t]);
    }

    [Fact]
    public void AdamMomentsOfAGradientThatStopsDecayToZeroNotToSubnormalFloats()
    {
        // A gradient that is non-zero once and exactly 0 afterwards (the weights of a pixel no later batch has on): β₁^t
        // takes the first moment into the subnormal range after ~800 steps, where it would stick at 2^-149 and cost a
        // microcode assist on every later update. 37 values: vector lanes and the scalar tail.
        var ps = new ParameterSet(new Parameter("w", new float[37]));
        var adam = new AdamOptimizer();
        var g = ps.Items[0].Gradient;
        for (int i = 0; i < g.Length; i++) g[i] = (i % 2 == 0 ? 1f : -1f) * 1e-3f * (i + 1);
        adam.Step(ps, 1e-3f);
        Array.Clear(g);
        var m = (float[][])typeof(AdamOptimizer).GetField("_m", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(adam)!;
        var v = (float[][])typeof(AdamOptimizer).GetField("_v", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(adam)!;
        for (int step = 0; step < 2000; step++)
        {
            adam.Step(ps, 1e-3f);
            Assert.DoesNotContain(m[0], float.IsSubnormal);
            Assert.DoesNotContain(v[0], float.IsSubnormal);
        }
        Assert.All(m[0], x => Assert.Equal(0f, x));   // 0.9^2000 is far below any float
        Assert.Contains(v[0], x => x > 0f);           // 0.999^2000 is not: the second moment is still normal
        Assert.True(ps.Items[0].Value.All(float.IsFinite));
    }

    [Fact]
    public void AdamPathsGiveTheSameBits()
    {
        // 91 values: five 16-lane vectors, one 8-lane vector and three scalars on the AVX-512 path, so every loop of
        // every path runs. Weight decay, gradients of 0 (moments flushed below the smallest normal float), tiny, huge and
        // negative ones; five steps so the moments carry over.
        const int n = 5 * 16 + 8 + 3;
        (float[] W, float[] M, float[] V) Run(SimdLevel level)
        {
            using var forced = KernelPath.Force(level);
            var rng = new RandomStream(5);
            var w = new float[n];
            rng.FillGaussian(w);
            var ps = new ParameterSet(new Parameter("w", w));
            var adam = new AdamOptimizer(weightDecay: 1e-3f);
            var g = ps.Items[0].Gradient;
            for (int step = 0; step < 5; step++)
            {
                rng.FillGaussian(g);
                for (int i = 0; i < n; i += 7) g[i] = 0f;
                g[3] = 1e-30f; g[40] = -3e20f; g[n - 1] = 1e-38f;
                Assert.True(adam.StepIfFinite(ps, 1e-2f));
            }
            var m = (float[][])typeof(AdamOptimizer).GetField("_m", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(adam)!;
            var v = (float[][])typeof(AdamOptimizer).GetField("_v", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(adam)!;
            return (w, m[0], v[0]);
        }
        var portable = Run(SimdLevel.Portable);
        foreach (var level in new[] { SimdLevel.Avx2, SimdLevel.Avx512 })
        {
            var other = Run(level);
            Assert.Equal(portable.W, other.W);
            Assert.Equal(portable.M, other.M);
            Assert.Equal(portable.V, other.V);
        }
        // A gradient that is not finite is reported from each loop (16-lane, 8-lane, scalar) on each path.
        foreach (var level in new[] { SimdLevel.Portable, SimdLevel.Avx2, SimdLevel.Avx512 })
            foreach (int at in new[] { 17, 5 * 16 + 2, n - 2 })
            {
                using var forced = KernelPath.Force(level);
                var ps = new ParameterSet(new Parameter("w", new float[n]));
                ps.Items[0].Gradient[at] = float.PositiveInfinity;
                Assert.False(new AdamOptimizer().StepIfFinite(ps, 1e-2f), $"{level}, gradient {at}");
            }
    }

    [Fact]
    public void SgdVelocityOfAGradientThatStopsDecaysToZeroNotToSubnormalFloats()
    {
        var ps = new ParameterSet(new Parameter("w", new float[37]));
        var sgd = new SgdMomentumOptimizer(momentum: 0.9f);
        var g = ps.Items[0].Gradient;
        for (int i = 0; i < g.Length; i++) g[i] = (i % 2 == 0 ? 1f : -1f) * 1e-3f * (i + 1);
        sgd.Step(ps, 1e-2f);
        Array.Clear(g);
        var vel = (float[][])typeof(SgdMomentumOptimizer).GetField("_velocity", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(sgd)!;
        for (int step = 0; step < 2000; step++)
        {
            sgd.Step(ps, 1e-2f);
            Assert.DoesNotContain(vel[0], float.IsSubnormal);
        }
        Assert.All(vel[0], x => Assert.Equal(0f, x));
        var nan = new[] { float.NaN, 1e-39f, -1e-40f, 2f, float.Epsilon, 1.2e-38f, -3f, 0f, float.NaN, 5e-39f };
        VectorMath.FlushSubnormals(nan);
        Assert.True(float.IsNaN(nan[0]) && float.IsNaN(nan[8]));
        Assert.Equal(new[] { 0f, 0f, 2f, 0f, 1.2e-38f, -3f, 0f }, nan[1..8]);
        Assert.Equal(0f, nan[9]);
    }
}
