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

    /// <summary>
    /// The minibatch M-step (§3.2) optimises the same node objective as the L-BFGS one, ridge included: run full-batch
    /// for long enough, a top-layer node ends where the gradient of the L-BFGS form (eqs. 11–12 with the documented
    /// ridge λ·var(column) on the top layer's inputs) is about zero. Columns of unequal variance (0.09 and 2.25) make the
    /// per-column ridge matter: the minibatch step used the mean of the per-column ridges, so its optimum had a
    /// gradient of norm 7.8 under the documented objective (now 1.6e-6).
    /// </summary>
    [Fact]
    public void MinibatchMStepMaximisesTheNodeObjectiveWithThePerColumnRidge()
    {
        const int d = 2;
        var x = Model(RandomNetwork(d, new[] { 2, 2 }, seed: 51, biasScale: 2f)).Sample(400, 4);
        for (int r = 0; r < x.Rows; r++) { x[r, 0] *= 0.3f; x[r, 1] *= 1.5f; }
        var net = RandomNetwork(d, new[] { 2, 2 }, seed: 52);
        var options = new DeepGmmOptions
        {
            Layers = new[] { 2, 2 }, MStep = DeepGmmMStep.Minibatch, MinibatchSize = 1000, MinibatchEpochs = 6000,
            MinibatchLearningRate = 0.01, CovarianceRidge = 0.5,
        };
        var trainer = new DeepGmmTrainer(net, options, x, new RandomStream(1));
        trainer.EStep(0, CancellationToken.None);
        // The top layer is optimised first, from the layers below as they are now: its objectives can be built here.
        int top = net.LayerCount - 1, m = d + 1;
        var (rows, weights) = trainer.PathMembers();
        var moments = trainer.LayerMoments(top, rows, weights, CancellationToken.None);
        var (omega, t, c) = DeepGmmTrainer.BelowMaps(net, top);
        var ridge = DeepGmmTrainer.RidgeFor(net, options, top, DeepGmmTrainer.ColumnVariances(x));
        Assert.True(ridge[1] > 10 * ridge[0], "the columns' ridges must differ for this check");
        var objectives = Enumerable.Range(0, net.Components[top]).Select(i =>
        {
            var keep = Enumerable.Range(0, moments[i].Length).Where(b => moments[i][b][m * m - 1] > 0).ToArray();
            return new NodeObjective(d, keep.Select(b => omega[b]).ToList(), keep.Select(b => t[b]).ToList(),
                keep.Select(b => c[b]).ToList(), keep.Select(b => moments[i][b]).ToList(), ridge, kronecker: false);
        }).ToArray();
        trainer.MStep(1, CancellationToken.None);
        for (int i = 0; i < objectives.Length; i++)
        {
            var w = trainer.ToW(net.Node(top, i));
            var gradient = new double[w.Length];
            objectives[i].Value(w, gradient);
            double norm = Math.Sqrt(gradient.Sum(g => g * g));
            Assert.True(norm < 0.02, $"top node {i}: gradient of the documented objective at the minibatch M-step's result has norm {norm}");
        }
    }
}
