using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Tests.Conformance;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

/// <summary>Streamed training, continued: what an empty validation stream means, and the reads before training (the
/// RBM monitor's head, the hashed split's skipping reads) observing the Fit's cancellation token.</summary>
public partial class StreamingTrainingTests
{
    /// <summary>
    /// What an empty validation stream means is decided once, by the split, before training: a hashed split holding out
    /// no row is no validation (null, as in memory when ⌊n · fraction⌋ is 0), counted or not; the trainers each handled an
    /// empty one themselves (the gradient loop and the Deep GMM by a zero count every epoch, the RBM by an empty head),
    /// and the Deep GMM chose among its initialisations by validation figures there were none of. The gradient loop,
    /// given an empty validation set directly, refuses it in the split's words instead of training without.
    /// </summary>
    [Fact]
    public void TheSplitDecidesWhatAnEmptyValidationStreamMeans()
    {
        var few = Materialize(new GeneratedRows(12, 3, 1));
        Assert.Empty(Read(StreamingTrainingData.Split(RowStream.From(few), 0.1, 4).Validation!));
        foreach (var stream in new[] { RowStream.From(few), new Uncounted(RowStream.From(few)) })
        {
            StreamingOptions? streaming = null;
            var (train, validation) = StreamingTrainingData.CheckedSplit(stream, null, ref streaming, InputDomain.Real, 0.1, 4, default);
            Assert.Null(validation);
            Assert.Equal(12 * 3, Read(train).Count);
        }
        StreamingOptions? more = null;
        Assert.NotNull(StreamingTrainingData.CheckedSplit(new GeneratedRows(500, 3, 1), null, ref more, InputDomain.Real, 0.1, 4, default).Validation);

        var bits = Materialize(new GeneratedRows(50, 3, 1, binary: true));
        var e = Assert.Throws<DataValidationException>(() => TrainingLoop.Run(new ReferenceBernoulliModel.Objective(new float[3]), bits, new RowMatrix(0, 3),
            new GradientTrainingOptions { MaxEpochs = 1 }, null, default));
        Assert.Equal(DataValidation.ValidationData, e.DataSource);
        Assert.Contains("there are no rows", e.Message);
    }

    /// <summary>The RBM's monitor reads the first 1,000 validation rows of a streamed Fit: that read observes the Fit's
    /// token (it read all 1,000 rows after a cancellation).</summary>
    [Fact]
    public void CancellationStopsTheRbmsMonitorRead()
    {
        using var cts = new CancellationTokenSource();
        var o = new RbmOptions { HiddenUnits = 3, MaxEpochs = 1, ValidationFraction = 0, Seed = 1 };
        // Its count is known, so the split reads nothing of it: pass 1 is the monitor's head.
        var validation = new CancellingRows(new GeneratedRows(3000, 4, 2, binary: true), cts, pass: 1);
        Assert.ThrowsAny<OperationCanceledException>(() => RbmModel.Fit(new GeneratedRows(3000, 4, 1, binary: true), o, validation, null, null, cts.Token));
        Assert.InRange(validation.RowsOfThatPass, 1, 16);
    }

    /// <summary>The RBM's monitor rows of the training stream are kept from the marginals' pass, a complete pass
    /// compared with the first: they came from a pass of their own, left after 1,000 rows and so compared only by its
    /// length, and a source that changed in that pass alone gave the monitor other rows unnoticed. Here the second pass
    /// (the head's before, the first epoch's now) alone differs, and is refused; the same rows give the same model.</summary>
    [Fact]
    public void TheRbmsMonitorRowsComeFromAComparedPass()
    {
        var o = new RbmOptions { HiddenUnits = 3, MaxEpochs = 2, ValidationFraction = 0, Seed = 1 };
        var e = Assert.Throws<DataValidationException>(() => RbmModel.Fit(new OnlyOnePassChanged(new GeneratedRows(3000, 4, 1, binary: true), pass: 2, row: 5), o, null, null));
        Assert.Equal(DataValidation.TrainingData, e.DataSource);
        Assert.Contains("read other values than the first pass", e.Message);
        var data = Materialize(new GeneratedRows(3000, 4, 1, binary: true));
        Assert.Equal(RbmModel.Fit(data, o).ToBytes(), RbmModel.Fit(RowStream.From(data), o, null, new StreamingOptions { ShuffleBufferRows = 3000 }).ToBytes());
    }

    /// <summary>The rows of <paramref name="inner"/>, except in its pass <paramref name="pass"/> (1-based), where row
    /// <paramref name="row"/>'s first value is flipped (0 ↔ 1: binary rows stay binary).</summary>
    private sealed class OnlyOnePassChanged(IRowStream inner, int pass, long row) : IRowStream
    {
        private int _passes;
        public int Width => inner.Width;
        public long? Count => inner.Count;
        public IRowCursor Open() => ++_passes == pass ? new Cursor(inner.Open(), Width, row) : inner.Open();

        private sealed class Cursor(IRowCursor inner, int width, long row) : IRowCursor
        {
            private long _next;
            public int Read(Span<float> destination)
            {
                int n = inner.Read(destination);
                if (row >= _next && row < _next + n) destination[(int)(row - _next) * width] = 1 - destination[(int)(row - _next) * width];
                _next += n;
                return n;
            }
            public void Dispose() => inner.Dispose();
        }
    }

    /// <summary>The hashed split's reads skip the other part's rows within one read (to find a kept row): they observe
    /// the Fit's token, here in the read that finds whether a stream of unknown length holds out a row at all (it held
    /// out none, and the read went through all 200,000 rows after a cancellation).</summary>
    [Fact]
    public void CancellationStopsAHashedSplitsSkippingRead()
    {
        using var cts = new CancellationTokenSource();
        var data = new CancellingRows(new Uncounted(new GeneratedRows(200_000, 2, 1)), cts, pass: 1);
        Assert.ThrowsAny<OperationCanceledException>(() => RnadeModel.Fit(data, Rnade(validation: 1e-12), null, null, null, cts.Token));
        Assert.InRange(data.RowsOfThatPass, 1, 1);
    }
}
