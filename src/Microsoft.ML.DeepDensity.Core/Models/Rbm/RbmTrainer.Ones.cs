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
        int d = _m.D;
        if (_m.Gaussian || !OnesGemm.IsUsable || !_visibleOnes.Reset(rows, d)
            || !_visibleOnes.TryIndexRows(_visible.AsSpan(firstRow * d), d, 0, rows) || !OnesGemm.Pays(_visibleOnes))
            return false;
        if (firstRow == 0) _visibleOnesRows = rows;
        return true;
    }

    /// <summary>Indexes the ones of the chains' hidden samples [first, + rows); false: the region takes the GEMM.</summary>
    private bool IndexChainHidden(int first, int rows)
    {
        int h = _m.H;
        return !_m.Gaussian && OnesGemm.IsUsable && _chainHiddenOnes.Reset(rows, h)
            && _chainHiddenOnes.TryIndexRows(_chainHidden.AsSpan(first * h), h, 0, rows) && OnesGemm.Pays(_chainHiddenOnes);
    }

    /// <summary>Whether the weight update's blocks take Vᵀ's products: the last hidden region indexed all stacked rows
    /// (so they are 0/1 with few enough ones). Each block then indexes its own visible units (TryIndexColumns), in
    /// parallel, rather than one thread transposing the whole index while the other waits.</summary>
    private bool StartVisibleColumnIndex(int stacked) => _visibleOnesRows == stacked && _visibleColumnOnes.Reset(_m.D, stacked);
}
