using Microsoft.ML.Data;

namespace Microsoft.ML.DeepDensity.Transforms;

/// <summary>Copies of one pass-through column's values for the rows of a block (the cursor reads ahead of the consumer).</summary>
internal abstract class ColumnCache
{
    public interface ISlot { int Slot { get; } }

    public static ColumnCache Create(DataViewRowCursor input, DataViewSchema.Column column, int capacity)
    {
        Type raw = column.Type.RawType;
        Type type = raw == typeof(VBuffer<ReadOnlyMemory<char>>) ? typeof(TextVectorCache)
            : raw.IsGenericType && raw.GetGenericTypeDefinition() == typeof(VBuffer<>)
            ? typeof(VectorCache<>).MakeGenericType(raw.GetGenericArguments()[0])
            : raw == typeof(ReadOnlyMemory<char>) ? typeof(TextCache) : typeof(ValueCache<>).MakeGenericType(raw);
        return (ColumnCache)Activator.CreateInstance(type, input, column, capacity)!;
    }

    public abstract void Capture(int slot);
    public abstract Delegate MakeGetter(ISlot cursor);

    private static int Slot(ISlot c) => c.Slot >= 0 ? c.Slot : throw new InvalidOperationException("The cursor has no current row.");

    private sealed class ValueCache<T> : ColumnCache
    {
        private readonly ValueGetter<T> _getter;
        private readonly T[] _values;
        public ValueCache(DataViewRowCursor input, DataViewSchema.Column column, int capacity)
        { _getter = input.GetGetter<T>(column); _values = new T[capacity]; }
        public override void Capture(int slot) => _getter(ref _values[slot]);
        public override Delegate MakeGetter(ISlot cursor) => (ValueGetter<T>)((ref T v) => v = _values[Slot(cursor)]);
    }

    private sealed class VectorCache<T> : ColumnCache
    {
        private readonly ValueGetter<VBuffer<T>> _getter;
        private readonly VBuffer<T>[] _values;
        private VBuffer<T> _scratch;
        public VectorCache(DataViewRowCursor input, DataViewSchema.Column column, int capacity)
        { _getter = input.GetGetter<VBuffer<T>>(column); _values = new VBuffer<T>[capacity]; }
        public override void Capture(int slot) { _getter(ref _scratch); _scratch.CopyTo(ref _values[slot]); }
        public override Delegate MakeGetter(ISlot cursor) => (ValueGetter<VBuffer<T>>)((ref VBuffer<T> v) => _values[Slot(cursor)].CopyTo(ref v));
    }

    private sealed class TextCache : ColumnCache
    {
        private readonly ValueGetter<ReadOnlyMemory<char>> _getter;
        private readonly ReadOnlyMemory<char>[] _values;
        private ReadOnlyMemory<char> _scratch;
        public TextCache(DataViewRowCursor input, DataViewSchema.Column column, int capacity)
        { _getter = input.GetGetter<ReadOnlyMemory<char>>(column); _values = new ReadOnlyMemory<char>[capacity]; }
        // The source may reuse the characters' buffer for the next row: keep a private copy.
        public override void Capture(int slot) { _getter(ref _scratch); _values[slot] = _scratch.Length == 0 ? default : _scratch.ToArray(); }
        public override Delegate MakeGetter(ISlot cursor) => (ValueGetter<ReadOnlyMemory<char>>)((ref ReadOnlyMemory<char> v) => v = _values[Slot(cursor)]);
    }

    /// <summary>A vector of text: copying the vector copies each value's <see cref="ReadOnlyMemory{T}"/>, not its characters,
    /// so a source that reuses its characters' buffer for the next row (as <see cref="TextCache"/> allows for a scalar) gave
    /// every row of a block the last row's text, silently. Each row's characters are copied into one private array.</summary>
    private sealed class TextVectorCache : ColumnCache
    {
        private readonly ValueGetter<VBuffer<ReadOnlyMemory<char>>> _getter;
        private readonly VBuffer<ReadOnlyMemory<char>>[] _values;
        private VBuffer<ReadOnlyMemory<char>> _scratch;
        public TextVectorCache(DataViewRowCursor input, DataViewSchema.Column column, int capacity)
        { _getter = input.GetGetter<VBuffer<ReadOnlyMemory<char>>>(column); _values = new VBuffer<ReadOnlyMemory<char>>[capacity]; }
        public override void Capture(int slot)
        {
            _getter(ref _scratch);
            _scratch.CopyTo(ref _values[slot]);
            var editor = VBufferEditor.CreateFromBuffer(ref _values[slot]);
            var values = editor.Values;
            int chars = 0;
            foreach (var t in values) chars += t.Length;
            var own = chars == 0 ? Array.Empty<char>() : new char[chars];
            for (int i = 0, at = 0; i < values.Length; i++)
            {
                int length = values[i].Length;
                if (length == 0) { values[i] = default; continue; }
                values[i].Span.CopyTo(own.AsSpan(at, length));
                values[i] = own.AsMemory(at, length);
                at += length;
            }
            _values[slot] = editor.Commit();
        }
        public override Delegate MakeGetter(ISlot cursor)
            => (ValueGetter<VBuffer<ReadOnlyMemory<char>>>)((ref VBuffer<ReadOnlyMemory<char>> v) => _values[Slot(cursor)].CopyTo(ref v));
    }
}
