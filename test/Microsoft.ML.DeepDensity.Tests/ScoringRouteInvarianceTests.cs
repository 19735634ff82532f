using System.Globalization;
using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// A row's output columns (LogDensity, Score, PredictedLabel, StdErr, Sample) are the same bits on every public route
/// — the engine's one-row call, a PredictionEngine, and a cursor over the live transformer, over the plain
/// <c>Model.Load</c> of its zip and over <c>LoadWithLiveDensityModels</c> in a new MLContext — and in any view: alone or
/// among 2 to 5,000 rows (across the transformer's 2,048-row scoring blocks and the engine's own blocks), at any
/// position, in either order, beside outliers (binary: all zeros, all ones, a single one), duplicated, with the engine on
/// 1 and 2 threads. For every row family of the catalog (the engine-side promise is the conformance suite's
/// <c>BatchInvarianceChecks</c>). Serial: it sets <see cref="DeepDensityEnvironment.MaxDegreeOfParallelism"/>.
/// </summary>
[Collection(EngineSettingsCollection.Name)]
public class ScoringRouteInvarianceTests
{
    /// <summary>Views on 2 threads; on 1 thread and reversed only those marked (the engine's own block edges are the
    /// conformance suite's; here the transformer's 2,048-row blocks and ML.NET's cursors matter).</summary>
    private static readonly (int Rows, bool AlsoOneThreadAndReversed)[] Views =
        { (1, false), (2, false), (3, true), (4, false), (5, false), (17, false), (255, false), (256, false), (257, false), (2048, false), (2049, true), (5000, false) };

    /// <summary>The plain Model.Load scores one row per engine call through ML.NET's splitter (slow): fewer sizes.</summary>
    private static readonly int[] LoadedSizes = { 3, 2049 };

    public static TheoryData<string> Families() => new(ModelFamilyTests.Families.Keys.Concat(BinaryModelFamilyTests.Families.Keys));

    [Theory, MemberData(nameof(Families))]
    public void ARowHasTheSameColumnsOnEveryRouteAndInAnyView(string family)
    {
        if (BinaryModelFamilyTests.Families.TryGetValue(family, out var binary))
        {
            var pool = BinaryModelFamilyTests.Bits(60, seed: 3, outlierEvery: 8);
            foreach (var ones in new[] { 0, 1, BitRow.D }) // all zeros, a single one, all ones
                pool.Add(new BitRow { Features = Enumerable.Range(0, BitRow.D).Select(j => j < ones ? 1f : 0f).ToArray() });
            Check(family, binary, BinaryModelFamilyTests.Bits(300, seed: 2), pool, r => r.Features);
        }
        else Check(family, ModelFamilyTests.Families[family], TestData.Blob(300, seed: 2), TestData.Blob(60, seed: 3, outlierEvery: 10), r => r.Features);
    }

    private static void Check<TRow>(string family, PipelineChecks.Family make, List<TRow> trainRows, List<TRow> pool, Func<TRow, float[]> features)
        where TRow : class
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(trainRows);
        var live = make(ml, ConcurrencyChecks.AllColumns).Fit(train);
        var transformer = (DensityTransformer)live;
        var model = transformer.Model;
        using var zip = new MemoryStream();
        ml.Model.Save(live, train.Schema, zip);
        zip.Position = 0;
        var loaded = new MLContext(seed: 3).Model.Load(zip, out _);
        zip.Position = 0;
        var liveLoaded = new MLContext(seed: 4).Model.LoadWithLiveDensityModels(zip, out _);
        var routes = new[] { ("live", live), ("loaded with Model.Load", loaded), ("loaded with LoadWithLiveDensityModels", liveLoaded) };

        // Each pool row alone: the engine's one-row call, and a PredictionEngine on every route.
        var reference = new string[pool.Count];
        var engine = ml.Model.CreatePredictionEngine<TRow, ConcurrencyChecks.AllOutputs>(live);
        var ld = new float[1];
        var se = new float[1];
        for (int i = 0; i < pool.Count; i++)
        {
            var x = features(pool[i]);
            var p = engine.Predict(pool[i]);
            model.LogDensity(x, ld, se);
            Assert.True(ld[0].Equals(p.LogDensity) && se[0].Equals(p.StdErr), $"{family}: pool row {i}: PredictionEngine ({p.LogDensity:R}, {p.StdErr:R}), engine alone ({ld[0]:R}, {se[0]:R})");
            Assert.True(model.Sample(1, Scoring.RowSampleSeed(4, x)).Values.AsSpan().SequenceEqual(p.Sample), $"{family}: pool row {i}: the Sample column is not the engine's draw");
            Assert.True(p.PredictedLabel == p.Score > transformer.Threshold, $"{family}: pool row {i}: PredictedLabel {p.PredictedLabel}, Score {p.Score:R}, threshold {transformer.Threshold:R}");
            reference[i] = Fingerprint(p.LogDensity, p.Score, p.PredictedLabel, p.StdErr, p.Sample);
        }
        foreach (var (how, t) in routes.Skip(1))
        {
            var e = new MLContext().Model.CreatePredictionEngine<TRow, ConcurrencyChecks.AllOutputs>(t);
            for (int i = 0; i < pool.Count; i++)
            {
                var p = e.Predict(pool[i]);
                Assert.True(reference[i] == Fingerprint(p.LogDensity, p.Score, p.PredictedLabel, p.StdErr, p.Sample), $"{family} {how}: PredictionEngine, pool row {i}");
            }
        }

        try
        {
            foreach (int threads in new[] { 2, 1 })
            {
                DeepDensityEnvironment.MaxDegreeOfParallelism = threads;
                foreach (var (n, more) in Views)
                {
                    if (threads == 1 && !more) continue;
                    var rng = new Random(n);
                    var drawn = Enumerable.Range(0, n).Select(_ => rng.Next(pool.Count)).ToArray();
                    foreach (var (what, indices) in more ? new[] { ("drawn", drawn), ("reversed", drawn.Reverse().ToArray()) } : new[] { ("drawn", drawn) })
                    {
                        var view = ml.Data.LoadFromEnumerable(indices.Select(i => pool[i]).ToList());
                        foreach (var (how, t) in routes)
                        {
                            if (how == "loaded with Model.Load" && !LoadedSizes.Contains(n)) continue;
                            var rows = Read(t.Transform(view));
                            Assert.Equal(n, rows.Count);
                            for (int i = 0; i < n; i++)
                                Assert.True(reference[indices[i]] == rows[i], $"{family} {how}, {threads} thread(s), a view of {n} rows ({what}): the row at position {i} (pool row {indices[i]}) reads {rows[i]}, alone {reference[indices[i]]}");
                        }
                    }
                }
            }
        }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = -1; }
    }

    private static string Fingerprint(float logDensity, float score, bool predictedLabel, float stdErr, IEnumerable<float> sample)
        => string.Join(" ", new[] { logDensity, score, stdErr }.Concat(sample).Select(Bits)) + " " + predictedLabel;

    private static string Bits(float v) => BitConverter.SingleToInt32Bits(v).ToString(CultureInfo.InvariantCulture);

    /// <summary>Every row's columns of ours, through one cursor.</summary>
    private static List<string> Read(IDataView view)
    {
        var s = view.Schema;
        var cols = new[] { s["LogDensity"], s["Score"], s["PredictedLabel"], s["StdErr"], s["Sample"] };
        using var cursor = view.GetRowCursor(cols);
        var ld = cursor.GetGetter<float>(cols[0]);
        var score = cursor.GetGetter<float>(cols[1]);
        var predicted = cursor.GetGetter<bool>(cols[2]);
        var se = cursor.GetGetter<float>(cols[3]);
        var sample = cursor.GetGetter<VBuffer<float>>(cols[4]);
        var rows = new List<string>();
        while (cursor.MoveNext())
        {
            float a = 0, b = 0, e = 0; bool p = false; VBuffer<float> v = default;
            ld(ref a); score(ref b); predicted(ref p); se(ref e); sample(ref v);
            rows.Add(Fingerprint(a, b, p, e, v.DenseValues()));
        }
        return rows;
    }
}

/// <summary>
/// RNN-RNADE through ML.NET: a sequence's columns (whole sequences: LogDensity, LogDensityPerFrame, FrameLogDensities,
/// Score, PredictedLabel) and a frame row's (frame rows: LogDensity, Score, PredictedLabel) are the engine's one-sequence
/// values bit for bit, on every route, in views of 1 to 2,049 sequences (over 2,048 rows of a transformer block, and
/// frame rows interleaved round-robin or sequence after sequence), in either order, duplicated, on 1 and 2 threads.
/// </summary>
[Collection(EngineSettingsCollection.Name)]
public class SequenceScoringRouteInvarianceTests
{
    /// <summary>Whole sequences: past a 2,048-row block at 2,049.</summary>
    private static readonly (int Sequences, bool AlsoOneThread)[] SequenceViews = { (1, false), (3, true), (5, false), (257, false), (2049, true) };

    /// <summary>Frame rows (3 to 10 frames per sequence): 400 sequences are about 2,600 rows, past a 2,048-row block.</summary>
    private static readonly (int Sequences, bool AlsoOneThread)[] FrameViews = { (1, false), (3, true), (5, false), (400, true) };

    private static IEnumerable<(string How, ITransformer Transformer)> Routes(MLContext ml, ITransformer live, DataViewSchema schema)
    {
        using var zip = new MemoryStream();
        ml.Model.Save(live, schema, zip);
        zip.Position = 0;
        var loaded = new MLContext(seed: 3).Model.Load(zip, out _);
        zip.Position = 0;
        var liveLoaded = new MLContext(seed: 4).Model.LoadWithLiveDensityModels(zip, out _);
        return new[] { ("live", live), ("loaded with Model.Load", loaded), ("loaded with LoadWithLiveDensityModels", liveLoaded) };
    }

    private static string Bits(float v) => BitConverter.SingleToInt32Bits(v).ToString(CultureInfo.InvariantCulture);

    /// <summary>Each pool sequence scored alone by the engine: its log-density and its frames' conditionals.</summary>
    private static (float LogDensity, float[] Frames)[] Alone(SequenceDensityModel model, List<float[]> pool)
        => pool.Select(s =>
        {
            var one = Data.SequenceBatch.FromSequences(new[] { s }, 2);
            var frames = new float[one.TotalFrames];
            model.FrameLogDensity(one, frames);
            return (model.LogDensity(one)[0], frames);
        }).ToArray();

    private static void ForEachView((int Sequences, bool AlsoOneThread)[] views, int poolSize, Action<int, string, int[], int> check)
    {
        try
        {
            foreach (int threads in new[] { 2, 1 })
            {
                DeepDensityEnvironment.MaxDegreeOfParallelism = threads;
                foreach (var (n, oneThread) in views)
                {
                    if (threads == 1 && !oneThread) continue;
                    var rng = new Random(n);
                    var drawn = Enumerable.Range(0, n).Select(_ => rng.Next(poolSize)).ToArray();
                    check(threads, "drawn", drawn, n);
                    check(threads, "reversed", drawn.Reverse().ToArray(), n);
                }
            }
        }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = -1; }
    }

    [Fact]
    public void WholeSequencesHaveTheSameColumnsOnEveryRouteAndInAnyView()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(SequenceConcurrencyTests.Sequences(120, 1).Select(s => new SequenceConcurrencyTests.SequenceRow { Features = s }).ToList());
        var live = SequenceConcurrencyTests.WholeSequences(ml).Fit(train);
        var model = live.GetSequenceDensityModel(ml);
        var pool = SequenceConcurrencyTests.Sequences(50, 2);
        var alone = Alone(model, pool);
        var routes = Routes(ml, live, train.Schema).ToArray();
        string[] reference = new string[pool.Count];
        var engine = ml.Model.CreatePredictionEngine<SequenceConcurrencyTests.SequenceRow, SequenceConcurrencyTests.SequenceScore>(live);
        for (int i = 0; i < pool.Count; i++)
        {
            var p = engine.Predict(new SequenceConcurrencyTests.SequenceRow { Features = pool[i] });
            Assert.True(p.LogDensity.Equals(alone[i].LogDensity) && p.FrameLogDensities.AsSpan().SequenceEqual(alone[i].Frames),
                $"pool sequence {i}: PredictionEngine {p.LogDensity:R}, engine alone {alone[i].LogDensity:R} (or a frame differs)");
            reference[i] = $"{Bits(p.LogDensity)} {Bits(p.LogDensityPerFrame)} {string.Join(",", p.FrameLogDensities.Select(Bits))} {Bits(p.Score)} {p.PredictedLabel}";
        }
        ForEachView(SequenceViews, pool.Count, (threads, what, indices, n) =>
        {
            var view = ml.Data.LoadFromEnumerable(indices.Select(i => new SequenceConcurrencyTests.SequenceRow { Features = pool[i] }).ToList());
            foreach (var (how, t) in routes)
            {
                if (how == "loaded with Model.Load" && n > 257) continue; // one sequence per engine call: slow
                var rows = SequenceConcurrencyTests.Read(t.Transform(view), null,
                    new[] { "LogDensity", "LogDensityPerFrame", "FrameLogDensities", "Score", "PredictedLabel" }).Select(r => r.Values).ToList();
                Assert.Equal(n, rows.Count);
                for (int i = 0; i < n; i++)
                    Assert.True(reference[indices[i]] == rows[i], $"whole sequences {how}, {threads} thread(s), {n} sequences ({what}): the sequence at position {i} (pool sequence {indices[i]}) reads {rows[i]}, alone {reference[indices[i]]}");
            }
        });
    }

    [Fact]
    public void FrameRowsHaveTheEngineFrameScoresOnEveryRouteAndInAnyView()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(SequenceConcurrencyTests.Frames(SequenceConcurrencyTests.Sequences(120, 1)));
        var live = SequenceConcurrencyTests.FrameRows(ml).Fit(train);
        var model = live.GetSequenceDensityModel(ml);
        var pool = SequenceConcurrencyTests.Sequences(50, 2);
        var alone = Alone(model, pool);
        var routes = Routes(ml, live, train.Schema).ToArray();
        ForEachView(FrameViews, pool.Count, (threads, what, indices, n) =>
        {
            // Each occurrence is its own sequence (id = position in the view), interleaved round-robin, then one after another.
            var sequences = indices.Select(i => pool[i]).ToList();
            var interleaved = SequenceConcurrencyTests.Frames(sequences);
            var contiguous = interleaved.OrderBy(r => r.SequenceId).ThenBy(r => r.Order).ToList();
            foreach (var (layout, frames) in new[] { ("interleaved", interleaved), ("sequence after sequence", contiguous) })
            {
                var view = ml.Data.LoadFromEnumerable(frames);
                foreach (var (how, t) in routes)
                {
                    if (how == "loaded with Model.Load" && n > 5) continue; // frame by frame through ML.NET's stages: slow
                    var rows = SequenceConcurrencyTests.Read(t.Transform(view), null, new[] { "LogDensity", "Score", "PredictedLabel" });
                    Assert.Equal(frames.Count, rows.Count);
                    for (int r = 0; r < frames.Count; r++)
                    {
                        int p = indices[frames[r].SequenceId], step = (int)frames[r].Order;
                        float expected = alone[p].Frames[step];
                        string wanted = $"{Bits(expected)} {Bits(-expected)} {-expected > live.ThresholdAt(step)}";
                        Assert.True(wanted == rows[r].Values,
                            $"frame rows {how}, {threads} thread(s), {n} sequences ({what}, {layout}): row {r} (pool sequence {p}, step {step}) reads {rows[r].Values}, alone {wanted} ({expected:R})");
                    }
                }
            }
        });
    }
}
