using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// Frame rows ordered by a time column, as time-series tables are: a DateTime, DateTimeOffset or TimeSpan order column
/// orders the rows of a sequence by its ticks (a DateTimeOffset by its UTC instant). Only the order within a sequence
/// reaches the model, so a model fitted on times is the model fitted on the step numbers, bit for bit; it saves, loads
/// and scores through a PredictionEngine like any other. Before, a time column was refused as "must be numeric".
/// </summary>
public class FrameRowTimeOrderTests
{
    public sealed class StepFrame { [VectorType(2)] public float[] Features = new float[2]; public string SequenceId = ""; public int Order; }
    public sealed class TimeFrame { [VectorType(2)] public float[] Features = new float[2]; public string SequenceId = ""; public DateTime Order; }
    public sealed class OffsetFrame { [VectorType(2)] public float[] Features = new float[2]; public string SequenceId = ""; public DateTimeOffset Order; }
    public sealed class ElapsedFrame { [VectorType(2)] public float[] Features = new float[2]; public string SequenceId = ""; public TimeSpan Order; }
    public sealed class TextOrderFrame { [VectorType(2)] public float[] Features = new float[2]; public string SequenceId = ""; public string Order = ""; }
    public sealed class Score { public float LogDensity; }

    private static readonly DateTime Start = new(2026, 3, 29, 0, 30, 0, DateTimeKind.Utc);

    /// <summary>Four sensors, 12 readings each a minute apart, in an order that interleaves them and reverses their steps
    /// (training sorts each sequence by its order column).</summary>
    private static List<(float[] Frame, string Id, int Step)> Readings()
    {
        var rng = new RandomStream(9);
        var rows = new List<(float[], string, int)>();
        for (int step = 11; step >= 0; step--)
            foreach (var id in new[] { "north", "south", "east", "west" })
            {
                var frame = new float[2];
                rng.FillGaussian(frame);
                frame[0] += MathF.Sin(step * 0.5f);
                rows.Add((frame, id, step));
            }
        return rows;
    }

    private static IEstimator<ITransformer> Estimator(MLContext ml)
        => ml.DensityEstimation.RnnRnade("Features", "SequenceId", "Order", hiddenUnits: 4, recurrentUnits: 4, maxEpochs: 3);

    /// <summary>The rows in time order (how a stream is scored): step 0 of every sensor, then step 1, ...</summary>
    private static IEnumerable<(float[] Frame, string Id, int Step)> InTimeOrder(List<(float[] Frame, string Id, int Step)> rows)
        => rows.OrderBy(r => r.Step);

    [Fact]
    public void TimeOrderColumns_GiveTheModelOfTheStepNumbers()
    {
        var ml = new MLContext(seed: 1);
        var rows = Readings();
        var steps = ml.Data.LoadFromEnumerable(rows.Select(r => new StepFrame { Features = r.Frame, SequenceId = r.Id, Order = r.Step }));
        var reference = Estimator(ml).Fit(steps).Transform(
            ml.Data.LoadFromEnumerable(InTimeOrder(rows).Select(r => new StepFrame { Features = r.Frame, SequenceId = r.Id, Order = r.Step })))
            .GetColumn<float>("LogDensity").ToArray();
        Assert.All(reference, v => Assert.True(float.IsFinite(v)));

        // The same instants in three forms; the DateTimeOffsets of each sensor carry their own offset from UTC.
        var offsets = new Dictionary<string, TimeSpan> { ["north"] = TimeSpan.FromHours(2), ["south"] = TimeSpan.FromHours(-5), ["east"] = TimeSpan.Zero, ["west"] = TimeSpan.FromHours(9.5) };
        DateTime At(int step) => Start.AddMinutes(step);
        DateTimeOffset Local(string id, int step) => new DateTimeOffset(At(step)).ToOffset(offsets[id]);
        var forms = new (string Name, Func<IEnumerable<(float[] Frame, string Id, int Step)>, IDataView> View)[]
        {
            ("DateTime", rs => ml.Data.LoadFromEnumerable(rs.Select(r => new TimeFrame { Features = r.Frame, SequenceId = r.Id, Order = At(r.Step) }))),
            ("DateTimeOffset", rs => ml.Data.LoadFromEnumerable(rs.Select(r => new OffsetFrame { Features = r.Frame, SequenceId = r.Id, Order = Local(r.Id, r.Step) }))),
            ("TimeSpan", rs => ml.Data.LoadFromEnumerable(rs.Select(r => new ElapsedFrame { Features = r.Frame, SequenceId = r.Id, Order = TimeSpan.FromSeconds(90 * r.Step) }))),
        };
        foreach (var (name, view) in forms)
        {
            var estimator = Estimator(ml);
            var shape = name switch
            {
                "DateTime" => SchemaShapeFactory.FromType<TimeFrame>(ml),
                "DateTimeOffset" => SchemaShapeFactory.FromType<OffsetFrame>(ml),
                _ => SchemaShapeFactory.FromType<ElapsedFrame>(ml),
            };
            Assert.Contains(estimator.GetOutputSchema(shape), c => c.Name == "LogDensity");
            var model = estimator.Fit(view(rows));
            var scored = model.Transform(view(InTimeOrder(rows))).GetColumn<float>("LogDensity").ToArray();
            Assert.True(reference.SequenceEqual(scored), name);
        }

        // A DateTime model through a zip: loaded in a new context both ways, and a PredictionEngine fed the rows in time order.
        var timeModel = Estimator(ml).Fit(forms[0].View(rows));
        var path = Path.Combine(Path.GetTempPath(), $"dd-time-order-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(timeModel, forms[0].View(rows).Schema, path);
            var other = new MLContext();
            foreach (var loaded in new[] { other.Model.LoadWithLiveDensityModels(path, out _), other.Model.Load(path, out _) })
            {
                Assert.True(reference.SequenceEqual(loaded.Transform(forms[0].View(InTimeOrder(rows))).GetColumn<float>("LogDensity")));
                var engine = other.Model.CreatePredictionEngine<TimeFrame, Score>(loaded);
                var streamed = InTimeOrder(rows).Select(r => engine.Predict(new TimeFrame { Features = r.Frame, SequenceId = r.Id, Order = At(r.Step) }).LogDensity);
                Assert.True(reference.SequenceEqual(streamed));
            }
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void TimeOrderColumns_RefuseARepeatedInstant_AndOtherTypesStillNameTheTimes()
    {
        var ml = new MLContext(seed: 1);
        var rows = Readings().Select(r => new TimeFrame { Features = r.Frame, SequenceId = r.Id, Order = Start.AddMinutes(r.Step) }).ToList();
        rows[9].Order = rows[1].Order;   // "south" at step 11 and step 9: the same instant twice in one sequence
        Assert.Equal(rows[1].SequenceId, rows[9].SequenceId);
        var e = Assert.Throws<DataValidationException>(() => Estimator(ml).Fit(ml.Data.LoadFromEnumerable(rows)));
        Assert.Equal("Order", e.DataSource);
        Assert.Contains("rows 1 and 9", e.Message);

        var text = ml.Data.LoadFromEnumerable(new[] { new TextOrderFrame { SequenceId = "a", Order = "2026-03-29" } });
        Assert.Contains("Order column 'Order' must be numeric or a time (DateTime, DateTimeOffset, TimeSpan)",
            Assert.ThrowsAny<ArgumentException>(() => Estimator(ml).Fit(text)).Message);
        Assert.Contains("Order column 'Order' must be numeric or a time (DateTime, DateTimeOffset, TimeSpan)",
            Assert.ThrowsAny<ArgumentException>(() => Estimator(ml).GetOutputSchema(SchemaShapeFactory.FromType<TextOrderFrame>(ml))).Message);
    }

    /// <summary>One column named as both sequence id and order was accepted, and every row became a one-frame sequence
    /// of its own (found by a new-user trial); the options refuse it, as ddml does.</summary>
    [Fact]
    public void OneColumnAsBothIdAndOrderIsRefused()
    {
        var ml = new MLContext(seed: 1);
        var e = Assert.ThrowsAny<ArgumentException>(() => ml.DensityEstimation.RnnRnade("Features", "Order", "Order"));
        Assert.Contains("Input column names must be distinct: SequenceIdColumnName and OrderColumnName both name 'Order' " +
                        "(got FeatureColumnName = Features, SequenceIdColumnName = Order, OrderColumnName = Order)", e.Message);
        Assert.Equal("OrderColumnName", e.ParamName);
        Assert.ThrowsAny<ArgumentException>(() => ml.DensityEstimation.RnnRnade(new RnnRnadeFrameEstimator.Options { SequenceIdColumnName = "Features" }));
    }

    /// <summary>Two outputs named alike: the message names both settings and the column, and ParamName is the later
    /// setting (it was "Output column names must be distinct (got LogDensity, LogDensity, PredictedLabel)", no ParamName).</summary>
    [Fact]
    public void TwoOutputsNamedAlikeAreNamedBySetting()
    {
        var ml = new MLContext(seed: 1);
        var e = Assert.ThrowsAny<ArgumentException>(() => ml.DensityEstimation.Rnade(new RnadeEstimator.Options { ScoreColumnName = "LogDensity" }));
        Assert.Contains("Output column names must be distinct: LogDensityColumnName and ScoreColumnName both name 'LogDensity'", e.Message);
        Assert.Equal("ScoreColumnName", e.ParamName);
        e = Assert.ThrowsAny<ArgumentException>(() => ml.DensityEstimation.RnnRnade(new RnnRnadeFrameEstimator.Options { PredictedLabelColumnName = "Score" }));
        Assert.Contains("ScoreColumnName and PredictedLabelColumnName both name 'Score'", e.Message);
        Assert.Equal("PredictedLabelColumnName", e.ParamName);
    }

    /// <summary>Two rows of a sequence at the same time: the error gave the time as the Double the chain reads it as
    /// ("order 6.3839664E+17", a user's trial); it now gives it as the column holds it, and a number in the invariant
    /// culture.</summary>
    [Fact]
    public void ADuplicateTimeIsNamedAsATime()
    {
        var ml = new MLContext(seed: 1);
        var rows = Readings().Select(r => new TimeFrame { Features = r.Frame, SequenceId = r.Id, Order = Start.AddMinutes(r.Step) }).ToList();
        rows[5].Order = rows[1].Order; // "south" at step 11 and at step 10: the same minute twice
        Assert.Equal(rows[5].SequenceId, rows[1].SequenceId);
        var e = Assert.Throws<DataValidationException>(() => Estimator(ml).Fit(ml.Data.LoadFromEnumerable(rows)));
        Assert.Contains("sequence 'south' has two rows with order 2026-03-29 00:41:00 (rows ", e.Message);

        Assert.Equal("2026-03-29 00:30:00.25 UTC", RnnRnadeFrameEstimator.OrderText(new DateTimeOffset(Start).AddMilliseconds(250).UtcTicks, DateTimeOffsetDataViewType.Instance));
        Assert.Equal("01:30:00", RnnRnadeFrameEstimator.OrderText(TimeSpan.FromMinutes(90).Ticks, TimeSpanDataViewType.Instance));
        Assert.Equal("1.5", RnnRnadeFrameEstimator.OrderText(1.5, NumberDataViewType.Double));
        var saved = System.Globalization.CultureInfo.CurrentCulture;
        try
        {
            System.Globalization.CultureInfo.CurrentCulture = new System.Globalization.CultureInfo("de-DE");
            Assert.Equal("1.5", RnnRnadeFrameEstimator.OrderText(1.5, null));
        }
        finally { System.Globalization.CultureInfo.CurrentCulture = saved; }
    }
    /// <summary>A row whose time goes back within its sequence, at scoring: the error gave both times as the Doubles the
    /// chain reads them as ("order 6.3839664E+17 after 6.3839688E+17"), since the scorer in the chain sees only those and a
    /// saved model does not record the column's type. The transformer knows the type from the input it scores, so the
    /// times read as the column holds them: live, through a PredictionEngine, and loaded with LoadWithLiveDensityModels.</summary>
    [Fact]
    public void ATimeGoingBackAtScoringIsNamedAsATime()
    {
        var ml = new MLContext(seed: 1);
        var rows = Readings();
        TimeFrame Frame((float[] Frame, string Id, int Step) r) => new() { Features = r.Frame, SequenceId = r.Id, Order = Start.AddMinutes(r.Step) };
        var model = Estimator(ml).Fit(ml.Data.LoadFromEnumerable(rows.Select(Frame)));
        // In time order, but "south" has its step 6 where its step 4 was: its step 5 then comes after its step 6.
        var ordered = InTimeOrder(rows).ToList();
        int four = ordered.FindIndex(r => r.Id == "south" && r.Step == 4), six = ordered.FindIndex(r => r.Id == "south" && r.Step == 6);
        (ordered[four], ordered[six]) = (ordered[six], ordered[four]);
        int five = ordered.FindIndex(r => r.Id == "south" && r.Step == 5);
        const string Expected = "sequence 'south' has order 2026-03-29 00:35:00 after 2026-03-29 00:36:00: the rows of a sequence must arrive in increasing order";

        // Through a cursor: ML.NET's splitter, which reads the scorer on a worker, wraps the error in its
        // InvalidOperationExceptions (as before); the error inside them is restated.
        static DataValidationException Inside(Exception e)
        {
            while (e is not DataValidationException && e.InnerException is { } inner) e = inner;
            return Assert.IsType<DataValidationException>(e);
        }
        var e = Inside(Assert.ThrowsAny<InvalidOperationException>(() =>
            model.Transform(ml.Data.LoadFromEnumerable(ordered.Select(Frame))).GetColumn<float>("LogDensity").ToArray()));
        Assert.Contains(Expected, e.Message);
        Assert.Equal((five, "Order"), ((int)e.Row, e.DataSource));
        Assert.DoesNotContain("E+17", e.Message);

        var engine = ml.Model.CreatePredictionEngine<TimeFrame, Score>(model);
        e = Assert.Throws<DataValidationException>(() => { foreach (var r in ordered) engine.Predict(Frame(r)); });
        Assert.Contains(Expected, e.Message);
        Assert.Contains("in the input row of a PredictionEngine", e.Message);

        var path = Path.Combine(Path.GetTempPath(), $"dd-time-back-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(model, ml.Data.LoadFromEnumerable(rows.Select(Frame)).Schema, path);
            var loaded = new MLContext().Model.LoadWithLiveDensityModels(path, out _);
            var loadedEngine = new MLContext().Model.CreatePredictionEngine<TimeFrame, Score>(loaded);
            e = Assert.Throws<DataValidationException>(() => { foreach (var r in ordered) loadedEngine.Predict(Frame(r)); });
            Assert.Contains(Expected, e.Message);
        }
        finally { File.Delete(path); }

        // A numeric order column keeps its numbers (in the invariant culture).
        var steps = Estimator(ml).Fit(ml.Data.LoadFromEnumerable(rows.Select(r => new StepFrame { Features = r.Frame, SequenceId = r.Id, Order = r.Step })));
        var stepEngine = ml.Model.CreatePredictionEngine<StepFrame, Score>(steps);
        e = Assert.Throws<DataValidationException>(() => { foreach (var r in ordered) stepEngine.Predict(new StepFrame { Features = r.Frame, SequenceId = r.Id, Order = r.Step }); });
        Assert.Contains("sequence 'south' has order 5 after 6:", e.Message);
    }
}
