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
public sealed class RnnRnadeModel
{
    /// <summary>Model-kind name in saved files.</summary>
    public const string Kind = "RnnRnade";
    private const int ScoringSequencesPerBlock = 16, ScoringFramesPerChunk = 64, SamplingSequencesPerBlock = 32;

    internal readonly RnnRnadeNetwork Network;
    private readonly ColumnStandardizer _standardizer;

    internal RnnRnadeModel(RnnRnadeNetwork network, ColumnStandardizer standardizer)
    {
        Network = network; _standardizer = standardizer;
    }

    public string ModelKind => Kind;
    public int FrameSize => Network.D;
    public DensityKind DensityKind => DensityKind.Exact;

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
    /// <summary>What training did (null for a loaded model); log-likelihoods are per frame.</summary>
    public TrainingSummary? TrainingSummary { get; internal set; }

    /// <summary>Trains on <paramref name="data"/>; without <paramref name="validation"/>, a seeded fraction of the
    /// sequences is held out for early stopping on the validation log-likelihood per frame.</summary>
    internal static RnnRnadeModel Fit(SequenceBatch data, RnnRnadeOptions? options = null, SequenceBatch? validation = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new RnnRnadeOptions();
        options.Validate();
        int d = data.FrameSize;
        DataValidation.CheckRows(data.Values.AsSpan(0, data.TotalFrames * d), d, InputDomain.Real, "training sequences");
        if (validation is not null)
        {
            if (validation.FrameSize != d) throw new ArgumentException($"Validation frames have {validation.FrameSize} values but training frames have {d}.", nameof(validation));
            DataValidation.CheckRows(validation.Values.AsSpan(0, validation.TotalFrames * d), d, InputDomain.Real, "validation sequences");
        }
        // Sequences are addressed by index: a validation set given separately is appended after the training sequences.
        var all = validation is null ? data : Concatenate(data, validation);
        var ids = new RowMatrix(Enumerable.Range(0, all.Count).Select(i => (float)i).ToArray(), all.Count, 1);
        RowMatrix trainIds, validIds;
        if (validation is null)
        {
            var (t, v) = TrainingLoop.Split(ids, null, options.ValidationFraction, options.Seed);
            trainIds = t; validIds = v!;
        }
        else
        {
            trainIds = new RowMatrix(ids.Values[..data.Count], data.Count, 1);
            validIds = new RowMatrix(ids.Values[data.Count..], validation.Count, 1);
        }
        var trainFrames = FramesOf(all, trainIds);
        var standardizer = options.Standardize ? ColumnStandardizer.Fit(trainFrames) : ColumnStandardizer.Identity(d);
        var modelValues = new float[all.TotalFrames * d];
        standardizer.Forward(all.Values.AsSpan(0, modelValues.Length), modelValues, all.TotalFrames);

        var rnade = new RnadeNetwork(d, options.HiddenUnits, options.Components, options.Activation);
        var root = new RandomStream(options.Seed);
        var standardizedTrain = new RowMatrix(trainFrames.Rows, d);
        standardizer.Forward(trainFrames.AsSpan(), standardizedTrain.AsSpan(), trainFrames.Rows);
        rnade.Initialize(root.Fork(0x1A17), RnadeModel.ColumnQuantiles(standardizedTrain, options.Components));
        var network = new RnnRnadeNetwork(rnade, options.RecurrentUnits, options.ConditionHiddenBias);
        network.InitializeRecurrence(root.Fork(0x2E7));
        var objective = new RnnRnadeObjective(network, options.SequencesPerBlock, options.FramesPerChunk,
            options.ScaleMeanGradientBySigma, standardizer.LogJacobian);
        var summary = TrainingLoop.Run(new SequenceIndexObjective(objective, modelValues, all.Offsets), trainIds,
            validIds, options, progress, cancellationToken);
        return new RnnRnadeModel(network, standardizer) { TrainingSummary = summary };
    }

    private static SequenceBatch Concatenate(SequenceBatch a, SequenceBatch b)
    {
        int d = a.FrameSize;
        var values = new float[(a.TotalFrames + b.TotalFrames) * d];
        a.Values.AsSpan(0, a.TotalFrames * d).CopyTo(values);
        b.Values.AsSpan(0, b.TotalFrames * d).CopyTo(values.AsSpan(a.TotalFrames * d));
        var offsets = new int[a.Count + b.Count + 1];
        a.Offsets.AsSpan(0, a.Count + 1).CopyTo(offsets);
        for (int i = 1; i <= b.Count; i++) offsets[a.Count + i] = a.TotalFrames + b.Offsets[i];
        return new SequenceBatch(values, offsets, d);
    }

    private static RowMatrix FramesOf(SequenceBatch all, RowMatrix ids)
    {
        var frames = new List<float>();
        for (int r = 0; r < ids.Rows; r++) frames.AddRange(all.Sequence((int)ids[r, 0]).ToArray());
        return new RowMatrix(frames.ToArray(), frames.Count / all.FrameSize, all.FrameSize);
    }

    /// <summary>The row-based training loop drives the sequence objective: a row holds a sequence index. Objectives are
    /// returned per frame (sum × sequences / frames), so reported log-likelihoods are per frame.</summary>
    private sealed class SequenceIndexObjective(RnnRnadeObjective objective, float[] values, int[] offsets) : IGradientObjective
    {
        public ParameterSet Parameters => objective.Parameters;
        public double ComputeGradient(ReadOnlySpan<float> rows, int count, RandomStream random) => Run(rows, count, true);
        public double Evaluate(ReadOnlySpan<float> rows, int count, RandomStream random) => Run(rows, count, false);
        private double Run(ReadOnlySpan<float> rows, int count, bool gradient)
        {
            var seqs = new int[count];
            long frames = 0;
            for (int i = 0; i < count; i++) { seqs[i] = (int)rows[i]; frames += offsets[seqs[i] + 1] - offsets[seqs[i]]; }
            return objective.Run(values, offsets, seqs, gradient) * count / frames;
        }
    }

    /// <summary>log p(x_t | x_&lt;t) of every frame of validated sequences (raw values) into <paramref name="frameLogDensity"/>.</summary>
    internal void FrameLogDensityCore(SequenceBatch sequences, Span<float> frameLogDensity)
    {
        int d = FrameSize, count = sequences.Count;
        var model = new float[sequences.TotalFrames * d];
        _standardizer.Forward(sequences.Values.AsSpan(0, model.Length), model, sequences.TotalFrames);
        var output = new float[sequences.TotalFrames];
        float logJacobian = (float)_standardizer.LogJacobian;
        int blocks = (count + ScoringSequencesPerBlock - 1) / ScoringSequencesPerBlock;
        DeepDensityEnvironment.For(0, blocks, b =>
        {
            int start = b * ScoringSequencesPerBlock, n = Math.Min(ScoringSequencesPerBlock, count - start);
            var block = new RnnRnadeNetwork.Block(Network, ScoringFramesPerChunk, forTraining: false);
            block.Pack(model, sequences.Offsets, Enumerable.Range(start, n).ToArray());
            Network.Run(block, 0f, false);
            for (int row = 0; row < block.Frames; row++) output[block.RowFrame[row]] = block.LogP[row] + logJacobian;
        });
        output.CopyTo(frameLogDensity);
    }

    /// <summary>log p of each whole sequence: the sum of its frames' conditionals (float64 accumulation).</summary>
    internal void LogDensityCore(SequenceBatch sequences, Span<float> logDensity)
    {
        var frames = new float[sequences.TotalFrames];
        FrameLogDensityCore(sequences, frames);
        for (int i = 0; i < sequences.Count; i++)
        {
            double s = 0;
            for (int f = sequences.Offsets[i]; f < sequences.Offsets[i + 1]; f++) s += frames[f];
            logDensity[i] = (float)s;
        }
    }

    /// <summary>Starts scoring one sequence frame by frame (online scoring and one-step-ahead prediction).</summary>
    public RnnRnadeStream StartStream() => new(this);

    /// <summary>
    /// One-step-ahead predictive log-density log p(y_i | prefix_i) of candidate frames <paramref name="nextFrames"/>
    /// (count × FrameSize) after each prefix.
    /// </summary>
    internal void PredictiveLogDensityCore(SequenceBatch prefixes, ReadOnlySpan<float> nextFrames, Span<float> logDensity)
    {
        var extended = Extend(prefixes, nextFrames);
        var frames = new float[extended.TotalFrames];
        FrameLogDensityCore(extended, frames);
        for (int i = 0; i < prefixes.Count; i++) logDensity[i] = frames[extended.Offsets[i + 1] - 1];
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

    /// <summary>
    /// <paramref name="count"/> sequences of <paramref name="length"/> frames, each continuing the matching prefix when
    /// <paramref name="prefixes"/> is given (the result holds only the new frames). Sequence i draws only from
    /// (seed, i), so it does not depend on how many are drawn or on the thread count.
    /// </summary>
    internal float[] SampleCore(int count, int length, ulong seed, SequenceBatch? prefixes)
    {
        int d = FrameSize, r = Network.R;
        var states = new float[count * r];
        if (prefixes is null) for (int i = 0; i < count; i++) Network.H0.CopyTo(states, i * r);
        else FinalStates(prefixes, states);
        var root = new RandomStream(seed);
        var output = new float[count * length * d];
        int blocks = (count + SamplingSequencesPerBlock - 1) / SamplingSequencesPerBlock;
        DeepDensityEnvironment.For(0, blocks, b =>
        {
            int start = b * SamplingSequencesPerBlock, n = Math.Min(SamplingSequencesPerBlock, count - start);
            var streams = new RandomStream[n];
            for (int i = 0; i < n; i++) streams[i] = root.Fork((ulong)(start + i));
            var state = states.AsSpan(start * r, n * r).ToArray();
            var dst = output.AsSpan(start * length * d, n * length * d);
            Network.Generate(n, length, state, streams, dst);
            _standardizer.Inverse(dst, n * length);
        });
        return output;
    }

    /// <summary>ĥ after the last frame of every prefix: the context the recurrence gives a frame appended to it.</summary>
    private void FinalStates(SequenceBatch prefixes, float[] states)
    {
        int d = FrameSize, r = Network.R, count = prefixes.Count;
        var extended = Extend(prefixes, new float[count * d]);
        var model = new float[extended.TotalFrames * d];
        _standardizer.Forward(extended.Values, model, extended.TotalFrames);
        int blocks = (count + ScoringSequencesPerBlock - 1) / ScoringSequencesPerBlock;
        DeepDensityEnvironment.For(0, blocks, b =>
        {
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

    internal void WritePayload(ModelWriter w)
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
        if (version != 1) throw r.Corrupt($"payload version {version} is not supported (expected 1)");
        int d = r.ReadInt32("frame size", 1, 1 << 20);
        int h = r.ReadInt32("hidden units", 1, 1 << 20);
        int k = r.ReadInt32("components", 1, 1 << 16);
        int rec = r.ReadInt32("recurrent units", 1, 1 << 20);
        var act = r.ReadEnum<Activation>("activation");
        if (act is not (Activation.Relu or Activation.Sigmoid or Activation.Tanh)) throw r.Corrupt($"activation {act} is not one RNN-RNADE supports");
        bool hid = r.ReadInt32("hidden-bias conditioning", 0, 1) == 1;
        if ((long)d * h * 3 * k * 4 + (long)rec * d * 3 * k * 4 > r.Remaining) throw r.Corrupt("declared sizes exceed the payload");
        var std = ColumnStandardizer.Read(r, d);
        var rnade = new RnadeNetwork(d, h, k, act,
            r.ReadSingles("W", (d - 1) * h), r.ReadSingles("c", h), r.ReadSingles("rho", d),
            r.ReadSingles("V", d * h * 3 * k), r.ReadSingles("b", d * 3 * k));
        var net = new RnnRnadeNetwork(rnade, rec, r.ReadSingles("W_in", d * rec), r.ReadSingles("W_rec", rec * rec),
            r.ReadSingles("b_rec", rec), r.ReadSingles("h0", rec), r.ReadSingles("W_out", rec * d * 3 * k),
            r.ReadSingles("W_hid", hid ? rec * h : 0));
        return new RnnRnadeModel(net, std);
    }
}
