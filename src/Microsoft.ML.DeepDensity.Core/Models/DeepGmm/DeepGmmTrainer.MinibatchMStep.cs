using System.Diagnostics;
using MathNet.Numerics.LinearAlgebra;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Models.DeepGmm;

/// <summary>Deep GMM EM: the minibatch M-step (paper §3.2, for high D).</summary>
internal sealed partial class DeepGmmTrainer
{
    // ------------------------------------------------------------------ minibatch M-step (§3.2, high D)

    /// <summary>
    /// Adam on each node's own rows: per row log|det Q| − ½‖R_b(Q·y + e) + s_b‖² (eq. 9 with biases), so no (D+1)²
    /// statistics per folded path are formed. The ridge enters as ½·tr(Ω̄ Q diag(λ) Qᵀ) with Ω̄ the batch's mean Ω_b and λ
    /// the layer's per-dimension ridge (λ·var(column) on the top layer), as in the L-BFGS objective (it used the mean λ,
    /// so a top layer over columns of unequal variance converged elsewhere than the L-BFGS M-step).
    /// </summary>
    private int MinibatchLayer(int layer, int[][] rows, float[][] weights, int iteration, CancellationToken ct)
    {
        int d = _d, m = d + 1, nj = _net.Components[layer], below = _net.Stride[layer];
        var (omega, t, c) = BelowMaps(layer);
        // Folded maps R_b, s_b again as explicit matrices (Ω_b alone does not give R_b·v).
        var rMaps = new float[below][]; var sMaps = new float[below][];
        for (int b = 0; b < below; b++)
        {
            var r = Matrix<double>.Build.DenseIdentity(d);
            var s = Vector<double>.Build.Dense(d);
            for (int l = layer - 1; l >= 0; l--)
            {
                int node = _net.Node(l, _net.Digit(b, l));
                var q = Matrix<double>.Build.Dense(d, d, (i, k) => _net.Q[node][i * d + k]);
                r = q * r;
                s = q * s + Vector<double>.Build.Dense(d, i => _net.E[node][i]);
            }
            rMaps[b] = new float[d * d];
            for (int i = 0; i < d; i++) for (int k = 0; k < d; k++) rMaps[b][i * d + k] = (float)r[i, k];
            sMaps[b] = s.Select(v => (float)v).ToArray();
        }
        _ = t; _ = c;
        var root = _random.Fork(0x3B47C, (ulong)iteration).Fork((ulong)layer);
        Parallel.For(0, nj, DeepDensityEnvironment.ParallelOptions(cancellationToken: ct), i =>
        {
            int node = _net.Node(layer, i);
            // Inputs of the node's rows (through the updated layers above), with weights and folded-path index.
            var inputs = new List<float>(); var ws = new List<float>(); var bs = new List<int>();
            var scratch = new float[ScratchLength];
            int above = _net.PathCount / _net.Stride[layer + 1];
            for (int b = 0; b < below; b++)
                for (int u = 0; u < above; u++)
                {
                    int path = b + i * _net.Stride[layer] + u * _net.Stride[layer + 1];
                    foreach (var (row, w) in rows[path].Zip(weights[path]))
                    {
                        var y = InputOf(layer, path, row, scratch);
                        inputs.AddRange(y); ws.Add(w); bs.Add(b);
                    }
                }
            double total = 0;
            foreach (var w in ws) total += w;
            if (total < MinNodeWeight) return;
            var rng = root.Fork((ulong)i);
            var order = Enumerable.Range(0, ws.Count).ToArray();
            var wParams = ToW(node);
            var adamM = new double[d * m]; var adamV = new double[d * m];
            var grad = new double[d * m];
            var z = new double[d]; var v = new double[d]; var back = new double[d];
            double lr = _options.MinibatchLearningRate;
            var ridge = RidgeFor(layer);
            double shrinkPerRow = ShrinkageFor(layer) / total;
            int step = 0;
            for (int epoch = 0; epoch < _options.MinibatchEpochs; epoch++)
            {
                rng.Shuffle(order.AsSpan());
                for (int start = 0; start < order.Length; start += _options.MinibatchSize)
                {
                    ct.ThrowIfCancellationRequested();
                    int count = Math.Min(_options.MinibatchSize, order.Length - start);
                    Array.Clear(grad);
                    var meanOmega = new double[d * d];
                    double batchWeight = 0;
                    for (int k = 0; k < count; k++)
                    {
                        int row = order[start + k];
                        double w = ws[row];
                        int b = bs[row];
                        batchWeight += w;
                        System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(omega[b], w, meanOmega, meanOmega);
                        // v = W·ũ, z = R_b v + s_b, back = R_bᵀ z; gradient −= w·back·ũᵀ.
                        for (int a = 0; a < d; a++)
                        {
                            double s = wParams[a * m + d];
                            for (int cc = 0; cc < d; cc++) s += wParams[a * m + cc] * inputs[row * d + cc];
                            v[a] = s;
                        }
                        for (int a = 0; a < d; a++)
                        {
                            double s = sMaps[b][a];
                            for (int cc = 0; cc < d; cc++) s += rMaps[b][a * d + cc] * v[cc];
                            z[a] = s;
                        }
                        Array.Clear(back);
                        for (int cc = 0; cc < d; cc++)
                            for (int a = 0; a < d; a++) back[a] += rMaps[b][cc * d + a] * z[cc];
                        for (int a = 0; a < d; a++)
                        {
                            double f = w * back[a];
                            for (int cc = 0; cc < d; cc++) grad[a * m + cc] -= f * inputs[row * d + cc];
                            grad[a * m + d] -= f;
                        }
                    }
                    if (batchWeight <= 0) continue;
                    System.Numerics.Tensors.TensorPrimitives.Multiply(grad, 1.0 / batchWeight, grad);
                    System.Numerics.Tensors.TensorPrimitives.Multiply(meanOmega, 1.0 / batchWeight, meanOmega);
                    var q = Matrix<double>.Build.Dense(d, d, (a, cc) => wParams[a * m + cc]);
                    var inv = q.Inverse();
                    var ridgeGrad = Matrix<double>.Build.Dense(d, d, (a, cc) => meanOmega[a * d + cc]) * q * Matrix<double>.Build.DiagonalOfDiagonalArray(ridge);
                    for (int a = 0; a < d; a++)
                        for (int cc = 0; cc < d; cc++) grad[a * m + cc] += inv[cc, a] - ridgeGrad[a, cc];
                    // MAP prior toward [I | 0], per row of the node, as in the L-BFGS M-step.
                    NodeObjective.AddIdentityPrior(wParams, grad, d, shrinkPerRow);
                    step++;
                    double bias1 = 1 - Math.Pow(0.9, step), bias2 = 1 - Math.Pow(0.999, step);
                    for (int k = 0; k < grad.Length; k++)
                    {
                        adamM[k] = 0.9 * adamM[k] + 0.1 * grad[k];
                        adamV[k] = 0.999 * adamV[k] + 0.001 * grad[k] * grad[k];
                        wParams[k] += lr * (adamM[k] / bias1) / (Math.Sqrt(adamV[k] / bias2) + 1e-8);
                    }
                }
            }
            FromW(node, wParams);
        });
        return 0;
    }

    /// <summary>One row back-transformed through the layers above <paramref name="layer"/> along <paramref name="path"/>.</summary>
    private float[] InputOf(int layer, int path, int row, float[] scratch)
    {
        int d = _d, dp = _net.Dp;
        var cur = scratch.AsSpan(0, dp); var next = scratch.AsSpan(dp, dp);
        cur.Clear();
        _x.Row(row).CopyTo(cur);
        for (int l = _net.LayerCount - 1; l > layer; l--)
        {
            _net.Apply(_net.Node(l, _net.Digit(path, l)), cur, next);
            next.CopyTo(cur);
        }
        return cur[..d].ToArray();
    }
}
