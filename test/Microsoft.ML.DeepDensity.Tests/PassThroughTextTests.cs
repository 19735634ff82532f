using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// The live transformer reads a block of rows ahead and keeps copies of the pass-through columns read with its own. A text
/// value is a <see cref="ReadOnlyMemory{T}"/> view of characters that, as IDataView allows, need only stay valid until the
/// cursor moves: a source may write every row's text into one buffer. The scalar text copy kept the characters, but a
/// vector of text copied only the views, so every row of a block read the block's last row's text, without an error.
/// </summary>
public class PassThroughTextTests
{
    private const int Rows = 300;

    [Fact]
    public void TextPassingThroughBesideTheScoresIsEachRowsOwn_FromASourceThatReusesItsBuffers()
    {
        var ml = new MLContext(seed: 1);
        var model = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.ModelOptions.MaxEpochs = 1)).Fit(ml.Data.LoadFromEnumerable(TestData.Blob(60)));
        using var zip = new MemoryStream();
        ml.Model.Save(model, null, zip);
        zip.Position = 0;
        var loaded = new MLContext(seed: 2).Model.LoadWithLiveDensityModels(zip, out _);
        foreach (var transformer in new ITransformer[] { model, loaded })
        {
            var scored = transformer.Transform(new ReusingTextView(Rows));
            var (names, tags) = ReadWithLogDensity(scored);
            Assert.Equal(Enumerable.Range(0, Rows).Select(Name), names);
            Assert.Equal(Enumerable.Range(0, Rows).Select(i => $"{Tag(i, 'a')}|{Tag(i, 'b')}"), tags);
        }
    }

    private static string Name(int row) => $"n{row:D6}";
    private static string Tag(int row, char prefix) => $"{prefix}{row:D6}";

    /// <summary>Name and Tags of every row, read through one cursor that also reads LogDensity (so the block cursor serves them).</summary>
    private static (List<string> Names, List<string> Tags) ReadWithLogDensity(IDataView scored)
    {
        var columns = new[] { scored.Schema["Name"], scored.Schema["Tags"], scored.Schema["LogDensity"] };
        using var cursor = scored.GetRowCursor(columns);
        var name = cursor.GetGetter<ReadOnlyMemory<char>>(columns[0]);
        var tags = cursor.GetGetter<VBuffer<ReadOnlyMemory<char>>>(columns[1]);
        var logDensity = cursor.GetGetter<float>(columns[2]);
        ReadOnlyMemory<char> n = default;
        VBuffer<ReadOnlyMemory<char>> t = default;
        float ld = 0;
        var names = new List<string>();
        var allTags = new List<string>();
        while (cursor.MoveNext())
        {
            logDensity(ref ld);
            name(ref n);
            tags(ref t);
            names.Add(n.ToString());
            allTags.Add(string.Join("|", t.DenseValues().Select(v => v.ToString())));
        }
        return (names, allTags);
    }

    /// <summary>Features (the width of <see cref="TestData.Blob"/>'s rows), a text Name and a two-value text vector Tags, whose
    /// getters point into one character buffer per cursor, rewritten at every MoveNext.</summary>
    private sealed class ReusingTextView : IDataView
    {
        private readonly int _rows;

        public ReusingTextView(int rows)
        {
            _rows = rows;
            var builder = new DataViewSchema.Builder();
            builder.AddColumn("Features", new VectorDataViewType(NumberDataViewType.Single, Row.D));
            builder.AddColumn("Name", TextDataViewType.Instance);
            builder.AddColumn("Tags", new VectorDataViewType(TextDataViewType.Instance, 2));
            Schema = builder.ToSchema();
        }

        public bool CanShuffle => false;
        public DataViewSchema Schema { get; }
        public long? GetRowCount() => _rows;
        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) => new Cursor(this);
        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
            => new[] { GetRowCursor(columnsNeeded, rand) };

        private sealed class Cursor : DataViewRowCursor
        {
            private readonly ReusingTextView _view;
            private readonly char[] _name = new char[7], _tags = new char[14];
            private long _position = -1;

            public Cursor(ReusingTextView view) => _view = view;
            public override DataViewSchema Schema => _view.Schema;
            public override long Position => _position;
            public override long Batch => 0;
            public override bool IsColumnActive(DataViewSchema.Column column) => true;

            public override bool MoveNext()
            {
                if (++_position >= _view._rows) return false;
                int row = (int)_position;
                Name(row).CopyTo(_name);
                (Tag(row, 'a') + Tag(row, 'b')).CopyTo(_tags);
                return true;
            }

            public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId id) => id = new DataViewRowId((ulong)_position, 0);

            public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
            {
                Delegate getter = column.Name switch
                {
                    "Features" => (ValueGetter<VBuffer<float>>)((ref VBuffer<float> v) =>
                    {
                        var editor = VBufferEditor.Create(ref v, Row.D);
                        for (int j = 0; j < Row.D; j++) editor.Values[j] = (_position % (j + 3)) / 3f;
                        v = editor.Commit();
                    }),
                    "Name" => (ValueGetter<ReadOnlyMemory<char>>)((ref ReadOnlyMemory<char> v) => v = _name.AsMemory()),
                    _ => (ValueGetter<VBuffer<ReadOnlyMemory<char>>>)((ref VBuffer<ReadOnlyMemory<char>> v) =>
                    {
                        var editor = VBufferEditor.Create(ref v, 2);
                        editor.Values[0] = _tags.AsMemory(0, 7);
                        editor.Values[1] = _tags.AsMemory(7, 7);
                        v = editor.Commit();
                    }),
                };
                return (ValueGetter<TValue>)getter;
            }
        }
    }
}
