using System.Diagnostics;
using MathNet.Numerics.LinearAlgebra;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Models.DeepGmm;

/// <summary>Deep GMM EM: the M-step layer by layer from the top (per-path weights, priors, re-seeding of empty nodes, node optimisation by L-BFGS on per-path sufficient statistics).</summary>
internal sealed partial class DeepGmmTrainer
{
    // ------------------------------------------------------------------ weights per path

    /// <summary>Rows and weights of every path (hard: the rows assigned to it, weight 1; soft: responsibilities).</summary>
    internal (int[][] Rows, float[][] Weights) PathMembers()
    {
        int pc = _net.PathCount;
        var rows = new int[pc][];
        var weights = new float[pc][];
        if (_options.Em == DeepGmmEmKind.Hard)
        {
            var counts = new int[pc];
            foreach (var p in Assignment) counts[p]++;
            for (int p = 0; p < pc; p++) { rows[p] = new int[counts[p]]; weights[p] = new float[counts[p]]; Array.Fill(weights[p], 1f); }
            Array.Clear(counts);
            for (int r = 0; r < _n; r++) { int p = Assignment[r]; rows[p][counts[p]++] = r; }
        }
        else
        {
            var resp = Responsibilities!;
            DeepDensityEnvironment.For(0, pc, p =>
            {
                var rl = new List<int>(); var wl = new List<float>();
                for (int r = 0; r < _n; r++)
                {
                    float g = resp[(long)r * pc + p];
                    if (g > 1e-8f) { rl.Add(r); wl.Add(g); }
                }
                rows[p] = rl.ToArray(); weights[p] = wl.ToArray();
            });
        }
        return (rows, weights);
    }

    /// <summary>Adds every path's weight (Σ of its members' weights, float64 in row order) under the last E-step of the
    /// current rows: what a streamed or data-parallel E-step sums over windows or partitions.</summary>
    internal void AddPathWeights(double[] weight)
    {
        var (_, weights) = PathMembers();
        for (int p = 0; p < weight.Length; p++) foreach (var w in weights[p]) weight[p] += w;
    }

    // ------------------------------------------------------------------ M-step

    /// <summary>What an M-step did.</summary>
    public readonly record struct MStepResult(int Reseeded, int LbfgsEvaluations);

    public MStepResult MStep(int iteration, CancellationToken ct)
    {
        var (rows, weights) = PathMembers();
        int pc = _net.PathCount;
        var pathWeight = new double[pc];
        for (int p = 0; p < pc; p++) { double s = 0; foreach (var w in weights[p]) s += w; pathWeight[p] = s; }
        int reseeded = BeginMStep(pathWeight, iteration);
        int evaluations = 0;
        for (int layer = _net.LayerCount - 1; layer >= 0; layer--)
        {
            ct.ThrowIfCancellationRequested();
            evaluations += _options.MStep == DeepGmmMStep.Minibatch && layer > 0
                ? MinibatchLayer(layer, rows, weights, iteration, ct)
                : OptimizeLayer(layer, rows, weights, ct);
            _net.Refresh();
        }
        return new MStepResult(reseeded, evaluations);
    }

    /// <summary>The M-step's first part, from the weight of every path: the path (or node) probabilities, then the
    /// re-seeding of starved nodes; returns the nodes re-seeded.</summary>
    internal int BeginMStep(double[] pathWeight, int iteration)
    {
        UpdatePriors(pathWeight);
        return ReseedEmptyNodes(pathWeight, iteration);
    }

    private void UpdatePriors(double[] pathWeight)
    {
        double alpha = _options.PathPseudoCount;
        double total = 0;
        foreach (var w in pathWeight) total += w;
        if (!_net.Factorized)
        {
            double denominator = total + alpha * _net.PathCount;
            for (int p = 0; p < _net.PathCount; p++) _net.LogPrior[p] = (float)Math.Log((pathWeight[p] + alpha) / denominator);
        }
        else
        {
            var nodeWeight = NodeWeights(pathWeight);
            for (int j = 0; j < _net.LayerCount; j++)
            {
                double denominator = total + alpha * _net.Components[j];
                for (int i = 0; i < _net.Components[j]; i++)
                    _net.LogPrior[_net.Node(j, i)] = (float)Math.Log((nodeWeight[_net.Node(j, i)] + alpha) / denominator);
            }
        }
        _net.Refresh();
    }

    /// <summary>log((e^a + e^b) / 2) in float64.</summary>
    private static float HalfOfSum(float a, float b)
    {
        double max = Math.Max(a, b);
        if (double.IsNegativeInfinity(max)) return float.NegativeInfinity;
        return (float)(max + Math.Log((Math.Exp(a - max) + Math.Exp(b - max)) / 2));
    }

    private double[] NodeWeights(double[] pathWeight)
    {
        var w = new double[_net.NodeCount];
        for (int p = 0; p < _net.PathCount; p++)
            for (int j = 0; j < _net.LayerCount; j++) w[_net.Node(j, _net.Digit(p, j))] += pathWeight[p];
        return w;
    }

    /// <summary>
    /// The "empty cluster" repair: a node with too little data becomes a perturbed copy of the busiest node of its layer,
    /// sharing that node's path probabilities; the next E-step splits the data between the two.
    /// </summary>
    private int ReseedEmptyNodes(double[] pathWeight, int iteration)
    {
        var nodeWeight = NodeWeights(pathWeight);
        double min = MinNodeWeight;
        int count = 0;
        var rng = _random.Fork(0x5EED0, (ulong)iteration);
        for (int j = 0; j < _net.LayerCount; j++)
        {
            for (int i = 0; i < _net.Components[j]; i++)
            {
                int node = _net.Node(j, i);
                if (nodeWeight[node] >= min) continue;
                int source = -1;
                for (int c = 0; c < _net.Components[j]; c++)
                    if (source < 0 || nodeWeight[_net.Node(j, c)] > nodeWeight[_net.Node(j, source)]) source = c;
                int src = _net.Node(j, source);
                if (nodeWeight[src] < 2 * min) continue; // nothing worth splitting
                _net.Q[src].CopyTo(_net.Q[node], 0);
                double scale = Math.Max(_options.ReseedPerturbation, 0.05);
                // Under the shrinkage prior the copy moves no further than one prior standard deviation (κ^-½), so
                // κ → ∞ keeps the lower layers at the identity (nesting the 1-layer GMM) instead of re-perturbing them.
                double shrinkage = ShrinkageFor(j);
                if (shrinkage > 0) scale = Math.Min(scale, 1 / Math.Sqrt(shrinkage));
                for (int a = 0; a < _d; a++) _net.E[node][a] = _net.E[src][a] + (float)(scale * rng.NextGaussian());
                // The source and the copy share their combined probability mass equally (the empty node's own small
                // mass is kept, so the probabilities still sum to 1).
                if (_net.Factorized)
                {
                    float half = HalfOfSum(_net.LogPrior[src], _net.LogPrior[node]);
                    _net.LogPrior[src] = half; _net.LogPrior[node] = half;
                }
                else
                {
                    for (int p = 0; p < _net.PathCount; p++)
                    {
                        if (_net.Digit(p, j) != source) continue;
                        int q = p + (i - source) * _net.Stride[j];
                        float half = HalfOfSum(_net.LogPrior[p], _net.LogPrior[q]);
                        _net.LogPrior[p] = half; _net.LogPrior[q] = half;
                    }
                }
                nodeWeight[src] /= 2; nodeWeight[node] = nodeWeight[src];
                count++;
            }
        }
        if (count > 0) _net.Refresh();
        return count;
    }

    /// <summary>
    /// Folded maps of the layers below <paramref name="layer"/> for every below-path b: z = R_b·y + s_b. Returns
    /// Ω_b = R_bᵀR_b, t_b = R_bᵀs_b, c_b = s_bᵀs_b (float64).
    /// </summary>
    internal (double[][] Omega, double[][] T, double[] C) BelowMaps(int layer) => BelowMaps(_net, layer);

    internal static (double[][] Omega, double[][] T, double[] C) BelowMaps(DeepGmmNetwork net, int layer)
    {
        int d = net.D, count = net.Stride[layer];
        var omega = new double[count][]; var t = new double[count][]; var c = new double[count];
        var q = new Matrix<double>[net.NodeCount];
        for (int node = 0; node < net.NodeCount; node++) q[node] = Matrix<double>.Build.Dense(d, d, (r, cc) => net.Q[node][r * d + cc]);
        DeepDensityEnvironment.For(0, count, b =>
        {
            var r = Matrix<double>.Build.DenseIdentity(d);
            var s = Vector<double>.Build.Dense(d);
            for (int l = layer - 1; l >= 0; l--)
            {
                int node = net.Node(l, net.Digit(b, l));
                r = q[node] * r;
                s = q[node] * s + Vector<double>.Build.Dense(d, i => net.E[node][i]);
            }
            var om = r.TransposeThisAndMultiply(r);
            var tb = r.TransposeThisAndMultiply(s);
            omega[b] = new double[d * d];
            for (int a = 0; a < d; a++) for (int cc = 0; cc < d; cc++) omega[b][a * d + cc] = om[a, cc];
            t[b] = tb.ToArray();
            c[b] = s.DotProduct(s);
        });
        return (omega, t, c);
    }

    /// <summary>
    /// Σ w·ũũᵀ ((D+1)², float64) of the inputs to layer <paramref name="layer"/> for the rows of <paramref name="path"/>,
    /// where ũ = [y; 1] and y is the row back-transformed through the (already updated) layers above.
    /// </summary>
    private void AccumulateInputMoments(int layer, int path, int[] rows, float[] weights, double[] moments, float[] scratch)
    {
        int d = _d, m = d + 1;
        var bufA = scratch.AsSpan(0, Block * d);
        var bufB = scratch.AsSpan(Block * d, Block * d);
        var aug = scratch.AsSpan(2 * Block * d, Block * m);
        var outer = scratch.AsSpan(2 * Block * d + Block * m, m * m);
        for (int start = 0; start < rows.Length; start += Block)
        {
            int count = Math.Min(Block, rows.Length - start);
            for (int r = 0; r < count; r++) _x.Row(rows[start + r]).CopyTo(bufA.Slice(r * d, d));
            var current = bufA; var next = bufB;
            for (int l = _net.LayerCount - 1; l > layer; l--)
            {
                int node = _net.Node(l, _net.Digit(path, l));
                Gemm.Multiply(false, true, count, d, d, 1f, current, d, _net.Q[node], d, 0f, next, d, allowParallel: false);
                RowOps.AddRowVector(next[..(count * d)], count, d, _net.E[node]);
                var tmp = current; current = next; next = tmp;
            }
            // Centre the block on its weighted mean (float64) before the float32 GEMM: raw second moments of columns
            // with a large mean and a tiny spread would lose the spread to cancellation.
            var blockMean = new double[d];
            double blockWeight = 0;
            for (int r = 0; r < count; r++)
            {
                double w = weights[start + r];
                blockWeight += w;
                var row = current.Slice(r * d, d);
                for (int a = 0; a < d; a++) blockMean[a] += w * row[a];
            }
            if (!(blockWeight > 0)) continue;
            for (int a = 0; a < d; a++) blockMean[a] /= blockWeight;
            for (int r = 0; r < count; r++)
            {
                float sw = MathF.Sqrt(weights[start + r]);
                var dst = aug.Slice(r * d, d);
                var row = current.Slice(r * d, d);
                for (int a = 0; a < d; a++) dst[a] = (float)((row[a] - blockMean[a]) * sw);
            }
            Gemm.Multiply(true, false, d, d, count, 1f, aug, d, aug, d, 0f, outer, d, allowParallel: false);
            // Σ w·ũũᵀ = centred part + W·[μ;1][μ;1]ᵀ.
            for (int a = 0; a < d; a++)
            {
                for (int b = 0; b < d; b++) moments[a * m + b] += outer[a * d + b] + blockWeight * blockMean[a] * blockMean[b];
                moments[a * m + d] += blockWeight * blockMean[a];
                moments[d * m + a] += blockWeight * blockMean[a];
            }
            moments[m * m - 1] += blockWeight;
        }
    }

    private int ScratchLength => 2 * Block * _d + Block * (_d + 1) + (_d + 1) * (_d + 1);

    /// <summary>
    /// Second moments of one layer's inputs, per (node, below-path) slot: slot (i, b) gathers the paths whose digit in
    /// <paramref name="layer"/> is i and whose digits below form b (the "folded" paths of Figure 3).
    /// </summary>
    internal double[][][] LayerMoments(int layer, int[][] rows, float[][] weights, CancellationToken ct)
    {
        int nj = _net.Components[layer], below = _net.Stride[layer], above = _net.PathCount / _net.Stride[layer + 1];
        int m = _d + 1;
        var moments = new double[nj][][];
        for (int i = 0; i < nj; i++) moments[i] = new double[below][];
        Parallel.For(0, nj * below, DeepDensityEnvironment.ParallelOptions(cancellationToken: ct), () => new float[ScratchLength], (slot, _, scratch) =>
        {
            int i = slot / below, b = slot % below;
            var acc = new double[m * m];
            for (int u = 0; u < above; u++)
            {
                int path = b + i * _net.Stride[layer] + u * _net.Stride[layer + 1];
                if (rows[path].Length > 0) AccumulateInputMoments(layer, path, rows[path], weights[path], acc, scratch);
            }
            moments[i][b] = acc;
            return scratch;
        }, _ => { });
        return moments;
    }

    private bool UseKronecker(int below)
    {
        int dm = _d * (_d + 1);
        return _options.NodeObjective switch
        {
            DeepGmmNodeObjective.Kronecker => true,
            DeepGmmNodeObjective.PathSum => false,
            _ => dm <= 2048 && _d + 1 < 2 * below,
        };
    }

    private int OptimizeLayer(int layer, int[][] rows, float[][] weights, CancellationToken ct)
        => OptimizeLayer(layer, LayerMoments(layer, rows, weights, ct), ct);

    /// <summary>Optimises the nodes of <paramref name="layer"/> from its input moments per (node, below-path) slot
    /// (<see cref="LayerMoments"/>, summed over a stream's windows when streamed); returns the L-BFGS evaluations.</summary>
    internal int OptimizeLayer(int layer, double[][][] moments, CancellationToken ct)
    {
        int d = _d, m = d + 1, nj = _net.Components[layer];
        var ridge = RidgeFor(layer);
        double min = MinNodeWeight;
        // A bottom node has the closed form (the GMM M-step) unless its MAP prior needs L-BFGS; then R = I, s = 0 below it.
        var (omega, t, c) = layer > 0 || ShrinkageFor(layer) > 0 ? BelowMaps(layer) : (Array.Empty<double[]>(), Array.Empty<double[]>(), Array.Empty<double>());
        bool kron = layer > 0 && UseKronecker(_net.Stride[layer]);
        var evaluations = new int[nj];
        Parallel.For(0, nj, DeepDensityEnvironment.ParallelOptions(cancellationToken: ct), i =>
        {
            int node = _net.Node(layer, i);
            double weight = 0;
            foreach (var s in moments[i]) weight += s[m * m - 1];
            if (weight < min) return; // re-seeded (or starved) node: keep its parameters until it has data
            double[] w;
            double shrinkage = ShrinkageFor(layer);
            if (layer == 0 && shrinkage == 0)
            {
                var total = new double[m * m];
                foreach (var s in moments[i]) System.Numerics.Tensors.TensorPrimitives.Add(total, s, total);
                w = NodeObjective.ClosedForm(d, total, ridge);
            }
            else
            {
                var om = new List<double[]>(); var tb = new List<double[]>(); var cb = new List<double>(); var sb = new List<double[]>();
                for (int b = 0; b < moments[i].Length; b++)
                {
                    if (moments[i][b][m * m - 1] <= 0) continue;
                    om.Add(omega[b]); tb.Add(t[b]); cb.Add(c[b]); sb.Add(moments[i][b]);
                }
                var objective = new NodeObjective(d, om, tb, cb, sb, ridge, kron, shrinkage);
                var (best, _, evals) = objective.Maximize(ToW(node), _options.LbfgsIterations, ct);
                evaluations[i] = evals;
                w = best;
            }
            FromW(node, w);
        });
        int total = 0;
        foreach (var e in evaluations) total += e;
        return total;
    }

    /// <summary>W = [Q | e] of a node in float64.</summary>
    internal double[] ToW(int node)
    {
        int d = _d, m = d + 1;
        var w = new double[d * m];
        for (int a = 0; a < d; a++)
        {
            for (int c = 0; c < d; c++) w[a * m + c] = _net.Q[node][a * d + c];
            w[a * m + d] = _net.E[node][a];
        }
        return w;
    }

    /// <summary>Writes W back unless it is non-finite or singular in float32 (then the node keeps its old parameters).</summary>
    private void FromW(int node, double[] w)
    {
        int d = _d, m = d + 1;
        var q = new float[d * d]; var e = new float[d];
        for (int a = 0; a < d; a++)
        {
            for (int c = 0; c < d; c++) q[a * d + c] = (float)w[a * m + c];
            e[a] = (float)w[a * m + d];
        }
        foreach (var v in q) if (!float.IsFinite(v)) return;
        foreach (var v in e) if (!float.IsFinite(v)) return;
        if (!double.IsFinite(DeepGmmNetwork.LogAbsDeterminant(q, d))) return;
        q.CopyTo(_net.Q[node], 0);
        e.CopyTo(_net.E[node], 0);
    }
}
