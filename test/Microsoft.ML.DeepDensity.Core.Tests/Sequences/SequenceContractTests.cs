using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Tests.Conformance;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.Sequences;

public class SequenceContractTests
{
    /// <summary>Sequences of 2-float frames with lengths 1..9 around mean (1, −3) with standard deviations (0.5, 2).</summary>
    internal static SequenceBatch Data(int count, ulong seed)
    {
        var rng = new RandomStream(seed);
        var seqs = new List<float[]>();
        for (int i = 0; i < count; i++)
        {
            var s = new float[(1 + rng.NextInt(9)) * 2];
            for (int t = 0; t < s.Length; t += 2)
            {
                s[t] = 1f + 0.5f * (float)rng.NextGaussian();
                s[t + 1] = -3f + 2f * (float)rng.NextGaussian();
            }
            seqs.Add(s);
        }
        return SequenceBatch.FromSequences(seqs, 2);
    }

    [Fact]
    public void SequenceBatchChecksItsLayout()
    {
        var b = new SequenceBatch(new float[12], new[] { 0, 2, 3, 6 }, 2);
        Assert.Equal(3, b.Count);
        Assert.Equal(6, b.TotalFrames);
        Assert.Equal(new[] { 2, 1, 3 }, new[] { b.Length(0), b.Length(1), b.Length(2) });
        Assert.Equal(6, b.Sequence(2).Length);
        var empty = Assert.Throws<DataValidationException>(() => new SequenceBatch(new float[12], new[] { 0, 2, 2, 6 }, 2));
        Assert.Equal(1, empty.Row);
        Assert.Contains("empty", empty.Message);
        Assert.Throws<ArgumentException>(() => new SequenceBatch(new float[12], new[] { 1, 2 }, 2));
        Assert.Throws<ArgumentException>(() => new SequenceBatch(new float[11], new[] { 0, 6 }, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SequenceBatch(new float[12], new[] { 0, 6 }, 0));
        Assert.Equal(0, new SequenceBatch(Array.Empty<float>(), new[] { 0 }, 3).Count);
        var bad = Assert.Throws<DataValidationException>(() => SequenceBatch.FromSequences(new[] { new float[2], new float[3] }, 2));
        Assert.Equal(1, bad.Row);
        var picked = b.Select(new[] { 2, 0 });
        Assert.Equal(new[] { 0, 3, 5 }, picked.Offsets);
    }

    [Fact]
    public void TrivialModelFitsAndScoresSequencesAsSumsOfFrames()
    {
        var data = Data(300, 1);
        var model = IidGaussianSequenceModel.Fit(data);
        Assert.Equal(2, model.FrameSize);
        Assert.InRange(model.Mean[0], 0.9, 1.1);
        Assert.InRange(model.StandardDeviation[1], 1.8, 2.2);

        var test = Data(20, 2);
        var ld = model.LogDensity(test);
        var frames = new float[test.TotalFrames];
        model.FrameLogDensity(test, frames);
        for (int i = 0; i < test.Count; i++)
        {
            double sum = 0;
            for (int t = test.Offsets[i]; t < test.Offsets[i + 1]; t++) sum += frames[t];
            Assert.Equal(sum, ld[i], 3);
        }
        // A frame's density integrates to 1: log N at the mean is −Σ log(σ√(2π)).
        var atMean = new SequenceBatch(new[] { model.Mean[0], model.Mean[1] }, new[] { 0, 1 }, 2);
        double expected = -Math.Log(model.StandardDeviation[0] * Math.Sqrt(2 * Math.PI)) - Math.Log(model.StandardDeviation[1] * Math.Sqrt(2 * Math.PI));
        Assert.Equal(expected, model.LogDensity(atMean)[0], 4);
        Assert.InRange(model.AverageLogDensity(test), -40, 0);
    }

    [Fact]
    public void BadSequencesAreRejectedWithTheirPlace()
    {
        var model = IidGaussianSequenceModel.Fit(Data(50, 1));
        var wrongSize = SequenceBatch.FromSequences(new[] { new float[3] }, 3);
        Assert.Contains("frame size", Assert.Throws<DataValidationException>(() => model.LogDensity(wrongSize)).Message);
        var values = new float[10];
        values[7] = float.NaN; // sequence 1 (frames 2..4), its frame 1, slot 1
        var e = Assert.Throws<DataValidationException>(() => model.LogDensity(new SequenceBatch(values, new[] { 0, 2, 5 }, 2)));
        Assert.Equal(1, e.Row);
        Assert.Equal(1, e.Column);
        Assert.Contains("frame 1", e.Message);
        Assert.Throws<ArgumentException>(() => model.FrameLogDensity(Data(3, 4), new float[1]));
        Assert.Throws<DataValidationException>(() => IidGaussianSequenceModel.Fit(new SequenceBatch(Array.Empty<float>(), new[] { 0 }, 2)));
    }

    [Fact]
    public void SamplingIsSeededPerSequenceAndContinuesPrefixes()
    {
        var model = IidGaussianSequenceModel.Fit(Data(100, 1));
        var a = model.Sample(5, 4, 9);
        Assert.Equal(5, a.Count);
        Assert.Equal(20, a.TotalFrames);
        Assert.Equal(a.Values, model.Sample(5, 4, 9).Values);
        Assert.Equal(a.Sequence(0).ToArray(), model.Sample(1, 4, 9).Sequence(0).ToArray()); // prefix of a larger draw
        var prefixes = Data(3, 5);
        var continued = model.Sample(prefixes, 2, 9);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(prefixes.Length(i) + 2, continued.Length(i));
            Assert.Equal(prefixes.Sequence(i).ToArray(), continued.Sequence(i)[..prefixes.Sequence(i).Length].ToArray());
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => model.Sample(2, 0, 1));
    }

    [Fact]
    public void SequenceModelsShareTheModelFileAndRegistry()
    {
        var model = IidGaussianSequenceModel.Fit(Data(60, 1));
        var bytes = model.ToBytes();
        Assert.Contains(IidGaussianSequenceModel.Kind, ModelRegistry.Kinds);
        var loaded = Assert.IsType<IidGaussianSequenceModel>(SequenceDensityModel.FromBytes(bytes));
        Assert.Equal(bytes, loaded.ToBytes());
        Assert.IsType<IidGaussianSequenceModel>(DensityModelBase.LoadAny(new MemoryStream(bytes)));
        Assert.Equal(model.LogDensity(Data(5, 3)), SequenceDensityModel.Load(new MemoryStream(bytes)).LogDensity(Data(5, 3)));
        // Each family's loader names the other when handed the wrong kind of model.
        Assert.Contains("sequence model", Assert.Throws<InvalidModelFileException>(() => DensityModel.FromBytes(bytes)).Message);
        var row = ModelCases.Fitted("Rnade").Model.ToBytes();
        Assert.Contains("row model", Assert.Throws<InvalidModelFileException>(() => SequenceDensityModel.FromBytes(row)).Message);
        Assert.Throws<InvalidModelFileException>(() => SequenceDensityModel.FromBytes(bytes.AsSpan(0, bytes.Length - 3)));
    }

    /// <summary>A batch of wide rows is gathered in parts on the worker team: the same rows in the same order as a
    /// plain copy, at one thread and at two.</summary>
    [Fact]
    public void ALargeBatchOfRowsIsGatheredInOrderAtAnyThreadCount()
    {
        const int d = 784;
        var rows = new RowMatrix(Enumerable.Range(0, 500 * d).Select(i => (float)i).ToArray(), 500, d);
        var indices = Enumerable.Range(0, 101).Select(i => (i * 37 + 11) % 500).ToArray();
        Assert.True((long)indices.Length * d >= TrainingData.ParallelGatherValues);
        var expected = indices.SelectMany(r => rows.Row(r).ToArray()).ToArray();
        int saved = DeepDensityEnvironment.MaxDegreeOfParallelism;
        try
        {
            foreach (int threads in new[] { 1, 2 })
            {
                DeepDensityEnvironment.MaxDegreeOfParallelism = threads;
                var batch = new TrainingBatch();
                TrainingData.From(rows).CopyBatch(indices, batch);
                Assert.Equal(expected, batch.Rows.ToArray());
            }
        }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = saved; }
    }

    [Fact]
    public void TrainingDataCopiesBatchesOfRowsAndSequences()
    {
        var rows = new RowMatrix(new float[] { 0, 1, 2, 3, 4, 5 }, 3, 2);
        var batch = new TrainingBatch();
        var source = TrainingData.From(rows);
        Assert.Equal(3, source.Count);
        source.CopyBatch(new[] { 2, 0 }, batch);
        Assert.Equal(new float[] { 4, 5, 0, 1 }, batch.Rows.ToArray());
        Assert.Null(batch.Sequences);
        Assert.Equal(1, source.Select(new[] { 1 }).Count);

        var seqs = new SequenceBatch(new float[] { 1, 2, 3, 4, 5, 6 }, new[] { 0, 1, 3, 6 }, 1);
        var seqSource = TrainingData.From(seqs);
        seqSource.CopyBatch(new[] { 2, 0 }, batch);
        Assert.Equal(2, batch.Count);
        Assert.Equal(new[] { 0, 3, 4 }, batch.Sequences!.Offsets);
        Assert.Equal(new float[] { 4, 5, 6, 1 }, batch.Sequences.AsSpan().ToArray());
        Assert.Equal(2, seqSource.Select(new[] { 0, 1 }).Count);
    }
}
