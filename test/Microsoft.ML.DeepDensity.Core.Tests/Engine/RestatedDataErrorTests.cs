using System.Text.RegularExpressions;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

/// <summary>
/// <see cref="DataValidationException.Restated"/> is the one way a layer (the engine's sequences, the ML.NET estimators
/// and scorers, ddml) tells an engine data error again in its own terms. What the error is must survive: its
/// <see cref="DataValidationException.Kind"/>, its data set, and the <see cref="Exception.Data"/> a later restatement reads
/// back (the unmeasurable frame and figure, a frame row's order values). A source scan keeps a new restating site from
/// building its exception by hand and forgetting the kind.
/// </summary>
public class RestatedDataErrorTests
{
    [Fact]
    public void RestatedKeepsTheKindTheDataSetTheDataAndChainsTheOriginal()
    {
        var cause = new InvalidOperationException("below the engine");
        var original = new DataValidationException(7, 2, DataValidation.NaNValue, DataValidation.ValidationData, cause) { Kind = DataProblemKind.NonFiniteValue };
        original.Data["k"] = 42;

        var restated = original.Restated(70, 3, "value is NaN in the validation data", "Features");
        Assert.Equal(DataProblemKind.NonFiniteValue, restated.Kind);
        Assert.Equal(DataSetKind.Validation, restated.DataSet);   // the original's, though "Features" names no data set
        Assert.Equal((70L, 3, "value is NaN in the validation data", "Features"), (restated.Row, restated.Column, restated.Problem, restated.DataSource));
        Assert.Equal("Invalid data at 'Features', row 70, column 3: value is NaN in the validation data.", restated.Message);
        Assert.Same(original, restated.InnerException);
        Assert.Equal(42, restated.Data["k"]);
        Assert.Equal(DataSetKind.Training, original.Restated(1, -1, "p", "Features", DataSetKind.Training).DataSet);

        // In place of the original: its inner exception, not the original, under the new one.
        var replacing = original.Restated(-1, 3, "value is NaN (row number unknown)", "Features", chain: false);
        Assert.Same(cause, replacing.InnerException);
        Assert.Equal((DataProblemKind.NonFiniteValue, DataSetKind.Validation, 42), (replacing.Kind, replacing.DataSet, (int)replacing.Data["k"]!));

        var reworded = original.Reworded("value is NaN; a hint");
        Assert.Equal((7L, 2, DataValidation.ValidationData, "value is NaN; a hint"), (reworded.Row, reworded.Column, reworded.DataSource, reworded.Problem));
        Assert.Equal((DataProblemKind.NonFiniteValue, 42), (reworded.Kind, (int)reworded.Data["k"]!));
        Assert.Same(cause, reworded.InnerException);
    }

    [Fact]
    public void AnUnmeasurableSequenceKeepsItsFrameAndKindWhenRestated()
    {
        var e = UnscorableValidation.Error(example: 4, frame: 9);
        var restated = e.Restated(40, -1, $"sequence 'a', {e.Problem}", "Frames").Restated(41, -1, "again", "Frames", chain: false);
        Assert.Equal(9, UnscorableValidation.Frame(restated));
        Assert.True(UnscorableValidation.Is(restated));
        Assert.Equal(DataSetKind.Validation, restated.DataSet);
    }

    [Fact]
    public void TheEngineSequenceCheckRestatesAFramesErrorWithItsKind()
    {
        var sequences = new SequenceBatch([0f, 1f, 2f, 3f, 0f, float.PositiveInfinity], [0, 2, 3], 2);
        var e = Assert.Throws<DataValidationException>(() => DataValidation.CheckSequences(sequences, 2, InputDomain.Real, DataValidation.ValidationData));
        Assert.Equal((1L, 1, DataProblemKind.NonFiniteValue, DataSetKind.Validation), (e.Row, e.Column, e.Kind, e.DataSet));
        Assert.StartsWith("frame 0: ", e.Problem);
    }

    // ---------------- the source guard ----------------

    private static string Root()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "DeepDensity.ML.sln"))) return dir.FullName;
        throw new InvalidOperationException("DeepDensity.ML.sln not found above " + AppContext.BaseDirectory);
    }

    private static readonly Regex KindCopied = new(@"\bKind\s*=\s*[A-Za-z_][\w.]*\.Kind\b", RegexOptions.Compiled);
    private static readonly Regex CatchOfDataError = new(@"catch\s*\(\s*(?:[\w.]*\.)?DataValidationException\s+(\w+)\s*\)", RegexOptions.Compiled);
    private static readonly Regex NewDataError = new(@"new\s+(?:[\w.]*\.)?DataValidationException\s*\(", RegexOptions.Compiled);

    /// <summary>The text from the opening bracket at <paramref name="open"/> to its match, inclusive (strings and
    /// comments are not skipped: good enough for this source, whose brackets in strings are balanced).</summary>
    private static string Balanced(string text, int open)
    {
        char o = text[open], c = o == '(' ? ')' : '}';
        int depth = 0;
        for (int i = open; i < text.Length; i++)
        {
            if (text[i] == o) depth++;
            else if (text[i] == c && --depth == 0) return text[open..(i + 1)];
        }
        return text[open..];
    }

    /// <summary>
    /// The places in <paramref name="text"/> that restate a data error by hand rather than through
    /// <see cref="DataValidationException.Restated"/>: a kind copied from another exception (<c>Kind = e.Kind</c>); a
    /// <c>new DataValidationException(…)</c> built from another's problem or kind; and, in a <c>catch</c> of a
    /// <see cref="DataValidationException"/>, a new one built at all, or the caught kind handed on other than to compare it.
    /// </summary>
    internal static List<string> HandRestatements(string text)
    {
        var found = new List<string>();
        foreach (Match m in KindCopied.Matches(text)) found.Add(m.Value);
        foreach (Match m in NewDataError.Matches(text))
        {
            string args = Balanced(text, m.Index + m.Length - 1);
            if (Regex.IsMatch(args, @"\.(Problem|Kind)\b")) found.Add(m.Value + args[1..]);
        }
        foreach (Match m in CatchOfDataError.Matches(text))
        {
            int i = m.Index + m.Length;
            while (i < text.Length && char.IsWhiteSpace(text[i])) i++;
            if (text.AsSpan(i).StartsWith("when"))
            {
                i = text.IndexOf('(', i);
                i += Balanced(text, i).Length;
                while (i < text.Length && char.IsWhiteSpace(text[i])) i++;
            }
            if (i >= text.Length || text[i] != '{') continue;
            string block = Balanced(text, i), id = m.Groups[1].Value;
            if (NewDataError.IsMatch(block)) found.Add(block);
            if (Regex.IsMatch(block, $@"\b{id}\.Kind\b(?!\s*[!=]=)")) found.Add(block);
        }
        return found;
    }

    [Fact]
    public void TheGuardFindsEachWayOfRestatingByHand()
    {
        Assert.NotEmpty(HandRestatements("catch (DataValidationException e) { throw new DataValidationException(e.Row, 0, \"p\", \"c\"); }"));
        Assert.NotEmpty(HandRestatements("var x = new DataValidationException(r, c, \"p\", s) { Kind = e.Kind };"));
        Assert.NotEmpty(HandRestatements("return new DataValidationException(e.Row, e.Column, e.Problem + \"!\", s, e);"));
        Assert.NotEmpty(HandRestatements("catch (DataValidationException ex) when (Is(ex)) { throw RowError(ex.Column, \"p\", ex.Kind); }"));
        Assert.NotEmpty(HandRestatements("catch (Data.DataValidationException e) { var n = new Data.DataValidationException(1, 1, \"p\", null); throw n; }"));
        Assert.Empty(HandRestatements("catch (DataValidationException e) when (e.Kind == DataProblemKind.NotBinary) { throw e.Restated(1, e.Column, e.Problem, \"c\"); }"));
        Assert.Empty(HandRestatements("catch (DataValidationException e) { if (e.Kind != DataProblemKind.Other) throw; throw Map(e); }"));
        Assert.Empty(HandRestatements("throw new DataValidationException(row, -1, \"the order value is missing\", column) { Kind = DataProblemKind.NonFiniteValue };"));
    }

    [Fact]
    public void NoSourceFileRestatesADataErrorByHand()
    {
        string root = Root();
        var sep = Path.DirectorySeparatorChar;
        var files = Directory.GetFiles(Path.Combine(root, "src"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{sep}obj{sep}", StringComparison.Ordinal) && !f.Contains($"{sep}bin{sep}", StringComparison.Ordinal)).ToList();
        int catches = 0;
        var offenders = new List<string>();
        foreach (var file in files)
        {
            string text = File.ReadAllText(file);
            catches += CatchOfDataError.Matches(text).Count;
            offenders.AddRange(HandRestatements(text).Select(s => $"{Path.GetRelativePath(root, file)}: {s.ReplaceLineEndings(" ")}"));
        }
        Assert.True(catches >= 15, $"expected the layers' catches of DataValidationException under src, found {catches}");
        Assert.True(offenders.Count == 0, "restate through DataValidationException.Restated (it keeps the Kind, the data set and Exception.Data):\n" + string.Join("\n", offenders));
    }
}
