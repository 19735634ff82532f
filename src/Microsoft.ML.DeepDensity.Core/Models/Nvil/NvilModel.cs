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
/// <remarks>The log-density is the importance-sampled estimate of <see cref="ImportanceSampledModel"/> with the
/// inference network as proposal, K = <see cref="ImportanceSampledModel.EvaluationSamples"/>.</remarks>
public sealed class NvilModel : ImportanceSampledModel
{
    /// <summary>Model-kind name in saved files.</summary>
    public const string Kind = "Nvil";
    /// <summary>Registers this kind with the model file when the assembly loads (models register themselves; no central list).</summary>
    [ModuleInitializer]
    internal static void RegisterKind() => ModelRegistry.Register(Kind, ReadPayload);

    internal readonly NvilNetwork Network;

    internal NvilModel(NvilNetwork network, int evaluationSamples, int evaluationChunk, ulong evaluationSeed)
        : base(evaluationSamples, evaluationChunk, evaluationSeed)
    {
        Network = network;
        _newWorkspace = (n, k) => new NvilNetwork.Workspace(Network, n, k, forTraining: false);
        _logWeights = LogWeights;
        _scratch = new(_newWorkspace);
    }

    // Made once: scoring (one row per call, as a PredictionEngine or a model loaded into ML.NET does, or many) then allocates nothing.
    private readonly Func<int, int, NvilNetwork.Workspace> _newWorkspace;
    private readonly ImportanceSampler.LogWeights<NvilNetwork.Workspace> _logWeights;
    private readonly ImportanceSampler.ScratchPool<NvilNetwork.Workspace> _scratch;

    /// <inheritdoc />
    public override string ModelKind => Kind;
    /// <inheritdoc />
    public override int Dimension => Network.D;
    /// <inheritdoc />
    public override InputDomain InputDomain => InputDomain.Binary;

    /// <summary>Latent layer sizes, nearest the data first.</summary>
    public IReadOnlyList<int> LatentDimensions => Network.Latent;

    /// <summary>The same model with different log-density estimation settings (parameters shared, not copied).</summary>
    public NvilModel WithEvaluation(int evaluationSamples, ulong? evaluationSeed = null, int? samplesPerChunk = null)
        => (NvilModel)WithEvaluationChecked(evaluationSamples, evaluationSeed, samplesPerChunk);

    private protected override ImportanceSampledModel WithEvaluationCore(int evaluationSamples, int samplesPerChunk, ulong evaluationSeed)
        => new NvilModel(Network, evaluationSamples, samplesPerChunk, evaluationSeed);

    private protected override long EvaluationFloatsPerSample => Network.EvaluationFloatsPerSample;

    /// <summary>Trains an SBN with NVIL on binary <paramref name="data"/> with the shared training loop.</summary>
    public static NvilModel Fit(RowMatrix data, NvilOptions? options = null, RowMatrix? validation = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new NvilOptions();
        options.Validate();
        // Before the data is read, copied or checked: a model no file could hold is known from the options and the width.
        ArgumentNullException.ThrowIfNull(data);
        options.PredictModelSize(data.Columns).EnsureFitsAFile();
        DataValidation.CheckTrainingData(data, InputDomain.Binary, DataValidation.TrainingData);
        if (validation is not null) DataValidation.CheckTrainingData(validation, InputDomain.Binary, DataValidation.ValidationData, data.Columns);
        // The preparation observes the token as it goes (every run of rows, Preparation), as training does.
        var (train, valid) = TrainingLoop.Split(data, validation, options.ValidationFraction, options.Seed, cancellationToken);

        var network = new NvilNetwork(data.Columns, options.LatentDimensions);
        if (ImportanceSampler.ScratchProblem(options.EvaluationSamplesPerChunk, network.EvaluationFloatsPerSample) is string problem)
            throw new ArgumentOutOfRangeException(nameof(options), problem + $" (NvilOptions.{nameof(NvilOptions.EvaluationSamplesPerChunk)}).");
        var init = new RandomStream(options.Seed).Fork(0x4E71);
        network.Initialize(init, options.InitializeOutputBiasFromData ? PixelMeans(train, cancellationToken) : default);
        var objective = new NvilObjective(network, options, init.Fork(3), cancellationToken);
        var summary = UnscorableValidation.NamingUserRows(() => TrainingLoop.Run(objective, train, valid, options, progress, cancellationToken),
            data, validation, options.ValidationFraction, options.Seed);
        return ModelFile.EnsureTrainedModelLoadable(new NvilModel(network, options.EvaluationSamples, options.EvaluationSamplesPerChunk, options.EvaluationSeed)
        { TrainingSummary = summary });
    }

    private protected override void ImportanceSample(ReadOnlySpan<float> rows, int count, int samples, int samplesPerChunk, ulong seed,
        int sampleRowsPerPass, Span<float> logMean, Span<float> standardError, ImportanceSampler.RowWeightsInspector? inspect = null)
        => ImportanceSampler.Estimate(rows, count, Dimension, samples, samplesPerChunk, seed, sampleRowsPerPass,
            _newWorkspace, _logWeights, logMean, standardError, inspect, _scratch);

    /// <summary>Fills each row's uniforms for <paramref name="k"/> samples from its own stream, then one forward pass.</summary>
    private void LogWeights(NvilNetwork.Workspace ws, ReadOnlySpan<float> x, int n, int k, ReadOnlySpan<RandomStream> rowStreams,
        Span<double> logW, bool allowParallel, bool sameRows)
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

    private protected override void SampleBlock(RandomStream[] streams, Span<float> output, bool mean)
        => Network.Sample(streams.Length, streams, output, mean);

    private static float[] PixelMeans(RowMatrix data, CancellationToken cancellationToken)
    {
        var sum = new double[data.Columns];
        Preparation.AddColumnSums(data, sum, null, cancellationToken);
        return sum.Select(s => (float)(s / data.Rows)).ToArray();
    }

    /// <inheritdoc />
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
        if (version != 1) throw r.Corrupt(FormattableString.Invariant($"payload version {version} is not supported (expected 1)"));
        int d = r.ReadInt32("dimension", 1, NvilOptions.MaxDimension);
        var latent = r.ReadInt32s("latent dimensions");
        if (latent.Length is < 1 or > 8) throw r.Corrupt(FormattableString.Invariant($"latent dimensions has {latent.Length} entries, expected 1 to 8"));
        foreach (var s in latent) if (s < 1 || s > NvilOptions.MaxLayerUnits) throw r.Corrupt(FormattableString.Invariant($"latent dimension {s} is outside [1, {NvilOptions.MaxLayerUnits}]"));
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
