using static Microsoft.ML.DeepDensity.Tests.Conformance.ConformanceAssert;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>One trained model used from many threads at once behaves exactly as used from one.</summary>
public class ConcurrencyChecks
{
    private const int Threads = 8;

    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void ScoringFromEightThreadsAtOnceEqualsSequentialScoring(string name)
    {
        var f = ModelCases.Fitted(name);
        // Different batch sizes per thread (single rows, one block, several blocks) so that scratch of every shape is in use at once.
        var inputs = new Data.RowMatrix[Threads];
        var expected = new float[Threads][];
        for (int t = 0; t < Threads; t++)
        {
            inputs[t] = f.Case.MakeData(t % 3 == 0 ? 1 : t % 3 == 1 ? 90 : 700, (ulong)(100 + t));
            expected[t] = f.Model.LogDensity(inputs[t]);
        }
        var actual = RunTogether(t =>
        {
            float[] last = [];
            for (int repeat = 0; repeat < 5; repeat++) last = f.Model.LogDensity(inputs[t]);
            return last;
        });
        for (int t = 0; t < Threads; t++) BitIdentical(expected[t], actual[t], $"thread {t} scores");
    }

    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void SamplingFromEightThreadsAtOnceEqualsSequentialSampling(string name)
    {
        var f = ModelCases.Fitted(name);
        var expected = new float[Threads][];
        for (int t = 0; t < Threads; t++) expected[t] = f.Model.Sample(t % 2 == 0 ? 30 : 600, (ulong)(t % 4)).Values;
        var actual = RunTogether(t => f.Model.Sample(t % 2 == 0 ? 30 : 600, (ulong)(t % 4)).Values);
        for (int t = 0; t < Threads; t++) BitIdentical(expected[t], actual[t], $"thread {t} samples");
    }

    /// <summary>Trainers share no mutable static state: four fits at once (different seeds) equal the same fits one by one.</summary>
    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void FittingOnSeveralThreadsAtOnceEqualsSequentialFitting(string name)
    {
        var c = ModelCases.Get(name);
        var data = c.MakeData(c.TrainingRows, 12345);
        var expected = new byte[4][];
        for (int t = 0; t < 4; t++) expected[t] = c.Fit(new FitRequest(data, (ulong)(1 + t))).ToBytes();
        var results = new byte[4][];
        var errors = new Exception?[4];
        using var barrier = new Barrier(4);
        var threads = Enumerable.Range(0, 4).Select(t => new Thread(() =>
        {
            try { barrier.SignalAndWait(); results[t] = c.Fit(new FitRequest(data, (ulong)(1 + t))).ToBytes(); }
            catch (Exception e) { errors[t] = e; }
        })).ToArray();
        foreach (var th in threads) th.Start();
        foreach (var th in threads) Assert.True(th.Join(TimeSpan.FromSeconds(60)), "a fitting thread hung");
        foreach (var e in errors) if (e is not null) throw new Xunit.Sdk.XunitException($"a concurrent fit failed: {e}");
        for (int t = 0; t < 4; t++) Assert.True(expected[t].AsSpan().SequenceEqual(results[t]), $"fit with seed {1 + t} differs when run concurrently");
    }

    /// <summary>Starts <see cref="Threads"/> dedicated threads released together by a barrier.</summary>
    private static float[][] RunTogether(Func<int, float[]> work)
    {
        var results = new float[Threads][];
        var errors = new Exception?[Threads];
        using var barrier = new Barrier(Threads);
        var threads = new Thread[Threads];
        for (int t = 0; t < Threads; t++)
        {
            int id = t;
            threads[t] = new Thread(() =>
            {
                try { barrier.SignalAndWait(); results[id] = work(id); }
                catch (Exception e) { errors[id] = e; }
            });
            threads[t].Start();
        }
        foreach (var th in threads) Assert.True(th.Join(TimeSpan.FromSeconds(60)), "a worker thread hung");
        foreach (var e in errors) if (e is not null) throw new Xunit.Sdk.XunitException($"worker failed: {e}");
        return results;
    }
}
