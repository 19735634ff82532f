using System.Numerics.Tensors;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Numerics.Amx;

namespace Microsoft.ML.DeepDensity.Models.Rbm;

/// <summary>The trainer's exact binary products (Bernoulli units on a CPU with AMX): the quantized weights kept between
/// steps, the packed Vᵀ and the weight update on <see cref="BinaryGemm"/>.</summary>
internal sealed partial class RbmTrainer
{
    /// <summary>Vᵀ of the stacked rows for the exact weight update: the transpose of the hidden region's packed V when it
    /// holds them all (PCD), else packed from the floats (CD's last hidden region packs the chains' rows only).</summary>
    private bool PackVisibleTransposed(int stacked, ReadOnlySpan<float> vAll)
    {
        if (_packedVisibleRows != stacked || !FusePasses)
            return BinaryGemm.TryPack(true, _m.D, stacked, vAll, _m.D, ref _packedVisibleTransposed, parallel: true);
        BinaryGemm.Transpose(_packedVisible!, ref _packedVisibleTransposed);
        return true;
    }

    /// <summary>W and Wᵀ quantized for the current W (Bernoulli units): kept from an earlier chunk of this step, Wᵀ and
    /// the maxima from the last step's weight update (then W alone is quantized), or both made here. False when W is
    /// not finite (the step then takes the float GEMM).</summary>
    private bool QuantizeWeights()
    {
        var m = _m;
        int version = m.WeightsVersion;
        if (_quantizedWVersion == version && _quantizedWtVersion == version) return true;
        bool ok = _quantizedWtVersion == version
            ? BinaryGemm.TryQuantize(false, m.D, m.H, m.W, m.H, ref _quantizedW, parallel: true, maxima: _weightMaxima.AsSpan(0, m.H))
            : m.QuantizeWeights(ref _quantizedW, ref _quantizedWt, ref _weightMaxima);
        _quantizedWVersion = _quantizedWtVersion = ok ? version : -1;
        return ok;
    }

    /// <summary>The weight update of <see cref="StepChunk"/> with BinaryGemm: velocity = lr·Vᵀ·P + beta·velocity per
    /// fixed block of weight rows (whole tiles), the visible bias gradient, and (last chunk) the weight step.</summary>
    private void ExactWeightUpdate(Chunk chunk, float learningRate, float beta, float decay)
    {
        var m = _m;
        int d = m.D, h = m.H;
        var packedVisible = _packedVisibleTransposed!;
        var statistics = _quantizedStatistics!;
        int blocks = (d + RowsPerExactUpdateBlock - 1) / RowsPerExactUpdateBlock;
        // The last chunk moves W; each block then also makes the next step's Wᵀ and maxima from its new rows.
        var nextWt = chunk.Last && FusePasses ? BinaryGemm.Shape(h, d, ref _quantizedWt) : null;
        var maxima = _weightMaxima ??= new float[h + d];
        var blockColumnMaxima = _blockColumnMaxima is { } bm && bm.Length >= blocks * h ? bm : _blockColumnMaxima = new float[blocks * h];
        var blockFinite = _blockFinite is { } bf && bf.Length >= blocks ? bf : _blockFinite = new bool[blocks];
        DeepDensityEnvironment.For(0, blocks, blk =>
        {
            int i0 = blk * RowsPerExactUpdateBlock, rows = Math.Min(RowsPerExactUpdateBlock, d - i0);
            VisibleBiasGradient(chunk, i0, rows);
            // The last chunk's product also moves W (the weight step in the pass that writes the velocity).
            BinaryGemm.Multiply(packedVisible, statistics, 0, h, learningRate, beta, _velW, h,
                firstRowBlock: i0 / BinaryGemm.BlockRows, rowBlockCount: (rows + BinaryGemm.BlockRows - 1) / BinaryGemm.BlockRows,
                weights: chunk.Last && FusePasses ? m.W : default, decay: decay, storeC: !(chunk.Last && FusePasses && MomentumIsZero));
            if (!chunk.Last) return;
            var w = m.W.AsSpan(i0 * h, rows * h);
            if (!FusePasses) WeightStep(w, _velW.AsSpan(i0 * h, rows * h), decay);
            if (nextWt is not null)
                blockFinite[blk] = BinaryGemm.Maxima(w, rows, h, h, blockColumnMaxima.AsSpan(blk * h, h), maxima.AsSpan(h + i0, rows))
                && BinaryGemm.QuantizePanels(true, m.W, h, nextWt!, i0 / BinaryGemm.PanelWidth,
                    (rows + BinaryGemm.PanelWidth - 1) / BinaryGemm.PanelWidth, maxima.AsSpan(h, d));
        });
        if (!chunk.Last) return;
        int version = ++m.WeightsVersion;
        if (nextWt is null) return;
        var columnMaxima = maxima.AsSpan(0, h);
        blockColumnMaxima.AsSpan(0, h).CopyTo(columnMaxima);
        for (int blk = 1; blk < blocks; blk++) TensorPrimitives.Max(columnMaxima, blockColumnMaxima.AsSpan(blk * h, h), columnMaxima);
        _quantizedWtVersion = blockFinite.AsSpan(0, blocks).Contains(false) ? -1 : version;
    }
}
