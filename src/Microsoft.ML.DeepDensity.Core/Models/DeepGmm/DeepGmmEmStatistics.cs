using System.Buffers.Binary;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Models.DeepGmm;

/// <summary>
/// Sufficient statistics of one partition of rows for one round of Deep GMM's EM (docs/scaling.md, "Beyond one
/// machine"), at fixed parameters. An <em>E-step</em> round (<see cref="Layer"/> = −1) sums the rows' log-likelihood, every
/// path's weight (hard EM: rows whose best path it is; soft EM: responsibilities) and each standardised column's Σx and
/// Σx²; a <em>layer</em> round sums that layer's input moments Σ w·ũũᵀ per (node, below-path), the statistics its
/// M-step consumes. All are float64 sums, so partitions merge by addition (<see cref="Merge"/>) in any order or tree.
/// The rounds are those of streamed EM, which sums the same statistics over windows of a stream.
/// </summary>
public sealed class DeepGmmEmStatistics
{
    private const uint Magic = 0x53474444; // "DDGS" little-endian
    private const ushort FormatVersion = 1;
    private const int HeaderBytes = 4 + 2 + 4 + 8 + 8 + 4;
    private readonly double[] _values;

    private DeepGmmEmStatistics(int layer, long count, double logLikelihoodSum, double[] values)
    {
        Layer = layer; Count = count; LogLikelihoodSum = logLikelihoodSum; _values = values;
    }

    /// <summary>The layer whose M-step these statistics feed, or −1 for E-step statistics.</summary>
    public int Layer { get; }
    /// <summary>Rows summed.</summary>
    public long Count { get; }
    /// <summary>Σ of the rows' exact log-likelihood of the standardised rows (E-step statistics; 0 for a layer round).</summary>
    public double LogLikelihoodSum { get; }

    /// <summary>The E-step statistics of <paramref name="rows"/> (the model's input columns, unstandardised) under
    /// <paramref name="model"/>, with the EM variant of <paramref name="options"/>.</summary>
    public static DeepGmmEmStatistics ComputeEStep(DeepGmmModel model, DeepGmmOptions options, RowMatrix rows, CancellationToken cancellationToken = default)
    {
        var (trainer, x) = Worker(model, model, options, rows);
        var net = model.Network;
        var values = new double[net.PathCount + 2 * net.D];
        if (x.Rows == 0) return new DeepGmmEmStatistics(-1, 0, 0, values);
        var e = trainer.EStepExact(net, cancellationToken);
        var pathWeight = new double[net.PathCount];
        trainer.AddPathWeights(pathWeight);
        pathWeight.CopyTo(values, 0);
        var sum = new double[net.D]; var sq = new double[net.D];
        DeepGmmTrainer.AddColumnSums(x.Values, x.Rows, sum, sq);
        sum.CopyTo(values, net.PathCount); sq.CopyTo(values, net.PathCount + net.D);
        return new DeepGmmEmStatistics(-1, x.Rows, e.MeanLogLikelihood * x.Rows, values);
    }

    /// <summary>The statistics of layer <paramref name="layer"/>'s M-step for <paramref name="rows"/> (unstandardised): rows
    /// are assigned to paths under <paramref name="scored"/> (the network the E-step scored) and mapped through the layers
    /// above <paramref name="layer"/> of <paramref name="current"/> (already updated in this M-step).</summary>
    public static DeepGmmEmStatistics ComputeLayer(DeepGmmModel scored, DeepGmmModel current, int layer, DeepGmmOptions options, RowMatrix rows,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(current);
        ArgumentOutOfRangeException.ThrowIfNegative(layer);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(layer, current.Network.LayerCount);
        var (trainer, x) = Worker(scored, current, options, rows);
        var values = new double[LayerLength(current.Network, layer)];
        if (x.Rows == 0) return new DeepGmmEmStatistics(layer, 0, 0, values);
        trainer.EStepExact(scored.Network, cancellationToken);
        var (members, weights) = trainer.PathMembers();
        int offset = 0;
        foreach (var node in trainer.LayerMoments(layer, members, weights, cancellationToken))
            foreach (var slot in node) { slot.CopyTo(values, offset); offset += slot.Length; }
        return new DeepGmmEmStatistics(layer, x.Rows, 0, values);
    }

    /// <summary>A trainer reading <paramref name="rows"/> standardised by the models' standardiser, over
    /// <paramref name="current"/>'s network (only read: workers never change a model).</summary>
    private static (DeepGmmTrainer Trainer, RowMatrix X) Worker(DeepGmmModel scored, DeepGmmModel current, DeepGmmOptions options, RowMatrix rows)
    {
        ArgumentNullException.ThrowIfNull(scored);
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(rows);
        DeepGmmDataParallelEm.CheckOptions(options, current.Network);
        if (!SameShape(scored.Network, current.Network)) throw new ArgumentException("The scored and current models have different layers.", nameof(current));
        DataValidation.CheckTrainingData(rows, InputDomain.Real, "training data", current.Dimension, minRows: 0);
        var x = DeepGmmModel.Standardized(rows, current.Standardizer);
        var trainer = new DeepGmmTrainer(current.Network, options, new double[current.Dimension], new RandomStream(0));
        trainer.UseRows(x);
        return (trainer, x);
    }

    internal static bool SameShape(DeepGmmNetwork a, DeepGmmNetwork b)
        => a.D == b.D && a.Factorized == b.Factorized && a.Components.AsSpan().SequenceEqual(b.Components);

    private static int LayerLength(DeepGmmNetwork net, int layer) => checked(net.Components[layer] * net.Stride[layer] * (net.D + 1) * (net.D + 1));

    private static int ExpectedLength(DeepGmmNetwork net, int layer) => layer < 0 ? net.PathCount + 2 * net.D : LayerLength(net, layer);

    /// <summary>The statistics of the union of two disjoint partitions (same round): all sums added in float64.</summary>
    public static DeepGmmEmStatistics Merge(DeepGmmEmStatistics a, DeepGmmEmStatistics b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Layer != b.Layer || a._values.Length != b._values.Length)
            throw new ArgumentException($"Statistics of different rounds or models: layer {a.Layer} ({a._values.Length} values) and layer {b.Layer} ({b._values.Length}).", nameof(b));
        var values = new double[a._values.Length];
        System.Numerics.Tensors.TensorPrimitives.Add(a._values, b._values, values);
        return new DeepGmmEmStatistics(a.Layer, checked(a.Count + b.Count), a.LogLikelihoodSum + b.LogLikelihoodSum, values);
    }

    /// <summary>The sums, flattened (E-step: path weights, column sums, column square sums; layer: the moments).</summary>
    internal ReadOnlySpan<double> Values => _values;

    /// <summary>E-step statistics: the weight of every path, Σx and Σx² per standardised column.</summary>
    internal (double[] PathWeight, double[] ColumnSum, double[] ColumnSquareSum) EStepParts(DeepGmmNetwork net)
        => (_values[..net.PathCount], _values[net.PathCount..(net.PathCount + net.D)], _values[(net.PathCount + net.D)..]);

    /// <summary>Layer statistics as the M-step takes them: [node][below-path][(D+1)²].</summary>
    internal double[][][] Moments(DeepGmmNetwork net)
    {
        int nj = net.Components[Layer], below = net.Stride[Layer], m2 = (net.D + 1) * (net.D + 1);
        var moments = new double[nj][][];
        for (int i = 0; i < nj; i++)
        {
            moments[i] = new double[below][];
            for (int b = 0; b < below; b++) moments[i][b] = _values.AsSpan((i * below + b) * m2, m2).ToArray();
        }
        return moments;
    }

    /// <summary>Writes the statistics for shipping between workers: "DDGS" | u16 version | i32 layer | i64 count | f64
    /// log-likelihood sum | i32 length | f64 × length | u32 CRC-32 of all preceding bytes (little-endian).</summary>
    public byte[] ToBytes()
    {
        var bytes = new byte[checked(HeaderBytes + 8 * _values.Length + 4)];
        var s = bytes.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(s, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(s[4..], FormatVersion);
        BinaryPrimitives.WriteInt32LittleEndian(s[6..], Layer);
        BinaryPrimitives.WriteInt64LittleEndian(s[10..], Count);
        BinaryPrimitives.WriteDoubleLittleEndian(s[18..], LogLikelihoodSum);
        BinaryPrimitives.WriteInt32LittleEndian(s[26..], _values.Length);
        for (int i = 0; i < _values.Length; i++) BinaryPrimitives.WriteDoubleLittleEndian(s[(HeaderBytes + 8 * i)..], _values[i]);
        BinaryPrimitives.WriteUInt32LittleEndian(s[^4..], Crc32.Append(0, s[..^4]));
        return bytes;
    }

    /// <summary>
    /// Reads statistics written by <see cref="ToBytes"/> for a model shaped like <paramref name="model"/> (its layers
    /// give the expected length of each round). The bytes must be exactly one record; a wrong magic, version, layer or
    /// length, a negative count, non-finite sums, a truncated or over-long buffer or a checksum mismatch throws
    /// <see cref="InvalidDataException"/>; nothing beyond the expected length is allocated.
    /// </summary>
    public static DeepGmmEmStatistics FromBytes(ReadOnlySpan<byte> bytes, DeepGmmModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var net = model.Network;
        if (bytes.Length < HeaderBytes + 4) throw Corrupt($"{bytes.Length} bytes are shorter than the {HeaderBytes + 4}-byte header and checksum (truncated)");
        if (BinaryPrimitives.ReadUInt32LittleEndian(bytes) != Magic) throw Corrupt("not Deep GMM EM statistics (bad magic)");
        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(bytes[4..]);
        if (version != FormatVersion) throw Corrupt($"format version {version} is not supported (expected {FormatVersion})");
        int layer = BinaryPrimitives.ReadInt32LittleEndian(bytes[6..]);
        if (layer < -1 || layer >= net.LayerCount) throw Corrupt($"layer {layer} is not in [-1, {net.LayerCount - 1}]");
        long count = BinaryPrimitives.ReadInt64LittleEndian(bytes[10..]);
        if (count < 0) throw Corrupt($"negative row count {count}");
        int length = BinaryPrimitives.ReadInt32LittleEndian(bytes[26..]);
        int expected = ExpectedLength(net, layer);
        if (length != expected) throw Corrupt($"it holds {length} values; {(layer < 0 ? "E-step statistics" : $"layer {layer}")} of this model take {expected}");
        long total = HeaderBytes + 8L * length + 4;
        if (bytes.Length != total) throw Corrupt($"{bytes.Length} bytes where {length} values take {total} ({(bytes.Length < total ? "truncated" : "trailing bytes")})");
        if (Crc32.Append(0, bytes[..^4]) != BinaryPrimitives.ReadUInt32LittleEndian(bytes[^4..])) throw Corrupt("checksum mismatch");
        double logLikelihood = BinaryPrimitives.ReadDoubleLittleEndian(bytes[18..]);
        var values = new double[length];
        for (int i = 0; i < length; i++) values[i] = BinaryPrimitives.ReadDoubleLittleEndian(bytes[(HeaderBytes + 8 * i)..]);
        if (!double.IsFinite(logLikelihood)) throw Corrupt("non-finite log-likelihood sum");
        foreach (var v in values) if (!double.IsFinite(v)) throw Corrupt("non-finite sums");
        return new DeepGmmEmStatistics(layer, count, logLikelihood, values);
    }

    private static InvalidDataException Corrupt(string problem) => new($"Invalid Deep GMM EM statistics: {problem}.");
}
