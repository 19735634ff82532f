using System.Text.RegularExpressions;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Estimation;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Models.Nvil;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// <c>EvaluationSamplesPerChunk</c> of IWAE and NVIL was documented as "memory only" ("does not change results"), but a
/// row's importance-sampling noise is drawn from one stream per chunk of samples, so another chunk size gives other noise:
/// a different estimate, up to a nat per row on a small model (a user lowering it to save memory changed every score and
/// the threshold). Making the noise independent of the chunk would change the scores of saved models whose chunk is not
/// the default, which must score as they did; the docs now say what it does: another draw of the estimate, as another
/// <c>EvaluationSeed</c> is. This pins both: the same chunk gives the same bits, another chunk another draw of the same
/// estimator (agreeing within the standard errors), and the option tables no longer call it memory only.
/// </summary>
public class EvaluationChunkTests
{
    private static RowMatrix Bits(int rows, int seed)
    {
        var r = new Random(seed);
        var m = new RowMatrix(rows, 8);
        for (int i = 0; i < rows; i++)
        {
            int prototype = r.Next(2);
            for (int j = 0; j < 8; j++) m.Values[i * 8 + j] = (j % 2 == prototype) ^ (r.NextDouble() < 0.1) ? 1 : 0;
        }
        return m;
    }

    public static TheoryData<string> Families() => new() { "iwae", "nvil" };

    [Theory]
    [MemberData(nameof(Families))]
    public void AnotherChunkIsAnotherDrawOfTheEstimate_AndTheDocsSaySo(string family)
    {
        var data = Bits(200, seed: 1);
        ImportanceSampledModel trained = family == "iwae"
            ? IwaeModel.Fit(data, new IwaeOptions { LatentDimensions = new[] { 2 }, HiddenUnits = new[] { 8 }, MaxEpochs = 2, EvaluationSamples = 200 })
            : NvilModel.Fit(data, new NvilOptions { LatentDimensions = new[] { 3 }, MaxEpochs = 2, EvaluationSamples = 200 });
        ImportanceSampledModel With(int chunk) => trained switch
        {
            IwaeModel iwae => iwae.WithEvaluation(200, samplesPerChunk: chunk),
            NvilModel nvil => nvil.WithEvaluation(200, samplesPerChunk: chunk),
            _ => throw new InvalidOperationException(),
        };
        (float[] LogDensity, float[] StandardError) Score(ImportanceSampledModel model)
        {
            var ld = new float[data.Rows];
            var se = new float[data.Rows];
            model.LogDensity(data.AsSpan(), ld, se);
            return (ld, se);
        }

        var (a, aSe) = Score(With(100));
        Assert.Equal(a, Score(With(100)).LogDensity);                 // the same chunk: the same bits
        var (b, bSe) = Score(With(7));
        Assert.NotEqual(a, b);                                        // another chunk: other noise
        // The same estimator: row by row within the standard errors (the data repeat a few rows, and identical rows get
        // identical noise, so the rows are not independent draws and their mean is no sharper test than one row).
        for (int i = 0; i < data.Rows; i++)
        {
            double tolerance = 6 * Math.Sqrt((double)aSe[i] * aSe[i] + (double)bSe[i] * bSe[i]) + 0.05;
            Assert.True(Math.Abs(a[i] - b[i]) <= tolerance, $"row {i}: {a[i]} (chunk 100 ± {aSe[i]}) vs {b[i]} (chunk 7 ± {bSe[i]})");
        }

        string chapter = File.ReadAllText(Path.Combine(DocsDefaultsTests.RepositoryRoot(), "docs", "models", family == "iwae" ? "iwae.md" : "nvil.md"));
        string row = Regex.Match(chapter, @"^\| `EvaluationSamplesPerChunk` \|.*$", RegexOptions.Multiline).Value;
        Assert.DoesNotContain("memory only", row);
        Assert.Contains("another draw of the estimate", row);
    }
}
