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
    /// is the whole draw's row. Each block keeps its chains at the last draw it reached: a part at later draws continues
    /// them, a part at an earlier draw starts the block again. Memory: the chains' state (chains × (D + 2H + max(D, H))
    /// floats) and the packed weights, whatever the count.
    /// </summary>
    private sealed class ChainReader : SampleReader
    {
        private readonly RbmModel _rbm;
        private readonly RandomStream _root;
        private readonly int _chains;
        private readonly ChainBlock[] _blocks;
        private readonly BinaryGemm.QuantizedOperand? _quantizedW, _quantizedWt;
        private readonly RbmMachine.PackedWeights? _packed;

        public ChainReader(RbmModel rbm, int count, ulong seed) : base(rbm, count, seed)
        {
            _rbm = rbm;
            _root = new RandomStream(seed);
            _chains = Math.Min(rbm.SamplingChains, count);
            _blocks = new ChainBlock[(_chains + ChainsPerSamplingBlock - 1) / ChainsPerSamplingBlock];
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
            int d = _rbm.Dimension, chains = _chains, firstDraw = start / chains, lastDraw = (start + n - 1) / chains;
            // Chains write their draws straight into the destination (a draw-sized array copied into it at the end doubled
            // the memory of a draw); a span cannot enter the lambda, so it gets the pinned address.
            fixed (float* pinned = destination)
            {
                nint address = (nint)pinned;
                DeepDensityEnvironment.For(0, _blocks.Length, b =>
                {
                    var output = new Span<float>((float*)address, n * d);
                    int first = b * ChainsPerSamplingBlock, m = Math.Min(ChainsPerSamplingBlock, chains - first);
                    for (int t = firstDraw; t <= lastDraw; t++)
                    {
                        // This block's rows at draw t: t·chains + first + c for its chains c, those of the part.
                        long blockRow = (long)t * chains + first;
                        long lo = Math.Max(blockRow, start), hi = Math.Min(blockRow + m, (long)start + n);
                        if (lo >= hi) continue;
                        var block = _blocks[b] ??= new ChainBlock(_rbm.Machine, m, _root.Fork((ulong)b));
                        block.AdvanceTo(t, this, cancellationToken);
                        block.Chains.V.AsSpan((int)(lo - blockRow) * d, (int)(hi - lo) * d).CopyTo(output.Slice((int)(lo - start) * d));
                    }
                });
            }
            _rbm._standardizer?.Inverse(destination, n);
        }

        /// <summary>One block of chains and the draw it holds (−1: not started).</summary>
        private sealed class ChainBlock(RbmMachine machine, int chains, RandomStream random)
        {
            private long _sweep;
            private int _draw = -1;
            public RbmMachine.Chains Chains { get; private set; } = null!;

            /// <summary>Runs the chains to draw <paramref name="t"/>: from their start (burn-in) when they are past it or not
            /// started, then <see cref="SamplingThinning"/> sweeps a draw. A cancelled or failed run leaves the block not
            /// started (its chains are somewhere between two draws), so the next part starts it again.</summary>
            public void AdvanceTo(int t, ChainReader reader, CancellationToken cancellationToken)
            {
                if (_draw == t) return;
                var rbm = reader._rbm;
                try
                {
                    if (_draw < 0 || _draw > t)
                    {
                        _draw = -1;
                        _sweep = 0;
                        Chains = new RbmMachine.Chains(machine, chains);
                        machine.InitializeFromBias(Chains, machine.B, random.Fork(0));
                        for (int s = 0; s < rbm.SamplingBurnIn; s++) Sweep(reader, cancellationToken);
                        _draw = 0;
                    }
                    while (_draw < t)
                    {
                        for (int s = 0; s < rbm.SamplingThinning; s++) Sweep(reader, cancellationToken);
                        _draw++;
                    }
                }
                catch
                {
                    _draw = -1;
                    throw;
                }
            }

            private void Sweep(ChainReader reader, CancellationToken cancellationToken)
            {
                cancellationToken.ThrowIfCancellationRequested();
                machine.GibbsSweep(Chains, random.Fork(1, (ulong)_sweep++), parallel: false, reader._quantizedW, reader._quantizedWt, reader._packed);
            }
        }
    }
}
