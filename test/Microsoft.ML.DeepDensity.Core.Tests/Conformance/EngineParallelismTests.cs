namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>The engine-wide thread limit really limits (so the 1-thread determinism check is meaningful).</summary>
[Collection(EngineSettingsCollection.Name)]
public class EngineParallelismTests
{
    [Fact]
    public void MaxDegreeOfParallelismLimitsEngineLoops()
    {
        Assert.Equal(-1, DeepDensityEnvironment.MaxDegreeOfParallelism);
        Assert.Throws<ArgumentOutOfRangeException>(() => DeepDensityEnvironment.MaxDegreeOfParallelism = 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => DeepDensityEnvironment.MaxDegreeOfParallelism = -2);
        try
        {
            DeepDensityEnvironment.MaxDegreeOfParallelism = 1;
            Assert.Equal(1, MaxConcurrency());
            Assert.Equal(1, DeepDensityEnvironment.ParallelOptions(8).MaxDegreeOfParallelism);
            DeepDensityEnvironment.MaxDegreeOfParallelism = 3;
            Assert.Equal(2, DeepDensityEnvironment.ParallelOptions(2).MaxDegreeOfParallelism);
            Assert.Equal(3, DeepDensityEnvironment.ParallelOptions(8).MaxDegreeOfParallelism);
            Assert.Equal(3, DeepDensityEnvironment.ParallelOptions().MaxDegreeOfParallelism);
            Assert.True(MaxConcurrency() <= 3);
        }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = -1; }
        Assert.Equal(-1, DeepDensityEnvironment.ParallelOptions().MaxDegreeOfParallelism);
        Assert.Equal(4, DeepDensityEnvironment.ParallelOptions(4).MaxDegreeOfParallelism);
        if (Environment.ProcessorCount > 1) Assert.True(MaxConcurrency() > 1, "without a limit, engine loops run on several threads");
    }

    [Fact]
    public void GemmGivesTheSameBitsOnOneThreadAndOnAll()
    {
        const int m = 190, n = 170, k = 150; // above the parallel threshold, several row blocks
        var rng = new Randomness.RandomStream(3);
        var a = new float[m * k]; var b = new float[k * n];
        rng.FillGaussian(a); rng.FillGaussian(b);
        var all = new float[m * n];
        Numerics.Gemm.Multiply(false, false, m, n, k, a, b, all);
        var one = new float[m * n];
        try
        {
            DeepDensityEnvironment.MaxDegreeOfParallelism = 1;
            Numerics.Gemm.Multiply(false, false, m, n, k, a, b, one);
        }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = -1; }
        ConformanceAssert.BitIdentical(all, one, "GEMM, 1 thread vs all");
    }

    [Fact]
    public void ExceptionsFromParallelBodiesAreNotWrapped()
    {
        var e = Assert.Throws<InvalidDataException>(() => DeepDensityEnvironment.For(0, 16, i => { if (i == 9) throw new InvalidDataException("block 9"); }));
        Assert.Equal("block 9", e.Message);
        try
        {
            DeepDensityEnvironment.MaxDegreeOfParallelism = 1;
            Assert.Throws<InvalidDataException>(() => DeepDensityEnvironment.For(0, 16, i => { if (i == 9) throw new InvalidDataException("block 9"); }));
        }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = -1; }
    }

    private static int MaxConcurrency()
    {
        int running = 0, max = 0;
        DeepDensityEnvironment.For(0, 64, _ =>
        {
            int now = Interlocked.Increment(ref running);
            int seen;
            while (now > (seen = Volatile.Read(ref max)) && Interlocked.CompareExchange(ref max, now, seen) != seen) { }
            Thread.Sleep(5);
            Interlocked.Decrement(ref running);
        });
        return max;
    }
}
