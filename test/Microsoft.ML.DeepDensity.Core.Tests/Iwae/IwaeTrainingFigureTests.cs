using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Tests.Iwae;

/// <summary>
/// The training objective's figure (what training reports per epoch as the training and validation bound, and what
/// early stopping compares) is the k-sample bound L_k = E log (1/k) Σ w_i itself: a figure that dropped the log k
/// (log Σ w_i) has the same gradient, so no gradient check sees it, but it reports a "bound" log k above the truth.
/// </summary>
public class IwaeTrainingFigureTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(8)]
    public void TheObjectivesFigureIsTheKSampleBoundOfTheScoringPath(int k)
    {
        var model = IwaeModelTests.TinyModel();
        var rows = IwaeModelTests.AllPatterns();
        double truth = IwaeModelTests.QuadratureLogP(model, rows, out _).Average();
        var objective = new IwaeObjective(model.Network, k, rowsPerBlock: 10);
        const int repeats = 300;
        var training = new double[repeats];
        var scoring = new double[repeats];
        for (int t = 0; t < repeats; t++)
        {
            training[t] = objective.Evaluate(rows.AsSpan(), rows.Rows, new RandomStream(9000 + (ulong)t)) / rows.Rows;
            scoring[t] = model.AverageBound(rows, k, 7000 + (ulong)t);
        }
        static (double Mean, double Se) Stats(double[] v)
        {
            double mean = v.Average();
            return (mean, Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Length - 1) / v.Length));
        }
        var (mt, st) = Stats(training);
        var (ms, ss) = Stats(scoring);
        // Two independent unbiased estimates of the same L_k, and L_k ≤ log p(x).
        Assert.True(Math.Abs(mt - ms) < 5 * Math.Sqrt(st * st + ss * ss) + 1e-4,
            $"k = {k}: training figure {mt:F4} ± {st:F4}, scoring path's bound {ms:F4} ± {ss:F4} (log p = {truth:F4})");
        Assert.True(mt < truth + 5 * st, $"k = {k}: training figure {mt:F4} ± {st:F4} exceeds log p(x) = {truth:F4}");
    }
}
