using System.Reflection;
using System.Runtime.CompilerServices;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Persistence;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>
/// Issue 13 (3): the work and memory of scoring a row are bounded by the model's own sizes under documented limits, and
/// whatever scratch a model keeps between calls goes away with the model.
/// </summary>
public class ScratchChecks
{
    /// <summary>After a model has scored (alone and in parallel blocks) and sampled, dropping it frees it and everything
    /// it holds: no thread-static cache keeps its network or workspaces alive.</summary>
    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void ScratchIsReleasedWithTheModel(string name)
    {
        var f = ModelCases.Fitted(name);
        var big = new RowMatrix(2000, f.Data.Columns);
        for (int r = 0; r < big.Rows; r++) f.Data.Row(r % f.Data.Rows).CopyTo(big.Row(r));
        var references = UseAndForget(f.Model.ToBytes(), big);
        for (int i = 0; i < 3; i++) { GC.Collect(); GC.WaitForPendingFinalizers(); }
        foreach (var (what, reference) in references)
            Assert.False(reference.IsAlive, $"{what} is still alive after the model was dropped");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static List<(string, WeakReference)> UseAndForget(byte[] bytes, RowMatrix rows)
    {
        var model = DensityModel.FromBytes(bytes);
        model.LogDensity(rows);
        model.LogDensity(rows.Slice(0, 1));
        Parallel.For(0, 4, _ => model.LogDensity(rows.Slice(0, 3)));
        model.Sample(20, 1);
        var references = new List<(string, WeakReference)> { ("the model", new WeakReference(model)) };
        for (var type = model.GetType(); type is not null && type != typeof(object); type = type.BaseType)
            foreach (var field in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
                if (!field.FieldType.IsValueType && field.GetValue(model) is { } value && value is not string)
                    references.Add(($"field {type.Name}.{field.Name}", new WeakReference(value)));
        return references;
    }

    /// <summary>Scoring one row allocates memory bounded by the file's size plus the documented per-row limit (8 MiB).</summary>
    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void ScoringOneRowAllocatesMemoryBoundedByTheFile(string name)
    {
        var f = ModelCases.Fitted(name);
        var bytes = f.Model.ToBytes();
        var model = DensityModel.FromBytes(bytes);
        var row = f.Data.Slice(0, 1);
        long before = GC.GetAllocatedBytesForCurrentThread();
        model.LogDensity(row);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 16L * bytes.Length + (8 << 20), $"scoring one row allocated {allocated:N0} bytes (file {bytes.Length:N0})");
    }

    /// <summary>A Deep GMM of 20 layers × 2 components (2^20 paths, factorised: a file of about a kilobyte) used to
    /// allocate 256 rows × 2^20 path scores (1 GiB) per thread to score one row; now a block holds as many rows as fit in
    /// 4 MiB of scores. Every path is N(0, 1), so the density is exactly that.</summary>
    [Fact]
    public void ADeepGmmWithAMillionPathsScoresARowInBoundedMemory()
    {
        var net = new DeepGmmNetwork(1, Enumerable.Repeat(2, 20).ToArray(), factorized: true);
        for (int n = 0; n < net.NodeCount; n++) net.Q[n][0] = 1f;
        Array.Fill(net.LogPrior, -MathF.Log(2f));
        net.Refresh();
        var bytes = new DeepGmmModel(net, ColumnStandardizer.Identity(1)).ToBytes();
        Assert.True(bytes.Length < 2048, $"{bytes.Length} bytes");
        var model = DensityModel.FromBytes(bytes);
        long before = GC.GetAllocatedBytesForCurrentThread();
        float ld = model.LogDensity(RowMatrix.FromRows(new[] { new[] { 0.5f } }))[0];
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 16 << 20, $"scoring one row allocated {allocated:N0} bytes");
        Assert.Equal(-0.5 * Math.Log(2 * Math.PI) - 0.125, ld, 4);
    }

    /// <summary>IWAE's scoring scratch is evaluation chunk × activations per sample: a chunk of 100,000 on 20,000-wide
    /// layers (a 1.3 MB file) would ask for tens of GB per row. It is refused when loading, by WithEvaluation and before
    /// training, naming the limit; a smaller chunk loads and scores in bounded memory.</summary>
    [Fact]
    public void AnIwaeWhoseEvaluationChunkTimesWidthExceedsTheLimitIsRefused()
    {
        var net = new IwaeNetwork(4, new[] { 2 }, new[] { 20_000 }, Array.Empty<int>(), Activation.Tanh, IwaeLikelihood.Gaussian);
        var wide = new IwaeModel(net, 1, 1000, IwaeOptions.MaxEvaluationSamplesPerChunk, 7);
        var e = Assert.Throws<InvalidModelFileException>(() => DensityModel.FromBytes(wide.ToBytes()));
        Assert.Contains("MaxScoringScratchFloats", e.Message);
        var ok = (IwaeModel)DensityModel.FromBytes(new IwaeModel(net, 1, 200, 100, 7).ToBytes());
        Assert.Contains("MaxScoringScratchFloats", Assert.Throws<ArgumentOutOfRangeException>(() => ok.WithEvaluation(1000, samplesPerChunk: 100_000)).Message);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var ld = ok.LogDensity(RowMatrix.FromRows(new[] { new[] { 0.1f, 0.2f, 0.3f, 0.4f } }));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(float.IsFinite(ld[0]));
        Assert.True(allocated < IwaeOptions.MaxEvaluationScratchFloats * 4 + (16 << 20), $"scoring one row allocated {allocated:N0} bytes");
        var options = new IwaeOptions { LatentDimensions = new[] { 2 }, HiddenUnits = new[] { 20_000 }, Likelihood = IwaeLikelihood.Gaussian, EvaluationSamplesPerChunk = 100_000, MaxEpochs = 1 };
        Assert.Contains("EvaluationSamplesPerChunk", Assert.Throws<ArgumentOutOfRangeException>(() => IwaeModel.Fit(ConformanceData.Real(20, 1), options)).Message);
    }
}

/// <summary>The scoring-scratch limit is a setting, not a silent cap: a legitimately wide importance-sampled model refused
/// at the default loads once <see cref="DeepDensityEnvironment.MaxScoringScratchFloats"/> is raised (serial: it changes a
/// process-wide setting).</summary>
[Collection(EngineSettingsCollection.Name)]
public class ScratchLimitSettingChecks
{
    [Fact]
    public void AWideIwaeRefusedAtTheDefaultLimitLoadsWhenTheSettingIsRaised()
    {
        var net = new IwaeNetwork(4, new[] { 2 }, new[] { 20_000 }, Array.Empty<int>(), Activation.Tanh, IwaeLikelihood.Gaussian);
        var bytes = new IwaeModel(net, 1, 1000, 1000, 7).ToBytes(); // 1,000 samples × 120,017 activations ≈ 1.2·10^8 floats
        Assert.Contains("MaxScoringScratchFloats", Assert.Throws<InvalidModelFileException>(() => DensityModel.FromBytes(bytes)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => DeepDensityEnvironment.MaxScoringScratchFloats = 1000);
        Assert.Throws<ArgumentOutOfRangeException>(() => DeepDensityEnvironment.MaxScoringScratchFloats = long.MaxValue);
        try
        {
            DeepDensityEnvironment.MaxScoringScratchFloats = 1L << 28;
            Assert.Equal(bytes, DensityModel.FromBytes(bytes).ToBytes());
        }
        finally { DeepDensityEnvironment.MaxScoringScratchFloats = DeepDensityEnvironment.DefaultMaxScoringScratchFloats; }
    }
}
