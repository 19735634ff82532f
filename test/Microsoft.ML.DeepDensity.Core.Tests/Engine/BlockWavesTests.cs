using System.Collections.Concurrent;
using Microsoft.ML.DeepDensity.Training;
using Xunit;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

/// <summary>The blocked objectives' shared skeleton: every block once, in its wave's slot, waves reduced in order, cancellation between waves.</summary>
public class BlockWavesTests
{
    [Theory]
    [InlineData(1, 16)]
    [InlineData(16, 16)]
    [InlineData(17, 16)]
    [InlineData(40, 16)]
    [InlineData(23, 5)]
    public void EveryBlockRunsOnceInItsWaveSlotAndWavesAreReducedInOrder(int blocks, int perWave)
    {
        var seen = new ConcurrentDictionary<int, int>();
        var waves = new List<(int Blocks, bool First)>();
        int reducedBlocks = 0;
        BlockWaves.Run(blocks, (b, slot) =>
        {
            Assert.True(seen.TryAdd(b, slot), $"block {b} ran twice");
            Assert.True(b >= Volatile.Read(ref reducedBlocks), $"block {b} ran after its wave was reduced");
        }, (n, first) => { waves.Add((n, first)); reducedBlocks += n; }, CancellationToken.None, perWave);
        Assert.Equal(blocks, seen.Count);
        foreach (var (b, slot) in seen) Assert.Equal(b % perWave, slot);
        Assert.Equal((blocks + perWave - 1) / perWave, waves.Count);
        Assert.Equal(blocks, waves.Sum(w => w.Blocks));
        Assert.True(waves[0].First);
        Assert.All(waves.Skip(1), w => Assert.False(w.First));
        Assert.All(waves.SkipLast(1), w => Assert.Equal(perWave, w.Blocks));
    }

    [Fact]
    public void CancellationStopsBeforeTheNextWave()
    {
        using var cts = new CancellationTokenSource();
        int ran = 0;
        Assert.Throws<OperationCanceledException>(() =>
            BlockWaves.Run(40, (b, _) => Interlocked.Increment(ref ran), (_, _) => cts.Cancel(), cts.Token));
        Assert.Equal(BlockWaves.BlocksPerWave, ran);
    }

    [Theory]
    [InlineData(100, 50, 2, 50)]
    [InlineData(101, 50, 3, 1)]
    [InlineData(1, 50, 1, 1)]
    public void BlocksCoverTheRows(int count, int perBlock, int blocks, int lastRows)
    {
        Assert.Equal(blocks, BlockWaves.BlockCount(count, perBlock));
        var (start, rows) = BlockWaves.RowsOf(blocks - 1, count, perBlock);
        Assert.Equal((blocks - 1) * perBlock, start);
        Assert.Equal(lastRows, rows);
    }
}
