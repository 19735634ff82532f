using System.Globalization;

namespace Microsoft.ML.DeepDensity.Data;

/// <summary>
/// The rules every row family's Fit shares about how many training rows it has and what they are: one minimum
/// (<see cref="MinimumRows"/>, refused with a <see cref="DataValidationException"/> by the engine's training-data check
/// every family's Fit passes), and the warnings the ML.NET estimator logs and <c>ddml fit</c> prints before training
/// (<see cref="FewRowsWarning(long, int)"/>, <see cref="NoHeldOutWarning"/>, <see cref="DuplicateRowsWarning(RowMatrix, object, bool)"/>). Nothing here
/// refuses a fit it warns about.
/// </summary>
public static class TrainingRowChecks
{
    /// <summary>The fewest training rows any row family trains on: with one row there is no spread to fit (RNADE and
    /// Deep RNADE trained 200 epochs on one or two rows and then scored ordinary finite rows as −∞).</summary>
    public const int MinimumRows = 2;

    /// <summary>The share of the training rows that are copies of other rows above which <see cref="DuplicateRowsWarning(RowMatrix, bool)"/>
    /// warns (10 %).</summary>
    public const double DuplicateShareWarned = 0.1;

    /// <summary>The refusal of <paramref name="rows"/> rows (fewer than <see cref="MinimumRows"/>) in
    /// <paramref name="source"/>: "the data has 1 row; at least 2 rows are needed", in memory and streamed.</summary>
    public static DataValidationException TooFewRows(long rows, string? source)
        => new(-1, -1, FormattableString.Invariant($"the data has {rows} row{(rows == 1 ? "" : "s")}; at least {MinimumRows} rows are needed"), source)
        { Kind = DataProblemKind.NotEnoughData };

    /// <summary>Refuses a streamed Fit's <paramref name="rows"/> training rows when they are none ("there are no rows")
    /// or fewer than <see cref="MinimumRows"/> (<see cref="TooFewRows"/>).</summary>
    public static void CheckStreamedRowCount(long rows)
    {
        if (rows == 0) throw DataValidation.NoRowsIn(DataValidation.TrainingData);
        if (rows < MinimumRows) throw TooFewRows(rows, DataValidation.TrainingData);
    }

    /// <summary>
    /// The warning for <paramref name="rows"/> training rows of <paramref name="columns"/> columns when the rows are no
    /// more than the columns (the rule for every row family), else null: a density over D columns estimated from no more
    /// than D rows fits those rows and little else — its spread in most directions is whatever the model's initialisation,
    /// floor or ridge makes it, so new rows score far lower (or −∞) than the training rows. Fewer than
    /// <see cref="MinimumRows"/> rows are refused, not warned about.
    /// </summary>
    public static string? FewRowsWarning(long rows, int columns)
        => rows > columns || rows < MinimumRows ? null
            : FormattableString.Invariant($"{rows} training rows for {columns} columns") + ": with no more rows than columns the model " +
              "fits its training rows and scores new rows far lower (possibly −∞), whatever the epochs; give more rows, or project the " +
              "columns to fewer than the rows first (e.g. ProjectToPrincipalComponents)";

    /// <summary><see cref="FewRowsWarning(long, int)"/> in the terms of the family whose engine options are
    /// <paramref name="options"/> (the Deep GMM's says why in covariances: <see cref="Models.DeepGmm.DeepGmmOptions.FewRowsWarning"/>).</summary>
    /// <param name="options">The engine's options (any family's).</param>
    /// <param name="rows">Training rows.</param>
    /// <param name="columns">Columns.</param>
    public static string? FewRowsWarning(object? options, long rows, int columns)
        => options is Models.DeepGmm.DeepGmmOptions ? Models.DeepGmm.DeepGmmOptions.FewRowsWarning(rows, columns) : FewRowsWarning(rows, columns);

    /// <summary>The held-out fraction and early-stopping patience of a family's engine options (gradient-trained families
    /// and the Deep GMM), or (0, 0) for options without them.</summary>
    /// <param name="options">The engine's options.</param>
    public static (double ValidationFraction, int EarlyStoppingPatience) HeldOutSettings(object? options) => options switch
    {
        Training.GradientTrainingOptions g => (g.ValidationFraction, g.EarlyStoppingPatience),
        Models.DeepGmm.DeepGmmOptions gmm => (gmm.ValidationFraction, gmm.EarlyStoppingPatience),
        _ => (0, 0),
    };

    /// <summary>Whether a Fit of <paramref name="rows"/> rows with these options and no validation data holds rows out.</summary>
    /// <param name="options">The engine's options.</param>
    /// <param name="rows">Training rows.</param>
    public static bool HoldsOutRows(object? options, long rows)
        => HeldOutSettings(options).ValidationFraction is var f && f > 0 && Training.TrainingLoop.HeldOutCount((int)Math.Min(rows, int.MaxValue), f) > 0;

    /// <summary>
    /// The warnings an in-memory Fit gives before it trains (the ML.NET estimator logs them; <c>ddml fit</c> prints the
    /// same rules): no more rows than columns (<see cref="FewRowsWarning(object, long, int)"/>); without validation data,
    /// a held-out fraction that holds out no row (<see cref="NoHeldOutWarning"/>); more than
    /// <see cref="DuplicateShareWarned"/> of the rows exact copies of others (<see cref="DuplicateRowsWarning(RowMatrix, object, bool)"/>). None for
    /// fewer than <see cref="MinimumRows"/> rows, which the Fit refuses.
    /// </summary>
    /// <param name="data">The training rows.</param>
    /// <param name="options">The engine's options (any family's).</param>
    /// <param name="validationGiven">Whether the Fit has validation data (then nothing is held out).</param>
    public static IReadOnlyList<string> FitWarnings(RowMatrix data, object? options, bool validationGiven)
    {
        ArgumentNullException.ThrowIfNull(data);
        var warnings = new List<string>();
        if (data.Rows < MinimumRows) return warnings;
        if (FewRowsWarning(options, data.Rows, data.Columns) is string few) warnings.Add(few);
        var (fraction, patience) = HeldOutSettings(options);
        if (!validationGiven && NoHeldOutWarning(data.Rows, fraction, patience) is string none) warnings.Add(none);
        if (DuplicateRowsWarning(data, options, validationGiven) is string copies) warnings.Add(copies);
        return warnings;
    }

    /// <summary>The warning when a Fit without validation data holds out none of its <paramref name="rows"/> training rows
    /// (⌊rows · <paramref name="validationFraction"/>⌋ is 0) although the options ask for a held-out part, else null:
    /// there is then no early stopping (<paramref name="patience"/> &gt; 0) and no held-out threshold, and the last epoch is kept.</summary>
    public static string? NoHeldOutWarning(long rows, double validationFraction, int patience)
        => validationFraction > 0 && rows >= MinimumRows && Training.TrainingLoop.HeldOutCount((int)Math.Min(rows, int.MaxValue), validationFraction) == 0
            ? string.Create(CultureInfo.InvariantCulture, $"ValidationFraction {validationFraction} of {rows} training rows holds out no row (the count rounds down): ") +
              (patience > 0 ? FormattableString.Invariant($"no early stopping (EarlyStoppingPatience {patience}), ") : "") +
              "no validation figure, and the last epoch is kept; pass a validation view or raise ValidationFraction"
            : null;

    /// <summary>
    /// How many of <paramref name="data"/>'s rows are exact copies of an earlier row (rows − distinct rows; −0 and +0
    /// differ): one pass hashing each row's float bits to 64 bits, a sort of the hashes, and a comparison of the rows whose
    /// hashes agree (so a hash collision never counts as a copy). O(rows · columns) reads, 12 bytes a row.
    /// </summary>
    public static int CountDuplicateRows(RowMatrix data)
    {
        ArgumentNullException.ThrowIfNull(data);
        int n = data.Rows, d = data.Columns;
        if (n < 2) return 0;
        var hashes = new ulong[n];
        var order = new int[n];
        DeepDensityEnvironment.For(0, n, i =>
        {
            ulong h = 0x9E3779B97F4A7C15UL ^ (ulong)d;
            foreach (var v in data.Row(i))
            {
                h ^= BitConverter.SingleToUInt32Bits(v);
                h *= 0xFF51AFD7ED558CCDUL;
                h ^= h >> 29;
            }
            hashes[i] = h;
            order[i] = i;
        });
        Array.Sort(hashes, order);
        int copies = 0;
        for (int start = 0; start < n;)
        {
            int end = start + 1;
            while (end < n && hashes[end] == hashes[start]) end++;
            // Rows of one hash: a row equal (bit for bit) to one of the run's distinct rows so far is a copy. Distinct rows
            // sharing a hash are collisions, a handful at most in real data; rows made to collide (the hash is not
            // cryptographic) could make this quadratic, so a run stops looking past MaxDistinctPerHash distinct rows and
            // counts its other rows as distinct (the warning can only be missed, never given wrongly).
            var distinct = new List<int>(1) { order[start] };
            for (int j = start + 1; j < end && distinct.Count <= MaxDistinctPerHash; j++)
            {
                bool copy = false;
                foreach (int k in distinct)
                    if (SameBits(data.Row(order[j]), data.Row(k))) { copy = true; break; }
                if (copy) copies++;
                else distinct.Add(order[j]);
            }
            start = end;
        }
        return copies;
    }

    /// <summary>Distinct rows of one hash compared at most (see <see cref="CountDuplicateRows"/>).</summary>
    private const int MaxDistinctPerHash = 32;

    private static bool AllBinary(RowMatrix data)
    {
        foreach (var v in data.Values.AsSpan(0, data.Rows * data.Columns)) if (v != 0f && v != 1f) return false;
        return true;
    }

    private static bool SameBits(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
        => System.Runtime.InteropServices.MemoryMarshal.AsBytes(a).SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.AsBytes(b));

    /// <summary><see cref="DuplicateRowsWarning(RowMatrix, bool)"/> for a Fit of a family with these engine options: none
    /// for a binary family (NVIL, a Bernoulli RBM or IWAE), whose 0/1 rows repeat by nature and whose other values the Fit
    /// refuses; the held-out wording when the Fit holds rows out (no validation data, <see cref="HoldsOutRows"/>).</summary>
    /// <param name="data">The training rows.</param>
    /// <param name="options">The engine's options (any family's).</param>
    /// <param name="validationGiven">Whether the Fit has validation data.</param>
    public static string? DuplicateRowsWarning(RowMatrix data, object? options, bool validationGiven)
        => options is Models.Nvil.NvilOptions or Models.Rbm.RbmOptions { VisibleType: Models.Rbm.RbmVisibleType.Bernoulli }
               or Models.Iwae.IwaeOptions { Likelihood: Models.Iwae.IwaeLikelihood.Bernoulli }
            ? null : DuplicateRowsWarning(data, !validationGiven && HoldsOutRows(options, data.Rows));

    /// <summary>
    /// The warning when more than <see cref="DuplicateShareWarned"/> of <paramref name="data"/>'s rows are exact copies of
    /// other rows (<see cref="CountDuplicateRows"/>), else null: the rows held out for early stopping and the threshold
    /// then include copies of training rows, so neither sees the model overfit (100 rows each repeated 10 times: RNADE
    /// −51 nats a new row against −11 on unique rows, Deep RNADE −131). In-memory Fit only (a stream is not hashed); rows
    /// of only 0s and 1s are not checked (binary data repeat rows by nature when the columns are few).
    /// </summary>
    /// <param name="data">The training rows.</param>
    /// <param name="heldOut">Whether the Fit holds rows out of them (no validation data given).</param>
    public static string? DuplicateRowsWarning(RowMatrix data, bool heldOut)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (AllBinary(data)) return null;
        int copies = CountDuplicateRows(data);
        if (copies <= DuplicateShareWarned * data.Rows) return null;
        string share = string.Create(CultureInfo.InvariantCulture, $"{100.0 * copies / data.Rows:0.#} %");
        return FormattableString.Invariant($"{copies} of the {data.Rows} training rows") + $" ({share}) are exact copies of other rows: " +
               (heldOut
                   ? "the rows held out for early stopping and the anomaly threshold then include copies of training rows, so neither sees the model overfit " +
                     "(new rows can score far lower than the held-out ones); remove the duplicates, or pass a validation view of other rows"
                   : "the model can fit the repeated rows as spikes (new rows can score far lower); remove the duplicates unless repeats are part of the data");
    }
}
