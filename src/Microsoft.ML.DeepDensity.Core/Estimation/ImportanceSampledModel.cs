using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Estimation;

/// <summary>
/// A latent-variable row model p(h) p(x | h) with an inference network q(h | x) whose log-density is the
/// importance-sampled estimate log (1/K) Σ_i p(x, h_i)/q(h_i | x), h_i ~ q (IWAE/VAE, NVIL). Written once here: the
/// evaluation settings (K, samples per pass, seed) and their checks, the estimate with its standard error through the
/// shared <see cref="ImportanceSampler"/>, the k-sample bound, and ancestral sampling in blocks. A model supplies its
/// network's log-weights and its block sampler.
/// </summary>
/// <remarks>
/// The reported log-density is labelled <see cref="DensityKind.Estimate"/>: a stochastic lower bound in expectation that
/// tightens as K grows, with a delta-method standard error. A row's noise comes from a stream forked from
/// <see cref="EvaluationSeed"/> by a hash of the row's values (not its position), so a row gets the same estimate in any
/// batch, order or thread count.
/// </remarks>
public abstract class ImportanceSampledModel : DensityModel
{
    /// <summary>Data rows × samples per scoring pass, before the scratch limit lowers it for a very wide network.</summary>
    private const int PreferredSampleRowsPerPass = 512;
    /// <summary>Rows per block when sampling (row r draws from its own stream, so blocks do not change the result).</summary>
    private const int PreferredRowsPerSamplingBlock = 256;

    private protected ImportanceSampledModel(int evaluationSamples, int evaluationSamplesPerChunk, ulong evaluationSeed)
    {
        EvaluationSamples = evaluationSamples;
        EvaluationSamplesPerChunk = evaluationSamplesPerChunk;
        EvaluationSeed = evaluationSeed;
    }

    /// <inheritdoc/>
    public sealed override DensityKind DensityKind => DensityKind.Estimate;

    /// <summary>Importance samples K of the reported log-density estimate.</summary>
    public int EvaluationSamples { get; }
    /// <summary>Samples per row per scoring pass (bounds memory; the noise is drawn per chunk, so another value is another
    /// draw of the estimate, as another <see cref="EvaluationSeed"/> is).</summary>
    public int EvaluationSamplesPerChunk { get; }
    /// <summary>Seed of the log-density estimate's noise.</summary>
    public ulong EvaluationSeed { get; }
    /// <summary>The largest power of two at most 2^17 / K rows between cancellation checks (16 rows at K = 5,000, about a
    /// quarter of a second on one core for the IWAE benchmark's network), since each row costs K samples.</summary>
    public override int RowsPerCancellationCheck => RowsPerCancellationCheckAt(EvaluationSamples);


    /// <summary>Scratch floats one importance sample needs in a scoring pass (activations of both networks).</summary>
    private protected abstract long EvaluationFloatsPerSample { get; }

    /// <summary>log (1/K) Σ w_i per row and its standard error with the given settings (the model calls
    /// <c>ImportanceSampler.Estimate</c> with its workspace and log-weights).</summary>
    private protected abstract void ImportanceSample(ReadOnlySpan<float> rows, int count, int samples, int samplesPerChunk, ulong seed,
        int sampleRowsPerPass, Span<float> logMean, Span<float> standardError, ImportanceSampler.RowWeightsInspector? inspect = null);

    /// <summary>Draws <paramref name="streams"/>.Length rows from the generative model into <paramref name="output"/>
    /// (row r from streams[r] only); with <paramref name="mean"/>, the mean of p(x | h) instead of a draw of x.</summary>
    private protected abstract void SampleBlock(RandomStream[] streams, Span<float> output, bool mean);

    /// <summary>A copy sharing the parameters, with other evaluation settings (already checked).</summary>
    private protected abstract ImportanceSampledModel WithEvaluationCore(int evaluationSamples, int samplesPerChunk, ulong evaluationSeed);

    /// <summary>The same model with different log-density estimation settings (parameters shared, not copied); each
    /// model's <c>WithEvaluation</c> returns its own type through this.</summary>
    private protected ImportanceSampledModel WithEvaluationChecked(int evaluationSamples, ulong? evaluationSeed, int? samplesPerChunk)
    {
        if (evaluationSamples is < 1 or > ImportanceSampledOptions.MaxEvaluationSamples)
            throw new ArgumentOutOfRangeException(nameof(evaluationSamples), FormattableString.Invariant($"Evaluation samples must be in [1, {ImportanceSampledOptions.MaxEvaluationSamples}]."));
        if (samplesPerChunk is < 1 or > ImportanceSampledOptions.MaxEvaluationSamplesPerChunk)
            throw new ArgumentOutOfRangeException(nameof(samplesPerChunk), FormattableString.Invariant($"Samples per chunk must be in [1, {ImportanceSampledOptions.MaxEvaluationSamplesPerChunk}]."));
        int chunk = samplesPerChunk ?? EvaluationSamplesPerChunk;
        if (ImportanceSampler.ScratchProblem(chunk, EvaluationFloatsPerSample) is string problem)
            throw new ArgumentOutOfRangeException(nameof(samplesPerChunk), problem + ".");
        var copy = WithEvaluationCore(evaluationSamples, chunk, evaluationSeed ?? EvaluationSeed);
        copy.TrainingSummary = TrainingSummary;
        return copy;
    }

    /// <summary>
    /// The k-sample importance-weighted bound log (1/k) Σ_i p(x, h_i)/q(h_i | x) of each row for one draw of k samples
    /// per row (k = 1: the single-sample estimate of the variational bound, the VAE's ELBO). Its expectation is a lower
    /// bound on log p(x) that increases with k. Noise is derived from <paramref name="seed"/> and each row's values.
    /// </summary>
    public float[] Bound(RowMatrix rows, int k, ulong seed) => Bound(rows, k, seed, CancellationToken.None);

    /// <summary>The k-sample bound of each row as a new array; cancellable (see
    /// <see cref="Bound(ReadOnlySpan{float}, int, ulong, Span{float}, CancellationToken)"/>).</summary>
    public float[] Bound(RowMatrix rows, int k, ulong seed, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(rows);
        // As LogDensity(RowMatrix): the span form would read a narrower matrix's values as rows of the model's width.
        CheckWidth(rows);
        var result = new float[rows.Rows];
        Bound(rows.AsSpan(), k, seed, result, cancellationToken);
        return result;
    }

    /// <summary>Span form of <see cref="Bound(RowMatrix, int, ulong)"/>.</summary>
    public void Bound(ReadOnlySpan<float> rows, int k, ulong seed, Span<float> bound)
        => Bound(rows, k, seed, bound, CancellationToken.None);

    /// <summary>
    /// <see cref="Bound(ReadOnlySpan{float}, int, ulong, Span{float})"/> that can be cancelled, as
    /// <see cref="DensityModel.LogDensity(ReadOnlySpan{float}, Span{float}, Span{float}, CancellationToken)"/>: the rows
    /// are validated first, then bounded in groups of the largest power of two at most 2^17 / k rows (each row costs k
    /// samples, so the time between checks stays bounded at large k), with a check of <paramref name="cancellationToken"/>
    /// before each (<see cref="OperationCanceledException"/>; the destination then holds the groups done). A row's noise
    /// comes from the seed and its own values, not from its place or its neighbours, so the bounds are bit for bit those
    /// of one call.
    /// </summary>
    public void Bound(ReadOnlySpan<float> rows, int k, ulong seed, Span<float> bound, CancellationToken cancellationToken)
        => Bound(rows, k, seed, bound, cancellationToken, RowsPerCancellationCheckAt(k), null);

    /// <summary>The cancellable bound with its group size and a hook after every group (<see cref="DensityModel.ScoreInGroups"/>;
    /// tests use both).</summary>
    internal void Bound(ReadOnlySpan<float> rows, int k, ulong seed, Span<float> bound, CancellationToken cancellationToken,
        int rowsPerCheck, Action<int>? groupDone)
    {
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), "k must be at least 1.");
        int count = DataValidation.CheckRows(rows, Dimension, InputDomain, "rows");
        if (bound.Length < count) throw new ArgumentException(FormattableString.Invariant($"Destination has {bound.Length} slots for {count} rows."), nameof(bound));
        cancellationToken.ThrowIfCancellationRequested();
        // Without a token that can be cancelled: one call, as before the token existed.
        if (!cancellationToken.CanBeCanceled) BoundCore(rows, count, k, seed, bound);
        else BoundInGroups(rows, count, k, seed, bound, cancellationToken, rowsPerCheck, groupDone);
    }

    private void BoundCore(ReadOnlySpan<float> rows, int count, int k, ulong seed, Span<float> bound)
        => ImportanceSample(rows, count, k, Math.Min(k, EvaluationSamplesPerChunk), seed, SampleRowsPerPass, bound, default);

    // Its own method: a lambda's captures are allocated on entry to the method that declares them, even on the one-call path.
    private void BoundInGroups(ReadOnlySpan<float> rows, int count, int k, ulong seed, Span<float> bound, CancellationToken cancellationToken,
        int rowsPerCheck, Action<int>? groupDone)
        => ScoreInGroups(rows, count, bound, default, rowsPerCheck, cancellationToken, (group, n, output, _) => BoundCore(group, n, k, seed, output), groupDone);

    /// <summary>Mean of the k-sample bound over the rows (float64 accumulation).</summary>
    public double AverageBound(RowMatrix rows, int k, ulong seed) => AverageBound(rows, k, seed, CancellationToken.None);

    /// <summary>Mean of the k-sample bound over the rows; cancellable (see
    /// <see cref="Bound(ReadOnlySpan{float}, int, ulong, Span{float}, CancellationToken)"/>).</summary>
    public double AverageBound(RowMatrix rows, int k, ulong seed, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(rows);
        // As AverageLogDensity: the mean of no bounds is undefined, an error rather than 0 / 0 = NaN.
        if (rows.Rows == 0) throw new DataValidationException(-1, -1, "there are no rows (the average of no bounds is undefined)", null) { Kind = DataProblemKind.NotEnoughData };
        double s = 0;
        foreach (var v in Bound(rows, k, seed, cancellationToken)) s += v;
        return s / rows.Rows;
    }

    /// <summary>
    /// Means of p(x | h) for <paramref name="count"/> draws h ~ p(h) (Bernoulli data: pixel probabilities; Gaussian:
    /// μ). Same seed → same rows, independent of thread count.
    /// </summary>
    public RowMatrix DecoderMean(int count, ulong seed)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), "Count must be non-negative.");
        // As Sample: a draw larger than an array names the count (the matrix's size threw OverflowException).
        if (count > Array.MaxLength / Math.Max(1, Dimension))
            throw new ArgumentOutOfRangeException(nameof(count), count,
                FormattableString.Invariant($"{count} rows of {Dimension} values exceed the largest array ({Array.MaxLength:N0} values); draw them in smaller batches."));
        var m = new RowMatrix(count, Dimension);
        // The sampling blocks of Sample, drawing each row's decoder mean instead of a sample of it.
        if (count > 0)
            SampleInBlocks(count, 0, count, seed, RowsPerSamplingBlock, m.Values,
                (start, n, root, block) => SampleBlock(RowStreams(root, start, n), block, mean: true), CancellationToken.None);
        return m;
    }

    /// <summary>Each row's log-density estimate (as <see cref="DensityModel.LogDensity(ReadOnlySpan{float}, Span{float}, Span{float})"/>,
    /// without the output checks), handing <paramref name="inspect"/> each row's K = <see cref="EvaluationSamples"/>
    /// log-weights: the diagnostics behind the standard error, for tests and the <c>iwae-stderr</c> benchmark.</summary>
    internal void LogDensityWithWeights(ReadOnlySpan<float> rows, Span<float> logDensity, ImportanceSampler.RowWeightsInspector inspect)
    {
        int count = DataValidation.CheckRows(rows, Dimension, InputDomain, "rows");
        ImportanceSample(rows, count, EvaluationSamples, EvaluationSamplesPerChunk, EvaluationSeed, SampleRowsPerPass,
            logDensity[..count], default, inspect);
    }

    /// <inheritdoc/>
    protected sealed override void LogDensityCore(ReadOnlySpan<float> rows, int count, Span<float> logDensity, Span<float> standardError)
        => ImportanceSample(rows, count, EvaluationSamples, EvaluationSamplesPerChunk, EvaluationSeed, SampleRowsPerPass, logDensity, standardError);

    /// <inheritdoc/>
    protected sealed override void SampleCore(int count, ulong seed, Span<float> destination) => SampleCore(count, seed, destination, default);

    private protected sealed override int SamplingBlockRows => RowsPerSamplingBlock;

    /// <summary>A block of samples x ~ p(x | h), h ~ p(h), each row from its own stream.</summary>
    private protected sealed override void DrawSamplingBlock(int start, int n, RandomStream root, Span<float> block)
        => SampleBlock(RowStreams(root, start, n), block, mean: false);

    /// <summary>Rows × samples per scoring pass: the preferred 512, fewer for a very wide network. Computed once (it sums
    /// over the layers; a one-row scorer must not pay that per row); a race computes the same value twice.</summary>
    private int SampleRowsPerPass => _sampleRowsPerPass != 0 ? _sampleRowsPerPass
        : _sampleRowsPerPass = ImportanceSampler.SampleRowsPerPass(EvaluationFloatsPerSample, PreferredSampleRowsPerPass);
    private int _sampleRowsPerPass;

    /// <summary>Rows per sampling block: fewer for a very wide network, so a block's scratch stays under the scratch limit.</summary>
    private int RowsPerSamplingBlock => ImportanceSampler.SampleRowsPerPass(EvaluationFloatsPerSample, PreferredRowsPerSamplingBlock);
}
