using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Models.Nvil;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

/// <summary>
/// Every family's model size is predicted from its options and the width alone
/// (<see cref="IModelSizeOptions.PredictModelSize"/>), and a model no file could hold is refused from that prediction
/// before the data is read, copied or checked — in memory and streamed (a stream of 2^30-column rows is never opened).
/// The prediction equals the parameter count of a trained model of each family, so it cannot drift from the layout.
/// </summary>
// The refusal tests read the thread's allocation counter; the collection runs them apart from tests that change settings.
[Collection(Conformance.EngineSettingsCollection.Name)]
public class ModelSizeTests
{
    private static RowMatrix Real(int rows, int columns, ulong seed = 5)
    {
        var m = new RowMatrix(rows, columns);
        new Randomness.RandomStream(seed).FillGaussian(m.AsSpan());
        return m;
    }

    private static RowMatrix Binary(int rows, int columns)
    {
        var m = Real(rows, columns);
        for (int i = 0; i < m.Values.Length; i++) m.Values[i] = m.Values[i] > 0 ? 1 : 0;
        return m;
    }

    private static long Sum(params float[][] arrays) => arrays.Sum(a => (long)a.Length);

    /// <summary>(model, options, the parameter count of a small model trained with them, its width).</summary>
    public static TheoryData<string> Families => new()
    {
        "RNADE", "deep RNADE masked", "deep RNADE autoregressive direct", "Deep GMM full", "Deep GMM factorised",
        "RBM", "IWAE Bernoulli", "IWAE Gaussian two layers", "NVIL two layers", "RNN-RNADE", "RNN-RNADE hidden bias",
    };

    private static (IModelSizeOptions Options, long Actual, int Width) Trained(string family)
    {
        const int d = 7;
        switch (family)
        {
            case "RNADE":
            {
                var o = new RnadeOptions { HiddenUnits = 5, Components = 3, MaxEpochs = 1, ValidationFraction = 0 };
                var n = RnadeModel.Fit(Real(40, d), o).Network;
                return (o, Sum(n.W, n.C, n.Rho, n.V, n.B), d);
            }
            case "deep RNADE masked":
            case "deep RNADE autoregressive direct":
            {
                bool ar = family.Contains("autoregressive");
                var o = new DeepRnadeOptions
                {
                    HiddenUnits = 6, HiddenLayers = 2, Components = 2, MaxEpochs = 1, ValidationFraction = 0,
                    Connectivity = ar ? DeepRnadeConnectivity.Autoregressive : DeepRnadeConnectivity.MaskedInput, DirectConnections = ar,
                };
                var m = DeepRnadeModel.Fit(Real(40, d), o);
                Assert.Equal(ar, m.Network.Direct is not null);
                return (o, m.ParameterCount, d);
            }
            case "Deep GMM full":
            case "Deep GMM factorised":
            {
                var o = new DeepGmmOptions
                {
                    Layers = new[] { 2, 3 }, MaxIterations = 1, ValidationFraction = 0,
                    PathProbabilities = family.Contains("full") ? DeepGmmPathProbabilities.Full : DeepGmmPathProbabilities.Factorized,
                };
                var n = DeepGmmModel.Fit(Real(60, d), o).Network;
                return (o, n.Q.Sum(q => (long)q.Length) + n.E.Sum(e => (long)e.Length) + n.LogPrior.Length, d);
            }
            case "RBM":
            {
                var o = new RbmOptions { HiddenUnits = 5, MaxEpochs = 1, ValidationFraction = 0 };
                var m = RbmModel.Fit(Binary(40, d), o).Machine;
                return (o, Sum(m.W, m.B, m.C), d);
            }
            case "IWAE Bernoulli":
            case "IWAE Gaussian two layers":
            {
                bool gaussian = family.Contains("Gaussian");
                var o = new IwaeOptions
                {
                    HiddenUnits = new[] { 6, 4 }, LatentDimensions = gaussian ? new[] { 3, 2 } : new[] { 3 }, DeepHiddenUnits = new[] { 5 },
                    Likelihood = gaussian ? IwaeLikelihood.Gaussian : IwaeLikelihood.Bernoulli, MaxEpochs = 1, ValidationFraction = 0,
                };
                var m = IwaeModel.Fit(gaussian ? Real(40, d) : Binary(40, d), o);
                return (o, m.Network.Parameters.Count, d);
            }
            case "NVIL two layers":
            {
                var o = new NvilOptions { LatentDimensions = new[] { 4, 3 }, MaxEpochs = 1, ValidationFraction = 0 };
                return (o, NvilModel.Fit(Binary(40, d), o).Network.Parameters.Count, d);
            }
            default:
            {
                var o = new RnnRnadeOptions
                {
                    HiddenUnits = 5, Components = 2, RecurrentUnits = 4, ConditionHiddenBias = family.Contains("hidden bias"),
                    MaxEpochs = 1, ValidationFraction = 0,
                };
                var sequences = Enumerable.Range(0, 6).Select(i => Real(5 + i, d, (ulong)i + 1).Values).ToArray();
                var n = RnnRnadeModel.Fit(SequenceBatch.FromSequences(sequences, d), o).Network;
                var r = n.Rnade;
                Assert.Equal(o.ConditionHiddenBias, n.ConditionsHiddenBias);
                return (o, Sum(r.W, r.C, r.Rho, r.V, r.B, n.WIn, n.WRec, n.BRec, n.H0, n.WOut, n.WHid), d);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void ThePredictedParameterCountIsTheTrainedModels(string family)
    {
        var (options, actual, width) = Trained(family);
        var size = options.PredictModelSize(width);
        Assert.Equal(actual, size.ParameterCount);
        Assert.Equal(4 * actual, size.ParameterBytes);
        Assert.True(size.FitsAFile);
    }

    /// <summary>The parameters are float32 values of the file: the payload holds them and a little more (sizes, the
    /// standardisation, the order), so the prediction is a lower bound of the file within a few values per column.</summary>
    [Theory]
    [InlineData("RNADE")]
    [InlineData("Deep GMM full")]
    [InlineData("IWAE Bernoulli")]
    public void TheParameterBytesAreALowerBoundOfTheFile(string family)
    {
        var (options, _, width) = Trained(family);
        DensityModelBase model = family switch
        {
            "RNADE" => RnadeModel.Fit(Real(40, width), (RnadeOptions)options),
            "Deep GMM full" => DeepGmmModel.Fit(Real(60, width), (DeepGmmOptions)options),
            _ => IwaeModel.Fit(Binary(40, width), (IwaeOptions)options),
        };
        long file = model.ToBytes().LongLength, parameters = options.PredictModelSize(width).ParameterBytes;
        Assert.InRange(file - parameters, 1, 512 + 64L * width);
    }

    /// <summary>Absurd widths and layer sizes never overflow the count: it is computed in checked 64-bit arithmetic and
    /// saturates at long.MaxValue.</summary>
    [Fact]
    public void AbsurdSizesSaturateInsteadOfOverflowing()
    {
        var rnade = new RnadeOptions { HiddenUnits = RnadeOptions.MaxHiddenUnits, Components = RnadeOptions.MaxComponents }.PredictModelSize(int.MaxValue);
        Assert.Equal(long.MaxValue, rnade.ParameterCount);
        Assert.Equal(long.MaxValue, rnade.ParameterBytes);
        Assert.False(rnade.FitsAFile);
        var gmm = new DeepGmmOptions { Layers = new[] { 4096, 4096, 4096 } }.PredictModelSize(int.MaxValue);
        Assert.Equal(long.MaxValue, gmm.ParameterCount);
        var iwae = new IwaeOptions { HiddenUnits = new[] { int.MaxValue, int.MaxValue, int.MaxValue } }.PredictModelSize(int.MaxValue);
        Assert.Equal(long.MaxValue, iwae.ParameterCount);
        Assert.Contains("more than 9.2e18", iwae.ExceedsMessage(1, "the limit")!);
        // An exact count beyond an int is kept exact: 2^20 columns × 4,096 hidden units.
        Assert.Equal((1L << 20) * 4096 + (1 << 20) + 4096, new RbmOptions { HiddenUnits = 4096 }.PredictModelSize(1 << 20).ParameterCount);
    }

    /// <summary>Options that make a model larger than a file holds at 10,000 columns, trained on 20 rows: refused from
    /// the prediction before the data is checked, copied or standardised (the message names the width, the options, the
    /// size, the limit and the remedy).</summary>
    public static TheoryData<string> TooLarge => new() { "RNADE", "deep RNADE", "Deep GMM", "RBM", "IWAE", "NVIL", "RNN-RNADE" };

    private const int WideColumns = 10_000;

    private static (Func<object> Fit, string Option) TooLargeFit(string family, RowMatrix data) => family switch
    {
        "RNADE" => (() => RnadeModel.Fit(data, new RnadeOptions { HiddenUnits = 1000, Components = 20, MaxEpochs = 1 }), "HiddenUnits"),
        "deep RNADE" => (() => DeepRnadeModel.Fit(data, new DeepRnadeOptions { HiddenUnits = 1000, Components = 20, MaxEpochs = 1 }), "HiddenUnits"),
        "Deep GMM" => (() => DeepGmmModel.Fit(data, new DeepGmmOptions { Layers = new[] { 8 }, MaxIterations = 1 }), "Layers"),
        "RBM" => (() => RbmModel.Fit(data, new RbmOptions { HiddenUnits = 100_000, MaxEpochs = 1 }), "HiddenUnits"),
        "IWAE" => (() => IwaeModel.Fit(data, new IwaeOptions { HiddenUnits = new[] { 50_000 }, MaxEpochs = 1 }), "HiddenUnits"),
        "NVIL" => (() => NvilModel.Fit(data, new NvilOptions { LatentDimensions = new[] { 65_536 }, MaxEpochs = 1 }), "LatentDimensions"),
        _ => RnnRnadeFit(SequenceBatch.FromSequences(new[] { data.Values }, data.Columns)), // the batch made outside the measured call
    };

    private static (Func<object>, string) RnnRnadeFit(SequenceBatch sequences)
        => (() => RnnRnadeModel.Fit(sequences, new RnnRnadeOptions { HiddenUnits = 1000, Components = 20, MaxEpochs = 1 }), "HiddenUnits");

    [Theory]
    [MemberData(nameof(TooLarge))]
    public void AModelTooLargeForAFile_IsRefusedBeforeTheDataIsTouched(string family)
    {
        // NaN in the data: a fit that checked the values first would report them instead of the size.
        var data = new RowMatrix(20, WideColumns);
        data.Values.AsSpan().Fill(float.NaN);
        var (fit, option) = TooLargeFit(family, data);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<DataValidationException>(fit);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(DataValidation.TrainingData, e.DataSource);
        Assert.Contains($"{WideColumns:N0} columns make a", e.Message);
        Assert.Contains(option, e.Message);
        Assert.Contains("more than a model file holds", e.Message);
        Assert.Contains("could never be saved", e.Message);
        Assert.Contains("fewer columns", e.Message);
        Assert.DoesNotContain("NaN", e.Message);
        // Not even a copy of the 20 rows (800 KB): the refusal comes first.
        Assert.True(allocated < 256 << 10, $"allocated {allocated:N0} bytes");
    }

    /// <summary>A stream whose rows are absurdly wide (2^30 columns): its width is refused from <see cref="IRowStream.Width"/>
    /// before a pass is opened (one block of one such row is a 4 GiB buffer), and so is a stream of 10,000 columns whose
    /// model is too large. The validation stream is not opened either.</summary>
    [Theory]
    [InlineData("RNADE", 1 << 30)]
    [InlineData("deep RNADE", 1 << 30)]
    [InlineData("Deep GMM", 1 << 30)]
    [InlineData("RBM", 1 << 30)]
    [InlineData("IWAE", 1 << 30)]
    [InlineData("RNADE", WideColumns)]
    [InlineData("RBM", WideColumns)]
    [InlineData("IWAE", WideColumns)]
    public void AStreamTooWideIsRefusedBeforeItIsRead(string family, int width)
    {
        var data = new UnreadableStream(width);
        var validation = new UnreadableStream(width);
        Func<object> fit = family switch
        {
            "RNADE" => () => RnadeModel.Fit(data, new RnadeOptions { HiddenUnits = 1000, Components = 20 }, validation, null),
            "deep RNADE" => () => DeepRnadeModel.Fit(data, new DeepRnadeOptions(), validation, null),
            "Deep GMM" => () => DeepGmmModel.Fit(data, new DeepGmmOptions { Layers = new[] { 2 } }, validation, null),
            "RBM" => () => RbmModel.Fit(data, new RbmOptions { HiddenUnits = 100_000 }, validation, null),
            _ => () => IwaeModel.Fit(data, new IwaeOptions { HiddenUnits = new[] { 50_000 } }, validation, null),
        };
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<DataValidationException>(fit);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 64 << 10, "nothing of the rows' size was allocated");
        Assert.Equal(0, data.Opened + validation.Opened);
        Assert.Contains($"{width:N0} columns", e.Message);
        Assert.Contains(width == 1 << 30 ? "model files hold" : "more than a model file holds", e.Message);
    }

    /// <summary>A stream that counts the passes opened and has no rows to give.</summary>
    private sealed class UnreadableStream(int width) : IRowStream
    {
        public int Opened;
        public int Width => width;
        public long? Count => null;
        public IRowCursor Open() { Opened++; throw new InvalidOperationException("the stream was read"); }
    }

    /// <summary>A model's file length is counted as it is written: equal to ToBytes's length, with nothing of the
    /// model's size allocated (ddml's check of a trained model serialised it once more only to measure it).</summary>
    [Fact]
    public void TheFileLengthIsCountedWithoutACopyOfTheFile()
    {
        var model = RnadeModel.Fit(Real(30, 200), new RnadeOptions { HiddenUnits = 50, Components = 5, MaxEpochs = 1, ValidationFraction = 0 });
        long length = model.ToBytes().LongLength;
        Assert.True(length > 1 << 19, $"a model of {length:N0} bytes");
        model.GetFileLength(); // warm
        long before = GC.GetAllocatedBytesForCurrentThread();
        long counted = model.GetFileLength();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(length, counted);
        Assert.True(allocated < length / 16, $"allocated {allocated:N0} bytes to count {length:N0}");
    }
}
