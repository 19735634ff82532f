using System.Reflection;
using System.Runtime.CompilerServices;
using System.Xml.Linq;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// The XML documentation of the two packed libraries, as IntelliSense shows it. The compiler already refuses a public
/// member without a doc comment (CS1591 is an error in both library projects); these tests catch what it lets through:
/// a documentation file missing beside the assembly, and comments that exist but say nothing (an empty summary, param or
/// returns), which IntelliSense shows as a blank tooltip.
/// </summary>
public class PublicApiDocumentationTests
{
    public static TheoryData<string> Assemblies => new()
    {
        typeof(DensityModel).Assembly.GetName().Name!,          // the engine
        typeof(DensityTransformer).Assembly.GetName().Name!,    // the ML.NET layer
    };

    private static Assembly Load(string name) => name == typeof(DensityModel).Assembly.GetName().Name
        ? typeof(DensityModel).Assembly : typeof(DensityTransformer).Assembly;

    private static XDocument Docs(Assembly assembly)
    {
        string path = Path.ChangeExtension(assembly.Location, ".xml");
        Assert.True(File.Exists(path), $"no XML documentation beside {assembly.Location}");
        return XDocument.Load(path);
    }

    // Types the compiler makes (C# 14 extension blocks appear as nested types named <G>$…) are not the user's API.
    private static bool UserVisible(Type t) => !t.Name.Contains('<') && !t.IsDefined(typeof(CompilerGeneratedAttribute));

    private static string DocId(Type t) => "T:" + t.FullName!.Replace('+', '.');

    [Theory]
    [MemberData(nameof(Assemblies))]
    public void EveryPublicTypeHasANonEmptySummary(string assemblyName)
    {
        var assembly = Load(assemblyName);
        var members = Docs(assembly).Descendants("member").ToDictionary(m => (string)m.Attribute("name")!);
        var missing = assembly.GetExportedTypes().Where(UserVisible)
            .Where(t => !members.TryGetValue(DocId(t), out var m)
                        || (m.Element("inheritdoc") is null && string.IsNullOrWhiteSpace(m.Element("summary")?.Value)))
            .Select(DocId).ToList();
        Assert.True(missing.Count == 0, "public types without a summary: " + string.Join(", ", missing));
    }

    [Theory]
    [MemberData(nameof(Assemblies))]
    public void EveryPublicMemberNameIsDocumented(string assemblyName)
    {
        // Names only (overloads share a name): an independent check that the compiler gate is on and that the file is
        // the one built with the assembly, not a stale copy.
        var assembly = Load(assemblyName);
        var ids = Docs(assembly).Descendants("member").Select(m => (string)m.Attribute("name")!).ToList();
        const BindingFlags declared = BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        var missing = new List<string>();
        foreach (var type in assembly.GetExportedTypes().Where(UserVisible).Where(t => !typeof(Delegate).IsAssignableFrom(t) && !t.IsEnum))
        {
            string prefix = type.FullName!.Replace('+', '.') + ".";
            foreach (var member in type.GetMembers(declared))
            {
                if (member.IsDefined(typeof(CompilerGeneratedAttribute)) || member is Type) continue;
                if (member is MethodInfo { IsSpecialName: true }) continue;   // accessors: documented on the property
                if (member is ConstructorInfo { IsStatic: false } c && c.GetParameters().Length == 0) continue;   // may be the implicit one, which cannot carry a comment
                if (member is MethodInfo method && method.GetBaseDefinition() != method && method.DeclaringType!.IsDefined(typeof(CompilerGeneratedAttribute))) continue;
                string name = member is ConstructorInfo ? "#ctor" : member.Name.Replace('.', '#');
                string kind = member switch { PropertyInfo => "P:", FieldInfo => "F:", EventInfo => "E:", _ => "M:" };
                string id = kind + prefix + name;
                if (!ids.Any(x => x == id || x.StartsWith(id + "(", StringComparison.Ordinal) || x.StartsWith(id + "``", StringComparison.Ordinal)))
                    missing.Add(id);
            }
        }
        Assert.True(missing.Count == 0, "public members without a doc comment: " + string.Join(", ", missing.Distinct()));
    }

    [Fact]
    public void EveryParameterOfTheCatalogMethodsIsDocumented()
    {
        // The catalog is the first API an ML.NET user types: IntelliSense shows each argument's <param> as it is typed.
        // (The compiler writes the accessor of the C# 14 extension property mlContext.DensityEstimation as an <inheritdoc>.)
        var catalog = typeof(DensityEstimationCatalogExtensions);
        var members = Docs(catalog.Assembly).Descendants("member")
            .Select(m => (Id: (string)m.Attribute("name")!, Inherited: m.Element("inheritdoc") is not null,
                Params: m.Elements("param").Where(p => !string.IsNullOrWhiteSpace(p.Value)).Select(p => (string)p.Attribute("name")!).ToHashSet()))
            .ToList();
        var methods = catalog.GetMethods(BindingFlags.Public | BindingFlags.Static).Where(m => !m.IsSpecialName).Cast<MethodBase>()
            .Concat(typeof(DensityEstimationCatalog).GetConstructors());
        var missing = new List<string>();
        foreach (var method in methods)
        {
            string id = method is ConstructorInfo ? $"M:{method.DeclaringType!.FullName}.#ctor(" : $"M:{catalog.FullName}.{method.Name}(";
            var names = method.GetParameters().Select(p => p.Name!).ToList();
            if (!members.Any(m => m.Id.StartsWith(id, StringComparison.Ordinal) && (m.Inherited || names.All(m.Params.Contains))))
                missing.Add($"{method.DeclaringType!.Name}.{method.Name}({string.Join(", ", names)})");
        }
        Assert.True(missing.Count == 0, "catalog methods with undocumented parameters: " + string.Join("; ", missing));
    }

    [Theory]
    [MemberData(nameof(Assemblies))]
    public void NoDocCommentIsEmpty(string assemblyName)
    {
        var empty = Docs(Load(assemblyName)).Descendants("member")
            .SelectMany(m => m.Elements().Where(e => e.Name.LocalName is "summary" or "param" or "typeparam" or "returns" or "value")
                .Where(e => string.IsNullOrWhiteSpace(e.Value) && !e.Descendants().Any(d => d.Attribute("cref") is not null || d.Attribute("langword") is not null))
                .Select(e => $"{(string)m.Attribute("name")!} <{e.Name.LocalName}{(e.Attribute("name") is { } n ? $" name=\"{n.Value}\"" : "")}>"))
            .ToList();
        Assert.True(empty.Count == 0, "empty doc comments: " + string.Join(", ", empty));
    }
}
