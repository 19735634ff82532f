using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Tests.Rnade;

public class RnadeScoringTests
{
    /// <summary>Algorithm 1 of the RNADE supplement, one row at a time in double precision.</summary>
    private static double ReferenceLogDensity(RnadeNetwork net, ReadOnlySpan<float> x)
    {
        int d = net.D, h = net.H, k = net.K, k3 = net.K3;
        var a = new double[h];
        for (int j = 0; j < h; j++) a[j] = net.C[j];
        double logp = 0;
        for (int dd = 0; dd < d; dd++)
        {
            var z = new double[k3];
            for (int i = 0; i < k3; i++)
            {
                double s = net.B[dd * k3 + i];
                for (int j = 0; j < h; j++)
                {
                    double psi = net.Rho[dd] * a[j];
                    double hj = net.Activation == Activation.Relu ? Math.Max(psi, 0) : 1 / (1 + Math.Exp(-psi));
                    s += hj * net.V[(dd * h + j) * k3 + i];
                }
                z[i] = s;
            }
            double maxA = double.NegativeInfinity;
            for (int i = 0; i < k; i++) maxA = Math.Max(maxA, z[i]);
            double sumA = 0;
            for (int i = 0; i < k; i++) sumA += Math.Exp(z[i] - maxA);
            double p = 0;
            for (int i = 0; i < k; i++)
            {
                double alpha = Math.Exp(z[i] - maxA) / sumA, mu = z[k + i], sigma = Math.Exp(z[2 * k + i]);
                double u = (x[dd] - mu) / sigma;
                p += alpha * Math.Exp(-0.5 * u * u) / (Math.Sqrt(2 * Math.PI) * sigma);
            }
            logp += Math.Log(p);
            if (dd < d - 1) for (int j = 0; j < h; j++) a[j] += x[dd] * net.W[dd * h + j];
        }
        return logp;
    }

    private static RnadeModel Model(RnadeNetwork net)
        => new(net, Enumerable.Range(0, net.D).ToArray(), ColumnStandardizer.Identity(net.D));

    [Theory]
    [InlineData(Activation.Relu, 3)]
    [InlineData(Activation.Sigmoid, 10)]
    [InlineData(Activation.Relu, 1)]
    public void LogDensityMatchesAlgorithmOneInDoublePrecision(Activation act, int k)
    {
        var net = RnadeGradientTests.RandomNetwork(d: 7, h: 13, k: k, act, seed: 21);
        int rows = 37; // not a multiple of the 8-row vectors
        var x = new float[rows * 7];
        new RandomStream(5).FillGaussian(x);
        var got = Model(net).LogDensity(new RowMatrix(x, rows, 7));
        for (int r = 0; r < rows; r++)
        {
            double expected = ReferenceLogDensity(net, x.AsSpan(r * 7, 7));
            Assert.True(Math.Abs(got[r] - expected) < 1e-4 * (1 + Math.Abs(expected)), $"row {r}: {got[r]} vs {expected}");
        }
    }

    [Fact]
    public void PortableMixtureCodeAgreesWithTheVectorisedOne()
    {
        var vectorNet = RnadeGradientTests.RandomNetwork(d: 6, h: 11, k: 5, Activation.Relu, seed: 4);
        var portableNet = RnadeGradientTests.RandomNetwork(d: 6, h: 11, k: 5, Activation.Relu, seed: 4);
        portableNet.PortableMixture = true;
        int rows = 21;
        var x = new float[rows * 6];
        new RandomStream(3).FillGaussian(x);
        var a = Model(vectorNet).LogDensity(new RowMatrix(x, rows, 6));
        var b = Model(portableNet).LogDensity(new RowMatrix(x, rows, 6));
        for (int r = 0; r < rows; r++) Assert.True(Math.Abs(a[r] - b[r]) < 1e-4 * (1 + Math.Abs(a[r])), $"row {r}: {a[r]} vs {b[r]}");
        foreach (bool sigma in new[] { false, true })
        {
            var gv = new RnadeObjective(vectorNet, 8, sigma);
            var gp = new RnadeObjective(portableNet, 8, sigma);
            gv.ComputeGradient(x, rows, new RandomStream(1));
            gp.ComputeGradient(x, rows, new RandomStream(1));
            for (int t = 0; t < gv.Parameters.Items.Count; t++)
            {
                var u = gv.Parameters.Items[t].Gradient; var v = gp.Parameters.Items[t].Gradient;
                for (int i = 0; i < u.Length; i++)
                    Assert.True(Math.Abs(u[i] - v[i]) < 1e-4 * (1 + Math.Abs(u[i])), $"{gv.Parameters.Items[t].Name}[{i}]: {u[i]} vs {v[i]}");
            }
        }
    }

    [Fact]
    public void RowScoresDoNotDependOnBlockCompositionOrConcurrentCalls()
    {
        var net = RnadeGradientTests.RandomNetwork(d: 9, h: 20, k: 4, Activation.Relu, seed: 8);
        var model = Model(net);
        int rows = 700; // several parallel scoring blocks, the last one partial
        var x = new float[rows * 9];
        new RandomStream(9).FillGaussian(x);
        var all = model.LogDensity(new RowMatrix(x, rows, 9));
        foreach (int r in new[] { 0, 1, 255, 256, 511, 699 })
        {
            var single = new float[1];
            model.LogDensity(x.AsSpan(r * 9, 9), single);
            Assert.Equal(all[r], single[0]);
        }
        var fromThreads = new float[4][];
        Parallel.For(0, 4, t =>
        {
            // Each thread scores a different sub-range, so shared scratch would corrupt results.
            int start = t * 37, count = rows - start;
            var res = new float[count];
            for (int rep = 0; rep < 3; rep++) model.LogDensity(x.AsSpan(start * 9, count * 9), res);
            fromThreads[t] = res;
        });
        for (int t = 0; t < 4; t++) Assert.Equal(all.AsSpan(t * 37).ToArray(), fromThreads[t]);
    }
}
