using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;
using Xunit;

namespace Microsoft.ML.DeepDensity.Tests.DeepGmm;

/// <summary>
/// The fused leaf kernel (AVX-512: the paths' squared norms without writing the back-transformed rows) against the
/// GEMM route it replaces (forced with a lower kernel path), and a row alone against the same row in a block.
/// </summary>
public class DeepGmmLeafKernelTests
{
    public static TheoryData<int, string> Shapes => new()
    {
        { 3, "5" }, { 63, "8" }, { 63, "2,3" }, { 70, "2,2,3" }, { 17, "4,1,3" }, { 130, "2" },
    };

    private static float[] Rows(int n, int d, ulong seed)
    {
        var x = new float[n * d];
        new RandomStream(seed).FillGaussian(x, 0.3f, 1.2f);
        return x;
    }

    private static float[] Scores(DeepGmmNetwork net, float[] x, int n, bool oneRowAsVector = false)
    {
        var ws = new DeepGmmNetwork.ScoringWorkspace(net, n);
        net.ScoreAllPaths(x, n, ws, oneRowAsVector);
        return ws.Scores.AsSpan(0, n * net.PathCount).ToArray();
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void FusedLeavesAgreeWithTheGemmRoute(int d, string layers)
    {
        var net = DeepGmmTestModels.RandomNetwork(d, layers.Split(',').Select(int.Parse).ToArray(), seed: (ulong)(d * 31 + layers.Length));
        foreach (int n in new[] { 1, 5, 6, 13, 256 })
        {
            var x = Rows(n, d, (ulong)n);
            var best = Scores(net, x, n);
            float[] gemm;
            using (KernelPath.Force(SimdLevel.Avx2)) gemm = Scores(net, x, n);
            for (int i = 0; i < best.Length; i++)
            {
                Assert.True(float.IsFinite(best[i]), $"score {i} (n={n}) is {best[i]}");
                Assert.True(Math.Abs(best[i] - gemm[i]) <= 2e-5 * Math.Max(1, Math.Abs(gemm[i])),
                    $"n={n}, score {i}: fused {best[i]} vs GEMM route {gemm[i]}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void ARowScoresTheSameBitsAloneAndInABlock(int d, string layers)
    {
        var net = DeepGmmTestModels.RandomNetwork(d, layers.Split(',').Select(int.Parse).ToArray(), seed: (ulong)(d * 7 + layers.Length));
        const int n = 13;
        var x = Rows(n, d, 99);
        var block = Scores(net, x, n);
        int pc = net.PathCount;
        // Rows in a tile of six, in the remainder, first and last.
        foreach (int r in new[] { 0, 4, 5, 11, 12 })
        {
            var alone = Scores(net, x.AsSpan(r * d, d).ToArray(), 1, oneRowAsVector: true);
            for (int p = 0; p < pc; p++)
                Assert.True(BitConverter.SingleToInt32Bits(alone[p]) == BitConverter.SingleToInt32Bits(block[r * pc + p]),
                    $"row {r}, path {p}: alone {alone[p]:R} vs in the block {block[r * pc + p]:R}");
        }
    }
}
