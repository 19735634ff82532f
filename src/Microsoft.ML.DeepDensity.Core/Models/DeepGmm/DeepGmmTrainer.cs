using System.Diagnostics;
using MathNet.Numerics.LinearAlgebra;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Models.DeepGmm;

/// <summary>
/// EM for a <see cref="DeepGmmNetwork"/> on standardised rows (paper §3): E-step (exact, or the coordinate-ascent
/// heuristic), then an M-step layer by layer from the top, each node optimised from per-path sufficient statistics.
/// This file holds the state and the ridge/shrinkage rules shared by the steps; the steps are in
/// DeepGmmTrainer.EStep.cs, DeepGmmTrainer.MStep.cs (L-BFGS), DeepGmmTrainer.MinibatchMStep.cs and
/// DeepGmmTrainer.Initialization.cs.
/// </summary>
internal sealed partial class DeepGmmTrainer
{
    private const int Block = DeepGmmNetwork.RowsPerBlock;
    private readonly DeepGmmNetwork _net;
    private readonly DeepGmmOptions _options;
    private RowMatrix _x;
    private int _n;
    private readonly int _d;
    private readonly RandomStream _random;

    /// <summary>Hard EM: best path per row (−1 before the first E-step).</summary>
    public int[] Assignment { get; private set; }
    /// <summary>Soft EM: responsibilities (rows × paths).</summary>
    public float[]? Responsibilities;

    private readonly double[] _columnVariance;

    public DeepGmmTrainer(DeepGmmNetwork net, DeepGmmOptions options, RowMatrix standardizedTrain, RandomStream random)
        : this(net, options, ColumnVariances(standardizedTrain), random)
        => UseRows(standardizedTrain);

    /// <summary>A trainer whose rows come window by window (<see cref="UseRows"/>; streamed EM), with the column
    /// variances of all the rows.</summary>
    public DeepGmmTrainer(DeepGmmNetwork net, DeepGmmOptions options, double[] columnVariance, RandomStream random)
    {
        _net = net; _options = options; _d = net.D; _random = random;
        _columnVariance = columnVariance;
        _x = new RowMatrix(0, _d);
        Assignment = [];
    }

    /// <summary>The rows the next E-step, member lists and moments are of (all rows in memory; a window when streamed);
    /// their assignments start unknown (−1).</summary>
    public void UseRows(RowMatrix standardized)
    {
        _x = standardized; _n = standardized.Rows;
        if (Assignment.Length != _n) Assignment = new int[_n];
        Array.Fill(Assignment, -1);
    }

    /// <summary>
    /// The covariance floor of a layer, per input dimension: λ times each column's variance for the top layer (it sees
    /// the data, so λ is scale-free per column), λ for lower layers (they see whitened inputs).
    /// </summary>
    internal static double[] RidgeFor(DeepGmmNetwork net, DeepGmmOptions options, int layer, double[] columnVariance)
    {
        var ridge = new double[net.D];
        for (int a = 0; a < net.D; a++)
            ridge[a] = options.CovarianceRidge * (layer == net.LayerCount - 1 ? columnVariance[a] : 1.0);
        return ridge;
    }

    private double[] RidgeFor(int layer) => RidgeFor(_net, _options, layer, _columnVariance);

    /// <summary>Prior precision κ toward [I | 0] of a layer's nodes: <see cref="DeepGmmOptions.LowerLayerShrinkage"/> below the top, 0 on top.</summary>
    internal static double ShrinkageFor(DeepGmmNetwork net, DeepGmmOptions options, int layer)
        => layer < net.LayerCount - 1 ? options.LowerLayerShrinkage : 0;

    private double ShrinkageFor(int layer) => ShrinkageFor(_net, _options, layer);

    /// <summary>Column variances (float64); a constant column gets the mean of the others (or 1).</summary>
    internal static double[] ColumnVariances(RowMatrix x)
    {
        // Rows in memory are read in place (the stream below copies each block of rows first): the same sums.
        var sum = new double[x.Columns]; var sq = new double[x.Columns];
        RowOps.AddColumnSumsAsDouble(x.AsSpan(), x.Rows, sum, sq);
        return ColumnVariances(sum, sq, x.Rows);
    }

    /// <summary><see cref="ColumnVariances(RowMatrix)"/> over one pass of a stream, and the pass's row count.</summary>
    internal static (double[] Variance, long Rows) ColumnVariances(Training.IRowStream x, CancellationToken cancellationToken)
    {
        int d = x.Width;
        var sum = new double[d]; var sq = new double[d];
        long n = Training.RowStream.ForEachBlock(x, (rows, count) => RowOps.AddColumnSumsAsDouble(rows, count, sum, sq), cancellationToken);
        return (ColumnVariances(sum, sq, n), n);
    }

    /// <summary>Column variances from the columns' Σx and Σx² over <paramref name="n"/> rows (a constant column gets
    /// the mean of the others, or 1).</summary>
    internal static double[] ColumnVariances(double[] sum, double[] sq, long n)
    {
        int d = sum.Length;
        var v = new double[d];
        double total = 0; int positive = 0;
        for (int c = 0; c < d; c++)
        {
            v[c] = Math.Max(0, sq[c] / n - (sum[c] / n) * (sum[c] / n));
            if (v[c] > 0 && double.IsFinite(v[c])) { total += v[c]; positive++; }
        }
        double fallback = positive > 0 ? total / positive : 1.0;
        for (int c = 0; c < d; c++) if (!(v[c] > 0) || !double.IsFinite(v[c])) v[c] = fallback;
        return v;
    }

    private double MinNodeWeight => _options.MinNodeWeight > 0 ? _options.MinNodeWeight : _d + 1;
}
