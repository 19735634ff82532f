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
    /// When those rows are fewer than max(20, ⌈1 / Contamination⌉) (too few for any row to lie above the quantile; always
    /// with Contamination 0, or a ValidationFraction of 0 and no validation view) the training rows set it, as with
    /// <see cref="Training"/>.</summary>
    HeldOut = 0,

    /// <summary>Every training row given to Fit (the held-out fraction included): the rule before held-out rows were
    /// used. About Contamination of the training rows are flagged, and more of new normal rows, the more the model
    /// overfits its training rows.</summary>
    Training = 1,
}

/// <summary>The PredictedLabel threshold of a row model's Fit: the (1 − contamination) quantile
/// (<see cref="Scoring.Threshold"/>) of the scores of the rows <see cref="DensityThresholdRows"/> chooses, in memory or
/// streamed. The held-out rows are the engine's own (<see cref="TrainingLoop.HeldOutRows"/>,
/// <see cref="StreamingTrainingData.HeldOutPositions"/>): no second definition of the split.</summary>
internal static class AnomalyThreshold
{
    /// <summary>Fewest held-out rows that set the threshold, whatever the contamination: 20. Fewer rows (or fewer than
    /// ⌈1 / contamination⌉, with which no row lies above the quantile) set it from the training rows.</summary>
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

    /// <summary>The one rule of every Fit: which set of units sets the threshold and its description for the log ("180
    /// held-out rows"): the training units with <see cref="DensityThresholdRows.Training"/>; else the validation units
    /// (<paramref name="validation"/>: their count when Fit was given a validation view), else the held-out ones, when
    /// there are at least <see cref="RowsNeeded"/> of them (or <paramref name="needed"/>); else the training units again.</summary>
    /// <param name="unit">What is counted, singular: "row", "sequence", "frame".</param>
    /// <param name="needed">The fewest units the set needs, when more than <see cref="RowsNeeded"/> (RNN-RNADE's
    /// first-frame thresholds need 100 windows); null: <see cref="RowsNeeded"/>.</param>
    internal static (ThresholdSet Set, string Description) Choose(DensityThresholdRows choice, double contamination, long training,
        long? validation, long heldOut, string unit = "row", int? needed = null)
    {
        if (choice == DensityThresholdRows.Training) return (ThresholdSet.Training, Count(training, "training", unit));
        needed ??= RowsNeeded(contamination);
        var (set, n, kind) = validation is long v ? (ThresholdSet.Validation, v, "validation") : (ThresholdSet.HeldOut, heldOut, "held-out");
        return n >= needed ? (set, Count(n, kind, unit)) : (ThresholdSet.Training, TooFew(training, n, kind, needed.Value, contamination, unit));
    }

    /// <summary>Throws when <paramref name="choice"/> is not a <see cref="DensityThresholdRows"/> value (every estimator's Validate).</summary>
    internal static void Check(DensityThresholdRows choice)
    {
        if (!Enum.IsDefined(choice))
            throw new ArgumentOutOfRangeException("ThresholdRows", choice, "ThresholdRows must be HeldOut or Training.");
    }

    /// <summary>The rows whose scores set an in-memory Fit's threshold and their description for the log ("180 held-out
    /// rows"): the validation rows, the engine's held-out rows of <paramref name="data"/>, or all of <paramref name="data"/>.</summary>
    internal static (RowMatrix Rows, string Description) InMemoryRows(DensityThresholdRows choice, double contamination, RowMatrix data,
        RowMatrix? validation, (double Fraction, ulong Seed) split, CancellationToken cancellationToken)
    {
        // The split's shuffle only when its rows may be used.
        var heldOut = choice == DensityThresholdRows.HeldOut && validation is null
            ? TrainingLoop.HeldOutRows(data.Rows, split.Fraction, split.Seed) : Array.Empty<int>();
        var (set, description) = Choose(choice, contamination, data.Rows, validation?.Rows, heldOut.Length);
        return set switch
        {
            ThresholdSet.Validation => (validation!, description),
            ThresholdSet.HeldOut => (data.SelectRows(heldOut, cancellationToken), description),
            _ => (data, description),
        };
    }

    /// <summary>A streamed Fit's threshold, the mean log-density of the rows that set it and their description: the
    /// validation stream's rows (one pass; with too few, a second pass over the training rows), else one pass over the
    /// training stream keeping the scores of the rows the engine's hashed split held out apart from all of them.</summary>
    internal static (float Threshold, double MeanLogDensity, string Description) Streamed(DensityModel model, IRowStream data, IRowStream? validation,
        DensityThresholdRows choice, double contamination, (double Fraction, ulong Seed) split, CancellationToken cancellationToken)
    {
        ScoreSample Training() => Score(model, data, null, cancellationToken).All;
        if (choice == DensityThresholdRows.Training) return Result(Training(), "training");
        int needed = RowsNeeded(contamination);
        if (validation is not null)
        {
            var valid = Score(model, validation, null, cancellationToken).All;
            if (valid.Seen >= needed) return Result(valid, "validation");
            var all = Training();
            return (all.Threshold(contamination), all.Mean, TooFew(all.Seen, valid.Seen, "validation", needed, contamination));
        }
        var (rows, heldOut) = Score(model, data, StreamingTrainingData.HeldOutPositions(split.Fraction, split.Seed), cancellationToken);
        if (heldOut!.Seen >= needed) return Result(heldOut, "held-out");
        return (rows.Threshold(contamination), rows.Mean, TooFew(rows.Seen, heldOut.Seen, "held-out", needed, contamination));

        (float, double, string) Result(ScoreSample s, string kind) => (s.Threshold(contamination), s.Mean, Rows(s.Seen, kind));
    }

    private static string Rows(long n, string kind) => Count(n, kind, "row");

    /// <summary>"180 held-out rows", "1 training sequence".</summary>
    internal static string Count(long n, string kind, string unit) => FormattableString.Invariant($"{n} {kind} {unit}{(n == 1 ? "" : "s")}");

    private static string TooFew(long training, long heldOut, string kind, int needed, double contamination, string unit = "row")
        => Count(training, "training", unit) + (needed == int.MaxValue ? " (contamination 0: the largest training score)"
            : string.Create(CultureInfo.InvariantCulture,
                $" ({Count(heldOut, kind, unit)}, fewer than the {needed} a held-out threshold needs at contamination {contamination})"));

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

        public float Threshold(double contamination) => Scoring.Threshold(_kept.ToArray(), contamination);
    }
}
