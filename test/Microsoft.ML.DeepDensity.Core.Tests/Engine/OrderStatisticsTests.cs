using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

public class OrderStatisticsTests
{
    private static IEnumerable<(string Name, float[] Data)> Inputs()
    {
        var rng = new RandomStream(4);
        foreach (int n in new[] { 1, 2, 3, 31, 33, 100, 1000, 20_000 })
        {
            var g = new float[n]; rng.FillGaussian(g);
            yield return ($"gaussian {n}", g);
            yield return ($"sorted {n}", g.Order().ToArray());
            yield return ($"reversed {n}", g.OrderDescending().ToArray());
            yield return ($"binary {n}", g.Select(v => v > 0.3f ? 1f : 0f).ToArray());
            yield return ($"constant {n}", Enumerable.Repeat(2.5f, n).ToArray());
            yield return ($"organ pipe {n}", Enumerable.Range(0, n).Select(i => (float)Math.Min(i, n - 1 - i)).ToArray());
            yield return ($"few values {n}", g.Select(v => MathF.Round(v * 2f)).ToArray());
            yield return ($"signed zeros and extremes {n}", g.Select((v, i) => i % 5 == 0 ? -0f : i % 7 == 0 ? float.MaxValue : i % 11 == 0 ? float.NegativeInfinity : v).ToArray());
        }
        // Median-of-three "killer" shape: every partition peels off a few elements, so the depth limit (and its sort) must take over.
        int m = 50_000;
        var killer = new float[m];
        for (int i = 0; i < m / 2; i++) { killer[i] = i % 2 == 0 ? i : m / 2 + i; killer[m / 2 + i] = 2 * i + 1; }
        yield return ("median-of-three killer", killer);
    }

    [Fact]
    public void SelectionGivesTheValuesOfAFullSort()
    {
        foreach (var (name, data) in Inputs())
        {
            int n = data.Length;
            var sorted = data.ToArray(); Array.Sort(sorted);
            foreach (int k in new[] { 1, 3, 10, 64 })
            {
                var positions = Enumerable.Range(0, k).Select(i => Math.Min(n - 1, (int)((i + 0.5) / k * n))).ToArray();
                var values = new float[k];
                OrderStatistics.Select(data.ToArray(), positions, values);
                for (int i = 0; i < k; i++)
                    Assert.True(BitConverter.SingleToInt32Bits(sorted[positions[i]]) == BitConverter.SingleToInt32Bits(values[i]) || sorted[positions[i]] == values[i],
                        $"{name}, k = {k}: position {positions[i]} is {values[i]}, a sort gives {sorted[positions[i]]}");
            }
        }
    }

    [Fact]
    public void RnadeColumnQuantilesAreTheSortedColumnsQuantiles()
    {
        var rng = new RandomStream(9);
        var data = new Data.RowMatrix(3001, 37); // three groups of 16 columns, the last partial
        rng.FillGaussian(data.Values);
        for (int r = 0; r < data.Rows; r++) { data[r, 3] = r % 3; data[r, 20] = r % 2; } // columns of two and three values
        const int k = 10;
        var q = RnadeModel.ColumnQuantiles(data, k);
        for (int c = 0; c < data.Columns; c++)
        {
            var col = Enumerable.Range(0, data.Rows).Select(r => data[r, c]).Order().ToArray();
            for (int i = 0; i < k; i++) Assert.Equal(col[Math.Min(data.Rows - 1, (int)((i + 0.5) / k * data.Rows))], q[c * k + i]);
        }
    }
}
