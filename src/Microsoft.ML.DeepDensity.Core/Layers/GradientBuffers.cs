using System.Numerics.Tensors;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Layers;

/// <summary>
/// Gradient accumulators for the tensors of a <see cref="ParameterSet"/>: either private buffers (one per block of
/// rows processed in parallel, reduced afterwards in block order so results do not depend on the thread count) or the
/// parameters' own <see cref="Parameter.Gradient"/> arrays.
/// </summary>
internal sealed class GradientBuffers
{
    private readonly Dictionary<Parameter, float[]> _byParameter;
    private readonly float[][] _buffers;

    private GradientBuffers(ParameterSet parameters, bool own)
    {
        _buffers = new float[parameters.Items.Count][];
        _byParameter = new Dictionary<Parameter, float[]>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < _buffers.Length; i++)
        {
            var p = parameters.Items[i];
            _buffers[i] = own ? new float[p.Value.Length] : p.Gradient;
            _byParameter[p] = _buffers[i];
        }
    }

    /// <summary>Private zeroed buffers shaped like <paramref name="parameters"/>.</summary>
    public static GradientBuffers Create(ParameterSet parameters) => new(parameters, own: true);

    /// <summary>Views of the parameters' own gradient arrays (single-block use).</summary>
    public static GradientBuffers Of(ParameterSet parameters) => new(parameters, own: false);

    /// <summary>The buffer of <paramref name="parameter"/>.</summary>
    public float[] this[Parameter parameter] => _byParameter[parameter];

    /// <summary>Zeroes every buffer.</summary>
    public void Clear()
    {
        foreach (var b in _buffers) Array.Clear(b);
    }

    /// <summary>Overwrites the gradients of <paramref name="parameters"/> with the sum of the first <paramref name="count"/> blocks' buffers, in block order.</summary>
    public static void SumInto(ParameterSet parameters, IReadOnlyList<GradientBuffers> blocks, int count)
    {
        // Element-wise in block order, so chunks on several threads give the same bits as one pass.
        parameters.ForEachChunk((i, start, length) =>
        {
            var g = parameters.Items[i].Gradient.AsSpan(start, length);
            if (count == 0) { g.Clear(); return; }
            var first = blocks[0]._buffers[i];
            if (!ReferenceEquals(first, parameters.Items[i].Gradient)) first.AsSpan(start, length).CopyTo(g);
            for (int b = 1; b < count; b++) TensorPrimitives.Add(g, blocks[b]._buffers[i].AsSpan(start, length), g);
        });
    }

    /// <summary>Adds blocks [<paramref name="start"/>, <paramref name="start"/> + <paramref name="count"/>) to the gradients
    /// of <paramref name="parameters"/>, in block order (a later wave of blocks after <see cref="SumInto"/>).</summary>
    public static void AddInto(ParameterSet parameters, IReadOnlyList<GradientBuffers> blocks, int start, int count)
    {
        parameters.ForEachChunk((i, offset, length) =>
        {
            var g = parameters.Items[i].Gradient.AsSpan(offset, length);
            for (int b = start; b < start + count; b++) TensorPrimitives.Add(g, blocks[b]._buffers[i].AsSpan(offset, length), g);
        });
    }
}
