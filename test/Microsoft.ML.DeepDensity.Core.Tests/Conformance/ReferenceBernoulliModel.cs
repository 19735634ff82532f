using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>
/// Test-only reference model: independent Bernoulli columns with logits trained by the shared gradient loop. It is
/// the smallest model that follows the whole contract for <see cref="InputDomain.Binary"/> data, so the binary paths
/// of the conformance suite run (and are known to pass for a correct model) before RBM and IWAE are merged.
/// </summary>
internal sealed class ReferenceBernoulliModel : DensityModel
{
    public const string Kind = "ConformanceBernoulli";
    private const int RowsPerSampleBlock = 256;
    private readonly float[] _logits;

    static ReferenceBernoulliModel() => ModelRegistry.Register(Kind, ReadPayload);

    private ReferenceBernoulliModel(float[] logits) => _logits = logits;

    public override string ModelKind => Kind;
    public override int Dimension => _logits.Length;
    public override InputDomain InputDomain => InputDomain.Binary;
    public override DensityKind DensityKind => DensityKind.Exact;

    public static ReferenceBernoulliModel Fit(RowMatrix data, RowMatrix? validation, GradientTrainingOptions options, IProgress<TrainingProgress>? progress, CancellationToken ct)
    {
        options.Validate();
        DataValidation.CheckTrainingData(data, InputDomain.Binary, "training data");
        if (validation is not null) DataValidation.CheckTrainingData(validation, InputDomain.Binary, "validation data", data.Columns);
        var (train, valid) = TrainingLoop.Split(data, validation, options.ValidationFraction, options.Seed);
        var logits = new float[data.Columns];
        new RandomStream(options.Seed).Fork(1).FillGaussian(logits, 0f, 0.1f);
        TrainingLoop.Run(new Objective(logits), train, valid, options, progress, ct);
        return new ReferenceBernoulliModel(logits);
    }

    /// <summary>log p(x) = Σ_c x_c·θ_c − softplus(θ_c), with a stable softplus.</summary>
    private static double RowLogDensity(ReadOnlySpan<float> logits, ReadOnlySpan<float> x)
    {
        double s = 0;
        for (int c = 0; c < logits.Length; c++) s += x[c] * logits[c] - Softplus(logits[c]);
        return s;
    }

    private static double Softplus(double v) => v > 0 ? v + Math.Log(1 + Math.Exp(-v)) : Math.Log(1 + Math.Exp(v));

    protected override void LogDensityCore(ReadOnlySpan<float> rows, int count, Span<float> logDensity, Span<float> standardError)
    {
        int d = Dimension;
        for (int r = 0; r < count; r++) logDensity[r] = (float)RowLogDensity(_logits, rows.Slice(r * d, d));
    }

    protected override void SampleCore(int count, ulong seed, Span<float> destination) => SampleCore(count, seed, destination, default);

    /// <summary>Checks the token before every block, as the contract asks of a draw that can be large.</summary>
    protected override void SampleCore(int count, ulong seed, Span<float> destination, CancellationToken cancellationToken)
    {
        var root = new RandomStream(seed);
        int d = Dimension;
        var output = new float[count * d];
        int blocks = (count + RowsPerSampleBlock - 1) / RowsPerSampleBlock;
        DeepDensityEnvironment.For(0, blocks, b =>
        {
            cancellationToken.ThrowIfCancellationRequested();
            int start = b * RowsPerSampleBlock, n = Math.Min(RowsPerSampleBlock, count - start);
            for (int r = start; r < start + n; r++)
            {
                var rng = root.Fork((ulong)r); // row r depends only on (seed, r)
                for (int c = 0; c < d; c++)
                    output[r * d + c] = rng.NextDouble() < 1 / (1 + Math.Exp(-_logits[c])) ? 1f : 0f;
            }
        });
        output.CopyTo(destination);
    }

    protected internal override void WritePayload(ModelWriter writer)
    {
        writer.WriteInt32(Dimension);
        writer.WriteSingles(_logits);
    }

    private static DensityModel ReadPayload(ModelReader r, int version)
    {
        if (version != 1) throw r.Corrupt($"payload version {version} is not supported (expected 1)");
        int d = r.ReadInt32("dimension", 1, 1 << 24);
        return new ReferenceBernoulliModel(r.ReadSingles("logits", d));
    }

    internal sealed class Objective : IGradientObjective
    {
        private readonly float[] _logits;
        public Objective(float[] logits) { _logits = logits; Parameters = new ParameterSet(new Parameter("logits", logits)); }
        public ParameterSet Parameters { get; }

        public double ComputeGradient(ReadOnlySpan<float> rows, int count, RandomStream random)
        {
            int d = _logits.Length;
            var g = Parameters.Items[0].Gradient;
            Array.Clear(g);
            double sum = 0;
            for (int r = 0; r < count; r++)
            {
                var x = rows.Slice(r * d, d);
                sum += RowLogDensity(_logits, x);
                // ∂(−mean log p)/∂θ_c = mean(σ(θ_c) − x_c).
                for (int c = 0; c < d; c++) g[c] += (float)((1 / (1 + Math.Exp(-_logits[c])) - x[c]) / count);
            }
            return sum;
        }

        public double Evaluate(ReadOnlySpan<float> rows, int count, RandomStream random)
        {
            int d = _logits.Length;
            double sum = 0;
            for (int r = 0; r < count; r++) sum += RowLogDensity(_logits, rows.Slice(r * d, d));
            return sum;
        }
    }
}
