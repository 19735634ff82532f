using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Persistence;

namespace Microsoft.ML.DeepDensity.Tests.RnnRnade;

/// <summary>The sequence-contract checks on RNN-RNADE (until the conformance suite's sequence cases cover it).</summary>
public class RnnRnadeContractTests
{
    private static readonly Lazy<(RnnRnadeModel Model, SequenceBatch Data)> Fitted = new(() =>
    {
        var data = RnnRnadeModelTests.VarSequences(30, 8, 21);
        return (RnnRnadeModel.Fit(data, Options()), data);
    });

    private static RnnRnadeOptions Options() => new() { HiddenUnits = 6, Components = 2, RecurrentUnits = 5, MaxEpochs = 3, BatchSize = 8, SequencesPerBlock = 3 };

    [Fact]
    public void SameSeedGivesTheSameModelBytesAtAnyThreadCount()
    {
        var data = RnnRnadeModelTests.VarSequences(30, 8, 21);
        byte[] Fit(int threads)
        {
            var saved = DeepDensityEnvironment.MaxDegreeOfParallelism;
            DeepDensityEnvironment.MaxDegreeOfParallelism = threads;
            try { return RnnRnadeModel.Fit(data, Options()).ToBytes(); }
            finally { DeepDensityEnvironment.MaxDegreeOfParallelism = saved; }
        }
        Assert.Equal(Fit(1), Fit(2));
    }

    [Fact]
    public void SaveLoadGivesIdenticalScoresAndSamples()
    {
        var (model, data) = Fitted.Value;
        var loaded = Assert.IsType<RnnRnadeModel>(SequenceDensityModel.FromBytes(model.ToBytes()));
        Assert.Equal(model.LogDensity(data), loaded.LogDensity(data));
        Assert.Equal(model.Sample(4, 6, 3).Values, loaded.Sample(4, 6, 3).Values);
        Assert.Equal(model.ToBytes(), loaded.ToBytes());
        Assert.Throws<InvalidModelFileException>(() => DensityModel.FromBytes(model.ToBytes()));   // not a row model
    }

    [Fact]
    public void LengthOneAndVeryLongSequencesScoreFiniteAndConsistently()
    {
        var (model, _) = Fitted.Value;
        var one = SequenceBatch.FromSequences(new[] { new[] { 0.3f, -0.2f } }, 2);
        var ld = model.LogDensity(one);
        var frames = new float[1];
        model.FrameLogDensity(one, frames);
        Assert.True(float.IsFinite(ld[0]));
        Assert.Equal(frames[0], ld[0]);

        var longSeq = RnnRnadeModelTests.VarSequences(1, 5000, 4);
        var all = new float[longSeq.TotalFrames];
        model.FrameLogDensity(longSeq, all);
        Assert.All(all, v => Assert.True(float.IsFinite(v)));
        // A frame's conditional depends only on its past: the long sequence's first 8 frames score as an 8-frame prefix.
        var prefix = new SequenceBatch(longSeq.Values[..16], new[] { 0, 8 }, 2);
        var head = new float[8];
        model.FrameLogDensity(prefix, head);
        Assert.Equal(head, all[..8]);
    }

    /// <summary>
    /// A frame so far from the data that its density underflows scores −∞, never NaN, in every scoring call, as the
    /// batched LogDensity and FrameLogDensity already did: the online stream's Predict and Append and the one-step-ahead
    /// PredictiveLogDensity returned NaN for a frame of 1e30 (∞ − ∞ in the mixture), which an anomaly threshold compares
    /// as neither above nor below.
    /// </summary>
    [Fact]
    public void AFarOutFrameScoresMinusInfinityInEveryCallNeverNaN()
    {
        var (model, data) = Fitted.Value;
        float[] far = { 1e30f, 0f };
        var batched = model.LogDensity(SequenceBatch.FromSequences(new[] { far }, 2));
        Assert.Equal(float.NegativeInfinity, batched[0]);
        var stream = model.StartStream();
        Assert.Equal(float.NegativeInfinity, stream.Predict(far));
        Assert.Equal(float.NegativeInfinity, stream.Append(far));
        Assert.True(float.IsFinite(stream.Predict(new[] { 0.3f, -0.2f })));   // the state stays usable
        var predictive = new float[data.Count];
        var nextFrames = new float[data.Count * 2];
        for (int i = 0; i < data.Count; i++) nextFrames[2 * i] = i % 2 == 0 ? 1e30f : 0.1f;
        model.PredictiveLogDensity(data, nextFrames, predictive);
        for (int i = 0; i < data.Count; i++)
            Assert.True(i % 2 == 0 ? predictive[i] == float.NegativeInfinity : float.IsFinite(predictive[i]), $"prefix {i}: {predictive[i]}");
    }

    [Fact]
    public void BadInputsAreReportedClearly()
    {
        var (model, data) = Fitted.Value;
        var wrongFrame = SequenceBatch.FromSequences(new[] { new float[6] }, 3);
        Assert.Contains("frame size", Assert.Throws<DataValidationException>(() => model.LogDensity(wrongFrame)).Message);
        var nan = SequenceBatch.FromSequences(new[] { new float[4], new[] { 0f, 1f, float.NaN, 2f } }, 2);
        var e = Assert.Throws<DataValidationException>(() => model.LogDensity(nan));
        Assert.Equal(1, e.Row);
        Assert.ThrowsAny<ArgumentException>(() => new SequenceBatch(new float[4], new[] { 0, 2, 2 }, 2));   // empty sequence
        Assert.Throws<ArgumentException>(() => model.PredictiveLogDensity(data, new float[3], new float[data.Count]));
        Assert.Throws<ArgumentOutOfRangeException>(() => RnnRnadeModel.Fit(data, new RnnRnadeOptions { RecurrentUnits = 0 }));
    }
}
