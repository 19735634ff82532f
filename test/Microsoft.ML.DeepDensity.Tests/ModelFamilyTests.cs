using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Models.Rnade;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// The ML.NET essentials for every model family exposed in the catalog: fit through the catalog, values equal the engine
/// model's, save → load in a fresh context gives the same scores, AnomalyDetection.Evaluate separates a clear case.
/// Adding a family is one entry in <see cref="Families"/>.
/// </summary>
public class ModelFamilyTests
{
    internal static readonly Dictionary<string, PipelineChecks.Family> Families = new()
    {
        ["Rnade"] = (ml, configure) => ml.DensityEstimation.Rnade(PipelineChecks.With(configure, new Transforms.RnadeEstimator.Options
        {
            ModelOptions = new RnadeOptions { HiddenUnits = 12, Components = 3, MaxEpochs = 15, BatchSize = 50, LearningRate = 5e-3f, Seed = 7 },
        })),
        ["DeepRnade"] = (ml, configure) => ml.DensityEstimation.DeepRnade(PipelineChecks.With(configure, new Transforms.DeepRnadeEstimator.Options
        {
            ModelOptions = new DeepRnadeOptions { HiddenUnits = 12, Components = 3, Orderings = 2, MaxEpochs = 15, BatchSize = 50, LearningRate = 5e-3f, Seed = 7 },
        })),
        ["RbmGaussian"] = (ml, configure) => ml.DensityEstimation.Rbm(PipelineChecks.With(configure, new Transforms.RbmEstimator.Options
        {
            ModelOptions = new RbmOptions { HiddenUnits = 8, VisibleType = RbmVisibleType.Gaussian, MaxEpochs = 15, LearningRate = 0.01f, SamplingBurnIn = 20, SamplingChains = 4, Seed = 7 },
        })),
        // Variant: a visible width below 1 (RbmOptions.VisibleStdDev through ModelOptions), kept by the saved model.
        ["RbmGaussianNarrow"] = (ml, configure) => ml.DensityEstimation.Rbm(PipelineChecks.With(configure, new Transforms.RbmEstimator.Options
        {
            ModelOptions = new RbmOptions { HiddenUnits = 8, VisibleType = RbmVisibleType.Gaussian, VisibleStdDev = 0.5f, MaxEpochs = 15, LearningRate = 0.01f, SamplingBurnIn = 20, SamplingChains = 4, Seed = 7 },
        })),
        // Variant: a learned visible width (VisibleStdDev = 0), folded into the stored map like a fixed one.
        ["RbmGaussianLearnedWidth"] = (ml, configure) => ml.DensityEstimation.Rbm(PipelineChecks.With(configure, new Transforms.RbmEstimator.Options
        {
            ModelOptions = new RbmOptions { HiddenUnits = 8, VisibleType = RbmVisibleType.Gaussian, VisibleStdDev = 0, MaxEpochs = 15, LearningRate = 0.01f, SamplingBurnIn = 20, SamplingChains = 4, Seed = 7 },
        })),
        ["DeepGmm"] = (ml, configure) => ml.DensityEstimation.DeepGmm(PipelineChecks.With(configure, new Transforms.DeepGmmEstimator.Options
        {
            ModelOptions = new DeepGmmOptions { Layers = new[] { 2, 2 }, MaxIterations = 10, Seed = 7 },
        })),
        ["IwaeGaussian"] = (ml, configure) => ml.DensityEstimation.Iwae(PipelineChecks.With(configure, new Transforms.IwaeEstimator.Options
        {
            ModelOptions = new IwaeOptions
            {
                Likelihood = IwaeLikelihood.Gaussian, LatentDimensions = new[] { 2 }, HiddenUnits = new[] { 16 }, Samples = 5,
                EvaluationSamples = 100, MaxEpochs = 30, BatchSize = 50, LearningRate = 5e-3f, Seed = 7,
            },
        })),
        // Variant: the Gaussian VAE (k = 1, the ELBO), the same network trained by another bound.
        ["IwaeGaussianVae"] = (ml, configure) => ml.DensityEstimation.Iwae(PipelineChecks.With(configure, new Transforms.IwaeEstimator.Options
        {
            ModelOptions = new IwaeOptions
            {
                Likelihood = IwaeLikelihood.Gaussian, LatentDimensions = new[] { 2 }, HiddenUnits = new[] { 16 }, Samples = 1,
                EvaluationSamples = 100, MaxEpochs = 30, BatchSize = 50, LearningRate = 5e-3f, Seed = 7,
            },
        })),
    };

    public static TheoryData<string> Names() => new(Families.Keys);

    [Theory, MemberData(nameof(Names))]
    public void FitScoreSaveLoadEvaluate(string family)
    {
        var ml = new MLContext(seed: 1);
        FamilyChecks.FitScoreSaveLoadEvaluate(ml, family, Families[family](ml, null), ml.Data.LoadFromEnumerable(TestData.Blob(800, seed: 2)),
            TestData.Blob(600, seed: 3, outlierEvery: 10), r => r.Features);
    }

    /// <summary>Issue 13 (7): a Fit whose token is cancelled when training reports its last epoch (one epoch here, so the
    /// first report is the last) throws <see cref="OperationCanceledException"/> instead of returning a model: scoring the
    /// training rows for the threshold observes the token.</summary>
    [Theory, MemberData(nameof(Names))]
    public void FitCancelledAfterTheLastEpochReturnsNoModel(string family)
    {
        var ml = new MLContext(seed: 1);
        using var cts = new CancellationTokenSource();
        int reports = 0;
        var estimator = Families[family](ml, o =>
        {
            var modelOptions = o.GetType().GetProperty("ModelOptions")!.GetValue(o)!;
            foreach (var name in new[] { "MaxEpochs", "MaxIterations" })
                modelOptions.GetType().GetProperty(name)?.SetValue(modelOptions, 1);
            modelOptions.GetType().GetProperty("Initialization")?.SetValue(modelOptions, DeepGmmInitialization.Greedy); // no pretraining reports
            o.CancellationToken = cts.Token;
            o.Progress = new SynchronousProgress(_ => { reports++; cts.Cancel(); });
        });
        Assert.ThrowsAny<OperationCanceledException>(() => estimator.Fit(ml.Data.LoadFromEnumerable(TestData.Blob(300, seed: 2))));
        Assert.Equal(1, reports);
    }

    /// <summary>A Fit cancelled while it copies (or, streamed, first passes over) the training data stops reading it: the
    /// token was observed only by training, so Fit read every row of the view (here 100,000 rows; a large view through
    /// its upstream stages reads for as long as an epoch takes) before it threw; and a Fit whose token is already
    /// cancelled reads no row.</summary>
    [Theory, MemberData(nameof(Names))]
    public void FitCancelledWhileReadingTheDataStopsReading(string family)
    {
        foreach (var mode in new[] { Transforms.DensityTrainingData.InMemory, Transforms.DensityTrainingData.Streamed })
        {
            var ml = new MLContext(seed: 1);
            using var cts = new CancellationTokenSource();
            int read = 0, cancelAt = 500;
            var rows = TestData.Blob(1000, seed: 2);
            IEnumerable<Row> Source()
            {
                for (int i = 0; i < 100_000; i++)
                {
                    if (++read == cancelAt) cts.Cancel();
                    yield return rows[i % rows.Count];
                }
            }
            var estimator = Families[family](ml, o => { o.CancellationToken = cts.Token; o.TrainingData = mode; });
            Assert.ThrowsAny<OperationCanceledException>(() => estimator.Fit(ml.Data.LoadFromEnumerable(Source())));
            Assert.True(read <= cancelAt + 2 * 1024, $"{family} {mode}: {read} rows read after the token was cancelled at row {cancelAt}");

            read = 0;
            cancelAt = -1;
            Assert.ThrowsAny<OperationCanceledException>(() => estimator.Fit(ml.Data.LoadFromEnumerable(Source())));
            Assert.True(read == 0, $"{family} {mode}: a Fit whose token was already cancelled read {read} rows");
        }
    }

    private sealed class SynchronousProgress(Action<Training.TrainingProgress> report) : IProgress<Training.TrainingProgress>
    {
        public void Report(Training.TrainingProgress value) => report(value);
    }

    [Theory, MemberData(nameof(Names))]
    public void LoadedScorerAllocatesNothingPerRow(string family)
    {
        var ml = new MLContext(seed: 1);
        FamilyChecks.LoadedScorerAllocatesNothingPerRow(ml, Families[family](ml, null), ml.Data.LoadFromEnumerable(TestData.Blob(300, seed: 2)),
            TestData.Blob(64, seed: 4).Select(r => r.Features).ToList());
    }

    /// <summary>GetOutputSchema(SchemaShape) matches the transformer's schema, and every load gives the live schema (column
    /// order included: an output named like an input column came back from the plain Model.Load elsewhere than live).</summary>
    [Theory, MemberData(nameof(Names))]
    public void SchemasAgreeLiveAndLoaded(string family)
        => PipelineChecks.SchemasAgree(family, Families[family], TestData.Blob(300, seed: 2), TestData.Blob(40, seed: 3, outlierEvery: 10));

    [Theory, MemberData(nameof(Names))]
    public void ScoringFromSeveralThreadsEqualsOneThread(string family)
    {
        var ml = new MLContext(seed: 1);
        ConcurrencyChecks.ScoringFromSeveralThreadsEqualsOneThread(family, Families[family](ml, ConcurrencyChecks.AllColumns),
            ml.Data.LoadFromEnumerable(TestData.Blob(300, seed: 2)), TestData.Blob(150, seed: 3, outlierEvery: 10));
    }

    [Theory, MemberData(nameof(Names))]
    public void PipelinesReadLikeMLNetsOwnTransforms(string family)
        => PipelineChecks.Run(family, Families[family], TestData.Blob(300, seed: 2), TestData.Blob(90, seed: 3, outlierEvery: 10), r => r.Features);

    /// <summary>A column named like the saved chain's internal columns (<c>__dd_*</c>) is refused everywhere, not lost.</summary>
    [Theory, MemberData(nameof(Names))]
    public void ReservedColumnNamesAreRefused(string family)
    {
        var ml = new MLContext(seed: 1);
        ReservedColumnTests.RowFamily(ml, Families[family], ml.Data.LoadFromEnumerable(TestData.Blob(300, seed: 2)),
            TestData.Blob(10, seed: 3).Select(r => r.Features).ToList());
    }

    [Theory, MemberData(nameof(Names))]
    public void SchemaAndDataErrorsNameTheColumnAndRow(string family)
    {
        var ml = new MLContext(seed: 1);
        var estimator = Families[family](ml, null);
        var transformer = estimator.Fit(ml.Data.LoadFromEnumerable(TestData.Blob(300, seed: 2)));

        var wrongSize = ml.Data.LoadFromEnumerable(new[] { new SchemaAndDataErrorTests.WrongSize() });
        Assert.Contains("'Features' has 5 slots but the model was trained on 4",
            Assert.ThrowsAny<ArgumentException>(() => transformer.Transform(wrongSize)).Message);
        var missing = ml.Data.LoadFromEnumerable(new[] { new SchemaAndDataErrorTests.OtherName() });
        Assert.Contains("'Features'", Assert.ThrowsAny<ArgumentException>(() => estimator.Fit(missing)).Message);

        var rows = TestData.Blob(20, seed: 4);
        rows[13].Features[2] = float.NaN;
        var scored = transformer.Transform(ml.Data.LoadFromEnumerable(rows));
        var e = Assert.Throws<Data.DataValidationException>(() => scored.GetColumn<float>("LogDensity").ToArray());
        Assert.Equal((13L, 2), (e.Row, e.Column));

        // Through the model saved and loaded with the ordinary mlContext.Model.Load.
        using var zip = new MemoryStream();
        ml.Model.Save(transformer, scored.Schema, zip);
        zip.Position = 0;
        var ml2 = new MLContext(seed: 2);
        LoadedModelErrorTests.NaNReachesTheUserUnwrapped(ml2, ml2.Model.Load(zip, out _), r => ml2.Data.LoadFromEnumerable(r));
    }
}
