using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// Errors through a model saved to a zip and loaded back: bad rows and damaged model blobs reach the caller as the
/// engine's own exceptions naming the feature column (inside ML.NET's "Splitter/consolidator worker" wrapper when
/// ML.NET ran the loaded scorer on worker cursors; unwrapped through a PredictionEngine or a live transformer).
/// </summary>
public class LoadedModelErrorTests
{
    private static (MLContext Ml, DensityTransformer Live) Trained()
    {
        var ml = new MLContext(seed: 1);
        var t = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.ModelOptions.MaxEpochs = 2)).Fit(ml.Data.LoadFromEnumerable(TestData.Blob(100)));
        return (ml, t);
    }

    private static MemoryStream Zip(MLContext ml, ITransformer model)
    {
        var zip = new MemoryStream();
        ml.Model.Save(model, ml.Data.LoadFromEnumerable(TestData.Blob(1)).Schema, zip);
        zip.Position = 0;
        return zip;
    }

    /// <summary>Checks a NaN at row 137 (slot 2) through <paramref name="loaded"/>, read in the usual ways.</summary>
    internal static void NaNReachesTheUserUnwrapped(MLContext ml, ITransformer loaded, Func<List<Row>, IDataView> view)
    {
        var rows = TestData.Blob(300, seed: 9);
        rows[137].Features[2] = float.NaN;
        var output = loaded.Transform(view(rows));
        foreach (var read in new Action[]
        {
            () => output.GetColumn<float>("LogDensity").ToArray(),
            () => output.GetColumn<bool>("PredictedLabel").ToArray(),
            () => ml.Data.CreateEnumerable<Scored>(output, reuseRowObject: true).Count(),
            () => ml.AnomalyDetection.Evaluate(output),
        })
        {
            // ML.NET runs the loaded scorer on worker cursors and wraps what they throw; ours is the innermost exception.
            var e = Innermost<DataValidationException>(Assert.ThrowsAny<Exception>(read));
            Assert.Equal("Features", e.DataSource);
            Assert.Equal(2, e.Column);
            Assert.Equal(-1, e.Row); // never a wrong number...
            Assert.Contains("row number unknown", e.Message); // ...and said so
            Assert.Contains("NaN", e.Message);
            Assert.DoesNotContain("'rows'", e.Message);
        }
        var engine = ml.Model.CreatePredictionEngine<Row, Scored>(loaded);
        Assert.Equal(2, Assert.Throws<DataValidationException>(() => engine.Predict(rows[137])).Column);
        Assert.True(float.IsFinite(engine.Predict(rows[136]).LogDensity)); // the engine is usable after the error
    }

    /// <summary>The exception itself or, through ML.NET's "Splitter/consolidator worker" wrappers, its innermost one.</summary>
    internal static T Innermost<T>(Exception e) where T : Exception
    {
        while (e is InvalidOperationException { InnerException: not null } wrapper && wrapper.Message.Contains("Splitter/consolidator", StringComparison.Ordinal))
            e = wrapper.InnerException!;
        return Assert.IsType<T>(e);
    }

    [Fact]
    public void NaNThroughALoadedModel_IsADataValidationExceptionNamingTheFeatureColumn()
    {
        var (ml, live) = Trained();
        var ml2 = new MLContext(seed: 3);
        var loaded = ml2.Model.Load(Zip(ml, live), out _);
        NaNReachesTheUserUnwrapped(ml2, loaded, rows => ml2.Data.LoadFromEnumerable(rows));
        NaNReachesTheUserUnwrapped(ml2, loaded, rows => ml2.Data.Cache(ml2.Data.LoadFromEnumerable(rows))); // parallel cursors

        // The live path (and a loaded model made live) knows the row.
        var rows = TestData.Blob(300, seed: 9);
        rows[137].Features[2] = float.NaN;
        foreach (var t in new[] { live, loaded.WithLiveDensityTransformers(ml2) })
        {
            var e = Assert.Throws<DataValidationException>(() => t.Transform(ml2.Data.LoadFromEnumerable(rows)).GetColumn<float>("Score").ToArray());
            Assert.Equal((137L, 2, "Features"), (e.Row, e.Column, e.DataSource));
        }
    }

    public static TheoryData<string> Damages() => new() { "truncated", "bad CRC", "newer version", "not base64", "wrong magic", "NaN threshold", "contamination 7", "trailing bytes" };

    [Theory, MemberData(nameof(Damages))]
    public void DamagedModelBlob_ThrowsInvalidModelFileException_AtLoadWithLiveDensityModels_OrAtTheFirstRead(string damage)
    {
        var (ml, live) = Trained();
        string good = ModelEnvelope.Encode(live.Model, live.Settings);
        var bytes = Convert.FromBase64String(good);
        string Rebase(Action<byte[]> edit) { var b = (byte[])bytes.Clone(); edit(b); return Convert.ToBase64String(b); }
        string bad = damage switch
        {
            "truncated" => good[..(good.Length / 2 / 4 * 4)],
            "bad CRC" => Rebase(b => b[^10] ^= 0x40),
            "newer version" => Rebase(b => b[4] = (byte)(ModelEnvelope.Version + 1)),
            "not base64" => "not base64!" + good,
            "wrong magic" => Rebase(b => b[0] = (byte)'X'),
            "NaN threshold" => ModelEnvelope.Encode(live.Model, live.Settings with { Threshold = float.NaN }),
            "contamination 7" => ModelEnvelope.Encode(live.Model, live.Settings with { Contamination = 7 }),
            "trailing bytes" => Convert.ToBase64String(bytes.Append((byte)0).ToArray()),
            _ => throw new ArgumentOutOfRangeException(nameof(damage)),
        };
        Assert.Throws<InvalidModelFileException>(() => ModelEnvelope.Decode(bad));
        var zip = Zip(ml, Surrogate.Build(ml, live.Settings, live.Model.Dimension, bad));

        var ml2 = new MLContext(seed: 3);
        // The one-call load validates every DeepDensity model in the file.
        Assert.Throws<InvalidModelFileException>(() => ml2.Model.LoadWithLiveDensityModels(new MemoryStream(zip.ToArray()), out _));
        // The ordinary load cannot run our code on the blob (ML.NET loads it as a table and calls no extension with it);
        // the first read throws it.
        var loaded = ml2.Model.Load(new MemoryStream(zip.ToArray()), out _);
        Assert.Throws<InvalidModelFileException>(() => loaded.GetDensityModel());
        var output = loaded.Transform(ml2.Data.LoadFromEnumerable(TestData.Blob(50)));
        var atRead = Innermost<InvalidModelFileException>(Assert.ThrowsAny<Exception>(() => output.GetColumn<float>("LogDensity").ToArray()));
        Assert.Contains("LoadWithLiveDensityModels validates it at load", atRead.Message); // says what to do
        Assert.Throws<InvalidModelFileException>(() => ml2.Model.CreatePredictionEngine<Row, Scored>(loaded).Predict(TestData.Blob(1)[0]));
    }

    [Fact]
    public void LoadWithLiveDensityModels_GivesTheLiveTransformer_WithTheSameValues()
    {
        var (ml, live) = Trained();
        var zip = Zip(ml, live);
        var ml2 = new MLContext(seed: 3);
        var fast = ml2.Model.LoadWithLiveDensityModels(new MemoryStream(zip.ToArray()), out var schema);
        Assert.NotNull(schema.GetColumnOrNull("Features"));
        Assert.True(fast is DensityTransformer, fast.GetType().Name); // the saved transformer was one density stage
        var rows = ml2.Data.LoadFromEnumerable(TestData.Blob(200, seed: 4));
        Assert.Equal(live.Transform(rows).GetColumn<float>("LogDensity"), fast.Transform(rows).GetColumn<float>("LogDensity"));
    }
}
