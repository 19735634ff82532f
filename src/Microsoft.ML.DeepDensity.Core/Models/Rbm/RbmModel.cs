using System.Runtime.CompilerServices;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Numerics.Amx;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.Rbm;

/// <summary>
/// Restricted Boltzmann machine as a density model: Bernoulli–Bernoulli for binary data, Gaussian–Bernoulli (visible
/// standard deviation <see cref="RbmOptions.VisibleStdDev"/>, fixed or learned per column, on standardised data, folded into the stored map) for real data. Trained by CD-k or persistent CD; log Z is computed once after
/// training, exactly by enumerating the smaller layer (≤ <see cref="RbmOptions.ExactLogPartitionMaxUnits"/> units) or by
/// annealed importance sampling, and stored with the model. log p(x) = −F(x) − log Z (+ the standardisation Jacobian).
/// </summary>
public sealed partial class RbmModel : DensityModel
{
    /// <summary>Model-kind name in saved files.</summary>
    public const string Kind = "Rbm";

    /// <summary>Most visible units (columns) an RBM file holds, 2^24: wider data is refused before training.</summary>
    internal const int MaxVisibleUnits = 1 << 24;

    /// <summary>Registers this kind with the model file when the assembly loads (models register themselves; no central list).</summary>
    [ModuleInitializer]
    internal static void RegisterKind() => ModelRegistry.Register(Kind, ReadPayload);
    private const int RowsPerScoringBlock = 256;

    internal readonly RbmMachine Machine;
    private readonly ColumnStandardizer? _standardizer;

    internal RbmModel(RbmMachine machine, ColumnStandardizer? standardizer, LogPartitionMethod method, double logZ,
        double logZStandardError, double logZLower, double logZUpper, int aisRuns, int aisTemperatures,
        int burnIn, int thinning, int chains)
    {
        Machine = machine; _standardizer = standardizer;
        LogPartitionMethod = method; LogPartition = logZ; LogPartitionStandardError = logZStandardError;
        LogPartitionInterval = (logZLower, logZUpper); AisRuns = aisRuns; AisTemperatures = aisTemperatures;
        SamplingBurnIn = burnIn; SamplingThinning = thinning; SamplingChains = chains;
    }

    /// <inheritdoc />
    public override string ModelKind => Kind;
    /// <inheritdoc />
    public override int Dimension => Machine.D;
    /// <inheritdoc />
    public override InputDomain InputDomain => Machine.Gaussian ? InputDomain.Real : InputDomain.Binary;

    /// <summary><see cref="DensityKind.Exact"/> when log Z was enumerated, <see cref="DensityKind.Estimate"/> (with the
    /// standard error of log Z as every row's standard error) when it came from AIS.</summary>
    public override DensityKind DensityKind => LogPartitionMethod == LogPartitionMethod.Exact ? DensityKind.Exact : DensityKind.Estimate;

    /// <summary>Hidden units H.</summary>
    public int HiddenUnits => Machine.H;
    /// <summary>Bernoulli or Gaussian visible units.</summary>
    public RbmVisibleType VisibleType => Machine.VisibleType;
    /// <summary>log Z (of the model-space density).</summary>
    public double LogPartition { get; }
    /// <summary>Standard error of <see cref="LogPartition"/> (0 when exact); +∞ (unknown) when the AIS runs' weights have
    /// fewer than <see cref="Estimation.ImportanceSampler.MinEffectiveSamples"/> effective samples (one run dominates), where
    /// the delta method's figure, never above about 1, says nothing about the actual error.</summary>
    public double LogPartitionStandardError { get; }
    /// <summary>log Z ± 3 standard errors of the mean importance weight, as in Salakhutdinov &amp; Murray (equal bounds when exact).</summary>
    public (double Lower, double Upper) LogPartitionInterval { get; }
    /// <summary>How <see cref="LogPartition"/> was obtained.</summary>
    public LogPartitionMethod LogPartitionMethod { get; }
    /// <summary>AIS runs used (0 when exact).</summary>
    public int AisRuns { get; }
    /// <summary>AIS inverse temperatures used (0 when exact).</summary>
    public int AisTemperatures { get; }
    /// <summary>Gibbs sweeps before the first sample of each chain.</summary>
    public int SamplingBurnIn { get; }
    /// <summary>Gibbs sweeps between samples of one chain.</summary>
    public int SamplingThinning { get; }
    /// <summary>Parallel Gibbs chains used by <see cref="DensityModel.Sample(int, ulong)"/>.</summary>
    public int SamplingChains { get; }
    /// <summary>Input standardisation of a Gaussian RBM (null for Bernoulli units or when disabled).</summary>
    public ColumnStandardizer? Standardizer => _standardizer;

    /// <summary>Copy of the weights, D×H row-major (visible i, hidden j at i·H + j).</summary>
    public float[] GetWeights() => (float[])Machine.W.Clone();
    /// <summary>Copy of the visible biases.</summary>
    public float[] GetVisibleBias() => (float[])Machine.B.Clone();
    /// <summary>Copy of the hidden biases.</summary>
    public float[] GetHiddenBias() => (float[])Machine.C.Clone();

    /// <summary>Trains an RBM on <paramref name="data"/> (rows × D) by CD-k / PCD-k, then computes log Z.</summary>
    public static RbmModel Fit(RowMatrix data, RbmOptions? options = null, RowMatrix? validation = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new RbmOptions();
        options.Validate();
        // Before the data is read, copied or checked: a model no file could hold is known from the options and the width.
        ArgumentNullException.ThrowIfNull(data);
        options.PredictModelSize(data.Columns).EnsureFitsAFile();
        var domain = options.VisibleType == RbmVisibleType.Gaussian ? InputDomain.Real : InputDomain.Binary;
        DataValidation.CheckTrainingData(data, domain, DataValidation.TrainingData);
        if (validation is not null) DataValidation.CheckTrainingData(validation, domain, DataValidation.ValidationData, data.Columns);
        int d = data.Columns;
        // The preparation observes the token as it goes (every run of rows, Preparation), as training does.
        var (train, valid) = TrainingLoop.Split(data, validation, options.ValidationFraction, options.Seed, cancellationToken);

        ColumnStandardizer? standardizer = null;
        if (options.VisibleType == RbmVisibleType.Gaussian)
            standardizer = VisibleMap(options.Standardize ? ColumnStandardizer.Fit(train, cancellationToken) : null, d, StartingStdDev(options));
        if (standardizer is not null)
        {
            train = standardizer.Forward(train, cancellationToken);
            if (valid is not null) valid = standardizer.Forward(valid, cancellationToken);
        }

        var machine = new RbmMachine(d, options.HiddenUnits, options.VisibleType);
        // Hinton's guide: small random weights, visible biases at the log-odds of the training marginals, hidden biases 0.
        new RandomStream(options.Seed).Fork(0x1A17).FillGaussian(machine.W, 0f, 0.01f);
        var baseBias = BaseRateBias(train, options.VisibleType, cancellationToken);
        if (options.VisibleType == RbmVisibleType.Bernoulli) baseBias.CopyTo(machine.B, 0);
        var logStdDev = options.LearnsVisibleStdDev ? new float[d] : null;
        var summary = UnscorableValidation.NamingUserRows(() => RbmTrainer.Train(machine, TrainingData.From(train), train, valid, options, progress, cancellationToken, logStdDev),
            data, validation, options.ValidationFraction, options.Seed);
        if (logStdDev is not null) standardizer = FoldLearnedStdDev(standardizer, d, logStdDev, baseBias);
        var model = Normalize(machine, standardizer, baseBias, options, cancellationToken);
        model.TrainingSummary = summary;
        return ModelFile.EnsureTrainedModelLoadable(model);
    }

    /// <summary>
    /// Trains an RBM from a stream of rows (see docs/scaling.md) without holding the data: a pass for the
    /// standardisation (Gaussian units), a pass for the visible marginals, then one pass per epoch through the shuffle
    /// buffer; the monitor reads the first 1,000 training and validation rows, as in memory. Without a validation stream
    /// <see cref="GradientTrainingOptions.ValidationFraction"/> of the rows are held out by a seeded hash of their
    /// position. With a buffer holding the whole pass and no validation split, the model is the one the in-memory Fit
    /// trains on the same rows. A bad value throws <see cref="DataValidationException"/> naming its row and column.
    /// </summary>
    public static RbmModel Fit(IRowStream data, RbmOptions? options, IRowStream? validation, StreamingOptions? streaming,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new RbmOptions();
        options.Validate();
        // Before the data is read, copied or checked: a model no file could hold is known from the options and the width.
        ArgumentNullException.ThrowIfNull(data);
        options.PredictModelSize(data.Width).EnsureFitsAFile();
        var domain = options.VisibleType == RbmVisibleType.Gaussian ? InputDomain.Real : InputDomain.Binary;
        var (train, valid) = StreamingTrainingData.CheckedSplit(data, validation, ref streaming, domain, options.ValidationFraction, options.Seed, cancellationToken);
        ColumnStandardizer? standardizer = null;
        if (options.VisibleType == RbmVisibleType.Gaussian)
            standardizer = VisibleMap(options.Standardize ? ColumnStandardizer.Fit(train, cancellationToken) : null, data.Width, StartingStdDev(options));
        if (standardizer is { } s)
        {
            train = RowStream.Map(train, (rows, n, _) => s.Forward(rows, rows, n));
            if (valid is not null) valid = RowStream.Map(valid, (rows, n, _) => s.Forward(rows, rows, n));
        }
        var machine = new RbmMachine(data.Width, options.HiddenUnits, options.VisibleType);
        new RandomStream(options.Seed).Fork(0x1A17).FillGaussian(machine.W, 0f, 0.01f);
        var (baseBias, monitorTrain) = BaseRateBiasAndHead(train, options.VisibleType, RbmMonitor.MaxRows, cancellationToken);
        if (options.VisibleType == RbmVisibleType.Bernoulli) baseBias.CopyTo(machine.B, 0);
        // The validation stream's first (and only) read is its head: the monitor reads nothing else of it.
        var logStdDev = options.LearnsVisibleStdDev ? new float[data.Width] : null;
        var summary = UnscorableValidation.NamingUserRows(() => RbmTrainer.Train(machine, new StreamingTrainingData(train, streaming), monitorTrain,
            valid is null ? null : RowStream.Head(valid, RbmMonitor.MaxRows, cancellationToken), options, progress, cancellationToken, logStdDev),
            validation, options.ValidationFraction, options.Seed);
        if (logStdDev is not null) standardizer = FoldLearnedStdDev(standardizer, data.Width, logStdDev, baseBias);
        var model = Normalize(machine, standardizer, baseBias, options, cancellationToken);
        model.TrainingSummary = summary;
        return ModelFile.EnsureTrainedModelLoadable(model);
    }

    /// <summary>
    /// Builds a model from given parameters (e.g. trained elsewhere) and computes its log Z as the options say.
    /// Weights are D×H row-major; a Gaussian model works in the units given, with the machine's unit visible variance
    /// (neither <see cref="RbmOptions.Standardize"/> nor <see cref="RbmOptions.VisibleStdDev"/> is read: there are no
    /// data to fit a map on, and the parameters are the model). AIS starts from the
    /// marginals of <paramref name="baseRateData"/> when given, otherwise from the visible biases.
    /// </summary>
    public static RbmModel FromParameters(RbmVisibleType visibleType, float[] weights, float[] visibleBias, float[] hiddenBias,
        RbmOptions? options = null, RowMatrix? baseRateData = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(weights); ArgumentNullException.ThrowIfNull(visibleBias); ArgumentNullException.ThrowIfNull(hiddenBias);
        options ??= new RbmOptions();
        options.Validate();
        int d = visibleBias.Length, h = hiddenBias.Length;
        if (d < 1 || h < 1 || weights.Length != (long)d * h)
            throw new ArgumentException(FormattableString.Invariant($"Weights have {weights.Length} values; {d} visible × {h} hidden units need {(long)d * h}."), nameof(weights));
        foreach (var a in new[] { weights, visibleBias, hiddenBias })
            foreach (var v in a) if (!float.IsFinite(v)) throw new ArgumentException("Parameters must be finite.");
        var machine = new RbmMachine(d, h, visibleType, (float[])weights.Clone(), (float[])visibleBias.Clone(), (float[])hiddenBias.Clone());
        float[] baseBias;
        if (baseRateData is not null)
        {
            DataValidation.CheckTrainingData(baseRateData, visibleType == RbmVisibleType.Gaussian ? InputDomain.Real : InputDomain.Binary, "base-rate data", d);
            baseBias = BaseRateBias(baseRateData, visibleType, cancellationToken);
        }
        else baseBias = (float[])visibleBias.Clone();
        var model = Normalize(machine, null, baseBias, options, cancellationToken);
        if (ModelFile.LoaderRejection(model) is string problem)
            throw new ArgumentException($"The parameters do not make a valid RBM ({problem}).");
        return model;
    }

    /// <summary>
    /// The input map of a Gaussian RBM: the fitted standardisation (mean 0 and scale 1 without it) with every scale
    /// multiplied by <see cref="RbmOptions.VisibleStdDev"/> σ, so the machine's unit-variance visible units have width
    /// σ · scale in the data's units and the map's log-Jacobian carries −log σ per column. Null, as before σ existed,
    /// when nothing is mapped (no standardisation and σ = 1); σ = 1 leaves a fitted map's bits unchanged.
    /// </summary>
    private static ColumnStandardizer? VisibleMap(ColumnStandardizer? standardization, int d, float sigma)
        => sigma == 1f ? standardization : WidenedMap(standardization, d, _ => sigma,
            (c, columnScale, scale) => $"VisibleStdDev = {sigma:R} times column {c}'s scale {columnScale:G6} is {scale:G6}, outside float32's positive finite range; choose a VisibleStdDev nearer 1 or rescale the column.");

    /// <summary><paramref name="map"/> (mean 0 and scale 1 when null) with column c's scale multiplied by
    /// <paramref name="sigmaOf"/>(c): the one fold of a fixed and of a learned width; a product outside float32's positive
    /// finite range is refused in the words of <paramref name="problem"/>(column, its scale, the product).</summary>
    private static ColumnStandardizer WidenedMap(ColumnStandardizer? map, int d, Func<int, float> sigmaOf, Func<int, float, float, FormattableString> problem)
    {
        var mean = map?.Mean.ToArray() ?? new float[d];
        var scale = new float[d];
        for (int c = 0; c < d; c++)
        {
            float columnScale = map?.Scale[c] ?? 1f;
            scale[c] = columnScale * sigmaOf(c);
            if (!(scale[c] > 0) || !float.IsFinite(scale[c]))
                throw new ArgumentException(FormattableString.Invariant(problem(c, columnScale, scale[c])), "options");
        }
        return new ColumnStandardizer(mean, scale);
    }

    /// <summary>The width the stored map starts from: <see cref="RbmOptions.VisibleStdDev"/>, or
    /// <see cref="RbmOptions.LearnedVisibleStdDevStart"/> when σ is learned.</summary>
    private static float StartingStdDev(RbmOptions o) => o.LearnsVisibleStdDev ? RbmOptions.LearnedVisibleStdDevStart : o.VisibleStdDev;

    /// <summary>
    /// Folds a learned width into the input map: column c's scale is multiplied by σ_c = exp(<paramref name="logStdDev"/>[c])
    /// (relative to the map the machine was trained behind), exactly as a fixed σ is folded, so the machine sees the rows
    /// divided by σ as in training and the map's log-Jacobian carries −log σ_c; the file, log Z, AIS and sampling are
    /// those of a fixed width. AIS's base-rate biases (means of the mapped rows) are divided by σ the same way.
    /// </summary>
    private static ColumnStandardizer FoldLearnedStdDev(ColumnStandardizer? map, int d, float[] logStdDev, float[] baseBias)
    {
        for (int c = 0; c < d; c++) baseBias[c] /= MathF.Exp(logStdDev[c]);
        return WidenedMap(map, d, c => MathF.Exp(logStdDev[c]),
            (c, columnScale, scale) => $"The learned visible width {MathF.Exp(logStdDev[c]):G6} of column {c} times its scale {columnScale:G6} is {scale:G6}, outside float32's positive finite range; rescale the column or set VisibleStdDev.");
    }

    private static RbmModel Normalize(RbmMachine machine, ColumnStandardizer? standardizer, float[] baseBias, RbmOptions o, CancellationToken ct)
    {
        int smaller = machine.Gaussian ? machine.H : Math.Min(machine.D, machine.H);
        if (smaller <= o.ExactLogPartitionMaxUnits)
        {
            double logZ = machine.ExactLogPartition(enumerateVisible: !machine.Gaussian && machine.D < machine.H);
            return new RbmModel(machine, standardizer, LogPartitionMethod.Exact, logZ, 0, logZ, logZ, 0, 0,
                o.SamplingBurnIn, o.SamplingThinning, o.SamplingChains);
        }
        var ais = machine.EstimateLogPartitionAis(baseBias, o.AisRuns, RbmMachine.DefaultAisSchedule(o.AisTemperatures),
            new RandomStream(o.Seed).Fork(0xA15), ct);
        if (!double.IsFinite(ais.LogZ)) throw new TrainingDivergedException("AIS produced a non-finite log Z estimate.");
        return new RbmModel(machine, standardizer, LogPartitionMethod.AnnealedImportanceSampling, ais.LogZ, ais.StandardError,
            ais.LogZLower, ais.LogZUpper, o.AisRuns, o.AisTemperatures, o.SamplingBurnIn, o.SamplingThinning, o.SamplingChains);
    }

    /// <summary>AIS base-rate visible biases: log-odds of smoothed training marginals (Bernoulli) or column means (Gaussian).</summary>
    /// <summary>The base rates of rows in memory, read in place (the bits of the streamed pass, which copies each block
    /// of rows first).</summary>
    private static float[] BaseRateBias(RowMatrix data, RbmVisibleType type, CancellationToken cancellationToken)
    {
        var sums = new double[data.Columns];
        Preparation.AddColumnSums(data, sums, null, cancellationToken);
        return BaseRateBias(sums, data.Rows, type);
    }

    /// <summary>The base rates of a stream, and its first <paramref name="headRows"/> rows (the monitor's training
    /// rows) kept from the same pass. A pass of its own for those rows, left before its end, was compared with the first
    /// pass only by its length: a source that changed in that pass alone gave the monitor other rows unnoticed.</summary>
    private static (float[] Bias, RowMatrix Head) BaseRateBiasAndHead(IRowStream data, RbmVisibleType type, int headRows, CancellationToken cancellationToken)
    {
        int d = data.Width;
        var sums = new double[d];
        var head = Array.Empty<float>();
        int kept = 0;
        long n = RowStream.ForEachBlock(data, (rows, count) =>
        {
            RowOps.AddColumnSumsAsDouble(rows, count, sums);
            int take = Math.Min(count, headRows - kept);
            if (take <= 0) return;
            if ((long)(kept + take) * d > head.Length) head = RowStream.Grown(head, kept + take, headRows, d, nameof(headRows));
            rows[..(take * d)].CopyTo(head.AsSpan(kept * d));
            kept += take;
        }, cancellationToken);
        return (BaseRateBias(sums, n, type), new RowMatrix(head, kept, d));
    }

    private static float[] BaseRateBias(double[] sums, long n, RbmVisibleType type)
    {
        int d = sums.Length;
        if (n == 0) throw DataValidation.NoRowsIn(DataValidation.TrainingData);
        var bias = new float[d];
        for (int c = 0; c < d; c++)
        {
            if (type == RbmVisibleType.Gaussian) { bias[c] = (float)(sums[c] / n); continue; }
            double p = (sums[c] + 0.05) / (n + 0.1); // smoothed so constant pixels keep finite log-odds
            bias[c] = (float)Math.Log(p / (1 - p));
        }
        return bias;
    }

    /// <summary>
    /// Free energy F(x) of each row (the unnormalised score: log p(x) = −F(x) − log Z + log-Jacobian). For Gaussian units
    /// it is the free energy of the standardised row. Always exact, whatever the method of log Z.
    /// </summary>
    public void FreeEnergy(ReadOnlySpan<float> rows, Span<float> freeEnergy) => FreeEnergy(rows, freeEnergy, CancellationToken.None);

    /// <summary>
    /// <see cref="FreeEnergy(ReadOnlySpan{float}, Span{float})"/> that can be cancelled, as
    /// <see cref="DensityModel.LogDensity(ReadOnlySpan{float}, Span{float}, Span{float}, CancellationToken)"/>: the rows
    /// are validated first, then scored in groups of <see cref="DensityModel.RowsPerCancellationCheck"/> rows with a check
    /// of <paramref name="cancellationToken"/> before each (<see cref="OperationCanceledException"/>; the destination then
    /// holds the groups done). A group is a whole number of scoring blocks and a row's free energy does not depend on the
    /// rows around it, so the values are bit for bit those of one call.
    /// </summary>
    public void FreeEnergy(ReadOnlySpan<float> rows, Span<float> freeEnergy, CancellationToken cancellationToken)
        => FreeEnergy(rows, freeEnergy, cancellationToken, RowsPerCancellationCheck, null);

    /// <summary>The cancellable free energy with its group size and a hook after every group
    /// (<see cref="DensityModel.ScoreInGroups"/>; tests use both).</summary>
    internal void FreeEnergy(ReadOnlySpan<float> rows, Span<float> freeEnergy, CancellationToken cancellationToken,
        int rowsPerCheck, Action<int>? groupDone)
    {
        int count = DataValidation.CheckRows(rows, Dimension, InputDomain, "rows");
        if (freeEnergy.Length < count) throw new ArgumentException(FormattableString.Invariant($"Destination has {freeEnergy.Length} slots for {count} rows."), nameof(freeEnergy));
        cancellationToken.ThrowIfCancellationRequested();
        if (count == 0) return;
        // Without a token that can be cancelled: one call, as before the token existed (and no delegate made).
        if (!cancellationToken.CanBeCanceled) RunBlocks(rows, count, freeEnergy[..count], 0f, 1f);
        else ScoreInGroups(rows, count, freeEnergy, default, rowsPerCheck, cancellationToken, (group, n, output, _) => RunBlocks(group, n, output, 0f, 1f), groupDone);
    }

    /// <summary>Free energies of the rows as a new array.</summary>
    public float[] FreeEnergy(RowMatrix rows) => FreeEnergy(rows, CancellationToken.None);

    /// <summary>Free energies of the rows as a new array; cancellable (see
    /// <see cref="FreeEnergy(ReadOnlySpan{float}, Span{float}, CancellationToken)"/>).</summary>
    public float[] FreeEnergy(RowMatrix rows, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Columns != Dimension) throw new DataValidationException(-1, -1, FormattableString.Invariant($"the data has {rows.Columns} columns but the model expects {Dimension}"), null) { Kind = DataProblemKind.WrongSize };
        var result = new float[rows.Rows];
        FreeEnergy(rows.AsSpan(), result, cancellationToken);
        return result;
    }

    /// <inheritdoc />
    protected override void LogDensityCore(ReadOnlySpan<float> rows, int count, Span<float> logDensity, Span<float> standardError)
    {
        double offset = -LogPartition + (_standardizer?.LogJacobian ?? 0);
        RunBlocks(rows, count, logDensity, offset, -1f);
        if (!standardError.IsEmpty && LogPartitionMethod != LogPartitionMethod.Exact) standardError.Fill((float)LogPartitionStandardError);
    }

    /// <summary>dest = sign·F(x) + offset, scored in parallel blocks of rows.</summary>
    private void RunBlocks(ReadOnlySpan<float> rows, int count, Span<float> dest, double offset, float sign)
    {
        int d = Dimension;
        // One block (a PredictionEngine row, a model loaded into ML.NET): no closure, and the block may parallelise inside.
        var quantizedW = QuantizedWeights();
        var tableW = quantizedW is null ? TableWeights() : null;
        // The table product runs on the calling thread: from a few rows a thread, the rows are split between threads.
        if (tableW is not null && count >= MinRowsPerTableBlock * 2) ScoreTableBlocks(rows, count, dest, offset, sign, tableW);
        else if (count <= RowsPerScoringBlock) ScoreBlock(rows[..(count * d)], count, dest, offset, sign, parallel: true, quantizedW: quantizedW, tableW: tableW);
        else ScoreBlocks(rows, count, dest, offset, sign, quantizedW);
    }

    /// <summary>
    /// [W | b] quantized once for <see cref="BinaryTableProduct"/>, when this is a Bernoulli RBM on an AVX-512 CPU without
    /// AMX (decided on the calling thread, as <see cref="QuantizedWeights"/>); null otherwise.
    /// </summary>
    private BinaryTableProduct.Operand? TableWeights()
        => QuantizedOnce(ref _tableW, BinaryTableProduct.IsUsable, static (RbmMachine m, ref BinaryTableProduct.Operand? r) => m.QuantizeForScoring(ref r));

    private BinaryTableProduct.Operand? _tableW;

    /// <summary>Rows per block of the table product at most: its tables are built once per block and strip, so blocks are
    /// large (each thread takes about its share of the call), within a bounded scratch (2,048 rows of H + 1 floats).</summary>
    private const int MaxRowsPerTableBlock = 2048;
    /// <summary>Rows a thread takes at least (a split of fewer costs more in synchronisation than it saves).</summary>
    private const int MinRowsPerTableBlock = 16;

    // Its own method, as ScoreBlocks: the lambda's captures are allocated only here.
    private void ScoreTableBlocks(ReadOnlySpan<float> rows, int count, Span<float> dest, double offset, float sign, BinaryTableProduct.Operand tableW)
    {
        // Equal blocks, a whole number of them per thread (the results do not depend on the partition: exact sums).
        int threads = Math.Max(1, Environment.ProcessorCount);
        int blocks = (count + MaxRowsPerTableBlock - 1) / MaxRowsPerTableBlock;
        blocks = (blocks + threads - 1) / threads * threads;
        int blockRows = Math.Max(MinRowsPerTableBlock, (count + blocks - 1) / blocks);
        DeepDensityEnvironment.ForRowBlocks(rows, Dimension, count, dest, blockRows,
            (_, block, n, output) => ScoreBlock(block, n, output, offset, sign, parallel: false, tableW: tableW));
    }

    /// <summary>
    /// [W | b] quantized once for <see cref="BinaryGemm"/>, when this is a Bernoulli RBM and the CPU has AMX (decided on the
    /// calling thread, so a test that forces a kernel path gets the float GEMM); null otherwise. The weights of a model
    /// never change after it is made, so one quantization serves every call.
    /// </summary>
    private BinaryGemm.QuantizedOperand? QuantizedWeights()
        => QuantizedOnce(ref _quantizedW, BinaryGemm.IsUsable, static (RbmMachine m, ref BinaryGemm.QuantizedOperand? r) => m.QuantizeForScoring(ref r));

    private delegate bool Quantize<T>(RbmMachine machine, ref T? result) where T : class;

    /// <summary>The operand in <paramref name="field"/>, made by <paramref name="quantize"/> on first use: null for a
    /// Gaussian RBM, when the product is not <paramref name="usable"/> on this thread, or when the weights are not finite.
    /// Concurrent first calls may each quantize; the first stored wins (the values are the same).</summary>
    private T? QuantizedOnce<T>(ref T? field, bool usable, Quantize<T> quantize) where T : class
    {
        if (Machine.Gaussian || !usable) return null;
        var q = Volatile.Read(ref field);
        if (q is not null) return q;
        T? made = null;
        if (!quantize(Machine, ref made)) return null;
        return Interlocked.CompareExchange(ref field, made, null) ?? made;
    }

    private BinaryGemm.QuantizedOperand? _quantizedW;

    // Its own method: a lambda's captures are allocated on entry to the method that declares them, even on the one-block path.
    // W is packed once for all the call's blocks (as training packs it once per step), not once per block by each GEMM.
    private void ScoreBlocks(ReadOnlySpan<float> rows, int count, Span<float> dest, double offset, float sign, BinaryGemm.QuantizedOperand? quantizedW)
    {
        Gemm.PackedOperand? packed = null;
        OnesGemm.Panels? ones = null;
        if (quantizedW is null)
        {
            packed = Interlocked.Exchange(ref _packedW, null); // a concurrent call packs its own
            Gemm.Pack(false, Machine.D, Machine.H, Machine.W, Machine.H, ref packed);
            // 0/1 rows without AMX: W for OnesGemm too (a block whose rows have too many ones takes the GEMM).
            ones = Interlocked.Exchange(ref _onesW, null);
            if (Machine.Gaussian || !OnesGemm.TryPack(Machine.W, Machine.D, Machine.H, Machine.H, ref ones)) ones = null;
        }
        DeepDensityEnvironment.ForRowBlocks(rows, Dimension, count, dest, RowsPerScoringBlock,
            (_, block, n, output) => ScoreBlock(block, n, output, offset, sign, parallel: false, packed, quantizedW, ones));
        if (packed is not null) _packedW = packed;
        if (ones is not null) _onesW = ones;
    }

    /// <summary>W packed for OnesGemm, kept between multi-block calls like <see cref="_packedW"/>.</summary>
    private OnesGemm.Panels? _onesW;

    /// <summary>W packed for the GEMM, kept between multi-block calls (repacked by each: cheap next to the blocks' products,
    /// and correct whatever changed the weights).</summary>
    private Gemm.PackedOperand? _packedW;

    private void ScoreBlock(ReadOnlySpan<float> block, int n, Span<float> output, double offset, float sign, bool parallel,
        Gemm.PackedOperand? packedW = null, BinaryGemm.QuantizedOperand? quantizedW = null, OnesGemm.Panels? onesW = null,
        BinaryTableProduct.Operand? tableW = null)
    {
        // Made for a whole block (one row's scratch would be dropped by the next block and made again).
        var s = _scratch.Rent(static (s, want) => s.Rows >= want.n,
            static want => new ScoringScratch(want.model.Machine, want.model.Dimension, want.model._standardizer is not null,
                want.n == 1 ? 1 : Math.Max(want.n, RowsPerScoringBlock)), (model: this, n));
        try
        {
            ReadOnlySpan<float> x = block;
            if (_standardizer is not null)
            {
                var standardized = s.Standardized.AsSpan(0, n * Dimension);
                _standardizer.Forward(block, standardized, n);
                x = standardized;
            }
            var f = s.FreeEnergy.AsSpan(0, n);
            Machine.FreeEnergy(x, n, f, parallel, s.Pre, s.Scratch, packedW, quantizedW, onesW, tableW);
            for (int i = 0; i < n; i++) output[i] = (float)(sign * f[i] + offset);
        }
        finally { _scratch.Return(s); }
    }

    /// <summary>Scoring buffers of this model, one per concurrently scoring thread, reused across calls (a one-row call
    /// allocates nothing) and released with the model.</summary>
    private readonly Numerics.ScratchPool<ScoringScratch> _scratch = new();

    private sealed class ScoringScratch(RbmMachine m, int d, bool standardized, int rows)
    {
        public readonly int Rows = rows;
        // Pre has a column more than H for the exact product's visible term (see RbmMachine.QuantizeForScoring).
        public readonly float[] Standardized = new float[standardized ? rows * d : 0], Pre = new float[rows * (m.H + 1)], Scratch = new float[Math.Max(m.H, d)];
        public readonly double[] FreeEnergy = new double[rows];
    }

    /// <inheritdoc />
    protected internal override void WritePayload(ModelWriter w)
    {
        w.WriteEnum(Machine.VisibleType);
        w.WriteInt32(Machine.D); w.WriteInt32(Machine.H);
        w.WriteSingles(Machine.W); w.WriteSingles(Machine.B); w.WriteSingles(Machine.C);
        w.WriteBoolean(_standardizer is not null);
        _standardizer?.Write(w);
        w.WriteEnum(LogPartitionMethod);
        w.WriteDouble(LogPartition); w.WriteDouble(LogPartitionStandardError);
        w.WriteDouble(LogPartitionInterval.Lower); w.WriteDouble(LogPartitionInterval.Upper);
        w.WriteInt32(AisRuns); w.WriteInt32(AisTemperatures);
        w.WriteInt32(SamplingBurnIn); w.WriteInt32(SamplingThinning); w.WriteInt32(SamplingChains);
    }

    internal static DensityModel ReadPayload(ModelReader r, int version)
    {
        if (version != 1) throw r.Corrupt(FormattableString.Invariant($"payload version {version} is not supported (expected 1)"));
        var type = r.ReadEnum<RbmVisibleType>("visible type");
        int d = r.ReadInt32("visible units", 1, MaxVisibleUnits);
        int h = r.ReadInt32("hidden units", 1, RbmOptions.MaxHiddenUnits);
        if ((long)d * h * 4 > r.Remaining) throw r.Corrupt("declared sizes exceed the payload");
        var machine = new RbmMachine(d, h, type, r.ReadParameters("W", d * h), r.ReadParameters("b", d), r.ReadParameters("c", h));
        ColumnStandardizer? std = r.ReadBoolean() ? ColumnStandardizer.Read(r, d) : null;
        if (std is not null && type != RbmVisibleType.Gaussian) throw r.Corrupt("a Bernoulli RBM cannot have a standardizer");
        var method = r.ReadEnum<LogPartitionMethod>("log-partition method");
        double logZ = r.ReadDouble(), se = r.ReadDouble(), lo = r.ReadDouble(), hi = r.ReadDouble();
        // Scoring reports −log Z and the standard error as float32: both must be finite there, not only in float64,
        // except an AIS standard error of +∞ (unknown: the runs' weights had too few effective samples; files before it
        // hold a finite one).
        if (!float.IsFinite((float)logZ)) throw r.Corrupt(FormattableString.Invariant($"log Z = {logZ} is not a finite float32"));
        bool unknownError = double.IsPositiveInfinity(se) && method == LogPartitionMethod.AnnealedImportanceSampling;
        if (!(se >= 0) || !(float.IsFinite((float)se) || unknownError))
            throw r.Corrupt(FormattableString.Invariant($"the standard error of log Z = {se} is neither a finite non-negative float32 nor +∞ (unknown) for an AIS estimate"));
        if (!(lo <= logZ && logZ <= hi) || double.IsPositiveInfinity(hi)) throw r.Corrupt(FormattableString.Invariant($"the log Z interval [{lo}, {hi}] does not contain log Z = {logZ}"));
        int runs = r.ReadInt32("AIS runs", 0, RbmOptions.MaxAisRuns), temps = r.ReadInt32("AIS temperatures", 0, RbmOptions.MaxAisTemperatures);
        if (method == LogPartitionMethod.Exact && (se != 0 || lo != logZ || hi != logZ || runs != 0 || temps != 0))
            throw r.Corrupt("an exact log Z has a standard error, an interval or AIS settings");
        if (method == LogPartitionMethod.AnnealedImportanceSampling && (runs < 2 || temps < 2))
            throw r.Corrupt(FormattableString.Invariant($"an AIS estimate of log Z with {runs} runs and {temps} temperatures (at least 2 of each)"));
        int burnIn = r.ReadInt32("sampling burn-in", 0, RbmOptions.MaxSamplingBurnIn);
        int thinning = r.ReadInt32("sampling thinning", 1, RbmOptions.MaxSamplingThinning);
        int chains = r.ReadInt32("sampling chains", 1, RbmOptions.MaxSamplingChains);
        return new RbmModel(machine, std, method, logZ, se, lo, hi, runs, temps, burnIn, thinning, chains);
    }
}
