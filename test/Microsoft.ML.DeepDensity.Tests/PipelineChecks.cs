using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// Our transformers in ordinary ML.NET pipelines, checked the way ML.NET checks its own transforms: every subset of the
/// columns, every kind of cursor (single, cursor set, shuffled, filtered, cached), every reader (GetColumn,
/// CreateEnumerable, Preview) gives the same values — live and after save → load.
/// </summary>
internal static class PipelineChecks
{
    /// <summary>A model family's estimator, with the ML.NET-side settings (column names...) adjustable.</summary>
    public delegate IEstimator<ITransformer> Family(MLContext ml, Action<DensityEstimatorOptions>? configure);

    public static T With<T>(Action<DensityEstimatorOptions>? configure, T options) where T : DensityEstimatorOptions
    {
        configure?.Invoke(options);
        return options;
    }

    private static readonly string[] Second = { "LogDensity2", "Score2", "PredictedLabel2" };

    /// <param name="trainRows">Training rows (a class with a known-size Features vector and a Label).</param>
    /// <param name="testRows">Rows scored; some must have Label 1.</param>
    public static void Run<TRow>(string family, Family make, List<TRow> trainRows, List<TRow> testRows, Func<TRow, float[]> features)
        where TRow : class
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(trainRows);
        var test = ml.Data.LoadFromEnumerable(testRows);
        var x = testRows.Select(features).ToList();

        // One of ours with every kind of output column; the values every read below must give.
        var single = make(ml, o => { o.StandardErrorColumnName = "StdErr"; o.SampleColumnName = "Sample"; }).Fit(train);
        var engine = single.GetDensityModel();
        var expected = engine.LogDensity(RowMatrix.FromRows(x));
        var scored = single.Transform(test);
        var reference = Read(scored, scored.GetRowCursor(scored.Schema));
        Assert.Equal(expected, reference.Select(r => (float)r.Values["LogDensity"]!));
        EveryColumnSubsetAgrees(family, scored, reference);

        // Readers: GetColumn, CreateEnumerable with and without a density field, Preview.
        Assert.Equal(testRows.Count, scored.GetColumn<float>("Label").Count());
        Assert.Equal(x, scored.GetColumn<float[]>("Features"));
        Assert.Equal(expected, scored.GetColumn<float>("LogDensity"));
        Assert.Equal(x, ml.Data.CreateEnumerable<FeaturesAndLabel>(scored, reuseRowObject: false).Select(r => r.Features));
        Assert.Equal(testRows.Count, ml.Data.CreateEnumerable<LabelOnly>(scored, reuseRowObject: true).Count());
        var withDensity = ml.Data.CreateEnumerable<WithDensity>(scored, reuseRowObject: false).ToList();
        Assert.Equal(expected, withDensity.Select(r => r.LogDensity));
        Assert.Equal(x, withDensity.Select(r => r.Features));
        var preview = scored.Preview(maxRows: 7);
        for (int i = 0; i < 7; i++)
            Assert.Equal(expected[i], (float)preview.RowView[i].Values.Single(kv => kv.Key == "LogDensity").Value);

        // Row filters over our output (on our column and on a pass-through column), then upstream of us.
        float median = expected.OrderBy(v => v).ElementAt(expected.Length / 2);
        var kept = ml.Data.FilterRowsByColumn(scored, "LogDensity", lowerBound: median, upperBound: double.PositiveInfinity);
        Assert.Equal(expected.Where(v => v >= median), kept.GetColumn<float>("LogDensity"));
        var labels = scored.GetColumn<float>("Label").ToArray();
        var outliers = ml.Data.FilterRowsByColumn(scored, "Label", lowerBound: 0.5, upperBound: 2);
        Assert.Equal(expected.Where((_, i) => labels[i] > 0.5), outliers.GetColumn<float>("LogDensity"));
        Assert.Equal(Enumerable.Range(0, labels.Length).Where(i => labels[i] <= 0.5).Select(i => expected[i]),
            ml.Data.FilterByCustomPredicate<LabelOnly>(scored, r => r.Label > 0.5).GetColumn<float>("LogDensity"));
        Assert.Equal(expected.Take(17), single.Transform(ml.Data.TakeRows(test, 17)).GetColumn<float>("LogDensity"));
        Assert.Equal(expected.Where((_, i) => labels[i] > 0.5),
            single.Transform(ml.Data.FilterRowsByColumn(test, "Label", lowerBound: 0.5, upperBound: 2)).GetColumn<float>("LogDensity"));

        // Shuffled input, shuffled and parallel cursors over a cached input, a cached output: the same value per row.
        var cachedInput = ml.Data.Cache(test);
        var overCache = single.Transform(cachedInput);
        AssertSameById(family + " cursor set", reference, ReadSet(overCache, 3));
        AssertSameById(family + " shuffled cursor", reference, Read(overCache, overCache.GetRowCursor(overCache.Schema, new Random(5))));
        AssertSameById(family + " cached output", reference, Read(ml.Data.Cache(scored), null));
        var shuffled = single.Transform(ml.Data.ShuffleRows(cachedInput, seed: 3));
        var shuffledX = shuffled.GetColumn<float[]>("Features").ToList();
        AssertClose(family + " shuffled input", engine.LogDensity(RowMatrix.FromRows(shuffledX)), shuffled.GetColumn<float>("LogDensity").ToArray());

        // Estimators after ours (normalizer, concatenation, a built-in trainer) read our pass-through columns.
        var after = make(ml, null)
            .Append(ml.Transforms.NormalizeMinMax("Features"))
            .Append(ml.Transforms.Concatenate("Both", "Features", "Label"))
            .Append(ml.Transforms.Concatenate("Densities", "LogDensity", "Score"))
            .Append(ml.AnomalyDetection.Trainers.RandomizedPca("Features", rank: 2, seed: 3))
            .Fit(train);
        var afterOut = after.Transform(test);
        AssertClose(family + " ours then others", expected, afterOut.GetColumn<float>("LogDensity").ToArray());
        var normalizer = ml.Transforms.NormalizeMinMax("Features").Fit(train);
        var normalized = normalizer.Transform(test).GetColumn<float[]>("Features").ToList();
        Assert.Equal(normalized, afterOut.GetColumn<float[]>("Features"));
        Assert.Equal(normalized.Select((f, i) => f.Append(labels[i]).ToArray()), afterOut.GetColumn<float[]>("Both"));
        Assert.Equal(expected.Select(v => new[] { v, -v }), afterOut.GetColumn<float[]>("Densities"));
        var pca = after.Last();
        Assert.Equal(pca.Transform(normalizer.Transform(test)).GetColumn<float>("Score"), afterOut.GetColumn<float>("Score"));

        // Estimators before ours: our LogDensity is of the features as they reach us.
        var before = ml.Transforms.Concatenate("Features", "Features")
            .Append(ml.Transforms.NormalizeMinMax("Features"))
            .Append(ml.AnomalyDetection.Trainers.RandomizedPca("Features", rank: 2, seed: 3))
            .Append(make(ml, null))
            .Fit(train);
        var beforeOut = before.Transform(test);
        var seen = beforeOut.GetColumn<float[]>("Features").ToList();
        AssertClose(family + " others then ours", before.GetDensityModel().LogDensity(RowMatrix.FromRows(seen)), beforeOut.GetColumn<float>("LogDensity").ToArray());
        Assert.Equal(beforeOut.GetColumn<float>("LogDensity").Select(v => -v), beforeOut.GetColumn<float>("Score"));

        // Two of ours in one pipeline, with distinct output names; then the same after save → load.
        var two = make(ml, o => { o.StandardErrorColumnName = "StdErr"; o.SampleColumnName = "Sample"; })
            .Append(make(ml, o => { o.LogDensityColumnName = Second[0]; o.ScoreColumnName = Second[1]; o.PredictedLabelColumnName = Second[2]; }))
            .Fit(train);
        var models = two.GetDensityTransformers();
        Assert.Equal(2, models.Count);
        var twoOut = two.Transform(test);
        var twoReference = Read(twoOut, twoOut.GetRowCursor(twoOut.Schema));
        Assert.Equal(expected, twoOut.GetColumn<float>("LogDensity"));
        Assert.Equal(models[1].Model.LogDensity(RowMatrix.FromRows(x)), twoOut.GetColumn<float>(Second[0]));
        string[] some = { "Features", "Label", "LogDensity", "Sample", Second[0], Second[2] };
        EveryColumnSubsetAgrees(family + " two of ours", twoOut, twoReference, some);

        using var zip = new MemoryStream();
        ml.Model.Save(two, train.Schema, zip);
        zip.Position = 0;
        var ml2 = new MLContext(seed: 9);
        var loaded = ml2.Model.Load(zip, out _);
        var loadedOut = loaded.Transform(ml2.Data.LoadFromEnumerable(testRows));
        var loadedReference = Read(loadedOut, loadedOut.GetRowCursor(loadedOut.Schema));
        AssertSameById(family + " loaded", twoReference, loadedReference);
        EveryColumnSubsetAgrees(family + " loaded", loadedOut, loadedReference, some);
        Assert.Equal(testRows.Count, ml2.Data.CreateEnumerable<LabelOnly>(loadedOut, reuseRowObject: true).Count());
    }

    /// <summary>Output-name settings whose schemas <see cref="SchemasAgree"/> checks: the defaults; the optional columns;
    /// outputs named like input columns (the feature column, Label: ML.NET puts such a column where the input column was,
    /// the input one hidden); spaces and odd characters.</summary>
    public static readonly (string Name, Action<DensityEstimatorOptions> Configure)[] OutputNamings =
    {
        ("defaults", _ => { }),
        ("optional columns", o => { o.StandardErrorColumnName = "StdErr"; o.SampleColumnName = "Sample"; }),
        ("log-density named like the feature column", o => o.LogDensityColumnName = "Features"),
        ("score named like the feature column, label like Label", o => { o.ScoreColumnName = "Features"; o.PredictedLabelColumnName = "Label"; }),
        ("optional columns named like input columns", o => { o.StandardErrorColumnName = "Features"; o.SampleColumnName = "Label"; }),
        ("odd names", o => { o.LogDensityColumnName = "log density (nats)"; o.ScoreColumnName = "score, 1/é"; o.PredictedLabelColumnName = "is \"odd\" [x]"; }),
    };

    /// <summary>
    /// What ML.NET's own <c>TestEstimatorCore</c> checks of an estimator, and more, for each of <see cref="OutputNamings"/>:
    /// the estimator's <c>GetOutputSchema(SchemaShape)</c> promises the visible columns the transformer delivers (names in
    /// order, kind, item type, key-ness, annotation names); the transformer's <c>GetOutputSchema</c> is the schema of its
    /// <c>Transform</c> and of its row-to-row mapper (what a PredictionEngine binds); and the same pipeline saved (with and without the input schema) and loaded in a fresh context —
    /// with the plain <c>Model.Load</c>, from a stream and from a path, and with <c>LoadWithLiveDensityModels</c> — gives
    /// the live output schema: every column, hidden ones included, in the same order, with the same types (the plain load's
    /// sample column is a variable-size vector, as documented).
    /// </summary>
    public static void SchemasAgree<TRow>(string family, Family make, List<TRow> trainRows, List<TRow> testRows) where TRow : class
    {
        foreach (var (naming, configure) in OutputNamings)
        {
            string what = $"{family}, {naming}";
            var ml = new MLContext(seed: 1);
            var train = ml.Data.LoadFromEnumerable(trainRows);
            var test = ml.Data.LoadFromEnumerable(testRows);
            // An upstream stage that annotates the feature column (NormalizeMinMax marks it normalized).
            var estimator = ml.Transforms.NormalizeMinMax("Features").Append(make(ml, configure));
            var model = estimator.Fit(train);
            SchemaAgreesWith(what, ml, estimator, model, train, test);
        }
    }

    /// <summary>The checks of <see cref="SchemasAgree"/> for one fitted estimator (also used by the sequence models).</summary>
    public static void SchemaAgreesWith(string what, MLContext ml, IEstimator<ITransformer> estimator, ITransformer model, IDataView train, IDataView test,
        string? variableSizeWhenLoaded = null)
    {
        var live = model.GetOutputSchema(test.Schema);
        AssertSameSchema(what + " (GetOutputSchema vs Transform)", live, model.Transform(test).Schema);
        Assert.True(model.IsRowToRowMapper, what + ": not a row-to-row mapper");
        AssertSameSchema(what + " (row-to-row mapper)", live, model.GetRowToRowMapper(test.Schema).OutputSchema);
        AssertPromised(what, estimator.GetOutputSchema(Shape(train.Schema)), live);

        var dir = TestTemp.Directory("dd-schema-");
        foreach (bool withSchema in new[] { true, false })
        {
            string path = Path.Combine(dir, $"model-{withSchema}.zip");
            ml.Model.Save(model, withSchema ? train.Schema : null, path);
            var ml2 = new MLContext(seed: 3);
            using (var stream = File.OpenRead(path))
                AssertSameSchema($"{what} (Model.Load from a stream, input schema saved: {withSchema})", live,
                    ml2.Model.Load(stream, out _).Transform(test).Schema, variableSizeWhenLoaded ?? LiveSampleColumn(model));
            AssertSameSchema($"{what} (Model.Load from a path, input schema saved: {withSchema})", live,
                ml2.Model.Load(path, out _).GetOutputSchema(test.Schema), variableSizeWhenLoaded ?? LiveSampleColumn(model));
            var loaded = ml2.Model.Load(path, out _);
            AssertSameSchema($"{what} (Model.Load, row-to-row mapper, input schema saved: {withSchema})", live,
                loaded.GetRowToRowMapper(test.Schema).OutputSchema, variableSizeWhenLoaded ?? LiveSampleColumn(model));
            var liveLoaded = ml2.Model.LoadWithLiveDensityModels(path, out _);
            AssertSameSchema($"{what} (LoadWithLiveDensityModels, input schema saved: {withSchema})", live, liveLoaded.Transform(test).Schema);
            AssertSameSchema($"{what} (LoadWithLiveDensityModels, row-to-row mapper, input schema saved: {withSchema})", live,
                liveLoaded.GetRowToRowMapper(test.Schema).OutputSchema);
        }
    }

    private static string? LiveSampleColumn(ITransformer model)
        => model.GetDensityTransformers().Select(t => t.SampleColumnName).SingleOrDefault(n => n is not null);

    /// <summary>ML.NET's <c>SchemaShape.Create(DataViewSchema)</c> (internal; ML.NET's tests call it the same way).</summary>
    public static SchemaShape Shape(DataViewSchema schema)
        => (SchemaShape)typeof(SchemaShape).GetMethod("Create", System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic,
            new[] { typeof(DataViewSchema) })!.Invoke(null, new object[] { schema })!;

    /// <summary>The promised shape has the delivered schema's visible columns, in its order, each of the same kind, item
    /// type, key-ness and annotation names (ML.NET's <c>CheckSameSchemaShape</c> asks for the names in any order and
    /// compatible columns; <c>SchemaShape.Column.IsCompatibleWith</c> is internal).</summary>
    private static void AssertPromised(string what, SchemaShape promised, DataViewSchema deliveredSchema)
    {
        var delivered = Shape(deliveredSchema);
        Assert.True(promised.Select(c => c.Name).SequenceEqual(delivered.Select(c => c.Name)),
            $"{what}: GetOutputSchema(SchemaShape) promises [{string.Join(", ", promised.Select(c => c.Name))}], the transformer delivers [{string.Join(", ", delivered.Select(c => c.Name))}]");
        foreach (var (p, d) in promised.Zip(delivered))
        {
            Assert.True((p.Kind, p.ItemType, p.IsKey) == (d.Kind, d.ItemType, d.IsKey), $"{what}: column {p.Name}: promised {Describe(p)}, delivered {Describe(d)}");
            Assert.Equal(p.Annotations.Select(a => a.Name).Order(), d.Annotations.Select(a => a.Name).Order());
        }
    }

    private static string Describe(SchemaShape.Column c)
        => $"{(c.IsKey ? "key " : "")}{c.ItemType} {c.Kind} [{string.Join(", ", c.Annotations.Select(a => a.Name))}]";

    /// <summary>Every column (hidden ones included) in the same order, with the same name, hidden flag and type; the column
    /// <paramref name="variableSize"/> may be a variable-size vector of the same item type.</summary>
    private static void AssertSameSchema(string what, DataViewSchema expected, DataViewSchema actual, string? variableSize = null)
    {
        static string Names(DataViewSchema s) => string.Join(", ", s.Select(c => (c.IsHidden ? "~" : "") + c.Name));
        Assert.True(Names(expected) == Names(actual), $"{what}: expected [{Names(expected)}], got [{Names(actual)}]");
        foreach (var (e, a) in expected.Zip(actual))
        {
            bool sizeOnly = e.Name == variableSize && !e.IsHidden && a.Type is VectorDataViewType { IsKnownSize: false } va
                && e.Type is VectorDataViewType ve && va.ItemType == ve.ItemType;
            Assert.True(sizeOnly || e.Type.Equals(a.Type), $"{what}: column {e.Name} is {a.Type}, expected {e.Type}");
        }
    }

    /// <summary>Every subset of the visible columns (none of ours, only ours, mixed) read through its own cursor gives
    /// the reference values, bit for bit (the same blocks are scored).</summary>
    private static void EveryColumnSubsetAgrees(string what, IDataView view, List<RowValues> reference, string[]? names = null)
    {
        var columns = names is null ? view.Schema.Where(c => !c.IsHidden).ToArray() : names.Select(n => view.Schema[n]).ToArray();
        Assert.InRange(columns.Length, 2, 8);
        for (int mask = 0; mask < 1 << columns.Length; mask++)
        {
            var subset = columns.Where((_, i) => (mask >> i & 1) != 0).ToArray();
            using var cursor = view.GetRowCursor(subset);
            foreach (var c in view.Schema) Assert.Equal(subset.Any(s => s.Index == c.Index), cursor.IsColumnActive(c));
            var got = Read(view, cursor, subset);
            Assert.Equal(reference.Count, got.Count);
            for (int r = 0; r < got.Count; r++)
            {
                Assert.Equal(reference[r].Id, got[r].Id);
                foreach (var c in subset)
                    Assert.True(Same(reference[r].Values[c.Name], got[r].Values[c.Name], 0),
                        $"{what}: column {c.Name} row {r} differs when read with {{{string.Join(", ", subset.Select(s => s.Name))}}}");
            }
        }
    }

    /// <summary>One row's values by column name (visible columns only, so names are unique).</summary>
    public sealed record RowValues(DataViewRowId Id, Dictionary<string, object?> Values);

    /// <summary>All rows of one cursor (<paramref name="cursor"/> null: a new cursor over every visible column).</summary>
    private static List<RowValues> Read(IDataView view, DataViewRowCursor? cursor, IEnumerable<DataViewSchema.Column>? columns = null)
    {
        var cols = (columns ?? view.Schema.Where(c => !c.IsHidden)).ToArray();
        cursor ??= view.GetRowCursor(cols);
        using var owned = cursor;
        var id = cursor.GetIdGetter();
        var getters = cols.Select(c => (c.Name, Get: Getter(cursor, c))).ToArray();
        var rows = new List<RowValues>();
        while (cursor.MoveNext())
        {
            DataViewRowId rowId = default;
            id(ref rowId);
            var values = new Dictionary<string, object?>();
            foreach (var (name, get) in getters) values[name] = get();
            rows.Add(new RowValues(rowId, values));
        }
        return rows;
    }

    private static List<RowValues> ReadSet(IDataView view, int n)
    {
        var cols = view.Schema.Where(c => !c.IsHidden).ToArray();
        var cursors = view.GetRowCursorSet(cols, n);
        return cursors.SelectMany(c => Read(view, c, cols)).ToList();
    }

    private static Func<object?> Getter(DataViewRowCursor cursor, DataViewSchema.Column c)
    {
        if (c.Type == NumberDataViewType.Single) { var g = cursor.GetGetter<float>(c); return () => { float v = 0; g(ref v); return v; }; }
        if (c.Type == BooleanDataViewType.Instance) { var g = cursor.GetGetter<bool>(c); return () => { bool v = false; g(ref v); return v; }; }
        if (c.Type is VectorDataViewType { ItemType: NumberDataViewType } vt && vt.ItemType == NumberDataViewType.Single)
        {
            var g = cursor.GetGetter<VBuffer<float>>(c);
            return () => { VBuffer<float> v = default; g(ref v); return v.DenseValues().ToArray(); };
        }
        throw new NotSupportedException($"column {c.Name} of type {c.Type}");
    }

    /// <summary>Rows matched by id (cursor sets and shuffles reorder them), values equal within float rounding.</summary>
    private static void AssertSameById(string what, List<RowValues> expected, List<RowValues> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        var byId = expected.ToDictionary(r => r.Id);
        foreach (var row in actual)
        {
            var want = byId[row.Id];
            Assert.Equal(want.Values.Keys.Order(), row.Values.Keys.Order());
            foreach (var (c, value) in row.Values)
                Assert.True(Same(want.Values[c], value, 1e-5f), $"{what}: column {c} of row {row.Id} differs: {want.Values[c]} vs {value}");
        }
    }

    private static bool Same(object? a, object? b, float tolerance) => (a, b) switch
    {
        (float x, float y) => Close(x, y, tolerance),
        (float[] x, float[] y) => x.Length == y.Length && x.Zip(y).All(p => Close(p.First, p.Second, tolerance)),
        _ => Equals(a, b),
    };

    private static bool Close(float x, float y, float tolerance)
        => x.Equals(y) || Math.Abs(x - y) <= tolerance * Math.Max(1f, Math.Abs(x));

    private static void AssertClose(string what, float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.True(Close(expected[i], actual[i], 1e-5f), $"{what}: row {i} {expected[i]} vs {actual[i]}");
    }

    public sealed class LabelOnly { public float Label { get; set; } }
    public sealed class FeaturesAndLabel { public float[] Features { get; set; } = Array.Empty<float>(); public float Label { get; set; } }
    public sealed class WithDensity
    {
        public float[] Features { get; set; } = Array.Empty<float>();
        public float Label { get; set; }
        public float LogDensity { get; set; }
        public float Score { get; set; }
        public bool PredictedLabel { get; set; }
    }
}
