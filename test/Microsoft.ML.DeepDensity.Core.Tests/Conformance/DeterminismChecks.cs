using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Training;
using static Microsoft.ML.DeepDensity.Tests.Conformance.ConformanceAssert;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>Seeds determine everything; thread counts determine nothing; the model describes itself correctly.</summary>
[Collection(EngineSettingsCollection.Name)]
public class DeterminismChecks
{
    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void SameSeedAndDataGiveIdenticalModelsAndOutputs(string name)
    {
        var f = ModelCases.Fitted(name);
        var again = f.Case.Fit(new FitRequest(f.Case.MakeData(f.Case.TrainingRows, 12345), 1));
        Assert.Equal(f.Model.ToBytes(), again.ToBytes());
        BitIdentical(f.Model.LogDensity(f.Data), again.LogDensity(f.Data), "log-densities of two fits with the same seed");
        BitIdentical(f.Model.Sample(50, 9).AsSpan(), again.Sample(50, 9).AsSpan(), "samples of two fits with the same seed");
        // Repeated calls on one model are identical too (no hidden state advances between calls).
        BitIdentical(f.Model.LogDensity(f.Data), f.Model.LogDensity(f.Data), "log-densities of repeated calls");
        BitIdentical(f.Model.Sample(50, 9).AsSpan(), f.Model.Sample(50, 9).AsSpan(), "samples of repeated calls");
    }

    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void DifferentSeedsGiveDifferentModelsAndSamples(string name)
    {
        var f = ModelCases.Fitted(name);
        var other = f.Case.Fit(new FitRequest(f.Data, 2));
        Assert.NotEqual(f.Model.ToBytes(), other.ToBytes());
        Assert.NotEqual(f.Model.Sample(50, 9).Values, f.Model.Sample(50, 10).Values);
    }

    /// <summary>Training, scoring (several scoring blocks) and sampling give the same bits on 1 thread and on all.</summary>
    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void ResultsDoNotDependOnTheNumberOfThreads(string name)
    {
        var c = ModelCases.Get(name);
        var data = c.MakeData(c.TrainingRows, 12345);
        var many = c.MakeData(1500, 77);
        (byte[] Bytes, float[] Scores, float[] Samples) Run()
        {
            var m = c.Fit(new FitRequest(data, 1));
            return (m.ToBytes(), m.LogDensity(many), m.Sample(1100, 5).Values);
        }
        var all = Run();
        DeepDensityEnvironment.MaxDegreeOfParallelism = 1;
        try
        {
            var one = Run();
            Assert.Equal(all.Bytes, one.Bytes);
            BitIdentical(all.Scores, one.Scores, "log-densities, 1 thread vs all");
            BitIdentical(all.Samples, one.Samples, "samples, 1 thread vs all");
        }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = -1; }
    }

    // A row's score alone, in batches of every size, order and company, bit for bit: BatchInvarianceChecks.

    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void ModelDescribesItselfAndOutputsHonourItsKind(string name)
    {
        var f = ModelCases.Fitted(name);
        Assert.Equal(f.Case.InputDomain, f.Model.InputDomain);
        Assert.Equal(f.Case.DensityKind, f.Model.DensityKind);
        Assert.Equal(f.Data.Columns, f.Model.Dimension);
        Assert.Contains(f.Model.ModelKind, ModelRegistry.Kinds);
        var ld = new float[f.Data.Rows];
        var se = new float[f.Data.Rows];
        Array.Fill(se, 123f); // must be overwritten
        f.Model.LogDensity(f.Data.AsSpan(), ld, se);
        AllFinite(ld, "log-densities of the training rows");
        BitIdentical(f.Model.LogDensity(f.Data), ld, "log-densities with and without standard errors");
        if (f.Model.DensityKind == DensityKind.Estimate)
        {
            // Finite and non-negative, or +∞ (unknown) for an importance-sampled row resting on fewer than
            // ImportanceSampler.MinEffectiveSamples effective samples (the suite scores with K = 20, so some rows are).
            Assert.All(se, s => Assert.True(s >= 0 && !float.IsNaN(s), $"standard error {s}"));
            Assert.Contains(se, s => s > 0 && float.IsFinite(s));
            if (f.Model is global::Microsoft.ML.DeepDensity.Estimation.ImportanceSampledModel sampled)
            {
                var ess = new double[f.Data.Rows];
                var ld2 = new float[f.Data.Rows];
                sampled.LogDensityWithWeights(f.Data.AsSpan(), ld2, (r, w) => ess[r] = global::Microsoft.ML.DeepDensity.Estimation.ImportanceSampler.EffectiveSampleSize(w));
                BitIdentical(ld, ld2, "log-densities with and without the weights' inspection");
                for (int r = 0; r < ess.Length; r++)
                    Assert.True(float.IsPositiveInfinity(se[r]) == ess[r] < global::Microsoft.ML.DeepDensity.Estimation.ImportanceSampler.MinEffectiveSamples,
                        $"row {r}: standard error {se[r]} with {ess[r]} effective samples");
            }
            else AllFinite(se, "standard errors");
        }
        else Assert.All(se, s => Assert.Equal(0f, s));
    }

    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void SamplesAreInTheInputDomainAndScoreFinite(string name)
    {
        var f = ModelCases.Fitted(name);
        var s = f.Model.Sample(300, 3);
        Assert.Equal(f.Model.Dimension, s.Columns);
        Assert.Equal(300, s.Rows);
        AllFinite(s.AsSpan(), "samples");
        if (f.Model.InputDomain == InputDomain.Binary) Assert.All(s.Values, v => Assert.True(v is 0f or 1f));
        AllFinite(f.Model.LogDensity(s), "log-densities of the model's own samples");
    }

    /// <summary>Row i of a draw depends only on (seed, i): a smaller draw is a prefix of a larger one, for draws of
    /// every size of <see cref="BatchInvarianceChecks.BatchSizes"/> (across sampling blocks and the RBM's chains), on 1
    /// and 2 threads.</summary>
    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void SmallerDrawsArePrefixesOfLargerOnes(string name)
    {
        var f = ModelCases.Fitted(name);
        if (!f.Case.PrefixConsistentSampling) return;
        AssertDrawsArePrefixes(f.Model, 21, new[] { 1, 10, 300, 700 }.Concat(BatchInvarianceChecks.BatchSizes).Order().ToArray());
    }

    private static void AssertDrawsArePrefixes(DensityModel model, ulong seed, int[] sizes)
    {
        int d = model.Dimension, largest = sizes.Max();
        try
        {
            foreach (int threads in new[] { 1, 2 })
            {
                DeepDensityEnvironment.MaxDegreeOfParallelism = threads;
                var large = model.Sample(largest, seed);
                foreach (int n in sizes)
                    BitIdentical(large.AsSpan()[..(n * d)], model.Sample(n, seed).AsSpan(), $"{threads} thread(s): a draw of {n} vs the first {n} rows of {largest}");
            }
        }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = -1; }
    }

    /// <summary>The edges of a draw's arguments: seeds 0 and 2^64 − 1 are ordinary seeds (finite, in-domain draws that differ
    /// from each other and from seed 1); a count of 0 gives an empty draw (matrix and span forms); a count whose values
    /// exceed the largest array is refused with <see cref="ArgumentOutOfRangeException"/> naming the count, before any
    /// allocation.</summary>
    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void ExtremeSeedsAndCountsAreHandled(string name)
    {
        var f = ModelCases.Fitted(name);
        int d = f.Model.Dimension;
        var draws = new[] { 0UL, 1UL, ulong.MaxValue }.Select(seed => f.Model.Sample(20, seed).Values).ToArray();
        foreach (var v in draws)
        {
            AllFinite(v, "samples of an extreme seed");
            if (f.Model.InputDomain == InputDomain.Binary) Assert.All(v, x => Assert.True(x is 0f or 1f));
        }
        Assert.NotEqual(draws[0], draws[2]);
        Assert.NotEqual(draws[0], draws[1]);
        Assert.NotEqual(draws[1], draws[2]);
        Assert.Equal(0, f.Model.Sample(0, 5).Rows);
        f.Model.Sample(0, 5, Span<float>.Empty);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => f.Model.Sample(Array.MaxLength / d + 1, 5));
        Assert.Equal("count", ex.ParamName);
        Assert.Contains("smaller batches", ex.Message);
    }

    /// <summary>Every trainer reports progress (finite training objective, increasing epochs).</summary>
    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void FitReportsProgress(string name)
    {
        var c = ModelCases.Get(name);
        var reports = new List<TrainingProgress>();
        c.Fit(new FitRequest(c.MakeData(c.TrainingRows, 12345), 1) { Epochs = 3, Progress = new SynchronousProgress(reports.Add) });
        Assert.True(reports.Select(p => p.Epoch).Distinct().Count() >= 3, $"progress reported for {reports.Select(p => p.Epoch).Distinct().Count()} of 3 epochs");
        for (int i = 0; i < reports.Count; i++)
        {
            // A NaN figure must come with a note saying why (e.g. a divergence recovery, or "not a likelihood").
            Assert.True(double.IsFinite(reports[i].TrainLogLikelihood) || reports[i].Note is not null, $"report {i}: train objective {reports[i].TrainLogLikelihood} without a note");
            if (i > 0) Assert.True(reports[i].Epoch >= reports[i - 1].Epoch, "epochs never go back");
            Assert.True(reports[i].Elapsed >= TimeSpan.Zero);
        }
    }
}

/// <summary>Reports on the calling thread (<see cref="Progress{T}"/> would post to a thread pool).</summary>
internal sealed class SynchronousProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
{
    public void Report(TrainingProgress value) => report(value);
}

/// <summary>Tests that change process-wide engine settings or measure latency run one at a time, after the parallel ones.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class EngineSettingsCollection
{
    public const string Name = "Serial: engine settings and latency";
}
