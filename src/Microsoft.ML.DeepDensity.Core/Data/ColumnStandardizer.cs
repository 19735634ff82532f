using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.ML.DeepDensity.Persistence;

namespace Microsoft.ML.DeepDensity.Data;

/// <summary>
/// Per-column affine map y = (x − mean) / scale, fitted on training data and stored with a model. Densities of y
/// convert to densities of x by adding <see cref="LogJacobian"/> = −Σ log scale.
/// </summary>
public sealed class ColumnStandardizer
{
    /// <summary>No longer used: a column counted as constant when its standard deviation was at most this fraction of
    /// its mean's magnitude, which mistook a varying column at a large offset for a constant one (see
    /// <see cref="MinimumScale"/>). Kept so that code referring to it still compiles.</summary>
    [Obsolete("Columns are constant only when their standard deviation is at most MinimumScale; this relative tolerance is no longer applied.")]
    public const double ConstantRelativeTolerance = 1e-6;

    /// <summary>Smallest scale used: a column whose standard deviation is at most this is treated as constant (scale 1),
    /// which keeps 1/scale and standardised values far from float32 overflow. A column of one repeated value has a
    /// standard deviation of exactly 0 (the float64 running moments of equal float32 values do not round), so every
    /// other column — whatever its scale or offset — is standardised by its own standard deviation: a column at
    /// 1e12 that varies by 3e5 (a spread of 3e-7 of its mean, still a few float32 steps) is a varying column. It once
    /// counted as constant (standard deviation ≤ 1e-6·|mean|) and kept scale 1, so the models saw values of ±1e6:
    /// RNADE's training diverged and the Gaussian RBM scored its own training rows at −3.6e10.</summary>
    public const float MinimumScale = 1e-35f;

    /// <summary>The map with the given per-column <paramref name="mean"/> and <paramref name="scale"/> (same length; every
    /// scale positive and finite). The values are copied: a fitted model's map cannot be changed from outside it.</summary>
    public ColumnStandardizer(float[] mean, float[] scale)
    {
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(scale);
        if (mean.Length != scale.Length) throw new ArgumentException("Mean and scale lengths differ.");
        foreach (var s in scale) if (!(s > 0) || !float.IsFinite(s)) throw new ArgumentException("Scales must be positive and finite.");
        _mean = (float[])mean.Clone(); _scale = (float[])scale.Clone();
        double lj = 0;
        foreach (var s in scale) lj -= Math.Log(s);
        LogJacobian = lj;
    }

    /// <summary>The identity map of the given width.</summary>
    public static ColumnStandardizer Identity(int width)
        => new(new float[width], Enumerable.Repeat(1f, width).ToArray());

    /// <summary>Column means and standard deviations (float64 accumulation; constant columns, see
    /// <see cref="MinimumScale"/>, get scale 1).</summary>
    public static ColumnStandardizer Fit(RowMatrix data) => Fit(data, CancellationToken.None);

    /// <summary><see cref="Fit(RowMatrix)"/> with <paramref name="cancellationToken"/> checked before every run of rows
    /// (<see cref="Preparation"/>; the sums run row by row, so the runs change nothing).</summary>
    internal static ColumnStandardizer Fit(RowMatrix data, CancellationToken cancellationToken)
    {
        var moments = new Moments(data.Columns);
        moments.Add(data, cancellationToken);
        return moments.ToStandardizer();
    }

    /// <summary><see cref="Fit(RowMatrix)"/> over one pass of a stream (the same arithmetic, row by row: the same result
    /// as the rows in memory).</summary>
    public static ColumnStandardizer Fit(Training.IRowStream data, CancellationToken cancellationToken = default)
    {
        var moments = new Moments(data.Width);
        Training.RowStream.ForEachBlock(data, moments.Add, cancellationToken);
        return moments.ToStandardizer();
    }

    /// <summary>Running column means and sums of squared deviations (Welford, float64), row by row.</summary>
    internal sealed class Moments(int width)
    {
        private readonly double[] _mean = new double[width], _m2 = new double[width];
        private long _n;
        /// <summary>The running means and sums of squared deviations (tests compare them with the scalar recurrence).</summary>
        internal ReadOnlySpan<double> Mean => _mean;
        internal ReadOnlySpan<double> SumOfSquaredDeviations => _m2;

        /// <summary>Every row of <paramref name="data"/>, in runs of rows with <paramref name="cancellationToken"/> checked
        /// before each (the recurrence runs row by row: the same sums as one call).</summary>
        public void Add(RowMatrix data, CancellationToken cancellationToken)
        {
            int d = data.Columns;
            Preparation.InRuns(data.Rows, d, cancellationToken, (start, n) => Add(data.Values.AsSpan(start * d, n * d), n));
        }

        /// <remarks>Vectorised across columns with each column's own sequence of operations (no fused multiply-adds), so
        /// it gives the scalar loop's bits; compiled optimised at once, as it is called once per block of a stream.</remarks>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Add(ReadOnlySpan<float> rows, int count)
        {
            int d = _mean.Length;
            int full = Vector.IsHardwareAccelerated ? d / Vector<float>.Count * Vector<float>.Count : 0;
            var mean = MemoryMarshal.Cast<double, Vector<double>>(_mean.AsSpan(0, full));
            var m2 = MemoryMarshal.Cast<double, Vector<double>>(_m2.AsSpan(0, full));
            for (int r = 0; r < count; r++, _n++)
            {
                var row = rows.Slice(r * d, d);
                double n1 = _n + 1;
                var vn1 = new Vector<double>(n1);
                var x = MemoryMarshal.Cast<float, Vector<float>>(row[..full]);
                for (int i = 0; i < x.Length; i++)
                {
                    Vector.Widen(x[i], out var low, out var high);
                    var delta = low - mean[2 * i];
                    mean[2 * i] += delta / vn1;
                    m2[2 * i] += delta * (low - mean[2 * i]);
                    delta = high - mean[2 * i + 1];
                    mean[2 * i + 1] += delta / vn1;
                    m2[2 * i + 1] += delta * (high - mean[2 * i + 1]);
                }
                for (int c = full; c < d; c++)
                {
                    double delta = row[c] - _mean[c];
                    _mean[c] += delta / n1;
                    _m2[c] += delta * (row[c] - _mean[c]);
                }
            }
        }

        private double StandardDeviation(int c) => _n > 1 ? Math.Sqrt(_m2[c] / _n) : 0;

        /// <summary>The per-column map. A column that varies, but by no more than <see cref="MinimumScale"/>, lives at the
        /// bottom of float32's range (1e-40 is subnormal: a few significant bits); as a constant column its rows all
        /// standardised to 0 and scored the same, silently. With <paramref name="refuseTinyScales"/> it is refused,
        /// naming the column, since rescaling it is the user's call.</summary>
        public ColumnStandardizer ToStandardizer(bool refuseTinyScales = true)
        {
            if (refuseTinyScales && FirstTinyScaleColumn() is int tiny) throw TinyScale(tiny);
            int d = _mean.Length;
            var fm = new float[d];
            var fs = new float[d];
            for (int c = 0; c < d; c++)
            {
                fm[c] = (float)_mean[c];
                double sd = StandardDeviation(c);
                fs[c] = sd <= MinimumScale ? 1f : (float)sd;
            }
            return new ColumnStandardizer(fm, fs);
        }

        /// <summary>The first column whose standard deviation is positive but at most <see cref="MinimumScale"/>, or null.</summary>
        public int? FirstTinyScaleColumn()
        {
            for (int c = 0; c < _mean.Length; c++)
                if (StandardDeviation(c) is double sd && sd > 0 && sd <= MinimumScale) return c;
            return null;
        }

        /// <summary>Whether some column's standard deviation exceeds <see cref="MinimumScale"/> (it sets the pooled scale).</summary>
        public bool AnyVariesBeyondMinimumScale()
        {
            for (int c = 0; c < _mean.Length; c++) if (StandardDeviation(c) > MinimumScale) return true;
            return false;
        }

        public DataValidationException TinyScale(int c)
            => new(-1, c, FormattableString.Invariant($"the column varies by only {StandardDeviation(c):G3} (standard deviation; mean {_mean[c]:G3}), too little for ") +
                          FormattableString.Invariant($"float32 arithmetic (at most {MinimumScale:G3}, near float32's smallest normal number, 1.18E-38); rescale it (multiply it by a ") +
                          "large constant, e.g. 1e30) before training, or drop it", DataValidation.TrainingData);
    }

    /// <summary>
    /// Centres every column on its mean and divides all columns by one common scale (the root-mean-square of the column
    /// standard deviations). Keeps the data's own metric (distances are only rescaled) while bringing any data scale into
    /// a numerically safe range, so a model trained on s·x is the model of x, rescaled.
    /// </summary>
    public static ColumnStandardizer FitPooled(RowMatrix data) => FitPooled(data, CancellationToken.None);

    /// <summary><see cref="FitPooled(RowMatrix)"/> with <paramref name="cancellationToken"/> checked before every run of rows.</summary>
    internal static ColumnStandardizer FitPooled(RowMatrix data, CancellationToken cancellationToken)
    {
        var moments = new Moments(data.Columns);
        moments.Add(data, cancellationToken);
        return Pooled(moments);
    }

    /// <summary><see cref="FitPooled(RowMatrix)"/> over one pass of a stream.</summary>
    public static ColumnStandardizer FitPooled(Training.IRowStream data, CancellationToken cancellationToken = default)
    {
        var moments = new Moments(data.Width);
        Training.RowStream.ForEachBlock(data, moments.Add, cancellationToken);
        return Pooled(moments);
    }

    /// <summary>The pooled map; a column varying by at most <see cref="MinimumScale"/> beside columns that vary more is,
    /// in the data's own metric, constant, so it is refused only when no column varies more (every row would map to the
    /// same point).</summary>
    private static ColumnStandardizer Pooled(Moments moments)
    {
        if (moments.FirstTinyScaleColumn() is int tiny && !moments.AnyVariesBeyondMinimumScale()) throw moments.TinyScale(tiny);
        return Pooled(moments.ToStandardizer(refuseTinyScales: false));
    }

    private static ColumnStandardizer Pooled(ColumnStandardizer perColumn)
    {
        double sumSquares = 0;
        int varying = 0;
        for (int c = 0; c < perColumn.Width; c++)
        {
            double s = perColumn.Scale[c];
            if (s == 1f) continue; // constant column (or unit scale): contributes no information about the scale
            sumSquares += s * s; varying++;
        }
        float pooled = varying == 0 ? 1f : (float)Math.Sqrt(sumSquares / varying);
        if (!(pooled > 0) || !float.IsFinite(pooled)) pooled = 1f;
        return new ColumnStandardizer(perColumn._mean, Enumerable.Repeat(pooled, perColumn.Width).ToArray());
    }

    private readonly float[] _mean, _scale;

    /// <summary>Per-column mean subtracted by the forward map y = (x − mean) / scale (length <see cref="Width"/>; read-only:
    /// a model's standardizer is part of the fitted model).</summary>
    public ReadOnlySpan<float> Mean => _mean;
    /// <summary>Per-column scale (positive, finite) divided by the forward map (length <see cref="Width"/>; read-only, as
    /// <see cref="Mean"/>).</summary>
    public ReadOnlySpan<float> Scale => _scale;
    /// <summary>Number of columns.</summary>
    public int Width => _mean.Length;
    /// <summary>log |det ∂y/∂x| = −Σ log scale.</summary>
    public double LogJacobian { get; }

    /// <summary>y = (x − mean)/scale for <paramref name="rows"/> rows.</summary>
    public void Forward(ReadOnlySpan<float> x, Span<float> y, int rows)
    {
        int d = Width;
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < d; c++) y[r * d + c] = Standardize(x[r * d + c], _mean[c], _scale[c]);
    }

    /// <summary>The standardised copy of <paramref name="data"/> (the models train and score in standardised units).</summary>
    internal RowMatrix Forward(RowMatrix data, CancellationToken cancellationToken = default)
    {
        var result = new RowMatrix(data.Rows, data.Columns);
        Forward(data.Values, result.Values, data.Rows, cancellationToken);
        return result;
    }

    /// <summary><see cref="Forward(ReadOnlySpan{float}, Span{float}, int)"/> of arrays, with <paramref name="cancellationToken"/>
    /// checked before every run of rows (<see cref="Preparation"/>).</summary>
    internal void Forward(float[] x, float[] y, int rows, CancellationToken cancellationToken)
    {
        int d = Width;
        Preparation.InRuns(rows, d, cancellationToken, (start, n) => Forward(x.AsSpan(start * d, n * d), y.AsSpan(start * d, n * d), n));
    }

    /// <summary>
    /// (x − mean)/scale in float32, the one formula every standardising path uses. A value near float32's limit on the
    /// other side of the mean (x = 3.4e38, mean = −2.3e37) makes the float32 difference overflow although the
    /// standardised value is about 1 (the column trained with such rows scored them −∞, or its initial parameters were
    /// infinite); only then is it recomputed in float64. A finite result keeps its float32 bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Standardize(float x, float mean, float scale)
    {
        float y = (x - mean) / scale;
        return float.IsFinite(y) ? y : (float)(((double)x - mean) / scale);
    }

    /// <summary>x = y·scale + mean, in place.</summary>
    public void Inverse(Span<float> y, int rows)
    {
        int d = Width;
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < d; c++) y[r * d + c] = y[r * d + c] * _scale[c] + _mean[c];
    }

    /// <summary>Writes <see cref="Mean"/> then <see cref="Scale"/> into a model payload (read back with <see cref="Read"/>).</summary>
    public void Write(ModelWriter w) { w.WriteSingles(_mean); w.WriteSingles(_scale); }

    /// <summary>Reads a standardizer written by <see cref="Write"/> of <paramref name="width"/> columns; a non-finite mean or a scale that is not positive is a corrupt file.</summary>
    public static ColumnStandardizer Read(ModelReader r, int width)
    {
        var mean = r.ReadSingles("standardizer mean", width);
        var scale = r.ReadSingles("standardizer scale", width);
        foreach (var s in scale) if (!(s > 0)) throw r.Corrupt("standardizer scale is not positive");
        return new ColumnStandardizer(mean, scale);
    }
}
