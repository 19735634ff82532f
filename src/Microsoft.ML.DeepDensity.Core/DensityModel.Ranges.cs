namespace Microsoft.ML.DeepDensity;

/// <summary>Drawing a part of a draw: rows [start, start + n) of <c>Sample(count, seed)</c>, bit for bit, in memory of the
/// part rather than of the draw (the lazy sample views of the ML.NET layer read a draw this way, a block at a time).</summary>
public abstract partial class DensityModel
{
    /// <summary>A reader of the rows of one draw <c>Sample(<paramref name="count"/>, <paramref name="seed"/>)</c>, any part
    /// at a time (<see cref="SampleReader.Read"/>); a negative count throws <see cref="ArgumentOutOfRangeException"/>.</summary>
    internal SampleReader OpenSampleReader(int count, ulong seed)
    {
        CheckSampleCount(count);
        return CreateSampleReader(count, seed);
    }

    /// <summary>Rows [<paramref name="start"/>, start + <paramref name="n"/>) of <c>Sample(count, seed)</c> into
    /// <paramref name="destination"/> (n × Dimension), the same bits; see <see cref="SampleReader.Read"/>.</summary>
    internal void SampleRange(int count, int start, int n, ulong seed, Span<float> destination, CancellationToken cancellationToken = default)
        => OpenSampleReader(count, seed).Read(start, n, destination, cancellationToken);

    /// <summary>The reader of <see cref="OpenSampleReader"/>: by default one that calls <see cref="SampleRangeCore"/> for
    /// every read and keeps nothing between reads. A model whose rows come from state that advances row after row (the
    /// RBM's Gibbs chains) returns one that keeps that state, so that reading a draw in order costs the whole draw once.</summary>
    private protected virtual SampleReader CreateSampleReader(int count, ulong seed) => new RangeReader(this, count, seed);

    /// <summary><see cref="SamplingBlockRows"/>, at least 1 (a model without sampling blocks, or the RBM's chain reader,
    /// draws nothing twice anyway): parts of a <see cref="SampleReader"/> that start at a multiple of it and hold a
    /// multiple of it (or end at the end of the draw) draw no row twice.</summary>
    internal int SampleBlockRows => Math.Max(1, SamplingBlockRows);

    /// <summary>
    /// Draws rows [<paramref name="start"/>, start + <paramref name="n"/>) of the draw of <paramref name="count"/> rows with
    /// <paramref name="seed"/> (rows start … start + n − 1 of <c>SampleCore(count, seed, …)</c>, the same bits) into
    /// <paramref name="destination"/> (n × Dimension), checking <paramref name="cancellationToken"/> as
    /// <c>SampleCore</c> does; arguments are validated. A model with sampling blocks (<see cref="SamplingBlockRows"/>) draws
    /// only the blocks the rows fall in (<c>SampleInBlocks</c>); the RBM runs its chains only as far as the rows. For any
    /// other model this default draws the first start + n rows and keeps the last n: the same bits for a model whose
    /// smaller draws are prefixes of larger ones (the contract's "should"), in memory and time growing with start.
    /// </summary>
    private protected virtual void SampleRangeCore(int count, int start, int n, ulong seed, Span<float> destination, CancellationToken cancellationToken)
    {
        if (SamplesInBlocks)
        {
            SampleInBlocks(count, start, n, seed, destination, cancellationToken);
            return;
        }
        if (start == 0)
        {
            SampleCore(n, seed, destination, cancellationToken);
            return;
        }
        var prefix = new float[checked((start + n) * Dimension)];
        SampleCore(start + n, seed, prefix, cancellationToken);
        prefix.AsSpan(start * Dimension, n * Dimension).CopyTo(destination);
    }

    /// <summary>
    /// The rows of one draw <c>Sample(Count, Seed)</c> of a model, read a part at a time: every part is the draw's rows, bit
    /// for bit, whatever the parts and their order, and a part costs memory of the part (and of the model's sampling
    /// state), not of the draw. Not thread-safe (a reader may keep state between reads): one reader per consumer; readers
    /// of one model are independent of each other.
    /// </summary>
    internal abstract class SampleReader
    {
        private protected SampleReader(DensityModel model, int count, ulong seed)
        {
            Model = model;
            Count = count;
            Seed = seed;
        }

        /// <summary>The model drawn from.</summary>
        public DensityModel Model { get; }

        /// <summary>Rows of the whole draw.</summary>
        public int Count { get; }

        /// <summary>Seed of the draw.</summary>
        public ulong Seed { get; }

        /// <summary>
        /// Writes rows [<paramref name="start"/>, start + <paramref name="n"/>) of the draw into
        /// <paramref name="destination"/> (n × Dimension). Throws <see cref="ArgumentOutOfRangeException"/> for a part
        /// outside the draw, <see cref="ArgumentException"/> for a short destination, and
        /// <see cref="OperationCanceledException"/> when <paramref name="cancellationToken"/> is cancelled (checked before
        /// the read and as the model draws; the reader stays usable). The rows are checked as <c>Sample</c>'s are.
        /// </summary>
        public void Read(int start, int n, Span<float> destination, CancellationToken cancellationToken = default)
        {
            if (start < 0 || n < 0 || (long)start + n > Count)
                throw new ArgumentOutOfRangeException(nameof(start), FormattableString.Invariant($"Rows [{start}, {(long)start + n}) are not rows of a draw of {Count}."));
            int d = Model.Dimension;
            if (destination.Length < (long)n * d)
                throw new ArgumentException(FormattableString.Invariant($"Destination has {destination.Length} floats; {n} samples need {(long)n * d}."), nameof(destination));
            cancellationToken.ThrowIfCancellationRequested();
            if (n == 0) return;
            var rows = destination[..(n * d)];
            ReadCore(start, n, rows, cancellationToken);
            Model.CheckSamples(rows, d, "sample", start);
        }

        /// <summary>Rows [start, start + n) of the draw, arguments validated.</summary>
        private protected abstract void ReadCore(int start, int n, Span<float> destination, CancellationToken cancellationToken);
    }

    /// <summary>The default reader: each part through <see cref="SampleRangeCore"/>, nothing kept between parts.</summary>
    private sealed class RangeReader(DensityModel model, int count, ulong seed) : SampleReader(model, count, seed)
    {
        private protected override void ReadCore(int start, int n, Span<float> destination, CancellationToken cancellationToken)
            => Model.SampleRangeCore(Count, start, n, Seed, destination, cancellationToken);
    }
}
