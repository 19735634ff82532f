using Microsoft.ML.DeepDensity;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace DeepDensity.Samples;

/// <summary>
/// docs/scaling.md's "Beyond one machine" with two simulated workers in one process: they share nothing with the
/// driver but bytes (the model file, parameter snapshots, serialised partials and statistics), as tasks of Spark, Ray
/// or Dask would. <c>dotnet run -c Release --project src/Samples/DeepDensity.Samples -- data-parallel [epochs]</c>.
/// </summary>
public static class DataParallelSample
{
    private const int Workers = 2;

    public static void Run(int epochs)
    {
        var data = SampleData.LoadDigits();
        var shards = Shard(data.Train, Workers);
        Console.WriteLine($"Digits: {data.Train.Rows} training rows");
        TrainRnade(data, epochs);
        TrainDeepGmm(data, shards, Math.Max(1, epochs / 4));
    }

    /// <summary>Consecutive, unequal partitions (a real engine's partitions are rarely even).</summary>
    private static RowMatrix[] Shard(RowMatrix rows, int count)
    {
        var shards = new RowMatrix[count];
        int start = 0;
        for (int w = 0; w < count; w++)
        {
            int n = w == count - 1 ? rows.Rows - start : rows.Rows * (w + 1) / (count + 1);
            shards[w] = rows.SelectRows(Enumerable.Range(start, n).ToArray());
            start += n;
        }
        return shards;
    }

    /// <summary>Data-parallel RNADE: every batch of 100 rows is cut into the workers' whole blocks of 50 rows; each
    /// worker returns the partial of its block, the driver merges them and steps.</summary>
    private static void TrainRnade(DataSplit data, int epochs)
    {
        var options = new RnadeOptions { HiddenUnits = 50, Components = 10, BatchSize = 100, RowsPerBlock = 50, LearningRate = 2e-3f, Seed = 1, MaxEpochs = 1 };
        // The driver initialises on a sample (one epoch on 500 rows), then broadcasts the model file.
        var start = RnadeModel.Fit(data.Train.SelectRows(Enumerable.Range(0, 500).ToArray()), options);
        byte[] file = start.ToBytes();
        var driver = start.CreateTrainingObjective(options);
        var optimizer = new DataParallelOptimizer(driver.Parameters, options);
        var workers = Enumerable.Range(0, Workers).Select(_ => ((RnadeModel)DensityModel.FromBytes(file)).CreateTrainingObjective(options)).ToArray();
        long parameterCount = driver.Parameters.Count;
        int d = data.Train.Columns, batch = options.BatchSize, share = batch / Workers;
        var root = new RandomStream(options.Seed);
        var order = Enumerable.Range(0, data.Train.Rows).ToArray();
        var rows = new float[batch * d];
        RnadeModel? best = null;
        double bestValidation = double.NegativeInfinity;
        int bestEpoch = 0;
        Console.WriteLine($"RNADE, {Workers} workers ({share} rows of every {batch}-row batch each), {epochs} epochs:");
        for (int epoch = 1; epoch <= epochs; epoch++)
        {
            var epochRandom = root.Fork((ulong)epoch);
            epochRandom.Shuffle(order.AsSpan());
            for (int b = 0; (b + 1) * batch <= order.Length; b++)
            {
                float[][] broadcast = driver.Parameters.Snapshot();
                var partials = new byte[Workers][];
                for (int w = 0; w < Workers; w++) // on a cluster: one task per worker
                {
                    workers[w].Parameters.Restore(broadcast);
                    for (int r = 0; r < share; r++) data.Train.Row(order[b * batch + w * share + r]).CopyTo(rows.AsSpan(r * d, d));
                    partials[w] = GradientPartial.Compute(workers[w], rows.AsSpan(0, share * d), share, epochRandom.Fork((ulong)b),
                        firstBlock: w * share / options.RowsPerBlock).ToBytes();
                }
                var merged = partials.Select(p => GradientPartial.FromBytes(p, parameterCount)).Aggregate(GradientPartial.Merge);
                if (!optimizer.Step(merged, options.LearningRate)) throw new InvalidOperationException("diverged");
            }
            // The driver keeps the best model on validation (what the training driver's early stopping does).
            var current = driver.ToModel();
            double validation = current.AverageLogDensity(data.Validation);
            if (best is null || validation > bestValidation) (best, bestValidation, bestEpoch) = (current, validation, epoch);
            if (epoch % 5 == 0 || epoch == epochs) Console.WriteLine($"  epoch {epoch,3}: validation {validation:F3} nats/row");
        }
        var model = best!;
        Console.WriteLine($"  best epoch {bestEpoch}: held-out {model.AverageLogDensity(data.Test):F3} nats/row");
        ScoreAsMap(model, data.Test);
    }

    /// <summary>Deep GMM's EM as map-reduce: per iteration one E-step round and one round per layer.</summary>
    private static void TrainDeepGmm(DataSplit data, RowMatrix[] shards, int iterations)
    {
        var options = new DeepGmmOptions { Layers = new[] { 3, 2 }, MaxIterations = 1, Seed = 1 };
        var start = DeepGmmModel.Fit(data.Train.SelectRows(Enumerable.Range(0, 500).ToArray()), options);
        var em = new DeepGmmDataParallelEm(start, options);
        Console.WriteLine($"Deep GMM {{3, 2}}, {Workers} workers (partitions of {string.Join(" + ", shards.Select(s => s.Rows))} rows), {iterations} EM iterations:");
        while (em.Iteration < iterations || em.PendingLayer is not null)
        {
            // Broadcast: the models as files (and the layer); every worker returns its partition's statistics as bytes.
            byte[] current = em.Current.ToBytes();
            byte[]? scored = em.Scored?.ToBytes();
            int? layer = em.PendingLayer;
            var results = shards.Select(shard =>
            {
                var c = (DeepGmmModel)DensityModel.FromBytes(current);
                return (layer is int l
                    ? DeepGmmEmStatistics.ComputeLayer((DeepGmmModel)DensityModel.FromBytes(scored!), c, l, options, shard)
                    : DeepGmmEmStatistics.ComputeEStep(c, options, shard)).ToBytes();
            }).ToList();
            em.Add(results.Select(r => DeepGmmEmStatistics.FromBytes(r, em.Current)).Aggregate(DeepGmmEmStatistics.Merge));
            if (layer is null) Console.WriteLine($"  iteration {em.Iteration,2}: E-step {em.MeanLogLikelihood:F3} nats/row (standardised)");
        }
        var model = em.ToModel();
        Console.WriteLine($"  held-out {model.AverageLogDensity(data.Test):F3} nats/row");
        ScoreAsMap(model, data.Test);
    }

    /// <summary>Scoring as a map: each partition scored by its own copy loaded from the model file.</summary>
    private static void ScoreAsMap(DensityModel model, RowMatrix test)
    {
        byte[] file = model.ToBytes();
        var parts = Shard(test, Workers).SelectMany(p => DensityModel.FromBytes(file).LogDensity(p)).ToArray();
        bool same = parts.AsSpan().SequenceEqual(model.LogDensity(test));
        Console.WriteLine($"  scoring {Workers} partitions with loaded copies: {(same ? "identical to one pass" : "DIFFERENT from one pass")}");
    }
}
