using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Persistence;
using Microsoft.ML.DeepDensity.Tests.Conformance;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

/// <summary>
/// Issue 13 (5): files whose numbers are each readable but which break an invariant the model relies on (its output
/// contract, its sampler) are rejected when loading, naming the problem. Each file is made by saving a model built
/// from a fitted one with one value changed.
/// </summary>
public class LoaderInvariantTests
{
    private static void Rejected(DensityModel model, string word)
    {
        var bytes = model.ToBytes();
        var e = Assert.Throws<InvalidModelFileException>(() => DensityModel.FromBytes(bytes));
        Assert.Contains(word, e.Message);
        Assert.Throws<InvalidModelFileException>(() => DensityModel.Load(new MemoryStream(bytes)));
    }

    private static RbmModel WithLogPartition(RbmModel m, LogPartitionMethod method, double logZ, double se, double lo, double hi, int runs = 8, int temps = 50)
        => new(m.Machine, m.Standardizer, method, logZ, se, lo, hi, runs, temps, m.SamplingBurnIn, m.SamplingThinning, m.SamplingChains);

    [Fact]
    public void RbmLogPartitionThatBreaksTheOutputContractIsRejected()
    {
        var ais = (RbmModel)ModelCases.Fitted("RbmAis").Model;
        double z = ais.LogPartition;
        Assert.NotNull(DensityModel.FromBytes(WithLogPartition(ais, ais.LogPartitionMethod, z, ais.LogPartitionStandardError, ais.LogPartitionInterval.Lower, ais.LogPartitionInterval.Upper, ais.AisRuns, ais.AisTemperatures).ToBytes()));
        Rejected(WithLogPartition(ais, LogPartitionMethod.AnnealedImportanceSampling, z, 1e300, z - 1, z + 1), "standard error");   // +∞ in float32
        Rejected(WithLogPartition(ais, LogPartitionMethod.AnnealedImportanceSampling, 1e300, 0.1, 1e300, 1e300), "log Z");
        Rejected(WithLogPartition(ais, LogPartitionMethod.AnnealedImportanceSampling, z, 0.1, z + 1, z - 1), "interval");          // inverted
        Rejected(WithLogPartition(ais, LogPartitionMethod.AnnealedImportanceSampling, z, 0.1, z + 0.5, z + 1), "interval");        // misses log Z
        Rejected(WithLogPartition(ais, LogPartitionMethod.AnnealedImportanceSampling, z, 0.1, z - 1, double.PositiveInfinity), "interval");
        Rejected(WithLogPartition(ais, LogPartitionMethod.AnnealedImportanceSampling, z, 0.1, z - 1, z + 1, runs: 0, temps: 0), "AIS");
        Rejected(WithLogPartition(ais, LogPartitionMethod.Exact, z, 0.1, z - 1, z + 1, runs: 0, temps: 0), "exact");
        Rejected(new RbmModel(new RbmMachine(ais.Dimension, ais.HiddenUnits, RbmVisibleType.Bernoulli, ais.GetWeights().Select(_ => 1e30f).ToArray(), ais.GetVisibleBias(), ais.GetHiddenBias()),
            null, LogPartitionMethod.AnnealedImportanceSampling, z, 0.1, z - 1, z + 1, 8, 50, 20, 1, 4), "W");
    }

    private static RnadeModel WithB(RnadeModel m, Func<float[], float[]> change)
    {
        var n = m.Network;
        var net = new RnadeNetwork(n.D, n.H, n.K, n.Activation, (float[])n.W.Clone(), (float[])n.C.Clone(), (float[])n.Rho.Clone(), (float[])n.V.Clone(), change((float[])n.B.Clone()));
        return new RnadeModel(net, m.VariableOrder.ToArray(), m.Standardizer);
    }

    [Fact]
    public void RnadeBiasesThatCannotSampleAreRejected()
    {
        var m = (RnadeModel)ModelCases.Fitted("Rnade").Model;
        Assert.NotNull(DensityModel.FromBytes(WithB(m, b => b).ToBytes()));
        Rejected(WithB(m, b => b.Select(_ => 1e30f).ToArray()), "b[");
        int k = m.Components;
        Rejected(WithB(m, b => { b[2 * k] = 100f; return b; }), "log σ");     // σ = e^100 overflows float32 when sampling
        Rejected(WithB(m, b => { b[k] = 2e6f; return b; }), "b[");
    }

    private static DeepGmmModel WithPrior(DeepGmmModel m, Action<float[]> change)
    {
        var net = m.Network.Clone();
        change(net.LogPrior);
        net.Refresh();
        return new DeepGmmModel(net, m.Standardizer);
    }

    [Fact]
    public void DeepGmmPriorsThatDoNotSumToOneAreRejected()
    {
        var m = (DeepGmmModel)ModelCases.Fitted("DeepGmm").Model;
        Assert.NotNull(DensityModel.FromBytes(WithPrior(m, _ => { }).ToBytes()));
        // Σπ = 4: every row would score log 4 = +1.386 nats too high, still labelled Exact.
        Rejected(WithPrior(m, p => { for (int i = 0; i < p.Length; i++) p[i] = MathF.Log(4f / p.Length); }), "sum to");
        Rejected(WithPrior(m, p => Array.Fill(p, float.NegativeInfinity)), "sum to");
        Rejected(WithPrior(m, p => { for (int i = 0; i < p.Length; i++) p[i] -= 0.5f; }), "sum to");
        // One path at −∞ is a valid (pruned) model when the rest still sum to 1.
        Assert.NotNull(DensityModel.FromBytes(WithPrior(m, p =>
        {
            p[0] = float.NegativeInfinity;
            for (int i = 1; i < p.Length; i++) p[i] = -MathF.Log(p.Length - 1);
        }).ToBytes()));
    }
}

/// <summary>Issue 13 (6): block settings of the engine options are bounded, so a typo cannot allocate buffers for
/// int.MaxValue rows.</summary>
public class BlockSettingTests
{
    [Fact]
    public void TrainingBlockSettingsAreBounded()
    {
        foreach (int bad in new[] { 0, Training.GradientTrainingOptions.MaxRowsPerBlock + 1, int.MaxValue })
        {
            Assert.Contains("RowsPerBlock", Assert.Throws<ArgumentOutOfRangeException>(() => new RnadeOptions { RowsPerBlock = bad }.Validate()).Message);
            Assert.Contains("RowsPerBlock", Assert.Throws<ArgumentOutOfRangeException>(() => new Models.Iwae.IwaeOptions { RowsPerBlock = bad }.Validate()).Message);
            Assert.Contains("RowsPerBlock", Assert.Throws<ArgumentOutOfRangeException>(() => new Models.Nvil.NvilOptions { RowsPerBlock = bad }.Validate()).Message);
        }
        new RnadeOptions { RowsPerBlock = Training.GradientTrainingOptions.MaxRowsPerBlock }.Validate();
        Assert.Contains("MinibatchSize", Assert.Throws<ArgumentOutOfRangeException>(() => new DeepGmmOptions { MinibatchSize = int.MaxValue }.Validate()).Message);
    }
}
