using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

/// <summary>
/// Data so wide that the model's parameters alone exceed what a model file holds (a Deep GMM's D×D transform per node,
/// deep RNADE's and RNADE's D·3K outputs) is refused before the network is allocated, with a message naming the number
/// of columns and the tensor that grows with them — not an <see cref="OverflowException"/> from a product of the width,
/// nor an attempt to allocate tens of gigabytes (a 100,000-column Deep GMM asked for 43 GB).
/// </summary>
public class WideDataTests
{
    private static RowMatrix Wide(int rows, int columns)
    {
        var m = new RowMatrix(rows, columns);
        new Randomness.RandomStream(3).FillGaussian(m.AsSpan());
        return m;
    }

    public static TheoryData<string, int> Cases => new()
    {
        { "Deep GMM", 50_000 },
        { "deep RNADE", 100_000 },
        { "RNADE", 1_500_000 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void DataTooWideForAModelFile_IsRefusedBeforeTheNetworkIsAllocated(string model, int columns)
    {
        var data = Wide(2, columns);
        Func<object> fit = model switch
        {
            "Deep GMM" => () => DeepGmmModel.Fit(data, new DeepGmmOptions { Layers = new[] { 2, 2 }, MaxIterations = 1, ValidationFraction = 0 }),
            "deep RNADE" => () => DeepRnadeModel.Fit(data, new DeepRnadeOptions { HiddenUnits = 4, Components = 2, MaxEpochs = 1, ValidationFraction = 0 }),
            _ => () => RnadeModel.Fit(data, new RnadeOptions { HiddenUnits = 50, Components = 10, MaxEpochs = 1, ValidationFraction = 0 }),
        };
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<DataValidationException>(fit);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(DataValidation.TrainingData, e.DataSource);
        Assert.Contains($"{columns:N0} columns make a", e.Message);
        Assert.Contains(model, e.Message);
        Assert.Contains("more than a model file holds", e.Message);
        // Copies of the data (standardised, permuted) only: nothing of the model's size.
        Assert.True(allocated < 16L * data.Values.Length * sizeof(float) + (64 << 20), $"allocated {allocated:N0} bytes");
    }

    [Fact]
    public void StreamedDeepGmmOnDataTooWide_IsRefusedTheSameWay()
    {
        var e = Assert.Throws<DataValidationException>(() => DeepGmmModel.Fit(RowStream.From(Wide(2, 50_000)),
            new DeepGmmOptions { Layers = new[] { 2, 2 }, MaxIterations = 1, ValidationFraction = 0 }, null, new StreamingOptions { SampleRows = 4 }));
        Assert.Contains("50,000 columns make a Deep GMM whose 4 nodes each hold a 50,000×50,000 transform", e.Message);
    }
}
