using System.Globalization;

namespace Microsoft.ML.DeepDensity.Cli.Tests;

/// <summary>
/// A validation row far off the training data's scale (a finite 3e38 among values of a few units): ddml fit said
/// "training diverged … standardise the inputs" (exit 5), blaming the training file. It is a bad row of the file it is
/// in: that file, its line and the column of the far-off value (exit 3, bad data).
/// </summary>
public class UnscorableValidationTests : IDisposable
{
    private readonly CliHarness _h = new();
    public void Dispose() => _h.Dispose();

    [Fact]
    public void AFarOffValidationRowIsABadRowOfTheValidationFile()
    {
        var train = _h.Blob("train.csv", 200);
        var lines = File.ReadAllLines(_h.Blob("valid.csv", 40, seed: 2));
        var cells = lines[11].Split(',');
        cells[2] = "3e38";   // x2 of the row on line 12
        lines[11] = string.Join(",", cells);
        var valid = _h.Write("valid.csv", string.Join("\n", lines) + "\n");
        var output = _h.PathOf("out.zip");
        var r = _h.Run("fit", train, "-m", "rnade", "--exclude", "label", "--epochs", "2", "-p", "HiddenUnits=4", "--validation", valid, "-o", output);
        Assert.Equal(ExitCodes.BadData, r.Exit);
        Assert.StartsWith("ddml: error: valid.csv, line 12, column 3 ('x2'): this row has a log-density under the model that is not finite", r.Err);
        Assert.Contains("its value 3E+38 is far beyond", r.Err);
        Assert.DoesNotContain("diverged", r.Err);
        _h.AssertNoPartialFiles(output);
    }

    [Fact]
    public void AFarOffValidationFrameRowIsNamedByItsLine()
    {
        var ci = CultureInfo.InvariantCulture;
        string Frames(int sequences, int seed, (int Sequence, int Step)? farOff = null)
        {
            var rnd = new Random(seed);
            var rows = new List<string>();
            for (int s = 0; s < sequences; s++)
                for (int t = 0; t < 8; t++)
                {
                    string a = farOff == (s, t) ? "3e38" : CliHarness.Gauss(rnd).ToString("F4", ci);
                    rows.Add($"s{s},{t},{a},{CliHarness.Gauss(rnd).ToString("F4", ci)}");
                }
            return "seq,t,a,b\n" + string.Join("\n", rows) + "\n";
        }
        var train = _h.Write("train.csv", Frames(12, 1));
        var valid = _h.Write("valid.csv", Frames(3, 2, (1, 5)));   // sequence s1, step 5: line 1 + 8 + 5 + 1
        var r = _h.Run("fit", train, "-m", "rnnrnade", "--sequence-id", "seq", "--order", "t", "--epochs", "1",
            "-p", "HiddenUnits=2", "-p", "RecurrentUnits=2", "--validation", valid, "-o", _h.PathOf("seq.zip"));
        Assert.Equal(ExitCodes.BadData, r.Exit);
        Assert.StartsWith("ddml: error: valid.csv, line 15: sequence 's1', frame 5: this frame has a log-density under the model that is not finite", r.Err);
    }
}
