namespace Microsoft.ML.DeepDensity.Numerics;

/// <summary>
/// Several order statistics of a span at once (the values a full sort would put at the given positions), without
/// sorting it: a three-way quickselect that recurses only into the parts holding a wanted position, O(n log k) for k
/// positions. RNADE's initial component means are k quantiles of every column, which a sort per column made
/// O(d · n log n) and single-threaded — minutes for two million rows of 784 columns.
/// </summary>
internal static class OrderStatistics
{
    /// <summary>
    /// Writes into <paramref name="values"/> the element that ascending order would put at each position of
    /// <paramref name="positions"/> (ascending, repeats allowed, each in [0, <paramref name="data"/>.Length)).
    /// <paramref name="data"/> is reordered. Inputs must not contain NaN. The results are exactly the sorted values: any
    /// input gives the bits a sort gives, and adversarial orders fall back to a sort of the part that resists
    /// (bounded recursion depth), so no input makes it quadratic.
    /// </summary>
    public static void Select(Span<float> data, ReadOnlySpan<int> positions, Span<float> values)
    {
        if (values.Length < positions.Length) throw new ArgumentException("Fewer values than positions.", nameof(values));
        for (int i = 0; i < positions.Length; i++)
        {
            if ((uint)positions[i] >= (uint)data.Length) throw new ArgumentOutOfRangeException(nameof(positions), positions[i], FormattableString.Invariant($"A position is outside [0, {data.Length})."));
            if (i > 0 && positions[i] < positions[i - 1]) throw new ArgumentException("Positions must be ascending.", nameof(positions));
        }
        int depth = 2 * (int)Math.Log2(Math.Max(2, data.Length)) + 4;
        Select(data, 0, positions, values, depth);
    }

    /// <summary>Positions <paramref name="wanted"/> (absolute; all inside <paramref name="a"/>, which starts at
    /// <paramref name="offset"/>) into <paramref name="values"/> (aligned with <paramref name="wanted"/>).</summary>
    private static void Select(Span<float> a, int offset, ReadOnlySpan<int> wanted, Span<float> values, int depth)
    {
        while (!wanted.IsEmpty)
        {
            if (a.Length <= 32 || depth-- == 0)
            {
                a.Sort();
                for (int w = 0; w < wanted.Length; w++) values[w] = a[wanted[w] - offset];
                return;
            }
            // Median of three as the pivot; then a three-way (Dutch flag) partition: < pivot | = pivot | > pivot, so
            // columns of few distinct values (binary pixels) split in one pass.
            float x = a[0], y = a[a.Length / 2], z = a[^1];
            float pivot = MathF.Max(MathF.Min(x, y), MathF.Min(MathF.Max(x, y), z));
            int lt = 0, i = 0, gt = a.Length;
            while (i < gt)
            {
                float v = a[i];
                if (v < pivot) { a[i] = a[lt]; a[lt] = v; lt++; i++; }
                else if (v > pivot) { gt--; a[i] = a[gt]; a[gt] = v; }
                else i++;
            }
            // Wanted positions in the equal part take the pivot; recurse into the smaller side, loop on the other.
            int mid = 0; while (mid < wanted.Length && wanted[mid] < offset + lt) mid++;
            int high = mid; while (high < wanted.Length && wanted[high] < offset + gt) high++;
            values[mid..high].Fill(pivot);
            if (lt <= a.Length - gt)
            {
                Select(a[..lt], offset, wanted[..mid], values[..mid], depth);
                offset += gt; a = a[gt..]; wanted = wanted[high..]; values = values[high..];
            }
            else
            {
                Select(a[gt..], offset + gt, wanted[high..], values[high..], depth);
                a = a[..lt]; wanted = wanted[..mid]; values = values[..mid];
            }
        }
    }
}
