using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.Rnade;

/// <summary>
/// A trainable copy of an <see cref="RnadeModel"/>'s parameters as a gradient objective over rows of the model's input
/// columns (docs/scaling.md, "Beyond one machine"): each call puts the rows into the model's variable order and
/// standardisation and runs the training objective <see cref="RnadeModel.Fit(RowMatrix, RnadeOptions?, RowMatrix?, IProgress{TrainingProgress}?, CancellationToken)"/>
/// trains with. Workers compute <see cref="GradientPartial"/>s with it; the driver steps its
/// <see cref="Parameters"/> with a <see cref="DataParallelOptimizer"/> and broadcasts them (<see cref="ParameterSet.Snapshot"/>
/// / <see cref="ParameterSet.Restore"/>, or <see cref="ToModel"/>'s file). The model it came from is never changed.
/// </summary>
public sealed class RnadeTrainingObjective : IGradientObjective
{
    private readonly RnadeModel _copy;
    private readonly RnadeObjective _objective;
    private float[] _modelSpace = [];

    internal RnadeTrainingObjective(RnadeModel copy, RnadeOptions options)
    {
        _copy = copy;
        _objective = new RnadeObjective(copy.Network, options.RowsPerBlock, options.ScaleMeanGradientBySigma, copy.Standardizer.LogJacobian);
    }

    /// <inheritdoc/>
    public ParameterSet Parameters => _objective.Parameters;

    /// <summary>Checks the rows (as training data: a NaN, an infinity or a partial row throws
    /// <see cref="DataValidationException"/> naming row and column) and returns them in model space.</summary>
    private ReadOnlySpan<float> ModelSpace(ReadOnlySpan<float> rows, int count)
    {
        int d = _copy.Dimension;
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (rows.Length != (long)count * d) throw new ArgumentException($"{count} rows of {d} values need {(long)count * d}; {rows.Length} were given.", nameof(rows));
        DataValidation.CheckRows(rows, d, InputDomain.Real, "training data");
        if (_modelSpace.Length < rows.Length) _modelSpace = new float[rows.Length];
        _copy.ToModelSpace(rows, _modelSpace, count);
        return _modelSpace.AsSpan(0, rows.Length);
    }

    /// <summary>Over rows of the model's input columns: overwrites the gradients with those of the negative mean
    /// log-density and returns the sum of the log-densities (of the raw rows).</summary>
    public double ComputeGradient(ReadOnlySpan<float> rows, int count, RandomStream random)
        => _objective.ComputeGradient(ModelSpace(rows, count), count, random);

    /// <summary>Sum of the log-densities of the rows (of the model's input columns), without gradients.</summary>
    public double Evaluate(ReadOnlySpan<float> rows, int count, RandomStream random)
        => _objective.Evaluate(ModelSpace(rows, count), count, random);

    /// <summary>The model with the current parameters: an independent copy, checked by the model loader as every Fit's
    /// result is (non-finite or out-of-range parameters throw <see cref="Persistence.InvalidModelFileException"/>).</summary>
    public RnadeModel ToModel() => (RnadeModel)DensityModel.FromBytes(_copy.ToBytes());
}
