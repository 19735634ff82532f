using System.Runtime.InteropServices;
using MathNet.Numerics.LinearAlgebra;
using Microsoft.ML.DeepDensity.Numerics;

namespace Microsoft.ML.DeepDensity.Models.DeepGmm;

/// <summary>
/// The parameters and the path arithmetic of a Deep GMM, in standardised data space.
/// </summary>
/// <remarks>
/// Layers are numbered as in the paper: layer 0 acts first on the standard-normal z, the last layer produces x.
/// Every node stores the <em>inverse</em> affine map of its transformation, y_in-below = Q·y + e, with
/// Q = A⁻¹ and e = −A⁻¹b, so a path's back-transform is a chain of these maps from x down to z and
/// log p(x | path) = Σ log|det Q| + log N(z | 0, I) (eq. 5). A path is a mixed-radix number with layer 0 the
/// fastest digit (stride 1), so for layer j the digits below it form the index <c>path % Stride[j]</c>.
/// </remarks>
internal sealed partial class DeepGmmNetwork
{
    internal const int RowsPerBlock = 256;
    private static readonly double HalfLog2Pi = 0.5 * Math.Log(2 * Math.PI);

    public readonly int D;
    /// <summary>D rounded up to a multiple of 16: row stride of the padded matrices used by per-row mat-vecs.</summary>
    public readonly int Dp;
    public readonly int[] Components;
    public readonly int[] NodeOffset;
    public readonly int[] Stride;
    public readonly int LayerCount, NodeCount, PathCount;
    public readonly bool Factorized;
    /// <summary>Per node: Q (D×D row-major).</summary>
    public readonly float[][] Q;
    /// <summary>Per node: e (D).</summary>
    public readonly float[][] E;
    /// <summary>Full: log π per path (PathCount). Factorised: log π per node (NodeCount), summed along a path.</summary>
    public readonly float[] LogPrior;

    // Derived by Refresh(): log|det Q| per node, padded transposes for mat-vecs, per-path log prior.
    public double[] LogDet = Array.Empty<double>();
    public float[][] QtPadded = Array.Empty<float[]>();
    public float[][] EPadded = Array.Empty<float[]>();
    public float[] PathLogPrior = Array.Empty<float>();
    /// <summary>Per layer: [Q_0ᵀ | Q_1ᵀ | …] (D × N_j·D) and [e_0 | e_1 | …], so one GEMM back-transforms a block through every node of the layer.</summary>
    public float[][] WideQt = Array.Empty<float[]>();
    public float[][] WideE = Array.Empty<float[]>();

    public DeepGmmNetwork(int d, int[] components, bool factorized)
    {
        D = d; Dp = (d + 15) / 16 * 16;
        Components = (int[])components.Clone();
        LayerCount = components.Length;
        NodeOffset = new int[LayerCount + 1];
        Stride = new int[LayerCount + 1];
        Stride[0] = 1;
        for (int j = 0; j < LayerCount; j++)
        {
            NodeOffset[j + 1] = NodeOffset[j] + components[j];
            Stride[j + 1] = checked(Stride[j] * components[j]);
        }
        NodeCount = NodeOffset[LayerCount];
        PathCount = Stride[LayerCount];
        PredictSize(d, components, factorized).EnsureFitsAFile();
        Factorized = factorized;
        Q = new float[NodeCount][];
        E = new float[NodeCount][];
        for (int n = 0; n < NodeCount; n++) { Q[n] = new float[d * d]; E[n] = new float[d]; }
        LogPrior = new float[factorized ? NodeCount : PathCount];
    }

    /// <summary>Parameters of a Deep GMM of these sizes, exactly as laid out above: per node Q (D×D) and e (D), and the
    /// log priors (one per node when factorised, one per path otherwise); checked 64-bit arithmetic,
    /// <see cref="long.MaxValue"/> when it overflows.</summary>
    internal static long ParameterCount(int d, IReadOnlyList<int> components, bool factorized) => Persistence.ModelSizePrediction.Saturating(() =>
    {
        long nodes = 0, paths = 1;
        foreach (int c in components) { nodes = checked(nodes + c); paths = checked(paths * c); }
        return checked(nodes * d * (d + 1L) + (factorized ? nodes : paths));
    });

    /// <summary>The size of a Deep GMM of these sizes (<see cref="DeepGmmOptions.PredictModelSize"/>, checked again before allocating).</summary>
    internal static Persistence.ModelSizePrediction PredictSize(int d, IReadOnlyList<int> components, bool factorized)
    {
        long nodes = components.Sum(c => (long)c);
        return new("Deep GMM", d, ParameterCount(d, components, factorized),
            string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"a Deep GMM whose {nodes} nodes each hold a {d:N0}×{d:N0} transform (Layers = {Training.OptionText.Show(components)}: D×D per node)"),
            "use fewer columns (e.g. a PCA projection: the size grows with the square of the columns) or fewer Layers components",
            DeepGmmModel.MaxDimension);
    }

    public int Node(int layer, int component) => NodeOffset[layer] + component;
    public int Digit(int path, int layer) => path / Stride[layer] % Components[layer];

    public DeepGmmNetwork Clone()
    {
        var c = new DeepGmmNetwork(D, Components, Factorized);
        for (int n = 0; n < NodeCount; n++) { Q[n].CopyTo(c.Q[n], 0); E[n].CopyTo(c.E[n], 0); }
        LogPrior.CopyTo(c.LogPrior, 0);
        c.Refresh();
        return c;
    }

    public void CopyFrom(DeepGmmNetwork other)
    {
        for (int n = 0; n < NodeCount; n++) { other.Q[n].CopyTo(Q[n], 0); other.E[n].CopyTo(E[n], 0); }
        other.LogPrior.CopyTo(LogPrior, 0);
        Refresh();
    }

    /// <summary>Recomputes everything derived from Q, e and the priors (call after any parameter change).</summary>
    public void Refresh()
    {
        LogDet = new double[NodeCount];
        QtPadded = new float[NodeCount][];
        EPadded = new float[NodeCount][];
        for (int n = 0; n < NodeCount; n++)
        {
            LogDet[n] = LogAbsDeterminant(Q[n], D);
            var qt = new float[D * Dp];
            for (int r = 0; r < D; r++)
                for (int c = 0; c < D; c++) qt[c * Dp + r] = Q[n][r * D + c];
            QtPadded[n] = qt;
            var ep = new float[Dp];
            E[n].CopyTo(ep, 0);
            EPadded[n] = ep;
        }
        WideQt = new float[LayerCount][];
        WideE = new float[LayerCount][];
        for (int j = 0; j < LayerCount; j++)
        {
            int width = Components[j] * D;
            var wq = new float[D * width]; var we = new float[width];
            for (int i = 0; i < Components[j]; i++)
            {
                int node = Node(j, i);
                for (int r = 0; r < D; r++)
                    for (int c = 0; c < D; c++) wq[c * width + i * D + r] = Q[node][r * D + c];
                E[node].CopyTo(we, i * D);
            }
            WideQt[j] = wq; WideE[j] = we;
        }
        RefreshLeaves();
        PathLogPrior = new float[PathCount];
        if (!Factorized) LogPrior.CopyTo(PathLogPrior, 0);
        else
            for (int p = 0; p < PathCount; p++)
            {
                double s = 0;
                for (int j = 0; j < LayerCount; j++) s += LogPrior[Node(j, Digit(p, j))];
                PathLogPrior[p] = (float)s;
            }
    }

    public bool AllFinite()
    {
        for (int n = 0; n < NodeCount; n++)
        {
            foreach (var v in Q[n]) if (!float.IsFinite(v)) return false;
            foreach (var v in E[n]) if (!float.IsFinite(v)) return false;
            if (!double.IsFinite(LogDet[n])) return false;
        }
        foreach (var v in PathLogPrior) if (float.IsNaN(v) || float.IsPositiveInfinity(v)) return false;
        return true;
    }

    internal static double LogAbsDeterminant(float[] q, int d)
    {
        var m = new double[d * d];
        for (int i = 0; i < m.Length; i++) m[i] = q[i];
        return DenseDouble.LogAbsDet(m, d);
    }

    /// <summary>
    /// Upper bound on a scoring block's scratch in floats (2^20 = 4 MiB) unless one row needs more: a row needs
    /// PathCount scores plus Σ_j D·N_j back-transformed values, so blocks hold fewer than <see cref="RowsPerBlock"/> rows
    /// when the network has many paths (at most 2^20, <see cref="DeepGmmOptions.MaxPaths"/>) or wide layers. Per-row
    /// memory is then at most 4 MiB + 4·Σ_j D·N_j bytes, the latter bounded by the file's own size (it stores D² floats
    /// per node), and per-row work is O(PathCount·D + Σ_j D²·N_j).
    /// </summary>
    internal const long MaxScoringScratchFloats = 1L << 20;

    /// <summary>Scratch floats one scored row needs.</summary>
    public long ScoringFloatsPerRow
    {
        get
        {
            long f = PathCount;
            for (int j = 0; j < LayerCount; j++) f += (long)D * Components[j];
            return f;
        }
    }

    /// <summary>Rows per scoring block: <see cref="RowsPerBlock"/>, or fewer so that the block's scratch stays under
    /// <see cref="MaxScoringScratchFloats"/> (scores do not depend on the block: GEMM rows are independent).</summary>
    public int ScoringBlockRows => (int)Math.Clamp(MaxScoringScratchFloats / ScoringFloatsPerRow, 1, RowsPerBlock);

    /// <summary>Scratch for scoring one block of rows against every path.</summary>
    internal sealed class ScoringWorkspace
    {
        public readonly float[][] Levels;
        public readonly float[] Scores;
        /// <summary>The block's rows in standardised space (rows × D).</summary>
        public readonly float[] X;
        public ScoringWorkspace(DeepGmmNetwork net, int rows)
        {
            X = new float[rows * net.D];
            Levels = new float[net.LayerCount][];
            for (int j = 0; j < net.LayerCount; j++) Levels[j] = new float[rows * net.D * net.Components[j]];
            Scores = new float[rows * net.PathCount];
            Exps = new float[net.PathCount];
        }

        /// <summary>One row's exp(score − max) (<see cref="RowOps.LogSumExp(ReadOnlySpan{float}, Span{float})"/>).</summary>
        public readonly float[] Exps;
    }

    /// <summary>
    /// scores[r·P + p] = log π_p + log N(x_r | path p) for every path, by a depth-first walk of the layers from the
    /// top: each node's back-transform of the whole block is one GEMM, shared by all paths below it.
    /// </summary>
    /// <param name="oneRowAsVector">With one row, compute each back-transform as Σ_r x_r Qᵀ[r, ·] by vector updates (no GEMM
    /// packing) — the scoring path of a PredictionEngine or a model loaded into ML.NET — with the GEMM kernel's arithmetic
    /// (fused multiply-add chain from zero), so a row scores the same bits alone or in a block. Only with AVX2/FMA.</param>
    public void ScoreAllPaths(ReadOnlySpan<float> x, int n, ScoringWorkspace ws, bool oneRowAsVector = false)
    {
        if (oneRowAsVector && n == 1 && VectorMath.IsSupported)
        {
            int top = LayerCount - 1, width = Components[top] * D;
            if (top == 0 && FusedLeaves) { ScoreLeavesFused(x, D, 1, 0, 0.0, ws); return; }
            BackTransformRows(top, x, 1, ws.Levels[top].AsSpan(0, width));
            VisitRow(top, ws.Levels[top].AsSpan(0, width), 0, 0.0, ws);
        }
        else Descend(LayerCount - 1, x, D, n, 0, 0.0, ws);
    }

    /// <summary>Every node of <paramref name="layer"/> applied to each of <paramref name="rows"/> inputs (D floats apart):
    /// output row r = [Q_0 u_r + e_0 | Q_1 u_r + e_1 | …], the GEMM kernel's arithmetic (a fused multiply-add chain over
    /// the input from zero, then + e) without its packing.</summary>
    private void BackTransformRows(int layer, ReadOnlySpan<float> inputs, int rows, Span<float> output)
    {
        int width = Components[layer] * D;
        VectorMath.RowsTimesMatrix(inputs, rows, D, D, WideQt[layer], width, width, output, width);
        RowOps.AddRowVector(output, rows, width, WideE[layer]);
    }

    /// <summary>
    /// The one-row walk (a PredictionEngine, a model loaded into ML.NET): <paramref name="outputs"/> holds the row
    /// back-transformed by every node of <paramref name="layer"/> (on the path prefix <paramref name="pathBase"/>). All
    /// those nodes' children are computed in one pass over the layer below's matrix (as many rows as the workspace holds
    /// at a time) instead of one pass per node: the same sums, read from memory once.
    /// </summary>
    private void VisitRow(int layer, ReadOnlySpan<float> outputs, int pathBase, double logDetSum, ScoringWorkspace ws)
    {
        int n = Components[layer];
        if (layer == 0) { ScoreLeaves(outputs, D * n, 1, pathBase, logDetSum, ws); return; }
        int below = layer - 1, width = Components[below] * D;
        if (below == 0 && FusedLeaves)
        {
            for (int i = 0; i < n; i++)
                ScoreLeavesFused(outputs.Slice(i * D, D), D, 1, pathBase + i * Stride[layer], logDetSum + LogDet[Node(layer, i)], ws);
            return;
        }
        int chunk = Math.Min(n, ws.Levels[below].Length / width);
        for (int i0 = 0; i0 < n; i0 += chunk)
        {
            int m = Math.Min(chunk, n - i0);
            var children = ws.Levels[below].AsSpan(0, m * width);
            BackTransformRows(below, outputs.Slice(i0 * D, m * D), m, children);
            for (int i = i0; i < i0 + m; i++)
                VisitRow(below, children.Slice((i - i0) * width, width), pathBase + i * Stride[layer], logDetSum + LogDet[Node(layer, i)], ws);
        }
    }

    private void Descend(int layer, ReadOnlySpan<float> input, int inputStride, int n, int pathBase, double logDetSum, ScoringWorkspace ws)
    {
        if (layer == 0 && FusedLeaves) { ScoreLeavesFused(input, inputStride, n, pathBase, logDetSum, ws); return; }
        int width = Components[layer] * D;
        var output = ws.Levels[layer].AsSpan(0, n * width);
        Gemm.Multiply(false, false, n, width, D, 1f, input, inputStride, WideQt[layer], width, 0f, output, width, allowParallel: false);
        RowOps.AddRowVector(output, n, width, WideE[layer]);
        if (layer == 0) { ScoreLeaves(output, width, n, pathBase, logDetSum, ws); return; }
        for (int i = 0; i < Components[layer]; i++)
            Descend(layer - 1, output[(i * D)..], width, n, pathBase + i * Stride[layer], logDetSum + LogDet[Node(layer, i)], ws);
    }

    /// <summary>Scores of the paths ending in each node of layer 0, from its back-transformed rows (<paramref name="width"/> apart).</summary>
    private void ScoreLeaves(ReadOnlySpan<float> output, int width, int n, int pathBase, double logDetSum, ScoringWorkspace ws)
    {
        for (int i = 0; i < Components[0]; i++)
        {
            int path = pathBase + i * Stride[0];
            double ld = logDetSum + LogDet[Node(0, i)];
            int pc = PathCount;
            float offset = (float)(PathLogPrior[path] + ld - D * HalfLog2Pi);
            for (int r = 0; r < n; r++)
            {
                var z = output.Slice(r * width + i * D, D);
                ws.Scores[r * pc + path] = offset - 0.5f * System.Numerics.Tensors.TensorPrimitives.Dot(z, z);
            }
        }
    }

    /// <summary>Log-density (standardised space) of each row of a block: log-sum-exp of the path scores in float64.</summary>
    public void LogDensityBlock(ReadOnlySpan<float> x, int n, Span<float> logDensity, ScoringWorkspace ws, bool oneRowAsVector = false)
    {
        ScoreAllPaths(x, n, ws, oneRowAsVector);
        for (int r = 0; r < n; r++) logDensity[r] = (float)RowOps.LogSumExp(ws.Scores.AsSpan(r * PathCount, PathCount), ws.Exps);
    }

    // ---- Per-row path evaluation (E-step heuristic) ----

    /// <summary>y[0..Dp) = Q·v + e for node <paramref name="node"/>; v and y are padded to Dp (padding stays zero).</summary>
    public void Apply(int node, ReadOnlySpan<float> v, Span<float> y)
    {
        var qt = QtPadded[node];
        int dp = Dp, d = D, w = System.Numerics.Vector<float>.Count;
        EPadded[node].AsSpan().CopyTo(y);
        ref float q0 = ref MemoryMarshal.GetArrayDataReference(qt);
        var yv = MemoryMarshal.Cast<float, System.Numerics.Vector<float>>(y[..dp]);
        int c0 = 0;
        // Four accumulators per pass keep the column block in registers while streaming the rows of Qᵀ.
        for (; c0 + 4 * w <= dp; c0 += 4 * w)
        {
            int vb = c0 / w;
            System.Numerics.Vector<float> a0 = yv[vb], a1 = yv[vb + 1], a2 = yv[vb + 2], a3 = yv[vb + 3];
            for (int r = 0; r < d; r++)
            {
                var s = new System.Numerics.Vector<float>(v[r]);
                ref float row = ref System.Runtime.CompilerServices.Unsafe.Add(ref q0, r * dp + c0);
                a0 += s * System.Runtime.CompilerServices.Unsafe.As<float, System.Numerics.Vector<float>>(ref row);
                a1 += s * System.Runtime.CompilerServices.Unsafe.As<float, System.Numerics.Vector<float>>(ref System.Runtime.CompilerServices.Unsafe.Add(ref row, w));
                a2 += s * System.Runtime.CompilerServices.Unsafe.As<float, System.Numerics.Vector<float>>(ref System.Runtime.CompilerServices.Unsafe.Add(ref row, 2 * w));
                a3 += s * System.Runtime.CompilerServices.Unsafe.As<float, System.Numerics.Vector<float>>(ref System.Runtime.CompilerServices.Unsafe.Add(ref row, 3 * w));
            }
            yv[vb] = a0; yv[vb + 1] = a1; yv[vb + 2] = a2; yv[vb + 3] = a3;
        }
        for (; c0 < dp; c0 += w)
        {
            int vb = c0 / w;
            var a = yv[vb];
            for (int r = 0; r < d; r++)
                a += new System.Numerics.Vector<float>(v[r]) * System.Runtime.CompilerServices.Unsafe.As<float, System.Numerics.Vector<float>>(
                    ref System.Runtime.CompilerServices.Unsafe.Add(ref q0, r * dp + c0));
            yv[vb] = a;
        }
    }

    /// <summary>
    /// Per-row scratch: levels[j] (j = 0..LayerCount) hold the back-transformed row after layer j (level LayerCount is x).
    /// </summary>
    internal sealed class RowWorkspace
    {
        public readonly float[][] Levels;
        public RowWorkspace(DeepGmmNetwork net)
        {
            Levels = new float[net.LayerCount + 1][];
            for (int j = 0; j <= net.LayerCount; j++) Levels[j] = new float[net.Dp];
        }
    }

    /// <summary>
    /// Score of <paramref name="digits"/> for the row in levels[LayerCount], recomputing levels from layer
    /// <paramref name="fromLayer"/> down (levels above must already belong to these digits).
    /// </summary>
    public double EvaluatePath(int[] digits, int fromLayer, RowWorkspace ws)
    {
        double ld = 0;
        int path = 0;
        for (int j = 0; j < LayerCount; j++)
        {
            int node = Node(j, digits[j]);
            ld += LogDet[node];
            path += digits[j] * Stride[j];
        }
        for (int j = fromLayer; j >= 0; j--) Apply(Node(j, digits[j]), ws.Levels[j + 1], ws.Levels[j]);
        var z = ws.Levels[0].AsSpan(0, D);
        double sq = System.Numerics.Tensors.TensorPrimitives.Dot(z, z);
        return PathLogPrior[path] + ld - 0.5 * sq - D * HalfLog2Pi;
    }

    /// <summary>
    /// One coordinate-ascent pass (paper §3.1): layer by layer from the top, pick the best component with the other
    /// layers fixed. Returns the score of the resulting path; levels are left consistent with <paramref name="digits"/>.
    /// </summary>
    public double CoordinatePass(int[] digits, RowWorkspace ws)
    {
        double score = double.NegativeInfinity;
        for (int j = LayerCount - 1; j >= 0; j--)
        {
            int best = digits[j];
            double bestScore = double.NegativeInfinity;
            for (int i = 0; i < Components[j]; i++)
            {
                digits[j] = i;
                double s = EvaluatePath(digits, j, ws);
                if (s > bestScore) { bestScore = s; best = i; }
            }
            digits[j] = best;
            score = EvaluatePath(digits, j, ws);
        }
        return score;
    }

    public int PathIndex(int[] digits)
    {
        int p = 0;
        for (int j = 0; j < LayerCount; j++) p += digits[j] * Stride[j];
        return p;
    }

    public void PathDigits(int path, int[] digits)
    {
        for (int j = 0; j < LayerCount; j++) digits[j] = Digit(path, j);
    }

    // ---- Generative direction ----

    /// <summary>Forward maps A = Q⁻¹ and b = −A·e per node (float64), for sampling and moments.</summary>
    public (double[][] A, double[][] B) ForwardMaps()
    {
        var a = new double[NodeCount][];
        var b = new double[NodeCount][];
        for (int n = 0; n < NodeCount; n++)
        {
            var q = Matrix<double>.Build.Dense(D, D, (r, c) => Q[n][r * D + c]);
            var inv = q.Inverse();
            var an = new double[D * D];
            for (int r = 0; r < D; r++) for (int c = 0; c < D; c++) an[r * D + c] = inv[r, c];
            var bn = new double[D];
            for (int r = 0; r < D; r++)
            {
                double s = 0;
                for (int c = 0; c < D; c++) s -= an[r * D + c] * E[n][c];
                bn[r] = s;
            }
            a[n] = an; b[n] = bn;
        }
        return (a, b);
    }
}
