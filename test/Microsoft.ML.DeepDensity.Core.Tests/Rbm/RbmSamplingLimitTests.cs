using System.Buffers.Binary;
using System.Diagnostics;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Tests.Conformance;

namespace Microsoft.ML.DeepDensity.Tests.Rbm;

/// <summary>Issue 13 (2): the RBM's stored sampling settings are bounded (options and file) and long sampling is cancellable.</summary>
[Collection(EngineSettingsCollection.Name)] // the latency check runs alone
public class RbmSamplingLimitTests
{
    /// <summary>The payload ends with AIS runs, AIS temperatures, burn-in, thinning and chains (five Int32s).</summary>
    private static byte[] WithTail(byte[] file, int fromEnd, int value)
    {
        var parts = ModelFileParts.Parse(file);
        var payload = (byte[])parts.Payload.Clone();
        BinaryPrimitives.WriteInt32LittleEndian(payload.AsSpan(payload.Length - 4 * fromEnd), value);
        return parts.WithPayload(payload).Build();
    }

    [Theory]
    [InlineData(3, "burn-in", RbmOptions.MaxSamplingBurnIn)]
    [InlineData(2, "thinning", RbmOptions.MaxSamplingThinning)]
    [InlineData(1, "chains", RbmOptions.MaxSamplingChains)]
    public void SamplingSettingsAboveTheirLimitsAreRejectedOnLoadAndInOptions(int fromEnd, string what, int limit)
    {
        var file = ModelCases.Fitted("Rbm").Model.ToBytes();
        Assert.Equal(file, WithTail(file, fromEnd, ((RbmModel)DensityModel.FromBytes(file)) switch
        {
            var m when fromEnd == 3 => m.SamplingBurnIn,
            var m when fromEnd == 2 => m.SamplingThinning,
            var m => m.SamplingChains,
        }));
        foreach (int forged in new[] { limit + 1, int.MaxValue })
        {
            var e = Assert.Throws<InvalidModelFileException>(() => DensityModel.FromBytes(WithTail(file, fromEnd, forged)));
            Assert.Contains(what, e.Message);
        }
        var loaded = (RbmModel)DensityModel.FromBytes(WithTail(file, fromEnd, limit)); // the limit itself is valid
        Assert.NotNull(loaded);
        var options = new RbmOptions();
        if (fromEnd == 3) options.SamplingBurnIn = limit + 1;
        else if (fromEnd == 2) options.SamplingThinning = limit + 1;
        else options.SamplingChains = limit + 1;
        Assert.Throws<ArgumentOutOfRangeException>(() => options.Validate());
        foreach (int fromEndAis in new[] { 5, 4 })
            Assert.Throws<InvalidModelFileException>(() => DensityModel.FromBytes(WithTail(file, fromEndAis, int.MaxValue)));
    }

    /// <summary>A long draw (maximal burn-in on a 200 × 200 machine, many chains) stops within a second of cancellation;
    /// cancelling does not change what an uncancelled draw gives.</summary>
    [Fact]
    public void LongSamplingStopsWithinASecondOfCancellation()
    {
        int d = 200, h = 200;
        var rng = new Randomness.RandomStream(5);
        var w = new float[d * h];
        rng.FillGaussian(w, 0f, 0.05f);
        var model = RbmModel.FromParameters(RbmVisibleType.Bernoulli, w, new float[d], new float[h],
            new RbmOptions { ExactLogPartitionMaxUnits = 0, AisRuns = 2, AisTemperatures = 2, SamplingBurnIn = RbmOptions.MaxSamplingBurnIn, SamplingChains = 1000 });
        using var cts = new CancellationTokenSource();
        var started = new ManualResetEventSlim();
        var draw = Task.Factory.StartNew(() => { started.Set(); return model.Sample(1000, 1, cts.Token); }, TaskCreationOptions.LongRunning);
        Assert.True(started.Wait(TimeSpan.FromSeconds(10)));
        Thread.Sleep(200);
        Assert.False(draw.IsCompleted);
        var clock = Stopwatch.StartNew();
        cts.Cancel();
        Assert.True(((IAsyncResult)draw).AsyncWaitHandle.WaitOne(TimeSpan.FromSeconds(10)), "sampling did not stop within 10 s of cancellation");
        Assert.True(clock.Elapsed < TimeBounds.Within(1), $"sampling stopped {clock.Elapsed.TotalMilliseconds:F0} ms after cancellation");
        Assert.IsAssignableFrom<OperationCanceledException>(draw.Exception?.InnerException);

        var small = (RbmModel)ModelCases.Fitted("Rbm").Model;
        Assert.Equal(small.Sample(30, 9).Values, small.Sample(30, 9, new CancellationTokenSource().Token).Values);
    }
}
