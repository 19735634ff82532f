using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// A second model family plugged into the ML.NET layer the way every model is: an engine <see cref="DensityModel"/>
/// (here a toy diagonal Gaussian labelled <see cref="DensityKind.Estimate"/> with a made-up standard error), an options
/// class, a 5-line estimator and a catalog method — no other plumbing. Proves the layer is generic (columns, standard
/// error, save/load through the one generic scorer).
/// </summary>
public sealed class ToyGaussianModel : DensityModel
{
    public const string Kind = "TestToyGaussian";
    static ToyGaussianModel() => ModelRegistry.Register(Kind, Read);
    internal static void EnsureRegistered() { }

    private readonly float[] _mean, _variance;
    public ToyGaussianModel(float[] mean, float[] variance) { _mean = mean; _variance = variance; }
    public override string ModelKind => Kind;
    public override int Dimension => _mean.Length;
    public override DensityKind DensityKind => DensityKind.Estimate;

    public static ToyGaussianModel Fit(RowMatrix data)
    {
        int d = data.Columns;
        var mean = new float[d];
        var variance = new float[d];
        for (int j = 0; j < d; j++)
        {
            double m = 0, v = 0;
            for (int i = 0; i < data.Rows; i++) m += data[i, j];
            m /= data.Rows;
            for (int i = 0; i < data.Rows; i++) v += (data[i, j] - m) * (data[i, j] - m);
            mean[j] = (float)m;
            variance[j] = (float)Math.Max(v / data.Rows, 1e-6);
        }
        return new ToyGaussianModel(mean, variance);
    }

    protected override void LogDensityCore(ReadOnlySpan<float> rows, int count, Span<float> logDensity, Span<float> standardError)
    {
        int d = Dimension;
        for (int r = 0; r < count; r++)
        {
            double s = 0;
            for (int j = 0; j < d; j++)
            {
                double z = rows[r * d + j] - _mean[j];
                s += -0.5 * (Math.Log(2 * Math.PI * _variance[j]) + z * z / _variance[j]);
            }
            logDensity[r] = (float)s;
            if (!standardError.IsEmpty) standardError[r] = (float)(0.01 * Math.Abs(s)); // made up, for the column test
        }
    }

    protected override void SampleCore(int count, ulong seed, Span<float> destination)
    {
        var rng = new RandomStream(seed);
        for (int i = 0; i < count * Dimension; i++)
            destination[i] = (float)(_mean[i % Dimension] + Math.Sqrt(_variance[i % Dimension]) * rng.NextGaussian());
    }

    protected override void WritePayload(ModelWriter writer)
    {
        writer.WriteInt32(Dimension);
        writer.WriteSingles(_mean);
        writer.WriteSingles(_variance);
    }

    private static DensityModel Read(ModelReader r, int version)
    {
        int d = r.ReadInt32("dimension", 1, 1 << 16);
        return new ToyGaussianModel(r.ReadSingles("mean", d), r.ReadSingles("variance", d));
    }
}

public sealed class ToyGaussianOptions { }

public sealed class ToyGaussianEstimator : DensityEstimator<ToyGaussianModel, ToyGaussianOptions>
{
    public sealed class Options : DensityEstimatorOptions<ToyGaussianOptions> { }
    public ToyGaussianEstimator(MLContext ml, Options options) : base(ml, options, "ToyGaussian") => ToyGaussianModel.EnsureRegistered();
    protected override ToyGaussianModel Train(RowMatrix data, RowMatrix? validation, ToyGaussianOptions options,
        IProgress<TrainingProgress> progress, CancellationToken cancellationToken) => ToyGaussianModel.Fit(data);
}

public static class ToyCatalogExtensions
{
    public static ToyGaussianEstimator ToyGaussian(this DensityEstimationCatalog catalog, ToyGaussianEstimator.Options options)
        => new(catalog.Context, options);
}

public class GenericModelTests
{
    public sealed class WithStdErr
    {
        public float LogDensity { get; set; }
        public float StdErr { get; set; }
    }

    [Fact]
    public void AnotherModelFamily_PlugsIn_WithStandardErrorColumn_AndSavesThroughTheGenericScorer()
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.Blob(400);
        var dv = ml.Data.LoadFromEnumerable(data);
        var options = new ToyGaussianEstimator.Options { StandardErrorColumnName = "StdErr", Contamination = 0.1 };
        var transformer = ml.DensityEstimation.ToyGaussian(options).Fit(dv);
        var live = ml.Data.CreateEnumerable<WithStdErr>(transformer.Transform(dv), false).ToList();
        var expected = new float[data.Count];
        var expectedSe = new float[data.Count];
        transformer.Model.LogDensity(TestData.Matrix(data).AsSpan(), expected, expectedSe);
        for (int i = 0; i < data.Count; i++)
        {
            Assert.Equal(expected[i], live[i].LogDensity);
            Assert.Equal(expectedSe[i], live[i].StdErr);
            Assert.True(live[i].StdErr > 0);
        }
        var flagged = transformer.Transform(dv).GetColumn<bool>("PredictedLabel").Count(b => b);
        Assert.InRange(flagged, 30, 40); // ≈ 10 %

        using var ms = new MemoryStream();
        ml.Model.Save(transformer, dv.Schema, ms);
        ms.Position = 0;
        var loaded = new MLContext().Model.Load(ms, out _);
        var after = ml.Data.CreateEnumerable<WithStdErr>(loaded.Transform(dv), false).ToList();
        for (int i = 0; i < data.Count; i++)
        {
            Assert.Equal(live[i].LogDensity, after[i].LogDensity);
            Assert.Equal(live[i].StdErr, after[i].StdErr);
        }
        Assert.IsType<ToyGaussianModel>(loaded.GetDensityModel());
    }
}
