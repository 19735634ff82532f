using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.DeepDensity.Numerics;

/// <summary>Elementwise non-linearities used by the models' hidden layers.</summary>
public enum Activation
{
    /// <summary>f(x) = x.</summary>
    Identity = 0,
    /// <summary>Rectified linear unit, max(0, x).</summary>
    Relu = 1,
    /// <summary>Logistic sigmoid 1 / (1 + e^-x).</summary>
    Sigmoid = 2,
    /// <summary>Hyperbolic tangent.</summary>
    Tanh = 3,
    /// <summary>log(1 + e^x).</summary>
    Softplus = 4,
}

/// <summary>Vectorised forward and backward passes of <see cref="Activation"/> over spans.</summary>
internal static class Activations
{
    /// <summary>output = f(input). <paramref name="output"/> may alias <paramref name="input"/>.</summary>
    public static void Forward(Activation activation, ReadOnlySpan<float> input, Span<float> output)
    {
        switch (activation)
        {
            case Activation.Identity: if (!input.Overlaps(output)) input.CopyTo(output); break;
            case Activation.Relu: TensorPrimitives.Max(input, 0f, output); break;
            case Activation.Sigmoid: TensorPrimitives.Sigmoid(input, output); break;
            case Activation.Tanh: Tanh(input, output); break;
            case Activation.Softplus: Softplus(input, output); break;
            default: throw new ArgumentOutOfRangeException(nameof(activation), activation, "Unknown activation.");
        }
    }

    /// <summary>
    /// output = tanh(input) (may alias): <see cref="VectorMath.Tanh(Vector512{float})"/>, whose 16-lane, 8-lane and
    /// scalar versions give the same bits, so no element depends on the path or on where it sits (the tail is scalar).
    /// The runtime's TensorPrimitives.Tanh costs about as much here and gives tanh 0 = −6e-8.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tanh(ReadOnlySpan<float> input, Span<float> output)
    {
        int n = input.Length, i = 0;
        if (output.Length < n) throw new ArgumentException("The output is shorter than the input.", nameof(output));
        ref float src = ref MemoryMarshal.GetReference(input);
        ref float dst = ref MemoryMarshal.GetReference(output);
        var level = KernelPath.Current;
        if (level == SimdLevel.Avx512)
            for (; i + 16 <= n; i += 16)
                VectorMath.Tanh(Vector512.LoadUnsafe(ref src, (nuint)i)).StoreUnsafe(ref dst, (nuint)i);
        if (level >= SimdLevel.Avx2)
            for (; i + 8 <= n; i += 8)
                VectorMath.Tanh(Vector256.LoadUnsafe(ref src, (nuint)i)).StoreUnsafe(ref dst, (nuint)i);
        for (; i < n; i++) output[i] = VectorMath.Tanh(input[i]);
    }

    /// <summary>g ·= 1 − y² as g − (g·y)·y, one fused multiply-add per element (one pass; the same bits on every path).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MultiplyByTanhDerivative(ReadOnlySpan<float> output, Span<float> gradient)
    {
        int n = gradient.Length, i = 0;
        if (output.Length < n) throw new ArgumentException("The output is shorter than the gradient.", nameof(output));
        ref float y = ref MemoryMarshal.GetReference(output);
        ref float g = ref MemoryMarshal.GetReference(gradient);
        var level = KernelPath.Current;
        if (level == SimdLevel.Avx512)
            for (; i + 16 <= n; i += 16)
            {
                var vy = Vector512.LoadUnsafe(ref y, (nuint)i);
                var vg = Vector512.LoadUnsafe(ref g, (nuint)i);
                Avx512F.FusedMultiplyAdd(-(vg * vy), vy, vg).StoreUnsafe(ref g, (nuint)i);
            }
        if (level >= SimdLevel.Avx2)
            for (; i + 8 <= n; i += 8)
            {
                var vy = Vector256.LoadUnsafe(ref y, (nuint)i);
                var vg = Vector256.LoadUnsafe(ref g, (nuint)i);
                Fma.MultiplyAddNegated(Avx.Multiply(vg, vy), vy, vg).StoreUnsafe(ref g, (nuint)i);
            }
        for (; i < n; i++) gradient[i] = MathF.FusedMultiplyAdd(-(gradient[i] * output[i]), output[i], gradient[i]);
    }

    /// <summary>gradient ·= f′, with f′ computed from the activation's output <paramref name="output"/> (vectorised):
    /// every supported activation's derivative is a function of its output (tanh: 1 − y², sigmoid: y(1 − y), ReLU: y &gt; 0,
    /// softplus: 1 − e^−y, identity: 1), so layers keep only their outputs.</summary>
    public static void MultiplyByDerivative(Activation activation, ReadOnlySpan<float> output, Span<float> gradient)
    {
        const int Chunk = 256;
        Span<float> t = stackalloc float[Chunk];
        switch (activation)
        {
            case Activation.Identity:
                return;
            case Activation.Relu:
                for (int i = 0; i < gradient.Length; i++) if (!(output[i] > 0f)) gradient[i] = 0f;
                return;
            case Activation.Tanh:
                MultiplyByTanhDerivative(output, gradient);
                return;
        }
        for (int start = 0; start < gradient.Length; start += Chunk)
        {
            int len = Math.Min(Chunk, gradient.Length - start);
            var y = output.Slice(start, len);
            var g = gradient.Slice(start, len);
            var s = t[..len];
            switch (activation)
            {
                case Activation.Sigmoid:    // g y (1 − y) = g·y − g·y·y
                    TensorPrimitives.Multiply(g, y, g);
                    TensorPrimitives.Multiply(g, y, s);
                    TensorPrimitives.Subtract(g, s, g);
                    break;
                case Activation.Softplus:   // σ(x) = 1 − e^{−softplus(x)}
                    TensorPrimitives.Negate(y, s);
                    EagerTensorMath.Exp(s, s);
                    TensorPrimitives.Multiply(g, s, s);
                    TensorPrimitives.Subtract(g, s, g);
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(activation), activation, "Unknown activation.");
            }
        }
    }

    /// <summary>Numerically stable softplus: max(x,0) + log1p(exp(-|x|)).</summary>
    public static void Softplus(ReadOnlySpan<float> input, Span<float> output)
    {
        for (int i = 0; i < input.Length; i++)
        {
            float x = input[i];
            output[i] = MathF.Max(x, 0f) + MathF.Log(1f + MathF.Exp(-MathF.Abs(x)));
        }
    }
}
