using System.Runtime.CompilerServices;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Estimation;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.Nvil;

/// <summary>
/// Sigmoid belief network trained by neural variational inference and learning (NVIL; Mnih &amp; Gregor, ICML 2014): a
/// directed model of binary latent layers over binary data, learned jointly with an inference network q(h | x) by the
/// score-function (REINFORCE) gradient with the paper's variance reduction (input-dependent baseline, running centring
/// and variance normalisation, optional per-layer local learning signals).
/// </summary>
/// <remarks>
/// <para>The reported log-density is an importance-sampling <em>estimate</em> log (1/K) Σ p(x, h_i)/q(h_i | x), h_i ~ q,
/// with K = <see cref="EvaluationSamples"/> (<see cref="DensityKind.Estimate"/>; a stochastic lower bound in expectation
/// that tightens as K grows) and a delta-method standard error.</para>
/// <para>Determinism: a row's noise is drawn from a stream forked from <see cref="EvaluationSeed"/> by a hash of the row's
/// values, so a row gets the same estimate in any batch, order or thread count.</para>
/// </remarks>
public sealed class NvilModel : DensityModel
{
    /// <summary>Model-kind name in saved files.</summary>
    public const string Kind = "Nvil";
    /// <summary>Registers this kind with the model file when the assembly loads (models register themselves; no central list).</summary>
    [ModuleInitializer]
    internal static void RegisterKind() => ModelRegistry.Register(Kind, ReadPayload);
    /// <summary>Sample rows per scoring pass (rows × samples per chunk).</summary>
    private const int SampleRowsPerPass = 512;
    private const int RowsPerSamplingBlock = 256;

    internal readonly NvilNetwork Network;

    internal NvilModel(NvilNetwork network, int evaluationSamples, int evaluationChunk, ulong evaluationSeed)
    {
        Network = network; EvaluationSamples = evaluationSamples; EvaluationSamplesPerChunk = evaluationChunk; EvaluationSeed = evaluationSeed;
        _newWorkspace = (n, k) => new NvilNetwork.Workspace(Network, n, k, forTraining: false);
        _logWeights = LogWeights;
        _oneRowScratch = new(_newWorkspace);
        _sampleRowsPerPass = ImportanceSampler.SampleRowsPerPass(Network.EvaluationFloatsPerSample, SampleRowsPerPass);
    }

    // Made once: a one-row estimate (PredictionEngine, a model loaded into ML.NET) then allocates nothing.
    private readonly Func<int, int, NvilNetwork.Workspace> _newWorkspace;
    private readonly ImportanceSampler.LogWeights<NvilNetwork.Workspace> _logWeights;
    private readonly ImportanceSampler.ScratchPool<NvilNetwork.Workspace> _oneRowScratch;
    private readonly int _sampleRowsPerPass; // sums over the layers: not once per row

    public override string ModelKind => Kind;
    public override int Dimension => Network.D;
    public override DensityKind DensityKind => DensityKind.Estimate;
    public override InputDomain InputDomain => InputDomain.Binary;

    /// <summary>Importance samples K of the reported log-density estimate.</summary>
    public int EvaluationSamples { get; }
    /// <summary>Samples per row per scoring pass.</summary>
    public int EvaluationSamplesPerChunk { get; }
    /// <summary>Seed of the log-density estimate's noise.</summary>
    public ulong EvaluationSeed { get; }
    /// <summary>Latent layer sizes, nearest the data first.</summary>
    public IReadOnlyList<int> LatentDimensions => Network.Latent;
    /// <summary>What training did (null for a loaded model).</summary>
    public TrainingSummary? TrainingSummary { get; internal set; }

    /// <summary>The same model with different log-density estimation settings (parameters shared, not copied).</summary>
    public NvilModel WithEvaluation(int evaluationSamples, ulong? evaluationSeed = null, int? samplesPerChunk = null)
    {
        if (evaluationSamples is < 1 or > NvilOptions.MaxEvaluationSamples)
            throw new ArgumentOutOfRangeException(nameof(evaluationSamples), $"Evaluation samples must be in [1, {NvilOptions.MaxEvaluationSamples}].");
        if (samplesPerChunk is < 1 or > NvilOptions.MaxEvaluationSamplesPerChunk)
            throw new ArgumentOutOfRangeException(nameof(samplesPerChunk), $"Samples per chunk must be in [1, {NvilOptions.MaxEvaluationSamplesPerChunk}].");
        if (ImportanceSampler.ScratchProblem(samplesPerChunk ?? EvaluationSamplesPerChunk, Network.EvaluationFloatsPerSample) is string problem)
            throw new ArgumentOutOfRangeException(nameof(samplesPerChunk), problem + ".");
        return new NvilModel(Network, evaluationSamples, samplesPerChunk ?? EvaluationSamplesPerChunk, evaluationSeed ?? EvaluationSeed)
        { TrainingSummary = TrainingSummary };
    }

    /// <summary>Trains an SBN with NVIL on binary <paramref name="data"/> with the shared training loop.</summary>
    public static NvilModel Fit(RowMatrix data, NvilOptions? options = null, RowMatrix? validation = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new NvilOptions();
        options.Validate();
        DataValidation.CheckTrainingData(data, InputDomain.Binary, "training data");
        if (validation is not null) DataValidation.CheckTrainingData(validation, InputDomain.Binary, "validation data", data.Columns);
        var (train, valid) = TrainingLoop.Split(data, validation, options.ValidationFraction, options.Seed);

        var network = new NvilNetwork(data.Columns, options.LatentDimensions);
        if (ImportanceSampler.ScratchProblem(options.EvaluationSamplesPerChunk, network.EvaluationFloatsPerSample) is string problem)
            throw new ArgumentOutOfRangeException(nameof(options), problem + $" (NvilOptions.{nameof(NvilOptions.EvaluationSamplesPerChunk)}).");
        var init = new RandomStream(options.Seed).Fork(0x4E71);
        network.Initialize(init, options.InitializeOutputBiasFromData ? PixelMeans(train) : default);
        var objective = new NvilObjective(network, options, init.Fork(3), cancellationToken);
        var summary = TrainingLoop.Run(objective, train, valid, options, progress, cancellationToken);
        return ModelFile.EnsureTrainedModelLoadable(new NvilModel(network, options.EvaluationSamples, options.EvaluationSamplesPerChunk, options.EvaluationSeed)
        { TrainingSummary = summary });
    }

    /// <summary>
    /// The k-sample importance-weighted bound log (1/k) Σ_i p(x, h_i)/q(h_i | x) of each row for one draw (k = 1: the
    /// variational bound's single-sample estimate). Noise is derived from <paramref name="seed"/> and each row's values.
    /// </summary>
    public float[] Bound(RowMatrix rows, int k, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), "k must be at least 1.");
        int count = DataValidation.CheckRows(rows.AsSpan(), Dimension, InputDomain, "rows");
        var result = new float[count];
        ImportanceSample(rows.AsSpan(), count, k, Math.Min(k, EvaluationSamplesPerChunk), seed, result, default);
        return result;
    }

    protected override void LogDensityCore(ReadOnlySpan<float> rows, int count, Span<float> logDensity, Span<float> standardError)
        => ImportanceSample(rows, count, EvaluationSamples, EvaluationSamplesPerChunk, EvaluationSeed, logDensity, standardError);

    /// <summary>log (1/K) Σ w_i per row and its standard error, by the shared <see cref="ImportanceSampler"/>.</summary>
    private void ImportanceSample(ReadOnlySpan<float> rows, int count, int samples, int chunk, ulong seed, Span<float> logMean, Span<float> standardError)
        => ImportanceSampler.Estimate(rows, count, Dimension, samples, chunk, seed, _sampleRowsPerPass,
            _newWorkspace, _logWeights, logMean, standardError, _oneRowScratch);

    /// <summary>Fills each row's uniforms for <paramref name="k"/> samples from its own stream, then one forward pass.</summary>
    private void LogWeights(NvilNetwork.Workspace ws, ReadOnlySpan<float> x, int n, int k, ReadOnlySpan<RandomStream> rowStreams,
        Span<double> logW, bool allowParallel)
    {
        for (int r = 0; r < n; r++)
            for (int l = 0; l < Network.Layers; l++)
            {
                int h = Network.Latent[l];
                rowStreams[r].FillUniform(ws.U[l].AsSpan(r * k * h, k * h));
            }
        Network.Forward(x, n, k, ws, allowParallel);
        for (int j = 0; j < n * k; j++) logW[j] = ws.LogW[j];
    }

    protected override void SampleCore(int count, ulong seed, Span<float> destination) => Generate(count, seed, destination, mean: false);

    /// <summary>Pixel probabilities p(x_c = 1 | h_0) for <paramref name="count"/> draws h ~ p(h). Same seed → same rows.</summary>
    public RowMatrix DecoderMean(int count, ulong seed)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), "Count must be non-negative.");
        var m = new RowMatrix(count, Dimension);
        if (count > 0) Generate(count, seed, m.Values, mean: true);
        return m;
    }

    private void Generate(int count, ulong seed, Span<float> destination, bool mean)
    {
        var root = new RandomStream(seed);
        int d = Dimension;
        int blocks = (count + RowsPerSamplingBlock - 1) / RowsPerSamplingBlock;
        var output = new float[count * d];
        DeepDensityEnvironment.For(0, blocks, b =>
        {
            int start = b * RowsPerSamplingBlock, n = Math.Min(RowsPerSamplingBlock, count - start);
            var streams = new RandomStream[n];
            for (int r = 0; r < n; r++) streams[r] = root.Fork((ulong)(start + r));
            Network.Sample(n, streams, output.AsSpan(start * d, n * d), mean);
        });
        output.CopyTo(destination);
    }

    private static float[] PixelMeans(RowMatrix data)
    {
        var sum = new double[data.Columns];
        for (int r = 0; r < data.Rows; r++)
        {
            var row = data.Row(r);
            for (int c = 0; c < sum.Length; c++) sum[c] += row[c];
        }
        return sum.Select(s => (float)(s / data.Rows)).ToArray();
    }

    protected internal override void WritePayload(ModelWriter w)
    {
        w.WriteInt32(Network.D);
        w.WriteInt32s(Network.Latent);
        w.WriteInt32(EvaluationSamples);
        w.WriteInt32(EvaluationSamplesPerChunk);
        w.WriteUInt64(EvaluationSeed);
        foreach (var p in Network.Parameters.Items) w.WriteSingles(p.Value);
    }

    internal static DensityModel ReadPayload(ModelReader r, int version)
    {
        if (version != 1) throw r.Corrupt($"payload version {version} is not supported (expected 1)");
        int d = r.ReadInt32("dimension", 1, 1 << 24);
        var latent = r.ReadInt32s("latent dimensions");
        if (latent.Length is < 1 or > 8) throw r.Corrupt($"latent dimensions has {latent.Length} entries, expected 1 to 8");
        foreach (var s in latent) if (s < 1 || s > 1 << 16) throw r.Corrupt($"latent dimension {s} is outside [1, {1 << 16}]");
        int evalK = r.ReadInt32("evaluation samples", 1, NvilOptions.MaxEvaluationSamples);
        int chunk = r.ReadInt32("evaluation samples per chunk", 1, NvilOptions.MaxEvaluationSamplesPerChunk);
        ulong seed = r.ReadUInt64();
        if (NvilNetwork.ParameterCount(d, latent) * 4 > r.Remaining) throw r.Corrupt("declared sizes exceed the payload");
        var net = new NvilNetwork(d, latent);
        if (ImportanceSampler.ScratchProblem(chunk, net.EvaluationFloatsPerSample) is string problem) throw r.Corrupt(problem);
        foreach (var p in net.Parameters.Items) r.ReadParameters(p.Name, p.Value.Length).CopyTo(p.Value, 0);
        return new NvilModel(net, evalK, chunk, seed);
    }
}
