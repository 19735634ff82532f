using Microsoft.ML.DeepDensity.Data;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

/// <summary>The standardiser at the bottom of float32's range: a column varying by no more than
/// <see cref="ColumnStandardizer.MinimumScale"/> is refused by the per-column map, naming the column, and by the pooled
/// map only when no column varies more.</summary>
public class ColumnStandardizerScaleTests
{
    /// <summary>Column 0 varies by exactly 1 (−1 and 1), column 1 by 1e-40, column 2 not at all.</summary>
    private static RowMatrix Data()
    {
        var m = new RowMatrix(4, 3);
        for (int r = 0; r < 4; r++) { m[r, 0] = r % 2 == 0 ? -1f : 1f; m[r, 1] = r * 1e-40f; m[r, 2] = 5f; }
        return m;
    }

    [Fact]
    public void TheColumnMapRefusesASubnormalColumnByIndex()
    {
        var e = Assert.Throws<DataValidationException>(() => ColumnStandardizer.Fit(Data()));
        Assert.Equal(1, e.Column);
        Assert.Contains("rescale", e.Message);
    }

    [Fact]
    public void ThePooledMapRefusesOnlyWhenNoColumnVariesMore()
    {
        // Beside a column of standard deviation exactly 1 (the scale a constant column also gets) the tiny column is,
        // in the data's metric, constant: the pooled scale is column 0's.
        var pooled = ColumnStandardizer.FitPooled(Data());
        Assert.All(pooled.Scale.ToArray(), s => Assert.Equal(1f, s));
        var tinyOnly = Data();
        for (int r = 0; r < 4; r++) tinyOnly[r, 0] = 0f;
        Assert.Equal(1, Assert.Throws<DataValidationException>(() => ColumnStandardizer.FitPooled(tinyOnly)).Column);
    }
}
