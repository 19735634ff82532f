using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.DeepDensity.Numerics;

/// <summary>OnesGemm's operand B: the 64-column panels a product reads (packed once for many products, or strip by
/// strip inside one), their packing and transposition, and B's finiteness check (OnesGemm.cs has the products).</summary>
internal static unsafe partial class OnesGemm
{
    /// <summary>B (k × n, n ≥ 16) packed once as the product's 64-column panels, for many products with the same B (a
    /// model's W when scoring blocks of rows).</summary>
    public sealed class Panels
    {
        internal float[] Buffer = [];
        internal int K, N;
        /// <summary>Whether B was all finite (products refuse otherwise).</summary>
        internal bool Finite;
        /// <summary>The first panel: 64-byte aligned in the buffer (pinned, so its address is fixed).</summary>
        internal float* Start(float* buffer) => (float*)(((nint)buffer + 63) & ~(nint)63);
    }

    /// <summary>Packs op(B) (k × n; B stored k × n, or n × k when <paramref name="transposeB"/>, row stride
    /// <paramref name="ldb"/>) into <paramref name="panels"/> (made or reused); false if this product is not usable here
    /// or n &lt; 16 (then the caller runs Gemm).</summary>
    public static bool TryPack(ReadOnlySpan<float> b, int k, int n, int ldb, ref Panels? panels, bool transposeB = false)
    {
        if (!IsUsable || n < 16 || k < 1) return false;
        int storedRows = transposeB ? n : k, storedColumns = transposeB ? k : n;
        if (ldb < storedColumns || b.Length < (long)(storedRows - 1) * ldb + storedColumns)
            throw new ArgumentException(FormattableString.Invariant($"B needs {storedRows} rows of {storedColumns} values with stride {ldb}."), nameof(b));
        int strips = (n + Strip - 1) / Strip;
        panels ??= new Panels();
        long size = (long)strips * k * Strip + 16;
        if (size > Array.MaxLength) return false;
        if (panels.Buffer.Length < size) panels.Buffer = GC.AllocateArray<float>((int)size, pinned: true);
        panels.K = k;
        panels.N = n;
        panels.Finite = AllFinite(b, storedRows, storedColumns, ldb);
        fixed (float* pb = b)
        fixed (float* buffer = panels.Buffer)
        {
            float* start = panels.Start(buffer);
            for (int s = 0, j = 0; j < n; s++, j += Strip)
            {
                var (vectors, lastColumn) = StripShape(n, j);
                if (transposeB) PackPanelTransposed(pb + j * (long)ldb, ldb, k, vectors, lastColumn, start + (long)s * k * Strip);
                else PackPanel(pb + j, ldb, k, vectors, lastColumn, start + (long)s * k * Strip);
            }
        }
        return true;
    }

    private static readonly Vector512<int> Lanes = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

    /// <summary>
    /// Copies a strip of B (k rows from <paramref name="b"/>, row stride <paramref name="ldb"/>) to a contiguous 64-byte
    /// aligned panel of 64-float rows: vector t &lt; v − 1 from column 16t, the last from <paramref name="lastColumn"/>.
    /// B's own rows are rarely aligned (a load across two cache lines costs two) and a power-of-two row stride maps a
    /// strip's rows to few cache sets; the panel's 256-byte rows have neither problem. The copy is k × 64 floats against
    /// the rows × ones × 64 adds that read it.
    /// </summary>
    private static void PackPanel(float* b, long ldb, int k, int vectors, int lastColumn, float* panel)
    {
        for (int p = 0; p < k; p++)
        {
            float* src = b + p * ldb, dst = panel + p * Strip;
            for (int t = 0; t < vectors - 1; t++) Vector512.Load(src + 16 * t).Store(dst + 16 * t);
            Vector512.Load(src + lastColumn).Store(dst + 16 * (vectors - 1));
        }
    }

    /// <summary><see cref="PackPanel"/> for op(B) = Bᵀ (<paramref name="b"/>: the strip's first row of B, n × k stored):
    /// each vector's 16 rows of B are read 16 columns at a time and transposed in registers into 16 panel rows.</summary>
    private static void PackPanelTransposed(float* b, long ldb, int k, int vectors, int lastColumn, float* panel)
    {
        for (int t = 0; t < vectors; t++)
        {
            float* rows = b + (t < vectors - 1 ? 16 * t : lastColumn) * ldb;
            float* dst = panel + 16 * t;
            int p = 0;
            for (; p + 16 <= k; p += 16) Transpose16(rows + p, ldb, dst + p * Strip);
            for (; p < k; p++)
                for (int i = 0; i < 16; i++) dst[p * Strip + i] = rows[i * ldb + p];
        }
    }

    /// <summary>Writes the transpose of the 16 × 16 floats at <paramref name="src"/> (row stride <paramref name="lds"/>)
    /// as 16 rows of a panel: four rounds of pairwise lane exchanges at distances 8, 4, 2 and 1, in registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose16(float* src, long lds, float* dst)
    {
        var r0 = Vector512.Load(src + 0 * lds);
        var r1 = Vector512.Load(src + 1 * lds);
        var r2 = Vector512.Load(src + 2 * lds);
        var r3 = Vector512.Load(src + 3 * lds);
        var r4 = Vector512.Load(src + 4 * lds);
        var r5 = Vector512.Load(src + 5 * lds);
        var r6 = Vector512.Load(src + 6 * lds);
        var r7 = Vector512.Load(src + 7 * lds);
        var r8 = Vector512.Load(src + 8 * lds);
        var r9 = Vector512.Load(src + 9 * lds);
        var r10 = Vector512.Load(src + 10 * lds);
        var r11 = Vector512.Load(src + 11 * lds);
        var r12 = Vector512.Load(src + 12 * lds);
        var r13 = Vector512.Load(src + 13 * lds);
        var r14 = Vector512.Load(src + 14 * lds);
        var r15 = Vector512.Load(src + 15 * lds);
        var (low0, high0) = s_exchange[0];
        (r0, r8) = (Avx512F.PermuteVar16x32x2(r0, low0, r8), Avx512F.PermuteVar16x32x2(r0, high0, r8));
        (r1, r9) = (Avx512F.PermuteVar16x32x2(r1, low0, r9), Avx512F.PermuteVar16x32x2(r1, high0, r9));
        (r2, r10) = (Avx512F.PermuteVar16x32x2(r2, low0, r10), Avx512F.PermuteVar16x32x2(r2, high0, r10));
        (r3, r11) = (Avx512F.PermuteVar16x32x2(r3, low0, r11), Avx512F.PermuteVar16x32x2(r3, high0, r11));
        (r4, r12) = (Avx512F.PermuteVar16x32x2(r4, low0, r12), Avx512F.PermuteVar16x32x2(r4, high0, r12));
        (r5, r13) = (Avx512F.PermuteVar16x32x2(r5, low0, r13), Avx512F.PermuteVar16x32x2(r5, high0, r13));
        (r6, r14) = (Avx512F.PermuteVar16x32x2(r6, low0, r14), Avx512F.PermuteVar16x32x2(r6, high0, r14));
        (r7, r15) = (Avx512F.PermuteVar16x32x2(r7, low0, r15), Avx512F.PermuteVar16x32x2(r7, high0, r15));
        var (low1, high1) = s_exchange[1];
        (r0, r4) = (Avx512F.PermuteVar16x32x2(r0, low1, r4), Avx512F.PermuteVar16x32x2(r0, high1, r4));
        (r1, r5) = (Avx512F.PermuteVar16x32x2(r1, low1, r5), Avx512F.PermuteVar16x32x2(r1, high1, r5));
        (r2, r6) = (Avx512F.PermuteVar16x32x2(r2, low1, r6), Avx512F.PermuteVar16x32x2(r2, high1, r6));
        (r3, r7) = (Avx512F.PermuteVar16x32x2(r3, low1, r7), Avx512F.PermuteVar16x32x2(r3, high1, r7));
        (r8, r12) = (Avx512F.PermuteVar16x32x2(r8, low1, r12), Avx512F.PermuteVar16x32x2(r8, high1, r12));
        (r9, r13) = (Avx512F.PermuteVar16x32x2(r9, low1, r13), Avx512F.PermuteVar16x32x2(r9, high1, r13));
        (r10, r14) = (Avx512F.PermuteVar16x32x2(r10, low1, r14), Avx512F.PermuteVar16x32x2(r10, high1, r14));
        (r11, r15) = (Avx512F.PermuteVar16x32x2(r11, low1, r15), Avx512F.PermuteVar16x32x2(r11, high1, r15));
        var (low2, high2) = s_exchange[2];
        (r0, r2) = (Avx512F.PermuteVar16x32x2(r0, low2, r2), Avx512F.PermuteVar16x32x2(r0, high2, r2));
        (r1, r3) = (Avx512F.PermuteVar16x32x2(r1, low2, r3), Avx512F.PermuteVar16x32x2(r1, high2, r3));
        (r4, r6) = (Avx512F.PermuteVar16x32x2(r4, low2, r6), Avx512F.PermuteVar16x32x2(r4, high2, r6));
        (r5, r7) = (Avx512F.PermuteVar16x32x2(r5, low2, r7), Avx512F.PermuteVar16x32x2(r5, high2, r7));
        (r8, r10) = (Avx512F.PermuteVar16x32x2(r8, low2, r10), Avx512F.PermuteVar16x32x2(r8, high2, r10));
        (r9, r11) = (Avx512F.PermuteVar16x32x2(r9, low2, r11), Avx512F.PermuteVar16x32x2(r9, high2, r11));
        (r12, r14) = (Avx512F.PermuteVar16x32x2(r12, low2, r14), Avx512F.PermuteVar16x32x2(r12, high2, r14));
        (r13, r15) = (Avx512F.PermuteVar16x32x2(r13, low2, r15), Avx512F.PermuteVar16x32x2(r13, high2, r15));
        var (low3, high3) = s_exchange[3];
        (r0, r1) = (Avx512F.PermuteVar16x32x2(r0, low3, r1), Avx512F.PermuteVar16x32x2(r0, high3, r1));
        (r2, r3) = (Avx512F.PermuteVar16x32x2(r2, low3, r3), Avx512F.PermuteVar16x32x2(r2, high3, r3));
        (r4, r5) = (Avx512F.PermuteVar16x32x2(r4, low3, r5), Avx512F.PermuteVar16x32x2(r4, high3, r5));
        (r6, r7) = (Avx512F.PermuteVar16x32x2(r6, low3, r7), Avx512F.PermuteVar16x32x2(r6, high3, r7));
        (r8, r9) = (Avx512F.PermuteVar16x32x2(r8, low3, r9), Avx512F.PermuteVar16x32x2(r8, high3, r9));
        (r10, r11) = (Avx512F.PermuteVar16x32x2(r10, low3, r11), Avx512F.PermuteVar16x32x2(r10, high3, r11));
        (r12, r13) = (Avx512F.PermuteVar16x32x2(r12, low3, r13), Avx512F.PermuteVar16x32x2(r12, high3, r13));
        (r14, r15) = (Avx512F.PermuteVar16x32x2(r14, low3, r15), Avx512F.PermuteVar16x32x2(r14, high3, r15));
        r0.Store(dst + 0 * Strip);
        r1.Store(dst + 1 * Strip);
        r2.Store(dst + 2 * Strip);
        r3.Store(dst + 3 * Strip);
        r4.Store(dst + 4 * Strip);
        r5.Store(dst + 5 * Strip);
        r6.Store(dst + 6 * Strip);
        r7.Store(dst + 7 * Strip);
        r8.Store(dst + 8 * Strip);
        r9.Store(dst + 9 * Strip);
        r10.Store(dst + 10 * Strip);
        r11.Store(dst + 11 * Strip);
        r12.Store(dst + 12 * Strip);
        r13.Store(dst + 13 * Strip);
        r14.Store(dst + 14 * Strip);
        r15.Store(dst + 15 * Strip);
    }

    private static readonly (Vector512<int> Low, Vector512<int> High)[] s_exchange = [ExchangeIndices(8), ExchangeIndices(4), ExchangeIndices(2), ExchangeIndices(1)];

    /// <summary>For rows i and i + d: lanes l with (l &amp; d) = 0 of the new row i keep row i's lane l and the others
    /// take row i + d's lane l − d; the new row i + d takes row i's lane l + d and keeps row i + d's lane l.</summary>
    private static (Vector512<int> Low, Vector512<int> High) ExchangeIndices(int d)
    {
        Span<int> low = stackalloc int[16], high = stackalloc int[16];
        for (int l = 0; l < 16; l++)
        {
            bool first = (l & d) == 0;
            low[l] = first ? l : 16 + l - d;
            high[l] = first ? l + d : 16 + l;
        }
        return (Vector512.Create<int>(low), Vector512.Create<int>(high));
    }

    /// <summary>Whether the k × n entries of B are all finite.</summary>
    private static bool AllFinite(ReadOnlySpan<float> b, int k, int n, int ldb)
    {
        for (int p = 0; p < k; p++)
            if (!RowOps.AllFinite(b.Slice(p * ldb, n))) return false;
        return true;
    }
}
