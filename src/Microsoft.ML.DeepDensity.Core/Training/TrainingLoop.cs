using System.Diagnostics;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Training;

/// <summary>What the shared training loop needs from a gradient-trained model.</summary>
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
/// The one minibatch training loop every gradient-trained model uses: shuffled minibatches, epochs, a validation
/// set (given or split off) with early stopping and restore of the best parameters, progress reports, cancellation,
/// and divergence handling (a non-finite loss or gradient restores the last good state and halves the learning rate;
/// after <see cref="GradientTrainingOptions.MaxDivergenceRecoveries"/> it throws — parameters are never left NaN).
/// </summary>
public static class TrainingLoop
{
    /// <summary>Splits off a validation set when none is given (seeded); returns (train, validation or null).</summary>
    public static (RowMatrix Train, RowMatrix? Validation) Split(RowMatrix data, RowMatrix? validation, double fraction, ulong seed)
    {
        if (validation is not null || fraction <= 0) return (data, validation);
        int nValid = (int)Math.Floor(data.Rows * fraction);
        if (nValid < 1 || data.Rows - nValid < 1) return (data, null);
        var order = new int[data.Rows];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        new RandomStream(seed).Fork(0x5EED_5A11).Shuffle(order.AsSpan());
        var validIdx = order.AsSpan(0, nValid).ToArray();
        var trainIdx = order.AsSpan(nValid).ToArray();
        Array.Sort(validIdx); Array.Sort(trainIdx);
        return (data.SelectRows(trainIdx), data.SelectRows(validIdx));
    }

    /// <summary>Runs the loop on already validated data.</summary>
    public static TrainingSummary Run(IGradientObjective model, RowMatrix train, RowMatrix? validation,
        GradientTrainingOptions options, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        options.Validate();
        var parameters = model.Parameters;
        if (!parameters.AllFinite()) throw new InvalidOperationException("Initial parameters are not finite.");
        var optimizer = Optimizer.Create(options);
        var root = new RandomStream(options.Seed).Fork(0x7EA1_0000);
        int n = train.Rows, dim = train.Columns;
        int batch = Math.Min(options.BatchSize, n);
        var order = new int[n];
        var batchBuffer = new float[batch * dim];
        var history = new List<TrainingProgress>();

        float lr = options.LearningRate;
        float[][] lastGood = parameters.Snapshot();
        float[][]? best = null;
        double bestValid = double.NegativeInfinity;
        int bestEpoch = 0, sinceBest = 0, recoveries = 0;
        bool stoppedEarly = false;
        double lastTrain = double.NaN;
        var clock = Stopwatch.StartNew();
        int epoch = 1;
        while (epoch <= options.MaxEpochs && !options.StopToken.IsCancellationRequested)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var epochRandom = root.Fork((ulong)epoch, (ulong)recoveries);
            for (int i = 0; i < n; i++) order[i] = i;
            epochRandom.Shuffle(order.AsSpan());
            var epochClock = Stopwatch.StartNew();
            double objectiveSum = 0;
            bool diverged = false;
            int batchIndex = 0;
            for (int start = 0; start < n; start += batch, batchIndex++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (options.StopToken.IsCancellationRequested) break;
                int count = Math.Min(batch, n - start);
                for (int r = 0; r < count; r++)
                    train.Row(order[start + r]).CopyTo(batchBuffer.AsSpan(r * dim, dim));
                double obj = model.ComputeGradient(batchBuffer.AsSpan(0, count * dim), count, epochRandom.Fork((ulong)batchIndex));
                double norm = parameters.ClipGradientNorm(options.GradientClipNorm);
                if (!double.IsFinite(obj) || !double.IsFinite(norm)) { diverged = true; break; }
                optimizer.Step(parameters, lr);
                objectiveSum += obj;
            }
            if (options.StopToken.IsCancellationRequested)
            {
                parameters.Restore(lastGood); // a partly done epoch is discarded
                break;
            }
            if (!diverged && !parameters.AllFinite()) diverged = true;
            double validLl = double.NaN;
            if (!diverged && validation is not null)
            {
                validLl = Evaluate(model, validation, root.Fork(0xE7A1, (ulong)epoch));
                if (!double.IsFinite(validLl)) diverged = true;
            }
            if (diverged)
            {
                parameters.Restore(lastGood);
                optimizer.Reset();
                if (++recoveries > options.MaxDivergenceRecoveries)
                    throw new TrainingDivergedException(
                        $"Training diverged (non-finite loss or gradient) in epoch {epoch} and did not recover after {options.MaxDivergenceRecoveries} " +
                        $"restarts with halved learning rates (last {lr:G3}). Parameters were restored to the last finite state; " +
                        "standardise the inputs or lower LearningRate.");
                lr *= 0.5f;
                progress?.Report(new TrainingProgress(epoch, double.NaN, null, 0, clock.Elapsed, lr,
                    $"non-finite loss: restored last good parameters, learning rate halved to {lr:G3}"));
                continue; // retry the same epoch
            }

            lastGood = parameters.Snapshot();
            lastTrain = objectiveSum / n;
            var report = new TrainingProgress(epoch, lastTrain, validation is null ? null : validLl,
                n / Math.Max(epochClock.Elapsed.TotalSeconds, 1e-9), clock.Elapsed, lr);
            history.Add(report);
            progress?.Report(report);

            if (validation is not null)
            {
                if (validLl > bestValid)
                {
                    bestValid = validLl; bestEpoch = epoch; sinceBest = 0;
                    best = lastGood;
                }
                else if (options.EarlyStoppingPatience > 0 && ++sinceBest >= options.EarlyStoppingPatience)
                {
                    stoppedEarly = true;
                    break;
                }
            }
            lr *= options.LearningRateDecay;
            epoch++;
            if (clock.Elapsed >= options.MaxTrainingTime) break;
        }
        if (best is not null) parameters.Restore(best);
        else bestEpoch = history.Count;
        return new TrainingSummary(history.Count, bestEpoch, bestValid, lastTrain, stoppedEarly, recoveries, history);
    }

    /// <summary>Mean objective over all rows of <paramref name="data"/>, in blocks.</summary>
    public static double Evaluate(IGradientObjective model, RowMatrix data, RandomStream random, int blockRows = 1000)
    {
        double sum = 0;
        int dim = data.Columns;
        for (int start = 0, b = 0; start < data.Rows; start += blockRows, b++)
        {
            int count = Math.Min(blockRows, data.Rows - start);
            sum += model.Evaluate(data.Values.AsSpan(start * dim, count * dim), count, random.Fork((ulong)b));
        }
        return sum / data.Rows;
    }
}
