using MathNet.Numerics.LinearAlgebra;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Tests.DeepGmm;

/// <summary>Deep GMMs with known random parameters, and an independent (MathNet, float64) reference density.</summary>
internal static class DeepGmmTestModels
{
    /// <summary>Random network: Q = scale·(I + noise), e random, random path probabilities.</summary>
    public static DeepGmmNetwork RandomNetwork(int d, int[] layers, ulong seed, bool factorized = false,
        float noise = 0.4f, float biasScale = 1.5f, float qScale = 1f)
    {
        var net = new DeepGmmNetwork(d, layers, factorized);
        var rng = new RandomStream(seed);
        for (int n = 0; n < net.NodeCount; n++)
        {
            rng.FillGaussian(net.Q[n], 0f, noise / MathF.Sqrt(d));
            for (int a = 0; a < d; a++) net.Q[n][a * d + a] += 1f;
            for (int i = 0; i < d * d; i++) net.Q[n][i] *= qScale;
            rng.FillGaussian(net.E[n], 0f, biasScale);
        }
        var raw = new double[net.LogPrior.Length];
        for (int i = 0; i < raw.Length; i++) raw[i] = 0.5 + rng.NextDouble();
        if (factorized)
        {
            for (int j = 0; j < layers.Length; j++)
            {
                double s = 0;
                for (int i = 0; i < layers[j]; i++) s += raw[net.Node(j, i)];
                for (int i = 0; i < layers[j]; i++) net.LogPrior[net.Node(j, i)] = (float)Math.Log(raw[net.Node(j, i)] / s);
            }
        }
        else
        {
            double s = raw.Sum();
            for (int p = 0; p < raw.Length; p++) net.LogPrior[p] = (float)Math.Log(raw[p] / s);
        }
        net.Refresh();
        return net;
    }

    public static DeepGmmModel Model(DeepGmmNetwork net, ColumnStandardizer? standardizer = null)
        => new(net, standardizer ?? ColumnStandardizer.Identity(net.D));

    /// <summary>
    /// Reference mixture computed independently of the model code: A = Q⁻¹, b = −A·e per node (MathNet), paths composed
    /// x = A_top(⋯(A_0 z + b_0)⋯) + b_top, then the standardiser undone. Returns per path (weight, mean, covariance).
    /// </summary>
    public static List<(double Weight, Vector<double> Mean, Matrix<double> Cov)> ReferenceMixture(DeepGmmNetwork net, ColumnStandardizer s)
    {
        int d = net.D;
        var a = new Matrix<double>[net.NodeCount];
        var b = new Vector<double>[net.NodeCount];
        for (int n = 0; n < net.NodeCount; n++)
        {
            var q = Matrix<double>.Build.Dense(d, d, (r, c) => net.Q[n][r * d + c]);
            a[n] = q.Inverse();
            b[n] = -(a[n] * Vector<double>.Build.Dense(d, i => net.E[n][i]));
        }
        var scale = Matrix<double>.Build.DenseOfDiagonalArray(s.Scale.ToArray().Select(v => (double)v).ToArray());
        var shiftValues = s.Mean.ToArray();
        var shift = Vector<double>.Build.Dense(d, i => shiftValues[i]);
        var result = new List<(double, Vector<double>, Matrix<double>)>();
        var logw = new double[net.PathCount];
        for (int p = 0; p < net.PathCount; p++)
        {
            double lw = 0;
            if (net.Factorized) for (int j = 0; j < net.LayerCount; j++) lw += net.LogPrior[net.Node(j, p / net.Stride[j] % net.Components[j])];
            else lw = net.LogPrior[p];
            logw[p] = lw;
        }
        double total = logw.Sum(Math.Exp);
        for (int p = 0; p < net.PathCount; p++)
        {
            var omega = Matrix<double>.Build.DenseIdentity(d);
            var beta = Vector<double>.Build.Dense(d);
            for (int j = 0; j < net.LayerCount; j++)
            {
                int node = net.NodeOffset[j] + p / net.Stride[j] % net.Components[j];
                omega = a[node] * omega;
                beta = a[node] * beta + b[node];
            }
            var mean = scale * beta + shift;
            var cov = scale * omega * omega.Transpose() * scale;
            result.Add((Math.Exp(logw[p]) / total, mean, cov));
        }
        return result;
    }

    /// <summary>log Σ_p w_p N(x | μ_p, Σ_p) with a MathNet Cholesky per component (float64).</summary>
    public static double ReferenceLogDensity(List<(double Weight, Vector<double> Mean, Matrix<double> Cov)> mixture, ReadOnlySpan<float> x)
    {
        int d = x.Length;
        var xv = Vector<double>.Build.Dense(d);
        for (int i = 0; i < d; i++) xv[i] = x[i];
        var terms = new double[mixture.Count];
        for (int k = 0; k < mixture.Count; k++)
        {
            var (w, mu, cov) = mixture[k];
            var chol = cov.Cholesky();
            var diff = xv - mu;
            var sol = chol.Factor.Solve(diff);
            double logDet = 0;
            for (int i = 0; i < d; i++) logDet += 2 * Math.Log(chol.Factor[i, i]);
            terms[k] = Math.Log(w) - 0.5 * (d * Math.Log(2 * Math.PI) + logDet + sol.DotProduct(sol));
        }
        double max = terms.Max();
        return max + Math.Log(terms.Sum(t => Math.Exp(t - max)));
    }
}
