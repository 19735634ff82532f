using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.TestSupport;

/// <summary>Central finite-difference check of an <see cref="IGradientObjective"/>'s analytic gradient.</summary>
public static class GradientCheck
{
    /// <summary>Rounding allowed in each evaluation of the objective, in ulps of its magnitude.</summary>
    public const double RoundingUlps = 4;

    /// <summary>
    /// For each parameter tensor, checks up to <paramref name="entriesPerTensor"/> entries (chosen by seed): the analytic
    /// gradient of −mean objective against (f(θ−h) − f(θ+h)) / (2h·count). The noise stream is re-created identically for
    /// every evaluation, so stochastic objectives are checked with their noise held fixed.
    /// Returns the worst relative error per tensor; throws with details if any entry fails.
    /// </summary>
    /// <remarks>
    /// The objective is a float32 sum, so f(θ ± h) each carry a few units in the last place of |f| of rounding, which the
    /// difference divides by 2h·count: an entry's tolerance also allows <see cref="RoundingUlps"/> ulps of |f| so divided
    /// (negligible for |f| near 100; it matters where a random network's |f| is near 1000, whose ulp is 1.2e-4).
    /// </remarks>
    public static Dictionary<string, double> Check(IGradientObjective objective, float[] rows, int count,
        ulong noiseSeed = 7, int entriesPerTensor = 12, float step = 1e-2f, double relativeTolerance = 3e-2, double absoluteTolerance = 2e-3)
    {
        var ps = objective.Parameters;
        objective.ComputeGradient(rows, count, new RandomStream(noiseSeed));
        var analytic = ps.Items.Select(p => (float[])p.Gradient.Clone()).ToArray();
        var pick = new RandomStream(99);
        var worst = new Dictionary<string, double>();
        var failures = new List<string>();
        for (int t = 0; t < ps.Items.Count; t++)
        {
            var p = ps.Items[t];
            double worstRel = 0;
            int n = Math.Min(entriesPerTensor, p.Value.Length);
            var chosen = new HashSet<int>();
            while (chosen.Count < n) chosen.Add(pick.NextInt(p.Value.Length));
            foreach (int i in chosen)
            {
                float orig = p.Value[i];
                p.Value[i] = orig + step;
                double fPlus = objective.Evaluate(rows, count, new RandomStream(noiseSeed));
                p.Value[i] = orig - step;
                double fMinus = objective.Evaluate(rows, count, new RandomStream(noiseSeed));
                p.Value[i] = orig;
                double numeric = -(fPlus - fMinus) / (2.0 * step * count);
                double a = analytic[t][i];
                double err = Math.Abs(numeric - a);
                float magnitude = (float)Math.Max(Math.Abs(fPlus), Math.Abs(fMinus));
                double rounding = RoundingUlps * (MathF.BitIncrement(magnitude) - magnitude) / (2.0 * step * count);
                double rel = err / Math.Max(Math.Max(Math.Abs(numeric), Math.Abs(a)), 1e-12);
                if (err > absoluteTolerance + rounding + relativeTolerance * Math.Max(Math.Abs(numeric), Math.Abs(a)))
                    failures.Add($"{p.Name}[{i}]: analytic {a:G6}, numeric {numeric:G6}");
                if (err > absoluteTolerance) worstRel = Math.Max(worstRel, rel);
            }
            worst[p.Name] = worstRel;
        }
        if (failures.Count > 0) throw new Xunit.Sdk.XunitException("Gradient check failed:\n" + string.Join("\n", failures));
        return worst;
    }
}
