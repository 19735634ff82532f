using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Tests.Conformance;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

/// <summary>
/// Issue 18 (Scale): training from a stream of rows through a bounded shuffle buffer. A buffer holding the whole pass
/// reproduces in-memory training byte for byte; smaller buffers train as well, reproducibly at any thread count; bad
/// values are named by row and column; memory does not grow with the rows (serial collection: allocation counters
/// count every thread).
/// </summary>
[Collection(EngineSettingsCollection.Name)]
public partial class StreamingTrainingTests
{
    /// <summary>Rows generated from their index (two Gaussian clusters in <paramref name="width"/> columns), never held:
    /// counts how many passes were opened.</summary>
    internal sealed class GeneratedRows(long rows, int width, ulong seed, bool binary = false) : IRowStream
    {
        public int Passes;
        /// <summary>When set, every read first records the live heap after a full collection (<see cref="PeakLiveBytes"/>):
        /// what training holds at that moment, shuffle buffer included.</summary>
        public bool MeasurePeak;
        public long PeakLiveBytes;
        public ulong Seed => seed;
        public bool Binary => binary;
        public int Width => width;
        public long? Count => rows;
        public IRowCursor Open() { Passes++; return new Cursor(this); }

        /// <summary>Row i, from a SplitMix64 sequence seeded by (seed, i): allocation-free, so memory checks see only the training.</summary>
        public static void Row(long i, int width, ulong seed, bool binary, Span<float> dst)
        {
            ulong state = seed * 0x9E3779B97F4A7C15UL ^ (ulong)i * 0xD1B54A32D192ED03UL;
            int cluster = (int)(Next(ref state) & 1);
            for (int c = 0; c < width; c++)
            {
                double u1 = ((Next(ref state) >> 11) + 1) * (1.0 / 9007199254740993.0), u2 = (Next(ref state) >> 11) * (1.0 / 9007199254740992.0);
                double gaussian = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
                double v = (cluster == 0 ? -1.5 : 1.5) * (c % 2 == 0 ? 1 : -1) + 0.6 * gaussian + 0.3 * (c > 0 ? dst[c - 1] : 0);
                dst[c] = binary ? (v > 0 ? 1f : 0f) : (float)v;
            }
        }

        private static ulong Next(ref ulong state)
        {
            ulong z = state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        private sealed class Cursor(GeneratedRows s) : IRowCursor
        {
            private long _next;
            public int Read(Span<float> destination)
            {
                if (s.MeasurePeak) s.PeakLiveBytes = Math.Max(s.PeakLiveBytes, GC.GetTotalMemory(forceFullCollection: true));
                int n = (int)Math.Min(s.Count!.Value - _next, destination.Length / s.Width);
                for (int r = 0; r < n; r++) Row(_next + r, s.Width, s.Seed, s.Binary, destination.Slice(r * s.Width, s.Width));
                _next += n;
                return n;
            }
            public void Dispose() { }
        }
    }

    internal static RowMatrix Materialize(IRowStream s)
    {
        var m = new RowMatrix((int)s.Count!.Value, s.Width);
        using var c = s.Open();
        for (int read = 0, n; (n = c.Read(m.Values.AsSpan(read * s.Width))) > 0;) read += n;
        return m;
    }

    private static RnadeOptions Rnade(int epochs = 3, double validation = 0) => new()
    {
        HiddenUnits = 8, Components = 3, MaxEpochs = epochs, BatchSize = 32, ValidationFraction = validation, Seed = 5,
    };

    [Fact]
    public void RnadeStreamedThroughABufferHoldingThePassEqualsInMemoryTraining()
    {
        var data = Materialize(new GeneratedRows(700, 4, 1));
        var valid = Materialize(new GeneratedRows(150, 4, 2));
        var memory = RnadeModel.Fit(data, Rnade(), valid);
        var streamed = RnadeModel.Fit(RowStream.From(data), Rnade(), RowStream.From(valid), new StreamingOptions { ShuffleBufferRows = 700 });
        Assert.Equal(memory.ToBytes(), streamed.ToBytes());
        Assert.Equal(memory.TrainingSummary!.BestEpoch, streamed.TrainingSummary!.BestEpoch);
    }

    [Fact]
    public void RbmStreamedThroughABufferHoldingThePassEqualsInMemoryTraining()
    {
        var data = Materialize(new GeneratedRows(600, 10, 3, binary: true));
        var o = new RbmOptions { HiddenUnits = 6, MaxEpochs = 3, BatchSize = 20, ValidationFraction = 0, Seed = 2 };
        var memory = RbmModel.Fit(data, o);
        var streamed = RbmModel.Fit(RowStream.From(data), o, null, new StreamingOptions { ShuffleBufferRows = 600 });
        Assert.Equal(memory.ToBytes(), streamed.ToBytes());
    }

    /// <summary>A stream that does not say how many rows it holds (as an IDataView without a row count).</summary>
    private sealed class Uncounted(IRowStream inner) : IRowStream
    {
        public int Width => inner.Width;
        public long? Count => null;
        public IRowCursor Open() => inner.Open();
    }

    [Fact]
    public void TheRbmsDefaultLengthOnAStreamOfUnknownLengthIsCountedInItsFirstEpoch()
    {
        // 2,000 rows: a million examples are 500 epochs, as in memory; the same model either way.
        var data = Materialize(new GeneratedRows(2000, 4, 5, binary: true));
        var o = new RbmOptions { HiddenUnits = 2, ValidationFraction = 0, Seed = 3, AisRuns = 10, AisTemperatures = 100 };
        var memory = RbmModel.Fit(data, o);
        var streamed = RbmModel.Fit(new Uncounted(RowStream.From(data)), o, null, new StreamingOptions { ShuffleBufferRows = 2000 });
        Assert.Equal(500, memory.TrainingSummary!.EpochsRun);
        Assert.Equal(500, streamed.TrainingSummary!.EpochsRun);
        Assert.Equal(memory.ToBytes(), streamed.ToBytes());
    }

    private static DeepGmmOptions Gmm(DeepGmmInitialization init = DeepGmmInitialization.Greedy, double validation = 0) => new()
    {
        Layers = new[] { 3, 2 }, MaxIterations = 4, Initialization = init, ValidationFraction = validation, Seed = 4,
    };

    [Fact]
    public void DeepGmmStreamedThroughABufferHoldingThePassEqualsInMemoryEm()
    {
        var data = Materialize(new GeneratedRows(900, 3, 11));
        var valid = Materialize(new GeneratedRows(200, 3, 12));
        // The pretrained top layer (the default initialisation) keeps its best pretraining iteration on validation, which
        // with hard EM need not be its last (here: four top components for two clusters): the streamed run must pretrain
        // with the validation rows too.
        foreach (var init in new[] { DeepGmmInitialization.Greedy, DeepGmmInitialization.PretrainedTopLayer })
            foreach (var em in new[] { DeepGmmEmKind.Hard, DeepGmmEmKind.Soft })
            {
                var o = Gmm(init);
                o.Em = em;
                if (init == DeepGmmInitialization.PretrainedTopLayer) o.Layers = new[] { 2, 4 };
                var memory = DeepGmmModel.Fit(data, o, valid);
                var streamed = DeepGmmModel.Fit(RowStream.From(data), o, RowStream.From(valid), new StreamingOptions { ShuffleBufferRows = 900 });
                Assert.True(memory.ToBytes().AsSpan().SequenceEqual(streamed.ToBytes()), $"{init} initialisation, {em} EM: streamed ≠ in memory");
            }
    }

    [Fact]
    public void DeepGmmStreamedInSmallWindowsMatchesInMemoryQualityAndIsThreadCountFree()
    {
        var stream = new GeneratedRows(4000, 3, 13);
        var test = Materialize(new GeneratedRows(1000, 3, 14));
        var streaming = new StreamingOptions { ShuffleBufferRows = 300, SampleRows = 1000 };
        var o = Gmm(DeepGmmInitialization.PretrainedTopLayer, validation: 0.1);
        var streamed = DeepGmmModel.Fit(stream, o, null, streaming);
        var memory = DeepGmmModel.Fit(Materialize(stream), o);
        double ls = streamed.AverageLogDensity(test), lm = memory.AverageLogDensity(test);
        Assert.True(Math.Abs(ls - lm) < 0.1, $"streamed {ls:F4} vs in memory {lm:F4}");
        DeepDensityEnvironment.MaxDegreeOfParallelism = 1;
        try { Assert.Equal(streamed.ToBytes(), DeepGmmModel.Fit(stream, o, null, streaming).ToBytes()); }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = -1; }
        var tooMany = Assert.Throws<NotSupportedException>(() => DeepGmmModel.Fit(stream, new DeepGmmOptions { Layers = new[] { 20, 20 } }, null, streaming));
        Assert.Contains("the network has 400 paths, more than ExactPathLimit = 256", tooMany.Message);
        // An explicit heuristic E-step is named as the reason (the network's 4 paths are within the limit).
        var heuristic = Assert.Throws<NotSupportedException>(() => DeepGmmModel.Fit(stream, new DeepGmmOptions { Layers = new[] { 2, 2 }, EStep = DeepGmmEStep.Heuristic }, null, streaming));
        Assert.Contains("EStep = Heuristic; set EStep = Exact or Auto", heuristic.Message);
        Assert.DoesNotContain("more than ExactPathLimit", heuristic.Message);
    }

    [Fact]
    public void DeepRnadeStreamedThroughABufferHoldingThePassEqualsInMemoryTraining()
    {
        var data = Materialize(new GeneratedRows(500, 4, 21));
        var o = new DeepRnadeOptions { HiddenUnits = 8, HiddenLayers = 2, Components = 2, MaxEpochs = 2, BatchSize = 25, ValidationFraction = 0, Seed = 2 };
        var memory = DeepRnadeModel.Fit(data, o);
        var streamed = DeepRnadeModel.Fit(RowStream.From(data), o, null, new StreamingOptions { ShuffleBufferRows = 500 });
        Assert.Equal(memory.ToBytes(), streamed.ToBytes());
    }

    [Fact]
    public void ASmallBufferTrainsAsWellAndTheSameBytesOnOneAndAllThreads()
    {
        var stream = new GeneratedRows(3000, 4, 7);
        var test = Materialize(new GeneratedRows(1000, 4, 8));
        var streaming = new StreamingOptions { ShuffleBufferRows = 256 };
        var streamed = RnadeModel.Fit(stream, Rnade(8, validation: 0.1), null, streaming);
        var memory = RnadeModel.Fit(Materialize(stream), Rnade(8, validation: 0.1));
        double ls = streamed.AverageLogDensity(test), lm = memory.AverageLogDensity(test);
        Assert.True(Math.Abs(ls - lm) < 0.15, $"streamed {ls:F4} vs in memory {lm:F4}");
        DeepDensityEnvironment.MaxDegreeOfParallelism = 1;
        try { Assert.Equal(streamed.ToBytes(), RnadeModel.Fit(stream, Rnade(8, validation: 0.1), null, streaming).ToBytes()); }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = -1; }
    }

    /// <summary>Records the rows of every batch (a one-column stream whose value is the row number).</summary>
    private sealed class Recorder : ITrainableModel
    {
        public readonly List<float[]> Batches = new();
        public double Step(TrainingStep step) { Batches.Add(step.Batch.Rows.ToArray()); return 0; }
        public EpochFigures? EndEpoch(TrainingEpoch epoch) => new(0, null);
        public object Snapshot() => 0;
        public void Restore(object snapshot) { }
        public void ResetAfterDivergence() { }
    }

    [Fact]
    public void TheShuffleIsAPermutationWithinEachWindowAndWindowsComeInStreamOrder()
    {
        var m = new RowMatrix(95, 1);
        for (int i = 0; i < m.Rows; i++) m[i, 0] = i;
        var model = new Recorder();
        var options = new TrainingDriverOptions { MaxEpochs = 2, BatchSize = 10, Root = new RandomStream(9) };
        TrainingDriver.Run(model, new StreamingTrainingData(RowStream.From(m), new StreamingOptions { ShuffleBufferRows = 25 }), options, null, default);
        // A 25-row buffer is rounded up to 30 rows (whole batches): windows [0, 30), [30, 60), [60, 90), [90, 95).
        Assert.Equal(2 * 10, model.Batches.Count);
        for (int epoch = 0; epoch < 2; epoch++)
        {
            var batches = model.Batches.Skip(epoch * 10).Take(10).ToList();
            Assert.Equal(Enumerable.Range(0, 95).Select(i => (float)i), batches.SelectMany(b => b).Order());
            for (int b = 0; b < 10; b++)
            {
                int window = b / 3;
                Assert.All(batches[b], v => Assert.Equal(window, (int)v / 30));
            }
            Assert.NotEqual(Enumerable.Range(0, 30).Select(i => (float)i), batches.Take(3).SelectMany(x => x)); // shuffled
        }
        Assert.NotEqual(model.Batches[0], model.Batches[10]); // a new permutation every epoch
        // A buffer holding the pass gives the in-memory batches.
        var memory = new Recorder();
        TrainingDriver.Run(memory, TrainingData.From(m), options, null, default);
        var whole = new Recorder();
        TrainingDriver.Run(whole, new StreamingTrainingData(RowStream.From(m), new StreamingOptions { ShuffleBufferRows = 95 }), options, null, default);
        Assert.Equal(memory.Batches, whole.Batches);
    }

    [Fact]
    public void TheHashSplitIsDisjointCoversEveryRowAndHoldsOutAboutTheFraction()
    {
        var m = new RowMatrix(20_000, 1);
        for (int i = 0; i < m.Rows; i++) m[i, 0] = i;
        var (train, valid) = StreamingTrainingData.Split(RowStream.From(m), 0.1, 42);
        var t = Read(train); var v = Read(valid!);
        Assert.Equal(m.Rows, t.Count + v.Count);
        Assert.Empty(t.Intersect(v));
        Assert.InRange(v.Count, 1800, 2200);
        Assert.Equal(v, Read(StreamingTrainingData.Split(RowStream.From(m), 0.1, 42).Validation!)); // the same rows every pass
        Assert.NotEqual(v, Read(StreamingTrainingData.Split(RowStream.From(m), 0.1, 43).Validation!));
    }

    /// <summary>On a stream of a few rows the hashed split can hold out none (12 rows, fraction 0.1, seed 4): the fit then
    /// trains without validation, as in memory when ⌊n · fraction⌋ is 0. The gradient loop's 0 / 0 validation figure
    /// used to read as a divergence ("did not recover after 3 restarts … standardise the inputs"), and the RBM reported a
    /// NaN validation figure.</summary>
    [Fact]
    public void AHashSplitThatHoldsOutNoRowTrainsWithoutValidation()
    {
        const int n = 12;
        const ulong seed = 4;
        var rng = new RandomStream(seed);
        var real = new RowMatrix(n, 3);
        var binary = new RowMatrix(n, 3);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < 3; j++) { real[i, j] = (float)rng.NextGaussian(); binary[i, j] = rng.NextDouble() < 0.5 ? 1 : 0; }
        Assert.Empty(Read(StreamingTrainingData.Split(RowStream.From(real), 0.1, seed).Validation!));

        var rnade = RnadeModel.Fit(RowStream.From(real), new RnadeOptions { HiddenUnits = 4, Components = 2, MaxEpochs = 2, Seed = seed }, null, null);
        Assert.All(rnade.TrainingSummary!.History, p => Assert.Null(p.ValidationLogLikelihood));
        Assert.Equal(0, rnade.TrainingSummary.DivergenceRecoveries);
        var rbm = RbmModel.Fit(RowStream.From(binary), new RbmOptions { HiddenUnits = 4, MaxEpochs = 2, ValidationFraction = 0.1, Seed = seed }, null, null);
        Assert.All(rbm.TrainingSummary!.History, p => Assert.Null(p.ValidationLogLikelihood));
        var gmm = DeepGmmModel.Fit(RowStream.From(real), new DeepGmmOptions { Layers = new[] { 2 }, MaxIterations = 2, Seed = seed }, null, null);
        Assert.All(gmm.TrainingSummary!.History, p => Assert.Null(p.ValidationLogLikelihood));
    }

    private static List<float> Read(IRowStream s)
    {
        var result = new List<float>();
        var buf = new float[100];
        using var c = s.Open();
        for (int n; (n = c.Read(buf)) > 0;) result.AddRange(buf.AsSpan(0, n * s.Width).ToArray());
        return result;
    }

    [Fact]
    public void ABadValueIsNamedByItsRowAndColumn()
    {
        var data = Materialize(new GeneratedRows(5000, 4, 1));
        data[4321, 2] = float.NaN;
        var e = Assert.Throws<DataValidationException>(() => RnadeModel.Fit(RowStream.From(data), Rnade(), null, null));
        Assert.Equal(4321, e.Row);
        Assert.Equal(2, e.Column);
        var bits = Materialize(new GeneratedRows(100, 10, 1, binary: true));
        bits[77, 9] = 0.5f;
        var b = Assert.Throws<DataValidationException>(() => RbmModel.Fit(RowStream.From(bits), new RbmOptions { HiddenUnits = 4, MaxEpochs = 1 }, null, null));
        Assert.Equal(77, b.Row);
        Assert.Equal(9, b.Column);
    }

    /// <summary>A user's cursor that breaks <see cref="IRowCursor.Read"/>'s contract: after <paramref name="goodRows"/>
    /// rows it returns <paramref name="badCount"/> (−1, as Java's readers do at the end; or more rows than fit).</summary>
    private sealed class MisreportingRows(IRowStream inner, int goodRows, Func<int, int> badCount) : IRowStream
    {
        public int Width => inner.Width;
        public long? Count => inner.Count;
        public IRowCursor Open() => new Cursor(inner.Open(), goodRows, badCount, Width);

        private sealed class Cursor(IRowCursor inner, int goodRows, Func<int, int> badCount, int width) : IRowCursor
        {
            private int _read;
            public int Read(Span<float> destination)
            {
                if (_read >= goodRows) return badCount(destination.Length / width);
                int n = inner.Read(destination[..(Math.Min(destination.Length / width, goodRows - _read) * width)]);
                _read += n;
                return n;
            }
            public void Dispose() => inner.Dispose();
        }
    }

    /// <summary>
    /// A cursor that returns a negative count or more rows than its destination holds is refused, naming the data and
    /// the count: a −1 (the end-of-stream value of Java's and C's readers) made a streamed Fit with a validation
    /// fraction loop forever (the hashed split read again for a kept row), and a count beyond the destination trained
    /// on whatever the buffer held past the rows read.
    /// </summary>
    [Theory]
    [InlineData(-1, 0.1)]
    [InlineData(-1, 0.0)]
    [InlineData(+5, 0.1)]
    [InlineData(+5, 0.0)]
    public async Task ACursorReturningAnImpossibleRowCountIsRefused(int extra, double validationFraction)
    {
        var data = new MisreportingRows(new GeneratedRows(300, 4, 1), 300, room => extra < 0 ? extra : room + extra);
        var fit = Task.Run(() => RnadeModel.Fit(data, Rnade(validation: validationFraction), null, null));
        Assert.Same(fit, await Task.WhenAny(fit, Task.Delay(TimeSpan.FromSeconds(30)))); // else the Fit hung
        var e = await Assert.ThrowsAsync<DataValidationException>(() => fit);
        Assert.Equal(DataValidation.TrainingData, e.DataSource);
        Assert.Equal(300, e.Row);
        Assert.Contains($"the cursor returned {(extra < 0 ? extra : 4096 + extra)} rows", e.Message);
        // The same for a validation stream.
        var valid = new MisreportingRows(new GeneratedRows(50, 4, 2), 10, _ => -1);
        var v = Assert.Throws<DataValidationException>(() => RnadeModel.Fit(new GeneratedRows(300, 4, 1), Rnade(), valid, null));
        Assert.Equal(DataValidation.ValidationData, v.DataSource);
    }

    /// <summary>A stream that breaks "every pass yields the same rows in the same order" from its pass
    /// <paramref name="fromPass"/> on (1-based): the rows of <paramref name="inner"/> with <paramref name="extraRows"/>
    /// rows more (or fewer) and row <paramref name="changedRow"/> altered; its Count is the inner one's, or null.</summary>
    private sealed class ChangingRows(GeneratedRows inner, int fromPass, int extraRows = 0, long changedRow = -1, bool counted = true) : IRowStream
    {
        private int _passes;
        public int Width => inner.Width;
        public long? Count => counted ? inner.Count : null;
        public IRowCursor Open()
        {
            bool changed = ++_passes >= fromPass;
            return new Cursor(inner.Open(), Width, inner.Count!.Value + (changed ? extraRows : 0), changed ? changedRow : -1);
        }

        private sealed class Cursor(IRowCursor inner, int width, long rows, long changedRow) : IRowCursor
        {
            private long _next;
            public int Read(Span<float> destination)
            {
                int n = (int)Math.Min(rows - _next, destination.Length / width);
                if (n <= 0) return 0;
                int got = inner.Read(destination[..(n * width)]);
                for (int r = got; r < n; r++) destination.Slice(r * width, width).Fill(0.25f); // rows beyond the inner stream's
                if (changedRow >= _next && changedRow < _next + n) destination[(int)(changedRow - _next) * width] += 1;
                _next += n;
                return n;
            }
            public void Dispose() => inner.Dispose();
        }
    }

    /// <summary>
    /// Every pass of a streamed Fit must be the first pass again; one that is not is refused, naming the data, what
    /// changed and what to do. A stream whose passes differed (other values, more or fewer rows, or more rows than its
    /// Count) trained silently on other rows every epoch, its hashed validation rows trained on in other epochs.
    /// Checked by RNADE (the gradient loop) and Deep GMM (streamed EM's own passes); IWAE and the RBM go through the
    /// same checked stream.
    /// </summary>
    [Theory]
    [InlineData(0.0)]
    [InlineData(0.1)]
    public void APassThatDiffersFromTheFirstIsRefused(double validation)
    {
        var fits = new Func<IRowStream, DensityModel>[]
        {
            s => RnadeModel.Fit(s, Rnade(3, validation), null, new StreamingOptions { ShuffleBufferRows = 128 }),
            s => DeepGmmModel.Fit(s, Gmm(validation: validation), null, new StreamingOptions { ShuffleBufferRows = 128 }),
        };
        foreach (var fit in fits)
        {
            void Refused(IRowStream s, string problem, long row)
            {
                var e = Assert.Throws<DataValidationException>(() => fit(s));
                Assert.Equal(DataValidation.TrainingData, e.DataSource);
                Assert.Contains(problem, e.Message);
                Assert.Contains("needs every pass to yield the same rows in the same order", e.Message);
                Assert.Equal(row, e.Row);
            }
            Refused(new ChangingRows(new GeneratedRows(500, 3, 1), fromPass: 3, changedRow: 321), "read other values than the first pass: the same 500 rows", -1);
            Refused(new ChangingRows(new GeneratedRows(500, 3, 1), fromPass: 3, extraRows: -7), "ended after 493 rows, but the data says it has 500", 493);
            Refused(new ChangingRows(new GeneratedRows(500, 3, 1), fromPass: 1, extraRows: 5), "read more rows than the data says it has (500", 500);
            // Without a known count the first pass sets the length.
            Refused(new ChangingRows(new GeneratedRows(500, 3, 1), fromPass: 3, changedRow: 0, counted: false), "read other values than the first pass", -1);
            Refused(new ChangingRows(new GeneratedRows(500, 3, 1), fromPass: 3, extraRows: 5, counted: false), "read more rows than the first pass (500)", 500);
            Refused(new ChangingRows(new GeneratedRows(500, 3, 1), fromPass: 3, extraRows: -5, counted: false), "ended after 495 rows, the first pass after 500", 495);
            // Passes that are the same pass again train as before.
            Assert.Equal(fit(new GeneratedRows(500, 3, 1)).ToBytes(), fit(new ChangingRows(new GeneratedRows(500, 3, 1), fromPass: 1)).ToBytes());
        }
        // The same for a validation stream.
        var v = Assert.Throws<DataValidationException>(() => RnadeModel.Fit(new GeneratedRows(300, 3, 1), Rnade(3),
            new ChangingRows(new GeneratedRows(100, 3, 2), fromPass: 3, changedRow: 50), null));
        Assert.Equal(DataValidation.ValidationData, v.DataSource);
        Assert.Contains("read other values than the first pass", v.Message);
    }

    /// <summary>The pass check's fingerprint on rows of every width it handles apart (scalar pairs and an odd tail; one,
    /// several and a partial group of 64-byte pieces; 784 columns): a second pass with any one value changed, at the
    /// first, last or any column of a row, or with two rows swapped, is refused; the same pass again is not.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(16)]
    [InlineData(17)]
    [InlineData(64)]
    [InlineData(100)]
    [InlineData(784)]
    public void TheFingerprintSeesAnyOneChangedValueOfAWideRow(int width)
    {
        var rng = new Random(width);
        var rows = new float[5 * width];
        for (int i = 0; i < rows.Length; i++) rows[i] = rng.Next(3) - 1;
        static long ReadAll(IRowStream stream)
        {
            using var cursor = stream.Open();
            var buffer = new float[2 * stream.Width];   // passes cut into reads of two rows
            long total = 0;
            for (int n; (n = cursor.Read(buffer)) > 0;) total += n;
            return total;
        }
        IRowStream Checked(float[] second)
        {
            var passes = new[] { rows, second };
            int pass = 0;
            var stream = RowStream.Checked(new PassesOf(passes, width, () => pass++), InputDomain.Real, DataValidation.TrainingData);
            Assert.Equal(5, ReadAll(stream));
            return stream;
        }
        Assert.Equal(5, ReadAll(Checked(rows.ToArray())));
        var columns = new[] { 0, 1, width / 2, 15, 16, 63, 64, 70, width - 1 }.Where(c => c < width).Distinct();
        foreach (int column in columns)
        {
            var changed = rows.ToArray();
            changed[3 * width + column] += 0.5f;
            var e = Assert.Throws<DataValidationException>(() => ReadAll(Checked(changed)));
            Assert.Contains("read other values than the first pass", e.Message);
        }
        var swapped = rows.ToArray();
        rows.AsSpan(1 * width, width).CopyTo(swapped.AsSpan(2 * width));
        rows.AsSpan(2 * width, width).CopyTo(swapped.AsSpan(1 * width));
        if (!rows.AsSpan(width, width).SequenceEqual(rows.AsSpan(2 * width, width)))
            Assert.Throws<DataValidationException>(() => ReadAll(Checked(swapped)));
    }

    /// <summary>A stream whose pass i reads <paramref name="passes"/>[i] (the callback counts the passes).</summary>
    private sealed class PassesOf(float[][] passes, int width, Func<int> nextPass) : IRowStream
    {
        public int Width => width;
        public long? Count => passes[0].Length / width;
        public IRowCursor Open() => new RowMatrixCursor(passes[nextPass()], width);

        private sealed class RowMatrixCursor(float[] values, int width) : IRowCursor
        {
            private int _next;
            public int Read(Span<float> destination)
            {
                int n = Math.Min(values.Length / width - _next, destination.Length / width);
                values.AsSpan(_next * width, n * width).CopyTo(destination);
                _next += n;
                return n;
            }
            public void Dispose() { }
        }
    }

    [Fact]
    public void CancellationStopsAStreamedFit()
    {
        using var cts = new CancellationTokenSource();
        var progress = new Progress(() => cts.Cancel());
        Assert.ThrowsAny<OperationCanceledException>(() =>
            RnadeModel.Fit(new GeneratedRows(20_000, 4, 1), Rnade(50), null, new StreamingOptions { ShuffleBufferRows = 1000 }, progress, cts.Token));
    }

    /// <summary>Rows of <paramref name="inner"/> that cancel <paramref name="cts"/> at the first read of their pass
    /// <paramref name="pass"/> and count the rows that pass reads.</summary>
    private sealed class CancellingRows(IRowStream inner, CancellationTokenSource cts, int pass) : IRowStream
    {
        private int _passes;
        public long RowsOfThatPass;
        public int Width => inner.Width;
        public long? Count => inner.Count;
        public IRowCursor Open() => ++_passes == pass ? new Cursor(inner.Open(), this, cts) : inner.Open();

        private sealed class Cursor(IRowCursor inner, CancellingRows owner, CancellationTokenSource cts) : IRowCursor
        {
            public int Read(Span<float> destination)
            {
                cts.Cancel();
                int n = inner.Read(destination);
                owner.RowsOfThatPass += n;
                return n;
            }
            public void Dispose() => inner.Dispose();
        }
    }

    /// <summary>The validation pass of the gradient loop (RNADE, deep RNADE, IWAE) observes the Fit's token: it read its
    /// stream to the end first (50,000 rows here; a hashed validation split reads the whole training stream).</summary>
    [Fact]
    public void CancellationStopsAStreamedValidationPass()
    {
        using var cts = new CancellationTokenSource();
        var validation = new CancellingRows(new GeneratedRows(50_000, 2, 2), cts, pass: 1);
        Assert.ThrowsAny<OperationCanceledException>(() =>
            RnadeModel.Fit(new GeneratedRows(300, 2, 1), Rnade(3), validation, null, null, cts.Token));
        Assert.InRange(validation.RowsOfThatPass, 1, RowStream.BlockRows);
    }

    private sealed class Progress(Action onReport) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => onReport();
    }

    /// <summary>
    /// Memory is O(buffer + batch + model): the live heap at every read of the stream (after a full collection, so it
    /// is what training holds then, shuffle buffer and windows included) peaks at about the same on 4× the rows; the
    /// data is never held. The buffer (4,096 rows) is far smaller than the extra rows (150,000).
    /// </summary>
    [Theory]
    [InlineData("rnade")]
    [InlineData("rbm")]
    [InlineData("deepgmm")]
    public void PeakMemoryOfStreamedTrainingDoesNotGrowWithTheRows(string model)
    {
        var streaming = new StreamingOptions { ShuffleBufferRows = 4096, SampleRows = 2048 };
        int width = model == "rbm" ? 16 : 6;
        long Peak(int rows)
        {
            var s = new GeneratedRows(rows, width, 1, binary: model == "rbm") { MeasurePeak = true };
            DensityModel m = model switch
            {
                "rnade" => RnadeModel.Fit(s, RnadeBig(), null, streaming),
                "rbm" => RbmModel.Fit(s, RbmFor(1), null, streaming),
                _ => DeepGmmModel.Fit(s, new DeepGmmOptions { Layers = new[] { 2, 2 }, MaxIterations = 1, Seed = 1 }, null, streaming),
            };
            GC.KeepAlive(m);
            return s.PeakLiveBytes;
        }
        Peak(2000); // JIT and one-time statics outside the measurement
        long small = Peak(50_000), large = Peak(200_000);
        long extraRows = 150_000L * width * sizeof(float);
        Assert.True(large - small < extraRows / 8,
            $"{model}: peak live heap {large / 1024} KiB on 200k rows vs {small / 1024} KiB on 50k rows (the extra rows hold {extraRows / 1024} KiB)");
    }

    private static RbmOptions RbmFor(int epochs) => new() { HiddenUnits = 8, MaxEpochs = epochs, BatchSize = 1000, Seed = 1 };

    private static RnadeOptions RnadeBig() { var o = Rnade(1, 0.1); o.BatchSize = 1000; return o; }

}
