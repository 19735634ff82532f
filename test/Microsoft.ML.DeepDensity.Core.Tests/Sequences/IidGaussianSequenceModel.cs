using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.Sequences;

/// <summary>
/// Test-only trivial sequence model: frames are i.i.d. under a diagonal Gaussian, so log p(x_t | x_&lt;t) = log N(x_t; μ, σ²)
/// and a sequence's log-density is the sum over its frames. It follows the whole <see cref="SequenceDensityModel"/>
/// contract, so the sequence paths (batching through <see cref="ITrainingData"/>, save/load, the ML.NET layer) are
/// exercised before a real sequence model exists.
/// </summary>
public sealed class IidGaussianSequenceModel : SequenceDensityModel
{
    public const string Kind = "TestIidGaussianSequence";
    private readonly float[] _mean, _std;

    static IidGaussianSequenceModel() => ModelRegistry.Register(Kind, ReadPayload);

    private IidGaussianSequenceModel(float[] mean, float[] std) { _mean = mean; _std = std; }

    /// <summary>Runs the static constructor (registers the kind) before a load in a fresh process.</summary>
    public static void EnsureRegistered() { }

    public override string ModelKind => Kind;
    public override int FrameSize => _mean.Length;
    public override DensityKind DensityKind => DensityKind.Exact;
    public IReadOnlyList<float> Mean => _mean;
    public IReadOnlyList<float> StandardDeviation => _std;

    /// <summary>Per-slot mean and standard deviation over all frames, accumulated in batches of <paramref name="batchSize"/> sequences.</summary>
    public static IidGaussianSequenceModel Fit(SequenceBatch data, int batchSize = 7)
    {
        ArgumentNullException.ThrowIfNull(data);
        DataValidation.CheckTrainingData(data, InputDomain.Real, "training data", data.FrameSize);
        int d = data.FrameSize;
        ITrainingData source = TrainingData.From(data);
        var batch = new TrainingBatch();
        var sum = new double[d]; var sumSq = new double[d];
        long frames = 0;
        var indices = new int[batchSize];
        for (int start = 0; start < source.Count; start += batchSize)
        {
            int n = Math.Min(batchSize, source.Count - start);
            for (int i = 0; i < n; i++) indices[i] = start + i;
            source.CopyBatch(indices.AsSpan(0, n), batch);
            var s = batch.Sequences!;
            var values = s.AsSpan();
            for (int t = 0; t < s.TotalFrames; t++)
                for (int c = 0; c < d; c++) { double v = values[t * d + c]; sum[c] += v; sumSq[c] += v * v; }
            frames += s.TotalFrames;
        }
        var mean = new float[d]; var std = new float[d];
        for (int c = 0; c < d; c++)
        {
            double m = sum[c] / frames;
            mean[c] = (float)m;
            std[c] = (float)Math.Sqrt(Math.Max(sumSq[c] / frames - m * m, 1e-6));
        }
        return new IidGaussianSequenceModel(mean, std);
    }

    /// <summary>
    /// The same model fitted by gradient ascent on the frames' log-likelihood through the shared training driver
    /// (<see cref="TrainingLoop.Run(IBatchGradientObjective, ITrainingSource, ITrainingSource?, GradientTrainingOptions, IProgress{TrainingProgress}?, CancellationToken)"/>):
    /// the sequence path of gradient training. The objective counts the frames it has seen, an extra state that the
    /// driver snapshots and restores with the parameters.
    /// </summary>
    public static IidGaussianSequenceModel FitByGradient(SequenceBatch data, GradientTrainingOptions options, SequenceBatch? validation = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        options.Validate();
        DataValidation.CheckTrainingData(data, InputDomain.Real, "training data", data.FrameSize);
        if (validation is not null) DataValidation.CheckTrainingData(validation, InputDomain.Real, "validation data", data.FrameSize);
        var (train, valid) = TrainingLoop.Split(TrainingData.From(data), validation is null ? null : TrainingData.From(validation), options.ValidationFraction, options.Seed);
        var objective = new GradientObjective(data.FrameSize);
        var summary = TrainingLoop.Run(objective, train, valid, options, progress, cancellationToken);
        var std = objective.LogStd.Value.Select(v => MathF.Exp(v)).ToArray();
        return new IidGaussianSequenceModel((float[])objective.Mean.Value.Clone(), std) { TrainingSummary = summary, FramesSeen = objective.FramesSeen };
    }

    // TrainingSummary is the base class's (DensityModelBase): null for moment fits and loaded models.
    /// <summary>Frames the gradient objective saw in the state that training kept.</summary>
    public long FramesSeen { get; private init; }

    /// <summary>Σ_frames log N(x; μ, e^{2s}) with its gradient (mean per sequence, like the engine's row objectives).</summary>
    internal sealed class GradientObjective : IBatchGradientObjective, ITrainingStateOwner
    {
        public readonly Parameter Mean, LogStd;
        public long FramesSeen;

        public GradientObjective(int d)
        {
            Mean = new Parameter("mean", new float[d]);
            LogStd = new Parameter("logStd", new float[d]);
            Parameters = new ParameterSet(Mean, LogStd);
        }

        public ParameterSet Parameters { get; }

        public double ComputeGradient(TrainingBatch batch, RandomStream random) => Run(batch, gradient: true);
        public double Evaluate(TrainingBatch batch, RandomStream random) => Run(batch, gradient: false);

        private double Run(TrainingBatch batch, bool gradient)
        {
            var s = batch.Sequences ?? throw new InvalidOperationException("A sequence objective got rows.");
            int d = s.FrameSize;
            var gm = new double[d]; var gs = new double[d];
            double total = 0;
            var values = s.AsSpan();
            for (int t = 0; t < s.TotalFrames; t++)
                for (int c = 0; c < d; c++)
                {
                    double sigma = Math.Exp(LogStd.Value[c]);
                    double z = (values[t * d + c] - Mean.Value[c]) / sigma;
                    total += -0.5 * z * z - LogStd.Value[c] - 0.5 * Math.Log(2 * Math.PI);
                    gm[c] += z / sigma; gs[c] += z * z - 1;
                }
            if (gradient)
            {
                FramesSeen += s.TotalFrames;
                for (int c = 0; c < d; c++) { Mean.Gradient[c] = (float)(-gm[c] / s.Count); LogStd.Gradient[c] = (float)(-gs[c] / s.Count); }
            }
            return total;
        }

        public object CaptureState() => FramesSeen;
        public void RestoreState(object state) => FramesSeen = (long)state;
    }

    protected override void FrameLogDensityCore(SequenceBatch sequences, Span<float> frameLogDensity)
    {
        int d = FrameSize;
        var values = sequences.AsSpan();
        for (int t = 0; t < sequences.TotalFrames; t++)
        {
            double s = 0;
            for (int c = 0; c < d; c++)
            {
                double z = (values[t * d + c] - _mean[c]) / _std[c];
                s += -0.5 * z * z - Math.Log(_std[c]) - 0.5 * Math.Log(2 * Math.PI);
            }
            frameLogDensity[t] = (float)s;
        }
    }

    protected override void SampleCore(SequenceBatch? prefixes, SequenceBatch destination, int newFrames, ulong seed)
    {
        var root = new RandomStream(seed);
        int d = FrameSize;
        for (int i = 0; i < destination.Count; i++)
        {
            var frames = destination.Sequence(i)[((destination.Length(i) - newFrames) * d)..];
            // Keyed by the prefix length too (as RNN-RNADE): a continuation must not replay the noise of its prefix's draw.
            int prefixLength = destination.Length(i) - newFrames;
            GaussianNoise.Fill(prefixes is null ? root.Fork((ulong)i) : root.Fork((ulong)i, (ulong)prefixLength), frames);
            for (int j = 0; j < frames.Length; j++) frames[j] = _mean[j % d] + _std[j % d] * frames[j];
        }
    }

    protected internal override void WritePayload(ModelWriter writer)
    {
        writer.WriteSingles(_mean);
        writer.WriteSingles(_std);
    }

    private static DensityModelBase ReadPayload(ModelReader reader, int version)
    {
        if (version != 1) throw reader.Corrupt($"payload version {version} is not supported");
        var mean = reader.ReadSingles("mean");
        var std = reader.ReadSingles("std", mean.Length);
        if (mean.Length == 0 || std.Any(s => !(s > 0))) throw reader.Corrupt("frame size 0 or a non-positive standard deviation");
        return new IidGaussianSequenceModel(mean, std);
    }
}
