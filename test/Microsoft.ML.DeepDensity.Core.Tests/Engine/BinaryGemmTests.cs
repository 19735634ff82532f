using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Numerics.Amx;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

/// <summary>
/// The exact binary product on the AMX tile unit (<see cref="BinaryGemm"/>): equal, bit for bit, to its scalar integer
/// definition for every shape, transposition, scale and split; within float rounding of the double product; refusing
/// what it cannot represent; and the RBM that uses it agreeing with the float GEMM to rounding. On a machine without
/// AMX the product tests have nothing to run and pass; <see cref="AmxIsInUseWhereTheCpuAndKernelHaveIt"/> makes sure
/// that is not because detection broke.
/// </summary>
public class BinaryGemmTests
{
    /// <summary>Loads the same rows into two trainers and runs the same steps (lr 0.05, weight decay 1e-4) on both.</summary>
    private static void StepBoth(RbmTrainer a, RbmTrainer b, float[] rows, int n, int steps, float momentum)
    {
        a.SetBatch(rows, n);
        b.SetBatch(rows, n);
        for (int s = 0; s < steps; s++)
        {
            a.Step(n, 0.05f, momentum, 1e-4f, new RandomStream(9).Fork((ulong)s));
            b.Step(n, 0.05f, momentum, 1e-4f, new RandomStream(9).Fork((ulong)s));
        }
    }

    /// <summary>A Bernoulli RBM with weights N(0, 0.1²) from <paramref name="seed"/>.</summary>
    private static RbmMachine Machine(int d, int h, ulong seed)
    {
        var m = new RbmMachine(d, h, RbmVisibleType.Bernoulli);
        new RandomStream(seed).FillGaussian(m.W, 0f, 0.1f);
        return m;
    }

    private static float[] Binary(int length, Random rng, double ones = 0.5)
    {
        var v = new float[length];
        for (int i = 0; i < v.Length; i++) v[i] = rng.NextDouble() < ones ? 1f : 0f;
        return v;
    }

    /// <summary>Entries over many binades, with an all-zero column, negative columns and a few exact ties.</summary>
    private static float[] Real(int rows, int columns, Random rng)
    {
        var v = new float[rows * columns];
        for (int i = 0; i < v.Length; i++)
        {
            int column = i % columns;
            double magnitude = Math.Pow(2, (column % 7) * 9 - 30) * (1 + rng.NextDouble());
            v[i] = column == 2 ? 0f : (float)((rng.NextDouble() - (column % 3 == 0 ? 1.0 : 0.5)) * magnitude);
        }
        return v;
    }

    [Fact]
    public void AmxIsInUseWhereTheCpuAndKernelHaveIt()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64 || !X86Base.IsSupported) return;
        var (_, _, _, edx) = X86Base.CpuId(7, 0);
        bool cpuHasAmx = ((edx >> 24) & 1) != 0 && ((edx >> 25) & 1) != 0;
        if (!cpuHasAmx || Environment.GetEnvironmentVariable("DEEPDENSITY_AMX") == "0") return;
        Assert.True(AmxRuntime.IsAvailable, "The CPU reports AMX-TILE and AMX-INT8 but the engine does not use it: " + AmxRuntime.Status);
        Assert.True(BinaryGemm.IsUsable);
        using (BinaryGemm.Off()) Assert.False(BinaryGemm.IsUsable);
        using (KernelPath.Force(SimdLevel.Avx2)) Assert.False(BinaryGemm.IsUsable);
    }

    [Fact]
    public void ProductEqualsItsExactIntegerDefinitionBitForBit()
    {
        if (!BinaryGemm.IsUsable) return;
        var rng = new Random(20261127);
        BinaryGemm.BinaryOperand? packedA = null;
        BinaryGemm.QuantizedOperand? packedB = null;
        for (int trial = 0; trial < 120; trial++)
        {
            // Every edge: m, n, k below, at and across the tile sizes (16 rows, 32 columns, 64 k), and the transposed
            // packing's 64 × 8 blocks.
            int m = trial < 8 ? 1 + trial * 19 : rng.Next(1, 150);
            int n = rng.Next(1, 100), k = trial % 10 == 0 ? 64 * rng.Next(1, 4) : rng.Next(1, 300);
            bool ta = trial % 2 == 1, tb = trial % 4 >= 2;
            float alpha = trial % 3 == 0 ? 1f : -0.75f, beta = trial % 5 == 0 ? 0f : 0.5f;
            int lda = (ta ? m : k) + trial % 3, ldb = (tb ? k : n) + trial % 2, ldc = n + trial % 4;
            var a = Binary((ta ? k : m) * lda, rng, ones: trial % 7 == 0 ? 0.02 : 0.5);
            var b = Real(tb ? n : k, ldb, rng);
            var c = new float[m * ldc];
            for (int i = 0; i < c.Length; i++) c[i] = (float)rng.NextDouble();
            var expected = (float[])c.Clone();
            BinaryGemm.Reference(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, expected, ldc);
            Assert.True(BinaryGemm.TryQuantize(tb, k, n, b, ldb, ref packedB, parallel: trial % 2 == 0));
            Assert.True(BinaryGemm.TryMultiply(ta, m, k, alpha, a, lda, packedB!, beta, c, ldc, ref packedA, allowParallel: trial % 2 == 0));
            for (int i = 0; i < c.Length; i++)
                Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(c[i]),
                    $"trial {trial} (m {m}, n {n}, k {k}, ta {ta}, tb {tb}): element {i} is {c[i]:R}, the definition gives {expected[i]:R}");
        }
    }

    [Fact]
    public void ProductIsWithinFloatRoundingOfTheDoubleProduct()
    {
        if (!BinaryGemm.IsUsable) return;
        var rng = new Random(7);
        int m = 37, n = 70, k = 784;
        var a = Binary(m * k, rng);
        var b = new float[k * n];
        for (int i = 0; i < b.Length; i++) b[i] = (float)(rng.NextDouble() - 0.5);
        BinaryGemm.QuantizedOperand? qb = null;
        BinaryGemm.BinaryOperand? pa = null;
        var c = new float[m * n];
        Assert.True(BinaryGemm.TryQuantize(false, k, n, b, n, ref qb));
        Assert.True(BinaryGemm.TryMultiply(false, m, k, 1f, a, k, qb!, 0f, c, n, ref pa));
        for (int j = 0; j < n; j++)
        {
            double max = 0;
            for (int p = 0; p < k; p++) max = Math.Max(max, Math.Abs(b[p * n + j]));
            for (int i = 0; i < m; i++)
            {
                double exact = 0;
                int active = 0;
                for (int p = 0; p < k; p++) if (a[i * k + p] == 1f) { exact += b[p * n + j]; active++; }
                // Each entry is rounded by at most half a unit of 2^-e ≤ max·2^-23, then one rounding to float.
                double bound = active * max * Math.Pow(2, -23) + Math.Abs(exact) * Math.Pow(2, -24) + 1e-30;
                Assert.True(Math.Abs(c[i * n + j] - exact) <= bound, $"({i}, {j}): {c[i * n + j]:R} vs {exact:R}, bound {bound:G3}");
            }
        }
    }

    [Fact]
    public void ResultDoesNotDependOnBlocksRowsOrThreads()
    {
        if (!BinaryGemm.IsUsable) return;
        var rng = new Random(11);
        int m = 75, n = 90, k = 200;
        var a = Binary(m * k, rng);
        var b = Real(k, n, rng);
        BinaryGemm.QuantizedOperand? qb = null;
        BinaryGemm.BinaryOperand? pa = null;
        Assert.True(BinaryGemm.TryQuantize(false, k, n, b, n, ref qb));
        var whole = new float[m * n];
        Assert.True(BinaryGemm.TryMultiply(false, m, k, 1f, a, k, qb!, 0f, whole, n, ref pa, allowParallel: true));

        // Column ranges that start and end inside panels, and row blocks one at a time.
        var pieces = new float[m * n];
        foreach (var (first, count) in new[] { (0, 7), (7, 30), (37, 1), (38, 52) })
            for (int blk = 0; blk < pa!.RowBlocks; blk++)
                BinaryGemm.Multiply(pa, qb!, first, count, 1f, 0f, pieces, n, firstRowBlock: blk, rowBlockCount: 1);
        Assert.Equal(whole, pieces);

        // Each row alone.
        var row = new float[n];
        BinaryGemm.BinaryOperand? one = null;
        for (int i = 0; i < m; i++)
        {
            Assert.True(BinaryGemm.TryMultiply(false, 1, k, 1f, a.AsSpan(i * k, k), k, qb!, 0f, row, n, ref one));
            Assert.Equal(whole.AsSpan(i * n, n).ToArray(), row);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ParallelPackingAndQuantizationGiveTheSameOperands(bool transpose)
    {
        if (!BinaryGemm.IsUsable) return;
        var rng = new Random(17);
        int m = 300, k = 250, n = 200;                                // above the parallel thresholds, with edge groups
        var a = Binary(m * k, rng);
        var b = Real(transpose ? n : k, transpose ? k : n, rng);
        BinaryGemm.BinaryOperand? serialA = null, parallelA = null;
        BinaryGemm.QuantizedOperand? serialB = null, parallelB = null;
        Assert.True(BinaryGemm.TryPack(transpose, m, k, a, transpose ? m : k, ref serialA, parallel: false));
        Assert.True(BinaryGemm.TryPack(transpose, m, k, a, transpose ? m : k, ref parallelA, parallel: true));
        Assert.True(BinaryGemm.TryQuantize(transpose, k, n, b, transpose ? k : n, ref serialB, parallel: false));
        Assert.True(BinaryGemm.TryQuantize(transpose, k, n, b, transpose ? k : n, ref parallelB, parallel: true));
        int aBytes = serialA!.RowBlocks * BinaryGemm.BlockRows * serialA.RowBytes;
        Assert.True(serialA.Buffer.AsSpan(serialA.Offset, aBytes).SequenceEqual(parallelA!.Buffer.AsSpan(parallelA.Offset, aBytes)));
        int bBytes = serialB!.Panels * serialB.PanelBytes;
        Assert.True(serialB.Buffer.AsSpan(serialB.Offset, bBytes).SequenceEqual(parallelB!.Buffer.AsSpan(parallelB.Offset, bBytes)));
        Assert.Equal(serialB.Scales, parallelB.Scales);
        a[(k - 1) * (transpose ? m : k) / 2 + 3] = 0.25f;             // one bad entry fails the parallel packing too
        Assert.False(BinaryGemm.TryPack(transpose, m, k, a, transpose ? m : k, ref parallelA, parallel: true));
    }

    [Fact]
    public void GivenMaximaQuantizeAsTheOperandsOwn()
    {
        if (!BinaryGemm.IsUsable) return;
        var rng = new Random(23);
        // Large enough (k × n ≥ 2^16) that the non-transposed operand with given maxima is filled in k-steps, B's rows
        // in order, rather than panel by panel; 90 columns end in a partial panel.
        int rows = 900, columns = 90;
        var b = Real(rows, columns, rng);
        var columnMax = new float[columns];
        var rowMax = new float[rows];
        Assert.True(BinaryGemm.Maxima(b, rows, columns, columns, columnMax, rowMax, parallel: true));
        foreach (bool transpose in new[] { false, true })
        {
            // op(B) = B (k = rows, n = columns, maxima per column) or Bᵀ (k = columns, n = rows, maxima per row).
            int k = transpose ? columns : rows, n = transpose ? rows : columns;
            BinaryGemm.QuantizedOperand? own = null, given = null;
            Assert.True(BinaryGemm.TryQuantize(transpose, k, n, b, columns, ref own, parallel: true));
            Assert.True(BinaryGemm.TryQuantize(transpose, k, n, b, columns, ref given, parallel: true, maxima: transpose ? rowMax : columnMax));
            int bytes = own!.Panels * own.PanelBytes;
            Assert.True(own.Buffer.AsSpan(own.Offset, bytes).SequenceEqual(given!.Buffer.AsSpan(given.Offset, bytes)));
            Assert.Equal(own.Scales, given.Scales);
        }
        b[7 * columns + 41] = float.NaN;
        Assert.False(BinaryGemm.Maxima(b, rows, columns, columns, columnMax, rowMax, parallel: true));
    }

    [Fact]
    public void ValuesItCannotRepresentAreRefused()
    {
        if (!BinaryGemm.IsUsable) return;
        BinaryGemm.BinaryOperand? pa = null;
        BinaryGemm.QuantizedOperand? qb = null;
        var a = new float[3 * 70];
        a[2 * 70 + 65] = 0.5f;                                        // in the vector part's tail
        Assert.False(BinaryGemm.TryPack(false, 3, 70, a, 70, ref pa));
        a[2 * 70 + 65] = 0f; a[5] = float.NaN;
        Assert.False(BinaryGemm.TryPack(false, 3, 70, a, 70, ref pa));
        foreach (float bad in new[] { float.Epsilon, -float.Epsilon, 1e-30f, 1.0000001f, 0.99999994f, -1f, 2f, float.PositiveInfinity, float.MaxValue })
        {
            a[5] = bad;                                                // in the vector part
            Assert.False(BinaryGemm.TryPack(false, 3, 70, a, 70, ref pa), $"{bad:R} was packed as binary");
        }
        a[5] = -0f;
        Assert.True(BinaryGemm.TryPack(false, 3, 70, a, 70, ref pa));
        var wide = new float[80 * 9];
        wide[3 * 80 + 40] = 2f;                                        // the transposed packing's 64 × 8 blocks
        Assert.False(BinaryGemm.TryPack(true, 80, 9, wide, 80, ref pa));
        foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
        {
            var b = new float[10 * 40];
            b[7 * 40 + 33] = bad;
            Assert.False(BinaryGemm.TryQuantize(false, 10, 40, b, 40, ref qb));
            Assert.False(BinaryGemm.TryQuantize(true, 40, 10, b, 40, ref qb));
        }
    }

    [Fact]
    public void TransposeOfAnEightByEightBitMatrix()
    {
        var rng = new Random(5);
        for (int trial = 0; trial < 100; trial++)
        {
            ulong x = (ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 40);
            ulong t = BinaryGemm.Transpose8x8(x);
            for (int r = 0; r < 8; r++)
                for (int c = 0; c < 8; c++)
                    Assert.Equal((x >> (8 * r + c)) & 1, (t >> (8 * c + r)) & 1);
        }
    }

    /// <summary>The checked-in machine code is what its C source compiles to (when this machine has gcc with AMX).</summary>
    [Fact]
    public void AmxCodeMatchesItsSource()
    {
        string root = RepositoryRoot();
        string script = Path.Combine(root, "build", "amx", "regenerate.sh");
        if (!OperatingSystem.IsLinux() || !File.Exists(script) || !CommandExists("gcc") || !CommandExists("objcopy")) return;
        string output = Path.Combine(Path.GetTempPath(), $"AmxCode-{Environment.ProcessId}.cs");
        try
        {
            var run = Process.Start(new ProcessStartInfo("bash", [script, output]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            string error = run.StandardError.ReadToEnd();
            run.WaitForExit();
            if (run.ExitCode != 0 && error.Contains("amx", StringComparison.OrdinalIgnoreCase)) return; // a gcc without AMX
            Assert.True(run.ExitCode == 0, error);
            static IEnumerable<string> Code(string path) => File.ReadLines(path).Where(l => l.TrimStart().StartsWith("0x", StringComparison.Ordinal));
            var checkedIn = Path.Combine(root, "src", "Microsoft.ML.DeepDensity.Core", "Numerics", "Amx", "AmxCode.g.cs");
            Assert.Equal(Code(checkedIn), Code(output));
        }
        finally { File.Delete(output); }
    }

    private static bool CommandExists(string name)
        => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, name)));

    private static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "DeepDensity.ML.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("The repository root was not found.");
    }

    /// <summary>Transposing a packed operand gives the bytes of packing the transposed floats (rows and columns that are not
    /// whole tiles, padding included), for any dirty buffer it reuses.</summary>
    [Fact]
    public void TransposeOfAPackedOperandIsThePackingOfTheTranspose()
    {
        var rng = new Random(8);
        BinaryGemm.BinaryOperand? transposed = null;
        foreach (var (m, k) in new[] { (200, 784), (1, 1), (17, 65), (64, 16), (33, 300), (100, 129) })
        {
            var a = Binary(m * k, rng);
            BinaryGemm.BinaryOperand? packed = null, expected = null;
            Assert.True(BinaryGemm.TryPack(false, m, k, a, k, ref packed));
            Assert.True(BinaryGemm.TryPack(true, k, m, a, k, ref expected));
            BinaryGemm.Transpose(packed!, ref transposed);
            var t = transposed!;
            Assert.Equal((expected!.M, expected.K, expected.KSteps, expected.RowBlocks), (t.M, t.K, t.KSteps, t.RowBlocks));
            int bytes = expected.RowBlocks * BinaryGemm.BlockRows * expected.RowBytes;
            Assert.True(expected.Buffer.AsSpan(expected.Offset, bytes).SequenceEqual(t.Buffer.AsSpan(t.Offset, bytes)), $"{m} × {k}");
        }
    }

    /// <summary>The passes fused into the exact path's regions (the weight step, the quantizations of W's new rows and of
    /// the statistics' columns) give the bits of the separate passes, with weight decay and momentum, over several CD and PCD steps (shapes whose hidden blocks are whole 32-column panels, so
    /// both fusions run, and one whose are not).</summary>
    [Theory]
    [InlineData(100, 128, 40, true)]
    [InlineData(100, 128, 40, false)]
    [InlineData(784, 500, 100, true)]
    [InlineData(50, 37, 20, true)]
    public void FusedPassesGiveTheSameBits(int d, int h, int n, bool persistent)
    {
        if (!BinaryGemm.IsUsable) return;
        var rows = Binary(n * d, new Random(6));
        RbmMachine Make() => Machine(d, h, seed: 5);
        var fused = Make();
        var separate = Make();
        StepBoth(new RbmTrainer(fused, n, 1, persistent, 0), new RbmTrainer(separate, n, 1, persistent, 0) { FusePasses = false },
            rows, n, steps: 4, momentum: 0.5f);
        Assert.Equal(separate.W, fused.W);
        Assert.Equal(separate.B, fused.B);
        Assert.Equal(separate.C, fused.C);
    }

    /// <summary>A trainer made for momentum 0 does not store the velocity (nothing reads it) and moves W to the same bits,
    /// one chunk or several (a velocity is still carried between the chunks of a step); it refuses another momentum.</summary>
    [Theory]
    [InlineData(100, 128, 40)]
    [InlineData(20, 32, 2100)]
    public void MomentumZeroTrainerMovesWToTheSameBits(int d, int h, int n)
    {
        if (!BinaryGemm.IsUsable) return;
        var rows = Binary(n * d, new Random(12));
        RbmMachine Make() => Machine(d, h, seed: 5);
        var lean = Make();
        var full = Make();
        var t1 = new RbmTrainer(lean, n, 1, persistent: true, 0) { MomentumIsZero = true };
        StepBoth(t1, new RbmTrainer(full, n, 1, persistent: true, 0), rows, n, steps: 3, momentum: 0f);
        Assert.Equal(full.W, lean.W);
        Assert.Equal(full.C, lean.C);
        Assert.Throws<ArgumentException>(() => t1.Step(n, 0.05f, 0.5f, 0f, new RandomStream(3)));
    }

    /// <summary>A step quantizes the next step's Wᵀ from its new weight rows; weights restored into the machine in between
    /// (RbmMachine.CopyTo, as after a divergence) must be quantized afresh: the step then equals a new trainer's on the
    /// restored weights, bit for bit (CD without momentum depends on nothing else).</summary>
    [Fact]
    public void WeightsRestoredBetweenStepsAreQuantizedAfresh()
    {
        if (!BinaryGemm.IsUsable) return;
        const int d = 100, h = 64, n = 40;
        var rows = Binary(n * d, new Random(4));
        RbmMachine Make(int seed) => Machine(d, h, (ulong)seed);
        var trained = Make(1);
        var t1 = new RbmTrainer(trained, n, 1, persistent: false, 0);
        t1.SetBatch(rows, n);
        for (int s = 0; s < 2; s++) t1.Step(n, 0.05f, 0f, 0f, new RandomStream(9).Fork((ulong)s));
        var restored = Make(2);
        restored.CopyTo(trained);
        var fresh = restored.Clone();
        var t2 = new RbmTrainer(fresh, n, 1, persistent: false, 0);
        t2.SetBatch(rows, n);
        t1.Step(n, 0.05f, 0f, 0f, new RandomStream(10));
        t2.Step(n, 0.05f, 0f, 0f, new RandomStream(10));
        Assert.Equal(fresh.W, trained.W);
        Assert.Equal(fresh.C, trained.C);
    }

    /// <summary>Three CD and PCD steps with the exact product and with the float GEMM from the same state: the same
    /// blocks and random streams, so the parameters differ only by rounding.</summary>
    [Theory]
    [InlineData(50, 37, 20, false)]
    [InlineData(100, 64, 33, true)]
    [InlineData(784, 500, 100, true)]
    public void RbmStepsAgreeWithTheFloatGemmToRounding(int d, int h, int n, bool persistent)
    {
        if (!BinaryGemm.IsUsable) return;
        var rng = new Random(3);
        var rows = Binary(n * d, rng);
        RbmMachine Make() => Machine(d, h, seed: 5);
        var exact = Make();
        var reference = Make();
        var t1 = new RbmTrainer(exact, n, 1, persistent, 0);
        var t2 = new RbmTrainer(reference, n, 1, persistent, 0);
        t1.SetBatch(rows, n);
        t2.SetBatch(rows, n);
        for (int s = 0; s < 3; s++)
        {
            t1.Step(n, 0.05f, 0.5f, 1e-4f, new RandomStream(9).Fork((ulong)s));
            using (BinaryGemm.Off()) t2.Step(n, 0.05f, 0.5f, 1e-4f, new RandomStream(9).Fork((ulong)s));
        }
        Assert.NotEqual(reference.W, exact.W); // the exact path did run
        for (int i = 0; i < exact.W.Length; i++) Assert.True(Math.Abs(exact.W[i] - reference.W[i]) < 1e-6f, $"W[{i}]: {exact.W[i]} vs {reference.W[i]}");
        for (int i = 0; i < h; i++) Assert.True(Math.Abs(exact.C[i] - reference.C[i]) < 1e-6f);
        Assert.Equal(reference.B, exact.B);
    }
}
