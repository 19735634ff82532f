using System.Collections.Concurrent;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Numerics.Amx;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Models.Rbm;

/// <summary>Drawing from the RBM: block Gibbs chains, whole draws and parts of draws.</summary>
public sealed partial class RbmModel
{
    private const int ChainsPerSamplingBlock = 32;

    /// <summary>
    /// Block Gibbs sampling: <see cref="SamplingChains"/> chains start from the visible-bias-only model, run
    /// <see cref="SamplingBurnIn"/> sweeps, then yield a sample every <see cref="SamplingThinning"/> sweeps; sample i is
    /// draw i / chains of chain i mod chains. Chains run in fixed blocks of 32 with a stream forked per block, so the
    /// result is a pure function of the seed. The cancellation token is checked before every sweep.
    /// </summary>
    protected override void SampleCore(int count, ulong seed, Span<float> destination) => SampleCore(count, seed, destination, default);

    /// <inheritdoc cref="SampleCore(int, ulong, Span{float})"/>
    protected override void SampleCore(int count, ulong seed, Span<float> destination, CancellationToken cancellationToken)
        => new ChainReader(this, count, seed).Draw(0, count, destination, cancellationToken);

    /// <summary>A reader that keeps its chains between parts: a draw read in order runs every chain once, as the whole draw.</summary>
    private protected override SampleReader CreateSampleReader(int count, ulong seed) => new ChainReader(this, count, seed);

    /// <summary>Rows [<paramref name="start"/>, start + <paramref name="n"/>) of the draw of <paramref name="count"/>: the
    /// chains run from their start to the rows' draws (sweeps growing with start; a reader of the draw keeps them instead).</summary>
    private protected override void SampleRangeCore(int count, int start, int n, ulong seed, Span<float> destination, CancellationToken cancellationToken)
        => new ChainReader(this, count, seed).Draw(start, n, destination, cancellationToken);

    /// <summary>
    /// The Gibbs chains of one draw of <see cref="DensityModel.SampleReader.Count"/> rows: min(<see cref="SamplingChains"/>,
    /// count) chains in blocks of <see cref="ChainsPerSamplingBlock"/>, each block with its stream <c>root.Fork(block)</c>,
    /// its start <c>Fork(0)</c> and its sweeps <c>Fork(1, sweep)</c>, so that row i (draw i / chains of chain i mod chains)
    /// is the whole draw's row. A part at later draws of a block continues its chains; a part at an earlier draw starts
    /// the block again.
    /// </summary>
    /// <remarks>
    /// Memory. Blocks are independent of each other, but a chain's draws are not: draw t continues draw t − 1, and the
    /// rows put draw t of every chain before draw t + 1 of any. A reader that reads in order and runs each chain once
    /// must therefore keep every chain that has draws to come, across the parts that read the other chains; it keeps only
    /// what the next sweep reads, the chains' visible units (D floats a chain: a draw of count ≤ chains rows, up to
    /// chains × D floats in all, the size of one draw of every chain), and drops a block at its last draw. So a draw of
    /// count ≤ chains (one draw a chain) read in order holds only the blocks the current part cuts, and a whole draw
    /// (<c>SampleCore</c>) none between its blocks. The sweeps' scratch (hidden units, uniforms: 32 × (2H + max(D, H))
    /// floats) is one working set a thread, reused; the packed weights are the model's size.
    /// </remarks>
    private sealed class ChainReader : SampleReader
    {
        private readonly RbmModel _rbm;
        private readonly RandomStream _root;
        private readonly int _chains;
        /// <summary>Per block: its chains between parts, or null (not started, or past its last draw).</summary>
        private readonly ChainBlock?[] _blocks;
        private readonly BinaryGemm.QuantizedOperand? _quantizedW, _quantizedWt;
        private readonly RbmMachine.PackedWeights? _packed;
        /// <summary>Working sets of whole blocks, one per thread that sweeps at once.</summary>
        private readonly ScratchPool<RbmMachine.Chains> _workingSets;
        /// <summary>The working set of the last block when it is short (one block only: no pool).</summary>
        private RbmMachine.Chains? _shortBlockWorkingSet;
        /// <summary>Visible units of whole blocks past their last draw, for the next block that keeps its chains.</summary>
        private readonly ConcurrentBag<float[]> _freeVisible = new();

        public ChainReader(RbmModel rbm, int count, ulong seed) : base(rbm, count, seed)
        {
            _rbm = rbm;
            _root = new RandomStream(seed);
            _chains = Math.Min(rbm.SamplingChains, count);
            _blocks = new ChainBlock?[(_chains + ChainsPerSamplingBlock - 1) / ChainsPerSamplingBlock];
            _workingSets = new(() => new RbmMachine.Chains(rbm.Machine, ChainsPerSamplingBlock));
            if (_chains == 0) return;
            // Bernoulli units with AMX (decided here, on the calling thread): both products of a sweep are exact (0/1 samples).
            BinaryGemm.QuantizedOperand? quantizedW = null, quantizedWt = null;
            float[]? maxima = null;
            if (!BinaryGemm.IsUsable || !rbm.Machine.QuantizeWeights(ref quantizedW, ref quantizedWt, ref maxima)) quantizedW = quantizedWt = null;
            _quantizedW = quantizedW;
            _quantizedWt = quantizedWt;
            // The float GEMM's operands: W and Wᵀ packed once for every sweep.
            _packed = quantizedW is null ? rbm.Machine.PackWeights() : null;
        }

        private protected override void ReadCore(int start, int n, Span<float> destination, CancellationToken cancellationToken)
            => Draw(start, n, destination, cancellationToken);

        /// <summary>Rows [start, start + n) into the destination (n × D), blocks of chains in parallel.</summary>
        public unsafe void Draw(int start, int n, Span<float> destination, CancellationToken cancellationToken)
        {
            if (n <= 0) return;
            int d = _rbm.Dimension, firstDraw = start / _chains, lastDraw = (start + n - 1) / _chains;
            // Chains write their draws straight into the destination (a draw-sized array copied into it at the end doubled
            // the memory of a draw); a span cannot enter the lambda, so it gets the pinned address.
            fixed (float* pinned = destination)
            {
                nint address = (nint)pinned;
                DeepDensityEnvironment.For(0, _blocks.Length,
                    b => DrawBlock(b, start, n, firstDraw, lastDraw, new Span<float>((float*)address, n * d), cancellationToken));
            }
            _rbm._standardizer?.Inverse(destination, n);
        }

        /// <summary>
        /// Block <paramref name="b"/>'s rows of the part [start, start + n) (draws <paramref name="firstDraw"/> to
        /// <paramref name="lastDraw"/>) into <paramref name="output"/>: its chains, kept or started, run in a working set
        /// to each draw the part holds rows of. Only a run that succeeds is kept (the visible units and the draw and sweep
        /// it reached), so a cancelled or failed part leaves the block at its last kept draw; a run that reached the
        /// block's last draw of the whole draw drops the block.
        /// </summary>
        private void DrawBlock(int b, int start, int n, int firstDraw, int lastDraw, Span<float> output, CancellationToken cancellationToken)
        {
            int d = _rbm.Dimension, first = b * ChainsPerSamplingBlock, m = Math.Min(ChainsPerSamplingBlock, _chains - first);
            // The block's rows at draw t are t·chains + first + c for its chains c; its last draw is the last with a row.
            int finalDraw = (Count - 1 - first) / _chains;
            long finalEnd = Math.Min((long)finalDraw * _chains + first + m, Count);
            var block = _blocks[b] ??= new ChainBlock(_root.Fork((ulong)b));
            RbmMachine.Chains? work = null;
            int draw = block.Draw;
            long sweep = block.Sweep;
            bool finished = false;
            try
            {
                for (int t = firstDraw; t <= lastDraw; t++)
                {
                    long blockRow = (long)t * _chains + first;
                    long lo = Math.Max(blockRow, start), hi = Math.Min(blockRow + m, (long)start + n);
                    if (lo >= hi) continue;
                    if (work is null)
                    {
                        work = RentWorkingSet(m);
                        // Continue the kept chains when they are at or before t; else start them again.
                        if (draw >= 0 && draw <= t) block.Visible.CopyTo(work.V, 0);
                        else draw = -1;
                    }
                    if (draw < 0)
                    {
                        sweep = 0;
                        _rbm.Machine.InitializeFromBias(work, _rbm.Machine.B, block.Random.Fork(0));
                        for (int s = 0; s < _rbm.SamplingBurnIn; s++) Sweep(work, block.Random, sweep++, cancellationToken);
                        draw = 0;
                    }
                    for (; draw < t; draw++)
                        for (int s = 0; s < _rbm.SamplingThinning; s++) Sweep(work, block.Random, sweep++, cancellationToken);
                    work.V.AsSpan((int)(lo - blockRow) * d, (int)(hi - lo) * d).CopyTo(output.Slice((int)(lo - start) * d));
                    finished = t == finalDraw && hi == finalEnd;
                }
                if (work is null) return; // the part holds no row of this block
                if (finished)
                {
                    if (block.Visible.Length == ChainsPerSamplingBlock * d) _freeVisible.Add(block.Visible);
                    _blocks[b] = null;
                    return;
                }
                if (block.Visible.Length == 0)
                    block.Visible = m == ChainsPerSamplingBlock && _freeVisible.TryTake(out var free) ? free : new float[m * d];
                work.V.AsSpan(0, m * d).CopyTo(block.Visible);
                block.Draw = draw;
                block.Sweep = sweep;
            }
            finally
            {
                if (work is not null) ReturnWorkingSet(work);
            }
        }

        private RbmMachine.Chains RentWorkingSet(int m)
            => m == ChainsPerSamplingBlock ? _workingSets.Rent() : _shortBlockWorkingSet ??= new RbmMachine.Chains(_rbm.Machine, m);

        private void ReturnWorkingSet(RbmMachine.Chains work)
        {
            if (work != _shortBlockWorkingSet) _workingSets.Return(work);
        }

        /// <summary>One Gibbs sweep of a block's chains with its stream for sweep <paramref name="sweep"/>; the token is
        /// checked before every sweep.</summary>
        private void Sweep(RbmMachine.Chains work, RandomStream random, long sweep, CancellationToken cancellationToken)
        {
            cancellationToken.ThrowIfCancellationRequested();
            _rbm.Machine.GibbsSweep(work, random.Fork(1, (ulong)sweep), parallel: false, _quantizedW, _quantizedWt, _packed);
        }

        /// <summary>A block of chains kept between parts: its stream, and the visible units of its chains at draw
        /// <see cref="Draw"/> (−1: not started, no units) after <see cref="Sweep"/> sweeps.</summary>
        private sealed class ChainBlock(RandomStream random)
        {
            public RandomStream Random { get; } = random;
            public float[] Visible = Array.Empty<float>();
            public int Draw = -1;
            public long Sweep;
        }
    }
}
