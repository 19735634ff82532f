using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Transforms;
using Xunit;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>A Deep GMM on no more rows than columns fits its training rows and little else (a new user's 300 rows of
/// 2,000 columns: +12,227 nats a training row, −8.8e8 a validation row, 16–24 s an M-step) and said nothing. Fit now
/// logs a warning (ML.NET's log, Warning) saying why and what to do; more rows than columns log none.</summary>
public class DeepGmmFewRowsWarningTests
{
    [Theory]
    [InlineData(12, true)]
    [InlineData(4, true)]
    [InlineData(40, false)]
    public void FitWarnsWhenTheRowsAreNoMoreThanTheColumns(int rows, bool warns)
    {
        var ml = new MLContext(seed: 1);
        var warnings = new List<string>();
        ml.Log += (_, e) => { if (e.Kind == Runtime.ChannelMessageKind.Warning) lock (warnings) warnings.Add(e.Message); };
        var r = new Random(2);
        var data = Enumerable.Range(0, rows).Select(_ => new Wide { Features = Enumerable.Range(0, Wide.D).Select(_ => (float)r.NextDouble()).ToArray() });
        ml.DensityEstimation.DeepGmm(new DeepGmmEstimator.Options
        {
            ModelOptions = new DeepGmmOptions { Layers = new[] { 1 }, MaxIterations = 1, ValidationFraction = 0 },
        }).Fit(ml.Data.LoadFromEnumerable(data));
        var few = warnings.Where(w => w.Contains("training rows for 12 columns")).ToList();
        if (!warns) { Assert.Empty(few); return; }
        Assert.Single(few);
        Assert.Contains($"{rows} training rows for 12 columns: with no more rows than columns", few[0]);
        Assert.Contains("ProjectToPrincipalComponents", few[0]);
        Assert.Equal(DeepGmmOptions.FewRowsWarning(rows, Wide.D), few[0][(few[0].IndexOf(": ", StringComparison.Ordinal) + 2)..^1]);
    }

    public sealed class Wide
    {
        public const int D = 12;
        [VectorType(D)] public float[] Features { get; set; } = new float[D];
    }
}
