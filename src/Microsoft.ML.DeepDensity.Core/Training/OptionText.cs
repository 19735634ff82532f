using System.Collections;
using System.Globalization;

namespace Microsoft.ML.DeepDensity.Training;

/// <summary>
/// An option's value as messages show it: invariant culture, so a message reads the same on every machine; an array as
/// its entries in brackets, <c>[3, 4]</c> (the options tables of the docs write them so), not as C#'s initialiser
/// <c>{3, 4}</c> nor .NET's <c>System.Int32[]</c>; <c>true</c> / <c>false</c>; <c>null</c>. The one formatter of the
/// options' own checks, the ML.NET layer's settings rules (<c>SettingEffects</c>) and the model-size messages.
/// </summary>
internal static class OptionText
{
    /// <summary><paramref name="value"/> in words.</summary>
    internal static string Show(object? value) => value switch
    {
        null => "null",
        string s => s,
        bool b => b ? "true" : "false",
        IEnumerable list => "[" + string.Join(", ", list.Cast<object?>().Select(Show)) + "]",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    /// <summary>The <see cref="ArgumentOutOfRangeException"/> of an option check: "<paramref name="name"/>
    /// <paramref name="rule"/> (got value)", with the value as <see cref="Show"/> words it. The value is in the message
    /// only: as the exception's actual value .NET would append it a second time ("… (got 0). (Parameter 'Orderings')
    /// Actual value was 0.", as a trial read it).</summary>
    internal static ArgumentOutOfRangeException OutOfRange(string name, object? value, string rule)
        => new(name, $"{name} {rule} (got {Show(value)}).");
}
