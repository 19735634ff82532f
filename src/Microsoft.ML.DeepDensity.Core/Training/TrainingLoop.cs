using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Training;

/// <summary>What gradient training needs from a model whose examples are fixed-width rows.</summary>
public interface IGradientObjective
{
    /// <summary>Learnable tensors (values and gradient buffers).</summary>
    ParameterSet Parameters { get; }

    /// <summary>
    /// For <paramref name="count"/> rows: overwrites every parameter's gradient with the gradient of the
    /// <em>negative mean</em> objective (log-likelihood or bound per row) and returns the <em>sum</em> of the objective
    /// over the rows. <paramref name="random"/> supplies any noise (a fresh stream per call).
    /// </summary>
    double ComputeGradient(ReadOnlySpan<float> rows, int count, RandomStream random);

    /// <summary>Sum of the objective over <paramref name="count"/> rows, without gradients (validation).</summary>
    double Evaluate(ReadOnlySpan<float> rows, int count, RandomStream random);
}

/// <summary>
/// <see cref="IGradientObjective"/> for any kind of example (rows or sequences): the same contract over a
/// <see cref="TrainingBatch"/>. Sequence models implement this one.
/// </summary>
public interface IBatchGradientObjective
{
    /// <summary>Learnable tensors (values and gradient buffers).</summary>
    ParameterSet Parameters { get; }

    /// <summary>Overwrites the gradients with those of the negative mean objective over the batch; returns the objective's sum.</summary>
    double ComputeGradient(TrainingBatch batch, RandomStream random);

    /// <summary>Sum of the objective over the batch, without gradients (validation).</summary>
    double Evaluate(TrainingBatch batch, RandomStream random);
}

/// <summary>
/// Training state of an objective beyond its parameters (running statistics such as NVIL's baseline mean and
/// variance): an objective that implements this is snapshotted and restored with its parameters, so divergence
/// recovery and early stopping return to exactly the state of an earlier epoch.
/// </summary>
public interface ITrainingStateOwner
{
    /// <summary>An independent copy of the extra state.</summary>
    object CaptureState();

    /// <summary>Puts back a state from <see cref="CaptureState"/> (which stays usable).</summary>
    void RestoreState(object state);
}

/// <summary>
/// An objective that knows what to change when its training diverges (replaces the driver's generic advice,
/// <see cref="TrainingDriverOptions.DivergenceAdvice"/>, in the <see cref="TrainingDivergedException"/> and the history).
/// </summary>
internal interface IDivergenceAdvisor
{
    /// <summary>The advice sentence(s) that end the divergence message; null keeps the driver's.</summary>
    string? DivergenceAdvice { get; }
}

/// <summary>
/// Gradient training on the <see cref="TrainingDriver"/>: shuffled minibatches, the optimiser with gradient clipping
/// and learning-rate decay, a validation set (given or split off) with early stopping and restore of the best
/// parameters, and divergence handling (a non-finite loss or gradient restores the last good state and halves the
/// learning rate; after <see cref="GradientTrainingOptions.MaxDivergenceRecoveries"/> it throws — parameters are never
/// left NaN). A non-finite validation figure with finite parameters and training figure is a validation example the
/// model cannot measure, not a divergence: <see cref="DataValidationException"/> names it.
/// </summary>
public static class TrainingLoop
{
    /// <summary>Splits off a validation set when none is given (seeded); returns (train, validation or null).</summary>
    public static (RowMatrix Train, RowMatrix? Validation) Split(RowMatrix data, RowMatrix? validation, double fraction, ulong seed)
        => Split(data, validation, fraction, seed, CancellationToken.None);

    /// <summary><see cref="Split(RowMatrix, RowMatrix?, double, ulong)"/> with <paramref name="cancellationToken"/> checked
    /// before and after choosing the rows and before every run of rows copied (a Fit's preparation, <see cref="Preparation"/>).</summary>
    internal static (RowMatrix Train, RowMatrix? Validation) Split(RowMatrix data, RowMatrix? validation, double fraction, ulong seed,
        CancellationToken cancellationToken)
    {
        Preparation.Check(cancellationToken);
        if (validation is not null || fraction <= 0) return (data, validation);
        var split = SplitIndices(data.Rows, fraction, seed, cancellationToken);
        if (split is null) return (data, null);
        Preparation.Check(cancellationToken);
        return (data.SelectRows(split.Value.Train, cancellationToken), data.SelectRows(split.Value.Validation, cancellationToken));
    }

    /// <summary><see cref="Split(RowMatrix, RowMatrix?, double, ulong)"/> for any training data (rows or sequences).</summary>
    public static (ITrainingData Train, ITrainingData? Validation) Split(ITrainingData data, ITrainingData? validation, double fraction, ulong seed)
    {
        if (validation is not null || fraction <= 0) return (data, validation);
        var split = SplitIndices(data.Count, fraction, seed);
        return split is null ? (data, null) : (data.Select(split.Value.Train), data.Select(split.Value.Validation));
    }

    /// <summary>How many of <paramref name="count"/> examples <see cref="Split(RowMatrix, RowMatrix?, double, ulong)"/>
    /// holds out at <paramref name="fraction"/>: ⌊count · fraction⌋, or 0 when that is none or would leave no training
    /// example (then nothing is held out: no validation, no early stopping).</summary>
    public static int HeldOutCount(int count, double fraction)
    {
        int nValid = fraction > 0 ? (int)Math.Floor(count * fraction) : 0;
        return nValid < 1 || count - nValid < 1 ? 0 : nValid;
    }

    /// <summary>The examples <see cref="Split(RowMatrix, RowMatrix?, double, ulong)"/> holds out of <paramref name="count"/>
    /// at <paramref name="fraction"/> and <paramref name="seed"/> (the model's own ValidationFraction and Seed), in
    /// increasing order; empty when it holds out none (<see cref="HeldOutCount"/> is 0, or <paramref name="fraction"/> ≤ 0).
    /// The rows a model trained without validation data never trained on: the ML.NET estimators learn the anomaly
    /// threshold on them.</summary>
    public static int[] HeldOutRows(int count, double fraction, ulong seed)
        => fraction > 0 && SplitIndices(count, fraction, seed) is { } split ? split.Validation : Array.Empty<int>();

    /// <summary>The seeded split of <paramref name="count"/> examples: ⌊count · fraction⌋ held out (sorted indices of
    /// both parts), or null when that leaves no held-out or no training example.</summary>
    /// <remarks><paramref name="cancellationToken"/> is checked every run of steps of the shuffle (the same draws), which
    /// takes a second on ten million rows (<see cref="Preparation"/>).</remarks>
    internal static (int[] Train, int[] Validation)? SplitIndices(int count, double fraction, ulong seed, CancellationToken cancellationToken = default)
    {
        int nValid = HeldOutCount(count, fraction);
        if (nValid == 0) return null;
        var order = new int[count];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        new RandomStream(seed).Fork(0x5EED_5A11).Shuffle(order.AsSpan(), Preparation.RowsPerCheck(4), () => Preparation.Check(cancellationToken));
        // Both parts in increasing order, read off a mask of the held-out rows: what sorting them gave, in linear time
        // (sorting 9 million indices took seconds of a Fit's preparation).
        var heldOut = new bool[count];
        foreach (int i in order.AsSpan(0, nValid)) heldOut[i] = true;
        var validIdx = new int[nValid];
        var trainIdx = new int[count - nValid];
        for (int i = 0, v = 0, t = 0; i < count; i++)
        {
            if (heldOut[i]) validIdx[v++] = i;
            else trainIdx[t++] = i;
        }
        return (trainIdx, validIdx);
    }

    /// <summary>Trains a row objective on already validated data.</summary>
    public static TrainingSummary Run(IGradientObjective model, RowMatrix train, RowMatrix? validation,
        GradientTrainingOptions options, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
        => Run(model, TrainingData.From(train), validation is null ? null : TrainingData.From(validation), options, progress, cancellationToken);

    /// <summary>Trains a row objective on rows held in memory or streamed (<see cref="StreamingTrainingData"/>).</summary>
    public static TrainingSummary Run(IGradientObjective model, ITrainingSource train, ITrainingSource? validation,
        GradientTrainingOptions options, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
        => Run(new RowObjective(model), train, validation, options, progress, cancellationToken);

    /// <summary>Trains any objective (rows or sequences) on already validated data, held in memory or streamed
    /// (<see cref="StreamingTrainingData"/>).</summary>
    /// <remarks>Every overload ends here, and here the options' automatic settings (a model's <c>MaxEpochs</c> = 0 or
    /// <c>BatchSize</c> = 0, with the patience that goes with them) are resolved for the examples
    /// <paramref name="train"/> knows it has (<see cref="ITrainingSource.KnownCount"/>: the rows or sequences in memory,
    /// a stream's count when it declares one, else a stream of unknown length): the run uses a resolved copy
    /// (<see cref="GradientTrainingOptions"/>.Resolved) and <paramref name="options"/> are left as they are.</remarks>
    public static TrainingSummary Run(IBatchGradientObjective model, ITrainingSource train, ITrainingSource? validation,
        GradientTrainingOptions options, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(train);
        options.Validate();
        options = options.Resolved(train.KnownCount);
        var trainable = new GradientTrainable(model, validation, options, cancellationToken);
        var driverOptions = TrainingDriverOptions.From(options, trainable.Root);
        if ((model as IDivergenceAdvisor)?.DivergenceAdvice is string advice) driverOptions = driverOptions with { DivergenceAdvice = advice };
        return TrainingDriver.Run(trainable, train, driverOptions, progress, cancellationToken);
    }

    /// <summary>Mean objective over all rows of <paramref name="data"/>, in blocks.</summary>
    public static double Evaluate(IGradientObjective model, RowMatrix data, RandomStream random, int blockRows = 1000)
        => Evaluate(new RowObjective(model), TrainingData.From(data), random, blockRows);

    /// <summary>Mean objective over all examples of <paramref name="data"/> (in memory or streamed), in blocks of
    /// <paramref name="blockSize"/> examples; block b draws from <paramref name="random"/>.Fork(b), numbered across a
    /// stream's windows (which hold whole blocks), so a stream gives the figure of the same rows in memory.</summary>
    public static double Evaluate(IBatchGradientObjective model, ITrainingSource data, RandomStream random, int blockSize = 1000)
    {
        var (sum, total) = EvaluateSum(model, data, random, blockSize, CancellationToken.None);
        return sum / total;
    }

    /// <summary>The sum of the objective over all examples of <paramref name="data"/> and their number, as
    /// <see cref="Evaluate(IBatchGradientObjective, ITrainingSource, RandomStream, int)"/> computes them; <paramref name="cancellationToken"/>
    /// is observed between blocks and while a stream's window is read (a stream's hashed validation split reads the whole
    /// pass to find its rows, as long a read as an epoch's; the Fit's token used to wait for its end).</summary>
    private static (double Sum, long Total) EvaluateSum(IBatchGradientObjective model, ITrainingSource data, RandomStream random, int blockSize,
        CancellationToken cancellationToken)
    {
        double sum = 0;
        long total = 0;
        var batch = new TrainingBatch();
        foreach (var block in Blocks(data, blockSize, batch, cancellationToken))
        {
            sum += model.Evaluate(batch, random.Fork((ulong)block.Number));
            total += block.Count;
        }
        return (sum, total);
    }

    /// <summary>A block of a measured source (<see cref="Blocks"/>): its number across the windows (block b draws its noise
    /// from fork b), the pass position of its first example, its size, and the window and offset it was copied from.</summary>
    internal readonly record struct MeasuredBlock(int Number, long First, int Count, ITrainingData Window, int Start);

    /// <summary>The blocks of <paramref name="blockSize"/> examples in which a measurement reads <paramref name="data"/>,
    /// window by window, each copied into <paramref name="batch"/> before it is yielded: the one walk of the figure
    /// (<see cref="EvaluateSum"/>) and of the search for an example it cannot measure (UnscorableValidation), so the
    /// search's block b is the figure's.</summary>
    internal static IEnumerable<MeasuredBlock> Blocks(ITrainingSource data, int blockSize, TrainingBatch batch, CancellationToken cancellationToken)
    {
        int[] indices = [];
        int b = 0;
        long before = 0;
        foreach (var window in data.ReadWindows(blockSize, cancellationToken))
        {
            if (indices.Length < Math.Min(blockSize, window.Count)) indices = new int[Math.Min(blockSize, window.Count)];
            for (int start = 0; start < window.Count; start += blockSize, b++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int count = Math.Min(blockSize, window.Count - start);
                for (int i = 0; i < count; i++) indices[i] = start + i;
                window.CopyBatch(indices.AsSpan(0, count), batch);
                yield return new MeasuredBlock(b, before + start, count, window, start);
            }
            before += window.Count;
        }
    }

    /// <summary>A row objective seen as a batch objective.</summary>
    private sealed class RowObjective(IGradientObjective rows) : IBatchGradientObjective, ITrainingStateOwner, IDivergenceAdvisor
    {
        public string? DivergenceAdvice => (rows as IDivergenceAdvisor)?.DivergenceAdvice;
        public ParameterSet Parameters => rows.Parameters;
        public double ComputeGradient(TrainingBatch batch, RandomStream random) => rows.ComputeGradient(batch.Rows, batch.Count, random);
        public double Evaluate(TrainingBatch batch, RandomStream random) => rows.Evaluate(batch.Rows, batch.Count, random);
        public object CaptureState() => (rows as ITrainingStateOwner)?.CaptureState()!;
        public void RestoreState(object state) => (rows as ITrainingStateOwner)?.RestoreState(state);
    }

    /// <summary>The optimiser step (with clipping) as an <see cref="ITrainableModel"/>; the epoch's figure is the mean
    /// objective, validated on the validation set.</summary>
    private sealed class GradientTrainable : ITrainableModel
    {
        private readonly IBatchGradientObjective _model;
        private readonly ITrainingSource? _validation;
        private readonly GradientTrainingOptions _options;
        private readonly Optimizer _optimizer;
        private readonly CancellationToken _cancellationToken;

        public GradientTrainable(IBatchGradientObjective model, ITrainingSource? validation, GradientTrainingOptions options, CancellationToken cancellationToken)
        {
            _model = model; _validation = validation; _options = options; _cancellationToken = cancellationToken;
            if (!model.Parameters.AllFinite()) throw new InvalidOperationException("Initial parameters are not finite.");
            _optimizer = Optimizer.Create(options);
            Root = new RandomStream(options.Seed).Fork(0x7EA1_0000);
        }

        public RandomStream Root { get; }

        /// <summary>Validation examples per evaluated block.</summary>
        private const int ValidationBlock = 1000;

        public double Step(TrainingStep step)
        {
            double objective = _model.ComputeGradient(step.Batch, step.Random);
            if (!double.IsFinite(objective)) return double.NaN;
            return _optimizer.ClipAndStep(_model.Parameters, _options.GradientClipNorm, step.LearningRate) ? objective : double.NaN;
        }

        public EpochFigures? EndEpoch(TrainingEpoch epoch)
        {
            // Diverged (restore the last good state, halve the rate): parameters not finite, or beyond what a model file holds.
            if (!_model.Parameters.WithinSavableRange()) return null;
            double train = epoch.ObjectiveSum / epoch.Examples;
            double? valid = null;
            if (_validation is not null)
            {
                var random = epoch.Root.Fork(0xE7A1, (ulong)epoch.Epoch);
                var (sum, total) = EvaluateSum(_model, _validation, random, ValidationBlock, _cancellationToken);
                // An empty validation set is refused where it is made (the Fits' checks; a stream's hashed split that
                // holds out no row is no validation, StreamingTrainingData.CheckedSplit); one given to the loop directly
                // is refused in the same words here, not taken for a divergence (0 / 0, "standardise the inputs").
                if (total == 0) throw StreamingTrainingData.NoValidationRows();
                double v = sum / total;
                if (!double.IsFinite(v))
                {
                    // Finite parameters (checked above) and a finite training figure: a validation example the model
                    // cannot measure (a row far off the training data's scale) is named, not taken for a divergence.
                    if (double.IsFinite(train) && UnscorableValidation.Find(_validation, ValidationBlock,
                            (batch, b) => _model.Evaluate(batch, random.Fork((ulong)b)), _cancellationToken) is { } bad)
                        throw UnscorableValidation.Error(bad.Example, bad.Frame);
                    return null;
                }
                valid = v;
            }
            return new EpochFigures(train, valid);
        }

        public object Snapshot() => (_model.Parameters.Snapshot(), (_model as ITrainingStateOwner)?.CaptureState());

        public void Restore(object snapshot)
        {
            var (parameters, state) = ((float[][], object?))snapshot;
            _model.Parameters.Restore(parameters);
            if (_model is ITrainingStateOwner owner && state is not null) owner.RestoreState(state);
        }

        public void ResetAfterDivergence() => _optimizer.Reset();
    }
}
