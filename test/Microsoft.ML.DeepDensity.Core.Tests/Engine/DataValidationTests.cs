using Microsoft.ML.DeepDensity.Data;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

/// <summary>
/// The row checks every scoring call runs first, on rows wider than a vector (the conformance cases have 4 columns, so
/// only these reach the vectorised body): a bad value anywhere — in a vector's body or in the tail — is found and named
/// with its row and column, and good rows (−0, subnormals, the largest floats; 0/1 for binary) pass.
/// </summary>
public class DataValidationTests
{
    [Theory]
    [InlineData(37)]
    [InlineData(784)]
    public void EveryBadValuePositionIsFoundAndNamed(int width)
    {
        var rows = new float[3 * width];
        var random = new Randomness.RandomStream(5);
        random.FillGaussian(rows);
        rows[1] = -0f; rows[2] = float.Epsilon; rows[3] = float.MaxValue; rows[4] = -float.MaxValue;
        Assert.Equal(3, DataValidation.CheckRows(rows, width, InputDomain.Real, "x"));
        foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
            for (int c = 0; c < width; c++)
            {
                var copy = (float[])rows.Clone();
                copy[width + c] = bad;
                var e = Assert.Throws<DataValidationException>(() => DataValidation.CheckRows(copy, width, InputDomain.Real, "x"));
                Assert.Equal((1L, c), (e.Row, e.Column));
            }
    }

    [Theory]
    [InlineData(37)]
    [InlineData(784)]
    public void EveryNonBinaryValuePositionIsFoundAndNamed(int width)
    {
        var rows = new float[2 * width];
        for (int i = 0; i < rows.Length; i++) rows[i] = i % 3 == 0 ? 1f : 0f;
        rows[5] = -0f; // equal to 0
        Assert.Equal(2, DataValidation.CheckRows(rows, width, InputDomain.Binary, "x"));
        foreach (float bad in new[] { 0.5f, 2f, -1f, 1e-7f, float.NaN, float.PositiveInfinity })
            for (int c = 0; c < width; c++)
            {
                var copy = (float[])rows.Clone();
                copy[width + c] = bad;
                var e = Assert.Throws<DataValidationException>(() => DataValidation.CheckRows(copy, width, InputDomain.Binary, "x"));
                Assert.Equal((1L, c), (e.Row, e.Column));
            }
    }

    /// <summary>A matrix large enough to be scanned by row blocks in parallel: the exception names the earliest bad row
    /// (and its first bad column) whichever block finds one first, on one thread or two, and a clean matrix passes.</summary>
    [Theory]
    [InlineData(InputDomain.Real)]
    [InlineData(InputDomain.Binary)]
    public void ALargeMatrixNamesItsFirstBadRowAtAnyThreadCount(InputDomain domain)
    {
        const int width = 784;
        int rows = (int)(3 * DataValidation.ParallelValues / width) + 17;
        var x = new float[rows * width];
        for (int i = 0; i < x.Length; i++) x[i] = i % 7 == 0 ? 1f : 0f;
        int saved = DeepDensityEnvironment.MaxDegreeOfParallelism;
        try
        {
            foreach (int threads in new[] { 1, 2 })
            {
                DeepDensityEnvironment.MaxDegreeOfParallelism = threads;
                Assert.Equal(rows, DataValidation.CheckRows(x, width, domain, "x"));
                // Bad values in a late block first, then earlier ones: the earliest row (and its first column) is named.
                foreach (var (row, column) in new[] { (rows - 1, 783), (rows / 2, 3), (1400, 600), (1400, 20), (9, 700) })
                {
                    var copy = (float[])x.Clone();
                    copy[(long)row * width + column] = float.NaN;
                    copy[(long)(rows - 1) * width] = float.PositiveInfinity;
                    var e = Assert.Throws<DataValidationException>(() => DataValidation.CheckRows(copy, width, domain, "x", firstRow: 1000));
                    Assert.Equal((1000L + Math.Min(row, rows - 1), row == rows - 1 ? 0 : column), (e.Row, e.Column));
                }
            }
        }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = saved; }
    }
}
