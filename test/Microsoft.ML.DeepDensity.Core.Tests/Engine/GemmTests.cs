using Microsoft.ML.DeepDensity.Numerics;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

public class GemmTests
{
    private static float[] Random(int length, int seed)
    {
        var rng = new Random(seed);
        var v = new float[length];
        for (int i = 0; i < v.Length; i++) v[i] = (float)(rng.NextDouble() * 2 - 1);
        return v;
    }

    /// <summary>Double-precision C = alpha·op(A)·op(B) + beta·C on the same strided storage.</summary>
    private static double[] Reference(bool ta, bool tb, int m, int n, int k, float alpha, float[] a, int lda,
        float[] b, int ldb, float beta, float[] c, int ldc)
    {
        var r = new double[c.Length];
        for (int i = 0; i < c.Length; i++) r[i] = c[i];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++)
                    s += (double)(ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
                r[i * ldc + j] = (beta == 0f ? 0 : beta * (double)c[i * ldc + j]) + alpha * s;
            }
        return r;
    }

    private static void Check(bool ta, bool tb, int m, int n, int k, float alpha, float beta, int pad, bool parallel, int seed)
    {
        int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
        var a = Random(Math.Max(1, (ta ? k : m) * lda), seed);
        var b = Random(Math.Max(1, (tb ? n : k) * ldb), seed + 1);
        var c = Random(Math.Max(1, m * ldc), seed + 2);
        if (beta == 0f) for (int i = 0; i < c.Length; i++) if (i % 7 == 0) c[i] = float.NaN; // beta = 0 must ignore C
        var expected = Reference(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        Gemm.Multiply(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, parallel);
        double tol = 1e-5 * Math.Sqrt(k + 1) * (Math.Abs(alpha) + 1) + 1e-6;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < ldc; j++)
            {
                int idx = i * ldc + j;
                if (j >= n)
                {
                    // Padding between rows is never written.
                    Assert.True(c[idx].Equals((float)expected[idx]), $"padding C[{i},{j}] was modified");
                    continue;
                }
                double err = Math.Abs(c[idx] - expected[idx]);
                Assert.True(err <= tol * (1 + Math.Abs(expected[idx])),
                    $"{(ta ? 'T' : 'N')}{(tb ? 'T' : 'N')} m={m} n={n} k={k} alpha={alpha} beta={beta} pad={pad}: C[{i},{j}] = {c[idx]}, expected {expected[idx]}");
            }
    }

    public static IEnumerable<object[]> Transposes()
    {
        foreach (var ta in new[] { false, true })
            foreach (var tb in new[] { false, true })
                yield return new object[] { ta, tb };
    }

    /// <summary>Every kernel path this CPU can run (AVX-512 and AVX2 only where supported; portable always).</summary>
    public static IEnumerable<object[]> PathsAndTransposes()
    {
        foreach (var level in SupportedLevels())
            foreach (var t in Transposes())
                yield return new object[] { (int)level, t[0], t[1] };
    }

    internal static IEnumerable<SimdLevel> SupportedLevels()
    {
        for (var level = SimdLevel.Portable; level <= KernelPath.Best; level++) yield return level;
    }

    [Theory]
    [MemberData(nameof(PathsAndTransposes))]
    public void SmallOddSizesMatchReference(int level, bool ta, bool tb)
    {
        using var path = KernelPath.Force((SimdLevel)level);
        int seed = 0;
        foreach (int m in new[] { 1, 2, 5, 6, 7, 13, 37 })
            foreach (int n in new[] { 1, 3, 8, 9, 16, 17, 31, 37 })
                foreach (int k in new[] { 1, 2, 7, 8, 9, 37 })
                    Check(ta, tb, m, n, k, 1f, 0f, 0, false, seed++);
    }

    [Theory]
    [MemberData(nameof(Transposes))]
    public void AlphaBetaAndStridesMatchReference(bool ta, bool tb)
    {
        int seed = 100;
        foreach (var (alpha, beta) in new[] { (1f, 0f), (1f, 1f), (-0.5f, 0.25f), (2f, 1f), (0f, 0.5f), (0.75f, 0f) })
            foreach (int pad in new[] { 0, 3 })
                Check(ta, tb, 23, 35, 19, alpha, beta, pad, false, seed++);
    }

    [Theory]
    [MemberData(nameof(Transposes))]
    public void SizesCrossingBlockBoundariesMatchReference(bool ta, bool tb)
    {
        // AVX2: MC = 144 rows, NC = 4096 columns, 6×16 tiles; AVX-512: MC = 240, NC = 512, 12×32 tiles; KC = 256.
        Check(ta, tb, 150, 40, 300, 1f, 0f, 1, false, 1);
        Check(ta, tb, 145, 33, 513, -1f, 1f, 0, true, 2);
        Check(ta, tb, 7, 4100, 9, 1f, 0.5f, 0, true, 3);
        Check(ta, tb, 300, 290, 260, 1f, 0f, 2, true, 4);
        Check(ta, tb, 13, 200, 700, 1f, 0f, 0, true, 5);
    }

    [Theory]
    [MemberData(nameof(Transposes))]
    public void ParallelAndSerialResultsAreBitIdentical(bool ta, bool tb)
    {
        // Includes shapes for the cooperative path (shared packed B, several k-blocks, partial panels, more than NC columns)
        // and, on AVX-512, one cut into row slabs as well as NC-column blocks (1001 rows: two slabs, the second ending in
        // a partial panel; 1100 columns: three NC blocks, the last partial).
        foreach (var (m, n, k) in new[] { (301, 70, 300), (40, 900, 270), (128, 128, 128), (97, 4110, 520), (500, 37, 700), (1001, 1100, 70) })
        {
            var a = Random(m * k, 1); var b = Random(k * n, 2);
            var serial = new float[m * n]; var parallel = new float[m * n];
            Gemm.Multiply(ta, tb, m, n, k, 1f, a, ta ? m : k, b, tb ? k : n, 0f, serial, n, allowParallel: false);
            Gemm.Multiply(ta, tb, m, n, k, 1f, a, ta ? m : k, b, tb ? k : n, 0f, parallel, n, allowParallel: true);
            Assert.Equal(serial, parallel);
        }
        // With alpha, beta and padded rows (ldc > n): the cooperative path and the row slabs must touch only C's m×n part.
        foreach (var (m, n, k, ldc) in new[] { (150, 90, 600, 101), (999, 1030, 70, 1037) })
        {
            var a = Random(m * k, 3); var b = Random(k * n, 4);
            var serial = Random(m * ldc, 5); var parallel = (float[])serial.Clone();
            Gemm.Multiply(ta, tb, m, n, k, -0.5f, a, ta ? m : k, b, tb ? k : n, 0.25f, serial, ldc, allowParallel: false);
            Gemm.Multiply(ta, tb, m, n, k, -0.5f, a, ta ? m : k, b, tb ? k : n, 0.25f, parallel, ldc, allowParallel: true);
            Assert.Equal(serial, parallel);
        }
    }

    [Theory]
    [MemberData(nameof(Transposes))]
    public void RowResultsDoNotDependOnTheOtherRowsInTheCall(bool ta, bool tb)
    {
        // RNADE scores blocks of rows: a row's result must be the same bits alone or inside any block.
        int m = 157, n = 45, k = 300;
        var a = Random(m * k, 7); var b = Random(k * n, 8);
        var all = new float[m * n];
        Gemm.Multiply(ta, tb, m, n, k, 1f, a, ta ? m : k, b, tb ? k : n, 0f, all, n);
        foreach (var (start, rows) in new[] { (0, 1), (5, 1), (150, 7), (31, 13), (6, 100) })
        {
            var sub = new float[rows * n];
            if (ta)
            {
                // op(A) rows are columns of the stored k×m matrix: use a column offset and the full stride.
                Gemm.Multiply(true, tb, rows, n, k, 1f, a.AsSpan(start), m, b, tb ? k : n, 0f, sub, n);
            }
            else Gemm.Multiply(false, tb, rows, n, k, 1f, a.AsSpan(start * k), k, b, tb ? k : n, 0f, sub, n);
            Assert.Equal(all.AsSpan(start * n, rows * n).ToArray(), sub);
        }
        // Columns too: a column block of C equals the same columns of the full product.
        var cols = new float[m * 20];
        if (tb) Gemm.Multiply(ta, true, m, 20, k, 1f, a, ta ? m : k, b.AsSpan(17 * k), k, 0f, cols, 20);
        else Gemm.Multiply(ta, false, m, 20, k, 1f, a, ta ? m : k, b.AsSpan(17), n, 0f, cols, 20);
        for (int i = 0; i < m; i++) Assert.Equal(all.AsSpan(i * n + 17, 20).ToArray(), cols.AsSpan(i * 20, 20).ToArray());
    }

    /// <summary>A product of one row is one small edge tile (its row's sums alone, not a 12- or 6-row tile with one real
    /// row): its bits must be those of the same row inside a block (the kernels) on every path, across k-blocks, full and
    /// partial column panels, alpha, beta, a row bias, padded strides and a transposed A.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void OneRowProductsGiveTheKernelsBits(bool ta)
    {
        int m = 13, n = 203, k = 600, row = 6;
        foreach (var (alpha, beta, biased, pad) in new[] { (1f, 0f, false, 0), (-0.7f, 0.3f, false, 3), (2f, 1f, false, 1), (1.3f, 0f, true, 2) })
        {
            int lda = (ta ? m : k) + pad, ldb = n + pad, ldc = n + pad;
            var a = Random((ta ? k : m) * lda, 41); var b = Random(k * ldb, 42);
            for (int i = 0; i < a.Length; i += 3) a[i] = 0f;
            var bias = biased ? Random(n, 43) : Array.Empty<float>();
            var c0 = Random(m * ldc, 44);
            var block = (float[])c0.Clone();
            Gemm.Multiply(ta, false, m, n, k, alpha, a, lda, b, ldb, beta, block, ldc, allowParallel: false, rowBias: bias);
            foreach (var level in SupportedLevels())
            {
                var one = c0.AsSpan(row * ldc, n).ToArray();
                var aRow = ta ? a.AsSpan(row) : a.AsSpan(row * lda);
                using (KernelPath.Force(level))
                    Gemm.Multiply(ta, false, 1, n, k, alpha, aRow, lda, b, ldb, beta, one, ldc, allowParallel: false, rowBias: bias);
                for (int j = 0; j < n; j++)
                    Assert.True(BitConverter.SingleToInt32Bits(one[j]) == BitConverter.SingleToInt32Bits(block[row * ldc + j]),
                        $"{level} alpha={alpha} beta={beta} bias={biased}: C[{j}] = {one[j]:R} alone, {block[row * ldc + j]:R} in a block");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Transposes))]
    public void AllKernelPathsGiveBitIdenticalResults(bool ta, bool tb)
    {
        // Shapes around every blocking boundary of both SIMD kernels (MR 6/12, NR 16/32 and their half tiles, MC 144/240,
        // NC 512/4096, KC 256), with alpha, beta, padded strides, exact zeros (ReLU-like inputs) and both serial and
        // parallel runs. The portable path is the definition; the SIMD paths must reproduce its bits.
        var shapes = new (int M, int N, int K, float Alpha, float Beta, int Pad)[]
        {
            (1, 1, 1, 1f, 0f, 0), (12, 32, 256, 1f, 0f, 0), (13, 33, 257, -0.5f, 0.25f, 3), (11, 16, 7, 2f, 1f, 1),
            (25, 17, 513, 1f, 1f, 0), (241, 47, 40, 0.75f, 0f, 2), (100, 63, 150, 1f, 0f, 0), (30, 520, 300, 1f, 0.5f, 5),
            (7, 4100, 9, 1f, 0f, 0), (145, 8, 600, -1f, 1f, 0), (50, 30, 50, 1f, 0f, 0),
            // Edge tiles of 2, 3 and 4 rows (a block of 50 rows ends in one): their own sums, across k-blocks.
            (50, 200, 300, 0.7f, 0f, 1), (15, 40, 300, 1.3f, 0.3f, 2), (16, 70, 520, -0.7f, 1f, 0),
        };
        int seed = 500;
        foreach (var (m, n, k, alpha, beta, pad) in shapes)
        {
            int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
            var a = Random((ta ? k : m) * lda, seed++); var b = Random((tb ? n : k) * ldb, seed++);
            for (int i = 0; i < a.Length; i += 3) a[i] = 0f;
            for (int i = 1; i < b.Length; i += 5) b[i] = -0f;
            var c0 = Random(m * ldc, seed++);
            float[]? expected = null;
            foreach (var level in SupportedLevels())
                foreach (bool parallel in new[] { false, true })
                {
                    var c = (float[])c0.Clone();
                    using (KernelPath.Force(level))
                        Gemm.Multiply(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, parallel);
                    if (expected is null) { expected = c; continue; }
                    for (int i = 0; i < c.Length; i++)
                        Assert.True(BitConverter.SingleToInt32Bits(c[i]) == BitConverter.SingleToInt32Bits(expected[i]),
                            $"{level} parallel={parallel} {m}×{n}×{k}: C[{i}] = {c[i]:R}, portable gives {expected[i]:R}");
                }
        }
    }

    [Theory]
    [MemberData(nameof(Transposes))]
    public void APackedRightOperandGivesTheBitsOfPackingPerCall(bool ta, bool tb)
    {
        // op(B) packed once (Gemm.Pack) and reused by products with several row counts must give exactly what each
        // product gives packing op(B) itself, on every path, serial and parallel, across NC/KC/NR block boundaries.
        var shapes = new (int M, int N, int K, int Pad)[]
        {
            (1, 1, 1, 0), (50, 200, 784, 0), (13, 33, 257, 3), (100, 784, 200, 1), (25, 520, 300, 2), (7, 4100, 9, 0), (241, 47, 40, 0),
        };
        int seed = 900;
        foreach (var (m, n, k, pad) in shapes)
        {
            int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
            var a = Random((ta ? k : m) * lda, seed++); var b = Random((tb ? n : k) * ldb, seed++);
            var c0 = Random(m * ldc, seed++);
            foreach (var level in SupportedLevels())
                foreach (bool parallel in new[] { false, true })
                    using (KernelPath.Force(level))
                    {
                        Gemm.PackedOperand? packed = null;
                        Gemm.Pack(tb, k, n, b, ldb, ref packed, parallel);
                        foreach (int rows in new[] { m, Math.Max(1, m / 2) })
                        {
                            var expected = (float[])c0.Clone(); var c = (float[])c0.Clone();
                            Gemm.Multiply(ta, tb, rows, n, k, 0.5f, a, lda, b, ldb, 1f, expected, ldc, parallel);
                            Gemm.Multiply(ta, tb, rows, n, k, 0.5f, a, lda, b, ldb, 1f, c, ldc, parallel, packed);
                            for (int i = 0; i < c.Length; i++)
                                Assert.True(BitConverter.SingleToInt32Bits(c[i]) == BitConverter.SingleToInt32Bits(expected[i]),
                                    $"{level} parallel={parallel} {rows}×{n}×{k}: C[{i}] = {c[i]:R}, unpacked gives {expected[i]:R}");
                        }
                    }
        }
    }

    [Fact]
    public void BetaZeroNeverReadsC()
    {
        // With beta = 0 the SIMD kernels write C without clearing it first: whatever C held (NaN, ∞) must not leak,
        // and the bits must be those of a cleared C (including +0 for exact zero sums), on every path and tile shape.
        foreach (var (m, n, k) in new[] { (13, 33, 300), (12, 32, 8), (50, 200, 784), (5, 7, 3) })
        {
            var a = Random(m * k, m); var b = Random(k * n, n);
            for (int i = 0; i < a.Length; i += 4) a[i] = 0f;
            var expected = new float[m * n];
            using (KernelPath.Force(SimdLevel.Portable)) Gemm.Multiply(false, false, m, n, k, 1.5f, a, k, b, n, 0f, expected, n);
            foreach (var level in SupportedLevels())
                foreach (bool parallel in new[] { false, true })
                {
                    var c = new float[m * n];
                    Array.Fill(c, float.NaN);
                    for (int i = 0; i < c.Length; i += 3) c[i] = float.NegativeInfinity;
                    using (KernelPath.Force(level)) Gemm.Multiply(false, false, m, n, k, 1.5f, a, k, b, n, 0f, c, n, parallel);
                    for (int i = 0; i < c.Length; i++)
                        Assert.True(BitConverter.SingleToInt32Bits(c[i]) == BitConverter.SingleToInt32Bits(expected[i]), $"{level} {m}×{n}×{k}: C[{i}] = {c[i]:R}, expected {expected[i]:R}");
                }
        }
    }

    [Fact]
    public void APackedOperandOfAnotherShapeIsIgnored()
    {
        var b = Random(40 * 30, 1); var a = Random(5 * 40, 2);
        Gemm.PackedOperand? packed = null;
        Gemm.Pack(false, 30, 40, b, 40, ref packed); // 30×40, not the 40×30 op(B) below
        var expected = new float[5 * 30]; var c = new float[5 * 30];
        Gemm.Multiply(false, false, 5, 30, 40, 1f, a, 40, b, 30, 0f, expected, 30);
        Gemm.Multiply(false, false, 5, 30, 40, 1f, a, 40, b, 30, 0f, c, 30, packedB: packed);
        Assert.Equal(expected, c);
    }

    [Fact]
    public void ForcingAPathAboveTheCpusBestRunsTheBest()
    {
        using (KernelPath.Force(SimdLevel.Avx512)) Assert.Equal(KernelPath.Best, KernelPath.Current);
        using (KernelPath.Force(SimdLevel.Portable))
        {
            Assert.Equal(SimdLevel.Portable, KernelPath.Current);
            using (KernelPath.Force(SimdLevel.Avx2)) Assert.Equal(SimdLevel.Avx2 < KernelPath.Best ? SimdLevel.Avx2 : KernelPath.Best, KernelPath.Current);
            Assert.Equal(SimdLevel.Portable, KernelPath.Current);
        }
    }

    [Fact]
    public void EmptyProductsScaleC()
    {
        var c = new float[] { 1, 2, 3, 4 };
        Gemm.Multiply(false, false, 2, 2, 0, 1f, Array.Empty<float>(), 0, Array.Empty<float>(), 2, 0.5f, c, 2);
        Assert.Equal(new float[] { 0.5f, 1, 1.5f, 2 }, c);
        Gemm.Multiply(false, false, 0, 2, 3, 1f, Array.Empty<float>(), 3, new float[6], 2, 0f, Array.Empty<float>(), 2);
    }

    [Fact]
    public void ArgumentErrorsAreReported()
    {
        var a = new float[6]; var b = new float[6]; var c = new float[4];
        Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.Multiply(false, false, -1, 2, 3, 1f, a, 3, b, 2, 0f, c, 2));
        // lda smaller than the row length of the stored A (2×3).
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.Multiply(false, false, 2, 2, 3, 1f, a, 2, b, 2, 0f, c, 2));
        Assert.Equal("a", e.ParamName);
        // B too short for 3×2.
        var e2 = Assert.Throws<ArgumentException>(() => Gemm.Multiply(false, false, 2, 2, 3, 1f, a, 3, new float[5], 2, 0f, c, 2));
        Assert.Equal("b", e2.ParamName);
        // C too short for its stride.
        var e3 = Assert.Throws<ArgumentException>(() => Gemm.Multiply(false, false, 2, 2, 3, 1f, a, 3, b, 2, 0f, c, 3));
        Assert.Equal("c", e3.ParamName);
        // Transposed shapes are checked against op(): A^T stored 3×2 with lda 2 is fine, lda 1 is not.
        Gemm.Multiply(true, false, 2, 2, 3, 1f, a, 2, b, 2, 0f, c, 2);
        Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.Multiply(true, false, 2, 2, 3, 1f, a, 1, b, 2, 0f, c, 2));
    }
}
