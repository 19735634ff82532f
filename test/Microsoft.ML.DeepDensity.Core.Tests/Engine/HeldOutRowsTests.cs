using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

/// <summary>The helpers that name the rows a Fit without validation data held out (the ML.NET estimators learn the
/// anomaly threshold on them) are the splits themselves: the same rows as <see cref="TrainingLoop.Split(RowMatrix, RowMatrix?, double, ulong)"/>
/// in memory and <see cref="StreamingTrainingData.Split"/> streamed.</summary>
public class HeldOutRowsTests
{
    private static RowMatrix Indexed(int n)
    {
        var m = new RowMatrix(n, 1);
        for (int i = 0; i < n; i++) m[i, 0] = i;
        return m;
    }

    [Theory]
    [InlineData(900, 0.1, 1UL)]
    [InlineData(300, 0.2, 5UL)]
    [InlineData(95, 0.2, 5UL)]
    [InlineData(7, 0.1, 3UL)]
    [InlineData(100, 0.0, 3UL)]
    public void InMemoryHeldOutRowsAreTheSplitsValidationRows(int n, double fraction, ulong seed)
    {
        var (_, validation) = TrainingLoop.Split(Indexed(n), null, fraction, seed);
        var expected = validation is null ? Array.Empty<int>() : Enumerable.Range(0, validation.Rows).Select(i => (int)validation[i, 0]).ToArray();
        Assert.Equal(expected, TrainingLoop.HeldOutRows(n, fraction, seed));
        Assert.Equal(TrainingLoop.HeldOutCount(n, fraction), TrainingLoop.HeldOutRows(n, fraction, seed).Length);
    }

    [Theory]
    [InlineData(5000, 0.1, 42UL)]
    [InlineData(300, 0.2, 5UL)]
    [InlineData(100, 0.0, 5UL)]
    public void StreamedHeldOutPositionsAreTheSplitsValidationRows(int n, double fraction, ulong seed)
    {
        var (_, validation) = StreamingTrainingData.Split(RowStream.From(Indexed(n)), fraction, seed);
        var expected = new List<int>();
        if (validation is not null)
        {
            var buffer = new float[n];
            using var cursor = validation.Open();
            for (int k; (k = cursor.Read(buffer)) > 0;) expected.AddRange(buffer.Take(k).Select(v => (int)v));
        }
        var heldOut = StreamingTrainingData.HeldOutPositions(fraction, seed);
        Assert.Equal(expected, Enumerable.Range(0, n).Where(i => heldOut(i)));
    }
}
