using System.Runtime.CompilerServices;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.RnnRnade;

/// <summary>
/// RNN-RNADE (the RNADE of Uria, Murray &amp; Larochelle 2013 conditioned on a recurrent state, after the RNN-RBM): an
/// exact density of variable-length sequences of real D-dimensional frames, p(x_1..x_T) = Π_t p(x_t | x_&lt;t), each
/// conditional an RNADE whose output biases (and optionally hidden bias) are shifted by the state ĥ_{t−1}.
/// </summary>
public sealed class RnnRnadeModel : SequenceDensityModel
{
    /// <summary>Model-kind name in saved files.</summary>
    public const string Kind = "RnnRnade";
    /// <summary>Registers this kind with the model file when the assembly loads (models register themselves; no central list).</summary>
    [ModuleInitializer]
    internal static void RegisterKind() => ModelRegistry.Register(Kind, ReadPayload);
    private const int ScoringSequencesPerBlock = 16, ScoringFramesPerChunk = 64, SamplingSequencesPerBlock = 32;

    internal readonly RnnRnadeNetwork Network;
    private readonly ColumnStandardizer _standardizer;

    internal RnnRnadeModel(RnnRnadeNetwork network, ColumnStandardizer standardizer)
    {
        Network = network; _standardizer = standardizer;
        _scoringScratch = new(() => new ScoringScratch(Network));
    }

    /// <inheritdoc />
    public override string ModelKind => Kind;
    /// <inheritdoc />
    public override int FrameSize => Network.D;
    /// <inheritdoc />
    public override DensityKind DensityKind => DensityKind.Exact;

    /// <summary>Hidden units H of the per-frame RNADE.</summary>
    public int HiddenUnits => Network.Rnade.H;
    /// <summary>Mixture components K per conditional.</summary>
    public int Components => Network.Rnade.K;
    /// <summary>Units of the recurrent state.</summary>
    public int RecurrentUnits => Network.R;
    /// <summary>RNADE hidden non-linearity.</summary>
    public Activation Activation => Network.Rnade.Activation;
    /// <summary>Whether the recurrent state also shifts the RNADE hidden bias.</summary>
    public bool ConditionsHiddenBias => Network.ConditionsHiddenBias;
    /// <summary>Per-component frame standardisation (fitted on the training frames).</summary>
    public ColumnStandardizer Standardizer => _standardizer;

    /// <summary>Trains on <paramref name="data"/>; without <paramref name="validation"/>, a seeded fraction of the
    /// sequences is held out for early stopping on the validation log-likelihood per frame.</summary>
    public static RnnRnadeModel Fit(SequenceBatch data, RnnRnadeOptions? options = null, SequenceBatch? validation = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new RnnRnadeOptions();
        options.Validate();
        ArgumentNullException.ThrowIfNull(data);
        int d = data.FrameSize;
        options.PredictModelSize(d).EnsureFitsAFile(); // before the sequences are checked, copied and standardised
        DataValidation.CheckTrainingData(data, InputDomain.Real, DataValidation.TrainingSequences, d);
        if (validation is not null) DataValidation.CheckTrainingData(validation, InputDomain.Real, DataValidation.ValidationSequences, d);
        // The preparation observes the token as it goes (every run of frames, Preparation), as training does. The parts are
        // read in place or selected once (they were selected, then copied again whole: two copies without a check).
        Preparation.Check(cancellationToken);
        var split = HeldOutSplit(data, validation is not null, options);
        var trainSequences = split.Train is null ? split.Examples : split.Examples.Select(split.Train, cancellationToken);
        var validSequences = validation ?? (split.HeldOut is null ? null : split.Examples.Select(split.HeldOut, cancellationToken));
        var train = InWindows(trainSequences, options.TrainingWindow);
        // The frames in place (a RowMatrix reads only its rows × columns values): the standardiser's sums read them once.
        var trainFrames = new RowMatrix(train.Values, train.TotalFrames, d);
        var standardizer = options.Standardize ? ColumnStandardizer.Fit(trainFrames, cancellationToken) : ColumnStandardizer.Identity(d);
        var modelTrain = Standardized(train, standardizer, cancellationToken);
        var modelValid = validSequences is null ? null : Standardized(validSequences, standardizer, cancellationToken);

        var rnade = new RnadeNetwork(d, options.HiddenUnits, options.Components, options.Activation);
        var root = new RandomStream(options.Seed);
        rnade.Initialize(root.Fork(0x1A17), RnadeModel.ColumnQuantiles(new RowMatrix(modelTrain.Values, train.TotalFrames, d), options.Components, cancellationToken));
        var network = new RnnRnadeNetwork(rnade, options.RecurrentUnits, options.ConditionHiddenBias);
        network.InitializeRecurrence(root.Fork(0x2E7));
        var objective = new RnnRnadeObjective(network, options.SequencesPerBlock, options.FramesPerChunk,
            options.ScaleMeanGradientBySigma, standardizer.LogJacobian, cancellationToken);
        TrainingSummary summary;
        try
        {
            summary = TrainingLoop.Run(new PerFrameObjective(objective), TrainingData.From(modelTrain),
                modelValid is null ? null : TrainingData.From(modelValid), options, progress, cancellationToken);
        }
        catch (DataValidationException e) when (UnscorableValidation.Is(e) && validation is null) { throw HeldOutError(e, data, split, options.ValidationFraction); }
        return ModelFile.EnsureTrainedModelLoadable(new RnnRnadeModel(network, standardizer) { TrainingSummary = summary });
    }

    /// <summary>An unmeasurable held-out example (<see cref="UnscorableValidation"/>) as the training sequence and frame it
    /// was taken from: a held-out sequence is itself, a held-out window the sequence it was cut from.</summary>
    private static DataValidationException HeldOutError(DataValidationException e, SequenceBatch data, Split split, double fraction)
    {
        if (split.HeldOut is not { } heldOut || e.Row < 0 || e.Row >= heldOut.Length) return e;
        int example = heldOut[e.Row], frame = Math.Max(0, UnscorableValidation.Frame(e));
        if (ReferenceEquals(split.Examples, data))
            return UnscorableValidation.HeldOutSequence(example, frame, fraction, "of a sequence held out for validation");
        // Windows share the sequences' values: a window's first frame is a frame of the sequence that holds it.
        int at = split.Examples.Offsets[example] + frame;
        int sequence = Array.BinarySearch(data.Offsets, at);
        sequence = sequence >= 0 ? sequence : ~sequence - 1;
        return UnscorableValidation.HeldOutSequence(sequence, at - data.Offsets[sequence], fraction, "of a training window held out for validation");
    }

    /// <summary>The training examples <see cref="Fit"/> on <paramref name="data"/> trains on in an epoch: the sequences,
    /// each one longer than <see cref="RnnRnadeOptions.TrainingWindow"/> counted as the windows it is cut into, less those
    /// held out for early stopping when no validation sequences are given (<paramref name="withValidation"/> false), by
    /// the same seeded split Fit makes. <c>options.EpochsFor</c> of it is the most epochs the fit runs
    /// (<see cref="RnnRnadeOptions.EpochsFor"/>), e.g. the length of a progress bar.</summary>
    /// <param name="data">The training sequences, as Fit would be given them (the split depends on their order).</param>
    /// <param name="options">The options Fit would be given (the split depends on the seed, the fraction and the window).</param>
    /// <param name="withValidation">Whether Fit is given validation sequences (then nothing is held out).</param>
    /// <returns>The number of training sequences and windows.</returns>
    public static long TrainingExamples(SequenceBatch data, RnnRnadeOptions options, bool withValidation)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var split = HeldOutSplit(data, withValidation, options);
        if (split.Train is null) return TrainingExamples(split.Examples, options.TrainingWindow);
        long count = 0;
        foreach (int i in split.Train) count += Windows(split.Examples.Length(i), options.TrainingWindow);
        return count;
    }

    /// <summary>The examples <see cref="Fit"/> on <paramref name="data"/> holds out for early stopping when it is given no
    /// validation sequences, by the one split Fit makes (<see cref="HeldOutSplit"/>, its ValidationFraction, Seed and
    /// TrainingWindow): <c>Examples</c> is <paramref name="data"/> when whole sequences are held out, or its training
    /// windows (<see cref="InWindows"/>: the same values and frame numbering) when there are too few sequences to split;
    /// <c>HeldOut</c> the held-out examples' indices among them, in increasing order, empty when none is held out. The
    /// frames a model trained without validation sequences never trained on: the ML.NET estimators learn the anomaly
    /// thresholds on them, as on <see cref="TrainingLoop.HeldOutRows"/> for the row models.</summary>
    internal static (SequenceBatch Examples, int[] HeldOut) HeldOutExamples(SequenceBatch data, RnnRnadeOptions options)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        var split = HeldOutSplit(data, withValidation: false, options);
        return (split.Examples, split.HeldOut ?? Array.Empty<int>());
    }

    /// <summary>The examples Fit splits for early stopping (the sequences, or their training windows) and the indices
    /// among them of the training and the held-out ones (both null: every example trains).</summary>
    private readonly record struct Split(SequenceBatch Examples, int[]? Train, int[]? HeldOut);

    /// <summary>
    /// Fit's held-out split, the one rule behind both Fit and <see cref="TrainingExamples(SequenceBatch, RnnRnadeOptions, bool)"/>:
    /// nothing when validation sequences are given or <see cref="GradientTrainingOptions.ValidationFraction"/> is 0; else
    /// a seeded fraction of whole sequences when there are enough to split (ten at the default tenth), and when there are
    /// too few (one long series) of the training windows instead, so that early stopping still has held-out frames.
    /// </summary>
    private static Split HeldOutSplit(SequenceBatch data, bool withValidation, RnnRnadeOptions options)
    {
        if (withValidation || options.ValidationFraction <= 0) return new(data, null, null);
        if (TrainingLoop.SplitIndices(data.Count, options.ValidationFraction, options.Seed) is { } sequences)
            return new(data, sequences.Train, sequences.Validation);
        if (options.TrainingWindow > 0)
        {
            var windows = InWindows(data, options.TrainingWindow);
            if (windows.Count > data.Count && TrainingLoop.SplitIndices(windows.Count, options.ValidationFraction, options.Seed) is { } cut)
                return new(windows, cut.Train, cut.Validation);
        }
        return new(data, null, null);
    }

    /// <summary>
    /// The sequences cut into training windows of at most <paramref name="window"/> frames (0: the sequences as they are):
    /// a sequence of L frames becomes ⌈L / window⌉ consecutive windows whose lengths differ by at most one (the longer
    /// ones first), so no window is a stub of a frame or two. The windows share <paramref name="sequences"/>' values.
    /// </summary>
    internal static SequenceBatch InWindows(SequenceBatch sequences, int window)
    {
        if (window <= 0) return sequences;
        long count = TrainingExamples(sequences, window);
        if (count == sequences.Count) return sequences;
        var offsets = new int[checked((int)count + 1)];
        int k = 0;
        for (int i = 0; i < sequences.Count; i++)
        {
            int length = sequences.Length(i), pieces = (int)Windows(length, window);
            int shortLength = length / pieces, longer = length % pieces, at = sequences.Offsets[i];
            for (int p = 0; p < pieces; p++) { at += shortLength + (p < longer ? 1 : 0); offsets[++k] = at; }
        }
        return new SequenceBatch(sequences.Values, offsets, sequences.FrameSize);
    }

    /// <summary>The training examples <paramref name="sequences"/> make with <paramref name="window"/>: the sequences,
    /// each longer one counted as the windows it is cut into.</summary>
    public static long TrainingExamples(SequenceBatch sequences, int window)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        if (window <= 0) return sequences.Count;
        long count = 0;
        for (int i = 0; i < sequences.Count; i++) count += Windows(sequences.Length(i), window);
        return count;
    }

    /// <summary>The training windows a sequence of <paramref name="length"/> frames is cut into (1 when it is not cut).</summary>
    private static long Windows(int length, int window) => window <= 0 ? 1 : (length + (long)window - 1) / window;

    /// <summary>What <see cref="RnnRnadeOptions.TrainingWindow"/> does to <paramref name="sequences"/>, in words for a
    /// log ("2 sequences longer than 64 frames are cut into 140 training windows of 62–64 frames"), or null when none is cut.</summary>
    public static string? WindowsNote(SequenceBatch sequences, int window)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        if (window <= 0) return null;
        int longer = 0, shortest = window, longest = 0;
        long pieces = 0;
        for (int i = 0; i < sequences.Count; i++)
        {
            int length = sequences.Length(i);
            if (length <= window) continue;
            int n = (int)Windows(length, window);   // as InWindows cuts it: lengths ⌊L/n⌋ and ⌈L/n⌉
            longer++; pieces += n; shortest = Math.Min(shortest, length / n); longest = Math.Max(longest, (length + n - 1) / n);
        }
        if (longer == 0) return null;
        return FormattableString.Invariant($"training windows: {longer} sequence{(longer == 1 ? "" : "s")} longer than {window} frames cut into {pieces} windows of ") +
               $"{(shortest == longest ? FormattableString.Invariant($"{longest}") : FormattableString.Invariant($"{shortest}–{longest}"))} frames (TrainingWindow; 0 trains whole sequences)";
    }

    private static SequenceBatch Standardized(SequenceBatch raw, ColumnStandardizer standardizer, CancellationToken cancellationToken)
    {
        var values = new float[raw.TotalFrames * raw.FrameSize];
        standardizer.Forward(raw.Values, values, raw.TotalFrames, cancellationToken);
        return new SequenceBatch(values, raw.Offsets[..(raw.Count + 1)], raw.FrameSize);
    }

    /// <summary>The sequence objective on the shared driver. Objectives are returned as sum × sequences / frames, so the
    /// driver's mean per example — and every reported log-likelihood — is the log-likelihood per frame.</summary>
    private sealed class PerFrameObjective(RnnRnadeObjective objective) : IBatchGradientObjective
    {
        private int[] _all = Array.Empty<int>();
        public ParameterSet Parameters => objective.Parameters;
        public double ComputeGradient(TrainingBatch batch, RandomStream random) => Run(batch, true);
        public double Evaluate(TrainingBatch batch, RandomStream random) => Run(batch, false);
        private double Run(TrainingBatch batch, bool gradient)
        {
            var s = batch.Sequences!;
            if (_all.Length < s.Count) _all = Enumerable.Range(0, s.Count).ToArray();
            return objective.Run(s.Values, s.Offsets, _all.AsSpan(0, s.Count), gradient) * s.Count / s.TotalFrames;
        }
    }

    /// <summary>log p(x_t | x_&lt;t) of every frame of validated sequences (raw values) into <paramref name="frameLogDensity"/>:
    /// fixed blocks of sequences in parallel, each packed, standardised in place and run in a scratch block of this model's
    /// pool (nothing allocated per sequence once warm), its frames written straight to the output.</summary>
    protected override unsafe void FrameLogDensityCore(SequenceBatch sequences, Span<float> frameLogDensity)
    {
        int count = sequences.Count;
        float logJacobian = (float)_standardizer.LogJacobian;
        int blocks = (count + ScoringSequencesPerBlock - 1) / ScoringSequencesPerBlock;
        fixed (float* output = frameLogDensity)
        {
            nint address = (nint)output;
            DeepDensityEnvironment.For(0, blocks, b =>
            {
                int start = b * ScoringSequencesPerBlock, n = Math.Min(ScoringSequencesPerBlock, count - start);
                var s = _scoringScratch.Rent();
                try
                {
                    var indices = s.Indices.AsSpan(0, n);
                    for (int i = 0; i < n; i++) indices[i] = start + i;
                    var block = s.Block;
                    block.Pack(sequences.Values, sequences.Offsets, indices);
                    var x = block.X.AsSpan(0, block.Frames * FrameSize);
                    _standardizer.Forward(x, x, block.Frames); // elementwise: in place is exact
                    Network.Run(block, 0f, false);
                    for (int row = 0; row < block.Frames; row++) ((float*)address)[block.RowFrame[row]] = block.LogP[row] + logJacobian;
                }
                finally { _scoringScratch.Return(s); }
            });
        }
    }

    /// <summary>One scoring block's buffers (<see cref="Numerics.ScratchPool{T}"/>).</summary>
    private sealed class ScoringScratch(RnnRnadeNetwork network)
    {
        public readonly RnnRnadeNetwork.Block Block = new(network, ScoringFramesPerChunk, forTraining: false);
        public readonly int[] Indices = new int[ScoringSequencesPerBlock];
    }

    private readonly Numerics.ScratchPool<ScoringScratch> _scoringScratch;

    /// <summary>Starts scoring one sequence frame by frame (online scoring and one-step-ahead prediction).</summary>
    public RnnRnadeStream StartStream() => new(this);

    /// <summary>A stream that scores in <paramref name="shared"/> (<see cref="NewStreamWorkspace"/>), which the streams one
    /// thread scores in turn share: each then holds its recurrent state alone.</summary>
    internal RnnRnadeStream StartStream(RnnRnadeStream.Workspace shared) => new(this, shared);

    /// <summary>The scratch of <see cref="StartStream(RnnRnadeStream.Workspace)"/>.</summary>
    internal RnnRnadeStream.Workspace NewStreamWorkspace() => new(Network);

    /// <summary>
    /// One-step-ahead predictive log-density log p(y_i | prefix_i) of candidate frames <paramref name="nextFrames"/>
    /// (count × FrameSize, one per prefix) after each prefix.
    /// </summary>
    public void PredictiveLogDensity(SequenceBatch prefixes, ReadOnlySpan<float> nextFrames, Span<float> logDensity)
        => PredictiveLogDensity(prefixes, nextFrames, logDensity, CancellationToken.None);

    /// <summary>
    /// <see cref="PredictiveLogDensity(SequenceBatch, ReadOnlySpan{float}, Span{float})"/> that can be cancelled, as
    /// <see cref="SequenceDensityModel.LogDensity(SequenceBatch, Span{float}, Span{float}, CancellationToken)"/>: the
    /// prefixes and frames are validated first, then scored in groups of whole prefixes (each with its candidate frame) of
    /// up to <see cref="SequenceDensityModel.FramesPerCancellationCheck"/> frames, a longer one a group of its own, with a
    /// check of <paramref name="cancellationToken"/> before each (<see cref="OperationCanceledException"/>). A prefix's
    /// score does not depend on the prefixes scored with it, so the values are bit for bit those of one call.
    /// </summary>
    public void PredictiveLogDensity(SequenceBatch prefixes, ReadOnlySpan<float> nextFrames, Span<float> logDensity, CancellationToken cancellationToken)
        => PredictiveLogDensity(prefixes, nextFrames, logDensity, cancellationToken, FramesPerCancellationCheck, null);

    /// <summary>The cancellable one-step-ahead density with its group size in frames and a hook after every group
    /// (<see cref="SequenceDensityModel.FrameLogDensityInGroups"/>; tests use both).</summary>
    internal void PredictiveLogDensity(SequenceBatch prefixes, ReadOnlySpan<float> nextFrames, Span<float> logDensity,
        CancellationToken cancellationToken, int framesPerCheck, Action<int>? groupDone)
    {
        ArgumentNullException.ThrowIfNull(prefixes);
        DataValidation.CheckSequences(prefixes, FrameSize, InputDomain.Real, "prefixes");
        if (nextFrames.Length != prefixes.Count * FrameSize)
            throw new ArgumentException(FormattableString.Invariant($"nextFrames has {nextFrames.Length} values; {prefixes.Count} prefixes need one frame of {FrameSize} each."), nameof(nextFrames));
        DataValidation.CheckRows(nextFrames, FrameSize, InputDomain.Real, "nextFrames");
        if (logDensity.Length < prefixes.Count)
            throw new ArgumentException(FormattableString.Invariant($"Destination has {logDensity.Length} slots for {prefixes.Count} prefixes."), nameof(logDensity));
        cancellationToken.ThrowIfCancellationRequested();
        var extended = Extend(prefixes, nextFrames);
        var frames = new float[extended.TotalFrames];
        FrameLogDensityInGroups(extended, frames, cancellationToken, framesPerCheck, groupDone);
        for (int i = 0; i < prefixes.Count; i++) logDensity[i] = frames[extended.Offsets[i + 1] - 1];
        // The output contract of every scoring call (a NaN from a far-out frame is −∞), as FrameLogDensity applies it.
        CheckOutputs(logDensity[..prefixes.Count], default, "prefix");
    }

    /// <summary>Each prefix followed by one frame of <paramref name="next"/>.</summary>
    private static SequenceBatch Extend(SequenceBatch prefixes, ReadOnlySpan<float> next)
    {
        int d = prefixes.FrameSize, count = prefixes.Count;
        var values = new float[(prefixes.TotalFrames + count) * d];
        var offsets = new int[count + 1];
        for (int i = 0; i < count; i++)
        {
            int len = prefixes.Length(i);
            offsets[i + 1] = offsets[i] + len + 1;
            prefixes.Sequence(i).CopyTo(values.AsSpan(offsets[i] * d));
            next.Slice(i * d, d).CopyTo(values.AsSpan((offsets[i + 1] - 1) * d, d));
        }
        return new SequenceBatch(values, offsets, d);
    }

    /// <inheritdoc />
    protected override void SampleCore(SequenceBatch? prefixes, SequenceBatch destination, int newFrames, ulong seed)
        => SampleCore(prefixes, destination, newFrames, seed, CancellationToken.None);

    /// <summary>
    /// Fills the last <paramref name="newFrames"/> frames of every sequence of <paramref name="destination"/>, each
    /// continuing the matching prefix when <paramref name="prefixes"/> is given. Sequence i draws only from (seed, i), so
    /// it does not depend on how many are drawn or on the thread count. The token is checked before every block of
    /// prefixes scored, every block of sequences and every frame step (one sequence can be millions of frames).
    /// </summary>
    protected override void SampleCore(SequenceBatch? prefixes, SequenceBatch destination, int newFrames, ulong seed, CancellationToken cancellationToken)
    {
        int count = destination.Count, d = FrameSize, r = Network.R;
        var states = new float[count * r];
        if (prefixes is null) for (int i = 0; i < count; i++) Network.H0.CopyTo(states, i * r);
        else FinalStates(prefixes, states, cancellationToken);
        var root = new RandomStream(seed);
        var values = destination.Values;
        int blocks = (count + SamplingSequencesPerBlock - 1) / SamplingSequencesPerBlock;
        DeepDensityEnvironment.For(0, blocks, b =>
        {
            cancellationToken.ThrowIfCancellationRequested();
            int start = b * SamplingSequencesPerBlock, n = Math.Min(SamplingSequencesPerBlock, count - start);
            var streams = new RandomStream[n];
            // A continuation's stream is keyed by its prefix's length too: with the sequence's key alone, continuing a
            // draw with the seed that drew it replayed the draw's own noise (frames 1 and 2 correlated 0.99 where the
            // model says 0.73), and so did every step of a rolling forecast with one seed.
            for (int i = 0; i < n; i++)
                streams[i] = prefixes is null ? root.Fork((ulong)(start + i)) : root.Fork((ulong)(start + i), (ulong)prefixes.Length(start + i));
            var state = states.AsSpan(start * r, n * r).ToArray();
            // Drawn from scratch, the destination holds only the new frames, sequence after sequence, as Generate writes
            // them: draw straight into it (a draw-sized array copied in afterwards doubled a draw's memory). After
            // prefixes the new frames lie between them: draw the block's into a pooled buffer (every element written),
            // then copy them in.
            int size = n * newFrames * d;
            float[]? rented = prefixes is null ? null : System.Buffers.ArrayPool<float>.Shared.Rent(size);
            try
            {
                Span<float> dst = rented is null ? values.AsSpan(destination.Offsets[start] * d, size) : rented.AsSpan(0, size);
                Network.Generate(n, newFrames, state, streams, dst, cancellationToken);
                _standardizer.Inverse(dst, n * newFrames);
                if (rented is not null)
                    for (int i = 0; i < n; i++)
                        dst.Slice(i * newFrames * d, newFrames * d).CopyTo(destination.Sequence(start + i)[^(newFrames * d)..]);
            }
            finally { if (rented is not null) System.Buffers.ArrayPool<float>.Shared.Return(rented); }
        });
    }

    /// <summary>ĥ after the last frame of every prefix: the context the recurrence gives a frame appended to it.</summary>
    private void FinalStates(SequenceBatch prefixes, float[] states, CancellationToken cancellationToken)
    {
        int d = FrameSize, r = Network.R, count = prefixes.Count;
        var extended = Extend(prefixes, new float[count * d]);
        var model = new float[extended.TotalFrames * d];
        _standardizer.Forward(extended.Values, model, extended.TotalFrames);
        int blocks = (count + ScoringSequencesPerBlock - 1) / ScoringSequencesPerBlock;
        DeepDensityEnvironment.For(0, blocks, b =>
        {
            cancellationToken.ThrowIfCancellationRequested();
            int start = b * ScoringSequencesPerBlock, n = Math.Min(ScoringSequencesPerBlock, count - start);
            var block = new RnnRnadeNetwork.Block(Network, 8, forTraining: false);
            block.Pack(model, extended.Offsets, Enumerable.Range(start, n).ToArray());
            Network.Recurrence(block);
            for (int row = 0; row < block.Frames; row++)
            {
                int frame = block.RowFrame[row];
                int seq = Array.BinarySearch(extended.Offsets, frame + 1);
                if (seq >= 0) block.Ctx.AsSpan(row * r, r).CopyTo(states.AsSpan((seq - 1) * r, r)); // last frame of seq − 1
            }
        });
    }

    /// <inheritdoc />
    protected internal override void WritePayload(ModelWriter w)
    {
        var rn = Network.Rnade;
        w.WriteInt32(rn.D); w.WriteInt32(rn.H); w.WriteInt32(rn.K); w.WriteInt32(Network.R);
        w.WriteEnum(rn.Activation);
        w.WriteInt32(Network.ConditionsHiddenBias ? 1 : 0);
        _standardizer.Write(w);
        w.WriteSingles(rn.W); w.WriteSingles(rn.C); w.WriteSingles(rn.Rho); w.WriteSingles(rn.V); w.WriteSingles(rn.B);
        w.WriteSingles(Network.WIn); w.WriteSingles(Network.WRec); w.WriteSingles(Network.BRec); w.WriteSingles(Network.H0);
        w.WriteSingles(Network.WOut); w.WriteSingles(Network.WHid);
    }

    internal static RnnRnadeModel ReadPayload(ModelReader r, int version)
    {
        if (version != 1) throw r.Corrupt(FormattableString.Invariant($"payload version {version} is not supported (expected 1)"));
        int d = r.ReadInt32("frame size", 1, RnadeOptions.MaxDimension);
        int h = r.ReadInt32("hidden units", 1, RnadeOptions.MaxHiddenUnits);
        int k = r.ReadInt32("components", 1, RnadeOptions.MaxComponents);
        int rec = r.ReadInt32("recurrent units", 1, RnadeOptions.MaxHiddenUnits);
        var act = r.ReadEnum<Activation>("activation");
        if (act is not (Activation.Relu or Activation.Sigmoid or Activation.Tanh)) throw r.Corrupt($"activation {act} is not one RNN-RNADE supports");
        bool hid = r.ReadInt32("hidden-bias conditioning", 0, 1) == 1;
        // Every tensor in long arithmetic (W_rec is rec²: 65,536 recurrent units would wrap to an expected length of 0).
        long floats = (long)d * h * 3 * k + (long)rec * d * 3 * k + (long)rec * rec + (long)d * rec + (hid ? (long)rec * h : 0);
        if (floats * 4 > r.Remaining) throw r.Corrupt("declared sizes exceed the payload");
        var std = ColumnStandardizer.Read(r, d);
        var rnade = new RnadeNetwork(d, h, k, act,
            r.ReadParameters("W", (d - 1) * h), r.ReadParameters("c", h), r.ReadParameters("rho", d),
            r.ReadParameters("V", d * h * 3 * k), r.ReadParameters("b", d * 3 * k));
        var net = new RnnRnadeNetwork(rnade, rec, r.ReadParameters("W_in", d * rec), r.ReadParameters("W_rec", rec * rec),
            r.ReadParameters("b_rec", rec), r.ReadParameters("h0", rec), r.ReadParameters("W_out", rec * d * 3 * k),
            r.ReadParameters("W_hid", hid ? rec * h : 0));
        // Sampling draws μ + exp(log σ)·ε: bound log σ's bias plus the most the state (ĥ ∈ (0, 1)) can add, as RNADE does.
        for (int p = 0; p < d; p++)
            for (int i = 0; i < k; i++)
            {
                int col = p * 3 * k + 2 * k + i;
                double top = rnade.B[col];
                for (int j = 0; j < rec; j++) top += Math.Max(0f, net.WOut[j * d * 3 * k + col]);
                if (top > RnadeModel.MaxLogSigmaBias)
                    throw r.Corrupt(FormattableString.Invariant($"the log σ bias of component {i} at position {p} can reach {top}, above {RnadeModel.MaxLogSigmaBias}"));
            }
        return new RnnRnadeModel(net, std);
    }
}
