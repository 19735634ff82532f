using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Training;

/// <summary>Puts <paramref name="n"/> rows of a model's input columns into the space its network trains in.</summary>
internal delegate void ModelSpaceMap(ReadOnlySpan<float> raw, Span<float> modelSpace, int n);

/// <summary>
/// A trainable copy of a fitted model's parameters as a gradient objective over rows of the model's input columns
/// (docs/scaling.md, "Beyond one machine"), made by the model (<c>RnadeModel.CreateTrainingObjective</c>,
/// <c>IwaeModel.CreateTrainingObjective</c>): each call checks the rows as training data, puts them into the model's own
/// space (variable order, standardisation) and runs the objective the model's Fit trains with. Workers compute
/// <see cref="GradientPartial"/>s with it; the driver steps its <see cref="Parameters"/> with a
/// <see cref="DataParallelOptimizer"/> and broadcasts them (<see cref="ParameterSet.Snapshot"/> /
/// <see cref="ParameterSet.Restore"/>, or <see cref="ToModel"/>'s file). The model it was made from is never changed.
/// </summary>
/// <typeparam name="TModel">The model type.</typeparam>
public sealed class ModelTrainingObjective<TModel> : IGradientObjective where TModel : DensityModel
{
    private readonly TModel _copy;
    private readonly IGradientObjective _objective;
    private readonly ModelSpaceMap? _toModelSpace;
    private float[] _modelSpace = [];

    /// <param name="copy">A model of its own (its network is what the objective trains).</param>
    /// <param name="objective">The training objective over <paramref name="copy"/>'s network.</param>
    /// <param name="toModelSpace">The map into the network's space; null when the network reads the rows as they are.</param>
    internal ModelTrainingObjective(TModel copy, IGradientObjective objective, ModelSpaceMap? toModelSpace)
    {
        _copy = copy; _objective = objective; _toModelSpace = toModelSpace;
    }

    /// <inheritdoc/>
    public ParameterSet Parameters => _objective.Parameters;

    /// <summary>Checks the rows as training data (a NaN, an infinity, a non-0/1 value for a binary model throws
    /// <see cref="DataValidationException"/> naming row and column) and returns them in the network's space.</summary>
    private ReadOnlySpan<float> ModelSpace(ReadOnlySpan<float> rows, int count)
    {
        int d = _copy.Dimension;
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (rows.Length != (long)count * d) throw new ArgumentException(FormattableString.Invariant($"{count} rows of {d} values need {(long)count * d}; {rows.Length} were given."), nameof(rows));
        DataValidation.CheckRows(rows, d, _copy.InputDomain, DataValidation.TrainingData);
        if (_toModelSpace is null) return rows;
        if (_modelSpace.Length < rows.Length) _modelSpace = new float[rows.Length];
        _toModelSpace(rows, _modelSpace, count);
        return _modelSpace.AsSpan(0, rows.Length);
    }

    /// <summary>Over rows of the model's input columns: overwrites the gradients with those of the negative mean
    /// objective (log-density or bound per row) and returns the objective's sum.</summary>
    public double ComputeGradient(ReadOnlySpan<float> rows, int count, RandomStream random)
        => _objective.ComputeGradient(ModelSpace(rows, count), count, random);

    /// <summary>Sum of the objective over the rows (of the model's input columns), without gradients.</summary>
    public double Evaluate(ReadOnlySpan<float> rows, int count, RandomStream random)
        => _objective.Evaluate(ModelSpace(rows, count), count, random);

    /// <summary>The model with the current parameters: an independent copy, checked by the model loader as every Fit's
    /// result is (non-finite or out-of-range parameters throw <see cref="Persistence.InvalidModelFileException"/>).</summary>
    public TModel ToModel() => (TModel)DensityModel.FromBytes(_copy.ToBytes());
}
