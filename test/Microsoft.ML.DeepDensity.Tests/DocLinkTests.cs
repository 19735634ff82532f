using System.Text;
using System.Text.RegularExpressions;
using Xunit;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// Every relative link in the README and docs/ points at a file that exists and, with a #fragment, at a heading of that
/// file (GitHub's anchors: lower case, punctuation dropped, spaces as hyphens, repeats numbered) — a renamed heading or
/// a moved chapter otherwise leaves a link that lands nowhere — and every code fence is paired (docs/benchmarks.md had
/// a stray one and 16 blocks without their opening fence, which rendered its second half inside out).
/// </summary>
public class DocLinkTests
{
    private static readonly Regex Link = new(@"(?<!!)\[[^\]]*\]\((?<target>[^)\s]+)\)", RegexOptions.Compiled);
    private static readonly Regex Heading = new(@"^#{1,6}\s+(?<text>.+?)\s*#*\s*$", RegexOptions.Multiline | RegexOptions.Compiled);

    public static TheoryData<string> Documents()
    {
        var root = DocsDefaultsTests.RepositoryRoot();
        var data = new TheoryData<string>();
        foreach (var f in new[] { "README.md" }.Concat(Directory.EnumerateFiles(Path.Combine(root, "docs"), "*.md", SearchOption.AllDirectories)
                     .Select(p => Path.GetRelativePath(root, p))).OrderBy(p => p, StringComparer.Ordinal))
            data.Add(f.Replace('\\', '/'));
        return data;
    }

    [Theory, MemberData(nameof(Documents))]
    public void RelativeLinksLandOnAFileAndHeading(string document)
    {
        var root = DocsDefaultsTests.RepositoryRoot();
        string path = Path.Combine(root, document), text = File.ReadAllText(path);
        // An unpaired fence turns the rest of the page inside out (text as code, code as text), headings included.
        int fences = Regex.Matches(text, @"^\s*(```|~~~)", RegexOptions.Multiline).Count;
        Assert.True(fences % 2 == 0, $"{document}: {fences} code fences, one of them unpaired");
        var broken = new List<string>();
        foreach (Match m in Link.Matches(StripCode(text)))
        {
            string target = m.Groups["target"].Value;
            if (target.StartsWith("http://", StringComparison.Ordinal) || target.StartsWith("https://", StringComparison.Ordinal) || target.StartsWith("mailto:", StringComparison.Ordinal)) continue;
            int hash = target.IndexOf('#');
            string file = hash < 0 ? target : target[..hash], fragment = hash < 0 ? "" : target[(hash + 1)..];
            string resolved = file.Length == 0 ? path : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(path)!, file));
            if (!File.Exists(resolved) && !Directory.Exists(resolved)) { broken.Add($"{target}: no such file"); continue; }
            if (fragment.Length > 0 && resolved.EndsWith(".md", StringComparison.Ordinal) && !Anchors(File.ReadAllText(resolved)).Contains(fragment))
                broken.Add($"{target}: no heading with that anchor");
        }
        Assert.True(broken.Count == 0, $"{document}: {string.Join("; ", broken)}");
    }

    /// <summary>GitHub's heading anchors of a markdown text.</summary>
    internal static HashSet<string> Anchors(string markdown)
    {
        var anchors = new HashSet<string>(StringComparer.Ordinal);
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (Match m in Heading.Matches(StripCode(markdown)))
        {
            var slug = new StringBuilder();
            foreach (char c in m.Groups["text"].Value.ToLowerInvariant())
                if (char.IsLetterOrDigit(c) || c is '-' or '_') slug.Append(c);
                else if (c == ' ') slug.Append('-');
            string s = slug.ToString();
            int n = seen.TryGetValue(s, out var k) ? k : 0;
            seen[s] = n + 1;
            anchors.Add(n == 0 ? s : $"{s}-{n}");
        }
        return anchors;
    }

    /// <summary>The text without fenced code blocks (a "#" line in a shell example is no heading, a "[x](y)" in code no link).</summary>
    private static string StripCode(string markdown) => Regex.Replace(markdown, @"^(```|~~~).*?^\1", "", RegexOptions.Multiline | RegexOptions.Singleline);
}
