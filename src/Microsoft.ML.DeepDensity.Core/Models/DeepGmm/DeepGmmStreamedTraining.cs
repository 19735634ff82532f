using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.DeepGmm;

public sealed partial class DeepGmmModel
{
    /// <summary>
    /// Trains a Deep GMM by EM from a stream of rows (see docs/scaling.md) without holding the data: every EM iteration
    /// makes one pass per layer, accumulating that layer's sufficient statistics (input moments per node and below-path)
    /// window by window, and one E-step pass; the assignments of a row are recomputed in each pass from the network the
    /// last E-step scored, so nothing per row is kept. Needs the exact E-step (at most
    /// <see cref="DeepGmmOptions.ExactPathLimit"/> paths, or <see cref="DeepGmmEStep.Exact"/>) and the L-BFGS M-step.
    /// The initialisation (clustering, or the top layer pretrained as a GMM) runs on a seeded uniform sample of
    /// <see cref="StreamingOptions.SampleRows"/> rows. Without a validation stream
    /// <see cref="DeepGmmOptions.ValidationFraction"/> of the rows are held out by a seeded hash of their position.
    /// </summary>
    public static DeepGmmModel Fit(IRowStream data, DeepGmmOptions? options, IRowStream? validation, StreamingOptions? streaming,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new DeepGmmOptions();
        options.Validate();
        // Before the data is read, copied or checked: a model no file could hold is known from the options and the width.
        ArgumentNullException.ThrowIfNull(data);
        options.PredictModelSize(data.Width).EnsureFitsAFile();
        if (!options.UsesExactEStep)
            throw new NotSupportedException($"Streamed Deep GMM training needs the exact E-step: {options.WhyNotExactEStep}.");
        if (options.MStep != DeepGmmMStep.Lbfgs)
            throw new NotSupportedException("Streamed Deep GMM training needs MStep = Lbfgs (the minibatch M-step keeps the rows of every path).");
        var (train, valid) = StreamingTrainingData.CheckedSplit(data, validation, ref streaming, InputDomain.Real, options.ValidationFraction, options.Seed, cancellationToken);
        var standardizer = options.Standardize ? ColumnStandardizer.Fit(train, cancellationToken) : ColumnStandardizer.FitPooled(train, cancellationToken);
        var x = RowStream.Map(train, (rows, n, _) => standardizer.Forward(rows, rows, n));
        var xValid = valid is null ? null : RowStream.Map(valid, (rows, n, _) => standardizer.Forward(rows, rows, n));
        var (columnVariance, rowCount) = DeepGmmTrainer.ColumnVariances(x, cancellationToken);
        TrainingRowChecks.CheckStreamedRowCount(rowCount);
        var sample = RowStream.Sample(x, streaming.SampleRows, new RandomStream(options.Seed).Fork(0x5A3B1E), cancellationToken);
        // The pretrained top layer keeps its best pretraining iteration on validation, as in memory; without the validation
        // rows it would keep the last one (hard EM need not improve validation every iteration), so a streamed run with a
        // buffer holding the pass would not be the in-memory model. A bounded sample, taken whole when it is small.
        var validationSample = xValid is not null && PretrainsTopLayer(options)
            ? RowStream.Sample(xValid, streaming.SampleRows, new RandomStream(options.Seed).Fork(0x5A3B1F), cancellationToken)
            : null;
        double logJacobian = standardizer.LogJacobian;

        var root = new RandomStream(options.Seed).Fork(0xD6);
        var numbering = new IterationNumbering();
        (DeepGmmNetwork, TrainingSummary) Run(int init)
        {
            var random = init == 0 ? root : root.Fork((ulong)init);
            var validationRows = xValid is null ? null : new StreamingTrainingData(xValid, streaming);
            var net = InitialNetwork(options, sample, validationSample, logJacobian, random, init, numbering, progress, cancellationToken, validationRows);
            var trainer = new DeepGmmTrainer(net, options, columnVariance, random);
            var em = new StreamedEmTrainable(net, trainer, options, new StreamingTrainingData(x, streaming), validationRows, rowCount, logJacobian,
                options.Initializations > 1 ? FormattableString.Invariant($"initialisation {init + 1}/{options.Initializations}") : null, cancellationToken);
            // The trainable reads the stream itself (several passes an iteration): the driver hands it one step per iteration.
            var summary = TrainingDriver.Run(em, TrainingData.From(new RowMatrix(1, net.D)), EmDriverOptions(options, random, numbering), progress, cancellationToken);
            numbering.Done += summary.EpochsRun;
            return (net, summary);
        }
        var (chosen, chosenSummary) = UnscorableValidation.NamingUserRows(
            () => TrainingDriver.BestOfRestarts(options.Initializations, byValidation: xValid is not null, Run, options.StopToken),
            validation, options.ValidationFraction, options.Seed);
        return ModelFile.EnsureTrainedModelLoadable(new DeepGmmModel(chosen!, standardizer) { TrainingSummary = chosenSummary });
    }
}

/// <summary>
/// Deep GMM's EM over a stream: the E-step and each layer's M-step are passes over the stream's windows. A row's best
/// path (or responsibilities) is recomputed in every pass from <see cref="_scored"/>, a copy of the network the last
/// E-step scored, which is what the in-memory EM's stored assignments are; the layer's moments are sums, so the
/// windows' moments add up to those of all rows.
/// </summary>
internal sealed class StreamedEmTrainable : EmTrainable
{
    /// <summary>Rows per window of a pass (a whole number of the trainer's blocks; the window is the pass's memory).</summary>
    private const int WindowBlockRows = DeepGmmNetwork.RowsPerBlock;
    private readonly ITrainingSource _train;
    private readonly ITrainingSource? _validation;
    private readonly long _rows;
    private DeepGmmNetwork _scored = null!;
    private double[] _pathWeight = [];

    public StreamedEmTrainable(DeepGmmNetwork net, DeepGmmTrainer trainer, DeepGmmOptions options, ITrainingSource train,
        ITrainingSource? validation, long rows, double logJacobian, string? note, CancellationToken ct)
        : base(net, trainer, options, null, logJacobian, note, ct, validation)
    {
        _train = train; _validation = validation; _rows = rows;
    }

    protected override long? RowsPerIteration => _rows * (_net.LayerCount + 1);

    /// <summary>One pass scoring every path of every row under the current network: the mean log-likelihood and the
    /// weight of every path (what the next M-step starts from).</summary>
    protected override DeepGmmTrainer.EStepResult EStep(int iteration)
    {
        var weight = new double[_net.PathCount];
        double sum = 0;
        long n = 0;
        foreach (var window in _train.ReadWindows(WindowBlockRows, _ct))
        {
            _trainer.UseRows(TrainingData.Matrix(window)!);
            var e = _trainer.EStepExact(_net, _ct);
            sum += e.MeanLogLikelihood * window.Count;
            n += window.Count;
            _trainer.AddPathWeights(weight);
        }
        _pathWeight = weight;
        _scored = _net.Clone();
        return new DeepGmmTrainer.EStepResult(sum / n, true, 0);
    }

    /// <summary>Priors and re-seeding from the path weights, then per layer from the top: a pass summing the layer's
    /// input moments over the windows (rows assigned under <see cref="_scored"/>), and the nodes' optimisation.</summary>
    protected override DeepGmmTrainer.MStepResult MStep(int iteration)
    {
        int reseeded = _trainer.BeginMStep(_pathWeight, iteration);
        int evaluations = 0;
        for (int layer = _net.LayerCount - 1; layer >= 0; layer--)
        {
            double[][][]? total = null;
            foreach (var window in _train.ReadWindows(WindowBlockRows, _ct))
            {
                _trainer.UseRows(TrainingData.Matrix(window)!);
                _trainer.EStepExact(_scored, _ct);
                var (rows, weights) = _trainer.PathMembers();
                var moments = _trainer.LayerMoments(layer, rows, weights, _ct);
                if (total is null) total = moments;
                else
                    for (int i = 0; i < total.Length; i++)
                        for (int b = 0; b < total[i].Length; b++) System.Numerics.Tensors.TensorPrimitives.Add(total[i][b], moments[i][b], total[i][b]);
            }
            evaluations += _trainer.OptimizeLayer(layer, total!, _ct);
            _net.Refresh();
        }
        return new DeepGmmTrainer.MStepResult(reseeded, evaluations);
    }

    protected override double? ValidationLogDensity()
    {
        if (_validation is null) return null;
        double sum = 0;
        long n = 0;
        foreach (var window in _validation.ReadWindows(WindowBlockRows, _ct))
        {
            sum += DeepGmmModel.MeanLogDensity(_net, TrainingData.Matrix(window)!) * window.Count;
            n += window.Count;
        }
        // Never empty: the split refuses an empty validation stream or drops an empty hashed one (StreamingTrainingData.CheckedSplit).
        return n > 0 ? sum / n : throw StreamingTrainingData.NoValidationRows();
    }
}
