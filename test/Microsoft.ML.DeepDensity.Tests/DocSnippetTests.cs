using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Models.Nvil;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Training;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// The C# examples of the README and the docs, copied verbatim between <c>// snippet: file</c> and <c>// end snippet</c>
/// markers (only the data they assume is made around them), so that an API change breaks the build here. The first
/// test checks that every copied line still appears in a code block of its doc: edit a snippet in the doc, then here.
/// The runs use tiny data; they check that the snippets run, not what they compute.
/// </summary>
public class DocSnippetTests
{
    private static readonly Regex Marker = new(@"// snippet: (?<doc>\S+)\r?\n(?<body>.*?)\r?\n\s*// end snippet", RegexOptions.Singleline);

    [Fact]
    public void Snippets_here_are_the_docs_snippets()
    {
        string root = RepositoryRoot();
        string source = File.ReadAllText(Path.Combine(root, "test", "Microsoft.ML.DeepDensity.Tests", "DocSnippetTests.cs"));
        int snippets = 0;
        foreach (Match m in Marker.Matches(source))
        {
            string doc = m.Groups["doc"].Value;
            var blocks = Regex.Matches(File.ReadAllText(Path.Combine(root, doc)), @"```csharp\r?\n(.*?)```", RegexOptions.Singleline)
                .Select(b => Lines(b.Groups[1].Value)).ToList();
            var lines = Lines(m.Groups["body"].Value);
            Assert.True(blocks.Any(b => IsSubsequence(lines, b)),
                $"The {doc} snippet in DocSnippetTests.cs is no longer in a code block of {doc}; copy the doc's snippet here again. " +
                $"First line not found in order: '{lines.FirstOrDefault(l => !blocks.Any(b => b.Contains(l)))}'.");
            snippets++;
        }
        Assert.Equal(12, snippets);
    }

    // README.md, "In an ML.NET pipeline".
    [Fact]
    public void Readme_pipeline()
    {
        IDataView trainView = Abc(400, seed: 1, outliers: false), testView = Abc(200, seed: 2, outliers: true);
        // snippet: README.md
        var ml = new MLContext(seed: 1);
        var pipeline = ml.Transforms.Concatenate("Features", "A", "B", "C")
            .Append(ml.DensityEstimation.Rnade("Features"));           // appends LogDensity, Score (= −LogDensity), PredictedLabel
        ITransformer model = pipeline.Fit(trainView);
        IDataView scored = model.Transform(testView);                     // lazy, batched, parallel
        var metrics = ml.AnomalyDetection.Evaluate(scored, labelColumnName: "Label");   // Label: Single, 1 = anomaly
        ml.Model.Save(model, trainView.Schema, "model.zip");

        var loaded = new MLContext().Model.LoadWithLiveDensityModels("model.zip", out _);   // load to score: batched, validated
        // end snippet
        Assert.Equal(Scores(ml, scored), Scores(ml, loaded.Transform(testView)));
        Assert.True(metrics.AreaUnderRocCurve > 0.9, $"AUC {metrics.AreaUnderRocCurve}");
    }

    // docs/mlnet.md, the first example.
    [Fact]
    public void Mlnet_pipeline()
    {
        IDataView trainView = Abc(400, seed: 1, outliers: false), testView = Abc(200, seed: 2, outliers: true);
        // snippet: docs/mlnet.md
        var ml = new MLContext();
        var pipeline = ml.Transforms.Concatenate("Features", "A", "B", "C")
            .Append(ml.Transforms.NormalizeMeanVariance("Features"))
            .Append(ml.DensityEstimation.Rnade("Features", hiddenUnits: 50, components: 10, contamination: 0.01));
        var model = pipeline.Fit(trainView);                      // or estimator.Fit(trainView, validationView)
        var scored = model.Transform(testView);                  // lazy: nothing is read until a cursor moves
        var metrics = ml.AnomalyDetection.Evaluate(scored);      // Label (Single, 1 = anomaly), Score, PredictedLabel
        ml.Model.Save(model, trainView.Schema, "model.zip");

        // Load to score: Model.Load plus the batched scorer back and every saved model validated here (see Saving).
        var loaded = new MLContext().Model.LoadWithLiveDensityModels("model.zip", out _);   // fresh context or another process
        var rnade = loaded.GetDensityModel<RnadeModel>();               // typed engine model: parameters, Sample(...)
        // end snippet
        Assert.Equal(3, rnade.Dimension);
        Assert.True(metrics.AreaUnderRocCurve > 0.9, $"AUC {metrics.AreaUnderRocCurve}");
    }

    // docs/mlnet.md, "Anomaly metrics": the margin recipe, under a decimal-comma culture (ML.NET's expression parser reads
    // numbers in the current culture: the recipe's threshold interpolated with {transformer.Threshold:R} was refused).
    [Fact]
    public void Mlnet_margin_recipe_under_de_DE()
    {
        var ml = new MLContext(seed: 1);
        var transformer = ml.Transforms.Concatenate("Features", "A", "B", "C").Append(ml.DensityEstimation.Rnade("Features", hiddenUnits: 8, components: 2))
            .Fit(Abc(400, seed: 1, outliers: false)).LastTransformer;
        var scored = transformer.Transform(ml.Transforms.Concatenate("Features", "A", "B", "C").Fit(Abc(200, seed: 2, outliers: true)).Transform(Abc(200, seed: 2, outliers: true)));
        var culture = CultureInfo.CurrentCulture;
        try
        {
            CultureInfo.CurrentCulture = CultureInfo.GetCultureInfo("de-DE");
            // snippet: docs/mlnet.md
            string[] parts = transformer.Threshold.ToString("E8", CultureInfo.InvariantCulture).Split('E');
            string threshold = parts[0].Replace(".", "") + "e" + (int.Parse(parts[1], CultureInfo.InvariantCulture) - 8).ToString(CultureInfo.InvariantCulture);
            var withMargin = ml.Transforms.Conversion.ConvertType("IsAnomaly", "Label", DataKind.Boolean)
                .Append(ml.Transforms.Expression("Margin", $"s => s - ({threshold})", "Score"))
                .Fit(scored).Transform(scored);
            var labelMetrics = ml.BinaryClassification.EvaluateNonCalibrated(withMargin, "IsAnomaly", "Margin");
            // end snippet
            Assert.Equal(withMargin.GetColumn<float>("Margin").Select(x => x > 0), withMargin.GetColumn<bool>("PredictedLabel"));
            Assert.True(labelMetrics.PositiveRecall > 0.5, $"recall {labelMetrics.PositiveRecall}");
        }
        finally { CultureInfo.CurrentCulture = culture; }
    }

    // docs/mlnet.md, "A trainer after ours": a trainer appended after the density stage writes its own Score and
    // PredictedLabel; ours renamed stay readable (AnomalyDetection.Evaluate of "Score" evaluated SDCA's).
    [Fact]
    public void Mlnet_trainer_after_ours()
    {
        var ml = new MLContext(seed: 1);
        IDataView trainView = Abc(400, seed: 1, outliers: true), testView = Abc(200, seed: 2, outliers: true);
        // snippet: docs/mlnet.md
        var withTrainer = ml.Transforms.Concatenate("Features", "A", "B", "C")
            .Append(ml.DensityEstimation.Rnade(new RnadeEstimator.Options
            {
                ScoreColumnName = "DensityScore", PredictedLabelColumnName = "DensityLabel",   // not the trainer's Score
            }))
            .Append(ml.Transforms.Concatenate("Features2", "Features", "LogDensity"))
            .Append(ml.Transforms.Conversion.ConvertType("IsAnomaly", "Label", DataKind.Boolean))
            .Append(ml.BinaryClassification.Trainers.SdcaLogisticRegression("IsAnomaly", "Features2"));
        var both = withTrainer.Fit(trainView).Transform(testView);
        var densityMetrics = ml.AnomalyDetection.Evaluate(both, "Label", "DensityScore", "DensityLabel");
        var trainerMetrics = ml.BinaryClassification.Evaluate(both, "IsAnomaly");    // the trainer's Score and Probability
        // end snippet
        Assert.True(densityMetrics.AreaUnderRocCurve > 0.9, $"AUC {densityMetrics.AreaUnderRocCurve}");
        // The density's score is −log-density; the trainer's is its own margin.
        Assert.Equal(both.GetColumn<float>("LogDensity").Select(x => -x), both.GetColumn<float>("DensityScore"));
        Assert.NotEqual(both.GetColumn<float>("DensityScore"), both.GetColumn<float>("Score"));
        Assert.InRange(trainerMetrics.AreaUnderRocCurve, 0, 1);
    }

    // docs/mlnet.md, "GetOutputSchema(SchemaShape) before Fit": SchemaShape.Create is internal in ML.NET 5.0.1 (found only
    // with NonPublic), and the reflection line gives the pipeline's output shape without training.
    [Fact]
    public void Mlnet_output_schema_before_fit()
    {
        var ml = new MLContext(seed: 1);
        IDataView trainView = Abc(50, seed: 1, outliers: false);
        var pipeline = ml.Transforms.Concatenate("Features", "A", "B", "C").Append(ml.DensityEstimation.Rnade());
        Assert.Null(typeof(SchemaShape).GetMethod("Create", System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static, new[] { typeof(DataViewSchema) }));
        // snippet: docs/mlnet.md
        var create = typeof(SchemaShape).GetMethod("Create", BindingFlags.NonPublic | BindingFlags.Static, new[] { typeof(DataViewSchema) })!;
        var inputShape = (SchemaShape)create.Invoke(null, new object[] { trainView.Schema })!;
        SchemaShape outputShape = pipeline.GetOutputSchema(inputShape);   // LogDensity, Score, PredictedLabel, … with their types
        // end snippet
        Assert.Contains(outputShape, c => c.Name == "LogDensity");
        Assert.Contains(outputShape, c => c.Name == "PredictedLabel" && c.ItemType == BooleanDataViewType.Instance);
    }

    // docs/engine.md, the first example.
    [Fact]
    public void Engine_rnade()
    {
        float[][] myRows = Real(300, 3, seed: 1);
        var test = RowMatrix.FromRows(Real(50, 3, seed: 2));
        string file = "rnade.ddm";
        // snippet: docs/engine.md
        RowMatrix train = RowMatrix.FromRows(myRows);             // float[][] → row-major float32 matrix
        var model = RnadeModel.Fit(train, new RnadeOptions { HiddenUnits = 50, Components = 10, MaxEpochs = 100 },
                                   validation: null,               // or a RowMatrix; else ValidationFraction is held out
                                   progress: new Progress<TrainingProgress>(Console.WriteLine));
        float[] logp = model.LogDensity(test);                    // batched, parallel, exact (model.DensityKind == Exact)
        RowMatrix draws = model.Sample(1000, seed: 7);            // row i depends only on (seed, i)
        using (var f = File.Create("rnade.ddm")) model.Save(f);
        using (var f = File.OpenRead("rnade.ddm"))
        {
            RnadeModel again = DensityModel.Load<RnadeModel>(f);  // DensityModel.Load(f) if the kind is not known
        }
        // end snippet
        Assert.Equal(model.ToBytes(), DensityModel.FromBytes(File.ReadAllBytes(file)).ToBytes());
        Assert.Equal((1000, 3), (draws.Rows, draws.Columns));
        Assert.All(logp, v => Assert.True(float.IsFinite(v)));
    }

    // docs/scaling.md, "Using it".
    [Fact]
    public void Scaling_streamed_fit()
    {
        var ml = new MLContext();
        IDataView hugeView = ml.Data.LoadFromEnumerable(TestData.Blob(300));
        // snippet: docs/scaling.md
        var estimator = ml.DensityEstimation.Rnade(new RnadeEstimator.Options
        {
            TrainingData = DensityTrainingData.Streamed,   // default InMemory
            ShuffleBufferRows = 100_000,                    // default 0 = automatic (64 MiB of rows)
            ModelOptions = new RnadeOptions { MaxEpochs = 20 },
        });
        var model = estimator.Fit(hugeView);               // or Fit(hugeView, validationView)
        // end snippet
        Assert.Equal(Row.D, model.Model.Dimension);
    }

    // docs/models/deep-gmm.md, the first example.
    [Fact]
    public void DeepGmm_engine()
    {
        RowMatrix train = RowMatrix.FromRows(Real(300, 3, seed: 1)), validation = RowMatrix.FromRows(Real(60, 3, seed: 3)),
            test = RowMatrix.FromRows(Real(50, 3, seed: 2));
        // snippet: docs/models/deep-gmm.md
        var options = new DeepGmmOptions { Layers = new[] { 2, 2, 16 } };   // layer 0 acts on the noise, the last is nearest the data
        var model = DeepGmmModel.Fit(train, options, validation, progress: new Progress<TrainingProgress>(Console.WriteLine));
        double avg = model.AverageLogDensity(test);        // exact, nats per row
        RowMatrix samples = model.Sample(100, seed: 7);
        var (weights, means, covariances) = model.ToGaussianMixture();   // the equivalent flat GMM
        // end snippet
        Assert.True(double.IsFinite(avg));
        Assert.Equal(100, samples.Rows);
        Assert.Equal(64, weights.Length);
        Assert.Equal(weights.Length, means.Length);
        Assert.Equal(weights.Length, covariances.Length);
    }

    // docs/models/rbm.md, the first example.
    [Fact]
    public void Rbm_engine()
    {
        RowMatrix train = RowMatrix.FromRows(Binary(300, 10, seed: 1)), validation = RowMatrix.FromRows(Binary(60, 10, seed: 3)),
            test = RowMatrix.FromRows(Binary(50, 10, seed: 2));
        IProgress<TrainingProgress>? progress = null;
        // snippet: docs/models/rbm.md
        var options = new RbmOptions { HiddenUnits = 500, Algorithm = RbmTrainingAlgorithm.PersistentContrastiveDivergence,
                                       GibbsSteps = 1, BatchSize = 100, MaxEpochs = 20 };
        RbmModel rbm = RbmModel.Fit(train, options, validation, progress);   // CD/PCD, then log Z once
        float[] logp = rbm.LogDensity(test);               // −F(x) − log Z
        float[] f = rbm.FreeEnergy(test);                  // unnormalised score, always exact
        var se = new float[test.Rows]; rbm.LogDensity(test.AsSpan(), new float[test.Rows], se); // se of log Z when AIS
        RowMatrix samples = rbm.Sample(1000, seed: 7);      // block Gibbs: burn-in, thinning, parallel chains
        Console.WriteLine($"{rbm.LogPartitionMethod}: log Z = {rbm.LogPartition} ± {rbm.LogPartitionStandardError}");
        // end snippet
        Assert.Equal(LogPartitionMethod.Exact, rbm.LogPartitionMethod); // 10 visible units: log Z by enumeration
        Assert.Equal((test.Rows, test.Rows), (logp.Length, f.Length));
        Assert.All(se, v => Assert.Equal(0f, v));
        Assert.Equal(1000, samples.Rows);
    }

    // docs/models/iwae.md, the first example.
    [Fact]
    public void Iwae_engine()
    {
        RowMatrix binaryTrain = RowMatrix.FromRows(Binary(200, 10, seed: 1)), binaryValid = RowMatrix.FromRows(Binary(40, 10, seed: 3)),
            test = RowMatrix.FromRows(Binary(20, 10, seed: 2));
        // snippet: docs/models/iwae.md
        var model = IwaeModel.Fit(binaryTrain, new IwaeOptions
        {
            LatentDimensions = new[] { 50 }, HiddenUnits = new[] { 200, 200 },   // Burda et al. architecture 1 (the default; ReLU for binary data)
            Samples = 5,                  // k of the training bound; 1 = VAE
            EvaluationSamples = 5000,     // K of the reported log-density estimate
        }, validation: binaryValid, progress: new Progress<TrainingProgress>(Console.WriteLine));

        var logp = new float[test.Rows]; var se = new float[test.Rows];
        model.LogDensity(test.AsSpan(), logp, se);          // DensityKind.Estimate: log (1/K) Σ w_i and its standard error
        float[] elbo = model.Bound(test, k: 1, seed: 7);    // the ELBO (k = 1) or any k-sample bound, per row
        RowMatrix images = model.Sample(16, seed: 1);       // z ~ p(z), x ~ p(x | z)
        RowMatrix means = model.DecoderMean(16, seed: 1);   // E[x | z] (pixel probabilities)
        var precise = model.WithEvaluation(20_000);         // same parameters, other estimation settings
        // end snippet
        Assert.Equal(test.Rows, elbo.Length);
        Assert.Equal((16, 16), (images.Rows, means.Rows));
        Assert.Equal(model.Dimension, precise.Dimension);
    }

    // docs/models/nvil.md, the first example.
    [Fact]
    public void Nvil_engine()
    {
        RowMatrix binaryTrain = RowMatrix.FromRows(Binary(200, 10, seed: 1)), binaryValid = RowMatrix.FromRows(Binary(40, 10, seed: 3)),
            test = RowMatrix.FromRows(Binary(20, 10, seed: 2));
        // snippet: docs/models/nvil.md
        var model = NvilModel.Fit(binaryTrain, new NvilOptions
        {
            LatentDimensions = new[] { 200, 200 },   // two binary layers (default [200])
            SamplesPerExample = 1,                   // h ~ q per row per step
            EvaluationSamples = 1000,                // K of the reported log-density estimate
        }, validation: binaryValid, progress: new Progress<TrainingProgress>(Console.WriteLine));

        var logp = new float[test.Rows]; var se = new float[test.Rows];
        model.LogDensity(test.AsSpan(), logp, se);           // DensityKind.Estimate: log (1/K) Σ p(x,h_i)/q(h_i|x), and its SE
        float[] elbo = model.Bound(test, k: 1, seed: 7);     // single-sample variational bound per row (or any k-sample bound)
        RowMatrix images = model.Sample(16, seed: 1);        // ancestral: h_L ~ p(h_L), …, x ~ p(x | h_1)
        RowMatrix probs = model.DecoderMean(16, seed: 1);    // p(x_c = 1 | h_1) for ancestral h
        var precise = model.WithEvaluation(20_000);          // same parameters, other estimation settings
        // end snippet
        Assert.Equal(test.Rows, elbo.Length);
        Assert.Equal((16, 16), (images.Rows, probs.Rows));
        Assert.Equal(model.Dimension, precise.Dimension);
    }

    // docs/models/rnn-rnade.md, "Engine API".
    [Fact]
    public void RnnRnade_engine()
    {
        var rnd = new Random(1);
        List<float[]> listOfFloatArrays = Enumerable.Range(0, 30)
            .Select(i => Enumerable.Range(0, 4 * (3 + i % 5)).Select(_ => (float)rnd.NextDouble()).ToArray()).ToList();
        var prefixes = SequenceBatch.FromSequences(listOfFloatArrays.Take(3).ToList(), frameSize: 4);
        float[] candidateFrame = listOfFloatArrays[0][..4], observedFrame = listOfFloatArrays[0][4..8];
        // snippet: docs/models/rnn-rnade.md
        var data = SequenceBatch.FromSequences(listOfFloatArrays, frameSize: 4);   // frames back to back per sequence
        var model = RnnRnadeModel.Fit(data, new RnnRnadeOptions { RecurrentUnits = 32 }, validation: null);
        float[] perSequence = model.LogDensity(data);            // log p(x_1..x_T), one per sequence
        var perFrame = new float[data.TotalFrames];
        model.FrameLogDensity(data, perFrame);                   // log p(x_t | x_<t), the per-step anomaly score
        var fresh = model.Sample(count: 10, length: 30, seed: 1);
        var continued = model.Sample(prefixes, extraFrames: 7, seed: 1);   // forecasting by sampling (prefix + 7 new frames)
        var stream = model.StartStream();                       // online: one frame at a time
        float next = stream.Predict(candidateFrame);            // one-step-ahead predictive density, state unchanged
        float lp = stream.Append(observedFrame);                // log p(frame | past), then consumes it
        // end snippet
        Assert.Equal(30, perSequence.Length);
        Assert.Equal(10 * 30, fresh.TotalFrames);
        Assert.Equal(prefixes.TotalFrames + 3 * 7, continued.TotalFrames);
        Assert.True(float.IsFinite(next) && float.IsFinite(lp));
    }

    private sealed class AbcRow
    {
        public float A { get; set; }
        public float B { get; set; }
        public float C { get; set; }
        public float Label { get; set; }
    }

    /// <summary>Columns A, B, C (a correlated blob; with <paramref name="outliers"/> every 10th row far away) and Label.</summary>
    private static IDataView Abc(int n, int seed, bool outliers)
    {
        var blob = TestData.Blob(n, seed, outliers ? 10 : 0);
        return new MLContext().Data.LoadFromEnumerable(blob.Select(r => new AbcRow { A = r.Features[0], B = r.Features[1], C = r.Features[2], Label = r.Label }).ToList());
    }

    private static float[] Scores(MLContext ml, IDataView view) => view.GetColumn<float>("LogDensity").ToArray();

    private static float[][] Real(int n, int d, int seed)
    {
        var rnd = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => Enumerable.Range(0, d).Select(j => (float)(rnd.NextDouble() + 0.3 * j)).ToArray()).ToArray();
    }

    private static float[][] Binary(int n, int d, int seed)
    {
        var rnd = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => Enumerable.Range(0, d).Select(j => rnd.NextDouble() < 0.2 + 0.05 * j ? 1f : 0f).ToArray()).ToArray();
    }

    private static List<string> Lines(string code) => code.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToList();

    /// <summary>Whether <paramref name="lines"/> appear in <paramref name="block"/> in order (the doc may have more).</summary>
    private static bool IsSubsequence(List<string> lines, List<string> block)
    {
        int j = 0;
        foreach (var line in block)
            if (j < lines.Count && line == lines[j]) j++;
        return j == lines.Count;
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "DeepDensity.ML.sln"))) return dir.FullName;
        throw new InvalidOperationException("DeepDensity.ML.sln not found above " + AppContext.BaseDirectory);
    }
}
