using System.Runtime.CompilerServices;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Estimation;
using Microsoft.ML.DeepDensity.Layers;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.Iwae;

/// <summary>
/// Importance-weighted auto-encoder (Burda, Grosse &amp; Salakhutdinov, ICLR 2016); with <see cref="IwaeOptions.Samples"/>
/// = 1 it is the variational auto-encoder (Kingma &amp; Welling 2014). A latent-variable model p(z) p(x | z) trained by
/// maximising the k-sample bound log (1/k) Σ_i p(x, z_i)/q(z_i | x) with a Gaussian inference network q.
/// </summary>
/// <remarks>The log-density is the importance-sampled estimate of <see cref="ImportanceSampledModel"/> with the
/// Gaussian inference network as proposal, K = <see cref="ImportanceSampledModel.EvaluationSamples"/>. A Gaussian model
/// fitted with <see cref="IwaeOptions.Standardize"/> runs its networks on standardised columns (<see cref="Standardizer"/>);
/// its log-densities, bounds and samples are those of the raw columns.</remarks>
public sealed class IwaeModel : ImportanceSampledModel
{
    /// <summary>Model-kind name in saved files.</summary>
    public const string Kind = "Iwae";
    /// <summary>Registers this kind with the model file when the assembly loads (models register themselves; no central list).</summary>
    [ModuleInitializer]
    internal static void RegisterKind() => ModelRegistry.Register(Kind, ReadPayload);

    internal readonly IwaeNetwork Network;

    internal IwaeModel(IwaeNetwork network, int samples, int evaluationSamples, int evaluationChunk, ulong evaluationSeed,
        ColumnStandardizer? standardizer = null)
        : base(evaluationSamples, evaluationChunk, evaluationSeed)
    {
        if (standardizer is not null && standardizer.Width != network.D)
            throw new ArgumentException(FormattableString.Invariant($"The standardizer has {standardizer.Width} columns; the network has {network.D}."), nameof(standardizer));
        Network = network; Samples = samples; Standardizer = standardizer;
        _newWorkspace = (n, k) => new IwaeNetwork.Workspace(Network, n, k, forTraining: false)
        {
            StandardizedRows = Standardizer is null ? null : new float[n * Network.D],
        };
        _logWeights = LogWeights;
        _scratch = new(_newWorkspace);
    }

    // Made once: scoring (one row per call, as a PredictionEngine or a model loaded into ML.NET does, or many) then allocates nothing.
    private readonly Func<int, int, IwaeNetwork.Workspace> _newWorkspace;
    private readonly ImportanceSampler.LogWeights<IwaeNetwork.Workspace> _logWeights;
    private readonly ImportanceSampler.ScratchPool<IwaeNetwork.Workspace> _scratch;

    /// <inheritdoc />
    public override string ModelKind => Kind;
    /// <inheritdoc />
    public override int Dimension => Network.D;
    /// <inheritdoc />
    public override InputDomain InputDomain => Network.Likelihood == IwaeLikelihood.Bernoulli ? InputDomain.Binary : InputDomain.Real;

    /// <summary>Importance samples k the model was trained with.</summary>
    public int Samples { get; }
    /// <summary>Stochastic layer sizes, nearest the data first.</summary>
    public IReadOnlyList<int> LatentDimensions => Network.Latent;
    /// <summary>Observation model.</summary>
    public IwaeLikelihood Likelihood => Network.Likelihood;
    /// <summary>Hidden non-linearity.</summary>
    public Activation Activation => Network.Activation;
    /// <summary>The per-column standardisation the networks run behind (<see cref="IwaeOptions.Standardize"/>), fitted on the
    /// training rows; null when the model reads its inputs as they are (Bernoulli data, Standardize = false, and models
    /// saved before the option existed).</summary>
    public ColumnStandardizer? Standardizer { get; }

    /// <summary>The same model with different log-density estimation settings (parameters shared, not copied).</summary>
    public IwaeModel WithEvaluation(int evaluationSamples, ulong? evaluationSeed = null, int? samplesPerChunk = null)
        => (IwaeModel)WithEvaluationChecked(evaluationSamples, evaluationSeed, samplesPerChunk);

    private protected override ImportanceSampledModel WithEvaluationCore(int evaluationSamples, int samplesPerChunk, ulong evaluationSeed)
        => new IwaeModel(Network, Samples, evaluationSamples, samplesPerChunk, evaluationSeed, Standardizer);

    private protected override long EvaluationFloatsPerSample => Network.EvaluationFloatsPerSample;

    /// <summary>Trains an IWAE (VAE when <see cref="IwaeOptions.Samples"/> = 1) on <paramref name="data"/> with the shared training loop.</summary>
    public static IwaeModel Fit(RowMatrix data, IwaeOptions? options = null, RowMatrix? validation = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new IwaeOptions();
        options.Validate();
        // Before the data is read, copied or checked: a model no file could hold is known from the options and the width.
        ArgumentNullException.ThrowIfNull(data);
        options.PredictModelSize(data.Columns).EnsureFitsAFile();
        var domain = options.Likelihood == IwaeLikelihood.Bernoulli ? InputDomain.Binary : InputDomain.Real;
        DataValidation.CheckTrainingData(data, domain, DataValidation.TrainingData);
        if (validation is not null) DataValidation.CheckTrainingData(validation, domain, DataValidation.ValidationData, data.Columns);
        // The preparation observes the token as it goes (every run of rows, Preparation), as training does.
        var (train, valid) = TrainingLoop.Split(data, validation, options.ValidationFraction, options.Seed, cancellationToken);
        // The networks train on standardised copies of the split (the raw rows are not changed).
        var standardizer = options.StandardizesInputs ? ColumnStandardizer.Fit(train, cancellationToken) : null;
        if (standardizer is not null)
        {
            train = standardizer.Forward(train, cancellationToken);
            valid = valid is null ? null : standardizer.Forward(valid, cancellationToken);
        }

        var network = InitialNetwork(options, data.Columns, () => ColumnMoments(train, cancellationToken));
        var objective = new IwaeObjective(network, options.Samples, options.RowsPerBlock, standardizer?.LogJacobian ?? 0, cancellationToken);
        var summary = UnscorableValidation.NamingUserRows(() => TrainingLoop.Run(objective, train, valid, options, progress, cancellationToken),
            data, validation, options.ValidationFraction, options.Seed);
        return ModelFile.EnsureTrainedModelLoadable(new IwaeModel(network, options.Samples, options.EvaluationSamples, options.EvaluationSamplesPerChunk,
            options.EvaluationSeed, standardizer) { TrainingSummary = summary });
    }

    /// <summary>
    /// Whether a fit with these options bounds log σ of q(z₁ | x) and p(x | z₁) (<see cref="LogSigmaBound"/>): with the
    /// Gaussian likelihood and affine heads (<see cref="IwaeOptions.HiddenUnits"/> = {}), where both are affine functions
    /// of unbounded inputs. Every other configuration keeps the unbounded heads (and its bits): with hidden layers the
    /// suite's Gaussian models use tanh or sigmoid, which bound the heads' inputs; Bernoulli data are bounded and the
    /// Bernoulli decoder has no σ.
    /// </summary>
    internal static bool BoundsLogSigma(IwaeOptions options)
        => options.Likelihood == IwaeLikelihood.Gaussian && options.HiddenUnits.Length == 0;

    /// <summary>
    /// The initialised network both Fits train (in memory and streamed): <paramref name="columnMoments"/> (the training
    /// columns' means and standard deviations, one pass over the data) is read only when the output biases start from
    /// the data or the decoder's log σ bound is centred on the columns' spread.
    /// </summary>
    private static IwaeNetwork InitialNetwork(IwaeOptions options, int width, Func<(float[] Mean, float[] Std)> columnMoments)
    {
        bool bounded = BoundsLogSigma(options);
        var (mean, std) = options.InitializeOutputBiasFromData || bounded ? columnMoments() : ([], []);
        var network = new IwaeNetwork(width, options.LatentDimensions, options.HiddenUnits, options.DeepHiddenUnits, options.EffectiveActivation,
            options.Likelihood, bounded ? new LogSigmaBound(LogSigmaBound.DefaultHalfWidth, Array.ConvertAll(std, LogSigmaBound.CentreFor)) : null);
        if (ImportanceSampler.ScratchProblem(options.EvaluationSamplesPerChunk, network.EvaluationFloatsPerSample) is string problem)
            throw new ArgumentOutOfRangeException(nameof(options), problem + $" (IwaeOptions.{nameof(IwaeOptions.EvaluationSamplesPerChunk)}).");
        if (!options.InitializeOutputBiasFromData) (mean, std) = ([], []);
        network.Initialize(new RandomStream(options.Seed).Fork(0x1A17), mean, std);
        return network;
    }

    /// <summary>
    /// A trainable copy of this model's parameters as a gradient objective over its input rows, for data-parallel
    /// training (docs/scaling.md, "Beyond one machine"): the k-sample bound with the model's <see cref="Samples"/>,
    /// block b of a call drawing its noise from the call's stream's Fork(b) (so a worker given <c>firstBlock</c> draws the
    /// noise of its blocks in the whole batch). <paramref name="options"/> give <see cref="IwaeOptions.RowsPerBlock"/>
    /// (default: the default); the architecture and standardisation are the model's. This model is not changed.
    /// </summary>
    public ModelTrainingObjective<IwaeModel> CreateTrainingObjective(IwaeOptions? options = null)
    {
        options ??= new IwaeOptions();
        options.Validate();
        var copy = (IwaeModel)FromBytes(ToBytes());
        var standardizer = copy.Standardizer;
        return new ModelTrainingObjective<IwaeModel>(copy, new IwaeObjective(copy.Network, copy.Samples, options.RowsPerBlock, standardizer?.LogJacobian ?? 0),
            standardizer is null ? null : (raw, modelSpace, n) => standardizer.Forward(raw, modelSpace, n));
    }

    // Numbers every scoring call. A workspace packs the decoders' weights once per call (on its first chunk) instead of
    // once per chunk of samples (K = 5000 in chunks of 500 packed each 200×784 matrix ten times per row); a new call
    // packs again, so weights changed between calls (a training objective's copy of the model) are never stale.
    private long _scoringCall;

    private protected override void ImportanceSample(ReadOnlySpan<float> rows, int count, int samples, int samplesPerChunk, ulong seed,
        int sampleRowsPerPass, Span<float> logMean, Span<float> standardError, ImportanceSampler.RowWeightsInspector? inspect = null)
    {
        Interlocked.Increment(ref _scoringCall);
        ImportanceSampler.Estimate(rows, count, Dimension, samples, samplesPerChunk, seed, sampleRowsPerPass,
            _newWorkspace, _logWeights, logMean, standardError, inspect, _scratch);
    }

    /// <summary>Fills each row's noise for <paramref name="k"/> samples from its own stream, then one forward pass (its
    /// first encoder once per block of rows: the later chunks of the same rows keep its output). A standardising model
    /// runs the networks on the standardised rows (in the workspace) and adds the map's log-Jacobian to every weight.</summary>
    private void LogWeights(IwaeNetwork.Workspace ws, ReadOnlySpan<float> x, int n, int k, ReadOnlySpan<RandomStream> rowStreams,
        Span<double> logW, bool allowParallel, bool sameRows)
    {
        long call = Interlocked.Read(ref _scoringCall);
        if (ws.PackedForCall != call)
        {
            Network.PackDecoderWeights(ws, allowParallel);
            ws.PackedForCall = call;
        }
        for (int r = 0; r < n; r++)
            for (int l = 0; l < Network.Layers; l++)
            {
                int dl = Network.Latent[l];
                GaussianNoise.Fill(rowStreams[r], ws.Noise[l].AsSpan(r * k * dl, k * dl));
            }
        double logJacobian = 0;
        if (Standardizer is { } standardizer)
        {
            // The workspace holds its rows standardised (made with it: scoring allocates nothing); the later chunks of the
            // same rows find them there.
            var y = ws.StandardizedRows!.AsSpan(0, n * Dimension);
            if (!sameRows) standardizer.Forward(x[..(n * Dimension)], y, n);
            x = y;
            logJacobian = standardizer.LogJacobian;
        }
        Network.Forward(x, n, k, ws, allowParallel, firstEncoderCurrent: sameRows);
        for (int i = 0; i < n * k; i++) logW[i] = ws.LogW[i] + logJacobian;
    }

    private protected override void SampleBlock(RandomStream[] streams, Span<float> output, bool mean)
    {
        Network.Sample(streams.Length, streams, output, mean);
        Standardizer?.Inverse(output, streams.Length);
    }

    /// <summary>The column moments of rows in memory, read in place (the bits of the streamed pass, which copies each
    /// block of rows first).</summary>
    private static (float[] Mean, float[] Std) ColumnMoments(RowMatrix data, CancellationToken cancellationToken)
    {
        var sum = new double[data.Columns]; var sumSq = new double[data.Columns];
        Preparation.AddColumnSums(data, sum, sumSq, cancellationToken);
        return ColumnMoments(sum, sumSq, data.Rows);
    }

    private static (float[] Mean, float[] Std) ColumnMoments(IRowStream data, CancellationToken cancellationToken)
    {
        var sum = new double[data.Width]; var sumSq = new double[data.Width];
        long n = RowStream.ForEachBlock(data, (rows, count) => RowOps.AddColumnSumsAsDouble(rows, count, sum, sumSq), cancellationToken);
        return ColumnMoments(sum, sumSq, n);
    }

    private static (float[] Mean, float[] Std) ColumnMoments(double[] sum, double[] sumSq, long n)
    {
        int d = sum.Length;
        if (n == 0) throw DataValidation.NoRowsIn(DataValidation.TrainingData);
        var mean = new float[d]; var std = new float[d];
        for (int c = 0; c < d; c++)
        {
            double m = sum[c] / n;
            mean[c] = (float)m;
            std[c] = (float)Math.Sqrt(Math.Max(sumSq[c] / n - m * m, 0));
        }
        return (mean, std);
    }

    /// <summary>
    /// Trains an IWAE / VAE from a stream of rows (see docs/scaling.md) without holding the data: a pass for the column
    /// moments (when the output biases start from them), then one pass per epoch through the shuffle buffer. Without a
    /// validation stream <see cref="GradientTrainingOptions.ValidationFraction"/> of the rows are held out by a seeded
    /// hash of their position. With a buffer holding the whole pass and no validation split, the model is the one the
    /// in-memory Fit trains on the same rows. A bad value throws <see cref="DataValidationException"/> naming its row and column.
    /// </summary>
    public static IwaeModel Fit(IRowStream data, IwaeOptions? options, IRowStream? validation, StreamingOptions? streaming,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new IwaeOptions();
        options.Validate();
        // Before the data is read, copied or checked: a model no file could hold is known from the options and the width.
        ArgumentNullException.ThrowIfNull(data);
        options.PredictModelSize(data.Width).EnsureFitsAFile();
        var domain = options.Likelihood == IwaeLikelihood.Bernoulli ? InputDomain.Binary : InputDomain.Real;
        var (train, valid) = StreamingTrainingData.CheckedSplit(data, validation, ref streaming, domain, options.ValidationFraction, options.Seed, cancellationToken);
        // One more pass for the standardisation, whose map then runs on every block the later passes read.
        var standardizer = options.StandardizesInputs ? ColumnStandardizer.Fit(train, cancellationToken) : null;
        if (standardizer is not null)
        {
            train = RowStream.Map(train, (rows, n, _) => standardizer.Forward(rows, rows, n));
            valid = valid is null ? null : RowStream.Map(valid, (rows, n, _) => standardizer.Forward(rows, rows, n));
        }
        var network = InitialNetwork(options, data.Width, () => ColumnMoments(train, cancellationToken));
        var objective = new IwaeObjective(network, options.Samples, options.RowsPerBlock, standardizer?.LogJacobian ?? 0, cancellationToken);
        var summary = UnscorableValidation.NamingUserRows(() => TrainingLoop.Run(objective, new StreamingTrainingData(train, streaming),
            valid is null ? null : new StreamingTrainingData(valid, streaming), options, progress, cancellationToken),
            validation, options.ValidationFraction, options.Seed);
        return ModelFile.EnsureTrainedModelLoadable(new IwaeModel(network, options.Samples, options.EvaluationSamples, options.EvaluationSamplesPerChunk,
            options.EvaluationSeed, standardizer) { TrainingSummary = summary });
    }

    /// <summary>1, the layout of every model without a log σ bound or standardisation (the bytes of the files before
    /// either); 2 adds the bound (its half-width and the decoder's centres) after the evaluation seed; 3, a standardising
    /// model, writes after the evaluation seed whether a bound follows, the bound if so, then the standardizer (means,
    /// scales). Models that do not standardise keep writing 1 or 2, byte for byte.</summary>
    protected internal override int PayloadVersion => Standardizer is not null ? 3 : Network.Bound is null ? 1 : 2;

    /// <inheritdoc />
    protected internal override void WritePayload(ModelWriter w)
    {
        w.WriteInt32(Network.D);
        w.WriteInt32s(Network.Latent);
        w.WriteInt32s(Network.HiddenUnits);
        w.WriteInt32s(Network.DeepHiddenUnits);
        w.WriteEnum(Network.Activation);
        w.WriteEnum(Network.Likelihood);
        w.WriteInt32(Samples);
        w.WriteInt32(EvaluationSamples);
        w.WriteInt32(EvaluationSamplesPerChunk);
        w.WriteUInt64(EvaluationSeed);
        if (Standardizer is not null) w.WriteBoolean(Network.Bound is not null);
        if (Network.Bound is { } bound)
        {
            w.WriteSingle(bound.HalfWidth);
            w.WriteSingles(bound.OutputCentre);
        }
        Standardizer?.Write(w);
        foreach (var p in Network.Parameters.Items) w.WriteSingles(p.Value);
    }

    internal static DensityModel ReadPayload(ModelReader r, int version)
    {
        if (version is not (1 or 2 or 3)) throw r.Corrupt(FormattableString.Invariant($"payload version {version} is not supported (expected 1, 2 or 3)"));
        int d = r.ReadInt32("dimension", 1, IwaeOptions.MaxDimension);
        var latent = ReadSizes(r, "latent dimensions", 1, 8);
        var hidden = ReadSizes(r, "hidden units", 0, 16);
        var deep = ReadSizes(r, "deep hidden units", 0, 16);
        var act = r.ReadEnum<Activation>("activation");
        var likelihood = r.ReadEnum<IwaeLikelihood>("likelihood");
        int k = r.ReadInt32("samples", 1, 100_000);
        int evalK = r.ReadInt32("evaluation samples", 1, IwaeOptions.MaxEvaluationSamples);
        int chunk = r.ReadInt32("evaluation samples per chunk", 1, IwaeOptions.MaxEvaluationSamplesPerChunk);
        ulong seed = r.ReadUInt64();
        LogSigmaBound? bound = null;
        if (version == 2 || (version == 3 && r.ReadBoolean()))
        {
            float halfWidth = r.ReadSingle();
            var centre = r.ReadParameters("log σ bound centres", d);
            if (LogSigmaBound.Problem(likelihood, d, halfWidth, centre) is string boundProblem) throw r.Corrupt(boundProblem + FormattableString.Invariant($" (payload version {version})"));
            bound = new LogSigmaBound(halfWidth, centre);
        }
        ColumnStandardizer? standardizer = null;
        if (version == 3)
        {
            if (likelihood != IwaeLikelihood.Gaussian) throw r.Corrupt("a standardizer is stored for Bernoulli data (payload version 3 is for Gaussian models)");
            standardizer = ColumnStandardizer.Read(r, d);
        }
        if (IwaeNetwork.ParameterCount(d, latent, hidden, deep, likelihood) * 4 > r.Remaining)
            throw r.Corrupt("declared sizes exceed the payload");
        var net = new IwaeNetwork(d, latent, hidden, deep, act, likelihood, bound);
        if (ImportanceSampler.ScratchProblem(chunk, net.EvaluationFloatsPerSample) is string problem) throw r.Corrupt(problem);
        foreach (var p in net.Parameters.Items) r.ReadParameters(p.Name, p.Value.Length).CopyTo(p.Value, 0);
        return new IwaeModel(net, k, evalK, chunk, seed, standardizer);
    }

    private static int[] ReadSizes(ModelReader r, string name, int minCount, int maxCount)
    {
        var v = r.ReadInt32s(name);
        if (v.Length < minCount || v.Length > maxCount) throw r.Corrupt(FormattableString.Invariant($"{name} has {v.Length} entries, expected {minCount} to {maxCount}"));
        foreach (var s in v) if (s < 1 || s > IwaeOptions.MaxLayerUnits) throw r.Corrupt(FormattableString.Invariant($"{name} entry {s} is outside [1, {IwaeOptions.MaxLayerUnits}]"));
        return v;
    }
}
