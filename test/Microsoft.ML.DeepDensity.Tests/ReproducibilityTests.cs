using Microsoft.ML.Data;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// "Same seed, same data → same model, any thread count", through the ML.NET layer, for every row family of the catalog
/// (<see cref="ConcurrencyChecks.SameSeedAndDataGiveTheSameModelEverywhere"/>). These tests set the engine's process-wide
/// thread limit, so they run alone, after the parallel tests.
/// </summary>
[Collection(EngineSettingsCollection.Name)]
public class ReproducibilityTests
{
    /// <summary>The families that can train from a stream (<c>TrainingData = Streamed</c>; NVIL cannot).</summary>
    private static readonly HashSet<string> Streaming = new() { "Rnade", "DeepRnade", "RbmGaussian", "RbmGaussianNarrow", "RbmGaussianLearnedWidth", "DeepGmm", "IwaeGaussian", "IwaeGaussianVae", "RbmBernoulli", "IwaeBernoulli", "IwaeBernoulliAffine" };

    public static TheoryData<string> RealFamilies() => new(ModelFamilyTests.Families.Keys);
    public static TheoryData<string> BinaryFamilies() => new(BinaryModelFamilyTests.Families.Keys);

    [Theory, MemberData(nameof(RealFamilies))]
    public void RealFamilySameSeedAndDataGiveTheSameModelEverywhere(string family)
        => ConcurrencyChecks.SameSeedAndDataGiveTheSameModelEverywhere(family, ModelFamilyTests.Families[family],
            TestData.Blob(300, seed: 2), TestData.Blob(60, seed: 3, outlierEvery: 10), Streaming.Contains(family));

    [Theory, MemberData(nameof(BinaryFamilies))]
    public void BinaryFamilySameSeedAndDataGiveTheSameModelEverywhere(string family)
        => ConcurrencyChecks.SameSeedAndDataGiveTheSameModelEverywhere(family, BinaryModelFamilyTests.Families[family],
            BinaryModelFamilyTests.Bits(300, seed: 2), BinaryModelFamilyTests.Bits(60, seed: 3, outlierEvery: 8), Streaming.Contains(family));
}

/// <summary>Tests that change the engine's process-wide settings (its thread limit) run alone, after the parallel tests.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class EngineSettingsCollection
{
    public const string Name = "Serial: engine settings";
}

/// <summary>The same for RNN-RNADE's two estimators (whole sequences, frame rows).</summary>
[Collection(EngineSettingsCollection.Name)]
public class SequenceReproducibilityTests
{
    [Theory]
    [InlineData("whole sequences")]
    [InlineData("frame rows")]
    public void SameSeedAndDataGiveTheSameModelEverywhere(string kind)
    {
        var sequences = SequenceConcurrencyTests.Sequences(120, 1);
        var test = SequenceConcurrencyTests.Sequences(40, 2);
        (byte[] Model, float Threshold, float[] Scores) Run(MLContext ml, IEstimator<ITransformer> estimator)
        {
            IDataView Data(List<float[]> s) => kind == "frame rows"
                ? ml.Data.LoadFromEnumerable(SequenceConcurrencyTests.Frames(s))
                : ml.Data.LoadFromEnumerable(s.Select(x => new SequenceConcurrencyTests.SequenceRow { Features = x }).ToList());
            var t = estimator.Fit(Data(sequences));
            return (t.GetSequenceDensityModel(ml).ToBytes(), t.GetSequenceAnomalyThreshold(ml), t.Transform(Data(test)).GetColumn<float>("LogDensity").ToArray());
        }
        IEstimator<ITransformer> Make(MLContext ml) => kind == "frame rows" ? SequenceConcurrencyTests.FrameRows(ml) : SequenceConcurrencyTests.WholeSequences(ml);
        void Same(string what, (byte[] Model, float Threshold, float[] Scores) expected, (byte[] Model, float Threshold, float[] Scores) actual)
        {
            Assert.True(expected.Model.AsSpan().SequenceEqual(actual.Model), $"{kind}, {what}: the model bytes differ");
            Assert.True(expected.Threshold.Equals(actual.Threshold), $"{kind}, {what}: threshold {actual.Threshold} vs {expected.Threshold}");
            Assert.Equal(expected.Scores, actual.Scores);
        }
        var ml = new MLContext(seed: 1);
        var estimator = Make(ml);
        var reference = Run(ml, estimator);
        Same("the same estimator object fitted a second time", reference, Run(ml, estimator));
        var unseeded = new MLContext();
        Same("new MLContext() (no seed)", reference, Run(unseeded, Make(unseeded)));
        foreach (int threads in new[] { 1, 2 })
        {
            DeepDensityEnvironment.MaxDegreeOfParallelism = threads;
            try { Same($"engine on {threads} thread(s)", reference, Run(ml, Make(ml))); }
            finally { DeepDensityEnvironment.MaxDegreeOfParallelism = -1; }
        }
        var results = new (byte[], float, float[])[3];
        var other = new MLContext(seed: 7);
        var otherEstimator = Make(other);
        ConcurrencyChecks.RunTogether(kind + " concurrent fits", i => results[i] = i < 2 ? Run(ml, estimator) : Run(other, otherEstimator), 3);
        for (int i = 0; i < 3; i++) Same($"fit {i} of three at once", reference, results[i]);
    }
}
