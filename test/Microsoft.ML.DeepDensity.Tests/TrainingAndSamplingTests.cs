using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.Runtime;
using Microsoft.ML.DeepDensity.Training;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

public class TrainingAndSamplingTests
{
    [Fact]
    public void Fit_LogsProgressToTheMLContextLog_AndUsesTheValidationView()
    {
        var ml = new MLContext(seed: 1);
        var messages = new List<string>();
        ml.Log += (_, e) => { lock (messages) messages.Add(e.Message); };
        var reports = new List<TrainingProgress>();
        var options = TestData.SmallRnade(o =>
        {
            o.ModelOptions.MaxEpochs = 4;
            o.ModelOptions.ValidationFraction = 0; // only the validation view can give validation figures
            o.Progress = new SyncProgress(reports.Add);
        });
        var transformer = ml.DensityEstimation.Rnade(options)
            .Fit(ml.Data.LoadFromEnumerable(TestData.Blob(300, seed: 1)), ml.Data.LoadFromEnumerable(TestData.Blob(100, seed: 2)));

        Assert.Contains(messages, m => m.Contains("Rnade: training on 300 rows × 4 columns, 100 validation rows"));
        Assert.Contains(messages, m => m.Contains("Rnade: epoch"));
        Assert.Equal(4, reports.Count);
        Assert.All(reports, r => Assert.NotNull(r.ValidationLogLikelihood));
        Assert.NotNull(transformer.Model.TrainingSummary);

        // Validation view of the wrong width is rejected by name.
        var e = Assert.ThrowsAny<ArgumentException>(() => ml.DensityEstimation.Rnade(options)
            .Fit(ml.Data.LoadFromEnumerable(TestData.Blob(50)), ml.Data.LoadFromEnumerable(new[] { new SchemaAndDataErrorTests.WrongSize() })));
        Assert.Contains("'Features'", e.Message);
        // So is one of the wrong type, and the message says it is the validation view (the training view was fine).
        var doubles = ml.Transforms.Conversion.ConvertType("Features", "Features", DataKind.Double).Fit(ml.Data.LoadFromEnumerable(TestData.Blob(20)))
            .Transform(ml.Data.LoadFromEnumerable(TestData.Blob(20)));
        e = Assert.ThrowsAny<ArgumentException>(() => ml.DensityEstimation.Rnade(options).Fit(ml.Data.LoadFromEnumerable(TestData.Blob(50)), doubles));
        Assert.StartsWith("The validation data: Feature column 'Features' must be a known-size vector of Single", e.Message);
        Assert.Equal("validationData", e.ParamName);
    }

    /// <summary>A validation view whose column is missing or of the wrong type is refused from its schema before a row of
    /// either view is read, and the message says it is the validation view's: the row estimators checked it only after
    /// copying the whole training view, and the whole-sequence one also said "Sequence column 'Features' not found in
    /// the input schema", true only of the validation view.</summary>
    [Theory]
    [InlineData("rows", DensityTrainingData.InMemory)]
    [InlineData("rows", DensityTrainingData.Streamed)]
    [InlineData("sequences", DensityTrainingData.InMemory)]
    public void AValidationViewWithABadSchemaIsRefusedBeforeARowIsRead(string form, DensityTrainingData training)
    {
        var ml = new MLContext(seed: 1);
        int reads = 0;
        IEnumerable<T> Counted<T>(IEnumerable<T> rows) { foreach (var row in rows) { reads++; yield return row; } }
        foreach (var validation in new[]
        {
            ml.Data.LoadFromEnumerable(new[] { new SchemaAndDataErrorTests.OtherName() }),
            ml.Data.LoadFromEnumerable(new[] { new SchemaAndDataErrorTests.Scalar() }),
        })
        {
            var e = Assert.ThrowsAny<ArgumentException>(() =>
            {
                if (form == "rows")
                    ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.TrainingData = training)).Fit(ml.Data.LoadFromEnumerable(Counted(TestData.Blob(50))), validation);
                else
                    ml.DensityEstimation.RnnRnade(new SequenceDensityEstimator.Options { FrameSize = 2 }, new() { HiddenUnits = 4, RecurrentUnits = 4, MaxEpochs = 1 })
                        .Fit(ml.Data.LoadFromEnumerable(Counted(new[] { new RnnRnadeTransformerTests.SequenceRow { Features = new float[] { 1, 2, 3, 4 } } })), validation);
            });
            Assert.StartsWith("The validation data: ", e.Message);
            Assert.Contains("'Features'", e.Message);
            Assert.Equal("validationData", e.ParamName);
            Assert.Equal(0, reads);
        }
    }

    /// <summary>Every epoch of an RBM with Gaussian units went to MLContext.Log as a warning (its training figure is NaN:
    /// it has no likelihood, and NaN meant "diverged"); its epochs are information, like every other model's.</summary>
    [Fact]
    public void GaussianRbmEpochsAreLoggedAsInformation_NotWarnings()
    {
        var ml = new MLContext(seed: 1);
        var log = new List<(ChannelMessageKind Kind, string Message)>();
        ml.Log += (_, e) => { lock (log) log.Add((e.Kind, e.Message)); };
        var options = new RbmEstimator.Options { ModelOptions = new() { VisibleType = RbmVisibleType.Gaussian, HiddenUnits = 4, MaxEpochs = 2 } };
        ml.DensityEstimation.Rbm(options).Fit(ml.Data.LoadFromEnumerable(TestData.Blob(200, seed: 1)), ml.Data.LoadFromEnumerable(TestData.Blob(50, seed: 2)));
        var epochs = log.Where(m => m.Message.Contains("Rbm: epoch")).ToList();
        Assert.Equal(2, epochs.Count);
        Assert.All(epochs, m => Assert.Equal(ChannelMessageKind.Info, m.Kind));
        Assert.All(epochs, m => Assert.Contains("recon_error", m.Message));
        Assert.DoesNotContain(log, m => m.Kind == ChannelMessageKind.Warning);
    }

    [Fact]
    public void DeepGmmProgress_NamesPretrainingAndEmIterations_NotEpochsWithALearningRate()
    {
        var ml = new MLContext(seed: 1);
        var messages = new List<string>();
        ml.Log += (_, e) => { lock (messages) messages.Add(e.Message); };
        var reports = new List<TrainingProgress>();
        ml.DensityEstimation.DeepGmm(new DeepGmmEstimator.Options
        {
            Progress = new SyncProgress(reports.Add),
            ModelOptions = new Models.DeepGmm.DeepGmmOptions { Layers = new[] { 2, 2 }, MaxIterations = 3, PretrainIterations = 2, Tolerance = 0, Seed = 7 },
        }).Fit(ml.Data.LoadFromEnumerable(TestData.Blob(200)));

        Assert.Contains(reports, r => r.Unit == "pretraining EM iteration");
        Assert.Contains(reports, r => r.Unit == "EM iteration");
        Assert.DoesNotContain(reports, r => r.Unit == "epoch");
        var lines = messages.Where(m => m.Contains("DeepGmm: ", StringComparison.Ordinal) && m.Contains(" iteration ")).ToList();
        Assert.Contains(lines, m => m.Contains("DeepGmm: pretraining EM iteration", StringComparison.Ordinal));
        Assert.Contains(lines, m => m.Contains("DeepGmm: EM iteration", StringComparison.Ordinal));
        Assert.All(lines, m => Assert.DoesNotContain(" lr ", m));
        Assert.All(lines, m => Assert.DoesNotContain("epoch", m));
    }

    private sealed class SyncProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }

    public sealed class SampleOut
    {
        [VectorType(Row.D)] public float[] Sample { get; set; } = new float[Row.D];
    }

    [Fact]
    public void SampleColumn_MatchesTheModelsDistribution_IsReproducible_AndSurvivesSaveLoad()
    {
        var ml = new MLContext(seed: 1);
        var train = TestData.Blob(1500, seed: 4);
        var transformer = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => { o.SampleColumnName = "Sample"; o.SampleSeed = 11; o.ModelOptions.MaxEpochs = 20; }))
            .Fit(ml.Data.LoadFromEnumerable(train));
        var rows = TestData.Blob(3000, seed: 5);
        var dv = ml.Data.LoadFromEnumerable(rows);
        var output = transformer.Transform(dv);
        Assert.Equal(new VectorDataViewType(NumberDataViewType.Single, Row.D), output.Schema["Sample"].Type);
        var samples = ml.Data.CreateEnumerable<SampleOut>(output, false).Select(s => s.Sample).ToList();

        // Per-dimension mean and standard deviation vs the model's own sampler and vs the training data.
        var reference = transformer.Model.Sample(3000, 123);
        for (int j = 0; j < Row.D; j++)
        {
            var col = samples.Select(s => (double)s[j]).ToArray();
            var refCol = Enumerable.Range(0, reference.Rows).Select(i => (double)reference[i, j]).ToArray();
            var dataCol = train.Select(r => (double)r.Features[j]).ToArray();
            double sd = Std(dataCol);
            Assert.True(Math.Abs(col.Average() - refCol.Average()) < 0.12 * sd, $"dim {j}: mean {col.Average()} vs model {refCol.Average()}");
            Assert.True(Math.Abs(col.Average() - dataCol.Average()) < 0.2 * sd, $"dim {j}: mean {col.Average()} vs data {dataCol.Average()}");
            Assert.InRange(Std(col) / sd, 0.8, 1.25);
        }
        // Distinct rows get distinct draws; the same seed and rows give the same draws.
        Assert.NotEqual(samples[0], samples[1]);
        var again = ml.Data.CreateEnumerable<SampleOut>(transformer.Transform(dv), false).Select(s => s.Sample).ToList();
        Assert.Equal(samples, again);

        // Saved and loaded: the same draws (variable-size vector column after loading, see README).
        using var ms = new MemoryStream();
        ml.Model.Save(transformer, dv.Schema, ms);
        ms.Position = 0;
        var ml2 = new MLContext();
        var loaded = ml2.Model.Load(ms, out _);
        var loadedOut = loaded.Transform(ml2.Data.LoadFromEnumerable(rows.Take(50)));
        var loadedSamples = loadedOut.GetColumn<float[]>("Sample").ToList();
        for (int i = 0; i < 50; i++) Assert.Equal(samples[i], loadedSamples[i]);
    }

    [Fact]
    public void SampleColumn_EqualRowsGetTheSameDraw_MinusZeroIncluded()
    {
        // A row's sample is seeded by its values; −0 and +0 are equal values (a normalizer's −0 · scale makes −0), so the
        // two rows must get the same draw, live and after loading.
        var ml = new MLContext(seed: 1);
        var transformer = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => { o.SampleColumnName = "Sample"; o.SampleSeed = 3; o.ModelOptions.MaxEpochs = 2; }))
            .Fit(ml.Data.LoadFromEnumerable(TestData.Blob(300, seed: 4)));
        var plus = TestData.Blob(1, seed: 6)[0].Features.ToArray();
        plus[1] = 0f;
        var minus = plus.ToArray();
        minus[1] = -0f;
        Assert.True(float.IsNegative(minus[1]));
        var rows = new[] { new Row { Features = plus }, new Row { Features = minus } };
        var live = transformer.Transform(ml.Data.LoadFromEnumerable(rows)).GetColumn<float[]>("Sample").ToList();
        Assert.Equal(live[0], live[1]);
        using var ms = new MemoryStream();
        ml.Model.Save(transformer, ml.Data.LoadFromEnumerable(rows).Schema, ms);
        ms.Position = 0;
        var loaded = new MLContext().Model.Load(ms, out _).Transform(ml.Data.LoadFromEnumerable(rows)).GetColumn<float[]>("Sample").ToList();
        Assert.Equal(live[0], loaded[1]);
        Assert.Equal(live[0], loaded[0]);
    }

    [Fact]
    public void GenerateSamples_ReturnsNRowsAsADataView()
    {
        var ml = new MLContext(seed: 1);
        var transformer = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.ModelOptions.MaxEpochs = 3)).Fit(ml.Data.LoadFromEnumerable(TestData.Blob(200)));
        var view = transformer.GenerateSamples(ml, 64, seed: 5);
        Assert.Equal(new VectorDataViewType(NumberDataViewType.Single, Row.D), view.Schema["Features"].Type);
        var rows = view.GetColumn<float[]>("Features").ToList();
        Assert.Equal(64, rows.Count);
        Assert.Equal(transformer.Model.Sample(64, 5).Values, rows.SelectMany(r => r).ToArray());
        // The samples can be scored by the same transformer (schema-compatible).
        Assert.All(transformer.Transform(view).GetColumn<float>("Score"), s => Assert.True(float.IsFinite(s)));
    }

    [Fact]
    public void SimpleOverload_UsesDocumentedDefaults()
    {
        var ml = new MLContext(seed: 1);
        var est = ml.DensityEstimation.Rnade("Features", hiddenUnits: 6, components: 2, maxEpochs: 2, contamination: 0.1);
        var t = est.Fit(ml.Data.LoadFromEnumerable(TestData.Blob(100)));
        Assert.Equal(6, t.Model.HiddenUnits);
        Assert.Equal(2, t.Model.Components);
        Assert.Equal(0.1, t.Contamination);
        Assert.Equal("LogDensity", t.LogDensityColumnName);
        Assert.Equal("Score", t.ScoreColumnName);
        Assert.Equal("PredictedLabel", t.PredictedLabelColumnName);
        Assert.Null(t.SampleColumnName);
    }

    private static double Std(double[] v)
    {
        double m = v.Average();
        return Math.Sqrt(v.Sum(x => (x - m) * (x - m)) / v.Length);
    }
}

public class CancellationTests
{
    [Fact]
    public void Fit_HonoursTheCancellationToken()
    {
        var ml = new MLContext(seed: 1);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var est = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.CancellationToken = cts.Token));
        Assert.ThrowsAny<OperationCanceledException>(() => est.Fit(ml.Data.LoadFromEnumerable(TestData.Blob(100))));
    }
}
