using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Tests.Conformance;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.Distributed;

/// <summary>
/// The recipe of docs/scaling.md through the public API only: a driver and workers that share nothing but bytes (the
/// model file, parameter snapshots, serialised partials) train RNADE and IWAE data-parallel.
/// </summary>
public class PublicRecipeTests
{
    private const int Rows = 240, Batch = 40, Steps = 6, BlockRows = 10;

    private static readonly RnadeOptions Rnade = new()
    {
        HiddenUnits = 8, Components = 3, MaxEpochs = 1, BatchSize = Batch, LearningRate = 1e-2f, RowsPerBlock = BlockRows, Seed = 4,
    };

    private static readonly IwaeOptions Iwae = new()
    {
        LatentDimensions = [2], HiddenUnits = [8], DeepHiddenUnits = [4], Samples = 3, EvaluationSamples = 20, EvaluationSamplesPerChunk = 10,
        MaxEpochs = 1, BatchSize = Batch, LearningRate = 1e-2f, RowsPerBlock = BlockRows, Seed = 4,
    };

    private sealed record Recipe(DensityModel Start, RowMatrix Data, GradientTrainingOptions Options,
        Func<DensityModel, (IGradientObjective Objective, Func<DensityModel> ToModel)> Objective);

    private static Recipe Make(string model)
    {
        if (model == "rnade")
        {
            var data = ConformanceData.Real(Rows, 5);
            return new Recipe(RnadeModel.Fit(data, Rnade), data, Rnade, m => { var o = ((RnadeModel)m).CreateTrainingObjective(Rnade); return (o, o.ToModel); });
        }
        var binary = ConformanceData.Binary(Rows, 5);
        return new Recipe(IwaeModel.Fit(binary, Iwae), binary, Iwae, m => { var o = ((IwaeModel)m).CreateTrainingObjective(Iwae); return (o, o.ToModel); });
    }

    /// <summary><paramref name="sizes"/>: the rows of each worker's share of a batch (whole blocks of 10 rows).</summary>
    private static DensityModel Train(Recipe recipe, int[] sizes)
    {
        var data = recipe.Data;
        byte[] file = recipe.Start.ToBytes();
        var (driver, toModel) = recipe.Objective(recipe.Start);
        var optimizer = new DataParallelOptimizer(driver.Parameters, recipe.Options);
        long length = driver.Parameters.Count;
        var workers = sizes.Select(_ => recipe.Objective(DensityModel.FromBytes(file)).Objective).ToArray();
        var root = new RandomStream(recipe.Options.Seed);
        for (int step = 0; step < Steps; step++)
        {
            var parameters = driver.Parameters.Snapshot(); // broadcast
            var shipped = new List<byte[]>();
            int batchStart = step * Batch % Rows, offset = batchStart;
            for (int w = 0; w < workers.Length; w++)
            {
                workers[w].Parameters.Restore(parameters);
                var rows = data.Values.AsSpan(offset * data.Columns, sizes[w] * data.Columns);
                shipped.Add(GradientPartial.Compute(workers[w], rows, sizes[w], root.Fork((ulong)step), (offset - batchStart) / BlockRows).ToBytes());
                offset += sizes[w];
            }
            var merged = shipped.Select(b => GradientPartial.FromBytes(b, length)).Aggregate(GradientPartial.Merge);
            Assert.Equal(Batch, merged.Count);
            Assert.True(optimizer.Step(merged, recipe.Options.LearningRate));
        }
        return toModel();
    }

    [Theory]
    [InlineData("rnade")]
    [InlineData("iwae")]
    public void TwoWorkersTrainTheModelOneWorkerTrains(string model)
    {
        var recipe = Make(model);
        var one = Train(recipe, [Batch]);
        var two = Train(recipe, [10, 30]);
        var s = recipe.Start.LogDensity(recipe.Data);
        var a = one.LogDensity(recipe.Data);
        var b = two.LogDensity(recipe.Data);
        Assert.NotEqual(s, a); // training moved the model
        for (int r = 0; r < Rows; r++)
            Assert.True(Math.Abs(a[r] - b[r]) <= 1e-4 * (1 + Math.Abs(a[r])), $"row {r}: one worker {a[r]:G9}, two {b[r]:G9}");
        // The model the workers started from is untouched.
        Assert.Equal(s, DensityModel.FromBytes(recipe.Start.ToBytes()).LogDensity(recipe.Data));
    }

    [Fact]
    public void ABadRowInAWorkersPartitionIsNamed()
    {
        var data = ConformanceData.Real(40, 5);
        var objective = RnadeModel.Fit(data, Rnade).CreateTrainingObjective(Rnade);
        data.Values[3 * data.Columns + 2] = float.NaN;
        var e = Assert.Throws<DataValidationException>(() => GradientPartial.Compute(objective, data.Values, data.Rows, new RandomStream(1)));
        Assert.Contains("training data", e.Message);
        Assert.Throws<ArgumentException>(() => GradientPartial.Compute(objective, data.Values.AsSpan(1), data.Rows, new RandomStream(1)));
        var binary = ConformanceData.Binary(40, 5);
        var iwae = IwaeModel.Fit(binary, Iwae).CreateTrainingObjective(Iwae);
        binary.Values[7] = 0.5f;
        Assert.Throws<DataValidationException>(() => GradientPartial.Compute(iwae, binary.Values, binary.Rows, new RandomStream(1)));
    }
}
