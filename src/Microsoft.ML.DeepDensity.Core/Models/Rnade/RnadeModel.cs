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
        _scratch = new(() => new ScoringScratch(Network));
    }

    /// <inheritdoc />
    public override string ModelKind => Kind;
    /// <inheritdoc />
    public override int Dimension => Network.D;
    /// <inheritdoc />
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

    /// <summary>Trains an RNADE on <paramref name="data"/> (rows × D) with the shared training loop.</summary>
    public static RnadeModel Fit(RowMatrix data, RnadeOptions? options = null, RowMatrix? validation = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new RnadeOptions();
        if (options is DeepRnadeOptions)
            throw new ArgumentException("DeepRnadeOptions describe a deep RNADE: train it with DeepRnadeModel.Fit.", nameof(options));
        options.Validate();
        // Before the data is read, copied or checked: a model no file could hold is known from the options and the width.
        ArgumentNullException.ThrowIfNull(data);
        options.PredictModelSize(data.Columns).EnsureFitsAFile();
        DataValidation.CheckTrainingData(data, InputDomain.Real, DataValidation.TrainingData);
        if (validation is not null) DataValidation.CheckTrainingData(validation, InputDomain.Real, DataValidation.ValidationData, data.Columns);
        int d = data.Columns;
        var order = options.ResolveOrder(d);
        // The preparation over the data observes the token as it goes (every run of rows, Preparation): on a large data
        // set each step takes seconds.
        var (train, valid) = TrainingLoop.Split(data, validation, options.ValidationFraction, options.Seed, cancellationToken);
        var permutedTrain = Permute(train, order, cancellationToken);
        var standardizer = options.Standardize ? ColumnStandardizer.Fit(permutedTrain, cancellationToken) : ColumnStandardizer.Identity(d);
        var modelTrain = standardizer.Forward(permutedTrain, cancellationToken);
        var modelValid = valid is null ? null : standardizer.Forward(Permute(valid, order, cancellationToken), cancellationToken);

        var network = new RnadeNetwork(d, options.HiddenUnits, options.Components, options.Activation);
        network.Initialize(new RandomStream(options.Seed).Fork(0x1A17), ColumnQuantiles(modelTrain, options.Components, cancellationToken));
        cancellationToken.ThrowIfCancellationRequested();
        var objective = new RnadeObjective(network, options.RowsPerBlock, options.ScaleMeanGradientBySigma, standardizer.LogJacobian, cancellationToken);
        var summary = UnscorableValidation.NamingUserRows(() => TrainingLoop.Run(objective, modelTrain, modelValid, options, progress, cancellationToken),
            data, validation, options.ValidationFraction, options.Seed);
        return ModelFile.EnsureTrainedModelLoadable(new RnadeModel(network, order, standardizer) { TrainingSummary = summary });
    }

    /// <summary>
    /// Trains an RNADE from a stream of rows (see docs/scaling.md) without holding the data: one pass fits the
    /// standardisation, one reads a seeded sample of at most <see cref="StreamingOptions.SampleRows"/> rows for the
    /// initial component means, and every epoch reads one pass through the shuffle buffer. Without a validation stream,
    /// <see cref="GradientTrainingOptions.ValidationFraction"/> of the rows are held out by a seeded hash of their
    /// position (<see cref="StreamingTrainingData.Split"/>). With a buffer holding the whole pass, no validation split
    /// and at most SampleRows rows, the model is the one <see cref="Fit(RowMatrix, RnadeOptions?, RowMatrix?, IProgress{TrainingProgress}?, CancellationToken)"/>
    /// trains on the same rows. A bad value throws <see cref="DataValidationException"/> naming its row and column.
    /// </summary>
    public static RnadeModel Fit(IRowStream data, RnadeOptions? options, IRowStream? validation, StreamingOptions? streaming,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new RnadeOptions();
        if (options is DeepRnadeOptions)
            throw new ArgumentException("DeepRnadeOptions describe a deep RNADE: train it with DeepRnadeModel.Fit.", nameof(options));
        options.Validate();
        // Before the data is read, copied or checked: a model no file could hold is known from the options and the width.
        ArgumentNullException.ThrowIfNull(data);
        options.PredictModelSize(data.Width).EnsureFitsAFile();
        var (train, valid) = StreamingTrainingData.CheckedSplit(data, validation, ref streaming, InputDomain.Real, options.ValidationFraction, options.Seed, cancellationToken);
        int d = data.Width;
        var order = options.ResolveOrder(d);
        var permutedTrain = RowStream.Map(train, Permuter(order));
        var standardizer = options.Standardize ? ColumnStandardizer.Fit(permutedTrain, cancellationToken) : ColumnStandardizer.Identity(d);
        var modelTrain = RowStream.Map(permutedTrain, (rows, n, _) => standardizer.Forward(rows, rows, n));
        var modelValid = valid is null ? null : RowStream.Map(RowStream.Map(valid, Permuter(order)), (rows, n, _) => standardizer.Forward(rows, rows, n));
        var sample = RowStream.Sample(modelTrain, streaming.SampleRows, new RandomStream(options.Seed).Fork(0x5A3B1E), cancellationToken);
        if (sample.Rows < Math.Max(2, streaming.SampleRows)) TrainingRowChecks.CheckStreamedRowCount(sample.Rows); // the sample is the whole stream

        var network = new RnadeNetwork(d, options.HiddenUnits, options.Components, options.Activation);
        network.Initialize(new RandomStream(options.Seed).Fork(0x1A17), ColumnQuantiles(sample, options.Components));
        cancellationToken.ThrowIfCancellationRequested();
        var objective = new RnadeObjective(network, options.RowsPerBlock, options.ScaleMeanGradientBySigma, standardizer.LogJacobian, cancellationToken);
        var summary = UnscorableValidation.NamingUserRows(() => TrainingLoop.Run(objective, new StreamingTrainingData(modelTrain, streaming),
            modelValid is null ? null : new StreamingTrainingData(modelValid, streaming), options, progress, cancellationToken),
            validation, options.ValidationFraction, options.Seed);
        return ModelFile.EnsureTrainedModelLoadable(new RnadeModel(network, order, standardizer) { TrainingSummary = summary });
    }

    /// <summary>
    /// A trainable copy of this model's parameters as a gradient objective over rows of its input columns, for
    /// data-parallel training (docs/scaling.md, "Beyond one machine"): a worker computes <see cref="GradientPartial"/>s
    /// with it, the driver steps its parameters. <paramref name="options"/> give the training settings it uses
    /// (<see cref="RnadeOptions.RowsPerBlock"/>, <see cref="RnadeOptions.ScaleMeanGradientBySigma"/>; default: the
    /// defaults); the architecture, order and standardisation are the model's. This model is not changed.
    /// </summary>
    public ModelTrainingObjective<RnadeModel> CreateTrainingObjective(RnadeOptions? options = null)
    {
        options ??= new RnadeOptions();
        if (options is DeepRnadeOptions)
            throw new ArgumentException("DeepRnadeOptions describe a deep RNADE, not this model.", nameof(options));
        options.Validate();
        var copy = (RnadeModel)FromBytes(ToBytes());
        return new ModelTrainingObjective<RnadeModel>(copy,
            new RnadeObjective(copy.Network, options.RowsPerBlock, options.ScaleMeanGradientBySigma, copy.Standardizer.LogJacobian), copy.ToModelSpace);
    }

    /// <summary>Reorders each row of a block into model order (a streamed Fit's map).</summary>
    private static RowBlockMap Permuter(int[] order) => (rows, n, _) =>
    {
        int d = order.Length;
        Span<float> row = d <= 256 ? stackalloc float[d] : new float[d];
        for (int r = 0; r < n; r++)
        {
            var x = rows.Slice(r * d, d);
            x.CopyTo(row);
            for (int p = 0; p < d; p++) x[p] = row[order[p]];
        }
    };

    /// <inheritdoc />
    protected override void LogDensityCore(ReadOnlySpan<float> rows, int count, Span<float> logDensity, Span<float> standardError)
    {
        float logJacobian = (float)_standardizer.LogJacobian;
        // One block (a PredictionEngine row, a model loaded into ML.NET): no closure, nothing allocated once warm.
        if (count <= RowsPerScoringBlock) ScoreBlock(rows[..(count * Dimension)], count, logDensity, logJacobian);
        else ScoreBlocks(rows, count, logDensity, logJacobian);
    }

    // Its own method: a lambda's captures are allocated on entry to the method that declares them, even on the one-block path.
    private void ScoreBlocks(ReadOnlySpan<float> rows, int count, Span<float> logDensity, float logJacobian)
        => DeepDensityEnvironment.ForRowBlocks(rows, Dimension, count, logDensity, RowsPerScoringBlock,
            (_, block, n, output) => ScoreBlock(block, n, output, logJacobian));

    /// <summary>Scoring scratch of this model, one per concurrently scoring thread, reused across calls and released with
    /// the model (a thread-static cache would keep the last model's scratch alive on every thread that scored it).</summary>
    private readonly Numerics.ScratchPool<ScoringScratch> _scratch;

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
        var scratch = _scratch.Rent();
        try
        {
            var x = scratch.X.AsSpan(0, n * Dimension);
            ToModelSpace(raw, x, n);
            if (n == 1 && Network.LogDensityOfRow(x, scratch.Row ??= new RnadeNetwork.RowWorkspace(Network)) is float one) logDensity[0] = one;
            else Network.Forward(x, n, scratch.For(n), logDensity, 0f, false);
        }
        finally { _scratch.Return(scratch); }
        for (int i = 0; i < n; i++) logDensity[i] += logJacobian;
    }

    /// <inheritdoc />
    protected override void SampleCore(int count, ulong seed, Span<float> destination) => SampleCore(count, seed, destination, default);

    private protected override int SamplingBlockRows => RowsPerScoringBlock;

    /// <summary>A block of rows, each from its own stream, drawn in model space (standardised, in the model's column
    /// order) and mapped back to the data's units and columns.</summary>
    private protected override void DrawSamplingBlock(int start, int n, RandomStream root, Span<float> block)
    {
        int d = Dimension;
        var modelSpace = new float[n * d];
        Network.Sample(n, RowStreams(root, start, n), modelSpace);
        _standardizer.Inverse(modelSpace, n);
        for (int r = 0; r < n; r++)
            for (int p = 0; p < d; p++) block[r * d + _order[p]] = modelSpace[r * d + p];
    }

    internal void ToModelSpace(ReadOnlySpan<float> raw, Span<float> x, int n)
    {
        int d = Dimension;
        var order = _order; var mean = _standardizer.Mean; var scale = _standardizer.Scale;
        for (int r = 0; r < n; r++)
        {
            var src = raw.Slice(r * d, d); var dst = x.Slice(r * d, d);
            for (int p = 0; p < d; p++) dst[p] = ColumnStandardizer.Standardize(src[order[p]], mean[p], scale[p]);
        }
    }

    private static RowMatrix Permute(RowMatrix m, int[] order, CancellationToken cancellationToken)
    {
        var result = new RowMatrix(m.Rows, m.Columns);
        int run = Preparation.RowsPerCheck(m.Columns);
        for (int r = 0; r < m.Rows; r++)
        {
            if (r % run == 0) Preparation.Check(cancellationToken);
            var src = m.Row(r); var dst = result.Row(r);
            for (int p = 0; p < order.Length; p++) dst[p] = src[order[p]];
        }
        return result;
    }

    /// <summary>Quantiles (k+½)/K of each column: initial component means that cover the data.</summary>
    /// <remarks><paramref name="cancellationToken"/> is checked before every run of rows copied and before every column's
    /// selection (a Fit's preparation, <see cref="Preparation"/>).</remarks>
    internal static float[] ColumnQuantiles(RowMatrix data, int k, CancellationToken cancellationToken = default)
    {
        int n = data.Rows, d = data.Columns;
        var q = new float[d * k];
        if (n == 0) return q;
        var positions = new int[k];
        for (int i = 0; i < k; i++) positions[i] = Math.Min(n - 1, (int)((i + 0.5) / k * n));
        // The values a sort of each column would put at those positions, selected without sorting, in parallel over
        // groups of 16 columns (each writes only its own values, so any thread count gives the same bits). A group is
        // copied out row by row, one cache line per row: copying one column at a time read the whole matrix per column.
        const int Group = 16;
        var values = data.Values;
        DeepDensityEnvironment.For(0, (d + Group - 1) / Group, g =>
        {
            int c0 = g * Group, width = Math.Min(Group, d - c0);
            var columns = System.Buffers.ArrayPool<float>.Shared.Rent(width * n);
            try
            {
                int run = Preparation.RowsPerCheck(width);
                for (int r = 0; r < n; r++)
                {
                    if (r % run == 0) Preparation.Check(cancellationToken);
                    long row = (long)r * d + c0;
                    for (int j = 0; j < width; j++) columns[j * n + r] = values[row + j];
                }
                for (int j = 0; j < width; j++)
                {
                    Preparation.Check(cancellationToken);
                    OrderStatistics.Select(columns.AsSpan(j * n, n), positions, q.AsSpan((c0 + j) * k, k));
                }
            }
            finally { System.Buffers.ArrayPool<float>.Shared.Return(columns); }
        });
        return q;
    }

    /// <inheritdoc />
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
        if (version != 1) throw r.Corrupt(FormattableString.Invariant($"payload version {version} is not supported (expected 1)"));
        int d = r.ReadInt32("dimension", 1, RnadeOptions.MaxDimension);
        int h = r.ReadInt32("hidden units", 1, RnadeOptions.MaxHiddenUnits);
        int k = r.ReadInt32("components", 1, RnadeOptions.MaxComponents);
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
                    throw r.Corrupt(FormattableString.Invariant($"the log σ bias of component {i} at position {p} is {net.B[p * 3 * k + 2 * k + i]}, above {MaxLogSigmaBias}"));
        return new RnadeModel(net, order, std);
    }
}
