using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Training;

/// <summary>
/// One partition's share of a data-parallel gradient step (docs/scaling.md, "Beyond one machine"): at fixed parameters,
/// the number of examples, the sum of the objective over them and the sum over them of the loss gradient (the gradient
/// of the <em>negative</em> objective), flattened over the model's <see cref="ParameterSet"/> in its order. Sums merge by
/// addition (<see cref="Merge"/>, associative and commutative up to float64 rounding), so a driver can combine the
/// partials of any number of workers in any tree and step with their mean (<see cref="DataParallelOptimizer"/>).
/// </summary>
/// <remarks>Computed through the model's own <see cref="IGradientObjective.ComputeGradient"/> (no second gradient
/// path). A partition is a run of whole blocks of the global batch: block noise is forked by the block's position in the
/// global batch (<c>firstBlock</c>), so a stochastic objective draws the same noise however the batch is split.</remarks>
public sealed class GradientPartial
{
    private const uint Magic = 0x50474444; // "DDGP" little-endian
    private readonly double[] _lossGradientSum;

    private GradientPartial(long count, double objectiveSum, double[] lossGradientSum)
    {
        Count = count; ObjectiveSum = objectiveSum; _lossGradientSum = lossGradientSum;
    }

    /// <summary>Examples summed.</summary>
    public long Count { get; }

    /// <summary>Sum of the objective (log-likelihood or bound per example) over the examples.</summary>
    public double ObjectiveSum { get; }

    /// <summary>Σ over the examples of ∇(−objective), every tensor of the <see cref="ParameterSet"/> in order, flattened.</summary>
    public ReadOnlySpan<double> LossGradientSum => _lossGradientSum;

    /// <summary>The partial of no examples (the identity of <see cref="Merge"/>) for <paramref name="parameters"/>.</summary>
    public static GradientPartial Empty(ParameterSet parameters) => new(0, 0, new double[FlatLength(parameters)]);

    /// <summary>
    /// The partial of <paramref name="count"/> rows at the objective's current parameters. <paramref name="random"/> is the
    /// step's stream of the whole batch and <paramref name="firstBlock"/> the index, in that batch, of the partition's
    /// first block of rows (the objective's rows per block; the partition starts at row firstBlock × rows per block), so
    /// block b of the partition draws the noise of block firstBlock + b. The objective's gradient buffers are overwritten.
    /// </summary>
    public static GradientPartial Compute(IGradientObjective objective, ReadOnlySpan<float> rows, int count, RandomStream random, int firstBlock = 0)
    {
        ArgumentNullException.ThrowIfNull(objective);
        Check(count, random, firstBlock);
        if (count == 0) return Empty(objective.Parameters);
        double sum = objective.ComputeGradient(rows, count, Offset(random, firstBlock));
        return FromMeanGradient(objective.Parameters, count, sum);
    }

    private static void Check(int count, RandomStream random, int firstBlock)
    {
        ArgumentNullException.ThrowIfNull(random);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfNegative(firstBlock);
    }

    private static RandomStream Offset(RandomStream random, int firstBlock) => firstBlock == 0 ? random : random.WithForkOffset((ulong)firstBlock);

    /// <summary>
    /// The objective wrote ∇ of the negative mean, −(1/n) Σ ∇f; n times it is the loss-gradient sum. A float times n
    /// (n &lt; 2^29) is exact in float64, so a single partition's mean (<see cref="DataParallelOptimizer"/>) is the float the
    /// objective wrote, bit for bit.
    /// </summary>
    private static GradientPartial FromMeanGradient(ParameterSet parameters, int count, double objectiveSum)
    {
        var flat = new double[FlatLength(parameters)];
        int offset = 0;
        foreach (var p in parameters.Items)
        {
            var g = p.Gradient;
            for (int i = 0; i < g.Length; i++) flat[offset + i] = (double)g[i] * count;
            offset += g.Length;
        }
        return new GradientPartial(count, objectiveSum, flat);
    }

    internal static int FlatLength(ParameterSet parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        long n = parameters.Count;
        if (n > Array.MaxLength) throw new NotSupportedException(FormattableString.Invariant($"A gradient partial holds at most {Array.MaxLength} parameters; the model has {n}."));
        return (int)n;
    }

    /// <summary>The partial of the union of two disjoint sets of examples: counts, objective sums and gradient sums added
    /// (float64). Merging in another order or tree changes a sum by float64 rounding only.</summary>
    public static GradientPartial Merge(GradientPartial a, GradientPartial b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a._lossGradientSum.Length != b._lossGradientSum.Length)
            throw new ArgumentException(FormattableString.Invariant($"Gradient partials of different models: {a._lossGradientSum.Length} and {b._lossGradientSum.Length} parameters."), nameof(b));
        var sum = new double[a._lossGradientSum.Length];
        System.Numerics.Tensors.TensorPrimitives.Add(a._lossGradientSum, b._lossGradientSum, sum);
        return new GradientPartial(checked(a.Count + b.Count), a.ObjectiveSum + b.ObjectiveSum, sum);
    }

    /// <summary>Writes the partial for shipping between workers (a checksummed little-endian record; see
    /// docs/scaling.md).</summary>
    public byte[] ToBytes() => SumRecord.Write(Magic, 0, Count, ObjectiveSum, _lossGradientSum);

    /// <summary>
    /// Reads a partial written by <see cref="ToBytes"/> for a model of <paramref name="expectedLength"/> parameters
    /// (<see cref="ParameterSet.Count"/>). The bytes must be exactly one partial; a wrong magic, version or length, a
    /// negative count, a truncated or over-long buffer or a checksum mismatch throws <see cref="InvalidDataException"/>
    /// before anything is allocated beyond the expected length. Non-finite sums are kept (a worker's divergence is the
    /// driver's to see: <see cref="DataParallelOptimizer.Step"/> then returns false).
    /// </summary>
    public static GradientPartial FromBytes(ReadOnlySpan<byte> bytes, long expectedLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(expectedLength);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(expectedLength, (long)Array.MaxLength);
        var (_, count, objectiveSum, sum) = SumRecord.Read(bytes, Magic, "gradient partial",
            tag => tag == 0 ? ((int)expectedLength, null) : (0, FormattableString.Invariant($"tag {tag} is not 0")));
        return new GradientPartial(count, objectiveSum, sum);
    }
}

/// <summary>
/// The driver's side of data-parallel gradient training: the training loop's optimiser (Adam or SGD with momentum,
/// weight decay, global-norm clipping, exactly as <see cref="TrainingLoop"/> steps) applied to the mean of merged
/// <see cref="GradientPartial"/>s. With one partition the step is the single-process step bit for bit.
/// </summary>
public sealed class DataParallelOptimizer
{
    private readonly Optimizer _optimizer;
    private readonly float _clipNorm;

    /// <summary>An optimiser over <paramref name="parameters"/> with the optimiser settings of <paramref name="options"/>.</summary>
    public DataParallelOptimizer(ParameterSet parameters, GradientTrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Parameters = parameters;
        _optimizer = Optimizer.Create(options);
        _clipNorm = options.GradientClipNorm;
    }

    /// <summary>The parameters the steps update (the driver's copy of the model, broadcast to the workers after each step).</summary>
    public ParameterSet Parameters { get; }

    /// <summary>
    /// One update with the merged partial of the step's batch: the gradients become its mean loss gradient (each
    /// element rounded once to float32), then clipping and the optimiser step. False when the objective sum or a
    /// gradient is not finite (divergence: the parameters may be non-finite; restore the last good ones and call
    /// <see cref="Reset"/>).
    /// </summary>
    public bool Step(GradientPartial merged, float learningRate)
    {
        ArgumentNullException.ThrowIfNull(merged);
        var sum = merged.LossGradientSum;
        if (sum.Length != Parameters.Count)
            throw new ArgumentException(FormattableString.Invariant($"The partial holds {sum.Length} parameters; the model has {Parameters.Count}."), nameof(merged));
        if (merged.Count == 0) throw new ArgumentException("The partial holds no examples.", nameof(merged));
        if (!double.IsFinite(merged.ObjectiveSum)) return false;
        double n = merged.Count;
        int offset = 0;
        foreach (var p in Parameters.Items)
        {
            var g = p.Gradient;
            for (int i = 0; i < g.Length; i++) g[i] = (float)(sum[offset + i] / n);
            offset += g.Length;
        }
        return _optimizer.ClipAndStep(Parameters, _clipNorm, learningRate);
    }

    /// <summary>Forgets the optimiser's moments (after restoring parameters from a divergence).</summary>
    public void Reset() => _optimizer.Reset();
}
