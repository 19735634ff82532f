using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Layers;

/// <summary>
/// A multi-layer perceptron: a stack of <see cref="DenseLayer"/>s with one hidden activation and a (usually identity)
/// output activation, run forward and backward over minibatches with caller-owned <see cref="Workspace"/>s.
/// </summary>
internal sealed class Mlp
{
    private readonly DenseLayer[] _layers;

    /// <summary>Builds inputs → hidden[0] → … → outputs; layers are named "<paramref name="name"/>.0", "….1", ….</summary>
    public Mlp(string name, int inputs, IReadOnlyList<int> hidden, int outputs, Activation hiddenActivation,
        Activation outputActivation = Activation.Identity)
    {
        var widths = new List<int> { inputs };
        widths.AddRange(hidden);
        widths.Add(outputs);
        _layers = new DenseLayer[widths.Count - 1];
        for (int i = 0; i < _layers.Length; i++)
            _layers[i] = new DenseLayer(FormattableString.Invariant($"{name}.{i}"), widths[i], widths[i + 1], i == _layers.Length - 1 ? outputActivation : hiddenActivation);
        Name = name;
    }

    /// <summary>Wraps existing layers (their widths must chain).</summary>
    public Mlp(string name, IReadOnlyList<DenseLayer> layers)
    {
        if (layers.Count == 0) throw new ArgumentException("An MLP needs at least one layer.", nameof(layers));
        for (int i = 1; i < layers.Count; i++)
            if (layers[i].Inputs != layers[i - 1].Outputs)
                throw new ArgumentException(FormattableString.Invariant($"Layer {i} takes {layers[i].Inputs} inputs but layer {i - 1} gives {layers[i - 1].Outputs}."), nameof(layers));
        _layers = layers.ToArray();
        Name = name;
    }

    public string Name { get; }
    public IReadOnlyList<DenseLayer> Layers => _layers;
    public int Inputs => _layers[0].Inputs;
    public int Outputs => _layers[^1].Outputs;
    /// <summary>Widest layer output (sizes the gradient scratch).</summary>
    public int MaxWidth => _layers.Max(l => Math.Max(l.Inputs, l.Outputs));

    /// <summary>Floats a <see cref="Workspace"/> holds per row (every layer's output and the two gradient buffers).</summary>
    public long WorkspaceFloatsPerRow => _layers.Sum(l => (long)l.Outputs) + 2L * (_layers.Length > 1 ? _layers.Take(_layers.Length - 1).Max(l => l.Outputs) : 1);

    /// <summary>Adds every layer's W and b, in layer order.</summary>
    public void Register(ParameterSet parameters)
    {
        foreach (var l in _layers) l.Register(parameters);
    }

    /// <summary>Glorot-uniform weights and zero biases for every layer (each layer from its own forked stream).</summary>
    public void InitializeGlorot(RandomStream random)
    {
        for (int i = 0; i < _layers.Length; i++) _layers[i].InitializeGlorot(random.Fork((ulong)i));
    }

    /// <summary>Per-call scratch for up to <see cref="Rows"/> rows: every layer's output and two gradient buffers. Not thread-safe.</summary>
    public sealed class Workspace
    {
        public Workspace(Mlp mlp, int rows)
        {
            Rows = rows;
            Outputs = mlp._layers.Select(l => new float[rows * l.Outputs]).ToArray();
            int w = mlp._layers.Length > 1 ? mlp._layers.Take(mlp._layers.Length - 1).Max(l => l.Outputs) : 1;
            GradA = new float[rows * w];
            GradB = new float[rows * w];
            PackedWeights = new Gemm.PackedOperand?[mlp._layers.Length];
        }

        public int Rows { get; }
        /// <summary>Post-activation output of each layer.</summary>
        public float[][] Outputs { get; }
        internal float[] GradA { get; }
        internal float[] GradB { get; }
        /// <summary>The network's output of the last forward pass (rows × outputs).</summary>
        public float[] Result => Outputs[^1];
        /// <summary>Each layer's W packed by <see cref="PackWeights(Workspace, bool)"/>, read by the forward passes while
        /// <see cref="WeightsPacked"/>: scoring packs once per call rather than once per forward pass.</summary>
        internal Gemm.PackedOperand?[] PackedWeights { get; }
        internal bool WeightsPacked { get; set; }
    }

    public Workspace CreateWorkspace(int rows) => new(this, rows);

    /// <summary>
    /// Packs every layer's weights into <paramref name="workspace"/>, which its forward passes then read instead of packing
    /// them each time (same bits). The caller guarantees the weights do not change until it packs again; workspaces are
    /// per caller, so concurrent scoring calls never share these buffers.
    /// </summary>
    public void PackWeights(Workspace workspace, bool allowParallel)
    {
        for (int i = 0; i < _layers.Length; i++) _layers[i].PackWeightsInto(ref workspace.PackedWeights[i], allowParallel);
        workspace.WeightsPacked = true;
    }

    /// <summary>Forward pass of <paramref name="rows"/> rows; returns the output (rows×<see cref="Outputs"/>), held in the workspace.</summary>
    public Span<float> Forward(ReadOnlySpan<float> input, int rows, Workspace workspace, bool allowParallel = false)
    {
        CheckRows(rows, workspace);
        ReadOnlySpan<float> x = input;
        for (int i = 0; i < _layers.Length; i++)
        {
            _layers[i].Forward(x, rows, workspace.Outputs[i], allowParallel, workspace.WeightsPacked ? workspace.PackedWeights[i] : null);
            x = workspace.Outputs[i];
        }
        return workspace.Outputs[^1].AsSpan(0, rows * Outputs);
    }

    /// <summary>
    /// Backward pass after <see cref="Forward"/> on the same input and workspace. <paramref name="outputGradient"/>
    /// (∂L/∂output, rows×outputs) is consumed (overwritten). Parameter gradients are added to
    /// <paramref name="gradients"/> (overwritten instead when <paramref name="accumulateParameters"/> is false);
    /// ∂L/∂input is written (or added) to <paramref name="inputGradient"/> when non-empty.
    /// </summary>
    public void Backward(ReadOnlySpan<float> input, int rows, Workspace workspace, Span<float> outputGradient,
        GradientBuffers gradients, Span<float> inputGradient, bool accumulateInput = false, bool allowParallel = false,
        bool accumulateParameters = true)
    {
        CheckRows(rows, workspace);
        Span<float> dy = outputGradient;
        bool useA = true;
        for (int i = _layers.Length - 1; i >= 0; i--)
        {
            var layer = _layers[i];
            ReadOnlySpan<float> x = i == 0 ? input : workspace.Outputs[i - 1];
            Span<float> dx = i == 0 ? inputGradient : (useA ? workspace.GradA : workspace.GradB).AsSpan(0, rows * layer.Inputs);
            layer.Backward(x, workspace.Outputs[i], rows, dy, gradients[layer.Weight], gradients[layer.Bias], dx,
                i == 0 && accumulateInput, allowParallel, accumulateParameters);
            dy = dx;
            useA = !useA;
        }
    }

    private static void CheckRows(int rows, Workspace workspace)
    {
        if (rows < 0 || rows > workspace.Rows)
            throw new ArgumentOutOfRangeException(nameof(rows), FormattableString.Invariant($"The workspace holds {workspace.Rows} rows; {rows} were passed."));
    }
}
