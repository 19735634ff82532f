using System.Globalization;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Transforms;

/// <summary>Which rows' scores set the PredictedLabel threshold (<see cref="DensityEstimatorOptions.ThresholdRows"/>).</summary>
public enum DensityThresholdRows
{
    /// <summary>Rows the model did not train on: the validation view given to <c>Fit(train, validation)</c>, else the rows
    /// the model held out of the training data for early stopping (its own ValidationFraction and Seed: the same rows). A
    /// density model scores its training rows better than new rows of the same distribution, so a threshold set on them
    /// flags far more than Contamination of new normal rows; one set on held-out rows flags about Contamination of them.
    /// When those rows are fewer than max(20, ⌈1 / Contamination⌉) (too few for any row to lie above the empirical
    /// quantile) but at least 10, the threshold is the normal prediction bound of their scores, mean + t · √(1 + 1/n) · sd
    /// (Student's t quantile for n − 1 degrees of freedom), and never below their largest score. Below 10 (or always with Contamination 0) the training rows set it, as with
    /// <see cref="Training"/>, and Fit logs a warning.</summary>
    HeldOut = 0,

    /// <summary>Every training row given to Fit (the held-out fraction included): the rule before held-out rows were
    /// used. About Contamination of the training rows are flagged, and more of new normal rows, the more the model
    /// overfits its training rows.</summary>
    Training = 1,
}

/// <summary>The PredictedLabel threshold of a row model's Fit: the (1 − contamination) quantile
/// (<see cref="Scoring.Threshold"/>, or with too few rows for it <see cref="TailThreshold"/>) of the scores of the rows
/// <see cref="DensityThresholdRows"/> chooses, in memory or streamed. The held-out rows are the engine's own (<see cref="TrainingLoop.HeldOutRows"/>,
/// <see cref="StreamingTrainingData.HeldOutPositions"/>): no second definition of the split.</summary>
internal static class AnomalyThreshold
{
    /// <summary>Fewest held-out rows whose empirical quantile sets the threshold, whatever the contamination: 20. Fewer
    /// rows (or fewer than ⌈1 / contamination⌉, with which no row lies above the quantile) set it by the tail estimate
    /// (at least <see cref="MinimumTailRows"/> of them) or, fewer still, from the training rows.</summary>
    internal const int MinimumHeldOutRows = 20;

    /// <summary>The rows a held-out threshold needs at <paramref name="contamination"/>: the fewest n ≥
    /// <see cref="MinimumHeldOutRows"/> with at least one of n rows allowed above the quantile
    /// (<see cref="Scoring.RowsAllowedAbove"/>); <see cref="int.MaxValue"/> (never) for contamination 0.</summary>
    internal static int RowsNeeded(double contamination)
    {
        if (!(contamination > 0)) return int.MaxValue;
        double inverse = Math.Ceiling(1 / contamination);
        if (inverse >= int.MaxValue - 1) return int.MaxValue;
        int n = Math.Max(MinimumHeldOutRows, (int)inverse);
        while (n > MinimumHeldOutRows && Scoring.RowsAllowedAbove(contamination, n - 1) >= 1) n--;
        while (Scoring.RowsAllowedAbove(contamination, n) < 1) n++;
        return n;
    }

    /// <summary>The held-out split the engine makes of the training rows when no validation data is given: each family's
    /// own ValidationFraction and Seed (a family without one holds out none).</summary>
    internal static (double Fraction, ulong Seed) Split(object modelOptions) => modelOptions switch
    {
        GradientTrainingOptions g => (g.ValidationFraction, g.Seed),
        DeepGmmOptions g => (g.ValidationFraction, g.Seed),
        _ => (0, 0),
    };

    /// <summary>The set of units (rows, sequences, frames) whose scores set a threshold.</summary>
    internal enum ThresholdSet { Training, Validation, HeldOut }

    /// <summary>Fewest held-out (or validation) units whose scores set the threshold by the tail estimate
    /// (<see cref="TailThreshold"/>) when they are fewer than the empirical quantile needs: 10. A new user's tables of
    /// 100–1,000 rows hold out 10–100 at the default ValidationFraction 0.1, fewer than the 100 the (1 − 0.01) quantile
    /// needs, and the training rows' threshold flagged 5–51 % of new normal rows. Ten scores give a mean and standard
    /// deviation good to about a quarter of a standard deviation, and their maximum alone flags about 1/11 of new normal
    /// rows; below ten the estimate is noise, and the training rows (with a warning) stay the fallback.</summary>
    internal const int MinimumTailRows = 10;

    /// <summary>How a Fit sets a threshold: from which <see cref="Set"/>, by the empirical quantile or (<see cref="Tail"/>)
    /// the tail estimate, its description for the log and ddml ("180 held-out rows"), and when the training units set it
    /// though the user asked for held-out ones, what to warn (<see cref="Fallback"/>).</summary>
    internal sealed record ThresholdPlan(ThresholdSet Set, bool Tail, string Description, ThresholdFallback? Fallback)
    {
        /// <summary>The threshold of the scores of <see cref="Set"/>'s units by this plan's rule.</summary>
        public float Threshold(float[] scores, double contamination)
            => Tail ? TailThreshold(scores, contamination) : Scoring.Threshold(scores, contamination);
    }

    /// <summary>The training units set a threshold though <see cref="DensityThresholdRows.HeldOut"/> asked for others:
    /// only <paramref name="Kept"/> units were held out (or given for validation), fewer than <see cref="MinimumTailRows"/>.</summary>
    internal sealed record ThresholdFallback(long Training, long Kept, string Kind, string Unit, double Contamination, int Needed)
    {
        private string Units(long n) => FormattableString.Invariant($"{n} {Unit}{(n == 1 ? "" : "s")}");

        private string Why => string.Create(CultureInfo.InvariantCulture,
            $"only {Units(Kept)} {(Kept == 1 ? "was" : "were")} {(Kind == "validation" ? "given for validation" : "held out")}");

        // RNN-RNADE's first-frame thresholds come from windows: say which thresholds.
        private string What(string threshold) => Unit == "window" ? $"first frames' {threshold}s were" : $"{threshold} was";

        /// <summary>The ML.NET log's warning, after the estimator's name.</summary>
        public string Message(string name) => string.Create(CultureInfo.InvariantCulture,
            $"{name}: the {What("PredictedLabel threshold")} set on the {Units(Training)} of the training data because {Why} (a threshold needs at least {MinimumTailRows}); expect more than {Contamination} of new normal {Unit}s to be flagged (the model scores its training {Unit}s better than new ones); pass a validation view, Fit(trainData, validationData), with at least {MinimumTailRows} {Unit}s ({Needed} for the empirical quantile), or raise ValidationFraction.");

        /// <summary>ddml's warning (stderr), with its options.</summary>
        public string CliMessage() => string.Create(CultureInfo.InvariantCulture,
            $"ddml: warning: the {What("anomaly threshold")} set on the {Units(Training)} of the training data because {Why} (a threshold needs at least {MinimumTailRows}); expect more than {Contamination} of new normal {Unit}s to be flagged (the model scores its training {Unit}s better than new ones); pass --validation FILE with at least {MinimumTailRows} {Unit}s ({Needed} for the empirical quantile), or raise --param ValidationFraction.");
    }

    /// <summary>The one rule of every Fit: which set of units sets the threshold, by which estimate, and its description
    /// for the log ("180 held-out rows"): the training units with <see cref="DensityThresholdRows.Training"/>; else the
    /// validation units (<paramref name="validation"/>: their count when Fit was given a validation view), else the
    /// held-out ones: their empirical quantile when there are at least <see cref="RowsNeeded"/> of them (or
    /// <paramref name="needed"/>), the tail estimate when there are at least <see cref="MinimumTailRows"/>; else the
    /// training units again, with a warning (none at contamination 0, whose threshold is the largest training score).</summary>
    /// <param name="unit">What is counted, singular: "row", "sequence", "frame".</param>
    /// <param name="needed">The fewest units the empirical quantile needs, when more than <see cref="RowsNeeded"/>
    /// (RNN-RNADE's first-frame thresholds need 100 windows); null: <see cref="RowsNeeded"/>.</param>
    internal static ThresholdPlan Choose(DensityThresholdRows choice, double contamination, long training,
        long? validation, long heldOut, string unit = "row", int? needed = null)
    {
        if (choice == DensityThresholdRows.Training) return new(ThresholdSet.Training, false, Count(training, "training", unit), null);
        int quantile = needed ?? RowsNeeded(contamination);
        var (set, n, kind) = validation is long v ? (ThresholdSet.Validation, v, "validation") : (ThresholdSet.HeldOut, heldOut, "held-out");
        if (n >= quantile) return new(set, false, Count(n, kind, unit), null);
        if (contamination > 0 && n >= MinimumTailRows)
            return new(set, true, Count(n, kind, unit) + string.Create(CultureInfo.InvariantCulture,
                $" by a normal approximation of their scores (mean + {TailFactor(contamination, n):F3} sd, at least their largest; the empirical quantile needs {quantile})"), null);
        return new(ThresholdSet.Training, false, TooFew(training, n, kind, quantile, contamination, unit),
            contamination > 0 ? new ThresholdFallback(training, n, kind, unit, contamination, quantile) : null);
    }

    /// <summary>
    /// The multiple of the sample standard deviation that, added to the mean of <paramref name="n"/> scores, bounds a new
    /// score from the same normal distribution with probability 1 − <paramref name="contamination"/>: Student's t quantile
    /// with n − 1 degrees of freedom times √(1 + 1/n), the normal prediction bound. The plain normal quantile z (2.326 at
    /// 0.01) ignores that the mean and sd are themselves estimated from few scores and sets the bound too low for them:
    /// 2.959 is the exact factor for 10 scores, 2.480 for 34.
    /// </summary>
    internal static double TailFactor(double contamination, long n)
        => MathNet.Numerics.Distributions.StudentT.InvCDF(0, 1, n - 1, 1 - contamination) * Math.Sqrt(1 + 1.0 / n);

    /// <summary>
    /// The tail estimate of the (1 − contamination) quantile of the scores of <paramref name="scores"/>' distribution,
    /// for too few scores for the empirical quantile (which is then their maximum and flags about 1/(n + 1) of new
    /// rows, not the contamination): mean + <see cref="TailFactor"/> · sd (the sample standard deviation), the normal
    /// prediction bound, but never below the largest score, which guards a heavier tail than the normal's (negative
    /// log-densities are skewed right).
    /// </summary>
    internal static float TailThreshold(float[] scores, double contamination)
    {
        if (scores.Length == 0) return float.MaxValue;
        double sum = 0, max = double.NegativeInfinity;
        foreach (float s in scores) { sum += s; max = Math.Max(max, s); }
        double mean = sum / scores.Length, squares = 0;
        foreach (float s in scores) squares += (s - mean) * (s - mean);
        double sd = scores.Length > 1 ? Math.Sqrt(squares / (scores.Length - 1)) : 0;
        return (float)Math.Max(scores.Length > 1 ? mean + TailFactor(contamination, scores.Length) * sd : mean, max);
    }

    /// <summary>Throws when <paramref name="choice"/> is not a <see cref="DensityThresholdRows"/> value (every estimator's Validate).</summary>
    internal static void Check(DensityThresholdRows choice)
    {
        if (!Enum.IsDefined(choice))
            throw new ArgumentOutOfRangeException("ThresholdRows", choice, "ThresholdRows must be HeldOut or Training.");
    }

    /// <summary>The rows whose scores set an in-memory Fit's threshold and their description for the log ("180 held-out
    /// rows"): the validation rows, the engine's held-out rows of <paramref name="data"/>, or all of <paramref name="data"/>.</summary>
    internal static (RowMatrix Rows, ThresholdPlan Plan) InMemoryRows(DensityThresholdRows choice, double contamination, RowMatrix data,
        RowMatrix? validation, (double Fraction, ulong Seed) split, CancellationToken cancellationToken)
    {
        // The split's shuffle only when its rows may be used.
        var heldOut = choice == DensityThresholdRows.HeldOut && validation is null
            ? TrainingLoop.HeldOutRows(data.Rows, split.Fraction, split.Seed) : Array.Empty<int>();
        var plan = Choose(choice, contamination, data.Rows, validation?.Rows, heldOut.Length);
        return plan.Set switch
        {
            ThresholdSet.Validation => (validation!, plan),
            ThresholdSet.HeldOut => (data.SelectRows(heldOut, cancellationToken), plan),
            _ => (data, plan),
        };
    }

    /// <summary>A streamed Fit's threshold, the mean log-density of the rows that set it and their description: the
    /// validation stream's rows (one pass; with too few, a second pass over the training rows), else one pass over the
    /// training stream keeping the scores of the rows the engine's hashed split held out apart from all of them.</summary>
    internal static (float Threshold, double MeanLogDensity, ThresholdPlan Plan) Streamed(DensityModel model, IRowStream data, IRowStream? validation,
        DensityThresholdRows choice, double contamination, (double Fraction, ulong Seed) split, CancellationToken cancellationToken)
    {
        if (choice == DensityThresholdRows.Training)
        {
            var training = Score(model, data, null, cancellationToken).All;
            return Result(training, Choose(choice, contamination, training.Seen, null, 0));
        }
        if (validation is not null)
        {
            var valid = Score(model, validation, null, cancellationToken).All;
            // The training count only describes a fallback: the plan is chosen again with it when the training rows are used.
            var plan = Choose(choice, contamination, 0, valid.Seen, 0);
            if (plan.Set == ThresholdSet.Validation) return Result(valid, plan);
            var all = Score(model, data, null, cancellationToken).All;
            return Result(all, Choose(choice, contamination, all.Seen, valid.Seen, 0));
        }
        var (rows, heldOut) = Score(model, data, StreamingTrainingData.HeldOutPositions(split.Fraction, split.Seed), cancellationToken);
        var chosen = Choose(choice, contamination, rows.Seen, null, heldOut!.Seen);
        return Result(chosen.Set == ThresholdSet.HeldOut ? heldOut : rows, chosen);

        (float, double, ThresholdPlan) Result(ScoreSample s, ThresholdPlan p) => (p.Threshold(s.Kept(), contamination), s.Mean, p);
    }

    /// <summary>"180 held-out rows", "1 training sequence".</summary>
    internal static string Count(long n, string kind, string unit) => FormattableString.Invariant($"{n} {kind} {unit}{(n == 1 ? "" : "s")}");

    private static string TooFew(long training, long heldOut, string kind, int needed, double contamination, string unit = "row")
        => Count(training, "training", unit) + (needed == int.MaxValue ? " (contamination 0: the largest training score)"
            : string.Create(CultureInfo.InvariantCulture,
                $" ({Count(heldOut, kind, unit)}, fewer than the {MinimumTailRows} a {kind} threshold needs)"));

    /// <summary>Scores kept for a streamed threshold: 2^20 (4 MiB); beyond, a seeded uniform sample of them.</summary>
    internal const int MaxThresholdScores = 1 << 20;

    /// <summary>One scoring pass over <paramref name="rows"/>: the scores of all of them and, with
    /// <paramref name="heldOut"/>, of the rows at the pass positions it selects (each exact up to
    /// <see cref="MaxThresholdScores"/> rows and a seeded reservoir sample of that many beyond: the quantile's standard
    /// error is then below 0.1 percentile).</summary>
    private static (ScoreSample All, ScoreSample? HeldOut) Score(DensityModel model, IRowStream rows, Func<long, bool>? heldOut,
        CancellationToken cancellationToken)
    {
        var all = new ScoreSample(rows.Count, 0x7E5E0);
        var held = heldOut is null ? null : new ScoreSample(null, 0x7E5E1);
        // Blocks of at most 2^20 floats, as every pass (RowStream.RowsPerBlock): 16,384 rows whatever their width took 51 MB
        // for rows of 784 columns and overflowed at 2^17 columns. A row's score does not depend on its block.
        int block = RowStream.RowsPerBlock(rows.Width);
        var values = new float[block * rows.Width];
        var logDensity = new float[block];
        long position = 0;
        using (var cursor = rows.Open())
        {
            for (int n; (n = cursor.Read(values)) > 0;)
            {
                cancellationToken.ThrowIfCancellationRequested();
                model.LogDensity(values.AsSpan(0, n * rows.Width), logDensity.AsSpan(0, n));
                for (int i = 0; i < n; i++, position++)
                {
                    all.Add(logDensity[i]);
                    if (heldOut is not null && heldOut(position)) held!.Add(logDensity[i]);
                }
            }
        }
        cancellationToken.ThrowIfCancellationRequested();
        return (all, held);
    }

    /// <summary>The scores of a pass (a seeded reservoir beyond <see cref="MaxThresholdScores"/>) and their log-densities' mean.</summary>
    private sealed class ScoreSample(long? count, ulong seed)
    {
        private readonly List<float> _kept = new((int)Math.Max(1, Math.Min(MaxThresholdScores, count ?? 1024)));
        private readonly RandomStream _random = new(seed);
        private double _sum;
        public long Seen { get; private set; }
        public double Mean => Seen == 0 ? double.NaN : _sum / Seen;

        public void Add(float logDensity)
        {
            _sum += logDensity;
            long slot = Seen < MaxThresholdScores ? Seen : (long)(_random.NextUInt64() % (ulong)(Seen + 1));
            if (slot == _kept.Count) _kept.Add(Scoring.ScoreFromLogDensity(logDensity));
            else if (slot < MaxThresholdScores) _kept[(int)slot] = Scoring.ScoreFromLogDensity(logDensity);
            Seen++;
        }

        /// <summary>The kept scores, in the order seen (exact for up to <see cref="MaxThresholdScores"/> rows).</summary>
        public float[] Kept() => _kept.ToArray();
    }
}
