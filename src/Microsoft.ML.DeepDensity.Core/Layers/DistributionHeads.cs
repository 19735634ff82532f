using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Layers;

// Output heads: log-probabilities of values under distributions whose parameters are network outputs, with the
// gradients of those log-probabilities, for a batch of rows. Conventions shared by all heads:
//  * Matrices are row-major; "rows" counts the rows of the batch being scored.
//  * A head parameter or value row may be shared by several consecutive batch rows ("repeat"): batch row j reads
//    row j / repeat. This lets k importance samples of one data row share that row's encoder output or data.
//  * AccumulateLogProb adds coefficient · log p(row j) to accumulator[j].
//  * Backward adds rowScale[j] · ∂ log p(row j) / ∂(value, parameters) into the gradient buffers (+=), so terms that
//    share a row (repeat > 1) sum; callers clear the buffers first.

/// <summary>
/// Diagonal Gaussian with parameter rows <c>[mean (d) | log σ (d)]</c> (width 2d): log-density, reparameterised
/// sampling <c>z = μ + σ·ε</c>, and gradients.
/// </summary>
internal static class DiagonalGaussianHead
{
    private const float HalfLog2Pi = 0.918938533204672742f;

    /// <summary>z[j] = μ[j/paramRepeat] + σ[j/paramRepeat] ⊙ noise[j] for <paramref name="rows"/> rows of width d.</summary>
    public static void Sample(ReadOnlySpan<float> parameters, int paramRepeat, ReadOnlySpan<float> noise, int rows, int d, Span<float> z)
    {
        Span<float> sigma = d <= 1024 ? stackalloc float[d] : new float[d];
        int lastP = -1;
        for (int j = 0; j < rows; j++)
        {
            int p = j / paramRepeat;
            var mu = parameters.Slice(p * 2 * d, d);
            if (p != lastP) { TensorPrimitives.Exp(parameters.Slice(p * 2 * d + d, d), sigma); lastP = p; }
            TensorPrimitives.FusedMultiplyAdd(noise.Slice(j * d, d), sigma, mu, z.Slice(j * d, d));
        }
    }

    /// <summary>accumulator[j] += coefficient · log N(value[j/valueRepeat]; μ[j/paramRepeat], σ²).</summary>
    public static void AccumulateLogProb(ReadOnlySpan<float> value, int valueRepeat, ReadOnlySpan<float> parameters, int paramRepeat,
        int rows, int d, float coefficient, Span<float> accumulator)
    {
        Span<float> u = d <= 1024 ? stackalloc float[d] : new float[d];
        Span<float> inv = d <= 1024 ? stackalloc float[d] : new float[d];
        for (int j = 0; j < rows; j++)
        {
            int p = j / paramRepeat;
            var logSigma = parameters.Slice(p * 2 * d + d, d);
            Standardize(value.Slice(j / valueRepeat * d, d), parameters.Slice(p * 2 * d, d), logSigma, u, inv);
            float lp = -0.5f * TensorPrimitives.SumOfSquares(u) - TensorPrimitives.Sum(logSigma) - d * HalfLog2Pi;
            accumulator[j] += coefficient * lp;
        }
    }

    /// <summary>
    /// Adds rowScale[j] · ∂ log N / ∂value into <paramref name="valueGradient"/> (skipped when empty; value rows are
    /// indexed like the values) and into <paramref name="parameterGradient"/> (∂/∂μ, ∂/∂log σ; skipped when empty).
    /// </summary>
    public static void Backward(ReadOnlySpan<float> value, int valueRepeat, ReadOnlySpan<float> parameters, int paramRepeat,
        int rows, int d, ReadOnlySpan<float> rowScale, Span<float> valueGradient, Span<float> parameterGradient)
    {
        Span<float> u = d <= 1024 ? stackalloc float[d] : new float[d];
        Span<float> inv = d <= 1024 ? stackalloc float[d] : new float[d];
        for (int j = 0; j < rows; j++)
        {
            float s = rowScale[j];
            if (s == 0f) continue;
            int p = j / paramRepeat, v = j / valueRepeat;
            Standardize(value.Slice(v * d, d), parameters.Slice(p * 2 * d, d), parameters.Slice(p * 2 * d + d, d), u, inv);
            // ∂/∂μ = u/σ, ∂/∂x = −u/σ, ∂/∂log σ = u² − 1.
            TensorPrimitives.Multiply(u, inv, inv);
            if (!valueGradient.IsEmpty)
            {
                var gx = valueGradient.Slice(v * d, d);
                TensorPrimitives.MultiplyAdd(inv, -s, gx, gx);
            }
            if (!parameterGradient.IsEmpty)
            {
                var gm = parameterGradient.Slice(p * 2 * d, d);
                var gs = parameterGradient.Slice(p * 2 * d + d, d);
                TensorPrimitives.MultiplyAdd(inv, s, gm, gm);
                TensorPrimitives.Multiply(u, u, u);
                TensorPrimitives.Add(gs, -s, gs);
                TensorPrimitives.MultiplyAdd(u, s, gs, gs);
            }
        }
    }

    /// <summary>
    /// Backward through the reparameterisation z = μ + σ ε: given ∂L/∂z (<paramref name="zGradient"/>), adds ∂L/∂μ = ∂L/∂z
    /// and ∂L/∂log σ = ∂L/∂z · (z − μ) into <paramref name="parameterGradient"/>.
    /// </summary>
    public static void SampleBackward(ReadOnlySpan<float> z, ReadOnlySpan<float> parameters, int paramRepeat, int rows, int d,
        ReadOnlySpan<float> zGradient, Span<float> parameterGradient)
    {
        Span<float> t = d <= 1024 ? stackalloc float[d] : new float[d];
        for (int j = 0; j < rows; j++)
        {
            int p = j / paramRepeat;
            var gz = zGradient.Slice(j * d, d);
            var gm = parameterGradient.Slice(p * 2 * d, d);
            var gs = parameterGradient.Slice(p * 2 * d + d, d);
            TensorPrimitives.Add(gm, gz, gm);
            TensorPrimitives.Subtract(z.Slice(j * d, d), parameters.Slice(p * 2 * d, d), t);
            TensorPrimitives.MultiplyAdd(t, gz, gs, gs);
        }
    }

    /// <summary>u = (x − μ)/σ, inv = 1/σ.</summary>
    private static void Standardize(ReadOnlySpan<float> x, ReadOnlySpan<float> mu, ReadOnlySpan<float> logSigma, Span<float> u, Span<float> inv)
    {
        TensorPrimitives.Negate(logSigma, inv);
        TensorPrimitives.Exp(inv, inv);
        TensorPrimitives.Subtract(x, mu, u);
        TensorPrimitives.Multiply(u, inv, u);
    }
}

/// <summary>The standard normal N(0, I) (e.g. a latent prior): log-density and its gradient.</summary>
internal static class StandardNormalHead
{
    private const float HalfLog2Pi = 0.918938533204672742f;

    /// <summary>accumulator[j] += coefficient · log N(value[j]; 0, I).</summary>
    public static void AccumulateLogProb(ReadOnlySpan<float> value, int rows, int d, float coefficient, Span<float> accumulator)
    {
        for (int j = 0; j < rows; j++)
            accumulator[j] += coefficient * (-0.5f * TensorPrimitives.SumOfSquares(value.Slice(j * d, d)) - d * HalfLog2Pi);
    }

    /// <summary>valueGradient[j] += rowScale[j] · (−value[j]).</summary>
    public static void Backward(ReadOnlySpan<float> value, int rows, int d, ReadOnlySpan<float> rowScale, Span<float> valueGradient)
    {
        for (int j = 0; j < rows; j++)
        {
            var g = valueGradient.Slice(j * d, d);
            TensorPrimitives.MultiplyAdd(value.Slice(j * d, d), -rowScale[j], g, g);
        }
    }
}

/// <summary>Independent Bernoulli variables with logit parameters (width d): log-probability, gradient, sampling.</summary>
internal static class BernoulliHead
{
    /// <summary>accumulator[j] += coefficient · Σ_c [x log σ(l) + (1−x) log(1−σ(l))] = coefficient · Σ_c (x·l − softplus(l)).</summary>
    public static void AccumulateLogProb(ReadOnlySpan<float> value, int valueRepeat, ReadOnlySpan<float> logits, int rows, int d,
        float coefficient, Span<float> accumulator)
    {
        Span<float> t = d <= 2048 ? stackalloc float[d] : new float[d];
        for (int j = 0; j < rows; j++)
            accumulator[j] += coefficient * RowLogProb(value.Slice(j / valueRepeat * d, d), logits.Slice(j * d, d), t);
    }

    /// <summary>Σ x·l − max(l, 0) − log1p(e^{−|l|}) for one row: one fused SIMD pass, then vectorised exp and log1p.</summary>
    private static float RowLogProb(ReadOnlySpan<float> x, ReadOnlySpan<float> l, Span<float> scratch)
    {
        int d = l.Length, i = 0;
        var t = scratch[..d];
        float linear = 0f;
        if (Vector.IsHardwareAccelerated && d >= Vector<float>.Count)
        {
            var acc = Vector<float>.Zero;
            var xs = MemoryMarshal.Cast<float, Vector<float>>(x);
            var ls = MemoryMarshal.Cast<float, Vector<float>>(l);
            var ts = MemoryMarshal.Cast<float, Vector<float>>(t);
            for (int v = 0; v < ls.Length; v++)
            {
                var lv = ls[v];
                acc += xs[v] * lv - Vector.Max(lv, Vector<float>.Zero);
                ts[v] = -Vector.Abs(lv);
            }
            linear = Vector.Sum(acc);
            i = ls.Length * Vector<float>.Count;
        }
        for (; i < d; i++)
        {
            linear += x[i] * l[i] - MathF.Max(l[i], 0f);
            t[i] = -MathF.Abs(l[i]);
        }
        TensorPrimitives.Exp(t, t);
        TensorPrimitives.LogP1(t, t);
        return linear - TensorPrimitives.Sum(t);
    }

    /// <summary>Σ softplus(l) = Σ max(l, 0) + log1p(e^{−|l|}), vectorised; <paramref name="scratch"/> has ≥ |l| floats.</summary>
    public static float SumSoftplus(ReadOnlySpan<float> l, Span<float> scratch)
    {
        var t = scratch[..l.Length];
        TensorPrimitives.Abs(l, t);
        TensorPrimitives.Negate(t, t);
        TensorPrimitives.Exp(t, t);
        TensorPrimitives.LogP1(t, t);
        float sum = TensorPrimitives.Sum(t);
        TensorPrimitives.Max(l, 0f, t);
        return sum + TensorPrimitives.Sum(t);
    }

    /// <summary>logitGradient[j] += rowScale[j] · (x − σ(l)).</summary>
    public static void Backward(ReadOnlySpan<float> value, int valueRepeat, ReadOnlySpan<float> logits, int rows, int d,
        ReadOnlySpan<float> rowScale, Span<float> logitGradient)
    {
        Span<float> t = d <= 2048 ? stackalloc float[d] : new float[d];
        for (int j = 0; j < rows; j++)
        {
            var g = logitGradient.Slice(j * d, d);
            var x = value.Slice(j / valueRepeat * d, d);
            float s = rowScale[j];
            TensorPrimitives.Sigmoid(logits.Slice(j * d, d), t);
            int i = 0;
            if (Vector.IsHardwareAccelerated && d >= Vector<float>.Count)
            {
                var xs = MemoryMarshal.Cast<float, Vector<float>>(x);
                var ts = MemoryMarshal.Cast<float, Vector<float>>(t);
                var gs = MemoryMarshal.Cast<float, Vector<float>>(g);
                var sv = new Vector<float>(s);
                for (int v = 0; v < ts.Length; v++) gs[v] += sv * (xs[v] - ts[v]);
                i = ts.Length * Vector<float>.Count;
            }
            for (; i < d; i++) g[i] += s * (x[i] - t[i]);
        }
    }

    /// <summary>Draws x ~ Bernoulli(σ(l)) for every entry (one uniform per entry, in order).</summary>
    public static void Sample(ReadOnlySpan<float> logits, RandomStream random, Span<float> destination)
    {
        for (int i = 0; i < logits.Length; i++)
        {
            float p = 1f / (1f + MathF.Exp(-logits[i]));
            destination[i] = random.NextSingle() < p ? 1f : 0f;
        }
    }
}
