using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;
using Xunit.Abstractions;

namespace Microsoft.ML.DeepDensity.Tests.RnnRnade;

/// <summary>
/// RNN-RNADE against its paper (papers/001, Algorithm 2 and the recurrence below it): an independent float64 reference
/// of every frame's conditional, each conditional integrating to one by quadrature, and the sampler's moments against
/// the quadrature of the density. (Gradients by finite differences: <see cref="RnnRnadeGradientTests"/>.)
/// </summary>
public class RnnRnadePaperTests(ITestOutputHelper output)
{
    private static double Activate(Activation act, double v) => act switch
    {
        Activation.Sigmoid => 1 / (1 + Math.Exp(-v)),
        Activation.Relu => Math.Max(0, v),
        Activation.Tanh => Math.Tanh(v),
        _ => throw new NotSupportedException(act.ToString()),
    };

    private static double LogSumExp(IReadOnlyList<double> v)
    {
        double max = v.Max();
        return max + Math.Log(v.Sum(a => Math.Exp(a - max)));
    }

    /// <summary>
    /// log p(x_t | x_&lt;t) of one sequence of model-space frames, written from the paper: ĥ^(t) = σ(W₂ x^t + W₃ ĥ^(t−1) + b)
    /// (ĥ before the first frame = h₀); frame t's RNADE has z^α, z^μ, z^σ = Vᵀ h_d + b + r with r = W_outᵀ ĥ^(t−1), and
    /// (with the hidden-bias option) a₁ = c + W_hidᵀ ĥ^(t−1); h_d = act(ρ_d a_d), α = softmax, μ, σ = exp, a_{d+1} = a_d + x_d W·,d.
    /// </summary>
    private static double[] Reference(RnnRnadeNetwork net, ReadOnlySpan<float> frames, int length)
    {
        var rn = net.Rnade;
        int d = net.D, r = net.R, h = rn.H, k = rn.K, k3 = 3 * k, ow = d * k3;
        var state = net.H0.Select(v => (double)v).ToArray();
        var result = new double[length];
        for (int t = 0; t < length; t++)
        {
            var x = frames.Slice(t * d, d);
            var offset = new double[ow];
            for (int q = 0; q < ow; q++) for (int i = 0; i < r; i++) offset[q] += net.WOut[i * ow + q] * state[i];
            var a = new double[h];
            for (int j = 0; j < h; j++)
            {
                a[j] = rn.C[j];
                if (net.ConditionsHiddenBias) for (int i = 0; i < r; i++) a[j] += net.WHid[i * h + j] * state[i];
            }
            for (int dd = 0; dd < d; dd++)
            {
                var hidden = a.Select(v => Activate(rn.Activation, rn.Rho[dd] * v)).ToArray();
                var z = new double[k3];
                for (int q = 0; q < k3; q++)
                {
                    z[q] = rn.B[dd * k3 + q] + offset[dd * k3 + q];
                    for (int j = 0; j < h; j++) z[q] += rn.V[(dd * h + j) * k3 + q] * hidden[j];
                }
                double logNorm = LogSumExp(z.Take(k).ToArray());
                var terms = new double[k];
                for (int i = 0; i < k; i++)
                {
                    double logSigma = z[2 * k + i], u = (x[dd] - z[k + i]) / Math.Exp(logSigma);
                    terms[i] = z[i] - logNorm - 0.5 * Math.Log(2 * Math.PI) - logSigma - 0.5 * u * u;
                }
                result[t] += LogSumExp(terms);
                if (dd < d - 1) for (int j = 0; j < h; j++) a[j] += x[dd] * rn.W[dd * h + j];
            }
            var next = new double[r];
            for (int i = 0; i < r; i++)
            {
                double pre = net.BRec[i];
                for (int c = 0; c < d; c++) pre += x[c] * net.WIn[c * r + i];
                for (int q = 0; q < r; q++) pre += state[q] * net.WRec[q * r + i];
                next[i] = 1 / (1 + Math.Exp(-pre));
            }
            state = next;
        }
        return result;
    }

    [Theory]
    [InlineData(Activation.Sigmoid, false)]
    [InlineData(Activation.Sigmoid, true)]
    [InlineData(Activation.Tanh, true)]
    public void FrameLogDensitiesAreThePapersRecurrenceAndConditionedRnade(Activation act, bool hiddenBias)
    {
        const int D = 3;
        var net = RnnRnadeGradientTests.RandomNetwork(D, h: 5, k: 2, r: 4, act, hiddenBias, seed: 7);
        var mean = new[] { 0.2f, -0.5f, 1f };
        var scale = new[] { 0.8f, 1.5f, 2.5f };
        var model = new RnnRnadeModel(net, new ColumnStandardizer(mean, scale));
        var (values, offsets) = RnnRnadeGradientTests.RandomSequences(new[] { 5, 1, 7, 3 }, D, seed: 4);
        for (int i = 0; i < values.Length; i++) values[i] = values[i] * scale[i % D] + mean[i % D];
        var batch = new SequenceBatch(values, offsets, D);
        var frames = new float[batch.TotalFrames];
        model.FrameLogDensity(batch, frames);
        var sequences = model.LogDensity(batch);
        double logJacobian = -scale.Sum(s => Math.Log(s));
        for (int s = 0; s < batch.Count; s++)
        {
            int length = offsets[s + 1] - offsets[s];
            var standardised = new float[length * D];
            for (int i = 0; i < standardised.Length; i++) standardised[i] = (values[offsets[s] * D + i] - mean[i % D]) / scale[i % D];
            var reference = Reference(net, standardised, length);
            for (int t = 0; t < length; t++)
            {
                double expected = reference[t] + logJacobian;
                Assert.True(Math.Abs(frames[offsets[s] + t] - expected) < 2e-4 * Math.Max(1, Math.Abs(expected)),
                    $"sequence {s}, frame {t}: {frames[offsets[s] + t]}, paper {expected}");
            }
            // log p(x_1 … x_T) = Σ_t log p(x_t | x_<t).
            double sum = reference.Sum() + length * logJacobian;
            Assert.True(Math.Abs(sequences[s] - sum) < 1e-3 * Math.Max(1, Math.Abs(sum)), $"sequence {s}: {sequences[s]}, Σ_t {sum}");
        }
    }

    /// <summary>A one-value-per-frame model whose frames depend strongly on their past (h₀ = 0, the recurrence's input
    /// weights and the state's weights on the means scaled up), with a non-trivial standardiser so that the Jacobian is part of
    /// every density.</summary>
    private static RnnRnadeModel OneValueModel()
    {
        const int K = 3;
        var net = RnnRnadeGradientTests.RandomNetwork(1, h: 4, k: K, r: 3, Activation.Sigmoid, hiddenBias: true, seed: 11);
        // h₀ = 0: the first frame is the RNADE's alone (near the origin), so the state after it is not saturated.
        Array.Clear(net.H0);
        System.Numerics.Tensors.TensorPrimitives.Multiply(net.WIn, 2f, net.WIn);
        for (int i = 0; i < net.R; i++) for (int q = K; q < 2 * K; q++) net.WOut[i * 3 * K + q] *= 10f;   // columns of r^μ
        return new RnnRnadeModel(net, new ColumnStandardizer(new[] { 0.3f }, new[] { 1.7f }));
    }

    private static readonly float[] Prefix = { 0.4f, -1.1f };

    /// <summary>log p(x | <paramref name="prefix"/>) on an n-point grid over [lo, hi] (one-value frames).</summary>
    private static (double[] X, float[] LogP) Conditional(RnnRnadeModel model, float[] prefix, int n, double lo, double hi)
    {
        int length = prefix.Length + 1;
        var values = new float[n * length];
        var x = new double[n];
        for (int i = 0; i < n; i++)
        {
            x[i] = lo + i * (hi - lo) / (n - 1);
            prefix.CopyTo(values, i * length);
            values[i * length + prefix.Length] = (float)x[i];
        }
        var frames = new float[n * length];
        model.FrameLogDensity(new SequenceBatch(values, Enumerable.Range(0, n + 1).Select(i => i * length).ToArray(), 1), frames);
        return (x, Enumerable.Range(0, n).Select(i => frames[i * length + prefix.Length]).ToArray());
    }

    /// <summary>Trapezoid moments ∫ p, ∫ x p, ∫ x² p of a 1-D log-density on a uniform grid.</summary>
    private static (double Integral, double Mean, double Second) Moments(double[] x, float[] logP)
    {
        double step = x[1] - x[0], total = 0, mean = 0, second = 0;
        for (int i = 0; i < x.Length; i++)
        {
            double w = (i == 0 || i == x.Length - 1 ? 0.5 : 1) * step * Math.Exp(logP[i]);
            total += w; mean += w * x[i]; second += w * x[i] * x[i];
        }
        return (total, mean, second);
    }

    [Fact]
    public void EachFramesConditionalIntegratesToOneByQuadrature()
    {
        var model = OneValueModel();
        foreach (var prefix in new[] { Array.Empty<float>(), Prefix[..1], Prefix })
        {
            var (x, logP) = Conditional(model, prefix, 160_001, -40, 40);
            var (integral, _, _) = Moments(x, logP);
            output.WriteLine($"∫ p(x_{prefix.Length + 1} | {prefix.Length} frames) dx = {integral:F6}");
            Assert.InRange(integral, 0.999, 1.001);
        }

        // Two values per frame: the second frame's conditional given the first, on a 2-D grid.
        const int D = 2, N = 801;
        const double Lo = -25, Hi = 25, Step = (Hi - Lo) / (N - 1);
        var net = RnnRnadeGradientTests.RandomNetwork(D, h: 4, k: 3, r: 3, Activation.Sigmoid, hiddenBias: true, seed: 12);
        var model2 = new RnnRnadeModel(net, new ColumnStandardizer(new[] { 0.5f, -0.2f }, new[] { 1.3f, 2.1f }));
        var values = new float[N * N * 2 * D];
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++)
            {
                int o = (i * N + j) * 2 * D;
                values[o] = 0.7f; values[o + 1] = -1.4f;
                values[o + 2] = (float)(Lo + i * Step); values[o + 3] = (float)(Lo + j * Step);
            }
        var frames = new float[N * N * 2];
        model2.FrameLogDensity(new SequenceBatch(values, Enumerable.Range(0, N * N + 1).Select(i => 2 * i).ToArray(), D), frames);
        double total = 0;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++)
                total += (i == 0 || i == N - 1 ? 0.5 : 1) * (j == 0 || j == N - 1 ? 0.5 : 1) * Step * Step * Math.Exp(frames[(i * N + j) * 2 + 1]);
        output.WriteLine($"∫∫ p(x_2 | x_1) dx_2 (two values per frame) = {total:F6}");
        Assert.InRange(total, 0.995, 1.005);
    }

    /// <summary>
    /// Draws frame by frame against the density: continuations of a fixed two-frame prefix have the mean and variance of
    /// p(x_3 | prefix) (quadrature), and fresh two-frame draws the means, variances and correlation of p(x_1) p(x_2 | x_1)
    /// (2-D quadrature); 200,000 draws, means within 5 standard errors, variances within 3 %, the correlation within 0.02.
    /// </summary>
    [Fact]
    public void DrawsFrameByFrameHaveTheDensitysMoments()
    {
        const int Draws = 200_000;
        var model = OneValueModel();

        var (x, logP) = Conditional(model, Prefix, 160_001, -40, 40);
        var (_, mean, second) = Moments(x, logP);
        double variance = second - mean * mean;
        var prefixes = new float[Draws * Prefix.Length];
        for (int i = 0; i < Draws; i++) Prefix.CopyTo(prefixes, i * Prefix.Length);
        var continued = model.Sample(new SequenceBatch(prefixes, Enumerable.Range(0, Draws + 1).Select(i => i * Prefix.Length).ToArray(), 1), extraFrames: 1, seed: 5);
        var third = Enumerable.Range(0, Draws).Select(i => (double)continued.Values[continued.Offsets[i] + Prefix.Length]).ToArray();
        AssertMoments("x_3 | prefix", third, mean, variance);

        // Fresh pairs: the joint p(x_1) p(x_2 | x_1) on a grid.
        const int N = 1201;
        const double Lo = -40, Hi = 40, Step = (Hi - Lo) / (N - 1);
        var values = new float[N * N * 2];
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) { values[(i * N + j) * 2] = (float)(Lo + i * Step); values[(i * N + j) * 2 + 1] = (float)(Lo + j * Step); }
        var joint = model.LogDensity(new SequenceBatch(values, Enumerable.Range(0, N * N + 1).Select(i => 2 * i).ToArray(), 1));
        // Moments of x_1 and x_2, their correlation, and the mean of x_2 on either side of x_1 = E[x_1] (the dependence).
        double total = 0, m1 = 0, m2 = 0, s1 = 0, s2 = 0, cross = 0;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++)
            {
                double w = (i == 0 || i == N - 1 ? 0.5 : 1) * (j == 0 || j == N - 1 ? 0.5 : 1) * Step * Step * Math.Exp(joint[i * N + j]);
                double a = values[(i * N + j) * 2], b = values[(i * N + j) * 2 + 1];
                total += w; m1 += w * a; m2 += w * b; s1 += w * a * a; s2 += w * b * b; cross += w * a * b;
            }
        Assert.InRange(total, 0.995, 1.005);
        double v1 = s1 - m1 * m1, v2 = s2 - m2 * m2, correlation = (cross - m1 * m2) / Math.Sqrt(v1 * v2);
        double aboveMass = 0, aboveSum = 0, belowMass = 0, belowSum = 0;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++)
            {
                double w = (i == 0 || i == N - 1 ? 0.5 : 1) * (j == 0 || j == N - 1 ? 0.5 : 1) * Math.Exp(joint[i * N + j]);
                double a = values[(i * N + j) * 2], b = values[(i * N + j) * 2 + 1];
                if (a > m1) { aboveMass += w; aboveSum += w * b; } else { belowMass += w; belowSum += w * b; }
            }
        double above = aboveSum / aboveMass, below = belowSum / belowMass;

        var pairs = model.Sample(Draws, length: 2, seed: 6).Values;
        var first = Enumerable.Range(0, Draws).Select(i => (double)pairs[2 * i]).ToArray();
        var second2 = Enumerable.Range(0, Draws).Select(i => (double)pairs[2 * i + 1]).ToArray();
        AssertMoments("fresh x_1", first, m1, v1);
        AssertMoments("fresh x_2", second2, m2, v2);
        double fm1 = first.Average(), fm2 = second2.Average();
        double sampleCorrelation = first.Zip(second2, (a, b) => (a - fm1) * (b - fm2)).Average()
            / Math.Sqrt(first.Average(a => (a - fm1) * (a - fm1)) * second2.Average(b => (b - fm2) * (b - fm2)));
        output.WriteLine($"corr(x_1, x_2): draws {sampleCorrelation:F4}, density {correlation:F4}");
        Assert.True(Math.Abs(sampleCorrelation - correlation) < 0.02, $"corr(x_1, x_2): draws {sampleCorrelation}, density {correlation}");
        output.WriteLine($"E[x_2 | x_1 > E x_1] − E[x_2 | x_1 ≤ E x_1]: density {above - below:F4}");
        Assert.True(Math.Abs(above - below) > 0.25 * Math.Sqrt(v2), $"x_2 hardly depends on x_1 ({above} vs {below}): the check needs a dependence");
        AssertMoments("fresh x_2 where x_1 > E x_1", Enumerable.Range(0, Draws).Where(i => first[i] > m1).Select(i => second2[i]).ToArray(), above, double.NaN);
        AssertMoments("fresh x_2 where x_1 ≤ E x_1", Enumerable.Range(0, Draws).Where(i => first[i] <= m1).Select(i => second2[i]).ToArray(), below, double.NaN);
    }

    /// <summary>Mean within 5 standard errors; the variance within 3 % when the density's is given (not NaN).</summary>
    private void AssertMoments(string what, double[] draws, double mean, double variance)
    {
        double m = draws.Average(), v = draws.Average(a => (a - m) * (a - m));
        output.WriteLine($"{what}: draws mean {m:F4} variance {v:F4}; density mean {mean:F4} variance {variance:F4}");
        Assert.True(Math.Abs(m - mean) < 5 * Math.Sqrt((double.IsNaN(variance) ? v : variance) / draws.Length), $"{what}: draws' mean {m}, density's {mean}");
        if (!double.IsNaN(variance)) Assert.True(Math.Abs(v / variance - 1) < 0.03, $"{what}: draws' variance {v}, density's {variance}");
    }
}
