using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Models.Nvil;
using Microsoft.ML.DeepDensity.Models.Rbm;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>A binary feature row (12 bits).</summary>
public sealed class BitRow
{
    public const int D = 12;
    [VectorType(D)] public float[] Features { get; set; } = new float[D];
    public float Label { get; set; }
}

/// <summary>
/// The ML.NET essentials for the binary-input families (Bernoulli RBM, Bernoulli IWAE, NVIL): fit through the catalog, values
/// equal the engine model's, save → load in a fresh context, AnomalyDetection.Evaluate, and the binary-input errors
/// (a value other than 0/1, NaN) reported with the row and column through the pipeline.
/// </summary>
public class BinaryModelFamilyTests
{
    internal static readonly Dictionary<string, PipelineChecks.Family> Families = new()
    {
        ["RbmBernoulli"] = (ml, configure) => ml.DensityEstimation.Rbm(PipelineChecks.With(configure, new Transforms.RbmEstimator.Options
        {
            ModelOptions = new RbmOptions { HiddenUnits = 6, MaxEpochs = 30, LearningRate = 0.1f, SamplingBurnIn = 20, SamplingChains = 4, Seed = 7 },
        })),
        ["IwaeBernoulli"] = (ml, configure) => ml.DensityEstimation.Iwae(PipelineChecks.With(configure, new Transforms.IwaeEstimator.Options
        {
            ModelOptions = new IwaeOptions
            {
                Likelihood = IwaeLikelihood.Bernoulli, LatentDimensions = new[] { 2 }, HiddenUnits = new[] { 16 }, Samples = 5,
                EvaluationSamples = 100, MaxEpochs = 40, BatchSize = 50, LearningRate = 1e-2f, Seed = 7,
            },
        })),
        // Variant: the IWAE with no deterministic hidden layer (affine encoder and decoder heads).
        ["IwaeBernoulliAffine"] = (ml, configure) => ml.DensityEstimation.Iwae(PipelineChecks.With(configure, new Transforms.IwaeEstimator.Options
        {
            ModelOptions = new IwaeOptions
            {
                Likelihood = IwaeLikelihood.Bernoulli, LatentDimensions = new[] { 2 }, HiddenUnits = Array.Empty<int>(), Samples = 5,
                EvaluationSamples = 100, MaxEpochs = 40, BatchSize = 50, LearningRate = 1e-2f, Seed = 7,
            },
        })),
        ["Nvil"] = (ml, configure) => ml.DensityEstimation.Nvil(PipelineChecks.With(configure, new Transforms.NvilEstimator.Options
        {
            ModelOptions = new NvilOptions
            {
                LatentDimensions = new[] { 4 }, BaselineHiddenUnits = 10, EvaluationSamples = 100, MaxEpochs = 40, BatchSize = 50,
                LearningRate = 1e-2f, Seed = 7,
            },
        })),
    };

    public static TheoryData<string> Names() => new(Families.Keys);

    /// <summary>Two prototype bit patterns with 5% flipped bits; every <paramref name="outlierEvery"/>-th row is uniform random bits (label 1).</summary>
    internal static List<BitRow> Bits(int n, int seed, int outlierEvery = 0)
    {
        var rnd = new Random(seed);
        var prototypes = new[] { new[] { 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0 }, new[] { 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0 } };
        var rows = new List<BitRow>(n);
        for (int i = 0; i < n; i++)
        {
            bool outlier = outlierEvery > 0 && i % outlierEvery == 0;
            var p = prototypes[rnd.Next(2)];
            var x = new float[BitRow.D];
            for (int j = 0; j < x.Length; j++)
                x[j] = outlier ? rnd.Next(2) : (rnd.NextDouble() < 0.05 ? 1 - p[j] : p[j]);
            rows.Add(new BitRow { Features = x, Label = outlier ? 1f : 0f });
        }
        return rows;
    }

    /// <summary>A column named like the saved chain's internal columns (<c>__dd_*</c>) is refused everywhere, not lost.</summary>
    [Theory, MemberData(nameof(Names))]
    public void ReservedColumnNamesAreRefused(string family)
    {
        var ml = new MLContext(seed: 1);
        ReservedColumnTests.RowFamily(ml, Families[family], ml.Data.LoadFromEnumerable(Bits(300, seed: 2)), Bits(10, seed: 3).Select(r => r.Features).ToList());
    }

    [Theory, MemberData(nameof(Names))]
    public void FitScoreSaveLoadEvaluate(string family)
    {
        var ml = new MLContext(seed: 1);
        var estimator = Families[family](ml, null);
        FamilyChecks.FitScoreSaveLoadEvaluate(ml, family, estimator, ml.Data.LoadFromEnumerable(Bits(600, seed: 2)),
            Bits(400, seed: 3, outlierEvery: 8), r => r.Features);
        Assert.Equal(InputDomain.Binary, estimator.Fit(ml.Data.LoadFromEnumerable(Bits(100, seed: 2))).GetDensityModel().InputDomain);
    }

    [Theory, MemberData(nameof(Names))]
    public void LoadedScorerAllocatesNothingPerRow(string family)
    {
        var ml = new MLContext(seed: 1);
        FamilyChecks.LoadedScorerAllocatesNothingPerRow(ml, Families[family](ml, null), ml.Data.LoadFromEnumerable(Bits(300, seed: 2)),
            Bits(64, seed: 4).Select(r => r.Features).ToList());
    }

    /// <summary>GetOutputSchema(SchemaShape) matches the transformer's schema, and every load gives the live schema (column
    /// order included: an output named like an input column came back from the plain Model.Load elsewhere than live).</summary>
    [Theory, MemberData(nameof(Names))]
    public void SchemasAgreeLiveAndLoaded(string family)
        => PipelineChecks.SchemasAgree(family, Families[family], Bits(300, seed: 2), Bits(40, seed: 3, outlierEvery: 8));

    [Theory, MemberData(nameof(Names))]
    public void ScoringFromSeveralThreadsEqualsOneThread(string family)
    {
        var ml = new MLContext(seed: 1);
        ConcurrencyChecks.ScoringFromSeveralThreadsEqualsOneThread(family, Families[family](ml, ConcurrencyChecks.AllColumns),
            ml.Data.LoadFromEnumerable(Bits(300, seed: 2)), Bits(150, seed: 3, outlierEvery: 8));
    }

    [Theory, MemberData(nameof(Names))]
    public void PipelinesReadLikeMLNetsOwnTransforms(string family)
        => PipelineChecks.Run(family, Families[family], Bits(300, seed: 2), Bits(90, seed: 3, outlierEvery: 8), r => r.Features);

    [Theory, MemberData(nameof(Names))]
    public void NonBinaryValuesAndNaNAreReportedWithRowAndColumn(string family)
    {
        var ml = new MLContext(seed: 1);
        var estimator = Families[family](ml, null);

        // In training data: Fit names the row and column.
        var badTrain = Bits(50, seed: 4);
        badTrain[31].Features[7] = 0.5f;
        var fitError = Assert.Throws<Data.DataValidationException>(() => estimator.Fit(ml.Data.LoadFromEnumerable(badTrain)));
        Assert.Equal((31L, 7), (fitError.Row, fitError.Column));
        // ... in the ML.NET user's terms: the feature column by name, the data set, and what to do.
        Assert.Equal("Features", fitError.DataSource);
        Assert.Contains("in the training data", fitError.Message);
        Assert.Contains("binarise the column first", fitError.Message);
        string? remedy = family switch
        {
            "RbmBernoulli" => "VisibleType = RbmVisibleType.Gaussian",
            "IwaeBernoulli" or "IwaeBernoulliAffine" => "Likelihood = IwaeLikelihood.Gaussian",
            _ => null, // NVIL has no real-valued variant
        };
        if (remedy is not null) Assert.Contains(remedy, fitError.Message);
        else Assert.DoesNotContain("real-valued", fitError.Message);

        var transformer = estimator.Fit(ml.Data.LoadFromEnumerable(Bits(200, seed: 2)));
        foreach (float bad in new[] { 2f, -1f, 0.5f, float.NaN })
        {
            var rows = Bits(20, seed: 5);
            rows[13].Features[2] = bad;
            var scored = transformer.Transform(ml.Data.LoadFromEnumerable(rows));
            var e = Assert.Throws<Data.DataValidationException>(() => scored.GetColumn<float>("LogDensity").ToArray());
            Assert.Equal((13L, 2), (e.Row, e.Column));
        }
    }

    [Fact]
    public void NvilSimpleOverloadUsesTheCatalogDefaults()
    {
        var ml = new MLContext(seed: 1);
        var model = ml.DensityEstimation.Nvil(latentDimensions: new[] { 3 }, maxEpochs: 2, seed: 5)
            .Fit(ml.Data.LoadFromEnumerable(Bits(100, seed: 2))).GetDensityModel();
        var nvil = Assert.IsType<NvilModel>(model);
        Assert.Equal(100, nvil.EvaluationSamples);
        Assert.Equal(new[] { 3 }, nvil.LatentDimensions);
    }
}
