using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

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
    /// Multiplies <paramref name="gradient"/> in place by f'(pre), given the pre-activation <paramref name="pre"/>
    /// and the post-activation <paramref name="post"/> = f(pre) (whichever the derivative needs is read).
    /// </summary>
    public static void Backward(Activation activation, ReadOnlySpan<float> pre, ReadOnlySpan<float> post, Span<float> gradient)
    {
        int n = gradient.Length;
        switch (activation)
        {
            case Activation.Identity: break;
            case Activation.Relu:
                for (int i = 0; i < n; i++) if (!(pre[i] > 0f)) gradient[i] = 0f;
                break;
            case Activation.Sigmoid:
                for (int i = 0; i < n; i++) gradient[i] *= post[i] * (1f - post[i]);
                break;
            case Activation.Tanh:
                for (int i = 0; i < n; i++) gradient[i] *= 1f - post[i] * post[i];
                break;
            case Activation.Softplus:
                for (int i = 0; i < n; i++) gradient[i] *= 1f / (1f + MathF.Exp(-pre[i]));
                break;
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
