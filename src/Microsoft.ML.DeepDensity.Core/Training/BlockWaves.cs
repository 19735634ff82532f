using Microsoft.ML.DeepDensity.Layers;

namespace Microsoft.ML.DeepDensity.Training;

/// <summary>
/// How a blocked objective (RNADE, deep RNADE, IWAE, NVIL) runs one minibatch: fixed blocks of rows, in parallel waves
/// of at most <see cref="BlocksPerWave"/> blocks, each block writing its own sum and gradient buffer, the gradients then
/// added in block order.
/// </summary>
/// <remarks>
/// The blocks are fixed by the row count, never by the thread count, and every reduction runs in block order, so a
/// minibatch gives the same bits on any number of threads and in any number of waves. Waves bound memory by the wave
/// (a 200k-row batch once held 4,000 workspaces: a block's workspace is reused by the block in the same place of the
/// next wave) and let cancellation in between them. The models keep what differs: their workspaces, what a block
/// computes, and how their gradient buffers are laid out.
/// </remarks>
internal static class BlockWaves
{
    /// <summary>Blocks run at once: the workspaces a minibatch needs, whatever its size.</summary>
    public const int BlocksPerWave = 16;

    /// <summary>Blocks of at most <paramref name="rowsPerBlock"/> rows that hold <paramref name="count"/> rows.</summary>
    public static int BlockCount(int count, int rowsPerBlock) => (count + rowsPerBlock - 1) / rowsPerBlock;

    /// <summary>First row and row count of block <paramref name="block"/>.</summary>
    public static (int Start, int Rows) RowsOf(int block, int count, int rowsPerBlock)
    {
        int start = block * rowsPerBlock;
        return (start, Math.Min(rowsPerBlock, count - start));
    }

    /// <summary>
    /// Runs <paramref name="body"/>(block, slot) for every block, a wave at a time (slot: the block's place in its wave,
    /// which picks its workspace), the blocks of a wave in parallel. Cancellation is checked before each wave, and
    /// <paramref name="afterWave"/>(blocks in the wave, whether it is the first wave) runs after each one: the gradient
    /// reduction, which must add to the earlier waves' sums after the first.
    /// </summary>
    public static void Run(int blocks, Action<int, int> body, Action<int, bool>? afterWave, CancellationToken cancellationToken,
        int blocksPerWave = BlocksPerWave)
    {
        for (int first = 0; first < blocks; first += blocksPerWave)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int wave = Math.Min(blocksPerWave, blocks - first);
            if (wave == 1) body(first, 0);
            else DeepDensityEnvironment.For(0, wave, i => body(first + i, i));
            afterWave?.Invoke(wave, first == 0);
        }
    }
}

/// <summary>
/// Gradient buffers of a blocked objective whose blocks back-propagate into a <see cref="GradientBuffers"/> (IWAE, NVIL):
/// the first block writes straight into the parameters' own gradients, every other block into a private buffer, added
/// after its wave in block order. Later waves use the private buffers only (the parameters' gradients then hold the
/// running sum).
/// </summary>
internal sealed class BlockGradients
{
    private readonly ParameterSet _parameters;
    private readonly List<GradientBuffers> _buffers = new();

    public BlockGradients(ParameterSet parameters)
    {
        _parameters = parameters;
        _buffers.Add(GradientBuffers.Of(parameters));
    }

    /// <summary>Creates the private buffers a minibatch of <paramref name="blocks"/> blocks needs (kept for later ones).</summary>
    public void Ensure(int blocks, int blocksPerWave = BlockWaves.BlocksPerWave)
    {
        while (_buffers.Count < (blocks > blocksPerWave ? blocksPerWave + 1 : blocks)) _buffers.Add(GradientBuffers.Create(_parameters));
    }

    /// <summary>The buffer of the block in place <paramref name="slot"/> of its wave.</summary>
    public GradientBuffers For(int slot, bool firstWave) => _buffers[firstWave ? slot : slot + 1];

    /// <summary>Adds a wave's buffers to the parameters' gradients in block order (the first wave's first block is already there).</summary>
    public void Reduce(int blocksInWave, bool firstWave)
    {
        if (firstWave) { if (blocksInWave > 1) GradientBuffers.SumInto(_parameters, _buffers, blocksInWave); }
        else GradientBuffers.AddInto(_parameters, _buffers, 1, blocksInWave);
    }
}
