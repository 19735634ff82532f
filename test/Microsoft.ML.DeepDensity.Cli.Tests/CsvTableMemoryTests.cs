using System.Globalization;
using System.Text;
using Microsoft.ML.DeepDensity.Cli;
using Xunit;

namespace Microsoft.ML.DeepDensity.Cli.Tests;

/// <summary>
/// What a CSV table costs in memory. A string per cell held about five times the file (170 MB of short numbers peaked
/// at 1.6 GB in 'ddml fit', found by a trial on a 178 MB file); a row's cells now share one string.
/// </summary>
public class CsvTableMemoryTests
{
    /// <summary>Reading a file of 8-character numbers allocates (on the reading thread, which is all the parse runs on)
    /// under 5 bytes for each character of the file (4.1 measured): the row strings (two bytes a character), their cell
    /// ends (four bytes a cell) and the lists' growth. The old table allocated 6.8 (a string of 40 bytes and a
    /// reference for each cell, and an array a row).</summary>
    [Fact]
    public void ATableOfShortNumbersTakesUnderFiveBytesACharacter()
    {
        var text = new StringBuilder("a,b,c,d,e,f,g,h\n");
        var random = new Random(1);
        for (int r = 0; r < 20_000; r++)
            for (int c = 0; c < 8; c++)
                text.Append((random.NextDouble() - 0.5).ToString("F5", CultureInfo.InvariantCulture)).Append(c == 7 ? '\n' : ',');
        string csv = text.ToString();
        CsvTable.Parse(new StringReader("a\n1\n"), "warm-up"); // the JIT's own allocations are not the table's

        long before = GC.GetAllocatedBytesForCurrentThread();
        var table = CsvTable.Parse(new StringReader(csv), "short.csv");
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(20_000, table.Rows.Count);
        Assert.InRange(allocated / (double)csv.Length, 0, 5.0);
        // The cells read back as written.
        var firstRow = csv.Split('\n')[1].Split(',');
        for (int c = 0; c < 8; c++) Assert.Equal(firstRow[c], table.Rows[0][c]);
        Assert.Equal(firstRow[3], table.Rows[0].Cell(3).ToString());
    }

    /// <summary>Quoted cells, leading spaces before a quote, empty cells and a cell with a line break keep their text
    /// in the shared row string.</summary>
    [Fact]
    public void CellsKeepTheirTextInTheSharedRow()
    {
        var table = CsvTable.Parse(new StringReader("id,x,note\n  \"a,b\" ,1,\"say \"\"hi\"\"\"\n,2,\"two\nlines\"\n"), "q.csv");
        Assert.Equal(2, table.Rows.Count);
        Assert.Equal(new[] { "a,b", "1", "say \"hi\"" }, Enumerable.Range(0, 3).Select(c => table.Rows[0][c]));
        Assert.Equal(new[] { "", "2", "two\nlines" }, Enumerable.Range(0, 3).Select(c => table.Rows[1][c]));
        Assert.Equal(3, table.Rows[1].Count);
        Assert.Equal(new long[] { 2, 3 }, table.Lines);
    }
}
