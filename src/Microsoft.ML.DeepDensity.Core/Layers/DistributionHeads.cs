using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Microsoft.ML.DeepDensity.Numerics;
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
            if (p != lastP) { EagerTensorMath.Exp(parameters.Slice(p * 2 * d + d, d), sigma); lastP = p; }
            TensorPrimitives.FusedMultiplyAdd(noise.Slice(j * d, d), sigma, mu, z.Slice(j * d, d));
        }
    }

    /// <summary>accumulator[j] += coefficient · log N(value[j/valueRepeat]; μ[j/paramRepeat], σ²).</summary>
    public static void AccumulateLogProb(ReadOnlySpan<float> value, int valueRepeat, ReadOnlySpan<float> parameters, int paramRepeat,
        int rows, int d, float coefficient, Span<float> accumulator)
    {
        Span<float> u = d <= 1024 ? stackalloc float[d] : new float[d];
        Span<float> inv = d <= 1024 ? stackalloc float[d] : new float[d];
        // 1/σ and Σ log σ once per parameter row: the k samples of a data row share it (K = 5000 in an evaluation).
        int lastP = -1;
        float sumLogSigma = 0f;
        for (int j = 0; j < rows; j++)
        {
            int p = j / paramRepeat;
            if (p != lastP)
            {
                var logSigma = parameters.Slice(p * 2 * d + d, d);
                InverseSigma(logSigma, inv);
                sumLogSigma = TensorPrimitives.Sum(logSigma);
                lastP = p;
            }
            Standardize(value.Slice(j / valueRepeat * d, d), parameters.Slice(p * 2 * d, d), inv, u);
            float lp = -0.5f * TensorPrimitives.SumOfSquares(u) - sumLogSigma - d * HalfLog2Pi;
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
        Span<float> uOverSigma = d <= 1024 ? stackalloc float[d] : new float[d];
        int lastP = -1;
        for (int j = 0; j < rows; j++)
        {
            float s = rowScale[j];
            if (s == 0f) continue;
            int p = j / paramRepeat, v = j / valueRepeat;
            // 1/σ once per parameter row, as in AccumulateLogProb (the k samples of a row share it).
            if (p != lastP) { InverseSigma(parameters.Slice(p * 2 * d + d, d), inv); lastP = p; }
            Standardize(value.Slice(v * d, d), parameters.Slice(p * 2 * d, d), inv, u);
            // ∂/∂μ = u/σ, ∂/∂x = −u/σ, ∂/∂log σ = u² − 1.
            TensorPrimitives.Multiply(u, inv, uOverSigma);
            if (!valueGradient.IsEmpty)
            {
                var gx = valueGradient.Slice(v * d, d);
                TensorPrimitives.MultiplyAdd(uOverSigma, -s, gx, gx);
            }
            if (!parameterGradient.IsEmpty)
            {
                var gm = parameterGradient.Slice(p * 2 * d, d);
                var gs = parameterGradient.Slice(p * 2 * d + d, d);
                TensorPrimitives.MultiplyAdd(uOverSigma, s, gm, gm);
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

    /// <summary>inv = 1/σ = exp(−log σ).</summary>
    private static void InverseSigma(ReadOnlySpan<float> logSigma, Span<float> inv)
    {
        TensorPrimitives.Negate(logSigma, inv);
        EagerTensorMath.Exp(inv, inv);
    }

    /// <summary>u = (x − μ)·inv, with inv = 1/σ from <see cref="InverseSigma"/>.</summary>
    private static void Standardize(ReadOnlySpan<float> x, ReadOnlySpan<float> mu, ReadOnlySpan<float> inv, Span<float> u)
    {
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
    /// <remarks>One pass per row that stores nothing (<see cref="RowLogProb"/>): on the IWAE's evaluation path this head
    /// scores every one of the K samples' 784 logits, so a pass per elementary operation would dominate it.</remarks>
    public static unsafe void AccumulateLogProb(ReadOnlySpan<float> value, int valueRepeat, ReadOnlySpan<float> logits, int rows, int d,
        float coefficient, Span<float> accumulator)
    {
        if (logits.Length < (long)rows * d || value.Length < (rows + valueRepeat - 1) / valueRepeat * (long)d || accumulator.Length < rows)
            throw new ArgumentException("A span is shorter than rows × width.");
        bool wide = KernelPath.Current == SimdLevel.Avx512;
        Span<float> t = d <= 2048 ? stackalloc float[d] : new float[d];
        fixed (float* pl = logits, px = value)
            for (int j = 0; j < rows; j++)
                accumulator[j] += coefficient * RowLogProb(pl + (long)j * d, px + (long)(j / valueRepeat) * d, d, wide, t);
    }

    /// <summary>
    /// Σ x·l − max(l, 0) − log(1 + e^{−|l|}) of one row in one pass. With <paramref name="wide"/> (AVX-512) sixteen lanes at a
    /// time, the rest (all of it without AVX-512) by <see cref="RowLogProbSpans"/>. The wide path takes one log per lane of a product
    /// instead of one per entry: Σ log(1 + e_c) = log Π (1 + e_c), each factor in (1, 2], so a block of up to 64 factors per
    /// lane stays below 2^64 (no overflow) and the product's relative rounding error (≤ 64 · 2^−24) is an absolute error
    /// of about 4e-6 in the sum, below the float rounding of a sum of hundreds of terms. The paths agree to float rounding,
    /// not bit for bit.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe float RowLogProb(float* l, float* x, int d, bool wide, Span<float> scratch)
    {
        const int FactorsPerLog = 64;
        int i = 0;
        float sum = 0f;
        if (wide)
        {
            var linear = Vector512<float>.Zero;
            var positive = Vector512<float>.Zero;
            var logs = Vector512<float>.Zero;
            var one = Vector512.Create(1f);
            var signBit = Vector512.Create(0x80000000u).AsSingle();
            while (i + 16 <= d)
            {
                var product = one;
                for (int f = 0; f < FactorsPerLog && i + 16 <= d; f++, i += 16)
                {
                    var z = Vector512.Load(l + i);
                    // product · (1 + e) as product·e + product, rounded once; e = exp(−|z|) (−|z| is z with its sign bit set).
                    product = Avx512F.FusedMultiplyAdd(product, VectorMath.ExpOfAtMostExpMax(z | signBit), product);
                    linear = Avx512F.FusedMultiplyAdd(Vector512.Load(x + i), z, linear);
                    // vmaxps with z second returns z when it is NaN (Vector512.Max's NaN handling costs two more instructions).
                    positive += Avx512F.Max(Vector512<float>.Zero, z);
                }
                logs += VectorMath.Log(product);
            }
            sum = Vector512.Sum(linear - positive - logs);
        }
        return i == d ? sum : sum + RowLogProbSpans(new ReadOnlySpan<float>(x + i, d - i), new ReadOnlySpan<float>(l + i, d - i), scratch);
    }

    /// <summary>Σ x·l − max(l, 0) − log1p(e^{−|l|}) for one row without AVX-512: one fused SIMD pass, then vectorised exp
    /// and log1p (TensorPrimitives, so vectorised on any CPU).</summary>
    private static float RowLogProbSpans(ReadOnlySpan<float> x, ReadOnlySpan<float> l, Span<float> scratch)
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
        EagerTensorMath.Exp(t, t);
        TensorPrimitives.LogP1(t, t);
        return linear - TensorPrimitives.Sum(t);
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
            VectorMath.Sigmoid(logits.Slice(j * d, d), default, 1f, t);
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

    /// <summary>
    /// Sampling and scoring in one pass (the hot loop of score-function training): for <paramref name="rows"/> rows of
    /// width d, sample[j] = [u[j] &lt; σ(l[j/logitRepeat])] entry-wise, logProb[j] = log p(sample[j]) (overwritten) and,
    /// when <paramref name="residual"/> is non-empty, residual[j] = sample[j] − σ(l), the logit gradient of log p (kept
    /// for the backward pass, so σ is computed once).
    /// </summary>
    public static unsafe void SampleWithLogProb(ReadOnlySpan<float> logits, int logitRepeat, ReadOnlySpan<float> uniforms,
        int rows, int d, Span<float> samples, Span<float> logProb, Span<float> residual)
    {
        Check(logits, logitRepeat, rows, d, samples, logProb, residual);
        if (uniforms.Length < rows * d) throw new ArgumentException("Too few uniforms.", nameof(uniforms));
        fixed (float* pl = logits, pu = uniforms, px = samples, pr = residual)
            for (int j = 0; j < rows; j++)
                logProb[j] = FusedRow(pl + (long)(j / logitRepeat) * d, pu + (long)j * d, px + (long)j * d, pr == null ? null : pr + (long)j * d, d);
    }

    /// <summary>
    /// logProb[j] = log p(value[j/valueRepeat] | σ(l[j])) (overwritten) and, when <paramref name="residual"/> is non-empty,
    /// residual[j] = value − σ(l[j]) (the logit gradient, for the backward pass), in one pass.
    /// </summary>
    public static unsafe void LogProbWithResidual(ReadOnlySpan<float> value, int valueRepeat, ReadOnlySpan<float> logits,
        int rows, int d, Span<float> logProb, Span<float> residual)
    {
        Check(logits, 1, rows, d, default, logProb, residual);
        if (value.Length < (rows + valueRepeat - 1) / valueRepeat * d) throw new ArgumentException("Too few values.", nameof(value));
        fixed (float* pl = logits, px = value, pr = residual)
            for (int j = 0; j < rows; j++)
                logProb[j] = FusedRow(pl + (long)j * d, null, px + (long)(j / valueRepeat) * d, pr == null ? null : pr + (long)j * d, d);
    }

    private static void Check(ReadOnlySpan<float> logits, int logitRepeat, int rows, int d, Span<float> samples, Span<float> logProb, Span<float> residual)
    {
        long cells = (long)rows * d;
        if (logits.Length < (rows + logitRepeat - 1) / logitRepeat * (long)d || logProb.Length < rows
            || (!samples.IsEmpty && samples.Length < cells) || (!residual.IsEmpty && residual.Length < cells))
            throw new ArgumentException("A span is shorter than rows × width.");
    }

    /// <summary>
    /// One row: σ(l) and softplus(l) = max(l, 0) + log(1 + e) from one e = e^{−|l|}; x is drawn into <paramref name="x"/>
    /// when <paramref name="u"/> is given, else read from it. Returns Σ x·l − softplus(l). Non-finite logits give a
    /// non-finite result (divergence is still detected).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot from the first step: no slow tier-0 first epoch
    private static unsafe float FusedRow(float* l, float* u, float* x, float* residual, int d)
    {
        int i = 0;
        float sum = 0f;
        if (VectorMath.IsSupported)
        {
            var acc = Vector256<float>.Zero;
            var one = Vector256.Create(1f);
            var zero = Vector256<float>.Zero;
            var abs = Vector256.Create(0x7FFFFFFF).AsSingle();
            for (; i + 8 <= d; i += 8)
            {
                var z = Avx.LoadVector256(l + i);
                var e = VectorMath.Exp(Avx.Subtract(zero, Avx.And(z, abs)));
                var r = Avx.Divide(one, Avx.Add(one, e));
                var p = Avx.BlendVariable(Avx.Multiply(e, r), r, Avx.CompareGreaterThanOrEqual(z, zero));
                Vector256<float> xv;
                if (u != null) { xv = Avx.And(Avx.CompareLessThan(Avx.LoadVector256(u + i), p), one); Avx.Store(x + i, xv); }
                else xv = Avx.LoadVector256(x + i);
                if (residual != null) Avx.Store(residual + i, Avx.Subtract(xv, p));
                acc = Avx.Add(acc, Avx.Subtract(Fma.MultiplyAdd(xv, z, Avx.Subtract(zero, Avx.Max(z, zero))), VectorMath.Log(Avx.Add(one, e))));
            }
            sum = Vector256.Sum(acc);
        }
        for (; i < d; i++)
        {
            float z = l[i], e = MathF.Exp(-MathF.Abs(z)), r = 1f / (1f + e), p = z >= 0 ? r : e * r;
            float xi = u != null ? (x[i] = u[i] < p ? 1f : 0f) : x[i];
            if (residual != null) residual[i] = xi - p;
            sum += xi * z - MathF.Max(z, 0f) - MathF.Log(1f + e);
        }
        return sum;
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
