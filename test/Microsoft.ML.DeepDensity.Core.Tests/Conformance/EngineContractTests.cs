using Microsoft.ML.DeepDensity.Persistence;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>
/// The generic enforcement in the engine, tested with deliberately broken models: what the conformance suite relies
/// on to make a model that forgets something fail loudly instead of passing NaN or crashing callers.
/// </summary>
public class EngineContractTests
{
    [Fact]
    public void ANaNLogDensityFromAModelCoreIsReportedAsMinusInfinityNeverPassedOn()
    {
        var model = new BrokenModel { Kind = DensityKind.Estimate, NaNAtRow = 2, StandardError = 0.5f };
        var ld = new float[4];
        var se = new float[4];
        model.LogDensity(new float[4 * 3], ld, se);
        Assert.Equal(new[] { -1f, -1f, float.NegativeInfinity, -1f }, ld);
        Assert.Equal(new[] { 0.5f, 0.5f, 0f, 0.5f }, se);
        Assert.Equal(float.NegativeInfinity, new BrokenModel { MinusInfinityAtRow = 1 }.LogDensity(new Data.RowMatrix(3, 3))[1]);
        Assert.Equal(double.NegativeInfinity, new BrokenModel { NaNAtRow = 0 }.AverageLogDensity(new Data.RowMatrix(3, 3)));
    }

    /// <summary>An estimate's standard error is finite and non-negative, or +∞ (unknown: an importance-sampled estimate
    /// resting on too few effective samples); an exact model's is 0, never +∞; NaN and negative values are bugs.</summary>
    [Fact]
    public void StandardErrorsMustBeZeroForExactModelsAndNonNegativeOrUnknownForEstimates()
    {
        Assert.Throws<InvalidOperationException>(() => new BrokenModel { StandardError = 0.5f }.LogDensity(new float[3], new float[1], new float[1]));
        Assert.Throws<InvalidOperationException>(() => new BrokenModel { StandardError = float.PositiveInfinity }.LogDensity(new float[3], new float[1], new float[1]));
        Assert.Throws<InvalidOperationException>(() => new BrokenModel { Kind = DensityKind.Estimate, StandardError = float.NegativeInfinity }.LogDensity(new float[3], new float[1], new float[1]));
        var unknown = new float[1];
        new BrokenModel { Kind = DensityKind.Estimate, StandardError = float.PositiveInfinity }.LogDensity(new float[3], new float[1], unknown);
        Assert.Equal(float.PositiveInfinity, unknown[0]);
        // A NaN log-density becomes −∞ with standard error 0, also when the core reported +∞ for it.
        var ld = new float[2]; var se = new float[2];
        new BrokenModel { Kind = DensityKind.Estimate, NaNAtRow = 1, StandardError = float.PositiveInfinity }.LogDensity(new float[6], ld, se);
        Assert.Equal(new[] { float.PositiveInfinity, 0f }, se);
        Assert.Throws<InvalidOperationException>(() => new BrokenModel { Kind = DensityKind.Estimate, StandardError = -1f }.LogDensity(new float[3], new float[1], new float[1]));
        Assert.Throws<InvalidOperationException>(() => new BrokenModel { Kind = DensityKind.Estimate, StandardError = float.NaN }.LogDensity(new float[3], new float[1], new float[1]));
        var quarter = new float[1];
        new BrokenModel { Kind = DensityKind.Estimate, StandardError = 0.25f }.LogDensity(new float[3], new float[1], quarter);
        Assert.Equal(0.25f, quarter[0]);
    }

    [Fact]
    public void SamplesMustNotBeNaNAndBinaryModelsMustDrawZeroOrOne()
    {
        var e = Assert.Throws<InvalidOperationException>(() => new BrokenModel { SampleValue = float.NaN }.Sample(5, 1));
        Assert.Contains("sample 0", e.Message);
        Assert.Throws<InvalidOperationException>(() => new BrokenModel { Domain = InputDomain.Binary, SampleValue = 0.5f }.Sample(5, 1));
        Assert.Equal(1f, new BrokenModel { Domain = InputDomain.Binary, SampleValue = 1f }.Sample(5, 1)[4, 2]);
    }

    [Fact]
    public void AnyExceptionFromAPayloadReaderBecomesInvalidModelFileException()
    {
        ModelRegistry.Register(BrokenModel.KindName, (r, v) => r.ReadInt32() switch
        {
            1 => throw new NullReferenceException("reader bug"),
            2 => throw new KeyNotFoundException("reader bug"),
            3 => new WrongKindModel(),
            _ => new BrokenModel(),
        });
        foreach (int mode in new[] { 1, 2, 3 })
        {
            var bytes = new BrokenModel { PayloadMode = mode }.ToBytes();
            var e = Assert.Throws<InvalidModelFileException>(() => DensityModel.FromBytes(bytes));
            Assert.Contains(BrokenModel.KindName, e.Message);
        }
        Assert.IsType<BrokenModel>(DensityModel.FromBytes(new BrokenModel { PayloadMode = 0 }.ToBytes()));
    }

    /// <summary>A dependency the reader could not load (the ML.NET layer's DLLs copied next to a program without
    /// MathNet.Numerics) is the deployment's problem, not the file's: it was "Corrupt DeepGmm model: Could not load file
    /// or assembly 'MathNet.Numerics'", an InvalidModelFileException for an intact file. (A kind of its own whose reader
    /// simulates the failure only for its marker payload: the registry is global, and the damaged-file checks forge files
    /// of every registered kind, which this reader must reject like any other.)</summary>
    [Fact]
    public void ADependencyThatCannotBeLoadedIsNotReportedAsACorruptModel()
    {
        ModelRegistry.Register(MissingDependencyModel.KindName, (r, v) => r.ReadInt64() != MissingDependencyModel.Marker
            ? throw new InvalidOperationException("not the test's payload")
            : r.ReadInt32() switch
            {
                0 => throw new FileNotFoundException("Could not load file or assembly 'MathNet.Numerics, Version=5.0.0.0'.", "MathNet.Numerics, Version=5.0.0.0"),
                1 => throw new FileLoadException("Could not load file or assembly 'MathNet.Numerics, Version=5.0.0.0'."),
                2 => throw new TypeLoadException("Could not load type 'MathNet.Numerics.LinearAlgebra.Matrix`1'."),
                _ => throw new MissingMethodException("Method not found: 'MathNet.Numerics.LinearAlgebra.Matrix`1.Cholesky()'."),
            });
        Assert.Throws<FileNotFoundException>(() => DensityModel.FromBytes(new MissingDependencyModel(0).ToBytes()));
        Assert.Throws<FileLoadException>(() => DensityModel.FromBytes(new MissingDependencyModel(1).ToBytes()));
        Assert.Throws<TypeLoadException>(() => DensityModel.FromBytes(new MissingDependencyModel(2).ToBytes()));
        Assert.Throws<MissingMethodException>(() => DensityModel.FromBytes(new MissingDependencyModel(3).ToBytes()));
        // Any other payload of the kind is a corrupt file, as before.
        Assert.Throws<InvalidModelFileException>(() => DensityModel.FromBytes(new MissingDependencyModel(0, marker: 7).ToBytes()));
    }

    private sealed class MissingDependencyModel(int failure, long marker = MissingDependencyModel.Marker) : DensityModel
    {
        public const string KindName = "ConformanceMissingDependency";
        public const long Marker = 0x5EED_0D15_5A7E_D0C5;
        public override string ModelKind => KindName;
        public override int Dimension => 1;
        public override DensityKind DensityKind => DensityKind.Exact;
        protected internal override void WritePayload(ModelWriter writer) { writer.WriteInt64(marker); writer.WriteInt32(failure); }
        protected override void LogDensityCore(ReadOnlySpan<float> rows, int count, Span<float> logDensity, Span<float> standardError) { }
        protected override void SampleCore(int count, ulong seed, Span<float> destination) { }
    }

    private sealed class BrokenModel : DensityModel
    {
        public const string KindName = "ConformanceBroken";
        public int NaNAtRow { get; init; } = -1;
        public int MinusInfinityAtRow { get; init; } = -1;
        public float StandardError { get; init; }
        public float SampleValue { get; init; }
        public DensityKind Kind { get; init; } = DensityKind.Exact;
        public InputDomain Domain { get; init; } = InputDomain.Real;
        public int PayloadMode { get; init; }
        public override string ModelKind => KindName;
        public override int Dimension => 3;
        public override DensityKind DensityKind => Kind;
        public override InputDomain InputDomain => Domain;
        protected internal override void WritePayload(ModelWriter writer) => writer.WriteInt32(PayloadMode);
        protected override void LogDensityCore(ReadOnlySpan<float> rows, int count, Span<float> logDensity, Span<float> standardError)
        {
            for (int r = 0; r < count; r++)
                logDensity[r] = r == NaNAtRow ? float.NaN : r == MinusInfinityAtRow ? float.NegativeInfinity : -1f;
            standardError.Fill(StandardError);
        }
        protected override void SampleCore(int count, ulong seed, Span<float> destination) => destination.Fill(SampleValue);
    }

    private sealed class WrongKindModel : DensityModel
    {
        public override string ModelKind => "SomethingElse";
        public override int Dimension => 1;
        public override DensityKind DensityKind => DensityKind.Exact;
        protected internal override void WritePayload(ModelWriter writer) { }
        protected override void LogDensityCore(ReadOnlySpan<float> rows, int count, Span<float> logDensity, Span<float> standardError) { }
        protected override void SampleCore(int count, ulong seed, Span<float> destination) { }
    }
}
