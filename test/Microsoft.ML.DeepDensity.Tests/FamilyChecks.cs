using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>The ML.NET essentials shared by the family tests: values = engine, AnomalyDetection, save → load in a fresh context.</summary>
internal static class FamilyChecks
{
    /// <summary>
    /// Fits <paramref name="estimator"/> on <paramref name="train"/>, then checks that the LogDensity column equals the engine
    /// model's on <paramref name="testRows"/>, that AnomalyDetection.Evaluate separates the labelled outliers (AUC &gt; 0.9), and
    /// that a save → load in a fresh context gives the same scores and the same model bytes.
    /// </summary>
    public static void FitScoreSaveLoadEvaluate<TRow>(MLContext ml, string family, IEstimator<ITransformer> estimator, IDataView train,
        List<TRow> testRows, Func<TRow, float[]> features) where TRow : class
    {
        var transformer = estimator.Fit(train);
        var scored = transformer.Transform(ml.Data.LoadFromEnumerable(testRows));
        var logDensity = scored.GetColumn<float>("LogDensity").ToArray();
        var engine = transformer.GetDensityModel();
        Assert.Equal(engine.LogDensity(Data.RowMatrix.FromRows(testRows.Select(features).ToList())), logDensity);

        var metrics = ml.AnomalyDetection.Evaluate(scored);
        Assert.True(metrics.AreaUnderRocCurve > 0.9, $"{family}: AUC {metrics.AreaUnderRocCurve}");

        var zip = Path.Combine(TestTemp.Directory("dd-family-"), "model.zip");
        ml.Model.Save(transformer, train.Schema, zip);
        var ml2 = new MLContext(seed: 5);
        var loaded = ml2.Model.Load(zip, out _);
        var loadedScores = loaded.Transform(ml2.Data.LoadFromEnumerable(testRows)).GetColumn<float>("LogDensity").ToArray();
        for (int i = 0; i < loadedScores.Length; i++)
            Assert.True(Math.Abs(loadedScores[i] - logDensity[i]) <= 1e-5f * Math.Max(1f, Math.Abs(logDensity[i])),
                $"{family}: row {i} live {logDensity[i]} loaded {loadedScores[i]}");
        Assert.Equal(engine.ToBytes(), loaded.GetDensityModel().ToBytes());
    }

    /// <summary>
    /// Issue 12: a model loaded with the ordinary <c>mlContext.Model.Load</c> scores one row per call of the saved scorer
    /// (a CustomMapping); once warm, that call allocates nothing — the envelope is decoded once and the engine reuses its
    /// per-thread one-row scratch — and gives the engine's batched value for the row.
    /// </summary>
    public static void LoadedScorerAllocatesNothingPerRow(MLContext ml, IEstimator<ITransformer> estimator, IDataView train, IReadOnlyList<float[]> rows)
    {
        var t = (Transforms.DensityTransformer)estimator.Fit(train);
        var map = new Transforms.Surrogate.ScoreFactory().GetMapping();
        var src = new Transforms.Surrogate.ScoreInput { Model = Transforms.ModelEnvelope.Encode(t.Model, t.Settings).AsMemory() };
        var dst = new Transforms.Surrogate.ScoreOutput();
        void Score(int i) { src.Features = rows[i % rows.Count]; map(src, dst); }
        for (int i = 0; i < 300; i++) Score(i); // decode the envelope, fill the scratch, JIT
        // The least of three rounds: a per-row allocation shows in every round, while a round can meet the engine's
        // worker team busy with a test running beside this one, and a parallel call then falls back to Parallel.For,
        // which allocates (seen once: 5,360 bytes over 1,000 IWAE rows).
        long allocated = long.MaxValue;
        for (int round = 0; round < 3 && allocated > 0; round++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 1000; i++) Score(i);
            allocated = Math.Min(allocated, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.True(allocated == 0, $"{t.Model.ModelKind}: {allocated} bytes allocated over 1000 rows (least of three rounds)");
        var engine = t.Model.LogDensity(Data.RowMatrix.FromRows(new List<float[]> { rows[999 % rows.Count] }));
        Assert.Equal(engine[0], dst.LogDensity);
    }
}

/// <summary>
/// What ML.NET promises of a transformer used from several threads, and what this library promises of seeds, checked for
/// every row family through the ML.NET layer: one fitted (or loaded) transformer scored from several threads at once
/// (Transform and a cursor each, a PredictionEngine each, a cursor set drained in parallel) gives the single-threaded
/// values; the same seed and data give the same model bytes, threshold, scores and samples whatever the engine's thread
/// count, the MLContext's seed, the read mode (in memory or streamed) or the number of fits running at once.
/// </summary>
internal static class ConcurrencyChecks
{
    private const int Threads = 4;

    /// <summary>PredictionEngine output with every column of ours (the estimator must add "StdErr" and "Sample").</summary>
    public sealed class AllOutputs
    {
        public float LogDensity { get; set; }
        public float Score { get; set; }
        public bool PredictedLabel { get; set; }
        public float StdErr { get; set; }
        public float[] Sample { get; set; } = Array.Empty<float>();
    }

    /// <summary>One row's outputs, with its row id.</summary>
    public sealed record Outputs(DataViewRowId Id, float LogDensity, float Score, bool PredictedLabel, float StdErr, float[] Sample);

    /// <summary>Adds the standard-error and sample columns every check here reads.</summary>
    public static void AllColumns(DensityEstimatorOptions o)
    {
        o.StandardErrorColumnName = "StdErr";
        o.SampleColumnName = "Sample";
        o.SampleSeed = 4;
    }

    /// <param name="estimator">Built with <see cref="AllColumns"/>.</param>
    public static void ScoringFromSeveralThreadsEqualsOneThread<TRow>(string family, IEstimator<ITransformer> estimator, IDataView train, List<TRow> testRows)
        where TRow : class
    {
        var ml = new MLContext(seed: 1);
        var live = estimator.Fit(train);
        using var zip = new MemoryStream();
        ml.Model.Save(live, train.Schema, zip);
        var ml2 = new MLContext(seed: 3);
        zip.Position = 0;
        var loaded = ml2.Model.Load(zip, out _);
        zip.Position = 0;
        var liveLoaded = ml2.Model.LoadWithLiveDensityModels(zip, out _);
        var test = ml.Data.LoadFromEnumerable(testRows);
        var cachedTest = ml.Data.Cache(test);

        AllOutputs[]? livePredictions = null;
        foreach (var (how, t) in new[] { ("live", live), ("loaded with Model.Load", loaded), ("loaded with LoadWithLiveDensityModels", liveLoaded) })
        {
            string what = $"{family} {how}";
            var reference = Read(t.Transform(test), null);
            Assert.Equal(testRows.Count, reference.Count);
            var sequentialEngine = ml.Model.CreatePredictionEngine<TRow, AllOutputs>(t);
            var predictions = testRows.Select(r => Copy(sequentialEngine.Predict(r))).ToArray();
            // A row scored alone (PredictionEngine) gives the bits of the same row scored in a block (Transform).
            for (int i = 0; i < predictions.Length; i++)
                SameBits($"{what}: PredictionEngine row {i} vs Transform", reference[i], new Outputs(reference[i].Id, predictions[i].LogDensity,
                    predictions[i].Score, predictions[i].PredictedLabel, predictions[i].StdErr, predictions[i].Sample));
            // A row scored alone gives the same bits whichever transformer scores it (the same model bytes).
            if (livePredictions is null) livePredictions = predictions;
            else for (int i = 0; i < predictions.Length; i++) SameBits($"{what}: PredictionEngine row {i} vs the live one", livePredictions[i], predictions[i]);

            RunTogether(what, thread =>
            {
                // Transform called at once on the same input by every thread, each reading every row through its own cursor.
                for (int repeat = 0; repeat < 2; repeat++)
                {
                    var mine = Read(t.Transform(test), null);
                    Assert.Equal(reference.Count, mine.Count);
                    for (int i = 0; i < mine.Count; i++) SameBits($"{what}: thread {thread} Transform row {i}", reference[i], mine[i]);
                }
                // One PredictionEngine per thread, all on the one transformer, rows in a different order on each thread.
                var engine = ml.Model.CreatePredictionEngine<TRow, AllOutputs>(t);
                for (int n = 0, i = thread * 17 % testRows.Count; n < testRows.Count; n++, i = (i + 1) % testRows.Count)
                    SameBits($"{what}: thread {thread} PredictionEngine row {i}", predictions[i], engine.Predict(testRows[i]));
            });

            // A cursor set over a cached input (ML.NET splits it), its cursors drained on threads at once: every row once,
            // with its single-cursor bits (a row's score does not depend on the other rows of its block).
            var view = t.Transform(cachedTest);
            var cols = view.Schema.Where(c => !c.IsHidden).ToArray();
            foreach (int n in new[] { 2, 4 })
            {
                var cursors = view.GetRowCursorSet(cols, n);
                var parts = new List<Outputs>[cursors.Length];
                RunTogether(what + " cursor set", i => parts[i] = Read(view, cursors[i]), cursors.Length);
                var rows = parts.SelectMany(p => p).ToList();
                Assert.Equal(testRows.Count, rows.Count);
                var byId = reference.ToDictionary(r => r.Id);
                Assert.Equal(testRows.Count, rows.Select(r => r.Id).Distinct().Count());
                foreach (var row in rows) SameBits($"{what}: cursor set of {n} ({cursors.Length} cursors), row {row.Id}", byId[row.Id], row);
            }
        }
    }

    /// <summary>
    /// Same seed, same data: the same model bytes, threshold, LogDensity column, sample column and GenerateSamples draw —
    /// fitted again with the same estimator object, under an MLContext without a seed or with another seed, with the
    /// engine on 1 and on 2 threads, and while other fits run at once; for a family that streams, a streamed Fit whose
    /// buffer holds the data gives the in-memory model, and a streamed Fit with a small buffer is the same on 1 and 2 threads.
    /// </summary>
    /// <remarks>Changes <see cref="DeepDensityEnvironment.MaxDegreeOfParallelism"/>: run from a serial collection.</remarks>
    public static void SameSeedAndDataGiveTheSameModelEverywhere<TRow>(string family, PipelineChecks.Family make, List<TRow> trainRows, List<TRow> testRows,
        bool canStream) where TRow : class
    {
        Result Run(MLContext ml, IEstimator<ITransformer> estimator)
        {
            var t = (Transforms.DensityTransformer)estimator.Fit(ml.Data.LoadFromEnumerable(trainRows));
            var scored = t.Transform(ml.Data.LoadFromEnumerable(testRows));
            return new Result(t.Model.ToBytes(), t.Threshold, scored.GetColumn<float>("LogDensity").ToArray(),
                scored.GetColumn<float[]>("Sample").SelectMany(s => s).ToArray(),
                t.GenerateSamples(ml, 150, 11).GetColumn<float[]>("Features").SelectMany(s => s).ToArray());
        }
        var ml = new MLContext(seed: 1);
        var estimator = make(ml, AllColumns);
        var reference = Run(ml, estimator);
        Same(family + ": the same estimator object fitted a second time", reference, Run(ml, estimator));
        var unseeded = new MLContext();
        Same(family + ": new MLContext() (no seed)", reference, Run(unseeded, make(unseeded, AllColumns)));
        var seed2 = new MLContext(seed: 2);
        Same(family + ": new MLContext(seed: 2)", reference, Run(seed2, make(seed2, AllColumns)));
        foreach (int threads in new[] { 1, 2 })
        {
            DeepDensityEnvironment.MaxDegreeOfParallelism = threads;
            try { Same($"{family}: engine on {threads} thread(s)", reference, Run(ml, make(ml, AllColumns))); }
            finally { DeepDensityEnvironment.MaxDegreeOfParallelism = -1; }
        }

        // Fits at once: the same estimator object on two threads, another estimator object (of another MLContext) on a third.
        var other = new MLContext(seed: 7);
        var otherEstimator = make(other, AllColumns);
        var results = new Result[3];
        RunTogether(family + " concurrent fits", i => results[i] = i < 2 ? Run(ml, estimator) : Run(other, otherEstimator), 3);
        for (int i = 0; i < 3; i++) Same($"{family}: fit {i} of three at once", reference, results[i]);

        if (!canStream) return;
        // A streamed Fit reads its own held-out split (a hash of row positions): compare with ValidationFraction = 0.
        void NoValidation(DensityEstimatorOptions o)
        {
            var modelOptions = o.GetType().GetProperty("ModelOptions")!.GetValue(o)!;
            modelOptions.GetType().GetProperty("ValidationFraction")!.SetValue(modelOptions, 0.0);
        }
        Action<DensityEstimatorOptions> Mode(Transforms.DensityTrainingData mode, int buffer) => o =>
        {
            AllColumns(o);
            NoValidation(o);
            o.TrainingData = mode;
            o.ShuffleBufferRows = buffer;
        };
        var inMemory = Run(ml, make(ml, Mode(Transforms.DensityTrainingData.InMemory, 0)));
        Same(family + ": streamed with a buffer holding the data vs in memory", inMemory,
            Run(ml, make(ml, Mode(Transforms.DensityTrainingData.Streamed, trainRows.Count))));
        var smallBuffer = Run(ml, make(ml, Mode(Transforms.DensityTrainingData.Streamed, 100)));
        foreach (int threads in new[] { 1, 2 })
        {
            DeepDensityEnvironment.MaxDegreeOfParallelism = threads;
            try { Same($"{family}: streamed through a buffer of 100 rows, engine on {threads} thread(s)", smallBuffer,
                Run(ml, make(ml, Mode(Transforms.DensityTrainingData.Streamed, 100)))); }
            finally { DeepDensityEnvironment.MaxDegreeOfParallelism = -1; }
        }
    }

    private sealed record Result(byte[] Model, float Threshold, float[] LogDensity, float[] Samples, float[] Generated);

    private static void Same(string what, Result expected, Result actual)
    {
        Assert.True(expected.Model.AsSpan().SequenceEqual(actual.Model), $"{what}: the model bytes differ");
        Assert.True(expected.Threshold.Equals(actual.Threshold), $"{what}: threshold {expected.Threshold} vs {actual.Threshold}");
        Bits(what + ": LogDensity column", expected.LogDensity, actual.LogDensity);
        Bits(what + ": Sample column", expected.Samples, actual.Samples);
        Bits(what + ": GenerateSamples", expected.Generated, actual.Generated);
    }

    private static void Bits(string what, float[] expected, float[] actual)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length} values, expected {expected.Length}");
        for (int i = 0; i < expected.Length; i++)
            Assert.True(expected[i].Equals(actual[i]), $"{what}: value {i} is {actual[i]}, expected {expected[i]}");
    }

    private static AllOutputs Copy(AllOutputs o) => new()
    {
        LogDensity = o.LogDensity, Score = o.Score, PredictedLabel = o.PredictedLabel, StdErr = o.StdErr, Sample = o.Sample.ToArray(),
    };

    private static void SameBits(string what, AllOutputs expected, AllOutputs actual)
    {
        Assert.True(expected.LogDensity.Equals(actual.LogDensity) && expected.Score.Equals(actual.Score) && expected.PredictedLabel == actual.PredictedLabel
            && expected.StdErr.Equals(actual.StdErr), $"{what}: ({actual.LogDensity}, {actual.Score}, {actual.PredictedLabel}, {actual.StdErr}), " +
            $"expected ({expected.LogDensity}, {expected.Score}, {expected.PredictedLabel}, {expected.StdErr})");
        Assert.True(expected.Sample.AsSpan().SequenceEqual(actual.Sample), $"{what}: the sample differs");
    }

    private static void SameBits(string what, Outputs expected, Outputs actual)
    {
        Assert.True(expected.Id.Equals(actual.Id), $"{what}: row id {actual.Id}, expected {expected.Id}");
        Assert.True(expected.LogDensity.Equals(actual.LogDensity) && expected.Score.Equals(actual.Score) && expected.PredictedLabel == actual.PredictedLabel
            && expected.StdErr.Equals(actual.StdErr), $"{what}: ({actual.LogDensity}, {actual.Score}, {actual.PredictedLabel}, {actual.StdErr}), " +
            $"expected ({expected.LogDensity}, {expected.Score}, {expected.PredictedLabel}, {expected.StdErr})");
        Assert.True(expected.Sample.AsSpan().SequenceEqual(actual.Sample), $"{what}: the sample differs");
    }

    /// <summary>Every row of one cursor (<paramref name="cursor"/> null: a new cursor over every column).</summary>
    private static List<Outputs> Read(IDataView view, DataViewRowCursor? cursor)
    {
        cursor ??= view.GetRowCursor(view.Schema);
        using var owned = cursor;
        var s = view.Schema;
        var id = cursor.GetIdGetter();
        var ld = cursor.GetGetter<float>(s["LogDensity"]);
        var score = cursor.GetGetter<float>(s["Score"]);
        var predicted = cursor.GetGetter<bool>(s["PredictedLabel"]);
        var se = cursor.GetGetter<float>(s["StdErr"]);
        var sample = cursor.GetGetter<VBuffer<float>>(s["Sample"]);
        var rows = new List<Outputs>();
        while (cursor.MoveNext())
        {
            DataViewRowId rowId = default; float a = 0, b = 0, e = 0; bool p = false; VBuffer<float> v = default;
            id(ref rowId); ld(ref a); score(ref b); predicted(ref p); se(ref e); sample(ref v);
            rows.Add(new Outputs(rowId, a, b, p, e, v.DenseValues().ToArray()));
        }
        return rows;
    }

    /// <summary>Runs <paramref name="work"/> on <paramref name="threads"/> dedicated threads released together; rethrows the first failure.</summary>
    public static void RunTogether(string what, Action<int> work, int threads = Threads)
    {
        var errors = new Exception?[threads];
        using var barrier = new Barrier(threads);
        var started = Enumerable.Range(0, threads).Select(i => new Thread(() =>
        {
            try { barrier.SignalAndWait(); work(i); }
            catch (Exception e) { errors[i] = e; }
        })).ToArray();
        foreach (var t in started) t.Start();
        foreach (var t in started) Assert.True(t.Join(TimeSpan.FromMinutes(3)), $"{what}: a thread hung");
        foreach (var e in errors)
            if (e is not null) throw new Xunit.Sdk.XunitException($"{what}: a thread failed: {e}");
    }
}
