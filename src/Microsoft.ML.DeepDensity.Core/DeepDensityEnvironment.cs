namespace Microsoft.ML.DeepDensity;

/// <summary>Process-wide engine settings.</summary>
public static class DeepDensityEnvironment
{
    private static int _maxDegreeOfParallelism = -1;
    private static long _maxModelFileBytes = DefaultMaxModelFileBytes;

    /// <summary>Default of <see cref="MaxModelFileBytes"/>: 256 MiB (the largest built-in models of the benchmarks are
    /// under 50 MB).</summary>
    public const long DefaultMaxModelFileBytes = 256L << 20;

    /// <summary>
    /// Largest model payload <see cref="DensityModel.Load(Stream)"/> and <see cref="DensityModel.FromBytes"/> accept, in
    /// bytes (also inside ML.NET model zips). A file declaring a larger payload is rejected with
    /// <see cref="Persistence.InvalidModelFileException"/> before its payload is read, so a forged header cannot make the
    /// reader buffer gigabytes; a stream is read in chunks against the declared length, so memory never exceeds about
    /// 1.5 × the declared size. Raise it to load legitimately larger models. Default
    /// <see cref="DefaultMaxModelFileBytes"/>; at most <see cref="Persistence.ModelFile.MaxPayloadLength"/>.
    /// </summary>
    public static long MaxModelFileBytes
    {
        get => Volatile.Read(ref _maxModelFileBytes);
        set
        {
            if (value < 1 || value > Persistence.ModelFile.MaxPayloadLength)
                throw new ArgumentOutOfRangeException(nameof(value), FormattableString.Invariant($"MaxModelFileBytes must be in [1, {Persistence.ModelFile.MaxPayloadLength}] (got {value})."));
            Volatile.Write(ref _maxModelFileBytes, value);
        }
    }

    private static long _maxScoringScratchFloats = DefaultMaxScoringScratchFloats;

    /// <summary>Default of <see cref="MaxScoringScratchFloats"/>: 2^26 floats (256 MiB).</summary>
    public const long DefaultMaxScoringScratchFloats = 1L << 26;

    /// <summary>
    /// Largest scratch one scoring pass of an importance-sampled model (IWAE, NVIL) may use, in floats: its evaluation
    /// samples per chunk × activations per sample must not exceed it. Checked before training, when the evaluation
    /// settings of a trained model change and when a file is loaded (a small file declaring wide layers and a large chunk
    /// would otherwise ask for gigabytes per row; such a file is rejected with a message naming this setting); passes
    /// over several rows are sized under it (results never depend on it). Raise it to load and score legitimately wider
    /// models. Default <see cref="DefaultMaxScoringScratchFloats"/>; in [2^20, <see cref="Array.MaxLength"/>].
    /// </summary>
    public static long MaxScoringScratchFloats
    {
        get => Volatile.Read(ref _maxScoringScratchFloats);
        set
        {
            if (value < 1L << 20 || value > Array.MaxLength)
                throw new ArgumentOutOfRangeException(nameof(value), FormattableString.Invariant($"MaxScoringScratchFloats must be in [{1L << 20}, {Array.MaxLength}] (got {value})."));
            Volatile.Write(ref _maxScoringScratchFloats, value);
        }
    }

    /// <summary>
    /// Most threads any engine parallel loop (GEMM, blocked scoring, sampling, training) may use; −1 = no limit
    /// (all cores). Default −1. Results never depend on this setting: work is split into fixed-size blocks whose
    /// results are combined in block order, so it only trades speed for CPU share (e.g. 1 inside an already
    /// parallel host).
    /// </summary>
    public static int MaxDegreeOfParallelism
    {
        get => Volatile.Read(ref _maxDegreeOfParallelism);
        set
        {
            if (value == 0 || value < -1)
                throw new ArgumentOutOfRangeException(nameof(value), FormattableString.Invariant($"MaxDegreeOfParallelism must be -1 (no limit) or at least 1 (got {value})."));
            Volatile.Write(ref _maxDegreeOfParallelism, value);
        }
    }

    /// <summary>
    /// Options for an engine <see cref="Parallel.For(int, int, ParallelOptions, Action{int})"/>: at most
    /// <paramref name="threads"/> (−1 = no own limit) and at most <see cref="MaxDegreeOfParallelism"/>.
    /// Every engine parallel loop must take its options from here (or use <see cref="For"/>).
    /// </summary>
    public static ParallelOptions ParallelOptions(int threads = -1, CancellationToken cancellationToken = default)
    {
        int limit = MaxDegreeOfParallelism;
        int effective = threads <= 0 ? limit : limit <= 0 ? threads : Math.Min(threads, limit);
        return new ParallelOptions { MaxDegreeOfParallelism = effective <= 0 ? -1 : effective, CancellationToken = cancellationToken };
    }

    /// <summary>
    /// Runs <paramref name="body"/> for every index in [<paramref name="fromInclusive"/>, <paramref name="toExclusive"/>)
    /// under <see cref="MaxDegreeOfParallelism"/>; inline on the calling thread when there is one index or the limit is 1.
    /// An exception from <paramref name="body"/> propagates as itself (not wrapped in <see cref="AggregateException"/>),
    /// so callers see the same exception whatever the number of threads. Runs on the engine's persistent worker team
    /// (low start-up latency for the short regions of a training step); a call from inside a region runs inline.
    /// </summary>
    public static void For(int fromInclusive, int toExclusive, Action<int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (toExclusive - fromInclusive <= 1 || MaxDegreeOfParallelism == 1)
        {
            for (int i = fromInclusive; i < toExclusive; i++) body(i);
            return;
        }
        int limit = MaxDegreeOfParallelism;
        Numerics.WorkerTeam.Run(fromInclusive, toExclusive, limit <= 0 ? int.MaxValue : limit, body);
    }

    /// <summary>Scores one block of rows: <paramref name="rows"/> (rowCount × width) into <paramref name="output"/> (one value per row).</summary>
    public delegate void RowBlockBody(int firstRow, ReadOnlySpan<float> rows, int rowCount, Span<float> output);

    /// <summary>
    /// Runs <paramref name="body"/> over fixed blocks of <paramref name="blockRows"/> rows of a row-major span, in parallel
    /// under <see cref="MaxDegreeOfParallelism"/>, writing one output value per row straight into
    /// <paramref name="output"/> (no copies of input or output). Blocks are fixed, so results do not depend on the thread count.
    /// </summary>
    public static unsafe void ForRowBlocks(ReadOnlySpan<float> rows, int width, int count, Span<float> output, int blockRows, RowBlockBody body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (blockRows < 1) throw new ArgumentOutOfRangeException(nameof(blockRows));
        if ((long)count * width > rows.Length || count > output.Length) throw new ArgumentException("Spans are shorter than count rows.");
        int blocks = (count + blockRows - 1) / blockRows;
        if (blocks <= 1)
        {
            if (count > 0) body(0, rows[..(count * width)], count, output[..count]);
            return;
        }
        // Spans cannot enter the lambda: pass pinned addresses (the caller's spans outlive the loop).
        fixed (float* input = rows)
        fixed (float* result = output)
        {
            nint inAddress = (nint)input, outAddress = (nint)result;
            For(0, blocks, b =>
            {
                int start = b * blockRows, n = Math.Min(blockRows, count - start);
                body(start, new ReadOnlySpan<float>((float*)inAddress + (long)start * width, n * width), n,
                    new Span<float>((float*)outAddress + start, n));
            });
        }
    }
}
