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
/// <remarks>
/// <para>The reported log-density is an importance-sampling <em>estimate</em> log (1/K) Σ p(x, z_i)/q(z_i | x) with
/// K = <see cref="EvaluationSamples"/> (<see cref="DensityKind.Estimate"/>; a stochastic lower bound in expectation that
/// tightens as K grows), with a delta-method standard error sd(w) / (√K · mean(w)).</para>
/// <para>Determinism: the noise for a row is drawn from a stream forked from <see cref="EvaluationSeed"/> by a hash of the
/// row's values (not its position), so a row gets the same noise, hence the same estimate, in any batch, order or
/// thread count.</para>
/// </remarks>
public sealed class IwaeModel : DensityModel
{
    /// <summary>Model-kind name in saved files.</summary>
    public const string Kind = "Iwae";
    /// <summary>Registers this kind with the model file when the assembly loads (models register themselves; no central list).</summary>
    [ModuleInitializer]
    internal static void RegisterKind() => ModelRegistry.Register(Kind, ReadPayload);
    /// <summary>Decoder rows per scoring pass (rows × samples per chunk).</summary>
    private const int DecoderRowsPerPass = 512;
    private const int RowsPerSamplingBlock = 256;

    internal readonly IwaeNetwork Network;

    internal IwaeModel(IwaeNetwork network, int samples, int evaluationSamples, int evaluationChunk, ulong evaluationSeed)
    {
        Network = network; Samples = samples; EvaluationSamples = evaluationSamples;
        EvaluationSamplesPerChunk = evaluationChunk; EvaluationSeed = evaluationSeed;
        _newWorkspace = (n, k) => new IwaeNetwork.Workspace(Network, n, k, forTraining: false);
        _logWeights = LogWeights;
        _oneRowScratch = new(_newWorkspace);
        _sampleRowsPerPass = ImportanceSampler.SampleRowsPerPass(Network.EvaluationFloatsPerSample, DecoderRowsPerPass);
    }

    // Made once: a one-row estimate (PredictionEngine, a model loaded into ML.NET) then allocates nothing.
    private readonly Func<int, int, IwaeNetwork.Workspace> _newWorkspace;
    private readonly ImportanceSampler.LogWeights<IwaeNetwork.Workspace> _logWeights;
    private readonly ImportanceSampler.ScratchPool<IwaeNetwork.Workspace> _oneRowScratch;
    private readonly int _sampleRowsPerPass; // sums over the layers: not once per row

    public override string ModelKind => Kind;
    public override int Dimension => Network.D;
    public override DensityKind DensityKind => DensityKind.Estimate;
    public override InputDomain InputDomain => Network.Likelihood == IwaeLikelihood.Bernoulli ? InputDomain.Binary : InputDomain.Real;

    /// <summary>Importance samples k the model was trained with.</summary>
    public int Samples { get; }
    /// <summary>Importance samples K of the reported log-density estimate.</summary>
    public int EvaluationSamples { get; }
    /// <summary>Samples per row per scoring pass.</summary>
    public int EvaluationSamplesPerChunk { get; }
    /// <summary>Seed of the log-density estimate's noise.</summary>
    public ulong EvaluationSeed { get; }
    /// <summary>Stochastic layer sizes, nearest the data first.</summary>
    public IReadOnlyList<int> LatentDimensions => Network.Latent;
    /// <summary>Observation model.</summary>
    public IwaeLikelihood Likelihood => Network.Likelihood;
    /// <summary>Hidden non-linearity.</summary>
    public Activation Activation => Network.Activation;
    /// <summary>What training did (null for a loaded model).</summary>
    public TrainingSummary? TrainingSummary { get; internal set; }

    /// <summary>Why scoring <paramref name="network"/> with <paramref name="chunk"/> samples per pass would exceed
    /// <see cref="Estimation.ImportanceSampledOptions.MaxEvaluationScratchFloats"/>, or null.</summary>
    internal static string? ScratchProblem(IwaeNetwork network, int chunk)
        => ImportanceSampler.ScratchProblem(chunk, network.EvaluationFloatsPerSample);

    /// <summary>Decoder rows per scoring pass: <see cref="DecoderRowsPerPass"/>, fewer for a very wide network.</summary>
    private int SampleRowsPerPass => _sampleRowsPerPass;

    /// <summary>The same model with different log-density estimation settings (parameters shared, not copied).</summary>
    public IwaeModel WithEvaluation(int evaluationSamples, ulong? evaluationSeed = null, int? samplesPerChunk = null)
    {
        if (evaluationSamples is < 1 or > IwaeOptions.MaxEvaluationSamples)
            throw new ArgumentOutOfRangeException(nameof(evaluationSamples), $"Evaluation samples must be in [1, {IwaeOptions.MaxEvaluationSamples}].");
        if (samplesPerChunk is < 1 or > IwaeOptions.MaxEvaluationSamplesPerChunk)
            throw new ArgumentOutOfRangeException(nameof(samplesPerChunk), $"Samples per chunk must be in [1, {IwaeOptions.MaxEvaluationSamplesPerChunk}].");
        if (ScratchProblem(Network, samplesPerChunk ?? EvaluationSamplesPerChunk) is string problem)
            throw new ArgumentOutOfRangeException(nameof(samplesPerChunk), problem + ".");
        return new IwaeModel(Network, Samples, evaluationSamples, samplesPerChunk ?? EvaluationSamplesPerChunk, evaluationSeed ?? EvaluationSeed)
        { TrainingSummary = TrainingSummary };
    }

    /// <summary>Trains an IWAE (VAE when <see cref="IwaeOptions.Samples"/> = 1) on <paramref name="data"/> with the shared training loop.</summary>
    public static IwaeModel Fit(RowMatrix data, IwaeOptions? options = null, RowMatrix? validation = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new IwaeOptions();
        options.Validate();
        var domain = options.Likelihood == IwaeLikelihood.Bernoulli ? InputDomain.Binary : InputDomain.Real;
        DataValidation.CheckTrainingData(data, domain, "training data");
        if (validation is not null) DataValidation.CheckTrainingData(validation, domain, "validation data", data.Columns);
        var (train, valid) = TrainingLoop.Split(data, validation, options.ValidationFraction, options.Seed);

        var network = new IwaeNetwork(data.Columns, options.LatentDimensions, options.HiddenUnits, options.DeepHiddenUnits,
            options.Activation, options.Likelihood);
        var (mean, std) = options.InitializeOutputBiasFromData ? ColumnMoments(train) : (Array.Empty<float>(), Array.Empty<float>());
        if (ScratchProblem(network, options.EvaluationSamplesPerChunk) is string problem)
            throw new ArgumentOutOfRangeException(nameof(options), problem + $" (IwaeOptions.{nameof(IwaeOptions.EvaluationSamplesPerChunk)}).");
        network.Initialize(new RandomStream(options.Seed).Fork(0x1A17), mean, std);
        var objective = new IwaeObjective(network, options.Samples, options.RowsPerBlock, cancellationToken);
        var summary = TrainingLoop.Run(objective, train, valid, options, progress, cancellationToken);
        return ModelFile.EnsureTrainedModelLoadable(new IwaeModel(network, options.Samples, options.EvaluationSamples, options.EvaluationSamplesPerChunk, options.EvaluationSeed)
        { TrainingSummary = summary });
    }

    /// <summary>
    /// The k-sample bound log (1/k) Σ_i p(x, z_i)/q(z_i | x) of each row for one draw of k samples per row (k = 1: the
    /// ELBO's single-sample estimate). Its expectation is a lower bound on log p(x) that increases with k. Noise is
    /// derived from <paramref name="seed"/> and each row's values.
    /// </summary>
    public float[] Bound(RowMatrix rows, int k, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), "k must be at least 1.");
        var result = new float[rows.Rows];
        Bound(rows.AsSpan(), k, seed, result);
        return result;
    }

    /// <summary>Span form of <see cref="Bound(RowMatrix, int, ulong)"/>.</summary>
    public void Bound(ReadOnlySpan<float> rows, int k, ulong seed, Span<float> bound)
    {
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), "k must be at least 1.");
        int count = DataValidation.CheckRows(rows, Dimension, InputDomain, "rows");
        if (bound.Length < count) throw new ArgumentException($"Destination has {bound.Length} slots for {count} rows.", nameof(bound));
        ImportanceSample(rows, count, k, Math.Min(k, EvaluationSamplesPerChunk), seed, bound, default);
    }

    /// <summary>Mean of the k-sample bound over the rows (float64 accumulation).</summary>
    public double AverageBound(RowMatrix rows, int k, ulong seed)
    {
        double s = 0;
        foreach (var v in Bound(rows, k, seed)) s += v;
        return s / rows.Rows;
    }

    protected override void LogDensityCore(ReadOnlySpan<float> rows, int count, Span<float> logDensity, Span<float> standardError)
        => ImportanceSample(rows, count, EvaluationSamples, EvaluationSamplesPerChunk, EvaluationSeed, logDensity, standardError);

    /// <summary>log (1/K) Σ w_i per row and its standard error, by the shared <see cref="ImportanceSampler"/>.</summary>
    private void ImportanceSample(ReadOnlySpan<float> rows, int count, int samples, int chunk, ulong seed, Span<float> logMean, Span<float> standardError)
        => ImportanceSampler.Estimate(rows, count, Dimension, samples, chunk, seed, SampleRowsPerPass,
            _newWorkspace, _logWeights, logMean, standardError, _oneRowScratch);

    /// <summary>Fills each row's noise for <paramref name="k"/> samples from its own stream, then one forward pass.</summary>
    private void LogWeights(IwaeNetwork.Workspace ws, ReadOnlySpan<float> x, int n, int k, ReadOnlySpan<RandomStream> rowStreams,
        Span<double> logW, bool allowParallel)
    {
        for (int r = 0; r < n; r++)
            for (int l = 0; l < Network.Layers; l++)
            {
                int dl = Network.Latent[l];
                GaussianNoise.Fill(rowStreams[r], ws.Noise[l].AsSpan(r * k * dl, k * dl));
            }
        Network.Forward(x, n, k, ws, allowParallel);
        for (int i = 0; i < n * k; i++) logW[i] = ws.LogW[i];
    }

    protected override void SampleCore(int count, ulong seed, Span<float> destination) => Generate(count, seed, destination, mean: false);

    /// <summary>
    /// Decoder means E[x | z] for <paramref name="count"/> draws z ~ p(z) (Bernoulli: pixel probabilities σ(logits);
    /// Gaussian: μ). Same seed → same rows, independent of thread count.
    /// </summary>
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
        // Fewer rows per block for a very wide network, so a block's decoder scratch stays under the scratch limit
        // (row r draws from its own stream, so blocks do not change the result).
        int blockRows = ImportanceSampler.SampleRowsPerPass(Network.EvaluationFloatsPerSample, RowsPerSamplingBlock);
        int blocks = (count + blockRows - 1) / blockRows;
        var output = new float[count * d];
        DeepDensityEnvironment.For(0, blocks, b =>
        {
            int start = b * blockRows, n = Math.Min(blockRows, count - start);
            var streams = new RandomStream[n];
            for (int r = 0; r < n; r++) streams[r] = root.Fork((ulong)(start + r));
            Network.Sample(n, streams, output.AsSpan(start * d, n * d), mean);
        });
        output.CopyTo(destination);
    }

    private static (float[] Mean, float[] Std) ColumnMoments(RowMatrix data)
    {
        int n = data.Rows, d = data.Columns;
        var sum = new double[d]; var sumSq = new double[d];
        for (int r = 0; r < n; r++)
        {
            var row = data.Row(r);
            for (int c = 0; c < d; c++) { sum[c] += row[c]; sumSq[c] += (double)row[c] * row[c]; }
        }
        var mean = new float[d]; var std = new float[d];
        for (int c = 0; c < d; c++)
        {
            double m = sum[c] / n;
            mean[c] = (float)m;
            std[c] = (float)Math.Sqrt(Math.Max(sumSq[c] / n - m * m, 0));
        }
        return (mean, std);
    }

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
        foreach (var p in Network.Parameters.Items) w.WriteSingles(p.Value);
    }

    internal static DensityModel ReadPayload(ModelReader r, int version)
    {
        if (version != 1) throw r.Corrupt($"payload version {version} is not supported (expected 1)");
        int d = r.ReadInt32("dimension", 1, 1 << 24);
        var latent = ReadSizes(r, "latent dimensions", 1, 8);
        var hidden = ReadSizes(r, "hidden units", 0, 16);
        var deep = ReadSizes(r, "deep hidden units", 0, 16);
        var act = r.ReadEnum<Activation>("activation");
        var likelihood = r.ReadEnum<IwaeLikelihood>("likelihood");
        int k = r.ReadInt32("samples", 1, 100_000);
        int evalK = r.ReadInt32("evaluation samples", 1, IwaeOptions.MaxEvaluationSamples);
        int chunk = r.ReadInt32("evaluation samples per chunk", 1, IwaeOptions.MaxEvaluationSamplesPerChunk);
        ulong seed = r.ReadUInt64();
        if (IwaeNetwork.ParameterCount(d, latent, hidden, deep, likelihood) * 4 > r.Remaining)
            throw r.Corrupt("declared sizes exceed the payload");
        var net = new IwaeNetwork(d, latent, hidden, deep, act, likelihood);
        if (ScratchProblem(net, chunk) is string problem) throw r.Corrupt(problem);
        foreach (var p in net.Parameters.Items) r.ReadParameters(p.Name, p.Value.Length).CopyTo(p.Value, 0);
        return new IwaeModel(net, k, evalK, chunk, seed);
    }

    private static int[] ReadSizes(ModelReader r, string name, int minCount, int maxCount)
    {
        var v = r.ReadInt32s(name);
        if (v.Length < minCount || v.Length > maxCount) throw r.Corrupt($"{name} has {v.Length} entries, expected {minCount} to {maxCount}");
        foreach (var s in v) if (s < 1 || s > 1 << 20) throw r.Corrupt($"{name} entry {s} is outside [1, {1 << 20}]");
        return v;
    }
}

/// <summary>The k-sample bound as a training objective: fixed blocks of rows in parallel, gradients reduced in block order.</summary>
internal sealed class IwaeObjective : IGradientObjective
{
    private readonly IwaeNetwork _net;
    private readonly int _k, _rowsPerBlock;
    private readonly CancellationToken _cancellationToken;
    private readonly List<IwaeNetwork.Workspace> _workspaces = new();
    private readonly List<GradientBuffers> _gradients = new();
    private readonly GradientBuffers _direct;
    private float[] _input = Array.Empty<float>();

    /// <summary>Blocks run at once (see <c>RnadeObjective.BlocksPerWave</c>): memory is bounded by the block size, not the
    /// batch size, and cancellation is checked between waves; gradients are still summed in block order.</summary>
    internal const int BlocksPerWave = 16;

    public IwaeObjective(IwaeNetwork net, int samples, int rowsPerBlock, CancellationToken cancellationToken = default)
    {
        _net = net; _k = samples; _rowsPerBlock = rowsPerBlock; _cancellationToken = cancellationToken;
        _direct = GradientBuffers.Of(net.Parameters);
    }

    public ParameterSet Parameters => _net.Parameters;

    public double ComputeGradient(ReadOnlySpan<float> rows, int count, RandomStream random) => Run(rows, count, random, withGradient: true);

    public double Evaluate(ReadOnlySpan<float> rows, int count, RandomStream random) => Run(rows, count, random, withGradient: false);

    private double Run(ReadOnlySpan<float> rows, int count, RandomStream random, bool withGradient)
    {
        int d = _net.D, k = _k;
        int blocks = (count + _rowsPerBlock - 1) / _rowsPerBlock;
        int wave = Math.Min(blocks, BlocksPerWave);
        while (_workspaces.Count < wave) _workspaces.Add(new IwaeNetwork.Workspace(_net, _rowsPerBlock, k, forTraining: true));
        if (withGradient)
        {
            // Block 0 writes straight into the parameters' gradients; the others into private buffers added after, in
            // order. Later waves use private buffers 1..wave only (the parameters' gradients then hold the running sum).
            if (_gradients.Count == 0) _gradients.Add(_direct);
            while (_gradients.Count < (blocks > BlocksPerWave ? BlocksPerWave + 1 : blocks)) _gradients.Add(GradientBuffers.Create(_net.Parameters));
        }
        if (_input.Length < count * d) _input = new float[count * d];
        rows[..(count * d)].CopyTo(_input);
        var input = _input;
        var sums = new double[blocks];
        float scale = -1f / count;
        bool parallelInside = blocks == 1;
        for (int first = 0; first < blocks; first += BlocksPerWave)
        {
            _cancellationToken.ThrowIfCancellationRequested();
            int waveBlocks = Math.Min(BlocksPerWave, blocks - first), bufferOffset = first == 0 ? 0 : 1;
            void Block(int i)
            {
                int b = first + i;
                int start = b * _rowsPerBlock, n = Math.Min(_rowsPerBlock, count - start);
                var ws = _workspaces[i];
                var x = input.AsSpan(start * d, n * d);
                _net.FillNoise(ws, n, k, random.Fork((ulong)b));
                _net.Forward(x, n, k, ws, parallelInside);
                Span<double> bound = n <= 512 ? stackalloc double[n] : new double[n];
                IwaeNetwork.ReduceRows(ws.LogW, n, k, bound, withGradient ? ws.RowScale : default, scale);
                double s = 0;
                foreach (var v in bound) s += v;
                sums[b] = s;
                if (withGradient) _net.Backward(x, n, k, ws, _gradients[bufferOffset + i], parallelInside);
            }
            if (blocks == 1) Block(0); else DeepDensityEnvironment.For(0, waveBlocks, Block);
            if (!withGradient) continue;
            if (first == 0) { if (blocks > 1) GradientBuffers.SumInto(_net.Parameters, _gradients, waveBlocks); }
            else GradientBuffers.AddInto(_net.Parameters, _gradients, 1, waveBlocks);
        }
        double total = 0;
        foreach (var s in sums) total += s;
        return total;
    }
}
