using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Tests.RnnRnade;

public class RnnRnadeModelTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>
    /// A stationary 2-dimensional VAR(2) process x_t = A₁x_{t−1} + A₂x_{t−2} + ε_t (burnt in), cut into sequences.
    /// Strong lag-1 and negative lag-2 dependence: an i.i.d. model cannot see it.
    /// </summary>
    internal static SequenceBatch VarSequences(int count, int length, ulong seed)
    {
        var rng = new RandomStream(seed);
        var values = new float[count * length * 2];
        var offsets = new int[count + 1];
        for (int s = 0; s < count; s++)
        {
            offsets[s + 1] = offsets[s] + length;
            double a0 = 0, a1 = 0, b0 = 0, b1 = 0; // x_{t−1} = (a0, a1), x_{t−2} = (b0, b1)
            for (int t = -50; t < length; t++)
            {
                double x0 = 1.2 * a0 - 0.5 * b0 + 0.3 * a1 + 0.5 * rng.NextGaussian();
                double x1 = 0.6 * a1 - 0.4 * a0 + 0.5 * rng.NextGaussian();
                b0 = a0; b1 = a1; a0 = x0; a1 = x1;
                if (t >= 0) { values[(s * length + t) * 2] = (float)x0; values[(s * length + t) * 2 + 1] = (float)x1; }
            }
        }
        return new SequenceBatch(values, offsets, 2);
    }

    /// <summary>Pooled lag-k autocorrelation of component c over all sequences (each of length <paramref name="length"/>).</summary>
    private static double Autocorrelation(float[] values, int count, int length, int c, int lag)
    {
        double mean = 0, var = 0, cov = 0; int n = count * length;
        for (int i = 0; i < n; i++) mean += values[i * 2 + c];
        mean /= n;
        for (int i = 0; i < n; i++) var += Math.Pow(values[i * 2 + c] - mean, 2);
        int pairs = 0;
        for (int s = 0; s < count; s++)
            for (int t = lag; t < length; t++, pairs++)
                cov += (values[(s * length + t) * 2 + c] - mean) * (values[(s * length + t - lag) * 2 + c] - mean);
        return cov / pairs / (var / n);
    }

    private static RnnRnadeOptions SmallOptions() => new()
    {
        HiddenUnits = 12, Components = 2, RecurrentUnits = 16, MaxEpochs = 60, BatchSize = 16, LearningRate = 1e-2f,
        EarlyStoppingPatience = 8, Seed = 3,
    };

    [Fact]
    public void LearnsAVectorArProcessAndItsSamplesKeepItsAutocorrelation()
    {
        const int length = 24;
        var train = VarSequences(160, length, 1);
        var test = VarSequences(80, length, 2);
        var model = RnnRnadeModel.Fit(train, SmallOptions());
        var frames = new float[test.TotalFrames];
        model.FrameLogDensity(test, frames);
        double rnnPerFrame = frames.Average(v => (double)v);

        var iid = RnadeModel.Fit(new RowMatrix(train.Values, train.TotalFrames, 2),
            new RnadeOptions { HiddenUnits = 12, Components = 2, MaxEpochs = 60, LearningRate = 1e-2f, Seed = 3 });
        double iidPerFrame = iid.AverageLogDensity(new RowMatrix(test.Values, test.TotalFrames, 2));
        // The innovations are much narrower than the marginals (~1.5 nats per frame seen): a clear margin, not round-off.
        output.WriteLine($"per frame: RNN-RNADE {rnnPerFrame:F3}, i.i.d. RNADE {iidPerFrame:F3}; epochs {model.TrainingSummary!.EpochsRun}");
        Assert.True(rnnPerFrame > iidPerFrame + 0.8, $"RNN-RNADE {rnnPerFrame:F3} vs i.i.d. RNADE {iidPerFrame:F3} per frame");

        // Fresh sequences: the training sequences start in the stationary regime, so the learnt start state h0 must too.
        const int count = 400;
        var fresh = model.Sample(count, length, seed: 11).Values;
        for (int c = 0; c < 2; c++)
            for (int lag = 1; lag <= 2; lag++)
            {
                double truth = Autocorrelation(test.Values, test.Count, length, c, lag);
                double generated = Autocorrelation(fresh, count, length, c, lag);
                output.WriteLine($"component {c} lag {lag}: data {truth:F3}, generated {generated:F3}");
                Assert.True(Math.Abs(truth - generated) < 0.1, $"component {c} lag {lag}: data {truth:F3}, generated {generated:F3}");
            }
    }

    [Fact]
    public void PredictiveDensityIsTheLastFrameConditionalAndSamplingIsSeeded()
    {
        var data = VarSequences(24, 10, 4);
        var o = SmallOptions(); o.MaxEpochs = 2;
        var model = RnnRnadeModel.Fit(data, o);
        var frames = new float[data.TotalFrames];
        model.FrameLogDensity(data, frames);
        // Prefix = first 6 frames of each sequence, candidate = frame 7.
        var prefixValues = new List<float>(); var next = new List<float>(); var offsets = new List<int> { 0 };
        for (int i = 0; i < data.Count; i++)
        {
            prefixValues.AddRange(data.Sequence(i)[..12].ToArray());
            next.AddRange(data.Sequence(i).Slice(12, 2).ToArray());
            offsets.Add(offsets[^1] + 6);
        }
        var prefixes = new SequenceBatch(prefixValues.ToArray(), offsets.ToArray(), 2);
        var pred = new float[data.Count];
        model.PredictiveLogDensity(prefixes, next.ToArray(), pred);
        for (int i = 0; i < data.Count; i++) Assert.Equal(frames[data.Offsets[i] + 6], pred[i], 4);

        var stream = model.StartStream();
        for (int t = 0; t < data.Length(3); t++)
        {
            var frame = data.Sequence(3).Slice(t * 2, 2);
            Assert.Equal(frames[data.Offsets[3] + t], stream.Predict(frame), 4);
            Assert.Equal(frames[data.Offsets[3] + t], stream.Append(frame), 4);
        }

        var a = model.Sample(5, 7, 9);
        var b = model.Sample(40, 7, 9);
        Assert.Equal(a.AsSpan().ToArray(), b.AsSpan()[..(5 * 7 * 2)].ToArray());   // sequence i depends only on (seed, i)
        var c1 = model.Sample(prefixes, 3, 9);
        Assert.Equal(c1.AsSpan().ToArray(), model.Sample(prefixes, 3, 9).AsSpan().ToArray());
        for (int i = 0; i < prefixes.Count; i++)
        {
            Assert.Equal(9, c1.Length(i));
            Assert.Equal(prefixes.Sequence(i).ToArray(), c1.Sequence(i)[..12].ToArray());   // the prefix, then 3 new frames
        }
        // A continuation depends on its prefix: the first new frame differs from a fresh sequence's first frame.
        Assert.NotEqual(c1.Sequence(0).Slice(12, 2).ToArray(), b.Sequence(0)[..2].ToArray());
    }
}
