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

    [Fact]
    public void EveryParameterOfTheMlNetLayersPublicApiIsDocumented()
    {
        // IntelliSense shows each argument's <param> as it is typed, but the compiler only asks for a comment per member
        // (CS1573, a param missing beside documented ones, is silenced), so a summary alone passed: GetDensityModel,
        // GenerateSamples, LoadWithLiveDensityModels, Fit, Transform and the protected members a model family overrides
        // (DensityEstimator<,>.Train, ...) had none. Every public or protected method and constructor of the ML.NET layer,
        // and every delegate, documents each parameter; <inheritdoc/> counts when what it inherits from does.
        var assembly = typeof(DensityTransformer).Assembly;
        var docs = Docs(assembly).Descendants("member").ToDictionary(m => (string)m.Attribute("name")!);
        const BindingFlags declared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        var missing = new List<string>();
        foreach (var type in assembly.GetExportedTypes().Where(UserVisible))
        {
            if (typeof(Delegate).IsAssignableFrom(type))
            {
                Check(DocId(type), type.GetMethod("Invoke")!.GetParameters(), type.Name);
                continue;
            }
            foreach (var method in type.GetMembers(declared).OfType<MethodBase>())
            {
                if (!(method.IsPublic || method.IsFamily || method.IsFamilyOrAssembly) || method.IsDefined(typeof(CompilerGeneratedAttribute))) continue;
                if (method is MethodInfo { IsSpecialName: true } || method.GetParameters().Length == 0) continue;
                Check(MemberId(method), method.GetParameters(), $"{type.Name}.{method.Name}");
            }
        }
        Assert.True(missing.Count == 0, "public or protected members with undocumented parameters: " + string.Join("; ", missing));

        void Check(string id, ParameterInfo[] parameters, string display)
        {
            var names = Documented(id, parameters.FirstOrDefault()?.Member as MethodBase, 0);
            if (names is null) return; // inherited from outside this assembly (ML.NET's interfaces)
            var undocumented = parameters.Select(p => p.Name!).Where(n => !names.Contains(n)).ToList();
            if (undocumented.Count > 0) missing.Add($"{display}({string.Join(", ", parameters.Select(p => p.Name))}): {string.Join(", ", undocumented)}");
        }

        // The parameter names documented for the member, following <inheritdoc>; null when it inherits from another assembly.
        HashSet<string>? Documented(string id, MethodBase? method, int depth)
        {
            if (depth > 5 || !docs.TryGetValue(id, out var member)) return new HashSet<string>();
            var names = member.Elements("param").Where(p => !string.IsNullOrWhiteSpace(p.Value)).Select(p => (string)p.Attribute("name")!).ToHashSet();
            if (member.Element("inheritdoc") is not { } inherit) return names;
            if ((string?)inherit.Attribute("cref") is string cref)
            {
                if (!docs.ContainsKey(cref)) return null;
                names.UnionWith(Documented(cref, null, depth + 1) ?? []);
                // A C# 14 extension member (its implementation method inherits from the member in the compiler's <G>$
                // grouping type): the receiver's <param> is on the extension block, written as the <M>$ marker type.
                if (cref.IndexOf(".<G>$", StringComparison.Ordinal) is int g and >= 0 && cref.IndexOf('.', g + 1) is int end and >= 0)
                    foreach (var marker in docs.Where(d => d.Key.StartsWith("T:" + cref[2..end] + ".<M>$", StringComparison.Ordinal)))
                        names.UnionWith(marker.Value.Elements("param").Where(p => !string.IsNullOrWhiteSpace(p.Value)).Select(p => (string)p.Attribute("name")!));
                return names;
            }
            if (method is not MethodInfo m || m.GetBaseDefinition() is not { } b || b == m) return null; // an interface member
            if (b.DeclaringType!.Assembly != assembly) return null;
            var baseDefinition = b.DeclaringType.IsConstructedGenericType
                ? b.DeclaringType.GetGenericTypeDefinition().GetMethods(declared).Single(x => x.MetadataToken == b.MetadataToken) : b;
            return Documented(MemberId(baseDefinition), baseDefinition, depth + 1) is { } inherited ? names.Concat(inherited).ToHashSet() : null;
        }
    }

    // The documentation id of a method or constructor (ECMA-334 annex D), as the compiler writes it into the XML file.
    private static string MemberId(MethodBase method)
    {
        string name = method is ConstructorInfo ? "#ctor" : method.Name + (method.IsGenericMethod ? "``" + method.GetGenericArguments().Length : "");
        var parameters = method.GetParameters();
        return $"M:{method.DeclaringType!.FullName!.Replace('+', '.')}.{name}" +
               (parameters.Length == 0 ? "" : "(" + string.Join(",", parameters.Select(p => TypeId(p.ParameterType))) + ")");

        static string TypeId(Type t)
        {
            if (t.IsByRef) return TypeId(t.GetElementType()!) + "@";
            if (t.IsArray) return TypeId(t.GetElementType()!) + "[]";
            if (t.IsGenericParameter) return (t.DeclaringMethod is null ? "`" : "``") + t.GenericParameterPosition;
            if (!t.IsConstructedGenericType) return t.FullName!.Replace('+', '.');
            var definition = t.GetGenericTypeDefinition().FullName!;
            return definition[..definition.IndexOf('`')].Replace('+', '.') + "{" + string.Join(",", t.GetGenericArguments().Select(TypeId)) + "}";
        }
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
