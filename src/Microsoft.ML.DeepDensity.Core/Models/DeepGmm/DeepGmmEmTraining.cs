using System.Diagnostics;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.DeepGmm;

/// <summary>
/// Deep GMM's EM on the <see cref="TrainingDriver"/>: one step per iteration is an M-step followed by the E-step that
/// the next M-step uses (the E-step of iteration 0 runs at construction). The iteration's training figure is the
/// E-step's mean log-likelihood (a best-path bound with the heuristic E-step), its validation figure the exact mean
/// log-density of the validation rows; EM has converged when the training figure moves less than the tolerance and
/// no node was re-seeded.
/// </summary>
internal sealed class EmTrainable : ITrainableModel
{
    private readonly DeepGmmNetwork _net;
    private readonly DeepGmmTrainer _trainer;
    private readonly DeepGmmOptions _options;
    private readonly RowMatrix? _validation;
    private readonly double _logJacobian;
    private readonly string? _note;
    private readonly CancellationToken _ct;
    private DeepGmmTrainer.EStepResult _estep;
    private DeepGmmTrainer.MStepResult _mstep;
    private double _previous, _mSeconds, _eSeconds;

    public EmTrainable(DeepGmmNetwork net, DeepGmmTrainer trainer, DeepGmmOptions options, RowMatrix? validation,
        double logJacobian, string? note, CancellationToken ct)
    {
        _net = net; _trainer = trainer; _options = options; _validation = validation; _logJacobian = logJacobian; _note = note; _ct = ct;
        _estep = trainer.EStep(0, ct);
        _previous = _estep.MeanLogLikelihood;
    }

    public double Step(TrainingStep step)
    {
        var clock = Stopwatch.StartNew();
        _mstep = _trainer.MStep(step.Epoch, _ct);
        _mSeconds = clock.Elapsed.TotalSeconds;
        if (!_net.AllFinite()) return double.NaN;
        _estep = _trainer.EStep(step.Epoch, _ct);
        _eSeconds = clock.Elapsed.TotalSeconds - _mSeconds;
        return 0; // the iteration's figure comes from EndEpoch
    }

    public EpochFigures? EndEpoch(TrainingEpoch epoch)
    {
        double train = _estep.MeanLogLikelihood + _logJacobian;
        double? valid = _validation is null ? null : DeepGmmModel.MeanLogDensity(_net, _validation) + _logJacobian;
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
        return new EpochFigures(train, valid, Note: note, Metrics: metrics, Converged: converged);
    }

    public object Snapshot() => _net.Clone();
    public void Restore(object snapshot) => _net.CopyFrom((DeepGmmNetwork)snapshot);
    public void ResetAfterDivergence() { }
}
