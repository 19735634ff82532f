using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
#if NET9_0_OR_GREATER
using System.Runtime.Intrinsics.X86;
#endif

namespace Microsoft.ML.DeepDensity.Numerics;

/// <summary>
/// The positions of the ones of a 0/1 matrix op(A) (m × k), row by row in increasing column order: the left operand of
/// <see cref="OnesGemm"/> (binary data rows, the RBM's sampled units).
/// </summary>
/// <remarks>
/// Row i's positions are stored from <c>i · k</c> (room for a full row), so rows are indexed independently: in parallel
/// blocks of rows, and without a pass to count them first. For each row the index also keeps where its positions cross
/// every multiple of <see cref="SubBlock"/> (the product's cache blocks of k), so the product's loops are counted.
/// Buffers grow to the largest matrix seen and are reused: a trainer keeps one index per operand and rebuilds it every
/// step without allocating.
/// </remarks>
internal sealed class OnesIndex
{
    /// <summary>Columns of op(A) per block of the product (a divisor of <see cref="Gemm.KC"/>).</summary>
    public const int SubBlock = 128;

    private int[] _bounds = [];
    private int[] _position = [];

    /// <summary>Rows of op(A).</summary>
    public int Rows { get; private set; }

    /// <summary>Columns of op(A) (the product's k).</summary>
    public int Columns { get; private set; }

    /// <summary>Blocks of <see cref="SubBlock"/> columns (the last one may be shorter).</summary>
    public int SubBlocks => (Columns + SubBlock - 1) / SubBlock;

    /// <summary>Row i's ones in column block s are <c>Position[Bounds[i·(SubBlocks+1) + s] .. Bounds[i·(SubBlocks+1) + s + 1])</c>.</summary>
    internal int[] Bounds => _bounds;

    /// <inheritdoc cref="Bounds"/>
    internal int[] Position => _position;

    /// <summary>Ones in rows [<paramref name="firstRow"/>, + <paramref name="rows"/>).</summary>
    public long Ones(int firstRow, int rows)
    {
        if (firstRow < 0 || rows < 0 || firstRow + rows > Rows) throw new ArgumentOutOfRangeException(nameof(rows));
        int stride = SubBlocks + 1;
        long ones = 0;
        for (int i = firstRow; i < firstRow + rows; i++) ones += _bounds[i * stride + stride - 1] - _bounds[i * stride];
        return ones;
    }

    /// <summary>
    /// Starts an index of an m × k op(A): sizes the buffers; then <see cref="TryIndexRows"/> fills it (rows in any order, or
    /// blocks of rows on several threads). Returns false if m·k is too large for the index.
    /// </summary>
    public bool Reset(int m, int k)
    {
        if (m < 0 || k < 0) throw new ArgumentOutOfRangeException(nameof(m), "Matrix sizes must be non-negative.");
        Rows = 0;
        Columns = 0;
        if ((long)m * k + 16 > Array.MaxLength || (long)m * ((k + SubBlock - 1) / SubBlock + 1) > Array.MaxLength) return false;
        Columns = k;
        int stride = SubBlocks + 1;
        if (_bounds.Length < m * stride) _bounds = new int[m * stride];
        if (_position.Length < m * k + 16) _position = new int[m * k + 16];
        Rows = m;
        return true;
    }

    /// <summary>
    /// Indexes rows [<paramref name="firstRow"/>, + <paramref name="rows"/>) of op(A) = A (row-major, row stride
    /// <paramref name="lda"/>; <paramref name="a"/> starts at row 0) after <see cref="Reset"/>. Returns false if an
    /// element is neither 0 nor 1 (NaN included; −0 counts as 0): the index must not be used then.
    /// </summary>
    public bool TryIndexRows(ReadOnlySpan<float> a, int lda, int firstRow, int rows)
    {
        int k = Columns, stride = SubBlocks + 1;
        if (firstRow < 0 || rows < 0 || firstRow + rows > Rows) throw new ArgumentOutOfRangeException(nameof(rows));
        if (rows > 0 && k > 0 && (lda < k || a.Length < (long)(firstRow + rows - 1) * lda + k))
            throw new ArgumentException(FormattableString.Invariant($"The operand needs {firstRow + rows} rows of {k} values with stride {lda}."), nameof(a));
        for (int i = firstRow; i < firstRow + rows; i++)
        {
            if (Append(a.Slice(i * lda, k), _position, i * k, _bounds.AsSpan(i * stride, stride)) < 0) return false;
        }
        return true;
    }

    /// <summary>Indexes all of op(A), m × k: A itself, or Aᵀ when <paramref name="transpose"/> (A stored k × m). False
    /// if an element is neither 0 nor 1.</summary>
    public bool TryBuild(bool transpose, int m, int k, ReadOnlySpan<float> a, int lda)
    {
        return Reset(m, k) && (transpose ? TryIndexColumns(a, lda, 0, m) : TryIndexRows(a, lda, 0, m));
    }

    /// <summary>
    /// Indexes rows [<paramref name="first"/>, + <paramref name="count"/>) of op(A) = Aᵀ after <see cref="Reset"/>(m, k):
    /// A is stored k × m (row stride <paramref name="lda"/>), and op(A)'s row i lists the rows of A with a one in column
    /// i. Blocks of rows can be indexed on several threads (each reads only its columns of A). False if a value in those
    /// columns is neither 0 nor 1.
    /// </summary>
    public unsafe bool TryIndexColumns(ReadOnlySpan<float> a, int lda, int first, int count)
    {
        int k = Columns, stride = SubBlocks + 1;
        if (first < 0 || count < 0 || first + count > Rows) throw new ArgumentOutOfRangeException(nameof(count));
        if (count > 0 && k > 0 && (lda < first + count || a.Length < (long)(k - 1) * lda + first + count))
            throw new ArgumentException(FormattableString.Invariant($"The operand needs {k} rows of {first + count} values with stride {lda}."), nameof(a));
        Span<int> fill = count <= 1024 ? stackalloc int[count] : new int[count];
        fill.Clear();
        Span<int> ones = count + 16 <= 1024 ? stackalloc int[count + 16] : new int[count + 16];
        for (int p = 0; p < k; p++)
        {
            if (p % SubBlock == 0) MarkBounds(p / SubBlock, first, fill);
            int found = Append(a.Slice(p * lda + first, count), ones, 0, default);
            if (found < 0) return false;
            for (int t = 0; t < found; t++)
            {
                int c = ones[t];
                _position[(first + c) * k + fill[c]++] = p;
            }
        }
        MarkBounds(stride - 1, first, fill);
        return true;
    }

    /// <summary>Bound <paramref name="block"/> of rows first.. (count.Length of them): where their positions end now.</summary>
    private void MarkBounds(int block, int first, ReadOnlySpan<int> count)
    {
        int stride = SubBlocks + 1, k = Columns;
        for (int i = 0; i < count.Length; i++) _bounds[(first + i) * stride + block] = (first + i) * k + count[i];
    }

    /// <summary>Writes the positions of the ones of <paramref name="row"/> to <paramref name="positions"/> from
    /// <paramref name="n"/> (which has 16 spare entries after the row's room), and where each block of
    /// <see cref="SubBlock"/> columns starts (and the row ends) to <paramref name="bounds"/>; returns the end, or −1 if a
    /// value is not 0 or 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe int Append(ReadOnlySpan<float> row, Span<int> positions, int n, Span<int> bounds)
    {
        int d = row.Length;
        fixed (float* pr = row)
        fixed (int* dest = positions)
        {
            for (int block = 0, p = 0; block * SubBlock < d; block++)
            {
                if (!bounds.IsEmpty) bounds[block] = n;
                int end = Math.Min(d, (block + 1) * SubBlock);
#if NET9_0_OR_GREATER
                if (Avx512F.IsSupported)
                {
                    // The bits of 1f, and of ±0 with the sign cleared; any other pattern is a bad value.
                    var one = Vector512.Create(0x3F800000);
                    var magnitude = Vector512.Create(0x7FFFFFFF);
                    var lane = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
                    var bad = Vector512<int>.Zero;
                    for (; p + 16 <= end; p += 16)
                    {
                        var v = Vector512.Load((int*)pr + p);
                        var isOne = Vector512.Equals(v, one);
                        bad |= ~(isOne | Vector512.Equals(v & magnitude, Vector512<int>.Zero));
                        // All 16 lanes are written; the ones' positions come first, and n moves past them only.
                        Avx512F.Compress(Vector512<int>.Zero, isOne, lane + Vector512.Create(p)).Store(dest + n);
                        n += BitOperations.PopCount((uint)isOne.ExtractMostSignificantBits());
                    }
                    if (bad != Vector512<int>.Zero) return -1;
                }
#endif
                for (; p < end; p++)
                {
                    float x = pr[p];
                    if (x == 1f) dest[n++] = p;
                    else if (x != 0f) return -1;
                }
            }
        }
        if (!bounds.IsEmpty) bounds[^1] = n;
        return n;
    }
}
