using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

/// <summary>
/// Data so wide that the model's parameters alone exceed what a model file holds (a Deep GMM's D×D transform per node,
/// deep RNADE's and RNADE's D·3K outputs) is refused before the network is allocated, with a message naming the number
/// of columns and the tensor that grows with them — not an <see cref="OverflowException"/> from a product of the width,
/// nor an attempt to allocate tens of gigabytes (a 100,000-column Deep GMM asked for 43 GB).
/// </summary>
// Alone: StreamedFitOfAFewWideRows_AllocatesForTheRowsItReads reads the process-wide allocation counter, which tests
// running beside it inflate (it failed once in a full run at 176 MB against 93 MB, and passes alone).
[Collection(Conformance.EngineSettingsCollection.Name)]
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
        { "RNADE", 1_000_000 },
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
            _ => () => RnadeModel.Fit(data, new RnadeOptions { HiddenUnits = 100, Components = 10, MaxEpochs = 1, ValidationFraction = 0 }),
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

    /// <summary>Layer sizes within their bounds whose products are more parameters than a file holds (two IWAE hidden
    /// layers of 100,000 units: 10^10 weights; two NVIL layers of 60,000: 3.6·10^9) are refused before anything is allocated; they threw OverflowException from the
    /// layer's weight array.</summary>
    [Theory]
    [InlineData("IWAE")]
    [InlineData("NVIL")]
    public void LayersTooLargeForAModelFile_AreRefusedBeforeAllocation(string model)
    {
        var data = new RowMatrix(4, 8);
        for (int i = 0; i < data.Values.Length; i++) data.Values[i] = i % 3 == 0 ? 1 : 0;
        Func<object> fit = model == "IWAE"
            ? () => Models.Iwae.IwaeModel.Fit(data, new Models.Iwae.IwaeOptions { HiddenUnits = new[] { 100_000, 100_000 }, MaxEpochs = 1, ValidationFraction = 0 })
            : () => Models.Nvil.NvilModel.Fit(data, new Models.Nvil.NvilOptions { LatentDimensions = new[] { 60_000, 60_000 }, MaxEpochs = 1, ValidationFraction = 0 });
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<DataValidationException>(fit);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 64 << 20, "nothing of the model's size was allocated");
        Assert.Contains(model == "IWAE" ? "an IWAE of hidden layers [100000, 100000]" : "latent layers [60000, 60000]", e.Message);
        Assert.Contains("more than a model file holds", e.Message);
        // One latent layer (the default [50]) has no deep hidden layers: the message named DeepHiddenUnits [100, 100]
        // beside it and as a remedy, a setting that builds nothing there.
        if (model == "IWAE") Assert.DoesNotContain("DeepHiddenUnits", e.Message);
    }

    /// <summary>With a second latent layer the deep hidden layers exist and are named, with their setting as a remedy.</summary>
    [Fact]
    public void AnIwaeSizeNamesDeepHiddenLayersOnlyWhenItHasThem()
    {
        var one = new Models.Iwae.IwaeOptions { LatentDimensions = new[] { 50 } }.PredictModelSize(8);
        Assert.Equal("an IWAE of hidden layers [200, 200] and latent layers [50] (HiddenUnits, LatentDimensions: D×HiddenUnits[0] weights in the encoder and in the decoder)", one.Architecture);
        Assert.DoesNotContain("DeepHiddenUnits", one.Remedy);
        var two = new Models.Iwae.IwaeOptions { LatentDimensions = new[] { 50, 10 }, DeepHiddenUnits = new[] { 30 } }.PredictModelSize(8);
        Assert.Contains("latent layers [50, 10] and deep hidden layers [30]", two.Architecture);
        Assert.Contains("DeepHiddenUnits", two.Remedy);
    }

    /// <summary>More columns than an RNADE file holds (2^20) are refused before training, even for a model small enough
    /// to save: the fit trained to the end and then failed its loadability check as "training diverged".</summary>
    [Theory]
    [InlineData("RNADE")]
    [InlineData("deep RNADE")]
    public void MoreColumnsThanAFileHolds_AreRefusedBeforeTraining(string model)
    {
        var data = Wide(2, RnadeOptions.MaxDimension + 1);
        var e = Assert.Throws<DataValidationException>(() => model == "RNADE"
            ? RnadeModel.Fit(data, new RnadeOptions { HiddenUnits = 1, Components = 1, MaxEpochs = 1, ValidationFraction = 0 })
            : DeepRnadeModel.Fit(data, new DeepRnadeOptions { HiddenUnits = 1, HiddenLayers = 1, Components = 1, MaxEpochs = 1, ValidationFraction = 0,
                Connectivity = DeepRnadeConnectivity.MaskedInput }));
        Assert.Contains($"{RnadeOptions.MaxDimension + 1:N0} columns are more than {model} model files hold ({RnadeOptions.MaxDimension:N0})", e.Message);
    }

    /// <summary>
    /// The RBM's D×H weights are refused the same way: 2^20 columns at 4,096 hidden units (2^32 weights) wrapped the
    /// weights' int length to 0 and failed in the GEMM ("an operand is shorter than its rows ..."), 3,000 hidden units threw
    /// OverflowException, and more columns than an RBM file holds (2^24) trained to the end and were then reported as
    /// "training diverged ... rescale the data". In memory and streamed.
    /// </summary>
    [Theory]
    [InlineData(1 << 20, 4096, false)]
    [InlineData(1 << 20, 3000, true)]
    [InlineData((1 << 24) + 1, 1, false)]
    public void RbmDataTooWideForAModelFile_IsRefusedBeforeTheMachineIsAllocated(int columns, int hidden, bool streamed)
    {
        var data = new RowMatrix(2, columns);
        data[0, 0] = 1;
        var options = new RbmOptions { HiddenUnits = hidden, MaxEpochs = 1, ValidationFraction = 0 };
        var e = Assert.Throws<DataValidationException>(() => streamed
            ? RbmModel.Fit(RowStream.From(data), options, null, null)
            : RbmModel.Fit(data, options));
        Assert.Equal(DataValidation.TrainingData, e.DataSource);
        Assert.Contains(columns > 1 << 24
            ? $"{columns:N0} columns are more than RBM model files hold ({1 << 24:N0})"
            : $"{columns:N0} columns make an RBM of {hidden} hidden units (D×H weights; HiddenUnits)", e.Message);
    }

    /// <summary>
    /// A streamed fit of a few wide rows holds what the rows need, not the preparation sample's or the RBM monitor's full
    /// row count: RNADE's initial sample was allocated as <see cref="StreamingOptions.SampleRows"/> (65,536) × columns
    /// up front — 2.6 GB for 3 rows of 10,000 columns, an OverflowException from 32,768 columns — and the RBM's monitor
    /// rows as 1,000 × columns.
    /// </summary>
    [Theory]
    [InlineData("RNADE")]
    [InlineData("RBM")]
    public void StreamedFitOfAFewWideRows_AllocatesForTheRowsItReads(string model)
    {
        const int columns = 40_000;
        var data = Wide(3, columns);
        if (model == "RBM") for (int i = 0; i < data.Values.Length; i++) data.Values[i] = data.Values[i] > 0 ? 1 : 0;
        Func<DensityModel> fit = model == "RNADE"
            ? () => RnadeModel.Fit(RowStream.From(data), new RnadeOptions { HiddenUnits = 2, Components = 1, MaxEpochs = 1, ValidationFraction = 0 }, null, null)
            : () => RbmModel.Fit(RowStream.From(data), new RbmOptions { HiddenUnits = 2, MaxEpochs = 1, ValidationFraction = 0 }, null, null);
        Func<DensityModel> inMemory = model == "RNADE"
            ? () => RnadeModel.Fit(data, new RnadeOptions { HiddenUnits = 2, Components = 1, MaxEpochs = 1, ValidationFraction = 0 })
            : () => RbmModel.Fit(data, new RbmOptions { HiddenUnits = 2, MaxEpochs = 1, ValidationFraction = 0 });
        long Allocated(Func<DensityModel> f)
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            Assert.Equal(columns, f().Dimension);
            return GC.GetTotalAllocatedBytes(precise: true) - before;
        }
        long streamed = Allocated(fit), memory = Allocated(inMemory);
        Assert.True(streamed < memory + (64L << 20), $"streamed: {streamed:N0} bytes, in memory {memory:N0}, for 3 rows of {columns:N0} columns");
    }

    [Fact]
    public void StreamedDeepGmmOnDataTooWide_IsRefusedTheSameWay()
    {
        var e = Assert.Throws<DataValidationException>(() => DeepGmmModel.Fit(RowStream.From(Wide(2, 50_000)),
            new DeepGmmOptions { Layers = new[] { 2, 2 }, MaxIterations = 1, ValidationFraction = 0 }, null, new StreamingOptions { SampleRows = 4 }));
        Assert.Contains("50,000 columns make a Deep GMM whose 4 nodes each hold a 50,000×50,000 transform", e.Message);
    }
}
