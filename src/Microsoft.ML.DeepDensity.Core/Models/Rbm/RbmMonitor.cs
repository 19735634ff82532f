using System.Numerics.Tensors;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.Rbm;

/// <summary>
/// Per-epoch figures on fixed subsets (≤ 1000 rows) of the training and validation data: mean-field reconstruction
/// error, pseudo-log-likelihood (Bernoulli units: D·log σ(F(x̃) − F(x)) with one fixed random bit flipped per row, as
/// scikit-learn's <c>score_samples</c>) and the free-energy gap mean F(valid) − mean F(train), which grows when the model
/// overfits (Hinton's practical guide, §6).
/// </summary>
internal sealed class RbmMonitor
{
    /// <summary>Rows of each subset (the first of the training and of the validation data).</summary>
    internal const int MaxRows = 1000;
    private readonly RbmMachine _m;
    private readonly float[] _train, _trainFlipped;
    private readonly float[]? _valid, _validFlipped;
    private readonly int _nTrain, _nValid;
    /// <summary>A learned width's 1/σ per column (the trainer's, updated in place), or null: rows are measured as
    /// stored. With it, rows are divided by σ before the machine sees them and the reconstruction error is measured
    /// back in the rows' units, so that a narrowing σ does not read as a growing error.</summary>
    private readonly float[]? _inputScale;

    public RbmMonitor(RbmMachine machine, RowMatrix train, RowMatrix? validation, RandomStream random, float[]? inputScale = null)
    {
        _m = machine; _inputScale = inputScale;
        (_train, _trainFlipped, _nTrain) = Subset(train, random.Fork(1));
        if (validation is not null) (_valid, _validFlipped, _nValid) = Subset(validation, random.Fork(2));
    }

    private (float[] Rows, float[] Flipped, int Count) Subset(RowMatrix data, RandomStream random)
    {
        int n = Math.Min(MaxRows, data.Rows), d = data.Columns;
        var rows = data.Values.AsSpan(0, n * d).ToArray();
        var flipped = (float[])rows.Clone();
        for (int r = 0; r < n; r++)
        {
            int j = random.NextInt(d);
            flipped[r * d + j] = 1f - flipped[r * d + j];
        }
        return (rows, flipped, n);
    }

    internal sealed record Figures(double TrainPseudoLogLikelihood, double ValidationPseudoLogLikelihood, double TrainReconstructionError,
        double ValidationReconstructionError, double FreeEnergyGap, bool Gaussian, bool HasValidation)
    {
        public bool AllFinite => TrainFinite && (!HasValidation || double.IsFinite(ValidationReconstructionError) && double.IsFinite(FreeEnergyGap)
            && (Gaussian || double.IsFinite(ValidationPseudoLogLikelihood)));

        /// <summary>Whether the training rows' figures are finite.</summary>
        public bool TrainFinite => double.IsFinite(TrainReconstructionError) && (Gaussian || double.IsFinite(TrainPseudoLogLikelihood));

        /// <summary>Early-stopping score: validation pseudo-log-likelihood (Bernoulli) or −reconstruction error (Gaussian).</summary>
        public double ValidationScore => Gaussian ? -ValidationReconstructionError : ValidationPseudoLogLikelihood;

        public IReadOnlyDictionary<string, double> ToMetrics()
        {
            var d = new Dictionary<string, double> { ["recon_error"] = TrainReconstructionError };
            if (!Gaussian) d["pseudo_ll"] = TrainPseudoLogLikelihood;
            if (!double.IsNaN(ValidationReconstructionError))
            {
                d["valid_recon_error"] = ValidationReconstructionError;
                if (!Gaussian) d["valid_pseudo_ll"] = ValidationPseudoLogLikelihood;
                d["free_energy_gap"] = FreeEnergyGap;
            }
            return d;
        }
    }

    public Figures Measure()
    {
        var (trainPll, trainRecon, trainF) = Measure(_train, _trainFlipped, _nTrain);
        double validPll = double.NaN, validRecon = double.NaN, gap = double.NaN;
        if (_valid is not null)
        {
            double validF;
            (validPll, validRecon, validF) = Measure(_valid, _validFlipped!, _nValid);
            gap = validF - trainF;
        }
        return new Figures(trainPll, validPll, trainRecon, validRecon, gap, _m.Gaussian, _valid is not null);
    }

    /// <summary>What <see cref="FirstUnmeasurableValidationRow"/> finds not finite, in words.</summary>
    internal const string Figure = "free energy or reconstruction error";

    /// <summary>The first monitored validation row (its index in the validation data: the monitor measures its first rows)
    /// whose free energy or reconstruction error is not finite, or null.</summary>
    public long? FirstUnmeasurableValidationRow(CancellationToken cancellationToken)
    {
        if (_valid is null) return null;
        var rows = new RowMatrix(_valid, _nValid, _m.D);
        return UnscorableValidation.Find(TrainingData.From(rows), MaxRows, (batch, _) =>
        {
            var values = batch.Rows.ToArray();
            var (_, recon, meanF) = Measure(values, values, batch.Count);
            return recon + meanF;
        }, cancellationToken)?.Example;
    }

    private (double Pll, double Recon, double MeanF) Measure(float[] rows, float[] flipped, int n)
    {
        int d = _m.D, h = _m.H;
        if (_inputScale is { } scale)
        {
            rows = rows.AsSpan(0, n * d).ToArray();
            for (int r = 0; r < n; r++) TensorPrimitives.Multiply(rows.AsSpan(r * d, d), scale, rows.AsSpan(r * d, d));
        }
        var f = new double[n];
        _m.FreeEnergy(rows, n, f, parallel: true);
        double meanF = 0;
        foreach (var v in f) meanF += v;
        meanF /= n;
        double pll = double.NaN;
        if (!_m.Gaussian)
        {
            var ff = new double[n];
            _m.FreeEnergy(flipped, n, ff, parallel: true);
            pll = 0;
            for (int r = 0; r < n; r++)
            {
                double z = ff[r] - f[r]; // log σ(z) = −softplus(−z)
                pll += d * -(Math.Max(-z, 0) + Math.Log(1 + Math.Exp(-Math.Abs(z))));
            }
            pll /= n;
        }
        // Mean-field reconstruction x̂ = E[v | h = σ(c + xW)].
        var p = new float[n * h];
        _m.HiddenPreActivation(rows, n, p, parallel: true);
        VectorMath.Sigmoid(p, default, 1f, p); // 0 rather than a subnormal for a saturated unit: an operand of the product below
        var recon = new float[n * d];
        _m.VisibleInput(p, n, 1f, recon, parallel: true);
        RowOps.AddRowVector(recon, n, d, _m.B);
        if (!_m.Gaussian) VectorMath.Sigmoid(recon, default, 1f, recon);
        TensorPrimitives.Subtract(recon, rows.AsSpan(0, n * d), recon);
        if (_inputScale is { } s)
            for (int r = 0; r < n; r++) TensorPrimitives.Divide(recon.AsSpan(r * d, d), s, recon.AsSpan(r * d, d));
        double err = TensorPrimitives.SumOfSquares<float>(recon) / n;
        return (pll, err, meanF);
    }
}
