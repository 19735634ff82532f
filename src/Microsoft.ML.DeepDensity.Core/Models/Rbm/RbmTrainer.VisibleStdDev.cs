using System.Numerics.Tensors;
using Microsoft.ML.DeepDensity.Numerics;

namespace Microsoft.ML.DeepDensity.Models.Rbm;

/// <summary>
/// A learned visible width (<see cref="RbmOptions.VisibleStdDev"/> = 0). A Gaussian RBM whose column i has standard
/// deviation σ_i is the unit-variance machine applied to u = v / σ (its visible bias in u's units) with the Jacobian
/// −Σ log σ_i: log p(v) = −F(v / σ) − log Z(b, W, c) − Σ_i log σ_i, and Z does not depend on σ. So the gradient in
/// s_i = log σ_i needs no negative phase: ∂ log p / ∂ s_i = u_i ∂F/∂u_i − 1, with ∂F/∂u_i = (u_i − b_i) − Σ_j W_ij
/// sigmoid(c_j + Σ_k u_k W_kj). The trainer multiplies each gathered data row by 1/σ (<see cref="InputScale"/>), CD/PCD
/// moves b, W and c as for a fixed width (the persistent chains live in u and do not depend on σ), and the driver moves
/// log σ by the step's rate times this gradient on the step's rows, taken at the parameters the step starts from.
/// </summary>
internal sealed partial class RbmTrainer
{
    /// <summary>Per-column factors 1/σ_i that the gathered data rows are multiplied by (σ relative to the stored map's
    /// starting width), or null: the rows are copied as they are (a fixed width: the same bits as before).</summary>
    internal float[]? InputScale { get; set; }

    private float[]? _widthRows, _widthHidden, _widthVisible;
    private double[]? _widthSums;

    /// <summary>Copies one gathered row into the positive block, times <see cref="InputScale"/> when σ is learned.</summary>
    private void CopyDataRow(ReadOnlySpan<float> row, Span<float> destination)
    {
        if (InputScale is { } s) TensorPrimitives.Multiply(row, s, destination);
        else row.CopyTo(destination);
    }

    /// <summary>The mean over the rows selected by <see cref="Gather"/> (call it before <see cref="Step"/>) of
    /// ∂ log p / ∂ log σ_i at the machine's current parameters and <see cref="InputScale"/>, into
    /// <paramref name="gradient"/> (D). Its scratch is a chunk of <see cref="RowsPerChunk"/> rows, whatever the batch.</summary>
    internal void LogStdDevGradient(Span<double> gradient)
    {
        if (_gatherData is null) throw new InvalidOperationException("LogStdDevGradient needs the rows of Gather or SetBatch.");
        int d = _m.D, h = _m.H, count = _gatherCount, chunk = Math.Min(count, RowsPerChunk);
        if (_widthRows is null || _widthRows.Length < chunk * d)
        {
            _widthRows = new float[chunk * d]; _widthHidden = new float[chunk * h]; _widthVisible = new float[chunk * d];
        }
        var sums = _widthSums ??= new double[d];
        Array.Clear(sums);
        for (int r0 = 0; r0 < count; r0 += RowsPerChunk)
        {
            int n = Math.Min(RowsPerChunk, count - r0);
            for (int r = 0; r < n; r++) CopyDataRow(_gatherData.Row(_gatherOrder![_gatherStart + r0 + r]), _widthRows.AsSpan(r * d, d));
            LogStdDevGradientSums(_m, _widthRows.AsSpan(0, n * d), n, _widthHidden, _widthVisible, sums);
        }
        for (int i = 0; i < d; i++) gradient[i] = sums[i] / count - 1;
    }

    /// <summary>The mean of ∂ log p / ∂ log σ_i = u_i ((u_i − b_i) − Σ_j W_ij sigmoid(c_j + u·W_j)) − 1 over
    /// <paramref name="n"/> rows u (already divided by σ) of a unit-variance Gaussian machine.</summary>
    internal static void LogStdDevGradient(RbmMachine m, ReadOnlySpan<float> u, int n, Span<double> gradient)
    {
        var sums = new double[m.D];
        LogStdDevGradientSums(m, u, n, new float[n * m.H], new float[n * m.D], sums);
        for (int i = 0; i < m.D; i++) gradient[i] = sums[i] / n - 1;
    }

    /// <summary>Adds Σ_rows u_i ∂F/∂u_i to <paramref name="sums"/>; <paramref name="hidden"/> (n × H) and
    /// <paramref name="visible"/> (n × D) are scratch.</summary>
    private static void LogStdDevGradientSums(RbmMachine m, ReadOnlySpan<float> u, int n, Span<float> hidden, Span<float> visible, Span<double> sums)
    {
        int d = m.D, h = m.H;
        bool parallel = (long)n * d * h >= ParallelMultiplyAdds;
        var p = hidden[..(n * h)];
        m.HiddenPreActivation(u, n, p, parallel);
        VectorMath.Sigmoid(p, default, 1f, p);
        var wp = visible[..(n * d)];
        m.VisibleInput(p, n, 1f, wp, parallel);
        for (int r = 0; r < n; r++)
            for (int i = 0; i < d; i++)
            {
                double ui = u[r * d + i];
                sums[i] += ui * (ui - m.B[i] - wp[r * d + i]);
            }
    }

    /// <summary>The driver's side of a learned width: log σ per column (relative to the rows' units, clamped to
    /// [log <see cref="RbmOptions.LearnedVisibleStdDevFloor"/>, log <see cref="RbmOptions.LearnedVisibleStdDevCeiling"/>]),
    /// moved by plain SGD at the step's learning rate (the schedule's decay and a divergence's halving included), kept in
    /// the snapshots with the machine.</summary>
    private sealed partial class Trainable
    {
        private float[]? _logStdDev;
        private double[] _stdDevGradient = [];
        private static readonly float MinLogStdDev = MathF.Log(RbmOptions.LearnedVisibleStdDevFloor);
        private static readonly float MaxLogStdDev = MathF.Log(RbmOptions.LearnedVisibleStdDevCeiling);

        /// <summary>Starts learning σ from <paramref name="logStdDev"/> (null: a fixed width); returns the input scale
        /// 1/σ the trainer and the monitor share, or null.</summary>
        private float[]? StartLearningStdDev(float[]? logStdDev)
        {
            if (logStdDev is null) return null;
            _logStdDev = logStdDev;
            _stdDevGradient = new double[logStdDev.Length];
            _trainer.InputScale = new float[logStdDev.Length];
            RefreshInputScale();
            return _trainer.InputScale;
        }

        private void RefreshInputScale()
        {
            var scale = _trainer.InputScale!;
            for (int i = 0; i < scale.Length; i++) scale[i] = MathF.Exp(-_logStdDev![i]);
        }

        /// <summary>log σ += rate · gradient (taken before the step, at the parameters it started from), clamped.</summary>
        private void StepStdDev(float learningRate)
        {
            var t = _logStdDev!;
            for (int i = 0; i < t.Length; i++)
            {
                float next = t[i] + (float)(learningRate * _stdDevGradient[i]);
                // NaN stays NaN (a divergence the epoch's end restores); a finite or infinite step is clamped.
                t[i] = float.IsNaN(next) ? next : Math.Clamp(next, MinLogStdDev, MaxLogStdDev);
            }
            RefreshInputScale();
        }

        private bool StdDevFinite() => _logStdDev is null || _logStdDev.All(float.IsFinite);

        /// <summary>The epoch's metrics, with the learned widths' least and largest values (<c>visible_std_min</c>,
        /// <c>visible_std_max</c>; in standardised units, or the data's without standardisation) when σ is learned.</summary>
        private IReadOnlyDictionary<string, double> WithStdDev(IReadOnlyDictionary<string, double> metrics)
        {
            if (_logStdDev is null) return metrics;
            var d = new Dictionary<string, double>(metrics)
            {
                ["visible_std_min"] = RbmOptions.LearnedVisibleStdDevStart * Math.Exp(_logStdDev.Min()),
                ["visible_std_max"] = RbmOptions.LearnedVisibleStdDevStart * Math.Exp(_logStdDev.Max()),
            };
            return d;
        }

        private object SnapshotWithStdDev() => (_machine.Clone(), (float[])_logStdDev!.Clone());

        private void RestoreWithStdDev(object snapshot)
        {
            var (machine, logStdDev) = ((RbmMachine, float[]))snapshot;
            machine.CopyTo(_machine);
            logStdDev.CopyTo(_logStdDev!, 0);
            RefreshInputScale();
        }
    }
}
