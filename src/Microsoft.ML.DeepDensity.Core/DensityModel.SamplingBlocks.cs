using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity;

/// <summary>
/// The sampling skeleton of the row models that draw their rows in fixed blocks (RNADE, Deep RNADE, Deep GMM and the
/// importance-sampled models): such a model gives its block size (<see cref="SamplingBlockRows"/>) and how to draw one
/// block (<see cref="DrawSamplingBlock"/>); the whole draw (<c>SampleCore</c>) and a part of it (<c>SampleRangeCore</c>,
/// read by the lazy sample views) are drawn here, from the same blocks, so a part is the whole draw's rows bit for bit.
/// </summary>
public abstract partial class DensityModel
{
    /// <summary>Rows per sampling block of a model that draws its rows in fixed blocks through
    /// <see cref="DrawSamplingBlock"/>, or 0 (the default): the model samples otherwise (its own <c>SampleCore</c>, or
    /// the RBM's Gibbs chains). A reader's parts that are whole, aligned multiples of a block draw no row twice.</summary>
    private protected virtual int SamplingBlockRows => 0;

    /// <summary>Whether the model draws its rows in blocks here (see <see cref="SamplingBlockRows"/>).</summary>
    private bool SamplesInBlocks => SamplingBlockRows > 0;

    /// <summary>
    /// Draws the sampling block of rows [<paramref name="start"/>, start + <paramref name="n"/>) of a draw into
    /// <paramref name="block"/> (n × Dimension floats), from the draw's root stream <paramref name="root"/> only (a row
    /// should draw from <c>root.Fork(row)</c>, or a block from <c>root.Fork(block index)</c>), so that a row depends on
    /// (seed, row) alone. n is <see cref="SamplingBlockRows"/> but for the draw's last block; blocks run in parallel.
    /// Called only for a model with <see cref="SamplingBlockRows"/> above 0, which must override it.
    /// </summary>
    private protected virtual void DrawSamplingBlock(int start, int n, RandomStream root, Span<float> block)
        => throw new InvalidOperationException(FormattableString.Invariant($"{GetType().Name} has sampling blocks of {SamplingBlockRows} rows but does not draw them."));

    /// <summary>Rows [<paramref name="first"/>, first + <paramref name="n"/>) of the draw of <paramref name="count"/> rows
    /// with <paramref name="seed"/>, from the model's own sampling blocks (see the general overload).</summary>
    private void SampleInBlocks(int count, int first, int n, ulong seed, Span<float> destination, CancellationToken cancellationToken)
        => SampleInBlocks(count, first, n, seed, SamplingBlockRows, destination, DrawSamplingBlock, cancellationToken);

    /// <summary>Fills the rows [<paramref name="start"/>, start + n) of a draw into <paramref name="block"/> (n × Dimension
    /// floats); the contract of <see cref="DrawSamplingBlock"/>.</summary>
    private protected delegate void BlockSampler(int start, int n, RandomStream root, Span<float> block);

    /// <summary>
    /// Rows [<paramref name="first"/>, first + <paramref name="n"/>) of a draw of <paramref name="count"/> rows drawn in
    /// fixed blocks of <paramref name="blockRows"/> rows by <paramref name="fill"/> (a fixed partition, blocks in
    /// parallel through <see cref="DeepDensityEnvironment"/>, all from one root stream of <paramref name="seed"/>, so the
    /// result never depends on the thread count), into <paramref name="destination"/> (n × Dimension). Only the blocks
    /// these rows fall in are drawn, each exactly as in the whole draw (the same <paramref name="fill"/> call: its start,
    /// its row count — the last block of the draw is short — and its streams), so the rows are the whole draw's bits
    /// whatever a model's block arithmetic does with a row's place in its block, and however a model keys its streams
    /// (by row or, as Deep GMM, by block). A block the range cuts is drawn whole into a scratch block and its part copied;
    /// a range made of whole blocks writes straight into the destination. Checks <paramref name="cancellationToken"/>
    /// before every block, so a large draw stops within a block of being cancelled.
    /// </summary>
    private protected unsafe void SampleInBlocks(int count, int first, int n, ulong seed, int blockRows, Span<float> destination, BlockSampler fill,
        CancellationToken cancellationToken)
    {
        if (n <= 0) return;
        var root = new RandomStream(seed);
        int d = Dimension, firstBlock = first / blockRows, endBlock = (first + n - 1) / blockRows + 1;
        // Blocks write straight into the destination (no second draw-sized array); a span cannot enter the lambda, so it
        // gets the pinned address (the caller's span outlives the loop).
        fixed (float* output = destination)
        {
            nint address = (nint)output;
            DeepDensityEnvironment.For(firstBlock, endBlock, b =>
            {
                cancellationToken.ThrowIfCancellationRequested();
                int start = b * blockRows, m = Math.Min(blockRows, count - start);
                int lo = Math.Max(start, first), hi = Math.Min(start + m, first + n);
                var target = new Span<float>((float*)address + (long)(lo - first) * d, (hi - lo) * d);
                if (lo == start && hi == start + m)
                {
                    fill(start, m, root, target);
                    return;
                }
                var whole = new float[m * d];
                fill(start, m, root, whole);
                whole.AsSpan((lo - start) * d, (hi - lo) * d).CopyTo(target);
            });
        }
    }

    /// <summary>The streams of rows start … start + n − 1 of a draw: <c>root.Fork(row)</c>.</summary>
    private protected static RandomStream[] RowStreams(RandomStream root, int start, int n)
    {
        var streams = new RandomStream[n];
        for (int r = 0; r < n; r++) streams[r] = root.Fork((ulong)(start + r));
        return streams;
    }
}
