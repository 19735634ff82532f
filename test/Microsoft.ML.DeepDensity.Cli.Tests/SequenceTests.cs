using System.Globalization;
using System.Text;
using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;

namespace Microsoft.ML.DeepDensity.Cli.Tests;

/// <summary>
/// rnnrnade on frame rows (sequence id + order columns): fit → info → score → sample → evaluate → report, every value
/// checked against ML.NET on the saved zip or the engine model inside it.
/// </summary>
public class SequenceTests : IDisposable
{
    private static readonly CultureInfo Ci = CultureInfo.InvariantCulture;
    private readonly CliHarness _h = new();
    public void Dispose() => _h.Dispose();

    /// <summary>
    /// 2-d AR(1) sequences of 6–10 frames as frame rows: seq (text id), t (order), a, b, spike, anom. With
    /// <paramref name="anomalies"/>, every fourth sequence jumps off its trajectory at step 3: spike = 1 on that row
    /// only (a per-step label), anom = 1 on every row of the sequence (a per-sequence label).
    /// </summary>
    private string Frames(string name, int sequences, int seed, bool anomalies = false, bool shuffled = false)
    {
        var rnd = new Random(seed);
        var lines = new List<string>();
        for (int s = 0; s < sequences; s++)
        {
            double x = CliHarness.Gauss(rnd), y = CliHarness.Gauss(rnd);
            int length = 6 + rnd.Next(5);
            bool odd = anomalies && s % 4 == 0;
            for (int t = 0; t < length; t++)
            {
                (x, y) = (0.8 * x - 0.3 * y + 0.3 * CliHarness.Gauss(rnd), 0.3 * x + 0.8 * y + 0.3 * CliHarness.Gauss(rnd));
                bool spike = odd && t == 3;
                lines.Add(string.Create(Ci, $"s{s},{t * 10},{x + (spike ? 3 : 0):F4},{y - (spike ? 3 : 0):F4},{(spike ? 1 : 0)},{(odd ? 1 : 0)}"));
            }
        }
        if (shuffled) lines = lines.OrderBy(_ => rnd.Next()).ToList();
        return _h.Write(name, "seq,t,a,b,spike,anom\n" + string.Join("\n", lines) + "\n");
    }

    private string Fit(string train, params string[] extra)
    {
        var zip = _h.PathOf("seq.zip");
        var fit = _h.Run(new[] { "fit", train, "-m", "rnnrnade", "--sequence-id", "seq", "--order", "t", "--exclude", "spike,anom", "--epochs", "4",
                                 "-p", "HiddenUnits=6", "-p", "RecurrentUnits=4", "-o", zip }.Concat(extra).ToArray());
        Assert.True(fit.Exit == 0, fit.Err);
        return zip;
    }

    /// <summary>The CSV's frame rows grouped into sequences (by id, in order of first appearance; sorted by order).</summary>
    private static (SequenceBatch Batch, List<(string Seq, double T)> Keys) Sequences(string csv)
    {
        var rows = File.ReadAllLines(csv).Skip(1).Select(l => l.Split(',')).ToList();
        var groups = rows.GroupBy(c => c[0]).Select(g => g.OrderBy(c => double.Parse(c[1], Ci)).ToList()).ToList();
        var keys = groups.SelectMany(g => g.Select(c => (c[0], double.Parse(c[1], Ci)))).ToList();
        return (SequenceBatch.FromSequences(groups.Select(g => g.SelectMany(c => new[] { float.Parse(c[2], Ci), float.Parse(c[3], Ci) }).ToArray()).ToList(), 2), keys);
    }

    /// <summary>The order column of a time-series CSV is usually a timestamp: it was refused as "not a number". A column
    /// of times (ISO 8601 here, each sequence with its own UTC offset) orders the rows by their instants, so the model
    /// and every score are those of the same file with the step numbers; a cell that is not a time in a time column,
    /// and one instant twice in a sequence, are errors naming the line and quoting the cell.</summary>
    [Fact]
    public void TimeOrderColumnScoresAsItsStepNumbers()
    {
        var steps = Frames("steps.csv", 20, 3, shuffled: true);
        var start = new DateTimeOffset(2026, 3, 29, 0, 30, 0, TimeSpan.Zero);
        string Time(string seq, string t)
        {
            var offset = TimeSpan.FromHours(int.Parse(seq[1..], Ci) % 5 - 2);
            return start.AddSeconds(double.Parse(t, Ci) * 6).ToOffset(offset).ToString("yyyy-MM-ddTHH:mm:ssK", Ci);
        }
        var lines = File.ReadAllLines(steps);
        var timed = lines.Take(1).Concat(lines.Skip(1).Select(l => { var c = l.Split(','); c[1] = Time(c[0], c[1]); return string.Join(",", c); })).ToArray();
        var times = _h.Write("times.csv", string.Join("\n", timed) + "\n");
        Assert.Contains("+02:00", File.ReadAllText(times));

        string Scores(string csv)
        {
            var zip = Fit(csv);
            var output = _h.PathOf("scored.csv");
            var r = _h.Run("score", zip, csv, "-o", output);
            Assert.True(r.Exit == 0, r.Err);
            return string.Join("\n", File.ReadAllLines(output).Select(l => string.Join(",", l.Split(',')[^3..])));
        }
        Assert.Equal(Scores(steps), Scores(times));

        var zipOfTimes = Fit(times);
        string Variant(string name, Func<string[], string[]> change) => _h.Write(name, string.Join("\n", change((string[])timed.Clone())) + "\n");
        var notTime = Variant("nottime.csv", l => { var c = l[3].Split(','); c[1] = "soon"; l[3] = string.Join(",", c); return l; });
        var r1 = _h.Run("score", zipOfTimes, notTime, "-o", _h.PathOf("x.csv"));
        Assert.NotEqual(0, r1.Exit);
        Assert.Contains("nottime.csv, line 4, column 2 ('t'): 'soon' is not a time, as the column's first value", r1.Err);
        // Two rows of one sequence at the same instant (written with different offsets), named by the cell's text.
        int a = Array.FindIndex(timed, 1, l => l.StartsWith("s1,")), b = Array.FindIndex(timed, a + 1, l => l.StartsWith("s1,"));
        var twice = Variant("twice.csv", l =>
        {
            var c = l[b].Split(',');
            c[1] = DateTimeOffset.Parse(l[a].Split(',')[1], Ci).ToOffset(TimeSpan.FromHours(5)).ToString("yyyy-MM-ddTHH:mm:ssK", Ci);
            l[b] = string.Join(",", c);
            return l;
        });
        var r2 = _h.Run("score", zipOfTimes, twice, "-o", _h.PathOf("y.csv"));
        Assert.NotEqual(0, r2.Exit);
        Assert.Contains("sequence 's1' has two rows with order", r2.Err);
        Assert.Contains($"(lines {Math.Min(a, b) + 1} and {Math.Max(a, b) + 1})", r2.Err);
    }

    /// <summary>'ddml info' on an rnnrnade zip showed no anomaly threshold (a row model's shows one), though the model stores it.</summary>
    [Fact]
    public void InfoShowsTheFrameThreshold()
    {
        var train = Frames("train.csv", 30, 1);
        var zip = Fit(train, "--contamination", "0.05");
        var info = _h.Run("info", zip);
        Assert.True(info.Exit == 0, info.Err);
        float threshold = new MLContext(seed: 1).Model.Load(zip, out _).GetSequenceAnomalyThreshold();
        Assert.True(float.IsFinite(threshold));
        Assert.Contains(string.Create(Ci, $"anomaly threshold       score > {threshold:G6} per frame row (contamination 0.05)\n"), info.Out.Replace("\r", ""));
    }

    /// <summary>'evaluate --label' with one class printed the figures, then failed with exit code 3; AUROC is undefined
    /// with one class: the figures that are defined, AUROC undefined, a warning, exit 0 (as for the row models).</summary>
    [Fact]
    public void EvaluateWithOneLabelClassIsNotAnError()
    {
        var train = Frames("train.csv", 30, 1);
        var zip = Fit(train);
        var eval = _h.Run("evaluate", zip, train, "--label", "anom");
        Assert.Equal(0, eval.Exit);
        Assert.Contains("average log-density", eval.Out);
        Assert.Contains("  AUROC                 undefined: every one of the", eval.Out);
        Assert.DoesNotContain("detection rate", eval.Out);
        Assert.Contains("per sequence:           not computed", eval.Out);
        Assert.Contains("ddml: warning: train.csv: the label column 'anom' has only one class", eval.Err); // every label is 0
        // 'report' warns the same way (it used to say so only in the page).
        var report = _h.Run("report", zip, train, "--label", "anom", "--out", _h.PathOf("one-class.html"));
        Assert.Equal(0, report.Exit);
        Assert.Contains("ddml: warning: train.csv: the label column 'anom' has only one class (every one of the", report.Err);
    }

    [Fact]
    public void FitInfoScoreSampleEvaluateReport()
    {
        var train = Frames("train.csv", 60, 1);
        var test = Frames("test.csv", 24, 2, anomalies: true);
        var zip = Fit(train);
        var trainLengths = Sequences(train).Batch;
        int median = Enumerable.Range(0, trainLengths.Count).Select(trainLengths.Length).OrderBy(n => n).ElementAt((trainLengths.Count - 1) / 2);

        var info = _h.Run("info", zip);
        Assert.True(info.Exit == 0, info.Err);
        Assert.Contains("RnnRnade", info.Out);
        Assert.Contains("sequence id 'seq', order 't'", info.Out);
        Assert.Contains("RecurrentUnits", info.Out);
        Assert.Contains($"training sequences      60 (median length {median} frames", info.Out);
        Assert.Contains("RnnRnade payload version", info.Out);

        // score: per frame row, equal to ML.NET on the saved zip.
        var scores = _h.PathOf("scores.csv");
        var score = _h.Run("score", zip, test, "-o", scores);
        Assert.True(score.Exit == 0, score.Err);
        var lines = File.ReadAllLines(scores);
        Assert.Equal("seq,t,a,b,spike,anom,LogDensity,Score,PredictedLabel", lines[0]);
        var cli = lines.Skip(1).Select(l => float.Parse(l.Split(',')[6], Ci)).ToArray();
        var ml = new MLContext(seed: 1);
        var loaded = ml.Model.Load(zip, out _);
        var rows = File.ReadAllLines(test).Skip(1).Select(l => l.Split(',')).Select(c => new Frame
        {
            Features = new[] { float.Parse(c[2], Ci), float.Parse(c[3], Ci) }, SequenceId = c[0], Order = double.Parse(c[1], Ci),
        }).ToArray();
        var expected = loaded.Transform(ml.Data.LoadFromEnumerable(rows)).GetColumn<float>("LogDensity").ToArray();
        Assert.Equal(expected, cli);
        Assert.All(cli, v => Assert.True(float.IsFinite(v)));
        // ... and equal to the engine model's batched per-step log-densities (the streaming scorer agrees to rounding).
        var model = loaded.GetSequenceDensityModel(ml);
        var (batch, keys) = Sequences(test);
        var frames = new float[batch.TotalFrames];
        model.FrameLogDensity(batch, frames);
        for (int f = 0; f < frames.Length; f++) Assert.Equal(frames[f], cli[f], 3); // the test file is in (sequence, order) order

        // The same rows in a shuffled file get the same values (rows are fed to the stream in sequence order).
        var shuffledScores = _h.PathOf("shuffled-scores.csv");
        Assert.Equal(0, _h.Run("score", zip, Frames("shuffled.csv", 24, 2, anomalies: true, shuffled: true), "-o", shuffledScores).Exit);
        var byKey = File.ReadAllLines(shuffledScores).Skip(1).Select(l => l.Split(',')).ToDictionary(c => (c[0], double.Parse(c[1], Ci)), c => float.Parse(c[6], Ci));
        for (int f = 0; f < keys.Count; f++) Assert.Equal(cli[f], byKey[keys[f]]);

        // sample: N sequences of the median training length as frame rows, seeded, equal to the engine's draws.
        var s1 = _h.Run("sample", zip, "-n", "3", "--seed", "4");
        Assert.True(s1.Exit == 0, s1.Err);
        Assert.Equal(s1.Out, _h.Run("sample", zip, "-n", "3", "--seed", "4").Out);
        Assert.NotEqual(s1.Out, _h.Run("sample", zip, "-n", "3", "--seed", "5").Out);
        var sampled = s1.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("seq,t,a,b", sampled[0]);
        Assert.Equal(1 + 3 * median, sampled.Length);
        var draws = model.Sample(3, median, 4);
        for (int i = 0; i < 3; i++)
            for (int t = 0; t < median; t++)
            {
                var c = sampled[1 + i * median + t].Split(',');
                Assert.Equal($"sample{i}", c[0]);
                Assert.Equal(t.ToString(Ci), c[1]);
                Assert.Equal(draws.Sequence(i).Slice(t * 2, 2).ToArray(), new[] { float.Parse(c[2], Ci), float.Parse(c[3], Ci) });
            }
        var samplesFile = _h.PathOf("samples.csv");
        Assert.Equal(0, _h.Run("sample", zip, "-n", "2", "--length", "5", "-o", samplesFile).Exit);
        Assert.Equal(11, File.ReadAllLines(samplesFile).Length);
        Assert.Equal(0, _h.Run("score", zip, samplesFile).Exit); // what sample writes, score reads

        // evaluate: per frame ± standard error, per sequence, per-step and per-sequence AUROC.
        var eval = _h.Run("evaluate", zip, test, "--label", "anom");
        Assert.True(eval.Exit == 0, eval.Err);
        double perFrame = model.LogDensity(batch).Sum(v => (double)v) / batch.TotalFrames;
        Assert.Equal(perFrame, Number(eval.Out, "average log-density"), 3);
        Assert.Contains("per frame (standard error over sequences", eval.Out);
        Assert.Contains("per step (each frame row", eval.Out);
        Assert.Contains("per sequence (the label is constant within each", eval.Out);
        Assert.Contains("24 sequences", eval.Out);
        double sequenceAuroc = Number(eval.Out[eval.Out.IndexOf("per sequence (", StringComparison.Ordinal)..], "  AUROC");
        Assert.True(sequenceAuroc > 0.8, eval.Out); // a jump of 3 in every fourth sequence
        var stepEval = _h.Run("evaluate", zip, test, "--label", "spike");
        Assert.True(stepEval.Exit == 0, stepEval.Err);
        Assert.Contains("not computed: the label varies within a sequence", stepEval.Out);
        Assert.True(Number(stepEval.Out, "  AUROC") > 0.9, stepEval.Out); // the spiked step itself

        // report: sections of the sequence report (its HTML and images are checked in ReportTests).
        var html = _h.PathOf("report.html");
        var report = _h.Run("report", zip, test, "--label", "anom", "-o", html);
        Assert.True(report.Exit == 0, report.Err);
        var text = File.ReadAllText(html);
        Assert.Contains("Most anomalous steps", text);
        Assert.Contains("Real and generated sequences", text);
    }

    /// <summary>The number after <paramref name="label"/> in the output.</summary>
    private static double Number(string output, string label)
    {
        var line = output.Split('\n').First(l => l.StartsWith(label, StringComparison.Ordinal));
        return double.Parse(line[label.Length..].Trim().Split(' ')[0], Ci);
    }

    [Fact]
    public void SequenceModelNeedsItsColumns()
    {
        var train = Frames("train.csv", 10, 1);
        Assert.Equal(ExitCodes.UsageError, _h.Run("fit", train, "-m", "rnnrnade", "-o", _h.PathOf("x.zip")).Exit);
        var r = _h.Run("fit", train, "-m", "rnnrnade", "--sequence-id", "seq", "--order", "nope", "-o", _h.PathOf("x.zip"));
        Assert.Equal(ExitCodes.BadData, r.Exit);
        Assert.Contains("the order column 'nope' is not in the header", r.Err);
        // A validation file needs the sequence-id and order columns too, and says which file lacks them.
        var noOrder = _h.Write("valid-no-order.csv", "seq,a,b,spike,anom\ns0,0.1,0.2,0,0\n");
        var v = _h.Run("fit", train, "-m", "rnnrnade", "--sequence-id", "seq", "--order", "t", "--validation", noOrder, "-o", _h.PathOf("x.zip"));
        Assert.Equal(ExitCodes.BadData, v.Exit);
        Assert.Contains("valid-no-order.csv", v.Err);
        Assert.Contains("the order column 't' is not in the header", v.Err);
        _h.AssertNoPartialFiles(_h.PathOf("x.zip"));
    }

    /// <summary>--validation with frame rows: the validation file's sequences are the engine's validation set (before,
    /// rnnrnade refused --validation, so one long series had no held-out data).</summary>
    [Fact]
    public void ValidationFrameRowsAreTheEnginesValidationSet()
    {
        var train = Frames("train.csv", 12, 1);
        var valid = Frames("valid.csv", 5, 2, shuffled: true);
        var zip = Fit(train, "--validation", valid);
        Assert.Contains("; validation valid.csv", _h.Run("info", zip).Out);
        var model = new MLContext(seed: 1).Model.Load(zip, out _).GetSequenceDensityModel();
        var options = new Models.RnnRnade.RnnRnadeOptions { HiddenUnits = 6, RecurrentUnits = 4, MaxEpochs = 4 };
        var engine = Models.RnnRnade.RnnRnadeModel.Fit(Sequences(train).Batch, options, Sequences(valid).Batch);
        Assert.Equal(engine.ToBytes(), model.ToBytes());
        Assert.NotEqual(Models.RnnRnade.RnnRnadeModel.Fit(Sequences(train).Batch, options).ToBytes(), model.ToBytes());
    }

    /// <summary>
    /// A bad frame row found by the ML.NET frame estimator is reported against the file it came from — the validation
    /// file's against it, the training file's against that — by the error's DataSet, which the ML.NET layer sets (ddml
    /// told them apart by the end of the message). The CSV reader refuses every bad cell before the estimator sees it, so
    /// the estimator's own limit (the most values one array holds, 2^31) is lowered for the test to make one: 300 values,
    /// which 12 sequences of at most 10 frames of 2 values keep under and 40 sequences pass at their 151st frame row.
    /// </summary>
    [Fact]
    public void AFrameRowErrorIsReportedAgainstTheFileItCameFrom()
    {
        string[] Args(string train, params string[] extra) => new[] { "fit", train, "-m", "rnnrnade", "--sequence-id", "seq", "--order", "t",
            "--exclude", "spike,anom", "--epochs", "1", "-p", "HiddenUnits=2", "-p", "RecurrentUnits=2", "-o", _h.PathOf("x.zip") }.Concat(extra).ToArray();
        var small = Frames("small.csv", 12, 1);
        var large = Frames("large.csv", 40, 2);
        using (LowerFrameReadBound(300))
        {
            var r = _h.Run(Args(small, "--validation", large));
            Assert.Equal(ExitCodes.BadData, r.Exit);
            Assert.StartsWith("ddml: error: large.csv, line 152: the sequences read so far and this row hold more than 300 values", r.Err);
            Assert.DoesNotContain("in the validation data", r.Err); // the file says which: not restated in the ML.NET layer's words
            r = _h.Run(Args(large, "--validation", small));
            Assert.Equal(ExitCodes.BadData, r.Exit);
            Assert.StartsWith("ddml: error: large.csv, line 152: ", r.Err);
            Assert.DoesNotContain("in the training data", r.Err);
        }
        _h.AssertNoPartialFiles(_h.PathOf("x.zip"));
        Assert.Equal(0, _h.Run(Args(small, "--validation", large)).Exit); // the bound is back
    }

    /// <summary>Lowers the frame estimator's read bound (SequenceValueBuffer.TestMaxValues, internal to the ML.NET layer)
    /// for this test's flow until disposed.</summary>
    private static IDisposable LowerFrameReadBound(int values)
    {
        var type = typeof(Transforms.RnnRnadeFrameEstimator).Assembly.GetType("Microsoft.ML.DeepDensity.Transforms.SequenceValueBuffer", throwOnError: true)!;
        var bound = (AsyncLocal<int?>)type.GetField("TestMaxValues", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!.GetValue(null)!;
        bound.Value = values;
        return new Restore(() => bound.Value = null);
    }

    private sealed class Restore(Action restore) : IDisposable
    {
        public void Dispose() => restore();
    }

    /// <summary>
    /// rnnrnade's progress bar is as long as the fit: the epochs ddml announces (and sizes the bar with) are the engine's
    /// own count, which with early stopping off is exactly the epochs run. ddml approximated the engine's held-out split
    /// (a tenth of all the windows aside), which is not the windows of the whole sequences the engine holds out when the
    /// sequences differ in length: the bar's end and the fit's did not meet. Cases: fourteen sequences of 5–38 frames in
    /// windows of 8 (whole sequences held out), and one long series (a tenth of its windows held out).
    /// </summary>
    [Theory]
    [InlineData(14)]
    [InlineData(1)]
    public void TheProgressBarIsAsLongAsTheFit(int sequences)
    {
        var csv = new StringBuilder("seq,t,a,b\n");
        for (int s = 0; s < sequences; s++)
        {
            int length = sequences == 1 ? 300 : 5 + s * 11 % 34;
            for (int t = 0; t < length; t++) csv.Append(Ci, $"s{s},{t},{Math.Sin(0.4 * t + s):F3},{Math.Cos(0.3 * t - s):F3}\n");
        }
        var train = _h.Write("frames.csv", csv.ToString());
        // Batches of one sequence: the automatic epochs (10,000 steps' worth) then differ for every count of training examples.
        var options = new Models.RnnRnade.RnnRnadeOptions
        {
            TrainingWindow = 8, BatchSize = 1, EarlyStoppingPatience = 0, HiddenUnits = 2, RecurrentUnits = 2, Components = 1,
        };
        var fit = _h.Run("fit", train, "-m", "rnnrnade", "--sequence-id", "seq", "--order", "t", "-p", "TrainingWindow=8", "-p", "BatchSize=1",
            "-p", "EarlyStoppingPatience=0", "-p", "HiddenUnits=2", "-p", "RecurrentUnits=2", "-p", "Components=1", "-o", _h.PathOf("seq.zip"));
        Assert.True(fit.Exit == 0, fit.Err);
        var announced = System.Text.RegularExpressions.Regex.Match(fit.Out, @"training: (\d+) training examples an epoch .*, at most (\d+) epochs");
        Assert.True(announced.Success, fit.Out);
        long examples = long.Parse(announced.Groups[1].Value, Ci);
        int epochs = int.Parse(announced.Groups[2].Value, Ci);
        Assert.Equal(Models.RnnRnade.RnnRnadeModel.TrainingExamples(Sequences(train).Batch, options, withValidation: false), examples);
        Assert.Equal(options.EpochsFor(examples), epochs);
        Assert.Equal(epochs, fit.Out.Split('\n').Count(l => l.StartsWith("epoch ", StringComparison.Ordinal))); // the epochs the fit ran
        Assert.Contains($" per frame, {epochs} epochs, mean training log-density", fit.Out); // and what the zip records
    }

    /// <summary>Ctrl+C: the first stops training and saves the model so far (exit 130), the second writes nothing.</summary>
    [Fact]
    public void InterruptedFitSavesTheModelSoFarOrNothing()
    {
        var train = Frames("train.csv", 20, 1);
        var zip = _h.PathOf("seq.zip");
        string[] Args() => new[] { "fit", train, "-m", "rnnrnade", "--sequence-id", "seq", "--order", "t", "--exclude", "spike,anom", "--epochs", "50", "-o", zip };
        var twice = new Interrupts();
        twice.Signal();
        twice.Signal();
        var r = _h.Run(twice, Args());
        Assert.Equal(ExitCodes.Interrupted, r.Exit);
        Assert.Contains("nothing was written", r.Err);
        _h.AssertNoPartialFiles(zip);

        var once = new Interrupts();
        once.Signal(); // before the first minibatch: the initial model, complete and loadable
        r = _h.Run(once, Args());
        Assert.Equal(ExitCodes.Interrupted, r.Exit);
        Assert.Contains("the best model so far was saved", r.Err);
        var info = _h.Run("info", zip);
        Assert.Equal(0, info.Exit);
        Assert.Contains("stopped by the user", info.Out);
        Assert.Equal(0, _h.Run("sample", zip, "-n", "2").Exit);
    }

    /// <summary>Bad frame files at fit and at scoring time: one line naming file, line and column; exit 3; nothing written.</summary>
    [Fact]
    public void BadFrameFilesNameTheLineAndColumn()
    {
        var zip = Fit(Frames("train.csv", 30, 1));
        var good = File.ReadAllLines(Frames("test.csv", 4, 2));
        string Variant(string name, Func<string[], string[]> change) => _h.Write(name, string.Join("\n", change((string[])good.Clone())) + "\n");
        var cases = new (string File, string Expected)[]
        {
            (Variant("ragged.csv", l => { l[5] += ",9"; return l; }), "ragged.csv, line 6: the row has 7 fields but the header has 6 (ragged row)."),
            (Variant("noid.csv", l => l.Select(x => string.Join(",", x.Split(',').Skip(1))).ToArray()), "noid.csv, line 1: the sequence-id column 'seq' is not in the header"),
            (Variant("order.csv", l => { var c = l[3].Split(','); c[1] = "soon"; l[3] = string.Join(",", c); return l; }),
                "order.csv, line 4, column 2 ('t'): 'soon' is not a number (the order column)."),
            (Variant("nanorder.csv", l => { var c = l[3].Split(','); c[1] = "NaN"; l[3] = string.Join(",", c); return l; }),
                "nanorder.csv, line 4, column 2 ('t'): 'NaN' is not a finite number (the order column)."),
            (Variant("noorder.csv", l => { var c = l[3].Split(','); c[1] = ""; l[3] = string.Join(",", c); return l; }),
                "noorder.csv, line 4, column 2 ('t'): the cell is empty (the order column"),
            (Variant("twice.csv", l => { var c = l[3].Split(','); c[1] = l[2].Split(',')[1]; l[3] = string.Join(",", c); return l; }),
                "twice.csv, line 4, column 2 ('t'): sequence 's0' has two rows with order 10 (lines 3 and 4)."),
            (Variant("value.csv", l => { var c = l[2].Split(','); c[3] = "x"; l[2] = string.Join(",", c); return l; }), "value.csv, line 3, column 4 ('b'): 'x' is not a number."),
            // An empty id was an id like any other: every id-less row (a missing value) was silently made one sequence.
            (Variant("emptyid.csv", l => { var c = l[4].Split(','); c[0] = " "; l[4] = string.Join(",", c); return l; }),
                "emptyid.csv, line 5, column 1 ('seq'): the sequence id is empty"),
        };
        foreach (var command in new[] { "score", "evaluate", "report", "fit" })
            foreach (var (file, expected) in cases)
            {
                var output = _h.PathOf("out.file");
                var args = command switch
                {
                    "fit" => new[] { "fit", file, "-m", "rnnrnade", "--sequence-id", "seq", "--order", "t", "--epochs", "1", "-o", output },
                    "evaluate" => new[] { "evaluate", zip, file },
                    _ => new[] { command, zip, file, "-o", output },
                };
                var r = _h.Run(args);
                Assert.True(r.Exit == ExitCodes.BadData, $"{command} {Path.GetFileName(file)}: exit {r.Exit}, {r.Err}");
                Assert.StartsWith("ddml: error: " + expected, r.Err);
                Assert.Single(r.Err.Trim().Split('\n'));
                _h.AssertNoPartialFiles(output);
            }
    }

    /// <summary>--contamination outside [0, 0.5] for rnnrnade was refused by the estimator only after training, as an
    /// internal error with a stack trace (exit 1); it is a usage error before any work, as for the row models. And
    /// evaluate's counts agree with their nouns ("1 frame rows in 1 sequences").</summary>
    [Fact]
    public void ContaminationIsCheckedFirst_AndCountsAreSingularForOne()
    {
        var train = Frames("train.csv", 30, 1);
        var r = _h.Run("fit", train, "-m", "rnnrnade", "--sequence-id", "seq", "--order", "t", "--contamination", "3", "-o", _h.PathOf("c.zip"));
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        Assert.Equal("ddml: error: --contamination must be in [0, 0.5] (got 3).", r.Err.Trim());
        Assert.DoesNotContain("fit rnnrnade", r.Out);
        // Half the training frames flagged: the one test sequence has some. The training frames set it: a held-out threshold
        // from fewer than 20 frames is the tail estimate, never below the largest held-out score, which at 0.5 flags few.
        var zip = Fit(train, "--contamination", "0.5", "--threshold-rows", "training");
        var eval = _h.Run("evaluate", zip, Frames("one.csv", 1, 3));
        Assert.True(eval.Exit == 0, eval.Err);
        Assert.Matches(@"predicted anomalies     \d+ frame rows? in 1 sequence \(", eval.Out);
        // One sequence has no standard error over sequences (it printed "± NaN").
        Assert.Contains(" per frame (one sequence: no standard error; Exact)", eval.Out);
        Assert.DoesNotContain("NaN", eval.Out);
        Assert.DoesNotContain(" 1 frame rows", eval.Out);
    }

    public sealed class Frame
    {
        [VectorType(2)] public float[] Features { get; set; } = new float[2];
        public string SequenceId { get; set; } = "";
        public double Order { get; set; }
    }
}
