using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Transforms;
using Xunit;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// A NaN or infinite value in the column an estimator reads may have been made by an earlier stage of the pipeline —
/// NormalizeRobustScaling divides a slot that is constant in the data it was fitted on by zero — and then it is nowhere
/// in the loaded file. The error named the column and the row but left the user searching the file; it now also says
/// that an earlier stage that made the column made the value (conditionally: the estimator cannot tell which stage made
/// a column), in Fit and in scoring alike.
/// </summary>
public class NonFiniteInputHintTests
{
    private const string Hint = "if an earlier pipeline stage made column 'Features', the value comes from it " +
        "(e.g. NormalizeRobustScaling divides by zero a slot that is constant in the data it was fitted on, giving NaN or ±infinity)";

    /// <summary>What follows <see cref="Hint"/> for a NaN (not for ±infinity): a NaN may be a missing value of the data.</summary>
    private const string MissingValueHint = "a NaN is also how ML.NET marks a missing value (LoadFromTextFile reads a field that " +
        "is not a number as NaN, and an empty field too with MissingRealsAsNaNs): replace missing values before this stage, " +
        "e.g. ml.Transforms.ReplaceMissingValues(\"Features\"), or drop their rows with ml.Data.FilterRowsByMissingValues";

    /// <summary>The raw rows with column C constant: after Concatenate(A, B, C, E), slot 2 of 'Features'.</summary>
    private static List<RawRow> ConstantC(int n, int seed = 1)
    {
        var rows = TestData.Raw(n, seed);
        foreach (var r in rows) r.C = 4f;
        return rows;
    }

    [Fact]
    public void NaN_made_by_a_normalizer_on_a_constant_column_names_the_column_the_row_and_the_earlier_stage()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(ConstantC(60));
        var pipeline = ml.Transforms.Concatenate("Features", nameof(RawRow.A), nameof(RawRow.B), nameof(RawRow.C), nameof(RawRow.E))
            .Append(ml.Transforms.NormalizeRobustScaling("Features"))
            .Append(ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.ModelOptions.MaxEpochs = 1)));
        var e = Assert.Throws<DataValidationException>(() => pipeline.Fit(data));
        Assert.Equal("Features", e.DataSource);
        Assert.Equal(0, e.Row);
        Assert.Equal(2, e.Column);
        // Concatenate names the slots after its scalar inputs: slot 2 is column C.
        Assert.Equal($"Invalid data at 'Features', row 0, column 2: value is NaN in the training data (slot 2 of 'Features' is 'C'); {Hint}; {MissingValueHint}.", e.Message);
    }

    /// <summary>The same at scoring: a model fitted on clean rows scores a view whose normalizer (fitted where C was
    /// constant) turns another value of C into +infinity; whole sequences and validation data say it too.</summary>
    [Fact]
    public void The_hint_follows_every_refusal_of_a_non_finite_input_value()
    {
        var ml = new MLContext(seed: 1);
        var concat = ml.Transforms.Concatenate("Features", nameof(RawRow.A), nameof(RawRow.B), nameof(RawRow.C), nameof(RawRow.E));
        var model = concat.Append(ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.ModelOptions.MaxEpochs = 1)))
            .Fit(ml.Data.LoadFromEnumerable(TestData.Raw(60)));
        var normalizer = concat.Append(ml.Transforms.NormalizeRobustScaling("Features")).Fit(ml.Data.LoadFromEnumerable(ConstantC(60)));
        var test = TestData.Raw(5, seed: 2);   // C varies: (C − 4) / 0 is ±infinity
        var scored = model.LastTransformer.Transform(normalizer.Transform(ml.Data.LoadFromEnumerable(test)));
        var e = Assert.Throws<DataValidationException>(() => scored.GetColumn<float>("LogDensity").ToList());
        Assert.Equal(0, e.Row);
        Assert.Equal(2, e.Column);
        Assert.Matches(@"value is [+-]infinity \(slot 2 of 'Features' is 'C'\); if an earlier pipeline stage made column 'Features'", e.Message);
        Assert.DoesNotContain("missing value", e.Message);   // an infinity is no missing value

        // Whole sequences (the estimator's own reader), naming the data set before the hint.
        var sequences = ml.Data.LoadFromEnumerable(new[] { new RnnRnadeColumns.SequenceRow { Features = new[] { 1f, 2f, float.NaN, 4f } } });
        var s = Assert.Throws<DataValidationException>(() => ml.DensityEstimation.RnnRnade("Features", 2, maxEpochs: 1).Fit(sequences));
        Assert.Equal($"frame 1: value is NaN in the training data; {Hint}; {MissingValueHint}", s.Problem);

        // A validation view's value: the data set, then the hint.
        var valid = TestData.Blob(20);
        valid[3].Features[1] = float.PositiveInfinity;
        var v = Assert.Throws<DataValidationException>(() => ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.ModelOptions.MaxEpochs = 1))
            .Fit(ml.Data.LoadFromEnumerable(TestData.Blob(50)), ml.Data.LoadFromEnumerable(valid)));
        Assert.Equal(3, v.Row);
        Assert.Equal($"value is +infinity in the validation data; {Hint}", v.Problem);

        // A binary model's refusal of 0.34 is no NaN: no hint.
        var binary = Assert.Throws<DataValidationException>(() => ml.DensityEstimation.Rbm(maxEpochs: 1).Fit(ml.Data.LoadFromEnumerable(TestData.Blob(20))));
        Assert.DoesNotContain("earlier pipeline stage", binary.Message);
    }
    /// <summary>A CSV with an empty field, read with <c>MissingRealsAsNaNs = true</c> as docs/mlnet.md advises for files with
    /// gaps: the NaN is in the data, not made by a stage, and the error said only that an earlier stage (such as
    /// NormalizeRobustScaling) may have made it. It now also says that a NaN is ML.NET's missing value and how to replace
    /// it or drop its rows, in Fit and in scoring (live and in a PredictionEngine), and the replacement it names works.</summary>
    [Fact]
    public void A_NaN_from_an_empty_csv_field_says_how_to_replace_missing_values_and_the_advice_works()
    {
        var ml = new MLContext(seed: 1);
        string dir = TestTemp.Directory("dd-missing");
        string path = Path.Combine(dir, "gaps.csv");
        var lines = new List<string> { "A,B,C" };
        var r = new Random(3);
        for (int i = 0; i < 60; i++)
            lines.Add(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{r.NextDouble()},{(i == 7 ? "" : r.NextDouble().ToString("R", System.Globalization.CultureInfo.InvariantCulture))},{r.NextDouble()}"));
        File.WriteAllLines(path, lines);
        var data = ml.Data.LoadFromTextFile<CsvRow>(path, new TextLoader.Options { HasHeader = true, Separators = new[] { ',' }, MissingRealsAsNaNs = true });
        var concat = ml.Transforms.Concatenate("Features", nameof(CsvRow.A), nameof(CsvRow.B), nameof(CsvRow.C));
        var rnade = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.ModelOptions.MaxEpochs = 1));

        var fit = Assert.Throws<DataValidationException>(() => concat.Append(rnade).Fit(data));
        Assert.Equal(7, fit.Row);
        Assert.Equal(1, fit.Column);
        Assert.Equal($"value is NaN in the training data (slot 1 of 'Features' is 'B'); {Hint}; {MissingValueHint}", fit.Problem);

        // The replacement the message names, inserted before the estimator, trains on the same file.
        var model = concat.Append(ml.Transforms.ReplaceMissingValues("Features")).Append(rnade).Fit(data);
        Assert.Equal(60, model.Transform(data).GetColumn<float>("LogDensity").Count(float.IsFinite));

        // Scoring the gap with a model that has no replacement stage: the cursor and a PredictionEngine say it too.
        var plain = concat.Append(rnade).Fit(ml.Data.FilterRowsByMissingValues(data, nameof(CsvRow.A), nameof(CsvRow.B), nameof(CsvRow.C)));
        var scoring = Assert.Throws<DataValidationException>(() => plain.Transform(data).GetColumn<float>("LogDensity").ToList());
        Assert.Equal(7, scoring.Row);
        Assert.EndsWith($"; {MissingValueHint}", scoring.Problem);
        var engine = ml.Model.CreatePredictionEngine<CsvRow, LogDensityOnly>(plain);
        var one = Assert.Throws<DataValidationException>(() => engine.Predict(new CsvRow { A = 0.5f, B = float.NaN, C = 0.5f }));
        Assert.EndsWith($"; {MissingValueHint}", one.Problem);
    }

    /// <summary>A new user's CSV (a new-user trial): a header whose names have spaces, a cell that is not a number. ML.NET
    /// reads the cell as NaN whatever MissingRealsAsNaNs says, and the error said "row 100, column 1": slot 1 of the
    /// concatenated vector, which the user looked for as the file's column 1 (another column), and its hint blamed an
    /// empty field read with MissingRealsAsNaNs. The error now names the slot as the file's header does, and the hint
    /// says a field that is not a number is read as NaN.</summary>
    [Fact]
    public void A_cell_that_is_not_a_number_is_named_by_the_header_of_its_column()
    {
        var ml = new MLContext(seed: 1);
        string path = Path.Combine(TestTemp.Directory("dd-badcell"), "badcell.csv");
        var lines = new List<string> { "id,x 1,x 2,x 3" };
        var r = new Random(5);
        string V() => r.NextDouble().ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        for (int i = 0; i < 60; i++) lines.Add($"{i},{V()},{(i == 40 ? "abc" : V())},{V()}");
        File.WriteAllLines(path, lines);
        // Without MissingRealsAsNaNs: the cell that is not a number is NaN all the same. The header names the range's slots.
        var data = ml.Data.LoadFromTextFile(path, new TextLoader.Options
        {
            HasHeader = true, Separators = new[] { ',' },
            Columns = new[] { new TextLoader.Column("Features", DataKind.Single, 1, 3) },
        });
        var rnade = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.ModelOptions.MaxEpochs = 1));
        var fit = Assert.Throws<DataValidationException>(() => rnade.Fit(data));
        Assert.Equal(40, fit.Row);
        Assert.Equal(1, fit.Column);
        Assert.Equal($"value is NaN in the training data (slot 1 of 'Features' is 'x 2'); {Hint}; {MissingValueHint}", fit.Problem);

        // Scoring names it too, and a vector without slot names keeps the plain words.
        var model = rnade.Fit(ml.Data.FilterRowsByMissingValues(data, "Features"));
        var scoring = Assert.Throws<DataValidationException>(() => model.Transform(data).GetColumn<float>("LogDensity").ToList());
        Assert.Equal(40, scoring.Row);
        Assert.StartsWith("value is NaN (slot 1 of 'Features' is 'x 2'); ", scoring.Problem);
        var unnamed = TestData.Blob(20);
        unnamed[4].Features[1] = float.NaN;
        var plain = Assert.Throws<DataValidationException>(() => rnade.Fit(ml.Data.LoadFromEnumerable(unnamed)));
        Assert.Equal($"value is NaN in the training data; {Hint}; {MissingValueHint}", plain.Problem);
    }

    public sealed class CsvRow
    {
        [LoadColumn(0)] public float A { get; set; }
        [LoadColumn(1)] public float B { get; set; }
        [LoadColumn(2)] public float C { get; set; }
    }

    public sealed class LogDensityOnly
    {
        public float LogDensity { get; set; }
    }
}
