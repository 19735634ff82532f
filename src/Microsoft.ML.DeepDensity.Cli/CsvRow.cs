namespace Microsoft.ML.DeepDensity.Cli;

/// <summary>
/// One data row of a <see cref="CsvTable"/>: its cells' characters one after another in a single string, and where each
/// cell ends. A string per cell (an object header, a length and a reference each) allocated 6.8 bytes for each character
/// of a file of 8-character numbers, and 'ddml fit' on 170 MB of them peaked at 1.6 GB; a row's one string and its cell
/// ends take 4.1 (CsvTableMemoryTests), and the fit peaked at 0.64 GB.
/// </summary>
public readonly struct CsvRow : IReadOnlyList<string>
{
    private readonly string _text;
    private readonly int[] _ends;

    internal CsvRow(string text, int[] ends) { _text = text; _ends = ends; }

    /// <summary>Number of cells.</summary>
    public int Count => _ends.Length;

    /// <summary>The text of cell <paramref name="column"/> (0-based), without copying.</summary>
    public ReadOnlySpan<char> Cell(int column)
    {
        int start = column == 0 ? 0 : _ends[column - 1];
        return _text.AsSpan(start, _ends[column] - start);
    }

    /// <summary>The text of cell <paramref name="column"/> (0-based) as a new string.</summary>
    public string this[int column] => Cell(column).ToString();

    /// <summary>The cells as new strings, in order.</summary>
    public IEnumerator<string> GetEnumerator()
    {
        for (int c = 0; c < Count; c++) yield return this[c];
    }

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Bytes the row takes in memory: the string (header and two bytes a character), the array of ends (header and
    /// four bytes a cell) and the row's slot in the table's list.</summary>
    internal static long BytesFor(int characters, int cells) => 24 + 2L * characters + 24 + 4L * cells + 16;
}
