using Microsoft.ML.DeepDensity.Numerics;

namespace Microsoft.ML.DeepDensity.Models.Rbm;

/// <summary>
/// The float path's products with 0/1 rows as <see cref="OnesGemm"/>'s sums of the rows their ones select (Bernoulli
/// units without AMX): the visible region's chains' hidden samples times Wᵀ (W's rows transposed into the product's
/// panels), the hidden region's visible rows times W, and the weight update's Vᵀ times the statistics, whose rows are
/// the visible units' lists of the rows where they are on. The bits are the float GEMM's, so a model is the same with
/// or without them; rows with too many ones (<see cref="OnesGemm.MaxDensity"/>), a machine without AVX-512 and a forced
/// kernel path take the GEMM.
/// </summary>
internal sealed partial class RbmTrainer
{
    private readonly OnesIndex _visibleOnes = new(), _visibleColumnOnes = new(), _chainHiddenOnes = new();
    /// <summary>Rows of the stacked block that _visibleOnes indexes from row 0 (−1: none), for the weight update.</summary>
    private int _visibleOnesRows = -1;

    /// <summary>Indexes the ones of visible rows [firstRow, + rows); false: the region takes the GEMM.</summary>
    private bool IndexVisibleRows(int firstRow, int rows)
    {
        _visibleOnesRows = -1;
        if (!TryIndex(_visibleOnes, _visible, firstRow, rows, _m.D)) return false;
        if (firstRow == 0) _visibleOnesRows = rows;
        return true;
    }

    /// <summary>Indexes the ones of the chains' hidden samples [first, + rows); false: the region takes the GEMM.</summary>
    private bool IndexChainHidden(int first, int rows) => TryIndex(_chainHiddenOnes, _chainHidden, first, rows, _m.H);

    /// <summary>Indexes rows [first, + rows) of a row-major buffer of the given width, when the products are usable
    /// here and the rows are 0/1 with few enough ones.</summary>
    /// <remarks>The index is built on the calling thread before the region starts, while the other cores wait: rows with
    /// too many ones would pay for that whole pass and then take the GEMM anyway. So the first eighth of the rows decides
    /// first (too many ones there: the GEMM, without indexing the rest). Either way the products have the GEMM's bits,
    /// so this choice only moves time.</remarks>
    private bool TryIndex(OnesIndex index, float[] buffer, int first, int rows, int width)
    {
        if (_m.Gaussian || !OnesGemm.IsUsable || !index.Reset(rows, width)) return false;
        var a = buffer.AsSpan(first * width);
        int lead = Math.Min(rows, Math.Max(8, rows / 8));
        return index.TryIndexRows(a, width, 0, lead) && OnesGemm.Pays(index, lead)
            && index.TryIndexRows(a, width, lead, rows - lead) && OnesGemm.Pays(index);
    }

    /// <summary>Whether the weight update's blocks take Vᵀ's products: the last hidden region indexed all stacked rows
    /// (so they are 0/1 with few enough ones). Each block then indexes its own visible units (TryIndexColumns), in
    /// parallel, rather than one thread transposing the whole index while the other waits.</summary>
    private bool StartVisibleColumnIndex(int stacked) => _visibleOnesRows == stacked && _visibleColumnOnes.Reset(_m.D, stacked);
}
