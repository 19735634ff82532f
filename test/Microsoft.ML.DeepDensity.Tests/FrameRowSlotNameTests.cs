using System.Globalization;
using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Xunit;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// RNN-RNADE on frame rows read from a CSV whose header names the frame's columns: a cell that is not a number was refused
/// as "row 13, column 1" (slot 1 of the frame vector, which a user looks for as the file's column 1), where the row
/// models say "(slot 1 of 'Features' is 'x 2')" (<see cref="NonFiniteInputHintTests"/>). Fit, Transform and a
/// PredictionEngine given the slot names now name the slot the same way, before the hint.
/// </summary>
public class FrameRowSlotNameTests
{
    private const string Slot = "(slot 1 of 'Features' is 'x 2')";

    private static IDataView Frames(MLContext ml, out string hint)
    {
        string path = Path.Combine(TestTemp.Directory("dd-frame-slot"), "frames.csv");
        var lines = new List<string> { "id,t,x 1,x 2" };
        var r = new Random(5);
        string V() => r.NextDouble().ToString("R", CultureInfo.InvariantCulture);
        for (int s = 0; s < 6; s++)
            for (int t = 0; t < 5; t++)
                lines.Add(string.Create(CultureInfo.InvariantCulture, $"{s},{t},{V()},{(s == 2 && t == 3 ? "abc" : V())}"));
        File.WriteAllLines(path, lines);
        hint = "; if an earlier pipeline stage made column 'Features'";
        return ml.Data.LoadFromTextFile(path, new TextLoader.Options
        {
            HasHeader = true, Separators = new[] { ',' },
            Columns = new[]
            {
                new TextLoader.Column("SequenceId", DataKind.Single, 0), new TextLoader.Column("Order", DataKind.Single, 1),
                new TextLoader.Column("Features", DataKind.Single, 2, 3),
            },
        });
    }

    private static DataValidationException Innermost(Exception e)
    {
        DataValidationException? found = null;
        for (var x = e; x is not null; x = x.InnerException) if (x is DataValidationException d) found = d;
        return found ?? throw new Xunit.Sdk.XunitException("no DataValidationException in " + e);
    }

    [Fact]
    public void Fit_and_Transform_name_the_slot_of_a_bad_frame_value()
    {
        var ml = new MLContext(seed: 1);
        var data = Frames(ml, out string hint);
        var estimator = ml.DensityEstimation.RnnRnade("Features", "SequenceId", "Order", hiddenUnits: 4, recurrentUnits: 4, maxEpochs: 1);

        var fit = Assert.Throws<DataValidationException>(() => estimator.Fit(data));
        Assert.Equal(13, fit.Row);
        Assert.Equal(1, fit.Column);
        Assert.StartsWith($"value is NaN in the training data {Slot}{hint}", fit.Problem);

        // The validation view's value: named as that view's, with its own column's slot names.
        var good = ml.Data.FilterRowsByMissingValues(data, "Features");
        var valid = Assert.Throws<DataValidationException>(() => estimator.Fit(good, data));
        Assert.StartsWith($"value is NaN in the validation data {Slot}{hint}", valid.Problem);

        // Scoring (the chain's scorer sees a float[], not the schema): the transformer names the slot from its input.
        var model = estimator.Fit(good);
        var scoring = Innermost(Assert.ThrowsAny<Exception>(() => model.Transform(data).GetColumn<float>("LogDensity").ToList()));
        Assert.Equal(13, scoring.Row);
        Assert.StartsWith($"value is NaN (sequence '2') {Slot}{hint}", scoring.Problem);
    }

    public sealed class Frame
    {
        [VectorType(2)] public float[] Features = new float[2];
        public float SequenceId;
        public float Order;
    }

    public sealed class Scored { public float LogDensity; }

    [Fact]
    public void A_PredictionEngine_given_slot_names_names_the_slot()
    {
        var ml = new MLContext(seed: 1);
        var model = ml.DensityEstimation.RnnRnade("Features", "SequenceId", "Order", hiddenUnits: 4, recurrentUnits: 4, maxEpochs: 1)
            .Fit(ml.Data.FilterRowsByMissingValues(Frames(ml, out string hint), "Features"));
        var definition = SchemaDefinition.Create(typeof(Frame));
        var names = new VBuffer<ReadOnlyMemory<char>>(2, new[] { "x 1".AsMemory(), "x 2".AsMemory() });
        definition[nameof(Frame.Features)].AddAnnotation("SlotNames", names, new VectorDataViewType(TextDataViewType.Instance, 2));
        var engine = ml.Model.CreatePredictionEngine<Frame, Scored>(model, inputSchemaDefinition: definition);
        engine.Predict(new Frame { Features = new[] { 0.5f, 0.5f }, SequenceId = 1, Order = 0 });
        var e = Assert.Throws<DataValidationException>(() => engine.Predict(new Frame { Features = new[] { 0.5f, float.NaN }, SequenceId = 1, Order = 1 }));
        // Where the row models put it: after the words about the input row, before the hint.
        Assert.StartsWith("value is NaN (sequence '1') (in the input row of a PredictionEngine", e.Problem);
        Assert.Contains($") {Slot}{hint}", e.Problem);
    }
}
