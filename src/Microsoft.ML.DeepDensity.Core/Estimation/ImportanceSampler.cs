using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Estimation;

/// <summary>
/// Importance-sampled log-likelihood estimates log (1/K) Σ_i w_i, w_i = p(x, z_i)/q(z_i | x), with their delta-method
/// standard errors, for any latent-variable model that can compute log-weights (IWAE, NVIL).
/// </summary>
/// <remarks>
/// Determinism: row x's noise comes from a stream forked from the seed by a hash of x's values (not its position), and
/// forked again per chunk of samples, so a row gets the same estimate in any batch, order, block or thread count.
/// </remarks>
public static class ImportanceSampler
{
    /// <summary>Computes the log-weights of <paramref name="rows"/> (rows × dimension) for <paramref name="samples"/>
    /// samples each into <paramref name="logWeights"/> (rows × samples, row-major), drawing row r's noise from
    /// <paramref name="rowStreams"/>[r] only. <paramref name="allowParallel"/> is true when the call is the only block
    /// and has more than one row (it may then parallelise inside). <paramref name="sameRows"/> is true when the previous
    /// call on this workspace had the same rows (the next chunk of their samples), so that what depends on the rows alone
    /// (an encoder's output) may be kept from it.</summary>
    public delegate void LogWeights<TWorkspace>(TWorkspace workspace, ReadOnlySpan<float> rows, int count, int samples,
        ReadOnlySpan<RandomStream> rowStreams, Span<double> logWeights, bool allowParallel, bool sameRows);

    /// <summary>Receives row <paramref name="row"/>'s log-weights (see <see cref="Estimate{TWorkspace}(ReadOnlySpan{float}, int, int, int, int, ulong, int, Func{int, int, TWorkspace}, LogWeights{TWorkspace}, Span{float}, Span{float}, RowWeightsInspector?, ScratchPool{TWorkspace}?)"/>).</summary>
    internal delegate void RowWeightsInspector(int row, ReadOnlySpan<double> logWeights);

    /// <summary>
    /// The estimate log (1/K) Σ w_i (into <paramref name="logMean"/>) and, when <paramref name="standardError"/> is not
    /// empty, its standard error, for each of <paramref name="count"/> rows with K = <paramref name="samples"/>.
    /// Samples are drawn <paramref name="samplesPerChunk"/> at a time (bounding memory); blocks of rows run in parallel,
    /// each block sized so that rows × chunk ≤ <paramref name="sampleRowsPerPass"/>. A worker's workspace is made by
    /// <paramref name="newWorkspace"/>(rows, samples per chunk) and reused across that worker's blocks.
    /// </summary>
    public static void Estimate<TWorkspace>(ReadOnlySpan<float> rows, int count, int dimension, int samples, int samplesPerChunk,
        ulong seed, int sampleRowsPerPass, Func<int, int, TWorkspace> newWorkspace, LogWeights<TWorkspace> logWeights,
        Span<float> logMean, Span<float> standardError)
        => Estimate(rows, count, dimension, samples, samplesPerChunk, seed, sampleRowsPerPass, newWorkspace, logWeights, logMean, standardError, null, null);

    /// <summary><see cref="Estimate{TWorkspace}(ReadOnlySpan{float}, int, int, int, int, ulong, int, Func{int, int, TWorkspace}, LogWeights{TWorkspace}, Span{float}, Span{float})"/>
    /// taking every block's buffers from <paramref name="scratch"/> (the model's own pool), so that scoring allocates
    /// nothing once warm, one row per call (a PredictionEngine, a model loaded into ML.NET) or many. The arithmetic is the
    /// same whichever buffers it runs in. <paramref name="inspect"/>, when not null, is handed each row's log-weights
    /// (diagnostics: tests and the <c>iwae-stderr</c> benchmark; called from the scoring threads).</summary>
    internal static void Estimate<TWorkspace>(ReadOnlySpan<float> rows, int count, int dimension, int samples, int samplesPerChunk,
        ulong seed, int sampleRowsPerPass, Func<int, int, TWorkspace> newWorkspace, LogWeights<TWorkspace> logWeights,
        Span<float> logMean, Span<float> standardError, RowWeightsInspector? inspect, ScratchPool<TWorkspace>? scratch)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(samples, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(samplesPerChunk, 1);
        if (count == 0) return;
        int d = dimension;
        int chunk = Math.Min(samplesPerChunk, samples);
        int rowsPerPass = Math.Max(1, sampleRowsPerPass / chunk);
        int blocks = (count + rowsPerPass - 1) / rowsPerPass;
        var pool = scratch ?? new ScratchPool<TWorkspace>(newWorkspace);
        if (blocks == 1)
        {
            // Block scratch is always made for a whole pass (rowsPerPass rows), so every block size reuses it.
            var s = pool.Take(count == 1 ? 1 : rowsPerPass, chunk, samples, seed);
            // One block is not split across threads when it is one row: its callers (ML.NET's worker cursors over a
            // loaded model, request threads with a PredictionEngine each) already score rows in parallel, and a region
            // per row costs more than it saves. Results do not depend on it.
            try { Block(s, rows[..(count * d)], count, d, samples, chunk, logWeights, allowParallel: count > 1, logMean, standardError, 0, inspect); }
            finally { pool.Return(s); }
            return;
        }
        EstimateInParallel(rows, count, d, samples, chunk, rowsPerPass, blocks, seed, pool, logWeights, logMean, standardError, inspect);
    }

    // Its own method: a lambda's captures are allocated on entry to the method that declares them, even on the one-block path.
    // Spans cannot enter the lambda: pinned addresses are passed (the caller's spans outlive the loop).
    private static unsafe void EstimateInParallel<TWorkspace>(ReadOnlySpan<float> rows, int count, int d, int samples, int chunk, int rowsPerPass,
        int blocks, ulong seed, ScratchPool<TWorkspace> pool, LogWeights<TWorkspace> logWeights, Span<float> logMean, Span<float> standardError,
        RowWeightsInspector? inspect)
    {
        bool errors = !standardError.IsEmpty;
        fixed (float* input = rows) fixed (float* means = logMean) fixed (float* ses = standardError)
        {
            nint inAddress = (nint)input, meanAddress = (nint)means, seAddress = (nint)ses;
            DeepDensityEnvironment.For(0, blocks, b =>
            {
                int start = b * rowsPerPass, n = Math.Min(rowsPerPass, count - start);
                var s = pool.Take(rowsPerPass, chunk, samples, seed);
                try
                {
                    Block(s, new ReadOnlySpan<float>((float*)inAddress + (long)start * d, n * d), n, d, samples, chunk, logWeights,
                        allowParallel: false, new Span<float>((float*)meanAddress + start, n),
                        errors ? new Span<float>((float*)seAddress + start, n) : default, start, inspect);
                }
                finally { pool.Return(s); }
            });
        }
    }

    /// <summary>The estimates of the <paramref name="n"/> rows of <paramref name="x"/>, sample chunk by sample chunk.</summary>
    private static void Block<TWorkspace>(Scratch<TWorkspace> s, ReadOnlySpan<float> x, int n, int d, int samples, int chunk,
        LogWeights<TWorkspace> logWeights, bool allowParallel, Span<float> means, Span<float> errors, int firstRow, RowWeightsInspector? inspect)
    {
        var logW = s.LogW.AsSpan(0, n * samples);
        var chunkLogW = s.ChunkLogW;
        var streams = s.Streams; var chunkStreams = s.ChunkStreams;
        for (int r = 0; r < n; r++) s.Root.ForkInto(HashRow(x.Slice(r * d, d)), streams[r]); // = RowStream(root, row)
        for (int c = 0, done = 0; done < samples; c++, done += chunk)
        {
            int k = Math.Min(chunk, samples - done);
            for (int r = 0; r < n; r++) streams[r].ForkInto((ulong)c, chunkStreams[r]);
            logWeights(s.Workspace, x, n, k, chunkStreams.AsSpan(0, n), chunkLogW.AsSpan(0, n * k), allowParallel, sameRows: c > 0);
            for (int r = 0; r < n; r++)
                chunkLogW.AsSpan(r * k, k).CopyTo(logW.Slice(r * samples + done, k));
        }
        for (int r = 0; r < n; r++)
        {
            var w = logW.Slice(r * samples, samples);
            var (lm, se) = LogMeanAndStandardError(w);
            means[r] = (float)lm;
            if (!errors.IsEmpty) errors[r] = (float)se;
            inspect?.Invoke(firstRow + r, w);
        }
    }

    /// <summary>The buffers of one block of rows: the model's workspace, the log-weights and the rows' streams.</summary>
    internal sealed class Scratch<TWorkspace>
    {
        public Scratch(TWorkspace workspace, int rows, int chunk, int samples, ulong seed)
        {
            Workspace = workspace; Rows = rows; Chunk = chunk; Samples = samples; Seed = seed;
            Root = RootStream(seed);
            LogW = new double[rows * samples];
            ChunkLogW = new double[rows * chunk];
            Streams = new RandomStream[rows];
            ChunkStreams = new RandomStream[rows];
            for (int r = 0; r < rows; r++) { Streams[r] = new RandomStream(0); ChunkStreams[r] = new RandomStream(0); }
        }
        public readonly TWorkspace Workspace;
        public readonly int Rows, Chunk, Samples;
        public readonly ulong Seed;
        public readonly RandomStream Root; // never advanced: only forked
        public readonly double[] LogW, ChunkLogW;
        public readonly RandomStream[] Streams, ChunkStreams;
    }

    /// <summary>The scoring scratch of a model (<see cref="Numerics.ScratchPool{T}"/>): block buffers for a number of rows,
    /// a chunk length, a sample count and a seed; one that fits is reused (more rows than a block needs is fine). One-row
    /// scratch (a PredictionEngine, a model loaded into ML.NET) is pooled apart, so that it stays one row's size and
    /// alternating one-row and many-row calls reuse both kinds.</summary>
    internal sealed class ScratchPool<TWorkspace>(Func<int, int, TWorkspace> newWorkspace)
    {
        private readonly Numerics.ScratchPool<Scratch<TWorkspace>> _oneRow = new(), _blocks = new();

        public Scratch<TWorkspace> Take(int rows, int chunk, int samples, ulong seed)
            => (rows == 1 ? _oneRow : _blocks).Rent(
                static (s, want) => s.Rows >= want.rows && s.Chunk == want.chunk && s.Samples == want.samples && s.Seed == want.seed,
                static want => new Scratch<TWorkspace>(want.newWorkspace(want.rows, want.chunk), want.rows, want.chunk, want.samples, want.seed),
                (rows, chunk, samples, seed, newWorkspace));

        public void Return(Scratch<TWorkspace> scratch) => (scratch.Rows == 1 ? _oneRow : _blocks).Return(scratch);
    }

    /// <summary>
    /// Upper bound on the scratch of one scoring pass, in floats: the setting
    /// <see cref="DeepDensityEnvironment.MaxScoringScratchFloats"/> (default 2^26 = 256 MiB). A model's samples per chunk ×
    /// its activations per sample must not exceed it (checked when fitting, loading and changing the evaluation settings,
    /// so that a small file with wide layers and a large chunk cannot ask for gigabytes per row), and passes over several
    /// rows are sized under it (<see cref="SampleRowsPerPass"/>).
    /// </summary>
    public static long MaxScratchFloats => DeepDensityEnvironment.MaxScoringScratchFloats;

    /// <summary>Why <paramref name="samplesPerChunk"/> × <paramref name="floatsPerSample"/> exceeds
    /// <see cref="MaxScratchFloats"/>, or null.</summary>
    public static string? ScratchProblem(int samplesPerChunk, long floatsPerSample)
    {
        long floats = samplesPerChunk * floatsPerSample;
        return floats <= MaxScratchFloats ? null
            : FormattableString.Invariant($"{samplesPerChunk} evaluation samples per chunk × {floatsPerSample} activations per sample = {floats} floats of scoring scratch, above the limit of {MaxScratchFloats} (the setting DeepDensityEnvironment.MaxScoringScratchFloats); use fewer samples per chunk, or raise the setting for a legitimately wide model");
    }

    /// <summary>Sample rows (data rows × samples) per pass: <paramref name="preferred"/>, or fewer when a sample's
    /// activations are so wide that they would exceed <see cref="MaxScratchFloats"/> (results do not depend on it).</summary>
    public static int SampleRowsPerPass(long floatsPerSample, int preferred) => (int)Math.Clamp(MaxScratchFloats / Math.Max(1, floatsPerSample), 1, preferred);

    /// <summary>The root of all rows' streams for an estimate with <paramref name="seed"/>.</summary>
    public static RandomStream RootStream(ulong seed) => new RandomStream(seed).Fork(0xE57A);

    /// <summary>Row <paramref name="row"/>'s own stream under <paramref name="root"/> (keyed by its values, not its position).</summary>
    public static RandomStream RowStream(RandomStream root, ReadOnlySpan<float> row) => root.Fork(HashRow(row));

    /// <summary>
    /// The fewest effective samples (<see cref="EffectiveSampleSize"/>) on which a row's standard error is reported: below
    /// 4 it is +∞, unknown. The delta-method standard error is √(K/(K−1)) · √(1/ESS − 1/K), so it can never exceed about 1
    /// however wrong the estimate is: when one weight dominates (ESS ≈ 1) a row reported ±1.000 while its estimate moved by
    /// hundreds of nats between evaluation seeds. At ESS ≥ 4 the reported error is at most about 1/2 nat, where the
    /// delta method's linearisation of the log still roughly holds. Chosen by measurement (the <c>iwae-stderr</c>
    /// benchmark, docs/models/iwae.md): it marks unknown 99.8–100 % of the rows of Gaussian IWAEs on the raw digits whose
    /// standard error was 0–2 % of their actual spread, and 0–0.3 % of the rows of well-fitted binary IWAE and NVIL
    /// models at K = 1000 (whose standard errors were 0.9–0.95 of the spread).
    /// </summary>
    public const double MinEffectiveSamples = 4;

    /// <summary>The effective sample size (Σ w)² / Σ w² of the weights e^a (Kish's): K for equal weights, 1 when one
    /// weight dominates; 0 when every weight is 0, NaN when a log-weight is +∞ or NaN.</summary>
    public static double EffectiveSampleSize(ReadOnlySpan<double> logWeights)
    {
        var (max, sum, sumSq) = ShiftedSums(logWeights);
        if (double.IsNegativeInfinity(max)) return 0;
        if (!double.IsFinite(max)) return double.NaN;
        return sum * sum / sumSq;
    }

    /// <summary>The largest log-weight a and, when it is finite, Σ w and Σ w² of the weights shifted by it, w = e^(a_i − a)
    /// (so the largest is 1): the one pass behind the estimate, its standard error and the effective sample size.</summary>
    private static (double Max, double Sum, double SumOfSquares) ShiftedSums(ReadOnlySpan<double> logWeights)
    {
        double max = double.NegativeInfinity;
        foreach (var v in logWeights) if (v > max) max = v;
        if (!double.IsFinite(max)) return (max, 0, 0);
        double sum = 0, sumSq = 0;
        foreach (var v in logWeights) { double w = Math.Exp(v - max); sum += w; sumSq += w * w; }
        return (max, sum, sumSq);
    }

    /// <summary>log mean(e^a) and the delta-method SE of it, sd(w)/(√K mean(w)) with w scaled by e^{−max a}; +∞ (unknown)
    /// when the weights' effective sample size is below <see cref="MinEffectiveSamples"/> (always when K &lt; 4: one
    /// sample has no spread to measure). When every weight is 0 (a row so far from the data that its density
    /// underflows) the estimate is −∞ with standard error 0, the engine's output contract for such rows.</summary>
    public static (double LogMean, double StandardError) LogMeanAndStandardError(ReadOnlySpan<double> logWeights)
    {
        int k = logWeights.Length;
        var (max, sum, sumSq) = ShiftedSums(logWeights);
        if (double.IsNegativeInfinity(max)) return (max, 0);
        if (!double.IsFinite(max)) return (max, double.PositiveInfinity);
        double mean = sum / k;
        double se = 0;
        if (sum * sum / sumSq < MinEffectiveSamples) se = double.PositiveInfinity;
        else
        {
            double variance = Math.Max(0, (sumSq - k * mean * mean) / (k - 1));
            se = Math.Sqrt(variance / k) / mean;
        }
        return (max + Math.Log(mean), se);
    }

    /// <summary>FNV-1a over the row's float bits, finalised by a 64-bit mixer: the row's noise key (position-independent).</summary>
    public static ulong HashRow(ReadOnlySpan<float> row)
    {
        ulong h = 0xCBF29CE484222325UL;
        foreach (var v in row)
        {
            uint bits = BitConverter.SingleToUInt32Bits(v == 0f ? 0f : v); // +0 and −0 hash alike
            h = (h ^ bits) * 0x100000001B3UL;
        }
        h ^= h >> 33; h *= 0xFF51AFD7ED558CCDUL; h ^= h >> 33; h *= 0xC4CEB9FE1A85EC53UL; h ^= h >> 33;
        return h;
    }
}
