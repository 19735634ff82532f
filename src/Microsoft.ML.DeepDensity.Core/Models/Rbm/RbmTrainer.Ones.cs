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
    /// <remarks>The index is built before the region starts: rows with too many ones would pay for that whole pass and
    /// then take the GEMM anyway, so the first eighth of the rows decides first, on the calling thread (too many ones
    /// there: the GEMM, without indexing the rest). The rest are indexed in <see cref="IndexBlocks"/> fixed blocks on
    /// the worker team (each row's list has its own place in the index, so the blocks write apart and the index is the
    /// same at any thread count); on one thread the serial pass had left the other core waiting for it. Either way the
    /// products have the GEMM's bits, so this choice only moves time.</remarks>
    private bool TryIndex(OnesIndex index, float[] buffer, int first, int rows, int width)
    {
        if (_m.Gaussian || !OnesGemm.IsUsable || !index.Reset(rows, width)) return false;
        int lead = Math.Min(rows, Math.Max(8, rows / 8));
        if (!index.TryIndexRows(buffer.AsSpan(first * width), width, 0, lead) || !OnesGemm.Pays(index, lead)) return false;
        int rest = rows - lead;
        if (rest == 0) return OnesGemm.Pays(index);
        if ((long)rest * width < ParallelIndexValues)
            return index.TryIndexRows(buffer.AsSpan(first * width), width, lead, rest) && OnesGemm.Pays(index);
        bool binary = true;
        DeepDensityEnvironment.For(0, IndexBlocks, b =>
        {
            int r0 = lead + (int)((long)rest * b / IndexBlocks), r1 = lead + (int)((long)rest * (b + 1) / IndexBlocks);
            if (!index.TryIndexRows(buffer.AsSpan(first * width), width, r0, r1 - r0)) binary = false;
        });
        return binary && OnesGemm.Pays(index);
    }

    /// <summary>Row blocks of the index's parallel part (fixed: the blocks' rows do not depend on the thread count).</summary>
    private const int IndexBlocks = 4;

    /// <summary>Values from which the index's rows are built on the worker team (the step's 200 × 784 visible rows and
    /// 100 × 500 hidden samples are above it; below it a parallel region costs more than it saves).</summary>
    private const long ParallelIndexValues = 1L << 15;

    /// <summary>Whether the weight update's blocks take Vᵀ's products: the last hidden region indexed all stacked rows
    /// (so they are 0/1 with few enough ones). Each block then indexes its own visible units (TryIndexColumns), in
    /// parallel, rather than one thread transposing the whole index while the other waits.</summary>
    private bool StartVisibleColumnIndex(int stacked) => _visibleOnesRows == stacked && _visibleColumnOnes.Reset(_m.D, stacked);
}
