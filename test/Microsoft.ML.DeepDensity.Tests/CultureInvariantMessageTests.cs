using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Training;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// Messages, log lines and <see cref="TrainingProgress.ToString"/> write numbers in the invariant culture (docs/mlnet.md),
/// whatever the app's culture. Under de-DE the library wrote "Contamination must be in [0, 0.5] (got 0,75)", epoch
/// lines "train -20,4420 … lr 0,001", "value 0,5 is not binary" and "(last 0,000125)" in a divergence error, beside
/// settings messages that already wrote "-0.5". Each case runs under a decimal-comma culture (de-DE) and under tr-TR.
/// </summary>
public class CultureInvariantMessageTests
{
    /// <summary>A digit, a comma, a digit: a number written with a decimal comma (lists here are written ", ").</summary>
    private static readonly Regex DecimalComma = new(@"\d,\d");

    private static T InCulture<T>(string culture, Func<T> body)
    {
        var previous = CultureInfo.CurrentCulture;
        try
        {
            CultureInfo.CurrentCulture = CultureInfo.GetCultureInfo(culture);
            Assert.Equal(",", CultureInfo.CurrentCulture.NumberFormat.NumberDecimalSeparator); // both cultures write a decimal comma
            return body();
        }
        finally { CultureInfo.CurrentCulture = previous; }
    }

    private static void AssertInvariant(string text, string culture)
        => Assert.False(DecimalComma.IsMatch(text), $"under {culture}, a number with a decimal comma in: {text}");

    [Theory]
    [InlineData("de-DE")]
    [InlineData("tr-TR")]
    public void SettingErrorsWriteInvariantNumbers(string culture)
    {
        var e = InCulture(culture, () => Assert.ThrowsAny<ArgumentException>(
            () => new MLContext(seed: 1).DensityEstimation.Rnade(new RnadeEstimator.Options { Contamination = 0.75 })));
        Assert.Contains("(got 0.75)", e.Message);
        AssertInvariant(e.Message, culture);
    }

    [Theory]
    [InlineData("de-DE")]
    [InlineData("tr-TR")]
    public void TrainingProgressTextIsInvariant(string culture)
    {
        var progress = new TrainingProgress(3, -20.442, -21.5, 1234.4, TimeSpan.FromSeconds(2.25), 0.001f,
            Metrics: new Dictionary<string, double> { ["accept"] = 0.25 });
        string text = InCulture(culture, progress.ToString);
        Assert.Contains("-20.4420", text);
        Assert.Contains("-21.5000", text);
        Assert.Contains("lr 0.001", text);
        Assert.Contains("accept 0.25", text);
        AssertInvariant(text, culture);
    }

    /// <summary>The MLContext.Log lines of a fit (epochs, threshold, summary), written on the engine's threads too (the
    /// culture flows to them with the execution context).</summary>
    [Theory]
    [InlineData("de-DE")]
    [InlineData("tr-TR")]
    public void TrainingLogIsInvariant(string culture)
    {
        var ml = new MLContext(seed: 1);
        var lines = new List<string>();
        ml.Log += (_, e) => { if (e.Message.Contains("Rnade", StringComparison.Ordinal)) lock (lines) lines.Add(e.Message); };
        InCulture(culture, () => ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.ModelOptions.MaxEpochs = 3)).Fit(ml.Data.LoadFromEnumerable(TestData.Blob(200))));
        Assert.Contains(lines, l => l.Contains(" lr 0.005", StringComparison.Ordinal));
        Assert.All(lines, l => AssertInvariant(l, culture));
    }

    [Theory]
    [InlineData("de-DE")]
    [InlineData("tr-TR")]
    public void DataErrorsWriteInvariantNumbers(string culture)
    {
        var ml = new MLContext(seed: 1);
        var rows = Enumerable.Range(0, 20).Select(i => new Row { Features = new[] { i % 2f, 1f, 0f, i == 7 ? 0.5f : 1f } }).ToList();
        var e = Assert.Throws<DataValidationException>(() => InCulture(culture, () => ml.DensityEstimation.Rbm(maxEpochs: 1).Fit(ml.Data.LoadFromEnumerable(rows))));
        Assert.Contains("value 0.5 ", e.Message);
        AssertInvariant(e.Message, culture);
    }

    /// <summary>A fit that diverges names the last learning rate it tried, and the largest value of the column.</summary>
    [Theory]
    [InlineData("de-DE")]
    [InlineData("tr-TR")]
    public void DivergenceErrorWritesInvariantNumbers(string culture)
    {
        var ml = new MLContext(seed: 1);
        var rows = TestData.Blob(200, seed: 4);
        foreach (var r in rows) for (int c = 0; c < Row.D; c++) r.Features[c] += 1e7f;
        rows[37].Features[2] = 2.5e7f;
        var estimator = ml.DensityEstimation.Iwae(new IwaeEstimator.Options
        {
            ModelOptions = new Models.Iwae.IwaeOptions { Likelihood = Models.Iwae.IwaeLikelihood.Gaussian, LatentDimensions = new[] { 2 }, HiddenUnits = new[] { 8 }, MaxEpochs = 3, EvaluationSamples = 10, Standardize = false },
        });
        var e = Assert.Throws<TrainingDivergedException>(() => InCulture(culture, () => estimator.Fit(ml.Data.LoadFromEnumerable(rows))));
        Assert.Contains("(last ", e.Message);
        Assert.Contains("is 2.5E+07 (row 37, slot 2)", e.Message);
        AssertInvariant(e.Message, culture);
    }
    /// <summary>
    /// Integers in messages (a bad option's value, counts, rows) were written in the current culture where floats had been
    /// made invariant: under sv-SE (minus sign U+2212) or fa-IR (a direction mark and U+2212) "FrameSize must be at least 1
    /// (got −3)" could not be matched, searched for or pasted back as a number. Every interpolated message with a number
    /// in it is now invariant.
    /// </summary>
    [Theory]
    [InlineData("sv-SE")]
    [InlineData("fa-IR")]
    public void NegativeIntegersInMessagesUseTheAsciiMinus(string culture)
    {
        var ml = new MLContext(seed: 1);
        var model = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.ModelOptions.MaxEpochs = 1)).Fit(ml.Data.LoadFromEnumerable(TestData.Blob(50)));
        var messages = new List<string>();
        var previous = CultureInfo.CurrentCulture;
        try
        {
            CultureInfo.CurrentCulture = CultureInfo.GetCultureInfo(culture);
            Assert.NotEqual("-", CultureInfo.CurrentCulture.NumberFormat.NegativeSign);   // the culture does write another minus
            messages.Add(Assert.Throws<ArgumentOutOfRangeException>(() => new SequenceDensityEstimator.Options { FrameSize = -3 }.Validate()).Message);
            messages.Add(Assert.Throws<ArgumentOutOfRangeException>(() => ml.DensityEstimation.Rnade(new RnadeEstimator.Options { ShuffleBufferRows = -3 })).Message);
            messages.Add(Assert.Throws<ArgumentOutOfRangeException>(() => ml.DensityEstimation.Rnade(new RnadeEstimator.Options { ScoringBlockRows = -3 })).Message);
            messages.Add(Assert.Throws<ArgumentOutOfRangeException>(() => model.GetDensityModel().Sample(-3, seed: 1)).Message);
        }
        finally { CultureInfo.CurrentCulture = previous; }
        Assert.All(messages, m =>
        {
            // Ordinal: a linguistic comparison ignores the zero-width direction mark fa-IR writes before its minus.
            Assert.Contains("got -3)", m, StringComparison.Ordinal);
            Assert.False(m.Contains('\u2212', StringComparison.Ordinal), m);
            Assert.False(m.Contains('\u200E', StringComparison.Ordinal), m);
        });
    }
}
