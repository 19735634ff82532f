using System.Globalization;
using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;

namespace Microsoft.ML.DeepDensity.Cli;

/// <summary>
/// The frame rows of a CSV for the sequence model: one row per time step, a sequence-id column (text) and an order
/// column (numbers, or times such as 2026-03-29T00:30:00Z). Rows are grouped by id in order of first appearance and
/// sorted by order within a sequence (the frame estimator's rule), in any file order; two rows of a sequence with the
/// same order value name both lines.
/// </summary>
public sealed class SequenceFrames
{
    public const string IdColumn = "SequenceId", OrderColumn = "Order";

    private SequenceFrames(CsvTable table, int[] featureColumns, RowMatrix frames, string[] ids, double[] order,
        SequenceBatch sequences, int[] rowOfFrame, string[] sequenceIds)
    {
        Table = table; FeatureColumns = featureColumns; Frames = frames; Ids = ids; Order = order;
        Sequences = sequences; RowOfFrame = rowOfFrame; SequenceIds = sequenceIds;
    }

    public CsvTable Table { get; }
    public int[] FeatureColumns { get; }
    /// <summary>The frames in file order (row r = table row r).</summary>
    public RowMatrix Frames { get; }
    public string[] Ids { get; }
    public double[] Order { get; }
    /// <summary>The sequences: grouped by id, sorted by order.</summary>
    public SequenceBatch Sequences { get; }
    /// <summary>Frame f of <see cref="Sequences"/> is table row RowOfFrame[f].</summary>
    public int[] RowOfFrame { get; }
    /// <summary>The id of each sequence of <see cref="Sequences"/>.</summary>
    public string[] SequenceIds { get; }

    /// <summary>Reads the frame rows of <paramref name="table"/>; every bad cell is an error naming file, line and column.</summary>
    public static SequenceFrames Read(CsvTable table, int[] featureColumns, int idColumn, int orderColumn)
    {
        var frames = table.Features(featureColumns);
        var ids = table.Rows.Select(r => r.Cell(idColumn).Trim().ToString()).ToArray();
        var order = new double[table.Rows.Count];
        // The order is a number, or — when the first row's is a time and not a number — a time for the whole column
        // (e.g. 2026-03-29T00:30:00Z), compared by its UTC instant; a time without an offset is taken as UTC.
        string first = order.Length > 0 ? table.Rows[0][orderColumn].Trim() : "";
        bool times = !double.TryParse(first, NumberStyles.Float, CultureInfo.InvariantCulture, out _) && TryParseTime(first, out _);
        for (int r = 0; r < order.Length; r++)
        {
            string s = table.Rows[r][orderColumn].Trim();
            if (times)
            {
                if (TryParseTime(s, out order[r])) continue;
                throw CliException.DataError(table.File, table.Lines[r], orderColumn + 1, table.Header[orderColumn],
                    s.Length == 0 ? "the cell is empty (the order column: every frame row needs its position in its sequence)."
                    : $"'{s}' is not a time, as the column's first value '{first}' is (the order column: numbers, or times for every row).");
            }
            bool parsed = double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out order[r]);
            if (!parsed || !double.IsFinite(order[r]))
                throw CliException.DataError(table.File, table.Lines[r], orderColumn + 1, table.Header[orderColumn],
                    s.Length == 0 ? "the cell is empty (the order column: every frame row needs its position in its sequence)."
                    : $"'{s}' is not a {(parsed ? "finite " : "")}number (the order column).");
        }
        var groups = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        var firstSeen = new List<string>();
        for (int r = 0; r < ids.Length; r++)
        {
            if (ids[r].Length == 0)
                throw CliException.DataError(table.File, table.Lines[r], idColumn + 1, table.Header[idColumn], "the sequence id is empty (every frame row needs its sequence's id).");
            if (!groups.TryGetValue(ids[r], out var list)) { groups[ids[r]] = list = new(); firstSeen.Add(ids[r]); }
            list.Add(r);
        }
        int d = featureColumns.Length;
        var rowOfFrame = new int[ids.Length];
        var offsets = new int[firstSeen.Count + 1];
        var values = new float[ids.Length * d];
        int f = 0;
        for (int i = 0; i < firstSeen.Count; i++)
        {
            var list = groups[firstSeen[i]];
            list.Sort((a, b) => order[a] != order[b] ? order[a].CompareTo(order[b]) : a.CompareTo(b));
            for (int j = 0; j < list.Count; j++, f++)
            {
                int r = list[j];
                if (j > 0 && order[r] == order[list[j - 1]])
                    throw CliException.DataError(table.File, table.Lines[r], orderColumn + 1, table.Header[orderColumn],
                        FormattableString.Invariant($"sequence '{firstSeen[i]}' has two rows with order {(times ? table.Rows[r][orderColumn].Trim() : order[r].ToString(CultureInfo.InvariantCulture))} (lines {table.Lines[list[j - 1]]} and {table.Lines[r]})."));
                rowOfFrame[f] = r;
                frames.Row(r).CopyTo(values.AsSpan(f * d, d));
            }
            offsets[i + 1] = f;
        }
        return new SequenceFrames(table, featureColumns, frames, ids, order, new SequenceBatch(values, offsets, d), rowOfFrame, firstSeen.ToArray());
    }

    /// <summary>A time cell's UTC instant in ticks (a Double: exact to 128 ticks, 12.8 µs, for present-day dates, so two
    /// times closer than that compare equal and are refused as a repeated order naming both lines).</summary>
    private static bool TryParseTime(string cell, out double ticks)
    {
        bool ok = DateTimeOffset.TryParse(cell, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time);
        ticks = ok ? time.UtcTicks : 0;
        return ok;
    }

    /// <summary>Reads a CSV for a trained sequence model: its feature, sequence-id and order columns, looked up by name.</summary>
    public static SequenceFrames Read(string file, ToolMetadata meta)
    {
        var table = CsvTable.Read(file);
        var columns = meta.FeatureColumns.Select(n => Array.IndexOf(table.Header, n) is int i && i >= 0 ? i
            : throw CliException.DataError(file, table.HeaderLine, 0, null, $"the column '{n}' that the model was trained on is missing from the header.")).ToArray();
        return Read(table, columns, table.ColumnIndex(meta.SequenceIdColumn!, "sequence-id"), table.ColumnIndex(meta.OrderColumn!, "order"));
    }

    /// <summary>Frame f of the sequences is sequence SequenceOfFrame[f].</summary>
    public int[] SequenceOfFrame()
    {
        var result = new int[Sequences.TotalFrames];
        for (int i = 0; i < Sequences.Count; i++) result.AsSpan(Sequences.Offsets[i], Sequences.Length(i)).Fill(i);
        return result;
    }

    /// <summary>The frame rows as the ML.NET view the frame estimator takes (Features, SequenceId, Order), in the given row order.</summary>
    public IDataView View(MLContext ml, IReadOnlyList<int> rows)
    {
        var data = rows.Select(r => new FrameRow { Features = Frames.Row(r).ToArray(), SequenceId = Ids[r], Order = Order[r] }).ToArray();
        var def = SchemaDefinition.Create(typeof(FrameRow));
        def[nameof(FrameRow.Features)].ColumnName = ModelZip.FeatureColumn;
        def[ModelZip.FeatureColumn].ColumnType = new VectorDataViewType(NumberDataViewType.Single, Frames.Columns);
        return ml.Data.LoadFromEnumerable(data, def);
    }

    /// <summary>
    /// LogDensity = log p(x_t | x_&lt;t), Score and PredictedLabel of every row (in file order) through the model's ML.NET
    /// transformer. The rows are fed sequence by sequence in increasing order (the transformer scores a stream), so
    /// the file may hold them in any order.
    /// </summary>
    public (float[] LogDensity, float[] Score, bool[] PredictedLabel) Score(MLContext ml, ITransformer transformer, string[] featureNames)
    {
        var scored = transformer.Transform(View(ml, RowOfFrame));
        float[] ld, score;
        bool[] predicted;
        try
        {
            ld = DataViews.Singles(scored, "LogDensity");
            score = DataViews.Singles(scored, "Score");
            predicted = DataViews.Booleans(scored, "PredictedLabel");
        }
        catch (DataValidationException e)
        {
            // The view's rows are in sequence order: name the file row.
            long row = e.Row >= 0 && e.Row < RowOfFrame.Length ? RowOfFrame[e.Row] : -1;
            throw FitCommand.MapDataError(e, Table.Positions, FeatureColumns, featureNames, row);
        }
        var (ldRows, scoreRows, predictedRows) = (new float[ld.Length], new float[ld.Length], new bool[ld.Length]);
        for (int f = 0; f < ld.Length; f++)
        {
            int r = RowOfFrame[f];
            (ldRows[r], scoreRows[r], predictedRows[r]) = (ld[f], score[f], predicted[f]);
        }
        return (ldRows, scoreRows, predictedRows);
    }

    private sealed class FrameRow
    {
        public float[] Features = Array.Empty<float>();
        public string SequenceId = "";
        public double Order;
    }
}
