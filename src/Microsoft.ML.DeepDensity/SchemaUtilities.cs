using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;

namespace Microsoft.ML.DeepDensity.Transforms;

/// <summary>
/// The <c>__dd_</c> prefix of the saved chain's internal columns (<see cref="Surrogate"/>, <see cref="SequenceSurrogate"/>):
/// a saved model copies into them, then drops every one of those names, and ML.NET drops a column hidden by a copy of
/// the same name too, so a user column so named came back from <c>mlContext.Model.Load</c> missing (a PredictionEngine's
/// field left at its default) without a word. The chain's column names are fixed in the saved contracts, and a plain
/// <c>Model.Load</c> runs none of our code with the schema, so the names are refused where our code does see them:
/// column-name options when an estimator is created, input schemas at GetOutputSchema, Fit, Transform and the row mapper.
/// </summary>
internal static class ReservedColumns
{
    public const string Prefix = "__dd_";

    public static bool IsReserved(string? name) => name is not null && name.StartsWith(Prefix, StringComparison.Ordinal);

    /// <summary>Throws <see cref="ArgumentException"/> when the column-name option <paramref name="setting"/> is reserved.</summary>
    public static void CheckSetting(string setting, string? value)
    {
        if (IsReserved(value))
            throw new ArgumentException($"{setting} is '{value}': the column-name prefix '{Prefix}' is reserved for DeepDensity's internal columns " +
                "(a saved model drops every column so named); choose a name without it.", setting);
    }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first visible input column with the prefix,
    /// other than the stage's own input columns <paramref name="own"/>: a model saved before the names were refused may
    /// read a column so named, and loaded live it still scores it (saving it again is refused, <see cref="Surrogate"/>).</summary>
    public static void Check(DataViewSchema schema, IReadOnlyList<string> own)
    {
        foreach (var c in schema)
            if (!c.IsHidden && IsReserved(c.Name) && !own.Contains(c.Name)) throw Refused(c.Name);
    }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first visible input column with the prefix.</summary>
    public static void Check(DataViewSchema schema) => Check(schema, Array.Empty<string>());

    /// <inheritdoc cref="Check(DataViewSchema)"/>
    public static void Check(SchemaShape shape)
    {
        foreach (var c in shape)
            if (IsReserved(c.Name)) throw Refused(c.Name);
    }

    private static ArgumentOutOfRangeException Refused(string name)
    {
        string renamed = "dd" + name[(Prefix.Length - 1)..]; // __dd_score -> dd_score
        return new ArgumentOutOfRangeException(MissingColumn.InputSchema, $"Input column '{name}': the column-name prefix '{Prefix}' is reserved for DeepDensity's " +
            "internal columns, and a saved model would drop this column (mlContext.Model.Load would give it back missing). Rename it before " +
            $"this stage, e.g. ml.Transforms.CopyColumns(\"{renamed}\", \"{name}\").Append(ml.Transforms.DropColumns(\"{name}\")).");
    }
}

/// <summary>The error for an input column that is not in the schema: a misspelt name (a plural, a capital) is the usual
/// cause, and ML.NET's names are case-sensitive, so the message offers the nearest visible column name, or lists them.</summary>
internal static class MissingColumn
{
    /// <summary>The <see cref="ArgumentException.ParamName"/> of an input column that is missing or not as required, from
    /// Fit, Transform and GetOutputSchema alike: ML.NET's own (its transforms and trainers throw
    /// <see cref="ArgumentOutOfRangeException"/> "Could not find input column 'X'" with this ParamName), not the name of
    /// the helper's parameter that happened to hold the schema ("schema", "shape").</summary>
    internal const string InputSchema = "inputSchema";

    /// <summary>How many visible column names the message lists before "and N more".</summary>
    internal const int ListedNames = 12;

    /// <summary>"{noun} '{name}' not found in the input schema; …" for a runtime schema.</summary>
    public static ArgumentOutOfRangeException Error(string noun, string name, DataViewSchema schema)
        => Error(noun, name, schema.Where(c => !c.IsHidden).Select(c => c.Name));

    /// <summary>"{noun} '{name}' not found in the input schema; …" for an estimator's input shape.</summary>
    public static ArgumentOutOfRangeException Error(string noun, string name, SchemaShape shape)
        => Error(noun, name, shape.Select(c => c.Name));

    private static ArgumentOutOfRangeException Error(string noun, string name, IEnumerable<string> columns)
    {
        // The message ends with a full stop, except after the question "did you mean 'X'?" ("'X'?." read as a typo).
        string hint = Hint(name, columns.Distinct().ToList());
        return new(InputSchema, $"{noun} '{name}' not found in the input schema{hint}{(hint.EndsWith('?') ? "" : ".")}");
    }

    /// <summary>"; did you mean 'X'? …" when one visible name differs from <paramref name="name"/> only in case or by at
    /// most two edits (names of four or more characters), else "; its columns are: A, B, …"; empty for an empty schema.</summary>
    internal static string Hint(string name, IReadOnlyList<string> columns)
    {
        if (columns.Count == 0) return "; the input has no visible columns";
        var sameLetters = columns.FirstOrDefault(c => string.Equals(c, name, StringComparison.OrdinalIgnoreCase));
        if (sameLetters is not null) return $"; did you mean '{sameLetters}'? (column names are case-sensitive)";
        if (name.Length >= 4)
        {
            var near = columns.Select(c => (Name: c, Distance: EditDistance(name.ToLowerInvariant(), c.ToLowerInvariant(), 2)))
                .Where(c => c.Distance <= 2).OrderBy(c => c.Distance).ToList();
            if (near.Count > 0 && (near.Count == 1 || near[0].Distance < near[1].Distance)) return $"; did you mean '{near[0].Name}'?";
        }
        string listed = string.Join(", ", columns.Take(ListedNames).Select(c => $"'{c}'"));
        return $"; its columns are {listed}{(columns.Count > ListedNames ? FormattableString.Invariant($" and {columns.Count - ListedNames} more") : "")}";
    }

    /// <summary>Levenshtein distance of <paramref name="a"/> and <paramref name="b"/>, or <paramref name="limit"/> + 1 once
    /// it is sure to exceed <paramref name="limit"/> (names may be long; only near ones matter).</summary>
    internal static int EditDistance(string a, string b, int limit)
    {
        if (Math.Abs(a.Length - b.Length) > limit) return limit + 1;
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) previous[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            int rowMin = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(previous[j] + 1, current[j - 1] + 1), previous[j - 1] + cost);
                rowMin = Math.Min(rowMin, current[j]);
            }
            if (rowMin > limit) return limit + 1;
            (previous, current) = (current, previous);
        }
        return Math.Min(previous[b.Length], limit + 1);
    }
}

/// <summary>Feature-column checks with messages that name the column.</summary>
internal static class FeatureColumnCheck
{
    /// <summary>What to do with a variable-size column given to an estimator (a fitted model scores one).</summary>
    private const string TrainingNeedsKnownSize = "training needs a known-size vector of Single " +
        "(e.g. [VectorType(n)] on the input class, or Concatenate of scalar columns).";

    /// <summary>How the messages name the column: the row models' feature vector, or RNN-RNADE's frame, one per row.</summary>
    internal sealed record Role(string Noun, string Shape, string ModelSize)
    {
        public static readonly Role Feature = new("Feature column", "", "the model was trained on");
        public static readonly Role Frame = new("Frame column", " (one frame per row)", "the model's frames have");
    }

    /// <summary>Checks a runtime schema: the column exists and is a Single vector; to train (<paramref name="expectedSize"/>
    /// null) of known size, for a fitted model (<paramref name="expectedSize"/> its dimension) of that size or of
    /// variable size (its rows' lengths are then checked one by one).</summary>
    public static DataViewSchema.Column Check(DataViewSchema schema, string name, int? expectedSize, Role? role = null)
    {
        ArgumentNullException.ThrowIfNull(schema);
        role ??= Role.Feature;
        var col = schema.GetColumnOrNull(name)
            ?? throw MissingColumn.Error(role.Noun, name, schema);
        if (col.Type is not VectorDataViewType vt || vt.ItemType != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(MissingColumn.InputSchema,
                $"{role.Noun} '{name}' must be a known-size vector of Single{role.Shape}, but is {col.Type}{Remedy(name, col.Type)}.");
        // A fitted model scores a variable-size column (a TextLoader range without an end, a PredictionEngine input class
        // without [VectorType]) as the plain Model.Load of its zip must, its CustomMapping taking any float[]: the row
        // cursors and the row mapper check each row's length, naming the column and the row.
        if (!vt.IsKnownSize && expectedSize is null)
            throw new ArgumentOutOfRangeException(MissingColumn.InputSchema,
                $"{role.Noun} '{name}' is a variable-size vector; {TrainingNeedsKnownSize}");
        if (expectedSize is int n && vt.IsKnownSize && vt.Size != n)
            throw new ArgumentOutOfRangeException(MissingColumn.InputSchema,
                FormattableString.Invariant($"{role.Noun} '{name}' has {vt.Size} slots but {role.ModelSize} {n}."));
        return col;
    }

    /// <summary>How to turn a column of another type into the Single vector the models read (features, frames, sequences),
    /// when ML.NET has a transform for it: numbers and booleans convert, keys are category indices to encode (their
    /// numbers mean nothing as values), scalars go into a vector. Empty when there is none; else "; …" to append.</summary>
    internal static string Remedy(string name, DataViewType type)
        => type is VectorDataViewType v ? Remedy(name, v.ItemType, v.ItemType is KeyDataViewType, true) : Remedy(name, type, type is KeyDataViewType, false);

    /// <summary>What an estimator's input column is, for "but is …" (key, item type, kind), with its <see cref="Remedy(string, DataViewType)"/>.</summary>
    internal static string Found(SchemaShape.Column col)
        => $"{(col.IsKey ? "a key of " : "")}{col.ItemType} ({col.Kind}){Remedy(col.Name, col.ItemType, col.IsKey, col.Kind != SchemaShape.Column.VectorKind.Scalar)}";

    /// <inheritdoc cref="Remedy(string, DataViewType)"/>
    private static string Remedy(string name, DataViewType itemType, bool isKey, bool isVector)
    {
        if (isKey)
            return $"; a key holds category indices, not values: encode it first, e.g. ml.Transforms.Conversion.MapKeyToVector(\"{name}\")";
        if (itemType is not (NumberDataViewType or BooleanDataViewType)) return "";
        if (isVector) return $"; convert it first, e.g. ml.Transforms.Conversion.ConvertType(\"{name}\", outputKind: DataKind.Single)";
        // A scalar: the example must run on the user's own columns. It used to be Concatenate("{name}", "A", "B", "C"),
        // whose placeholder inputs are not the user's (ML.NET: "Could not find input column 'A'"), for a user with one
        // feature column (a 1-D density) whose remedy is that column alone as a vector of one value.
        string concatenate = $"ml.Transforms.Concatenate(\"{name}\", \"{name}\")";
        return itemType == NumberDataViewType.Single
            ? $"; put it into a vector first, e.g. {concatenate} for this column alone, or " +
              $"ml.Transforms.Concatenate(\"Features\", \"{name}\", …) with the other scalar columns (then read 'Features')"
            : $"; convert it to Single and put it into a vector first, e.g. ml.Transforms.Conversion.ConvertType(\"{name}\", " +
              $"outputKind: DataKind.Single).Append({concatenate})";
    }

    /// <summary>Checks an estimator's input shape (sizes are not part of a <see cref="SchemaShape"/>).</summary>
    public static void Check(SchemaShape shape, string name, Role? role = null)
    {
        ArgumentNullException.ThrowIfNull(shape);
        role ??= Role.Feature;
        SchemaShape.Column? found = null;
        foreach (var c in shape)
            if (c.Name == name) found = c; // the last column of a name wins, as in DataViewSchema
        if (found is not SchemaShape.Column col)
            throw MissingColumn.Error(role.Noun, name, shape);
        if (col.IsKey || col.ItemType != NumberDataViewType.Single || col.Kind == SchemaShape.Column.VectorKind.Scalar)
            throw new ArgumentOutOfRangeException(MissingColumn.InputSchema,
                $"{role.Noun} '{name}' must be a known-size vector of Single{role.Shape}, but is {Found(col)}.");
        if (col.Kind == SchemaShape.Column.VectorKind.VariableVector)
            throw new ArgumentOutOfRangeException(MissingColumn.InputSchema,
                $"{role.Noun} '{name}' is a variable-size vector; {TrainingNeedsKnownSize}");
    }
}

/// <summary>
/// <see cref="SchemaShape.Column"/>'s constructor is internal: the public way to obtain one is another estimator's
/// GetOutputSchema. A CustomMappingEstimator with no inputs and one output of the wanted type does it cheaply.
/// </summary>
internal static class ShapeColumns
{
    public sealed class NoColumns { }
    public sealed class OneSingle { public float Value { get; set; } }
    public sealed class OneBoolean { public bool Value { get; set; } }
    public sealed class OneVector { [VectorType(1)] public float[] Value { get; set; } = new float[1]; }
    public sealed class OneVariableVector { public float[] Value { get; set; } = Array.Empty<float>(); }

    /// <summary>The estimator's promise for its output columns <paramref name="outputs"/> added to <paramref name="input"/>,
    /// where the transformer puts them (ML.NET's order, as its own estimators promise it): an output named like an input
    /// column takes that column's place, any other is appended.</summary>
    public static SchemaShape WithOutputs(SchemaShape input, IEnumerable<SchemaShape.Column> outputs)
    {
        var result = input.ToList();
        foreach (var c in outputs)
        {
            int at = result.FindLastIndex(r => r.Name == c.Name);
            if (at >= 0) result[at] = c;
            else result.Add(c);
        }
        return new SchemaShape(result);
    }

    public static SchemaShape.Column Single(MLContext ml, string name) => Make<OneSingle>(ml, name);
    public static SchemaShape.Column Boolean(MLContext ml, string name) => Make<OneBoolean>(ml, name);
    public static SchemaShape.Column SingleVector(MLContext ml, string name) => Make<OneVector>(ml, name);
    public static SchemaShape.Column VariableSingleVector(MLContext ml, string name) => Make<OneVariableVector>(ml, name);

    private static SchemaShape.Column Make<T>(MLContext ml, string name) where T : class, new()
    {
        var def = SchemaDefinition.Create(typeof(T), SchemaDefinition.Direction.Write);
        def[0].ColumnName = name;
        var est = ml.Transforms.CustomMapping<NoColumns, T>((_, _) => { }, contractName: null, outputSchemaDefinition: def);
        foreach (var c in est.GetOutputSchema(new SchemaShape(Array.Empty<SchemaShape.Column>())))
            if (c.Name == name) return c;
        throw new InvalidOperationException("unreachable: CustomMapping did not produce its output column");
    }
}

/// <summary>
/// Builds a <see cref="SchemaShape"/> for a row class (SchemaShape.Create(DataViewSchema) is internal), e.g. to check a
/// pipeline's output shape before fitting.
/// </summary>
public static class SchemaShapeFactory
{
    /// <summary>The shape of the columns of <typeparamref name="T"/> (optionally with a schema definition giving names and vector sizes).</summary>
    /// <typeparam name="T">The row class (public properties or fields are the columns).</typeparam>
    /// <param name="mlContext">The context the shape is made in.</param>
    /// <param name="definition">Column names and vector sizes overriding the class's attributes, or null.</param>
    public static SchemaShape FromType<T>(MLContext mlContext, SchemaDefinition? definition = null) where T : class, new()
        => mlContext.Transforms.CustomMapping<ShapeColumns.NoColumns, T>((_, _) => { }, contractName: null, outputSchemaDefinition: definition)
             .GetOutputSchema(new SchemaShape(Array.Empty<SchemaShape.Column>()));
}

/// <summary>
/// Errors about the validation view of a <c>Fit(train, validation)</c>: the same schema checks as the training view's,
/// restated so that the user, who passed two views, is told which one failed ("The validation data: …", ParamName
/// validationData). One place for the row estimators, the whole-sequence estimator and the frame rows.
/// </summary>
internal static class ValidationViewErrors
{
    /// <summary><paramref name="e"/> (a training-view check run on the validation view) as the validation view's error.</summary>
    public static ArgumentOutOfRangeException Restated(ArgumentException e)
    {
        string message = e.ParamName is string p && e.Message.IndexOf($" (Parameter '{p}')", StringComparison.Ordinal) is int cut and >= 0 ? e.Message[..cut] : e.Message;
        return new ArgumentOutOfRangeException("validationData", $"The validation data: {message}");
    }

    /// <summary><paramref name="e"/>, about a row of <paramref name="dataSet"/> (the training or the validation view), with
    /// the data set named at the end of its problem for the reader (and for a NaN or infinite value the
    /// <see cref="NonFiniteInput"/> hint after it) and in <see cref="DataValidationException.DataSet"/> for a caller that
    /// holds the two views' sources (ddml's two files); the row and column are that data set's, and the inner exception is
    /// <paramref name="e"/>. With <paramref name="column"/> (the view's column that is <paramref name="e"/>'s source), a
    /// bad value's slot is named after the data set when the column names its slots, as the row estimators name it
    /// (<see cref="NonFiniteInput.SlotName"/>).</summary>
    public static DataValidationException InDataSet(DataValidationException e, DataSetKind dataSet, DataViewSchema.Column? column = null)
    {
        string slot = column is { } c && e.DataSource == c.Name ? NonFiniteInput.SlotName(c, e.Column) : "";
        string problem = $"{e.Problem} in the {Name(dataSet)}{slot}";
        return e.Restated(e.Row, e.Column, e.DataSource is string source ? NonFiniteInput.WithHint(problem, source, e.Kind) : problem, e.DataSource, dataSet);
    }

    /// <summary>The words for a data set, as the engine names it (<see cref="DataValidation.TrainingData"/>, ...).</summary>
    private static string Name(DataSetKind dataSet) => dataSet switch
    {
        DataSetKind.Training => DataValidation.TrainingData,
        DataSetKind.Validation => DataValidation.ValidationData,
        _ => throw new ArgumentOutOfRangeException(nameof(dataSet), dataSet, "a Fit's data set is the training or the validation data"),
    };

    /// <summary>The validation view's feature column is not as wide as the training view's.</summary>
    public static ArgumentOutOfRangeException Width(string column, int size, int trainingSize)
        => new("validationData", FormattableString.Invariant($"The validation data: feature column '{column}' has {size} slots but the training data's has {trainingSize}."));
}

/// <summary>
/// The hint that ends the refusal of a NaN or infinite value read from an ML.NET column. The column is read as the earlier
/// stages of the pipeline leave it, so a user looking for the value in the loaded file may not find it there: the
/// estimator cannot tell robustly whether a column was loaded or made by a transform (a data view does not say which
/// stage made a column), so the hint is conditional. NormalizeRobustScaling is the example because, of ML.NET 5.0.1's
/// normalizers, it is the one that makes such values: it divides a slot that is constant in the data it was fitted on by
/// zero (NaN for that constant, ±infinity for any other value), where NormalizeMinMax and NormalizeMeanVariance give 0.
/// A NaN is also ML.NET's missing value — a field that <c>LoadFromTextFile</c> cannot read as a number (whatever its
/// options), an empty field read with <c>MissingRealsAsNaNs</c> (which docs/mlnet.md advises for files with gaps), a
/// <c>float.NaN</c> in a class — and then the value is in the data
/// and no stage is to blame: the hint for a NaN also says how to replace missing values or drop their rows.
/// </summary>
internal static class NonFiniteInput
{
    /// <summary>The hint about column <paramref name="column"/>, to follow a "; ".</summary>
    internal static string Hint(string column) => $"if an earlier pipeline stage made column '{column}', the value comes from it " +
        "(e.g. NormalizeRobustScaling divides by zero a slot that is constant in the data it was fitted on, giving NaN or ±infinity)";

    /// <summary>What to do about a NaN that is a missing value in the data, to follow a "; ".</summary>
    internal static string MissingValueHint(string column) => "a NaN is also how ML.NET marks a missing value (LoadFromTextFile reads " +
        "a field that is not a number as NaN, and an empty field too with MissingRealsAsNaNs): replace missing values before this " +
        $"stage, e.g. ml.Transforms.ReplaceMissingValues(\"{column}\"), " +
        "or drop their rows with ml.Data.FilterRowsByMissingValues";

    /// <summary><paramref name="problem"/> with the hint about <paramref name="column"/> when it is about a NaN or infinite
    /// value (<paramref name="kind"/>; and for a NaN what to do about a missing value), else unchanged.</summary>
    public static string WithHint(string problem, string column, DataProblemKind kind)
        => kind != DataProblemKind.NonFiniteValue ? problem
           : problem.Contains(DataValidation.NaNValue, StringComparison.Ordinal) ? $"{problem}; {Hint(column)}; {MissingValueHint(column)}"
           : $"{problem}; {Hint(column)}";

    /// <summary><paramref name="e"/>, whose source is the column, with the name of its slot when <paramref name="column"/>
    /// (that column in the schema) names its slots (<see cref="SlotName"/>), and with the hint when it is about a NaN or
    /// infinite value (<see cref="DataValidationException.Reworded"/>: the same row, column, source and inner exception),
    /// else <paramref name="e"/> itself.</summary>
    public static DataValidationException WithHint(DataValidationException e, DataViewSchema.Column? column = null)
    {
        string problem = e.Problem + (column is { } c ? SlotName(c, e.Column) : "");
        if (e.DataSource is string name && e.Kind == DataProblemKind.NonFiniteValue) problem = WithHint(problem, name, e.Kind);
        return ReferenceEquals(problem, e.Problem) ? e : e.Reworded(problem);
    }

    /// <summary>" (slot 3 of 'Features' is 'x 2')" when <paramref name="column"/> names its slots (Concatenate,
    /// LoadFromTextFile with a header and the featurizers give slot names) and names slot <paramref name="slot"/>, else "".
    /// The engine's "column 3" is a slot of the ML.NET vector: without the name a user reading a file's columns would look
    /// for it in the wrong place (the file's fourth column may be anything).</summary>
    internal static string SlotName(DataViewSchema.Column column, int slot)
    {
        // HasSlotNames: a known-size vector whose annotation is as long as it (ML.NET's own rule for slot names).
        if (slot < 0 || column.Type is not VectorDataViewType { Size: var size } || slot >= size || !column.HasSlotNames()) return "";
        var names = default(VBuffer<ReadOnlyMemory<char>>);
        column.GetSlotNames(ref names);
        string name = slot < names.Length ? names.GetItemOrDefault(slot).ToString() : "";
        return name.Length == 0 ? "" : FormattableString.Invariant($" (slot {slot} of '{column.Name}' is '{name}')");
    }
}
