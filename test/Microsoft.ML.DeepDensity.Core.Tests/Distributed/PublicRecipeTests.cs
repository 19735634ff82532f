using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Tests.Conformance;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.Distributed;

/// <summary>
/// The recipe of docs/scaling.md through the public API only: a driver and workers that share nothing but bytes (the
/// model file, parameter snapshots, serialised partials) train an RNADE data-parallel.
/// </summary>
public class PublicRecipeTests
{
    private const int Rows = 240, Batch = 40, Steps = 6;

    private static readonly RnadeOptions Options = new()
    {
        HiddenUnits = 8, Components = 3, MaxEpochs = 1, BatchSize = Batch, LearningRate = 1e-2f, RowsPerBlock = 10, Seed = 4,
    };

    /// <summary><paramref name="sizes"/>: the rows of each worker's share of a batch (whole blocks of 10 rows).</summary>
    private static RnadeModel Train(RnadeModel start, RowMatrix data, int[] sizes)
    {
        byte[] file = start.ToBytes();
        var driver = start.CreateTrainingObjective(Options);
        var optimizer = new DataParallelOptimizer(driver.Parameters, Options);
        long length = driver.Parameters.Count;
        var workers = sizes.Select(_ => ((RnadeModel)DensityModel.FromBytes(file)).CreateTrainingObjective(Options)).ToArray();
        var root = new RandomStream(Options.Seed);
        for (int step = 0; step < Steps; step++)
        {
            var parameters = driver.Parameters.Snapshot(); // broadcast
            var shipped = new List<byte[]>();
            int offset = step * Batch % Rows;
            for (int w = 0; w < workers.Length; w++)
            {
                workers[w].Parameters.Restore(parameters);
                var rows = data.Values.AsSpan(offset * data.Columns, sizes[w] * data.Columns);
                int firstBlock = (offset - step * Batch % Rows) / Options.RowsPerBlock;
                shipped.Add(GradientPartial.Compute(workers[w], rows, sizes[w], root.Fork((ulong)step), firstBlock).ToBytes());
                offset += sizes[w];
            }
            var merged = shipped.Select(b => GradientPartial.FromBytes(b, length)).Aggregate(GradientPartial.Merge);
            Assert.Equal(Batch, merged.Count);
            Assert.True(optimizer.Step(merged, Options.LearningRate));
        }
        return driver.ToModel();
    }

    [Fact]
    public void TwoWorkersTrainTheModelOneWorkerTrains()
    {
        var data = ConformanceData.Real(Rows, 5);
        var start = RnadeModel.Fit(data, Options);
        var one = Train(start, data, [Batch]);
        var two = Train(start, data, [10, 30]);
        var s = start.LogDensity(data);
        var a = one.LogDensity(data);
        var b = two.LogDensity(data);
        Assert.True(a.Average() > s.Average(), $"training moved the model: {s.Average():F5} → {a.Average():F5}");
        for (int r = 0; r < Rows; r++)
            Assert.True(Math.Abs(a[r] - b[r]) <= 1e-4 * (1 + Math.Abs(a[r])), $"row {r}: one worker {a[r]:G9}, two {b[r]:G9}");
        // The model the workers started from is untouched.
        Assert.Equal(s, RnadeModel.FromBytes(start.ToBytes()).LogDensity(data));
    }

    [Fact]
    public void ABadRowInAWorkersPartitionIsNamed()
    {
        var data = ConformanceData.Real(40, 5);
        var objective = RnadeModel.Fit(data, Options).CreateTrainingObjective(Options);
        data.Values[3 * data.Columns + 2] = float.NaN;
        var e = Assert.Throws<DataValidationException>(() => GradientPartial.Compute(objective, data.Values, data.Rows, new RandomStream(1)));
        Assert.Contains("training data", e.Message);
        Assert.Throws<ArgumentException>(() => GradientPartial.Compute(objective, data.Values.AsSpan(1), data.Rows, new RandomStream(1)));
    }
}
