using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

public class SchemaAndDataErrorTests
{
    public sealed class OtherName { [VectorType(Row.D)] public float[] X { get; set; } = new float[Row.D]; }
    public sealed class Scalar { public float Features { get; set; } }
    public sealed class DoubleVector { [VectorType(Row.D)] public double[] Features { get; set; } = new double[Row.D]; }
    public sealed class VariableVector { public float[] Features { get; set; } = new float[Row.D]; }
    public sealed class WrongSize { [VectorType(Row.D + 1)] public float[] Features { get; set; } = new float[Row.D + 1]; }

    private static DensityTransformer Trained(MLContext ml, Action<RnadeEstimator.Options>? configure = null)
        => ml.DensityEstimation.Rnade(TestData.SmallRnade(o => { o.ModelOptions.MaxEpochs = 2; configure?.Invoke(o); }))
             .Fit(ml.Data.LoadFromEnumerable(TestData.Blob(100)));

    [Fact]
    public void Estimator_And_Transformer_RejectBadFeatureColumns_NamingTheColumn()
    {
        var ml = new MLContext(seed: 1);
        var estimator = ml.DensityEstimation.Rnade(TestData.SmallRnade());
        var transformer = Trained(ml);

        string Errors<T>() where T : class, new()
        {
            var dv = ml.Data.LoadFromEnumerable(new[] { new T() });
            var e1 = Assert.ThrowsAny<ArgumentException>(() => estimator.GetOutputSchema(SchemaShapeFactory.FromType<T>(ml)));
            var e2 = Assert.ThrowsAny<ArgumentException>(() => estimator.Fit(dv));
            var e3 = Assert.ThrowsAny<ArgumentException>(() => transformer.GetOutputSchema(dv.Schema));
            var e4 = Assert.ThrowsAny<ArgumentException>(() => transformer.Transform(dv));
            foreach (var e in new[] { e1, e2, e3, e4 }) Assert.Contains("'Features'", e.Message);
            return e1.Message + " | " + e2.Message + " | " + e3.Message;
        }

        Assert.Contains("not found", Errors<OtherName>());
        Assert.Contains("known-size vector of Single", Errors<Scalar>());
        Assert.Contains("known-size vector of Single", Errors<DoubleVector>());

        var wrong = ml.Data.LoadFromEnumerable(new[] { new WrongSize() });
        var e = Assert.ThrowsAny<ArgumentException>(() => transformer.Transform(wrong));
        Assert.Contains("'Features' has 5 slots but the model was trained on 4", e.Message);
    }

    public sealed class TypedVectors
    {
        [VectorType(Row.D)] public double[] D { get; set; } = new double[Row.D];
        [VectorType(Row.D)] public int[] I { get; set; } = new int[Row.D];
        [VectorType(Row.D)] public bool[] B { get; set; } = new bool[Row.D];
        [VectorType(2)] public string[] Category { get; set; } = new string[2];
    }

    /// <summary>A feature column of Double, Int32, Boolean or key values: the error names the column and its type, and now
    /// also the ML.NET transform that makes it usable — which the test applies, and the estimator then trains on it.</summary>
    [Fact]
    public void AFeatureColumnOfAnotherType_IsRefusedWithTheTransformThatFixesIt()
    {
        var ml = new MLContext(seed: 1);
        var rnd = new Random(2);
        var rows = Enumerable.Range(0, 60).Select(i => new TypedVectors
        {
            D = Enumerable.Range(0, Row.D).Select(_ => rnd.NextDouble()).ToArray(),
            I = Enumerable.Range(0, Row.D).Select(_ => rnd.Next(10)).ToArray(),
            B = Enumerable.Range(0, Row.D).Select(_ => rnd.Next(2) == 1).ToArray(),
            Category = new[] { "c" + rnd.Next(3), "d" + rnd.Next(3) },
        }).ToList();
        var view = ml.Data.LoadFromEnumerable(rows);
        var toKey = ml.Transforms.Conversion.MapValueToKey("K", "Category");
        var keys = toKey.Fit(view).Transform(view);
        var shape = SchemaShapeFactory.FromType<TypedVectors>(ml);
        var keyShape = toKey.GetOutputSchema(shape);
        IEstimator<ITransformer> ToSingle(string column) => ml.Transforms.Conversion.ConvertType(column, outputKind: DataKind.Single);
        foreach (var (data, dataShape, column, remedy, fix) in new (IDataView, SchemaShape, string, string, IEstimator<ITransformer>)[]
        {
            (view, shape, "D", "ml.Transforms.Conversion.ConvertType(\"D\", outputKind: DataKind.Single)", ToSingle("D")),
            (view, shape, "I", "ml.Transforms.Conversion.ConvertType(\"I\", outputKind: DataKind.Single)", ToSingle("I")),
            (view, shape, "B", "ml.Transforms.Conversion.ConvertType(\"B\", outputKind: DataKind.Single)", ToSingle("B")),
            (keys, keyShape, "K", "ml.Transforms.Conversion.MapKeyToVector(\"K\")", ml.Transforms.Conversion.MapKeyToVector("K")),
        })
        {
            var estimator = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => { o.FeatureColumnName = column; o.ModelOptions.MaxEpochs = 1; }));
            foreach (var refused in new Action[] { () => estimator.Fit(data), () => estimator.GetOutputSchema(dataShape) })
            {
                var e = Assert.ThrowsAny<ArgumentException>(refused);
                Assert.Contains($"Feature column '{column}' must be a known-size vector of Single", e.Message);
                Assert.Contains(remedy, e.Message);
            }
            Assert.NotNull(fix.Append(estimator).Fit(data));
        }
    }

    public sealed class Scalars
    {
        public float Amount { get; set; }
        public double D { get; set; }
        public int I { get; set; }
        public bool B { get; set; }
    }

    /// <summary>A scalar feature column — one feature, a 1-D density, is a natural first use: the remedy in the message used to
    /// be <c>Concatenate("Amount", "A", "B", "C")</c>, whose placeholder columns the user's data does not have (copied as
    /// written it failed with ML.NET's "Could not find input column 'A'"). It now names the column itself, and the remedy
    /// as written — applied here — makes a column the estimator trains on, for Single, Double, Int32 and Boolean scalars.</summary>
    [Fact]
    public void AScalarFeatureColumn_IsRefusedWithARemedyThatRunsOnTheUsersOwnColumn()
    {
        var ml = new MLContext(seed: 1);
        var rnd = new Random(4);
        var view = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 60).Select(i =>
            new Scalars { Amount = (float)rnd.NextDouble(), D = rnd.NextDouble(), I = rnd.Next(10), B = rnd.Next(2) == 1 }).ToList());
        var shape = SchemaShapeFactory.FromType<Scalars>(ml);
        IEstimator<ITransformer> Vector(string c) => ml.Transforms.Concatenate(c, c);
        IEstimator<ITransformer> SingleVector(string c) => ml.Transforms.Conversion.ConvertType(c, outputKind: DataKind.Single).Append(Vector(c));
        foreach (var (column, remedy, fix) in new (string, string, IEstimator<ITransformer>)[]
        {
            ("Amount", "ml.Transforms.Concatenate(\"Amount\", \"Amount\") for this column alone", Vector("Amount")),
            ("D", "ml.Transforms.Conversion.ConvertType(\"D\", outputKind: DataKind.Single).Append(ml.Transforms.Concatenate(\"D\", \"D\"))", SingleVector("D")),
            ("I", "ml.Transforms.Conversion.ConvertType(\"I\", outputKind: DataKind.Single).Append(ml.Transforms.Concatenate(\"I\", \"I\"))", SingleVector("I")),
            ("B", "ml.Transforms.Conversion.ConvertType(\"B\", outputKind: DataKind.Single).Append(ml.Transforms.Concatenate(\"B\", \"B\"))", SingleVector("B")),
        })
        {
            var estimator = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => { o.FeatureColumnName = column; o.ModelOptions.MaxEpochs = 1; }));
            foreach (var refused in new Action[] { () => estimator.Fit(view), () => estimator.GetOutputSchema(shape) })
            {
                var e = Assert.ThrowsAny<ArgumentException>(refused);
                Assert.Contains($"Feature column '{column}' must be a known-size vector of Single", e.Message);
                Assert.Contains(remedy, e.Message);
                Assert.DoesNotContain("\"A\", \"B\", \"C\"", e.Message);
            }
            var model = fix.Append(estimator).Fit(view);
            Assert.Equal(60, model.Transform(view).GetColumn<float>("LogDensity").Count(float.IsFinite));
        }
    }

    /// <summary>A variable-size feature column (a TextLoader range without an end, an input class without
    /// [VectorType]): an estimator refuses it, training needs the width; a fitted model scores it, as the plain
    /// Model.Load of its zip always did — LoadWithLiveDensityModels and the live transformer used to refuse what the
    /// plain load scored — and a row of the wrong length is an error naming the column and the row.</summary>
    [Fact]
    public void VariableSizeFeatureColumn_IsRefusedForTraining_AndScoredByAFittedModel()
    {
        var ml = new MLContext(seed: 1);
        var estimator = ml.DensityEstimation.Rnade(TestData.SmallRnade());
        var rows = TestData.Blob(50, seed: 3);
        var variable = rows.Select(r => new VariableVector { Features = r.Features }).ToList();
        var variableView = ml.Data.LoadFromEnumerable(variable);
        foreach (var refused in new Action[]
        {
            () => estimator.GetOutputSchema(SchemaShapeFactory.FromType<VariableVector>(ml)),
            () => estimator.Fit(variableView),
        })
            Assert.Contains("'Features' is a variable-size vector; training needs a known-size vector", Assert.ThrowsAny<ArgumentException>(refused).Message);

        var transformer = Trained(ml);
        var expected = transformer.Transform(ml.Data.LoadFromEnumerable(rows)).GetColumn<float>("LogDensity").ToArray();
        using var zip = new MemoryStream();
        ml.Model.Save(transformer, ml.Data.LoadFromEnumerable(rows).Schema, zip);
        zip.Position = 0;
        var liveLoaded = new MLContext(seed: 2).Model.LoadWithLiveDensityModels(zip, out _);
        foreach (var model in new[] { transformer, liveLoaded })
        {
            Assert.Equal(expected, model.Transform(variableView).GetColumn<float>("LogDensity"));
            Assert.Equal(expected[0], ml.Model.CreatePredictionEngine<VariableVector, Scored>(model).Predict(variable[0]).LogDensity);
        }

        variable[7].Features = new float[Row.D - 1];
        var e = Assert.Throws<DataValidationException>(() => transformer.Transform(ml.Data.LoadFromEnumerable(variable)).GetColumn<float>("LogDensity").ToArray());
        Assert.Equal(7, e.Row);
        Assert.Equal("Features", e.DataSource);
        Assert.Contains($"the vector has {Row.D - 1} values but the model expects {Row.D}", e.Message);
    }

    [Fact]
    public void EstimatorOutputSchema_HasTheOutputColumns()
    {
        var ml = new MLContext(seed: 1);
        var estimator = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => { o.SampleColumnName = "Draw"; o.LogDensityColumnName = "LogP"; }));
        var shape = estimator.GetOutputSchema(SchemaShapeFactory.FromType<Row>(ml));
        var logp = shape.Single(c => c.Name == "LogP");
        Assert.Equal(NumberDataViewType.Single, logp.ItemType);
        Assert.Equal(SchemaShape.Column.VectorKind.Scalar, logp.Kind);
        Assert.Equal(BooleanDataViewType.Instance, shape.Single(c => c.Name == "PredictedLabel").ItemType);
        Assert.Equal(SchemaShape.Column.VectorKind.Vector, shape.Single(c => c.Name == "Draw").Kind);
        Assert.Contains(shape, c => c.Name == "Label");
    }

    [Fact]
    public void Options_AreValidated_WithTheSettingNamed()
    {
        var ml = new MLContext(seed: 1);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.Contamination = 0.7)));
        Assert.Contains("Contamination", e.Message);
        var e2 = Assert.ThrowsAny<ArgumentException>(() => ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.ScoreColumnName = "LogDensity")));
        Assert.Contains("distinct", e2.Message);
        var e3 = Assert.Throws<ArgumentOutOfRangeException>(() => ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.ModelOptions.HiddenUnits = 0)).Fit(ml.Data.LoadFromEnumerable(TestData.Blob(20))));
        Assert.Contains("HiddenUnits", e3.Message);
    }

    /// <summary>A nonsense engine option is an ArgumentException naming it when the estimator is created (as ML.NET's own
    /// estimators and the RNN-RNADE catalog do), not after the upstream stages were fitted and the training data
    /// read; options changed after construction are checked again at Fit before a row is read.</summary>
    [Fact]
    public void EngineOptions_AreValidated_AtConstruction_AndAtFitBeforeReadingData()
    {
        var ml = new MLContext(seed: 1);
        var c = ml.DensityEstimation;
        void Named(string setting, Func<object> create)
        {
            var e = Assert.ThrowsAny<ArgumentException>(create);
            Assert.Contains(setting, e.Message);
        }
        Named("HiddenUnits", () => c.Rnade(hiddenUnits: 0));
        Named("LearningRate", () => c.Rnade(TestData.SmallRnade(o => o.ModelOptions.LearningRate = float.NaN)));
        Named("Layers", () => c.DeepGmm(layers: new[] { 0, 2 }));
        Named("MaxIterations", () => c.DeepGmm(maxIterations: -5));
        Named("HiddenUnits", () => c.Rbm(hiddenUnits: 0));
        Named("MaxEpochs", () => c.Rbm(maxEpochs: -1));   // 0 is the RBM's automatic length
        Named("Samples", () => c.Iwae(samples: 0));
        Named("EvaluationSamples", () => c.Iwae(evaluationSamples: 0));
        Named("LatentDimensions", () => c.Nvil(latentDimensions: new[] { 0 }));
        Named("MaxEpochs", () => c.Nvil(maxEpochs: -1));   // 0 is NVIL's (and IWAE's) automatic length
        Named("ModelOptions", () => c.Rnade(TestData.SmallRnade(o => o.ModelOptions = null!)));

        var options = TestData.SmallRnade();
        var estimator = c.Rnade(options);
        options.ModelOptions.Components = -1;
        int rowsRead = 0;
        IEnumerable<Row> Counting() { foreach (var r in TestData.Blob(50)) { rowsRead++; yield return r; } }
        Named("Components", () => estimator.Fit(ml.Data.LoadFromEnumerable(Counting())));
        Assert.Equal(0, rowsRead);
    }

    /// <summary>Settings that are valid alone but not together with an ML.NET-side setting, or not for this estimator,
    /// are refused the same way, naming the setting, when the estimator is created: the Deep GMM streams only with its
    /// exact E-step and L-BFGS M-step (a NotSupportedException from the engine, after a normalizer before it had read the
    /// whole view), and RNADE's <c>ModelOptions</c> takes a <c>DeepRnadeOptions</c> (a subclass) that the engine
    /// refused only after the training data was copied, naming the engine's call instead of the catalog's DeepRnade.</summary>
    [Fact]
    public void SettingsThatDoNotGoTogether_AreRefused_AtConstruction_AndAtFitBeforeReadingData()
    {
        var ml = new MLContext(seed: 1);
        var c = ml.DensityEstimation;
        foreach (var (setting, options) in new (string, Models.DeepGmm.DeepGmmOptions)[]
        {
            ("ExactPathLimit", new() { Layers = new[] { 8, 8, 8 } }),   // 512 paths, above the exact E-step's 256
            ("EStep", new() { EStep = Models.DeepGmm.DeepGmmEStep.Heuristic }),
            ("MStep", new() { MStep = Models.DeepGmm.DeepGmmMStep.Minibatch }),
        })
        {
            var e = Assert.ThrowsAny<ArgumentException>(() => c.DeepGmm(new DeepGmmEstimator.Options { TrainingData = DensityTrainingData.Streamed, ModelOptions = options }));
            Assert.Equal(setting, e.ParamName);
            Assert.Contains("TrainingData = Streamed", e.Message);
            Assert.NotNull(c.DeepGmm(new DeepGmmEstimator.Options { ModelOptions = options }));   // in memory they train
        }
        Assert.NotNull(c.DeepGmm(new DeepGmmEstimator.Options
        {
            TrainingData = DensityTrainingData.Streamed,
            ModelOptions = new() { Layers = new[] { 8, 8, 8 }, EStep = Models.DeepGmm.DeepGmmEStep.Exact },
        }));

        var deep = Assert.ThrowsAny<ArgumentException>(() => c.Rnade(new RnadeEstimator.Options { ModelOptions = new Models.Rnade.DeepRnadeOptions() }));
        Assert.Equal("ModelOptions", deep.ParamName);
        Assert.Contains("mlContext.DensityEstimation.DeepRnade(", deep.Message);

        // Changed after construction: refused by Fit before a row is read.
        int rowsRead = 0;
        IEnumerable<Row> Counting() { foreach (var r in TestData.Blob(50)) { rowsRead++; yield return r; } }
        var gmmOptions = new DeepGmmEstimator.Options { TrainingData = DensityTrainingData.Streamed, ModelOptions = new() { MaxIterations = 1 } };
        var gmm = c.DeepGmm(gmmOptions);
        gmmOptions.ModelOptions.MStep = Models.DeepGmm.DeepGmmMStep.Minibatch;
        Assert.Equal("MStep", Assert.ThrowsAny<ArgumentException>(() => gmm.Fit(ml.Data.LoadFromEnumerable(Counting()))).ParamName);
        var rnadeOptions = TestData.SmallRnade();
        var rnade = c.Rnade(rnadeOptions);
        rnadeOptions.ModelOptions = new Models.Rnade.DeepRnadeOptions();
        Assert.Equal("ModelOptions", Assert.ThrowsAny<ArgumentException>(() => rnade.Fit(ml.Data.LoadFromEnumerable(Counting()))).ParamName);
        Assert.Equal(0, rowsRead);
    }

    /// <summary>A validation view of another width is named as such: it said "the model was trained on 4" before any
    /// training, without saying that the validation view was the one at fault.</summary>
    [Fact]
    public void Fit_WithAValidationViewOfAnotherWidth_SaysItIsTheValidationData()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TestData.Blob(50));
        var wrong = ml.Data.LoadFromEnumerable(new[] { new WrongSize() });
        foreach (var data in new[] { DensityTrainingData.InMemory, DensityTrainingData.Streamed })
        {
            var estimator = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => { o.ModelOptions.MaxEpochs = 1; o.TrainingData = data; }));
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => estimator.Fit(train, wrong));
            // Like every other check of the validation view (docs/mlnet.md): the message starts "The validation data:" and
            // ParamName names that argument (it used to be "schema", with the view named mid-sentence).
            Assert.StartsWith("The validation data: feature column 'Features' has 5 slots but the training data's has 4", e.Message);
            Assert.Equal("validationData", e.ParamName);
        }
    }

    [Theory]
    [InlineData(1024)]
    [InlineData(100)]
    [InlineData(1)]
    public void Transform_OnNaN_ThrowsDataValidationException_WithRowRelativeToTheCursor(int blockRows)
    {
        var ml = new MLContext(seed: 1);
        var transformer = Trained(ml, o => o.ScoringBlockRows = blockRows);
        var data = TestData.Blob(500, seed: 9);
        data[321].Features[2] = float.NaN;
        var output = transformer.Transform(ml.Data.LoadFromEnumerable(data));
        var e = Assert.Throws<DataValidationException>(() => output.GetColumn<float>("Score").ToArray());
        Assert.Equal(321, e.Row);
        Assert.Equal(2, e.Column);
        Assert.Contains("'Features'", e.Message);
        Assert.Contains("NaN", e.Message);

        // PredictionEngine path: the row is the one being predicted.
        var engine = ml.Model.CreatePredictionEngine<Row, Scored>(transformer);
        var e2 = Assert.Throws<DataValidationException>(() => engine.Predict(data[321]));
        Assert.Equal(2, e2.Column);
    }

    /// <summary>A PredictionEngine's input row used to be reported as "row N" with N the engine's prediction count (its
    /// input row's Position), which is no row of any data the user has; the message now names the input row and the
    /// prediction, and Row is −1. A cursor's row is its position in the data view; one of several parallel cursors does
    /// not know it (its position counts its own rows) and says so.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void BadInput_IsReportedAtItsRealRow_OrAsThePredictionsInputRow(bool sample)
    {
        var ml = new MLContext(seed: 1);
        var transformer = Trained(ml, o => { o.ScoringBlockRows = 64; if (sample) o.SampleColumnName = "Sample"; });
        var data = TestData.Blob(500, seed: 9);
        data[321].Features[2] = float.NaN;

        var engine = ml.Model.CreatePredictionEngine<Row, Scored>(transformer);
        for (int i = 0; i < 5; i++) engine.Predict(data[i]);
        var e = Assert.Throws<DataValidationException>(() => engine.Predict(data[321])); // the engine's 6th prediction
        Assert.Equal((-1L, 2), (e.Row, e.Column));
        Assert.DoesNotContain("row 5", e.Message);
        Assert.Contains("input row of a PredictionEngine", e.Message);
        Assert.Contains("prediction number 6", e.Message);
        Assert.Contains("NaN", e.Message);

        // A single cursor names the row's position in the view.
        var output = transformer.Transform(ml.Data.LoadFromEnumerable(data));
        var one = Assert.Throws<DataValidationException>(() => output.GetColumn<float>("Score").ToArray());
        Assert.Equal((321L, 2), (one.Row, one.Column));
        Assert.Contains("row 321", one.Message);

        // Parallel cursors over a cached view count their own rows (this one used to say "row 65"): the row number is unknown, and said so.
        output = transformer.Transform(ml.Data.Cache(ml.Data.LoadFromEnumerable(data)));
        var cursors = output.GetRowCursorSet(output.Schema.Where(c => c.Name is "Score" or "Sample"), 3);
        var errors = new List<DataValidationException>();
        foreach (var cursor in cursors)
        {
            try { while (cursor.MoveNext()) { } }
            catch (DataValidationException x) { errors.Add(x); }
            finally { cursor.Dispose(); }
        }
        Assert.True(cursors.Length > 1, "the cached view should give parallel cursors");
        var error = Assert.Single(errors);
        Assert.Equal((-1L, 2), (error.Row, error.Column));
        Assert.Contains("row number unknown", error.Message);
        Assert.DoesNotContain("row 65", error.Message);

        // An ML.NET transform after ours makes even GetColumn read our stage on parallel cursors (ML.NET's consolidating
        // cursor), and ML.NET wraps our exception. The message used to tell the user that GetColumn would name the row;
        // it now says why it did not and how to read this stage with one cursor, which does name it.
        var source = ml.Data.LoadFromEnumerable(data);
        var before = ml.Transforms.Concatenate("Features", "Features").Fit(source);   // our input made by an ML.NET mapper, as in a user pipeline
        var chain = new TransformerChain<ITransformer>(before, transformer, ml.Transforms.CopyColumns("ScoreCopy", "Score").Fit(transformer.Transform(before.Transform(source))));
        var piped = chain.Transform(ml.Data.LoadFromEnumerable(data));
        var wrapped = Assert.Throws<InvalidOperationException>(() => piped.GetColumn<float>("ScoreCopy").ToArray());
        Exception? e2 = wrapped;
        while (e2 is not null and not DataValidationException) e2 = e2.InnerException;   // ML.NET may wrap it more than once
        var inner = Assert.IsType<DataValidationException>(e2);
        Assert.Contains("row number unknown", inner.Message);
        Assert.Contains("Splitter/consolidator", inner.Message);
        Assert.Contains("pipeline up to this stage", inner.Message);
        var stageAlone = Assert.Throws<DataValidationException>(() => transformer.Transform(ml.Data.LoadFromEnumerable(data)).GetColumn<float>("Score").ToArray());
        Assert.Equal(321L, stageAlone.Row);
    }

    [Fact]
    public void Fit_OnNaN_ThrowsDataValidationException_NamingTheRow()
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.Blob(80);
        data[42].Features[1] = float.PositiveInfinity;
        var e = Assert.Throws<DataValidationException>(() => ml.DensityEstimation.Rnade(TestData.SmallRnade()).Fit(ml.Data.LoadFromEnumerable(data)));
        Assert.Equal(42, e.Row);
        Assert.Equal(1, e.Column);
        Assert.Equal("Features", e.DataSource);            // the ML.NET column, not the engine's "training data"
        Assert.Equal(DataSetKind.Training, e.DataSet);      // which data set, typed: no need to read the message
        Assert.Contains("in the training data", e.Message);
        Assert.IsType<DataValidationException>(e.InnerException);

        // A bad row of the validation view is reported as such.
        var valid = TestData.Blob(30);
        valid[17].Features[0] = float.NaN;
        var ev = Assert.Throws<DataValidationException>(() =>
            ml.DensityEstimation.Rnade(TestData.SmallRnade()).Fit(ml.Data.LoadFromEnumerable(TestData.Blob(80)), ml.Data.LoadFromEnumerable(valid)));
        Assert.Equal((17L, 0, "Features", DataSetKind.Validation), (ev.Row, ev.Column, ev.DataSource, ev.DataSet));
        Assert.Contains("in the validation data", ev.Message);
    }
}

public class EnvelopeTests
{
    [Fact]
    public void Envelope_RoundTrips_AndRejectsCorruption()
    {
        var ml = new MLContext(seed: 1);
        var t = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => { o.ModelOptions.MaxEpochs = 1; o.SampleColumnName = "S"; o.SampleSeed = 42; }))
            .Fit(ml.Data.LoadFromEnumerable(TestData.Blob(60)));
        string text = ModelEnvelope.Encode(t.Model, t.Settings);
        var (model, settings) = ModelEnvelope.Decode(text);
        Assert.Equal(t.Settings, settings);
        Assert.Equal(t.Model.ToBytes(), model.ToBytes());

        Assert.Throws<Persistence.InvalidModelFileException>(() => ModelEnvelope.Decode(text.AsSpan(0, text.Length / 2)));
        Assert.Throws<Persistence.InvalidModelFileException>(() => ModelEnvelope.Decode("not base64!"));
        // Flip one byte inside the engine file: its CRC catches it.
        var bytes = Convert.FromBase64String(text);
        bytes[^10] ^= 0x40;
        Assert.Throws<Persistence.InvalidModelFileException>(() => ModelEnvelope.Decode(Convert.ToBase64String(bytes)));
    }

    /// <summary>A damaged byte in the envelope's settings (not the engine file, which has its own CRC) used to load: a
    /// threshold byte gave another finite threshold, flagging other rows, a name byte renamed an output column. Each
    /// byte is found by encoding the setting twice with different values, so the test does not depend on the layout.
    /// Envelopes of version 1, which had no such checksum, still load.</summary>
    [Fact]
    public void Envelope_RejectsADamagedSetting_AndStillReadsVersion1()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TestData.Blob(60));
        var t = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.ModelOptions.MaxEpochs = 1)).Fit(data);
        var good = Convert.FromBase64String(ModelEnvelope.Encode(t.Model, t.Settings));
        foreach (var other in new[] { t.Settings with { Threshold = t.Settings.Threshold * 2 }, t.Settings with { ScoreColumnName = "Scord" } })
        {
            var changed = Convert.FromBase64String(ModelEnvelope.Encode(t.Model, other));
            int at = Enumerable.Range(0, good.Length).First(i => good[i] != changed[i]);
            var damaged = (byte[])good.Clone();
            damaged[at] = changed[at];
            string text = Convert.ToBase64String(damaged);
            Assert.Contains("checksum mismatch", Assert.Throws<Persistence.InvalidModelFileException>(() => ModelEnvelope.Decode(text)).Message);
            var zip = new MemoryStream();
            ml.Model.Save(Surrogate.Build(ml, t.Settings, t.Model.Dimension, text), data.Schema, zip);
            Assert.Throws<Persistence.InvalidModelFileException>(() => new MLContext().Model.LoadWithLiveDensityModels(new MemoryStream(zip.ToArray()), out _));
        }

        // Version 1: the same bytes without the settings' CRC (the 4 bytes before the engine file's length).
        int crcAt = good.Length - t.Model.ToBytes().Length - 4 - 4;
        var version1 = good[..crcAt].Concat(good[(crcAt + 4)..]).ToArray();
        version1[4] = 1;
        var (model, settings) = ModelEnvelope.Decode(Convert.ToBase64String(version1));
        Assert.Equal(t.Settings, settings);
        Assert.Equal(t.Model.ToBytes(), model.ToBytes());
    }

    /// <summary>Issue 13 (6): the block size is bounded in the options and when it comes back from a saved model (the
    /// envelope text and a whole ML.NET zip); a forged value is a clear <see cref="Persistence.InvalidModelFileException"/>,
    /// not an <c>int.MaxValue</c>-row buffer.</summary>
    [Fact]
    public void ScoringBlockRows_IsBounded_InOptions_AndWhenReadFromAZip()
    {
        var ml = new MLContext(seed: 1);
        foreach (int bad in new[] { 0, DensityEstimatorOptions.MaxScoringBlockRows + 1, 50_000_000, int.MaxValue })
            Assert.Contains("ScoringBlockRows", Assert.Throws<ArgumentOutOfRangeException>(() => ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.ScoringBlockRows = bad))).Message);
        var t = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => { o.ModelOptions.MaxEpochs = 1; o.ScoringBlockRows = DensityEstimatorOptions.MaxScoringBlockRows; }))
            .Fit(ml.Data.LoadFromEnumerable(TestData.Blob(60)));
        Assert.Equal(DensityEstimatorOptions.MaxScoringBlockRows, ModelEnvelope.Decode(ModelEnvelope.Encode(t.Model, t.Settings)).Settings.ScoringBlockRows);
        var input = ml.Data.LoadFromEnumerable(TestData.Blob(50, seed: 3));
        foreach (var forged in new[]
                 {
                     t.Settings with { ScoringBlockRows = int.MaxValue }, t.Settings with { ScoringBlockRows = 50_000_000 },
                     t.Settings with { ScoringBlockRows = 0 }, t.Settings with { ScoringBlockRows = -5 },
                     t.Settings with { Contamination = double.NaN }, t.Settings with { Threshold = float.NaN },
                 })
        {
            Assert.Throws<Persistence.InvalidModelFileException>(() => ModelEnvelope.Decode(ModelEnvelope.Encode(t.Model, forged)));
            var zip = new MemoryStream();
            ml.Model.Save(new DensityTransformer(ml, t.Model, forged), input.Schema, zip);
            zip.Position = 0;
            var loaded = new MLContext().Model.Load(zip, out _);
            Assert.Throws<Persistence.InvalidModelFileException>(() => loaded.GetDensityTransformer());
            var e = Record.Exception(() => loaded.Transform(input).GetColumn<float>("Score").ToArray());
            Assert.True(e is Persistence.InvalidModelFileException || e?.InnerException is Persistence.InvalidModelFileException,
                $"scoring through the loaded zip: {e}");
        }
    }
    /// <summary>A Gaussian IWAE that does not standardise its inputs (Standardize = false; the default before session 27)
    /// fitted on features offset by 1e7 — timestamps, prices — diverged with the engine's generic advice, which spoke of
    /// spreads above 1e35 and named neither the column nor the data; the error now names the feature column, its largest
    /// value with row and slot, and the ML.NET normaliser that fixes it (and the fix works). With the default
    /// (standardised inputs) the same fit converges and scores the raw rows.</summary>
    [Fact]
    public void ADivergedFitNamesTheColumnAndItsLargestValue_AndSaysHowToStandardise()
    {
        var ml = new MLContext(seed: 1);
        var rows = TestData.Blob(200, seed: 4);
        foreach (var r in rows) for (int c = 0; c < Row.D; c++) r.Features[c] += 1e7f;
        rows[37].Features[2] = 2e7f;
        var view = ml.Data.LoadFromEnumerable(rows);
        IwaeEstimator Estimator(bool standardize = false) => ml.DensityEstimation.Iwae(new IwaeEstimator.Options
        {
            ModelOptions = new Models.Iwae.IwaeOptions { Likelihood = Models.Iwae.IwaeLikelihood.Gaussian, LatentDimensions = new[] { 2 }, HiddenUnits = new[] { 8 }, MaxEpochs = 3, EvaluationSamples = 10, Standardize = standardize },
        });
        var standardized = Estimator(standardize: true).Fit(view);
        Assert.All(standardized.Transform(view).GetColumn<float>("LogDensity"), v => Assert.True(float.IsFinite(v)));
        var e = Assert.Throws<Training.TrainingDivergedException>(() => Estimator().Fit(view));
        Assert.Contains("feature column 'Features'", e.Message);
        Assert.Contains("is 2E+07 (row 37, slot 2)", e.Message);
        Assert.Contains("ml.Transforms.NormalizeMeanVariance(\"Features\")", e.Message);
        Assert.DoesNotContain("Data of extreme scale", e.Message);
        var fixedModel = ml.Transforms.NormalizeMeanVariance("Features").Append(Estimator()).Fit(view);
        Assert.All(fixedModel.Transform(view).GetColumn<float>("LogDensity"), v => Assert.True(float.IsFinite(v)));
    }
}
