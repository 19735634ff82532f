using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Persistence;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>
/// The contract every <see cref="SequenceDensityModel"/> must follow, checked on each of <see cref="SequenceModelCases.All"/>:
/// input checks (frame size, values, empty input), edge lengths (1 frame, very long), sums of frame log-densities,
/// determinism, sampling and persistence.
/// </summary>
public class SequenceConformanceTests
{
    private static readonly Dictionary<string, Lazy<SequenceDensityModel>> Models =
        SequenceModelCases.All.ToDictionary(c => c.Name, c => new Lazy<SequenceDensityModel>(c.FitStandard));

    private static SequenceDensityModel Model(string name) => Models[name].Value;

    private static SequenceBatch Test(SequenceModelCase c) => c.MakeData(15, 999);

    [Theory]
    [MemberData(nameof(SequenceModelCases.Names), MemberType = typeof(SequenceModelCases))]
    public void DeclaresItsKindAndDomain(string name)
    {
        var c = SequenceModelCases.Get(name);
        var m = Model(name);
        Assert.Equal(c.InputDomain, m.InputDomain);
        Assert.Equal(c.DensityKind, m.DensityKind);
        Assert.Equal(c.MakeData(1, 1).FrameSize, m.FrameSize);
        Assert.Contains(m.ModelKind, ModelRegistry.Kinds);
    }

    [Theory]
    [MemberData(nameof(SequenceModelCases.Names), MemberType = typeof(SequenceModelCases))]
    public void RejectsTheWrongFrameSizeAndBadValues(string name)
    {
        var m = Model(name);
        var wrong = SequenceBatch.FromSequences(new[] { new float[(m.FrameSize + 1) * 2] }, m.FrameSize + 1);
        Assert.Contains("frame size", Assert.Throws<DataValidationException>(() => m.LogDensity(wrong)).Message);
        Assert.Throws<DataValidationException>(() => m.FrameLogDensity(wrong, new float[2]));
        Assert.Throws<DataValidationException>(() => m.Sample(wrong, 1, 1));
        var data = Test(SequenceModelCases.Get(name));
        var values = (float[])data.Values.Clone();
        int seq = data.Count - 1;
        values[data.Offsets[seq] * data.FrameSize + data.FrameSize - 1] = float.PositiveInfinity; // last sequence, frame 0, last slot
        var e = Assert.Throws<DataValidationException>(() => m.LogDensity(new SequenceBatch(values, data.Offsets, data.FrameSize)));
        Assert.Equal(seq, e.Row);
        Assert.Equal(data.FrameSize - 1, e.Column);
        Assert.Contains("frame 0", e.Message);
    }

    [Theory]
    [MemberData(nameof(SequenceModelCases.Names), MemberType = typeof(SequenceModelCases))]
    public void EmptyInputsAreHandled(string name)
    {
        var c = SequenceModelCases.Get(name);
        var m = Model(name);
        var none = new SequenceBatch(Array.Empty<float>(), new[] { 0 }, m.FrameSize);
        m.LogDensity(none, Span<float>.Empty); // nothing to score, nothing thrown
        Assert.Equal(0, m.Sample(0, 3, 1).Count);
        Assert.Throws<ArgumentOutOfRangeException>(() => m.Sample(2, 0, 1));
        Assert.Throws<DataValidationException>(() => new SequenceBatch(new float[m.FrameSize * 2], new[] { 0, 1, 1, 2 }, m.FrameSize));
        Assert.Throws<DataValidationException>(() => c.Fit(new SequenceFitRequest(none, 1)));
    }

    [Theory]
    [MemberData(nameof(SequenceModelCases.Names), MemberType = typeof(SequenceModelCases))]
    public void SingleFrameSequencesTrainAndScore(string name)
    {
        var c = SequenceModelCases.Get(name);
        var data = Test(c);
        var firstFrames = new SequenceBatch(data.Values, Enumerable.Range(0, data.Count + 1).Select(i => i).ToArray(), data.FrameSize);
        var m = c.Fit(new SequenceFitRequest(firstFrames, 1));
        var ld = m.LogDensity(firstFrames);
        var frames = new float[firstFrames.TotalFrames];
        m.FrameLogDensity(firstFrames, frames);
        for (int i = 0; i < ld.Length; i++)
        {
            Assert.True(float.IsFinite(ld[i]), $"sequence {i} scored {ld[i]}");
            Assert.Equal(frames[i], ld[i], 1e-4 * (1 + Math.Abs(ld[i])));
        }
    }

    [Theory]
    [MemberData(nameof(SequenceModelCases.Names), MemberType = typeof(SequenceModelCases))]
    public void VeryLongSequencesScoreAsTheSumOfTheirFrames(string name)
    {
        var m = Model(name);
        var longOne = m.Sample(1, 20_000, 5);
        Assert.All(longOne.Values, v => Assert.True(float.IsFinite(v)));
        var frames = new float[longOne.TotalFrames];
        m.FrameLogDensity(longOne, frames);
        double sum = 0;
        foreach (var f in frames) { Assert.True(float.IsFinite(f)); sum += f; }
        float total = m.LogDensity(longOne)[0];
        Assert.True(float.IsFinite(total));
        Assert.Equal(sum, total, 1e-4 * (1 + Math.Abs(sum)));
    }

    [Theory]
    [MemberData(nameof(SequenceModelCases.Names), MemberType = typeof(SequenceModelCases))]
    public void IsDeterministic(string name)
    {
        var c = SequenceModelCases.Get(name);
        var m = Model(name);
        Assert.Equal(m.ToBytes(), c.FitStandard().ToBytes());
        var data = Test(c);
        // A sequence alone and in batches of every size, order and company, bit for bit: SequenceBatchInvarianceChecks.
        var a = m.Sample(4, 6, 21);
        Assert.Equal(a.Values, m.Sample(4, 6, 21).Values);
        Assert.Equal(a.Sequence(0).ToArray(), m.Sample(1, 6, 21).Sequence(0).ToArray());
        var prefixes = data.Select(new[] { 0, 1, 2 });
        Assert.Equal(m.Sample(prefixes, 3, 8).Values, m.Sample(prefixes, 3, 8).Values);
    }

    /// <summary>Sampling takes a cancellation token, as the row models' does: an already-cancelled token stops before any
    /// work (both forms), and a token that is never cancelled changes nothing.</summary>
    [Theory]
    [MemberData(nameof(SequenceModelCases.Names), MemberType = typeof(SequenceModelCases))]
    public void SamplingHonoursACancelledToken(string name)
    {
        var m = Model(name);
        var prefixes = Test(SequenceModelCases.Get(name)).Select(new[] { 0, 1 });
        Assert.ThrowsAny<OperationCanceledException>(() => m.Sample(1000, 50, 3, new CancellationToken(true)));
        Assert.ThrowsAny<OperationCanceledException>(() => m.Sample(prefixes, 50, 3, new CancellationToken(true)));
        using var cts = new CancellationTokenSource();
        Assert.Equal(m.Sample(4, 6, 3).Values, m.Sample(4, 6, 3, cts.Token).Values);
        Assert.Equal(m.Sample(prefixes, 4, 3).Values, m.Sample(prefixes, 4, 3, cts.Token).Values);
    }

    [Theory]
    [MemberData(nameof(SequenceModelCases.Names), MemberType = typeof(SequenceModelCases))]
    public void ContinuesPrefixes(string name)
    {
        var m = Model(name);
        var prefixes = Test(SequenceModelCases.Get(name)).Select(new[] { 3, 4 });
        var continued = m.Sample(prefixes, 5, 3);
        for (int i = 0; i < prefixes.Count; i++)
        {
            Assert.Equal(prefixes.Length(i) + 5, continued.Length(i));
            Assert.Equal(prefixes.Sequence(i).ToArray(), continued.Sequence(i)[..prefixes.Sequence(i).Length].ToArray());
        }
        Assert.Equal(prefixes.Values.AsSpan(0, prefixes.TotalFrames * prefixes.FrameSize).ToArray(), m.Sample(prefixes, 0, 3).AsSpan().ToArray());
    }

    /// <summary>
    /// Continuing a draw with the seed that drew it is a valid draw of the longer sequences: the new frame does not replay
    /// the prefix's noise. 20,000 one-frame draws continued by one frame with the same seed, against 20,000 fresh
    /// two-frame draws: the correlation of each value between frames 1 and 2 agrees within 0.05 (each correlation's
    /// standard error is at most 1/√20,000 = 0.007, so 0.05 is over 5 standard errors of the difference: p &lt; 1e-6 for
    /// a correct sampler; seeded, so the result is the same every run). Replayed noise made them 0.99 against 0.73
    /// (RNN-RNADE) and 1 against 0 (i.i.d. frames: the continuation copied the prefix).
    /// </summary>
    [Theory]
    [MemberData(nameof(SequenceModelCases.Names), MemberType = typeof(SequenceModelCases))]
    public void ContinuingADrawWithItsOwnSeedDrawsFreshNoise(string name)
    {
        const int n = 20_000;
        var m = Model(name);
        int d = m.FrameSize;
        var fresh = m.Sample(n, 2, 5);
        var first = m.Sample(n, 1, 5);
        var continued = m.Sample(first, 1, 5);
        Assert.Equal(first.Values.AsSpan(0, n * d).ToArray(), Enumerable.Range(0, n).SelectMany(i => continued.Sequence(i)[..d].ToArray()).ToArray());
        for (int c = 0; c < d; c++)
        {
            double r = Correlation(fresh, c, n), rc = Correlation(continued, c, n);
            Assert.True(Math.Abs(r - rc) <= 0.05, $"{name}: value {c}'s correlation between frames 1 and 2 is {rc:F3} in a draw continued with its own seed, {r:F3} in a fresh draw");
        }
    }

    /// <summary>Seeds 0 and 2^64 − 1 are ordinary seeds (finite draws that differ from each other and from seed 1, fresh
    /// and continued); no sequences gives an empty batch.</summary>
    [Theory]
    [MemberData(nameof(SequenceModelCases.Names), MemberType = typeof(SequenceModelCases))]
    public void ExtremeSeedsDrawOrdinarySequences(string name)
    {
        var m = Model(name);
        var prefixes = Test(SequenceModelCases.Get(name)).Select(new[] { 0, 1 });
        var fresh = new[] { 0UL, 1UL, ulong.MaxValue }.Select(seed => m.Sample(5, 4, seed).Values).ToArray();
        var continued = new[] { 0UL, 1UL, ulong.MaxValue }.Select(seed => m.Sample(prefixes, 3, seed).Values).ToArray();
        foreach (var v in fresh.Concat(continued)) Assert.All(v, x => Assert.True(float.IsFinite(x)));
        foreach (var set in new[] { fresh, continued })
        {
            Assert.NotEqual(set[0], set[1]);
            Assert.NotEqual(set[0], set[2]);
            Assert.NotEqual(set[1], set[2]);
        }
        var none = m.Sample(0, 4, 1);
        Assert.Equal(0, none.Count);
        Assert.Equal(0, none.TotalFrames);
    }

    /// <summary>The correlation of value <paramref name="c"/> between the first two frames of <paramref name="n"/> two-frame sequences.</summary>
    private static double Correlation(SequenceBatch s, int c, int n)
    {
        double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
        for (int i = 0; i < n; i++) { mx += s.Sequence(i)[c]; my += s.Sequence(i)[s.FrameSize + c]; }
        mx /= n; my /= n;
        for (int i = 0; i < n; i++)
        {
            double x = s.Sequence(i)[c] - mx, y = s.Sequence(i)[s.FrameSize + c] - my;
            sxy += x * y; sxx += x * x; syy += y * y;
        }
        return sxy / Math.Sqrt(sxx * syy);
    }

    [Theory]
    [MemberData(nameof(SequenceModelCases.Names), MemberType = typeof(SequenceModelCases))]
    public void SavesAndLoads(string name)
    {
        var m = Model(name);
        var bytes = m.ToBytes();
        var loaded = SequenceDensityModel.FromBytes(bytes);
        Assert.Equal(m.GetType(), loaded.GetType());
        Assert.Equal(bytes, loaded.ToBytes());
        var data = Test(SequenceModelCases.Get(name));
        Assert.Equal(m.LogDensity(data), loaded.LogDensity(data));
        Assert.Equal(m.Sample(2, 4, 1).Values, loaded.Sample(2, 4, 1).Values);
        Assert.Equal(bytes, SequenceDensityModel.Load(new MemoryStream(bytes)).ToBytes());
        Assert.Throws<InvalidModelFileException>(() => DensityModel.FromBytes(bytes));
        Assert.Throws<InvalidModelFileException>(() => SequenceDensityModel.FromBytes(bytes.AsSpan(0, bytes.Length - 1)));
        var flipped = (byte[])bytes.Clone();
        flipped[^6] ^= 0x40;
        Assert.Throws<InvalidModelFileException>(() => SequenceDensityModel.FromBytes(flipped));
    }
}
