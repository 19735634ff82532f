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
}
