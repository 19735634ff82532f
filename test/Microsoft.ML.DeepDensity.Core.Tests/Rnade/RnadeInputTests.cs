using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Persistence;

namespace Microsoft.ML.DeepDensity.Tests.Rnade;

/// <summary>Every kind of bad input gets an exception that names the row, the column and the problem.</summary>
public class RnadeInputTests
{
    private static RowMatrix Data(int rows = 50, int cols = 3)
    {
        var m = new RowMatrix(rows, cols);
        new Randomness.RandomStream(1).FillGaussian(m.Values);
        return m;
    }

    private static readonly RnadeOptions Tiny = new() { HiddenUnits = 4, Components = 2, MaxEpochs = 1 };

    [Theory]
    [InlineData(float.NaN, "NaN")]
    [InlineData(float.PositiveInfinity, "+infinity")]
    [InlineData(float.NegativeInfinity, "-infinity")]
    public void NonFiniteTrainingValueNamesRowAndColumn(float bad, string word)
    {
        var d = Data();
        d[17, 2] = bad;
        var e = Assert.Throws<DataValidationException>(() => RnadeModel.Fit(d, Tiny));
        Assert.Equal(17, e.Row);
        Assert.Equal(2, e.Column);
        Assert.Contains("row 17", e.Message);
        Assert.Contains("column 2", e.Message);
        Assert.Contains(word, e.Message);
    }

    [Fact]
    public void NonFiniteScoringValueNamesRowAndColumn()
    {
        var model = RnadeModel.Fit(Data(), Tiny);
        var x = Data(10);
        x[4, 1] = float.NaN;
        var e = Assert.Throws<DataValidationException>(() => model.LogDensity(x));
        Assert.Equal((4, 1), ((int)e.Row, e.Column));
    }

    [Fact]
    public void WrongWidthIsRejected()
    {
        var model = RnadeModel.Fit(Data(), Tiny);
        var e = Assert.Throws<DataValidationException>(() => model.LogDensity(Data(5, 4)));
        Assert.Contains("4 columns", e.Message);
        Assert.Contains("expects 3", e.Message);
        var e2 = Assert.Throws<DataValidationException>(() => model.LogDensity(new float[7], new float[3]));
        Assert.Contains("width 3", e2.Message);
        Assert.Throws<DataValidationException>(() => RnadeModel.Fit(Data(), Tiny, validation: Data(10, 2)));
    }

    [Fact]
    public void EmptyDataIsRejected()
    {
        var e = Assert.Throws<DataValidationException>(() => RnadeModel.Fit(new RowMatrix(0, 3), Tiny));
        Assert.Contains("no rows", e.Message);
    }

    [Fact]
    public void InvalidOptionsNameTheSetting()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => RnadeModel.Fit(Data(), new RnadeOptions { HiddenUnits = 0 }));
        Assert.Equal("HiddenUnits", e.ParamName);
        var e2 = Assert.Throws<ArgumentOutOfRangeException>(() => RnadeModel.Fit(Data(), new RnadeOptions { VariableOrder = new[] { 0, 0, 1 } }));
        Assert.Contains("permutation", e2.Message);
    }

    [Fact]
    public void CorruptFilesGiveClearErrors()
    {
        var bytes = RnadeModel.Fit(Data(), Tiny).ToBytes();
        Assert.Contains("Truncated", Assert.Throws<InvalidModelFileException>(() => DensityModel.FromBytes(bytes.AsSpan(0, bytes.Length - 9))).Message);
        var flipped = (byte[])bytes.Clone();
        flipped[bytes.Length / 2] ^= 0x10;
        Assert.Contains("checksum", Assert.Throws<InvalidModelFileException>(() => DensityModel.FromBytes(flipped)).Message);
        var magic = (byte[])bytes.Clone();
        magic[0] = (byte)'X';
        Assert.Contains("magic", Assert.Throws<InvalidModelFileException>(() => DensityModel.FromBytes(magic)).Message);
        using var truncatedStream = new MemoryStream(bytes, 0, 40);
        Assert.Throws<InvalidModelFileException>(() => DensityModel.Load(truncatedStream));
    }
}
