using System.Numerics.Tensors;
using MathNet.Numerics.LinearAlgebra;
using MathNet.Numerics.Optimization;

namespace Microsoft.ML.DeepDensity.Models.DeepGmm;

/// <summary>
/// The M-step objective of one node (paper eqs. 9–14, with biases), built from sufficient statistics only.
/// </summary>
/// <remarks>
/// The node's parameters are W = [Q | e] (D×(D+1)), mapping its input y to Q·y + e. For the rows through the node
/// whose path below it is b, the layers below fold into z = R_b·(Q·y + e) + s_b. With ũ = [y; 1],
/// Γ_b = Σ w ũũᵀ / W_node (the per-path second moments; Σ_b Γ_b[D,D] = 1), Ω_b = R_bᵀR_b, t_b = R_bᵀs_b and
/// c_b = s_bᵀs_b, the node's share of the average log-likelihood (up to terms that do not involve W) is
/// <code>f(W) = log|det Q| − ½ Σ_b [ tr(Ω_b W Γ_b Wᵀ) + 2 t_bᵀ W Γ_b[:,D] + c_b Γ_b[D,D] ]</code>
/// (eq. 11) with gradient <c>[Q⁻ᵀ | 0] − Σ_b (Ω_b W Γ_b + t_b Γ_b[:,D]ᵀ)</c> (eq. 12). The Kronecker form (eqs. 13–14)
/// precomputes K = Σ_b Ω_b ⊗ Γ_b so that the quadratic term is vec(W)ᵀ K vec(W) (row-major vec) and its gradient K·vec(W).
/// The ridge adds diag(λ)·Γ_b[D,D] to the input block of every Γ_b: the node sees its input blurred by independent noise
/// of variances λ, which keeps f bounded above and every Q well-conditioned.
/// <para>
/// With a shrinkage κ &gt; 0 the M-step is MAP under an isotropic Gaussian prior W ~ N([I | 0], κ⁻¹) on every entry:
/// f gains −κ/(2·W_node)·‖W − [I | 0]‖²_F (the prior's share per row of the node) and the gradient −κ/W_node·(W − [I | 0]),
/// identically in both forms. Its pull fades as the node's data weight W_node grows; as κ → ∞ the node is the identity map.
/// </para>
/// </remarks>
internal sealed class NodeObjective
{
    public readonly int D;
    private readonly int _m;
    private readonly double[][] _omega;
    private readonly double[][] _gamma;
    private readonly double[] _linear;
    private readonly double _constant;
    private readonly double[]? _kron;
    /// <summary>Prior precision per row of the node's weight, κ / W_node (0 = maximum likelihood).</summary>
    private readonly double _shrinkPerRow;

    /// <param name="omega">Per folded path below: Ω_b (D×D).</param>
    /// <param name="t">Per folded path below: t_b = R_bᵀ s_b.</param>
    /// <param name="c">Per folded path below: c_b = s_bᵀ s_b.</param>
    /// <param name="secondMoments">Per folded path below: Σ w ũũᵀ ((D+1)², unnormalised; last diagonal entry = weight).</param>
    public NodeObjective(int d, IReadOnlyList<double[]> omega, IReadOnlyList<double[]> t, IReadOnlyList<double> c,
        IReadOnlyList<double[]> secondMoments, double ridge, bool kronecker, double shrinkage = 0)
        : this(d, omega, t, c, secondMoments, Enumerable.Repeat(ridge, d).ToArray(), kronecker, shrinkage) { }

    /// <param name="ridge">Per input dimension: the variance added to the node's input second moments.</param>
    /// <param name="shrinkage">Prior precision κ ≥ 0 of W around [I | 0] (in units of rows of data weight; 0 = none).</param>
    public NodeObjective(int d, IReadOnlyList<double[]> omega, IReadOnlyList<double[]> t, IReadOnlyList<double> c,
        IReadOnlyList<double[]> secondMoments, double[] ridge, bool kronecker, double shrinkage = 0)
    {
        if (!(shrinkage >= 0) || !double.IsFinite(shrinkage)) throw new ArgumentOutOfRangeException(nameof(shrinkage), shrinkage, "must be non-negative and finite");
        D = d; _m = d + 1;
        int m = _m;
        double total = 0;
        foreach (var s in secondMoments) total += s[m * m - 1];
        if (!(total > 0)) throw new ArgumentException("The node has no weight.");
        _shrinkPerRow = shrinkage / total;
        _omega = omega.ToArray();
        _gamma = new double[secondMoments.Count][];
        _linear = new double[d * m];
        for (int b = 0; b < secondMoments.Count; b++)
        {
            var g = new double[m * m];
            TensorPrimitives.Multiply(secondMoments[b], 1.0 / total, g);
            double share = g[m * m - 1];
            for (int a = 0; a < d; a++) g[a * m + a] += ridge[a] * share;
            _gamma[b] = g;
            // Linear term Σ_b t_b g_bᵀ with g_b = last column of Γ_b.
            for (int a = 0; a < d; a++)
                for (int e = 0; e < m; e++) _linear[a * m + e] += t[b][a] * g[e * m + d];
            _constant += 0.5 * c[b] * share;
        }
        if (kronecker)
        {
            int dm = d * m;
            _kron = new double[(long)dm * dm];
            for (int b = 0; b < _gamma.Length; b++)
            {
                var om = _omega[b]; var g = _gamma[b];
                for (int a = 0; a < d; a++)
                    for (int cc = 0; cc < d; cc++)
                    {
                        double o = om[a * d + cc];
                        if (o == 0) continue;
                        for (int e = 0; e < m; e++)
                        {
                            var row = _kron.AsSpan((a * m + e) * dm + cc * m, m);
                            TensorPrimitives.MultiplyAdd(g.AsSpan(e * m, m), o, row, row);
                        }
                    }
            }
        }
    }

    /// <summary>
    /// The MAP prior toward the identity map for W = [Q | e] (D×(D+1), row-major) with precision
    /// <paramref name="precisionPerRow"/> = κ / (node weight): subtracts its gradient κ/N·(W − [I | 0]) from
    /// <paramref name="gradient"/> and returns the penalty κ/(2N)·‖W − [I | 0]‖² (0 when the precision is 0). Shared by the
    /// L-BFGS objective and the minibatch M-step.
    /// </summary>
    internal static double AddIdentityPrior(ReadOnlySpan<double> w, Span<double> gradient, int d, double precisionPerRow)
    {
        if (!(precisionPerRow > 0)) return 0;
        int m = d + 1;
        double sumSq = 0;
        for (int r = 0; r < d; r++)
            for (int c = 0; c < m; c++)
            {
                double dev = w[r * m + c] - (r == c ? 1.0 : 0.0);
                sumSq += dev * dev;
                gradient[r * m + c] -= precisionPerRow * dev;
            }
        return 0.5 * precisionPerRow * sumSq;
    }

    /// <summary>Number of parameters D(D+1).</summary>
    public int Length => D * _m;

    /// <summary>Whether the prior toward [I | 0] is active.</summary>
    public bool IsPenalized => _shrinkPerRow > 0;

    /// <summary>Whether the Kronecker form (eqs. 13–14) is used.</summary>
    public bool UsesKronecker => _kron is not null;

    /// <summary>
    /// f(W) (to maximise) and its gradient into <paramref name="gradient"/>. Returns −∞ (gradient of the quadratic part only)
    /// when Q is singular.
    /// </summary>
    public double Value(ReadOnlySpan<double> w, Span<double> gradient)
    {
        int d = D, m = _m;
        gradient.Clear();
        double quad = 0;
        if (_kron is not null)
        {
            int dm = d * m;
            for (int r = 0; r < dm; r++)
            {
                double kw = TensorPrimitives.Dot(_kron.AsSpan(r * dm, dm), w);
                gradient[r] = -kw;
                quad += w[r] * kw;
            }
        }
        else
        {
            var t = new double[d * m];
            var u = new double[d * m];
            for (int b = 0; b < _omega.Length; b++)
            {
                Numerics.DenseDouble.Multiply(_omega[b], w, t, d, d, m);
                Numerics.DenseDouble.Multiply(t, _gamma[b], u, d, m, m);
                quad += TensorPrimitives.Dot(u, w);
                TensorPrimitives.Subtract(gradient, u, gradient);
            }
        }
        double linear = TensorPrimitives.Dot(_linear, w);
        TensorPrimitives.Subtract(gradient, _linear, gradient);
        double penalty = AddIdentityPrior(w, gradient, d, _shrinkPerRow);

        var q = new double[d * d];
        for (int r = 0; r < d; r++) w.Slice(r * m, d).CopyTo(q.AsSpan(r * d, d));
        var inv = new double[d * d];
        double logDet = Numerics.DenseDouble.InvertLogAbsDet(q, inv, d);
        if (!double.IsFinite(logDet)) return double.NegativeInfinity;
        for (int r = 0; r < d; r++) for (int c = 0; c < d; c++) gradient[r * m + c] += inv[c * d + r];
        return logDet - 0.5 * quad - linear - _constant - penalty;
    }

    /// <summary>
    /// Maximises f by L-BFGS (MathNet) from <paramref name="start"/> for at most <paramref name="maxIterations"/>
    /// iterations. Returns the best finite point evaluated (never worse than the start) and its value.
    /// </summary>
    public (double[] W, double Value, int Evaluations) Maximize(double[] start, int maxIterations, CancellationToken ct)
    {
        var best = (double[])start.Clone();
        double bestValue = double.NegativeInfinity;
        int evaluations = 0;
        var grad = new double[Length];
        Func<Vector<double>, (double, Vector<double>)> evaluate = v =>
        {
            ct.ThrowIfCancellationRequested();
            var x = v.AsArray() ?? v.ToArray();
            double f = Value(x, grad);
            evaluations++;
            bool finite = double.IsFinite(f);
            if (finite) foreach (var gv in grad) if (!double.IsFinite(gv)) { finite = false; break; }
            if (finite && f > bestValue) { bestValue = f; x.CopyTo(best, 0); }
            // L-BFGS minimises −f. A singular Q gets a huge finite value so the line search backs off.
            var g = Vector<double>.Build.Dense(Length);
            for (int i = 0; i < Length; i++) g[i] = double.IsFinite(grad[i]) ? -grad[i] : 0;
            return (finite ? -f : 1e100, g);
        };
        var objective = ObjectiveFunction.Gradient(evaluate);
        var solver = new LimitedMemoryBfgsMinimizer(1e-5, 1e-12, 1e-12, 7, maxIterations);
        try
        {
            solver.FindMinimum(objective, Vector<double>.Build.DenseOfArray((double[])start.Clone()));
        }
        catch (OperationCanceledException) { throw; }
        catch (Exception e) when (e is MaximumIterationsException or OptimizationException or ArgumentException or InvalidOperationException)
        {
            // Iteration cap or a failed line search: the best point seen so far is still an improvement.
        }
        if (!double.IsFinite(bestValue)) return (start, Value(start, grad), evaluations);
        return (best, bestValue, evaluations);
    }

    /// <summary>
    /// The closed-form maximiser when no layer lies below the node (R = I, s = 0): Q = L⁻¹ for the ridge-regularised
    /// covariance Σ + λI = LLᵀ of its inputs, e = −Q·mean. This is the GMM M-step; every Q with QΣQᵀ = I is optimal.
    /// </summary>
    public static double[] ClosedForm(int d, ReadOnlySpan<double> secondMoment, double ridge)
        => ClosedForm(d, secondMoment, Enumerable.Repeat(ridge, d).ToArray());

    /// <summary>Closed form with a per-dimension ridge (variance floor).</summary>
    public static double[] ClosedForm(int d, ReadOnlySpan<double> secondMoment, double[] ridge)
    {
        int m = d + 1;
        double total = secondMoment[m * m - 1];
        var mean = new double[d];
        for (int a = 0; a < d; a++) mean[a] = secondMoment[a * m + d] / total;
        var cov = Matrix<double>.Build.Dense(d, d);
        for (int a = 0; a < d; a++)
            for (int c = 0; c < d; c++)
                cov[a, c] = secondMoment[a * m + c] / total - mean[a] * mean[c] + (a == c ? ridge[a] : 0);
        // Symmetrise (float accumulation leaves tiny asymmetries) and enlarge the ridge until Cholesky succeeds.
        cov = (cov + cov.Transpose()) * 0.5;
        double extra = 0;
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                var factor = (extra > 0 ? cov + Matrix<double>.Build.DenseIdentity(d) * extra : cov).Cholesky().Factor;
                var l = new double[d * d];
                for (int a = 0; a < d; a++) for (int c = 0; c <= a; c++) l[a * d + c] = factor[a, c];
                // L⁻¹ by forward substitution: MathNet's general Inverse() (LU and d solves) cost more than the E-step on small data.
                var lInv = new double[d * d];
                if (!Numerics.DenseDouble.InvertLowerTriangular(l, lInv, d)) throw new ArgumentException("Singular Cholesky factor.");
                var w = new double[d * m];
                for (int a = 0; a < d; a++)
                {
                    double s = 0;
                    for (int c = 0; c < d; c++) { w[a * m + c] = lInv[a * d + c]; s += lInv[a * d + c] * mean[c]; }
                    w[a * m + d] = -s;
                }
                bool finite = true;
                foreach (var v in w) if (!double.IsFinite(v)) { finite = false; break; }
                if (finite) return w;
            }
            catch (ArgumentException) { }
            if (attempt > 30) throw new InvalidOperationException("Covariance could not be regularised.");
            extra = extra == 0 ? Math.Max(ridge.Max(), 1e-10) : extra * 10;
        }
    }
}
