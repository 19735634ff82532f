using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Numerics.Amx;
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
/// <para>Scratch is bounded by <see cref="RowsPerChunk"/>, not by the batch: a minibatch (or a set of persistent chains)
/// larger than that runs in chunks of up to RowsPerChunk data rows and RowsPerChunk chain rows, each through the same
/// regions, accumulating the statistics (the velocity GEMM continues on the same accumulator, bias sums run on) and
/// updating the parameters after the last chunk, with a cancellation check between chunks. A batch that fits one chunk
/// is computed exactly as before; a chunked one is a fixed function of the data too (chunk c draws from the step's
/// stream forked by c), so results never depend on the thread count. What grows with the chains is PCD's persistent
/// hidden sample (chains × H floats): training state, bounded by <see cref="RbmOptions.PersistentChains"/>.</para>
/// </summary>
internal sealed partial class RbmTrainer
{
    private readonly RbmMachine _m;
    private readonly int _batch, _chains, _k;
    private readonly bool _persistent;
    private readonly float[] _visible;   // (data + chain rows of a chunk) × D: data rows, then negative-phase visible samples
    private readonly float[] _hidden;    // (data + chain rows of a chunk) × H: positive probabilities, then negative probabilities
    private readonly float[] _chainHidden; // hidden sample driving the negative chain: all chains × H (PCD, persistent), a chunk's (CD)
    private readonly float[] _uniform;   // uniforms of one region: each block uses the part at its first column
    /// <summary>Data rows and chain rows per chunk of a step (see the class remarks).</summary>
    internal const int RowsPerChunk = 2048;
    /// <summary>Weight rows per block of the parallel weight update (whole GEMM micro-panels; fixed, so results do not depend on threads).</summary>
    private const int RowsPerUpdateBlock = 198;
    private readonly float[] _velW, _velB, _velC;
    private Gemm.PackedOperand? _packedStatistics;
    // The exact binary products (Bernoulli units with AMX; see StepChunk): W and Wᵀ quantized once per chunk from W's
    // column and row maxima; the 0/1 rows packed as bytes for the hidden regions, the chains' hidden samples for the
    // visible region, and the visible rows transposed with the quantized statistics for the weight update, whose blocks
    // are whole 16-row tiles.
    private BinaryGemm.QuantizedOperand? _quantizedW, _quantizedWt, _quantizedStatistics;
    private BinaryGemm.BinaryOperand? _packedVisible, _packedChainHidden, _packedVisibleTransposed;
    /// <summary>W's column maxima (H), then its row maxima (D): the scales of the quantized W and Wᵀ.</summary>
    private float[]? _weightMaxima;
    // The machine's WeightsVersion that _quantizedW, and _quantizedWt with _weightMaxima, hold (−1: none). The last
    // weight update of a step quantizes Wᵀ and finds W's maxima from each block of new weight rows while they are in
    // cache, so the next step only quantizes W: two passes over W fewer per step, and the same bytes as quantizing
    // afterwards (a maximum and the quantization of a row do not depend on how the rows are blocked).
    private int _quantizedWVersion = -1, _quantizedWtVersion = -1;
    private float[]? _blockColumnMaxima;
    private bool[]? _blockFinite;
    /// <summary>Weight rows per block of the exact weight update: whole 16-row tiles of the product and whole 32-row
    /// panels of the quantized Wᵀ that the block makes from its rows.</summary>
    private const int RowsPerExactUpdateBlock = 4 * BinaryGemm.PanelWidth;
    /// <summary>Whether the last hidden region quantized the stacked statistics for the exact weight update (each of its
    /// column blocks, whole panels, from the columns it had just written).</summary>
    private bool _statisticsQuantized;
    /// <summary>Rows of the stacked block that _packedVisible holds (−1: none): when all of them, the weight update's Vᵀ
    /// is its transpose rather than a second packing of the floats.</summary>
    private int _packedVisibleRows = -1;
    private readonly float[] _colSums, _gb, _gc;
    private bool _chainsInitialized;
    private readonly CancellationToken _cancellationToken;
    /// <summary>Rows per block of the persistent chains' initialisation (between cancellation checks).</summary>
    private const int RowsPerInitBlock = 4096;

    /// <summary>Whether the binary products fuse the passes that follow a block's product: the weight step into the pass
    /// that writes the velocity (the exact path and the sums of selected rows), and, on the exact path, the quantization
    /// of W's new rows and of the statistics' columns into the blocks that have just written them (the default; tests
    /// turn it off to check the separate passes give the same bits).</summary>
    internal bool FusePasses { get; init; } = true;

    /// <summary>Every step of this trainer has momentum 0 (<see cref="Step"/> refuses another): no step reads the
    /// velocity, so the exact path's fused weight step does not store it (a W-sized write per step fewer).</summary>
    internal bool MomentumIsZero { get; init; }

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
        int dataRows = Math.Min(_batch, RowsPerChunk), chainRows = Math.Min(_chains, RowsPerChunk);
        int rows = dataRows + chainRows;
        _visible = new float[rows * machine.D];
        _hidden = new float[rows * machine.H];
        _chainHidden = new float[checked((persistent ? _chains : chainRows) * machine.H)];
        _uniform = new float[Math.Max(dataRows, chainRows) * Math.Max(machine.D, machine.H)];
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
    /// <summary>The scaled hidden statistics of the last step: P₀/n over the data rows, then −P_k/m over the chain rows.</summary>
    internal ReadOnlySpan<float> LastHiddenStatistics(int count) => _hidden.AsSpan(0, (count + NegativeRows(count)) * _m.H);

    /// <summary>Forgets momentum and the persistent chains (after a divergence restore).</summary>
    public void Reset()
    {
        Array.Clear(_velW); Array.Clear(_velB); Array.Clear(_velC);
        _chainsInitialized = false;
        _quantizedWVersion = _quantizedWtVersion = -1;
    }

    /// <summary>
    /// Selects rows <paramref name="order"/>[start..start+count) of <paramref name="data"/> as the next positive block. The
    /// copy happens inside the next <see cref="Step"/>, spread over its first parallel region (random rows of a large
    /// matrix are memory-latency bound: a serial copy cost ~5% of a PCD step).
    /// </summary>
    public void Gather(RowMatrix data, int[] order, int start, int count)
    {
        _gatherData = data; _gatherOrder = order; _gatherStart = start; _gatherCount = count; _keepGathered = false;
    }

    private RowMatrix? _gatherData;
    private int[]? _gatherOrder;
    private int _gatherStart, _gatherCount;

    /// <summary>Copies the pending gathered rows [r0, r1) of the batch into the positive block, from its row <paramref name="offset"/> on
    /// (batch row r goes to block row r − offset: the rows of a chunk).</summary>
    private void CopyGatheredRows(int r0, int r1, int offset = 0)
    {
        int d = _m.D;
        for (int r = r0; r < r1; r++) CopyDataRow(_gatherData!.Row(_gatherOrder![_gatherStart + r]), _visible.AsSpan((r - offset) * d, d));
    }

    /// <summary>Loads rows directly (tests): every later <see cref="Step"/> trains on them until the next <see cref="Gather"/>.</summary>
    internal void SetBatch(ReadOnlySpan<float> rows, int count)
    {
        var order = new int[count];
        for (int i = 0; i < count; i++) order[i] = i;
        Gather(new RowMatrix(rows[..(count * _m.D)].ToArray(), count, _m.D), order, 0, count);
        _keepGathered = true;
    }

    private bool _keepGathered;

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
        if (MomentumIsZero && momentum != 0f) throw new ArgumentException("This trainer was made for momentum 0.", nameof(momentum));
        int negRows = NegativeRows(count);
        if (_gatherData is null) throw new InvalidOperationException("Step needs the rows of Gather or SetBatch.");
        if (_gatherCount != count) throw new ArgumentException(FormattableString.Invariant($"Gather selected {_gatherCount} rows, Step was given {count}."), nameof(count));
        int chunks = (Math.Max(count, negRows) + RowsPerChunk - 1) / RowsPerChunk;
        // One chunk: the rows are copied inside the first region (spread over its blocks); CD and the first PCD step
        // need them before it. Several chunks: each copies its own rows.
        bool gatherInRegion = chunks == 1 && _persistent && _chainsInitialized;
        if (chunks == 1 && !gatherInRegion) CopyGatheredRows(0, count);
        if (_persistent && !_chainsInitialized)
        {
            InitializeChains(count, negRows, random.Fork(0xC4A1), chunked: chunks > 1);
            _chainsInitialized = true;
        }
        for (int c = 0; c < chunks; c++)
        {
            _cancellationToken.ThrowIfCancellationRequested();
            int p0 = Math.Min(c * RowsPerChunk, count), cp = Math.Min(RowsPerChunk, count - p0);
            int q0 = Math.Min(c * RowsPerChunk, negRows), cn = Math.Min(RowsPerChunk, negRows - q0);
            if (chunks > 1) CopyGatheredRows(p0, p0 + cp, offset: p0);
            var chunk = new Chunk(cp, cn, _persistent ? q0 : 0, count, negRows, First: c == 0, Last: c == chunks - 1);
            StepChunk(chunk, learningRate, momentum, weightDecay, c == 0 ? random : random.Fork(0xC4C4, (ulong)c), gatherInRegion);
        }
        if (!_keepGathered) _gatherData = null;

        TensorPrimitives.Multiply(_velB, momentum, _velB);
        TensorPrimitives.MultiplyAdd(_gb, learningRate, _velB, _velB);
        TensorPrimitives.Add(m.B, _velB, m.B);
        TensorPrimitives.Multiply(_velC, momentum, _velC);
        TensorPrimitives.MultiplyAdd(_gc, learningRate, _velC, _velC);
        TensorPrimitives.Add(m.C, _velC, m.C);
    }

    /// <summary>
    /// The rows of one chunk of a step: <paramref name="DataRows"/> data rows (then <paramref name="ChainRows"/> chain rows)
    /// in the buffers, chains from <paramref name="ChainStart"/> in <see cref="_chainHidden"/>; statistics are scaled by
    /// the step's totals <paramref name="Count"/> and <paramref name="NegRows"/>. The first chunk starts the sums (and
    /// the velocity from momentum × velocity), the last one finishes them and moves the weights.
    /// </summary>
    private readonly record struct Chunk(int DataRows, int ChainRows, int ChainStart, int Count, int NegRows, bool First, bool Last)
    {
        public int Stacked => DataRows + ChainRows;
    }

    /// <summary>PCD's fantasy chains start at hidden samples of the first data rows (repeated if there are more
    /// chains), in fixed blocks of rows with a cancellation check between them (one σ over a 200k-row batch took seconds).</summary>
    private void InitializeChains(int count, int negRows, RandomStream random, bool chunked)
    {
        var m = _m;
        int d = m.D, h = m.H;
        int sampled = Math.Min(count, negRows);
        if (!chunked)
        {
            // The data rows are in the buffer (one chunk).
            var pPos = _hidden.AsSpan(0, sampled * h);
            m.HiddenPreActivation(_visible.AsSpan(0, sampled * d), sampled, pPos, parallel: true);
            var u = _uniform.AsSpan(0, count * h);
            random.FillUniform(u);
            for (int r0 = 0; r0 < sampled; r0 += RowsPerInitBlock)
            {
                _cancellationToken.ThrowIfCancellationRequested();
                int rows = Math.Min(RowsPerInitBlock, sampled - r0);
                var p = pPos.Slice(r0 * h, rows * h);
                VectorMath.Sigmoid(p, default, 1f, p);
                RbmMachine.Bernoulli(p, u.Slice(r0 * h, rows * h), _chainHidden.AsSpan(r0 * h, rows * h));
            }
        }
        else
        {
            for (int r0 = 0; r0 < sampled; r0 += RowsPerChunk)
            {
                _cancellationToken.ThrowIfCancellationRequested();
                int rows = Math.Min(RowsPerChunk, sampled - r0);
                CopyGatheredRows(r0, r0 + rows, offset: r0);
                var p = _hidden.AsSpan(0, rows * h);
                m.HiddenPreActivation(_visible.AsSpan(0, rows * d), rows, p, parallel: true);
                VectorMath.Sigmoid(p, default, 1f, p);
                var u = _uniform.AsSpan(0, rows * h);
                random.Fork((ulong)(r0 / RowsPerChunk)).FillUniform(u);
                RbmMachine.Bernoulli(p, u, _chainHidden.AsSpan(r0 * h, rows * h));
            }
        }
        for (int r = sampled; r < negRows; r++) _chainHidden.AsSpan((r % count) * h, h).CopyTo(_chainHidden.AsSpan(r * h, h));
    }

    /// <summary>The Gibbs chains and the statistics of one chunk (the whole step when the batch fits one chunk).</summary>
    private void StepChunk(Chunk chunk, float learningRate, float momentum, float weightDecay, RandomStream random, bool gatherInRegion)
    {
        var m = _m;
        int d = m.D, h = m.H;
        int stacked = chunk.Stacked;
        // Bernoulli units on a CPU with AMX (decided here, on the calling thread): every product of the step has a 0/1
        // operand (data rows, the chains' samples), so all of them are BinaryGemm's exact integer products. W and Wᵀ are
        // quantized once for W's current values (see QuantizeWeights: Wᵀ usually comes from the last step's update).
        BinaryGemm.QuantizedOperand? quantizedW = null, quantizedWt = null;
        if (BinaryGemm.IsUsable && QuantizeWeights())
        {
            quantizedW = _quantizedW;
            quantizedWt = _quantizedWt;
        }
        // CD starts its chains at hidden samples of the data; the positive probabilities are kept for the statistics.
        if (!_persistent) HiddenRegion(chunk, 0, chunk.DataRows, sampleFirstRow: 0, random.Fork(1), final: false, quantizedW);
        for (int s = 1; s <= _k; s++)
        {
            _cancellationToken.ThrowIfCancellationRequested();
            var stepRandom = random.Fork(2, (ulong)s);
            bool last = s == _k;
            VisibleRegion(chunk, stepRandom.Fork(1), gatherInRegion && s == 1, quantizedWt);
            if (_persistent && last) HiddenRegion(chunk, 0, stacked, sampleFirstRow: chunk.DataRows, stepRandom.Fork(2), final: true, quantizedW);
            else HiddenRegion(chunk, chunk.DataRows, chunk.ChainRows, sampleFirstRow: last ? -1 : chunk.DataRows, stepRandom.Fork(2), final: last, quantizedW);
        }

        _cancellationToken.ThrowIfCancellationRequested();
        // The stacked hidden statistics are now scaled: positive rows by 1/n, negative rows by −1/m.
        var vAll = _visible.AsSpan(0, stacked * d);
        var hAll = _hidden.AsSpan(0, stacked * h);
        // The velocity (or the kept gradient) continues on one accumulator over the chunks: momentum·velocity first.
        float beta = chunk.First ? momentum : 1f;

        if (KeepGradient)
        {
            VisibleBiasGradient(chunk, 0, d);
            GradW ??= new float[d * h];
            Gemm.Multiply(true, false, d, h, stacked, 1f, vAll, d, hAll, h, chunk.First ? 0f : 1f, GradW, h, allowParallel: true);
            if (!chunk.Last) return;
            GradB = _gb.ToArray(); GradC = _gc.ToArray();
            TensorPrimitives.Multiply(_velW, momentum, _velW);
            TensorPrimitives.MultiplyAdd(GradW, learningRate, _velW, _velW);
            if (weightDecay > 0) TensorPrimitives.MultiplyAdd(m.W, -learningRate * weightDecay, _velW, _velW);
            TensorPrimitives.Add(m.W, _velW, m.W);
            m.WeightsVersion++;
        }
        else
        {
            // velocity = momentum·velocity + lr·Vᵀ·P, then the weight step, per fixed block of weight rows in parallel: one
            // barrier for the GEMM and the elementwise passes over W. Gemm's result for a row does not depend on the block
            // it is computed in, so this equals one big product.
            float decay = -learningRate * weightDecay;
            // With AMX (binary visible rows) the product is BinaryGemm's exact one, in blocks of whole 16-row tiles.
            if (quantizedW is not null
                && PackVisibleTransposed(stacked, vAll)
                && (_statisticsQuantized || BinaryGemm.TryQuantize(false, stacked, h, hAll, h, ref _quantizedStatistics, parallel: true)))
            {
                ExactWeightUpdate(chunk, learningRate, beta, decay);
                return;
            }
            int updateBlocks = (d + RowsPerUpdateBlock - 1) / RowsPerUpdateBlock;
            // Bernoulli units: Vᵀ's rows are the visible units' lists of the rows where they are on (OnesGemm).
            bool ones = StartVisibleColumnIndex(stacked);
            // The statistics are every block's right operand: packed once (on the worker team) rather than once per block.
            if (!ones) Gemm.Pack(false, stacked, h, hAll, h, ref _packedStatistics);
            var packedStatistics = ones ? null : _packedStatistics;
            unsafe
            {
                fixed (float* pv = _visible, ph = _hidden)
                {
                    IntPtr vPtr = (IntPtr)pv, hPtr = (IntPtr)ph;
                    RunBlocks(updateBlocks, (long)d * h * stacked, exact: false, blk =>
                    {
                        int i0 = blk * RowsPerUpdateBlock, rows = Math.Min(RowsPerUpdateBlock, d - i0);
                        VisibleBiasGradient(chunk, i0, rows);
                        var v = new ReadOnlySpan<float>((float*)vPtr, stacked * d);
                        var p = new ReadOnlySpan<float>((float*)hPtr, stacked * h);
                        var vel = _velW.AsSpan(i0 * h, rows * h);
                        var w = m.W.AsSpan(i0 * h, rows * h);
                        // The last chunk's sums also move W (the weight step in the pass that writes the velocity).
                        bool fuse = chunk.Last && FusePasses;
                        bool summed = ones && _visibleColumnOnes.TryIndexColumns(v, d, i0, rows)
                            && OnesGemm.TryMultiply(_visibleColumnOnes, i0, rows, h, learningRate, p, h, beta, vel, h,
                                weights: fuse ? w : default, decay: decay, storeC: !(fuse && MomentumIsZero));
                        if (!summed) Gemm.Multiply(true, false, rows, h, stacked, learningRate, v[i0..], d, p, h, beta, vel, h, allowParallel: false, packedStatistics);
                        if (chunk.Last && !(summed && fuse)) WeightStep(w, vel, decay);
                    });
                }
            }
            if (chunk.Last) m.WeightsVersion++;
        }
    }

    /// <summary>velocity += decay·w (when decay ≠ 0), then w += velocity: one pass over both (the bits of the two
    /// TensorPrimitives passes it replaces: the product and the sums are rounded separately, as there).</summary>
    private static void WeightStep(Span<float> w, Span<float> velocity, float decay)
    {
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; j + 16 <= w.Length; j += 16)
            {
                var wj = Vector512.Create((ReadOnlySpan<float>)w.Slice(j, 16));
                var vj = Vector512.Create((ReadOnlySpan<float>)velocity.Slice(j, 16));
                var next = VectorMath.WeightStep(wj, ref vj, decay);
                vj.CopyTo(velocity.Slice(j, 16));
                next.CopyTo(w.Slice(j, 16));
            }
        }
        for (; j < w.Length; j++)
        {
            float vj = velocity[j];
            w[j] = VectorMath.WeightStep(w[j], ref vj, decay);
            velocity[j] = vj;
        }
    }

    /// <summary>Regions whose float products are below this many multiply-adds run their blocks on the calling thread.
    /// A region's blocks also share the step's small buffers, and on two cores the regions of RBMs up to 128 × 200 or
    /// 256 × 100 (products of 2.6M–5.1M multiply-adds) ran 5–35 % slower than on one (in-process interleaved timings,
    /// session 13); from 256 × 200 and 784 × 100 on, two cores gain 8–40 %.</summary>
    private const long ParallelMultiplyAdds = 3L << 21;

    /// <summary>Fixed column-block width: about four blocks, whole 16-column GEMM micro-panels.</summary>
    private static int ColumnBlockWidth(int width) => Math.Max(16, (width + 63) / 64 * 16);

    /// <param name="exact">Whether the blocks' products are BinaryGemm's, which are several times cheaper than the float
    /// GEMM's: they pay for a parallel region only from <see cref="BinaryGemm.ParallelMultiplyAdds"/>.</param>
    private static void RunBlocks(int blocks, long multiplyAdds, bool exact, Action<int> body)
    {
        if (blocks <= 1 || multiplyAdds < (exact ? BinaryGemm.ParallelMultiplyAdds : ParallelMultiplyAdds)) for (int b = 0; b < blocks; b++) body(b);
        else DeepDensityEnvironment.For(0, blocks, body);
    }

    /// <summary>
    /// Chains' visible sample x_k = draw(b + h·Wᵀ) from their hidden sample, per fixed block of visible columns (stream
    /// forked by block). With <paramref name="gather"/>, block b also copies its share of the pending data rows.
    /// </summary>
    /// <param name="quantizedWt">Wᵀ for BinaryGemm (Bernoulli units with AMX), or null: the float GEMM. The chains'
    /// hidden samples are 0/1, so their product with Wᵀ is then the exact one.</param>
    private void VisibleRegion(Chunk chunk, RandomStream random, bool gather, BinaryGemm.QuantizedOperand? quantizedWt = null)
    {
        var m = _m;
        int count = chunk.DataRows, negRows = chunk.ChainRows;
        int d = m.D, h = m.H, width = ColumnBlockWidth(d), blocks = (d + width - 1) / width;
        bool exact = quantizedWt is not null && BinaryGemm.TryPack(false, negRows, h, _chainHidden.AsSpan(chunk.ChainStart * h), h, ref _packedChainHidden);
        bool ones = !exact && IndexChainHidden(chunk.ChainStart, negRows);
        var packedChainHidden = _packedChainHidden;
        RunBlocks(blocks, (long)negRows * d * h, exact, blk =>
        {
            if (gather) CopyGatheredRows(blk * count / blocks, (blk + 1) * count / blocks);
            int j0 = blk * width, w = Math.Min(width, d - j0);
            var xNeg = _visible.AsSpan(count * d, negRows * d);
            if (exact) BinaryGemm.Multiply(packedChainHidden!, quantizedWt!, j0, w, 1f, 0f, xNeg, d);
            else if (!(ones && OnesGemm.TryMultiply(_chainHiddenOnes, 0, negRows, w, 1f, m.W.AsSpan(j0 * h), h, 0f, xNeg[j0..], d, transposeB: true)))
                Gemm.Multiply(false, true, negRows, w, h, 1f, _chainHidden.AsSpan(chunk.ChainStart * h), h, m.W.AsSpan(j0 * h), h, 0f, xNeg[j0..], d, allowParallel: false);
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
                    VectorMath.Sigmoid(row, bias, 1f, row);
                    RbmMachine.Bernoulli(row, u.Slice(r * w, w), row);
                }
            }
        });
    }

    /// <summary>Visible bias gradient ⟨x₀⟩ − ⟨x_k⟩ for visible units [i0, i0 + width): the chunk's data rows, then chain
    /// rows, of _visible are added to running sums (started by the first chunk), scaled after the last.</summary>
    private void VisibleBiasGradient(Chunk chunk, int i0, int width)
    {
        int d = _m.D, count = chunk.DataRows;
        var gb = _gb.AsSpan(i0, width);
        var negSum = _colSums.AsSpan(i0, width);
        if (chunk.First) { gb.Clear(); negSum.Clear(); }
        for (int r = 0; r < count; r++) TensorPrimitives.Add(gb, _visible.AsSpan(r * d + i0, width), gb);
        for (int r = count; r < chunk.Stacked; r++) TensorPrimitives.Add(negSum, _visible.AsSpan(r * d + i0, width), negSum);
        if (!chunk.Last) return;
        TensorPrimitives.Multiply(gb, 1f / chunk.Count, gb);
        TensorPrimitives.MultiplyAdd(negSum, -1f / chunk.NegRows, gb, gb);
    }

    /// <summary>
    /// Hidden probabilities σ(c + v·W) of visible rows [<paramref name="firstRow"/>, +<paramref name="rows"/>), per fixed
    /// block of hidden columns. Unless <paramref name="sampleFirstRow"/> is −1, the chains' hidden sample is drawn from
    /// the probabilities of rows [sampleFirstRow, +negRows). <paramref name="final"/>: scale the positive rows by 1/count
    /// and the negative rows by −1/negRows and sum the block's columns into the hidden bias gradient.
    /// </summary>
    /// <param name="quantizedW">W for BinaryGemm, or null: the float GEMM. The rows are packed here; if one is not all
    /// 0/1 (never, for validated binary data and the chains' samples) the region takes the float GEMM.</param>
    private void HiddenRegion(Chunk chunk, int firstRow, int rows, int sampleFirstRow, RandomStream random, bool final,
        BinaryGemm.QuantizedOperand? quantizedW = null)
    {
        var m = _m;
        int count = chunk.DataRows, negRows = chunk.ChainRows;
        int chainOffset = chunk.ChainStart * m.H;
        int d = m.D, h = m.H, width = ColumnBlockWidth(h), blocks = (h + width - 1) / width;
        bool exact = quantizedW is not null && BinaryGemm.TryPack(false, rows, d, _visible.AsSpan(firstRow * d), d, ref _packedVisible, parallel: true);
        _packedVisibleRows = exact && firstRow == 0 ? rows : -1;
        bool ones = !exact && IndexVisibleRows(firstRow, rows);
        var packedVisible = _packedVisible;
        // The last region's blocks also quantize the statistics for the exact weight update when they are whole panels.
        var statistics = FusePasses && final && exact && width % BinaryGemm.PanelWidth == 0 ? BinaryGemm.Shape(chunk.Stacked, h, ref _quantizedStatistics) : null;
        var statisticsFinite = statistics is null ? null : _blockFinite is { } bf && bf.Length >= blocks ? bf : _blockFinite = new bool[blocks];
        RunBlocks(blocks, (long)rows * d * h, exact, blk =>
        {
            int j0 = blk * width, w = Math.Min(width, h - j0);
            // The same blocks (and so the same random streams) either way: only the product's rounding differs.
            if (exact) BinaryGemm.Multiply(packedVisible!, quantizedW!, j0, w, 1f, 0f, _hidden.AsSpan(firstRow * h), h);
            else if (!(ones && OnesGemm.TryMultiply(_visibleOnes, 0, rows, w, 1f, m.W.AsSpan(j0), h, 0f, _hidden.AsSpan(firstRow * h + j0), h)))
                Gemm.Multiply(false, false, rows, w, d, 1f, _visible.AsSpan(firstRow * d), d, m.W.AsSpan(j0), h, 0f,
                    _hidden.AsSpan(firstRow * h + j0), h, allowParallel: false);
            var bias = m.C.AsSpan(j0, w);
            var u = sampleFirstRow >= 0 ? _uniform.AsSpan(negRows * j0, negRows * w) : default;
            if (sampleFirstRow >= 0) random.Fork((ulong)blk).FillUniform(u);
            var gc = _gc.AsSpan(j0, w);
            if (final && chunk.First) gc.Clear();
            // Each row's σ, the chains' draw from it and (when this region computes every stacked row) its statistic, one
            // row at a time while the row is in L1: the same operations per element, and the same row order of the sums,
            // as separate passes over the block.
            bool statisticsHere = final && firstRow == 0 && rows == count + negRows;
            for (int r = firstRow; r < firstRow + rows; r++)
            {
                var row = _hidden.AsSpan(r * h + j0, w);
                VectorMath.Sigmoid(row, bias, 1f, row);
                int chain = r - sampleFirstRow;
                if (sampleFirstRow >= 0 && chain >= 0 && chain < negRows)
                    RbmMachine.Bernoulli(row, u.Slice(chain * w, w), _chainHidden.AsSpan(chainOffset + chain * h + j0, w));
                if (statisticsHere) AddStatistic(chunk, r, row, gc);
            }
            if (final && !statisticsHere)
                for (int r = 0; r < count + negRows; r++) AddStatistic(chunk, r, _hidden.AsSpan(r * h + j0, w), gc);
            if (!final) return;
            if (statistics is not null)
                statisticsFinite![blk] = BinaryGemm.QuantizePanels(false, _hidden.AsSpan(0, (count + negRows) * h), h, statistics,
                    j0 / BinaryGemm.PanelWidth, (w + BinaryGemm.PanelWidth - 1) / BinaryGemm.PanelWidth);
        });
        if (final) _statisticsQuantized = statistics is not null && !statisticsFinite.AsSpan(0, blocks).Contains(false);
    }

    /// <summary>Stacked row r's hidden probabilities (a block's columns) become its statistic, scaled by 1/count (data
    /// rows) or −1/negRows (chain rows), and are added to the hidden bias gradient.</summary>
    private static void AddStatistic(Chunk chunk, int r, Span<float> row, Span<float> gc)
    {
        TensorPrimitives.Multiply(row, r < chunk.DataRows ? 1f / chunk.Count : -1f / chunk.NegRows, row);
        // A saturated unit's σ below e^-87, or any σ below ~1e-36 times 1/count, is a subnormal float, and each is read
        // by d multiply-adds of the weight update (a microcode assist each): on 784 binary inputs with 500 units it made
        // that product 5× slower than the others. Flushed to 0 here (a change below 2^-126).
        VectorMath.FlushSubnormals(row);
        TensorPrimitives.Add(gc, row, gc);
    }
}
