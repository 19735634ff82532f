using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Numerics.Amx;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

/// <summary>
/// The exact binary product on the vector unit (<see cref="BinaryTableProduct"/>, AVX-512 without AMX): equal, bit for
/// bit, to <see cref="BinaryGemm.Reference"/> on both of its paths (subset-sum tables for many rows, the selected rows
/// of B for few), across int32 segments, edges of strips and chunks, and refusing what it cannot represent; and the
/// Bernoulli RBM that scores with it giving a row the same bits alone or in any block. Where the product is not usable
/// (an AMX machine computes it on the tile unit; no AVX-512) there is nothing to run.
/// </summary>
public class BinaryTableProductTests
{
    private static float[] Binary(int length, Random rng, double ones)
    {
        var a = new float[length];
        for (int i = 0; i < length; i++) a[i] = rng.NextDouble() < ones ? 1f : 0f;
        return a;
    }

    /// <summary>B with columns of mixed scale and sign, one all zero, one with a tiny negative entry.</summary>
    private static float[] MixedB(int k, int n, Random rng)
    {
        var b = new float[k * n];
        for (int i = 0; i < b.Length; i++)
            b[i] = (float)((rng.NextDouble() - 0.5) * Math.Pow(2, rng.Next(-30, 30) / 10.0)) * (i % n == 7 ? 0f : 1f);
        if (k > 5 && n > 3) b[5 * n + 3] = -1e-3f;
        return b;
    }

    private static void AssertReference(int m, int k, int n, float[] a, float[] b, int ldc)
    {
        BinaryTableProduct.Operand? op = null;
        Assert.True(BinaryTableProduct.TryQuantize(k, n, b, n, ref op));
        var expected = new float[m * ldc];
        var actual = new float[m * ldc];
        for (int i = 0; i < actual.Length; i++) expected[i] = actual[i] = i % ldc >= n ? 42f : -7f;
        BinaryGemm.Reference(false, false, m, n, k, 1f, a, k, b, n, 0f, expected, ldc);
        Assert.True(BinaryTableProduct.TryMultiply(a, m, k, op!, actual, ldc));
        for (int i = 0; i < actual.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                $"m {m}, k {k}, n {n}: C[{i / ldc}, {i % ldc}] is {actual[i]:R}, the definition {expected[i]:R}");
    }

    [Theory]
    [InlineData(1, 133, 45, 0.5)]                               // the row-by-row path, a ragged strip and chunk
    [InlineData(37, 133, 45, 0.3)]                              // more than one group of rows
    [InlineData(BinaryTableProduct.TableRows, 133, 45, 0.5)]    // the tables, one segment
    [InlineData(300, 784, 501, 0.29)]                           // the RBM's scoring shape: four segments
    [InlineData(200, 64, 16, 0.9)]                              // whole strips and chunks only
    public void EqualsTheDefinitionBitForBit(int m, int k, int n, double ones)
    {
        if (!BinaryTableProduct.IsUsable) return;
        var rng = new Random(m * 31 + k);
        AssertReference(m, k, n, Binary(m * k, rng, ones), MixedB(k, n, rng), n + 3);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(BinaryTableProduct.TableRows + 1)]
    public void SumsThatOverflowAnInt32StayExact(int m)
    {
        // All ones against a column whose every entry quantizes to 2^23 - 1: 2,100 rows of B sum to about 2^34.
        if (!BinaryTableProduct.IsUsable) return;
        const int k = 2100, n = 20;
        var b = new float[k * n];
        var rng = new Random(5);
        for (int i = 0; i < b.Length; i++) b[i] = i % n == 0 ? 0.99999994f : (float)(rng.NextDouble() - 0.5);
        var a = new float[m * k];
        Array.Fill(a, 1f);
        AssertReference(m, k, n, a, b, n);
    }

    [Fact]
    public void AnEntryOtherThanZeroOrOneIsRefusedAndCIsLeftAlone()
    {
        if (!BinaryTableProduct.IsUsable) return;
        BinaryTableProduct.Operand? op = null;
        Assert.True(BinaryTableProduct.TryQuantize(10, 20, new float[200], 20, ref op));
        foreach (int m in new[] { 1, BinaryTableProduct.TableRows })
        {
            var a = new float[m * 10];
            a[^1] = 0.5f;
            var c = new float[m * 20];
            Array.Fill(c, 3f);
            Assert.False(BinaryTableProduct.TryMultiply(a, m, 10, op!, c, 20));
            Assert.All(c, v => Assert.Equal(3f, v));
        }
    }

    [Fact]
    public void ANonFiniteBIsRefused()
    {
        BinaryTableProduct.Operand? op = null;
        var b = new float[40];
        b[17] = float.PositiveInfinity;
        Assert.False(BinaryTableProduct.TryQuantize(4, 10, b, 10, ref op));
        b[17] = float.NaN;
        Assert.False(BinaryTableProduct.TryQuantize(4, 10, b, 10, ref op));
    }

    [Fact]
    public void TheRbmScoresARowWithTheSameBitsAloneOrInAnyBlock()
    {
        // 1,000 rows take the tables in blocks of 500 (two threads) or more; each row alone takes the selected rows;
        // the float GEMM (BinaryGemm.Off) agrees to rounding.
        var machine = new RbmMachine(100, 60, RbmVisibleType.Bernoulli);
        new RandomStream(3).FillGaussian(machine.W, 0f, 0.2f);
        new RandomStream(4).FillGaussian(machine.B, 0f, 0.5f);
        var model = new RbmModel(machine, null, LogPartitionMethod.AnnealedImportanceSampling, 50, 0, 50, 50, 1, 1, 0, 1, 1);
        const int rows = 1000;
        var x = Binary(rows * 100, new Random(8), 0.3);
        var together = new float[rows];
        model.LogDensity(x, together);
        var alone = new float[1];
        for (int r = 0; r < rows; r += 37)
        {
            model.LogDensity(x.AsSpan(r * 100, 100), alone);
            Assert.Equal(BitConverter.SingleToInt32Bits(together[r]), BitConverter.SingleToInt32Bits(alone[0]));
        }
        var floatPath = new float[rows];
        using (BinaryGemm.Off()) model.LogDensity(x, floatPath);
        for (int r = 0; r < rows; r++) Assert.True(Math.Abs(floatPath[r] - together[r]) <= 1e-5 * Math.Abs(together[r]) + 1e-4,
            $"row {r}: {together[r]} exact, {floatPath[r]} float");
    }
}
