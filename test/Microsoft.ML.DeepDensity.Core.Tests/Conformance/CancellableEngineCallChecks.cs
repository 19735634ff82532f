using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Estimation;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Models.RnnRnade;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>
/// The engine's other long calls take a <see cref="CancellationToken"/> too, as <c>LogDensity</c> does
/// (<see cref="CancellableScoringChecks"/>): an RBM's <c>FreeEnergy</c>, an importance-sampled model's k-sample
/// <c>Bound</c> and <c>AverageBound</c>, and RNN-RNADE's <c>PredictiveLogDensity</c>. Each scores in groups (rows, or
/// whole prefixes bounded by frames), checking the token between them; with a live token the values are bit for bit
/// those of the one-call form, whatever the groups.
/// </summary>
public class CancellableEngineCallChecks
{
    /// <summary>Free energies with a live token: the one-call bits over three groups of 16,384 rows (the last shorter than
    /// one scoring block of 256), and in groups of 64 rows; an already-cancelled token throws before any work.</summary>
    [Theory]
    [InlineData("Rbm")]
    [InlineData("RbmGaussian")]
    [InlineData("RbmAis")]
    public void FreeEnergyIsThatOfOneCall_AndACancelledTokenThrows(string name)
    {
        var model = (RbmModel)ModelCases.Fitted(name).Model;
        var data = ModelCases.Get(name).MakeData(2 * DensityModel.DefaultRowsPerCancellationCheck + 100, 77);
        var expected = model.FreeEnergy(data);
        using var cts = new CancellationTokenSource();
        ConformanceAssert.BitIdentical(expected, model.FreeEnergy(data, cts.Token), name + " free energies with a live token");
        var f = new float[data.Rows];
        model.FreeEnergy(data.AsSpan(), f, cts.Token);
        ConformanceAssert.BitIdentical(expected, f, name + " free energies (span) with a live token");
        var groupEnds = new List<int>();
        model.FreeEnergy(data.AsSpan(), f, cts.Token, 64, groupEnds.Add);
        ConformanceAssert.BitIdentical(expected, f, name + " free energies in groups of 64 rows");
        Assert.Equal((data.Rows + 63) / 64, groupEnds.Count);
        Assert.Equal(data.Rows, groupEnds[^1]);
        Assert.ThrowsAny<OperationCanceledException>(() => model.FreeEnergy(data, new CancellationToken(true)));
        Assert.ThrowsAny<OperationCanceledException>(() => model.FreeEnergy(data.AsSpan(), f, new CancellationToken(true)));
    }

    /// <summary>Cancelled while its first group is scored, the free energy stops before the second: the first group's
    /// slots are written, the rest untouched.</summary>
    [Fact]
    public void FreeEnergyIsCancelledBetweenGroups()
    {
        var model = (RbmModel)ModelCases.Fitted("Rbm").Model;
        var data = ModelCases.Get("Rbm").MakeData(1000, 5);
        AssertStopsAfterFirstGroup(data.Rows, 256, (f, token, groupDone) => model.FreeEnergy(data.AsSpan(), f, token, 256, groupDone));
    }

    /// <summary>Rows between checks of the bound's token: the largest power of two at most 2^17 / k, at most 16,384.</summary>
    [Fact]
    public void BoundGroupsShrinkWithK()
    {
        Assert.Equal(DensityModel.DefaultRowsPerCancellationCheck, DensityModel.RowsPerCancellationCheckAt(1));
        Assert.Equal(DensityModel.DefaultRowsPerCancellationCheck, DensityModel.RowsPerCancellationCheckAt(8));
        Assert.Equal(4096, DensityModel.RowsPerCancellationCheckAt(20));
        Assert.Equal(32, DensityModel.RowsPerCancellationCheckAt(4096));
        Assert.Equal(16, DensityModel.RowsPerCancellationCheckAt(5000));
        Assert.Equal(1, DensityModel.RowsPerCancellationCheckAt(1 << 18));
    }

    /// <summary>k-sample bounds with a live token: the one-call bits at k = 4,096 (groups of 32 rows, four of them here)
    /// and at k = 20 in groups of 3 rows (not a whole number of the 51-row scoring blocks: a row's noise comes from the
    /// seed and its own values, so its neighbours do not matter); the average too; an already-cancelled token throws.</summary>
    [Theory]
    [InlineData("Iwae")]
    [InlineData("IwaeGaussian")]
    [InlineData("Nvil")]
    public void BoundIsThatOfOneCall_AndACancelledTokenThrows(string name)
    {
        var model = (ImportanceSampledModel)ModelCases.Fitted(name).Model;
        var data = ModelCases.Get(name).MakeData(100, 77);
        using var cts = new CancellationTokenSource();
        var expected = model.Bound(data, 4096, 7);
        ConformanceAssert.BitIdentical(expected, model.Bound(data, 4096, 7, cts.Token), name + " bounds at k = 4096 with a live token");
        var b = new float[data.Rows];
        model.Bound(data.AsSpan(), 4096, 7, b, cts.Token);
        ConformanceAssert.BitIdentical(expected, b, name + " bounds (span) at k = 4096 with a live token");

        var small = model.Bound(data, 20, 11);
        var groupEnds = new List<int>();
        model.Bound(data.AsSpan(), 20, 11, b, cts.Token, 3, groupEnds.Add);
        ConformanceAssert.BitIdentical(small, b, name + " bounds at k = 20 in groups of 3 rows");
        Assert.Equal(34, groupEnds.Count);
        Assert.Equal(model.AverageBound(data, 20, 11), model.AverageBound(data, 20, 11, cts.Token));

        Assert.ThrowsAny<OperationCanceledException>(() => model.Bound(data, 20, 11, new CancellationToken(true)));
        Assert.ThrowsAny<OperationCanceledException>(() => model.Bound(data.AsSpan(), 20, 11, b, new CancellationToken(true)));
        Assert.ThrowsAny<OperationCanceledException>(() => model.AverageBound(data, 20, 11, new CancellationToken(true)));
    }

    /// <summary>Cancelled while its first group is bounded, the call stops before the second.</summary>
    [Fact]
    public void BoundIsCancelledBetweenGroups()
    {
        var model = (ImportanceSampledModel)ModelCases.Fitted("Iwae").Model;
        var data = ModelCases.Get("Iwae").MakeData(100, 5);
        AssertStopsAfterFirstGroup(data.Rows, 16, (b, token, groupDone) => model.Bound(data.AsSpan(), 64, 3, b, token, 16, groupDone));
    }

    /// <summary>One-step-ahead densities with a live token: the one-call bits over several groups of up to 65,536 frames
    /// (one prefix longer than a group), and in groups of at most 50 frames of whole prefixes; an already-cancelled token
    /// throws.</summary>
    [Fact]
    public void PredictiveLogDensityIsThatOfOneCall_AndACancelledTokenThrows()
    {
        var (model, prefixes, next) = PredictiveCase(30_000, withLongPrefix: true);
        Assert.True(prefixes.TotalFrames + prefixes.Count > 2 * SequenceDensityModel.FramesPerCancellationCheck);
        float[] expected = new float[prefixes.Count], actual = new float[prefixes.Count];
        model.PredictiveLogDensity(prefixes, next, expected);
        using var cts = new CancellationTokenSource();
        model.PredictiveLogDensity(prefixes, next, actual, cts.Token);
        ConformanceAssert.BitIdentical(expected, actual, "predictive log-densities with a live token");

        var groupEnds = new List<int>();
        model.PredictiveLogDensity(prefixes, next, actual, cts.Token, 50, groupEnds.Add);
        ConformanceAssert.BitIdentical(expected, actual, "predictive log-densities in groups of 50 frames");
        Assert.True(groupEnds.Count >= (prefixes.TotalFrames - SequenceDensityModel.FramesPerCancellationCheck - 3) / 50, $"{groupEnds.Count} groups");
        Assert.Equal(prefixes.Count, groupEnds[^1]);
        for (int g = 0, first = 0; g < groupEnds.Count; first = groupEnds[g++])
        {
            int frames = prefixes.Offsets[groupEnds[g]] - prefixes.Offsets[first] + (groupEnds[g] - first);
            Assert.True(frames <= 50 || groupEnds[g] == first + 1, $"group {g}: {frames} frames in {groupEnds[g] - first} prefixes");
        }
        Assert.ThrowsAny<OperationCanceledException>(() => model.PredictiveLogDensity(prefixes, next, actual, new CancellationToken(true)));
    }

    /// <summary>Cancelled while its first group is scored, the one-step-ahead density stops before the second (it writes
    /// its destination only at the end, so nothing is written).</summary>
    [Fact]
    public void PredictiveLogDensityIsCancelledBetweenGroups()
    {
        var (model, prefixes, next) = PredictiveCase(500, withLongPrefix: false);
        AssertStopsAfterFirstGroup(prefixes.Count, 0, (ld, token, groupDone) => model.PredictiveLogDensity(prefixes, next, ld, token, 100, groupDone));
    }

    /// <summary>Runs <paramref name="call"/> (destination, token, hook after every group) with a token the hook cancels
    /// after the first group: the call throws <see cref="OperationCanceledException"/> after that one group, with the
    /// first <paramref name="written"/> slots of the destination written and the others untouched.</summary>
    private static void AssertStopsAfterFirstGroup(int count, int written, Action<float[], CancellationToken, Action<int>> call)
    {
        using var cts = new CancellationTokenSource();
        var destination = new float[count];
        Array.Fill(destination, float.NaN);
        int groups = 0;
        Assert.ThrowsAny<OperationCanceledException>(() => call(destination, cts.Token, _ => { groups++; cts.Cancel(); }));
        Assert.Equal(1, groups);
        Assert.DoesNotContain(destination[..written], float.IsNaN);
        Assert.All(destination[written..], v => Assert.True(float.IsNaN(v)));
    }

    /// <summary>The standard RNN-RNADE case, <paramref name="count"/> of its sequences as prefixes (with one prefix longer
    /// than a group in the middle when asked) and, as each one's candidate, the first frame of the next.</summary>
    private static (RnnRnadeModel Model, SequenceBatch Prefixes, float[] Next) PredictiveCase(int count, bool withLongPrefix)
    {
        var c = SequenceModelCases.Get("RnnRnade");
        var model = (RnnRnadeModel)c.FitStandard();
        var data = c.MakeData(count, 77);
        int d = data.FrameSize;
        var sequences = new List<float[]>();
        for (int i = 0; i < data.Count; i++) sequences.Add(data.Sequence(i).ToArray());
        if (withLongPrefix)
        {
            var longOne = new float[(SequenceDensityModel.FramesPerCancellationCheck + 3) * d];
            for (int j = 0; j < longOne.Length; j++) longOne[j] = data.Values[j % (data.TotalFrames * d)];
            sequences.Insert(sequences.Count / 2, longOne);
        }
        var prefixes = SequenceBatch.FromSequences(sequences, d);
        var next = new float[prefixes.Count * d];
        for (int i = 0; i < prefixes.Count; i++) sequences[(i + 1) % sequences.Count].AsSpan(0, d).CopyTo(next.AsSpan(i * d));
        return (model, prefixes, next);
    }
}
