using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Layers;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.Rnade;

/// <summary>
/// Deep, order-agnostic RNADE (Uria, Murray &amp; Larochelle, ICML 2014): several hidden layers, trained over random
/// orderings, with an exact log-density that averages the densities of an ensemble of orderings (EoRNADE). See
/// <see cref="DeepRnadeOptions"/> for the model and its training.
/// </summary>
public sealed class DeepRnadeModel : DensityModel
{
    /// <summary>Model-kind name in saved files.</summary>
    public const string Kind = "DeepRnade";
    /// <summary>Registers this kind with the model file when the assembly loads (models register themselves; no central list).</summary>
    [System.Runtime.CompilerServices.ModuleInitializer]
    internal static void RegisterKind() => ModelRegistry.Register(Kind, ReadPayload);
    private const int RowsPerScoringBlock = 64;

    internal readonly DeepRnadeNetwork Network;
    private readonly int[][] _orderings;
    private readonly ColumnStandardizer _standardizer;

    internal DeepRnadeModel(DeepRnadeNetwork network, int[][] orderings, ColumnStandardizer standardizer)
    {
        Network = network; _orderings = orderings; _standardizer = standardizer;
        _oneRowScratch = new(() => new ScoringScratch(Network, 1));
        _blockScratch = new(() => new ScoringScratch(Network, RowsPerScoringBlock));
    }

    /// <inheritdoc />
    public override string ModelKind => Kind;
    /// <inheritdoc />
    public override int Dimension => Network.D;
    /// <inheritdoc />
    public override DensityKind DensityKind => DensityKind.Exact;

    /// <summary>Units per hidden layer.</summary>
    public int HiddenUnits => Network.H;
    /// <summary>Number of hidden layers.</summary>
    public int HiddenLayers => Network.HiddenLayers;
    /// <summary>Mixture components K per conditional.</summary>
    public int Components => Network.K;
    /// <summary>How the network sees the observed dimensions.</summary>
    public DeepRnadeConnectivity Connectivity => Network.Connectivity;
    /// <summary>Whether the autoregressive network has direct input → output weights.</summary>
    public bool DirectConnections => Network.Direct is not null;
    /// <summary>Hidden non-linearity.</summary>
    public Activation Activation => Network.Activation;
    /// <summary>The orderings whose densities are averaged (permutations of the input columns).</summary>
    public IReadOnlyList<IReadOnlyList<int>> Orderings => _orderings;
    /// <summary>Number of learned scalars.</summary>
    public long ParameterCount => Network.Parameters.Count;
    /// <summary>Input standardisation (by input column).</summary>
    public ColumnStandardizer Standardizer => _standardizer;

    /// <summary>The same network with the ensemble cut to its first <paramref name="count"/> orderings (cheaper scoring;
    /// still an exact, normalised density).</summary>
    public DeepRnadeModel WithOrderings(int count)
    {
        if (count < 1 || count > _orderings.Length)
            throw new ArgumentOutOfRangeException(nameof(count), count, FormattableString.Invariant($"count must be in 1…{_orderings.Length} (the model's orderings)."));
        return new DeepRnadeModel(Network, _orderings[..count], _standardizer) { TrainingSummary = TrainingSummary };
    }

    /// <summary>Trains a deep RNADE on <paramref name="data"/> (rows × D) with the shared training loop.</summary>
    public static DeepRnadeModel Fit(RowMatrix data, DeepRnadeOptions? options = null, RowMatrix? validation = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new DeepRnadeOptions();
        options.Validate();
        // Before the data is read, copied or checked: a model no file could hold is known from the options and the width.
        ArgumentNullException.ThrowIfNull(data);
        options.PredictModelSize(data.Columns).EnsureFitsAFile();
        DataValidation.CheckTrainingData(data, InputDomain.Real, DataValidation.TrainingData);
        if (validation is not null) DataValidation.CheckTrainingData(validation, InputDomain.Real, DataValidation.ValidationData, data.Columns);
        int d = data.Columns;
        var firstOrder = options.ResolveOrder(d);
        // The preparation observes the token as it goes (every run of rows, Preparation), as training does.
        var (train, valid) = TrainingLoop.Split(data, validation, options.ValidationFraction, options.Seed, cancellationToken);
        var standardizer = options.Standardize ? ColumnStandardizer.Fit(train, cancellationToken) : ColumnStandardizer.Identity(d);
        var modelTrain = standardizer.Forward(train, cancellationToken);
        var modelValid = valid is null ? null : standardizer.Forward(valid, cancellationToken);

        return UnscorableValidation.NamingUserRows(() => Train(options, d, firstOrder, standardizer, modelTrain, TrainingData.From(modelTrain),
            modelValid is null ? null : TrainingData.From(modelValid), progress, cancellationToken), data, validation, options.ValidationFraction, options.Seed);
    }

    /// <summary>
    /// Trains a deep RNADE from a stream of rows (see docs/scaling.md) without holding the data: a pass for the
    /// standardisation, a seeded sample of at most <see cref="StreamingOptions.SampleRows"/> rows for the initial
    /// component means, then one pass per epoch through the shuffle buffer; a hashed validation split without a
    /// validation stream. With a buffer holding the pass, no split and at most SampleRows rows it is the in-memory model.
    /// </summary>
    public static DeepRnadeModel Fit(IRowStream data, DeepRnadeOptions? options, IRowStream? validation, StreamingOptions? streaming,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new DeepRnadeOptions();
        options.Validate();
        // Before the data is read, copied or checked: a model no file could hold is known from the options and the width.
        ArgumentNullException.ThrowIfNull(data);
        options.PredictModelSize(data.Width).EnsureFitsAFile();
        var (train, valid) = StreamingTrainingData.CheckedSplit(data, validation, ref streaming, InputDomain.Real, options.ValidationFraction, options.Seed, cancellationToken);
        int d = data.Width;
        var firstOrder = options.ResolveOrder(d);
        var standardizer = options.Standardize ? ColumnStandardizer.Fit(train, cancellationToken) : ColumnStandardizer.Identity(d);
        var modelTrain = RowStream.Map(train, (rows, n, _) => standardizer.Forward(rows, rows, n));
        var modelValid = valid is null ? null : RowStream.Map(valid, (rows, n, _) => standardizer.Forward(rows, rows, n));
        var sample = RowStream.Sample(modelTrain, streaming.SampleRows, new RandomStream(options.Seed).Fork(0x5A3B1E), cancellationToken);
        if (sample.Rows < Math.Max(2, streaming.SampleRows)) TrainingRowChecks.CheckStreamedRowCount(sample.Rows); // the sample is the whole stream
        return UnscorableValidation.NamingUserRows(() => Train(options, d, firstOrder, standardizer, sample, new StreamingTrainingData(modelTrain, streaming),
            modelValid is null ? null : new StreamingTrainingData(modelValid, streaming), progress, cancellationToken), validation, options.ValidationFraction, options.Seed);
    }

    /// <summary>Orderings, initialisation (component means from <paramref name="initialRows"/>) and the training loop,
    /// on standardised rows in memory or streamed.</summary>
    private static DeepRnadeModel Train(DeepRnadeOptions options, int d, int[] firstOrder, ColumnStandardizer standardizer, RowMatrix initialRows,
        ITrainingSource train, ITrainingSource? validation, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        var orderings = new int[options.OrderAgnostic ? options.Orderings : 1][];
        orderings[0] = firstOrder;
        var orderRandom = new RandomStream(options.Seed).Fork(0x0D3E);
        for (int e = 1; e < orderings.Length; e++)
        {
            orderings[e] = Enumerable.Range(0, d).ToArray();
            orderRandom.Fork((ulong)e).Shuffle(orderings[e].AsSpan());
        }
        var network = new DeepRnadeNetwork(d, options.HiddenUnits, options.HiddenLayers, options.Components, options.Activation, options.Connectivity,
            options.DirectConnections && options.Connectivity == DeepRnadeConnectivity.Autoregressive);
        network.Initialize(new RandomStream(options.Seed).Fork(0x1A17), RnadeModel.ColumnQuantiles(initialRows, options.Components, cancellationToken));
        var objective = new DeepRnadeObjective(network, options.RowsPerBlock, options.OrderAgnostic ? null : firstOrder,
            options.ScaleMeanGradientBySigma, standardizer.LogJacobian, orderings[..Math.Min(options.ValidationOrderings, orderings.Length)],
            orderings, cancellationToken);
        var summary = TrainingLoop.Run(objective, train, validation, options, progress, cancellationToken);
        return new DeepRnadeModel(network, orderings, standardizer) { TrainingSummary = summary };
    }

    /// <inheritdoc />
    protected override void LogDensityCore(ReadOnlySpan<float> rows, int count, Span<float> logDensity, Span<float> standardError)
    {
        // One block (a PredictionEngine row, a model loaded into ML.NET): no closure, nothing allocated once warm.
        if (count <= RowsPerScoringBlock) ScoreBlock(rows[..(count * Dimension)], count, logDensity);
        else ScoreBlocks(rows, count, logDensity);
    }

    // Its own method: a lambda's captures are allocated on entry to the method that declares them, even on the one-block path.
    private void ScoreBlocks(ReadOnlySpan<float> rows, int count, Span<float> logDensity)
        => DeepDensityEnvironment.ForRowBlocks(rows, Dimension, count, logDensity, RowsPerScoringBlock,
            (_, block, n, output) => ScoreBlock(block, n, output));

    private void ScoreBlock(ReadOnlySpan<float> block, int n, Span<float> output)
    {
        // Scratch for one row stays one row's size; blocks share the full-block scratch.
        var pool = n == 1 ? _oneRowScratch : _blockScratch;
        var s = pool.Rent();
        try
        {
            var x = s.X.AsSpan(0, n * Dimension);
            _standardizer.Forward(block, x, n);
            Network.EnsembleLogDensity(x, n, _orderings, s.Workspace, output);
        }
        finally { pool.Return(s); }
        float logJacobian = (float)_standardizer.LogJacobian;
        for (int i = 0; i < n; i++) output[i] += logJacobian;
    }

    /// <summary>Scoring buffers of this model (<see cref="Numerics.ScratchPool{T}"/>): standardised rows and the network's workspace.</summary>
    private sealed class ScoringScratch(DeepRnadeNetwork network, int rows)
    {
        public readonly float[] X = new float[rows * network.D];
        public readonly DeepRnadeNetwork.Workspace Workspace = new(network, rows, forTraining: false, frozenWeights: true);
    }

    private readonly Numerics.ScratchPool<ScoringScratch> _oneRowScratch, _blockScratch;

    /// <summary>Draws an ordering of the ensemble per row, then samples along it (a draw from the ensemble's density).</summary>
    protected override void SampleCore(int count, ulong seed, Span<float> destination) => SampleCore(count, seed, destination, default);

    private protected override int SamplingBlockRows => RowsPerScoringBlock;

    /// <summary>A block of rows, each from its own stream: the row's ordering of the ensemble, then the row along it.</summary>
    private protected override void DrawSamplingBlock(int start, int n, RandomStream root, Span<float> block)
    {
        int d = Dimension;
        var ws = new DeepRnadeNetwork.Workspace(Network, 1, forTraining: false, frozenWeights: true);
        for (int r = 0; r < n; r++)
        {
            var random = root.Fork((ulong)(start + r));
            Network.SampleRow(_orderings[random.NextInt(_orderings.Length)], ws, random, block.Slice(r * d, d));
        }
        _standardizer.Inverse(block, n);
    }

    /// <summary>Version 1: masked input (no connectivity field, as before it existed); version 2 writes the connectivity.</summary>
    protected internal override int PayloadVersion => Network.Connectivity == DeepRnadeConnectivity.MaskedInput ? 1 : 2;

    /// <inheritdoc />
    protected internal override void WritePayload(ModelWriter w)
    {
        w.WriteInt32(Network.D); w.WriteInt32(Network.H); w.WriteInt32(Network.HiddenLayers); w.WriteInt32(Network.K);
        w.WriteEnum(Network.Activation);
        if (PayloadVersion >= 2) { w.WriteEnum(Network.Connectivity); w.WriteInt32(DirectConnections ? 1 : 0); }
        w.WriteInt32(_orderings.Length);
        foreach (var o in _orderings) w.WriteInt32s(o);
        _standardizer.Write(w);
        foreach (var layer in Network.Net.Layers) { w.WriteSingles(layer.Weight.Value); w.WriteSingles(layer.Bias.Value); }
        if (Network.Direct is not null) w.WriteSingles(Network.Direct.Value);
    }

    internal static DensityModel ReadPayload(ModelReader r, int version)
    {
        if (version is not (1 or 2)) throw r.Corrupt(FormattableString.Invariant($"payload version {version} is not supported (expected 1 or 2)"));
        int d = r.ReadInt32("dimension", 1, RnadeOptions.MaxDimension);
        int h = r.ReadInt32("hidden units", 1, RnadeOptions.MaxHiddenUnits);
        int layers = r.ReadInt32("hidden layers", 1, DeepRnadeOptions.MaxHiddenLayers);
        int k = r.ReadInt32("components", 1, RnadeOptions.MaxComponents);
        var act = r.ReadEnum<Activation>("activation");
        if (act is not (Activation.Relu or Activation.Sigmoid or Activation.Tanh)) throw r.Corrupt($"activation {act} is not one RNADE supports");
        var connectivity = version >= 2 ? r.ReadEnum<DeepRnadeConnectivity>("connectivity") : DeepRnadeConnectivity.MaskedInput;
        if (version >= 2 && connectivity != DeepRnadeConnectivity.Autoregressive) throw r.Corrupt($"connectivity {connectivity} is written as payload version 1");
        bool direct = version >= 2 && r.ReadInt32("direct connections", 0, 1) == 1;
        int inputs = DeepRnadeNetwork.Inputs(d, connectivity);
        int count = r.ReadInt32("orderings", 1, DeepRnadeOptions.MaxOrderings);
        if (((long)inputs * h + (long)(layers - 1) * h * h + (long)h * d * 3 * k + (long)count * d) * 4 > r.Remaining)
            throw r.Corrupt("declared sizes exceed the payload");
        var orderings = new int[count][];
        for (int e = 0; e < count; e++)
        {
            orderings[e] = r.ReadInt32s("ordering", d);
            var seen = new bool[d];
            foreach (var o in orderings[e]) { if (o < 0 || o >= d || seen[o]) throw r.Corrupt("an ordering is not a permutation"); seen[o] = true; }
        }
        var std = ColumnStandardizer.Read(r, d);
        var widths = new List<int> { inputs };
        widths.AddRange(Enumerable.Repeat(h, layers));
        widths.Add(d * 3 * k);
        var dense = new DenseLayer[widths.Count - 1];
        for (int l = 0; l < dense.Length; l++)
            dense[l] = new DenseLayer(FormattableString.Invariant($"deep.{l}"), widths[l], widths[l + 1], l == dense.Length - 1 ? Activation.Identity : act,
                r.ReadParameters("layer weights", widths[l] * widths[l + 1]), r.ReadParameters("layer biases", widths[l + 1]));
        var directWeights = direct ? r.ReadParameters("direct weights", d * d * 3 * k) : null;
        return new DeepRnadeModel(new DeepRnadeNetwork(d, k, act, connectivity, dense, directWeights), orderings, std);
    }
}
