using System.Globalization;
using System.Text;
using Microsoft.ML.Data;

namespace Microsoft.ML.DeepDensity.Cli.Tests;

/// <summary>rnnrnade on frame rows (sequence id + order columns): fit → info → score, values equal ML.NET's on the saved zip.</summary>
public class SequenceTests : IDisposable
{
    private readonly CliHarness _h = new();
    public void Dispose() => _h.Dispose();

    /// <summary>2-d AR(1) sequences of 6–10 frames as frame rows: seq (text id), t (order), a, b.</summary>
    private string Frames(string name, int sequences, int seed)
    {
        var rnd = new Random(seed);
        var sb = new StringBuilder("seq,t,a,b\n");
        for (int s = 0; s < sequences; s++)
        {
            double x = CliHarness.Gauss(rnd), y = CliHarness.Gauss(rnd);
            int length = 6 + rnd.Next(5);
            for (int t = 0; t < length; t++)
            {
                (x, y) = (0.8 * x - 0.3 * y + 0.3 * CliHarness.Gauss(rnd), 0.3 * x + 0.8 * y + 0.3 * CliHarness.Gauss(rnd));
                sb.Append(CultureInfo.InvariantCulture, $"s{s},{t * 10},{x:F4},{y:F4}\n");
            }
        }
        return _h.Write(name, sb.ToString());
    }

    [Fact]
    public void FitInfoScoreOnFrameRows()
    {
        var train = Frames("train.csv", 60, 1);
        var test = Frames("test.csv", 12, 2);
        var zip = _h.PathOf("seq.zip");
        var fit = _h.Run("fit", train, "-m", "rnnrnade", "--sequence-id", "seq", "--order", "t", "--epochs", "3", "-p", "HiddenUnits=6", "-p", "RecurrentUnits=4", "-o", zip);
        Assert.True(fit.Exit == 0, fit.Err);

        var info = _h.Run("info", zip);
        Assert.True(info.Exit == 0, info.Err);
        Assert.Contains("RnnRnade", info.Out);
        Assert.Contains("sequence id 'seq', order 't'", info.Out);
        Assert.Contains("RecurrentUnits", info.Out);

        var scores = _h.PathOf("scores.csv");
        var score = _h.Run("score", zip, test, "-o", scores);
        Assert.True(score.Exit == 0, score.Err);
        var lines = File.ReadAllLines(scores);
        Assert.Equal("seq,t,a,b,LogDensity,Score,PredictedLabel", lines[0]);
        var cli = lines.Skip(1).Select(l => float.Parse(l.Split(',')[4], CultureInfo.InvariantCulture)).ToArray();

        // The same rows through the saved zip in plain ML.NET.
        var ml = new MLContext(seed: 1);
        var loaded = ml.Model.Load(zip, out _);
        var rows = File.ReadAllLines(test).Skip(1).Select(l => l.Split(',')).Select(c => new Frame
        {
            Features = new[] { float.Parse(c[2], CultureInfo.InvariantCulture), float.Parse(c[3], CultureInfo.InvariantCulture) },
            SequenceId = c[0], Order = double.Parse(c[1], CultureInfo.InvariantCulture),
        }).ToArray();
        var expected = loaded.Transform(ml.Data.LoadFromEnumerable(rows)).GetColumn<float>("LogDensity").ToArray();
        Assert.Equal(expected, cli);
        Assert.All(cli, v => Assert.True(float.IsFinite(v)));

        var sample = _h.Run("sample", zip, "-n", "3");
        Assert.Equal(ExitCodes.UsageError, sample.Exit);
        Assert.Contains("not available for the sequence model 'rnnrnade'", sample.Err);
    }

    [Fact]
    public void SequenceModelNeedsItsColumns()
    {
        var train = Frames("train.csv", 10, 1);
        Assert.Equal(ExitCodes.UsageError, _h.Run("fit", train, "-m", "rnnrnade", "-o", _h.PathOf("x.zip")).Exit);
        var r = _h.Run("fit", train, "-m", "rnnrnade", "--sequence-id", "seq", "--order", "nope", "-o", _h.PathOf("x.zip"));
        Assert.Equal(ExitCodes.BadData, r.Exit);
        Assert.Contains("the order column 'nope' is not in the header", r.Err);
        _h.AssertNoPartialFiles(_h.PathOf("x.zip"));
    }

    public sealed class Frame
    {
        [VectorType(2)] public float[] Features { get; set; } = new float[2];
        public string SequenceId { get; set; } = "";
        public double Order { get; set; }
    }
}
