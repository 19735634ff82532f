using MathNet.Numerics.LinearAlgebra;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Randomness;
using static Microsoft.ML.DeepDensity.Tests.DeepGmm.DeepGmmTestModels;

namespace Microsoft.ML.DeepDensity.Tests.DeepGmm;

/// <summary>
/// Deep GMM against van den Oord &amp; Schrauwen §2–3 where the paper reduces to the textbook GMM: "the GMM is a special
/// case of the deep GMM having only one layer", so one EM iteration of a 1-layer network (E-step, then the M-step of
/// its only layer) must be the GMM's EM update computed directly in float64 — responsibilities (soft) or the best
/// component (hard, eq. 4), then π_k = (N_k + α)/(N + αK) (α = <see cref="DeepGmmOptions.PathPseudoCount"/>), the
/// weighted mean and the weighted covariance plus the documented ridge λ·var(column).
/// </summary>
public class DeepGmmPaperTests
{
    [Theory]
    [InlineData(DeepGmmEmKind.Soft)]
    [InlineData(DeepGmmEmKind.Hard)]
    public void OneLayerEmIterationIsTheTextbookGmmUpdate(DeepGmmEmKind em)
    {
        const int d = 2, k = 3, n = 600;
        const double ridge = 1e-3, alpha = 1;
        var x = Model(RandomNetwork(d, new[] { k }, seed: 41, biasScale: 2f)).Sample(n, 3);
        var net = RandomNetwork(d, new[] { k }, seed: 42, biasScale: 2f); // a different starting point
        var before = ReferenceMixture(net, ColumnStandardizer.Identity(d));
        var options = new DeepGmmOptions { Layers = new[] { k }, Em = em, CovarianceRidge = ridge, PathPseudoCount = alpha };
        var trainer = new DeepGmmTrainer(net, options, x, new RandomStream(1));
        trainer.EStep(0, CancellationToken.None);

        // Responsibilities from the starting mixture, in float64 (MathNet), independent of the network code.
        var gamma = new double[n, k];
        for (int r = 0; r < n; r++)
        {
            var logs = new double[k];
            for (int c = 0; c < k; c++) logs[c] = ReferenceLogDensity(new() { before[c] }, x.Row(r)); // log π_c + log N(x | c)
            if (em == DeepGmmEmKind.Soft)
            {
                double max = logs.Max(), sum = logs.Sum(v => Math.Exp(v - max));
                for (int c = 0; c < k; c++) gamma[r, c] = Math.Exp(logs[c] - max) / sum;
            }
            else
            {
                int best = Array.IndexOf(logs, logs.Max());
                Assert.Equal(best, trainer.Assignment[r]); // eq. 4: the component of largest π_k N(x | k)
                gamma[r, best] = 1;
            }
        }
        trainer.MStep(1, CancellationToken.None);
        var (weights, means, covariances) = Model(net).ToGaussianMixture();

        var variance = new double[d];
        for (int a = 0; a < d; a++)
        {
            double mean = Enumerable.Range(0, n).Average(r => (double)x[r, a]);
            variance[a] = Enumerable.Range(0, n).Average(r => (x[r, a] - mean) * (x[r, a] - mean));
        }
        for (int c = 0; c < k; c++)
        {
            double nk = Enumerable.Range(0, n).Sum(r => gamma[r, c]);
            Assert.True(nk > 20, $"component {c} has only {nk} rows: not a meaningful check");
            Assert.Equal((nk + alpha) / (n + alpha * k), weights[c], 5);
            var mu = Vector<double>.Build.Dense(d);
            for (int r = 0; r < n; r++) for (int a = 0; a < d; a++) mu[a] += gamma[r, c] * x[r, a] / nk;
            var cov = Matrix<double>.Build.Dense(d, d);
            for (int r = 0; r < n; r++)
                for (int a = 0; a < d; a++)
                    for (int b = 0; b < d; b++) cov[a, b] += gamma[r, c] * (x[r, a] - mu[a]) * (x[r, b] - mu[b]) / nk;
            for (int a = 0; a < d; a++) cov[a, a] += ridge * variance[a];
            for (int a = 0; a < d; a++)
            {
                Assert.True(Math.Abs(mu[a] - means[c][a]) < 2e-4 * (1 + Math.Abs(mu[a])), $"component {c} mean[{a}]: textbook {mu[a]}, model {means[c][a]}");
                for (int b = 0; b < d; b++)
                    Assert.True(Math.Abs(cov[a, b] - covariances[c][a * d + b]) < 2e-4 * (1 + Math.Abs(cov[a, a])),
                        $"component {c} covariance[{a},{b}]: textbook {cov[a, b]}, model {covariances[c][a * d + b]}");
            }
        }
    }
}
