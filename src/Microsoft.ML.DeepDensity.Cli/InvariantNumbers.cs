using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace Microsoft.ML.DeepDensity.Cli;

/// <summary>
/// Numbers on the command line (<c>--contamination</c>, <c>-p Name=Value</c>) are read the same in every culture: '.' is
/// the decimal separator and there is no thousands separator. Read in the user's culture, <c>--contamination 0.05</c>
/// was 5 under de-DE; read with thousands separators allowed, <c>-p LearningRate=0,001</c> silently trained with 1. A
/// comma in a single number is refused with a message saying to use '.', since no reading of it is safe to guess.
/// </summary>
public static class InvariantNumbers
{
    /// <summary>The words added to an error for a number written with a decimal comma.</summary>
    public static string CommaAdvice(string text, bool wholeNumber = false)
        => (wholeNumber ? $"write it without a thousands separator (e.g. {text.Replace(",", "")})" : $"use '.' as the decimal separator (e.g. {text.Replace(',', '.')})") +
           "; ddml reads numbers the same in every culture, and a comma separates the items of a list";

    /// <summary>Whether <paramref name="type"/> holds whole numbers only (a comma in one is a thousands separator, not a
    /// decimal one).</summary>
    public static bool IsWholeNumber(Type type) => type != typeof(double) && type != typeof(float) && type != typeof(decimal);

    /// <summary>Reads <paramref name="text"/> as a floating-point (<see cref="NumberStyles.Float"/>) or integer
    /// (<see cref="NumberStyles.Integer"/>) value of the numeric type <paramref name="type"/>, in the invariant culture.</summary>
    /// <exception cref="FormatException">Not a number of that type, or a number written with a comma.</exception>
    /// <exception cref="OverflowException">Out of the type's range.</exception>
    public static object Parse(string text, Type type)
    {
        if (text.Contains(',')) throw new FormatException(CommaAdvice(text.Trim(), IsWholeNumber(type)));
        var ci = CultureInfo.InvariantCulture;
        const NumberStyles floating = NumberStyles.Float, integer = NumberStyles.Integer;
        return Type.GetTypeCode(type) switch
        {
            TypeCode.Double => double.Parse(text, floating, ci),
            TypeCode.Single => float.Parse(text, floating, ci),
            TypeCode.Decimal => decimal.Parse(text, floating, ci),
            TypeCode.Int32 => int.Parse(text, integer, ci),
            TypeCode.Int64 => long.Parse(text, integer, ci),
            TypeCode.Int16 => short.Parse(text, integer, ci),
            TypeCode.SByte => sbyte.Parse(text, integer, ci),
            TypeCode.UInt32 => uint.Parse(text, integer, ci),
            TypeCode.UInt64 => ulong.Parse(text, integer, ci),
            TypeCode.UInt16 => ushort.Parse(text, integer, ci),
            TypeCode.Byte => byte.Parse(text, integer, ci),
            _ => throw new ArgumentException($"{type.Name} is not a numeric type.", nameof(type)),
        };
    }

    /// <summary>Gives <paramref name="option"/> the invariant reading of <see cref="Parse"/> (System.CommandLine reads
    /// numbers in the current culture).</summary>
    public static Option<double> Invariant(this Option<double> option)
    {
        option.CustomParser = result =>
        {
            string text = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
            try { return (double)Parse(text, typeof(double)); }
            catch (Exception e) when (e is FormatException or OverflowException)
            {
                result.AddError($"Cannot parse argument '{text}' for option '{option.Name}': " +
                                (text.Contains(',') ? e.Message + "." : "expected a number (e.g. 0.05)."));
                return default;
            }
        };
        return option;
    }
}
