using System.Globalization;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Models.Nvil;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Transforms;

/// <summary>
/// "Nothing is silently dropped", applied to settings: a setting given a value other than its default where it has no
/// effect (it belongs to another model variant, to streamed training, to a sample column, to validation data...) is
/// refused with an <see cref="ArgumentException"/> naming the setting, its value and the setting that would make it
/// count. Such a value used to be trained around without a word, so the user believed it had been applied. A default is
/// never refused — it is what the user gets without asking — so the catalog overloads, which set only what their
/// parameters name, never trip a check. Nor is a value that only switches off what the configuration does not do anyway
/// (<c>ValidationFraction = 0</c> with a validation set: no training row is held out, as asked; <c>Standardize = false</c>
/// for binary data; <c>EarlyStoppingPatience = 0</c> without validation data): nothing the user asked for is dropped,
/// and refusing it would only make the user delete a true statement. The defaults compared with are the options class's own (a fresh instance of the
/// same type: the RBM's Momentum is 0.5, the loop's 0.9). Checked with the other settings: at construction and again at
/// Fit; what depends on the data (a validation set passed to Fit, the width of the feature column) at Fit, before a row
/// is read.
/// </summary>
internal static class SettingEffects
{
    /// <summary>The ML.NET-side settings that only some configurations use.</summary>
    public static void CheckEstimatorSettings(DensityEstimatorOptions o)
    {
        if (o.TrainingData != DensityTrainingData.Streamed)
            Unused(nameof(o.ShuffleBufferRows), o.ShuffleBufferRows, DensityEstimatorDefaults.ShuffleBufferRows, $"with TrainingData = {o.TrainingData}",
                "it sizes the shuffle buffer of a streamed Fit", $"set TrainingData = {nameof(DensityTrainingData.Streamed)}");
        if (o.SampleColumnName is null)
            Unused(nameof(o.SampleSeed), o.SampleSeed, DensityEstimatorDefaults.SampleSeed, "without a sample column (SampleColumnName = null)",
                "it seeds the draws of the sample column", "set SampleColumnName");
    }

    /// <summary>The engine's settings that only some configurations of their model use, as far as the options alone tell
    /// (at construction and at Fit). An options type without such rules passes.</summary>
    public static void CheckModelOptions(object options)
    {
        if (options is GradientTrainingOptions gradient) CheckTrainingLoop(gradient, (GradientTrainingOptions)Defaults(gradient));
        switch (options)
        {
            case DeepRnadeOptions deep: CheckDeepRnade(deep); break;
            case RbmOptions rbm: CheckRbm(rbm, columns: null); break;
            case DeepGmmOptions gmm: CheckDeepGmm(gmm); break;
            case IwaeOptions iwae: CheckIwae(iwae); break;
            case NvilOptions nvil: CheckNvil(nvil); break;
        }
    }

    /// <summary>How the validation rules name the validation data and a setting: in the ML.NET user's words (a validation
    /// set passed to Fit, <c>Momentum = 0.5</c>) or in ddml's (<c>--validation</c>, <c>--param Momentum=0.5</c>), so that
    /// the one rule serves both.</summary>
    internal sealed record ValidationTerms(string Given, string Replaces, string DropIt, string Missing, string GiveIt, Func<string, string, string> Setting)
    {
        public static readonly ValidationTerms MLNet = new("with a validation set passed to Fit",
            "the validation set replaces the held-out fraction, and no training row is held out", "call Fit without the validation set",
            "without validation data (ValidationFraction = 0 and no validation set passed to Fit)",
            "set ValidationFraction above 0 or pass a validation set to Fit", (name, value) => $"{name} = {value}");
    }

    /// <summary>What only Fit knows: whether a validation set was passed (which makes the held-out fraction moot, and
    /// without which, at <c>ValidationFraction = 0</c>, the validation-only settings are), and the width of the feature
    /// column (whether an RBM's log Z is exact). Called before a row is read.</summary>
    /// <param name="options">The engine's options.</param>
    /// <param name="hasValidationSet">Whether Fit was given a validation view.</param>
    /// <param name="columns">The feature column's width, or null when it is not known (sequence models).</param>
    /// <param name="terms">The words of the messages; null: <see cref="ValidationTerms.MLNet"/>.</param>
    public static void CheckAtFit(object options, bool hasValidationSet, int? columns, ValidationTerms? terms = null)
    {
        terms ??= ValidationTerms.MLNet;
        var (fraction, patience) = options switch
        {
            GradientTrainingOptions g => (g.ValidationFraction, g.EarlyStoppingPatience),
            DeepGmmOptions gmm => (gmm.ValidationFraction, gmm.EarlyStoppingPatience),
            _ => (double.NaN, 0),
        };
        if (double.IsNaN(fraction)) return;
        var defaults = Defaults(options);
        var (defaultFraction, defaultPatience) = defaults switch
        {
            GradientTrainingOptions g => (g.ValidationFraction, g.EarlyStoppingPatience),
            _ => (((DeepGmmOptions)defaults).ValidationFraction, ((DeepGmmOptions)defaults).EarlyStoppingPatience),
        };
        if (hasValidationSet)
            Unused("ValidationFraction", fraction, defaultFraction, terms.Given, terms.Replaces, terms.DropIt, offAnyway: fraction == 0, terms.Setting);
        else if (fraction == 0)
        {
            Unused("EarlyStoppingPatience", patience, defaultPatience, terms.Missing, "early stopping watches the validation log-likelihood", terms.GiveIt,
                offAnyway: patience == 0, terms.Setting);
            if (options is DeepRnadeOptions deep)
                Unused(nameof(deep.ValidationOrderings), deep.ValidationOrderings, DeepRnadeOptions.Defaults.ValidationOrderings, terms.Missing,
                    "it is the number of orderings the validation log-likelihood averages", terms.GiveIt, named: terms.Setting);
        }
        if (options is RbmOptions rbm && columns is int d) CheckRbm(rbm, d);
    }

    /// <summary>The shared training loop's settings that its optimiser or schedule does not read; the RBM trains by
    /// contrastive divergence with its own SGD and momentum, and reads none of the optimiser's settings.</summary>
    private static void CheckTrainingLoop(GradientTrainingOptions o, GradientTrainingOptions d)
    {
        if (o is RbmOptions)
        {
            const string where = "on the RBM", what = "the RBM trains by contrastive divergence with SGD and Momentum, whatever the optimiser settings say";
            // SgdMomentum (the one value besides the default, Adam) says what the RBM does: accepted, not "leave it at Adam".
            Unused(nameof(o.Optimizer), o.Optimizer, d.Optimizer, where, what, remedy: null, offAnyway: o.Optimizer == OptimizerKind.SgdMomentum);
            Unused(nameof(o.AdamBeta1), o.AdamBeta1, d.AdamBeta1, where, what, remedy: null);
            Unused(nameof(o.AdamBeta2), o.AdamBeta2, d.AdamBeta2, where, what, remedy: null);
            Unused(nameof(o.AdamEpsilon), o.AdamEpsilon, d.AdamEpsilon, where, what, remedy: null);
            Unused(nameof(o.GradientClipNorm), o.GradientClipNorm, d.GradientClipNorm, where, what, remedy: null, offAnyway: o.GradientClipNorm == 0);
        }
        else
        {
            string where = $"with Optimizer = {o.Optimizer}";
            if (o.Optimizer != OptimizerKind.SgdMomentum)
                Unused(nameof(o.Momentum), o.Momentum, d.Momentum, where, "it is the momentum of SgdMomentum", $"set Optimizer = {nameof(OptimizerKind.SgdMomentum)}");
            if (o.Optimizer != OptimizerKind.Adam)
            {
                string what = "it is a setting of Adam", remedy = $"set Optimizer = {nameof(OptimizerKind.Adam)}";
                Unused(nameof(o.AdamBeta1), o.AdamBeta1, d.AdamBeta1, where, what, remedy);
                Unused(nameof(o.AdamBeta2), o.AdamBeta2, d.AdamBeta2, where, what, remedy);
                Unused(nameof(o.AdamEpsilon), o.AdamEpsilon, d.AdamEpsilon, where, what, remedy);
            }
        }
        if (o.LearningRateDecay == 1f)
            Unused(nameof(o.LearningRateDecayExamples), o.LearningRateDecayExamples, d.LearningRateDecayExamples, "with LearningRateDecay = 1",
                "it spaces the steps of the decay, and a decay of 1 keeps the rate constant", "set LearningRateDecay below 1");
    }

    private static void CheckDeepRnade(DeepRnadeOptions o)
    {
        // DirectConnections is read by the autoregressive network only, but its default is true: the one other value,
        // false, asks the masked-input network for what it does anyway (no direct connections), so nothing is refused.
        if (!o.OrderAgnostic)
            Unused(nameof(o.Orderings), o.Orderings, DeepRnadeOptions.Defaults.Orderings, "with OrderAgnostic = false",
                "a fixed order is one ordering; an ensemble of orderings needs order-agnostic training", "set OrderAgnostic = true");
        // The engine averages min(ValidationOrderings, orderings) orderings: the rest of a larger value was dropped unsaid.
        int orderings = o.OrderAgnostic ? o.Orderings : 1;
        if (o.ValidationOrderings > orderings)
            throw NoEffect(nameof(o.ValidationOrderings), Show(o.ValidationOrderings), Show(DeepRnadeOptions.Defaults.ValidationOrderings),
                Invariant($"beyond the model's {orderings} ordering{(orderings == 1 ? "" : "s")} (Orderings = {o.Orderings}{(o.OrderAgnostic ? "" : ", OrderAgnostic = false")})"),
                "the validation log-likelihood averages the first ValidationOrderings of the model's orderings",
                o.OrderAgnostic ? "raise Orderings" : "set OrderAgnostic = true and raise Orderings");
    }

    /// <param name="o">The RBM's options.</param>
    /// <param name="columns">The visible units (the feature column's width), or null at construction: log Z is exact when
    /// the smaller layer (the hidden one for Gaussian units) has at most ExactLogPartitionMaxUnits units, which the
    /// hidden units alone settle when they are that few.</param>
    private static void CheckRbm(RbmOptions o, int? columns)
    {
        if (o.Algorithm == RbmTrainingAlgorithm.ContrastiveDivergence)
            Unused(nameof(o.PersistentChains), o.PersistentChains, RbmOptions.Defaults.PersistentChains, "with Algorithm = ContrastiveDivergence",
                "it is the number of PCD's persistent fantasy chains", $"set Algorithm = {nameof(RbmTrainingAlgorithm.PersistentContrastiveDivergence)}");
        // Standardize is read for Gaussian units only, but its one value other than the default, false, asks binary units
        // for what they do anyway (they are never standardised), so nothing is refused; likewise IWAE's.
        // VisibleStdDev is the width of Gaussian units: binary units have none, so any other value is dropped.
        if (o.VisibleType != RbmVisibleType.Gaussian)
            Unused(nameof(o.VisibleStdDev), o.VisibleStdDev, RbmOptions.Defaults.VisibleStdDev, $"with VisibleType = {o.VisibleType}",
                "it is the standard deviation of Gaussian visible units, and binary units have none", $"set VisibleType = {nameof(RbmVisibleType.Gaussian)}");
        int smaller = o.VisibleType == RbmVisibleType.Gaussian || columns is null ? o.HiddenUnits : Math.Min(columns.Value, o.HiddenUnits);
        if (smaller <= o.ExactLogPartitionMaxUnits)
        {
            string where = Invariant($"when log Z is exact (the smaller layer has {smaller} units, at most ExactLogPartitionMaxUnits = {o.ExactLogPartitionMaxUnits})");
            string what = "it is a setting of the AIS estimate of log Z", remedy = Invariant($"set ExactLogPartitionMaxUnits below {smaller}");
            Unused(nameof(o.AisRuns), o.AisRuns, RbmOptions.Defaults.AisRuns, where, what, remedy);
            Unused(nameof(o.AisTemperatures), o.AisTemperatures, RbmOptions.Defaults.AisTemperatures, where, what, remedy);
        }
    }

    /// <summary>What a network's shape and the chosen E-step, M-step and initialisation leave unread (DeepGmmModel,
    /// DeepGmmTrainer): one layer is a GMM (closed-form M-step, k-means++ start, no lower layers); the minibatch M-step
    /// trains every layer above the bottom one, whose M-step is closed-form unless LowerLayerShrinkage pulls it to the
    /// identity (then L-BFGS); the top layer's pretraining is a GMM run with EStep = Auto, so ExactPathLimit and the
    /// heuristic passes can matter to it whatever EStep says.</summary>
    private static void CheckDeepGmm(DeepGmmOptions o)
    {
        var d = DeepGmmDefaults;
        if (o.Layers.Length == 1)
        {
            string where = Invariant($"with one layer (Layers = {Show(o.Layers)})");
            const string what = "a one-layer Deep GMM is a full-covariance GMM, fitted from a k-means++ start by closed-form M-steps, and the setting belongs to deeper networks";
            const string remedy = "give Layers two or more entries";
            Unused(nameof(o.MStep), o.MStep, d.MStep, where, what, remedy);
            Unused(nameof(o.NodeObjective), o.NodeObjective, d.NodeObjective, where, what, remedy);
            Unused(nameof(o.LbfgsIterations), o.LbfgsIterations, d.LbfgsIterations, where, what, remedy);
            Unused(nameof(o.MinibatchEpochs), o.MinibatchEpochs, d.MinibatchEpochs, where, what, remedy);
            Unused(nameof(o.MinibatchSize), o.MinibatchSize, d.MinibatchSize, where, what, remedy);
            Unused(nameof(o.MinibatchLearningRate), o.MinibatchLearningRate, d.MinibatchLearningRate, where, what, remedy);
            Unused(nameof(o.LowerLayerShrinkage), o.LowerLayerShrinkage, d.LowerLayerShrinkage, where, what, remedy, offAnyway: o.LowerLayerShrinkage == 0);
            Unused(nameof(o.Initialization), o.Initialization, d.Initialization, where, what, remedy);
            Unused(nameof(o.PretrainIterations), o.PretrainIterations, d.PretrainIterations, where, what, remedy);
            Unused(nameof(o.LowerLayerPerturbation), o.LowerLayerPerturbation, d.LowerLayerPerturbation, where, what, remedy);
        }
        else
        {
            if (o.MStep == DeepGmmMStep.Lbfgs)
            {
                const string where = "with MStep = Lbfgs", what = "it is a setting of the minibatch M-step", remedy = "set MStep = Minibatch";
                Unused(nameof(o.MinibatchEpochs), o.MinibatchEpochs, d.MinibatchEpochs, where, what, remedy);
                Unused(nameof(o.MinibatchSize), o.MinibatchSize, d.MinibatchSize, where, what, remedy);
                Unused(nameof(o.MinibatchLearningRate), o.MinibatchLearningRate, d.MinibatchLearningRate, where, what, remedy);
            }
            else
            {
                Unused(nameof(o.NodeObjective), o.NodeObjective, d.NodeObjective, "with MStep = Minibatch",
                    "it chooses the objective of the L-BFGS M-step of the layers above the bottom one, which the minibatch M-step trains instead", "set MStep = Lbfgs");
                if (o.LowerLayerShrinkage == 0)
                    Unused(nameof(o.LbfgsIterations), o.LbfgsIterations, d.LbfgsIterations, "with MStep = Minibatch and LowerLayerShrinkage = 0",
                        "the minibatch M-step trains every layer above the bottom one, and the bottom layer's M-step is closed-form without shrinkage",
                        "set MStep = Lbfgs or LowerLayerShrinkage above 0");
            }
            if (o.Initialization == DeepGmmInitialization.Greedy)
            {
                const string where = "with Initialization = Greedy", what = "it is a setting of the pretrained-top-layer initialisation";
                const string remedy = "set Initialization = PretrainedTopLayer";
                Unused(nameof(o.PretrainIterations), o.PretrainIterations, d.PretrainIterations, where, what, remedy);
                Unused(nameof(o.LowerLayerPerturbation), o.LowerLayerPerturbation, d.LowerLayerPerturbation, where, what, remedy);
            }
        }

        bool hard = o.Em == DeepGmmEmKind.Hard;
        bool pretrains = o.Layers.Length > 1 && o.Initialization == DeepGmmInitialization.PretrainedTopLayer;
        if (!hard)
            Unused(nameof(o.ExactPathLimit), o.ExactPathLimit, d.ExactPathLimit, "with Em = Soft",
                "soft EM scores every path; the limit chooses the E-step of hard EM with EStep = Auto", "set Em = Hard");
        else if (o.EStep != DeepGmmEStep.Auto && !pretrains)
            Unused(nameof(o.ExactPathLimit), o.ExactPathLimit, d.ExactPathLimit,
                $"with EStep = {o.EStep}" + (o.Layers.Length > 1 ? " and Initialization = Greedy" : ""),
                "it is the path count up to which EStep = Auto (and the top layer's pretraining) scores every path", "set EStep = Auto");
        // Heuristic passes: read by a hard E-step that does not score every path, the deep model's or its pretraining's.
        bool heuristic = hard && (!o.UsesExactEStep || (pretrains && o.Layers[^1] > o.ExactPathLimit));
        if (!heuristic)
        {
            string where = !hard ? "with Em = Soft (it scores every path)"
                : o.EStep == DeepGmmEStep.Exact ? "with EStep = Exact"
                : Invariant($"when the E-step scores every path (the network has {o.PathCount} paths, at most ExactPathLimit = {o.ExactPathLimit})");
            const string what = "it is a setting of the heuristic E-step";
            string remedy = hard ? "set EStep = Heuristic" : "set Em = Hard and EStep = Heuristic";
            Unused(nameof(o.HeuristicWarmPasses), o.HeuristicWarmPasses, d.HeuristicWarmPasses, where, what, remedy);
            Unused(nameof(o.HeuristicRandomPasses), o.HeuristicRandomPasses, d.HeuristicRandomPasses, where, what, remedy, offAnyway: o.HeuristicRandomPasses == 0);
        }
    }

    private static void CheckIwae(IwaeOptions o)
    {
        if (o.LatentDimensions.Length == 1 && !o.DeepHiddenUnits.SequenceEqual(IwaeOptions.Defaults.DeepHiddenUnits))
            throw NoEffect(nameof(o.DeepHiddenUnits), Show(o.DeepHiddenUnits), Show(IwaeOptions.Defaults.DeepHiddenUnits),
                Invariant($"with one stochastic layer (LatentDimensions = {Show(o.LatentDimensions)})"),
                "it shapes the networks between stochastic layers", "give LatentDimensions two or more entries");
        // Standardize = false with Likelihood = Bernoulli asks for what happens anyway (0/1 data are never standardised).
    }

    private static void CheckNvil(NvilOptions o)
    {
        if (!o.InputDependentBaseline)
            Unused(nameof(o.BaselineHiddenUnits), o.BaselineHiddenUnits, NvilOptions.Defaults.BaselineHiddenUnits, "with InputDependentBaseline = false",
                "it sizes the hidden layer of the input-dependent baseline", "set InputDependentBaseline = true");
        if (!o.CenterSignal && !o.NormalizeSignal)
            Unused(nameof(o.SignalSmoothing), o.SignalSmoothing, NvilOptions.Defaults.SignalSmoothing, "with CenterSignal = false and NormalizeSignal = false",
                "it smooths the running mean and variance that centring and normalising the learning signal use", "set CenterSignal or NormalizeSignal = true");
        // LocalLearningSignals = false (its default is true) with one latent layer asks for the one signal it has anyway.
    }

    private static readonly DeepGmmOptions DeepGmmDefaults = new();

    /// <summary>A fresh instance of the options' own type: the defaults of that family (RbmOptions changes the loop's).</summary>
    private static object Defaults(object options) => Activator.CreateInstance(options.GetType())!;

    /// <summary>Refuses <paramref name="value"/> when it is not <paramref name="defaultValue"/>.</summary>
    /// <param name="setting">The setting's name (the exception's ParamName).</param>
    /// <param name="where">The configuration in which it has no effect ("with TrainingData = InMemory").</param>
    /// <param name="what">What the setting does, and so why it has no effect there.</param>
    /// <param name="remedy">The setting that would make it count ("set TrainingData = Streamed"), or null when none would.</param>
    /// <param name="offAnyway">The value only switches off what this configuration does not do anyway (see the class
    /// remarks): accepted.</param>
    /// <param name="named">How the message names the setting and its value (<see cref="ValidationTerms.Setting"/>); null:
    /// <c>Setting = value</c>.</param>
    private static void Unused<T>(string setting, T value, T defaultValue, string where, string what, string? remedy, bool offAnyway = false,
        Func<string, string, string>? named = null)
    {
        if (!offAnyway && !EqualityComparer<T>.Default.Equals(value, defaultValue)) throw NoEffect(setting, Show(value), Show(defaultValue), where, what, remedy, named);
    }

    private static ArgumentException NoEffect(string setting, string value, string defaultValue, string where, string what, string? remedy,
        Func<string, string, string>? named = null)
        => new($"{(named ?? ValidationTerms.MLNet.Setting)(setting, value)} has no effect {where}: {what}; {(remedy is null ? "" : remedy + ", or ")}leave {setting} at its default ({defaultValue}).", setting);

    /// <summary>A value as every option message shows it (<see cref="OptionText"/>: an array as <c>[3, 4]</c>).</summary>
    private static string Show(object? value) => OptionText.Show(value);

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
