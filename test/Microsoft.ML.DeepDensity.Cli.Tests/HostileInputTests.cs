using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;

namespace Microsoft.ML.DeepDensity.Cli.Tests;

/// <summary>
/// Inputs a careless or malicious user hands the tool (forged model metadata, zip bombs, endless or binary files,
/// directories, impossible sizes, options that do not go together): each is one line on standard error and its exit
/// code, never an internal error with a stack trace, and never an unbounded allocation.
/// </summary>
public class HostileInputTests : IDisposable
{
    private readonly CliHarness _h = new();
    public void Dispose() => _h.Dispose();

    private const string Header = "id,x1,x2,x3\n";
    private static string Good(int rows) => string.Concat(Enumerable.Range(0, rows).Select(i => $"r{i},{i % 7 * 0.3:F1},{i % 5 * 0.7 - 1:F1},{i % 3:F1}\n"));

    private static void AssertOneLine(string err, params string[] fragments)
    {
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, err);
        Assert.DoesNotContain("internal error", lines[0]);
        foreach (var f in fragments) Assert.Contains(f, lines[0]);
    }

    private string RowModel(string name = "m.zip")
    {
        var zip = _h.PathOf(name);
        var r = _h.Run("fit", _h.Write("train.csv", Header + Good(60)), "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=4", "-o", zip);
        Assert.True(r.Exit == 0, r.Err);
        return zip;
    }

    private string SequenceModel()
    {
        var sb = new StringBuilder("seq,t,a,b\n");
        for (int s = 0; s < 12; s++)
            for (int t = 0; t < 5; t++) sb.Append(CultureInfo.InvariantCulture, $"s{s},{t},{(s + t) % 4 * 0.5:F1},{(s * t) % 3 * 0.4:F1}\n");
        var zip = _h.PathOf("seq.zip");
        var r = _h.Run("fit", _h.Write("frames.csv", sb.ToString()), "-m", "rnnrnade", "--sequence-id", "seq", "--order", "t", "--epochs", "1",
                       "-p", "HiddenUnits=4", "-p", "RecurrentUnits=3", "-o", zip);
        Assert.True(r.Exit == 0, r.Err);
        return zip;
    }

    /// <summary>A copy of <paramref name="zip"/> whose ddml metadata was changed by <paramref name="edit"/>.</summary>
    private string WithMetadata(string zip, string name, Action<JsonObject> edit)
    {
        var copy = _h.PathOf(name);
        File.Copy(zip, copy, overwrite: true);
        using var archive = ZipFile.Open(copy, ZipArchiveMode.Update);
        var entry = archive.GetEntry(ModelZip.MetadataEntry)!;
        JsonObject json;
        using (var s = entry.Open()) json = JsonNode.Parse(s)!.AsObject();
        entry.Delete();
        edit(json);
        using var w = new StreamWriter(archive.CreateEntry(ModelZip.MetadataEntry).Open());
        w.Write(json.ToJsonString());
        return copy;
    }

    /// <summary>A metadata entry with a null list (hand-edited, or written by another tool) was an internal error with a
    /// NullReferenceException's stack trace in every command (exit 1); it is a model error naming the field.</summary>
    [Fact]
    public void MetadataWithMissingListsIsAModelError()
    {
        var zip = RowModel();
        var data = _h.Write("d.csv", Header + Good(5));
        foreach (var field in new[] { "FeatureColumns", "History", "Options", "ExcludedColumns" })
        {
            var bad = WithMetadata(zip, $"null-{field}.zip", j => j[field] = null);
            foreach (var args in new[] { new[] { "info", bad }, new[] { "score", bad, data }, new[] { "report", bad, data, "-o", _h.PathOf("r.html") } })
            {
                var r = _h.Run(args);
                Assert.True(r.Exit == ExitCodes.BadModel, $"{field} {args[0]}: {r.Err}");
                AssertOneLine(r.Err, $"null-{field}.zip", "metadata", field);
            }
        }
    }

    /// <summary>Wide data trains a model larger than any ddml reads (3 rows × 45,000 columns: a 285 MB RNADE, over the
    /// 256 MiB DeepDensityEnvironment.MaxModelFileBytes): fit saved it (exit 0) and every other command refused the zip as
    /// "corrupt" with advice to raise a setting the tool has no option for. fit says so and writes nothing (exit 5), and
    /// it says so before training: the model's parameters are known from the options and the width (the 45,000-column
    /// RNADE trained to the end, peaking at 5.6 GB, before its size was measured). A model whose parameters fit but whose
    /// whole file does not is still refused after training, by the file's exact length (counted, not serialised). The
    /// limit is lowered here so that a small model is over it (the tests run one at a time).</summary>
    [Fact]
    public void AModelTooLargeForDdmlToReadIsNotWritten()
    {
        var train = _h.Write("train.csv", Header + Good(60));
        var frames = _h.Write("frames.csv", "seq,t,a,b\n" + string.Concat(Enumerable.Range(0, 40).Select(i => $"s{i / 5},{i % 5},{i % 4 * 0.5:F1},{i % 3 * 0.4:F1}\n")));
        var zip = _h.PathOf("big.zip");
        var rows = new[] { "fit", train, "-m", "rnade", "--epochs", "1", "-o", zip };
        var sequences = new[] { "fit", frames, "-m", "rnnrnade", "--sequence-id", "seq", "--order", "t", "--epochs", "1", "-o", zip };
        // The parameters' bytes at ddml's defaults (3 features; 2 per frame).
        long rnade = new Models.Rnade.RnadeOptions().PredictModelSize(3).ParameterBytes;
        long rnn = new Models.RnnRnade.RnnRnadeOptions().PredictModelSize(2).ParameterBytes;
        long saved = DeepDensityEnvironment.MaxModelFileBytes;
        try
        {
            DeepDensityEnvironment.MaxModelFileBytes = 4096;
            foreach (var args in new[] { rows, sequences })
            {
                var r = _h.Run(args);
                Assert.True(r.Exit == ExitCodes.TrainingFailed, $"{args[2]}: {r.Err}");
                AssertOneLine(r.Err, "bytes, more than ddml reads (4,096 bytes", "so it was not trained and big.zip was not written", "fewer columns", "HiddenUnits");
                Assert.DoesNotContain("saved", r.Out);
                Assert.DoesNotContain("ex/s", r.Out); // no progress line: nothing was trained
                _h.AssertNoPartialFiles(zip);
            }
            // Parameters exactly at the limit: trained, then refused by the file's exact length (header, sizes, standardisation).
            foreach (var (args, limit) in new[] { (rows, rnade), (sequences, rnn) })
            {
                DeepDensityEnvironment.MaxModelFileBytes = limit;
                var r = _h.Run(args);
                Assert.True(r.Exit == ExitCodes.TrainingFailed, $"{args[2]}: {r.Err}");
                AssertOneLine(r.Err, "the trained", "bytes, more than ddml reads (", "big.zip was not written", "fewer columns");
                _h.AssertNoPartialFiles(zip);
            }
        }
        finally { DeepDensityEnvironment.MaxModelFileBytes = saved; }
        Assert.Equal(0, _h.Run("fit", train, "-m", "rnade", "--epochs", "1", "-o", zip).Exit);
        Assert.Equal(0, _h.Run("info", zip).Exit);
    }

    /// <summary>The median training length in the metadata is sample's default length: a forged 0 said "--length must be at
    /// least 1 (got 0)" to a user who gave no --length, and a forged 2,000,000,000 was an internal error (or, below the
    /// array limit, minutes of sampling and gigabytes). A length the training data could not have had is a model error.</summary>
    [Fact]
    public void AForgedMedianSequenceLengthIsAModelError()
    {
        var zip = SequenceModel();
        foreach (var median in new[] { 0, 100_000_000, 2_000_000_000 })
        {
            var bad = WithMetadata(zip, $"median{median}.zip", j => j["MedianSequenceLength"] = median);
            var r = _h.Run("sample", bad, "-n", "1", "-o", _h.PathOf("s.csv"));
            Assert.True(r.Exit == ExitCodes.BadModel, r.Err);
            AssertOneLine(r.Err, $"median{median}.zip", "MedianSequenceLength");
            Assert.False(File.Exists(_h.PathOf("s.csv")));
        }
    }

    /// <summary>sample -n N (or --length L) beyond one array was an internal error with the engine's stack trace (exit 1);
    /// it is a usage error saying how many fit. A row model's draw is streamed a block at a time, so its -n is any count
    /// up to int.MaxValue (accepted: here the run is interrupted at its first block, writing nothing); beyond that the
    /// option does not parse. The sequence model's draw is still one array.</summary>
    [Fact]
    public void ASampleTooLargeIsAUsageError()
    {
        var row = RowModel();
        var interrupted = new Interrupts();
        interrupted.Signal();
        var r = _h.Run(interrupted, "sample", row, "-n", "2147483647", "-o", _h.PathOf("s.csv"));
        Assert.True(r.Exit == ExitCodes.Interrupted, r.Err);
        Assert.False(File.Exists(_h.PathOf("s.csv")));
        r = _h.Run("sample", row, "-n", "2147483648");
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        Assert.Contains("2147483648", r.Err);
        Assert.DoesNotContain("internal error", r.Err);
        var seq = SequenceModel();
        r = _h.Run("sample", seq, "-n", "1", "--length", "2000000000");
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        AssertOneLine(r.Err, "--length 2000000000", "at most");
        r = _h.Run("sample", seq, "-n", "2000000000", "--length", "2");
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        AssertOneLine(r.Err, "--count 2000000000", "at most");
    }

    /// <summary>A 4 MB zip whose metadata entry inflated to 2 GB made the JSON reader allocate until it failed with an
    /// OutOfMemoryException (an internal error). The metadata is small (names, options, one line per epoch); an entry
    /// beyond the limit is refused without inflating it.</summary>
    [Fact]
    public void AnOversizedMetadataEntryIsRefused()
    {
        var zip = RowModel();
        var bomb = _h.PathOf("bomb.zip");
        File.Copy(zip, bomb);
        using (var archive = ZipFile.Open(bomb, ZipArchiveMode.Update))
        {
            archive.GetEntry(ModelZip.MetadataEntry)!.Delete();
            using var s = archive.CreateEntry(ModelZip.MetadataEntry, CompressionLevel.Optimal).Open();
            s.Write("{\"Tool\":\""u8);
            var chunk = new byte[1 << 20];
            Array.Fill(chunk, (byte)'a');
            for (int i = 0; i < 80; i++) s.Write(chunk);
            s.Write("\"}"u8);
        }
        Assert.True(new FileInfo(bomb).Length < 4 << 20);
        var r = _h.Run("info", bomb);
        Assert.Equal(ExitCodes.BadModel, r.Exit);
        AssertOneLine(r.Err, "bomb.zip", "metadata", "larger than");
    }

    /// <summary>A model or CSV argument naming a directory said "file not found".</summary>
    [Fact]
    public void ADirectoryGivenAsAnInputSaysSo()
    {
        var dir = _h.PathOf("adir");
        Directory.CreateDirectory(dir);
        var r = _h.Run("fit", dir, "-m", "rnade", "-o", _h.PathOf("m.zip"));
        Assert.Equal(ExitCodes.BadData, r.Exit);
        AssertOneLine(r.Err, "adir", "is a directory");
        r = _h.Run("info", dir);
        Assert.Equal(ExitCodes.BadModel, r.Exit);
        AssertOneLine(r.Err, "adir", "is a directory");
    }

    /// <summary>A binary file given as a CSV (a model zip, say) was read as text and reported as a ragged row; an endless
    /// one (/dev/zero) was read into one cell until an OutOfMemoryException after 4 GB. A NUL character says the file is
    /// not text, at once.</summary>
    [Fact]
    public void ABinaryFileGivenAsACsvIsNamedAsSuch()
    {
        var zip = RowModel();
        var r = _h.Run("score", zip, zip);
        Assert.Equal(ExitCodes.BadData, r.Exit);
        AssertOneLine(r.Err, "m.zip, line 1", "not a text");
        var nul = _h.Write("nul.csv", Header + Good(3) + "r3,1,\0,2\n");
        r = _h.Run("fit", nul, "-m", "rnade", "-o", _h.PathOf("n.zip"));
        Assert.Equal(ExitCodes.BadData, r.Exit);
        AssertOneLine(r.Err, "nul.csv, line 5, column 3 ('x2')", "not a text");
        // One field longer than any cell (no line break for 17 M characters): said, not grown until memory runs out.
        var longField = _h.Write("long.csv", Header + Good(3) + "r3,1," + new string('7', CsvTable.MaxCellChars + 1) + ",2\n");
        r = _h.Run("fit", longField, "-m", "rnade", "-o", _h.PathOf("n.zip"));
        Assert.Equal(ExitCodes.BadData, r.Exit);
        AssertOneLine(r.Err, "long.csv, line 5, column 3 ('x2')", "longer than");   // the column's name too (found by a trial)
        if (File.Exists("/dev/zero"))
        {
            r = _h.Run("fit", "/dev/zero", "-m", "rnade", "-o", _h.PathOf("z.zip"));
            Assert.Equal(ExitCodes.BadData, r.Exit);
            AssertOneLine(r.Err, "zero", "not a text");
        }
    }

    /// <summary>An endless stream of valid rows (<c>yes 1,2 | ddml fit /dev/stdin</c>) was read until the machine ran out of
    /// memory: the table's cells are bounded (half the memory available to the process), and the error says where.</summary>
    [Fact]
    public void AnEndlessStreamOfValidRowsStopsAtTheTableBound()
    {
        var e = Assert.Throws<CliException>(() => CsvTable.Parse(new EndlessRows(), "stdin", maxBytes: 1 << 20));
        Assert.Equal(ExitCodes.BadData, e.ExitCode);
        Assert.Contains("stdin, line", e.Message);
        Assert.Contains("larger than ddml holds in memory", e.Message);
        Assert.InRange(CsvTable.MaxTableBytes, 1L << 26, long.MaxValue);
        // A file under the bound reads as before.
        Assert.Equal(3, CsvTable.Parse(new StringReader("a,b\n1,2\n3,4\n5,6\n"), "small", maxBytes: 1 << 20).Rows.Count);
    }

    /// <summary>"a,b" then "1,2" lines without end.</summary>
    private sealed class EndlessRows : TextReader
    {
        private const string Header = "a,b\n", Row = "1,2\n";
        private long _position;
        public override int Peek() => Char(_position);
        public override int Read() => Char(_position++);
        private static int Char(long i) => i < Header.Length ? Header[(int)i] : Row[(int)((i - Header.Length) % Row.Length)];
    }

    /// <summary>An endless model file (/dev/zero, a pipe) was read whole: 4 GB, then an OutOfMemoryException (exit 1).</summary>
    [Fact]
    public void AnEndlessModelFileIsRefusedAtOnce()
    {
        if (!File.Exists("/dev/zero")) return;
        var r = _h.Run("info", "/dev/zero");
        Assert.Equal(ExitCodes.BadModel, r.Exit);
        AssertOneLine(r.Err, "zero", "not a model file");
    }

    /// <summary>report --samples 100000 asked ScottPlot for an image taller than it can make: an internal error with a
    /// stack trace. The image grids have a limit, said as a usage error.</summary>
    [Fact]
    public void TooManyGeneratedSamplesForTheReportIsAUsageError()
    {
        var csv = _h.Write("img.csv", "a,b,c,d\n" + string.Concat(Enumerable.Range(0, 50).Select(i => $"{i % 3},{i % 5},{i % 7 * 0.5},{i % 2}\n")));
        var zip = _h.PathOf("img.zip");
        Assert.Equal(0, _h.Run("fit", csv, "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=4", "-o", zip).Exit);
        var html = _h.PathOf("r.html");
        var r = _h.Run("report", zip, csv, "--samples", "100000", "-o", html);
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        AssertOneLine(r.Err, "--samples", "at most");
        _h.AssertNoPartialFiles(html);
    }

    /// <summary>report --top N on image-shaped rows drew all N rows in one grid: with 50,000 rows of 2×2 images that was an
    /// image ScottPlot cannot make, an internal error. The table lists them all; the grid draws the first ones, and says so.</summary>
    [Fact]
    public void ALargeTopOnImageRowsDrawsAReadableGrid()
    {
        var rnd = new Random(3);
        var sb = new StringBuilder("a,b,c,d\n");
        for (int i = 0; i < 50_000; i++)
            sb.Append(string.Create(CultureInfo.InvariantCulture, $"{CliHarness.Gauss(rnd):F3},{CliHarness.Gauss(rnd):F3},{CliHarness.Gauss(rnd):F3},{CliHarness.Gauss(rnd):F3}\n"));
        var csv = _h.Write("four.csv", sb.ToString());
        var zip = _h.PathOf("four.zip");
        Assert.Equal(0, _h.Run("fit", csv, "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=4", "-o", zip).Exit);
        var html = _h.PathOf("r.html");
        var r = _h.Run("report", zip, csv, "--top", "50000", "--image-shape", "2x2", "-o", html); // four columns: images only when asked
        Assert.True(r.Exit == 0, r.Err);
        var text = File.ReadAllText(html);
        Assert.Contains("The 50000 rows with the lowest log-density", text);
        Assert.Contains("The first 200 of the 50000 rows of the table above", text);
    }

    /// <summary>--sequence-id and --order were silently ignored by the row models (a user who forgot -m rnnrnade trained a
    /// row model on frame rows, with the order column as a feature); naming one column for both was reported as a
    /// duplicate order value.</summary>
    [Fact]
    public void SequenceOptionsThatDoNotFitAreUsageErrors()
    {
        var csv = _h.Write("t.csv", Header + Good(30));
        var zip = _h.PathOf("m.zip");
        var r = _h.Run("fit", csv, "-m", "rnade", "--sequence-id", "id", "--order", "x1", "-o", zip);
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        AssertOneLine(r.Err, "--sequence-id", "--order", "rnnrnade");
        Assert.Equal("", r.Out);
        r = _h.Run("fit", csv, "-m", "rnnrnade", "--sequence-id", "id", "--order", "id", "-o", zip);
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        AssertOneLine(r.Err, "--sequence-id", "--order", "same column");
        r = _h.Run("fit", csv, "-m", "rnnrnade", "--sequence-id", "id", "--order", "x1", "--label", "x1", "-o", zip);
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        AssertOneLine(r.Err, "--label", "--order");
        _h.AssertNoPartialFiles(zip);
    }

    /// <summary>An output directory that exists but cannot be written (read-only) was found only when saving, after the
    /// whole training run. The target is probed before any work.</summary>
    [Fact]
    public void AnUnwritableOutputDirectoryFailsBeforeTraining()
    {
        if (!Directory.Exists("/proc/self")) return; // /proc: a directory no one, not even root, can create files in
        var csv = _h.Write("ok.csv", Header + Good(30));
        var r = _h.Run("fit", csv, "-m", "rnade", "--epochs", "1", "-o", "/proc/ddml-test.zip");
        Assert.Equal(ExitCodes.OutputError, r.Exit);
        AssertOneLine(r.Err, "/proc/ddml-test.zip", "cannot write");
        Assert.Equal("", r.Out); // no data read, no training
    }

    /// <summary>A negative --seed said "expected type 'System.Nullable`1[System.UInt64]'".</summary>
    [Fact]
    public void ABadSeedSaysWhatASeedIs()
    {
        var csv = _h.Write("ok.csv", Header + Good(30));
        var r = _h.Run("fit", csv, "-m", "rnade", "--seed", "-5", "-o", _h.PathOf("m.zip"));
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        Assert.Contains("--seed", r.Err);
        Assert.Contains("non-negative integer", r.Err);
        Assert.DoesNotContain("System.", r.Err);
        var zip = RowModel();
        foreach (var args in new[] { new[] { "sample", zip, "--seed", "x" }, new[] { "report", zip, csv, "--seed", "-1", "-o", _h.PathOf("r.html") } })
        {
            r = _h.Run(args);
            Assert.Equal(ExitCodes.UsageError, r.Exit);
            Assert.Contains("non-negative integer", r.Err);
            Assert.DoesNotContain("System.", r.Err);
        }
    }
    /// <summary>--out naming an input file replaced it: 'report m.zip d.csv -o m.zip' wrote the HTML over the model, and
    /// 'fit d.csv -o d.csv' the model zip over the training data, without a word. It is a usage error before any work.</summary>
    [Fact]
    public void AnOutputOverAnInputIsRefused()
    {
        var zip = RowModel();
        var data = _h.Write("d.csv", Header + Good(30));
        var zipBytes = File.ReadAllBytes(zip);
        var dataText = File.ReadAllText(data);
        foreach (var args in new[]
                 {
                     new[] { "fit", data, "-m", "rnade", "--epochs", "1", "-o", data },
                     new[] { "fit", data, "-m", "rnade", "--epochs", "1", "--validation", zip, "-o", zip },
                     new[] { "score", zip, data, "-o", data },
                     new[] { "score", zip, data, "-o", zip },
                     new[] { "sample", zip, "-o", zip },
                     new[] { "report", zip, data, "-o", zip },
                     new[] { "report", zip, data, "-o", Path.Combine(_h.Dir, ".", "d.csv") },
                 })
        {
            var r = _h.Run(args);
            Assert.True(r.Exit == ExitCodes.UsageError, string.Join(" ", args) + ": " + r.Err);
            AssertOneLine(r.Err, "--out", "is also the");
            Assert.Equal("", r.Out);
        }
        Assert.Equal(zipBytes, File.ReadAllBytes(zip));
        Assert.Equal(dataText, File.ReadAllText(data));
    }
    /// <summary>An option set twice, by --epochs/--seed and by -p MaxEpochs/Seed, or by two -p, took the last value without
    /// a word (--epochs 2 -p MaxEpochs=3 trained 3 epochs); it is a usage error naming both.</summary>
    [Fact]
    public void AnOptionSetTwiceIsAUsageError()
    {
        var csv = _h.Write("t.csv", Header + Good(30));
        var zip = _h.PathOf("m.zip");
        foreach (var (args, fragments) in new (string[], string[])[]
                 {
                     (new[] { "-m", "rnade", "--epochs", "2", "-p", "MaxEpochs=3" }, new[] { "MaxEpochs", "--epochs" }),
                     (new[] { "-m", "deepgmm", "--epochs", "2", "-p", "maxiterations=3" }, new[] { "MaxIterations", "--epochs" }),
                     (new[] { "-m", "rnade", "--seed", "3", "-p", "Seed=5" }, new[] { "Seed", "--seed" }),
                     (new[] { "-m", "rnade", "-p", "HiddenUnits=4", "-p", "hiddenunits=8" }, new[] { "HiddenUnits", "twice" }),
                 })
        {
            var r = _h.Run(new[] { "fit", csv, "-o", zip }.Concat(args).ToArray());
            Assert.True(r.Exit == ExitCodes.UsageError, string.Join(" ", args) + ": " + r.Err);
            AssertOneLine(r.Err, fragments);
            Assert.Equal("", r.Out);
        }
        _h.AssertNoPartialFiles(zip);
    }
    /// <summary>A line of only spaces or tabs (an editor's indentation, a trailing line) was a "ragged row" with 1 field;
    /// docs/cli.md says blank lines are skipped, and such a line is blank.</summary>
    [Fact]
    public void ALineOfSpacesIsBlank()
    {
        var csv = _h.Write("ws.csv", Header + Good(10) + "   \t \n" + Good(10) + "  \n");
        var zip = _h.PathOf("m.zip");
        var r = _h.Run("fit", csv, "-m", "rnade", "--epochs", "1", "-p", "HiddenUnits=4", "-o", zip);
        Assert.True(r.Exit == 0, r.Err);
        Assert.Contains("20 rows", r.Out);
        r = _h.Run("score", zip, csv);
        Assert.True(r.Exit == 0, r.Err);
        Assert.Equal(21, r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }
    /// <summary>An ML.NET zip holding two DeepDensity models was reported as "an ML.NET model, but not a DeepDensity one:
    /// The transformer contains 2 DeepDensity models", which contradicts itself; it says the zip holds two.</summary>
    [Fact]
    public void AZipWithTwoDeepDensityModelsSaysSo()
    {
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 40).Select(i => new RoundTripTests.In { Features = new float[] { i % 7, i % 5 * 0.5f, i % 3, i % 11 * 0.1f } }));
        var pipeline = ml.DensityEstimation.Rnade("Features", hiddenUnits: 2, maxEpochs: 1)
            .Append(ml.DensityEstimation.Rnade("Features", hiddenUnits: 3, maxEpochs: 1)).Fit(view);
        var zip = _h.PathOf("two.zip");
        ml.Model.Save(pipeline, view.Schema, zip);
        var r = _h.Run("info", zip);
        Assert.Equal(ExitCodes.BadModel, r.Exit);
        AssertOneLine(r.Err, "two.zip", "2 DeepDensity models");
        Assert.DoesNotContain("not a DeepDensity one", r.Err);
    }
    /// <summary>--image-shape 4x1073741840 passed the "H×W = the feature count" check for 64 features (the product
    /// overflowed to 64), and the report died with an OutOfMemoryException (exit 1); the library's check overflowed alike.</summary>
    [Fact]
    public void AnImageShapeWhoseProductOverflowsIsRefused()
    {
        var csv = _h.Digits("d.csv", 0, 60, withAnomaly: false);
        var zip = _h.PathOf("d.zip");
        Assert.Equal(0, _h.Run("fit", csv, "-m", "rnade", "--exclude", "digit", "--epochs", "1", "-p", "HiddenUnits=4", "-o", zip).Exit);
        var html = _h.PathOf("r.html");
        var r = _h.Run("report", zip, csv, "--image-shape", "4x1073741840", "-o", html);
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        AssertOneLine(r.Err, "--image-shape 4x1073741840", "64 features");
        _h.AssertNoPartialFiles(html);
        var model = new MLContext(seed: 1).Model.Load(zip, out _).GetDensityModel();
        var rows = new Microsoft.ML.DeepDensity.Data.RowMatrix(2, 64);
        Assert.Throws<ArgumentException>(() => Reporting.DensityReport.Create(model, rows, new Reporting.DensityReportOptions { ImageShape = (4, 1073741840) }));
    }
    /// <summary>The rnnrnade report drew --samples N generated sequences of --length L frames as line plots: 2e9 of either
    /// was an internal error with the engine's stack trace, and --length 5000000 ran for minutes in gigabytes. Both have
    /// limits (200 sequences, 100,000 frames), said as usage errors before any work.</summary>
    [Fact]
    public void ASequenceReportTooLargeToDrawIsAUsageError()
    {
        var zip = SequenceModel();
        var html = _h.PathOf("r.html");
        foreach (var (args, fragment) in new[]
                 {
                     (new[] { "--samples", "2000000000" }, "--samples 2000000000"),
                     (new[] { "--length", "2000000000" }, "--length 2000000000"),
                     (new[] { "--length", "5000000" }, "--length 5000000"),
                 })
        {
            var r = _h.Run(new[] { "report", zip, _h.PathOf("frames.csv"), "-o", html }.Concat(args).ToArray());
            Assert.True(r.Exit == ExitCodes.UsageError, r.Err);
            AssertOneLine(r.Err, fragment, "at most");
            _h.AssertNoPartialFiles(html);
        }
        Assert.Equal(0, _h.Run("report", zip, _h.PathOf("frames.csv"), "-o", html, "--samples", "200", "--length", "100").Exit);
    }
    /// <summary>Metadata naming one column twice (FeatureColumns a, a, b) made score read column a for two features and
    /// print confident, wrong log-densities; an order column that is also a feature was reported as a data error. The
    /// names must be non-empty and distinct: otherwise a model error.</summary>
    [Fact]
    public void MetadataNamingAColumnTwiceIsAModelError()
    {
        var zip = RowModel();
        var data = _h.Write("d.csv", Header + Good(5));
        var bad = WithMetadata(zip, "dup.zip", j => j["FeatureColumns"] = new JsonArray("x1", "x1", "x3"));
        var r = _h.Run("score", bad, data);
        Assert.Equal(ExitCodes.BadModel, r.Exit);
        AssertOneLine(r.Err, "dup.zip", "metadata", "'x1'", "twice");
        bad = WithMetadata(zip, "empty.zip", j => j["FeatureColumns"] = new JsonArray("x1", "", "x3"));
        r = _h.Run("score", bad, data);
        Assert.Equal(ExitCodes.BadModel, r.Exit);
        AssertOneLine(r.Err, "empty.zip", "metadata", "empty");

        var seq = SequenceModel();
        bad = WithMetadata(seq, "order.zip", j => j["OrderColumn"] = "a");
        r = _h.Run("score", bad, _h.PathOf("frames.csv"));
        Assert.Equal(ExitCodes.BadModel, r.Exit);
        AssertOneLine(r.Err, "order.zip", "metadata", "'a'", "twice");
    }
    /// <summary>A forged metadata whose TrainRows and MedianSequenceLength agree but are huge (2e9 rows, median 1e9): the
    /// report took the median as its sample length and failed its own options check with an internal error; sample
    /// blamed a --length the user never gave.</summary>
    [Fact]
    public void AHugeRecordedMedianLengthIsNotAnInternalError()
    {
        var seq = SequenceModel();
        var bad = WithMetadata(seq, "long.zip", j => { j["TrainRows"] = 2_000_000_000; j["MedianSequenceLength"] = 1_000_000_000; });
        var html = _h.PathOf("r.html");
        var r = _h.Run("report", bad, _h.PathOf("frames.csv"), "-o", html);
        Assert.True(r.Exit == 0, r.Err);
        r = _h.Run("sample", bad, "-n", "3");
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        AssertOneLine(r.Err, "median training length 1000000000", "--length");
    }

    /// <summary>Counts agree with their nouns (as the row model's messages already did): rnnrnade's fit said "1 features
    /// per frame", info "median length 1 frames", the reports' facts "(1 rows)" and "(1 sequences, ...)".</summary>
    [Fact]
    public void SequenceAndReportCountsAreSingularForOne()
    {
        var frames = _h.Write("one.csv", "id,t,a\ns1,0,1\ns2,0,2\ns3,0,3\ns4,0,1\ns5,0,2\n");
        var zip = _h.PathOf("one.zip");
        var r = _h.Run("fit", frames, "-m", "rnnrnade", "--sequence-id", "id", "--order", "t", "--epochs", "1", "-p", "HiddenUnits=2", "-p", "RecurrentUnits=2", "-o", zip);
        Assert.True(r.Exit == 0, r.Err);
        Assert.Contains("1 feature per frame", r.Out);
        Assert.Contains("median length 1 frame:", _h.Run("info", zip).Out);
        var html = _h.PathOf("r.html");
        Assert.Equal(0, _h.Run("report", zip, _h.Write("s.csv", "id,t,a\ns1,0,1\n"), "-o", html).Exit);
        var sequenceText = File.ReadAllText(html);
        Assert.Contains("(1 sequence, 1 frame row;", sequenceText);
        Assert.Contains("The step with the lowest", sequenceText); // not "The 1 steps"
        Assert.Contains("The sequence with the lowest", sequenceText);
        var rows = _h.Write("r1.csv", "a,b\n1,2\n");
        var rowZip = _h.PathOf("r1.zip");
        // Every model needs 2 training rows: trained on two, reporting one.
        Assert.Equal(0, _h.Run("fit", _h.Write("r2.csv", "a,b\n1,2\n2,3\n"), "-m", "rnade", "--epochs", "1", "-o", rowZip).Exit);
        Assert.Equal(0, _h.Run("report", rowZip, rows, "-o", html).Exit);
        var text = File.ReadAllText(html);
        Assert.Contains("r1.csv (1 row)", text);
        Assert.Contains("r2.csv (2 rows), 1 epoch", text);
        Assert.Contains(" of 1 row (", text); // the threshold fact: flags 0 or 1 of 1 row
        Assert.Contains("The row with the lowest log-density.", text); // not "The 1 rows"
        var square = _h.Write("sq.csv", "a,b,c,d\n1,2,3,4\n2,1,4,3\n");
        Assert.Equal(0, _h.Run("fit", square, "-m", "rnade", "--epochs", "1", "-o", rowZip).Exit);
        Assert.Equal(0, _h.Run("report", rowZip, _h.Write("sq1.csv", "a,b,c,d\n1,2,3,4\n"), "--image-shape", "2x2", "-o", html).Exit); // 2×2 images (asked for: four columns are a table)
        Assert.Contains("The first scored row.", File.ReadAllText(html));
    }
    /// <summary>The validation file is read by column name, but an engine error in it (a 0.5 for NVIL) was reported at the
    /// training file's column position: with the columns in another order (and an id column first), "column 2 ('b')"
    /// named a cell of another column. The validation file's own position is given.</summary>
    [Fact]
    public void AValidationErrorNamesTheValidationFilesColumn()
    {
        string Bits(int rows) => "a,b,c\n" + string.Concat(Enumerable.Range(0, rows).Select(i => $"{i % 2},{i / 2 % 2},{i / 4 % 2}\n"));
        var valid = _h.Write("valid.csv", "id,c,b,a\n" + string.Concat(Enumerable.Range(0, 12).Select(i => $"v{i},{i / 4 % 2},{(i == 5 ? "0.5" : (i / 2 % 2).ToString(CultureInfo.InvariantCulture))},{i % 2}\n")));
        var output = _h.PathOf("nvil.zip");
        var r = _h.Run("fit", _h.Write("train.csv", Bits(40)), "-m", "nvil", "--epochs", "1", "--validation", valid, "-o", output);
        Assert.Equal(ExitCodes.BadData, r.Exit);
        AssertOneLine(r.Err, "valid.csv, line 7, column 3 ('b')", "is not binary");
    }
    /// <summary>rnnrnade's evaluate of one frame row said "sequences  1 (1 frame rows; ...)".</summary>
    [Fact]
    public void SequenceEvaluateOfOneFrameIsSingular()
    {
        var zip = SequenceModel();
        var r = _h.Run("evaluate", zip, _h.Write("s.csv", "seq,t,a,b\ns1,0,1,0.4\n"));
        Assert.True(r.Exit == 0, r.Err);
        Assert.Contains("sequences               1 (1 frame row; median length 1)", r.Out);
    }
    /// <summary>A zip whose ddml metadata came from another model (an rnade zip's ddml.json in an nvil zip: spliced or
    /// edited) was described by info as "kind Nvil (ddml model 'rnade')" with RNADE's options and training history, and
    /// the report said "ddml fit --model rnade". The metadata must describe the model it sits beside.</summary>
    [Fact]
    public void MetadataOfAnotherModelKindIsAModelError()
    {
        var rnade = RowModel("rnade.zip");
        var nvil = _h.PathOf("nvil.zip");
        var bits = _h.Write("bits.csv", "id,x1,x2,x3\n" + string.Concat(Enumerable.Range(0, 40).Select(i => $"r{i},{i % 2},{i / 2 % 2},{i / 4 % 2}\n")));
        Assert.Equal(0, _h.Run("fit", bits, "-m", "nvil", "--epochs", "1", "-o", nvil).Exit);
        string json;
        using (var z = ZipFile.OpenRead(rnade)) using (var r0 = new StreamReader(z.GetEntry(ModelZip.MetadataEntry)!.Open())) json = r0.ReadToEnd();
        var spliced = WithMetadata(nvil, "spliced.zip", j =>
        {
            foreach (var (k, v) in JsonNode.Parse(json)!.AsObject().ToList()) j[k] = v?.DeepClone();
        });
        var r = _h.Run("info", spliced);
        Assert.Equal(ExitCodes.BadModel, r.Exit);
        AssertOneLine(r.Err, "spliced.zip", "'rnade'", "Nvil");
    }
}
