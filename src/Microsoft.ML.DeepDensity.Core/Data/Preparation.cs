namespace Microsoft.ML.DeepDensity.Data;

/// <summary>
/// How a Fit's preparation of data in memory (the held-out split's copies, the standardised and permuted copies, the
/// statistics and initial values read from the rows) observes the Fit's cancellation token: before every run of
/// <see cref="RowsPerCheck"/> rows, at most 2^22 values (16 MiB), so that a Fit on millions of rows stops within a
/// fraction of a second of a cancel in its preparation as in its training. It checked only between whole passes: on 5
/// million rows of 20 columns a cancel took 2 to 8 s to be noticed. The work is the same, in the same order, so no result
/// changes.
/// </summary>
internal static class Preparation
{
    /// <summary>Values a preparation step reads or writes between two checks of its token: 2^22.</summary>
    internal const long DefaultValuesPerCheck = 1L << 22;

    /// <summary>Values between two checks: <see cref="DefaultValuesPerCheck"/>; tests lower it to see the checks of a
    /// preparation on small data (it changes how often the token is read, never a result).</summary>
    internal static long ValuesPerCheck = DefaultValuesPerCheck;

    /// <summary>Called at every check, before the token is read: tests count the checks and cancel at one of them.</summary>
    internal static Action? Checking;

    /// <summary>Rows of <paramref name="width"/> values between two checks (at least one).</summary>
    internal static int RowsPerCheck(int width) => (int)Math.Clamp(ValuesPerCheck / Math.Max(1, width), 1, int.MaxValue);

    /// <summary>One check of a preparation's token: <see cref="OperationCanceledException"/> once it is cancelled.</summary>
    internal static void Check(CancellationToken cancellationToken)
    {
        Checking?.Invoke();
        cancellationToken.ThrowIfCancellationRequested();
    }

    /// <summary>Adds every row's values (and, when <paramref name="sumSquares"/> is given, their squares) to the column
    /// sums in float64, in runs of rows with <paramref name="cancellationToken"/> checked before each: each column is summed
    /// row by row, so the runs give the sums of one call.</summary>
    internal static void AddColumnSums(RowMatrix data, double[] sum, double[]? sumSquares, CancellationToken cancellationToken)
    {
        int d = data.Columns;
        InRuns(data.Rows, d, cancellationToken, (start, n) =>
            Numerics.RowOps.AddColumnSumsAsDouble(data.Values.AsSpan(start * d, n * d), n, sum, sumSquares is null ? default : sumSquares.AsSpan()));
    }

    /// <summary>Runs <paramref name="body"/>(first row, rows) over [0, <paramref name="rows"/>) in runs of
    /// <see cref="RowsPerCheck"/> rows, in order, with <paramref name="cancellationToken"/> checked before each run.</summary>
    internal static void InRuns(int rows, int width, CancellationToken cancellationToken, Action<int, int> body)
    {
        int run = RowsPerCheck(width);
        for (int start = 0; start < rows; start += run)
        {
            Check(cancellationToken);
            body(start, Math.Min(run, rows - start));
        }
    }
}
