using System.Reflection;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Training;
using Microsoft.ML.DeepDensity.Transforms;
using Xunit;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// Defaults are written once: each options class's nested <c>Defaults</c> (and <see cref="DensityEstimatorDefaults"/> for
/// the ML.NET columns). These tests fail when a property initialiser, a constructor override or a catalog parameter
/// drifts from that one source, or when a new setting is added without a default there.
/// </summary>
public class DefaultsTests
{
    private static readonly Assembly Engine = typeof(GradientTrainingOptions).Assembly;

    /// <summary>Every public engine options class with a parameterless constructor.</summary>
    public static TheoryData<Type> EngineOptionsTypes()
    {
        var data = new TheoryData<Type>();
        foreach (var t in EngineOptions()) data.Add(t);
        return data;
    }

    private static IEnumerable<Type> EngineOptions() => Engine.GetExportedTypes()
        .Where(t => t.Name.EndsWith("Options", StringComparison.Ordinal) && t.IsClass && !t.IsAbstract && t.GetConstructor(Type.EmptyTypes) is not null
                    && t.GetMethod("Validate", Type.EmptyTypes) is not null) // users' settings (the driver's wiring record has no Validate)
        .OrderBy(t => t.FullName, StringComparer.Ordinal);

    [Theory]
    [MemberData(nameof(EngineOptionsTypes))]
    public void Every_setting_has_its_default_in_a_Defaults_class_and_a_new_instance_equals_it(Type optionsType)
    {
        var instance = Activator.CreateInstance(optionsType)!;
        foreach (var p in optionsType.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite))
        {
            if (p.PropertyType == typeof(CancellationToken) || Nullable.GetUnderlyingType(p.PropertyType) is not null
                || !p.PropertyType.IsValueType && p.GetValue(instance) is null)
                continue; // "none" / null settings (stop token, optional orders) have no default value to write down
            var (found, expected) = FindDefault(optionsType, p.Name);
            Assert.True(found, $"{optionsType.Name}.{p.Name} has no entry in {optionsType.Name}.Defaults or a base class's Defaults.");
            AssertSame(expected, p.GetValue(instance), $"{optionsType.Name}.{p.Name}");
        }
    }

    [Fact]
    public void Options_classes_that_change_inherited_settings_list_them_in_their_own_Defaults()
    {
        // RNADE's 200 epochs and no clipping, the RBM's learning rate etc. must be in RnadeOptions.Defaults / RbmOptions.Defaults.
        var baseline = new GradientTrainingOptions();
        foreach (var t in EngineOptions().Where(t => t.IsSubclassOf(typeof(GradientTrainingOptions))))
        {
            var instance = Activator.CreateInstance(t)!;
            foreach (var p in typeof(GradientTrainingOptions).GetProperties().Where(p => p.CanWrite && p.PropertyType != typeof(CancellationToken)))
            {
                if (Equals(p.GetValue(instance), p.GetValue(baseline))) continue;
                var (found, expected) = FindDefault(t, p.Name, ownOnly: true);
                Assert.True(found, $"{t.Name} changes {p.Name} from the loop's default but does not list it in {t.Name}.Defaults.");
                AssertSame(expected, p.GetValue(instance), $"{t.Name}.{p.Name}");
            }
        }
    }

    [Fact]
    public void ML_NET_options_classes_start_from_DensityEstimatorDefaults()
    {
        object[] all = { new RnadeEstimator.Options(), new DeepGmmEstimator.Options(), new SequenceDensityEstimator.Options(), new RnnRnadeFrameEstimator.Options() };
        foreach (var o in all)
            foreach (var f in typeof(DensityEstimatorDefaults).GetFields())
                if (o.GetType().GetProperty(f.Name) is { } p)
                    AssertSame(f.GetValue(null), p.GetValue(o), $"{o.GetType().FullName}.{p.Name}");
    }

    /// <summary>Each optional parameter of a catalog method has the default of the setting it fills.</summary>
    [Fact]
    public void Catalog_parameters_default_to_the_options_defaults()
    {
        var methods = typeof(DensityEstimationCatalogExtensions).GetMethods(BindingFlags.Public | BindingFlags.Static)
            .Where(m => m.GetParameters().FirstOrDefault()?.ParameterType == typeof(DensityEstimationCatalog)).ToList();
        Assert.True(methods.Count >= 12, $"expected the catalog's methods, found {methods.Count}");
        int checkedParameters = 0;
        foreach (var m in methods)
        {
            var modelOptions = Engine.GetExportedTypes().Single(t => t.Name == m.Name + "Options");
            var model = Activator.CreateInstance(modelOptions)!;
            foreach (var parameter in m.GetParameters().Where(p => p.HasDefaultValue && p.DefaultValue is not null))
            {
                string name = char.ToUpperInvariant(parameter.Name![0]) + parameter.Name[1..];
                object? expected;
                if (m.Name == "Nvil" && name == "EvaluationSamples")
                    expected = NvilEstimator.DefaultColumnEvaluationSamples; // the column's documented, deliberately smaller K
                else if (modelOptions.GetProperty(name) is { } p)
                    expected = p.GetValue(model);
                else if (typeof(DensityEstimatorDefaults).GetField(name) is { } f)
                    expected = f.GetValue(null);
                else
                    throw new Xunit.Sdk.XunitException($"{m.Name}({parameter.Name}): no setting of that name in {modelOptions.Name} or DensityEstimatorDefaults.");
                AssertSame(expected, parameter.DefaultValue, $"catalog {m.Name}({parameter.Name})");
                checkedParameters++;
            }
        }
        Assert.True(checkedParameters >= 30, $"only {checkedParameters} parameters checked");
    }

    [Fact]
    public void Deep_GMM_defaults_are_a_fresh_array_each_time()
    {
        var a = DeepGmmOptions.Defaults.Layers;
        a[0] = 99;
        Assert.NotEqual(99, new DeepGmmOptions().Layers[0]);
        Assert.NotEqual(99, DeepGmmOptions.Defaults.Layers[0]);
    }

    /// <summary>Looks up <paramref name="name"/> in the Defaults of <paramref name="optionsType"/> and its bases (with
    /// <paramref name="ownOnly"/>, only those below <see cref="GradientTrainingOptions"/>).</summary>
    private static (bool Found, object? Value) FindDefault(Type optionsType, string name, bool ownOnly = false)
    {
        for (var t = optionsType; t is not null && t != typeof(object) && !(ownOnly && t == typeof(GradientTrainingOptions)); t = t.BaseType)
        {
            var defaults = t.GetNestedType("Defaults", BindingFlags.Public);
            if (defaults?.GetField(name, BindingFlags.Public | BindingFlags.Static) is { } f) return (true, f.GetValue(null));
            if (defaults?.GetProperty(name, BindingFlags.Public | BindingFlags.Static) is { } p) return (true, p.GetValue(null));
        }
        return (false, null);
    }

    private static void AssertSame(object? expected, object? actual, string what)
    {
        if (expected is int[] e && actual is int[] a) { Assert.True(e.SequenceEqual(a), $"{what}: {{{string.Join(",", a)}}} but Defaults say {{{string.Join(",", e)}}}"); return; }
        // Catalog parameters may be typed differently (int literal vs enum): compare through the actual's type.
        if (expected is not null && actual is not null && expected.GetType() != actual.GetType() && actual is IConvertible && !actual.GetType().IsEnum)
            expected = Convert.ChangeType(expected, actual.GetType(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(Equals(expected, actual), $"{what} is {actual} but its default is {expected}");
    }
}
