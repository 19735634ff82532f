using System.Diagnostics;
using MathNet.Numerics.LinearAlgebra;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Models.DeepGmm;

/// <summary>
/// EM for a <see cref="DeepGmmNetwork"/> on standardised rows (paper §3): E-step (exact, or the coordinate-ascent
/// heuristic), then an M-step layer by layer from the top, each node optimised from per-path sufficient statistics.
/// </summary>
internal sealed class DeepGmmTrainer
{
    private const int Block = DeepGmmNetwork.RowsPerBlock;
    private readonly DeepGmmNetwork _net;
    private readonly DeepGmmOptions _options;
    private readonly RowMatrix _x;
    private readonly int _n, _d;
    private readonly RandomStream _random;

    /// <summary>Hard EM: best path per row (−1 before the first E-step).</summary>
    public readonly int[] Assignment;
    /// <summary>Soft EM: responsibilities (rows × paths).</summary>
    public float[]? Responsibilities;

    private readonly double[] _columnVariance;

    public DeepGmmTrainer(DeepGmmNetwork net, DeepGmmOptions options, RowMatrix standardizedTrain, RandomStream random)
    {
        _net = net; _options = options; _x = standardizedTrain; _n = _x.Rows; _d = _x.Columns; _random = random;
        _columnVariance = ColumnVariances(_x);
        Assignment = new int[_n];
        Array.Fill(Assignment, -1);
    }

    /// <summary>
    /// The covariance floor of a layer, per input dimension: λ times each column's variance for the top layer (it sees
    /// the data, so λ is scale-free per column), λ for lower layers (they see whitened inputs).
    /// </summary>
    internal static double[] RidgeFor(DeepGmmNetwork net, DeepGmmOptions options, int layer, double[] columnVariance)
    {
        var ridge = new double[net.D];
        for (int a = 0; a < net.D; a++)
            ridge[a] = options.CovarianceRidge * (layer == net.LayerCount - 1 ? columnVariance[a] : 1.0);
        return ridge;
    }

    private double[] RidgeFor(int layer) => RidgeFor(_net, _options, layer, _columnVariance);

    /// <summary>Prior precision κ toward [I | 0] of a layer's nodes: <see cref="DeepGmmOptions.LowerLayerShrinkage"/> below the top, 0 on top.</summary>
    internal static double ShrinkageFor(DeepGmmNetwork net, DeepGmmOptions options, int layer)
        => layer < net.LayerCount - 1 ? options.LowerLayerShrinkage : 0;

    private double ShrinkageFor(int layer) => ShrinkageFor(_net, _options, layer);

    /// <summary>Column variances (float64); a constant column gets the mean of the others (or 1).</summary>
    internal static double[] ColumnVariances(RowMatrix x)
    {
        int n = x.Rows, d = x.Columns;
        var sum = new double[d]; var sq = new double[d];
        for (int r = 0; r < n; r++)
        {
            var row = x.Row(r);
            for (int c = 0; c < d; c++) { sum[c] += row[c]; sq[c] += (double)row[c] * row[c]; }
        }
        var v = new double[d];
        double total = 0; int positive = 0;
        for (int c = 0; c < d; c++)
        {
            v[c] = Math.Max(0, sq[c] / n - (sum[c] / n) * (sum[c] / n));
            if (v[c] > 0 && double.IsFinite(v[c])) { total += v[c]; positive++; }
        }
        double fallback = positive > 0 ? total / positive : 1.0;
        for (int c = 0; c < d; c++) if (!(v[c] > 0) || !double.IsFinite(v[c])) v[c] = fallback;
        return v;
    }

    private double MinNodeWeight => _options.MinNodeWeight > 0 ? _options.MinNodeWeight : _d + 1;

    // ------------------------------------------------------------------ E-step

    /// <summary>Result of an E-step: mean objective per row (exact log-likelihood or best-path bound) and the switch rate.</summary>
    public readonly record struct EStepResult(double MeanLogLikelihood, bool IsExact, double SwitchRate);

    public EStepResult EStep(int iteration, CancellationToken ct)
    {
        if (_options.UsesExactEStep) return EStepExact(ct);
        return EStepHeuristic(iteration, ct);
    }

    /// <summary>Scores every path of every row: hard assignments (argmax) or responsibilities, and the exact log-likelihood.</summary>
    private EStepResult EStepExact(CancellationToken ct)
    {
        bool soft = _options.Em == DeepGmmEmKind.Soft;
        int pc = _net.PathCount;
        if (soft) Responsibilities ??= new float[(long)_n * pc <= int.MaxValue ? _n * pc : throw new InvalidOperationException("Responsibility table too large.")];
        int blocks = (_n + Block - 1) / Block;
        var sums = new double[blocks];
        Parallel.For(0, blocks, DeepDensityEnvironment.ParallelOptions(cancellationToken: ct),
            () => new DeepGmmNetwork.ScoringWorkspace(_net, Block),
            (b, _, ws) =>
            {
                int start = b * Block, m = Math.Min(Block, _n - start);
                _net.ScoreAllPaths(_x.Values.AsSpan(start * _d, m * _d), m, ws);
                double s = 0;
                for (int r = 0; r < m; r++)
                {
                    var scores = ws.Scores.AsSpan(r * pc, pc);
                    double lse = DeepGmmNetwork.LogSumExp(scores);
                    s += lse;
                    if (soft)
                    {
                        var resp = Responsibilities!.AsSpan((start + r) * pc, pc);
                        for (int p = 0; p < pc; p++) resp[p] = (float)Math.Exp(scores[p] - lse);
                    }
                    else
                    {
                        int best = 0;
                        for (int p = 1; p < pc; p++) if (scores[p] > scores[best]) best = p;
                        Assignment[start + r] = best;
                    }
                }
                sums[b] = s;
                return ws;
            }, _ => { });
        double total = 0;
        foreach (var s in sums) total += s;
        return new EStepResult(total / _n, true, 0);
    }

    /// <summary>
    /// The paper's heuristic: per row, one coordinate-ascent pass from its previous best path, then passes from a random
    /// path; the better one is kept. The switch rate is the share of rows whose random restart won.
    /// </summary>
    private EStepResult EStepHeuristic(int iteration, CancellationToken ct)
    {
        int blocks = (_n + Block - 1) / Block;
        var sums = new double[blocks];
        var switches = new int[blocks];
        var root = _random.Fork(0xE57E9, (ulong)iteration);
        int layers = _net.LayerCount;
        int warmPasses = _options.HeuristicWarmPasses, randomPasses = _options.HeuristicRandomPasses;
        Parallel.For(0, blocks, DeepDensityEnvironment.ParallelOptions(cancellationToken: ct), b =>
        {
            var rng = root.Fork((ulong)b);
            var ws = new DeepGmmNetwork.RowWorkspace(_net);
            var warm = new int[layers];
            var fresh = new int[layers];
            int start = b * Block, m = Math.Min(Block, _n - start), switched = 0;
            double s = 0;
            for (int r = start; r < start + m; r++)
            {
                _x.Row(r).CopyTo(ws.Levels[layers]);
                if (Assignment[r] >= 0) _net.PathDigits(Assignment[r], warm);
                else for (int j = 0; j < layers; j++) warm[j] = rng.NextInt(_net.Components[j]);
                double warmScore = double.NegativeInfinity;
                for (int pass = 0; pass < warmPasses; pass++) warmScore = _net.CoordinatePass(warm, ws);
                double best = warmScore;
                int bestPath = _net.PathIndex(warm);
                if (randomPasses > 0)
                {
                    for (int j = 0; j < layers; j++) fresh[j] = rng.NextInt(_net.Components[j]);
                    double freshScore = double.NegativeInfinity;
                    for (int pass = 0; pass < randomPasses; pass++) freshScore = _net.CoordinatePass(fresh, ws);
                    if (freshScore > warmScore) { best = freshScore; bestPath = _net.PathIndex(fresh); switched++; }
                }
                Assignment[r] = bestPath;
                s += best;
            }
            sums[b] = s; switches[b] = switched;
        });
        double total = 0; long sw = 0;
        for (int b = 0; b < blocks; b++) { total += sums[b]; sw += switches[b]; }
        return new EStepResult(total / _n, false, (double)sw / _n);
    }

    /// <summary>Best path of each row by exhaustive search (tests / diagnostics).</summary>
    internal static int[] ExactBestPaths(DeepGmmNetwork net, RowMatrix x)
    {
        var result = new int[x.Rows];
        var ws = new DeepGmmNetwork.ScoringWorkspace(net, Block);
        int pc = net.PathCount;
        for (int start = 0; start < x.Rows; start += Block)
        {
            int m = Math.Min(Block, x.Rows - start);
            net.ScoreAllPaths(x.Values.AsSpan(start * x.Columns, m * x.Columns), m, ws);
            for (int r = 0; r < m; r++)
            {
                int best = 0;
                for (int p = 1; p < pc; p++) if (ws.Scores[r * pc + p] > ws.Scores[r * pc + best]) best = p;
                result[start + r] = best;
            }
        }
        return result;
    }

    // ------------------------------------------------------------------ weights per path

    /// <summary>Rows and weights of every path (hard: the rows assigned to it, weight 1; soft: responsibilities).</summary>
    private (int[][] Rows, float[][] Weights) PathMembers()
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

    // ------------------------------------------------------------------ M-step

    /// <summary>What an M-step did.</summary>
    public readonly record struct MStepResult(int Reseeded, int LbfgsEvaluations);

    public MStepResult MStep(int iteration, CancellationToken ct)
    {
        var (rows, weights) = PathMembers();
        int pc = _net.PathCount;
        var pathWeight = new double[pc];
        for (int p = 0; p < pc; p++) { double s = 0; foreach (var w in weights[p]) s += w; pathWeight[p] = s; }
        UpdatePriors(pathWeight);
        int reseeded = ReseedEmptyNodes(pathWeight, iteration);
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
    private double[][][] LayerMoments(int layer, int[][] rows, float[][] weights, CancellationToken ct)
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
    {
        var moments = LayerMoments(layer, rows, weights, ct);
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

    // ------------------------------------------------------------------ minibatch M-step (§3.2, high D)

    /// <summary>
    /// Adam on each node's own rows: per row log|det Q| − ½‖R_b(Q·y + e) + s_b‖² (eq. 9 with biases), so no (D+1)²
    /// statistics per folded path are formed. The ridge enters as ½λ·tr(Ω̄ Q Qᵀ) with Ω̄ the batch's mean Ω_b.
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
            double lr = _options.MinibatchLearningRate, ridge = RidgeFor(layer).Average();
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
                    var ridgeGrad = Matrix<double>.Build.Dense(d, d, (a, cc) => meanOmega[a * d + cc]) * q * ridge;
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

    // ------------------------------------------------------------------ initialisation

    /// <summary>
    /// Greedy layer-wise initialisation from the data side: the top layer's nodes whiten the clusters of a k-means++
    /// seeding (plus Lloyd steps) of (a subsample of) the rows; every row is then pushed through its cluster's node and
    /// the pooled, whitened rows are clustered the same way for the next layer down. Each node's covariance is shrunk
    /// towards its layer's pooled covariance with D+1 pseudo-rows, so small clusters are not degenerate. Every node thus
    /// starts data-driven and distinct (no dead components), and the composed paths start as a hierarchical clustering.
    /// Path probabilities start uniform.
    /// </summary>
    internal static void Initialize(DeepGmmNetwork net, RowMatrix x, DeepGmmOptions options, RandomStream random)
    {
        int d = x.Columns, m = d + 1;
        var rng = random.Fork(0x1417);
        var columnVariance = ColumnVariances(x);
        int sampleSize = Math.Min(x.Rows, Math.Max(20000, 50 * net.Components.Max()));
        var sampleIdx = Enumerable.Range(0, x.Rows).ToArray();
        rng.Shuffle(sampleIdx.AsSpan());
        var sample = x.SelectRows(sampleIdx.AsSpan(0, sampleSize));
        for (int layer = net.LayerCount - 1; layer >= 0; layer--)
        {
            int k = net.Components[layer];
            var centers = KMeansPlusPlus(sample, k, rng.Fork((ulong)layer));
            var label = Lloyd(sample, centers, k, maxIterations: 100);
            var global = new double[m * m];
            var perCluster = new double[k][];
            for (int c = 0; c < k; c++) perCluster[c] = new double[m * m];
            for (int r = 0; r < sampleSize; r++)
            {
                var row = sample.Row(r);
                var acc = perCluster[label[r]];
                for (int a = 0; a < m; a++)
                {
                    double ua = a < d ? row[a] : 1;
                    for (int b = 0; b < m; b++)
                    {
                        double v = ua * (b < d ? row[b] : 1);
                        acc[a * m + b] += v; global[a * m + b] += v;
                    }
                }
            }
            double gn = global[m * m - 1];
            for (int c = 0; c < k; c++)
            {
                var s = perCluster[c];
                double nc = s[m * m - 1];
                // Only clusters too small for a full-rank covariance borrow d+1 pseudo-rows of the pooled covariance.
                double kappa = nc < 2 * (d + 1) ? d + 1 : 0;
                var mean = new double[d];
                for (int a = 0; a < d; a++) mean[a] = nc > 0 ? s[a * m + d] / nc : centers[c * d + a];
                var blended = new double[m * m];
                for (int a = 0; a < d; a++)
                {
                    for (int b = 0; b < d; b++)
                    {
                        double gcov = global[a * m + b] / gn - global[a * m + d] / gn * (global[b * m + d] / gn);
                        blended[a * m + b] = s[a * m + b] + kappa * (gcov + mean[a] * mean[b]);
                    }
                    blended[a * m + d] = blended[d * m + a] = s[a * m + d] + kappa * mean[a];
                }
                blended[m * m - 1] = nc + kappa;
                var w = NodeObjective.ClosedForm(d, blended, RidgeFor(net, options, layer, columnVariance));
                int node = net.Node(layer, c);
                for (int a = 0; a < d; a++)
                {
                    for (int b = 0; b < d; b++) net.Q[node][a * d + b] = (float)w[a * m + b];
                    net.E[node][a] = (float)w[a * m + d];
                }
            }
            if (layer == 0) break;
            // Push every row through its cluster's node: the next layer down sees the pooled whitened rows.
            var next = new RowMatrix(sampleSize, d);
            for (int r = 0; r < sampleSize; r++)
            {
                int node = net.Node(layer, label[r]);
                var row = sample.Row(r); var dst = next.Row(r);
                for (int a = 0; a < d; a++)
                {
                    float acc = net.E[node][a];
                    for (int b = 0; b < d; b++) acc += net.Q[node][a * d + b] * row[b];
                    dst[a] = acc;
                }
            }
            sample = next;
        }
        if (net.Factorized)
            for (int j = 0; j < net.LayerCount; j++)
                for (int i = 0; i < net.Components[j]; i++) net.LogPrior[net.Node(j, i)] = -MathF.Log(net.Components[j]);
        else Array.Fill(net.LogPrior, -MathF.Log(net.PathCount));
        net.Refresh();
    }

    /// <summary>
    /// Deep network from a trained 1-layer GMM: its components become the top layer (with their probabilities), every
    /// lower node starts as a small random perturbation of the identity, so each path starts close to its top component.
    /// </summary>
    internal static void InitializeFromTopLayer(DeepGmmNetwork net, DeepGmmNetwork gmm, DeepGmmOptions options, RandomStream random)
    {
        int d = net.D, top = net.LayerCount - 1;
        var rng = random.Fork(0x70F);
        for (int i = 0; i < net.Components[top]; i++)
        {
            gmm.Q[i].CopyTo(net.Q[net.Node(top, i)], 0);
            gmm.E[i].CopyTo(net.E[net.Node(top, i)], 0);
        }
        float eps = (float)options.LowerLayerPerturbation;
        for (int j = 0; j < top; j++)
            for (int i = 0; i < net.Components[j]; i++)
            {
                int node = net.Node(j, i);
                rng.FillGaussian(net.Q[node], 0f, eps / MathF.Sqrt(d));
                for (int a = 0; a < d; a++) net.Q[node][a * d + a] += 1f;
                rng.FillGaussian(net.E[node], 0f, eps);
            }
        if (net.Factorized)
        {
            for (int j = 0; j < top; j++)
                for (int i = 0; i < net.Components[j]; i++) net.LogPrior[net.Node(j, i)] = -MathF.Log(net.Components[j]);
            for (int i = 0; i < net.Components[top]; i++) net.LogPrior[net.Node(top, i)] = gmm.LogPrior[i];
        }
        else
        {
            float lowerShare = MathF.Log(net.Stride[top]);
            for (int p = 0; p < net.PathCount; p++) net.LogPrior[p] = gmm.PathLogPrior[net.Digit(p, top)] - lowerShare;
        }
        net.Refresh();
    }

    /// <summary>Greedy k-means++ seeding (as scikit-learn): each new centre is the best of 2 + ln k candidates drawn ∝ D².</summary>
    private static float[] KMeansPlusPlus(RowMatrix x, int k, RandomStream rng)
    {
        int n = x.Rows, d = x.Columns, trials = 2 + (int)Math.Log(k);
        var centers = new float[k * d];
        var dist = new float[n];
        var candidateDist = new float[n];
        var bestDist = new float[n];
        x.Row(rng.NextInt(n)).CopyTo(centers.AsSpan(0, d));
        for (int r = 0; r < n; r++) dist[r] = SquaredDistance(x.Row(r), centers.AsSpan(0, d));
        for (int c = 1; c < k; c++)
        {
            double bestInertia = double.PositiveInfinity;
            int bestCandidate = 0;
            for (int t = 0; t < trials; t++)
            {
                int pick = rng.NextCategorical(dist);
                var cand = x.Row(pick);
                double inertia = 0;
                for (int r = 0; r < n; r++) { candidateDist[r] = Math.Min(dist[r], SquaredDistance(x.Row(r), cand)); inertia += candidateDist[r]; }
                if (inertia < bestInertia) { bestInertia = inertia; bestCandidate = pick; candidateDist.CopyTo(bestDist, 0); }
            }
            x.Row(bestCandidate).CopyTo(centers.AsSpan(c * d, d));
            bestDist.CopyTo(dist, 0);
        }
        return centers;
    }

    /// <summary>
    /// Lloyd's k-means from the given centres until no label changes (or the cap); distances by one GEMM per pass
    /// (‖x‖² − 2x·c + ‖c‖²). Returns the labels; <paramref name="centers"/> are updated in place.
    /// </summary>
    private static int[] Lloyd(RowMatrix x, float[] centers, int k, int maxIterations)
    {
        int n = x.Rows, d = x.Columns;
        var label = new int[n];
        Array.Fill(label, -1);
        var cross = new float[Math.Min(n, Block) * k];
        var centerNorm = new float[k];
        for (int iter = 0; iter < maxIterations; iter++)
        {
            for (int c = 0; c < k; c++) { var cv = centers.AsSpan(c * d, d); centerNorm[c] = System.Numerics.Tensors.TensorPrimitives.Dot(cv, cv); }
            int changed = 0;
            for (int start = 0; start < n; start += Block)
            {
                int count = Math.Min(Block, n - start);
                Gemm.Multiply(false, true, count, k, d, 1f, x.Values.AsSpan(start * d, count * d), d, centers, d, 0f, cross, k);
                for (int r = 0; r < count; r++)
                {
                    int best = 0; float bestDist = float.PositiveInfinity;
                    for (int c = 0; c < k; c++)
                    {
                        float dist = centerNorm[c] - 2 * cross[r * k + c];
                        if (dist < bestDist) { bestDist = dist; best = c; }
                    }
                    if (label[start + r] != best) { label[start + r] = best; changed++; }
                }
            }
            var sums = new double[k * d]; var counts = new int[k];
            for (int r = 0; r < n; r++)
            {
                counts[label[r]]++;
                var row = x.Row(r);
                for (int a = 0; a < d; a++) sums[label[r] * d + a] += row[a];
            }
            for (int c = 0; c < k; c++)
                if (counts[c] > 0) for (int a = 0; a < d; a++) centers[c * d + a] = (float)(sums[c * d + a] / counts[c]);
            if (changed == 0) break;
        }
        return label;
    }

    private static int Nearest(ReadOnlySpan<float> row, float[] centers, int k, int d)
    {
        int best = 0; float bestDist = float.PositiveInfinity;
        for (int c = 0; c < k; c++)
        {
            float dd = SquaredDistance(row, centers.AsSpan(c * d, d));
            if (dd < bestDist) { bestDist = dd; best = c; }
        }
        return best;
    }

    private static float SquaredDistance(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
        => System.Numerics.Tensors.TensorPrimitives.Distance(a, b) is var dd ? dd * dd : 0;
}
