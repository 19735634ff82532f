using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Models.Nvil;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// A new user's trial: RNADE and Deep RNADE trained 200 epochs on 1, 2 or 7 rows without a word (the Deep GMM refused
/// one row and warned at rows ≤ columns) and then scored an ordinary finite row of a 2-row fit as −∞; and a table of 100
/// rows each repeated 10 times held out copies of its training rows, so early stopping saw no overfitting (RNADE −51
/// nats a new row against −11). Every row family now refuses fewer than 2 rows with one message, warns in ML.NET's log
/// at rows ≤ columns and when the held-out fraction holds out no row, and warns when more than 10 % of the rows are
/// exact copies of others (<see cref="TrainingRowChecks"/>).
/// </summary>
public class TrainingRowWarningTests
{
    private const int D = 6;

    public sealed class Wide
    {
        [VectorType(D)] public float[] Features { get; set; } = new float[D];
    }

    public static TheoryData<string> Families => new() { "Rnade", "DeepRnade", "DeepGmm", "Rbm", "Iwae", "Nvil" };

    private static bool Binary(string family) => family is "Rbm" or "Nvil";

    private static IEstimator<ITransformer> Estimator(MLContext ml, string family) => family switch
    {
        "Rnade" => ml.DensityEstimation.Rnade(new RnadeEstimator.Options { ModelOptions = new RnadeOptions { HiddenUnits = 4, Components = 2, MaxEpochs = 2 } }),
        "DeepRnade" => ml.DensityEstimation.DeepRnade(new DeepRnadeEstimator.Options { ModelOptions = new DeepRnadeOptions { HiddenUnits = 4, Components = 2, MaxEpochs = 2 } }),
        "DeepGmm" => ml.DensityEstimation.DeepGmm(new DeepGmmEstimator.Options { ModelOptions = new DeepGmmOptions { Layers = new[] { 1 }, MaxIterations = 1 } }),
        "Rbm" => ml.DensityEstimation.Rbm(new RbmEstimator.Options { ModelOptions = new RbmOptions { HiddenUnits = 4, MaxEpochs = 2 } }),
        "Iwae" => ml.DensityEstimation.Iwae(new IwaeEstimator.Options
        {
            ModelOptions = new IwaeOptions { Likelihood = IwaeLikelihood.Gaussian, LatentDimensions = new[] { 2 }, HiddenUnits = new[] { 4 }, MaxEpochs = 2, EvaluationSamples = 5 },
        }),
        "Nvil" => ml.DensityEstimation.Nvil(new NvilEstimator.Options { ModelOptions = new NvilOptions { LatentDimensions = new[] { 2 }, MaxEpochs = 2, EvaluationSamples = 5 } }),
        _ => throw new ArgumentException(family),
    };

    private static List<Wide> Rows(string family, int n, int seed = 3)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => new Wide
        {
            Features = Enumerable.Range(0, D).Select(_ => Binary(family) ? (float)r.Next(2) : (float)TestData.Gauss(r)).ToArray(),
        }).ToList();
    }

    private static List<string> Warnings(MLContext ml)
    {
        var warnings = new List<string>();
        ml.Log += (_, e) => { if (e.Kind == Runtime.ChannelMessageKind.Warning) lock (warnings) warnings.Add(e.Message); };
        return warnings;
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void EveryFamilyRefusesOneRowWithOneMessage(string family)
    {
        var ml = new MLContext(seed: 1);
        var e = Assert.Throws<DataValidationException>(() => Estimator(ml, family).Fit(ml.Data.LoadFromEnumerable(Rows(family, 1))));
        Assert.Contains("the data has 1 row; at least 2 rows are needed", e.Message);
        Assert.Equal(DataProblemKind.NotEnoughData, e.Kind);
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void EveryFamilyWarnsOfNoMoreRowsThanColumnsAndOfNoHeldOutRow(string family)
    {
        var ml = new MLContext(seed: 1);
        var warnings = Warnings(ml);
        Estimator(ml, family).Fit(ml.Data.LoadFromEnumerable(Rows(family, 5)));
        var few = warnings.Where(w => w.Contains("5 training rows for 6 columns", StringComparison.Ordinal)).ToList();
        Assert.Single(few);
        Assert.Contains("far lower", few[0]);
        var none = warnings.Where(w => w.Contains("of 5 training rows holds out no row", StringComparison.Ordinal)).ToList();
        // The RBM holds nothing out by default (ValidationFraction 0): nothing to say.
        if (family == "Rbm") { Assert.Empty(none); return; }
        Assert.Single(none);
        Assert.Contains("no early stopping (EarlyStoppingPatience", none[0]);
        Assert.Contains("pass a validation view or raise ValidationFraction", none[0]);
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void EnoughRowsWarnNothing(string family)
    {
        var ml = new MLContext(seed: 1);
        var warnings = Warnings(ml);
        Estimator(ml, family).Fit(ml.Data.LoadFromEnumerable(Rows(family, 40)));
        Assert.DoesNotContain(warnings, w => w.Contains("training rows for", StringComparison.Ordinal) || w.Contains("holds out no row", StringComparison.Ordinal)
                                             || w.Contains("exact copies", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("Rnade")]
    [InlineData("DeepRnade")]
    [InlineData("DeepGmm")]
    [InlineData("Iwae")]
    public void RowsRepeatedTenTimesAreWarnedAbout(string family)
    {
        var ml = new MLContext(seed: 1);
        var warnings = Warnings(ml);
        var unique = Rows(family, 30);
        var repeated = Enumerable.Range(0, 10).SelectMany(_ => unique).ToList();
        Estimator(ml, family).Fit(ml.Data.LoadFromEnumerable(repeated));
        var copies = Assert.Single(warnings, w => w.Contains("exact copies", StringComparison.Ordinal));
        Assert.Contains("270 of the 300 training rows (90 %) are exact copies of other rows: the rows held out for early stopping " +
                        "and the anomaly threshold then include copies of training rows, so neither sees the model overfit", copies);
        Assert.Contains("remove the duplicates, or pass a validation view of other rows", copies);
    }

    [Fact]
    public void DuplicatesAreCountedExactly()
    {
        var unique = Rows("Rnade", 200, seed: 7).Select(w => w.Features).ToList();
        // 10 % copies is not warned about (more than 10 % is); −0 and +0 are different rows.
        var some = unique.Concat(unique.Take(20)).ToList();
        Assert.Equal(20, TrainingRowChecks.CountDuplicateRows(RowMatrix.FromRows(some)));
        Assert.Null(TrainingRowChecks.DuplicateRowsWarning(RowMatrix.FromRows(unique.Concat(unique.Take(22)).ToList()), heldOut: true));
        Assert.NotNull(TrainingRowChecks.DuplicateRowsWarning(RowMatrix.FromRows(unique.Concat(unique.Take(23)).ToList()), heldOut: true));
        Assert.Equal(0, TrainingRowChecks.CountDuplicateRows(RowMatrix.FromRows(new List<float[]> { new[] { 0f, 1f }, new[] { -0f, 1f } })));
        Assert.Equal(2, TrainingRowChecks.CountDuplicateRows(RowMatrix.FromRows(new List<float[]> { new[] { 1f, 1f }, new[] { 1f, 1f }, new[] { 1f, 1f }, new[] { 1f, 2f } })));
        // Without held-out rows (a validation view) the warning says what copies still do.
        var fromValidation = TrainingRowChecks.DuplicateRowsWarning(RowMatrix.FromRows(unique.Concat(unique).ToList()), heldOut: false);
        Assert.Equal("200 of the 400 training rows (50 %) are exact copies of other rows: the model can fit the repeated rows as spikes " +
                     "(new rows can score far lower); remove the duplicates unless repeats are part of the data", fromValidation);
        // Binary rows repeat by nature: not checked.
        Assert.Null(TrainingRowChecks.DuplicateRowsWarning(RowMatrix.FromRows(Enumerable.Repeat(new[] { 0f, 1f }, 50).ToList()), heldOut: true));
    }
}
