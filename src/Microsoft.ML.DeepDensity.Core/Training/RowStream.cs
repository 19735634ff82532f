using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Training;

/// <summary>
/// Rows of a fixed width that can be read in passes, block by block, without holding them all: the engine's view of
/// a data set too large for memory (an ML.NET <c>IDataView</c> cursor, a file, rows generated on the fly). Every pass
/// must yield the same rows in the same order: reproducible training rests on it, and a streamed Fit refuses a pass
/// that differs from the first (<see cref="RowStream.Checked"/>).
/// </summary>
public interface IRowStream
{
    /// <summary>Floats per row.</summary>
    int Width { get; }

    /// <summary>Rows per pass when known without reading one (null: unknown).</summary>
    long? Count { get; }

    /// <summary>Starts a new pass from the first row.</summary>
    IRowCursor Open();
}

/// <summary>One pass over an <see cref="IRowStream"/>.</summary>
public interface IRowCursor : IDisposable
{
    /// <summary>Reads the next rows into <paramref name="destination"/> (at most its length / Width rows, row-major);
    /// returns the rows read, 0 at the end of the pass.</summary>
    int Read(Span<float> destination);
}

/// <summary>Transforms a block of rows in place (<paramref name="count"/> rows, the first at pass position <paramref name="firstRow"/>).</summary>
internal delegate void RowBlockMap(Span<float> rows, int count, long firstRow);

/// <summary>Reads a block of <paramref name="count"/> rows.</summary>
internal delegate void RowBlockVisitor(ReadOnlySpan<float> rows, int count);

/// <summary>Row streams over the engine's data and the passes the streaming Fit methods make over a stream.</summary>
public static class RowStream
{
    /// <summary>Rows read per block by the helpers' passes (fewer for wide rows, <see cref="RowsPerBlock"/>).</summary>
    internal const int BlockRows = 4096;

    /// <summary>Floats a block holds at most: 2^20 (4 MiB), all of <see cref="BlockRows"/> rows up to 256 columns.</summary>
    internal const int BlockFloats = 1 << 20;

    /// <summary>Rows per block (and the first size of a growing buffer) for rows of <paramref name="width"/> floats: a
    /// block of 4,096 rows of 40,000 columns took 655 MB per pass, whatever the number of rows. The passes' sums run
    /// row by row, so the block size never changes a result.</summary>
    internal static int RowsPerBlock(int width) => Math.Clamp(BlockFloats / Math.Max(1, width), 1, BlockRows);

    /// <summary>The rows of a matrix as a stream (tests; in-memory data through the streaming path).</summary>
    public static IRowStream From(RowMatrix rows) => new MatrixStream(rows ?? throw new ArgumentNullException(nameof(rows)));

    /// <summary>
    /// The rows of <paramref name="stream"/> checked as they are read (finite values; 0/1 for
    /// <see cref="InputDomain.Binary"/>): a bad value throws <see cref="DataValidationException"/> naming the row (its
    /// position in the pass), the column and <paramref name="source"/>. So does a cursor whose
    /// <see cref="IRowCursor.Read"/> returns a negative count or more rows than the destination holds, and a pass that
    /// is not the first pass again: every complete pass must read as many rows as the first (and as
    /// <see cref="IRowStream.Count"/> says, when it is known) and the same values in the same order (compared by a
    /// fingerprint, nothing is kept per row).
    /// </summary>
    public static IRowStream Checked(IRowStream stream, InputDomain domain, string source)
    {
        ArgumentNullException.ThrowIfNull(stream);
        // A stream whose passes are already compared (SamePasses: a layer above reads it after the Fit too) keeps its one
        // record: the Fit's passes and the layer's are then all compared with the same first pass, fingerprinted once.
        return new MappedStream(stream, (rows, count, first) => DataValidation.CheckRows(rows[..(count * stream.Width)], stream.Width, domain, source, first), source,
            stream is MappedStream { ComparesPasses: true } ? null : new PassRecord(source));
    }

    /// <summary>
    /// The rows of <paramref name="stream"/> with every complete pass compared with the first, as <see cref="Checked"/>
    /// compares them (length and fingerprint; a pass that differs throws <see cref="DataValidationException"/> naming
    /// <paramref name="source"/>), without checking values. For a layer that reads the stream again after a streamed Fit
    /// (the ML.NET threshold pass): given this stream, the Fit's <see cref="Checked"/> shares its record, so the layer's
    /// pass is compared with the Fit's first pass, not read unchecked.
    /// </summary>
    internal static IRowStream SamePasses(IRowStream stream, string source)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return new MappedStream(stream, static (_, _, _) => { }, source, new PassRecord(source));
    }

    /// <summary>The rows of <paramref name="stream"/> transformed in place block by block (<paramref name="map"/> gets
    /// the block, its row count and the position of its first row in the pass).</summary>
    internal static IRowStream Map(IRowStream stream, RowBlockMap map) => new MappedStream(stream, map);

    /// <summary>The rows of <paramref name="stream"/> at whose pass position <paramref name="keep"/> is true;
    /// <paramref name="atEnd"/> (optional) sees each completed pass's (rows read, rows kept), e.g. to explain an empty result;
    /// <paramref name="cancellationToken"/> is checked between the inner reads a read makes to find a kept row (they can
    /// be the whole pass).</summary>
    internal static IRowStream Where(IRowStream stream, Func<long, bool> keep, Action<long, long>? atEnd = null, CancellationToken cancellationToken = default)
        => new FilteredStream(stream, keep, atEnd, cancellationToken);

    /// <summary>Calls <paramref name="body"/> on every block of one pass (block, rows), checking cancellation between blocks.</summary>
    internal static long ForEachBlock(IRowStream stream, RowBlockVisitor body, CancellationToken cancellationToken)
    {
        var buffer = new float[RowsPerBlock(stream.Width) * stream.Width];
        long total = 0;
        using var cursor = stream.Open();
        for (int n; (n = cursor.Read(buffer)) > 0; total += n)
        {
            cancellationToken.ThrowIfCancellationRequested();
            body(buffer.AsSpan(0, n * stream.Width), n);
        }
        return total;
    }

    /// <summary>
    /// A uniform sample of at most <paramref name="maxRows"/> rows of one pass (reservoir sampling, seeded), in pass
    /// order. A pass with at most that many rows is returned whole, so a small stream gives exactly what its rows in
    /// memory give. Used where a model's preparation needs rows at once (RNADE's initial component means).
    /// </summary>
    internal static RowMatrix Sample(IRowStream stream, int maxRows, RandomStream random, CancellationToken cancellationToken)
    {
        int d = stream.Width;
        var kept = Array.Empty<float>(); // grown as rows arrive: a short pass of wide rows must not pay for maxRows of them
        var position = new long[maxRows];
        long seen = 0;
        ForEachBlock(stream, (block, n) =>
        {
            for (int r = 0; r < n; r++, seen++)
            {
                long slot = seen < maxRows ? seen : (long)(random.NextUInt64() % (ulong)(seen + 1));
                if (slot >= maxRows) continue;
                if ((slot + 1) * d > kept.Length) kept = Grown(kept, (int)slot + 1, maxRows, d, "StreamingOptions.SampleRows");
                block.Slice(r * d, d).CopyTo(kept.AsSpan((int)slot * d, d));
                position[slot] = seen;
            }
        }, cancellationToken);
        int count = (int)Math.Min(seen, maxRows);
        var byPosition = new int[count];
        for (int i = 0; i < count; i++) byPosition[i] = i;
        Array.Sort(position, byPosition, 0, count);
        var result = new RowMatrix(count, d);
        for (int i = 0; i < count; i++) kept.AsSpan(byPosition[i] * d, d).CopyTo(result.Row(i));
        return result;
    }

    /// <summary>The first <paramref name="maxRows"/> rows of a pass (fewer if the pass is shorter), checking cancellation
    /// before every read: a user's stream gets no token, and the rows before the first one a filtered stream keeps (a
    /// hashed validation split) can be the whole pass.</summary>
    internal static RowMatrix Head(IRowStream stream, int maxRows, CancellationToken cancellationToken)
    {
        int d = stream.Width;
        var values = Array.Empty<float>(); // grown as rows arrive, as in Sample
        int rows = 0;
        using (var cursor = stream.Open())
            for (int n = 1; rows < maxRows && n > 0; rows += n)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if ((long)(rows + 1) * d > values.Length) values = Grown(values, rows + 1, maxRows, d, nameof(maxRows));
                n = cursor.Read(values.AsSpan(rows * d));
            }
        cancellationToken.ThrowIfCancellationRequested();
        return new RowMatrix(values, rows, d);
    }

    /// <summary>
    /// <paramref name="buffer"/> (rows of <paramref name="width"/> floats) copied into one that holds at least
    /// <paramref name="rowsNeeded"/> rows: twice the rows it held (at least 16), at most <paramref name="maxRows"/>. A
    /// size beyond the largest array is refused naming <paramref name="setting"/>, the number of rows asked for.
    /// </summary>
    internal static float[] Grown(float[] buffer, int rowsNeeded, int maxRows, int width, string setting)
    {
        int held = width == 0 ? 0 : buffer.Length / width;
        long rows = Math.Min(maxRows, Math.Max(rowsNeeded, Math.Max(16L, 2L * held)));
        if (rows * width > Array.MaxLength)
            throw new ArgumentOutOfRangeException(setting, maxRows,
                FormattableString.Invariant($"{rows:N0} rows of {width:N0} columns exceed the largest array ({Array.MaxLength:N0} values); lower {setting} for data this wide."));
        var grown = new float[rows * width];
        buffer.CopyTo(grown, 0);
        return grown;
    }

    private sealed class MatrixStream(RowMatrix m) : IRowStream
    {
        public int Width => m.Columns;
        public long? Count => m.Rows;
        public IRowCursor Open() => new Cursor(m);

        private sealed class Cursor(RowMatrix m) : IRowCursor
        {
            private int _next;
            public int Read(Span<float> destination)
            {
                int n = Math.Min(m.Rows - _next, destination.Length / Math.Max(1, m.Columns));
                m.Values.AsSpan(_next * m.Columns, n * m.Columns).CopyTo(destination);
                _next += n;
                return n;
            }
            public void Dispose() { }
        }
    }

    /// <summary>
    /// <see cref="Map"/>'s stream, and <see cref="Checked"/>'s (<paramref name="source"/>: the data's name in errors).
    /// The count the inner cursor returns is checked before anything uses it: a user's cursor returning −1 (the
    /// end-of-pass value of Java's and C's readers) made the hashed validation split read again forever, and a count
    /// beyond the destination had the passes read the buffer past the rows written (stale rows trained on) or throw an
    /// ArgumentOutOfRangeException that named nothing.
    /// </summary>
    private sealed class MappedStream(IRowStream inner, RowBlockMap map, string? source = null, PassRecord? passes = null) : IRowStream
    {
        /// <summary>Whether every pass, this stream's or through a stream that maps it, is compared with the first.</summary>
        public bool ComparesPasses => passes is not null || inner is MappedStream { ComparesPasses: true };
        public int Width => inner.Width;
        public long? Count => inner.Count;
        public IRowCursor Open() => new Cursor(inner.Open(), map, inner.Width, source, passes, passes is null ? null : inner.Count);

        private sealed class Cursor(IRowCursor inner, RowBlockMap map, int width, string? source, PassRecord? passes, long? declared) : IRowCursor
        {
            private long _position;
            private ulong _fingerprint = PassRecord.EmptyFingerprint;
            private bool _ended;
            public int Read(Span<float> destination)
            {
                int n = inner.Read(destination), room = destination.Length / Math.Max(1, width);
                if (n < 0 || n > room)
                    throw new DataValidationException(_position, -1, string.Create(System.Globalization.CultureInfo.InvariantCulture,
                        $"the cursor returned {n} rows for a destination of {room} rows (IRowCursor.Read returns the rows it wrote, 0 at the end of the pass)"), source);
                if (n > 0)
                {
                    passes?.CheckLength(_position + n, declared);
                    map(destination, n, _position);
                    if (passes is not null) _fingerprint = PassRecord.Fingerprint(_fingerprint, destination[..(n * width)], width);
                }
                else if (passes is not null && !_ended) { _ended = true; passes.End(_position, _fingerprint, declared); }
                _position += n;
                return n;
            }
            public void Dispose() => inner.Dispose();
        }
    }

    /// <summary>
    /// What the first complete pass of a checked stream read — its rows and a fingerprint of their values in order —
    /// against which every later complete pass (and the length of every pass) is compared. Reproducible training, the
    /// hashed validation split (by position) and the standardiser fitted in the first pass all rest on every pass
    /// yielding the same rows in the same order; a source that broke it (a transform drawing new random values per
    /// cursor, a file appended to while training, a view whose row count disagrees with its cursors) trained silently
    /// on other rows every epoch, validating on rows that other epochs had trained on. A pass left before its end (the
    /// head a Fit reads to know the data is not empty) is compared only as far as its length goes.
    /// </summary>
    private sealed class PassRecord(string? source)
    {
        internal const ulong EmptyFingerprint = 0xCBF29CE484222325UL;
        private const ulong Prime = 0x100000001B3UL;
        private long _rows = -1;
        private ulong _fingerprint;

        private const string Remedy = " (streamed training reads the data once per pass and needs every pass to yield the same rows in the same " +
            "order: make the source deterministic — a transform seeded once, not per cursor; data that does not change while training — or train " +
            "in memory: a RowMatrix, in ML.NET TrainingData = InMemory)";

        /// <summary>A pass that has read <paramref name="rows"/> rows so far: refused as soon as it is longer than the
        /// first pass or than the declared count.</summary>
        public void CheckLength(long rows, long? declared)
        {
            if (declared is long d && rows > d) throw Changed(d, FormattableString.Invariant($"a pass over the data read more rows than the data says it has ({d:N0}: IRowStream.Count, through ML.NET the view's GetRowCount())"));
            if (_rows >= 0 && rows > _rows) throw Changed(_rows, FormattableString.Invariant($"a pass over the data read more rows than the first pass ({_rows:N0})"));
        }

        /// <summary>The end of a pass that read <paramref name="rows"/> rows with <paramref name="fingerprint"/>.</summary>
        public void End(long rows, ulong fingerprint, long? declared)
        {
            if (declared is long d && rows != d) throw Changed(rows, FormattableString.Invariant($"a pass over the data ended after {rows:N0} rows, but the data says it has {d:N0} (IRowStream.Count, through ML.NET the view's GetRowCount())"));
            if (_rows < 0) { _rows = rows; _fingerprint = fingerprint; return; }
            if (rows != _rows) throw Changed(rows, FormattableString.Invariant($"a pass over the data ended after {rows:N0} rows, the first pass after {_rows:N0}"));
            if (fingerprint != _fingerprint) throw Changed(-1, FormattableString.Invariant($"a pass over the data read other values than the first pass: the same {rows:N0} rows, in another order or with other values"));
        }

        private DataValidationException Changed(long row, string problem) => new(row, -1, problem + Remedy, source);

        /// <summary>FNV-1a steps (x ← (x ^ value) · prime) over the rows' bits, per row (rows are never split across
        /// reads, so the fingerprint does not depend on how a pass is cut into reads): a row's whole 64-byte pieces go to
        /// four independent 8-lane running values (eight floats' pairs at a time, in the order of the row), which are
        /// then folded into the running value with the rest of the row two floats at a time. Every step, and every fold,
        /// is a bijection of each value it takes, so a single changed value always changes the fingerprint. The four
        /// chains keep the multiplies' latency off the read (a 784-float row: about 0.14 µs, against 0.54 µs for one
        /// scalar chain). Only compared within a process, so its values need not match other versions.</summary>
        public static ulong Fingerprint(ulong h, ReadOnlySpan<float> rows, int width)
        {
            var prime = Vector512.Create(Prime);
            for (int start = 0; start < rows.Length; start += width)
            {
                var row = rows.Slice(start, width);
                ref float first = ref MemoryMarshal.GetReference(row);
                int j = 0;
                if (width >= 16)
                {
                    var a = Vector512.Create(h) ^ LaneSeeds;
                    Vector512<ulong> b = a ^ Vector512.Create(8UL), c = a ^ Vector512.Create(16UL), d = a ^ Vector512.Create(24UL);
                    for (; j + 64 <= width; j += 64)
                    {
                        a = (a ^ Vector512.LoadUnsafe(ref first, (nuint)j).AsUInt64()) * prime;
                        b = (b ^ Vector512.LoadUnsafe(ref first, (nuint)j + 16).AsUInt64()) * prime;
                        c = (c ^ Vector512.LoadUnsafe(ref first, (nuint)j + 32).AsUInt64()) * prime;
                        d = (d ^ Vector512.LoadUnsafe(ref first, (nuint)j + 48).AsUInt64()) * prime;
                    }
                    for (; j + 16 <= width; j += 16) a = (a ^ Vector512.LoadUnsafe(ref first, (nuint)j).AsUInt64()) * prime;
                    a = (((a ^ b) * prime ^ c) * prime) ^ d;
                    for (int lane = 0; lane < 8; lane++) h = (h ^ a.GetElement(lane)) * Prime;
                }
                for (; j + 2 <= width; j += 2) h = (h ^ Unsafe.ReadUnaligned<ulong>(ref Unsafe.As<float, byte>(ref Unsafe.Add(ref first, j)))) * Prime;
                if (j < width) h = (h ^ BitConverter.SingleToUInt32Bits(row[j])) * Prime;
            }
            return h;
        }

        private static readonly Vector512<ulong> LaneSeeds = Vector512.Create(1UL, 2, 3, 4, 5, 6, 7, 8);
    }

    private sealed class FilteredStream(IRowStream inner, Func<long, bool> keep, Action<long, long>? atEnd, CancellationToken cancellationToken) : IRowStream
    {
        public int Width => inner.Width;
        public long? Count => null;
        public IRowCursor Open() => new Cursor(inner.Open(), keep, inner.Width, atEnd, cancellationToken);

        private sealed class Cursor(IRowCursor inner, Func<long, bool> keep, int width, Action<long, long>? atEnd, CancellationToken cancellationToken) : IRowCursor
        {
            private long _position, _kept;
            public int Read(Span<float> destination)
            {
                // Reads into the destination and compacts the kept rows to its front; reads again if none was kept.
                while (true)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    int n = inner.Read(destination);
                    if (n == 0) { atEnd?.Invoke(_position, _kept); return 0; }
                    int kept = 0;
                    for (int r = 0; r < n; r++, _position++)
                    {
                        if (!keep(_position)) continue;
                        if (kept != r) destination.Slice(r * width, width).CopyTo(destination.Slice(kept * width, width));
                        kept++;
                    }
                    _kept += kept;
                    if (kept > 0) return kept;
                }
            }
            public void Dispose() => inner.Dispose();
        }
    }
}
