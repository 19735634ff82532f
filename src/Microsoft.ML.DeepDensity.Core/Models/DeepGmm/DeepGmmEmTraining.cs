using System.Diagnostics;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.DeepGmm;

/// <summary>
/// Deep GMM's EM on the <see cref="TrainingDriver"/>: one step per iteration is an M-step followed by the E-step that
/// the next M-step uses (the E-step of iteration 0 runs at construction). The iteration's training figure is the
/// E-step's mean log-likelihood (a best-path bound with the heuristic E-step), its validation figure the exact mean
/// log-density of the validation rows; EM has converged when the training figure moves less than the tolerance and
/// no node was re-seeded. The data access is virtual: <see cref="StreamedEmTrainable"/> makes passes over a stream instead.
/// </summary>
internal class EmTrainable : ITrainableModel
{
    protected readonly DeepGmmNetwork _net;
    protected readonly DeepGmmTrainer _trainer;
    protected readonly DeepGmmOptions _options;
    private readonly RowMatrix? _validation;
    private readonly double _logJacobian;
    private readonly string? _note;
    protected readonly CancellationToken _ct;
    private DeepGmmTrainer.EStepResult _estep;
    private DeepGmmTrainer.MStepResult _mstep;
    private double _previous, _mSeconds, _eSeconds;
    private bool _started;

    /// <param name="validationRows">Where a validation row the network cannot measure is looked for, in the user's
    /// numbering: null for <paramref name="validation"/> itself; the whole validation stream when
    /// <paramref name="validation"/> is a sample of it (a streamed Fit's pretraining).</param>
    public EmTrainable(DeepGmmNetwork net, DeepGmmTrainer trainer, DeepGmmOptions options, RowMatrix? validation,
        double logJacobian, string? note, CancellationToken ct, ITrainingSource? validationRows = null)
    {
        _net = net; _trainer = trainer; _options = options; _validation = validation; _logJacobian = logJacobian; _note = note; _ct = ct;
        _validationRows = validationRows ?? (validation is null ? null : TrainingData.From(validation));
    }

    private readonly ITrainingSource? _validationRows;

    /// <summary>The E-step of iteration <paramref name="iteration"/> (0: before the first M-step) on all rows.</summary>
    protected virtual DeepGmmTrainer.EStepResult EStep(int iteration) => _trainer.EStep(iteration, _ct);
    /// <summary>The M-step of iteration <paramref name="iteration"/> from the last E-step.</summary>
    protected virtual DeepGmmTrainer.MStepResult MStep(int iteration) => _trainer.MStep(iteration, _ct);
    /// <summary>Mean exact log-density of the standardised validation rows (no Jacobian); null without validation rows.</summary>
    protected virtual double? ValidationLogDensity() => _validation is null ? null : DeepGmmModel.MeanLogDensity(_net, _validation);
    /// <summary>Rows an iteration reads, when the driver does not hand them over (streamed); null otherwise.</summary>
    protected virtual long? RowsPerIteration => null;

    public double Step(TrainingStep step)
    {
        // The E-step of iteration 0 runs before the first M-step (lazily, so a subclass is constructed before it reads rows).
        if (!_started) { _estep = EStep(0); _previous = _estep.MeanLogLikelihood; _started = true; }
        var clock = Stopwatch.StartNew();
        _mstep = MStep(step.Epoch);
        _mSeconds = clock.Elapsed.TotalSeconds;
        if (!_net.AllFinite()) return double.NaN;
        _estep = EStep(step.Epoch);
        _eSeconds = clock.Elapsed.TotalSeconds - _mSeconds;
        return 0; // the iteration's figure comes from EndEpoch
    }

    public EpochFigures? EndEpoch(TrainingEpoch epoch)
    {
        double train = _estep.MeanLogLikelihood + _logJacobian;
        double? valid = ValidationLogDensity() + _logJacobian;
        // A finite network and training figure with a validation figure that is not (−∞ for a row far off the training
        // data's scale): the row is named; it used to leave early stopping without a best iteration, silently.
        if (valid is double v && !double.IsFinite(v) && double.IsFinite(train) && _net.AllFinite() && _validationRows is not null
            && UnscorableValidation.Find(_validationRows, DeepGmmNetwork.RowsPerBlock,
                (batch, _) => DeepGmmModel.MeanLogDensity(_net, new RowMatrix(batch.Rows.ToArray(), batch.Count, batch.Width)), _ct) is { } bad)
            throw UnscorableValidation.Error(bad.Example, -1);
        var metrics = new Dictionary<string, double>
        {
            ["switch_rate"] = _estep.SwitchRate,
            ["reseeded"] = _mstep.Reseeded,
            ["estep_s"] = _eSeconds,
            ["mstep_s"] = _mSeconds,
        };
        string? note = _note;
        if (!_estep.IsExact) note = (note is null ? "" : note + "; ") + "train = best-path bound (heuristic E-step)";
        bool converged = Math.Abs(_estep.MeanLogLikelihood - _previous) < _options.Tolerance && _mstep.Reseeded == 0;
        _previous = _estep.MeanLogLikelihood;
        return new EpochFigures(train, valid, Note: note, Metrics: metrics, Converged: converged, Examples: RowsPerIteration);
    }

    public object Snapshot() => _net.Clone();
    public void Restore(object snapshot) => _net.CopyFrom((DeepGmmNetwork)snapshot);
    public void ResetAfterDivergence() { }
}
