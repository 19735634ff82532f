using System.Diagnostics;
using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

[Collection(ProcessWideCountersCollection.Name)]
public class RnadeTransformerTests
{
    private static void AssertClose(float expected, float actual, double relTol = 1e-5)
        => Assert.True(Math.Abs(expected - actual) <= relTol * Math.Max(1, Math.Abs(expected)), $"expected {expected}, got {actual}");

    [Fact]
    public void Fit_Transform_ValuesEqualTheEngine_AndThresholdFollowsContamination()
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.Blob(600);
        var dv = ml.Data.LoadFromEnumerable(data);
        var options = TestData.SmallRnade(o => o.Contamination = 0.05);
        var transformer = ml.DensityEstimation.Rnade(options).Fit(dv);
        RnadeModel model = transformer.Model;
        Assert.Equal(Row.D, model.Dimension);
        Assert.Equal(12, model.HiddenUnits);

        var output = transformer.Transform(dv);
        Assert.Equal(NumberDataViewType.Single, output.Schema["LogDensity"].Type);
        Assert.Equal(NumberDataViewType.Single, output.Schema["Score"].Type);
        Assert.Equal(BooleanDataViewType.Instance, output.Schema["PredictedLabel"].Type);

        var expected = model.LogDensity(TestData.Matrix(data));
        var scored = ml.Data.CreateEnumerable<Scored>(output, reuseRowObject: false).ToList();
        Assert.Equal(data.Count, scored.Count);
        int flagged = 0;
        for (int i = 0; i < data.Count; i++)
        {
            AssertClose(expected[i], scored[i].LogDensity);
            Assert.Equal(-scored[i].LogDensity, scored[i].Score);
            Assert.Equal(scored[i].Score > transformer.Threshold, scored[i].PredictedLabel);
            if (scored[i].PredictedLabel) flagged++;
        }
        // The (1 − 0.05) quantile of the scores of the rows the engine held out (ThresholdRows = HeldOut: 60 of 600 rows,
        // its ValidationFraction and Seed); it was the training rows' (20–30 of them flagged), which ThresholdRows =
        // Training keeps. A model that fits this blob well flags about 5 % of its training rows by either.
        var heldOut = Microsoft.ML.DeepDensity.Training.TrainingLoop.HeldOutRows(data.Count, options.ModelOptions.ValidationFraction, options.ModelOptions.Seed);
        Assert.Equal(60, heldOut.Length);
        Assert.Equal(Scoring.Threshold(heldOut.Select(i => scored[i].Score).ToArray(), 0.05), transformer.Threshold);
        Assert.InRange(flagged, 10, 50);
        // A plausible model of a 4-d unit-ish Gaussian: mean log-density around −(4/2)·log(2πe) − log|Σ|/2 ≈ −5.1.
        Assert.InRange(expected.Average(), -6.5, -4.0);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(256)]
    public void BlockSize_DoesNotChangeValues_AndPassThroughColumnsStayAligned(int blockRows)
    {
        var ml = new MLContext(seed: 1);
        var raw = TestData.Raw(150);
        var dv = ml.Data.LoadFromEnumerable(raw);
        var pipeline = ml.Transforms.Concatenate("Features", "A", "B", "C", "E")
            .Append(ml.DensityEstimation.Rnade(TestData.SmallRnade(o => { o.ScoringBlockRows = blockRows; o.ModelOptions.MaxEpochs = 3; })));
        var model = pipeline.Fit(dv);
        var rnade = model.GetDensityModel<RnadeModel>();
        var features = raw.Select(r => new[] { r.A, r.B, r.C, r.E }).ToList();
        var expected = rnade.LogDensity(RowMatrix.FromRows(features));

        var output = model.Transform(dv);
        var rows = ml.Data.CreateEnumerable<RawWithScore>(output, reuseRowObject: false).ToList();
        for (int i = 0; i < raw.Count; i++)
        {
            Assert.Equal(raw[i].Name, rows[i].Name);       // text pass-through, copied per block
            Assert.Equal(raw[i].C, rows[i].C);
            Assert.Equal(features[i], rows[i].Features);   // vector pass-through
            AssertClose(expected[i], rows[i].LogDensity);
        }
    }

    public sealed class RawWithScore
    {
        public string Name { get; set; } = "";
        public float C { get; set; }
        public float[] Features { get; set; } = Array.Empty<float>();
        public float LogDensity { get; set; }
    }

    [Fact]
    public void Transform_IsLazy_NothingReadBeforeACursorMoves()
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.Blob(300);
        var transformer = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.ModelOptions.MaxEpochs = 2)).Fit(ml.Data.LoadFromEnumerable(data));
        int rowsRead = 0;
        IEnumerable<Row> Counting() { foreach (var r in data) { rowsRead++; yield return r; } }
        var source = ml.Data.LoadFromEnumerable(Counting());
        var output = transformer.Transform(source);
        _ = output.Schema;
        _ = transformer.GetOutputSchema(source.Schema);
        using (var cursor = output.GetRowCursor(new[] { output.Schema["Score"] }))
        {
            Assert.Equal(0, rowsRead);
            Assert.Equal(-1, cursor.Position);
            var score = cursor.GetGetter<float>(output.Schema["Score"]);
            Assert.True(cursor.MoveNext());
            float s = 0;
            score(ref s);
            Assert.True(float.IsFinite(s));
            Assert.Equal(0, cursor.Position);
            Assert.False(cursor.IsColumnActive(output.Schema["LogDensity"]));
            // The cursor scores a block (up to ScoringBlockRows rows) at a time.
            Assert.Equal(data.Count, rowsRead);
        }
    }

    [Fact]
    public async Task CursorSet_ScoresEveryRowOnce_WithItsOwnRowId()
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.Blob(3000, seed: 8);
        var transformer = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => { o.ModelOptions.MaxEpochs = 2; o.ScoringBlockRows = 64; }))
            .Fit(ml.Data.LoadFromEnumerable(data.Take(300)));
        var cached = ml.Data.Cache(ml.Data.LoadFromEnumerable(data));
        var output = transformer.Transform(cached);
        var expected = transformer.Model.LogDensity(TestData.Matrix(data));
        var cols = new[] { output.Schema["LogDensity"], output.Schema["Label"] };
        var cursors = output.GetRowCursorSet(cols, 2);
        var seen = new Dictionary<long, float>();
        var tasks = cursors.Select(c => Task.Run(() =>
        {
            var ld = c.GetGetter<float>(output.Schema["LogDensity"]);
            var idGetter = c.GetIdGetter();
            var pairs = new List<(long, float)>();
            float v = 0;
            DataViewRowId id = default;
            // Cursors of a set count positions from 0 each; the row id of a cached view is the row index.
            while (c.MoveNext()) { ld(ref v); idGetter(ref id); pairs.Add(((long)id.Low, v)); }
            c.Dispose();
            return pairs;
        })).ToArray();
        foreach (var pairs in await Task.WhenAll(tasks))
            foreach (var (pos, v) in pairs) seen.Add(pos, v); // throws on a duplicate row
        Assert.Equal(data.Count, seen.Count);
        foreach (var (pos, v) in seen) AssertClose(expected[pos], v);
    }

    [Fact]
    public void PredictionEngine_MatchesTransform()
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.Blob(200);
        var dv = ml.Data.LoadFromEnumerable(data);
        var transformer = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.ModelOptions.MaxEpochs = 3)).Fit(dv);
        var batch = ml.Data.CreateEnumerable<Scored>(transformer.Transform(dv), false).ToList();
        var engine = ml.Model.CreatePredictionEngine<Row, Scored>(transformer);
        for (int i = 0; i < 50; i++)
        {
            var p = engine.Predict(data[i]);
            AssertClose(batch[i].LogDensity, p.LogDensity);
            Assert.Equal(-p.LogDensity, p.Score);
            Assert.Equal(p.Score > transformer.Threshold, p.PredictedLabel);
        }
    }

    [Fact]
    public async Task PredictionEnginePerThread_OnOneTransformer_GivesTheSequentialScores()
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.Blob(400, seed: 6);
        var transformer = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.ModelOptions.MaxEpochs = 3)).Fit(ml.Data.LoadFromEnumerable(data));
        var sequential = ml.Model.CreatePredictionEngine<Row, Scored>(transformer);
        var expected = data.Select(r => sequential.Predict(r).LogDensity).ToArray();
        // One PredictionEngine per thread (the documented ML.NET pattern), all sharing the transformer and its model.
        var results = await Task.WhenAll(Enumerable.Range(0, 6).Select(t => Task.Run(() =>
        {
            var engine = ml.Model.CreatePredictionEngine<Row, Scored>(transformer);
            var mine = new float[data.Count];
            for (int rep = 0; rep < 3; rep++)
                for (int i = (t * 37) % data.Count, n = 0; n < data.Count; n++, i = (i + 1) % data.Count)
                    mine[i] = engine.Predict(data[i]).LogDensity;
            return mine;
        })));
        foreach (var r in results) Assert.Equal(expected, r);
    }

    [Fact]
    public void SaveLoad_WholePipeline_FreshContext_AndAnotherProcess_IdenticalScores()
    {
        var ml = new MLContext(seed: 1);
        var raw = TestData.Raw(300);
        var dv = ml.Data.LoadFromEnumerable(raw);
        var pipeline = ml.Transforms.Concatenate("Features", "A", "B", "C", "E")
            .Append(ml.Transforms.NormalizeMeanVariance("Features"))
            .Append(ml.DensityEstimation.Rnade(TestData.SmallRnade(o => { o.ModelOptions.MaxEpochs = 5; o.StandardErrorColumnName = "StdErr"; })));
        var model = pipeline.Fit(dv);
        var live = model.Transform(dv);
        var liveScores = live.GetColumn<float>("Score").ToArray();
        var livePredicted = live.GetColumn<bool>("PredictedLabel").ToArray();
        var liveEngine = ml.Model.CreatePredictionEngine<RawRow, Scored>(model);

        var dir = Directory.CreateTempSubdirectory("dd-mlnet-");
        try
        {
            var zip = Path.Combine(dir.FullName, "model.zip");
            ml.Model.Save(model, dv.Schema, zip);

            int decodesBefore = Surrogate.EnvelopeCache.TotalDecodes;
            var ml2 = new MLContext(seed: 99);
            var loaded = ml2.Model.Load(zip, out var inputSchema);
            Assert.NotNull(inputSchema.GetColumnOrNull("A"));
            var dv2 = ml2.Data.LoadFromEnumerable(TestData.Raw(300));
            var outView = loaded.Transform(dv2);
            Assert.DoesNotContain(outView.Schema, c => !c.IsHidden && c.Name.StartsWith("__dd_", StringComparison.Ordinal));
            Assert.Equal(NumberDataViewType.Single, outView.Schema["StdErr"].Type);
            var loadedScores = outView.GetColumn<float>("Score").ToArray();
            Assert.Equal(livePredicted, outView.GetColumn<bool>("PredictedLabel").ToArray());
            Assert.All(outView.GetColumn<float>("StdErr"), v => Assert.Equal(0f, v)); // RNADE is exact
            Assert.InRange(Surrogate.EnvelopeCache.TotalDecodes - decodesBefore, 1, 4); // decoded once, not per row
            var loadedEngine = ml2.Model.CreatePredictionEngine<RawRow, Scored>(loaded);
            for (int i = 0; i < raw.Count; i++)
            {
                AssertClose(liveScores[i], loadedScores[i]);
                // Both score one row at a time: bit-identical.
                if (i < 30) Assert.Equal(liveEngine.Predict(raw[i]).Score, loadedEngine.Predict(raw[i]).Score);
            }

            // The typed model comes back, identical to the one trained.
            var original = model.GetDensityModel<RnadeModel>();
            var recovered = loaded.GetDensityModel<RnadeModel>();
            Assert.Equal(original.ToBytes(), recovered.ToBytes());
            var recoveredTransformer = loaded.GetDensityTransformer();
            Assert.Equal(model.GetDensityTransformer().Threshold, recoveredTransformer.Threshold);
            Assert.Equal("StdErr", recoveredTransformer.StandardErrorColumnName);
            Assert.Equal(original.Sample(5, 3).Values, recovered.Sample(5, 3).Values);

            // The loaded pipeline with its DeepDensity stage swapped for the live, block-scoring transformer.
            var relived = loaded.WithLiveDensityTransformers(ml2);
            Assert.Contains(((IEnumerable<ITransformer>)relived).SelectMany(Flatten), x => x is DensityTransformer);
            var relivedScores = relived.Transform(dv2).GetColumn<float>("Score").ToArray();
            for (int i = 0; i < raw.Count; i++) AssertClose(loadedScores[i], relivedScores[i]);
            using (var again = new MemoryStream())
            {
                ml2.Model.Save(relived, inputSchema, again);
                again.Position = 0;
                var reloaded = new MLContext().Model.Load(again, out _);
                Assert.Equal(loadedScores, reloaded.Transform(dv2).GetColumn<float>("Score").ToArray());
            }

            // Another process: dotnet exec this test assembly's own Main on the zip.
            var rowsFile = Path.Combine(dir.FullName, "rows.bin");
            Program.WriteRaw(rowsFile, raw);
            var (exit, stdout, stderr) = RunSelf("score", zip, rowsFile);
            Assert.True(exit == 0, $"child process failed ({exit}): {stderr}");
            var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            Assert.Equal("KIND Rnade", lines[^1]);
            Assert.Equal("PRELOADED False", lines[^2]);
            var childScores = lines[..^2].Select(l => BitConverter.Int32BitsToSingle(int.Parse(l))).ToArray();
            Assert.Equal(loadedScores, childScores); // bit-identical across processes
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static IEnumerable<ITransformer> Flatten(ITransformer t)
        => t is IEnumerable<ITransformer> chain ? chain.SelectMany(Flatten) : new[] { t };

    private static (int Exit, string Stdout, string Stderr) RunSelf(params string[] args)
    {
        var assembly = typeof(Program).Assembly.Location;
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("exec");
        psi.ArgumentList.Add(assembly);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(120_000), "child process timed out");
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public void AnomalyDetectionEvaluate_WorksOnTheOutputUnchanged()
    {
        var ml = new MLContext(seed: 1);
        var train = TestData.Blob(800, seed: 2);
        var test = TestData.Blob(600, seed: 3, outlierEvery: 10);
        var transformer = ml.DensityEstimation.Rnade(TestData.SmallRnade()).Fit(ml.Data.LoadFromEnumerable(train));
        var scored = transformer.Transform(ml.Data.LoadFromEnumerable(test));
        var metrics = ml.AnomalyDetection.Evaluate(scored);
        Assert.True(metrics.AreaUnderRocCurve > 0.95, $"AUC {metrics.AreaUnderRocCurve}");
        Assert.True(metrics.DetectionRateAtFalsePositiveCount > 0.5, $"DR@K {metrics.DetectionRateAtFalsePositiveCount}");
    }

    [Fact]
    public void ScoreIsAlwaysFinite()
    {
        Assert.Equal(float.MaxValue, Scoring.ScoreFromLogDensity(float.NegativeInfinity));
        Assert.Equal(-float.MaxValue, Scoring.ScoreFromLogDensity(float.PositiveInfinity));
        Assert.Equal(float.MaxValue, Scoring.ScoreFromLogDensity(float.NaN));
        Assert.Equal(2.5f, Scoring.ScoreFromLogDensity(-2.5f));
        // Threshold: (1 − c) quantile, at most c·n scores strictly above it.
        var scores = Enumerable.Range(1, 100).Select(i => (float)i).ToArray();
        Assert.Equal(95f, Scoring.Threshold(scores, 0.05));
        Assert.Equal(100f, Scoring.Threshold(scores, 0));
    }
}

/// <summary>Tests that read process-wide diagnostics (the envelope decode counter) run alone, after the parallel tests:
/// any other test loading a zip meanwhile would add its own decodes to the count.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideCountersCollection
{
    public const string Name = "Serial: process-wide counters";
}
