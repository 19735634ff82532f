using System.Globalization;

namespace Microsoft.ML.DeepDensity.Cli.Tests;

/// <summary><c>ddml fit</c> sets the PredictedLabel threshold as the ML.NET estimator does (rows the model did not train
/// on by default; <c>--threshold-rows Training</c> for every training row), and says which rows set it.</summary>
public class ThresholdRowsTests : IDisposable
{
    private readonly CliHarness _h = new();
    public void Dispose() => _h.Dispose();

    private float Fit(string csv, string zip, params string[] extra)
    {
        var fit = _h.Run(new[] { "fit", csv, "-m", "rnade", "--label", "label", "--exclude", "id", "--epochs", "3", "--seed", "5",
            "--contamination", "0.05", "-p", "HiddenUnits=8", "-p", "Components=2", "-o", zip }.Concat(extra).ToArray());
        Assert.True(fit.Exit == 0, fit.Err);
        var line = fit.Out.Split('\n').Single(l => l.StartsWith("anomaly threshold: score > ", StringComparison.Ordinal));
        _lines.Add(line);
        return float.Parse(line["anomaly threshold: score > ".Length..line.IndexOf(',')], CultureInfo.InvariantCulture);
    }

    private readonly List<string> _lines = new();

    [Fact]
    public void FitSaysWhichRowsSetTheThresholdAndInfoPrintsIt()
    {
        var train = _h.Blob("train.csv", 240);
        float heldOut = Fit(train, _h.PathOf("h.zip"));
        Assert.EndsWith("the (1 - 0.05) quantile of 24 held-out rows.", _lines[^1].TrimEnd());
        float training = Fit(train, _h.PathOf("t.zip"), "--threshold-rows", "training");
        Assert.EndsWith("the (1 - 0.05) quantile of 240 training rows.", _lines[^1].TrimEnd());
        Assert.NotEqual(heldOut, training);
        var info = _h.Run("info", _h.PathOf("h.zip"));
        Assert.True(info.Exit == 0, info.Err);
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"score > {heldOut:G6} (contamination 0.05)"), info.Out);

        // Too few held-out rows (10 of 100 at 0.05, fewer than 20): the training rows, and the line says why.
        Fit(_h.Blob("small.csv", 100), _h.PathOf("s.zip"));
        Assert.Contains("quantile of 100 training rows (10 held-out rows, fewer than the 20 a held-out threshold needs at contamination 0.05).", _lines[^1]);
    }

    [Fact]
    public void ThresholdRowsIsForRowModels()
    {
        var r = _h.Run("fit", _h.Blob("train.csv", 40), "-m", "rnnrnade", "--threshold-rows", "training", "-o", _h.PathOf("m.zip"));
        Assert.Equal(2, r.Exit);
        Assert.Contains("--threshold-rows is for row models", r.Err);
    }
}
