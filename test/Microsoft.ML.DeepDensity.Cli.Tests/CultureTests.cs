using System.Globalization;
using System.Text.RegularExpressions;

namespace Microsoft.ML.DeepDensity.Cli.Tests;

/// <summary>
/// ddml reads and writes numbers the same in every culture. Under de-DE (a decimal comma) the trial found
/// <c>-p LearningRate=0,001</c> trained with 1 (the comma read as a thousands separator, in every culture),
/// <c>--contamination 0.05</c> refused as 5 while <c>0,05</c> was accepted, and "value 0,5 is not binary" for a cell 0.5.
/// Each case runs in-process under de-DE and tr-TR (the culture flows to the engine's threads).
/// </summary>
public class CultureTests : IDisposable
{
    private readonly CliHarness _h = new();
    private readonly CultureInfo _previous = CultureInfo.CurrentCulture;
    public void Dispose()
    {
        CultureInfo.CurrentCulture = _previous;
        _h.Dispose();
    }

    private static readonly Regex DecimalComma = new(@"\d,\d");

    private (int Exit, string Out, string Err) RunIn(string culture, params string[] args)
    {
        CultureInfo.CurrentCulture = CultureInfo.GetCultureInfo(culture);
        try { return _h.Run(args); }
        finally { CultureInfo.CurrentCulture = _previous; }
    }

    private string Info(string zip) => _h.Run("info", zip).Out;

    private static string Setting(string info, string name)
        => Regex.Match(info, $@"^\s*{name}\s+(\S+)\s*$", RegexOptions.Multiline).Groups[1].Value;

    [Theory]
    [InlineData("de-DE")]
    [InlineData("tr-TR")]
    public void ParamValuesAreReadInTheInvariantCulture(string culture)
    {
        var train = _h.Blob("train.csv", 200);
        var zip = _h.PathOf("m.zip");
        var fit = RunIn(culture, "fit", train, "-m", "rnade", "--exclude", "id,label", "--epochs", "1", "-p", "HiddenUnits=4",
            "-p", "LearningRate=0.0025", "-p", "WeightDecay=1.5e-4", "--contamination", "0.05", "-o", zip);
        Assert.True(fit.Exit == 0, fit.Err);
        var info = Info(zip);
        Assert.Equal("0.0025", Setting(info, "LearningRate"));
        Assert.Equal("0.00015", Setting(info, "WeightDecay"));
        Assert.Contains("contamination 0.05", info);
        Assert.False(DecimalComma.IsMatch(fit.Out + fit.Err), fit.Out + fit.Err);
    }

    /// <summary>A comma in one number is refused in every culture, saying to use '.'; nothing is trained or written.</summary>
    [Theory]
    [InlineData("de-DE", "LearningRate=0,001", "LearningRate=0.001")]
    [InlineData("tr-TR", "WeightDecay=0,5", "WeightDecay=0.5")]
    [InlineData("en-US", "LearningRate=1,5", "LearningRate=1.5")]
    [InlineData("de-DE", "HiddenUnits=1,000", "HiddenUnits=1000")]
    public void ACommaInOneParamNumberIsAUsageError(string culture, string param, string suggestion)
    {
        var zip = _h.PathOf("m.zip");
        var r = RunIn(culture, "fit", _h.Blob("train.csv", 60), "-m", "rnade", "--exclude", "id,label", "--epochs", "1", "-p", param, "-o", zip);
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        Assert.Contains(suggestion, r.Err);
        Assert.Contains("ddml reads numbers the same in every culture", r.Err);
        _h.AssertNoPartialFiles(zip);
    }

    /// <summary>Lists stay comma-separated, in every culture.</summary>
    [Fact]
    public void ListParamsStayCommaSeparated()
    {
        var zip = _h.PathOf("g.zip");
        var r = RunIn("de-DE", "fit", _h.Blob("train.csv", 200), "-m", "deepgmm", "--exclude", "id,label", "--epochs", "1", "-p", "Layers=2,2", "-o", zip);
        Assert.True(r.Exit == 0, r.Err);
        Assert.Equal("2,2", Setting(Info(zip), "Layers"));
    }

    [Theory]
    [InlineData("de-DE")]
    [InlineData("tr-TR")]
    public void ContaminationIsReadInTheInvariantCulture(string culture)
    {
        var zip = _h.PathOf("m.zip");
        var comma = RunIn(culture, "fit", _h.Blob("train.csv", 60), "-m", "rnade", "--exclude", "id,label", "--epochs", "1", "--contamination", "0,05", "-o", zip);
        Assert.Equal(ExitCodes.UsageError, comma.Exit);
        Assert.Contains("use '.' as the decimal separator (e.g. 0.05)", comma.Err);
        _h.AssertNoPartialFiles(zip);
        var outOfRange = RunIn(culture, "fit", _h.Blob("train.csv", 60), "-m", "rnade", "--exclude", "id,label", "--contamination", "0.75", "-o", zip);
        Assert.Equal(ExitCodes.UsageError, outOfRange.Exit);
        Assert.Contains("(got 0.75)", outOfRange.Err);
    }

    /// <summary>A data error names the cell's value as the file writes it.</summary>
    [Theory]
    [InlineData("de-DE")]
    [InlineData("tr-TR")]
    public void DataErrorsWriteInvariantNumbers(string culture)
    {
        var train = _h.Write("bin.csv", "a,b\n0,1\n1,0\n0.5,1\n1,1\n0,0\n");
        var r = RunIn(culture, "fit", train, "-m", "nvil", "--epochs", "1", "-o", _h.PathOf("m.zip"));
        Assert.NotEqual(0, r.Exit);
        Assert.Contains("value 0.5 ", r.Err);
        Assert.False(DecimalComma.IsMatch(r.Err), r.Err);
    }
}
