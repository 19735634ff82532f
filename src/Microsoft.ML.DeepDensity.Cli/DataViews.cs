using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;

namespace Microsoft.ML.DeepDensity.Cli;

/// <summary>Row matrices as ML.NET data views (one known-size Single vector column) and back.</summary>
public static class DataViews
{
    private sealed class Row { public float[] Features = Array.Empty<float>(); }

    /// <summary>A view with one column <paramref name="column"/> holding the rows of <paramref name="m"/>.</summary>
    public static IDataView FromMatrix(MLContext ml, RowMatrix m, string column = ModelZip.FeatureColumn)
    {
        var rows = new Row[m.Rows];
        for (int i = 0; i < m.Rows; i++) rows[i] = new Row { Features = m.Row(i).ToArray() };
        var def = SchemaDefinition.Create(typeof(Row));
        def[0].ColumnName = column;
        def[0].ColumnType = new VectorDataViewType(NumberDataViewType.Single, m.Columns);
        return ml.Data.LoadFromEnumerable(rows, def);
    }

    /// <summary>The values of a Single column, in row order.</summary>
    public static float[] Singles(IDataView view, string column)
    {
        var col = view.Schema[column];
        var result = new List<float>();
        using var cursor = view.GetRowCursor(new[] { col });
        var getter = cursor.GetGetter<float>(col);
        float v = 0;
        while (cursor.MoveNext()) { getter(ref v); result.Add(v); }
        return result.ToArray();
    }

    /// <summary>The values of a Boolean column, in row order.</summary>
    public static bool[] Booleans(IDataView view, string column)
    {
        var col = view.Schema[column];
        var result = new List<bool>();
        using var cursor = view.GetRowCursor(new[] { col });
        var getter = cursor.GetGetter<bool>(col);
        bool v = false;
        while (cursor.MoveNext()) { getter(ref v); result.Add(v); }
        return result.ToArray();
    }
}
