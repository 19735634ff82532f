using System.Globalization;
using System.IO.Compression;

namespace Microsoft.ML.DeepDensity.Cli.Tests;

/// <summary>Every bad file gives one line naming file, line and column, its exit code, and leaves no output behind.</summary>
public class BadInputTests : IDisposable
{
    private readonly CliHarness _h = new();
    public void Dispose() => _h.Dispose();

    private const string Header = "id,x1,x2,x3\n";
    private static string Good(int rows) => string.Concat(Enumerable.Range(0, rows).Select(i => $"r{i},{i % 7 * 0.3:F1},{i % 5 * 0.7 - 1:F1},{i % 3:F1}\n"));

    private (int Exit, string Err) Fit(string csv, params string[] extra)
    {
        var output = _h.PathOf("out.zip");
        var r = _h.Run(new[] { "fit", csv, "-m", "rnade", "--epochs", "2", "-p", "HiddenUnits=4", "-p", "Components=1", "-o", output }.Concat(extra).ToArray());
        if (r.Exit != 0) _h.AssertNoPartialFiles(output);
        return (r.Exit, r.Err);
    }

    /// <summary>stderr without the threshold's warning: tables this small hold out fewer than 10 rows, so the training rows
    /// set the threshold and fit says so (ThresholdRowsTests), not what these tests are about.</summary>
    private static string WithoutThresholdWarning(string err)
        => string.Concat(err.Split('\n').Where(l => !l.StartsWith("ddml: warning: the anomaly threshold was set on", StringComparison.Ordinal))
            .Select(l => l + "\n")).TrimEnd('\n', '\r');

    private static void AssertOneLine(string err, params string[] fragments)
    {
        var lines = WithoutThresholdWarning(err).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        foreach (var f in fragments) Assert.Contains(f, lines[0]);
    }

    [Fact]
    public void NonNumericCellNamesFileLineAndColumn()
    {
        var csv = _h.Write("bad.csv", Header + Good(20) + "r20,0.5,abc,1\n" + Good(5));
        var (exit, err) = Fit(csv);
        Assert.Equal(ExitCodes.BadData, exit);
        AssertOneLine(err, "bad.csv, line 22, column 3 ('x2')", "'abc' is not a number");
    }

    [Fact]
    public void NonFiniteAndEmptyCellsAreReported()
    {
        var nan = _h.Write("nan.csv", Header + Good(10) + "r10,NaN,1,1\n");
        var (exit, err) = Fit(nan);
        Assert.Equal(ExitCodes.BadData, exit);
        AssertOneLine(err, "nan.csv, line 12, column 2 ('x1')", "not a finite number");

        var empty = _h.Write("empty-cell.csv", Header + Good(10) + "r10,1,,1\n");
        (exit, err) = Fit(empty);
        Assert.Equal(ExitCodes.BadData, exit);
        AssertOneLine(err, "empty-cell.csv, line 12, column 3 ('x2')", "empty");
    }

    /// <summary>A file with gaps in several rows (cars.json as CSV: 8 empty Miles_per_Gallon, 6 Horsepower) named only the
    /// first empty cell, so finding them all took a run per gap, and said nothing of what to do. The error still names the
    /// first cell, and now how many rows have an empty feature cell, in which columns, and the remedies.</summary>
    [Fact]
    public void EmptyCellsAreCountedOverTheFile_WithWhatToDo()
    {
        var csv = _h.Write("gaps.csv", Header + Good(10) + "r10,1,,1\nr11,,2,1\nr12,1,,\n" + Good(3));
        var (exit, err) = Fit(csv);
        Assert.Equal(ExitCodes.BadData, exit);
        AssertOneLine(err, "gaps.csv, line 12, column 3 ('x2'): the cell is empty (missing values are not supported); " +
                           "3 rows of the file have an empty feature cell ('x1' 1, 'x2' 2, 'x3' 1): remove or fill those rows, or --exclude the column.");
    }

    /// <summary>A numeric column whose first cell is a missing-value marker ('?', 'n/a') became a text column and was
    /// silently left out of the features (fit trained on the others and said nothing). Fit now lists the text columns it
    /// passes over and warns about one that holds mostly numbers, naming the cell that made it text.</summary>
    [Fact]
    public void AMostlyNumericTextColumnIsReported()
    {
        var csv = _h.Write("marker.csv", Header + "r0,?,1,1\n" + Good(10));
        var zip = _h.PathOf("marker.zip");
        var r = _h.Run("fit", csv, "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=4", "-o", zip);
        Assert.True(r.Exit == 0, r.Err);
        Assert.Contains("text columns (not features): id, x1", r.Out);
        AssertOneLine(r.Err, "ddml: warning: marker.csv, line 2, column 2 ('x1')", "'?' is not a number", "10 of its 11 non-empty cells are numbers",
            "--exclude");
        Assert.Contains("features                x2, x3\n", _h.Run("info", zip).Out.Replace("\r", ""));
        // A real text column (the ids) is listed, not warned about; nothing is listed when every column is a feature.
        r = _h.Run("fit", _h.Write("ids.csv", Header + Good(10)), "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=4", "-o", zip);
        Assert.True(r.Exit == 0, r.Err);
        Assert.Contains("text columns (not features): id\n", r.Out.Replace("\r", ""));
        Assert.Equal("", WithoutThresholdWarning(r.Err));
        r = _h.Run("fit", csv, "-m", "rnade", "--exclude", "id,x1", "--epochs", "1", "-p", "HiddenUnits=4", "-o", zip);
        Assert.True(r.Exit == 0, r.Err);
        Assert.DoesNotContain("text columns", r.Out);
        Assert.Equal("", WithoutThresholdWarning(r.Err));
    }

    /// <summary>Column names holding a comma were listed bare by info and fit ("features  température °C, größe, m" reads
    /// as three columns); they are quoted as in a CSV header now.</summary>
    [Fact]
    public void ColumnNamesWithACommaAreQuotedInListings()
    {
        var csv = _h.Write("names.csv", "\"température °C\",\"größe, m\",\"name, first\"\n" +
                                        string.Concat(Enumerable.Range(0, 12).Select(i => $"{i % 4 * 0.5:F1},{i % 3 * 0.7:F1},\"n{i}, x\"\n")));
        var zip = _h.PathOf("names.zip");
        var r = _h.Run("fit", csv, "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=4", "-o", zip);
        Assert.True(r.Exit == 0, r.Err);
        Assert.Contains("text columns (not features): \"name, first\"\n", r.Out.Replace("\r", ""));
        Assert.Contains("features                température °C, \"größe, m\"\n", _h.Run("info", zip).Out.Replace("\r", ""));
    }

    /// <summary>Without --label, a 0/1 column named 'label' silently became a feature (the model trained on the answer); fit
    /// now says so on standard error, and says nothing when --label or --exclude names it.</summary>
    [Fact]
    public void AFeatureNamedLikeALabelIsPointedOut()
    {
        var csv = _h.Write("labelled.csv", "x1,x2,Label\n" + string.Concat(Enumerable.Range(0, 12).Select(i => $"{i % 4 * 0.5:F1},{i % 3 * 0.7:F1},{(i % 6 == 0 ? 1 : 0)}\n")));
        var zip = _h.PathOf("l.zip");
        var r = _h.Run("fit", csv, "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=4", "-o", zip);
        Assert.True(r.Exit == 0, r.Err);
        AssertOneLine(r.Err, "ddml: note: labelled.csv: the column 'Label' is a feature; if it is the anomaly label, pass --label Label");
        foreach (var option in new[] { "--label", "--exclude" })
        {
            r = _h.Run("fit", csv, "-m", "rnade", option, "Label", "--epochs", "1", "-p", "HiddenUnits=4", "-o", zip);
            Assert.True(r.Exit == 0, r.Err);
            Assert.Equal("", WithoutThresholdWarning(r.Err));
        }
    }

    /// <summary>A numeric id column became a feature with no word of it (documented, but fit did not name its features): fit
    /// now lists the features, and points out a column named like an id or counting the rows.</summary>
    [Fact]
    public void FitNamesItsFeaturesAndPointsOutAnIdColumn()
    {
        var rows = Enumerable.Range(0, 12).Select(i => $"{1001 + i},{i % 4 * 0.5:F1},{i % 3 * 0.7:F1}\n");
        var zip = _h.PathOf("ids.zip");
        foreach (var name in new[] { "customer", "ID" })
        {
            var csv = _h.Write($"{name}.csv", $"{name},x1,x2\n" + string.Concat(rows));
            var r = _h.Run("fit", csv, "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=4", "-o", zip);
            Assert.True(r.Exit == 0, r.Err);
            Assert.Contains($"features: {name}, x1, x2\n", r.Out.Replace("\r", ""));
            AssertOneLine(r.Err, $"ddml: note: {name}.csv: the column '{name}' is a feature and counts the rows (every row a new value); " +
                                 $"if it identifies rows rather than describing them, --exclude {name}.");
            r = _h.Run("fit", csv, "-m", "rnade", "--exclude", name, "--epochs", "1", "-p", "HiddenUnits=4", "-o", zip);
            Assert.True(r.Exit == 0, r.Err);
            Assert.Equal("", WithoutThresholdWarning(r.Err));
            Assert.Contains("features: x1, x2\n", r.Out.Replace("\r", ""));
        }
        // Named like an id without counting the rows; and a wide file's list is shortened.
        var named = _h.Write("named.csv", "Id,x1\n" + string.Concat(Enumerable.Range(0, 12).Select(i => $"{i % 5},{i * 0.3:F1}\n")));
        AssertOneLine(_h.Run("fit", named, "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=4", "-o", zip).Err,
            "ddml: note: named.csv: the column 'Id' is a feature; if it identifies rows rather than describing them, --exclude Id.");
        var wide = _h.Write("wide.csv", string.Join(",", Enumerable.Range(1, 20).Select(c => $"v{c}")) + "\n" +
            string.Concat(Enumerable.Range(0, 12).Select(i => string.Join(",", Enumerable.Range(1, 20).Select(c => ((i * c) % 7 * 0.1).ToString("F1", CultureInfo.InvariantCulture))) + "\n")));
        Assert.Contains("features: v1, v2, v3, v4, v5, v6, …, v19, v20\n", _h.Run("fit", wide, "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=4", "-o", zip).Out.Replace("\r", ""));
    }

    /// <summary>Counts in messages agree with their nouns ("the row has 1 fields", "the data has 1 rows", "1 rows × 1 features").</summary>
    [Fact]
    public void CountsInMessagesAreSingularForOne()
    {
        var (exit, err) = Fit(_h.Write("short.csv", Header + Good(3) + "r3\n"));
        Assert.Equal(ExitCodes.BadData, exit);
        AssertOneLine(err, "short.csv, line 5: the row has 1 field but the header has 4");
        var one = _h.Write("one.csv", "a\n1.5\n");
        var r = _h.Run("fit", one, "-m", "deepgmm", "-o", _h.PathOf("one.zip"));
        Assert.Equal(ExitCodes.BadData, r.Exit);
        AssertOneLine(r.Err, "the data has 1 row; at least 2 rows are needed");
        // Every family has the Deep GMM's minimum (RNADE trained 200 epochs on one row and said nothing).
        r = _h.Run("fit", one, "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=2", "-o", _h.PathOf("one.zip"));
        Assert.Equal(ExitCodes.BadData, r.Exit);
        AssertOneLine(r.Err, "the data has 1 row; at least 2 rows are needed");
        r = _h.Run("fit", _h.Write("tworows.csv", "a\n1.5\n2.5\n"), "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=2", "-o", _h.PathOf("one.zip"));
        Assert.True(r.Exit == 0, r.Err);
        Assert.Contains("fit rnade: 2 rows × 1 feature from tworows.csv.", r.Out);
        Assert.Contains("rnade (Exact log-density), 1 feature, 1 epoch", r.Out);
        // Evaluating one row printed "± NaN"; the standard error of one row is undefined, and said so.
        var eval = _h.Run("evaluate", _h.PathOf("one.zip"), one);
        Assert.True(eval.Exit == 0, eval.Err);
        Assert.Matches(@"average log-density     -?\d+\.\d{4} \(one row: no standard error; Exact\)", eval.Out);
        Assert.DoesNotContain("NaN", eval.Out);
        // Rows impossible under the model (log-density −∞) make the average −∞ and its standard error undefined: said so.
        eval = _h.Run("evaluate", _h.PathOf("one.zip"), _h.Write("far.csv", "a\n1e30\n1.5\n"));
        Assert.True(eval.Exit == 0, eval.Err);
        Assert.Contains("average log-density     -Infinity (1 row of 2 with log-density -Infinity, impossible under the model: no standard error; Exact)", eval.Out);
        // ML.NET's detection rate at one false positive (fewer than ten normal rows).
        var labelled = _h.Write("two.csv", "a,label\n1.5,0\n9,1\n");
        Assert.Contains("detection rate at 1 false positive  ", _h.Run("evaluate", _h.PathOf("one.zip"), labelled, "--label", "label").Out);
    }

    /// <summary>Every family's warnings on the rows, as the ML.NET estimator logs them: no more rows than columns (the
    /// Deep GMM's alone before), and more than 10 % of the rows exact copies of others (held-out rows copies of training rows).</summary>
    [Fact]
    public void FewRowsAndDuplicatedRowsAreWarnedAbout()
    {
        var r = new Random(4);
        string Row() => string.Join(",", Enumerable.Range(0, 3).Select(_ => r.NextDouble().ToString("F4", CultureInfo.InvariantCulture))) + "\n";
        var few = _h.Run("fit", _h.Write("few.csv", "a,b,c\n" + Row() + Row() + Row()), "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=2", "-o", _h.PathOf("few.zip"));
        Assert.True(few.Exit == 0, few.Err);
        Assert.Contains("ddml: warning: 3 training rows for 3 columns: with no more rows than columns the model fits its training rows", few.Err);
        var unique = Enumerable.Range(0, 30).Select(_ => Row()).ToList();
        var copies = _h.Run("fit", _h.Write("copies.csv", "a,b,c\n" + string.Concat(Enumerable.Range(0, 10).SelectMany(_ => unique))),
            "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=2", "-o", _h.PathOf("copies.zip"));
        Assert.True(copies.Exit == 0, copies.Err);
        Assert.Contains("ddml: warning: 270 of the 300 training rows (90 %) are exact copies of other rows: the rows held out for early stopping", copies.Err);
        Assert.Contains("remove the duplicates, or pass --validation FILE of other rows.", copies.Err);
        Assert.DoesNotContain("training rows for", copies.Err);
    }

    /// <summary>A semicolon- or tab-separated file (a European spreadsheet export) read as one column said only "the row
    /// has 3 fields but the header has 1" or "no numeric feature columns"; the error now says what the file looks like.</summary>
    [Fact]
    public void ASemicolonOrTabSeparatedFileIsNamedAsSuch()
    {
        var (exit, err) = Fit(_h.Write("semi.csv", "a;b\n0,5;1,5\n1,5;2,5\n"));
        Assert.Equal(ExitCodes.BadData, exit);
        AssertOneLine(err, "semi.csv, line 2: the row has 3 fields but the header has 1 (ragged row)", "looks separated by semicolons");
        (exit, err) = Fit(_h.Write("semi2.csv", "a;b\n1;2\n3;4\n"));
        Assert.Equal(ExitCodes.BadData, exit);
        AssertOneLine(err, "no numeric feature columns", "looks separated by semicolons");
        (exit, err) = Fit(_h.Write("tab.csv", "a\tb\n1\t2\n3\t4\n"));
        Assert.Equal(ExitCodes.BadData, exit);
        AssertOneLine(err, "no numeric feature columns", "looks tab-separated");
    }

    /// <summary>A bad model option (--epochs 0, -p HiddenUnits=-3) was found only after the training file was read and
    /// announced ("fit rnade: N rows ..."), and its message repeated itself ("... (got 0). (Parameter 'MaxEpochs') Actual
    /// value was 0."). It is now a usage error before any data is read, in the options' own words.</summary>
    [Fact]
    public void ABadModelOptionIsAUsageErrorBeforeTheDataIsRead()
    {
        var csv = _h.Write("ok.csv", Header + Good(10));
        foreach (var model in new[] { "rnade", "deepgmm", "rnnrnade" })
        {
            var extra = model == "rnnrnade" ? new[] { "--sequence-id", "id", "--order", "x3" } : Array.Empty<string>();
            // rnnrnade takes --epochs 0 (epochs set from the training sequences, as the RBM's): -1 is its bad value.
            string epochs = model == "rnnrnade" ? "-1" : "0";
            var r = _h.Run(new[] { "fit", csv, "-m", model, "--epochs", epochs, "-o", _h.PathOf("o.zip") }.Concat(extra).ToArray());
            Assert.Equal(ExitCodes.UsageError, r.Exit);
            Assert.DoesNotContain("fit " + model, r.Out);
            AssertOneLine(r.Err, "invalid model option: ", model == "rnnrnade" ? " must be non-negative (0: set from the amount of training data) (got -1)" : " must be at least 1 (got 0)", "(set by --epochs)");
            Assert.DoesNotContain("Actual value", r.Err);
            Assert.DoesNotContain("(Parameter", r.Err);
        }
        var bad = _h.Run("fit", _h.PathOf("missing.csv"), "-m", "rnade", "-p", "HiddenUnits=-3", "-o", _h.PathOf("o.zip"));
        Assert.Equal(ExitCodes.UsageError, bad.Exit);
        AssertOneLine(bad.Err, "invalid model option: HiddenUnits must be in [1, 1048576] (got -3).");
    }

    [Fact]
    public void ATextColumnStartingWithNanIsText()
    {
        // Feature columns were decided by the first cell alone, and "Nan" (a name) or "Infinity" parse as floats: the name
        // column became a feature and fit failed with "'Nan' is not a finite number". A first cell that is empty, NaN or
        // Infinity no longer decides (a numeric column starting with a missing value is still reported at that cell).
        var names = _h.Write("names.csv", "name,x1,x2\n" + string.Concat(new[] { "Nan", "Infinity", "Bob", "Al", "Kim", "Lee", "Max", "Ned", "Oz", "Pat", "Sue", "Tom" }
            .Select((n, i) => $"{n},{i % 4 * 0.5:F1},{i % 3 * 0.7:F1}\n")));
        var zip = _h.PathOf("names.zip");
        var r = _h.Run("fit", names, "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=4", "-o", zip);
        Assert.True(r.Exit == 0, r.Err);
        Assert.Contains("features                x1, x2\n", _h.Run("info", zip).Out.Replace("\r", ""));

        var (exit, err) = Fit(_h.Write("nanfirst.csv", Header + "r0,NaN,1,1\n" + Good(10)));
        Assert.Equal(ExitCodes.BadData, exit);
        AssertOneLine(err, "nanfirst.csv, line 2, column 2 ('x1')", "'NaN' is not a finite number");
        (exit, err) = Fit(_h.Write("emptyfirst.csv", Header + "r0,,1,1\n" + Good(10)));
        Assert.Equal(ExitCodes.BadData, exit);
        AssertOneLine(err, "emptyfirst.csv, line 2, column 2 ('x1')", "empty");
        (exit, err) = Fit(_h.Write("huge.csv", Header + Good(10) + "r10,1e39,1,1\n"));
        Assert.Equal(ExitCodes.BadData, exit);
        AssertOneLine(err, "huge.csv, line 12, column 2 ('x1')", "beyond the range of a 32-bit float");
    }

    [Fact]
    public void AFileWithoutAHeaderSaysSo()
    {
        // The shipped data/digits.csv has no header row: 'ddml fit data/digits.csv' said only "the header names this
        // column twice" about a column named '0'.
        var (exit, err) = Fit(Path.Combine(CliHarness.RepoRoot(), "data", "digits.csv"));
        Assert.Equal(ExitCodes.BadData, exit);
        AssertOneLine(err, "digits.csv, line 1, column 2 ('0'): the header names this column twice", "a header row naming the columns is required");
        // A header of distinct numbers (wavelengths, say) is a header.
        var r = _h.Run("fit", _h.Write("numbers.csv", "400,410,420\n" + string.Concat(Enumerable.Range(0, 30).Select(i => $"{i % 7 * 0.3:F1},{i % 5 * 0.7 - 1:F1},{i % 3:F1}\n"))),
            "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=4", "-o", _h.PathOf("n.zip"));
        Assert.True(r.Exit == 0, r.Err);
    }

    [Fact]
    public void ALatin1FileKeepsItsTextThroughScore()
    {
        // A file that is not UTF-8 (a Latin-1 export with "Müller" in a name column) was decoded with replacement
        // characters: 'score' silently wrote "M\uFFFDller". It is read as Latin-1 and written back as UTF-8 text; a
        // UTF-8 file with a BOM and CRLF line ends reads as before.
        var zip = _h.PathOf("m.zip");
        Assert.Equal(0, _h.Run("fit", _h.Write("train.csv", Header + Good(60)), "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=4", "-o", zip).Exit);
        var latin = _h.PathOf("latin.csv");
        File.WriteAllBytes(latin, System.Text.Encoding.Latin1.GetBytes("id,x1,x2,x3\nMüller,0.3,0.4,1\nJosé,0.6,-1,2\n"));
        var output = _h.PathOf("scores.csv");
        var r = _h.Run("score", zip, latin, "-o", output);
        Assert.True(r.Exit == 0, r.Err);
        var lines = File.ReadAllLines(output, System.Text.Encoding.UTF8);
        Assert.StartsWith("Müller,0.3,0.4,1,", lines[1]);
        Assert.StartsWith("José,0.6,-1,2,", lines[2]);

        var bom = _h.PathOf("bom.csv");
        File.WriteAllBytes(bom, new byte[] { 0xEF, 0xBB, 0xBF }.Concat(System.Text.Encoding.UTF8.GetBytes("id,x1,x2,x3\r\nMüller,0.3,0.4,1\r\n")).ToArray());
        r = _h.Run("score", zip, bom, "-o", output);
        Assert.True(r.Exit == 0, r.Err);
        lines = File.ReadAllLines(output, System.Text.Encoding.UTF8);
        Assert.Equal("id,x1,x2,x3,LogDensity,Score,PredictedLabel", lines[0]);
        Assert.StartsWith("Müller,0.3,0.4,1,", lines[1]);
    }

    [Fact]
    public void RaggedRowNamesItsLine()
    {
        var csv = _h.Write("ragged.csv", Header + Good(8) + "r8,1,2\n" + Good(3));
        var (exit, err) = Fit(csv);
        Assert.Equal(ExitCodes.BadData, exit);
        AssertOneLine(err, "ragged.csv, line 10", "3 fields but the header has 4");
    }

    [Fact]
    public void QuotedFieldsWithCommasAndLineBreaksKeepLineNumbers()
    {
        var csv = _h.Write("quoted.csv", Header + "\"a, \"\"b\"\"\n c\",1,2,3\n" + Good(5) + "r5,1,x,3\n");
        var (exit, err) = Fit(csv);
        Assert.Equal(ExitCodes.BadData, exit);
        AssertOneLine(err, "quoted.csv, line 9, column 3 ('x2')");
    }

    /// <summary>A quoted field after a space (<c>1, "a,b",3</c>, as many exporters write) was read as the two fields
    /// <c> "a</c> and <c>b"</c>: a ragged-row error, or shifted columns. Spaces around the quotes are now ignored; text after
    /// a closing quote is an error naming line and column.</summary>
    [Fact]
    public void SpacesAroundAQuotedFieldAreIgnored()
    {
        var rows = string.Concat(Enumerable.Range(0, 30).Select(i => $"{i % 7 * 0.3:F1}, \"a,{i}\",{i % 5 * 0.7 - 1:F1} , \t\"{i % 3}\" \n"));
        var csv = _h.Write("spaced.csv", "x1, \"name\" ,x2,x3\n" + rows);
        var (exit, err) = Fit(csv);
        Assert.True(exit == 0, err);
        var scored = _h.PathOf("scored.csv");
        var score = _h.Run("score", _h.PathOf("out.zip"), csv, "-o", scored);
        Assert.True(score.Exit == 0, score.Err);
        var lines = File.ReadAllLines(scored);
        Assert.StartsWith("x1,name,x2,x3,LogDensity,", lines[0]);
        Assert.StartsWith("0.0,\"a,0\",-1.0 ,0,", lines[1]); // three features read, the text cell whole (re-quoted on output)

        File.Delete(_h.PathOf("out.zip"));
        (exit, err) = Fit(_h.Write("after.csv", "x1,name,x2,x3\n" + rows + "1,\"a\"b,2,3\n"));
        Assert.Equal(ExitCodes.BadData, exit);
        AssertOneLine(err, "after.csv, line 32, column 2", "'b' after the closing quote");
    }

    /// <summary>--model RNADE was a usage error (the names were matched case-sensitively).</summary>
    [Fact]
    public void ModelNamesAreCaseInsensitive()
    {
        var csv = _h.Write("ok.csv", Header + Good(30));
        var r = _h.Run("fit", csv, "-m", "RNADE", "--epochs", "1", "-p", "HiddenUnits=4", "-p", "Components=1", "-o", _h.PathOf("o.zip"));
        Assert.True(r.Exit == 0, r.Err);
        Assert.StartsWith("fit rnade: ", r.Out);
        Assert.Contains("(ddml model 'rnade')", _h.Run("info", _h.PathOf("o.zip")).Out);
        // The sequence model too: it is routed to rnnrnade, which asks for its columns.
        r = _h.Run("fit", csv, "-m", "RnnRnade", "-o", _h.PathOf("s.zip"));
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        Assert.Contains("--sequence-id", r.Err);
        // An unknown name still lists the valid ones.
        r = _h.Run("fit", csv, "-m", "Rnadee", "-o", _h.PathOf("x.zip"));
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        Assert.Contains("unknown model 'Rnadee'", r.Err);
        Assert.Contains("rnade, deeprnade, deepgmm, rbm, iwae, nvil, rnnrnade", r.Err);
    }

    /// <summary>A user who carries fit's <c>-m</c> over to a command that takes the model zip as an argument was told
    /// only that the data file was an "unrecognized command or argument": the usage error now says what the command takes.</summary>
    [Fact]
    public void TheModelFlagOfFitGivenToScoringCommandsIsExplained()
    {
        var csv = _h.Write("ok.csv", Header + Good(30));
        foreach (var (command, usage) in new[] { ("score", "ddml score MODEL.zip DATA [options]"), ("evaluate", "ddml evaluate MODEL.zip TEST [options]"), ("info", "ddml info MODEL.zip [options]") })
        {
            var args = command == "info" ? new[] { command, "-m", "m.zip", "extra" } : new[] { command, "-m", "m.zip", csv };
            var r = _h.Run(args);
            Assert.Equal(ExitCodes.UsageError, r.Exit);
            Assert.Contains($"ddml: usage: 'ddml {command}' takes the model zip as its first argument, not -m: {usage}.", r.Err);
        }
        var modelLong = _h.Run("sample", "--model", "m.zip", "-n", "3");
        Assert.Contains("'ddml sample' takes the model zip as its first argument, not --model: ddml sample MODEL.zip [options].", modelLong.Err);
        // fit has -m: its own usage errors get no such line.
        var fit = _h.Run("fit", csv, "-m", "rnade", "--bogus");
        Assert.Equal(ExitCodes.UsageError, fit.Exit);
        Assert.DoesNotContain("takes the model zip", fit.Err);
    }

    [Fact]
    public void EmptyMissingAndHeaderOnlyFiles()
    {
        Assert.Equal(ExitCodes.BadData, Fit(_h.Write("empty.csv", "")).Exit);
        Assert.Equal(ExitCodes.BadData, Fit(_h.Write("header.csv", Header)).Exit);
        var (exit, err) = Fit(_h.PathOf("nope.csv"));
        Assert.Equal(ExitCodes.BadData, exit);
        AssertOneLine(err, "nope.csv: file not found");
    }

    [Fact]
    public void BadLabelAndUnknownColumns()
    {
        var csv = _h.Write("labels.csv", "x1,x2,label\n1,2,0\n2,3,maybe\n3,1,1\n");
        var (exit, err) = Fit(csv, "--label", "label");
        Assert.Equal(ExitCodes.BadData, exit);
        AssertOneLine(err, "labels.csv, line 3, column 3 ('label')", "'maybe' is not an anomaly label");

        (exit, err) = Fit(csv, "--exclude", "nosuch");
        Assert.Equal(ExitCodes.BadData, exit);
        AssertOneLine(err, "the excluded column 'nosuch' is not in the header");
    }

    [Fact]
    public void ColumnMissingAtScoringTime()
    {
        var zip = _h.PathOf("m.zip");
        Assert.Equal(0, _h.Run("fit", _h.Write("train.csv", Header + Good(60)), "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=4", "-o", zip).Exit);
        var data = _h.Write("score.csv", "id,x1,x3\nr0,1,2\n");
        var output = _h.PathOf("scores.csv");
        var r = _h.Run("score", zip, data, "-o", output);
        Assert.Equal(ExitCodes.BadData, r.Exit);
        AssertOneLine(r.Err, "score.csv, line 1", "the column 'x2' that the model was trained on is missing");
        Assert.False(File.Exists(output));
        // Blank lines before the header are skipped: the header's own line is named (it was always "line 1").
        r = _h.Run("score", zip, _h.Write("late.csv", "\n\nid,x1,x3\nr0,1,2\n"), "-o", output);
        Assert.Equal(ExitCodes.BadData, r.Exit);
        AssertOneLine(r.Err, "late.csv, line 3:", "the column 'x2' that the model was trained on is missing");

        // A value a binary model cannot take is reported with its line and column too.
        var binaryZip = _h.PathOf("rbm.zip");
        Assert.Equal(0, _h.Run("fit", _h.Write("bin.csv", "a,b,c\n" + string.Concat(Enumerable.Range(0, 40).Select(i => $"{i % 2},{i / 2 % 2},{i / 4 % 2}\n"))),
            "-m", "rbm", "--epochs", "1", "-p", "HiddenUnits=2", "-o", binaryZip).Exit);
        r = _h.Run("score", binaryZip, _h.Write("notbin.csv", "a,b,c\n1,0,1\n0,0.5,1\n"), "-o", output);
        Assert.Equal(ExitCodes.BadData, r.Exit);
        AssertOneLine(r.Err, "notbin.csv, line 3, column 2 ('b')");
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void ANonBinaryValueInFitNamesTheFileItCameFrom()
    {
        // NVIL takes 0/1 data only: a 0.5 in the training or the validation file is reported against that file and line,
        // in the tool's terms (no ML.NET advice).
        string Bits(int rows) => "a,b,c\n" + string.Concat(Enumerable.Range(0, rows).Select(i => $"{i % 2},{i / 2 % 2},{i / 4 % 2}\n"));
        var output = _h.PathOf("nvil.zip");
        var badValid = _h.Write("valid.csv", Bits(12).Replace("\n1,1,0\n", "\n1,0.5,0\n"));
        var r = _h.Run("fit", _h.Write("train.csv", Bits(40)), "-m", "nvil", "--epochs", "1", "--validation", badValid, "-o", output);
        Assert.Equal(ExitCodes.BadData, r.Exit);
        AssertOneLine(r.Err, "valid.csv, line 5, column 2 ('b')", "is not binary");
        Assert.DoesNotContain("ml.Transforms", r.Err);
        _h.AssertNoPartialFiles(output);

        var badTrain = _h.Write("train-bad.csv", Bits(40).Replace("\n0,1,1\n", "\n0,1,2\n"));
        r = _h.Run("fit", badTrain, "-m", "nvil", "--epochs", "1", "-o", output);
        Assert.Equal(ExitCodes.BadData, r.Exit);
        AssertOneLine(r.Err, "train-bad.csv, line 8, column 3 ('c')", "is not binary");
    }

    [Theory]
    [InlineData("rnade")]
    [InlineData("iwae")]
    [InlineData("rbm")]
    public void RowsFarFromTheDataScoreMinusInfinityNotAnInternalError(string model)
    {
        // A finite value far outside the training range (a typo such as 1e30) underflows the density: LogDensity −∞ and,
        // for an estimate model, StandardError 0. A Gaussian IWAE's standard error was +∞ there, which the engine rejects
        // as a model bug: 'ddml score' and 'evaluate' ended with an internal error (exit 1) and a stack trace.
        var zip = _h.PathOf("m.zip");
        var fit = _h.Run("fit", _h.Write("train.csv", Header + Good(60)), "-m", model, "--epochs", "1", "-o", zip);
        Assert.True(fit.Exit == 0, fit.Err);
        var data = _h.Write("far.csv", Header + "a,1e30,0.5,1\nb,0.3,-3e38,1\nc,0.3,0.4,1\n");
        var output = _h.PathOf("scores.csv");
        var r = _h.Run("score", zip, data, "-o", output);
        Assert.True(r.Exit == 0, r.Err);
        var lines = File.ReadAllLines(output);
        Assert.Equal(4, lines.Length);
        foreach (var line in lines[1..3])
        {
            var cells = line.Split(',');
            Assert.Equal("-Infinity", cells[4]);
            Assert.Equal("true", cells[^1]);
        }
        Assert.NotEqual("-Infinity", lines[3].Split(',')[4]);
        Assert.Equal(0, _h.Run("evaluate", zip, data).Exit);
    }

    /// <summary>
    /// An importance-sampled row resting on fewer than 4 effective samples has an unknown standard error: 'score' writes
    /// it as Infinity and says on standard error how many rows have one; 'evaluate' averages the known ones only and
    /// counts the rest, never printing an average of ∞ or NaN. With EvaluationSamples = 2 every row is unknown (two
    /// samples are never four effective ones).
    /// </summary>
    [Fact]
    public void UnknownStandardErrorsAreWrittenAsInfinityAndCountedNotAveraged()
    {
        var zip = _h.PathOf("k2.zip");
        var fit = _h.Run("fit", _h.Write("train.csv", Header + Good(60)), "-m", "iwae", "--epochs", "1", "-p", "EvaluationSamples=2", "-o", zip);
        Assert.True(fit.Exit == 0, fit.Err);
        var data = _h.Write("test.csv", Header + Good(5));
        var output = _h.PathOf("scores.csv");
        var r = _h.Run("score", zip, data, "-o", output);
        Assert.True(r.Exit == 0, r.Err);
        var lines = File.ReadAllLines(output);
        Assert.Equal("StandardError", lines[0].Split(',')[5]);
        Assert.All(lines[1..], line => Assert.Equal("Infinity", line.Split(',')[5]));
        Assert.Contains("5 of 5 rows have StandardError Infinity (unknown", r.Err);
        var e = _h.Run("evaluate", zip, data);
        Assert.True(e.Exit == 0, e.Err);
        var line = e.Out.Split('\n').Single(l => l.StartsWith("mean estimate error", StringComparison.Ordinal));
        Assert.Contains("unknown (Monte Carlo standard error per row; 5 of 5 rows have StandardError Infinity", line);
        Assert.DoesNotContain("NaN", e.Out);
        Assert.DoesNotContain("∞", e.Out);
        // Known and unknown together: the mean of the known ones, and the count of the others.
        Assert.Equal("0.2000 (Monte Carlo standard error per row, over the 2 rows where it is known; 1 of 3 rows has StandardError Infinity (unknown: "
                     + "the estimate rests on fewer than 4 effective importance samples, so it may be off by far more than its weights show; a larger EvaluationSamples (IWAE, NVIL) or AisRuns (an RBM's log Z, shared by every row) may help))",
            ScoringCommands.MeanEstimateError(new[] { 0.1f, float.PositiveInfinity, 0.3f }));
        Assert.Equal("0.2000 (Monte Carlo standard error per row)", ScoringCommands.MeanEstimateError(new[] { 0.1f, 0.3f }));
        Assert.Null(ScoringCommands.UnknownStandardErrors(new[] { 0f, 0.5f }));
    }

    /// <summary>An RBM's AIS log Z over 3 runs (never 4 effective samples) has an unknown standard error, which is every
    /// row's: 'score' writes Infinity on each and counts them like an IWAE's.</summary>
    [Fact]
    public void AnRbmWhoseAisLogPartitionErrorIsUnknownCountsEveryRow()
    {
        var zip = _h.PathOf("rbm-ais3.zip");
        var fit = _h.Run("fit", _h.Write("train.csv", Header + Good(60)), "-m", "rbm", "--epochs", "1", "-p", "VisibleType=Gaussian",
            "-p", "HiddenUnits=4", "-p", "ExactLogPartitionMaxUnits=0", "-p", "AisRuns=3", "-p", "AisTemperatures=100", "-o", zip);
        Assert.True(fit.Exit == 0, fit.Err);
        var output = _h.PathOf("rbm-scores.csv");
        var r = _h.Run("score", zip, _h.Write("rbm-test.csv", Header + Good(5)), "-o", output);
        Assert.True(r.Exit == 0, r.Err);
        Assert.All(File.ReadAllLines(output)[1..], line => Assert.Equal("Infinity", line.Split(',')[5]));
        Assert.Contains("5 of 5 rows have StandardError Infinity (unknown", r.Err);
    }

    [Fact]
    public void ModelFilesThatAreNotOursOrCorrupt()
    {
        var data = _h.Write("d.csv", Header + Good(5));
        var output = _h.PathOf("scores.csv");
        void Expect(string model, string fragment)
        {
            var r = _h.Run("score", model, data, "-o", output);
            Assert.Equal(ExitCodes.BadModel, r.Exit);
            AssertOneLine(r.Err, Path.GetFileName(model), fragment);
            Assert.False(File.Exists(output));
        }
        Expect(_h.PathOf("missing.zip"), "file not found");
        Expect(_h.Write("text.zip", "this is not a zip"), "not a model file");

        var foreign = _h.PathOf("foreign.zip");
        using (var z = ZipFile.Open(foreign, ZipArchiveMode.Create)) using (var w = new StreamWriter(z.CreateEntry("hello.txt").Open())) w.Write("hi");
        Expect(foreign, "not an ML.NET model zip");

        // An ML.NET model without a DeepDensity model in it.
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(new[] { new RoundTripTests.In { Features = new float[] { 1, 2, 3, 4 } } });
        var plain = ml.Transforms.NormalizeMinMax("Features").Fit(view);
        var plainZip = _h.PathOf("plain.zip");
        ml.Model.Save(plain, view.Schema, plainZip);
        Expect(plainZip, "not a DeepDensity one");

        // An ML.NET pipeline that starts from scalar columns (Concatenate, then ours): ddml feeds a zip it did not write one
        // 'Features' vector read from f0, f1, ..., which such a pipeline cannot bind. That was an internal error with a
        // stack trace (exit 1); it is a model error naming the pipeline's input columns (info still describes the model).
        var scalars = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 40).Select(i => new Scalars { A = i % 7, B = i % 5 * 0.5f }));
        var pipeline = ml.Transforms.Concatenate("Features", "A", "B").Append(ml.DensityEstimation.Rnade("Features", hiddenUnits: 2, maxEpochs: 1)).Fit(scalars);
        var pipelineZip = _h.PathOf("pipeline.zip");
        ml.Model.Save(pipeline, scalars.Schema, pipelineZip);
        var f = _h.Write("f.csv", "f0,f1\n1,2\n");
        var r = _h.Run("score", pipelineZip, f);
        Assert.Equal(ExitCodes.BadModel, r.Exit);
        AssertOneLine(r.Err, "pipeline.zip", "input columns A (Single), B (Single)", "'Features' vector", "f0, f1");
        Assert.Equal(ExitCodes.BadModel, _h.Run("evaluate", pipelineZip, f).Exit);
        Assert.Equal(0, _h.Run("info", pipelineZip).Exit);

        // Ours, truncated and with flipped bytes.
        var zip = _h.PathOf("m.zip");
        Assert.Equal(0, _h.Run("fit", _h.Write("train.csv", Header + Good(60)), "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=4", "-o", zip).Exit);
        var bytes = File.ReadAllBytes(zip);
        File.WriteAllBytes(_h.PathOf("truncated.zip"), bytes[..(bytes.Length / 2)]);
        Expect(_h.PathOf("truncated.zip"), "");
        var flipped = (byte[])bytes.Clone();
        for (int i = bytes.Length / 3; i < bytes.Length / 3 + 64; i++) flipped[i] ^= 0x5A;
        File.WriteAllBytes(_h.PathOf("flipped.zip"), flipped);
        Expect(_h.PathOf("flipped.zip"), "");
    }

    public sealed class Scalars { public float A { get; set; } public float B { get; set; } }

    [Fact]
    public void AForeignPipelineIsRefusedWhateverTheCsvHolds()
    {
        // A pipeline that starts from scalar columns, scored with a CSV of those very columns (A, B): the CSV was checked
        // for f0, f1 first, so the user was told (exit 3) that 'f0', "the column the model was trained on", was missing.
        // It is the model error naming the pipeline's input columns, as for a CSV of f0, f1, and for every command.
        var ml = new MLContext(seed: 1);
        var scalars = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 40).Select(i => new Scalars { A = i % 7, B = i % 5 * 0.5f }));
        var pipeline = ml.Transforms.Concatenate("Features", "A", "B").Append(ml.DensityEstimation.Rnade("Features", hiddenUnits: 2, maxEpochs: 1)).Fit(scalars);
        var pipelineZip = _h.PathOf("pipeline.zip");
        ml.Model.Save(pipeline, scalars.Schema, pipelineZip);
        var ab = _h.Write("ab.csv", "A,B,label\n1,2,0\n3,4,1\n");
        foreach (var args in new[] { new[] { "score", pipelineZip, ab }, new[] { "evaluate", pipelineZip, ab, "--label", "label" },
                                     new[] { "report", pipelineZip, ab, "-o", _h.PathOf("r.html") } })
        {
            var r = _h.Run(args);
            Assert.True(r.Exit == ExitCodes.BadModel, $"{args[0]}: {r.Err}");
            AssertOneLine(r.Err, "pipeline.zip", "input columns A (Single), B (Single)", "'Features' vector");
        }
    }

    [Fact]
    public void SampleAndInfoSayAForeignPipelinesUnits()
    {
        // A trial's zip (Concatenate → normaliser → ours): score refuses it, but sample wrote normalised values under
        // f0, f1 with no word and info printed the threshold as if in the columns' units. sample now names the columns
        // (the vector's slot names) and both say the numbers are in the units after the earlier stages.
        var ml = new MLContext(seed: 1);
        var scalars = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 40).Select(i => new Scalars { A = 100 + i % 7, B = i % 5 * 0.5f }));
        var pipeline = ml.Transforms.Concatenate("Features", "A", "B").Append(ml.Transforms.NormalizeMeanVariance("Features"))
            .Append(ml.DensityEstimation.Rnade("Features", hiddenUnits: 2, maxEpochs: 1)).Fit(scalars);
        var pipelineZip = _h.PathOf("normalised.zip");
        ml.Model.Save(pipeline, scalars.Schema, pipelineZip);
        var r = _h.Run("sample", pipelineZip, "-n", "3");
        Assert.True(r.Exit == 0, r.Err);
        Assert.Equal("A,B", r.Out.Split('\n')[0].TrimEnd('\r'));
        AssertOneLine(r.Err, "note", "ColumnConcatenatingTransformer", "NormalizingTransformer", "units of that stage's input vector 'Features'");
        r = _h.Run("info", pipelineZip);
        Assert.True(r.Exit == 0, r.Err);
        Assert.Contains("before its DeepDensity stage, so the threshold, scores and samples are in the units", r.Out);

        // A zip ddml wrote has no earlier stage: no note, its own column names.
        var zip = _h.PathOf("own.zip");
        Assert.Equal(0, _h.Run("fit", _h.Write("own.csv", Header + Good(40)), "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=2", "-o", zip).Exit);
        r = _h.Run("sample", zip, "-n", "2");
        Assert.Equal(0, r.Exit);
        Assert.DoesNotContain("note", r.Err);
        Assert.DoesNotContain("note ", _h.Run("info", zip).Out);
    }

    [Fact]
    public void AnOutputThatCannotBeWrittenFailsBeforeTraining()
    {
        // fit checked its --out only when saving: a long fit trained to the end and then failed (exit 6) to write into a
        // directory that does not exist or onto a directory; an empty --out was an internal error (exit 1).
        var csv = _h.Write("ok.csv", Header + Good(30));
        var missing = Path.Combine(_h.PathOf("no-such-dir"), "m.zip");
        var r = _h.Run("fit", csv, "-m", "rnade", "--epochs", "1", "-o", missing);
        Assert.Equal(ExitCodes.OutputError, r.Exit);
        AssertOneLine(r.Err, "m.zip", "does not exist");
        Assert.Equal("", r.Out); // no data read, no training

        Directory.CreateDirectory(_h.PathOf("adir"));
        r = _h.Run("fit", csv, "-m", "rnade", "--epochs", "1", "-o", _h.PathOf("adir"));
        Assert.Equal(ExitCodes.OutputError, r.Exit);
        AssertOneLine(r.Err, "adir", "is a directory");
        Assert.Equal("", r.Out);

        r = _h.Run("fit", csv, "-m", "rnade", "--epochs", "1", "-o", "");
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        AssertOneLine(r.Err, "--out", "empty");

        var zip = _h.PathOf("m.zip");
        Assert.Equal(0, _h.Run("fit", csv, "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=4", "-o", zip).Exit);
        foreach (var args in new[] { new[] { "score", zip, csv }, new[] { "sample", zip, "-n", "2" }, new[] { "report", zip, csv } })
        {
            r = _h.Run(args.Concat(new[] { "-o", "" }).ToArray());
            Assert.Equal(ExitCodes.UsageError, r.Exit);
            AssertOneLine(r.Err, "--out", "empty");
            r = _h.Run(args.Concat(new[] { "-o", missing }).ToArray());
            Assert.Equal(ExitCodes.OutputError, r.Exit);
            AssertOneLine(r.Err, "does not exist");
        }
    }

    [Fact]
    public void ExcludeDoesNotSwallowTheTrainingFile()
    {
        // --exclude took every following token: 'ddml fit --exclude id train.csv -m rnade -o m.zip' failed with "Required
        // argument 'train' missing". It takes one value per use (comma-separated or repeated, as documented).
        var csv = _h.Write("train.csv", Header + Good(30));
        var zip = _h.PathOf("m.zip");
        var r = _h.Run("fit", "--exclude", "x3", csv, "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=4", "-o", zip);
        Assert.True(r.Exit == 0, r.Err);
        Assert.Contains("features                x1, x2\n", _h.Run("info", zip).Out.Replace("\r", ""));
        r = _h.Run("fit", csv, "--exclude", "x3", "--exclude", "x2", "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=4", "-o", zip);
        Assert.True(r.Exit == 0, r.Err);
        Assert.Contains("features                x1\n", _h.Run("info", zip).Out.Replace("\r", ""));
    }

    [Fact]
    public void AScoredFileScoredAgainHasEachColumnOnce()
    {
        // Scoring a scored file appended a second LogDensity, Score and PredictedLabel: ddml could not read its own output
        // ("the header names this column twice"). The old scores are replaced (and said so); a feature with such a name is
        // refused when fitting, not when scoring.
        var zip = _h.PathOf("m.zip");
        var train = _h.Write("train.csv", Header + Good(60));
        Assert.Equal(0, _h.Run("fit", train, "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=4", "-o", zip).Exit);
        var once = _h.PathOf("once.csv");
        var twice = _h.PathOf("twice.csv");
        Assert.Equal(0, _h.Run("score", zip, train, "-o", once).Exit);
        var r = _h.Run("score", zip, once, "-o", twice);
        Assert.True(r.Exit == 0, r.Err);
        AssertOneLine(r.Err, "once.csv already has the columns LogDensity, Score, PredictedLabel", "replaced");
        Assert.Equal(File.ReadAllLines(once), File.ReadAllLines(twice));
        Assert.Equal(0, _h.Run("score", zip, twice, "-o", once).Exit);

        var named = _h.Write("named.csv", "id,x1,Score,x3\n" + Good(30));
        r = _h.Run("fit", named, "-m", "rnade", "--epochs", "1", "-o", _h.PathOf("n.zip"));
        Assert.Equal(ExitCodes.BadData, r.Exit);
        AssertOneLine(r.Err, "named.csv, line 1, column 3 ('Score')", "--exclude");
        _h.AssertNoPartialFiles(_h.PathOf("n.zip"));
        Assert.Equal(0, _h.Run("fit", named, "-m", "rnade", "--exclude", "Score", "--epochs", "1", "-o", _h.PathOf("n.zip")).Exit);
    }

    [Fact]
    public void UsageErrorsExitWithTwo()
    {
        Assert.Equal(ExitCodes.UsageError, _h.Run("fit", "x.csv", "-m", "nosuch", "-o", "y.zip").Exit);
        Assert.Equal(ExitCodes.UsageError, _h.Run("fit", "x.csv", "-m", "rnade").Exit);
        Assert.Equal(ExitCodes.UsageError, _h.Run("frobnicate").Exit);
        var csv = _h.Write("ok.csv", Header + Good(30));
        var r = _h.Run("fit", csv, "-m", "rnade", "-p", "NoSuchOption=3", "-o", _h.PathOf("o.zip"));
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        AssertOneLine(r.Err, "--param NoSuchOption", "HiddenUnits");
        r = _h.Run("fit", csv, "-m", "rnade", "-p", "HiddenUnits=0", "-o", _h.PathOf("o.zip"));
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        AssertOneLine(r.Err, "HiddenUnits");
        _h.AssertNoPartialFiles(_h.PathOf("o.zip"));
    }
}
