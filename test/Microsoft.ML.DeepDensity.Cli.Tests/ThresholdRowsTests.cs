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
        _stderr.Add(fit.Err);
        return float.Parse(line["anomaly threshold: score > ".Length..line.IndexOf(',')], CultureInfo.InvariantCulture);
    }

    private readonly List<string> _lines = new();
    private readonly List<string> _stderr = new();

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

        // Too few held-out rows for the empirical quantile (10 of 100 at 0.05, fewer than 20): their normal approximation.
        // It used to be the training rows, which flagged 5–51 % of new normal rows of a trial's small tables at 0.01.
        Fit(_h.Blob("small.csv", 100), _h.PathOf("s.zip"));
        Assert.EndsWith("quantile of 10 held-out rows by a normal approximation of their scores (mean + 1.923 sd, at least their largest; " +
                        "the empirical quantile needs 20).", _lines[^1].TrimEnd());
        Assert.DoesNotContain("warning", _stderr[^1], StringComparison.Ordinal);
        // Fewer than 10 (9 of 90): the training rows, and a warning on stderr says what to expect and what to do.
        Fit(_h.Blob("tiny.csv", 90), _h.PathOf("x.zip"));
        Assert.Contains("quantile of 90 training rows (9 held-out rows, fewer than the 10 a held-out threshold needs).", _lines[^1]);
        Assert.Contains("ddml: warning: the anomaly threshold was set on the 90 rows of the training data because only 9 rows were held out " +
                        "(a threshold needs at least 10); expect more than 0.05 of new normal rows to be flagged (the model scores its training " +
                        "rows better than new ones); pass --validation FILE with at least 10 rows (20 for the empirical quantile), or raise " +
                        "--param ValidationFraction.", _stderr[^1]);
        Fit(_h.Blob("tiny.csv", 90), _h.PathOf("y.zip"), "--threshold-rows", "training");   // asked for: no warning
        Assert.DoesNotContain("warning", _stderr[^1], StringComparison.Ordinal);
    }

    /// <summary>rnnrnade takes --threshold-rows too (it refused it while its thresholds came from the training frames):
    /// by default the frames of the sequences it held out set the frame threshold, with Training every training frame.</summary>
    [Fact]
    public void RnnRnadeFitSaysWhichFramesSetTheThreshold()
    {
        var rnd = new Random(3);
        var lines = new List<string> { "seq,t,a,b" };
        int frames = 0;
        for (int s = 0; s < 60; s++)
        {
            double x = CliHarness.Gauss(rnd), y = CliHarness.Gauss(rnd);
            for (int t = 0; t < 8; t++, frames++)
            {
                (x, y) = (0.8 * x - 0.3 * y + 0.3 * CliHarness.Gauss(rnd), 0.3 * x + 0.8 * y + 0.3 * CliHarness.Gauss(rnd));
                lines.Add(string.Create(CultureInfo.InvariantCulture, $"s{s},{t},{x:F4},{y:F4}"));
            }
        }
        var train = _h.Write("frames.csv", string.Join("\n", lines) + "\n");
        string Line(params string[] extra)
        {
            var fit = _h.Run(new[] { "fit", train, "-m", "rnnrnade", "--sequence-id", "seq", "--order", "t", "--epochs", "3", "--seed", "5",
                "--contamination", "0.05", "-p", "HiddenUnits=6", "-p", "RecurrentUnits=4", "-o", _h.PathOf("m.zip") }.Concat(extra).ToArray());
            Assert.True(fit.Exit == 0, fit.Err);
            return fit.Out.Split('\n').Single(l => l.StartsWith("anomaly threshold: score > ", StringComparison.Ordinal)).TrimEnd();
        }
        // 6 of the 60 sequences held out (the default tenth): their 48 frames.
        Assert.EndsWith("per frame row, the (1 - 0.05) quantile of 48 held-out frames.", Line());
        Assert.EndsWith($"per frame row, the (1 - 0.05) quantile of {frames} training frames.", Line("--threshold-rows", "training"));
    }
}

/// <summary><c>ddml fit -m deepgmm</c> on no more rows than columns warns before training (the Deep GMM then fits its
/// training rows and little else), as the ML.NET estimator's log does; more rows than columns, no warning.</summary>
public class DeepGmmFewRowsTests : IDisposable
{
    private readonly CliHarness _h = new();
    public void Dispose() => _h.Dispose();

    [Theory]
    [InlineData(8, true)]
    [InlineData(60, false)]
    public void FitWarnsWhenTheRowsAreNoMoreThanTheColumns(int rows, bool warns)
    {
        var r = new Random(4);
        var csv = _h.Write("wide.csv", string.Join(",", Enumerable.Range(0, 10).Select(j => $"c{j}")) + "\n" + string.Concat(Enumerable.Range(0, rows)
            .Select(_ => string.Join(",", Enumerable.Range(0, 10).Select(_ => r.NextDouble().ToString("F4", CultureInfo.InvariantCulture))) + "\n")));
        var fit = _h.Run("fit", csv, "-m", "deepgmm", "-p", "Layers=1", "-p", "MaxIterations=1", "-p", "ValidationFraction=0", "-o", _h.PathOf("g.zip"));
        Assert.True(fit.Exit == 0, fit.Err);
        if (warns) Assert.Contains($"ddml: warning: {rows} training rows for 10 columns: with no more rows than columns", fit.Err);
        else Assert.DoesNotContain("columns: with no more rows than columns", fit.Err);   // (ValidationFraction 0: the threshold's warning)
    }
}
