using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Microsoft.ML.DeepDensity.Numerics.Amx;

namespace Microsoft.ML.DeepDensity.Numerics;

/// <summary>
/// <c>C = A · B</c> for rows A of zeros and ones, as the exact integer product that <see cref="BinaryGemm"/> defines
/// (<see cref="BinaryGemm.Reference"/>, bit for bit), on AVX-512 without AMX: the Bernoulli RBM's scoring product. A
/// many-row block adds precomputed subset sums of B's rows (a table per eight rows of B) instead of B's rows one by one.
/// </summary>
/// <remarks>
/// <para><b>What it computes.</b> B's columns are quantized as <see cref="BinaryGemm.TryQuantize"/> does (column j
/// scaled by the power of two 2^e_j that puts its largest magnitude in [2^22, 2^23), rounded half to even to integers
/// q_pj), <c>S_ij = Σ_p A_ip · q_pj</c> is summed exactly, and <c>C_ij = float(S_ij · 2^-e_j)</c>. Integer sums do not
/// depend on their order, so the table path, the row-by-row path, any blocking and any thread count give the same bits,
/// and so does the AMX tile unit on a CPU that has it: a Bernoulli RBM scores the same on either machine. The result is
/// at least as accurate as a float GEMM's (see <see cref="BinaryGemm"/>).</para>
/// <para><b>Tables.</b> For each 16-column strip of B and each chunk of eight rows of B, the 256 sums of the chunk's
/// subsets (16 KB) are built with one add each (the sum of a subset is that of the subset without its highest row,
/// plus that row); a row of A then adds one table entry per chunk, selected by its eight bits, instead of one row of B
/// per one: 98 adds per strip for 784 columns of A whatever their ones, where adding the selected rows costs one per
/// one (227 for a Fashion-MNIST image's 29 %). Two chunks' tables fill half the L1 cache while the block's rows pass
/// through them, so tables pay from a few hundred rows (<see cref="TableRows"/>); fewer rows add B's selected rows.</para>
/// <para><b>Exact in int32.</b> |q| ≤ 2^23, so 31 chunks (248 rows of B) sum to less than 2^31 in an int32 lane; each
/// such segment's sums are then added in double precision, exact below 2^53.</para>
/// </remarks>
internal static unsafe class BinaryTableProduct
{
    /// <summary>Rows of B per table (its entries are the 2^8 subset sums).</summary>
    private const int ChunkRows = 8;
    private const int Entries = 1 << ChunkRows;
    /// <summary>Columns per strip: one AVX-512 vector of int32.</summary>
    private const int Strip = 16;
    /// <summary>Chunks whose int32 sums cannot overflow: 31 · 8 · 2^23 &lt; 2^31.</summary>
    private const int ChunksPerSegment = 31;
    /// <summary>From this many rows of A a call uses the tables: building a chunk's table costs 255 adds, which the
    /// rows' one add per chunk instead of about 2.3 (a Fashion-MNIST image) repays over a few hundred rows.</summary>
    public const int TableRows = 128;
    /// <summary>Rows whose lists of ones the row-by-row path holds at a time (100 KB for 784 columns).</summary>
    private const int SelectedGroup = 32;
    private const int MaxQ = (1 << 23) - 1;
    /// <summary>Ints from one table to the next: a table (16 KB) and one cache line, so that the same entry of a
    /// segment's tables falls in different sets of the L1 cache (at 16 KB apart, entry 0 of all 31 tables, which every
    /// row of blank pixels reads, shared one set of 12 ways).</summary>
    private const int TableStride = Entries * Strip + Strip;

    /// <summary>Whether callers on this thread should use this product: AVX-512 on the current kernel path, no AMX (which
    /// computes the same product on its tile unit), and the exact product not turned off (<see cref="BinaryGemm.Off"/>).</summary>
    public static bool IsUsable => !BinaryGemm.IsOff && KernelPath.Current == SimdLevel.Avx512 && Vector512.IsHardwareAccelerated
        && !AmxRuntime.IsAvailable;

    /// <summary>B (k × n) quantized: q strip by strip (a strip's rows of 16 ints contiguous, k padded to whole chunks with
    /// zeros, columns past n zero), and 2^-e_j per column.</summary>
    public sealed class Operand
    {
        internal int K, N, Strips, Chunks;
        internal int[] Q = [];
        internal double[] Scales = [];
        /// <summary>Ints per strip.</summary>
        internal int StripInts => Chunks * ChunkRows * Strip;
    }

    /// <summary>Quantizes a row-major B (k × n, row stride <paramref name="ldb"/>) as <see cref="BinaryGemm.TryQuantize"/>
    /// does; false when B has a NaN or an infinity.</summary>
    public static bool TryQuantize(int k, int n, ReadOnlySpan<float> b, int ldb, ref Operand? result)
    {
        if (k < 1 || n < 1) throw new ArgumentOutOfRangeException(nameof(k), FormattableString.Invariant($"B is {k} × {n}."));
        if (ldb < n || b.Length < (long)(k - 1) * ldb + n) throw new ArgumentException(FormattableString.Invariant($"B needs {k} rows of {n} values with stride {ldb}."), nameof(b));
        var op = result ??= new Operand();
        op.K = k; op.N = n; op.Strips = (n + Strip - 1) / Strip; op.Chunks = (k + ChunkRows - 1) / ChunkRows;
        int width = op.Strips * Strip;
        long size = (long)op.Strips * op.StripInts;
        if (size > Array.MaxLength) return false;
        if (op.Q.Length < size) op.Q = new int[size];
        else op.Q.AsSpan(0, (int)size).Clear();
        if (op.Scales.Length < width) op.Scales = new double[width];
        op.Scales.AsSpan(n, width - n).Fill(1.0);
        for (int j = 0; j < n; j++)
        {
            float max = 0f;
            for (int p = 0; p < k; p++)
            {
                float x = b[p * ldb + j];
                if (!float.IsFinite(x)) return false;
                max = Math.Max(max, Math.Abs(x));
            }
            int e = max == 0f ? 0 : 22 - Math.ILogB(max);
            op.Scales[j] = Math.ScaleB(1.0, -e);
            // x·2^e is exact in double (B's dividing by the scale in BinaryGemm.Reference is the same exact value).
            int at = j / Strip * op.StripInts + j % Strip;
            for (int p = 0; p < k; p++)
                op.Q[at + p * Strip] = Math.Min(MaxQ, (int)Math.Round(Math.ScaleB((double)b[p * ldb + j], e), MidpointRounding.ToEven));
        }
        return true;
    }

    [ThreadStatic] private static Scratch? t_scratch;

    private sealed class Scratch
    {
        public byte[] Bits = [];
        public int[] Sums = [];
        public double[] Segments = [];
        public int[] Ones = [];
        public readonly int[] Tables = GC.AllocateArray<int>(ChunksPerSegment * TableStride + Strip, pinned: true);
    }

    /// <summary>
    /// C (m × n, row stride <paramref name="ldc"/>) = A · B for a row-major A (m × k, row stride <paramref name="lda"/>)
    /// on the calling thread; false, C untouched, when A has an entry other than 0 and 1 (the caller then runs the float
    /// product).
    /// </summary>
    public static bool TryMultiply(ReadOnlySpan<float> a, int m, int lda, Operand b, Span<float> c, int ldc)
    {
        int k = b.K, n = b.N;
        if (m < 0 || lda < k || (m > 0 && a.Length < (long)(m - 1) * lda + k)) throw new ArgumentException(FormattableString.Invariant($"A needs {m} rows of {k} values with stride {lda}."), nameof(a));
        if (ldc < n || (m > 0 && c.Length < (long)(m - 1) * ldc + n)) throw new ArgumentException(FormattableString.Invariant($"C needs {m} rows of {n} values with stride {ldc}."), nameof(c));
        if (m == 0) return true;
        var s = t_scratch ??= new Scratch();
        int chunks = b.Chunks;
        if (s.Bits.Length < (long)chunks * m) s.Bits = new byte[Math.Max((long)chunks * m, 2L * s.Bits.Length)];
        fixed (float* pa = a)
        fixed (byte* bits = s.Bits)
        {
            // Byte r·chunks + c: row r's ones among B's rows 8c..8c+7.
            for (int r = 0; r < m; r++)
                if (!PackRow(pa + (long)r * lda, k, bits + (long)r * chunks)) return false;
            if (m >= TableRows) Tables(b, bits, m, c, ldc, s);
            else Selected(b, bits, m, c, ldc, s);
        }
        return true;
    }

    /// <summary>Row <paramref name="x"/>'s ones as bytes (bit i of byte c: x[8c + i] = 1) at <paramref name="dst"/>; false if
    /// an entry is neither 0 nor 1.</summary>
    private static bool PackRow(float* x, int k, byte* dst)
    {
        int p = 0;
        var one = Vector512.Create(1f);
        for (; p + 16 <= k; p += 16)
        {
            var v = Vector512.Load(x + p);
            uint ones = (uint)Vector512.Equals(v, one).ExtractMostSignificantBits();
            uint zeros = (uint)Vector512.Equals(v, Vector512<float>.Zero).ExtractMostSignificantBits();
            if ((ones | zeros) != 0xFFFF) return false;
            dst[p / 8] = (byte)ones;
            dst[p / 8 + 1] = (byte)(ones >> 8);
        }
        for (; p < k; p += 8)
        {
            int bitsOfChunk = 0;
            for (int i = 0; i < 8 && p + i < k; i++)
            {
                float v = x[p + i];
                if (v == 1f) bitsOfChunk |= 1 << i;
                else if (v != 0f) return false;
            }
            dst[p / 8] = (byte)bitsOfChunk;
        }
        return true;
    }

    /// <summary>The table path: per strip and segment, the segment's tables built (in the L2 cache), then each row's
    /// sum of its entries, four rows at a time (independent chains of adds whose loads overlap).</summary>
    private static void Tables(Operand b, byte* bits, int m, Span<float> c, int ldc, Scratch s)
    {
        int chunks = b.Chunks;
        if (s.Sums.Length < m * Strip) s.Sums = GC.AllocateArray<int>(m * Strip + Strip, pinned: true);
        bool segmented = chunks > ChunksPerSegment;
        if (segmented && s.Segments.Length < m * Strip) s.Segments = GC.AllocateArray<double>(m * Strip + 8, pinned: true);
        fixed (int* q = b.Q)
        fixed (int* tables0 = s.Tables)
        fixed (int* sums0 = s.Sums)
        fixed (double* segments0 = s.Segments)
        fixed (double* scales = b.Scales)
        fixed (float* pc = c)
        {
            int* tables = Aligned(tables0);
            int* sums = Aligned(sums0);
            double* segments = (double*)(((nint)segments0 + 63) & ~(nint)63);
            for (int strip = 0; strip < b.Strips; strip++)
            {
                int* qs = q + (long)strip * b.StripInts;
                for (int c0 = 0; c0 < chunks; c0 += ChunksPerSegment)
                {
                    int c1 = Math.Min(chunks, c0 + ChunksPerSegment);
                    for (int ch = c0; ch < c1; ch++) Build(tables + (ch - c0) * TableStride, qs + (long)ch * ChunkRows * Strip);
                    AddEntries(tables, bits + c0, chunks, c1 - c0, m, sums);
                    if (segmented) AddSegment(sums, segments, m, first: c0 == 0);
                }
                Write(segmented ? null : sums, segmented ? segments : null, scales + strip * Strip, m,
                    pc + strip * Strip, ldc, Math.Min(Strip, b.N - strip * Strip));
            }
        }
    }

    private static int* Aligned(int* p) => (int*)(((nint)p + 63) & ~(nint)63);

    /// <summary>The 256 subset sums of eight rows of a strip (contiguous) into <paramref name="t"/>: entry s is the sum
    /// of the rows whose bits s has.</summary>
    private static void Build(int* t, int* rows)
    {
        Vector512<int>.Zero.Store(t);
        for (int i = 0; i < ChunkRows; i++)
        {
            var row = Vector512.Load(rows + i * Strip);
            int size = 1 << i;
            int* src = t, dst = t + size * Strip;
            for (int e = 0; e < size; e++) (Vector512.Load(src + e * Strip) + row).Store(dst + e * Strip);
        }
    }

    /// <summary>sums[r] = Σ over the segment's chunks i of table i's entry bits[r·rowBytes + i].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AddEntries(int* tables, byte* bits, int rowBytes, int count, int m, int* sums)
    {
        const int table = TableStride;
        int r = 0;
        for (; r + 4 <= m; r += 4)
        {
            byte* b0 = bits + (long)r * rowBytes, b1 = b0 + rowBytes, b2 = b1 + rowBytes, b3 = b2 + rowBytes;
            Vector512<int> a0 = default, a1 = default, a2 = default, a3 = default;
            int* t = tables;
            for (int i = 0; i < count; i++, t += table)
            {
                a0 += Vector512.Load(t + b0[i] * Strip);
                a1 += Vector512.Load(t + b1[i] * Strip);
                a2 += Vector512.Load(t + b2[i] * Strip);
                a3 += Vector512.Load(t + b3[i] * Strip);
            }
            a0.Store(sums + r * Strip);
            a1.Store(sums + (r + 1) * Strip);
            a2.Store(sums + (r + 2) * Strip);
            a3.Store(sums + (r + 3) * Strip);
        }
        for (; r < m; r++)
        {
            byte* b0 = bits + (long)r * rowBytes;
            Vector512<int> a0 = default;
            int* t = tables;
            for (int i = 0; i < count; i++, t += table) a0 += Vector512.Load(t + b0[i] * Strip);
            a0.Store(sums + r * Strip);
        }
    }

    /// <summary>segments[r] (+)= the int32 sums of one segment, in double (exact).</summary>
    private static void AddSegment(int* sums, double* segments, int m, bool first)
    {
        for (int r = 0; r < m; r++) AddSegment(Vector512.Load(sums + r * Strip), segments + r * Strip, first);
    }

    /// <summary>16 sums in double precision at <paramref name="d"/> (set, or added to).</summary>
    private static void AddSegment(Vector512<int> sums, double* d, bool first)
    {
        var lo = Avx512F.ConvertToVector512Double(sums.GetLower());
        var hi = Avx512F.ConvertToVector512Double(sums.GetUpper());
        if (!first) { lo += Vector512.Load(d); hi += Vector512.Load(d + 8); }
        lo.Store(d);
        hi.Store(d + 8);
    }

    /// <summary>C's strip: float(S · 2^-e) per column, from the int32 sums or the segments' double sums.</summary>
    private static void Write(int* sums, double* segments, double* scales, int m, float* c, int ldc, int width)
    {
        var sLo = Vector512.Load(scales);
        var sHi = Vector512.Load(scales + 8);
        float* tail = stackalloc float[Strip];
        for (int r = 0; r < m; r++)
        {
            Vector512<double> lo, hi;
            if (sums is not null)
            {
                var v = Vector512.Load(sums + r * Strip);
                lo = Avx512F.ConvertToVector512Double(v.GetLower());
                hi = Avx512F.ConvertToVector512Double(v.GetUpper());
            }
            else { lo = Vector512.Load(segments + r * Strip); hi = Vector512.Load(segments + r * Strip + 8); }
            // Products by powers of two are exact; one rounding to float (half to even, as a cast).
            var f = Vector512.Create(Avx512F.ConvertToVector256Single(lo * sLo), Avx512F.ConvertToVector256Single(hi * sHi));
            float* row = c + (long)r * ldc;
            if (width == Strip) f.Store(row);
            else
            {
                f.Store(tail);
                for (int j = 0; j < width; j++) row[j] = tail[j];
            }
        }
    }

    /// <summary>The row-by-row path: each row adds the rows of B its ones select (int32 per segment, then double), strip
    /// by strip (a strip of B is 16 ints a row, 50 KB for 784 rows: read from the L2 cache by all the block's rows).</summary>
    private static void Selected(Operand b, byte* bits, int m, Span<float> c, int ldc, Scratch s)
    {
        int chunks = b.Chunks, strips = b.Strips, k = chunks * ChunkRows;
        if (s.Ones.Length < (long)SelectedGroup * k) s.Ones = new int[SelectedGroup * k];
        int* counts = stackalloc int[SelectedGroup];
        double* segments = stackalloc double[4 * Strip];
        fixed (int* q = b.Q)
        fixed (int* ones = s.Ones)
        fixed (double* scales = b.Scales)
        fixed (float* pc = c)
        {
            for (int r0 = 0; r0 < m; r0 += SelectedGroup)
            {
                int rows = Math.Min(SelectedGroup, m - r0);
                // Each row's ones as offsets (in ints) within a strip.
                for (int r = 0; r < rows; r++)
                {
                    int count = 0;
                    int* list = ones + (long)r * k;
                    byte* row = bits + (long)(r0 + r) * chunks;
                    for (int ch = 0; ch < chunks; ch++)
                    {
                        uint x = row[ch];
                        while (x != 0)
                        {
                            list[count++] = (ch * ChunkRows + System.Numerics.BitOperations.TrailingZeroCount(x)) * Strip;
                            x &= x - 1;
                        }
                    }
                    counts[r] = count;
                }
                for (int strip = 0; strip < strips; strip += 4)
                {
                    // Up to four strips a pass: each one's offset read once for four adds.
                    int group = Math.Min(4, strips - strip);
                    // With fewer than four, the missing strips repeat the first: summed and not written.
                    int* q0 = q + (long)strip * b.StripInts;
                    int* q1 = group > 1 ? q0 + b.StripInts : q0;
                    int* q2 = group > 2 ? q0 + 2L * b.StripInts : q0;
                    int* q3 = group > 3 ? q0 + 3L * b.StripInts : q0;
                    for (int r = 0; r < rows; r++)
                    {
                        int* list = ones + (long)r * k;
                        int count = counts[r];
                        for (int start = 0; ; start += ChunksPerSegment * ChunkRows)
                        {
                            int end = Math.Min(count, start + ChunksPerSegment * ChunkRows);
                            Vector512<int> a0 = default, a1 = default, a2 = default, a3 = default;
                            for (int i = start; i < end; i++)
                            {
                                int o = list[i];
                                a0 += Vector512.Load(q0 + o);
                                a1 += Vector512.Load(q1 + o);
                                a2 += Vector512.Load(q2 + o);
                                a3 += Vector512.Load(q3 + o);
                            }
                            AddSegment(a0, segments, start == 0);
                            AddSegment(a1, segments + Strip, start == 0);
                            AddSegment(a2, segments + 2 * Strip, start == 0);
                            AddSegment(a3, segments + 3 * Strip, start == 0);
                            if (end >= count) break;
                        }
                        for (int g = 0; g < group; g++)
                            Write(null, segments + g * Strip, scales + (strip + g) * Strip, 1, pc + (long)(r0 + r) * ldc + (strip + g) * Strip, ldc,
                                Math.Min(Strip, b.N - (strip + g) * Strip));
                    }
                }
            }
        }
    }
}
