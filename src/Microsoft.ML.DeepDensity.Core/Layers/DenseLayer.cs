using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Layers;

/// <summary>
/// A fully connected layer <c>y = f(x·W + b)</c> over a minibatch of rows (row-major), with its backward pass.
/// <c>W</c> is inputs×outputs (row i holds the weights from input i), so the forward pass is one GEMM.
/// </summary>
/// <remarks>
/// Only the post-activation output is kept: every supported activation's derivative is a function of its output
/// (tanh: 1−y², sigmoid: y(1−y), ReLU: y&gt;0, softplus: 1−e^{−y}, identity: 1), which halves the workspace.
/// </remarks>
internal sealed class DenseLayer
{
    /// <summary>A layer with zero weights (call <see cref="InitializeGlorot"/> or fill <see cref="Weight"/>).</summary>
    public DenseLayer(string name, int inputs, int outputs, Activation activation)
        : this(name, inputs, outputs, activation, new float[checked(inputs * outputs)], new float[outputs]) { }

    /// <summary>A layer over existing weight (inputs×outputs) and bias (outputs) arrays (not copied).</summary>
    public DenseLayer(string name, int inputs, int outputs, Activation activation, float[] weight, float[] bias)
    {
        if (inputs < 1) throw new ArgumentOutOfRangeException(nameof(inputs), "A layer needs at least one input.");
        if (outputs < 1) throw new ArgumentOutOfRangeException(nameof(outputs), "A layer needs at least one output.");
        if (weight.Length != inputs * outputs) throw new ArgumentException(FormattableString.Invariant($"Weight has {weight.Length} values; {inputs}×{outputs} expected."), nameof(weight));
        if (bias.Length != outputs) throw new ArgumentException(FormattableString.Invariant($"Bias has {bias.Length} values; {outputs} expected."), nameof(bias));
        if (!Enum.IsDefined(activation)) throw new ArgumentOutOfRangeException(nameof(activation));
        Name = name; Inputs = inputs; Outputs = outputs; Activation = activation;
        Weight = new Parameter(name + ".W", weight);
        Bias = new Parameter(name + ".b", bias);
    }

    public string Name { get; }
    public int Inputs { get; }
    public int Outputs { get; }
    public Activation Activation { get; }
    /// <summary>inputs×outputs weights (row-major).</summary>
    public Parameter Weight { get; }
    /// <summary>Output biases.</summary>
    public Parameter Bias { get; }

    /// <summary>Adds W then b to <paramref name="parameters"/>.</summary>
    public void Register(ParameterSet parameters)
    {
        parameters.Add(Weight);
        parameters.Add(Bias);
    }

    /// <summary>Glorot/Xavier uniform weights U(±√(6/(in+out))) and zero biases.</summary>
    public void InitializeGlorot(RandomStream random)
    {
        float limit = MathF.Sqrt(6f / (Inputs + Outputs));
        random.FillUniform(Weight.Value, -limit, limit);
        Array.Clear(Bias.Value);
    }

    /// <summary>Packs W into <paramref name="packed"/> (the caller's buffer, created or reused) for <see cref="Forward"/>.</summary>
    public void PackWeightsInto(ref Gemm.PackedOperand? packed, bool allowParallel)
        => Gemm.Pack(false, Inputs, Outputs, Weight.Value, Outputs, ref packed, allowParallel);

    /// <summary><paramref name="output"/> (rows×outputs) = f(<paramref name="input"/> (rows×inputs) · W + b).</summary>
    /// <remarks><paramref name="packedWeight"/>, when given, is W packed by the caller (<see cref="Gemm.Pack"/>, W unchanged since).</remarks>
    public void Forward(ReadOnlySpan<float> input, int rows, Span<float> output, bool allowParallel = false, Gemm.PackedOperand? packedWeight = null)
    {
        int o = Outputs;
        var y = output[..(rows * o)];
        // The GEMM adds the bias as it stores its first k-block (the bits of copying it into y first, without that pass).
        Gemm.Multiply(false, false, rows, o, Inputs, 1f, input, Inputs, Weight.Value, o, 0f, y, o, allowParallel,
            packedWeight, Bias.Value);
        Activations.Forward(Activation, y, y);
    }

    /// <summary>
    /// Backward pass. On entry <paramref name="outputGradient"/> holds ∂L/∂y (rows×outputs); it is overwritten with
    /// ∂L/∂(pre-activation). Adds ∂L/∂W to <paramref name="weightGradient"/> and ∂L/∂b to <paramref name="biasGradient"/>
    /// (or overwrites them when <paramref name="accumulateParameters"/> is false, which saves clearing them first);
    /// when <paramref name="inputGradient"/> is non-empty writes (or, with <paramref name="accumulateInput"/>, adds) ∂L/∂x.
    /// </summary>
    public void Backward(ReadOnlySpan<float> input, ReadOnlySpan<float> output, int rows, Span<float> outputGradient,
        Span<float> weightGradient, Span<float> biasGradient, Span<float> inputGradient, bool accumulateInput = false,
        bool allowParallel = false, bool accumulateParameters = true)
    {
        int o = Outputs, n = rows * o;
        var dy = outputGradient[..n];
        Activations.MultiplyByDerivative(Activation, output[..n], dy);
        Gemm.Multiply(true, false, Inputs, o, rows, 1f, input, Inputs, dy, o, accumulateParameters ? 1f : 0f, weightGradient, o, allowParallel);
        if (!accumulateParameters) biasGradient[..o].Clear();
        RowOps.AccumulateColumnSums(dy, rows, o, biasGradient);
        if (!inputGradient.IsEmpty)
            Gemm.Multiply(false, true, rows, Inputs, o, 1f, dy, o, Weight.Value, o, accumulateInput ? 1f : 0f, inputGradient, Inputs, allowParallel);
    }
}
