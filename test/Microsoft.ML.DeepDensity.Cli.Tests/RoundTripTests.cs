using System.Globalization;
using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;

namespace Microsoft.ML.DeepDensity.Cli.Tests;

/// <summary>fit → info → score → sample → evaluate for every model of the switch, checked against the library.</summary>
public class RoundTripTests : IDisposable
{
    private readonly CliHarness _h = new();
    public void Dispose() => _h.Dispose();

    /// <summary>Small settings per model so that each fit takes a second or two.</summary>
    public static TheoryData<string, string[]> Models() => new()
    {
        { "rnade", new[] { "-p", "HiddenUnits=8", "-p", "Components=2" } },
        { "deeprnade", new[] { "-p", "HiddenUnits=8", "-p", "Components=2", "-p", "Orderings=2" } },
        { "deepgmm", new[] { "-p", "Layers=2,2" } },
        { "rbm", new[] { "-p", "HiddenUnits=6" } },
        { "iwae", new[] { "-p", "LatentDimensions=2", "-p", "HiddenUnits=8,8", "-p", "EvaluationSamples=40", "-p", "EvaluationSamplesPerChunk=20" } },
        { "nvil", new[] { "-p", "LatentDimensions=3", "-p", "BaselineHiddenUnits=4", "-p", "EvaluationSamples=40", "-p", "EvaluationSamplesPerChunk=20" } },
    };

    /// <summary>Models that take only 0/1 values get the blob thresholded.</summary>
    private static bool BinaryOnly(string model) => model == "nvil";

    [Fact]
    public void EveryModelOfTheSwitchIsTested()
        => Assert.Equal(ModelCatalog.Names.OrderBy(n => n), Models().Select(r => (string)r[0]).OrderBy(n => n));

    [Theory]
    [MemberData(nameof(Models))]
    public void FitInfoScoreSampleEvaluate(string model, string[] options)
    {
        var train = _h.Blob("train.csv", 240, binary: BinaryOnly(model));
        var test = _h.Blob("test.csv", 90, seed: 2, binary: BinaryOnly(model));
        var zip = _h.PathOf("model.zip");

        var fit = _h.Run(new[] { "fit", train, "--model", model, "--label", "label", "--exclude", "id", "--epochs", "3", "--seed", "5", "--out", zip }.Concat(options).ToArray());
        Assert.True(fit.Exit == 0, fit.Err);
        // Progress and summary speak the model's unit: the Deep GMM runs EM iterations (after pretraining ones), not epochs.
        string unit = model == "deepgmm" ? "EM iteration" : "epoch";
        Assert.Contains(unit + " ", fit.Out);
        if (model == "deepgmm")
        {
            Assert.DoesNotContain("epoch", fit.Out);
            Assert.Contains("pretraining EM iteration", fit.Out);
        }

        var info = _h.Run("info", zip);
        Assert.True(info.Exit == 0, info.Err);
        Assert.Contains($"ddml model '{model}'", info.Out);
        Assert.Contains("dimension 4", info.Out);
        Assert.Contains("x1, x2, x3, x4", info.Out);
        Assert.Contains("engine format 1", info.Out);
        Assert.Contains("Seed                         5", info.Out);
        Assert.Matches($@"training +\d+ {unit}s?, best {unit} \d+", info.Out);

        // The zip is an ordinary ML.NET model: load it with ML.NET alone and score through a PredictionEngine.
        var ml = new MLContext(seed: 1);
        var loaded = ml.Model.Load(zip, out var inputSchema);
        Assert.Equal(4, ((VectorDataViewType)inputSchema["Features"].Type).Size);
        var library = loaded.GetDensityModel();
        var rows = ReadFeatures(test);
        var expected = library.LogDensity(rows);

        var scoredFile = _h.PathOf("scores.csv");
        var score = _h.Run("score", zip, test, "--out", scoredFile);
        Assert.True(score.Exit == 0, score.Err);
        var scored = File.ReadAllLines(scoredFile);
        var header = scored[0].Split(',');
        Assert.Equal(new[] { "id", "x1", "x2", "x3", "x4", "label" }, header.Take(6));
        Assert.Equal(library.DensityKind == DensityKind.Estimate, header.Contains("StandardError"));
        int ld = Array.IndexOf(header, "LogDensity"), sc = Array.IndexOf(header, "Score"), pl = Array.IndexOf(header, "PredictedLabel");
        Assert.Equal(91, scored.Length);
        for (int r = 0; r < 90; r++)
        {
            var cells = scored[r + 1].Split(',');
            Assert.Equal($"row{r}", cells[0]);
            Assert.Equal(expected[r], float.Parse(cells[ld], CultureInfo.InvariantCulture)); // bit-identical to the library
            Assert.Equal(-expected[r], float.Parse(cells[sc], CultureInfo.InvariantCulture));
            Assert.Contains(cells[pl], new[] { "true", "false" });
        }
        var engine = ml.Model.CreatePredictionEngine<In, Out>(loaded);
        var first = engine.Predict(new In { Features = rows.Row(0).ToArray() });
        Assert.Equal(expected[0], first.LogDensity, 3);

        var s1 = _h.Run("sample", zip, "-n", "5", "--seed", "3");
        var s2 = _h.Run("sample", zip, "-n", "5", "--seed", "3");
        Assert.True(s1.Exit == 0, s1.Err);
        Assert.Equal(s1.Out, s2.Out);
        var sampleLines = s1.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("x1,x2,x3,x4", sampleLines[0]);
        var draws = library.Sample(5, 3);
        for (int r = 0; r < 5; r++)
            Assert.Equal(draws.Row(r).ToArray(), sampleLines[r + 1].Split(',').Select(c => float.Parse(c, CultureInfo.InvariantCulture)).ToArray());

        var eval = _h.Run("evaluate", zip, test, "--label", "label");
        Assert.True(eval.Exit == 0, eval.Err);
        Assert.Contains("AUROC", eval.Out);
        Assert.Contains(library.AverageLogDensity(rows).ToString("F4", CultureInfo.InvariantCulture), eval.Out);
    }

    /// <summary>'evaluate --label' on a clean test set (every row labelled normal) printed the metrics, then failed with
    /// exit code 3 ("must hold both normal and anomalous rows"); AUROC is undefined with one class, so it now prints the
    /// figures that are defined, says AUROC is undefined, warns on standard error and exits 0. Both one-class cases.</summary>
    [Theory]
    [InlineData("0", "normal")]
    [InlineData("1", "anomalous")]
    public void EvaluateWithOneLabelClassPrintsWhatIsDefinedAndSucceeds(string label, string word)
    {
        var train = _h.Blob("train.csv", 120);
        var zip = _h.PathOf("model.zip");
        Assert.Equal(0, _h.Run("fit", train, "--model", "rnade", "--exclude", "id,label", "--epochs", "2", "-p", "HiddenUnits=4", "-p", "Components=1", "--out", zip).Exit);
        var lines = File.ReadAllLines(train);
        var test = _h.Write("clean.csv", string.Join("\n", lines.Take(41).Select((l, i) => i == 0 ? l : l[..l.LastIndexOf(',')] + "," + label)) + "\n");
        var eval = _h.Run("evaluate", zip, test, "--label", "label");
        Assert.Equal(0, eval.Exit);
        Assert.Contains("rows                    40", eval.Out);
        Assert.Contains("average log-density", eval.Out);
        Assert.Contains("predicted anomalies", eval.Out);
        Assert.Contains($"labelled anomalies      {(label == "1" ? 40 : 0)} of 40 rows", eval.Out);
        Assert.Contains($"AUROC                   undefined: every one of the 40 rows is labelled {word} (AUROC needs both classes)", eval.Out);
        Assert.DoesNotContain("detection rate", eval.Out);
        var warning = Assert.Single(eval.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("ddml: warning: clean.csv: the label column 'label' has only one class", warning);
    }

    /// <summary>'report --label' with one class wrote its page (a note instead of the ROC curve) but said nothing on
    /// standard error, where 'evaluate' warns: it now warns the same way and still succeeds; two classes give no warning.</summary>
    [Fact]
    public void ReportWithOneLabelClassWarnsAsEvaluateDoes()
    {
        var train = _h.Blob("train.csv", 120);
        var zip = _h.PathOf("model.zip");
        Assert.Equal(0, _h.Run("fit", train, "--model", "rnade", "--exclude", "id,label", "--epochs", "2", "-p", "HiddenUnits=4", "-p", "Components=1", "--out", zip).Exit);
        var lines = File.ReadAllLines(train);
        var test = _h.Write("clean.csv", string.Join("\n", lines.Take(41).Select((l, i) => i == 0 ? l : l[..l.LastIndexOf(',')] + ",0")) + "\n");
        var report = _h.Run("report", zip, test, "--label", "label", "--out", _h.PathOf("clean.html"));
        Assert.Equal(0, report.Exit);
        Assert.Contains("only one class", File.ReadAllText(_h.PathOf("clean.html")));
        var warning = Assert.Single(report.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("ddml: warning: clean.csv: the label column 'label' has only one class (every one of the 40 rows is labelled normal)", warning);
        var both = _h.Run("report", zip, train, "--label", "label", "--out", _h.PathOf("both.html"));
        Assert.Equal(0, both.Exit);
        Assert.DoesNotContain("warning", both.Err);
    }

    /// <summary>'report --samples/--seed' on data that is not image-shaped (the blob's columns are no perfect square) were
    /// taken and did nothing: generated samples are drawn only as images. They are now a usage error naming the option and
    /// the remedy (--image-shape), before the data is scored; the defaults and --image-shape with them still report.</summary>
    [Fact]
    public void ReportSampleOptionsOnDataThatIsNotImageShapedAreRefused()
    {
        // Three features (x4 excluded as well): not a perfect square, so no image is drawn.
        var train = _h.Blob("train.csv", 120);
        var zip = _h.PathOf("model.zip");
        Assert.Equal(0, _h.Run("fit", train, "--model", "rnade", "--exclude", "id,label,x4", "--epochs", "2", "-p", "HiddenUnits=4", "-p", "Components=1", "--out", zip).Exit);
        foreach (var (option, value) in new[] { ("--samples", "5"), ("--seed", "3") })
        {
            var r = _h.Run("report", zip, train, option, value, "--out", _h.PathOf("r.html"));
            Assert.Equal(ExitCodes.UsageError, r.Exit);
            Assert.Contains($"ddml: error: {option} has no effect here: generated samples are drawn as images, and the model's 3 columns are not image-shaped " +
                            $"(not a perfect square); give --image-shape HxW to draw them, or drop {option}.", r.Err);
            Assert.False(File.Exists(_h.PathOf("r.html")));
        }
        Assert.Equal(0, _h.Run("report", zip, train, "--out", _h.PathOf("plain.html")).Exit);
        Assert.Equal(0, _h.Run("report", zip, train, "--image-shape", "1x3", "--samples", "5", "--seed", "3", "--out", _h.PathOf("image.html")).Exit);
        Assert.Contains("Generated samples", File.ReadAllText(_h.PathOf("image.html")));

        // One column is a perfect square (1×1) but is not drawn as an image: the refusal said "1 columns ... (not a perfect square)".
        var one = _h.PathOf("one.zip");
        Assert.Equal(0, _h.Run("fit", train, "--model", "rnade", "--exclude", "id,label,x2,x3,x4", "--epochs", "1", "-p", "HiddenUnits=4", "-p", "Components=1", "--out", one).Exit);
        var single = _h.Run("report", one, train, "--samples", "5", "--out", _h.PathOf("r.html"));
        Assert.Equal(ExitCodes.UsageError, single.Exit);
        Assert.Contains("and the model's one column is not image-shaped (one value is no image); give --image-shape HxW to draw them, or drop --samples.", single.Err);
    }

    /// <summary>A table of four columns (a perfect square) was drawn as 2×2 "images" of generated and real rows: the
    /// Seattle weather's precipitation, temperatures and wind as grey squares. A square smaller than 8×8 is now read as a
    /// table: no image section, and --samples is refused saying why; --image-shape 2x2 still draws it.</summary>
    [Fact]
    public void AFourColumnTableIsNotDrawnAsImages()
    {
        var train = _h.Blob("train.csv", 120);
        var zip = _h.PathOf("model.zip");
        Assert.Equal(0, _h.Run("fit", train, "--model", "rnade", "--exclude", "id,label", "--epochs", "1", "-p", "HiddenUnits=4", "-p", "Components=1", "--out", zip).Exit);
        Assert.Equal(0, _h.Run("report", zip, train, "--out", _h.PathOf("plain.html")).Exit);
        Assert.DoesNotContain("<h2>Images", File.ReadAllText(_h.PathOf("plain.html")));
        var r = _h.Run("report", zip, train, "--samples", "5", "--out", _h.PathOf("r.html"));
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        Assert.Contains("the model's 4 columns are not image-shaped (a perfect square, but smaller than 8×8: read as a table); give --image-shape HxW to draw them, or drop --samples.", r.Err);
        Assert.Equal(0, _h.Run("report", zip, train, "--image-shape", "2x2", "--out", _h.PathOf("image.html")).Exit);
        Assert.Contains("<h2>Images (2×2)</h2>", File.ReadAllText(_h.PathOf("image.html")));
    }

    /// <summary>A Gaussian RBM (real data) has no per-epoch likelihood: its progress lines showed "train - valid -" and
    /// a note pointing to Metrics, which the tool does not print. They now show the reconstruction error, labelled.</summary>
    [Fact]
    public void GaussianRbmProgressShowsTheReconstructionError()
    {
        var train = _h.Blob("train.csv", 200);
        var fit = _h.Run("fit", train, "--model", "rbm", "--exclude", "id,label", "--epochs", "2", "-p", "HiddenUnits=4", "--out", _h.PathOf("rbm.zip"));
        Assert.True(fit.Exit == 0, fit.Err);
        Assert.Contains("VisibleType=Gaussian", fit.Out);
        Assert.DoesNotContain("see Metrics", fit.Out);
        var progress = fit.Out.Split('\n').Where(l => l.StartsWith("epoch ", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, progress.Count);
        foreach (var line in progress)
        {
            Assert.Matches(@"train recon error +\d+\.\d{4}  valid recon error +(\d+\.\d{4}|-) ", line); // no validation monitor: "-"
            Assert.Contains("squared reconstruction error per row, lower is better", line);
        }
        // 'info' showed no "last train" figure for it (the history kept only the NaN likelihood), and the report's
        // training curves were an empty plot: both show the last reconstruction error now, labelled as such.
        var info = _h.Run("info", _h.PathOf("rbm.zip"));
        Assert.True(info.Exit == 0, info.Err);
        var lastRecon = System.Text.RegularExpressions.Regex.Matches(progress[^1], @"train recon error +(\d+\.\d{4})")[0].Groups[1].Value;
        Assert.Contains($", last train recon error {lastRecon}", info.Out);
        Assert.Contains("(RBM with Gaussian units: no likelihood; squared reconstruction error per row, lower is better)", info.Out);
        var report = _h.Run("report", _h.PathOf("rbm.zip"), train, "--out", _h.PathOf("rbm.html"));
        Assert.True(report.Exit == 0, report.Err);
        Assert.Contains("squared reconstruction error per row of the training and validation data after each epoch, lower is better", File.ReadAllText(_h.PathOf("rbm.html")));
        // A binary RBM keeps its pseudo-log-likelihoods.
        var binary = _h.Blob("binary.csv", 200, binary: true);
        fit = _h.Run("fit", binary, "--model", "rbm", "--exclude", "id,label", "--epochs", "1", "-p", "HiddenUnits=4", "--out", _h.PathOf("rbm2.zip"));
        Assert.True(fit.Exit == 0, fit.Err);
        Assert.Matches(@"epoch +1  train +-\d+\.\d{4}  valid +(-\d+\.\d{4}|-) .*pseudo-log-likelihoods", fit.Out);
        Assert.Matches(@", last train -\d+\.\d{4}(, valid -\d+\.\d{4})? \(pseudo-log-likelihoods\)", _h.Run("info", _h.PathOf("rbm2.zip")).Out);
    }

    private static RowMatrix ReadFeatures(string csv)
        => RowMatrix.FromRows(File.ReadAllLines(csv).Skip(1).Select(l => l.Split(',').Skip(1).Take(4).Select(c => float.Parse(c, CultureInfo.InvariantCulture)).ToArray()).ToArray());

    public sealed class In { [VectorType(4)] public float[] Features { get; set; } = new float[4]; }
    public sealed class Out { public float LogDensity { get; set; } public float Score { get; set; } public bool PredictedLabel { get; set; } }
}
