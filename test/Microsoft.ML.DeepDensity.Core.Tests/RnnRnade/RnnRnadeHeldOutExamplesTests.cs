using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.RnnRnade;

/// <summary><see cref="RnnRnadeModel.HeldOutExamples"/> names the examples a Fit without validation sequences held out
/// (the ML.NET estimators learn the anomaly thresholds on them) and is Fit's split itself: training on the rest with
/// them as the validation sequences gives the same model, bit for bit.</summary>
public class RnnRnadeHeldOutExamplesTests
{
    private static RnnRnadeOptions Options(int window) => new()
    {
        HiddenUnits = 6, Components = 2, RecurrentUnits = 5, MaxEpochs = 3, BatchSize = 8, SequencesPerBlock = 3, TrainingWindow = window, Seed = 7,
    };

    private static SequenceBatch Sequences(int count, int length)
    {
        var rng = new RandomStream(3);
        var sequences = new List<float[]>();
        for (int s = 0; s < count; s++)
        {
            var x = new float[length * 2];
            double a = rng.NextGaussian();
            for (int t = 0; t < length; t++) { a = 0.8 * a + 0.4 * rng.NextGaussian(); x[2 * t] = (float)a; x[2 * t + 1] = (float)(0.5 * a + 0.2 * rng.NextGaussian()); }
            sequences.Add(x);
        }
        return SequenceBatch.FromSequences(sequences, 2);
    }

    /// <summary>40 sequences: 4 whole sequences held out (the seeded split of the sequences). 3 long sequences, too few to
    /// split: 1 of their 12 training windows held out.</summary>
    [Theory]
    [InlineData(40, 12, 4)]
    [InlineData(3, 256, 1)]
    public void HeldOutExamplesAreFitsSplit(int count, int length, int expectedHeldOut)
    {
        var data = Sequences(count, length);
        var options = Options(64);
        var (examples, heldOut) = RnnRnadeModel.HeldOutExamples(data, options);
        Assert.Equal(expectedHeldOut, heldOut.Length);
        Assert.Equal(TrainingLoop.HeldOutRows(examples.Count, options.ValidationFraction, options.Seed), heldOut);
        Assert.Equal(length > 64, !ReferenceEquals(examples, data)); // windows only when the sequences are too few and longer than the window
        Assert.Same(data.Values, examples.Values);   // the training data's frame numbering
        Assert.Equal(RnnRnadeModel.TrainingExamples(data, options, withValidation: false), examples.Count - heldOut.Length);

        var rest = Enumerable.Range(0, examples.Count).Except(heldOut).ToArray();
        var split = RnnRnadeModel.Fit(examples.Select(rest), Options(64), examples.Select(heldOut));
        Assert.Equal(split.ToBytes(), RnnRnadeModel.Fit(data, Options(64)).ToBytes());
    }

    [Fact]
    public void NothingHeldOutWithoutAFraction()
    {
        var options = Options(64);
        options.ValidationFraction = 0;
        Assert.Empty(RnnRnadeModel.HeldOutExamples(Sequences(40, 12), options).HeldOut);
        Assert.Empty(RnnRnadeModel.HeldOutExamples(Sequences(5, 12), Options(64)).HeldOut);   // 5 short sequences: neither they nor windows split
    }
}
