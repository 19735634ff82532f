using Microsoft.ML.DeepDensity.Data;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

internal static class ConformanceAssert
{
    /// <summary>Same bits in every slot (so −0 ≠ +0 and NaN payloads count): "identical", not "close".</summary>
    public static void BitIdentical(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: length {actual.Length}, expected {expected.Length}");
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                Assert.Fail($"{what}: slot {i} is {actual[i]:R}, expected {expected[i]:R} (bit-identical).");
    }

    public static void AllFinite(ReadOnlySpan<float> values, string what)
    {
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i])) Assert.Fail($"{what}: slot {i} is {values[i]}, expected finite.");
    }

    /// <summary>The documented output contract for far-out rows: finite or −∞, never NaN or +∞.</summary>
    public static void FiniteOrNegativeInfinity(ReadOnlySpan<float> values, string what)
    {
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i]) && !float.IsNegativeInfinity(values[i]))
                Assert.Fail($"{what}: slot {i} is {values[i]}, expected finite or −∞.");
    }

    /// <summary>Runs <paramref name="action"/> and checks it throws a <see cref="DataValidationException"/> at (row, column) whose problem mentions <paramref name="problemWord"/>.</summary>
    public static DataValidationException RejectsData(Action action, long row, int column, string problemWord, string what)
    {
        var e = Assert.Throws<DataValidationException>(action);
        Assert.True(e.Row == row, $"{what}: exception names row {e.Row}, expected {row} ({e.Message})");
        Assert.True(e.Column == column, $"{what}: exception names column {e.Column}, expected {column} ({e.Message})");
        Assert.Contains(problemWord, e.Problem, StringComparison.OrdinalIgnoreCase);
        return e;
    }

    public static RowMatrix Copy(RowMatrix m)
    {
        var c = new RowMatrix(m.Rows, m.Columns);
        m.AsSpan().CopyTo(c.AsSpan());
        return c;
    }
}
