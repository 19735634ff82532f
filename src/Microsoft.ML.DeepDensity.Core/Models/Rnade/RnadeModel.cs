using System.Runtime.CompilerServices;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.Rnade;

/// <summary>
/// Real-valued neural autoregressive density estimator with mixture-of-Gaussians conditionals
/// (Uria, Murray &amp; Larochelle, NIPS 2013). Exact log-density; ancestral sampling.
/// </summary>
public sealed class RnadeModel : DensityModel
{
    /// <summary>Model-kind name in saved files.</summary>
    public const string Kind = "Rnade";
    /// <summary>Registers this kind with the model file when the assembly loads (models register themselves; no central list).</summary>
    [ModuleInitializer]
    internal static void RegisterKind() => ModelRegistry.Register(Kind, ReadPayload);
    private const int RowsPerScoringBlock = 256;
    /// <summary>Largest log σ output bias a file may hold (σ = e^40 standardised units is already meaningless).</summary>
    internal const float MaxLogSigmaBias = 40f;

    internal readonly RnadeNetwork Network;
    private readonly int[] _order;          // model position p reads input column _order[p]
    private readonly ColumnStandardizer _standardizer; // in model order

    internal RnadeModel(RnadeNetwork network, int[] order, ColumnStandardizer standardizer)
    {
        Network = network; _order = order; _standardizer = standardizer;
    }

    public override string ModelKind => Kind;
    public override int Dimension => Network.D;
    public override DensityKind DensityKind => DensityKind.Exact;

    /// <summary>Hidden units H.</summary>
    public int HiddenUnits => Network.H;
    /// <summary>Mixture components K per conditional.</summary>
    public int Components => Network.K;
    /// <summary>Hidden non-linearity.</summary>
    public Activation Activation => Network.Activation;
    /// <summary>The order in which input columns are modelled.</summary>
    public IReadOnlyList<int> VariableOrder => _order;
    /// <summary>Input standardisation, indexed by model position (see <see cref="VariableOrder"/>).</summary>
    public ColumnStandardizer Standardizer => _standardizer;
    /// <summary>What training did (null for a loaded model).</summary>
    public TrainingSummary? TrainingSummary { get; internal set; }

    /// <summary>Trains an RNADE on <paramref name="data"/> (rows × D) with the shared training loop.</summary>
    public static RnadeModel Fit(RowMatrix data, RnadeOptions? options = null, RowMatrix? validation = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new RnadeOptions();
        if (options is DeepRnadeOptions)
            throw new ArgumentException("DeepRnadeOptions describe a deep RNADE: train it with DeepRnadeModel.Fit.", nameof(options));
        options.Validate();
        DataValidation.CheckTrainingData(data, InputDomain.Real, "training data");
        if (validation is not null) DataValidation.CheckTrainingData(validation, InputDomain.Real, "validation data", data.Columns);
        int d = data.Columns;
        var order = options.ResolveOrder(d);
        var (train, valid) = TrainingLoop.Split(data, validation, options.ValidationFraction, options.Seed);

        // The preparation passes over the data are checked for cancellation too: on a large data set each takes a while.
        cancellationToken.ThrowIfCancellationRequested();
        var permutedTrain = Permute(train, order);
        var standardizer = options.Standardize ? ColumnStandardizer.Fit(permutedTrain) : ColumnStandardizer.Identity(d);
        cancellationToken.ThrowIfCancellationRequested();
        var modelTrain = ToModelSpace(permutedTrain, standardizer);
        var modelValid = valid is null ? null : ToModelSpace(Permute(valid, order), standardizer);
        cancellationToken.ThrowIfCancellationRequested();

        var network = new RnadeNetwork(d, options.HiddenUnits, options.Components, options.Activation);
        network.Initialize(new RandomStream(options.Seed).Fork(0x1A17), ColumnQuantiles(modelTrain, options.Components));
        cancellationToken.ThrowIfCancellationRequested();
        var objective = new RnadeObjective(network, options.RowsPerBlock, options.ScaleMeanGradientBySigma, standardizer.LogJacobian, cancellationToken);
        var summary = TrainingLoop.Run(objective, modelTrain, modelValid, options, progress, cancellationToken);
        return ModelFile.EnsureTrainedModelLoadable(new RnadeModel(network, order, standardizer) { TrainingSummary = summary });
    }

    protected override void LogDensityCore(ReadOnlySpan<float> rows, int count, Span<float> logDensity, Span<float> standardError)
    {
        float logJacobian = (float)_standardizer.LogJacobian;
        DeepDensityEnvironment.ForRowBlocks(rows, Dimension, count, logDensity, RowsPerScoringBlock,
            (_, block, n, output) => ScoreBlock(block, n, output, logJacobian));
    }

    /// <summary>Scoring scratch of this model, one per concurrently scoring thread, reused across calls and released with
    /// the model (a thread-static cache would keep the last model's scratch alive on every thread that scored it).</summary>
    private readonly System.Collections.Concurrent.ConcurrentBag<ScoringScratch> _scratch = new();

    private sealed class ScoringScratch
    {
        public ScoringScratch(RnadeNetwork network)
        {
            Network = network;
            X = new float[RowsPerScoringBlock * network.D];
        }
        public readonly RnadeNetwork Network;
        public readonly float[] X;
        public RnadeNetwork.RowWorkspace? Row;
        // One workspace per width in 8-row tiles: the forward pass computes every column of its workspace, so a single
        // row (PredictionEngine, a loaded ML.NET model) must not pay for a 256-row block.
        private readonly RnadeNetwork.Workspace?[] _byTiles = new RnadeNetwork.Workspace?[RowsPerScoringBlock / 8 + 1];
        public RnadeNetwork.Workspace For(int rows)
        {
            int tiles = (rows + 7) / 8;
            return _byTiles[tiles] ??= new RnadeNetwork.Workspace(Network, tiles * 8, forTraining: false);
        }
    }

    private void ScoreBlock(ReadOnlySpan<float> raw, int n, Span<float> logDensity, float logJacobian)
    {
        var scratch = _scratch.TryTake(out var cached) ? cached : new ScoringScratch(Network);
        try
        {
            var x = scratch.X.AsSpan(0, n * Dimension);
            ToModelSpace(raw, x, n);
            if (n == 1 && Network.LogDensityOfRow(x, scratch.Row ??= new RnadeNetwork.RowWorkspace(Network)) is float one) logDensity[0] = one;
            else Network.Forward(x, n, scratch.For(n), logDensity, 0f, false);
        }
        finally { _scratch.Add(scratch); }
        for (int i = 0; i < n; i++) logDensity[i] += logJacobian;
    }

    protected override void SampleCore(int count, ulong seed, Span<float> destination)
        => SampleInBlocks(count, seed, RowsPerScoringBlock, destination, (start, n, root, dst) =>
        {
            int d = Dimension;
            var modelSpace = new float[n * d];
            Network.Sample(n, RowStreams(root, start, n), modelSpace);
            _standardizer.Inverse(modelSpace, n);
            for (int r = 0; r < n; r++)
                for (int p = 0; p < d; p++) dst[r * d + _order[p]] = modelSpace[r * d + p];
        });

    private void ToModelSpace(ReadOnlySpan<float> raw, Span<float> x, int n)
    {
        int d = Dimension;
        var order = _order; var mean = _standardizer.Mean; var scale = _standardizer.Scale;
        for (int r = 0; r < n; r++)
        {
            var src = raw.Slice(r * d, d); var dst = x.Slice(r * d, d);
            for (int p = 0; p < d; p++) dst[p] = (src[order[p]] - mean[p]) / scale[p];
        }
    }

    private static RowMatrix Permute(RowMatrix m, int[] order)
    {
        var result = new RowMatrix(m.Rows, m.Columns);
        for (int r = 0; r < m.Rows; r++)
        {
            var src = m.Row(r); var dst = result.Row(r);
            for (int p = 0; p < order.Length; p++) dst[p] = src[order[p]];
        }
        return result;
    }

    private static RowMatrix ToModelSpace(RowMatrix permuted, ColumnStandardizer s)
    {
        var result = new RowMatrix(permuted.Rows, permuted.Columns);
        s.Forward(permuted.AsSpan(), result.AsSpan(), permuted.Rows);
        return result;
    }

    /// <summary>Quantiles (k+½)/K of each column: initial component means that cover the data.</summary>
    internal static float[] ColumnQuantiles(RowMatrix data, int k)
    {
        int n = data.Rows, d = data.Columns;
        var q = new float[d * k];
        var col = new float[n];
        for (int c = 0; c < d; c++)
        {
            for (int r = 0; r < n; r++) col[r] = data[r, c];
            Array.Sort(col);
            for (int i = 0; i < k; i++) q[c * k + i] = col[Math.Min(n - 1, (int)((i + 0.5) / k * n))];
        }
        return q;
    }

    protected internal override void WritePayload(ModelWriter w)
    {
        w.WriteInt32(Network.D); w.WriteInt32(Network.H); w.WriteInt32(Network.K);
        w.WriteEnum(Network.Activation);
        w.WriteInt32s(_order);
        _standardizer.Write(w);
        w.WriteSingles(Network.W); w.WriteSingles(Network.C); w.WriteSingles(Network.Rho);
        w.WriteSingles(Network.V); w.WriteSingles(Network.B);
    }

    internal static DensityModel ReadPayload(ModelReader r, int version)
    {
        if (version != 1) throw r.Corrupt($"payload version {version} is not supported (expected 1)");
        int d = r.ReadInt32("dimension", 1, 1 << 20);
        int h = r.ReadInt32("hidden units", 1, 1 << 20);
        int k = r.ReadInt32("components", 1, 1 << 16);
        var act = r.ReadEnum<Activation>("activation");
        if (act is not (Activation.Relu or Activation.Sigmoid or Activation.Tanh)) throw r.Corrupt($"activation {act} is not one RNADE supports");
        if ((long)d * h * 3 * k * 4 > r.Remaining) throw r.Corrupt("declared sizes exceed the payload");
        var order = r.ReadInt32s("variable order", d);
        var seen = new bool[d];
        foreach (var o in order) { if (o < 0 || o >= d || seen[o]) throw r.Corrupt("variable order is not a permutation"); seen[o] = true; }
        var std = ColumnStandardizer.Read(r, d);
        var net = new RnadeNetwork(d, h, k, act,
            r.ReadParameters("W", (d - 1) * h), r.ReadParameters("c", h), r.ReadParameters("rho", d),
            r.ReadParameters("V", d * h * 3 * k), r.ReadParameters("b", d * 3 * k));
        // Sampling draws μ + exp(log σ)·ε: a log σ bias this large makes σ overflow (no trained model has σ ≈ e^40
        // standardised units).
        for (int p = 0; p < d; p++)
            for (int i = 0; i < k; i++)
                if (net.B[p * 3 * k + 2 * k + i] > MaxLogSigmaBias)
                    throw r.Corrupt($"the log σ bias of component {i} at position {p} is {net.B[p * 3 * k + 2 * k + i]}, above {MaxLogSigmaBias}");
        return new RnadeModel(net, order, std);
    }
}

/// <summary>The RNADE log-likelihood as a training objective: blocks of rows in parallel, reduced in block order.</summary>
internal sealed class RnadeObjective : IGradientObjective
{
    private readonly RnadeNetwork _net;
    private readonly int _rowsPerBlock;
    private readonly bool _scaleMeanBySigma;
    private readonly double _logJacobian;
    private readonly CancellationToken _cancellationToken;
    private readonly List<RnadeNetwork.Workspace> _workspaces = new();
    private readonly List<RnadeNetwork.Workspace> _evalWorkspaces = new();
    private double[] _sums = Array.Empty<double>();

    /// <summary>
    /// Blocks run at once: a minibatch is processed in waves of this many blocks, reusing their workspaces, with a
    /// cancellation check between waves. Training memory is therefore bounded by the block size, not the batch size
    /// (a 200k-row batch used to hold 4,000 workspaces), and a huge batch stops within a wave of cancellation. Gradients
    /// are still summed in block order, so the result is the same bits as one wave over every block.
    /// </summary>
    internal const int BlocksPerWave = 16;

    /// <summary>Training workspaces held (at most <see cref="BlocksPerWave"/>).</summary>
    internal int WorkspaceCount => _workspaces.Count;

    /// <param name="logJacobian">Added per row so reported objectives are log-densities of the raw (unstandardised) data.</param>
    /// <param name="cancellationToken">Checked between waves of blocks inside one minibatch.</param>
    public RnadeObjective(RnadeNetwork net, int rowsPerBlock, bool scaleMeanBySigma, double logJacobian = 0, CancellationToken cancellationToken = default)
    {
        _net = net; _rowsPerBlock = rowsPerBlock; _scaleMeanBySigma = scaleMeanBySigma; _logJacobian = logJacobian;
        _cancellationToken = cancellationToken;
        Parameters = new ParameterSet(new Parameter("W", net.W), new Parameter("c", net.C), new Parameter("rho", net.Rho),
            new Parameter("V", net.V), new Parameter("b", net.B));
    }

    public ParameterSet Parameters { get; }

    public double ComputeGradient(ReadOnlySpan<float> rows, int count, RandomStream random)
        => Run(rows, count, withGradient: true);

    public double Evaluate(ReadOnlySpan<float> rows, int count, RandomStream random)
        => Run(rows, count, withGradient: false);

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private double Run(ReadOnlySpan<float> rows, int count, bool withGradient)
    {
        int d = _net.D;
        int blocks = (count + _rowsPerBlock - 1) / _rowsPerBlock;
        // Evaluation (validation) needs no stored activations or gradients: it has its own lighter workspaces.
        var workspaces = withGradient ? _workspaces : _evalWorkspaces;
        while (workspaces.Count < Math.Min(blocks, BlocksPerWave)) workspaces.Add(new RnadeNetwork.Workspace(_net, _rowsPerBlock, forTraining: withGradient));
        if (_sums.Length < blocks) _sums = new double[blocks];
        var sums = _sums;
        float scale = -1f / count;
        for (int first = 0; first < blocks; first += BlocksPerWave)
        {
            _cancellationToken.ThrowIfCancellationRequested();
            int waveBlocks = Math.Min(BlocksPerWave, blocks - first);
            unsafe
            {
                fixed (float* pRows = rows)
                {
                    nint address = (nint)pRows;
                    if (blocks == 1) Block(0); else DeepDensityEnvironment.For(0, waveBlocks, Block);
                    void Block(int i)
                    {
                        int b = first + i;
                        int start = b * _rowsPerBlock, n = Math.Min(_rowsPerBlock, count - start);
                        var ws = workspaces[i];
                        var x = new ReadOnlySpan<float>((float*)address + (long)start * d, n * d);
                        BlockCore(x, n, ws, b);
                    }
                }
            }
            if (withGradient) ReduceGradients(waveBlocks, accumulate: first > 0);
        }
        void BlockCore(ReadOnlySpan<float> x, int n, RnadeNetwork.Workspace ws, int b)
        {
            Span<float> logp = n <= 1024 ? stackalloc float[n] : new float[n];
            _net.Forward(x, n, ws, logp, scale, _scaleMeanBySigma);
            double s = 0;
            foreach (var v in logp) s += v;
            sums[b] = s;
            if (withGradient)
            {
                Array.Clear(ws.GW!); Array.Clear(ws.GC!); Array.Clear(ws.GRho!); Array.Clear(ws.GV!); Array.Clear(ws.GB!);
                _net.Backward(x, n, ws);
            }
        }
        double total = count * _logJacobian;
        for (int b = 0; b < blocks; b++) total += sums[b];
        return total;
    }

    /// <summary>Floats of one parameter tensor reduced per parallel chunk (fixed, so the work split never depends on threads).</summary>
    private const int ReduceChunk = 8192;

    /// <summary>
    /// Parameter gradients = Σ_b block gradients, summed in block order for every element (so the same bits at any
    /// thread count), in parallel over fixed chunks of the parameters: done serially, this pass over every parameter
    /// for every block was a serial tail of each step that kept the step below two cores.
    /// </summary>
    /// <param name="blocks">Workspaces of this wave (in block order).</param>
    /// <param name="accumulate">Add to the gradients of earlier waves instead of overwriting them.</param>
    private void ReduceGradients(int blocks, bool accumulate)
    {
        var items = Parameters.Items;
        int chunks = 0;
        foreach (var p in items) chunks += (p.Gradient.Length + ReduceChunk - 1) / ReduceChunk;
        if (chunks == 1 || blocks == 1) { for (int c = 0; c < chunks; c++) ReduceChunkAt(c, blocks, accumulate); return; }
        DeepDensityEnvironment.For(0, chunks, c => ReduceChunkAt(c, blocks, accumulate));
    }

    private void ReduceChunkAt(int chunk, int blocks, bool accumulate)
    {
        var items = Parameters.Items;
        for (int t = 0; t < items.Count; t++)
        {
            int n = items[t].Gradient.Length, count = (n + ReduceChunk - 1) / ReduceChunk;
            if (chunk >= count) { chunk -= count; continue; }
            int start = chunk * ReduceChunk, length = Math.Min(ReduceChunk, n - start);
            var dst = items[t].Gradient.AsSpan(start, length);
            if (!accumulate) dst.Clear();
            for (int b = 0; b < blocks; b++)
            {
                var ws = _workspaces[b];
                float[] src = t switch { 0 => ws.GW!, 1 => ws.GC!, 2 => ws.GRho!, 3 => ws.GV!, _ => ws.GB! };
                System.Numerics.Tensors.TensorPrimitives.Add(dst, src.AsSpan(start, length), dst);
            }
            return;
        }
    }
}
