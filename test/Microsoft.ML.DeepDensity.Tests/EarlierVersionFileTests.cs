using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// Files saved by an earlier version still load and score the same: engine files (<c>Save</c>) and ML.NET zips
/// (<c>mlContext.Model.Save</c>) written by the build of commit fb6c978 (main at the end of session 10) for every family,
/// by the program in Fixtures/vfb6c978/generator. The expected values are that build's scores of fixed rows, as float
/// bits; see Fixtures/vfb6c978/README.md.
/// </summary>
public class EarlierVersionFileTests
{
    private static string Folder => Path.Combine(AppContext.BaseDirectory, "Fixtures", "vfb6c978");

    // The generator's fixed rows (exact binary fractions, so the literals are the same floats there and here).
    private static readonly float[][] RealRows =
        [[0f, 0f, 0f, 0f], [0.5f, -1.25f, 0.75f, 1.5f], [-1f, -0.5f, -0.75f, -1.5f], [2f, 1.25f, 0.875f, -1.625f], [3f, -3f, 2.5f, 0.25f]];
    private static readonly float[][] BinaryRows =
        [[1, 1, 1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 1, 1, 0, 1], [1, 0, 1, 0, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0, 0, 0], [1, 1, 0, 1, 0, 1, 1, 1]];
    private static readonly float[][] Sequences = [[0f, 0f, 0.5f, 0.25f, 0.75f, 0.5f], [-1f, 0.5f, -0.75f, -0.5f, -0.5f, -0.25f, 0f, 0.125f], [2f, 2f]];

    /// <summary>The earlier build's outputs: "fixture/engine" from the engine file, "fixture/Column" from the zip loaded
    /// in a new MLContext (PredictedLabel as 0/1).</summary>
    private static readonly Dictionary<string, uint[]> EarlierBuild = new()
    {
        ["rnade/engine"] = [0xC0A85E89, 0xC0A6E8CB, 0xC09F8C5C, 0xC0CD3FED, 0xC1AB1180], // -5.26154 -5.215917 -4.9858837 -6.4140534 -21.383545
        ["rnade/LogDensity"] = [0xC0A85E89, 0xC0A6E8CB, 0xC09F8C5C, 0xC0CD3FED, 0xC1AB1180], // -5.26154 -5.215917 -4.9858837 -6.4140534 -21.383545
        ["rnade/PredictedLabel"] = [0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x3F800000], // 0 0 0 0 1
        ["rnade/Sample"] = [0x3FEACD0F, 0x3FF2C4F5, 0x3F0BCCE3, 0x3FA75774, 0xBE828FB5, 0x3CC50B46, 0x3E1FF172, 0x3DCC5C28, 0x3EA9F6AE, 0xBF82672E, 0x3EC5C3BD, 0xBF82DD70, 0x3F58E9FB, 0xBF626F38, 0xBFBC5E32, 0x3F203153, 0xBEE718ED, 0xC00B0643, 0x3EDACE27, 0x3FEB596C], // 1.8343829 1.8966357 0.5460951 1.3073564 -0.25500265 0.024053227 0.15619448 0.09978515 0.33196014 -1.0187738 0.386259 -1.0223827 0.84732026 -0.88450956 -1.4716246 0.6257526 -0.45136204 -2.1722572 0.42735407 1.8386664
        ["deeprnade/engine"] = [0xC0A86AA6, 0xC0AAB445, 0xC09F0E5B, 0xC0CDC42A, 0xC1A7F48E], // -5.2630186 -5.3345056 -4.9705024 -6.430196 -20.994411
        ["deeprnade/LogDensity"] = [0xC0A86AA6, 0xC0AAB445, 0xC09F0E5B, 0xC0CDC42A, 0xC1A7F48E], // -5.2630186 -5.3345056 -4.9705024 -6.430196 -20.994411
        ["deeprnade/PredictedLabel"] = [0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x3F800000], // 0 0 0 0 1
        ["deepgmm/engine"] = [0xC0E15BFE, 0xC0A21E8D, 0xC02FAABB, 0xC0962F9A, 0xC1DEB5D8], // -7.0424795 -5.0662293 -2.7447956 -4.6933107 -27.83879
        ["deepgmm/LogDensity"] = [0xC0E15BFE, 0xC0A21E8D, 0xC02FAABB, 0xC0962F9A, 0xC1DEB5D8], // -7.0424795 -5.0662293 -2.7447956 -4.6933107 -27.83879
        ["deepgmm/PredictedLabel"] = [0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x3F800000], // 0 0 0 0 1
        ["rbm-bernoulli/engine"] = [0xC089FEAF, 0xC0A2C872, 0xC08C8350, 0xC0E1A334, 0xC0FF9038], // -4.3123393 -5.0869684 -4.3910294 -7.0511723 -7.986355
        ["rbm-bernoulli/LogDensity"] = [0xC089FEAF, 0xC0A2C872, 0xC08C8350, 0xC0E1A334, 0xC0FF9038], // -4.3123393 -5.0869684 -4.3910294 -7.0511723 -7.986355
        ["rbm-bernoulli/PredictedLabel"] = [0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x3F800000], // 0 0 0 0 1
        ["rbm-gaussian/engine"] = [0xC079BC41, 0xC0B4D2C5, 0xC0B19023, 0xC0EF256C, 0xC18B583C], // -3.902115 -5.6507287 -5.548845 -7.473318 -17.418083
        ["rbm-gaussian/LogDensity"] = [0xC079BC41, 0xC0B4D2C5, 0xC0B19023, 0xC0EF256C, 0xC18B583C], // -3.902115 -5.6507287 -5.548845 -7.473318 -17.418083
        ["rbm-gaussian/PredictedLabel"] = [0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x3F800000], // 0 0 0 0 1
        ["iwae/engine"] = [0xC08D6C6C, 0xC0963B68, 0xC08F82C4, 0xC0E60DD3, 0xC119C4FC], // -4.419485 -4.6947517 -4.4847126 -7.1891875 -9.610592
        ["iwae/LogDensity"] = [0xC08D6C6C, 0xC0963B68, 0xC08F82C4, 0xC0E60DD3, 0xC119C4FC], // -4.419485 -4.6947517 -4.4847126 -7.1891875 -9.610592
        ["iwae/PredictedLabel"] = [0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x3F800000], // 0 0 0 0 1
        ["iwae/StdErr"] = [0x3E2A1F47, 0x3DC4375F, 0x3E039050, 0x3E8641B6, 0x3EFA54AA], // 0.16613494 0.09580874 0.1284802 0.26222008 0.4889272
        ["nvil/engine"] = [0xC0933A13, 0xC08662DE, 0xC0B888EE, 0xC0C02CEB, 0xC1025336], // -4.600839 -4.1995687 -5.766715 -6.005483 -8.145315
        ["nvil/LogDensity"] = [0xC0933A13, 0xC08662DE, 0xC0B888EE, 0xC0C02CEB, 0xC1025336], // -4.600839 -4.1995687 -5.766715 -6.005483 -8.145315
        ["nvil/PredictedLabel"] = [0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x3F800000], // 0 0 0 0 1
        ["nvil/StdErr"] = [0x3E9D8362, 0x3E8757D8, 0x3E7E7478, 0x3E08CE5C, 0x3EA8129D], // 0.307643 0.26434207 0.24849117 0.1335997 0.328267
        ["rnnrnade-sequences/engine"] = [0xC09E74AC, 0xC0EF9A0D, 0xC1052657], // -4.951742 -7.487555 -8.32186
        ["rnnrnade-sequences/engineFrames"] = [0xBFC3E6D3, 0xBFCC395F, 0xBFE9B27F, 0xC0143FC8, 0xBFFB7245, 0xBFD4F0AF, 0xBFC585AF, 0xC1052657], // -1.5304817 -1.5955008 -1.8257598 -2.316393 -1.9644247 -1.6635951 -1.5431422 -8.32186
        ["rnnrnade-sequences/LogDensity"] = [0xC09E74AC, 0xC0EF9A0D, 0xC1052657], // -4.951742 -7.487555 -8.32186
        ["rnnrnade-sequences/LogDensityPerFrame"] = [0xBFD3463B, 0xBFEF9A0D, 0xC1052657], // -1.6505808 -1.8718888 -8.32186
        ["rnnrnade-sequences/FrameLogDensities"] = [0xBFC3E6D3, 0xBFCC395F, 0xBFE9B27F, 0xC0143FC8, 0xBFFB7245, 0xBFD4F0AF, 0xBFC585AF, 0xC1052657], // -1.5304817 -1.5955008 -1.8257598 -2.316393 -1.9644247 -1.6635951 -1.5431422 -8.32186
        ["rnnrnade-sequences/PredictedLabel"] = [0x00000000, 0x00000000, 0x3F800000], // 0 0 1
        ["rnnrnade-frames/engine"] = [0xC09E74AC, 0xC0EF9A0D, 0xC1052657], // -4.951742 -7.487555 -8.32186
        ["rnnrnade-frames/LogDensity"] = [0xBFC3E6D3, 0xBFCC395F, 0xBFE9B27F, 0xC0143FC8, 0xBFFB7245, 0xBFD4F0AF, 0xBFC585AF, 0xC1052657], // -1.5304817 -1.5955008 -1.8257598 -2.316393 -1.9644247 -1.6635951 -1.5431422 -8.32186
        ["rnnrnade-frames/PredictedLabel"] = [0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x3F800000], // 0 0 0 0 0 0 0 1
    };

    public static TheoryData<string> RowFixtures => ["rnade", "deeprnade", "deepgmm", "rbm-bernoulli", "rbm-gaussian", "iwae", "nvil"];

    public static TheoryData<string, bool> RowZips => new()
    {
        { "rnade", true }, { "rnade", false }, { "deeprnade", true }, { "deeprnade", false }, { "deepgmm", true }, { "deepgmm", false },
        { "rbm-bernoulli", true }, { "rbm-bernoulli", false }, { "rbm-gaussian", true }, { "rbm-gaussian", false },
        { "iwae", true }, { "iwae", false }, { "nvil", true }, { "nvil", false },
    };

    private static float[][] RowsFor(string fixture) => fixture is "rbm-bernoulli" or "iwae" or "nvil" ? BinaryRows : RealRows;

    [Theory, MemberData(nameof(RowFixtures))]
    public void AnEngineFileOfTheEarlierVersionLoadsAndScoresTheSame(string fixture)
    {
        byte[] bytes = File.ReadAllBytes(Path.Combine(Folder, fixture + ".ddm"));
        var rows = RowMatrix.FromRows(RowsFor(fixture));
        using var stream = new MemoryStream(bytes);
        AssertAsEarlier(fixture, "engine", DensityModel.Load(stream).LogDensity(rows));
        AssertAsEarlier(fixture, "engine", DensityModel.FromBytes(bytes).LogDensity(rows));
    }

    [Theory, MemberData(nameof(RowZips))]
    public void AnMlNetZipOfTheEarlierVersionLoadsAndScoresTheSame(string fixture, bool live)
    {
        var ml = new MLContext(seed: 3);
        string path = Path.Combine(Folder, fixture + ".zip");
        ITransformer loaded = live ? ml.Model.LoadWithLiveDensityModels(path, out _) : ml.Model.Load(path, out _);
        IDataView input = RowsFor(fixture) == BinaryRows
            ? ml.Data.LoadFromEnumerable(BinaryRows.Select(r => new BinaryRow { Features = r }))
            : ml.Data.LoadFromEnumerable(RealRows.Select(r => new RealRow { Features = r }));
        IDataView scored = loaded.Transform(input);
        AssertAsEarlier(fixture, "LogDensity", scored.GetColumn<float>("LogDensity").ToArray());
        AssertAsEarlier(fixture, "PredictedLabel", scored.GetColumn<bool>("PredictedLabel").Select(b => b ? 1f : 0f).ToArray());
        if (EarlierBuild.ContainsKey(fixture + "/StdErr"))
            AssertStandardErrorsAsEarlier(fixture, scored.GetColumn<float>("StdErr").ToArray(),
                ((Microsoft.ML.DeepDensity.Estimation.ImportanceSampledModel)loaded.GetDensityModel()).EvaluationSamples);
        if (EarlierBuild.ContainsKey(fixture + "/Sample"))
            AssertAsEarlier(fixture, "Sample", scored.GetColumn<float[]>("Sample").SelectMany(v => v).ToArray());
        AssertAsEarlier(fixture, "engine", loaded.GetDensityModel().LogDensity(RowMatrix.FromRows(RowsFor(fixture))));

        // Saved again by this version, the model keeps its values.
        using var resaved = new MemoryStream();
        ml.Model.Save(loaded, input.Schema, resaved);
        resaved.Position = 0;
        IDataView rescored = new MLContext().Model.LoadWithLiveDensityModels(resaved, out _).Transform(input);
        AssertAsEarlier(fixture, "LogDensity", rescored.GetColumn<float>("LogDensity").ToArray());
    }

    [Theory]
    [InlineData("rnnrnade-sequences")]
    [InlineData("rnnrnade-frames")]
    public void AnRnnRnadeEngineFileOfTheEarlierVersionLoadsAndScoresTheSame(string fixture)
    {
        byte[] bytes = File.ReadAllBytes(Path.Combine(Folder, fixture + ".ddm"));
        var batch = SequenceBatch.FromSequences(Sequences, 2);
        using var stream = new MemoryStream(bytes);
        foreach (var model in new[] { SequenceDensityModel.Load(stream), SequenceDensityModel.FromBytes(bytes) })
        {
            AssertAsEarlier(fixture, "engine", model.LogDensity(batch));
            var frames = new float[batch.TotalFrames];
            model.FrameLogDensity(batch, frames);
            AssertAsEarlier("rnnrnade-sequences", "engineFrames", frames); // both files hold the same model (same data and seed)
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AnRnnRnadeWholeSequenceZipOfTheEarlierVersionLoadsAndScoresTheSame(bool live)
    {
        const string fixture = "rnnrnade-sequences";
        var ml = new MLContext(seed: 3);
        string path = Path.Combine(Folder, fixture + ".zip");
        ITransformer loaded = live ? ml.Model.LoadWithLiveDensityModels(path, out _) : ml.Model.Load(path, out _);
        IDataView scored = loaded.Transform(ml.Data.LoadFromEnumerable(Sequences.Select(s => new SequenceRow { Features = s })));
        AssertAsEarlier(fixture, "LogDensity", scored.GetColumn<float>("LogDensity").ToArray());
        AssertAsEarlier(fixture, "LogDensityPerFrame", scored.GetColumn<float>("LogDensityPerFrame").ToArray());
        AssertAsEarlier(fixture, "FrameLogDensities", scored.GetColumn<float[]>("FrameLogDensities").SelectMany(v => v).ToArray());
        AssertAsEarlier(fixture, "PredictedLabel", scored.GetColumn<bool>("PredictedLabel").Select(b => b ? 1f : 0f).ToArray());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AnRnnRnadeFrameRowZipOfTheEarlierVersionLoadsAndScoresTheSame(bool live)
    {
        const string fixture = "rnnrnade-frames";
        var ml = new MLContext(seed: 3);
        string path = Path.Combine(Folder, fixture + ".zip");
        ITransformer loaded = live ? ml.Model.LoadWithLiveDensityModels(path, out _) : ml.Model.Load(path, out _);
        var frameRows = Sequences.SelectMany((s, i) => Enumerable.Range(0, s.Length / 2)
            .Select(t => new FrameRow { Features = [s[2 * t], s[2 * t + 1]], SequenceId = "q" + i, Order = t }));
        IDataView scored = loaded.Transform(ml.Data.LoadFromEnumerable(frameRows));
        AssertAsEarlier(fixture, "LogDensity", scored.GetColumn<float>("LogDensity").ToArray());
        AssertAsEarlier(fixture, "PredictedLabel", scored.GetColumn<bool>("PredictedLabel").Select(b => b ? 1f : 0f).ToArray());
    }

    /// <summary>
    /// Families whose scoring arithmetic changed since fb6c978 and so may round differently; every other family must give
    /// the earlier build's bits. The IWAE's evaluation took tanh as −t/(t + 2) with t = expm1(−2|x|) and the Bernoulli
    /// head's sum with one fused multiply-add per factor (b390e15, issue #18, re-recorded in BitIdentityTests): its
    /// float64 log-weights move by rounding, so a standard error may differ in its last float32 bit (row 1 here:
    /// 0.09580874 then, 0.095808744 now; checked by building b390e15^ and b390e15 on the fixture). The tolerance is
    /// relative, 1e-5, a few float32 steps and far below the estimate's own standard error. The Bernoulli RBM scores with
    /// the exact integer product on AVX-512 since session 33 (<c>BinaryTableProduct</c>, the AMX path's bits), where the
    /// fixture's build used the float product: its log-densities move by float rounding (−4.3123393 → −4.31234).
    /// </summary>
    private static readonly Dictionary<string, double> RoundingTolerance = new() { ["iwae"] = 1e-5, ["rbm-bernoulli"] = 1e-5 };

    /// <summary>Whether this machine runs the kernels the earlier build's values came from: AVX-512 and no AMX (the
    /// fixtures were made on such a machine). Elsewhere the 8-lane paths round Σ softplus differently and the Bernoulli
    /// RBM's products are AMX's exact integer ones, so the values agree to float rounding only, as the golden-value
    /// tests allow between machines.</summary>
    private static bool SameKernelsAsTheEarlierBuild =>
        System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated && !CpuHasAmxTile();

    /// <summary>CPUID leaf 7: EDX bit 24 is AMX-TILE (whether or not the OS grants the tile state).</summary>
    private static bool CpuHasAmxTile()
        => System.Runtime.Intrinsics.X86.X86Base.IsSupported
           && (System.Runtime.Intrinsics.X86.X86Base.CpuId(7, 0).Edx & (1 << 24)) != 0;

    /// <summary>Relative tolerance on machines with other kernels (float rounding of the same arithmetic).</summary>
    private const double OtherMachineTolerance = 1e-4;

    /// <summary>
    /// The standard errors as the earlier build's, except that a row resting on fewer than 4 effective samples is now
    /// +∞ (unknown) where the earlier build reported the delta method's value: such a row's earlier value must be one
    /// that only so few effective samples give, √(K/(K−1)) · √(1/ESS − 1/K) with ESS &lt; 4 (the iwae fixture's row 4:
    /// 0.4889 at K = 20, ESS 3.6).
    /// </summary>
    private static void AssertStandardErrorsAsEarlier(string fixture, float[] actual, int k)
    {
        uint[] expected = EarlierBuild[fixture + "/StdErr"];
        var known = (float[])actual.Clone();
        for (int i = 0; i < actual.Length; i++)
        {
            if (!float.IsPositiveInfinity(actual[i])) continue;
            double old = BitConverter.UInt32BitsToSingle(expected[i]);
            double ess = 1 / (old * old * (k - 1) / k + 1.0 / k);
            Assert.True(ess < Microsoft.ML.DeepDensity.Estimation.ImportanceSampler.MinEffectiveSamples * (1 + 1e-5),
                $"{fixture} StdErr[{i}]: unknown now, but the earlier build's {old:R} means {ess:F3} effective samples");
            known[i] = (float)old;
        }
        AssertAsEarlier(fixture, "StdErr", known);
    }

    private static void AssertAsEarlier(string fixture, string output, float[] actual)
    {
        uint[] expected = EarlierBuild[fixture + "/" + output];
        Assert.Equal(expected.Length, actual.Length);
        double tolerance = SameKernelsAsTheEarlierBuild ? RoundingTolerance.GetValueOrDefault(fixture) : OtherMachineTolerance;
        for (int i = 0; i < expected.Length; i++)
        {
            float old = BitConverter.UInt32BitsToSingle(expected[i]);
            bool same = tolerance == 0
                ? BitConverter.SingleToUInt32Bits(actual[i]) == expected[i]
                : Math.Abs(actual[i] - (double)old) <= tolerance * Math.Max(1, Math.Abs(old));
            Assert.True(same, $"{fixture} {output}[{i}]: the earlier build gave {old:R}, this build {actual[i]:R} (difference {actual[i] - old:R})");
        }
    }

    private sealed class RealRow { [VectorType(4)] public float[] Features { get; set; } = []; }
    private sealed class BinaryRow { [VectorType(8)] public float[] Features { get; set; } = []; }
    private sealed class SequenceRow { [VectorType] public float[] Features { get; set; } = []; }
    private sealed class FrameRow
    {
        [VectorType(2)] public float[] Features { get; set; } = [];
        public string SequenceId { get; set; } = "";
        public float Order { get; set; }
    }
}
