using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Randomness;
using static Microsoft.ML.DeepDensity.Tests.DeepGmm.DeepGmmTestModels;

namespace Microsoft.ML.DeepDensity.Tests.DeepGmm;

public class DeepGmmMStepTests
{
    /// <summary>
    /// Top-layer node objective of a 3-layer network built from hard-assigned rows: per below-path second moments
    /// Σ ũũᵀ of the node's inputs (here the rows themselves) and the folded maps below.
    /// </summary>
    private static (NodeObjective Objective, double[] W, DeepGmmNetwork Net, RowMatrix X, int[] Paths, int Node)
        TopNodeProblem(int d, double ridge, bool kronecker, ulong seed = 4, double shrinkage = 0)
    {
        var net = RandomNetwork(d, new[] { 2, 3, 2 }, seed);
        var x = Model(net).Sample(400, seed + 1);
        var paths = DeepGmmTrainer.ExactBestPaths(net, x);
        int top = net.LayerCount - 1, component = 1, node = net.Node(top, component);
        var (omega, t, c) = DeepGmmTrainer.BelowMaps(net, top);
        int m = d + 1, below = net.Stride[top];
        var moments = new double[below][];
        for (int b = 0; b < below; b++) moments[b] = new double[m * m];
        for (int r = 0; r < x.Rows; r++)
        {
            if (net.Digit(paths[r], top) != component) continue;
            var acc = moments[paths[r] % below];
            var row = x.Row(r);
            for (int a = 0; a < m; a++)
                for (int e = 0; e < m; e++) acc[a * m + e] += (a < d ? row[a] : 1.0) * (e < d ? row[e] : 1.0);
        }
        var objective = new NodeObjective(d, omega, t, c, moments, ridge, kronecker, shrinkage);
        var w = new double[d * m];
        for (int a = 0; a < d; a++)
        {
            for (int e = 0; e < d; e++) w[a * m + e] = net.Q[node][a * d + e];
            w[a * m + d] = net.E[node][a];
        }
        return (objective, w, net, x, paths, node);
    }

    [Theory]
    [InlineData(false, 0.0)]
    [InlineData(true, 0.0)]
    [InlineData(false, 37.0)]
    [InlineData(true, 37.0)]
    public void GradientMatchesFiniteDifferencesOfTheObjective(bool kronecker, double shrinkage)
    {
        var (objective, w, _, _, _, _) = TopNodeProblem(4, ridge: 1e-2, kronecker, shrinkage: shrinkage);
        Assert.Equal(kronecker, objective.UsesKronecker);
        Assert.Equal(shrinkage > 0, objective.IsPenalized);
        // Move away from the identity so the prior's gradient is not zero.
        var rng = new RandomStream(21);
        for (int i = 0; i < w.Length; i++) w[i] += 0.2 * rng.NextGaussian();
        var grad = new double[w.Length];
        objective.Value(w, grad);
        var scratch = new double[w.Length];
        double h = 1e-6;
        for (int i = 0; i < w.Length; i++)
        {
            var plus = (double[])w.Clone(); plus[i] += h;
            var minus = (double[])w.Clone(); minus[i] -= h;
            double fd = (objective.Value(plus, scratch) - objective.Value(minus, scratch)) / (2 * h);
            Assert.True(Math.Abs(fd - grad[i]) < 1e-5 * Math.Max(1, Math.Abs(fd)), $"entry {i}: analytic {grad[i]} vs finite difference {fd}");
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ShrinkageAddsTheGaussianPriorPerRowOfTheNode(bool kronecker)
    {
        // f_κ(W) = f_0(W) − κ/(2N)·‖W − [I | 0]‖² with N the node's data weight (the rows of top component 1).
        const double kappa = 25;
        int d = 3, m = d + 1;
        var (plain, w, net, x, paths, node) = TopNodeProblem(d, 1e-3, kronecker);
        var (penalized, _, _, _, _, _) = TopNodeProblem(d, 1e-3, kronecker, shrinkage: kappa);
        int top = net.LayerCount - 1, rows = 0;
        foreach (var p in paths) if (net.Node(top, net.Digit(p, top)) == node) rows++;
        var rng = new RandomStream(5);
        for (int i = 0; i < w.Length; i++) w[i] += 0.3 * rng.NextGaussian();
        double distance = 0;
        for (int a = 0; a < d; a++)
            for (int c = 0; c < m; c++) { double dev = w[a * m + c] - (a == c ? 1 : 0); distance += dev * dev; }
        var g0 = new double[w.Length]; var g1 = new double[w.Length];
        double f0 = plain.Value(w, g0), f1 = penalized.Value(w, g1);
        Assert.Equal(f0 - kappa / (2.0 * rows) * distance, f1, 9);
        for (int a = 0; a < d; a++)
            for (int c = 0; c < m; c++)
                Assert.Equal(g0[a * m + c] - kappa / rows * (w[a * m + c] - (a == c ? 1 : 0)), g1[a * m + c], 9);
    }

    [Fact]
    public void LargeShrinkageMakesTheMaximizerTheIdentity()
    {
        // A node whose inputs are far from standard normal still ends at [I | 0] when κ dominates its data weight.
        var (objective, w, _, _, _, _) = TopNodeProblem(3, 1e-3, kronecker: false, shrinkage: 1e9);
        var (best, _, _) = objective.Maximize(w, 200, CancellationToken.None);
        int d = 3, m = d + 1;
        for (int a = 0; a < d; a++)
            for (int c = 0; c < m; c++) Assert.Equal(a == c ? 1.0 : 0.0, best[a * m + c], 5);
    }

    [Fact]
    public void KroneckerFormEqualsThePathSumForm()
    {
        var (pathSum, w, _, _, _, _) = TopNodeProblem(3, 1e-3, kronecker: false);
        var (kron, _, _, _, _, _) = TopNodeProblem(3, 1e-3, kronecker: true);
        var g1 = new double[w.Length]; var g2 = new double[w.Length];
        var rng = new RandomStream(3);
        for (int i = 0; i < w.Length; i++) w[i] += 0.1 * rng.NextGaussian();
        Assert.Equal(pathSum.Value(w, g1), kron.Value(w, g2), 9);
        for (int i = 0; i < w.Length; i++) Assert.Equal(g1[i], g2[i], 9);
    }

    [Fact]
    public void ObjectiveIsTheNodesAverageLogLikelihoodUpToTermsWithoutIt()
    {
        // Eq. 11 with biases and no ridge equals (1/N_node) Σ [log p(x|path) − log π − Σ log|det Q_other| + D/2 log 2π].
        int d = 3;
        var (objective, w, net, x, paths, node) = TopNodeProblem(d, ridge: 0, kronecker: false);
        var ws = new DeepGmmNetwork.ScoringWorkspace(net, x.Rows);
        net.ScoreAllPaths(x.Values, x.Rows, ws);
        double sum = 0; int count = 0;
        int top = net.LayerCount - 1;
        for (int r = 0; r < x.Rows; r++)
        {
            int p = paths[r];
            if (net.Node(top, net.Digit(p, top)) != node) continue;
            double others = 0;
            for (int j = 0; j < top; j++) others += net.LogDet[net.Node(j, net.Digit(p, j))];
            sum += ws.Scores[r * net.PathCount + p] - net.PathLogPrior[p] - others + 0.5 * d * Math.Log(2 * Math.PI);
            count++;
        }
        Assert.True(count > 20);
        Assert.Equal(sum / count, objective.Value(w, new double[w.Length]), 3);
    }

    [Fact]
    public void LbfgsReachesTheClosedFormOptimumWhenNothingLiesBelow()
    {
        // With R = I and s = 0 (a bottom node) the optimum is known: Q = chol(Σ+λI)⁻¹, e = −Q·mean.
        int d = 5, m = d + 1;
        var rng = new RandomStream(12);
        var moments = new double[m * m];
        var mix = new double[d * d];
        for (int i = 0; i < mix.Length; i++) mix[i] = rng.NextGaussian();
        for (int r = 0; r < 300; r++)
        {
            var z = new double[d]; var u = new double[m];
            for (int i = 0; i < d; i++) z[i] = rng.NextGaussian();
            for (int a = 0; a < d; a++) { double s = 2; for (int c = 0; c < d; c++) s += mix[a * d + c] * z[c]; u[a] = s; }
            u[d] = 1;
            for (int a = 0; a < m; a++) for (int c = 0; c < m; c++) moments[a * m + c] += u[a] * u[c];
        }
        var identity = new double[d * d];
        for (int i = 0; i < d; i++) identity[i * d + i] = 1;
        var objective = new NodeObjective(d, new[] { identity }, new[] { new double[d] }, new[] { 0.0 }, new[] { moments }, 1e-3, false);
        var closed = NodeObjective.ClosedForm(d, moments, 1e-3);
        double optimum = objective.Value(closed, new double[d * m]);
        var start = new double[d * m];
        for (int i = 0; i < d; i++) start[i * m + i] = 1;
        double startValue = objective.Value(start, new double[d * m]);
        var (_, value, evaluations) = objective.Maximize(start, 500, CancellationToken.None);
        Assert.True(value > startValue + 1, $"L-BFGS did not improve: {startValue} → {value}");
        Assert.True(Math.Abs(value - optimum) < 1e-6 * Math.Abs(optimum) + 1e-6, $"L-BFGS {value} vs closed form {optimum} after {evaluations} evaluations");
        // The closed form is a stationary point: zero gradient.
        var g = new double[d * m];
        objective.Value(closed, g);
        Assert.True(g.Max(Math.Abs) < 1e-6, $"gradient at the closed form: {g.Max(Math.Abs)}");
    }
}
