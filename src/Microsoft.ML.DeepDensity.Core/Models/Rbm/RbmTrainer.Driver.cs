using System.Numerics.Tensors;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.Rbm;

/// <summary>Training on the <see cref="TrainingDriver"/>: the CD/PCD steps of <see cref="RbmTrainer"/> as an
/// <see cref="ITrainableModel"/>, with the monitor's figures per epoch and the checks that call an epoch diverged.</summary>
internal sealed partial class RbmTrainer
{
    /// <summary>How many times the largest accepted training reconstruction error an epoch's may reach before the epoch
    /// counts as diverged (Gaussian units; see Trainable.BlewUp).</summary>
    internal const double ReconstructionBlowUpFactor = 100;

    /// <summary>Runs epochs of CD/PCD on the <see cref="TrainingDriver"/> (monitoring, early stopping, cancellation,
    /// divergence recovery) over rows in memory or streamed; the monitor measures the first rows of
    /// <paramref name="monitorTrain"/> and <paramref name="validation"/> (the training and validation data, or their first rows).
    /// With <paramref name="logStdDev"/> (D, zeros to start) each column's log σ is learned too, relative to the rows' units.</summary>
    public static TrainingSummary Train(RbmMachine machine, ITrainingSource train, RowMatrix monitorTrain, RowMatrix? validation, RbmOptions o,
        IProgress<TrainingProgress>? progress, CancellationToken cancellationToken, float[]? logStdDev = null)
    {
        int batch = (int)Math.Min(o.BatchSize, Math.Max(1, train.KnownCount ?? long.MaxValue));
        // The last epoch (checked for a blow-up, BlewUp): known from the rows or MaxEpochs, else from the first epoch's rows.
        int? lastEpoch = train.KnownCount is { } known ? o.EpochsFor(known) : o.MaxEpochs > 0 ? o.MaxEpochs : null;
        var trainable = new Trainable(machine, batch, monitorTrain, validation, o, cancellationToken, logStdDev, lastEpoch);
        return TrainingDriver.Run(trainable, train, TrainingDriverOptions.From(o, trainable.Root) with
        {
            // LearningRate 0 (the default): the rate of the visible units' kind.
            LearningRate = o.LearningRateFor(machine.VisibleType),
            // The default length follows the training rows; a stream of unknown length counts them in its first epoch.
            MaxEpochs = train.KnownCount is { } rows ? o.EpochsFor(rows) : o.MaxEpochs > 0 ? o.MaxEpochs : int.MaxValue,
            EpochsForRows = o.EpochsFor,
            // The monitor's score is a proxy (pseudo-likelihood or reconstruction error), so without early stopping the last epoch is kept.
            RestoreBestWithoutEarlyStopping = false,
            Name = "RBM training",
            DivergenceDescription = FormattableString.Invariant($"parameters not finite or beyond ±{Persistence.ModelReader.MaxParameterMagnitude:G}") +
                (machine.Gaussian ? FormattableString.Invariant($", or in the last epoch a training reconstruction error over {ReconstructionBlowUpFactor:G}× the largest before") : ""),
            DivergenceAdvice = "lower LearningRate" + (machine.Gaussian ? " or standardise the inputs." : "."),
        }, progress, cancellationToken);
    }

    /// <summary>A CD/PCD step per batch; the epoch's figures from the <see cref="RbmMonitor"/>. Snapshots hold the
    /// machine; a divergence also drops momentum and the persistent chains (they restart from data).</summary>
    private sealed partial class Trainable : ITrainableModel
    {
        // The largest training reconstruction error of the untrained machine and of the epochs that did not blow up
        // (Gaussian units; NaN when not checked), and the run's last epoch: see BlewUp.
        private double _largestAcceptedReconstructionError = double.NaN;
        private int? _lastEpoch;
        // The machine of the last epoch that did not blow up (the untrained one before any), its epoch, and whether the
        // last accepted epoch (the driver's last good state) blew up (Gaussian units). The machine is the snapshot the
        // driver takes of that state (_saneSnapshotPending: its next Snapshot is of a sane state), not a second copy.
        private object? _lastSane;
        private bool _saneSnapshotPending;
        private int _lastSaneEpoch;
        private bool _acceptedBlownUp;
        private readonly RbmMachine _machine;
        private readonly bool _hasValidation;
        private readonly RbmOptions _o;
        private readonly RbmTrainer _trainer;
        private readonly RbmMonitor _monitor;
        private readonly CancellationToken _cancellationToken;

        public Trainable(RbmMachine machine, int batchSize, RowMatrix train, RowMatrix? validation, RbmOptions o, CancellationToken cancellationToken,
            float[]? logStdDev, int? lastEpoch)
        {
            _lastEpoch = lastEpoch;
            _machine = machine; _hasValidation = validation is not null; _o = o; _cancellationToken = cancellationToken;
            _trainer = new RbmTrainer(machine, batchSize, o.GibbsSteps,
                o.Algorithm == RbmTrainingAlgorithm.PersistentContrastiveDivergence, o.PersistentChains, cancellationToken)
            { MomentumIsZero = o.Momentum == 0f };
            Root = new RandomStream(o.Seed).Fork(0xC0DE_0000);
            _monitor = new RbmMonitor(machine, train, validation, Root.Fork(0x3017), StartLearningStdDev(logStdDev));
            StartBlowUpCheck();
        }

        public RandomStream Root { get; }

        public double Step(TrainingStep step)
        {
            _trainer.Gather(TrainingData.Matrix(step.Data)!, step.Order, step.Start, step.Count);
            if (_logStdDev is not null) _trainer.LogStdDevGradient(_stdDevGradient);
            _trainer.Step(step.Count, step.LearningRate, _o.Momentum, _o.WeightDecay, step.Random);
            if (_logStdDev is not null) StepStdDev(step.LearningRate);
            // A cheap check every 64 batches stops a blow-up early; the epoch-end check is the authoritative one.
            return (step.Index & 63) == 63 && !float.IsFinite(TensorPrimitives.Sum<float>(_machine.C)) ? double.NaN : 0;
        }

        public EpochFigures? EndEpoch(TrainingEpoch epoch)
        {
            if (!_machine.WithinSavableRange() || !StdDevFinite()) return null;   // diverged: restore the last good state, halve the rate
            var f = _monitor.Measure();
            if (!f.AllFinite)
            {
                // Finite parameters and training figures: a validation row the machine cannot measure (far off the
                // training data's scale) is named, not taken for a divergence.
                if (f.TrainFinite && _monitor.FirstUnmeasurableValidationRow(_cancellationToken) is long row)
                    throw UnscorableValidation.Error(row, -1, RbmMonitor.Figure);
                return null;
            }
            _lastEpoch ??= _o.EpochsFor(epoch.Examples);   // a stream of unknown length: as the driver sets its length
            _saneSnapshotPending = false;   // an epoch the driver did not accept leaves no pending mark
            string? note = null;
            if (BlewUp(f))
            {
                if (epoch.Epoch < _lastEpoch) _acceptedBlownUp = true;   // mid-run: a spike the decaying rate settles
                else if (!_acceptedBlownUp) return null;   // the driver restores the epoch before, sane, and retries at half the rate
                else
                {
                    // The epoch before blew up too, so the driver's last good state is no good: the last epoch's machine
                    // that did not blow up is the run's result.
                    Restore(_lastSane!);
                    _trainer.Reset();
                    f = _monitor.Measure();
                    note = FormattableString.Invariant($"RBM: epochs from {_lastSaneEpoch + 1} on blew up (reconstruction error over {ReconstructionBlowUpFactor:G}× the ") +
                           $"largest before); the machine of {(_lastSaneEpoch == 0 ? "no epoch (the untrained one)" : FormattableString.Invariant($"epoch {_lastSaneEpoch}"))} is kept. Lower LearningRate.";
                }
            }
            else if (_machine.Gaussian)
            {
                _acceptedBlownUp = false;
                _saneSnapshotPending = true;   // the driver snapshots this accepted epoch next
                _lastSaneEpoch = epoch.Epoch;
            }
            return new EpochFigures(f.TrainPseudoLogLikelihood, _hasValidation ? f.ValidationPseudoLogLikelihood : null,
                _hasValidation ? f.ValidationScore : null,
                note ?? (_machine.Gaussian ? "RBM: train/valid are not likelihoods for Gaussian units; see Metrics" : "RBM: train/valid are pseudo-log-likelihoods"),
                WithStdDev(f.ToMetrics()));
        }

        /// <summary>Measures the untrained machine: the first reference of <see cref="BlewUp"/> (no random draw, so the
        /// run's streams and results are as without the check), and the first sane machine.</summary>
        private void StartBlowUpCheck()
        {
            if (!_machine.Gaussian) return;
            _largestAcceptedReconstructionError = _monitor.Measure().TrainReconstructionError;
            _saneSnapshotPending = true;   // the driver's first snapshot, of the untrained machine
        }

        /// <summary>
        /// Whether the epoch blew up although its parameters stayed in range: a Gaussian RBM's CD step feeds on its own
        /// visible samples (their scale follows W, which the next step grows by them), so an epoch can take W from 0.3
        /// to 6·10⁴ and the reconstruction error from 26 to 10¹⁴ without a non-finite value. The parameter range check
        /// fired only in the next epoch, and restored this blown-up epoch as its last good state; after the last epoch
        /// nothing fired at all, and the run returned the blown-up machine. The criterion: the monitored training
        /// reconstruction error above <see cref="ReconstructionBlowUpFactor"/> times the largest of the untrained
        /// machine's and of every earlier epoch's that did not blow up. The untrained machine reconstructs every row as
        /// about the visible bias, so its error is about the rows' total variance (D with standardised inputs); a healthy
        /// epoch stays below it or near it, and normal epoch-to-epoch noise is far under a factor of 100, while a blow-up
        /// overshoots it by orders of magnitude. Only the last epoch is acted on (EndEpoch): at the default rate the
        /// Gaussian RBM passes through such spikes mid-run on ordinary data (every seed of the real digits) and climbs out
        /// of them as the rate decays, and restoring and halving there instead ended 0.66 nats lower on the digits'
        /// validation rows (docs/models/rbm.md); what the run returns must not be one. Bernoulli units are not checked:
        /// their reconstruction lies in [0, 1] per column and cannot explode.
        /// </summary>
        private bool BlewUp(RbmMonitor.Figures f)
        {
            if (!_machine.Gaussian) return false;
            double error = f.TrainReconstructionError;
            bool blewUp = error > ReconstructionBlowUpFactor * _largestAcceptedReconstructionError;
            if (!blewUp) _largestAcceptedReconstructionError = Math.Max(_largestAcceptedReconstructionError, error);
            return blewUp;
        }

        /// <summary>A copy of the state (never changed afterwards: Restore copies from it), kept as the last sane machine
        /// too when the epoch just accepted did not blow up.</summary>
        public object Snapshot()
        {
            object snapshot = _logStdDev is null ? _machine.Clone() : SnapshotWithStdDev();
            if (_saneSnapshotPending) { _lastSane = snapshot; _saneSnapshotPending = false; }
            return snapshot;
        }
        public void Restore(object snapshot) { if (snapshot is RbmMachine m) m.CopyTo(_machine); else RestoreWithStdDev(snapshot); }
        public void ResetAfterDivergence() => _trainer.Reset();
    }
}
