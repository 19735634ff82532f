using System.Runtime.CompilerServices;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.DeepGmm;

/// <summary>
/// Deep Gaussian Mixture Model (van den Oord &amp; Schrauwen, NIPS 2014): layers of square affine transformations;
/// a sample is standard-normal noise pushed through one transformation per layer along a random path, so the density
/// is a mixture over all Π N_j paths, p(x) = Σ_p π_p N(x | β_p, Ω_pΩ_pᵀ), with parameters tied across paths.
/// Exact log-density; trained by hard (or soft) EM with the paper's path heuristic and an L-BFGS M-step.
/// </summary>
public sealed partial class DeepGmmModel : DensityModel
{
    /// <summary>Model-kind name in saved files.</summary>
    public const string Kind = "DeepGmm";
    /// <summary>Registers this kind with the model file when the assembly loads (models register themselves; no central list).</summary>
    [ModuleInitializer]
    internal static void RegisterKind() => ModelRegistry.Register(Kind, ReadPayload);
    private const int Block = DeepGmmNetwork.RowsPerBlock;

    internal readonly DeepGmmNetwork Network;
    private readonly ColumnStandardizer _standardizer;
    private readonly double[][] _forwardA;
    private readonly double[][] _forwardB;
    /// <summary>The paths' prior probabilities, unnormalised (the largest 1), that sampling draws a path from.</summary>
    private readonly float[] _samplingPathPrior;

    internal DeepGmmModel(DeepGmmNetwork network, ColumnStandardizer standardizer)
    {
        Network = network; _standardizer = standardizer;
        (_forwardA, _forwardB) = network.ForwardMaps();
        _samplingPathPrior = SamplingPathPrior(network);
        _workspaces = new(() => new DeepGmmNetwork.ScoringWorkspace(Network, Network.ScoringBlockRows));
    }

    /// <inheritdoc />
    public override string ModelKind => Kind;
    /// <inheritdoc />
    public override int Dimension => Network.D;
    /// <inheritdoc />
    public override DensityKind DensityKind => DensityKind.Exact;

    /// <summary>Components per layer (index 0 acts first on the noise; the last layer is nearest the data).</summary>
    public IReadOnlyList<int> Layers => Network.Components;
    /// <summary>Number of paths Π N_j (components of the equivalent flat GMM).</summary>
    public int PathCount => Network.PathCount;
    /// <summary>Full or factorised path probabilities.</summary>
    public DeepGmmPathProbabilities PathProbabilities => Network.Factorized ? DeepGmmPathProbabilities.Factorized : DeepGmmPathProbabilities.Full;
    /// <summary>Input standardisation applied before the network.</summary>
    public ColumnStandardizer Standardizer => _standardizer;

    /// <summary>
    /// Trains a Deep GMM on <paramref name="data"/> (rows × D) by EM. Progress is reported once per EM iteration
    /// (train and validation log-likelihood per row; <see cref="TrainingProgress.Metrics"/> holds the E-step switch rate,
    /// re-seeded nodes and E/M-step seconds). With a validation set (given or split off) the best iteration is returned.
    /// </summary>
    public static DeepGmmModel Fit(RowMatrix data, DeepGmmOptions? options = null, RowMatrix? validation = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new DeepGmmOptions();
        options.Validate();
        // Before the data is read, copied or checked: a model no file could hold is known from the options and the width.
        ArgumentNullException.ThrowIfNull(data);
        options.PredictModelSize(data.Columns).EnsureFitsAFile();
        DataValidation.CheckTrainingData(data, InputDomain.Real, DataValidation.TrainingData);
        if (validation is not null) DataValidation.CheckTrainingData(validation, InputDomain.Real, DataValidation.ValidationData, data.Columns);
        int d = data.Columns;
        // The preparation observes the token as it goes (every run of rows, Preparation), as EM does.
        var (train, valid) = TrainingLoop.Split(data, validation, options.ValidationFraction, options.Seed, cancellationToken);
        var standardizer = options.Standardize ? ColumnStandardizer.Fit(train, cancellationToken) : ColumnStandardizer.FitPooled(train, cancellationToken);
        var x = standardizer.Forward(train, cancellationToken);
        var xValid = valid is null ? null : standardizer.Forward(valid, cancellationToken);
        double logJacobian = standardizer.LogJacobian;

        var root = new RandomStream(options.Seed).Fork(0xD6);
        var numbering = new IterationNumbering();
        // Layers not set: the candidates of DeepGmmOptions.Defaults.LayerCandidates, each fitted as if set (same seeds, so
        // the [4, 4] candidate is the fit of Layers = [4, 4]), the best on the held-out rows kept; one candidate, or no
        // held-out rows: the default's own layers.
        var candidates = options.LayersAutomatic && xValid is not null ? DeepGmmOptions.Defaults.LayerCandidates(x.Rows, d) : [options.Layers];
        DeepGmmNetwork? chosen = null;
        TrainingSummary? chosenSummary = null;
        foreach (var layers in candidates)
        {
            if (chosen is not null && options.StopToken.IsCancellationRequested) break;
            var o = candidates.Length == 1 ? options : options.WithLayers(layers);
            var (net, summary) = UnscorableValidation.NamingUserRows(() => TrainingDriver.BestOfRestarts(o.Initializations, byValidation: xValid is not null,
                    init => RunEm(o, x, xValid, logJacobian, init == 0 ? root : root.Fork((ulong)init), init, numbering, progress, cancellationToken),
                    o.StopToken),
                data, validation, o.ValidationFraction, o.Seed);
            if (chosen is null || summary.BestValidationLogLikelihood > chosenSummary!.BestValidationLogLikelihood) { chosen = net; chosenSummary = summary; }
        }
        return ModelFile.EnsureTrainedModelLoadable(new DeepGmmModel(chosen!, standardizer) { TrainingSummary = chosenSummary });
    }

    /// <summary>One EM run from one initialisation; returns the best (early-stopping) or last network. A validation row the
    /// network cannot measure is looked for in <paramref name="validationRows"/> (null: <paramref name="xValid"/>; a
    /// streamed Fit's whole validation stream when <paramref name="xValid"/> is a sample of it).</summary>
    private static (DeepGmmNetwork Network, TrainingSummary Summary) RunEm(DeepGmmOptions options, RowMatrix x, RowMatrix? xValid,
        double logJacobian, RandomStream random, int init, IterationNumbering numbering, IProgress<TrainingProgress>? progress,
        CancellationToken cancellationToken, ITrainingSource? validationRows = null)
    {
        var net = InitialNetwork(options, x, xValid, logJacobian, random, init, numbering, progress, cancellationToken, validationRows);
        var trainer = new DeepGmmTrainer(net, options, x, random);
        var em = new EmTrainable(net, trainer, options, xValid, logJacobian,
            options.Initializations > 1 ? FormattableString.Invariant($"initialisation {init + 1}/{options.Initializations}") : null, cancellationToken, validationRows);
        var summary = TrainingDriver.Run(em, TrainingData.From(x), EmDriverOptions(options, random, numbering), progress, cancellationToken);
        numbering.Done += summary.EpochsRun;
        return (net, summary);
    }

    /// <summary>The driver settings of an EM run: one step per iteration on all rows, in order.</summary>
    private static TrainingDriverOptions EmDriverOptions(DeepGmmOptions options, RandomStream random, IterationNumbering numbering) => new()
    {
        MaxEpochs = options.MaxIterations,
        Shuffle = false, // one step per iteration on all rows
        Root = random,
        EarlyStoppingPatience = options.EarlyStoppingPatience,
        // The L-BFGS M-step cannot diverge with a positive ridge; the minibatch M-step can, at an absurd rate (non-finite
        // parameters, or training rows of density 0). Parameters are never returned non-finite.
        OnDivergence = DivergencePolicy.Stop,
        StopNote = "non-finite parameters or training log-likelihood after the M-step: restored the previous iteration and stopped",
        StopToken = options.StopToken,
        Unit = EmUnit,
        EpochNumberOffset = numbering.Done, // reported iteration numbers keep rising across pretraining and initialisations
    };

    /// <summary>A new network initialised from the rows <paramref name="x"/> (all rows in memory, a bounded sample when
    /// streamed): layer-wise clustering, or from the top layer pretrained as a GMM by EM on <paramref name="x"/>.</summary>
    private static DeepGmmNetwork InitialNetwork(DeepGmmOptions options, RowMatrix x, RowMatrix? xValid, double logJacobian,
        RandomStream random, int init, IterationNumbering numbering, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken,
        ITrainingSource? validationRows = null)
    {
        var net = new DeepGmmNetwork(x.Columns, options.Layers, options.PathProbabilities == DeepGmmPathProbabilities.Factorized);
        if (PretrainsTopLayer(options))
        {
            var gmmOptions = options.Clone();
            gmmOptions.Layers = new[] { options.Layers[^1] };
            gmmOptions.MaxIterations = options.PretrainIterations;
            gmmOptions.EStep = DeepGmmEStep.Auto; // the GMM pretrains with the same EM variant as the deep model (soft EM: exact responsibilities)
            gmmOptions.MStep = DeepGmmMStep.Lbfgs;
            var pretrainProgress = progress is null ? null : new NotedProgress(progress, "pretraining the top layer as a GMM", PretrainingUnit);
            var (gmm, _) = RunEm(gmmOptions, x, xValid, logJacobian, random.Fork(0x9E7), init, numbering, pretrainProgress, cancellationToken, validationRows);
            DeepGmmTrainer.InitializeFromTopLayer(net, gmm, options, random);
        }
        else DeepGmmTrainer.Initialize(net, x, options, random);
        return net;
    }

    /// <summary>Whether the initialisation pretrains the top layer as a GMM (on the training rows, keeping its best
    /// iteration on the validation rows).</summary>
    private static bool PretrainsTopLayer(DeepGmmOptions options)
        => options.Layers.Length > 1 && options.Initialization == DeepGmmInitialization.PretrainedTopLayer;

    /// <summary>Most columns a Deep GMM file holds (2^16).</summary>
    internal const int MaxDimension = 1 << 16;

    /// <summary>Iterations reported so far by earlier EM runs of one Fit (pretraining, other initialisations).</summary>
    private sealed class IterationNumbering { public int Done; }

    /// <summary>Forwards progress reports with a note prepended (pretraining runs).</summary>
    private sealed class NotedProgress : IProgress<TrainingProgress>
    {
        private readonly IProgress<TrainingProgress> _inner;
        private readonly string _note, _unit;
        public NotedProgress(IProgress<TrainingProgress> inner, string note, string unit) { _inner = inner; _note = note; _unit = unit; }
        public void Report(TrainingProgress value) => _inner.Report(value with { Unit = _unit, Note = value.Note is null ? _note : _note + "; " + value.Note });
    }

    /// <summary>Progress units: an E-step plus M-step of the deep model, or of the GMM its top layer is pretrained as.</summary>
    private const string EmUnit = "EM iteration", PretrainingUnit = "pretraining EM iteration";

    /// <summary>Mean exact log-density of standardised rows (no Jacobian), blocks in parallel, reduced in block order.</summary>
    internal static double MeanLogDensity(DeepGmmNetwork net, RowMatrix x)
    {
        int block = net.ScoringBlockRows;
        int n = x.Rows, d = x.Columns, blocks = (n + block - 1) / block;
        var sums = new double[blocks];
        Parallel.For(0, blocks, DeepDensityEnvironment.ParallelOptions(), () => (new DeepGmmNetwork.ScoringWorkspace(net, block), new float[block]), (b, _, local) =>
        {
            int start = b * block, m = Math.Min(block, n - start);
            net.LogDensityBlock(x.Values.AsSpan(start * d, m * d), m, local.Item2, local.Item1);
            double s = 0;
            for (int r = 0; r < m; r++) s += local.Item2[r];
            sums[b] = s;
            return local;
        }, _ => { });
        double total = 0;
        foreach (var s in sums) total += s;
        return total / n;
    }

    /// <summary>Scoring scratch of this model, one per concurrently scoring thread, reused across blocks and calls and
    /// released with the model (a thread-static cache would keep a large workspace alive after the model is gone).</summary>
    private readonly Numerics.ScratchPool<DeepGmmNetwork.ScoringWorkspace> _workspaces;

    /// <inheritdoc />
    protected override void LogDensityCore(ReadOnlySpan<float> rows, int count, Span<float> logDensity, Span<float> standardError)
    {
        int d = Dimension, block = Network.ScoringBlockRows;
        float logJacobian = (float)_standardizer.LogJacobian;
        // One block (a PredictionEngine row, a model loaded into ML.NET): no closure, nothing allocated once warm.
        if (count <= block) ScoreBlock(rows[..(count * d)], count, logDensity, logJacobian);
        else ScoreBlocks(rows, count, logDensity, logJacobian);
    }

    // Its own method: a lambda's captures are allocated on entry to the method that declares them, even on the one-block path.
    private void ScoreBlocks(ReadOnlySpan<float> rows, int count, Span<float> logDensity, float logJacobian)
        => DeepDensityEnvironment.ForRowBlocks(rows, Dimension, count, logDensity, Network.ScoringBlockRows,
            (_, rowsOfBlock, m, output) => ScoreBlock(rowsOfBlock, m, output, logJacobian));

    private void ScoreBlock(ReadOnlySpan<float> rowsOfBlock, int m, Span<float> output, float logJacobian)
    {
        var ws = _workspaces.Rent();
        try
        {
            var x = ws.X.AsSpan(0, m * Dimension);
            _standardizer.Forward(rowsOfBlock, x, m);
            Network.LogDensityBlock(x, m, output, ws, oneRowAsVector: true);
        }
        finally { _workspaces.Return(ws); }
        for (int r = 0; r < m; r++) output[r] += logJacobian;
    }

    /// <inheritdoc />
    protected override void SampleCore(int count, ulong seed, Span<float> destination) => SampleCore(count, seed, destination, default);

    private protected override int SamplingBlockRows => Block;

    /// <summary>A block of rows from one stream, <c>root.Fork(block index)</c>, its rows drawn in turn: this model's draws
    /// are keyed by block, so a row depends on (seed, row) through its block (a part of a draw that cuts a block draws
    /// the whole block). A row: a path from the prior, Gaussian noise, the path's affine maps, the data's units.</summary>
    private protected override void DrawSamplingBlock(int start, int m, RandomStream root, Span<float> block)
    {
        int d = Dimension;
        var rng = root.Fork((ulong)(start / Block));
        var y = new double[d]; var next = new double[d];
        var digits = new int[Network.LayerCount];
        for (int r = 0; r < m; r++)
        {
            Network.PathDigits(rng.NextCategorical(_samplingPathPrior), digits);
            for (int a = 0; a < d; a++) y[a] = rng.NextGaussian();
            for (int j = 0; j < Network.LayerCount; j++)
            {
                int node = Network.Node(j, digits[j]);
                var an = _forwardA[node]; var bn = _forwardB[node];
                for (int a = 0; a < d; a++)
                {
                    double s = bn[a];
                    for (int c = 0; c < d; c++) s += an[a * d + c] * y[c];
                    next[a] = s;
                }
                (y, next) = (next, y);
            }
            var dst = block.Slice(r * d, d);
            for (int a = 0; a < d; a++) dst[a] = (float)(y[a] * _standardizer.Scale[a] + _standardizer.Mean[a]);
        }
    }

    /// <summary>exp(log π_p − max log π) per path: the weights sampling draws a path with (computed once per model; the
    /// network is fixed once a model holds it, as for its forward maps).</summary>
    private static float[] SamplingPathPrior(DeepGmmNetwork network)
    {
        var prior = new float[network.PathCount];
        float maxLog = float.NegativeInfinity;
        foreach (var v in network.PathLogPrior) maxLog = Math.Max(maxLog, v);
        for (int p = 0; p < prior.Length; p++) prior[p] = MathF.Exp(network.PathLogPrior[p] - maxLog);
        return prior;
    }

    /// <summary>
    /// The equivalent flat GMM in data units (paper eqs. 1–3): per path its weight π_p, mean β_p and covariance
    /// Ω_pΩ_pᵀ (D×D row-major), float64. Paths are mixed-radix numbers with layer 0 the fastest digit.
    /// </summary>
    public (double[] Weights, double[][] Means, double[][] Covariances) ToGaussianMixture()
    {
        int d = Dimension, pc = PathCount;
        var weights = new double[pc]; var means = new double[pc][]; var covs = new double[pc][];
        double max = double.NegativeInfinity;
        foreach (var v in Network.PathLogPrior) max = Math.Max(max, v);
        double total = 0;
        for (int p = 0; p < pc; p++) { weights[p] = Math.Exp(Network.PathLogPrior[p] - max); total += weights[p]; }
        var digits = new int[Network.LayerCount];
        for (int p = 0; p < pc; p++)
        {
            weights[p] /= total;
            Network.PathDigits(p, digits);
            // Ω = A_top ⋯ A_0 and β by composing x = A(y) + b from the bottom layer up.
            var omega = new double[d * d];
            for (int a = 0; a < d; a++) omega[a * d + a] = 1;
            var beta = new double[d];
            for (int j = 0; j < Network.LayerCount; j++)
            {
                int node = Network.Node(j, digits[j]);
                var an = _forwardA[node]; var bn = _forwardB[node];
                var o2 = new double[d * d]; var b2 = new double[d];
                for (int a = 0; a < d; a++)
                {
                    double s = bn[a];
                    for (int c = 0; c < d; c++)
                    {
                        double acv = an[a * d + c];
                        s += acv * beta[c];
                        for (int e = 0; e < d; e++) o2[a * d + e] += acv * omega[c * d + e];
                    }
                    b2[a] = s;
                }
                omega = o2; beta = b2;
            }
            var mean = new double[d]; var cov = new double[d * d];
            for (int a = 0; a < d; a++)
            {
                mean[a] = beta[a] * _standardizer.Scale[a] + _standardizer.Mean[a];
                for (int c = 0; c < d; c++)
                {
                    double s = 0;
                    for (int e = 0; e < d; e++) s += omega[a * d + e] * omega[c * d + e];
                    cov[a * d + c] = s * _standardizer.Scale[a] * _standardizer.Scale[c];
                }
            }
            means[p] = mean; covs[p] = cov;
        }
        return (weights, means, covs);
    }

    /// <inheritdoc />
    protected internal override void WritePayload(ModelWriter w)
    {
        w.WriteInt32(Network.D);
        w.WriteInt32s(Network.Components);
        w.WriteBoolean(Network.Factorized);
        _standardizer.Write(w);
        for (int n = 0; n < Network.NodeCount; n++) { w.WriteSingles(Network.Q[n]); w.WriteSingles(Network.E[n]); }
        w.WriteSingles(Network.LogPrior);
    }

    internal static DensityModel ReadPayload(ModelReader r, int version)
    {
        if (version != 1) throw r.Corrupt(FormattableString.Invariant($"payload version {version} is not supported (expected 1)"));
        int d = r.ReadInt32("dimension", 1, MaxDimension);
        int layerCount = r.ReadInt32();
        if (layerCount < 1 || layerCount > 64 || layerCount * 4 > r.Remaining) throw r.Corrupt(FormattableString.Invariant($"layer count {layerCount} is invalid"));
        var components = new int[layerCount];
        long paths = 1, nodes = 0;
        for (int j = 0; j < layerCount; j++)
        {
            components[j] = r.ReadInt32(FormattableString.Invariant($"layers[{j}]"), 1, 4096);
            paths *= components[j]; nodes += components[j];
            if (paths > DeepGmmOptions.MaxPaths) throw r.Corrupt(FormattableString.Invariant($"the network has more than {DeepGmmOptions.MaxPaths} paths"));
        }
        bool factorized = r.ReadBoolean();
        var std = ColumnStandardizer.Read(r, d);
        if (nodes * ((long)d * d + d) * 4 > r.Remaining) throw r.Corrupt("declared sizes exceed the payload");
        var net = new DeepGmmNetwork(d, components, factorized);
        for (int n = 0; n < net.NodeCount; n++)
        {
            r.ReadSingles(FormattableString.Invariant($"Q[{n}]"), d * d).CopyTo(net.Q[n], 0);
            r.ReadSingles(FormattableString.Invariant($"e[{n}]"), d).CopyTo(net.E[n], 0);
        }
        var prior = r.ReadSingles("log path probabilities", net.LogPrior.Length, requireFinite: false);
        foreach (var v in prior) if (float.IsNaN(v) || v > 1e-3f) throw r.Corrupt("a log path probability is NaN or positive");
        prior.CopyTo(net.LogPrior, 0);
        // The density is Σ_p π_p N(x | path p) and is labelled Exact: the π must sum to 1 (per layer when factorised),
        // or every row is off by log Σπ (and all −∞ leaves nothing to sample).
        if (factorized)
            for (int j = 0; j < layerCount; j++) CheckNormalized(r, prior.AsSpan(net.NodeOffset[j], components[j]), FormattableString.Invariant($"layer {j}'s log component probabilities"));
        else CheckNormalized(r, prior, "the log path probabilities");
        net.Refresh();
        for (int n = 0; n < net.NodeCount; n++)
            if (!double.IsFinite(net.LogDet[n])) throw r.Corrupt(FormattableString.Invariant($"node {n} has a singular transformation"));
        var model = new DeepGmmModel(net, std);
        // Sampling runs the forward maps A = Q⁻¹, b = −A·e: a nearly singular Q that passed the determinant check can
        // still give an infinite A.
        for (int n = 0; n < net.NodeCount; n++)
            if (!model._forwardA[n].All(double.IsFinite) || !model._forwardB[n].All(double.IsFinite))
                throw r.Corrupt(FormattableString.Invariant($"node {n}'s forward transformation is not finite"));
        return model;
    }

    private static void CheckNormalized(ModelReader r, ReadOnlySpan<float> logProbabilities, string what)
    {
        double lse = Numerics.RowOps.LogSumExp(logProbabilities);
        if (!(Math.Abs(lse) <= 1e-3))
            throw r.Corrupt(FormattableString.Invariant($"{what} sum to {Math.Exp(lse):G6} (log {lse:G6}), not 1"));
    }
}
