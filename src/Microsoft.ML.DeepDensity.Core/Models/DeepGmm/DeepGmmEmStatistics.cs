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
        Numerics.RowOps.AddColumnSumsAsDouble(x.Values, x.Rows, sum, sq);
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
        DataValidation.CheckTrainingData(rows, InputDomain.Real, DataValidation.TrainingData, current.Dimension, minRows: 0);
        var x = current.Standardizer.Forward(rows);
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
            throw new ArgumentException(FormattableString.Invariant($"Statistics of different rounds or models: layer {a.Layer} ({a._values.Length} values) and layer {b.Layer} ({b._values.Length})."), nameof(b));
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

    /// <summary>Writes the statistics for shipping between workers (a checksummed little-endian record whose tag is
    /// <see cref="Layer"/>; see docs/scaling.md).</summary>
    public byte[] ToBytes() => SumRecord.Write(Magic, Layer, Count, LogLikelihoodSum, _values);

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
        const string what = "Deep GMM EM statistics";
        var (layer, count, logLikelihood, values) = SumRecord.Read(bytes, Magic, what, tag =>
            tag < -1 || tag >= net.LayerCount ? (0, FormattableString.Invariant($"layer {tag} is not in [-1, {net.LayerCount - 1}]")) : (ExpectedLength(net, tag), null));
        if (!double.IsFinite(logLikelihood)) throw SumRecord.Corrupt(what, "non-finite log-likelihood sum");
        foreach (var v in values) if (!double.IsFinite(v)) throw SumRecord.Corrupt(what, "non-finite sums");
        return new DeepGmmEmStatistics(layer, count, logLikelihood, values);
    }
}
