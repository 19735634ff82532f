namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>
/// Time limits of the tests that check something stops or fails fast (cancellation, hostile files, refused sizes). Each
/// limit is what a quiet machine needs with a wide margin; when other processes hold the cores (the load average above
/// the core count, as when a build runs beside the tests) the code under test gets a smaller share of them, so the limit
/// grows with the load per core, up to five times. The defects these tests guard against took 10 s and more on a quiet
/// machine (a draw that ignored its token for 12 s, a fit that noticed a cancel after a 200,000-row minibatch).
/// </summary>
internal static class TimeBounds
{
    /// <summary><paramref name="seconds"/> on a quiet machine, times the load per core when that is above 1 (at most 5).</summary>
    public static TimeSpan Within(double seconds) => TimeSpan.FromSeconds(seconds * Math.Min(5, Math.Max(1, LoadPerCore())));

    /// <summary>The 1-minute load average per core (Linux; 0 where it cannot be read).</summary>
    public static double LoadPerCore()
    {
        try
        {
            var first = File.ReadAllText("/proc/loadavg").Split(' ')[0];
            return double.Parse(first, System.Globalization.CultureInfo.InvariantCulture) / Environment.ProcessorCount;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { return 0; }
    }

    /// <summary>A failure message's note of the limit and the load it was scaled for.</summary>
    public static string Describe(TimeSpan limit) => $"(limit {limit.TotalMilliseconds:F0} ms at a load of {LoadPerCore():F1} per core)";
}
