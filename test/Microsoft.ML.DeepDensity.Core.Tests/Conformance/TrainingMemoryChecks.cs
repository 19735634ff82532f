using System.Diagnostics;
using Microsoft.ML.DeepDensity.Data;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>
/// Issue 13 (7): training memory is bounded by the block and the model, not by the minibatch. RNADE with a 200k-row
/// minibatch used to peak at 6.8 GB because every block of the batch kept its own buffers. The check fits one epoch on
/// the same data with minibatches of B and of 8B (the whole training set) and compares what the fits allocate in all
/// threads: the larger batch may add the copy of its inputs gathered for the step and per-row state of the algorithm
/// that is no larger than another copy (NVIL's learning signal, K × layers floats per row; PCD's persistent chains,
/// hidden units per chain when the chains default to the batch size), never per-row scratch (activations, gradients,
/// Gibbs buffers, per-block workspaces). Every model case with a minibatch setting, row and sequence models, inherits it.
/// </summary>
/// <remarks>In the serial collection: <see cref="GC.GetTotalAllocatedBytes"/> counts every thread of the process, so no
/// other test may run meanwhile.</remarks>
[Collection(EngineSettingsCollection.Name)]
public class TrainingMemoryChecks
{
    /// <summary>Allocation the larger batch may add beyond copies of its inputs (buffers sized by the batch's count of
    /// examples, such as index arrays, and the allocator's noise).</summary>
    private const long Slack = 2L << 20;

    private const int Rows = 65_536;

    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void TrainingMemoryIsBoundedByTheBlockNotTheBatch(string name)
    {
        var c = ModelCases.Get(name);
        if (!c.HasBatchSize) return; // not applicable: full-batch training (Deep GMM's EM; its per-row state is documented)
        var data = c.MakeData(Rows, 12345);
        c.Fit(new FitRequest(c.MakeData(500, 1), 1) { Epochs = 1, BatchSize = 50 }); // JIT and one-time statics outside the measurement
        long small = Allocated(() => c.Fit(new FitRequest(data, 1) { Epochs = 1, BatchSize = Rows / 8 }));
        long large = Allocated(() => c.Fit(new FitRequest(data, 1) { Epochs = 1, BatchSize = Rows }));
        long inputCopies = 2L * Rows * data.Columns * sizeof(float);
        Assert.True(large - small <= inputCopies + Slack,
            $"{name}: a minibatch of {Rows} rows allocated {(large - small) / 1024} KiB more than one of {Rows / 8} " +
            $"({small / 1024} KiB vs {large / 1024} KiB); allowed: two copies of the inputs ({inputCopies / 1024} KiB) + {Slack / 1024} KiB");
    }

    /// <summary>A minibatch processed in several waves or chunks (16,384 rows in one batch) trains to the same bytes with
    /// one thread and with all: the split of a large batch is fixed by the data, never by the thread count.</summary>
    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void AHugeMinibatchTrainsToTheSameBytesAtAnyThreadCount(string name)
    {
        var c = ModelCases.Get(name);
        if (!c.HasBatchSize) return;
        const int rows = 16_384;
        var data = c.MakeData(rows, 777);
        byte[] Fit() => c.Fit(new FitRequest(data, 3) { Epochs = 2, BatchSize = rows }).ToBytes();
        var all = Fit();
        DeepDensityEnvironment.MaxDegreeOfParallelism = 1;
        try { Assert.Equal(all, Fit()); }
        finally { DeepDensityEnvironment.MaxDegreeOfParallelism = -1; }
    }

    [Theory, MemberData(nameof(SequenceModelCases.Names), MemberType = typeof(SequenceModelCases))]
    public void SequenceTrainingMemoryIsBoundedByTheBlockNotTheBatch(string name)
    {
        var c = SequenceModelCases.Get(name);
        if (!c.HasBatchSize) return; // not applicable: no minibatch setting
        const int sequences = 16_384;
        var data = c.MakeData(sequences, 12345);
        c.Fit(new SequenceFitRequest(c.MakeData(100, 1), 1) { Epochs = 1, BatchSize = 10 });
        long small = Allocated(() => c.Fit(new SequenceFitRequest(data, 1) { Epochs = 1, BatchSize = sequences / 8 }));
        long large = Allocated(() => c.Fit(new SequenceFitRequest(data, 1) { Epochs = 1, BatchSize = sequences }));
        // Copies of the inputs: values and, per sequence, its offset, length and index (a few ints).
        long inputCopies = 2L * data.TotalFrames * data.FrameSize * sizeof(float) + 4L * sequences * sizeof(int);
        Assert.True(large - small <= inputCopies + Slack,
            $"{name}: a minibatch of {sequences} sequences allocated {(large - small) / 1024} KiB more than one of {sequences / 8} " +
            $"({small / 1024} KiB vs {large / 1024} KiB); allowed: copies of the inputs ({inputCopies / 1024} KiB) + {Slack / 1024} KiB");
    }

    /// <summary>Issue 13 (7) for sequence models: one minibatch of 50,000 sequences stops within a second of cancellation.</summary>
    [Theory, MemberData(nameof(SequenceModelCases.Names), MemberType = typeof(SequenceModelCases))]
    public void SequenceCancellationStopsAHugeMinibatchWithinOneSecond(string name)
    {
        var c = SequenceModelCases.Get(name);
        if (!c.HasBatchSize) return;
        const int sequences = 50_000;
        var data = c.MakeData(sequences, 12345);
        CancellationChecks.AssertCancelsWithinOneSecond(token => c.Fit(new SequenceFitRequest(data, 1) { Epochs = FitRequest.Unbounded, BatchSize = sequences, CancellationToken = token }));
    }

    private static long Allocated(Action fit)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long before = GC.GetTotalAllocatedBytes(precise: true);
        fit();
        return GC.GetTotalAllocatedBytes(precise: true) - before;
    }
}
