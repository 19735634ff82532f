using System.Globalization;
using System.Reflection;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Models.Nvil;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Cli;

/// <summary>What <c>ddml fit</c> needs from the command line besides the model's own options.</summary>
public sealed record FitRequest(ulong? Seed, int? Epochs, double Contamination, IReadOnlyList<string> Parameters,
    CancellationToken Stop, CancellationToken Abort, IProgress<Training.TrainingProgress> Progress, Action<string> Note)
{
    /// <summary>Which rows set a row model's PredictedLabel threshold (<c>--threshold-rows</c>): rows the model did not
    /// train on by default (<see cref="DensityEstimatorOptions.ThresholdRows"/>).</summary>
    public DensityThresholdRows ThresholdRows { get; init; } = DensityEstimatorDefaults.ThresholdRows;
}

/// <summary>One model of <c>ddml fit --model NAME</c>: builds its ML.NET estimator from a request and trains it.</summary>
public sealed class ModelEntry
{
    private readonly Func<MLContext, FitRequest, RowMatrix, (Func<IDataView, IDataView?, DensityTransformer> Fit, object EngineOptions)> _create;

    internal ModelEntry(string name, string description, Type engineOptions,
        Func<MLContext, FitRequest, RowMatrix, (Func<IDataView, IDataView?, DensityTransformer>, object)> create, bool adaptsToData)
    {
        Name = name; Description = description; EngineOptionsType = engineOptions; _create = create; AdaptsToData = adaptsToData;
    }

    /// <summary>Whether the model's defaults follow the data (rbm, iwae: binary or Gaussian); when not, every setting's
    /// effect can be checked before the data is read (<see cref="EngineOptions.CheckSettingEffects"/>).</summary>
    public bool AdaptsToData { get; }

    public string Name { get; }
    public string Description { get; }
    public Type EngineOptionsType { get; }

    /// <summary>Builds the estimator for <paramref name="train"/> (used to adapt defaults, e.g. binary vs real units) and
    /// returns its Fit together with the engine options it will train with.</summary>
    public (Func<IDataView, IDataView?, DensityTransformer> Fit, object EngineOptions) Create(MLContext ml, FitRequest request, RowMatrix train)
        => _create(ml, request, train);
}

/// <summary>
/// The model switch of <c>ddml fit</c>. Adding a model is one <see cref="Entry{TOptions,TEstimatorOptions}"/> line in
/// <see cref="All"/>: its name, a description, how the catalog builds its estimator and (optionally) how its defaults
/// adapt to the data. Everything else (--epochs, --seed, --param Name=Value for any engine option, Ctrl+C) is generic.
/// </summary>
public static class ModelCatalog
{
    public static readonly IReadOnlyList<ModelEntry> All = new[]
    {
        Entry<RnadeOptions, RnadeEstimator.Options>("rnade", "RNADE: exact log-density of real vectors",
            (ml, o) => ml.DensityEstimation.Rnade(o).Fit),
        Entry<DeepRnadeOptions, DeepRnadeEstimator.Options>("deeprnade", "Deep RNADE: exact log-density of real vectors, averaged over orderings",
            (ml, o) => ml.DensityEstimation.DeepRnade(o).Fit),
        Entry<DeepGmmOptions, DeepGmmEstimator.Options>("deepgmm", "Deep GMM (EM): exact log-density of real vectors",
            (ml, o) => ml.DensityEstimation.DeepGmm(o).Fit),
        Entry<RbmOptions, RbmEstimator.Options>("rbm", "RBM (PCD): binary units on 0/1 data, Gaussian units otherwise",
            (ml, o) => ml.DensityEstimation.Rbm(o).Fit,
            (o, data, set, note) => { if (!set.Contains(nameof(RbmOptions.VisibleType)) && !IsBinary(data)) { o.VisibleType = RbmVisibleType.Gaussian; note("rbm: the data is not 0/1, so VisibleType=Gaussian (set --param VisibleType=... to choose)."); } }),
        Entry<IwaeOptions, IwaeEstimator.Options>("iwae", "IWAE/VAE: importance-sampled log-density; Bernoulli on 0/1 data, Gaussian otherwise",
            (ml, o) => ml.DensityEstimation.Iwae(o).Fit,
            (o, data, set, note) => { if (!set.Contains(nameof(IwaeOptions.Likelihood)) && !IsBinary(data)) { o.Likelihood = IwaeLikelihood.Gaussian; note("iwae: the data is not 0/1, so Likelihood=Gaussian (set --param Likelihood=... to choose)."); } }),
        Entry<NvilOptions, NvilEstimator.Options>("nvil", "NVIL sigmoid belief network: importance-sampled log-density of 0/1 vectors",
            (ml, o) => ml.DensityEstimation.Nvil(o).Fit),
    };

    /// <summary>The vector models (one row = one vector).</summary>
    public static IEnumerable<string> Names => All.Select(e => e.Name);

    /// <summary>Every --model value: the vector models and the sequence model (RNN-RNADE on frame rows, see <see cref="SequenceCommands"/>).</summary>
    public static IEnumerable<string> AllNames => Names.Append(SequenceCommands.ModelName);

    /// <summary>The --model value <paramref name="name"/> spelled as ddml spells it (names are case-insensitive), or null when no model has that name.</summary>
    public static string? CanonicalName(string name)
        => AllNames.FirstOrDefault(n => string.Equals(n, name, StringComparison.OrdinalIgnoreCase));

    public static ModelEntry Find(string name)
        => All.FirstOrDefault(e => string.Equals(e.Name, name, StringComparison.OrdinalIgnoreCase))
           ?? throw new CliException(ExitCodes.UsageError, $"unknown model '{name}' (choose one of: {string.Join(", ", Names)}).");

    /// <summary>The standard-error column every ddml model writes (zeros unless the model's log-density is an estimate).</summary>
    public const string StandardErrorColumn = "StandardError";

    private static ModelEntry Entry<TOptions, TEstimatorOptions>(string name, string description,
        Func<MLContext, TEstimatorOptions, Func<IDataView, IDataView?, DensityTransformer>> fit,
        Action<TOptions, RowMatrix, ISet<string>, Action<string>>? adapt = null)
        where TOptions : class, new()
        where TEstimatorOptions : DensityEstimatorOptions<TOptions>, new()
        => new(name, description, typeof(TOptions), (ml, request, train) =>
        {
            var engine = new TOptions();
            var set = EngineOptions.Apply(engine, request);
            adapt?.Invoke(engine, train, set, request.Note);
            var options = new TEstimatorOptions
            {
                ModelOptions = engine,
                Contamination = request.Contamination,
                ThresholdRows = request.ThresholdRows,
                StandardErrorColumnName = StandardErrorColumn,
                Progress = request.Progress,
                CancellationToken = request.Abort,
            };
            return (fit(ml, options), engine);
        }, adaptsToData: adapt is not null);

    private static bool IsBinary(RowMatrix m)
    {
        foreach (var v in m.Values.AsSpan(0, m.Rows * m.Columns)) if (v != 0f && v != 1f) return false;
        return true;
    }
}

/// <summary>Sets engine options by property name (the generic part of every model entry).</summary>
public static class EngineOptions
{
    /// <summary>Applies --epochs, --seed, the stop token and every --param Name=Value; returns the names that were set.</summary>
    public static ISet<string> Apply(object options, FitRequest request)
    {
        var set = new HashSet<string>(StringComparer.Ordinal);
        var type = options.GetType();
        if (request.Epochs is int epochs)
        {
            var p = type.GetProperty("MaxEpochs") ?? type.GetProperty("MaxIterations")
                ?? throw new CliException(ExitCodes.UsageError, $"--epochs: {type.Name} has no MaxEpochs or MaxIterations.");
            p.SetValue(options, epochs);
            set.Add(p.Name);
        }
        if (request.Seed is ulong seed) { type.GetProperty("Seed")?.SetValue(options, seed); set.Add("Seed"); }
        type.GetProperty("StopToken")?.SetValue(options, request.Stop);
        foreach (var assignment in request.Parameters)
        {
            int eq = assignment.IndexOf('=');
            if (eq <= 0) throw new CliException(ExitCodes.UsageError, $"--param '{assignment}': expected Name=Value (e.g. --param HiddenUnits=100).");
            string name = assignment[..eq].Trim(), text = assignment[(eq + 1)..].Trim();
            var property = Settable(type).FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
                ?? throw new CliException(ExitCodes.UsageError, $"--param {name}: {type.Name} has no such option (it has: {string.Join(", ", Settable(type).Select(p => p.Name))}).");
            // Set twice (--epochs 2 -p MaxEpochs=3, --seed 3 -p Seed=5, or two -p): the last one won silently.
            if (set.Contains(property.Name))
                throw new CliException(ExitCodes.UsageError, $"--param {assignment}: {property.Name} is set twice (" +
                    (request.Epochs is not null && property.Name is "MaxEpochs" or "MaxIterations" ? "also by --epochs"
                        : request.Seed is not null && property.Name == "Seed" ? "also by --seed" : "by an earlier --param") + "); give it once.");
            property.SetValue(options, Convert(text, property.PropertyType, property.Name));
            set.Add(property.Name);
        }
        try { type.GetMethod("Validate")?.Invoke(options, null); }
        catch (TargetInvocationException e) when (e.InnerException is ArgumentException a)
        {
            bool byEpochs = request.Epochs is not null && a.ParamName is "MaxEpochs" or "MaxIterations";
            throw Refused(a, byEpochs ? " (set by --epochs)" : "");
        }
        return set;
    }

    /// <summary>An option the estimator refused (out of range, or set where it has no effect) as a usage error: the
    /// options' own sentence, without .NET's " (Parameter 'X')" and "Actual value was" suffixes, which repeat it.</summary>
    public static CliException Refused(ArgumentException a, string note = "")
    {
        string message = a.ParamName is string p && a.Message.IndexOf($" (Parameter '{p}')", StringComparison.Ordinal) is int cut and >= 0
            ? a.Message[..cut] : a.Message;
        return new CliException(ExitCodes.UsageError, $"invalid model option: {message}{note}", a);
    }

    /// <summary>Whether <paramref name="name"/> (an <see cref="ArgumentException.ParamName"/>) is one of the options a user
    /// sets (by its exact name): the estimator refuses a setting at Fit, where the data settles whether it has an effect,
    /// naming it so; that is a usage error (exit 2), not "cannot train on this data" (exit 5).</summary>
    public static bool IsOption(object options, string? name)
        => name is not null && Settable(options.GetType()).Any(p => string.Equals(p.Name, name, StringComparison.Ordinal));

    /// <summary>The engine options set where they have no effect, refused before the data is read as usage errors: those
    /// <c>--validation</c> makes moot or that need validation data (the estimator's own rule, <see cref="SettingEffects"/>,
    /// in ddml's words), and, for a model whose defaults do not adapt to the data (<paramref name="adaptsToData"/> false),
    /// the rest of the rules, which the estimator would otherwise apply only after the whole file was read.</summary>
    /// <param name="options">The engine options, with the command line applied.</param>
    /// <param name="validationFile">Whether --validation was given.</param>
    /// <param name="adaptsToData">Whether the model's defaults follow the data (rbm, iwae): then the rules that depend on
    /// those defaults wait for the estimator.</param>
    public static void CheckSettingEffects(object options, bool validationFile, bool adaptsToData)
    {
        try
        {
            SettingEffects.CheckAtFit(options, validationFile, columns: null, DdmlTerms);
            if (!adaptsToData) SettingEffects.CheckModelOptions(options);
        }
        catch (ArgumentException e) { throw Refused(e); }
    }

    /// <summary>The validation rules' words on the command line.</summary>
    private static readonly SettingEffects.ValidationTerms DdmlTerms = new("with --validation",
        "the validation file replaces the held-out fraction, and no training row is held out", "drop --validation",
        "without validation data (ValidationFraction = 0 and no --validation)", "pass --validation FILE or set --param ValidationFraction above 0",
        (name, value) => $"--param {name}={value}");

    /// <summary>The options a user can set: public read/write properties of a simple type.</summary>
    public static IEnumerable<PropertyInfo> Settable(Type type)
        => type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
               .Where(p => p.CanWrite && p.CanRead && IsSimple(p.PropertyType));

    /// <summary>The option values as text (for <c>ddml info</c>).</summary>
    public static SortedDictionary<string, string> Describe(object options)
    {
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in Settable(options.GetType()))
        {
            var v = p.GetValue(options);
            result[p.Name] = v switch
            {
                null => "",
                int[] a => string.Join(",", a),
                IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
                _ => v.ToString() ?? "",
            };
        }
        return result;
    }

    private static bool IsSimple(Type t)
    {
        t = Nullable.GetUnderlyingType(t) ?? t;
        return t.IsPrimitive || t.IsEnum || t == typeof(double) || t == typeof(float) || t == typeof(int[]);
    }

    private static object? Convert(string text, Type type, string name)
    {
        var t = Nullable.GetUnderlyingType(type) ?? type;
        try
        {
            if (t == typeof(int[]))
                return text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                           .Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
            if (t.IsEnum)
            {
                if (Enum.TryParse(t, text, ignoreCase: true, out var e) && Enum.IsDefined(t, e!)) return e;
                throw new FormatException($"choose one of {string.Join(", ", Enum.GetNames(t))}");
            }
            if (t == typeof(bool)) return bool.Parse(text);
            if (t == typeof(char)) return char.Parse(text);
            return InvariantNumbers.Parse(text, t);
        }
        catch (Exception e) when (e is FormatException or OverflowException or InvalidCastException)
        {
            throw new CliException(ExitCodes.UsageError, text.Contains(',') && !t.IsArray && !t.IsEnum && t != typeof(bool)
                ? $"--param {name}={text}: {name} is one number: {InvariantNumbers.CommaAdvice($"{name}={text.Trim()}", InvariantNumbers.IsWholeNumber(t))}."
                : $"--param {name}={text}: not a valid {t.Name} ({e.Message}).");
        }
    }
}
