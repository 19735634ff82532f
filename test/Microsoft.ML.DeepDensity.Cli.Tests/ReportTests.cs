using System.Diagnostics;
using AngleSharp.Html.Parser;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Reporting;
using SkiaSharp;

namespace Microsoft.ML.DeepDensity.Cli.Tests;

/// <summary>The HTML report: produced by `ddml report`, parses, every embedded image decodes, and it renders in Chromium.</summary>
public class ReportTests : IDisposable
{
    private readonly CliHarness _h = new();
    public void Dispose() => _h.Dispose();

    /// <summary>RNADE on digits other than 7; the report on held-out digits with 7 labelled anomalous (8×8 = image-shaped).</summary>
    private string DigitsReport()
    {
        var train = _h.Digits("train.csv", 0, 500, withAnomaly: false, keep: d => d != 7);
        var test = _h.Digits("test.csv", 1300, 200, withAnomaly: true);
        var zip = _h.PathOf("digits.zip");
        var fit = _h.Run("fit", train, "-m", "rnade", "--exclude", "digit", "--epochs", "4", "-p", "HiddenUnits=16", "-p", "Components=3", "-o", zip);
        Assert.True(fit.Exit == 0, fit.Err);
        var html = _h.PathOf("report.html");
        var r = _h.Run("report", zip, test, "--label", "anomaly", "--samples", "16", "--top", "8", "-o", html);
        Assert.True(r.Exit == 0, r.Err);
        return html;
    }

    /// <summary>RNN-RNADE on frame rows (3 features); the report on sequences of which every fifth has a jump at step 5 (labelled per sequence).</summary>
    private string SequenceReport()
    {
        string Frames(string name, int count, int seed, bool anomalies)
        {
            var rnd = new Random(seed);
            var sb = new System.Text.StringBuilder("unit,time,temp,pressure,flow,faulty\n");
            for (int s = 0; s < count; s++)
            {
                double x = CliHarness.Gauss(rnd), y = CliHarness.Gauss(rnd), z = CliHarness.Gauss(rnd);
                bool odd = anomalies && s % 5 == 0;
                for (int t = 0; t < 8 + s % 5; t++)
                {
                    (x, y, z) = (0.8 * x - 0.3 * y + 0.3 * CliHarness.Gauss(rnd), 0.3 * x + 0.8 * y + 0.3 * CliHarness.Gauss(rnd), 0.7 * z + 0.2 * x + 0.3 * CliHarness.Gauss(rnd));
                    double jump = odd && t == 5 ? 3 : 0;
                    sb.Append(System.Globalization.CultureInfo.InvariantCulture, $"u{s},{t},{x + jump:F4},{y - jump:F4},{z:F4},{(odd ? 1 : 0)}\n");
                }
            }
            return _h.Write(name, sb.ToString());
        }
        var zip = _h.PathOf("seq.zip");
        var fit = _h.Run("fit", Frames("train.csv", 50, 1, false), "-m", "rnnrnade", "--sequence-id", "unit", "--order", "time", "--exclude", "faulty",
            "--epochs", "4", "-p", "HiddenUnits=8", "-p", "RecurrentUnits=6", "-o", zip);
        Assert.True(fit.Exit == 0, fit.Err);
        var html = _h.PathOf("sequence-report.html");
        var r = _h.Run("report", zip, Frames("test.csv", 20, 2, true), "--label", "faulty", "--top", "6", "--samples", "3", "-o", html);
        Assert.True(r.Exit == 0, r.Err);
        return html;
    }

    [Fact]
    public void ReportParsesAndEveryImageDecodes()
    {
        var path = DigitsReport();
        var document = ParseAndCheckImages(path, new[] { "Training curves", "Log-densities", "Most anomalous rows", "Images (8×8)" },
            6); // training curves, histogram, ROC, generated samples, real rows, most anomalous rows
        var rows = document.QuerySelectorAll("table:not(.facts) tr").Skip(1).ToArray();
        Assert.Equal(8, rows.Length);
        // Most anomalous first: log-densities ascend down the table.
        var ld = rows.Select(r => double.Parse(r.Children[2].TextContent, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(ld.OrderBy(v => v), ld);
        Assert.Matches(@"AUROC \d\.\d{4}", document.Body!.TextContent);
    }

    [Fact]
    public void SequenceReportParsesAndEveryImageDecodes()
    {
        var document = ParseAndCheckImages(SequenceReport(),
            new[] { "Training curves", "Per-step log-densities", "Most anomalous steps", "Most anomalous sequences", "Real and generated sequences" },
            7); // training curves, histogram, ROC, per-step log-density along sequences, one line plot per feature (3)
        var tables = document.QuerySelectorAll("table:not(.facts)").ToArray();
        Assert.Equal(2, tables.Length);
        var steps = tables[0].QuerySelectorAll("tr").Skip(1).ToArray();
        Assert.Equal(6, steps.Length);
        var ld = steps.Select(r => double.Parse(r.Children[4].TextContent, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(ld.OrderBy(v => v), ld);
        // The jumps are the most anomalous steps: step 5 of a faulty unit.
        Assert.Equal("5", steps[0].Children[3].TextContent);
        Assert.Equal("anomalous", steps[0].Children[5].TextContent);
        Assert.Equal(6, tables[1].QuerySelectorAll("tr").Length - 1);
        var roc = document.QuerySelectorAll("img").Single(i => i.GetAttribute("alt") == "ROC curve").ParentElement!.TextContent;
        Assert.Matches(@"per step: \d+ anomalous .* AUROC \d\.\d{4}; per sequence .* 4 anomalous and 16 normal sequences, AUROC \d\.\d{4}", roc);
        Assert.Contains("3 sequences of 10 frames drawn from the model", document.Body!.TextContent); // median training length
    }

    /// <summary>'report --samples 0' was refused ("--samples must be at least 1") although the library takes 0 (and then
    /// drew one sample anyway). 0 draws none: the report has no grids of generated and real rows (rnnrnade: no section of
    /// real and generated sequences), without a word on standard error; a negative count is a usage error, and --seed or
    /// --length, which shape draws that are not made, are refused with --samples 0.</summary>
    /// <summary>A user's trial: the report showed neither the PredictedLabel threshold nor how many rows it flags (the
    /// way to see that a threshold from the training rows flags far more than the contamination of new rows). Its facts
    /// now give both, the rows that set the threshold as fit printed them, and the count agrees with evaluate's.</summary>
    [Fact]
    public void FactsGiveTheThresholdAndHowManyRowsItFlags()
    {
        var train = _h.Blob("train.csv", 120);
        var zip = _h.PathOf("model.zip");
        var fit = _h.Run("fit", train, "-m", "rnade", "--exclude", "label", "--epochs", "2", "-p", "HiddenUnits=4", "-p", "Components=1", "--contamination", "0.05", "-o", zip);
        Assert.True(fit.Exit == 0, fit.Err);
        var printed = System.Text.RegularExpressions.Regex.Match(fit.Out, @"anomaly threshold: score > (\S+), the \(1 - 0\.05\) quantile of (.+)\.\r?\n");
        Assert.True(printed.Success, fit.Out);
        var test = _h.Blob("test.csv", 90, seed: 7);
        var html = _h.PathOf("facts.html");
        var r = _h.Run("report", zip, test, "-o", html);
        Assert.True(r.Exit == 0, r.Err);
        var document = new AngleSharp.Html.Parser.HtmlParser().ParseDocument(File.ReadAllText(html));
        var fact = document.QuerySelectorAll("table.facts tr").Single(tr => tr.Children[0].TextContent == "anomaly threshold").Children[1].TextContent;
        int flagged = int.Parse(System.Text.RegularExpressions.Regex.Match(_h.Run("evaluate", zip, test).Out, @"predicted anomalies\s+(\d+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"score > {printed.Groups[1].Value} (the (1 - 0.05) quantile of {printed.Groups[2].Value}); flags {flagged} of 90 rows ({100.0 * flagged / 90:0.0} %)"), fact);
    }

    [Fact]
    public void SamplesZeroLeavesOutTheSamples_NegativeIsAUsageError()
    {
        var train = _h.Blob("train.csv", 120);
        var zip = _h.PathOf("model.zip");
        Assert.Equal(0, _h.Run("fit", train, "-m", "rnade", "--exclude", "label", "--epochs", "1", "-p", "HiddenUnits=4", "-p", "Components=1", "-o", zip).Exit);
        var html = _h.PathOf("none.html");
        var r = _h.Run("report", zip, train, "--image-shape", "2x2", "--samples", "0", "-o", html);
        Assert.Equal(0, r.Exit);
        Assert.Equal("", r.Err);
        var document = ParseAndCheckImages(html, new[] { "Training curves", "Log-densities", "Most anomalous rows", "Images (2×2)" }, 3); // curves, histogram, anomalous rows
        Assert.DoesNotContain("Generated samples", document.Body!.TextContent);
        Assert.DoesNotContain("Real rows", document.Body!.TextContent);
        // Not image-shaped: no samples are drawn anyway, so 0 asks for nothing that is dropped.
        Assert.Equal(0, _h.Run("report", zip, train, "--samples", "0", "-o", _h.PathOf("plain.html")).Exit);

        r = _h.Run("report", zip, train, "--image-shape", "2x2", "--samples", "-1", "-o", _h.PathOf("bad.html"));
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        Assert.Contains("ddml: error: --samples -1: must not be negative (0 draws none, and the report has no samples section).", r.Err);
        r = _h.Run("report", zip, train, "--image-shape", "2x2", "--samples", "0", "--seed", "3", "-o", _h.PathOf("bad.html"));
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        Assert.Contains("ddml: error: --seed has no effect with --samples 0: no samples are drawn; drop --seed or ask for samples.", r.Err);
        Assert.False(File.Exists(_h.PathOf("bad.html")));

        var frames = new System.Text.StringBuilder("unit,time,a,b\n");
        var rnd = new Random(3);
        for (int u = 0; u < 12; u++)
            for (int t = 0; t < 8; t++)
                frames.Append(System.Globalization.CultureInfo.InvariantCulture, $"u{u},{t},{CliHarness.Gauss(rnd):F4},{CliHarness.Gauss(rnd):F4}\n");
        var csv = _h.Write("frames.csv", frames.ToString());
        var seq = _h.PathOf("seq.zip");
        Assert.Equal(0, _h.Run("fit", csv, "-m", "rnnrnade", "--sequence-id", "unit", "--order", "time", "--epochs", "1",
            "-p", "HiddenUnits=2", "-p", "RecurrentUnits=2", "-o", seq).Exit);
        var seqHtml = _h.PathOf("seq.html");
        r = _h.Run("report", seq, csv, "--samples", "0", "-o", seqHtml);
        Assert.Equal(0, r.Exit);
        Assert.Equal("", r.Err);
        var headings = new HtmlParser().ParseDocument(File.ReadAllText(seqHtml)).QuerySelectorAll("h2").Select(h => h.TextContent).ToArray();
        Assert.Contains("Most anomalous sequences", headings);
        Assert.DoesNotContain("Real and generated sequences", headings);
        r = _h.Run("report", seq, csv, "--samples", "0", "--length", "5", "-o", _h.PathOf("bad.html"));
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        Assert.Contains("ddml: error: --length has no effect with --samples 0", r.Err);
    }

    /// <summary>Parses the report, checks its section headings, and that every image is an embedded PNG that decodes and is not blank.</summary>
    private static AngleSharp.Html.Dom.IHtmlDocument ParseAndCheckImages(string path, string[] headings, int imageCount)
    {
        var document = new HtmlParser().ParseDocument(File.ReadAllText(path));
        Assert.Equal(headings, document.QuerySelectorAll("h2").Select(h => h.TextContent).ToArray());
        var images = document.QuerySelectorAll("img").ToArray();
        Assert.Equal(imageCount, images.Length);
        foreach (var img in images)
        {
            var src = img.GetAttribute("src")!;
            Assert.StartsWith("data:image/png;base64,", src); // self-contained: nothing to fetch
            using var bitmap = SKBitmap.Decode(Convert.FromBase64String(src["data:image/png;base64,".Length..]));
            Assert.NotNull(bitmap);
            Assert.True(bitmap.Width >= 200 && bitmap.Height >= 100, $"{img.GetAttribute("alt")}: {bitmap.Width}×{bitmap.Height}");
            Assert.True(DistinctColours(bitmap) > 3, $"{img.GetAttribute("alt")} is blank");
        }
        Assert.Empty(document.QuerySelectorAll("script, link, iframe"));
        return document;
    }

    /// <summary>docs/cli.md, "The report": the library call as the doc shows it (copied verbatim; the doc must still hold
    /// these lines), on an ML.NET pipeline and a whole-sequence RNN-RNADE transformer.</summary>
    [Fact]
    public void TheDocsLibraryCallCompilesAndRuns()
    {
        var ml = new MLContext(seed: 1);
        var rnd = new Random(2);
        float[][] values = Enumerable.Range(0, 60).Select(_ => new[] { (float)rnd.NextDouble(), (float)rnd.NextDouble(), (float)rnd.NextDouble() }).ToArray();
        ITransformer transformer = ml.DensityEstimation.Rnade(hiddenUnits: 2, components: 1, maxEpochs: 1)
            .Fit(ml.Data.LoadFromEnumerable(values.Select(v => new DocRow { Features = v }).ToList()));
        var rows = RowMatrix.FromRows(values);
        var labels = values.Select((_, i) => i % 10 == 0).ToArray();
        IReadOnlyList<Training.TrainingProgress>? history = null;
        var seqs = Enumerable.Range(0, 8).Select(_ => Enumerable.Range(0, 8).Select(_ => (float)rnd.NextDouble()).ToArray()).ToList();
        var sequenceTransformer = ml.DensityEstimation.RnnRnade(new Transforms.SequenceDensityEstimator.Options { FrameSize = 2 },
            new Models.RnnRnade.RnnRnadeOptions { HiddenUnits = 2, RecurrentUnits = 2, MaxEpochs = 1 }).Fit(ml.Data.LoadFromEnumerable(seqs.Select(s => new DocSequence { Features = s }).ToList()));
        var sequences = SequenceBatch.FromSequences(seqs, 2);
        var frameLabels = new bool[sequences.TotalFrames];
        // The doc's lines (report.html lands in the test's working directory, the build output).
        var html = DensityReport.Create(transformer, rows, new DensityReportOptions { Labels = labels, TrainingHistory = history });
        File.WriteAllText("report.html", html);
        // a sequence model (live or loaded pipeline, or the engine SequenceDensityModel) on a SequenceBatch; labels per frame
        var sequenceHtml = DensityReport.Create(sequenceTransformer, sequences, new DensityReportOptions { Labels = frameLabels });
        Assert.Contains("<html", html);
        Assert.Contains("<html", sequenceHtml);
        string doc = File.ReadAllText(Path.Combine(CliHarness.RepoRoot(), "docs", "cli.md"));
        foreach (var line in new[]
        {
            "var html = DensityReport.Create(transformer, rows, new DensityReportOptions { Labels = labels, TrainingHistory = history });",
            "File.WriteAllText(\"report.html\", html);",
            "var sequenceHtml = DensityReport.Create(sequenceTransformer, sequences, new DensityReportOptions { Labels = frameLabels });",
        })
            Assert.True(doc.Contains(line), $"docs/cli.md no longer shows `{line}`: copy the doc's call into TheDocsLibraryCallCompilesAndRuns.");
    }

    private sealed class DocRow { [Microsoft.ML.Data.VectorType(3)] public float[] Features { get; set; } = []; }
    private sealed class DocSequence { public float[] Features { get; set; } = []; }

    /// <summary>A FeatureNames list of another length than the model's columns was accepted: shorter, the table of
    /// anomalous rows silently dropped columns; longer, its header and values no longer lined up. Negative counts are
    /// refused too. Both report kinds check, naming the setting.</summary>
    [Fact]
    public void ReportOptionsThatDisagreeWithTheModelAreRefused()
    {
        var rnd = new Random(1);
        var rows = RowMatrix.FromRows(Enumerable.Range(0, 40).Select(_ => new[] { (float)rnd.NextDouble(), (float)rnd.NextDouble(), (float)rnd.NextDouble() }).ToArray());
        var model = Models.Rnade.RnadeModel.Fit(rows, new Models.Rnade.RnadeOptions { HiddenUnits = 2, Components = 1, MaxEpochs = 1 });
        foreach (var names in new[] { new[] { "a" }, new[] { "a", "b", "c", "d" } })
            Assert.Contains($"FeatureNames has {names.Length} names for 3 columns", Assert.Throws<ArgumentException>(
                () => DensityReport.Create(model, rows, new DensityReportOptions { FeatureNames = names })).Message);
        Assert.Contains("TopRows must not be negative", Assert.ThrowsAny<ArgumentException>(
            () => DensityReport.Create(model, rows, new DensityReportOptions { TopRows = -1 })).Message);
        Assert.Contains("<html", DensityReport.Create(model, rows, new DensityReportOptions { FeatureNames = new[] { "a", "b", "c" } }));

        var sequences = SequenceBatch.FromSequences(Enumerable.Range(0, 6).Select(_ => Enumerable.Range(0, 8).Select(_ => (float)rnd.NextDouble()).ToArray()).ToList(), 2);
        var sequenceModel = Models.RnnRnade.RnnRnadeModel.Fit(sequences, new Models.RnnRnade.RnnRnadeOptions { HiddenUnits = 2, RecurrentUnits = 2, MaxEpochs = 1 });
        Assert.Contains("FeatureNames has 3 names for 2 values per frame", Assert.Throws<ArgumentException>(
            () => DensityReport.Create(sequenceModel, sequences, new DensityReportOptions { FeatureNames = new[] { "a", "b", "c" } })).Message);
    }

    [Fact]
    public void ImageGridDrawsRowsUpright()
    {
        // An "L" (top row and left column white, the rest black) in a 4×4 tile: the tile's top-left is white, bottom-right black.
        var row = new float[16];
        for (int i = 0; i < 16; i++) row[i] = i < 4 || i % 4 == 0 ? 1f : 0f;
        using var bitmap = SKBitmap.Decode(Plots.ImageGrid("L", RowMatrix.FromRows(new[] { row }), 4, 4, null, 0, 1));
        // The white pixels (the background is tinted; the title is dark) form the L, whose bounding box is the whole tile.
        int minX = int.MaxValue, minY = int.MaxValue, maxX = -1, maxY = -1;
        for (int y = 0; y < bitmap.Height; y++)
            for (int x = 0; x < bitmap.Width; x++)
            {
                var c = bitmap.GetPixel(x, y);
                if (c is { Red: 255, Green: 255, Blue: 255 })
                { minX = Math.Min(minX, x); maxX = Math.Max(maxX, x); minY = Math.Min(minY, y); maxY = Math.Max(maxY, y); }
            }
        Assert.True(maxX > minX + 8 && maxY > minY + 8, "no tile found");
        Assert.True(Math.Abs((maxX - minX) - (maxY - minY)) <= 2, "the tile is not square");
        int cell = (maxX - minX) / 4;
        Assert.Equal(SKColors.White, bitmap.GetPixel(minX + cell / 2, minY + cell / 2));
        Assert.Equal(SKColors.White, bitmap.GetPixel(maxX - cell / 2, minY + cell / 2));  // top row
        Assert.Equal(SKColors.White, bitmap.GetPixel(minX + cell / 2, maxY - cell / 2));  // left column
        Assert.Equal(SKColors.Black, bitmap.GetPixel(maxX - cell / 2, maxY - cell / 2));
    }

    /// <summary>A line through one point draws nothing: a one-epoch fit (--epochs 1; the RBM's default on a million rows)
    /// had an empty training-curves figure, and a one-frame sequence (or --length 1) no line in the sequence plots. A
    /// single point is drawn as a dot.</summary>
    [Fact]
    public void ASinglePointIsDrawnNotLeftEmpty()
    {
        var history = new[] { new Training.TrainingProgress(1, -3.0, -3.5, 1000, TimeSpan.FromSeconds(1), 0.001f) };
        Assert.True(ColouredPixelsInTheMiddle(Plots.TrainingCurves(history)) > 10, "the one epoch's point is not drawn");
        var one = new[] { new[] { 0.5f } };
        Assert.True(ColouredPixelsInTheMiddle(Plots.SequenceLines("a", one, Array.Empty<float[]>())) > 10, "the one-frame sequence is not drawn");
    }

    /// <summary>Pixels of a saturated colour (a series; grid lines and text are grey or black) in the middle of a figure,
    /// away from its title, axes and legend.</summary>
    private static int ColouredPixelsInTheMiddle(byte[] png)
    {
        using var bitmap = SKBitmap.Decode(png);
        int count = 0;
        for (int y = bitmap.Height / 10; y < bitmap.Height * 9 / 10; y++)
            for (int x = bitmap.Width * 2 / 5; x < bitmap.Width * 3 / 5; x++)
            {
                var c = bitmap.GetPixel(x, y);
                if (Math.Max(c.Red, Math.Max(c.Green, c.Blue)) - Math.Min(c.Red, Math.Min(c.Green, c.Blue)) > 80) count++;
            }
        return count;
    }

    [Fact]
    public void RocAreaEqualsMlNetAndMannWhitney()
    {
        var rnd = new Random(4);
        var labels = Enumerable.Range(0, 300).Select(i => i % 4 == 0).ToArray();
        // Rounded scores make ties, which both must count as one half.
        var score = labels.Select(l => Math.Round(CliHarness.Gauss(rnd) + (l ? 1 : 0), 1)).ToArray();
        var (curve, auroc) = Roc.Compute(score, labels);
        Assert.Equal((0.0, 0.0), curve[0]);
        Assert.Equal((1.0, 1.0), curve[^1]);
        double pairs = 0, wins = 0;
        for (int i = 0; i < labels.Length; i++)
            for (int j = 0; j < labels.Length; j++)
                if (labels[i] && !labels[j]) { pairs++; wins += score[i] > score[j] ? 1 : score[i] == score[j] ? 0.5 : 0; }
        Assert.Equal(wins / pairs, auroc, 12);
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(labels.Select((l, i) => new MetricRow { Label = l ? 1 : 0, Score = (float)score[i], PredictedLabel = score[i] > 1 }));
        Assert.Equal(ml.AnomalyDetection.Evaluate(view).AreaUnderRocCurve, auroc, 6);
    }

    /// <summary>A NaN score (a model whose log-density is NaN) never equals itself, so the tie loop of Roc.Compute did
    /// not advance and the call (and the report) hung forever; it is refused, naming the row.</summary>
    [Fact]
    public async Task RocOfANaNScoreIsRefusedNotAnEndlessLoop()
    {
        var call = Task.Run(() => Roc.Compute(new[] { 1.0, double.NaN, 0.5 }, new[] { true, false, false }));
        var first = await Task.WhenAny(call, Task.Delay(TimeSpan.FromSeconds(10)));
        Assert.True(first == call, "Roc.Compute did not return on a NaN score");
        var e = await Assert.ThrowsAsync<ArgumentException>(() => call);
        Assert.Contains("NaN", e.Message);
        Assert.Contains("1", e.Message);
    }

    /// <summary>Renders the reports (a row model's and the sequence model's) in headless Chromium and checks each screenshot
    /// is a real page (skipped without Chromium). DDML_SCREENSHOT_DIR=dir keeps the screenshots to look at.</summary>
    [ChromiumFact]
    public void ReportRendersInHeadlessChromium()
    {
        Screenshot(DigitsReport(), "report-screenshot.png");
        Screenshot(SequenceReport(), "sequence-report-screenshot.png");
    }

    private void Screenshot(string html, string name)
    {
        var png = _h.PathOf(name);
        var psi = new ProcessStartInfo(ChromiumFactAttribute.Chromium!) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", $"--user-data-dir={_h.PathOf("chromium-profile")}",
                                  "--window-size=1200,4200", $"--screenshot={png}", new Uri(html).AbsoluteUri })
            psi.ArgumentList.Add(a);
        using (var p = Process.Start(psi)!)
        {
            p.StandardOutput.ReadToEndAsync();
            p.StandardError.ReadToEndAsync();
            Assert.True(p.WaitForExit(TimeSpan.FromMinutes(2)), "chromium did not finish");
        }
        using var shot = SKBitmap.Decode(png);
        Assert.NotNull(shot);
        Assert.Equal(1200, shot.Width);
        // The page drew its figures: many colours (a blank or error page has a handful).
        Assert.True(DistinctColours(shot) > 50, "the screenshot looks blank");
        var keep = Environment.GetEnvironmentVariable("DDML_SCREENSHOT_DIR");
        if (keep is not null) File.Copy(png, Path.Combine(keep, name), overwrite: true);
    }

    private static int DistinctColours(SKBitmap b)
    {
        var set = new HashSet<uint>();
        for (int y = 0; y < b.Height; y += 3)
            for (int x = 0; x < b.Width; x += 3) set.Add((uint)b.GetPixel(x, y));
        return set.Count;
    }

    private sealed class MetricRow { public float Label { get; set; } public float Score { get; set; } public bool PredictedLabel { get; set; } }
}

/// <summary>A fact that is skipped, saying why, when Debian's `chromium` is not installed.</summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public static readonly string? Chromium = new[] { "chromium", "chromium-browser", "google-chrome" }
        .SelectMany(n => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, n)))
        .FirstOrDefault(File.Exists);

    public ChromiumFactAttribute()
    {
        if (Chromium is null) Skip = "Chromium is not installed (apt-get install chromium): the headless screenshot of the report is skipped.";
    }
}
