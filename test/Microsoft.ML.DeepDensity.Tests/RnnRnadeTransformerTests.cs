using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

public class RnnRnadeTransformerTests
{
    public sealed class SequenceRow
    {
        public float[] Features = Array.Empty<float>();
        public float Label;   // AnomalyDetection.Evaluate: 1 = anomaly
    }

    public sealed class FrameRow
    {
        [VectorType(2)] public float[] Features = new float[2];
        public int SequenceId;
        public float Order;
        public float Label;   // AnomalyDetection.Evaluate: 1 = anomaly
    }

    /// <summary>2-d rotating AR(1) sequences of 6–14 frames, x_t = 0.95·R(0.6)·x_{t−1} + 0.3 ε, stationary start: shuffling
    /// the frames in time keeps their marginal and breaks the rotation.</summary>
    private static List<float[]> ArSequences(int count, ulong seed)
    {
        var rng = new RandomStream(seed);
        var result = new List<float[]>();
        double c = 0.95 * Math.Cos(0.6), sn = 0.95 * Math.Sin(0.6), sd = 0.3 / Math.Sqrt(1 - 0.95 * 0.95);
        for (int s = 0; s < count; s++)
        {
            int length = 6 + rng.NextInt(9);
            var x = new float[length * 2];
            double a = rng.NextGaussian() * sd, b = rng.NextGaussian() * sd;
            for (int t = 0; t < length; t++)
            {
                if (t > 0) (a, b) = (c * a - sn * b + 0.3 * rng.NextGaussian(), sn * a + c * b + 0.3 * rng.NextGaussian());
                x[2 * t] = (float)a; x[2 * t + 1] = (float)b;
            }
            result.Add(x);
        }
        return result;
    }

    /// <summary>The same frames in a random time order: the same marginals, no temporal structure.</summary>
    private static float[] TimeShuffled(float[] sequence, RandomStream rng)
    {
        int n = sequence.Length / 2;
        var order = Enumerable.Range(0, n).ToArray();
        rng.Shuffle(order.AsSpan());
        var result = new float[sequence.Length];
        for (int t = 0; t < n; t++) { result[2 * t] = sequence[2 * order[t]]; result[2 * t + 1] = sequence[2 * order[t] + 1]; }
        return result;
    }

    private static RnnRnadeOptions Small() => new() { HiddenUnits = 8, Components = 2, RecurrentUnits = 8, MaxEpochs = 60, LearningRate = 1e-2f, BatchSize = 16 };

    /// <summary>Engine options changed after the whole-sequence estimator was made are refused at Fit before a row is
    /// read, naming the setting (as the row estimators and the frame-row estimator do): they were refused by the
    /// trainer only after the whole view had been read.</summary>
    [Fact]
    public void WholeSequences_EngineOptionsChangedAfterConstruction_AreRefusedBeforeARowIsRead()
    {
        var ml = new MLContext(seed: 1);
        var bad = Assert.ThrowsAny<ArgumentException>(() => ml.DensityEstimation.RnnRnade(new SequenceDensityEstimator.Options { FrameSize = 2 }, new RnnRnadeOptions { RecurrentUnits = 0 }));
        Assert.Contains("RecurrentUnits", bad.Message);
        var modelOptions = Small();
        var estimator = ml.DensityEstimation.RnnRnade(new SequenceDensityEstimator.Options { FrameSize = 2 }, modelOptions);
        modelOptions.HiddenUnits = 0;
        int rowsRead = 0;
        IEnumerable<SequenceRow> Counting() { foreach (var s in ArSequences(20, 1)) { rowsRead++; yield return new SequenceRow { Features = s }; } }
        var e = Assert.ThrowsAny<ArgumentException>(() => estimator.Fit(ml.Data.LoadFromEnumerable(Counting())));
        Assert.Contains("HiddenUnits", e.Message);
        Assert.Equal(0, rowsRead);
    }

    [Fact]
    public void WholeSequences_AModelNoFileCouldHold_IsRefusedBeforeARowIsRead()
    {
        // The frame size and the engine's options fix the model's size: one too large for any model file is refused at
        // Fit before the view is read (the engine would refuse it too, but only after the whole view had been read).
        var ml = new MLContext(seed: 1);
        var options = new SequenceDensityEstimator.Options { FrameSize = 2 };
        var modelOptions = new RnnRnadeOptions { HiddenUnits = 1000 };   // 200,000 × 1,000 × (1 + 3K) weights: billions
        var estimator = ml.DensityEstimation.RnnRnade(options, modelOptions);
        options.FrameSize = 200_000;
        int rowsRead = 0;
        IEnumerable<SequenceRow> Counting() { foreach (var s in ArSequences(20, 1)) { rowsRead++; yield return new SequenceRow { Features = s }; } }
        var e = Assert.Throws<DataValidationException>(() => estimator.Fit(ml.Data.LoadFromEnumerable(Counting())));
        Assert.Contains("200,000", e.Message);
        Assert.Contains("model file", e.Message);
        Assert.Equal(0, rowsRead);
        var refused = Assert.Throws<DataValidationException>(() => ml.DensityEstimation.RnnRnade(options, modelOptions));
        Assert.Contains("200,000", refused.Message);
    }

    [Fact]
    public void WholeSequences_ValuesEqualTheEngine_DetectTimeShuffledSequences_AndSurviveSaveLoad()
    {
        var ml = new MLContext(seed: 1);
        var train = ArSequences(200, 1).Select(s => new SequenceRow { Features = s }).ToList();
        var rng = new RandomStream(9);
        var test = ArSequences(60, 2).Select((s, i) => i % 3 == 0 ? new SequenceRow { Features = TimeShuffled(s, rng), Label = 1 } : new SequenceRow { Features = s }).ToList();
        var estimator = ml.DensityEstimation.RnnRnade(new SequenceDensityEstimator.Options { FrameSize = 2 }, Small());
        var transformer = estimator.Fit(ml.Data.LoadFromEnumerable(train));
        var scored = transformer.Transform(ml.Data.LoadFromEnumerable(test));

        var batch = SequenceBatch.FromSequences(test.Select(r => r.Features).ToList(), 2);
        var engine = transformer.Model.LogDensity(batch);
        var frames = new float[batch.TotalFrames];
        transformer.Model.FrameLogDensity(batch, frames);
        var logDensity = scored.GetColumn<float>("LogDensity").ToArray();
        var perFrame = scored.GetColumn<float>("LogDensityPerFrame").ToArray();
        var frameColumn = scored.GetColumn<float[]>("FrameLogDensities").ToArray();
        for (int i = 0; i < test.Count; i++)
        {
            Assert.Equal(engine[i], logDensity[i], 3);
            Assert.Equal(engine[i] / batch.Length(i), perFrame[i], 4);
            Assert.Equal(frames.AsSpan(batch.Offsets[i], batch.Length(i)).ToArray(), frameColumn[i]);
        }
        var metrics = ml.AnomalyDetection.Evaluate(scored);
        Assert.True(metrics.AreaUnderRocCurve > 0.9, $"AUC {metrics.AreaUnderRocCurve}");

        var zip = Path.Combine(TestTemp.Directory("dd-rnnrnade-"), "model.zip");
        ml.Model.Save(transformer, ml.Data.LoadFromEnumerable(train).Schema, zip);
        var ml2 = new MLContext(seed: 5);
        var loaded = ml2.Model.Load(zip, out _);
        Assert.Equal(logDensity, loaded.Transform(ml2.Data.LoadFromEnumerable(test)).GetColumn<float>("LogDensity").ToArray());
        // The engine model comes back out of the live and the loaded pipeline (for sampling).
        Assert.Same(transformer.Model, transformer.GetSequenceDensityModel());
        Assert.Equal(transformer.Model.ToBytes(), loaded.GetSequenceDensityModel(ml2).ToBytes());
        Assert.Throws<InvalidOperationException>(() => ml2.Transforms.CopyColumns("A", "Features").Fit(ml2.Data.LoadFromEnumerable(test)).GetSequenceDensityModel());
        // So does its anomaly threshold (what 'ddml info' shows).
        Assert.Equal(transformer.Threshold, transformer.GetSequenceAnomalyThreshold());
        Assert.Equal(transformer.Threshold, loaded.GetSequenceAnomalyThreshold(ml2));
        Assert.Throws<InvalidOperationException>(() => ml2.Transforms.CopyColumns("A", "Features").Fit(ml2.Data.LoadFromEnumerable(test)).GetSequenceAnomalyThreshold());
    }

    public sealed class WindowRow
    {
        [VectorType(12)] public float[] Features = new float[12];
    }

    [Fact]
    public void WholeSequences_AKnownSizeColumnOfFixedLengthWindowsWorksInAPipeline()
    {
        var ml = new MLContext(seed: 1);
        var rows = ArSequences(60, 7).Where(s => s.Length >= 12).Select(s => new WindowRow { Features = s[..12] }).ToList();
        var pipeline = ml.Transforms.CopyColumns("Window", "Features")
            .Append(ml.DensityEstimation.RnnRnade(new SequenceDensityEstimator.Options { FeatureColumnName = "Window", FrameSize = 2 }, Small()));
        var dv = ml.Data.LoadFromEnumerable(rows);
        var shape = pipeline.GetOutputSchema(SchemaShapeFactory.FromType<WindowRow>(ml));
        Assert.Contains(shape, c => c.Name == "FrameLogDensities" && c.Kind == SchemaShape.Column.VectorKind.VariableVector);
        var model = pipeline.Fit(dv);
        var frames = model.Transform(dv).GetColumn<float[]>("FrameLogDensities").ToArray();
        Assert.All(frames, f => Assert.Equal(6, f.Length));
    }

    [Fact]
    public void WholeSequences_ALengthThatIsNotAMultipleOfTheFrameSizeNamesTheRow()
    {
        var ml = new MLContext(seed: 1);
        var rows = ArSequences(6, 3).Select(s => new SequenceRow { Features = s }).ToList();
        rows[4].Features = rows[4].Features[..^1];
        var estimator = ml.DensityEstimation.RnnRnade("Features", frameSize: 2, maxEpochs: 1);
        var e = Assert.Throws<DataValidationException>(() => estimator.Fit(ml.Data.LoadFromEnumerable(rows)));
        Assert.Equal(4, e.Row);
        Assert.Contains("frame size 2", e.Message);
    }

    /// <summary>Frame rows of the sequences, interleaved round-robin (sequence i has id 100 + i, order 10·t).</summary>
    private static List<FrameRow> Interleaved(List<float[]> sequences, Func<int, int, bool>? anomaly = null)
    {
        var rows = new List<FrameRow>();
        for (int t = 0; sequences.Any(s => s.Length > 2 * t); t++)
            for (int i = 0; i < sequences.Count; i++)
                if (sequences[i].Length > 2 * t)
                {
                    bool bad = anomaly?.Invoke(i, t) ?? false;
                    var f = sequences[i].AsSpan(2 * t, 2).ToArray();
                    if (bad) { f[0] += 2.5f; f[1] -= 2.5f; }
                    rows.Add(new FrameRow { Features = f, SequenceId = 100 + i, Order = 10 * t, Label = bad ? 1 : 0 });
                }
        return rows;
    }

    /// <summary>Frame rows score through ML.NET's StatefulCustomMapping, whose cursor reads its inputs even when none of its
    /// outputs is asked for, while its source gives them only when one is: a read of pass-through columns alone —
    /// GetColumn("Label"), a second frame-row model or a normalizer fitted after the first — threw "Operation is not valid
    /// due to the current state of the object". Live and loaded with LoadWithLiveDensityModels they now read.</summary>
    [Fact]
    public void FrameRows_ReadsOfPassThroughColumnsAloneWork_AndStagesAfterTheModelFit()
    {
        var ml = new MLContext(seed: 1);
        var rows = Interleaved(ArSequences(30, 4));
        var view = ml.Data.LoadFromEnumerable(rows);
        RnnRnadeOptions Quick() { var o = Small(); o.MaxEpochs = 2; return o; }
        var first = ml.DensityEstimation.RnnRnade(new RnnRnadeFrameEstimator.Options { ModelOptions = Quick() });
        var transformer = first.Fit(view);
        var expected = transformer.Transform(view).GetColumn<float>("LogDensity").ToArray();

        var zip = Path.Combine(TestTemp.Directory("dd-frames-"), "model.zip");
        ml.Model.Save(transformer, view.Schema, zip);
        foreach (var (what, model) in new (string, ITransformer)[] { ("live", transformer), ("LoadWithLiveDensityModels", new MLContext(seed: 2).Model.LoadWithLiveDensityModels(zip, out _)) })
        {
            var scored = model.Transform(view);
            Assert.Equal(rows.Select(r => r.Label), scored.GetColumn<float>("Label"));
            Assert.Equal(rows.Select(r => r.Order), scored.GetColumn<float>("Order"));
            Assert.Equal(rows.Select(r => r.Features), scored.GetColumn<float[]>("Features"));
            using (var cursor = scored.GetRowCursor(new[] { scored.Schema["Label"] }))
            {
                foreach (var c in scored.Schema) Assert.Equal(c.Name == "Label", cursor.IsColumnActive(c));
                Assert.ThrowsAny<InvalidOperationException>(() => cursor.GetGetter<float>(scored.Schema["LogDensity"]));
            }
            Assert.Equal(expected, scored.GetColumn<float>("LogDensity"));
            Assert.Equal(rows.Count, scored.GetRowCursorSet(new[] { scored.Schema["Order"] }, 2).Sum(c => { using (c) { long n = 0; while (c.MoveNext()) n++; return n; } }));
        }

        // Stages after the model that read only pass-through columns: a normalizer, a second frame-row model.
        var pipeline = first
            .Append(ml.Transforms.NormalizeMinMax("Scaled", "Features"))
            .Append(ml.DensityEstimation.RnnRnade(new RnnRnadeFrameEstimator.Options
            {
                FeatureColumnName = "Scaled", LogDensityColumnName = "LogDensity2", ScoreColumnName = "Score2", PredictedLabelColumnName = "PredictedLabel2", ModelOptions = Quick(),
            }));
        var two = pipeline.Fit(view).Transform(view);
        Assert.Equal(expected, two.GetColumn<float>("LogDensity"));
        Assert.Equal(rows.Count, two.GetColumn<float>("LogDensity2").Count(v => float.IsFinite(v)));
    }

    /// <summary>The row models' schema checks (<see cref="PipelineChecks.SchemaAgreesWith"/>) for both sequence forms: the
    /// estimators' SchemaShape promises what the transformers deliver, also for outputs named like input columns (which take
    /// the input column's place, as in ML.NET), and every load gives the live schema.</summary>
    [Fact]
    public void SequenceSchemasAgreeLiveAndLoaded()
    {
        var ml = new MLContext(seed: 1);
        var sequences = ArSequences(30, 4);
        var wholeRows = ml.Data.LoadFromEnumerable(sequences.Select((s, i) => new SequenceRow { Features = s, Label = i % 5 == 0 ? 1 : 0 }));
        var frameRows = ml.Data.LoadFromEnumerable(Interleaved(sequences));
        RnnRnadeOptions Quick() { var o = Small(); o.MaxEpochs = 2; return o; }
        foreach (var (naming, configure) in new (string, Action<SequenceDensityEstimator.Options>)[]
        {
            ("defaults", _ => { }),
            ("log-density named like the sequence column", o => o.LogDensityColumnName = "Features"),
            ("score named like Label, frame log-densities like the sequence column", o => { o.ScoreColumnName = "Label"; o.FrameLogDensitiesColumnName = "Features"; }),
            ("odd names", o => { o.LogDensityPerFrameColumnName = "per frame (nats)"; o.PredictedLabelColumnName = "is \"odd\", é"; }),
        })
        {
            var options = new SequenceDensityEstimator.Options { FrameSize = 2 };
            configure(options);
            var estimator = ml.DensityEstimation.RnnRnade(options, Quick());
            PipelineChecks.SchemaAgreesWith("whole sequences, " + naming, ml, estimator, estimator.Fit(wholeRows), wholeRows, wholeRows);
        }
        foreach (var (naming, configure) in new (string, Action<RnnRnadeFrameEstimator.Options>)[]
        {
            ("defaults", _ => { }),
            ("log-density named like the frame column", o => o.LogDensityColumnName = "Features"),
            ("score named like the order column, label like the sequence id", o => { o.ScoreColumnName = "Order"; o.PredictedLabelColumnName = "SequenceId"; }),
        })
        {
            var options = new RnnRnadeFrameEstimator.Options { ModelOptions = Quick() };
            configure(options);
            var estimator = ml.DensityEstimation.RnnRnade(options);
            PipelineChecks.SchemaAgreesWith("frame rows, " + naming, ml, estimator, estimator.Fit(frameRows), frameRows, frameRows);
        }
    }

    [Fact]
    public void FrameRows_EachRowGetsItsConditional_SpikesAreDetected_AndSaveLoadKeepsValues()
    {
        var ml = new MLContext(seed: 1);
        var trainSeqs = ArSequences(150, 4);
        var estimator = ml.DensityEstimation.RnnRnade(new RnnRnadeFrameEstimator.Options { ModelOptions = Small() });
        var transformer = estimator.Fit(ml.Data.LoadFromEnumerable(Interleaved(trainSeqs)));

        var testSeqs = ArSequences(40, 5);
        // A spike: one frame jumps off the trajectory (its marginal stays plausible), at step 3 of every fourth sequence.
        var test = Interleaved(testSeqs, (i, t) => i % 4 == 0 && t == 3);
        var spiked = testSeqs.Select((s, i) => { var c = (float[])s.Clone(); if (i % 4 == 0) { c[6] += 2.5f; c[7] -= 2.5f; } return c; }).ToList();
        var batch = SequenceBatch.FromSequences(spiked, 2);
        var frames = new float[batch.TotalFrames];
        transformer.Model.FrameLogDensity(batch, frames);

        var scored = transformer.Transform(ml.Data.LoadFromEnumerable(test));
        var logDensity = scored.GetColumn<float>("LogDensity").ToArray();
        for (int r = 0; r < test.Count; r++)
        {
            int seq = test[r].SequenceId - 100, t = (int)test[r].Order / 10;
            Assert.Equal(frames[batch.Offsets[seq] + t], logDensity[r], 4);
        }
        var metrics = ml.AnomalyDetection.Evaluate(scored);
        Assert.True(metrics.AreaUnderRocCurve > 0.9, $"AUC {metrics.AreaUnderRocCurve}");

        var zip = Path.Combine(TestTemp.Directory("dd-rnnrnade-"), "model.zip");
        ml.Model.Save(transformer, ml.Data.LoadFromEnumerable(test).Schema, zip);
        var ml2 = new MLContext(seed: 5);
        var loaded = ml2.Model.Load(zip, out _);
        Assert.Equal(logDensity, loaded.Transform(ml2.Data.LoadFromEnumerable(test)).GetColumn<float>("LogDensity").ToArray());
        // The engine model comes back out of the live and the loaded pipeline (for sampling).
        Assert.Same(transformer.Model, transformer.GetSequenceDensityModel());
        Assert.Equal(transformer.Model.ToBytes(), loaded.GetSequenceDensityModel(ml2).ToBytes());
        Assert.Throws<InvalidOperationException>(() => ml2.Transforms.CopyColumns("A", "Features").Fit(ml2.Data.LoadFromEnumerable(test)).GetSequenceDensityModel());
        // So does its anomaly threshold (what 'ddml info' shows).
        Assert.Equal(transformer.Threshold, transformer.GetSequenceAnomalyThreshold());
        Assert.Equal(transformer.Threshold, loaded.GetSequenceAnomalyThreshold(ml2));
        Assert.Throws<InvalidOperationException>(() => ml2.Transforms.CopyColumns("A", "Features").Fit(ml2.Data.LoadFromEnumerable(test)).GetSequenceAnomalyThreshold());
    }

    public sealed class FrameScore { public float LogDensity; }

    [Fact]
    public void FrameRows_APredictionEngineScoresAStreamRowByRow()
    {
        var ml = new MLContext(seed: 1);
        var rows = Interleaved(ArSequences(20, 8));
        var transformer = ml.DensityEstimation.RnnRnade("Features", "SequenceId", "Order", maxEpochs: 2).Fit(ml.Data.LoadFromEnumerable(rows));
        var batch = transformer.Transform(ml.Data.LoadFromEnumerable(rows)).GetColumn<float>("LogDensity").ToArray();
        var engine = ml.Model.CreatePredictionEngine<FrameRow, FrameScore>(transformer);
        for (int r = 0; r < 60; r++) Assert.Equal(batch[r], engine.Predict(rows[r]).LogDensity);
    }

    [Fact]
    public void FrameRows_ARowOutOfOrderWithinItsSequenceIsAnError()
    {
        var ml = new MLContext(seed: 1);
        var rows = Interleaved(ArSequences(10, 6));
        var transformer = ml.DensityEstimation.RnnRnade("Features", "SequenceId", "Order", maxEpochs: 1).Fit(ml.Data.LoadFromEnumerable(rows));
        // Swap two rows of sequence 100 (steps 0 and 1 are rows 0 and 10).
        (rows[0], rows[10]) = (rows[10], rows[0]);
        var e = Assert.ThrowsAny<Exception>(() => transformer.Transform(ml.Data.LoadFromEnumerable(rows)).GetColumn<float>("LogDensity").ToArray());
        while (e.InnerException is not null) e = e.InnerException;   // ML.NET wraps errors of its cursor workers
        var order = Assert.IsType<DataValidationException>(e);
        Assert.Contains("increasing order", order.Message);
        // Training accepts any row order (it sorts), but not a repeated order value.
        rows[10].Order = rows[0].Order;
        var dup = Assert.Throws<DataValidationException>(() => ml.DensityEstimation.RnnRnade("Features", "SequenceId", "Order", maxEpochs: 1)
            .Fit(ml.Data.LoadFromEnumerable(rows)));
        Assert.Contains("two rows with order", dup.Message);
    }
}

public class RnnRnadeScoringErrorTests
{
    private static List<float[]> Sequences(int count, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, count).Select(i => Enumerable.Range(0, 2 * (4 + i % 3)).Select(_ => (float)r.NextDouble()).ToArray()).ToList();
    }

    /// <summary>The first <paramref name="steps"/> frames of every sequence as frame rows, step by step across sequences.</summary>
    private static List<RnnRnadeTransformerTests.FrameRow> InterleavedFrames(List<float[]> seqs, int steps)
    {
        var rows = new List<RnnRnadeTransformerTests.FrameRow>();
        for (int t = 0; t < steps; t++)
            for (int i = 0; i < seqs.Count; i++)
                rows.Add(new RnnRnadeTransformerTests.FrameRow { Features = seqs[i].AsSpan(2 * t, 2).ToArray(), SequenceId = i, Order = t });
        return rows;
    }

    /// <summary>The error a PredictionEngine's prediction throws: no row number (its input row is no row of a data
    /// view), said as every scorer says it.</summary>
    private static DataValidationException EngineError(Action predict)
    {
        var e = Assert.Throws<DataValidationException>(predict);
        Assert.Equal(-1, e.Row);
        Assert.Contains("the input row of a PredictionEngine or row mapper", e.Message);
        return e;
    }

    private static DataValidationException Innermost(Exception e)
    {
        while (e.InnerException is not null) e = e.InnerException;   // ML.NET wraps errors of its cursor workers
        return Assert.IsType<DataValidationException>(e);
    }

    /// <summary>A NaN in a frame row being scored names that row (counted from the cursor's start) and the slot: the
    /// stream used to report the frame's index within its own sequence as the row (row 1 here, the row being 7).</summary>
    [Fact]
    public void FrameRows_ANaNWhileScoringNamesTheRowAndTheSlot()
    {
        var ml = new MLContext(seed: 1);
        var rows = InterleavedFrames(Sequences(6, 1), 4);
        var transformer = ml.DensityEstimation.RnnRnade("Features", "SequenceId", "Order", hiddenUnits: 4, recurrentUnits: 4, maxEpochs: 1)
            .Fit(ml.Data.LoadFromEnumerable(rows));
        rows[7].Features[1] = float.NaN;   // sequence 1, its second frame
        var e = Innermost(Assert.ThrowsAny<Exception>(() => transformer.Transform(ml.Data.LoadFromEnumerable(rows)).GetColumn<float>("LogDensity").ToArray()));
        Assert.Equal(7, e.Row);
        Assert.Equal(1, e.Column);
        Assert.Contains("value is NaN", e.Message);
        Assert.Contains("'Features'", e.Message);
    }

    /// <summary>Frame rows through a PredictionEngine (live and after Model.Load): the scorer's count of rows is the engine's
    /// count of predictions, not a row of any data view, so a bad frame is reported with Row −1 and a message naming the
    /// PredictionEngine's input row and the prediction's number (it used to say "row 2"), like the row models' mapper; a
    /// cursor over the loaded model still names the true row.</summary>
    [Fact]
    public void FrameRows_APredictionEngineDoesNotReportItsPredictionCountAsARow()
    {
        var ml = new MLContext(seed: 1);
        var rows = InterleavedFrames(Sequences(6, 1), 4);
        var view = ml.Data.LoadFromEnumerable(rows);
        var transformer = ml.DensityEstimation.RnnRnade("Features", "SequenceId", "Order", hiddenUnits: 4, recurrentUnits: 4, maxEpochs: 1).Fit(view);
        var zip = Path.Combine(TestTemp.Directory("dd-frame-pe-"), "model.zip");
        ml.Model.Save(transformer, view.Schema, zip);
        var ml2 = new MLContext(seed: 2);
        var loaded = ml2.Model.Load(zip, out _);
        var bad = new RnnRnadeTransformerTests.FrameRow { Features = new[] { 0.5f, float.NaN }, SequenceId = 2, Order = 0 };
        foreach (var (context, model) in new[] { (ml, (ITransformer)transformer), (ml2, loaded) })
        {
            var engine = context.Model.CreatePredictionEngine<RnnRnadeTransformerTests.FrameRow, RnnRnadeTransformerTests.FrameScore>(model);
            engine.Predict(rows[0]); engine.Predict(rows[1]);
            var e = EngineError(() => engine.Predict(bad));
            Assert.Equal(1, e.Column);
            Assert.Contains("value is NaN", e.Message);
            Assert.Contains("prediction number 3", e.Message);
            Assert.DoesNotContain("row 2", e.Message);
            var wrong = new RnnRnadeTransformerTests.FrameRow { Features = new[] { 0.5f, 0.5f }, SequenceId = 0, Order = float.NaN };
            var o = Assert.Throws<DataValidationException>(() => engine.Predict(wrong));
            Assert.Equal(-1, o.Row);
            Assert.Contains("prediction number 4", o.Message);
        }
        rows[7].Features[1] = float.NaN;
        // Many engines and cursors, alternating: the scorer tells them apart once per engine or cursor, and must keep doing
        // so once the runtime has recompiled the paths that create them.
        for (int round = 0; round < 40; round++)
        {
            var c = Innermost(Assert.ThrowsAny<Exception>(() => loaded.Transform(ml2.Data.LoadFromEnumerable(rows)).GetColumn<float>("LogDensity").ToArray()));
            Assert.Equal(7, c.Row);
            Assert.DoesNotContain("PredictionEngine", c.Message);
            var engine = ml2.Model.CreatePredictionEngine<RnnRnadeTransformerTests.FrameRow, RnnRnadeTransformerTests.FrameScore>(loaded);
            Assert.Equal(-1, Assert.Throws<DataValidationException>(() => engine.Predict(bad)).Row);
        }
    }

    /// <summary>Scoring errors of the sequence models named internal stand-ins ('sequence column', 'frame column', 'order
    /// column') instead of the user's columns, which the scorer does not see: the saved model now carries their names, so
    /// the live, the loaded and the PredictionEngine paths name 'Seq', 'Frame' and 'Step'.</summary>
    [Fact]
    public void ScoringErrorsNameTheUsersColumns()
    {
        var ml = new MLContext(seed: 1);
        var seqs = Sequences(8, 5);
        var whole = ml.Data.LoadFromEnumerable(seqs.Select(s => new NamedSequence { Seq = s }));
        var wholeModel = ml.DensityEstimation.RnnRnade("Seq", frameSize: 2, hiddenUnits: 4, recurrentUnits: 4, maxEpochs: 1).Fit(whole);
        var frames = new List<NamedFrame>();
        for (int t = 0; t < 4; t++)
            for (int i = 0; i < seqs.Count; i++)
                frames.Add(new NamedFrame { Frame = seqs[i].AsSpan(2 * t, 2).ToArray(), Unit = i, Step = t });
        var frameView = ml.Data.LoadFromEnumerable(frames);
        var frameModel = ml.DensityEstimation.RnnRnade("Frame", "Unit", "Step", hiddenUnits: 4, recurrentUnits: 4, maxEpochs: 1).Fit(frameView);
        foreach (var (model, view, loaded) in new[] { (wholeModel, whole, false), (wholeModel, whole, true), (frameModel, frameView, false), (frameModel, frameView, true) })
        {
            var zip = new MemoryStream();
            ml.Model.Save(model, view.Schema, zip);
            zip.Position = 0;
            var ml2 = new MLContext(seed: 2);
            ITransformer t = loaded ? ml2.Model.Load(zip, out _) : model;
            if (view == whole)
            {
                var bad = new NamedSequence { Seq = new[] { 1f, float.NaN } };
                var e = Innermost(Assert.ThrowsAny<Exception>(() => t.Transform(ml2.Data.LoadFromEnumerable(new[] { bad })).GetColumn<float>("LogDensity").ToArray()));
                Assert.Equal("Seq", e.DataSource);
                Assert.StartsWith("Invalid data at 'Seq'", e.Message);
                var pe = ml2.Model.CreatePredictionEngine<NamedSequence, RnnRnadeTransformerTests.FrameScore>(t);
                Assert.Equal("Seq", Assert.Throws<DataValidationException>(() => pe.Predict(new NamedSequence { Seq = new[] { 1f, 2f, 3f } })).DataSource);
            }
            else
            {
                var pe = ml2.Model.CreatePredictionEngine<NamedFrame, RnnRnadeTransformerTests.FrameScore>(t);
                Assert.Equal("Frame", Assert.Throws<DataValidationException>(() => pe.Predict(new NamedFrame { Frame = new[] { float.NaN, 0f }, Unit = 1, Step = 0 })).DataSource);
                Assert.Equal("Step", Assert.Throws<DataValidationException>(() => pe.Predict(new NamedFrame { Frame = new[] { 0f, 0f }, Unit = 1, Step = float.NaN })).DataSource);
            }
        }
    }

    /// <summary>Frame rows without a sequence id (an empty text id, a NaN numeric one) were silently grouped into one
    /// sequence of their own, in training and in scoring; they are refused naming the id column and the row, as ddml does.</summary>
    [Fact]
    public void FrameRowsWithoutASequenceIdAreRefused()
    {
        var ml = new MLContext(seed: 1);
        var seqs = Sequences(6, 7);
        var rows = new List<TextIdFrame>();
        for (int t = 0; t < 4; t++)
            for (int i = 0; i < seqs.Count; i++)
                rows.Add(new TextIdFrame { Features = seqs[i].AsSpan(2 * t, 2).ToArray(), Id = "s" + i, Order = t });
        var estimator = ml.DensityEstimation.RnnRnade("Features", "Id", "Order", hiddenUnits: 4, recurrentUnits: 4, maxEpochs: 1);
        var model = estimator.Fit(ml.Data.LoadFromEnumerable(rows));
        rows[9].Id = "";
        var e = Assert.Throws<DataValidationException>(() => estimator.Fit(ml.Data.LoadFromEnumerable(rows)));
        Assert.Equal(9, e.Row);
        Assert.Equal("Id", e.DataSource);
        Assert.Contains("sequence id is missing", e.Message);
        var s = Innermost(Assert.ThrowsAny<Exception>(() => model.Transform(ml.Data.LoadFromEnumerable(rows)).GetColumn<float>("LogDensity").ToArray()));
        Assert.Equal(9, s.Row);
        Assert.Equal("Id", s.DataSource);
        var nan = InterleavedFrames(seqs, 4).Select((r, i) => new FloatIdFrame { Features = r.Features, Id = i == 5 ? float.NaN : r.SequenceId, Order = r.Order }).ToList();
        e = Assert.Throws<DataValidationException>(() => ml.DensityEstimation.RnnRnade("Features", "Id", "Order", maxEpochs: 1).Fit(ml.Data.LoadFromEnumerable(nan)));
        Assert.Equal(5, e.Row);
        Assert.Contains("sequence id is missing", e.Message);
    }

    /// <summary>A NaN numeric sequence id was refused in Fit but scored as the text id "NaN" (one sequence of every
    /// id-less row); scoring refuses it too, naming the id column and the row: on a cursor, after Model.Load, and in a
    /// PredictionEngine (no row number there).</summary>
    [Fact]
    public void ANaNNumericSequenceIdIsRefusedInScoring()
    {
        var ml = new MLContext(seed: 1);
        var rows = InterleavedFrames(Sequences(6, 7), 4).Select(r => new FloatIdFrame { Features = r.Features, Id = r.SequenceId, Order = r.Order }).ToList();
        var view = ml.Data.LoadFromEnumerable(rows);
        var model = ml.DensityEstimation.RnnRnade("Features", "Id", "Order", hiddenUnits: 4, recurrentUnits: 4, maxEpochs: 1).Fit(view);
        var before = model.Transform(view).GetColumn<float>("LogDensity").ToArray();
        var zip = Path.Combine(TestTemp.Directory("dd-nan-id-"), "model.zip");
        ml.Model.Save(model, view.Schema, zip);
        var ml2 = new MLContext(seed: 2);
        var loaded = ml2.Model.Load(zip, out _);
        Assert.Equal(before, loaded.Transform(view).GetColumn<float>("LogDensity").ToArray());   // ids that are numbers: unchanged
        var bad = rows.Select(r => new FloatIdFrame { Features = r.Features, Id = r.Id, Order = r.Order }).ToList();
        bad[8].Id = float.NaN;
        foreach (var (context, t) in new[] { (ml, (ITransformer)model), (ml2, loaded) })
        {
            var e = Innermost(Assert.ThrowsAny<Exception>(() => t.Transform(context.Data.LoadFromEnumerable(bad)).GetColumn<float>("LogDensity").ToArray()));
            Assert.Equal(8, e.Row);
            Assert.Equal("Id", e.DataSource);
            Assert.Contains("sequence id is missing", e.Message);
            var engine = context.Model.CreatePredictionEngine<FloatIdFrame, RnnRnadeTransformerTests.FrameScore>(t);
            var p = EngineError(() => engine.Predict(bad[8]));
            Assert.Equal("Id", p.DataSource);
        }
    }

    public sealed class TextIdFrame { [VectorType(2)] public float[] Features = new float[2]; public string Id = ""; public float Order; }
    public sealed class FloatIdFrame { [VectorType(2)] public float[] Features = new float[2]; public float Id; public float Order; }

    public sealed class NamedSequence { public float[] Seq = Array.Empty<float>(); }
    public sealed class NamedFrame { [VectorType(2)] public float[] Frame = new float[2]; public int Unit; public float Step; }

    /// <summary>A NaN in a whole sequence being scored: the engine's "row 0" (its one-sequence batch) is not the row's
    /// number, which the mapping does not see; it is reported as unknown (−1) with the frame and the slot.</summary>
    [Fact]
    public void WholeSequences_ANaNWhileScoringDoesNotReportAWrongRow()
    {
        var ml = new MLContext(seed: 1);
        var rows = Sequences(8, 2).Select(s => new RnnRnadeTransformerTests.SequenceRow { Features = s }).ToList();
        var transformer = ml.DensityEstimation.RnnRnade("Features", frameSize: 2, hiddenUnits: 4, recurrentUnits: 4, maxEpochs: 1)
            .Fit(ml.Data.LoadFromEnumerable(rows));
        rows[5].Features[3] = float.NaN;   // frame 1, slot 1
        var e = Innermost(Assert.ThrowsAny<Exception>(() => transformer.Transform(ml.Data.LoadFromEnumerable(rows)).GetColumn<float>("LogDensity").ToArray()));
        Assert.Equal(-1, e.Row);
        Assert.Equal(1, e.Column);
        Assert.Contains("frame 1", e.Message);
        Assert.Contains("row number unknown", e.Message);
        // A PredictionEngine's input row is no row of any data view: said as the frame-row and row-model scorers say it
        // (it used to say "row number unknown"), for a bad value and for a bad length alike.
        var engine = ml.Model.CreatePredictionEngine<RnnRnadeTransformerTests.SequenceRow, RnnRnadeTransformerTests.FrameScore>(transformer);
        var p = EngineError(() => engine.Predict(rows[5]));
        Assert.Equal(1, p.Column);
        Assert.Equal("Features", p.DataSource);
        Assert.Contains("frame 1", p.Message);
        Assert.DoesNotContain("row number unknown", p.Message);
        var odd = EngineError(() => engine.Predict(new RnnRnadeTransformerTests.SequenceRow { Features = new[] { 1f, 2f, 3f } }));
        Assert.Contains("not a positive multiple of the frame size 2", odd.Message);
        var c = Innermost(Assert.ThrowsAny<Exception>(() => transformer.Transform(ml.Data.LoadFromEnumerable(new[] { new RnnRnadeTransformerTests.SequenceRow { Features = new[] { 1f, 2f, 3f } } }))
            .GetColumn<float>("LogDensity").ToArray()));
        Assert.Contains("row number unknown", c.Message);
    }

    /// <summary>GetDensityModel on a pipeline holding a sequence model (live or loaded) points to GetSequenceDensityModel
    /// instead of saying there is no DeepDensity model; and the other way round.</summary>
    [Fact]
    public void TheModelLookupsPointToEachOther()
    {
        var ml = new MLContext(seed: 1);
        var rows = Sequences(6, 3).Select(s => new RnnRnadeTransformerTests.SequenceRow { Features = s }).ToList();
        var view = ml.Data.LoadFromEnumerable(rows);
        ITransformer sequence = ml.DensityEstimation.RnnRnade("Features", frameSize: 2, hiddenUnits: 4, recurrentUnits: 4, maxEpochs: 1).Fit(view);
        var zip = Path.Combine(TestTemp.Directory("dd-lookup-"), "model.zip");
        ml.Model.Save(sequence, view.Schema, zip);
        foreach (var t in new[] { sequence, new MLContext().Model.Load(zip, out _) })
        {
            var e = Assert.Throws<InvalidOperationException>(() => t.GetDensityModel());
            Assert.Contains("GetSequenceDensityModel", e.Message);
            Assert.Contains("RnnRnade", e.Message);
            Assert.Contains("GetSequenceDensityModel", Assert.Throws<InvalidOperationException>(() => t.GenerateSamples(ml, 3, 1)).Message);
        }
        var rowModel = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.ModelOptions.MaxEpochs = 1)).Fit(ml.Data.LoadFromEnumerable(TestData.Blob(50)));
        Assert.Contains("GetDensityModel", Assert.Throws<InvalidOperationException>(() => rowModel.GetSequenceDensityModel()).Message);
        // Neither kind: the plain message.
        var none = ml.Transforms.CopyColumns("A", "Features").Fit(view);
        Assert.Equal("The transformer contains no DeepDensity model.", Assert.Throws<InvalidOperationException>(() => none.GetDensityModel()).Message);
        // A negative sample count names the caller's parameter, not the engine's.
        Assert.Equal("count", Assert.Throws<ArgumentOutOfRangeException>(() => rowModel.GenerateSamples(ml, -1, 1)).ParamName);
    }

    /// <summary>The sequence estimators' options name the invalid setting, like the row estimators' (an empty column name
    /// was "The input column name must be non-empty." / "Output column names must be non-empty.", Contamination was
    /// reported as parameter "contamination").</summary>
    [Fact]
    public void SequenceOptions_NameTheInvalidSetting()
    {
        var ml = new MLContext(seed: 1);
        void Named(string setting, Action create)
        {
            var e = Assert.ThrowsAny<ArgumentException>(create);
            Assert.Equal(setting, e.ParamName);
            Assert.Contains(setting, e.Message);
        }
        Named("FeatureColumnName", () => ml.DensityEstimation.RnnRnade(new SequenceDensityEstimator.Options { FeatureColumnName = " ", FrameSize = 2 }));
        Named("FrameLogDensitiesColumnName", () => ml.DensityEstimation.RnnRnade(new SequenceDensityEstimator.Options { FrameLogDensitiesColumnName = "", FrameSize = 2 }));
        Named("Contamination", () => ml.DensityEstimation.RnnRnade("Features", frameSize: 2, contamination: 0.9));
        Named("OrderColumnName", () => ml.DensityEstimation.RnnRnade(new RnnRnadeFrameEstimator.Options { OrderColumnName = null! }));
        Named("ScoreColumnName", () => ml.DensityEstimation.RnnRnade(new RnnRnadeFrameEstimator.Options { ScoreColumnName = "" }));
        Named("Contamination", () => ml.DensityEstimation.RnnRnade("Features", "SequenceId", "Order", contamination: double.NaN));
        Assert.Contains("distinct", Assert.ThrowsAny<ArgumentException>(() => ml.DensityEstimation.RnnRnade(
            new RnnRnadeFrameEstimator.Options { ScoreColumnName = "LogDensity" })).Message);
    }

    public sealed class DoubleSequence { public double[] Features = new double[4]; }
    public sealed class ScalarSequence { public float Features; }
    public sealed class WideFrame { [VectorType(3)] public float[] Features = new float[3]; public int SequenceId; public float Order; }
    public sealed class TextOrderFrame { [VectorType(2)] public float[] Features = new float[2]; public int SequenceId; public string Order = "1"; }

    /// <summary>The fitted sequence transformers check their input schema like the row models: a Double or scalar sequence
    /// column used to fail with ML.NET's binding error naming the internal column '__dd_rr_features', and a frame column
    /// of the wrong width (or a text order column) was accepted and failed at the first row read, in a doubly wrapped
    /// splitter exception.</summary>
    [Fact]
    public void FittedSequenceTransformers_CheckTheInputSchema_NamingTheUsersColumns()
    {
        var ml = new MLContext(seed: 1);
        var rows = Sequences(6, 4).Select(s => new RnnRnadeTransformerTests.SequenceRow { Features = s }).ToList();
        var whole = ml.DensityEstimation.RnnRnade("Features", frameSize: 2, hiddenUnits: 4, recurrentUnits: 4, maxEpochs: 1).Fit(ml.Data.LoadFromEnumerable(rows));
        foreach (var view in new[] { ml.Data.LoadFromEnumerable(new[] { new DoubleSequence() }), ml.Data.LoadFromEnumerable(new[] { new ScalarSequence() }) })
        {
            var e = Assert.ThrowsAny<ArgumentException>(() => whole.Transform(view));
            Assert.Contains("Sequence column 'Features' must be a vector of Single", e.Message);
            Assert.DoesNotContain("__dd", Assert.ThrowsAny<ArgumentException>(() => whole.GetOutputSchema(view.Schema)).Message);
        }

        var frames = new List<RnnRnadeTransformerTests.FrameRow>();
        for (int i = 0; i < rows.Count; i++)
            for (int t = 0; t < rows[i].Features.Length / 2; t++)
                frames.Add(new RnnRnadeTransformerTests.FrameRow { Features = rows[i].Features[(2 * t)..(2 * t + 2)], SequenceId = i, Order = t });
        var frameModel = ml.DensityEstimation.RnnRnade("Features", "SequenceId", "Order", hiddenUnits: 4, recurrentUnits: 4, maxEpochs: 1)
            .Fit(ml.Data.LoadFromEnumerable(frames));
        var wide = ml.Data.LoadFromEnumerable(new[] { new WideFrame() });
        Assert.Contains("Frame column 'Features' has 3 slots but the model's frames have 2", Assert.ThrowsAny<ArgumentException>(() => frameModel.Transform(wide)).Message);
        Assert.ThrowsAny<ArgumentException>(() => ml.Model.CreatePredictionEngine<WideFrame, RnnRnadeTransformerTests.FrameScore>(frameModel));
        var textOrder = ml.Data.LoadFromEnumerable(new[] { new TextOrderFrame() });
        Assert.Contains("Order column 'Order' must be numeric", Assert.ThrowsAny<ArgumentException>(() => frameModel.Transform(textOrder)).Message);
        // A good schema still scores, through the transformer and a pipeline after it.
        Assert.Equal(frames.Count, ml.Transforms.CopyColumns("S", "Score").Fit(frameModel.Transform(ml.Data.LoadFromEnumerable(frames)))
            .Transform(frameModel.Transform(ml.Data.LoadFromEnumerable(frames))).GetColumn<float>("S").Count());
    }
    /// <summary>The sequence id is compared as text, and a model fitted on numeric ids scored text ids; a model fitted on
    /// text ids ("0", "1", ...) failed on numeric ids (e.g. the same CSV read with the id column typed as a number) with
    /// ML.NET's binding error naming the internal column '__dd_rr_id'. It scores them as their text, the same values,
    /// live, after Model.Load, after LoadWithLiveDensityModels and in a PredictionEngine.</summary>
    [Fact]
    public void FrameRows_AModelFittedOnTextIdsScoresNumericIds()
    {
        var ml = new MLContext(seed: 1);
        var numeric = InterleavedFrames(Sequences(6, 3), 4);
        var text = numeric.Select(r => new TextIdFrame { Features = r.Features, Id = r.SequenceId.ToString(System.Globalization.CultureInfo.InvariantCulture), Order = r.Order }).ToList();
        var numericView = ml.Data.LoadFromEnumerable(numeric.Select(r => new IntIdFrame { Features = r.Features, Id = r.SequenceId, Order = r.Order }).ToList());
        var textView = ml.Data.LoadFromEnumerable(text);
        var model = ml.DensityEstimation.RnnRnade("Features", "Id", "Order", hiddenUnits: 4, recurrentUnits: 4, maxEpochs: 1).Fit(textView);
        var expected = model.Transform(textView).GetColumn<float>("LogDensity").ToArray();
        var zip = Path.Combine(TestTemp.Directory("dd-text-id-"), "model.zip");
        ml.Model.Save(model, textView.Schema, zip);
        var ml2 = new MLContext(seed: 2);
        foreach (var t in new[] { (ITransformer)model, ml2.Model.Load(zip, out _), ml2.Model.LoadWithLiveDensityModels(zip, out _) })
        {
            Assert.Equal(expected, t.Transform(numericView).GetColumn<float>("LogDensity").ToArray());
            var engine = ml2.Model.CreatePredictionEngine<IntIdFrame, RnnRnadeTransformerTests.FrameScore>(t);
            var rows = ml2.Data.CreateEnumerable<IntIdFrame>(numericView, reuseRowObject: false).ToList();
            Assert.Equal(expected, rows.Select(r => engine.Predict(r).LogDensity).ToArray());
        }
    }

    public sealed class IntIdFrame { [VectorType(2)] public float[] Features = new float[2]; public int Id; public float Order; }
    /// <summary>LoadWithLiveDensityModels gives a sequence model back the fitted transformer's input check, as it gives
    /// the row models theirs: a Double or scalar sequence column failed with ML.NET's binding error naming
    /// '__dd_rr_features', a frame of the wrong width only at the first row read (inside a doubly wrapped splitter
    /// exception), and a Boolean sequence id was scored as the text "True"/"False". The values and the re-saved file are
    /// those of the loaded chain.</summary>
    [Fact]
    public void LoadWithLiveDensityModels_SequenceModelsCheckTheInputSchema_NamingTheUsersColumns()
    {
        var ml = new MLContext(seed: 1);
        var dir = TestTemp.Directory("dd-seq-check-");
        var rows = Sequences(6, 4).Select(s => new RnnRnadeTransformerTests.SequenceRow { Features = s }).ToList();
        var wholeView = ml.Data.LoadFromEnumerable(rows);
        var whole = ml.DensityEstimation.RnnRnade("Features", frameSize: 2, hiddenUnits: 4, recurrentUnits: 4, maxEpochs: 1).Fit(wholeView);
        ml.Model.Save(whole, wholeView.Schema, Path.Combine(dir, "whole.zip"));
        var loadedWhole = new MLContext(seed: 2).Model.LoadWithLiveDensityModels(Path.Combine(dir, "whole.zip"), out _);
        Assert.Equal(whole.Transform(wholeView).GetColumn<float>("LogDensity").ToArray(), loadedWhole.Transform(wholeView).GetColumn<float>("LogDensity").ToArray());
        foreach (var view in new[] { ml.Data.LoadFromEnumerable(new[] { new DoubleSequence() }), ml.Data.LoadFromEnumerable(new[] { new ScalarSequence() }) })
        {
            var e = Assert.ThrowsAny<ArgumentException>(() => loadedWhole.Transform(view));
            Assert.Contains("Sequence column 'Features' must be a vector of Single", e.Message);
            Assert.DoesNotContain("__dd", Assert.ThrowsAny<ArgumentException>(() => loadedWhole.GetOutputSchema(view.Schema)).Message);
        }

        var frames = InterleavedFrames(Sequences(6, 5), 4);
        var frameView = ml.Data.LoadFromEnumerable(frames);
        var frameModel = ml.DensityEstimation.RnnRnade("Features", "SequenceId", "Order", hiddenUnits: 4, recurrentUnits: 4, maxEpochs: 1).Fit(frameView);
        ml.Model.Save(frameModel, frameView.Schema, Path.Combine(dir, "frames.zip"));
        var ml2 = new MLContext(seed: 2);
        var loadedFrames = ml2.Model.LoadWithLiveDensityModels(Path.Combine(dir, "frames.zip"), out var schema);
        var expected = frameModel.Transform(frameView).GetColumn<float>("LogDensity").ToArray();
        Assert.Equal(expected, loadedFrames.Transform(frameView).GetColumn<float>("LogDensity").ToArray());
        var wide = ml.Data.LoadFromEnumerable(new[] { new WideFrame() });
        Assert.Contains("Frame column 'Features' has 3 slots but the model's frames have 2", Assert.ThrowsAny<ArgumentException>(() => loadedFrames.Transform(wide)).Message);
        Assert.ThrowsAny<ArgumentException>(() => ml2.Model.CreatePredictionEngine<WideFrame, RnnRnadeTransformerTests.FrameScore>(loadedFrames));
        var boolId = ml.Data.LoadFromEnumerable(new[] { new BoolIdFrame() });
        Assert.Contains("Sequence-id column 'SequenceId' must be text or numeric", Assert.ThrowsAny<ArgumentException>(() => loadedFrames.Transform(boolId)).Message);
        Assert.Equal(frameModel.GetSequenceAnomalyThreshold(), loadedFrames.GetSequenceAnomalyThreshold());
        // It saves like the loaded chain: loaded again, the same values.
        ml2.Model.Save(loadedFrames, schema, Path.Combine(dir, "again.zip"));
        Assert.Equal(expected, new MLContext(seed: 3).Model.Load(Path.Combine(dir, "again.zip"), out _).Transform(frameView).GetColumn<float>("LogDensity").ToArray());
    }

    public sealed class BoolIdFrame { [VectorType(2)] public float[] Features = new float[2]; public bool SequenceId; public float Order; }
    /// <summary>The frame-row estimator's GetOutputSchema (what EstimatorChain.Fit checks before fitting the stages
    /// upstream) checked only that the three columns exist: a text order, a Double frame or a Boolean id passed it and
    /// failed only in Fit. It rejects them as the row estimators do, naming the column, with Fit's wording.</summary>
    [Fact]
    public void FrameRows_EstimatorOutputSchemaChecksTheColumnTypes()
    {
        var ml = new MLContext(seed: 1);
        var estimator = ml.DensityEstimation.RnnRnade("Features", "SequenceId", "Order", maxEpochs: 1);
        Assert.Contains("Order column 'Order' must be numeric",
            Assert.ThrowsAny<ArgumentException>(() => estimator.GetOutputSchema(SchemaShapeFactory.FromType<TextOrderFrame>(ml))).Message);
        Assert.Contains("Frame column 'Features' must be a known-size vector of Single",
            Assert.ThrowsAny<ArgumentException>(() => estimator.GetOutputSchema(SchemaShapeFactory.FromType<DoubleFrame>(ml))).Message);
        Assert.Contains("Sequence-id column 'SequenceId' must be text or numeric",
            Assert.ThrowsAny<ArgumentException>(() => estimator.GetOutputSchema(SchemaShapeFactory.FromType<BoolIdFrame>(ml))).Message);
        var shape = estimator.GetOutputSchema(SchemaShapeFactory.FromType<RnnRnadeTransformerTests.FrameRow>(ml));
        Assert.Contains(shape, c => c.Name == "Score");
        var textId = estimator.GetOutputSchema(SchemaShapeFactory.FromType<TextIdFrame>(ml, RenamedId()));   // a text id
        Assert.Contains(textId, c => c.Name == "PredictedLabel");
    }

    private static SchemaDefinition RenamedId()
    {
        var def = SchemaDefinition.Create(typeof(TextIdFrame));
        foreach (var c in def) if (c.ColumnName == "Id") c.ColumnName = "SequenceId";
        return def;
    }

    public sealed class DoubleFrame { [VectorType(2)] public double[] Features = new double[2]; public int SequenceId; public float Order; }

    /// <summary>A variable-size Single frame column (an input class without [VectorType]) was refused for training with
    /// the advice for a column of another type, "convert it first, e.g. ml.Transforms.Conversion.ConvertType(...)", which
    /// cannot give a column its width. The frame estimator says what the row estimators say: training needs the width.</summary>
    [Fact]
    public void FrameRows_VariableSizeFrameColumn_IsRefusedWithTheAdviceThatFixesIt()
    {
        var ml = new MLContext(seed: 1);
        var estimator = ml.DensityEstimation.RnnRnade("Features", "SequenceId", "Order", maxEpochs: 1);
        var view = ml.Data.LoadFromEnumerable(new[] { new VariableFrame { Features = new float[2], SequenceId = 1, Order = 0 } });
        foreach (var refused in new Action[]
        {
            () => estimator.GetOutputSchema(SchemaShapeFactory.FromType<VariableFrame>(ml)),
            () => estimator.Fit(view),
        })
        {
            var message = Assert.ThrowsAny<ArgumentException>(refused).Message;
            Assert.Contains("Frame column 'Features' is a variable-size vector; training needs a known-size vector", message);
            Assert.DoesNotContain("ConvertType", message);
        }
    }

    public sealed class VariableFrame { public float[] Features = Array.Empty<float>(); public int SequenceId; public float Order; }
}
