using System.Numerics.Tensors;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.Rbm;

/// <summary>
/// Contrastive-divergence training (CD-k / PCD-k) with minibatches, momentum, weight decay and a per-epoch learning-rate
/// decay. One update (eq. 43/44 of the CD discussion, with the usual partial marginalisation):
/// ΔW ∝ ⟨x₀ σ(c + x₀W)ᵀ⟩ − ⟨x_k σ(c + x_kW)ᵀ⟩ where x_k is a sampled visible state after k Gibbs steps and hidden
/// probabilities (not samples) enter the statistics. Every buffer is allocated once; the statistics of the positive and
/// negative phase are stacked so that the weight update is a single transposed GEMM that also applies learning rate and
/// momentum (velocity = momentum·velocity + lr·[X; X_k]ᵀ[P₀/n; −P_k/m]).
/// </summary>
internal sealed class RbmTrainer
{
    private readonly RbmMachine _m;
    private readonly int _batch, _chains, _k;
    private readonly bool _persistent;
    private readonly float[] _visible;   // (batch + chains) × D: data rows, then negative-phase visible samples
    private readonly float[] _hidden;    // (batch + chains) × H: positive probabilities, then negative probabilities
    private readonly float[] _chainHidden; // chains × H: hidden sample driving the negative chain (persistent for PCD)
    private readonly float[] _uniform;   // uniforms of one region: each block uses the part at its first column
    /// <summary>Weight rows per block of the parallel weight update (whole GEMM micro-panels; fixed, so results do not depend on threads).</summary>
    private const int RowsPerUpdateBlock = 198;
    private readonly float[] _velW, _velB, _velC;
    private readonly float[] _colSums, _gb, _gc;
    private bool _chainsInitialized;
    private readonly CancellationToken _cancellationToken;
    /// <summary>Rows per block of the persistent chains' initialisation (between cancellation checks).</summary>
    private const int RowsPerInitBlock = 4096;

    /// <summary>When set, the raw CD gradient (ascent direction, per row) of the last step is kept in <see cref="GradW"/> etc.</summary>
    internal bool KeepGradient { get; init; }
    internal float[]? GradW { get; private set; }
    internal float[]? GradB { get; private set; }
    internal float[]? GradC { get; private set; }

    /// <param name="cancellationToken">Checked inside a step, between its regions (a huge batch stops within a region).</param>
    public RbmTrainer(RbmMachine machine, int batchSize, int gibbsSteps, bool persistent, int persistentChains,
        CancellationToken cancellationToken = default)
    {
        _cancellationToken = cancellationToken;
        _m = machine; _batch = batchSize; _k = gibbsSteps; _persistent = persistent;
        _chains = persistent ? (persistentChains > 0 ? persistentChains : batchSize) : batchSize;
        int rows = _batch + _chains;
        _visible = new float[rows * machine.D];
        _hidden = new float[rows * machine.H];
        _chainHidden = new float[_chains * machine.H];
        _uniform = new float[Math.Max(_batch, _chains) * Math.Max(machine.D, machine.H)];
        _velW = new float[machine.D * machine.H];
        _velB = new float[machine.D];
        _velC = new float[machine.H];
        _colSums = new float[Math.Max(machine.D, machine.H)];
        _gb = new float[machine.D];
        _gc = new float[machine.H];
    }

    /// <summary>The data rows of the last step (count × D).</summary>
    internal ReadOnlySpan<float> LastPositiveVisible(int count) => _visible.AsSpan(0, count * _m.D);
    /// <summary>The negative-phase visible samples x_k of the last step (rows × D).</summary>
    internal ReadOnlySpan<float> LastNegativeVisible(int count) => _visible.AsSpan(count * _m.D, NegativeRows(count) * _m.D);
    internal int NegativeRows(int count) => _persistent ? _chains : count;

    /// <summary>Forgets momentum and the persistent chains (after a divergence restore).</summary>
    public void Reset()
    {
        Array.Clear(_velW); Array.Clear(_velB); Array.Clear(_velC);
        _chainsInitialized = false;
    }

    /// <summary>
    /// Selects rows <paramref name="order"/>[start..start+count) of <paramref name="data"/> as the next positive block. The
    /// copy happens inside the next <see cref="Step"/>, spread over its first parallel region (random rows of a large
    /// matrix are memory-latency bound: a serial copy cost ~5% of a PCD step).
    /// </summary>
    public void Gather(RowMatrix data, int[] order, int start, int count)
    {
        _gatherData = data; _gatherOrder = order; _gatherStart = start; _gatherCount = count;
    }

    private RowMatrix? _gatherData;
    private int[]? _gatherOrder;
    private int _gatherStart, _gatherCount;

    /// <summary>Copies the pending gathered rows [r0, r1) of the batch into the positive block.</summary>
    private void CopyGatheredRows(int r0, int r1)
    {
        int d = _m.D;
        for (int r = r0; r < r1; r++) _gatherData!.Row(_gatherOrder![_gatherStart + r]).CopyTo(_visible.AsSpan(r * d, d));
    }

    /// <summary>Loads rows directly (tests).</summary>
    internal void SetBatch(ReadOnlySpan<float> rows, int count)
    {
        _gatherData = null;
        rows[..(count * _m.D)].CopyTo(_visible);
    }

    /// <summary>One CD/PCD update on the <paramref name="count"/> rows selected by <see cref="Gather"/> (or loaded by <see cref="SetBatch"/>).</summary>
    /// <remarks>
    /// A PCD-1 step is three parallel regions over fixed blocks (so the result does not depend on the thread count):
    /// (1) the chains' visible sample, per block of visible columns: its GEMM, bias, σ and Bernoulli draw (and the block's
    /// share of the pending minibatch copy); (2) the hidden probabilities of data and chains together (one product of
    /// count + chains rows), per block of hidden columns: GEMM, bias, σ, the chains' new hidden sample, scaling and the
    /// hidden bias gradient; (3) per block of weight rows: the weight update and the visible bias gradient. Each block
    /// does its elementwise work on the columns its GEMM just wrote (still in cache), and the step has two barriers
    /// instead of one per operation.
    /// </remarks>
    public void Step(int count, float learningRate, float momentum, float weightDecay, RandomStream random)
    {
        var m = _m;
        int d = m.D, h = m.H;
        if (count < 1 || count > _batch) throw new ArgumentOutOfRangeException(nameof(count));
        int negRows = NegativeRows(count);
        int stacked = count + negRows;
        bool gatherInRegion = _gatherData is not null;
        if (gatherInRegion && _gatherCount != count) throw new ArgumentException($"Gather selected {_gatherCount} rows, Step was given {count}.", nameof(count));
        if (gatherInRegion && (!_persistent || !_chainsInitialized))
        {
            // CD (and the first PCD step) needs the data rows before the first region.
            CopyGatheredRows(0, count);
            gatherInRegion = false;
        }
        if (!gatherInRegion) _gatherData = null;
        if (_persistent && !_chainsInitialized)
        {
            // Fantasy chains start at hidden samples of the first data rows (repeated if there are more chains). Done
            // in fixed blocks of rows with a cancellation check between them: one σ over a 200k-row batch took seconds.
            int sampled = Math.Min(count, negRows);
            var pPos = _hidden.AsSpan(0, sampled * h);
            m.HiddenPreActivation(_visible.AsSpan(0, sampled * d), sampled, pPos, parallel: true);
            var u = _uniform.AsSpan(0, count * h);
            random.Fork(0xC4A1).FillUniform(u);
            for (int r0 = 0; r0 < sampled; r0 += RowsPerInitBlock)
            {
                _cancellationToken.ThrowIfCancellationRequested();
                int rows = Math.Min(RowsPerInitBlock, sampled - r0);
                var p = pPos.Slice(r0 * h, rows * h);
                TensorPrimitives.Sigmoid(p, p);
                RbmMachine.Bernoulli(p, u.Slice(r0 * h, rows * h), _chainHidden.AsSpan(r0 * h, rows * h));
            }
            for (int r = sampled; r < negRows; r++) _chainHidden.AsSpan((r % count) * h, h).CopyTo(_chainHidden.AsSpan(r * h, h));
            _chainsInitialized = true;
        }

        // CD starts its chains at hidden samples of the data; the positive probabilities are kept for the statistics.
        if (!_persistent) HiddenRegion(0, count, sampleFirstRow: 0, count, negRows, random.Fork(1), final: false);
        for (int s = 1; s <= _k; s++)
        {
            _cancellationToken.ThrowIfCancellationRequested();
            var stepRandom = random.Fork(2, (ulong)s);
            bool last = s == _k;
            VisibleRegion(count, negRows, stepRandom.Fork(1), gatherInRegion && s == 1);
            if (_persistent && last) HiddenRegion(0, stacked, sampleFirstRow: count, count, negRows, stepRandom.Fork(2), final: true);
            else HiddenRegion(count, negRows, sampleFirstRow: last ? -1 : count, count, negRows, stepRandom.Fork(2), final: last);
        }

        _cancellationToken.ThrowIfCancellationRequested();
        // The stacked hidden statistics are now scaled: positive rows by 1/n, negative rows by −1/m.
        var vAll = _visible.AsSpan(0, stacked * d);
        var hAll = _hidden.AsSpan(0, stacked * h);
        var gb = _gb.AsSpan();
        var gc = _gc.AsSpan();

        if (KeepGradient)
        {
            VisibleBiasGradient(0, d, count, negRows);
            GradW ??= new float[d * h];
            Gemm.Multiply(true, false, d, h, stacked, 1f, vAll, d, hAll, h, 0f, GradW, h, allowParallel: true);
            GradB = gb.ToArray(); GradC = gc.ToArray();
            TensorPrimitives.Multiply(_velW, momentum, _velW);
            TensorPrimitives.MultiplyAdd(GradW, learningRate, _velW, _velW);
        }
        else
        {
            // velocity = momentum·velocity + lr·Vᵀ·P, then the weight step, per fixed block of weight rows in parallel: one
            // barrier for the GEMM and the elementwise passes over W. Gemm's result for a row does not depend on the block
            // it is computed in, so this equals one big product.
            float decay = -learningRate * weightDecay;
            int updateBlocks = (d + RowsPerUpdateBlock - 1) / RowsPerUpdateBlock;
            unsafe
            {
                fixed (float* pv = _visible, ph = _hidden)
                {
                    IntPtr vPtr = (IntPtr)pv, hPtr = (IntPtr)ph;
                    DeepDensityEnvironment.For(0, updateBlocks, blk =>
                    {
                        int i0 = blk * RowsPerUpdateBlock, rows = Math.Min(RowsPerUpdateBlock, d - i0);
                        VisibleBiasGradient(i0, rows, count, negRows);
                        var v = new ReadOnlySpan<float>((float*)vPtr, stacked * d);
                        var p = new ReadOnlySpan<float>((float*)hPtr, stacked * h);
                        var vel = _velW.AsSpan(i0 * h, rows * h);
                        var w = m.W.AsSpan(i0 * h, rows * h);
                        Gemm.Multiply(true, false, rows, h, stacked, learningRate, v[i0..], d, p, h, momentum, vel, h, allowParallel: false);
                        if (weightDecay > 0) TensorPrimitives.MultiplyAdd(w, decay, vel, vel);
                        TensorPrimitives.Add(w, vel, w);
                    });
                }
            }
        }
        if (KeepGradient)
        {
            if (weightDecay > 0) TensorPrimitives.MultiplyAdd(m.W, -learningRate * weightDecay, _velW, _velW);
            TensorPrimitives.Add(m.W, _velW, m.W);
        }

        TensorPrimitives.Multiply(_velB, momentum, _velB);
        TensorPrimitives.MultiplyAdd(_gb, learningRate, _velB, _velB);
        TensorPrimitives.Add(m.B, _velB, m.B);
        TensorPrimitives.Multiply(_velC, momentum, _velC);
        TensorPrimitives.MultiplyAdd(_gc, learningRate, _velC, _velC);
        TensorPrimitives.Add(m.C, _velC, m.C);
    }

    /// <summary>Products below this many multiply-adds run their blocks on the calling thread.</summary>
    private const long ParallelMultiplyAdds = 1L << 19;

    /// <summary>Fixed column-block width: about four blocks, whole 16-column GEMM micro-panels.</summary>
    private static int ColumnBlockWidth(int width) => Math.Max(16, (width + 63) / 64 * 16);

    private static void RunBlocks(int blocks, long multiplyAdds, Action<int> body)
    {
        if (blocks <= 1 || multiplyAdds < ParallelMultiplyAdds) for (int b = 0; b < blocks; b++) body(b);
        else DeepDensityEnvironment.For(0, blocks, body);
    }

    /// <summary>
    /// Chains' visible sample x_k = draw(b + h·Wᵀ) from their hidden sample, per fixed block of visible columns (stream
    /// forked by block). With <paramref name="gather"/>, block b also copies its share of the pending data rows.
    /// </summary>
    private void VisibleRegion(int count, int negRows, RandomStream random, bool gather)
    {
        var m = _m;
        int d = m.D, h = m.H, width = ColumnBlockWidth(d), blocks = (d + width - 1) / width;
        RunBlocks(blocks, (long)negRows * d * h, blk =>
        {
            if (gather) CopyGatheredRows(blk * count / blocks, (blk + 1) * count / blocks);
            int j0 = blk * width, w = Math.Min(width, d - j0);
            var xNeg = _visible.AsSpan(count * d, negRows * d);
            Gemm.Multiply(false, true, negRows, w, h, 1f, _chainHidden, h, m.W.AsSpan(j0 * h), h, 0f, xNeg[j0..], d, allowParallel: false);
            var bias = m.B.AsSpan(j0, w);
            var rng = random.Fork((ulong)blk);
            var u = _uniform.AsSpan(negRows * j0, negRows * w);
            if (!m.Gaussian) rng.FillUniform(u);
            for (int r = 0; r < negRows; r++)
            {
                var row = xNeg.Slice(r * d + j0, w);
                if (m.Gaussian)
                {
                    TensorPrimitives.Add(row, bias, row);
                    for (int j = 0; j < row.Length; j++) row[j] += (float)rng.NextGaussian();
                }
                else
                {
                    RbmMachine.Activate(row, bias, 1f, row);
                    RbmMachine.Bernoulli(row, u.Slice(r * w, w), row);
                }
            }
        });
        if (gather) _gatherData = null;
    }

    /// <summary>Visible bias gradient ⟨x₀⟩ − ⟨x_k⟩ for visible units [i0, i0 + width) (data rows, then chain rows, of _visible).</summary>
    private void VisibleBiasGradient(int i0, int width, int count, int negRows)
    {
        int d = _m.D;
        var gb = _gb.AsSpan(i0, width);
        var negSum = _colSums.AsSpan(i0, width);
        gb.Clear(); negSum.Clear();
        for (int r = 0; r < count; r++) TensorPrimitives.Add(gb, _visible.AsSpan(r * d + i0, width), gb);
        for (int r = count; r < count + negRows; r++) TensorPrimitives.Add(negSum, _visible.AsSpan(r * d + i0, width), negSum);
        TensorPrimitives.Multiply(gb, 1f / count, gb);
        TensorPrimitives.MultiplyAdd(negSum, -1f / negRows, gb, gb);
    }

    /// <summary>
    /// Hidden probabilities σ(c + v·W) of visible rows [<paramref name="firstRow"/>, +<paramref name="rows"/>), per fixed
    /// block of hidden columns. Unless <paramref name="sampleFirstRow"/> is −1, the chains' hidden sample is drawn from
    /// the probabilities of rows [sampleFirstRow, +negRows). <paramref name="final"/>: scale the positive rows by 1/count
    /// and the negative rows by −1/negRows and sum the block's columns into the hidden bias gradient.
    /// </summary>
    private void HiddenRegion(int firstRow, int rows, int sampleFirstRow, int count, int negRows, RandomStream random, bool final)
    {
        var m = _m;
        int d = m.D, h = m.H, width = ColumnBlockWidth(h), blocks = (h + width - 1) / width;
        RunBlocks(blocks, (long)rows * d * h, blk =>
        {
            int j0 = blk * width, w = Math.Min(width, h - j0);
            Gemm.Multiply(false, false, rows, w, d, 1f, _visible.AsSpan(firstRow * d), d, m.W.AsSpan(j0), h, 0f,
                _hidden.AsSpan(firstRow * h + j0), h, allowParallel: false);
            var bias = m.C.AsSpan(j0, w);
            for (int r = firstRow; r < firstRow + rows; r++)
            {
                var row = _hidden.AsSpan(r * h + j0, w);
                RbmMachine.Activate(row, bias, 1f, row);
            }
            if (sampleFirstRow >= 0)
            {
                var u = _uniform.AsSpan(negRows * j0, negRows * w);
                random.Fork((ulong)blk).FillUniform(u);
                for (int r = 0; r < negRows; r++)
                    RbmMachine.Bernoulli(_hidden.AsSpan((sampleFirstRow + r) * h + j0, w), u.Slice(r * w, w), _chainHidden.AsSpan(r * h + j0, w));
            }
            if (!final) return;
            var gc = _gc.AsSpan(j0, w);
            gc.Clear();
            for (int r = 0; r < count + negRows; r++)
            {
                var row = _hidden.AsSpan(r * h + j0, w);
                TensorPrimitives.Multiply(row, r < count ? 1f / count : -1f / negRows, row);
                TensorPrimitives.Add(gc, row, gc);
            }
        });
    }

    // ------------------------------------------------------------------ training on the driver

    /// <summary>Runs epochs of CD/PCD on the <see cref="TrainingDriver"/> (monitoring, early stopping, cancellation, divergence recovery).</summary>
    public static TrainingSummary Train(RbmMachine machine, RowMatrix train, RowMatrix? validation, RbmOptions o,
        IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        var trainable = new Trainable(machine, train, validation, o, cancellationToken);
        return TrainingDriver.Run(trainable, TrainingData.From(train), TrainingDriverOptions.From(o, trainable.Root) with
        {
            // The monitor's score is a proxy (pseudo-likelihood or reconstruction error), so without early stopping the last epoch is kept.
            RestoreBestWithoutEarlyStopping = false,
            Name = "RBM training",
            DivergenceDescription = "non-finite parameters",
            DivergenceAdvice = "lower LearningRate" + (machine.Gaussian ? " or standardise the inputs." : "."),
        }, progress, cancellationToken);
    }

    /// <summary>A CD/PCD step per batch; the epoch's figures from the <see cref="RbmMonitor"/>. Snapshots hold the
    /// machine; a divergence also drops momentum and the persistent chains (they restart from data).</summary>
    private sealed class Trainable : ITrainableModel
    {
        private readonly RbmMachine _machine;
        private readonly RowMatrix _train;
        private readonly bool _hasValidation;
        private readonly RbmOptions _o;
        private readonly RbmTrainer _trainer;
        private readonly RbmMonitor _monitor;

        public Trainable(RbmMachine machine, RowMatrix train, RowMatrix? validation, RbmOptions o, CancellationToken cancellationToken)
        {
            _machine = machine; _train = train; _hasValidation = validation is not null; _o = o;
            _trainer = new RbmTrainer(machine, Math.Min(o.BatchSize, train.Rows), o.GibbsSteps,
                o.Algorithm == RbmTrainingAlgorithm.PersistentContrastiveDivergence, o.PersistentChains, cancellationToken);
            Root = new RandomStream(o.Seed).Fork(0xC0DE_0000);
            _monitor = new RbmMonitor(machine, train, validation, Root.Fork(0x3017));
        }

        public RandomStream Root { get; }

        public double Step(TrainingStep step)
        {
            _trainer.Gather(_train, step.Order, step.Start, step.Count);
            _trainer.Step(step.Count, step.LearningRate, _o.Momentum, _o.WeightDecay, step.Random);
            // A cheap check every 64 batches stops a blow-up early; the epoch-end check is the authoritative one.
            return (step.Index & 63) == 63 && !float.IsFinite(TensorPrimitives.Sum<float>(_machine.C)) ? double.NaN : 0;
        }

        public EpochFigures? EndEpoch(TrainingEpoch epoch)
        {
            if (!_machine.AllFinite()) return null;
            var f = _monitor.Measure();
            if (!f.AllFinite) return null;
            return new EpochFigures(f.TrainPseudoLogLikelihood, _hasValidation ? f.ValidationPseudoLogLikelihood : null,
                _hasValidation ? f.ValidationScore : null,
                _machine.Gaussian ? "RBM: train/valid are not likelihoods for Gaussian units; see Metrics" : "RBM: train/valid are pseudo-log-likelihoods",
                f.ToMetrics());
        }

        public object Snapshot() => _machine.Clone();
        public void Restore(object snapshot) => ((RbmMachine)snapshot).CopyTo(_machine);
        public void ResetAfterDivergence() => _trainer.Reset();
    }
}

/// <summary>
/// Per-epoch figures on fixed subsets (≤ 1000 rows) of the training and validation data: mean-field reconstruction
/// error, pseudo-log-likelihood (Bernoulli units: D·log σ(F(x̃) − F(x)) with one fixed random bit flipped per row, as
/// scikit-learn's <c>score_samples</c>) and the free-energy gap mean F(valid) − mean F(train), which grows when the model
/// overfits (Hinton's practical guide, §6).
/// </summary>
internal sealed class RbmMonitor
{
    private const int MaxRows = 1000;
    private readonly RbmMachine _m;
    private readonly float[] _train, _trainFlipped;
    private readonly float[]? _valid, _validFlipped;
    private readonly int _nTrain, _nValid;

    public RbmMonitor(RbmMachine machine, RowMatrix train, RowMatrix? validation, RandomStream random)
    {
        _m = machine;
        (_train, _trainFlipped, _nTrain) = Subset(train, random.Fork(1));
        if (validation is not null) (_valid, _validFlipped, _nValid) = Subset(validation, random.Fork(2));
    }

    private (float[] Rows, float[] Flipped, int Count) Subset(RowMatrix data, RandomStream random)
    {
        int n = Math.Min(MaxRows, data.Rows), d = data.Columns;
        var rows = data.Values.AsSpan(0, n * d).ToArray();
        var flipped = (float[])rows.Clone();
        for (int r = 0; r < n; r++)
        {
            int j = random.NextInt(d);
            flipped[r * d + j] = 1f - flipped[r * d + j];
        }
        return (rows, flipped, n);
    }

    internal sealed record Figures(double TrainPseudoLogLikelihood, double ValidationPseudoLogLikelihood, double TrainReconstructionError,
        double ValidationReconstructionError, double FreeEnergyGap, bool Gaussian)
    {
        public bool AllFinite => double.IsFinite(TrainReconstructionError) && (double.IsNaN(ValidationReconstructionError) || double.IsFinite(ValidationReconstructionError))
            && (Gaussian || double.IsFinite(TrainPseudoLogLikelihood));

        /// <summary>Early-stopping score: validation pseudo-log-likelihood (Bernoulli) or −reconstruction error (Gaussian).</summary>
        public double ValidationScore => Gaussian ? -ValidationReconstructionError : ValidationPseudoLogLikelihood;

        public IReadOnlyDictionary<string, double> ToMetrics()
        {
            var d = new Dictionary<string, double> { ["recon_error"] = TrainReconstructionError };
            if (!Gaussian) d["pseudo_ll"] = TrainPseudoLogLikelihood;
            if (!double.IsNaN(ValidationReconstructionError))
            {
                d["valid_recon_error"] = ValidationReconstructionError;
                if (!Gaussian) d["valid_pseudo_ll"] = ValidationPseudoLogLikelihood;
                d["free_energy_gap"] = FreeEnergyGap;
            }
            return d;
        }
    }

    public Figures Measure()
    {
        var (trainPll, trainRecon, trainF) = Measure(_train, _trainFlipped, _nTrain);
        double validPll = double.NaN, validRecon = double.NaN, gap = double.NaN;
        if (_valid is not null)
        {
            double validF;
            (validPll, validRecon, validF) = Measure(_valid, _validFlipped!, _nValid);
            gap = validF - trainF;
        }
        return new Figures(trainPll, validPll, trainRecon, validRecon, gap, _m.Gaussian);
    }

    private (double Pll, double Recon, double MeanF) Measure(float[] rows, float[] flipped, int n)
    {
        int d = _m.D, h = _m.H;
        var f = new double[n];
        _m.FreeEnergy(rows, n, f, parallel: true);
        double meanF = 0;
        foreach (var v in f) meanF += v;
        meanF /= n;
        double pll = double.NaN;
        if (!_m.Gaussian)
        {
            var ff = new double[n];
            _m.FreeEnergy(flipped, n, ff, parallel: true);
            pll = 0;
            for (int r = 0; r < n; r++)
            {
                double z = ff[r] - f[r]; // log σ(z) = −softplus(−z)
                pll += d * -(Math.Max(-z, 0) + Math.Log(1 + Math.Exp(-Math.Abs(z))));
            }
            pll /= n;
        }
        // Mean-field reconstruction x̂ = E[v | h = σ(c + xW)].
        var p = new float[n * h];
        _m.HiddenPreActivation(rows, n, p, parallel: true);
        TensorPrimitives.Sigmoid(p, p);
        var recon = new float[n * d];
        _m.VisibleInput(p, n, 1f, recon, parallel: true);
        RowOps.AddRowVector(recon, n, d, _m.B);
        if (!_m.Gaussian) TensorPrimitives.Sigmoid(recon, recon);
        TensorPrimitives.Subtract(recon, rows.AsSpan(0, n * d), recon);
        double err = TensorPrimitives.SumOfSquares<float>(recon) / n;
        return (pll, err, meanF);
    }
}
