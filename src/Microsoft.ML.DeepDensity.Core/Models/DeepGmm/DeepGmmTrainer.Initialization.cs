using System.Diagnostics;
using MathNet.Numerics.LinearAlgebra;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Models.DeepGmm;

/// <summary>Deep GMM: greedy layer-wise initialisation (k-means++ and Lloyd steps per layer) and initialisation from a pretrained top-layer GMM.</summary>
internal sealed partial class DeepGmmTrainer
{
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
        // Without Standardize the columns share one pooled scale, so a column of unit spread beside one of 1e38 is
        // numerically constant: per-column standardisation is then the remedy ("rescale the data" alone did not say so).
        Training.TrainingDivergedException GreedyInitializationFailed(int layer, int cluster)
            => new(FormattableString.Invariant($"The greedy initialisation could not whiten cluster {cluster} of layer {layer} in float32 (its covariance is ") +
                   "singular or its inverse square root overflows). Data far from unit scale is a common cause (spreads below about " +
                   "1e-35, where float32 loses precision): rescale the data" + (options.Standardize ? "." :
                   $", or set {nameof(DeepGmmOptions.Standardize)} = true: without it every column is divided by one pooled scale, so a " +
                   "column whose spread is tiny beside another column's (1 beside 1e38) is numerically constant."));
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
                double[] w;
                try { w = NodeObjective.ClosedForm(d, blended, RidgeFor(net, options, layer, columnVariance)); }
                catch (InvalidOperationException) { throw GreedyInitializationFailed(layer, c); }
                // A node that whitens rows on a subnormal scale (spreads ≲ 1e-38) has weights beyond float32: stop here with
                // the clear error of a diverged fit, before its ∞ is pushed into the next layer's clustering.
                foreach (var v in w) if (!float.IsFinite((float)v)) throw GreedyInitializationFailed(layer, c);
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
