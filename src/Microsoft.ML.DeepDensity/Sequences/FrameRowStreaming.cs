using Microsoft.ML.Data;

namespace Microsoft.ML.DeepDensity.Transforms;

/// <summary>
/// What the frame-row transformer (live, or loaded with <c>LoadWithLiveDensityModels</c>) puts around its chain of ML.NET
/// stages, whose StatefulCustomMapping (ML.NET 5.0.1) scores a row only when one of its output getters is called at that
/// row, and whose cursor binds its input columns even when none of its outputs is asked for.
/// <list type="bullet">
/// <item>Every cursor also asks the chain for one of the model's output columns, so a read of pass-through columns
/// alone works (the cursor does not read that column itself).</item>
/// <item>A cursor asked for one of the model's columns scores every row it moves over, in order, whether or not the
/// consumer reads that row's columns: a row whose columns are not read (a filter placed after the model that reads
/// <c>Label</c> for every row and the log-density only for the rows it keeps, a consumer reading every other row) stays
/// in its sequence's history. ML.NET's splitter happened to read every row when all the columns asked for can be
/// buffered (numbers, text, booleans, vectors); a column it cannot buffer (a custom type, e.g. an image) turned the
/// splitter off, and the later frames of such a sequence got the log-densities of a sequence without those rows.</item>
/// <item>A row of a row-to-row mapper is built the same way (also asked for one of the model's columns, so a mapper of
/// pass-through columns alone works; it threw a NullReferenceException from ML.NET's typed row); asked for one of the
/// model's columns, it scores its row at the first read of any of its columns; a row moved over without any column read
/// cannot be scored afterwards (its values are gone), so the next read throws <see cref="InvalidOperationException"/> instead of giving the log-density of a sequence without it.</item>
/// <item>A row out of order within its sequence is refused naming its order values as the input's order column holds
/// them (a DateTime as a date and time; the scorer in the chain sees only its ticks): <see cref="RnnRnadeSurrogate.InOrderColumnTerms"/>.</item>
/// </list>
/// </summary>
internal static class FrameRowStreaming
{
    /// <summary>The visible columns the chain added: for each name the output has more often than the input, its last
    /// column (the chain keeps every input column and adds one column per output name).</summary>
    public static HashSet<int> OwnColumns(DataViewSchema input, DataViewSchema output)
    {
        var own = new HashSet<int>();
        foreach (var c in output)
            if (!c.IsHidden && output.Count(o => o.Name == c.Name) > input.Count(i => i.Name == c.Name)) own.Add(c.Index);
        return own;
    }

    /// <summary>The output column read to score a row (the first added Single or Boolean column), or null.</summary>
    private static DataViewSchema.Column? Scoring(DataViewSchema output, HashSet<int> own)
    {
        foreach (var c in output)
            if (own.Contains(c.Index) && (c.Type.RawType == typeof(float) || c.Type.RawType == typeof(bool))) return c;
        return null;
    }

    /// <summary>Reads <paramref name="column"/> of <paramref name="row"/> (which scores the row, once per position).</summary>
    private static Action Reader(DataViewRow row, DataViewSchema.Column column)
    {
        if (column.Type.RawType == typeof(float)) { var g = row.GetGetter<float>(column); float v = 0; return () => g(ref v); }
        var b = row.GetGetter<bool>(column); bool w = false; return () => b(ref w);
    }

    /// <summary>The chain's output view wrapped as described above, or the view itself when the chain added no column.</summary>
    /// <param name="terms">The input's order and frame columns, in whose terms a row's error is said.</param>
    public static IDataView Wrap(IDataView output, DataViewSchema inputSchema, InputTerms terms)
    {
        var own = OwnColumns(inputSchema, output.Schema);
        return Scoring(output.Schema, own) is DataViewSchema.Column scoring ? new View(output, own, scoring, terms) : output;
    }

    /// <summary>The chain's row-to-row mapper wrapped as described above, or the mapper itself when it adds no column.</summary>
    /// <param name="terms">The input's order and frame columns, in whose terms a row's error is said.</param>
    public static IRowToRowMapper Wrap(IRowToRowMapper mapper, InputTerms terms)
    {
        var own = OwnColumns(mapper.InputSchema, mapper.OutputSchema);
        return Scoring(mapper.OutputSchema, own) is DataViewSchema.Column scoring ? new Mapper(mapper, own, scoring, terms) : mapper;
    }

    /// <summary>Runs <paramref name="step"/> (a move or a scoring read), an out-of-order row's error restated in the terms of
    /// the order column (<see cref="Restated"/>).</summary>
    private static T Run<T>(Func<T> step, InputTerms terms)
    {
        try { return step(); }
        catch (Exception e) when (Restated(e, terms) is { } restated) { throw restated; }
    }

    /// <summary><paramref name="e"/> with the out-of-order row's error in it restated (<see cref="RnnRnadeSurrogate.InOrderColumnTerms"/>),
    /// also inside the InvalidOperationExceptions ML.NET's splitter and consolidator wrap a worker's exception in (rebuilt
    /// around it, so the caller meets the same exceptions as before); null when there is nothing to restate.</summary>
    private static Exception? Restated(Exception e, InputTerms terms) => e switch
    {
        Data.DataValidationException d => WithSlotName(RnnRnadeSurrogate.InOrderColumnTerms(d, terms.OrderType) ?? d, terms.Frame) is var r && !ReferenceEquals(r, d) ? r : null,
        InvalidOperationException { InnerException: { } inner } when e.GetType() == typeof(InvalidOperationException)
            => Restated(inner, terms) is { } restated ? new InvalidOperationException(e.Message, restated) : null,
        _ => null,
    };

    /// <summary>The input columns a scoring error is restated in the terms of: the order column's type (null: unknown)
    /// and the frame column (null: unknown), whose slot names the scorer in the chain never sees.</summary>
    internal sealed record InputTerms(DataViewType? OrderType, DataViewSchema.Column? Frame);

    /// <summary>
    /// A bad frame value's error (its source the frame column, its column a slot) with the slot's name when the input's
    /// frame column names its slots (<see cref="NonFiniteInput.SlotName"/>), placed as the row models place it: after the
    /// value's words and the sequence, before the hint. The row models' errors say "(slot 1 of 'Features' is 'x 2')"; the
    /// chain's scorer sees a float[] and not the schema, so a frame row's said only "column 1".
    /// </summary>
    private static Data.DataValidationException WithSlotName(Data.DataValidationException e, DataViewSchema.Column? frame)
    {
        if (frame is not { } column || e.DataSource != column.Name || e.Column < 0) return e;
        string slot = NonFiniteInput.SlotName(column, e.Column);
        if (slot.Length == 0 || e.Problem.Contains(slot, StringComparison.Ordinal)) return e;
        int hint = e.Problem.IndexOf("; " + NonFiniteInput.Hint(column.Name), StringComparison.Ordinal);
        return e.Reworded(hint < 0 ? e.Problem + slot : e.Problem.Insert(hint, slot));
    }

    private sealed class View : IDataView
    {
        private readonly IDataView _inner;
        private readonly HashSet<int> _own;
        private readonly DataViewSchema.Column _scoring;
        private readonly InputTerms _terms;
        public View(IDataView inner, HashSet<int> own, DataViewSchema.Column scoring, InputTerms terms)
        {
            _inner = inner; _own = own; _scoring = scoring; _terms = terms;
        }

        public bool CanShuffle => _inner.CanShuffle;
        public DataViewSchema Schema => _inner.Schema;
        public long? GetRowCount() => _inner.GetRowCount();

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
        {
            var asked = columnsNeeded.ToList();
            return new Cursor(_inner.GetRowCursor(WithScoring(asked), rand), asked, Scores(asked) ? _scoring : null, _terms);
        }

        /// <summary>The chain's cursor set: its StatefulCustomMapping gives one cursor whenever one of its outputs is asked
        /// for (always, here), and ML.NET splits that one cursor after it with a splitter that reads every row in order
        /// on one thread, so the parts hold the values of a single cursor (SequenceConcurrencyTests).</summary>
        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        {
            var asked = columnsNeeded.ToList();
            bool scores = Scores(asked);
            return _inner.GetRowCursorSet(WithScoring(asked), n, rand).Select(c => (DataViewRowCursor)new Cursor(c, asked, scores ? _scoring : null, _terms)).ToArray();
        }

        private bool Scores(List<DataViewSchema.Column> asked) => asked.Any(c => _own.Contains(c.Index));
        private IEnumerable<DataViewSchema.Column> WithScoring(List<DataViewSchema.Column> asked)
            => asked.Any(c => c.Index == _scoring.Index) ? asked : asked.Append(_scoring);
    }

    /// <summary>The chain's cursor, showing only the columns the caller asked for as active; with <c>scoring</c>, it scores
    /// every row it moves to.</summary>
    private sealed class Cursor : DataViewRowCursor
    {
        private readonly DataViewRowCursor _inner;
        private readonly HashSet<int> _asked;
        private readonly Action? _score;
        private readonly InputTerms _terms;
        public Cursor(DataViewRowCursor inner, IEnumerable<DataViewSchema.Column> asked, DataViewSchema.Column? scoring, InputTerms terms)
        {
            _inner = inner;
            _asked = asked.Select(c => c.Index).ToHashSet();
            _score = scoring is DataViewSchema.Column s ? Reader(inner, s) : null;
            _terms = terms;
        }
        public override DataViewSchema Schema => _inner.Schema;
        public override long Position => _inner.Position;
        public override long Batch => _inner.Batch;
        public override bool MoveNext()
        {
            if (!Run(_inner.MoveNext, _terms)) return false;
            if (_score is { } score) Run(() => { score(); return true; }, _terms);
            return true;
        }
        public override ValueGetter<DataViewRowId> GetIdGetter() => _inner.GetIdGetter();
        public override bool IsColumnActive(DataViewSchema.Column column) => _asked.Contains(column.Index);
        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
            => _asked.Contains(column.Index) ? _inner.GetGetter<TValue>(column)
                : throw new InvalidOperationException($"Column '{column.Name}' is not active.");
        protected override void Dispose(bool disposing)
        {
            if (disposing) _inner.Dispose();
            base.Dispose(disposing);
        }
    }

    private sealed class Mapper : IRowToRowMapper
    {
        private readonly IRowToRowMapper _inner;
        private readonly HashSet<int> _own;
        private readonly DataViewSchema.Column _scoring;
        private readonly InputTerms _terms;
        public Mapper(IRowToRowMapper inner, HashSet<int> own, DataViewSchema.Column scoring, InputTerms terms)
        {
            _inner = inner; _own = own; _scoring = scoring; _terms = terms;
        }

        public DataViewSchema InputSchema => _inner.InputSchema;
        public DataViewSchema OutputSchema => _inner.OutputSchema;

        public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
        {
            var asked = dependingColumns.ToList();
            return _inner.GetDependencies(WithScoring(asked));
        }

        public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
        {
            var asked = activeColumns.ToList();
            return new Row(input, _inner.GetRow(input, WithScoring(asked)), asked, Scores(asked) ? _scoring : null, _terms);
        }

        private bool Scores(List<DataViewSchema.Column> asked) => asked.Any(c => _own.Contains(c.Index));
        private IEnumerable<DataViewSchema.Column> WithScoring(List<DataViewSchema.Column> asked)
            => asked.Any(c => c.Index == _scoring.Index) ? asked : asked.Append(_scoring);
    }

    /// <summary>A mapped row showing only the columns asked for as active; with a scoring column, it scores its input row at
    /// the first read of any of its columns, and refuses a row after a gap in the input's positions (rows moved over unread:
    /// not in their sequences' histories).</summary>
    private sealed class Row : DataViewRow
    {
        private readonly DataViewRow _input, _inner;
        private readonly HashSet<int> _asked;
        private readonly Action? _score;
        private readonly InputTerms _terms;
        private long _scored = -1;

        public Row(DataViewRow input, DataViewRow inner, IEnumerable<DataViewSchema.Column> asked, DataViewSchema.Column? scoring, InputTerms terms)
        {
            _input = input; _inner = inner; _asked = asked.Select(c => c.Index).ToHashSet();
            _score = scoring is DataViewSchema.Column s ? Reader(inner, s) : null;
            _terms = terms;
        }

        public override DataViewSchema Schema => _inner.Schema;
        public override long Position => _inner.Position;
        public override long Batch => _inner.Batch;
        public override ValueGetter<DataViewRowId> GetIdGetter() => _inner.GetIdGetter();
        public override bool IsColumnActive(DataViewSchema.Column column) => _asked.Contains(column.Index);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (!_asked.Contains(column.Index)) throw new InvalidOperationException($"Column '{column.Name}' is not active.");
            var getter = _inner.GetGetter<TValue>(column);
            if (_score is null) return getter;
            ValueGetter<TValue> scoring = (ref TValue value) =>
            {
                Score();
                getter(ref value);
            };
            return scoring;
        }

        private void Score()
        {
            long position = _input.Position;
            if (position == _scored) return;
            if (_scored >= 0 && position != _scored + 1)
                throw new InvalidOperationException(
                    FormattableString.Invariant($"RNN-RNADE frame rows: this row mapper's input moved from row {_scored} to row {position} without a column of the rows ") +
                    "between being read, so those frames are missing from their sequences' histories and the later frames would get wrong " +
                    "log-densities. Read a column of every row moved over (a PredictionEngine does), or score with Transform.");
            _scored = position;   // before scoring: a row whose scoring threw (a bad value, reported) was read, not skipped
            var score = _score!;
            Run(() => { score(); return true; }, _terms);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) _inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
