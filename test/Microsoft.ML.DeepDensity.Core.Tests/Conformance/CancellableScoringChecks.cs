using Microsoft.ML.DeepDensity.Persistence;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>
/// <c>LogDensity(rows, logDensity, standardError, cancellationToken)</c>: scoring millions of rows can be cancelled. It
/// scores in groups of <see cref="DensityModel.RowsPerCancellationCheck"/> rows, checking the token between them, through
/// the same protected <c>LogDensityCore</c> every model (ours or outside the library) already implements.
/// </summary>
public class CancellableScoringChecks
{
    /// <summary>Every model gives bit for bit the scores (and standard errors) of the one-call form with a live token,
    /// over more rows than one group; an already-cancelled token throws before any work.</summary>
    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void ScoresAreThoseOfOneCall_AndACancelledTokenStopsBeforeAnyWork(string name)
    {
        var c = ModelCases.Get(name);
        var model = ModelCases.Fitted(name).Model;
        var data = c.MakeData(model.RowsPerCancellationCheck + 517, 77);
        var rows = data.Values.AsSpan(0, data.Rows * data.Columns);
        float[] ld1 = new float[data.Rows], se1 = new float[data.Rows], ld2 = new float[data.Rows], se2 = new float[data.Rows];
        model.LogDensity(rows, ld1, se1);
        using var cts = new CancellationTokenSource();
        model.LogDensity(rows, ld2, se2, cts.Token);
        ConformanceAssert.BitIdentical(ld1, ld2, name + " log-densities with a live token");
        ConformanceAssert.BitIdentical(se1, se2, name + " standard errors with a live token");
        var values = data.Values;
        Assert.ThrowsAny<OperationCanceledException>(() => model.LogDensity(values.AsSpan(0, data.Rows * data.Columns), ld2, default, new CancellationToken(true)));
        Assert.Equal(ld1, model.LogDensity(data, cts.Token));
    }

    /// <summary>An importance-sampled model checks its token every few rows, since each row costs K samples: 16 rows at
    /// the IWAE's K = 5,000 (16,384 rows there took minutes between checks), with the scores of one call.</summary>
    [Fact]
    public void ImportanceSampledModelsCheckEveryFewRows()
    {
        var iwae = (Models.Iwae.IwaeModel)ModelCases.Fitted("Iwae").Model;
        Assert.Equal(4096, iwae.RowsPerCancellationCheck);   // K = 20
        var precise = iwae.WithEvaluation(5000);
        Assert.Equal(16, precise.RowsPerCancellationCheck);
        Assert.Equal(1, iwae.WithEvaluation(1 << 18, samplesPerChunk: 1000).RowsPerCancellationCheck);
        var data = ModelCases.Get("Iwae").MakeData(37, 5);
        using var cts = new CancellationTokenSource();
        ConformanceAssert.BitIdentical(precise.LogDensity(data), precise.LogDensity(data, cts.Token), "K = 5000 in groups of 16");
    }

    /// <summary>A model written outside the library (only the protected contract it always had) gets the cancellable
    /// form too: cancelled while its first group is scored, the call stops before the second.</summary>
    [Fact]
    public void AnOutsideModelIsCancelledBetweenGroups()
    {
        using var cts = new CancellationTokenSource();
        var model = new CountingModel(cts);
        var rows = new float[(DensityModel.DefaultRowsPerCancellationCheck * 3 + 5) * model.Dimension];
        Assert.ThrowsAny<OperationCanceledException>(() => model.LogDensity(rows, new float[rows.Length / model.Dimension], default, cts.Token));
        Assert.Equal(1, model.Calls);
        Assert.Equal(DensityModel.DefaultRowsPerCancellationCheck, model.Rows);
    }

    /// <summary>Log-density 0 everywhere; cancels its token when first asked to score.</summary>
    private sealed class CountingModel(CancellationTokenSource cts) : DensityModel
    {
        public int Calls, Rows;
        public override string ModelKind => "TestCountingModel";
        public override int Dimension => 2;
        public override InputDomain InputDomain => InputDomain.Real;
        public override DensityKind DensityKind => DensityKind.Exact;

        protected override void LogDensityCore(ReadOnlySpan<float> rows, int count, Span<float> logDensity, Span<float> standardError)
        {
            Calls++; Rows += count;
            logDensity.Clear();
            cts.Cancel();
        }

        protected override void SampleCore(int count, ulong seed, Span<float> destination) => destination.Clear();
        protected internal override void WritePayload(ModelWriter writer) { }
    }
}
