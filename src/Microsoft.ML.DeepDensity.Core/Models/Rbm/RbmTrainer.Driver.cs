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
        var trainable = new Trainable(machine, batch, monitorTrain, validation, o, cancellationToken, logStdDev);
        return TrainingDriver.Run(trainable, train, TrainingDriverOptions.From(o, trainable.Root) with
        {
            // The default length follows the training rows; a stream of unknown length counts them in its first epoch.
            MaxEpochs = train.KnownCount is { } rows ? o.EpochsFor(rows) : o.MaxEpochs > 0 ? o.MaxEpochs : int.MaxValue,
            EpochsForRows = o.EpochsFor,
            // The monitor's score is a proxy (pseudo-likelihood or reconstruction error), so without early stopping the last epoch is kept.
            RestoreBestWithoutEarlyStopping = false,
            Name = "RBM training",
            DivergenceDescription = $"parameters not finite or beyond ±{Persistence.ModelReader.MaxParameterMagnitude:G}" +
                (machine.Gaussian ? $", or a training reconstruction error over {ReconstructionBlowUpFactor:G}× the largest accepted before" : ""),
            DivergenceAdvice = "lower LearningRate" + (machine.Gaussian ? " or standardise the inputs." : "."),
        }, progress, cancellationToken);
    }

    /// <summary>A CD/PCD step per batch; the epoch's figures from the <see cref="RbmMonitor"/>. Snapshots hold the
    /// machine; a divergence also drops momentum and the persistent chains (they restart from data).</summary>
    private sealed partial class Trainable : ITrainableModel
    {
        // The largest training reconstruction error of the untrained machine and of the accepted epochs (Gaussian
        // units; NaN when not checked): see BlewUp.
        private double _largestAcceptedReconstructionError = double.NaN;
        private readonly RbmMachine _machine;
        private readonly bool _hasValidation;
        private readonly RbmOptions _o;
        private readonly RbmTrainer _trainer;
        private readonly RbmMonitor _monitor;
        private readonly CancellationToken _cancellationToken;

        public Trainable(RbmMachine machine, int batchSize, RowMatrix train, RowMatrix? validation, RbmOptions o, CancellationToken cancellationToken, float[]? logStdDev)
        {
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
            if (BlewUp(f)) return null;
            return new EpochFigures(f.TrainPseudoLogLikelihood, _hasValidation ? f.ValidationPseudoLogLikelihood : null,
                _hasValidation ? f.ValidationScore : null,
                _machine.Gaussian ? "RBM: train/valid are not likelihoods for Gaussian units; see Metrics" : "RBM: train/valid are pseudo-log-likelihoods",
                WithStdDev(f.ToMetrics()));
        }

        /// <summary>Measures the untrained machine: the first reference of <see cref="BlewUp"/> (no random draw, so the
        /// run's streams and results are as without the check).</summary>
        private void StartBlowUpCheck()
        {
            if (_machine.Gaussian) _largestAcceptedReconstructionError = _monitor.Measure().TrainReconstructionError;
        }

        /// <summary>
        /// Whether the epoch blew up although its parameters stayed in range: a Gaussian RBM's CD step feeds on its own
        /// visible samples (their scale follows W, which the next step grows by them), so an epoch can take W from 0.3
        /// to 6·10⁴ and the reconstruction error from 26 to 10¹⁴ without a non-finite value. The parameter range check
        /// then fired only in the next epoch, and restored this blown-up epoch as its last good state; after the last
        /// epoch nothing fired at all. The criterion: the monitored training reconstruction error above
        /// <see cref="ReconstructionBlowUpFactor"/> times the largest of the untrained machine's and of every accepted
        /// epoch's. The untrained machine reconstructs every row as about the visible bias, so its error is about the
        /// rows' total variance (D with standardised inputs); a healthy epoch stays below it or near it, and normal
        /// epoch-to-epoch noise is far under a factor of 100, while a blow-up overshoots it by orders of magnitude.
        /// Bernoulli units are not checked: their reconstruction lies in [0, 1] per column and cannot explode.
        /// </summary>
        private bool BlewUp(RbmMonitor.Figures f)
        {
            if (!_machine.Gaussian) return false;
            double error = f.TrainReconstructionError;
            if (error > ReconstructionBlowUpFactor * _largestAcceptedReconstructionError) return true;
            _largestAcceptedReconstructionError = Math.Max(_largestAcceptedReconstructionError, error);
            return false;
        }

        public object Snapshot() => _logStdDev is null ? _machine.Clone() : SnapshotWithStdDev();
        public void Restore(object snapshot) { if (snapshot is RbmMachine m) m.CopyTo(_machine); else RestoreWithStdDev(snapshot); }
        public void ResetAfterDivergence() => _trainer.Reset();
    }
}
