using System.Globalization;
using System.Text;
using Microsoft.ML.DeepDensity.Data;

namespace Microsoft.ML.DeepDensity.Cli;

/// <summary>
/// A CSV file with a header row, held as text cells (RFC 4180: comma separated, double-quoted fields may hold commas,
/// quotes as "" and line breaks; spaces before an opening or after a closing quote are ignored; blank lines are skipped).
/// Every problem is reported as a <see cref="CliException"/> naming the file, the line (the header is line 1) and the column.
/// </summary>
/// <summary>The file and the line each data row of a <see cref="CsvTable"/> starts on: what an error about a row needs.</summary>
public sealed record CsvPositions(string File, IReadOnlyList<long> Lines);

public sealed class CsvTable
{
    private CsvTable(string file, string[] header, long headerLine, List<CsvRow> rows, List<long> lines)
    {
        File = file; Header = header; HeaderLine = headerLine; Rows = rows; Lines = lines;
    }

    public string File { get; }
    public string[] Header { get; }
    /// <summary>The file line of the header: 1, unless blank lines come first.</summary>
    public long HeaderLine { get; }
    /// <summary>Data rows, each with exactly <see cref="Header"/>.Length cells.</summary>
    public IReadOnlyList<CsvRow> Rows { get; }
    /// <summary>The file line each data row starts on.</summary>
    public IReadOnlyList<long> Lines { get; }

    /// <summary>Where the rows came from (the file and each row's line), for errors found after the cells are let go.</summary>
    public CsvPositions Positions => new(File, Lines);

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Reads a CSV file: UTF-8 (or UTF-16/32 by its byte-order mark); a file that is not valid UTF-8 is read as Latin-1.</summary>
    public static CsvTable Read(string path)
    {
        if (Directory.Exists(path)) throw CliException.DataError(path, 0, 0, null, "is a directory, not a CSV file.");
        if (!System.IO.File.Exists(path)) throw CliException.DataError(path, 0, 0, null, "file not found.");
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            return Read(file, path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw CliException.DataError(path, 0, 0, null, "cannot read: " + e.Message);
        }
    }

    /// <summary>Reads a CSV from <paramref name="input"/> (named <paramref name="path"/> in messages): UTF-8, else
    /// Latin-1 from the first byte again. A stream that cannot seek (a pipe: /dev/stdin, bash's &lt;(...), a named pipe)
    /// cannot be opened again at its start, so the bytes of the UTF-8 attempt are kept for the Latin-1 one.</summary>
    internal static CsvTable Read(Stream input, string path)
    {
        var replay = input.CanSeek ? null : new ReplayStream(input);
        try
        {
            using var reader = new StreamReader(replay ?? input, StrictUtf8, detectEncodingFromByteOrderMarks: true, leaveOpen: true);
            return Parse(reader, path);
        }
        catch (DecoderFallbackException)
        {
            // Not UTF-8 (a Latin-1 / Windows export, say): read as Latin-1, which maps every byte to a character, so a
            // text column passed through by 'score' keeps "Müller" instead of "M\uFFFDller". (A byte-order mark still
            // selects UTF-8/16/32.) Reopening a pipe read on from where the UTF-8 attempt stopped: a "ragged row" error
            // about a line in the middle of the file, or a wait for a named pipe's next writer that never came.
            if (replay is null) input.Position = 0;
            using var reader = new StreamReader(replay?.Replay() ?? input, Encoding.Latin1, detectEncodingFromByteOrderMarks: true, leaveOpen: true);
            return Parse(reader, path);
        }
    }

    /// <param name="maxBytes">The bound on the cells' memory (default <see cref="MaxTableBytes"/>).</param>
    public static CsvTable Parse(TextReader reader, string file, long? maxBytes = null)
    {
        string[]? header = null;
        long headerLine = 0;
        var rows = new List<CsvRow>();
        var lines = new List<long>();
        var record = new Record();
        long line = 1, held = 0, limit = maxBytes ?? MaxTableBytes;
        while (true)
        {
            long start = line;
            if (!ReadRecord(reader, record, ref line, file, header)) break;
            // What the table holds so far (see CsvRow.BytesFor), bounded: an endless stream of valid rows
            // (yes 1,2 | ddml fit /dev/stdin) grew until the machine ran out.
            held += CsvRow.BytesFor(record.Text.Length, record.Ends.Count);
            if (held > limit)
                throw CliException.DataError(file, start, 0, null,
                    FormattableString.Invariant($"the data is larger than ddml holds in memory ({held / (1 << 20):N0} MiB by this line; the limit is {limit / (1 << 20):N0} MiB, ") +
                    "half the memory available to the process). ddml reads the whole file: give it a sample of the rows, or train with the " +
                    "library's streamed training (docs/scaling.md).");
            if (record.IsBlank()) continue; // blank line (or only spaces and tabs)
            if (header is null)
            {
                var headerRow = record.Row();
                header = Enumerable.Range(0, headerRow.Count).Select(c => headerRow.Cell(c).Trim().ToString()).ToArray();
                headerLine = start;
                var seen = new HashSet<string>(StringComparer.Ordinal);
                for (int c = 0; c < header.Length; c++)
                {
                    if (header[c].Length == 0) throw CliException.DataError(file, start, c + 1, null, "the header has an empty column name.");
                    if (!seen.Add(header[c]))
                        throw CliException.DataError(file, start, c + 1, header[c], "the header names this column twice" +
                            (header.All(h => TryNumber(h, out _)) ? " (the first line looks like data: a header row naming the columns is required)." : "."));
                }
                continue;
            }
            if (record.Ends.Count != header.Length)
                throw CliException.DataError(file, start, 0, null, FormattableString.Invariant($"the row has {Count(record.Ends.Count, "field")} but the header has {header.Length} (ragged row){SeparatorHint(header)}."));
            rows.Add(record.Row());
            lines.Add(start);
        }
        if (header is null) throw CliException.DataError(file, 0, 0, null, "the file is empty (a header row is required).");
        return new CsvTable(file, header, headerLine, rows, lines);
    }

    /// <summary>Reads one record; false at end of input. <paramref name="line"/> advances past the record's line breaks.
    /// Spaces and tabs before an opening quote or after a closing quote are not part of the field (<c>1, "a,b" ,3</c> has
    /// the three fields 1, a,b and 3, as Python's csv with skipinitialspace or CsvHelper with trimming reads it; RFC 4180 is
    /// silent); other text after a closing quote is an error naming the line and column (and, past the header, the
    /// column's name from <paramref name="header"/>).</summary>
    private static bool ReadRecord(TextReader r, Record record, ref long line, string file, string[]? header)
    {
        record.Clear();
        int ch = r.Read();
        if (ch < 0) return false;
        bool quoted = false, wasQuoted = false, blank = true; // blank: the unquoted cell so far is only spaces and tabs
        long startLine = line;
        while (true)
        {
            // A NUL character is in no text file: a binary file (a model zip given as the data, an image) or an endless
            // stream of zeros (/dev/zero), which would otherwise be read into one cell until memory runs out.
            if (ch == 0)
                throw CliException.DataError(file, line, record.Ends.Count + 1, NameOf(header, record.Ends.Count),
                    "a NUL character: this is not a text (CSV) file (a binary file, or UTF-16 without a byte-order mark?).");
            if (record.Text.Length - record.CellStart >= MaxCellChars)
                throw CliException.DataError(file, startLine, record.Ends.Count + 1, NameOf(header, record.Ends.Count),
                    FormattableString.Invariant($"a field longer than {MaxCellChars:N0} characters (") + (quoted ? "a quote that is never closed?" : "is this a CSV file?") + ").");
            if (quoted)
            {
                if (ch < 0) throw CliException.DataError(file, startLine, record.Ends.Count + 1, NameOf(header, record.Ends.Count), "a quoted field is not closed before the end of the file.");
                if (ch == '"')
                {
                    if (r.Peek() == '"') { r.Read(); record.Text.Append('"'); }
                    else quoted = false;
                }
                else
                {
                    if (ch == '\n') line++;
                    record.Text.Append((char)ch);
                }
            }
            else if (ch == ',') { record.Ends.Add(record.Text.Length); wasQuoted = false; blank = true; }
            else if (ch == '\r' || ch == '\n' || ch < 0)
            {
                if (ch == '\r' && r.Peek() == '\n') r.Read();
                if (ch >= 0) line++;
                record.Ends.Add(record.Text.Length);
                return true;
            }
            else if (wasQuoted)
            {
                if (ch != ' ' && ch != '\t')
                    throw CliException.DataError(file, line, record.Ends.Count + 1, NameOf(header, record.Ends.Count),
                        $"'{(char)ch}' after the closing quote of a quoted field (a quote inside a quoted field is written \"\").");
            }
            else if (ch == '"' && blank) { record.Text.Length = record.CellStart; quoted = wasQuoted = true; } // leading spaces before the quote are dropped
            else
            {
                if (ch != ' ' && ch != '\t') blank = false;
                record.Text.Append((char)ch);
            }
            ch = r.Read();
        }
    }

    /// <summary>The record being read: its cells' characters one after another, and where each cell ends.</summary>
    private sealed class Record
    {
        public readonly StringBuilder Text = new();
        public readonly List<int> Ends = new();
        public int CellStart => Ends.Count == 0 ? 0 : Ends[^1];
        public void Clear() { Text.Clear(); Ends.Clear(); }
        /// <summary>One cell of nothing but spaces and tabs: a blank line.</summary>
        public bool IsBlank()
        {
            if (Ends.Count != 1) return false;
            foreach (var chunk in Text.GetChunks())
                foreach (char ch in chunk.Span) if (ch != ' ' && ch != '\t') return false;
            return true;
        }
        public CsvRow Row() => new(Text.ToString(), Ends.ToArray());
    }

    /// <summary>Most memory the cells of one table may take (estimated as they are read): half the memory available to the
    /// process (<see cref="GCMemoryInfo.TotalAvailableMemoryBytes"/>, which follows a container's or
    /// <c>DOTNET_GCHeapHardLimit</c>'s limit), so that the model's own buffers still fit.</summary>
    public static readonly long MaxTableBytes = Math.Max(1L << 26, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 2);

    /// <summary>The header's name of 0-based column <paramref name="column"/> while a record is read, or null (the header
    /// itself, or a field beyond the header's columns).</summary>
    private static string? NameOf(string[]? header, int column) => header is not null && column < header.Length ? header[column] : null;

    /// <summary>Longest field read (16 Mi characters): a longer one is a file that is not a CSV, or an unclosed quote in a
    /// huge one, and would otherwise grow one string until memory runs out.</summary>
    public const int MaxCellChars = 1 << 24;

    /// <summary>Index of the column named <paramref name="name"/>, or a data error naming the file.</summary>
    public int ColumnIndex(string name, string role)
    {
        int i = Array.IndexOf(Header, name);
        if (i < 0) throw CliException.DataError(File, HeaderLine, 0, null, $"the {role} column '{name}' is not in the header ({string.Join(", ", Header)}).");
        return i;
    }

    /// <summary>
    /// The feature columns: every column whose first data cell is a number, except <paramref name="excluded"/>. A first
    /// cell that is empty or non-finite (NaN, Infinity: a missing value, reported as such by <see cref="Features"/>)
    /// does not decide: the column's first other cell does (a name column starting with "Nan" is text), and a column
    /// of nothing else is numeric (and then reported).
    /// </summary>
    public int[] NumericColumns(IEnumerable<int> excluded)
    {
        var skip = new HashSet<int>(excluded);
        var result = new List<int>();
        for (int c = 0; c < Header.Length; c++)
        {
            if (skip.Contains(c)) continue;
            bool numeric = true;
            foreach (var row in Rows)
            {
                var s = row.Cell(c).Trim();
                if (s.Length == 0) continue;
                bool number = TryNumber(s, out float v);
                if (number && !float.IsFinite(v) && !Overflows(s)) continue; // NaN, ±Infinity: undecided
                numeric = number;
                break;
            }
            if (numeric) result.Add(c);
        }
        return result.ToArray();
    }

    /// <summary>
    /// The columns that are neither features nor excluded (text: ids, names), and a warning for each of them that holds
    /// mostly numbers: a numeric column whose deciding cell is a typo or a missing-value marker ('?', 'n/a') would
    /// otherwise drop out of the features without a word. The warning names the cell that made the column text.
    /// </summary>
    public (string[] Names, List<string> Warnings) TextColumns(IReadOnlyCollection<int> features, IEnumerable<int> excluded)
    {
        var skip = new HashSet<int>(excluded.Concat(features));
        var names = new List<string>();
        var warnings = new List<string>();
        for (int c = 0; c < Header.Length; c++)
        {
            if (skip.Contains(c)) continue;
            names.Add(Header[c]);
            int cells = 0, numbers = 0, first = -1;
            for (int r = 0; r < Rows.Count; r++)
            {
                var s = Rows[r].Cell(c).Trim();
                if (s.Length == 0) continue;
                cells++;
                if (TryNumber(s, out float v) && float.IsFinite(v)) numbers++;
                else if (first < 0) first = r;
            }
            if (first >= 0 && numbers > cells - numbers)
                warnings.Add(FormattableString.Invariant($"{System.IO.Path.GetFileName(File)}, line {Lines[first]}, column {c + 1} ('{Header[c]}'): '{Shorten(Rows[first][c].Trim())}' is not a number, ") +
                             FormattableString.Invariant($"so the column is read as text and is not a feature, though {numbers} of its {cells} non-empty cells are numbers ") +
                             "(missing values are not supported): fix the cell, or --exclude the column.");
        }
        return (names.ToArray(), warnings);
    }

    /// <summary>What to add to an error about a file whose header is one column holding semicolons or tabs: most likely a
    /// file separated by them (a European spreadsheet export), which this comma-separated reader sees as one column.</summary>
    internal static string SeparatorHint(string[] header)
        => header.Length != 1 ? "" : header[0].Contains(';') ? "; the header is one column and holds ';': ddml reads comma-separated files, and this one looks separated by semicolons"
            : header[0].Contains('\t') ? "; the header is one column and holds tabs: ddml reads comma-separated files, and this one looks tab-separated" : "";

    /// <summary>"1 row", "2 rows".</summary>
    internal static string Count(long n, string noun) => n == 1 ? $"1 {noun}" : FormattableString.Invariant($"{n} {noun}s");

    /// <summary>A finite number written with digits that is too large for a float (1e39): a number, reported as out of range.</summary>
    private static bool Overflows(ReadOnlySpan<char> s) => s.IndexOfAnyInRange('0', '9') >= 0;

    /// <summary>The message for an empty feature cell at row <paramref name="first"/>: how many rows have one and in which
    /// columns, and what to do. It used to name only the first, so a file with gaps in several rows (cars.json's 8 missing
    /// Miles_per_Gallon and 6 Horsepower) took one run per gap to find them all.</summary>
    private string MissingCells(int first, IReadOnlyList<int> columns)
    {
        var perColumn = columns.Select(c => (Name: Header[c], Count: Rows.Skip(first).Count(row => row.Cell(c).Trim().Length == 0))).Where(x => x.Count > 0).ToArray();
        int rows = Rows.Skip(first).Count(row => columns.Any(c => row.Cell(c).Trim().Length == 0));
        string where = string.Join(", ", perColumn.Select(x => FormattableString.Invariant($"'{x.Name}' {x.Count}")));
        return $"the cell is empty (missing values are not supported); {Count(rows, "row")} of the file {(rows == 1 ? "has" : "have")} an empty feature cell " +
               $"({where}): remove or fill those rows, or --exclude the column.";
    }

    /// <summary>The given columns as a row matrix; a missing, non-numeric or non-finite cell is an error naming line and column.</summary>
    public RowMatrix Features(IReadOnlyList<int> columns)
    {
        if (Rows.Count == 0) throw CliException.DataError(File, 0, 0, null, "the file has a header but no data rows.");
        var m = new RowMatrix(Rows.Count, columns.Count);
        for (int r = 0; r < Rows.Count; r++)
        {
            var row = Rows[r];
            var dest = m.Row(r);
            for (int j = 0; j < columns.Count; j++)
            {
                int c = columns[j];
                var s = row.Cell(c).Trim();
                if (s.Length == 0) throw CliException.DataError(File, Lines[r], c + 1, Header[c], MissingCells(r, columns));
                if (!TryNumber(s, out float v)) throw CliException.DataError(File, Lines[r], c + 1, Header[c], $"'{Shorten(s.ToString())}' is not a number.");
                if (!float.IsFinite(v))
                    throw CliException.DataError(File, Lines[r], c + 1, Header[c], Overflows(s)
                        ? $"'{Shorten(s.ToString())}' is beyond the range of a 32-bit float (±3.4e38)."
                        : $"'{Shorten(s.ToString())}' is not a finite number.");
                dest[j] = v;
            }
        }
        return m;
    }

    /// <summary>Anomaly labels: 1/true/yes/anomaly/anomalous/outlier = anomalous, 0/false/no/normal/inlier = normal.</summary>
    public bool[] Labels(int column)
    {
        var result = new bool[Rows.Count];
        for (int r = 0; r < Rows.Count; r++)
        {
            string s = Rows[r][column].Trim().ToLowerInvariant();
            result[r] = s switch
            {
                "1" or "1.0" or "true" or "yes" or "anomaly" or "anomalous" or "outlier" => true,
                "0" or "0.0" or "false" or "no" or "normal" or "inlier" => false,
                _ => throw CliException.DataError(File, Lines[r], column + 1, Header[column],
                    $"'{Shorten(s)}' is not an anomaly label (use 1/0, true/false, anomaly/normal)."),
            };
        }
        return result;
    }

    public static bool TryNumber(string s, out float value) => TryNumber(s.AsSpan(), out value);

    public static bool TryNumber(ReadOnlySpan<char> s, out float value)
        => float.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out value);

    private static string Shorten(string s) => s.Length <= 40 ? s : s[..37] + "...";

    /// <summary>Quotes a cell when it needs it (comma, quote or line break).</summary>
    public static string Escape(string cell)
        => cell.IndexOfAny(new[] { ',', '"', '\n', '\r' }) < 0 ? cell : "\"" + cell.Replace("\"", "\"\"") + "\"";

    /// <summary>A float written so that it reads back to the same bits.</summary>
    public static string Format(float v) => v.ToString("R", CultureInfo.InvariantCulture);
}
