namespace Microsoft.ML.DeepDensity.Training;

/// <summary>One learnable tensor: its values and a gradient buffer of the same length.</summary>
public sealed class Parameter
{
    /// <summary>A tensor that trains <paramref name="value"/> in place (the array is kept, not copied) with a zeroed gradient buffer of the same length.</summary>
    public Parameter(string name, float[] value)
    {
        Name = name;
        Value = value;
        Gradient = new float[value.Length];
    }

    /// <summary>Name used in messages and gradient checks (e.g. "W").</summary>
    public string Name { get; }
    /// <summary>The values (updated in place by optimisers).</summary>
    public float[] Value { get; }
    /// <summary>Gradient of the loss (the negative objective) w.r.t. <see cref="Value"/>.</summary>
    public float[] Gradient { get; }
}

/// <summary>The learnable tensors of a model, in a fixed order.</summary>
public sealed class ParameterSet
{
    private readonly List<Parameter> _items = new();

    /// <summary>A set of <paramref name="parameters"/>, in the given order (the order of snapshots and serialised gradients).</summary>
    public ParameterSet(params Parameter[] parameters) => _items.AddRange(parameters);

    /// <summary>The tensors, in order.</summary>
    public IReadOnlyList<Parameter> Items => _items;

    /// <summary>The first tensor named <paramref name="name"/>; <see cref="InvalidOperationException"/> if there is none.</summary>
    public Parameter this[string name] => _items.First(p => p.Name == name);

    /// <summary>Appends <paramref name="p"/> at the end of the order.</summary>
    public void Add(Parameter p) { _items.Add(p); _chunks = null; }

    /// <summary>Scalars per chunk of <see cref="ForEachChunk"/> (128 KB of floats).</summary>
    internal const int ChunkLength = 32_768;
    /// <summary>Below this many scalars <see cref="ForEachChunk"/> runs on the calling thread (a region costs more). At
    /// 64k scalars an Adam update takes ~30 µs on one core against a few µs for a region; RNADE's default network on 32
    /// columns (~100k parameters) updated on one thread while the other waited, ~5 % of its training time.</summary>
    internal const int ParallelThreshold = 2 * ChunkLength;
    private (int Item, int Start, int Length)[]? _chunks;

    /// <summary>
    /// Runs <paramref name="body"/>(tensor index, start, length) over every tensor in fixed chunks, on the engine's
    /// threads when the set is large. Only for element-wise work (optimiser updates, sums of gradient buffers), where
    /// each scalar's result depends on that scalar alone, so the split never changes a result.
    /// </summary>
    internal void ForEachChunk(Action<int, int, int> body)
    {
        var chunks = _chunks ??= BuildChunks();
        ForEachChunkIndex(c => body(chunks[c].Item, chunks[c].Start, chunks[c].Length));
    }

    /// <summary>Runs <paramref name="body"/>(chunk index) over the fixed chunks: on the calling thread below
    /// <see cref="ParallelThreshold"/> scalars, else on the engine's threads. The chunks are the same either way.</summary>
    private void ForEachChunkIndex(Action<int> body)
    {
        var chunks = _chunks ??= BuildChunks();
        if (Count < ParallelThreshold)
            for (int c = 0; c < chunks.Length; c++) body(c);
        else
            DeepDensityEnvironment.For(0, chunks.Length, body);
    }

    private (int, int, int)[] BuildChunks()
    {
        var chunks = new List<(int, int, int)>();
        for (int i = 0; i < _items.Count; i++)
            for (int start = 0; start < _items[i].Value.Length; start += ChunkLength)
                chunks.Add((i, start, Math.Min(ChunkLength, _items[i].Value.Length - start)));
        return chunks.ToArray();
    }

    /// <summary>Total number of scalars.</summary>
    public long Count => _items.Sum(p => (long)p.Value.Length);

    /// <summary>Sets every gradient buffer to zero (before accumulating a new batch).</summary>
    public void ZeroGradients()
    {
        foreach (var p in _items) Array.Clear(p.Gradient);
    }

    /// <summary>Copies all values (for restoring the best or last good state).</summary>
    public float[][] Snapshot() => _items.Select(p => (float[])p.Value.Clone()).ToArray();

    /// <summary>Copies a <see cref="Snapshot"/> of this set back into the values (same tensors, same order and lengths).</summary>
    public void Restore(float[][] snapshot)
    {
        for (int i = 0; i < _items.Count; i++) snapshot[i].CopyTo(_items[i].Value, 0);
    }

    /// <summary>‖gradient‖₂ over all tensors, accumulated in float64; NaN/∞ if any entry is.</summary>
    /// <remarks>Summed per fixed chunk of <see cref="ForEachChunk"/>'s split (on the engine's threads when the set is
    /// large), the chunks' sums then added in chunk order: the same bits on any thread count. A serial pass here was one
    /// core's work while the other waited in every clipped step (docs/benchmarks.md, session 35).</remarks>
    public double GradientNorm()
    {
        var chunks = _chunks ??= BuildChunks();
        var partial = new double[chunks.Length];
        ForEachChunkIndex(c => partial[c] = SumOfSquares(_items[chunks[c].Item].Gradient.AsSpan(chunks[c].Start, chunks[c].Length)));
        double s = 0;
        foreach (double v in partial) s += v;
        return Math.Sqrt(s);
    }

    /// <summary>Σ g² of one chunk, each value widened to float64 before squaring, eight lanes at a time.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static double SumOfSquares(ReadOnlySpan<float> g)
    {
        double s = 0;
        int i = 0;
        if (System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated)
        {
            var acc = System.Runtime.Intrinsics.Vector256<double>.Zero;
            for (; i + 8 <= g.Length; i += 8)
            {
                var (lo, hi) = System.Runtime.Intrinsics.Vector256.Widen(System.Runtime.Intrinsics.Vector256.Create(g.Slice(i, 8)));
                acc += lo * lo + hi * hi;
            }
            s += System.Runtime.Intrinsics.Vector256.Sum(acc);
        }
        for (; i < g.Length; i++) s += (double)g[i] * g[i];
        return s;
    }

    /// <summary>True when every value is finite.</summary>
    public bool AllFinite()
    {
        foreach (var p in _items)
            foreach (var v in p.Value) if (!float.IsFinite(v)) return false;
        return true;
    }

    /// <summary>Whether every parameter is finite and within ±<see cref="Persistence.ModelReader.MaxParameterMagnitude"/>,
    /// the range a model file may hold (every model trained by the loop reads its parameters with that check): weights
    /// that grew past it while still finite have diverged as surely as overflowed ones, and their model could not be
    /// saved or loaded.</summary>
    public bool WithinSavableRange()
    {
        foreach (var p in _items)
            if (!Persistence.ModelReader.WithinParameterRange(p.Value)) return false;
        return true;
    }

    /// <summary>Scales gradients so their global norm is at most <paramref name="maxNorm"/>; returns the norm before clipping.</summary>
    public double ClipGradientNorm(double maxNorm)
    {
        double norm = GradientNorm();
        if (maxNorm > 0 && norm > maxNorm && double.IsFinite(norm))
        {
            float scale = (float)(maxNorm / norm);
            ForEachChunk((i, start, length) =>
            {
                var g = _items[i].Gradient.AsSpan(start, length);
                System.Numerics.Tensors.TensorPrimitives.Multiply(g, scale, g);
            });
        }
        return norm;
    }
}
