using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Tests.Conformance;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

/// <summary>
/// The product of a 0/1 matrix as sums of selected rows (<see cref="OnesGemm"/>, <see cref="OnesIndex"/>): the same bits
/// as <see cref="Gemm"/> for every shape, block edge, density, scale and row range, packed or not; refusing what Gemm
/// would turn into NaN and what is not 0/1; and the RBM that uses it training and scoring to the same bytes as without it.
/// Without AVX-512 (or on .NET 8) the products are not usable and the tests check only that they refuse.
/// </summary>
[Collection(EngineSettingsCollection.Name)] // turns the products off process-wide in one test
public class OnesGemmTests
{
    private static float[] Binary(int length, Random rng, double ones)
    {
        var a = new float[length];
        for (int i = 0; i < a.Length; i++) a[i] = rng.NextDouble() < ones ? 1f : (rng.Next(4) == 0 ? -0f : 0f);
        return a;
    }

    private static float[] Gaussian(int length, Random rng)
    {
        var b = new float[length];
        for (int i = 0; i < b.Length; i++) b[i] = (float)(rng.NextDouble() * 2 - 1) * 3f;
        return b;
    }

    public static TheoryData<int, int, int> Shapes => new()
    {
        { 1, 1, 1 }, { 2, 15, 7 }, { 3, 16, 128 }, { 17, 17, 129 }, { 64, 63, 256 }, { 65, 64, 257 }, { 130, 65, 600 },
        { 7, 130, 513 }, { 66, 250, 784 }, { 5, 500, 200 }, { 129, 116, 300 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void ProductEqualsGemmBitForBit(int m, int n, int k)
    {
        var rng = new Random(m * 1000 + n * 10 + k);
        foreach (bool transpose in new[] { false, true })
        foreach (bool transposeB in new[] { false, true })
        foreach (double ones in new[] { 0.0, 0.1, 0.5, 1.0 })
        foreach (var (alpha, beta) in new[] { (1f, 0f), (0.5f, 1f), (-1.3f, 0.7f) })
        {
            int lda = (transpose ? m : k) + 3, ldb = (transposeB ? k : n) + 5, ldc = n + 2;
            var a = Binary((transpose ? k : m) * lda, rng, ones);
            var b = Gaussian((transposeB ? n : k) * ldb, rng);
            var expected = Gaussian(m * ldc, rng);
            var actual = expected.ToArray();
            var packedActual = expected.ToArray();
            Gemm.Multiply(transpose, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, expected, ldc, allowParallel: false);
            var index = new OnesIndex();
            Assert.True(index.TryBuild(transpose, m, k, a, lda));
            if (!OnesGemm.IsUsable)
            {
                Assert.False(OnesGemm.TryMultiply(index, 0, m, n, alpha, b, ldb, beta, actual, ldc, transposeB));
                return;
            }
            Assert.True(OnesGemm.TryMultiply(index, 0, m, n, alpha, b, ldb, beta, actual, ldc, transposeB));
            Assert.Equal(Bits(expected), Bits(actual));
            OnesGemm.Panels? panels = null;
            if (OnesGemm.TryPack(b, k, n, ldb, ref panels, transposeB))
            {
                Assert.True(OnesGemm.TryMultiply(index, 0, m, panels!, alpha, beta, packedActual, ldc));
                Assert.Equal(Bits(expected), Bits(packedActual));
            }
            else Assert.True(n < 16);
        }
    }

    [Fact]
    public void ARangeOfRowsIsThoseRowsOfTheWholeProduct()
    {
        if (!OnesGemm.IsUsable) return;
        var rng = new Random(3);
        int m = 90, n = 70, k = 300;
        var a = Binary(m * k, rng, 0.3);
        var b = Gaussian(k * n, rng);
        var whole = new float[m * n];
        Gemm.Multiply(false, false, m, n, k, 1f, a, k, b, n, 0f, whole, n, allowParallel: false);
        var index = new OnesIndex();
        Assert.True(index.TryBuild(false, m, k, a, k));
        foreach (var (first, rows) in new[] { (0, 1), (5, 2), (31, 33), (89, 1), (0, 90) })
        {
            var part = new float[rows * n];
            Assert.True(OnesGemm.TryMultiply(index, first, rows, n, 1f, b, n, 0f, part, n));
            Assert.Equal(Bits(whole.AsSpan(first * n, rows * n).ToArray()), Bits(part));
        }
    }

    [Fact]
    public void AnIndexOfColumnsListsEachColumnsOnesInOrder()
    {
        var rng = new Random(4);
        int rows = 200, columns = 300;
        var a = Binary(rows * columns, rng, 0.3);
        var whole = new OnesIndex();
        Assert.True(whole.TryBuild(true, columns, rows, a, columns));
        // The same index made block by block, as the RBM's weight update makes it.
        var byBlocks = new OnesIndex();
        Assert.True(byBlocks.Reset(columns, rows));
        foreach (var (first, count) in new[] { (0, 7), (7, 120), (127, 173) }) Assert.True(byBlocks.TryIndexColumns(a, columns, first, count));
        int stride = whole.SubBlocks + 1;
        Assert.Equal(2, stride - 1);
        foreach (var index in new[] { whole, byBlocks })
        {
            for (int i = 0; i < columns; i++)
            {
                var expected = Enumerable.Range(0, rows).Where(p => a[p * columns + i] == 1f).ToArray();
                for (int s = 0; s < stride - 1; s++)
                    Assert.Equal(expected.Where(p => p / OnesIndex.SubBlock == s),
                        index.Position[index.Bounds[i * stride + s]..index.Bounds[i * stride + s + 1]]);
            }
            Assert.Equal(a.Count(x => x == 1f), index.Ones(0, columns));
        }
    }

    [Theory]
    [InlineData(0.5f)]
    [InlineData(2f)]
    [InlineData(float.NaN)]
    [InlineData(-1f)]
    public void ValuesOtherThanZeroAndOneAreRefused(float bad)
    {
        foreach (int at in new[] { 0, 15, 16, 130, 299 })
        {
            var a = new float[2 * 300];
            a[300 + at] = bad;
            Assert.False(new OnesIndex().TryBuild(false, 2, 300, a, 300));
            var columns = new OnesIndex();
            Assert.True(columns.Reset(300, 2));
            Assert.False(columns.TryIndexColumns(a, 300, 0, 300));
            Assert.False(OnesGemm.TryMultiplyRows(a, 2, 300, new float[300 * 20], 20, new float[2 * 20]));
        }
    }

    [Theory]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NaN)]
    public void ANonFiniteRightOperandIsLeftToGemm(float bad)
    {
        var rng = new Random(5);
        int m = 4, n = 40, k = 50;
        var a = Binary(m * k, rng, 0.3);
        var b = Gaussian(k * n, rng);
        b[17 * n + 3] = bad;
        var index = new OnesIndex();
        Assert.True(index.TryBuild(false, m, k, a, k));
        var c = new float[m * n];
        Assert.False(OnesGemm.TryMultiply(index, 0, m, n, 1f, b, n, 0f, c, n));
        Assert.All(c, x => Assert.Equal(0f, x));
        OnesGemm.Panels? panels = null;
        if (OnesGemm.TryPack(b, k, n, n, ref panels)) Assert.False(OnesGemm.TryMultiply(index, 0, m, panels!, 1f, 0f, c, n));
    }

    [Fact]
    public void TheProductsAreTakenUpToTheirDensityLimits()
    {
        var index = new OnesIndex();
        foreach (var (ones, unpacked, packed) in new[] { (40, true, true), (41, false, true), (50, false, true), (51, false, false) })
        {
            var a = new float[100];
            for (int i = 0; i < ones; i++) a[i * 100 / ones] = 1f;
            Assert.True(index.TryBuild(false, 1, 100, a, 100));
            Assert.Equal(unpacked, OnesGemm.Pays(index));
            Assert.Equal(packed, OnesGemm.Pays(index, packedB: true));
        }
    }

    [Fact]
    public void AForcedKernelPathTurnsTheProductsOff()
    {
        using (KernelPath.Force(SimdLevel.Avx2)) Assert.False(OnesGemm.IsUsable);
        using (KernelPath.Force(SimdLevel.Portable)) Assert.False(OnesGemm.IsUsable);
    }

    /// <summary>The RBM on sparse binary rows (a fifth of ones, below the products' density limit) trains and scores
    /// to the same bytes with the products on and off, on the trainer's hidden regions, weight update, AIS and scoring.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TheRbmGivesTheSameBytesWithAndWithoutTheProducts(bool persistent)
    {
        var rng = new Random(6);
        var data = new RowMatrix(Binary(400 * 90, rng, 0.2), 400, 90);
        var test = new RowMatrix(Binary(300 * 90, rng, 0.2), 300, 90);
        var options = new RbmOptions
        {
            // 100 AIS runs anneal in two parts of 50, each on one thread: the parts' products take the sums.
            HiddenUnits = 70, MaxEpochs = 3, BatchSize = 50, AisTemperatures = 200, AisRuns = 100, Seed = 3,
            Algorithm = persistent ? RbmTrainingAlgorithm.PersistentContrastiveDivergence : RbmTrainingAlgorithm.ContrastiveDivergence,
        };
        (byte[] Model, float[] Scores, float[] Samples) Run()
        {
            var model = RbmModel.Fit(data, options);
            return (model.ToBytes(), model.LogDensity(test), model.Sample(200, seed: 4).AsSpan().ToArray());
        }
        var on = Run();
        bool before = OnesGemm.Disabled;
        OnesGemm.Disabled = true;
        try
        {
            var off = Run();
            Assert.Equal(off.Model, on.Model);
            Assert.Equal(Bits(off.Scores), Bits(on.Scores));
            Assert.Equal(Bits(off.Samples), Bits(on.Samples));
        }
        finally { OnesGemm.Disabled = before; }
    }

    /// <summary>A PCD trainer whose hidden samples are sparse too (hidden biases −2), so all three regions of a step take
    /// the products: the same weights bit for bit as with the products off, over steps with momentum and decay.</summary>
    [Theory]
    [InlineData(90, 70, 50)]
    [InlineData(300, 130, 33)]
    [InlineData(784, 130, 40)] // 80 stacked rows of 784: the index's rows are built in blocks on the worker team
    public void EveryRegionOfAStepGivesTheSameBitsWithTheProducts(int d, int h, int n)
    {
        var rng = new Random(d + h);
        var rows = Binary(n * d, rng, 0.2);
        RbmMachine Machine()
        {
            var m = new RbmMachine(d, h, RbmVisibleType.Bernoulli);
            new RandomStream(8).FillGaussian(m.W, 0f, 0.05f);
            m.B.AsSpan().Fill(MathF.Log(0.2f / 0.8f));
            m.C.AsSpan().Fill(-2f);
            return m;
        }
        RbmMachine Train()
        {
            var m = Machine();
            var trainer = new RbmTrainer(m, n, gibbsSteps: 2, persistent: true, persistentChains: 0);
            trainer.SetBatch(rows, n);
            for (int s = 0; s < 4; s++) trainer.Step(n, 0.05f, 0.5f, 1e-4f, new RandomStream(9).Fork((ulong)s));
            return m;
        }
        var on = Train();
        bool before = OnesGemm.Disabled;
        OnesGemm.Disabled = true;
        try
        {
            var off = Train();
            Assert.Equal(Bits(off.W), Bits(on.W));
            Assert.Equal(Bits(off.B), Bits(on.B));
            Assert.Equal(Bits(off.C), Bits(on.C));
        }
        finally { OnesGemm.Disabled = before; }
    }

    /// <summary>The weight step fused into the product (the weights argument: v += decay · w, then w += v, on C's final
    /// values) gives the bits of the product followed by the separate pass, for every shape (narrow C's single columns,
    /// the last vector's overlap, k beyond one k-block), alpha 0, and with C's final values not stored.</summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    public void FusedWeightStepEqualsTheSeparatePass(int m, int n, int k)
    {
        if (!OnesGemm.IsUsable) return;
        var rng = new Random(m * 7 + n * 3 + k);
        foreach (var (alpha, beta, decay) in new[] { (0.05f, 0f, 0f), (0.05f, 0.5f, -1e-4f), (-1.3f, 1f, 0.01f), (0f, 0.7f, -1e-3f) })
        foreach (bool storeC in new[] { true, false })
        {
            int ldb = n + 5, ldc = n + 2;
            var a = Binary(m * k, rng, 0.3);
            var b = Gaussian(k * ldb, rng);
            var c0 = Gaussian(m * ldc, rng);
            var w0 = Gaussian(m * ldc, rng);
            var index = new OnesIndex();
            Assert.True(index.TryBuild(false, m, k, a, k));
            var expectedC = c0.ToArray();
            var expectedW = w0.ToArray();
            Assert.True(OnesGemm.TryMultiply(index, 0, m, n, alpha, b, ldb, beta, expectedC, ldc));
            for (int r = 0; r < m; r++)
                for (int j = 0; j < n; j++)
                {
                    int e = r * ldc + j;
                    float v = expectedC[e];
                    if (decay != 0f) v = expectedW[e] * decay + v;
                    expectedC[e] = v;
                    expectedW[e] += v;
                }
            var actualC = c0.ToArray();
            var actualW = w0.ToArray();
            Assert.True(OnesGemm.TryMultiply(index, 0, m, n, alpha, b, ldb, beta, actualC, ldc, weights: actualW, decay: decay, storeC: storeC));
            Assert.Equal(Bits(expectedW), Bits(actualW));
            // Not stored: C holds no final values (k-blocks before the last may leave their partial sums there).
            if (storeC) Assert.Equal(Bits(expectedC), Bits(actualC));
            else if (k <= Gemm.KC) Assert.Equal(Bits(c0), Bits(actualC));
        }
    }

    /// <summary>A trainer's weight step fused into the sums of its weight update moves W to the bits of the separate
    /// pass (FusePasses off) and of the float GEMM (products off): with momentum and decay, for a trainer made for
    /// momentum 0 (velocity not stored), over one chunk and several (velocity carried between chunks), with more stacked
    /// rows than one k-block, and with fewer hidden units than a vector.</summary>
    [Theory]
    [InlineData(90, 70, 50, false)]
    [InlineData(90, 70, 50, true)]
    [InlineData(60, 40, 150, true)]   // 300 stacked rows: two k-blocks of the update's sums
    [InlineData(30, 20, 2100, true)]  // two chunks
    [InlineData(30, 20, 2100, false)]
    [InlineData(50, 12, 40, true)]    // 12 hidden units: the update's single columns
    public void FusedWeightStepOfATrainerGivesTheSameBits(int d, int h, int n, bool momentumIsZero)
    {
        if (!OnesGemm.IsUsable) return;
        var rows = Binary(n * d, new Random(d * h + n), 0.2);
        float momentum = momentumIsZero ? 0f : 0.5f;
        int[][] Train(bool fuse)
        {
            var m = new RbmMachine(d, h, RbmVisibleType.Bernoulli);
            new RandomStream(8).FillGaussian(m.W, 0f, 0.05f);
            m.B.AsSpan().Fill(MathF.Log(0.2f / 0.8f));
            m.C.AsSpan().Fill(-2f);
            var trainer = new RbmTrainer(m, n, gibbsSteps: 1, persistent: true, persistentChains: 0) { FusePasses = fuse, MomentumIsZero = momentumIsZero };
            trainer.SetBatch(rows, n);
            for (int s = 0; s < 3; s++) trainer.Step(n, 0.05f, momentum, s == 1 ? 0f : 1e-3f, new RandomStream(9).Fork((ulong)s));
            return [Bits(m.W), Bits(m.B), Bits(m.C)];
        }
        var fused = Train(fuse: true);
        Assert.Equal(Train(fuse: false), fused);
        bool before = OnesGemm.Disabled;
        OnesGemm.Disabled = true;
        try { Assert.Equal(Train(fuse: true), fused); }
        finally { OnesGemm.Disabled = before; }
    }

    /// <summary>AIS on a machine whose hidden samples have few ones (hidden biases −2): its two parts of 50 runs, each
    /// on one thread, take the sums for both of a sweep's products, and log Z comes out the same bits as without them.</summary>
    [Fact]
    public void AisGivesTheSameLogPartitionWithTheProducts()
    {
        int d = 120, h = 90;
        var m = new RbmMachine(d, h, RbmVisibleType.Bernoulli);
        new RandomStream(8).FillGaussian(m.W, 0f, 0.1f);
        m.B.AsSpan().Fill(MathF.Log(0.2f / 0.8f));
        m.C.AsSpan().Fill(-2f);
        var baseBias = Enumerable.Repeat(MathF.Log(0.2f / 0.8f), d).ToArray();
        var betas = Enumerable.Range(0, 301).Select(i => i / 300.0).ToArray();
        var on = m.EstimateLogPartitionAis(baseBias, 100, betas, new RandomStream(5));
        bool before = OnesGemm.Disabled;
        OnesGemm.Disabled = true;
        try
        {
            var off = m.EstimateLogPartitionAis(baseBias, 100, betas, new RandomStream(5));
            Assert.Equal(off.LogWeights, on.LogWeights);
            Assert.Equal(off.LogZ, on.LogZ);
        }
        finally { OnesGemm.Disabled = before; }
    }

    private static int[] Bits(float[] values) => values.Select(BitConverter.SingleToInt32Bits).ToArray();
}
