using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Tests.Rbm;

/// <summary>
/// The CD/PCD step's gradient is an estimate of the true log-likelihood gradient E_data[·] − E_model[·] in its own
/// units, not only in its direction: with more or fewer persistent chains than data rows, the negative phase is the mean
/// over the chains (scaled by 1/chains) and the positive phase the mean over the rows (1/rows). A cosine alone cannot see
/// a negative phase scaled by the wrong count (it changes the length of one term of the difference), and with chains =
/// batch the two counts agree, so these compare the whole gradient, entry by entry, to the exact one.
/// </summary>
public class RbmGradientScaleTests
{
    [Theory]
    [InlineData(4000)] // more chains than rows
    [InlineData(300)]  // fewer chains than rows
    public void PcdGradientMatchesTheExactGradientWhateverTheChainCount(int chains)
    {
        int d = 6, h = 4, n = 1000;
        var m = RbmTests.RandomMachine(d, h, RbmVisibleType.Bernoulli, 0.5f, 21);
        var data = RbmTests.PrototypeData(n, d, 22);
        var (gw, gb, gc) = RbmTests.ExactGradient(m, data);

        var trainer = new RbmTrainer(m, n, gibbsSteps: 1, persistent: true, persistentChains: chains) { KeepGradient = true };
        Assert.Equal(chains, trainer.NegativeRows(n));
        trainer.SetBatch(data.Values, n);
        // Equilibrate the fantasy chains (a negligible learning rate leaves the model unchanged), then average the
        // gradient of several steps to shrink the chains' Monte Carlo error.
        for (int s = 0; s < 30; s++) trainer.Step(n, 1e-12f, 0, 0, new RandomStream(30 + (ulong)s));
        int averaged = 10;
        var sw = new double[d * h]; var sb = new double[d]; var sc = new double[h];
        for (int s = 0; s < averaged; s++)
        {
            trainer.Step(n, 1e-12f, 0, 0, new RandomStream(100 + (ulong)s));
            for (int i = 0; i < sw.Length; i++) sw[i] += trainer.GradW![i] / (double)averaged;
            for (int i = 0; i < sb.Length; i++) sb[i] += trainer.GradB![i] / (double)averaged;
            for (int i = 0; i < sc.Length; i++) sc[i] += trainer.GradC![i] / (double)averaged;
        }
        double err = 0, norm = 0;
        void Add(double[] t, double[] e) { for (int i = 0; i < t.Length; i++) { err += (e[i] - t[i]) * (e[i] - t[i]); norm += t[i] * t[i]; } }
        Add(gw, sw); Add(gb, sb); Add(gc, sc);
        double relative = Math.Sqrt(err / norm);
        Assert.True(relative < 0.2, $"relative error of the PCD gradient {relative:G4} (|true| = {Math.Sqrt(norm):G4})");
        // Every entry on its own, too: the hidden bias's gradient is the σ statistics alone, whose scale the weights share.
        for (int j = 0; j < h; j++) Assert.True(Math.Abs(sc[j] - gc[j]) < 0.05, $"hidden bias {j}: {sc[j]:G4} vs exact {gc[j]:G4}");
        for (int i = 0; i < d; i++) Assert.True(Math.Abs(sb[i] - gb[i]) < 0.05, $"visible bias {i}: {sb[i]:G4} vs exact {gb[i]:G4}");
    }
}
