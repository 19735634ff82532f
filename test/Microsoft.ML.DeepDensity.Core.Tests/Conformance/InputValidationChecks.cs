using Microsoft.ML.DeepDensity.Data;
using static Microsoft.ML.DeepDensity.Tests.Conformance.ConformanceAssert;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>Bad input to Fit and to scoring: an exception naming row, column and problem, or a documented behaviour.</summary>
public class InputValidationChecks
{
    private static readonly (float Value, string Word)[] NonFinite =
        { (float.NaN, "NaN"), (float.PositiveInfinity, "+infinity"), (float.NegativeInfinity, "-infinity") };

    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void FitRejectsNonFiniteValuesNamingRowAndColumn(string name)
    {
        var c = ModelCases.Get(name);
        var clean = c.MakeData(60, 7);
        int d = clean.Columns;
        var places = new (int Row, int Column)[] { (0, 0), (37, d - 1), (59, d / 2) };
        for (int i = 0; i < NonFinite.Length; i++)
            foreach (var (row, col) in places)
            {
                var bad = Copy(clean);
                bad[row, col] = NonFinite[i].Value;
                RejectsData(() => c.Fit(new FitRequest(bad, 1)), row, col, NonFinite[i].Word, $"Fit with {NonFinite[i].Value} at ({row},{col})");
            }
    }

    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void FitRejectsBadValidationDataNamingRowAndColumn(string name)
    {
        var c = ModelCases.Get(name);
        if (!c.AcceptsValidation) return; // not applicable: Fit takes no validation set
        var data = c.MakeData(60, 7);
        var valid = c.MakeData(20, 8);
        Assert.NotNull(c.Fit(new FitRequest(data, 1) { Validation = valid }));
        foreach (var (value, word) in NonFinite)
        {
            var bad = Copy(valid);
            bad[13, 2] = value;
            var e = RejectsData(() => c.Fit(new FitRequest(data, 1) { Validation = bad }), 13, 2, word, $"validation data with {value}");
            Assert.Contains("validation", e.Message, StringComparison.OrdinalIgnoreCase);
        }
        if (c.InputDomain == InputDomain.Binary)
        {
            var bad = Copy(valid);
            bad[4, 0] = 0.5f;
            RejectsData(() => c.Fit(new FitRequest(data, 1) { Validation = bad }), 4, 0, "not binary", "validation data with 0.5");
        }
        RejectsData(() => c.Fit(new FitRequest(data, 1) { Validation = new RowMatrix(20, data.Columns + 1) }), -1, -1, "columns", "validation data one column too wide");
        RejectsData(() => c.Fit(new FitRequest(data, 1) { Validation = new RowMatrix(0, data.Columns) }), -1, -1, "no rows", "empty validation data");
    }

    /// <summary>Settings are checked before any work: zero passes (unless zero is the model's automatic length) or a
    /// negative count, and a rate that is not positive (zero only where it is the model's automatic rate), is an <see cref="ArgumentOutOfRangeException"/> naming the setting.</summary>
    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void FitRejectsInvalidSettingsNamingThem(string name)
    {
        var c = ModelCases.Get(name);
        var data = c.MakeData(60, 7);
        foreach (int epochs in c.ZeroEpochsIsAutomatic ? new[] { -3 } : new[] { 0, -3 })
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => c.Fit(new FitRequest(data, 1) { Epochs = epochs }));
            Assert.False(string.IsNullOrEmpty(e.ParamName), "the exception names the setting");
        }
        if (c.HasLearningRate)
            foreach (float lr in c.ZeroLearningRateIsAutomatic ? new[] { -1f, float.NaN, float.PositiveInfinity } : new[] { 0f, -1f, float.NaN, float.PositiveInfinity })
                Assert.Throws<ArgumentOutOfRangeException>(() => c.Fit(new FitRequest(data, 1) { LearningRate = lr }));
    }

    /// <summary>Fit and scoring never write to the caller's arrays, and a model does not keep a reference to its training data.</summary>
    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void FitAndScoringLeaveTheirInputsAlone(string name)
    {
        var c = ModelCases.Get(name);
        var data = c.MakeData(c.TrainingRows, 12345);
        var pristine = Copy(data);
        var model = c.Fit(new FitRequest(data, 1));
        Assert.Equal(pristine.Values, data.Values);
        var scores = model.LogDensity(data);
        Assert.Equal(pristine.Values, data.Values);
        var bytes = model.ToBytes();
        // Overwrite the training data: the model must be unaffected.
        Array.Fill(data.Values, c.InputDomain == InputDomain.Binary ? 1f : 1e20f);
        Assert.Equal(bytes, model.ToBytes());
        BitIdentical(scores, model.LogDensity(pristine), "scores after the training data was overwritten");
        // Scoring a slice of a larger buffer reads only that slice.
        int d = model.Dimension;
        var padded = new float[(pristine.Rows + 2) * d];
        Array.Fill(padded, float.NaN);
        pristine.AsSpan().CopyTo(padded.AsSpan(d));
        var fromSlice = new float[pristine.Rows];
        model.LogDensity(padded.AsSpan(d, pristine.Rows * d), fromSlice);
        BitIdentical(scores, fromSlice, "scores of a slice");
    }

    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void ScoringRejectsNonFiniteValuesNamingRowAndColumn(string name)
    {
        var f = ModelCases.Fitted(name);
        var rows = f.Data.Slice(0, 40);
        int d = rows.Columns;
        foreach (var (value, word) in NonFinite)
        {
            var bad = Copy(rows);
            bad[23, d - 1] = value;
            RejectsData(() => f.Model.LogDensity(bad), 23, d - 1, word, $"LogDensity(RowMatrix) with {value}");
            var dest = new float[40];
            var se = new float[40];
            RejectsData(() => f.Model.LogDensity(bad.AsSpan(), dest, se), 23, d - 1, word, $"LogDensity(span) with {value}");
            RejectsData(() => f.Model.AverageLogDensity(bad), 23, d - 1, word, $"AverageLogDensity with {value}");
        }
        // Row numbers are global, not per scoring block.
        var many = f.Case.MakeData(1500, 3);
        many[1299, 0] = float.NaN;
        RejectsData(() => f.Model.LogDensity(many), 1299, 0, "NaN", "NaN in row 1299 of 1500");
    }

    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void BinaryModelsRejectNonBinaryValuesInFitAndScoring(string name)
    {
        var c = ModelCases.Get(name);
        if (c.InputDomain != InputDomain.Binary) return; // not applicable: real models accept any finite value
        var clean = c.MakeData(60, 7);
        foreach (var v in new[] { 0.5f, 2f, -1f, 1e-7f })
        {
            var bad = Copy(clean);
            bad[11, 3] = v;
            RejectsData(() => c.Fit(new FitRequest(bad, 1)), 11, 3, "not binary", $"Fit with {v}");
        }
        var f = ModelCases.Fitted(name);
        var rows = Copy(f.Data.Slice(0, 20));
        rows[19, 0] = 0.5f;
        RejectsData(() => f.Model.LogDensity(rows), 19, 0, "not binary", "LogDensity with 0.5");
    }

    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void FitRejectsEmptyData(string name)
    {
        var c = ModelCases.Get(name);
        RejectsData(() => c.Fit(new FitRequest(new RowMatrix(0, 4), 1)), -1, -1, "no rows", "Fit with no rows");
        RejectsData(() => c.Fit(new FitRequest(new RowMatrix(10, 0), 1)), -1, -1, "no columns", "Fit with no columns");
        Assert.Throws<ArgumentNullException>(() => c.Fit(new FitRequest(null!, 1)));
    }

    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void ScoringRejectsWrongWidthAndShortDestinations(string name)
    {
        var f = ModelCases.Fitted(name);
        int d = f.Model.Dimension;
        RejectsData(() => f.Model.LogDensity(new RowMatrix(3, d + 1)), -1, -1, "columns", "a matrix one column too wide");
        RejectsData(() => f.Model.LogDensity(new RowMatrix(3, d - 1)), -1, -1, "columns", "a matrix one column too narrow");
        RejectsData(() => f.Model.LogDensity(new float[2 * d + 1], new float[3]), -1, -1, "whole number of rows", "a span that is not whole rows");
        Assert.Throws<ArgumentException>(() => f.Model.LogDensity(new float[3 * d], new float[2]));
        Assert.Throws<ArgumentException>(() => f.Model.LogDensity(new float[3 * d], new float[3], new float[2]));
        Assert.Throws<ArgumentException>(() => f.Model.Sample(3, 1, new float[3 * d - 1]));
        // A negative count is named as the count (it was RowMatrix's bare "rows" out of range).
        foreach (var negative in new Action[] { () => f.Model.Sample(-1, 1), () => f.Model.Sample(-1, 1, new float[d]) })
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(negative);
            Assert.Equal("count", e.ParamName);
            Assert.Contains("Sample count must be non-negative (got -1)", e.Message);
        }
        // A draw larger than an array: a clear error at once, not an overflow or an out-of-memory crash.
        Assert.Throws<ArgumentOutOfRangeException>(() => f.Model.Sample(int.MaxValue, 1));
        Assert.Throws<ArgumentNullException>(() => f.Model.LogDensity((RowMatrix)null!));
        // The importance-sampled models' bound of a matrix checks its width as LogDensity does: it read the matrix's
        // values as rows of the model's width, so a matrix of half the width gave half its bounds from rows made of two
        // rows each and zeros for the rest (AverageBound a wrong mean, silently), and a wider one a destination-size error.
        if (f.Model is Microsoft.ML.DeepDensity.Estimation.ImportanceSampledModel sampled && d % 2 == 0)
        {
            RejectsData(() => sampled.Bound(new RowMatrix(4, d / 2), 1, 1), -1, -1, "columns", "Bound of a matrix of half the width");
            RejectsData(() => sampled.AverageBound(new RowMatrix(4, d / 2), 1, 1), -1, -1, "columns", "AverageBound of a matrix of half the width");
            RejectsData(() => sampled.Bound(new RowMatrix(4, 2 * d), 1, 1), -1, -1, "columns", "Bound of a matrix of twice the width");
        }
    }

    /// <summary>Documented: scoring zero rows returns zero results; the average of zero rows is an error (not NaN).</summary>
    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void ScoringNoRowsGivesNoResultsAndAveragingNoRowsThrows(string name)
    {
        var f = ModelCases.Fitted(name);
        Assert.Empty(f.Model.LogDensity(new RowMatrix(0, f.Model.Dimension)));
        f.Model.LogDensity(ReadOnlySpan<float>.Empty, Span<float>.Empty);
        Assert.Equal(0, f.Model.Sample(0, 1).Rows);
        RejectsData(() => f.Model.AverageLogDensity(new RowMatrix(0, f.Model.Dimension)), -1, -1, "no rows", "AverageLogDensity of no rows");
        // The importance-sampled models' bound likewise: AverageBound of no rows returned NaN (0 / 0); a decoder-mean draw
        // larger than an array threw OverflowException where Sample names the count.
        if (f.Model is Microsoft.ML.DeepDensity.Estimation.ImportanceSampledModel sampled)
        {
            Assert.Empty(sampled.Bound(new RowMatrix(0, f.Model.Dimension), 3, 1));
            RejectsData(() => sampled.AverageBound(new RowMatrix(0, f.Model.Dimension), 3, 1), -1, -1, "no rows", "AverageBound of no rows");
            Assert.Equal(0, sampled.DecoderMean(0, 1).Rows);
            Assert.Equal("count", Assert.Throws<ArgumentOutOfRangeException>(() => sampled.DecoderMean(int.MaxValue, 1)).ParamName);
        }
    }

    /// <summary>
    /// Documented: fewer rows than the case's minimum (every row family's, 2, by default) are refused with a clear
    /// exception; a case declaring 1 fits a single row (no validation split, the row's columns count as constant) and
    /// scores finite values.
    /// </summary>
    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void SingleRowFitsAndScoresFiniteOrIsRejected(string name)
    {
        var c = ModelCases.Get(name);
        var data = c.MakeData(40, 3);
        var one = data.Slice(5, 1);
        if (c.MinimumTrainingRows > 1)
        {
            RejectsData(() => c.Fit(new FitRequest(one, 1)), -1, -1, "rows", "Fit with a single row");
            RejectsData(() => c.Fit(new FitRequest(data.Slice(0, c.MinimumTrainingRows - 1), 1)), -1, -1, "rows", "Fit below the minimum");
            return;
        }
        var model = c.Fit(new FitRequest(one, 1));
        Assert.Equal(data.Columns, model.Dimension);
        AllFinite(model.LogDensity(one), "log-density of the single training row");
        FiniteOrNegativeInfinity(model.LogDensity(data), "log-density of other rows");
        AllFinite(model.Sample(20, 2).AsSpan(), "samples of a one-row model");
    }

    /// <summary>
    /// Documented: constant columns (including all-identical rows) fit; the model puts a narrow conditional on the
    /// constant value, so training rows score finite values and a row that breaks the constant scores lower.
    /// </summary>
    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void ConstantColumnsFitAndScoreFinite(string name)
    {
        var c = ModelCases.Get(name);
        var data = c.MakeData(c.TrainingRows, 4);
        float constant = c.InputDomain == InputDomain.Binary ? 0f : 3.25f;
        float other = c.InputDomain == InputDomain.Binary ? 1f : 13.25f;
        for (int r = 0; r < data.Rows; r++) data[r, 1] = constant;
        // A few more passes than the standard 2, so that even a slow learner has moved towards the constant.
        var model = c.Fit(new FitRequest(data, 1) { Epochs = 10 });
        var ld = model.LogDensity(data);
        AllFinite(ld, "log-density of training rows with a constant column");
        var broken = data.Slice(0, 20);
        for (int r = 0; r < broken.Rows; r++) broken[r, 1] = other;
        var ldBroken = model.LogDensity(broken);
        FiniteOrNegativeInfinity(ldBroken, "log-density of rows breaking the constant");
        double mean = 0, meanBroken = 0;
        for (int r = 0; r < broken.Rows; r++) { mean += ld[r]; meanBroken += ldBroken[r]; }
        Assert.True(meanBroken < mean, $"breaking the constant column scores {meanBroken / broken.Rows} on average, not lower than {mean / broken.Rows}");

        // Every row identical: every column constant.
        var same = new RowMatrix(50, data.Columns);
        for (int r = 0; r < same.Rows; r++) data.Row(7).CopyTo(same.Row(r));
        var degenerate = c.Fit(new FitRequest(same, 1));
        AllFinite(degenerate.LogDensity(same), "log-density of all-identical training rows");
    }
}
