using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

/// <summary>
/// A validation example the model cannot measure (<see cref="UnscorableValidation"/>): a finite row far off the training
/// data's scale (3e38 where the training values are in [0, 1]) has a non-finite log-density, so the validation figure was
/// not finite. The gradient trainers and the RBM took that for a divergence (three halvings of the learning rate, then a
/// <see cref="TrainingDivergedException"/> advising to standardise the inputs); the Deep GMM's EM went on without a best
/// iteration. Every trainer that measures validation data now names the row, in the numbering of the data the caller
/// gave: the validation data's row, or the training row a held-out split (in memory, or a stream's hashed split) took it from.
/// </summary>
public class UnscorableValidationTests
{
    private const float FarOff = 3e38f;

    private static RowMatrix Uniform(int rows, int columns, ulong seed)
    {
        var random = new RandomStream(seed);
        var m = new RowMatrix(rows, columns);
        random.FillUniform(m.AsSpan());
        return m;
    }

    private static void AssertNamed(DataValidationException e, long row, int column, DataSetKind dataSet, string figure = "log-density")
    {
        Assert.Equal((row, column, dataSet), (e.Row, e.Column, e.DataSet));
        Assert.Contains($"has a {figure} under the model that is not finite", e.Problem);
        Assert.Contains("lies far outside the", e.Problem);
        Assert.Contains("not a divergence of training", e.Problem);
    }

    public static TheoryData<string> Families => new() { "Rnade", "DeepRnade", "Iwae", "GaussianRbm", "DeepGmm" };

    private static void Fit(string family, RowMatrix data, RowMatrix? validation) => _ = family switch
    {
        "Rnade" => (object)RnadeModel.Fit(data, new RnadeOptions { HiddenUnits = 5, Components = 2, MaxEpochs = 3, Seed = 1 }, validation),
        "DeepRnade" => DeepRnadeModel.Fit(data, new DeepRnadeOptions { HiddenUnits = 5, Components = 2, MaxEpochs = 3, Seed = 1 }, validation),
        "Iwae" => IwaeModel.Fit(data, new IwaeOptions { LatentDimensions = new[] { 2 }, HiddenUnits = new[] { 8 }, Likelihood = IwaeLikelihood.Gaussian, MaxEpochs = 3, Seed = 1 }, validation),
        "GaussianRbm" => RbmModel.Fit(data, new RbmOptions { VisibleType = RbmVisibleType.Gaussian, HiddenUnits = 4, MaxEpochs = 3, Seed = 1,
            ValidationFraction = validation is null ? 0.1 : 0 }, validation),
        "DeepGmm" => DeepGmmModel.Fit(data, new DeepGmmOptions { Layers = new[] { 2, 2 }, MaxIterations = 3, Seed = 1 }, validation),
        _ => throw new ArgumentOutOfRangeException(nameof(family)),
    };

    [Theory]
    [MemberData(nameof(Families))]
    public void AFarOffValidationRowIsNamed_NotTakenForADivergence(string family)
    {
        var train = Uniform(200, 3, 1);
        var valid = Uniform(40, 3, 2);
        valid[25, 1] = FarOff;
        var e = Assert.Throws<DataValidationException>(() => Fit(family, train, valid));
        AssertNamed(e, 25, 1, DataSetKind.Validation, family == "GaussianRbm" ? RbmMonitor.Figure : "log-density");
        Assert.Equal(DataValidation.ValidationData, e.DataSource);
        Assert.Contains("its value 3E+38 is far beyond the largest magnitude of that column in the training rows, 0.99", e.Problem);
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void AFarOffHeldOutRowIsNamedByItsTrainingRow(string family)
    {
        var data = Uniform(200, 3, 1);
        int row = TrainingLoop.SplitIndices(data.Rows, 0.1, 1)!.Value.Validation[4];
        data[row, 2] = -FarOff;
        var e = Assert.Throws<DataValidationException>(() => Fit(family, data, null));
        AssertNamed(e, row, 2, DataSetKind.Training, family == "GaussianRbm" ? RbmMonitor.Figure : "log-density");
        Assert.Equal(DataValidation.TrainingData, e.DataSource);
        Assert.Contains("this row, held out for validation (ValidationFraction = 0.1), has", e.Problem);
    }

    /// <summary>Streamed: a validation stream's row is its position; a hashed split's held-out row is named by its position
    /// in the training stream (found here independently, by splitting a stream of row numbers).</summary>
    [Fact]
    public void StreamedFitsNameThePositionInTheStreamTheyWereGiven()
    {
        var train = Uniform(300, 3, 1);
        var valid = Uniform(50, 3, 2);
        valid[31, 0] = FarOff;
        var streaming = new StreamingOptions { ShuffleBufferRows = 64 };
        var given = Assert.Throws<DataValidationException>(() =>
            RnadeModel.Fit(RowStream.From(train), new RnadeOptions { HiddenUnits = 5, Components = 2, MaxEpochs = 2 }, RowStream.From(valid), streaming));
        AssertNamed(given, 31, -1, DataSetKind.Validation);
        var gmm = Assert.Throws<DataValidationException>(() =>
            DeepGmmModel.Fit(RowStream.From(train), new DeepGmmOptions { Layers = new[] { 2, 2 }, MaxIterations = 2 }, RowStream.From(valid), streaming));
        AssertNamed(gmm, 31, -1, DataSetKind.Validation);
        var rbm = Assert.Throws<DataValidationException>(() => RbmModel.Fit(RowStream.From(train),
            new RbmOptions { VisibleType = RbmVisibleType.Gaussian, HiddenUnits = 4, MaxEpochs = 2 }, RowStream.From(valid), streaming));
        AssertNamed(rbm, 31, -1, DataSetKind.Validation, RbmMonitor.Figure);

        var numbers = new RowMatrix(Enumerable.Range(0, train.Rows).Select(i => (float)i).ToArray(), train.Rows, 1);
        var (_, heldOut) = StreamingTrainingData.Split(RowStream.From(numbers), 0.1, 5);
        int row = (int)RowStream.Head(heldOut!, 10, CancellationToken.None)[6, 0];
        Assert.Equal(row, StreamingTrainingData.HeldOutPosition(6, 0.1, 5));
        train[row, 1] = FarOff;
        var hashed = Assert.Throws<DataValidationException>(() => IwaeModel.Fit(RowStream.From(train),
            new IwaeOptions { LatentDimensions = new[] { 2 }, HiddenUnits = new[] { 8 }, Likelihood = IwaeLikelihood.Gaussian, MaxEpochs = 2, Seed = 5 }, null, streaming));
        AssertNamed(hashed, row, -1, DataSetKind.Training);
        Assert.Contains("held out for validation by a seeded hash of its position (ValidationFraction = 0.1)", hashed.Problem);
    }

    private static SequenceBatch Sequences(int count, int length, ulong seed)
        => new(Uniform(count * length, 2, seed).Values, Enumerable.Range(0, count + 1).Select(i => i * length).ToArray(), 2);

    /// <summary>RNN-RNADE: a validation sequence and the first frame from which its log-density is not finite; a held-out
    /// sequence or training window as the training sequence and frame it was taken from.</summary>
    [Fact]
    public void RnnRnadeNamesTheSequenceAndTheFrame()
    {
        var options = new RnnRnadeOptions { HiddenUnits = 4, Components = 2, RecurrentUnits = 3, MaxEpochs = 2, Seed = 1 };
        var valid = Sequences(4, 10, 2);
        valid.Sequence(2)[7 * 2 + 1] = FarOff;   // sequence 2, frame 7
        var e = Assert.Throws<DataValidationException>(() => RnnRnadeModel.Fit(Sequences(20, 10, 1), options, valid));
        AssertNamed(e, 2, -1, DataSetKind.Validation);
        Assert.StartsWith("frame 7: this frame has", e.Problem);
        Assert.Equal(7, UnscorableValidation.Frame(e));

        // Held-out sequences: 20 sequences, 2 held out.
        var data = Sequences(20, 10, 1);
        int sequence = TrainingLoop.SplitIndices(20, 0.1, 1)!.Value.Validation[1];
        data.Sequence(sequence)[3 * 2] = FarOff;
        e = Assert.Throws<DataValidationException>(() => RnnRnadeModel.Fit(data, options));
        AssertNamed(e, sequence, -1, DataSetKind.Training);
        Assert.StartsWith("frame 3: this frame, of a sequence held out for validation (ValidationFraction = 0.1), has", e.Problem);

        // One long series cut into windows of 10 frames, 2 of the 20 held out: the series and the frame within it.
        var series = Sequences(1, 200, 3);
        int window = TrainingLoop.SplitIndices(20, 0.1, 1)!.Value.Validation[0];
        series.Sequence(0)[(window * 10 + 4) * 2 + 1] = FarOff;
        e = Assert.Throws<DataValidationException>(() => RnnRnadeModel.Fit(series, new RnnRnadeOptions
            { HiddenUnits = 4, Components = 2, RecurrentUnits = 3, MaxEpochs = 2, Seed = 1, TrainingWindow = 10 }));
        AssertNamed(e, 0, -1, DataSetKind.Training);
        Assert.StartsWith($"frame {window * 10 + 4}: this frame, of a training window held out for validation (ValidationFraction = 0.1), has", e.Problem);
    }

    /// <summary>The search measures the blocks, then the examples of the first non-finite block one by one; a non-finite
    /// figure it cannot pin on one example stays what it was (null: a divergence for the caller to handle).</summary>
    [Fact]
    public void FindNamesTheFirstExampleUnmeasurableAlone_OrNothing()
    {
        var m = Uniform(30, 2, 1);
        m[13, 1] = 5f;
        m[20, 0] = 5f;
        var rows = TrainingData.From(m);
        int calls = 0;
        double Marked(TrainingBatch batch, int block) { calls++; return batch.Rows.Contains(5f) ? double.NegativeInfinity : 0; }
        Assert.Equal((13L, -1), UnscorableValidation.Find(rows, 8, Marked, CancellationToken.None));
        Assert.Equal(2 + 6, calls);   // blocks 0 and 1, then rows 8 … 13

        calls = 0;
        Assert.Null(UnscorableValidation.Find(rows, 8, (batch, _) => { calls++; return batch.Count > 1 ? double.NaN : 0; }, CancellationToken.None));
        Assert.Equal(4 * 9 - 2, calls);   // every block and every example of the blocks (the last block has 6)
    }
}
