using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Tests.Conformance;

namespace Microsoft.ML.DeepDensity.Tests.Iwae;

/// <summary>
/// The Gaussian IWAE's input standardisation (<see cref="IwaeOptions.Standardize"/>, on by default): the networks run on
/// (x − mean) / sd of the training columns and every log-density, bound and sample is that of the raw columns
/// (docs/models/iwae.md, "Standardisation"). The conformance suite checks scale equivariance on its Gaussian IWAE cases.
/// </summary>
public class IwaeStandardizationTests
{
    private static IwaeOptions Options(int epochs, bool standardize = true) => new()
    {
        Likelihood = IwaeLikelihood.Gaussian, LatentDimensions = new[] { 2 }, HiddenUnits = new[] { 16 }, DeepHiddenUnits = new[] { 4 },
        Samples = 3, EvaluationSamples = 50, EvaluationSamplesPerChunk = 50, Seed = 1, MaxEpochs = epochs, EarlyStoppingPatience = 0,
        Standardize = standardize,
    };

    /// <summary>Four correlated columns at the scales of ordinary tabular data (a price near 5,000, a rate near 0.001, a
    /// size near 250, a noise of spread 1e5), and the scale and offset that bring each to unit scale.</summary>
    private static (RowMatrix Raw, RowMatrix Unit) TabularData(int rows, ulong seed)
    {
        float[] offset = [5000f, 0.001f, 250f, 0f], scale = [1000f, 2e-4f, 40f, 1e5f];
        var rng = new RandomStream(seed).Fork(0x7AB);
        var raw = new RowMatrix(rows, 4);
        var unit = new RowMatrix(rows, 4);
        for (int r = 0; r < rows; r++)
        {
            float a = (float)rng.NextGaussian(), b = 0.6f * a + 0.8f * (float)rng.NextGaussian();
            float c = MathF.Abs(a) + 0.3f * (float)rng.NextGaussian(), e = (float)rng.NextGaussian();
            float[] u = [a, b, c, e];
            for (int col = 0; col < 4; col++) { unit[r, col] = u[col]; raw[r, col] = offset[col] + scale[col] * u[col]; }
        }
        return (raw, unit);
    }

    /// <summary>The defect this option fixes: on the raw columns the unstandardised default (tanh encoder) scored −62.3
    /// nats a test row against −18.1 for the same fit on unit-scale columns, mapped back (ddml, 4,000 rows, 100 epochs).
    /// Standardised, the raw fit must score as the unit-scale fit does, up to the Jacobian of the units.</summary>
    [Fact]
    public void OnRawTabularColumnsTheFitScoresAsOnStandardisedColumns()
    {
        var (raw, unit) = TabularData(1500, 1);
        var (rawTest, unitTest) = TabularData(500, 2);
        double logScales = Math.Log(1000) + Math.Log(2e-4) + Math.Log(40) + Math.Log(1e5);
        var onRaw = IwaeModel.Fit(raw, Options(30));
        var onUnit = IwaeModel.Fit(unit, Options(30, standardize: false));
        double rawMean = onRaw.AverageLogDensity(rawTest) + logScales, unitMean = onUnit.AverageLogDensity(unitTest);
        Assert.True(Math.Abs(rawMean - unitMean) < 0.25, $"raw columns: {rawMean:F3} nats (in unit-scale units), unit-scale columns: {unitMean:F3}");
        Assert.NotNull(onRaw.Standardizer);
        Assert.Null(onUnit.Standardizer);
    }

    /// <summary>Scaling columns by powers of two changes nothing but the units: the standardised training data, and so
    /// the trained parameters, are the same bits; log-densities shift by −Σ log 2^e (the estimate's noise is seeded by the
    /// raw row, so rows are compared at the same noise through the unscaled model's own rows); samples scale exactly.</summary>
    [Fact]
    public void ColumnsScaledByPowersOfTwoGiveTheSameNetworkAndShiftedDensities()
    {
        var data = ConformanceData.Real(200, 7);
        int[] exponents = [10, -8, 3, 0];
        var scaled = new RowMatrix(data.Rows, data.Columns);
        for (int r = 0; r < data.Rows; r++)
            for (int c = 0; c < data.Columns; c++) scaled[r, c] = MathF.ScaleB(data[r, c], exponents[c]);
        var a = IwaeModel.Fit(data, Options(3));
        var b = IwaeModel.Fit(scaled, Options(3));
        var pa = a.Network.Parameters.Items; var pb = b.Network.Parameters.Items;
        for (int i = 0; i < pa.Count; i++) Assert.Equal(pa[i].Value, pb[i].Value);

        var sa = a.Sample(100, 9); var sb = b.Sample(100, 9);
        for (int r = 0; r < 100; r++)
            for (int c = 0; c < data.Columns; c++) Assert.Equal(MathF.ScaleB(sa[r, c], exponents[c]), sb[r, c]);

        // A row's estimate draws its noise from the row's own (raw) values, so a row and its scaled copy are estimated
        // with different noise: precise estimates (K = 4,000) agree within their standard errors.
        double shift = exponents.Sum() * Math.Log(2);
        var rows = data.Slice(0, 40); var scaledRows = scaled.Slice(0, 40);
        var (la, ea) = (new float[40], new float[40]); var (lb, eb) = (new float[40], new float[40]);
        a.WithEvaluation(4000).LogDensity(rows.AsSpan(), la, ea);
        b.WithEvaluation(4000).LogDensity(scaledRows.AsSpan(), lb, eb);
        for (int r = 0; r < 40; r++)
            Assert.True(Math.Abs(la[r] - (lb[r] + shift)) < 5 * (ea[r] + eb[r]) + 1e-3,
                $"row {r}: log p(x) {la[r]} ± {ea[r]}; log p(scaled x) + Σ e·log 2 = {lb[r] + shift} ± {eb[r]}");
    }

    /// <summary>A fixed network behind a standardizer is the raw-space model: its samples are the unstandardised network's
    /// samples mapped back (the same bits), and its log-density estimate converges to the network's exact log-density of
    /// the standardised rows plus the Jacobian (quadrature over the one-dimensional latent).</summary>
    [Fact]
    public void BehindAStandardizerSamplesMapBackAndTheEstimateConvergesToTheRawDensity()
    {
        var bare = IwaeModelTests.QuadratureModel(3, IwaeLikelihood.Gaussian, seed: 41, std: 1.0f, evalSamples: 1000);
        var standardizer = new ColumnStandardizer([10f, -3f, 0.5f], [2f, 0.25f, 7f]);
        var model = new IwaeModel(bare.Network, 5, 1000, 100, 77, standardizer);

        var unitSamples = bare.Sample(50, 3);
        var rawSamples = model.Sample(50, 3);
        var expected = unitSamples.AsSpan().ToArray();
        standardizer.Inverse(expected, 50);
        Assert.Equal(expected, rawSamples.AsSpan().ToArray());

        var exact = IwaeGaussianQuadratureTests.QuadratureLogP(bare, unitSamples);
        for (int r = 0; r < exact.Length; r++) exact[r] += standardizer.LogJacobian;
        IwaeModelTests.EstimateConverges(model, rawSamples, exact, coarseK: 5);
    }

    /// <summary>A standardising model writes payload version 3 (with or without the affine heads' bound) and reads back the
    /// same bits; models that do not standardise keep versions 1 and 2; a version-3 file that stores a standardizer for
    /// Bernoulli data, or a scale that is not positive, is refused as corrupt.</summary>
    [Fact]
    public void StandardisingModelsWritePayloadVersionThreeAndReadBackTheSameBits()
    {
        var data = ConformanceData.Real(60, 3);
        var withHidden = IwaeModel.Fit(data, Options(1));
        var affineOptions = Options(1); affineOptions.HiddenUnits = Array.Empty<int>();
        var affine = IwaeModel.Fit(data, affineOptions);
        Assert.Equal(3, withHidden.PayloadVersion);
        Assert.Equal(3, affine.PayloadVersion);
        Assert.NotNull(affine.Network.Bound);
        foreach (var model in new[] { withHidden, affine })
        {
            var loaded = (IwaeModel)DensityModel.FromBytes(model.ToBytes());
            Assert.Equal(model.Standardizer!.Mean.ToArray(), loaded.Standardizer!.Mean.ToArray());
            Assert.Equal(model.Standardizer.Scale.ToArray(), loaded.Standardizer.Scale.ToArray());
            Assert.Equal(model.Network.Bound is null, loaded.Network.Bound is null);
            Assert.Equal(model.LogDensity(data), loaded.LogDensity(data));
            Assert.Equal(model.Sample(20, 4).AsSpan().ToArray(), loaded.Sample(20, 4).AsSpan().ToArray());
            Assert.Equal(model.ToBytes(), loaded.ToBytes());
        }
        Assert.Equal(1, IwaeModel.Fit(data, Options(1, standardize: false)).PayloadVersion);
        affineOptions.Standardize = false;
        Assert.Equal(2, IwaeModel.Fit(ConformanceData.RealUnitScale(60, 3), affineOptions).PayloadVersion);
        var binary = Options(1); binary.Likelihood = IwaeLikelihood.Bernoulli;
        var bernoulli = IwaeModel.Fit(ConformanceData.Binary(60, 3), binary);
        Assert.Null(bernoulli.Standardizer);
        Assert.Equal(1, bernoulli.PayloadVersion);

        // A scale of −1 in place of the standardizer's last scale (a valid checksum): the reader names it.
        var parts = ModelFileParts.Parse(withHidden.ToBytes());
        var payload = parts.Payload.ToArray();
        int scaleAt = LastIndexOf(payload, BitConverter.GetBytes(withHidden.Standardizer!.Scale[^1]));
        BitConverter.GetBytes(-1f).CopyTo(payload, scaleAt);
        var e = Assert.ThrowsAny<Exception>(() => DensityModel.FromBytes(parts.WithPayload(payload).Build()));
        Assert.Contains("standardizer scale", e.Message);
    }

    private static int LastIndexOf(byte[] bytes, byte[] pattern)
    {
        for (int i = bytes.Length - pattern.Length; i >= 0; i--)
            if (bytes.AsSpan(i, pattern.Length).SequenceEqual(pattern)) return i;
        throw new InvalidOperationException("pattern not found");
    }

    /// <summary>Streamed training standardises by the same pass: with a buffer that holds the whole pass and no
    /// validation split it trains the in-memory model, bit for bit.</summary>
    [Fact]
    public void StreamedTrainingStandardisesAsTheInMemoryFit()
    {
        var data = ConformanceData.Real(120, 5);
        var options = Options(2); options.ValidationFraction = 0;
        var inMemory = IwaeModel.Fit(data, options);
        var streamed = IwaeModel.Fit(Training.RowStream.From(data), options, null,
            new Training.StreamingOptions { ShuffleBufferRows = data.Rows });
        Assert.Equal(inMemory.ToBytes(), streamed.ToBytes());
    }
}
