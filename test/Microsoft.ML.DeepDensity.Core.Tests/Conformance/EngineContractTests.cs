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

    [Fact]
    public void StandardErrorsMustBeZeroForExactModelsAndFiniteNonNegativeForEstimates()
    {
        Assert.Throws<InvalidOperationException>(() => new BrokenModel { StandardError = 0.5f }.LogDensity(new float[3], new float[1], new float[1]));
        Assert.Throws<InvalidOperationException>(() => new BrokenModel { Kind = DensityKind.Estimate, StandardError = -1f }.LogDensity(new float[3], new float[1], new float[1]));
        Assert.Throws<InvalidOperationException>(() => new BrokenModel { Kind = DensityKind.Estimate, StandardError = float.NaN }.LogDensity(new float[3], new float[1], new float[1]));
        var se = new float[1];
        new BrokenModel { Kind = DensityKind.Estimate, StandardError = 0.25f }.LogDensity(new float[3], new float[1], se);
        Assert.Equal(0.25f, se[0]);
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
