using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Persistence;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>
/// <c>SequenceDensityModel.LogDensity(sequences, logDensity, standardError, cancellationToken)</c>: scoring millions of
/// frames can be cancelled. It scores whole sequences in groups of up to
/// <see cref="SequenceDensityModel.FramesPerCancellationCheck"/> frames, checking the token between them, through the
/// same protected <c>LogDensityCore</c> every sequence model already implements.
/// </summary>
public class SequenceCancellableScoringChecks
{
    /// <summary>Every sequence model gives bit for bit the scores (whole sequences and frames) of the one-call form with a
    /// live token, over several groups (one of them a single sequence longer than a group); an already-cancelled token
    /// throws before any work.</summary>
    [Theory, MemberData(nameof(SequenceModelCases.Names), MemberType = typeof(SequenceModelCases))]
    public void ScoresAreThoseOfOneCall_AndACancelledTokenStopsBeforeAnyWork(string name)
    {
        var c = SequenceModelCases.Get(name);
        var model = c.FitStandard();
        var data = c.MakeData(30_000, 77);
        var sequences = new List<float[]>();
        for (int i = 0; i < data.Count; i++) sequences.Add(data.Sequence(i).ToArray());
        // One sequence longer than a group, from repeated frames of the data.
        var longOne = new float[(SequenceDensityModel.FramesPerCancellationCheck + 3) * data.FrameSize];
        for (int j = 0; j < longOne.Length; j++) longOne[j] = data.Values[j % (data.TotalFrames * data.FrameSize)];
        sequences.Insert(sequences.Count / 2, longOne);
        var batch = SequenceBatch.FromSequences(sequences, data.FrameSize);
        Assert.True(batch.TotalFrames > 2 * SequenceDensityModel.FramesPerCancellationCheck);
        float[] ld1 = new float[batch.Count], se1 = new float[batch.Count], ld2 = new float[batch.Count], se2 = new float[batch.Count];
        model.LogDensity(batch, ld1, se1);
        using var cts = new CancellationTokenSource();
        model.LogDensity(batch, ld2, se2, cts.Token);
        ConformanceAssert.BitIdentical(ld1, ld2, name + " log-densities with a live token");
        ConformanceAssert.BitIdentical(se1, se2, name + " standard errors with a live token");
        Assert.Equal(ld1, model.LogDensity(batch, cts.Token));
        float[] frames1 = new float[batch.TotalFrames], frames2 = new float[batch.TotalFrames];
        model.FrameLogDensity(batch, frames1);
        model.FrameLogDensity(batch, frames2, cts.Token);
        ConformanceAssert.BitIdentical(frames1, frames2, name + " frame log-densities with a live token");
        Assert.ThrowsAny<OperationCanceledException>(() => model.FrameLogDensity(batch, frames2, new CancellationToken(true)));
        Assert.ThrowsAny<OperationCanceledException>(() => model.LogDensity(batch, ld2, default, new CancellationToken(true)));
    }

    /// <summary>A sequence model written outside the library (only the protected contract) gets the cancellable form:
    /// cancelled while its first group is scored, the call stops before the second.</summary>
    [Fact]
    public void AnOutsideModelIsCancelledBetweenGroups()
    {
        using var cts = new CancellationTokenSource();
        var model = new CountingModel(cts);
        var batch = SequenceBatch.FromSequences(Enumerable.Range(0, 5).Select(_ => new float[SequenceDensityModel.FramesPerCancellationCheck]).ToList(), 1);
        Assert.ThrowsAny<OperationCanceledException>(() => model.LogDensity(batch, new float[5], default, cts.Token));
        Assert.Equal(1, model.Calls);
    }

    /// <summary>Log-density 0 for every frame; cancels its token when first asked to score.</summary>
    private sealed class CountingModel(CancellationTokenSource cts) : SequenceDensityModel
    {
        public int Calls;
        public override string ModelKind => "TestCountingSequenceModel";
        public override int FrameSize => 1;
        public override InputDomain InputDomain => InputDomain.Real;
        public override DensityKind DensityKind => DensityKind.Exact;

        protected override void FrameLogDensityCore(SequenceBatch sequences, Span<float> frameLogDensity)
        {
            Calls++;
            frameLogDensity.Clear();
            cts.Cancel();
        }

        protected override void SampleCore(SequenceBatch? prefixes, SequenceBatch destination, int newFrames, ulong seed) { }
        protected internal override void WritePayload(ModelWriter writer) { }
    }
}
