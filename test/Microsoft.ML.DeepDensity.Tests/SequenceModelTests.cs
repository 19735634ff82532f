using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// A sequence model family plugged into the ML.NET layer the way every sequence model is: an engine
/// <see cref="SequenceDensityModel"/> (here i.i.d. frames under a diagonal Gaussian) and a catalog method that builds a
/// <see cref="SequenceDensityEstimator"/> with its trainer — no other plumbing.
/// </summary>
public sealed class ToySequenceModel : SequenceDensityModel
{
    public const string Kind = "TestToySequence";
    static ToySequenceModel() => ModelRegistry.Register(Kind, Read);
    internal static void EnsureRegistered() { }

    private readonly float[] _mean, _variance;
    private ToySequenceModel(float[] mean, float[] variance) { _mean = mean; _variance = variance; }
    public override string ModelKind => Kind;
    public override int FrameSize => _mean.Length;
    public override DensityKind DensityKind => DensityKind.Exact;

    public static ToySequenceModel Fit(SequenceBatch data)
    {
        var frames = new RowMatrix(data.Values, data.TotalFrames, data.FrameSize);
        var mean = new float[data.FrameSize]; var variance = new float[data.FrameSize];
        for (int j = 0; j < mean.Length; j++)
        {
            double m = 0, v = 0;
            for (int t = 0; t < frames.Rows; t++) m += frames[t, j];
            m /= frames.Rows;
            for (int t = 0; t < frames.Rows; t++) v += (frames[t, j] - m) * (frames[t, j] - m);
            mean[j] = (float)m; variance[j] = (float)Math.Max(v / frames.Rows, 1e-6);
        }
        return new ToySequenceModel(mean, variance);
    }

    protected override void FrameLogDensityCore(SequenceBatch sequences, Span<float> frameLogDensity)
    {
        int d = FrameSize;
        var x = sequences.AsSpan();
        for (int t = 0; t < sequences.TotalFrames; t++)
        {
            double s = 0;
            for (int j = 0; j < d; j++)
            {
                double z = x[t * d + j] - _mean[j];
                s += -0.5 * (Math.Log(2 * Math.PI * _variance[j]) + z * z / _variance[j]);
            }
            frameLogDensity[t] = (float)s;
        }
    }

    protected override void SampleCore(SequenceBatch? prefixes, SequenceBatch destination, int newFrames, ulong seed)
    {
        int d = FrameSize;
        for (int i = 0; i < destination.Count; i++)
        {
            var rng = new RandomStream(seed).Fork((ulong)i);
            var frames = destination.Sequence(i)[((destination.Length(i) - newFrames) * d)..];
            for (int k = 0; k < frames.Length; k++) frames[k] = (float)(_mean[k % d] + Math.Sqrt(_variance[k % d]) * rng.NextGaussian());
        }
    }

    protected override void WritePayload(ModelWriter writer)
    {
        writer.WriteSingles(_mean);
        writer.WriteSingles(_variance);
    }

    private static DensityModelBase Read(ModelReader reader, int version)
    {
        var mean = reader.ReadSingles("mean");
        var variance = reader.ReadSingles("variance", mean.Length);
        if (mean.Length == 0 || variance.Any(v => !(v > 0))) throw reader.Corrupt("frame size 0 or a non-positive variance");
        return new ToySequenceModel(mean, variance);
    }
}

/// <summary>The toy family's catalog method: what a sequence model adds to the ML.NET layer.</summary>
public static class ToySequenceCatalog
{
    public static SequenceDensityEstimator ToySequence(this DensityEstimationCatalog catalog, string featureColumnName, int frameSize, double contamination = 0.1)
        => new(catalog.Context, new SequenceDensityEstimator.Options { FeatureColumnName = featureColumnName, FrameSize = frameSize, Contamination = contamination },
            "ToySequence", (data, validation, progress, ct) => ToySequenceModel.Fit(data));
}

public class SequenceModelTests
{
    public sealed class Row { public float[] Signal = Array.Empty<float>(); }

    private static List<Row> Sequences(int count, ulong seed)
    {
        var rng = new RandomStream(seed);
        var rows = new List<Row>();
        for (int i = 0; i < count; i++)
        {
            var x = new float[(1 + rng.NextInt(8)) * 3];
            for (int k = 0; k < x.Length; k++) x[k] = (float)(k % 3 + rng.NextGaussian());
            rows.Add(new Row { Signal = x });
        }
        return rows;
    }

    public sealed class TypedFrame
    {
        public string SequenceId { get; set; } = "";
        public float Order { get; set; }
        [VectorType(2)] public double[] Frame { get; set; } = new double[2];
        public double[] Signal { get; set; } = Array.Empty<double>();
    }

    /// <summary>A frame or sequence column of Doubles and a key sequence id are refused with the ML.NET transform that
    /// makes them usable, as the row models' feature columns are — which the test applies, and the estimator then trains.</summary>
    [Fact]
    public void AFrameSequenceOrIdColumnOfAnotherType_IsRefusedWithTheTransformThatFixesIt()
    {
        ToySequenceModel.EnsureRegistered();
        var ml = new MLContext(seed: 1);
        var rng = new RandomStream(3);
        var rows = Enumerable.Range(0, 24).Select(i => new TypedFrame
        {
            SequenceId = "s" + i / 6, Order = i % 6,
            Frame = new[] { rng.NextGaussian(), rng.NextGaussian() },
            Signal = Enumerable.Range(0, 2 * (1 + i % 3)).Select(_ => rng.NextGaussian()).ToArray(),
        }).ToList();
        var view = ml.Data.LoadFromEnumerable(rows);
        var toKey = ml.Transforms.Conversion.MapValueToKey("Id", "SequenceId");
        var frames = ml.DensityEstimation.RnnRnade(new RnnRnadeFrameEstimator.Options
        {
            FeatureColumnName = "Frame", SequenceIdColumnName = "Id", OrderColumnName = "Order",
            ModelOptions = new Models.RnnRnade.RnnRnadeOptions { HiddenUnits = 3, Components = 2, RecurrentUnits = 3, MaxEpochs = 1 },
        });
        var sequences = ml.DensityEstimation.ToySequence("Signal", frameSize: 2);
        var frameAsSingle = ml.Transforms.Conversion.ConvertType("Frame", outputKind: DataKind.Single);
        foreach (var (refused, remedy) in new (Action, string)[]
        {
            (() => toKey.Append(frames).Fit(view), "ml.Transforms.Conversion.ConvertType(\"Frame\", outputKind: DataKind.Single)"),
            (() => frameAsSingle.Append(toKey).Append(frames).Fit(view), "ml.Transforms.Conversion.MapKeyToValue(\"Id\")"),
            (() => sequences.Fit(view), "ml.Transforms.Conversion.ConvertType(\"Signal\", outputKind: DataKind.Single)"),
        })
            Assert.Contains(remedy, Assert.ThrowsAny<ArgumentException>(refused).Message);
        Assert.NotNull(frameAsSingle.Append(toKey).Append(ml.Transforms.Conversion.MapKeyToValue("Id")).Append(frames).Fit(view));
        Assert.NotNull(ml.Transforms.Conversion.ConvertType("Signal", outputKind: DataKind.Single).Append(sequences).Fit(view));
    }

    /// <summary>Fit reads the training and the validation view through the same column name, so an error names the data
    /// set besides the column and the row: a bad or missing validation row used to read like a training one.</summary>
    [Fact]
    public void ADataErrorSaysWhetherItIsInTheTrainingOrTheValidationData()
    {
        ToySequenceModel.EnsureRegistered();
        var ml = new MLContext(seed: 1);
        var estimator = ml.DensityEstimation.ToySequence("Signal", frameSize: 3);
        var train = ml.Data.LoadFromEnumerable(Sequences(30, 1));
        var withNaN = Sequences(5, 2);
        withNaN[2].Signal[1] = float.NaN;
        foreach (var (fit, dataSet, kind) in new (Action, string, DataSetKind)[]
        {
            (() => estimator.Fit(ml.Data.LoadFromEnumerable(withNaN)), "training data", DataSetKind.Training),
            (() => estimator.Fit(train, ml.Data.LoadFromEnumerable(withNaN)), "validation data", DataSetKind.Validation),
        })
        {
            var e = Assert.Throws<DataValidationException>(fit);
            Assert.Equal((2L, "Signal", kind), (e.Row, e.DataSource, e.DataSet));
            Assert.Contains($"NaN in the {dataSet}", e.Message);
        }
        var empty = Assert.Throws<DataValidationException>(() => estimator.Fit(train, ml.Data.LoadFromEnumerable(new List<Row>())));
        Assert.Contains("there are no rows in the validation data", empty.Message);
        Assert.Equal(DataSetKind.Validation, empty.DataSet);
    }

    /// <summary>A saved sequence model carries its input column names; the reader refused names over 1024 UTF-8 bytes as
    /// "bad column names", so a model fitted on a longer (generated) name saved and then failed to load. A name the file
    /// cannot hold is refused when the estimator is created, naming the setting.</summary>
    [Fact]
    public void ALongColumnNameSavesAndLoads_AndOneTooLongToSaveIsRefusedUpFront()
    {
        ToySequenceModel.EnsureRegistered();
        var ml = new MLContext(seed: 1);
        string name = new('s', 1100);
        var rows = ml.Data.LoadFromEnumerable(Sequences(40, 1));
        var train = ml.Transforms.CopyColumns(name, "Signal").Fit(rows).Transform(rows);
        var transformer = ml.DensityEstimation.ToySequence(name, frameSize: 3).Fit(train);
        using var zip = new MemoryStream();
        ml.Model.Save(transformer, train.Schema, zip);
        zip.Position = 0;
        var loaded = new MLContext(seed: 2).Model.LoadWithLiveDensityModels(zip, out _);
        Assert.Equal(transformer.Transform(train).GetColumn<float>("LogDensity"), loaded.Transform(train).GetColumn<float>("LogDensity"));

        var e = Assert.ThrowsAny<ArgumentException>(() => ml.DensityEstimation.ToySequence(new string('s', ushort.MaxValue + 1), frameSize: 3));
        Assert.Equal("FeatureColumnName", e.ParamName);
    }

    [Fact]
    public void FitsScoresSavesAndLoadsThroughTheCatalog()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Sequences(120, 1));
        var estimator = ml.DensityEstimation.ToySequence("Signal", frameSize: 3);
        var outputShape = estimator.GetOutputSchema(SchemaShapeFactory.FromType<Row>(ml));
        Assert.Contains(outputShape, c => c.Name == "FrameLogDensities" && c.Kind == SchemaShape.Column.VectorKind.VariableVector);
        var transformer = estimator.Fit(train);
        var model = Assert.IsType<ToySequenceModel>(transformer.Model);

        var testRows = Sequences(20, 2);
        var test = ml.Data.LoadFromEnumerable(testRows);
        var scored = transformer.Transform(test);
        var ld = scored.GetColumn<float>("LogDensity").ToArray();
        var perFrame = scored.GetColumn<float>("LogDensityPerFrame").ToArray();
        var frames = scored.GetColumn<float[]>("FrameLogDensities").ToArray();
        var score = scored.GetColumn<float>("Score").ToArray();
        var engine = model.LogDensity(SequenceBatch.FromSequences(testRows.Select(r => r.Signal).ToList(), 3));
        for (int i = 0; i < testRows.Count; i++)
        {
            Assert.Equal(engine[i], ld[i], 1e-4f * (1 + Math.Abs(engine[i])));
            Assert.Equal(testRows[i].Signal.Length / 3, frames[i].Length);
            Assert.Equal(ld[i] / frames[i].Length, perFrame[i], 1e-4f * (1 + Math.Abs(perFrame[i])));
            Assert.Equal(-perFrame[i], score[i], 1e-5f);
        }

        // Save and load through a zip: same outputs from the loaded pipeline.
        var path = Path.Combine(Path.GetTempPath(), $"dd-seq-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(transformer, train.Schema, path);
            var ml2 = new MLContext(seed: 2);
            ml2.ComponentCatalog.RegisterAssembly(typeof(SequenceDensityEstimator).Assembly);
            ToySequenceModel.EnsureRegistered();
            var loaded = ml2.Model.Load(path, out _);
            var again = loaded.Transform(ml2.Data.LoadFromEnumerable(testRows));
            Assert.Equal(ld, again.GetColumn<float>("LogDensity").ToArray());
            Assert.Equal(frames, again.GetColumn<float[]>("FrameLogDensities").ToArray());
            Assert.Equal(scored.GetColumn<bool>("PredictedLabel").ToArray(), again.GetColumn<bool>("PredictedLabel").ToArray());
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void BadSequencesAndSettingsAreRejected()
    {
        var ml = new MLContext(seed: 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => ml.DensityEstimation.ToySequence("Signal", frameSize: 0));
        var rows = Sequences(10, 3);
        rows[4] = new Row { Signal = new float[4] }; // not a multiple of 3
        var e = Assert.Throws<DataValidationException>(() => ml.DensityEstimation.ToySequence("Signal", 3).Fit(ml.Data.LoadFromEnumerable(rows)));
        Assert.Equal(4, e.Row);
        rows[4] = new Row { Signal = new[] { 0f, 1, 2, 3, float.NaN, 5 } };
        var nan = Assert.Throws<DataValidationException>(() => ml.DensityEstimation.ToySequence("Signal", 3).Fit(ml.Data.LoadFromEnumerable(rows)));
        Assert.Equal(4, nan.Row);
        Assert.Contains("frame 1", nan.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => ml.DensityEstimation.ToySequence("Missing", 3).Fit(ml.Data.LoadFromEnumerable(rows)));
    }
}
