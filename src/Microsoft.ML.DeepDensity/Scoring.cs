using Microsoft.ML.Data;

namespace Microsoft.ML.DeepDensity.Transforms;

/// <summary>Per-row rules shared by the live transformer and the saved (surrogate) scorer, so both give identical values.</summary>
internal static class Scoring
{
    /// <summary>Anomaly score = −log-density, kept finite: ML.NET's anomaly evaluator silently drops non-finite scores.</summary>
    public static float ScoreFromLogDensity(float logDensity)
    {
        if (float.IsNaN(logDensity)) return float.MaxValue;
        float s = -logDensity;
        if (float.IsPositiveInfinity(s)) return float.MaxValue;
        if (float.IsNegativeInfinity(s)) return -float.MaxValue;
        return s;
    }

    /// <summary>Seed of the one sample drawn for a row: a hash of the row's feature bits mixed with the user's seed,
    /// so the draw depends only on (seed, row values) — identical in the live and the loaded transformer, whatever the
    /// cursor order or thread count. −0 is hashed as +0: equal rows get the same draw (a row's −0 comes from arithmetic
    /// upstream, e.g. a normalizer's −0 · scale, and scores as +0).</summary>
    public static ulong RowSampleSeed(ulong seed, ReadOnlySpan<float> row)
    {
        ulong h = Mix(seed ^ 0x9E3779B97F4A7C15UL);
        foreach (var v in row) h = Mix(h ^ (uint)BitConverter.SingleToInt32Bits(v == 0f ? 0f : v));
        return h;
    }

    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>The (1 − contamination) quantile of the training scores: the smallest training score such that at most
    /// ⌊<paramref name="contamination"/> · n⌋ of the n training rows score strictly above it (exactly that many when the
    /// scores have no ties at the threshold).</summary>
    public static float Threshold(float[] scores, double contamination)
    {
        if (scores.Length == 0) return float.MaxValue;
        var sorted = (float[])scores.Clone();
        Array.Sort(sorted);
        int above = RowsAllowedAbove(contamination, sorted.Length);
        return sorted[sorted.Length - 1 - Math.Min(above, sorted.Length - 1)];
    }

    /// <summary>⌊contamination · n⌋, the rows allowed above the threshold, for the contamination the user wrote: 0.29 is
    /// stored as 0.28999999999999998 and 0.29 · 100 computes to 28.999999999999996, whose floor (28) flagged one training
    /// row fewer than asked. A product within a relative 1e-9 of an integer is that integer.</summary>
    internal static int RowsAllowedAbove(double contamination, int rows)
    {
        double x = contamination * rows;
        double nearest = Math.Round(x);
        double above = Math.Abs(x - nearest) <= 1e-9 * Math.Max(1.0, x) ? nearest : Math.Floor(x);
        return (int)Math.Clamp(above, 0, rows);
    }

    /// <summary>Copies a (possibly sparse) vector into a dense destination of its length.</summary>
    public static void Densify(in VBuffer<float> source, Span<float> destination)
    {
        if (source.IsDense) { source.GetValues().CopyTo(destination); return; }
        destination.Clear();
        var idx = source.GetIndices();
        var val = source.GetValues();
        for (int k = 0; k < idx.Length; k++) destination[idx[k]] = val[k];
    }
}
