using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using Microsoft.ML.DeepDensity.Numerics;

namespace Microsoft.ML.DeepDensity.Training;

/// <summary>Which first-order optimiser the training loop uses.</summary>
public enum OptimizerKind
{
    /// <summary>Adam (Kingma &amp; Ba 2015) with bias correction.</summary>
    Adam = 0,
    /// <summary>Stochastic gradient descent with (heavy-ball) momentum.</summary>
    SgdMomentum = 1,
}

/// <summary>Updates parameters from their gradients (of a loss to minimise).</summary>
internal abstract class Optimizer
{
    /// <summary>One update with the given learning rate.</summary>
    public abstract void Step(ParameterSet parameters, float learningRate);

    /// <summary>
    /// One update, and whether every gradient was finite. When one was not, the parameters and moments may already hold
    /// non-finite values: the caller must treat the step as divergence (the training driver restores the last good state
    /// and calls <see cref="Reset"/>). This lets an optimiser test the gradients in its own pass over them instead of a
    /// separate one (the check is otherwise a full extra pass over every gradient).
    /// </summary>
    public virtual bool StepIfFinite(ParameterSet parameters, float learningRate)
    {
        if (!double.IsFinite(parameters.GradientNorm())) return false;
        Step(parameters, learningRate);
        return true;
    }

    /// <summary>Forgets moment estimates (after a divergence restore).</summary>
    public abstract void Reset();

    /// <summary>
    /// The training loop's update from the gradients in place (a minibatch's, or a data-parallel step's merged mean):
    /// global-norm clipping to <paramref name="clipNorm"/> when it is positive, then the step. False when a gradient was
    /// not finite; the parameters may then hold non-finite values and the caller restores its last good state.
    /// </summary>
    public bool ClipAndStep(ParameterSet parameters, float clipNorm, float learningRate)
    {
        if (clipNorm > 0)
        {
            double norm = parameters.GradientNorm();
            if (!double.IsFinite(norm)) return false;
            // The clipping factor goes into the step's own pass over the gradients (the buffers keep the unclipped
            // values): the same float product as scaling them in place first, without that pass.
            StepScaled(parameters, learningRate, norm > clipNorm ? (float)(clipNorm / norm) : 1f);
            return true;
        }
        // Without clipping the optimiser tests the gradients in its own pass; after a non-finite one the parameters
        // are not finite either, and the caller restores the last good state and resets the optimiser.
        return StepIfFinite(parameters, learningRate);
    }

    /// <summary>One update from the gradients times <paramref name="gradientScale"/> (global-norm clipping's factor; 1 leaves
    /// them as they are). This default scales the buffers in place, then steps; an optimiser may fold the factor into
    /// its own pass instead, with the same bits.</summary>
    protected virtual void StepScaled(ParameterSet parameters, float learningRate, float gradientScale)
    {
        if (gradientScale != 1f)
            parameters.ForEachChunk((i, start, length) =>
            {
                var g = parameters.Items[i].Gradient.AsSpan(start, length);
                TensorPrimitives.Multiply(g, gradientScale, g);
            });
        Step(parameters, learningRate);
    }

    /// <summary>Creates the optimiser described by <paramref name="options"/>.</summary>
    public static Optimizer Create(GradientTrainingOptions options) => options.Optimizer switch
    {
        OptimizerKind.Adam => new AdamOptimizer(options.AdamBeta1, options.AdamBeta2, options.AdamEpsilon, options.WeightDecay),
        OptimizerKind.SgdMomentum => new SgdMomentumOptimizer(options.Momentum, options.WeightDecay),
        _ => throw new ArgumentOutOfRangeException(nameof(options), options.Optimizer, "Unknown optimizer."),
    };
}

/// <summary>Adam with bias correction and optional L2 weight decay added to the gradient.</summary>
internal sealed class AdamOptimizer : Optimizer
{
    private readonly float _beta1, _beta2, _epsilon, _weightDecay;
    private float[][]? _m, _v;
    private long _t;

    public AdamOptimizer(float beta1 = 0.9f, float beta2 = 0.999f, float epsilon = 1e-8f, float weightDecay = 0f)
    {
        _beta1 = beta1; _beta2 = beta2; _epsilon = epsilon; _weightDecay = weightDecay;
    }

    public override void Reset() { _m = null; _v = null; _t = 0; }

    public override void Step(ParameterSet parameters, float learningRate) => StepIfFinite(parameters, learningRate);

    protected override void StepScaled(ParameterSet parameters, float learningRate, float gradientScale) => Update(parameters, learningRate, gradientScale);

    /// <summary>The update, testing each gradient's exponent bits on the way (no extra pass over the gradients).</summary>
    public override bool StepIfFinite(ParameterSet parameters, float learningRate) => Update(parameters, learningRate, 1f);

    /// <summary>The update from the gradients times <paramref name="gradientScale"/>; false when a gradient was not finite.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private bool Update(ParameterSet parameters, float learningRate, float gradientScale)
    {
        var items = parameters.Items;
        _m ??= items.Select(p => new float[p.Value.Length]).ToArray();
        _v ??= items.Select(p => new float[p.Value.Length]).ToArray();
        _t++;
        float c1 = 1f / (1f - MathF.Pow(_beta1, _t));
        float c2 = 1f / (1f - MathF.Pow(_beta2, _t));
        float b1 = _beta1, b2 = _beta2, eps = _epsilon, wd = _weightDecay;
        float[][] ms = _m, vs = _v;
        // Element-wise, so updating chunks on several threads gives the same bits as one pass.
        int nonFinite = 0;
        parameters.ForEachChunk((i, start, length) =>
        {
            if (!Update(items[i].Value.AsSpan(start, length), items[i].Gradient.AsSpan(start, length),
                    ms[i].AsSpan(start, length), vs[i].AsSpan(start, length), gradientScale, b1, b2, c1, c2, eps, wd, learningRate))
                Volatile.Write(ref nonFinite, 1);
        });
        return nonFinite == 0;
    }

    /// <summary>Moments below the smallest normal float are stored as 0 (<see cref="VectorMath.MinNormal"/>): a parameter
    /// whose gradient becomes exactly 0 (the weights of a pixel no row of a batch has on) sees its first moment decay by
    /// β₁ per step into the subnormal range, where it sticks at the smallest subnormal (0.9 × 2^-149 rounds back to
    /// 2^-149) and every later update that reads it takes a microcode assist; an IWAE on Fashion-MNIST gathered such
    /// moments every epoch.</summary>
    internal const float MinNormal = VectorMath.MinNormal;

    /// <summary>Updates one chunk; false when a gradient in it is not finite (its exponent bits are all ones).</summary>
    /// <remarks>Sixteen lanes at a time on the AVX-512 path, eight on AVX2, then one: the same per-element operations on
    /// every path (no fused multiply-adds), so every path gives the same bits (<c>AdamPathsGiveTheSameBits</c>). The update
    /// is bound by its two divide-class operations per element (a division and a square root), not by memory, so the
    /// 512-bit loop takes 0.14–0.15 ms against 0.22–0.24 ms for the 256-bit one on NVIL's 200-200 parameters inside a
    /// one-thread step (in-process A/B, docs/benchmarks.md, session 28).</remarks>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static bool Update(Span<float> w, ReadOnlySpan<float> g, Span<float> m, Span<float> v, float gs,
        float b1, float b2, float c1, float c2, float eps, float wd, float learningRate)
    {
        int j = 0;
        bool finite = true;
        var level = KernelPath.Current;
        if (level >= SimdLevel.Avx512 && Vector512.IsHardwareAccelerated)
            finite = Update512(w, g, m, v, gs, b1, b2, c1, c2, eps, wd, learningRate, ref j);
        if (level >= SimdLevel.Avx2 && Vector256.IsHardwareAccelerated)
            finite &= Update256(w, g, m, v, gs, b1, b2, c1, c2, eps, wd, learningRate, ref j);
        for (; j < w.Length; j++)
        {
            finite &= float.IsFinite(g[j]);
            float gj = g[j] * gs + wd * w[j];
            m[j] = b1 * m[j] + (1 - b1) * gj;
            v[j] = b2 * v[j] + (1 - b2) * gj * gj;
            if (MathF.Abs(m[j]) < MinNormal) m[j] = 0f;
            if (v[j] < MinNormal) v[j] = 0f;
            w[j] -= learningRate * (m[j] * c1) / (MathF.Sqrt(v[j] * c2) + eps);
        }
        return finite;
    }

    /// <summary>The scalar loop's arithmetic on 16 lanes from <paramref name="j"/> while 16 remain; false when a gradient
    /// read was not finite. (Kept apart from <see cref="Update256"/>: .NET 8, a target of this assembly, has no common
    /// interface over the two vector widths.)</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static bool Update512(Span<float> w, ReadOnlySpan<float> g, Span<float> m, Span<float> v, float gs,
        float b1, float b2, float c1, float c2, float eps, float wd, float learningRate, ref int j)
    {
        var vb1 = Vector512.Create(b1); var vb2 = Vector512.Create(b2);
        var vc1 = Vector512.Create(c1); var vc2 = Vector512.Create(c2);
        var v1b1 = Vector512.Create(1 - b1); var v1b2 = Vector512.Create(1 - b2);
        var veps = Vector512.Create(eps); var vlr = Vector512.Create(learningRate);
        var vwd = Vector512.Create(wd);
        var vgs = Vector512.Create(gs);
        var exponent = Vector512.Create(0x7F800000u);
        var minNormal = Vector512.Create(MinNormal);
        var bad = Vector512<uint>.Zero;
        for (; j + 16 <= w.Length; j += 16)
        {
            var wj = Vector512.Create((ReadOnlySpan<float>)w.Slice(j, 16));
            var graw = Vector512.Create(g.Slice(j, 16));
            bad |= Vector512.Equals(graw.AsUInt32() & exponent, exponent);
            var gj = graw * vgs + vwd * wj;
            var mj = vb1 * Vector512.Create((ReadOnlySpan<float>)m.Slice(j, 16)) + v1b1 * gj;
            var vj = vb2 * Vector512.Create((ReadOnlySpan<float>)v.Slice(j, 16)) + v1b2 * gj * gj;
            mj = Vector512.AndNot(mj, Vector512.LessThan(Vector512.Abs(mj), minNormal)); // NaN stays NaN, as in the scalar loop
            vj = Vector512.AndNot(vj, Vector512.LessThan(vj, minNormal));
            mj.CopyTo(m.Slice(j, 16)); vj.CopyTo(v.Slice(j, 16));
            (wj - vlr * (mj * vc1) / (Vector512.Sqrt(vj * vc2) + veps)).CopyTo(w.Slice(j, 16));
        }
        return bad == Vector512<uint>.Zero;
    }

    /// <summary><see cref="Update512"/> on 8 lanes.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static bool Update256(Span<float> w, ReadOnlySpan<float> g, Span<float> m, Span<float> v, float gs,
        float b1, float b2, float c1, float c2, float eps, float wd, float learningRate, ref int j)
    {
        var vb1 = Vector256.Create(b1); var vb2 = Vector256.Create(b2);
        var vc1 = Vector256.Create(c1); var vc2 = Vector256.Create(c2);
        var v1b1 = Vector256.Create(1 - b1); var v1b2 = Vector256.Create(1 - b2);
        var veps = Vector256.Create(eps); var vlr = Vector256.Create(learningRate);
        var vwd = Vector256.Create(wd);
        var vgs = Vector256.Create(gs);
        var exponent = Vector256.Create(0x7F800000u);
        var minNormal = Vector256.Create(MinNormal);
        var bad = Vector256<uint>.Zero;
        for (; j + 8 <= w.Length; j += 8)
        {
            var wj = Vector256.Create((ReadOnlySpan<float>)w.Slice(j, 8));
            var graw = Vector256.Create(g.Slice(j, 8));
            bad |= Vector256.Equals(graw.AsUInt32() & exponent, exponent);
            var gj = graw * vgs + vwd * wj;
            var mj = vb1 * Vector256.Create((ReadOnlySpan<float>)m.Slice(j, 8)) + v1b1 * gj;
            var vj = vb2 * Vector256.Create((ReadOnlySpan<float>)v.Slice(j, 8)) + v1b2 * gj * gj;
            mj = Vector256.AndNot(mj, Vector256.LessThan(Vector256.Abs(mj), minNormal));
            vj = Vector256.AndNot(vj, Vector256.LessThan(vj, minNormal));
            mj.CopyTo(m.Slice(j, 8)); vj.CopyTo(v.Slice(j, 8));
            (wj - vlr * (mj * vc1) / (Vector256.Sqrt(vj * vc2) + veps)).CopyTo(w.Slice(j, 8));
        }
        return bad == Vector256<uint>.Zero;
    }
}

/// <summary>SGD with heavy-ball momentum: v ← μ v − lr g; w ← w + v.</summary>
internal sealed class SgdMomentumOptimizer : Optimizer
{
    private readonly float _momentum, _weightDecay;
    private float[][]? _velocity;

    public SgdMomentumOptimizer(float momentum = 0.9f, float weightDecay = 0f) { _momentum = momentum; _weightDecay = weightDecay; }

    public override void Reset() => _velocity = null;

    public override void Step(ParameterSet parameters, float learningRate)
    {
        var items = parameters.Items;
        _velocity ??= items.Select(p => new float[p.Value.Length]).ToArray();
        for (int i = 0; i < items.Count; i++)
        {
            var w = items[i].Value; var g = items[i].Gradient; var vel = _velocity[i];
            if (_weightDecay != 0) TensorPrimitives.MultiplyAdd(w, _weightDecay, g, g);
            TensorPrimitives.Multiply(vel, _momentum, vel);
            TensorPrimitives.MultiplyAdd(g, -learningRate, vel, vel);
            VectorMath.FlushSubnormals(vel); // μ^t decays a velocity whose gradient stopped into the subnormal range (see AdamOptimizer.MinNormal)
            TensorPrimitives.Add(w, vel, w);
        }
    }
}
