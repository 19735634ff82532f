using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Models.Nvil;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Training;
using Microsoft.ML.DeepDensity.Transforms;
using Xunit;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// "Nothing is silently dropped", for settings (docs/mlnet.md): a setting given a value other than its default where it
/// has no effect is refused with an <see cref="ArgumentException"/> naming the setting (<c>ParamName</c> too), its value
/// and the setting that would make it count — when the estimator is created if the options tell, else at Fit before a
/// row is read. Before, every one of these trained as if the setting had not been given. Each refused configuration has a
/// twin with the enabling setting, which is accepted; defaults and the catalog overloads are never refused.
/// </summary>
public class SettingEffectTests
{
    /// <summary>A refused configuration: the setting named, a fragment of its message (the value and the remedy), and
    /// the twin that makes the setting count.</summary>
    public sealed record Case(string Setting, string Fragment, Func<DensityEstimationCatalog, object> Refused, Func<DensityEstimationCatalog, object> Accepted);

    private static readonly Dictionary<string, Case> Cases = new()
    {
        ["ShuffleBufferRows in memory"] = new("ShuffleBufferRows", "ShuffleBufferRows = 5000 has no effect with TrainingData = InMemory: it sizes the shuffle buffer of a streamed Fit; set TrainingData = Streamed, or leave ShuffleBufferRows at its default (0).",
            c => c.Rnade(new RnadeEstimator.Options { ShuffleBufferRows = 5000 }),
            c => c.Rnade(new RnadeEstimator.Options { ShuffleBufferRows = 5000, TrainingData = DensityTrainingData.Streamed })),
        ["SampleSeed without a sample column"] = new("SampleSeed", "SampleSeed = 7 has no effect without a sample column (SampleColumnName = null): it seeds the draws of the sample column; set SampleColumnName, or leave SampleSeed at its default (0).",
            c => c.Iwae(new IwaeEstimator.Options { SampleSeed = 7 }),
            c => c.Iwae(new IwaeEstimator.Options { SampleSeed = 7, SampleColumnName = "Sample" })),
        ["Momentum with Adam"] = new("Momentum", "Momentum = 0.5 has no effect with Optimizer = Adam: it is the momentum of SgdMomentum; set Optimizer = SgdMomentum, or leave Momentum at its default (0.9).",
            c => c.Rnade(new RnadeEstimator.Options { ModelOptions = new() { Momentum = 0.5f } }),
            c => c.Rnade(new RnadeEstimator.Options { ModelOptions = new() { Momentum = 0.5f, Optimizer = OptimizerKind.SgdMomentum } })),
        ["AdamBeta2 with SGD"] = new("AdamBeta2", "AdamBeta2 = 0.99 has no effect with Optimizer = SgdMomentum: it is a setting of Adam; set Optimizer = Adam",
            c => c.Nvil(new NvilEstimator.Options { ModelOptions = new() { Optimizer = OptimizerKind.SgdMomentum, AdamBeta2 = 0.99f } }),
            c => c.Nvil(new NvilEstimator.Options { ModelOptions = new() { AdamBeta2 = 0.99f } })),
        ["LearningRateDecayExamples without a decay"] = new("LearningRateDecayExamples", "with LearningRateDecay = 1: it spaces the steps of the decay, and a decay of 1 keeps the rate constant; set LearningRateDecay below 1",
            c => c.DeepRnade(new DeepRnadeEstimator.Options { ModelOptions = new() { LearningRateDecayExamples = 10_000 } }),
            c => c.DeepRnade(new DeepRnadeEstimator.Options { ModelOptions = new() { LearningRateDecayExamples = 10_000, LearningRateDecay = 0.9f } })),
        ["Adam settings of the RBM"] = new("AdamBeta1", "AdamBeta1 = 0.8 has no effect on the RBM: the RBM trains by contrastive divergence with SGD and Momentum, whatever the optimiser settings say; leave AdamBeta1 at its default (0.9).",
            c => c.Rbm(new RbmEstimator.Options { ModelOptions = new() { AdamBeta1 = 0.8f } }),
            c => c.Rbm(new RbmEstimator.Options { ModelOptions = new() { Optimizer = OptimizerKind.SgdMomentum } })),   // SGD with momentum: what the RBM does
        ["GradientClipNorm of the RBM"] = new("GradientClipNorm", "GradientClipNorm = 5 has no effect on the RBM",
            c => c.Rbm(new RbmEstimator.Options { ModelOptions = new() { GradientClipNorm = 5 } }),
            c => c.Rbm(new RbmEstimator.Options { ModelOptions = new() { GradientClipNorm = 0 } })),   // "no clipping": what the RBM does
        ["PersistentChains with CD"] = new("PersistentChains", "with Algorithm = ContrastiveDivergence: it is the number of PCD's persistent fantasy chains; set Algorithm = PersistentContrastiveDivergence",
            c => c.Rbm(new RbmEstimator.Options { ModelOptions = new() { Algorithm = RbmTrainingAlgorithm.ContrastiveDivergence, PersistentChains = 50 } }),
            c => c.Rbm(new RbmEstimator.Options { ModelOptions = new() { PersistentChains = 50 } })),
        ["VisibleStdDev with binary units"] = new("VisibleStdDev", "VisibleStdDev = 0.3 has no effect with VisibleType = Bernoulli: it is the standard deviation of Gaussian visible units, and binary units have none; set VisibleType = Gaussian, or leave VisibleStdDev at its default (",
            c => c.Rbm(new RbmEstimator.Options { ModelOptions = new() { VisibleStdDev = 0.3f } }),
            c => c.Rbm(new RbmEstimator.Options { ModelOptions = new() { VisibleType = RbmVisibleType.Gaussian, VisibleStdDev = 0.3f } })),
        ["AisRuns with an exact log Z"] = new("AisRuns", "AisRuns = 50 has no effect when log Z is exact (the smaller layer has 10 units, at most ExactLogPartitionMaxUnits = 20): it is a setting of the AIS estimate of log Z; set ExactLogPartitionMaxUnits below 10",
            c => c.Rbm(new RbmEstimator.Options { ModelOptions = new() { HiddenUnits = 10, AisRuns = 50 } }),
            c => c.Rbm(new RbmEstimator.Options { ModelOptions = new() { HiddenUnits = 10, AisRuns = 50, ExactLogPartitionMaxUnits = 9 } })),
        ["Orderings of a fixed order"] = new("Orderings", "Orderings = 4 has no effect with OrderAgnostic = false: a fixed order is one ordering; an ensemble of orderings needs order-agnostic training; set OrderAgnostic = true",
            c => c.DeepRnade(new DeepRnadeEstimator.Options { ModelOptions = new() { OrderAgnostic = false, Orderings = 4 } }),
            c => c.DeepRnade(new DeepRnadeEstimator.Options { ModelOptions = new() { Orderings = 4 } })),
        ["ValidationOrderings beyond the orderings"] = new("ValidationOrderings", "ValidationOrderings = 3 has no effect beyond the model's 2 orderings (Orderings = 2)",
            c => c.DeepRnade(new DeepRnadeEstimator.Options { ModelOptions = new() { Orderings = 2, ValidationOrderings = 3 } }),
            c => c.DeepRnade(new DeepRnadeEstimator.Options { ModelOptions = new() { Orderings = 3, ValidationOrderings = 3 } })),
        ["MStep of a one-layer Deep GMM"] = new("MStep", "MStep = Minibatch has no effect with one layer (Layers = [4]): a one-layer Deep GMM is a full-covariance GMM",
            c => c.DeepGmm(new DeepGmmEstimator.Options { ModelOptions = new() { Layers = new[] { 4 }, MStep = DeepGmmMStep.Minibatch } }),
            c => c.DeepGmm(new DeepGmmEstimator.Options { ModelOptions = new() { Layers = new[] { 4, 2 }, MStep = DeepGmmMStep.Minibatch } })),
        ["LowerLayerShrinkage of a one-layer Deep GMM"] = new("LowerLayerShrinkage", "give Layers two or more entries",
            c => c.DeepGmm(new DeepGmmEstimator.Options { ModelOptions = new() { Layers = new[] { 4 }, LowerLayerShrinkage = 10 } }),
            c => c.DeepGmm(new DeepGmmEstimator.Options { ModelOptions = new() { Layers = new[] { 4 }, LowerLayerShrinkage = 0 } })),   // none: as asked
        ["MinibatchSize with L-BFGS"] = new("MinibatchSize", "MinibatchSize = 64 has no effect with MStep = Lbfgs: it is a setting of the minibatch M-step; set MStep = Minibatch",
            c => c.DeepGmm(new DeepGmmEstimator.Options { ModelOptions = new() { MinibatchSize = 64 } }),
            c => c.DeepGmm(new DeepGmmEstimator.Options { ModelOptions = new() { MinibatchSize = 64, MStep = DeepGmmMStep.Minibatch } })),
        ["NodeObjective with the minibatch M-step"] = new("NodeObjective", "NodeObjective = Kronecker has no effect with MStep = Minibatch",
            c => c.DeepGmm(new DeepGmmEstimator.Options { ModelOptions = new() { MStep = DeepGmmMStep.Minibatch, NodeObjective = DeepGmmNodeObjective.Kronecker } }),
            c => c.DeepGmm(new DeepGmmEstimator.Options { ModelOptions = new() { NodeObjective = DeepGmmNodeObjective.Kronecker } })),
        ["LbfgsIterations with no L-BFGS layer"] = new("LbfgsIterations", "with MStep = Minibatch and LowerLayerShrinkage = 0",
            c => c.DeepGmm(new DeepGmmEstimator.Options { ModelOptions = new() { MStep = DeepGmmMStep.Minibatch, LowerLayerShrinkage = 0, LbfgsIterations = 10 } }),
            c => c.DeepGmm(new DeepGmmEstimator.Options { ModelOptions = new() { MStep = DeepGmmMStep.Minibatch, LbfgsIterations = 10 } })),
        ["PretrainIterations with the greedy start"] = new("PretrainIterations", "with Initialization = Greedy: it is a setting of the pretrained-top-layer initialisation; set Initialization = PretrainedTopLayer",
            c => c.DeepGmm(new DeepGmmEstimator.Options { ModelOptions = new() { Initialization = DeepGmmInitialization.Greedy, PretrainIterations = 5 } }),
            c => c.DeepGmm(new DeepGmmEstimator.Options { ModelOptions = new() { PretrainIterations = 5 } })),
        ["ExactPathLimit with EStep = Exact"] = new("ExactPathLimit", "ExactPathLimit = 8 has no effect with EStep = Exact and Initialization = Greedy",
            c => c.DeepGmm(new DeepGmmEstimator.Options { ModelOptions = new() { EStep = DeepGmmEStep.Exact, Initialization = DeepGmmInitialization.Greedy, ExactPathLimit = 8 } }),
            // The top layer's pretraining runs with EStep = Auto: there the limit counts whatever EStep says.
            c => c.DeepGmm(new DeepGmmEstimator.Options { ModelOptions = new() { EStep = DeepGmmEStep.Exact, ExactPathLimit = 8 } })),
        ["ExactPathLimit with soft EM"] = new("ExactPathLimit", "with Em = Soft: soft EM scores every path; the limit chooses the E-step of hard EM with EStep = Auto; set Em = Hard",
            c => c.DeepGmm(new DeepGmmEstimator.Options { ModelOptions = new() { Em = DeepGmmEmKind.Soft, ExactPathLimit = 8 } }),
            c => c.DeepGmm(new DeepGmmEstimator.Options { ModelOptions = new() { ExactPathLimit = 8 } })),
        ["HeuristicWarmPasses with the exact E-step"] = new("HeuristicWarmPasses", "HeuristicWarmPasses = 2 has no effect when the E-step scores every path (the network has 16 paths, at most ExactPathLimit = 256): it is a setting of the heuristic E-step; set EStep = Heuristic",
            c => c.DeepGmm(new DeepGmmEstimator.Options { ModelOptions = new() { HeuristicWarmPasses = 2 } }),
            c => c.DeepGmm(new DeepGmmEstimator.Options { ModelOptions = new() { HeuristicWarmPasses = 2, EStep = DeepGmmEStep.Heuristic } })),
        ["DeepHiddenUnits of one stochastic layer"] = new("DeepHiddenUnits", "DeepHiddenUnits = [10] has no effect with one stochastic layer (LatentDimensions = [50]): it shapes the networks between stochastic layers; give LatentDimensions two or more entries, or leave DeepHiddenUnits at its default ([100, 100]).",
            c => c.Iwae(new IwaeEstimator.Options { ModelOptions = new() { DeepHiddenUnits = new[] { 10 } } }),
            c => c.Iwae(new IwaeEstimator.Options { ModelOptions = new() { DeepHiddenUnits = new[] { 10 }, LatentDimensions = new[] { 50, 20 } } })),
        ["BaselineHiddenUnits without the baseline"] = new("BaselineHiddenUnits", "with InputDependentBaseline = false: it sizes the hidden layer of the input-dependent baseline; set InputDependentBaseline = true",
            c => c.Nvil(new NvilEstimator.Options { ModelOptions = new() { InputDependentBaseline = false, BaselineHiddenUnits = 10 } }),
            c => c.Nvil(new NvilEstimator.Options { ModelOptions = new() { BaselineHiddenUnits = 10 } })),
        ["SignalSmoothing without signal statistics"] = new("SignalSmoothing", "with CenterSignal = false and NormalizeSignal = false",
            c => c.Nvil(new NvilEstimator.Options { ModelOptions = new() { CenterSignal = false, NormalizeSignal = false, SignalSmoothing = 0.5 } }),
            c => c.Nvil(new NvilEstimator.Options { ModelOptions = new() { CenterSignal = false, SignalSmoothing = 0.5 } })),
        ["RNN-RNADE (whole sequences): Momentum with Adam"] = new("Momentum", "Momentum = 0.5 has no effect with Optimizer = Adam",
            c => c.RnnRnade(new SequenceDensityEstimator.Options { FrameSize = 2 }, new RnnRnadeOptions { Momentum = 0.5f }),
            c => c.RnnRnade(new SequenceDensityEstimator.Options { FrameSize = 2 }, new RnnRnadeOptions { Momentum = 0.5f, Optimizer = OptimizerKind.SgdMomentum })),
        ["RNN-RNADE (frame rows): AdamEpsilon with SGD"] = new("AdamEpsilon", "AdamEpsilon = 1E-06 has no effect with Optimizer = SgdMomentum",
            c => c.RnnRnade(new RnnRnadeFrameEstimator.Options { ModelOptions = new() { Optimizer = OptimizerKind.SgdMomentum, AdamEpsilon = 1e-6f } }),
            c => c.RnnRnade(new RnnRnadeFrameEstimator.Options { ModelOptions = new() { AdamEpsilon = 1e-6f } })),
    };

    public static TheoryData<string> CaseNames() => new(Cases.Keys);

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void A_setting_set_where_it_has_no_effect_is_refused_when_the_estimator_is_created(string name)
    {
        var c = new MLContext(1).DensityEstimation;
        var (setting, fragment, refused, accepted) = Cases[name];
        var e = Assert.ThrowsAny<ArgumentException>(() => refused(c));
        Assert.Equal(setting, e.ParamName);
        Assert.StartsWith(setting + " = ", e.Message);
        Assert.Contains(fragment, e.Message);
        Assert.Contains($"leave {setting} at its default (", e.Message);
        Assert.NotNull(accepted(c));
    }

    /// <summary>The defaults of every estimator and the catalog's simple overloads at their defaults are accepted (their
    /// values are the defaults, which are never refused); so are the catalog parameters set to other values.</summary>
    [Fact]
    public void Defaults_and_the_catalog_overloads_are_accepted()
    {
        var c = new MLContext(1).DensityEstimation;
        Assert.NotNull(c.Rnade(new RnadeEstimator.Options()));
        Assert.NotNull(c.DeepRnade(new DeepRnadeEstimator.Options()));
        Assert.NotNull(c.Rbm(new RbmEstimator.Options()));
        Assert.NotNull(c.DeepGmm(new DeepGmmEstimator.Options()));
        Assert.NotNull(c.Iwae(new IwaeEstimator.Options()));
        Assert.NotNull(c.Nvil(new NvilEstimator.Options()));
        Assert.NotNull(c.RnnRnade(new SequenceDensityEstimator.Options { FrameSize = 3 }));
        Assert.NotNull(c.RnnRnade(new RnnRnadeFrameEstimator.Options()));
        Assert.NotNull(c.Rnade());
        Assert.NotNull(c.Rnade(hiddenUnits: 10, components: 2, maxEpochs: 3, contamination: 0.1, seed: 5));
        Assert.NotNull(c.DeepRnade(orderings: 4, hiddenLayers: 3));
        Assert.NotNull(c.Rbm(hiddenUnits: 5, visibleType: RbmVisibleType.Gaussian, maxEpochs: 2));
        Assert.NotNull(c.DeepGmm(layers: new[] { 3 }, maxIterations: 4));
        Assert.NotNull(c.DeepGmm(layers: new[] { 8, 8, 8 }));
        Assert.NotNull(c.Iwae(likelihood: IwaeLikelihood.Gaussian, samples: 1, evaluationSamples: 10));
        Assert.NotNull(c.Nvil(latentDimensions: new[] { 20 }, evaluationSamples: 10));
        Assert.NotNull(c.RnnRnade("Features", 2, hiddenUnits: 5, maxEpochs: 3));
        Assert.NotNull(c.RnnRnade("Features", "SequenceId", "Order", recurrentUnits: 5));
        // A value that only switches off what the configuration does not do anyway asks for nothing that is dropped.
        Assert.NotNull(c.Iwae(new IwaeEstimator.Options { ModelOptions = new() { Standardize = false } }));   // Bernoulli: never standardised
        Assert.NotNull(c.Rbm(new RbmEstimator.Options { ModelOptions = new() { Standardize = false } }));
        Assert.NotNull(c.DeepRnade(new DeepRnadeEstimator.Options { ModelOptions = new() { Connectivity = DeepRnadeConnectivity.MaskedInput, DirectConnections = false } }));
        Assert.NotNull(c.Nvil(new NvilEstimator.Options { ModelOptions = new() { LocalLearningSignals = false } }));
        // The RBM trains by SGD with Momentum: Optimizer = SgdMomentum says what it does (it used to be refused with
        // "leave Optimizer at its default (Adam)", as if the RBM used Adam), and Momentum is the RBM's own.
        Assert.NotNull(c.Rbm(new RbmEstimator.Options { ModelOptions = new() { Optimizer = OptimizerKind.SgdMomentum, Momentum = 0.9f } }));
    }

    /// <summary>What only Fit knows — whether a validation set was passed, the feature column's width — is checked there,
    /// before a row of either view is read.</summary>
    [Fact]
    public void Settings_that_the_data_makes_moot_are_refused_at_Fit_before_a_row_is_read()
    {
        var ml = new MLContext(1);
        var c = ml.DensityEstimation;
        int rowsRead = 0;
        IDataView Counting() => ml.Data.LoadFromEnumerable(Rows());
        IEnumerable<Row> Rows() { foreach (var r in TestData.Blob(50)) { rowsRead++; yield return r; } }
        void Refused(string setting, string fragment, Action fit)
        {
            var e = Assert.ThrowsAny<ArgumentException>(fit);
            Assert.IsNotType<DataValidationException>(e);
            Assert.Equal(setting, e.ParamName);
            Assert.Contains(fragment, e.Message);
        }

        // A validation set replaces the held-out fraction: a fraction other than the default is dropped...
        var heldOut = c.Rnade(new RnadeEstimator.Options { ModelOptions = new() { ValidationFraction = 0.2 } });
        Refused("ValidationFraction", "ValidationFraction = 0.2 has no effect with a validation set passed to Fit: the validation set replaces the held-out fraction, and no training row is held out; call Fit without the validation set",
            () => heldOut.Fit(Counting(), Counting()));
        Refused("ValidationFraction", "ValidationFraction = 0.3 has no effect with a validation set passed to Fit",
            () => c.DeepGmm(new DeepGmmEstimator.Options { ModelOptions = new() { ValidationFraction = 0.3 } }).Fit(Counting(), Counting()));
        Refused("ValidationFraction", "ValidationFraction = 0.2 has no effect with a validation set passed to Fit",
            () => c.Rnade(new RnadeEstimator.Options { TrainingData = DensityTrainingData.Streamed, ModelOptions = new() { ValidationFraction = 0.2 } }).Fit(Counting(), Counting()));
        // ...and early stopping without validation data has nothing to watch.
        Refused("EarlyStoppingPatience", "EarlyStoppingPatience = 3 has no effect without validation data (ValidationFraction = 0 and no validation set passed to Fit): early stopping watches the validation log-likelihood; set ValidationFraction above 0 or pass a validation set to Fit, or leave EarlyStoppingPatience at its default (10).",
            () => c.Iwae(new IwaeEstimator.Options { ModelOptions = new() { ValidationFraction = 0, EarlyStoppingPatience = 3 } }).Fit(Counting()));
        Refused("EarlyStoppingPatience", "EarlyStoppingPatience = 2 has no effect without validation data",
            () => c.Rbm(new RbmEstimator.Options { ModelOptions = new() { VisibleType = RbmVisibleType.Gaussian, EarlyStoppingPatience = 2 } }).Fit(Counting()));
        Refused("ValidationOrderings", "ValidationOrderings = 2 has no effect without validation data",
            () => c.DeepRnade(new DeepRnadeEstimator.Options { ModelOptions = new() { Orderings = 2, ValidationOrderings = 2, ValidationFraction = 0 } }).Fit(Counting()));
        // A Bernoulli RBM's log Z is exact when the data is narrow: 4 columns, whatever its 100 hidden units.
        Refused("AisTemperatures", "AisTemperatures = 500 has no effect when log Z is exact (the smaller layer has 4 units, at most ExactLogPartitionMaxUnits = 20)",
            () => c.Rbm(new RbmEstimator.Options { ModelOptions = new() { AisTemperatures = 500 } }).Fit(Counting()));
        // The sequence estimators: the same rules at their Fit.
        var frames = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 30).Select(t => new FrameRowValidationTests.Frame { Features = new[] { t * 0.1f, 1f }, SequenceId = "a", Order = t }));
        Refused("ValidationFraction", "ValidationFraction = 0.5 has no effect with a validation set passed to Fit",
            () => c.RnnRnade(new RnnRnadeFrameEstimator.Options { ModelOptions = new() { ValidationFraction = 0.5 } }).Fit(frames, frames));
        var sequences = ml.Data.LoadFromEnumerable(new[] { new RnnRnadeColumns.SequenceRow { Features = new float[] { 1, 2, 3, 4 } } });
        Refused("EarlyStoppingPatience", "EarlyStoppingPatience = 4 has no effect without validation data",
            () => c.RnnRnade(new SequenceDensityEstimator.Options { FrameSize = 2 }, new RnnRnadeOptions { ValidationFraction = 0, EarlyStoppingPatience = 4 }).Fit(sequences));
        Assert.Equal(0, rowsRead);

        // The twins train: without the validation set; with one; a patience of 0 (no early stopping, as without validation
        // data); a fraction of 0 with a validation set (no row held out, as asked).
        Assert.NotNull(c.Rnade(TestData.SmallRnade(o => { o.ModelOptions.ValidationFraction = 0.2; o.ModelOptions.MaxEpochs = 1; })).Fit(Counting()));
        Assert.NotNull(c.Rnade(TestData.SmallRnade(o => { o.ModelOptions.ValidationFraction = 0; o.ModelOptions.EarlyStoppingPatience = 3; o.ModelOptions.MaxEpochs = 1; })).Fit(Counting(), Counting()));
        Assert.NotNull(c.Rnade(TestData.SmallRnade(o => { o.ModelOptions.ValidationFraction = 0; o.ModelOptions.EarlyStoppingPatience = 0; o.ModelOptions.MaxEpochs = 1; })).Fit(Counting()));
        Assert.NotNull(c.Rbm(new RbmEstimator.Options { ModelOptions = new() { VisibleType = RbmVisibleType.Gaussian, HiddenUnits = 30, AisTemperatures = 500, AisRuns = 10, MaxEpochs = 1 } }).Fit(Counting()));
    }

    /// <summary>Changed after the estimator was created: refused by Fit, before a row is read, like every setting.</summary>
    [Fact]
    public void A_setting_changed_after_construction_is_refused_by_Fit()
    {
        var ml = new MLContext(1);
        int rowsRead = 0;
        IEnumerable<Row> Rows() { foreach (var r in TestData.Blob(50)) { rowsRead++; yield return r; } }
        var options = new RnadeEstimator.Options();
        var estimator = ml.DensityEstimation.Rnade(options);
        options.SampleSeed = 3;
        Assert.Equal("SampleSeed", Assert.ThrowsAny<ArgumentException>(() => estimator.Fit(ml.Data.LoadFromEnumerable(Rows()))).ParamName);
        options.SampleSeed = 0;
        options.ModelOptions.AdamEpsilon = 1e-6f;
        options.ModelOptions.Optimizer = OptimizerKind.SgdMomentum;
        Assert.Equal("AdamEpsilon", Assert.ThrowsAny<ArgumentException>(() => estimator.Fit(ml.Data.LoadFromEnumerable(Rows()))).ParamName);
        Assert.Equal(0, rowsRead);
    }
    /// <summary>A refusal states the refused value once: .NET appends "Actual value was …" to an
    /// ArgumentOutOfRangeException given one, after our "(got …)" (a trial's "Orderings must be in [1, 1048576] (got 0).
    /// (Parameter 'Orderings') Actual value was 0.").</summary>
    [Fact]
    public void Refusals_state_the_value_once()
    {
        var ml = new MLContext(1);
        var refusals = new Exception[]
        {
            Assert.ThrowsAny<ArgumentOutOfRangeException>(() => new DeepRnadeOptions { Orderings = 0 }.Validate()),
            Assert.ThrowsAny<ArgumentOutOfRangeException>(() => new DeepGmmOptions { ExactPathLimit = -1 }.Validate()),
            Assert.ThrowsAny<ArgumentOutOfRangeException>(() => ml.DensityEstimation.Rnade(new RnadeEstimator.Options { Contamination = 0.7 })),
            Assert.ThrowsAny<ArgumentOutOfRangeException>(() => DeepDensityEnvironment.MaxDegreeOfParallelism = 0),
        };
        foreach (var e in refusals)
        {
            Assert.Contains("(got ", e.Message);
            Assert.DoesNotContain("Actual value", e.Message);
        }
    }

    /// <summary>An array-valued setting in a refusal is written as the docs' option tables write it, "[3, 4]", in the
    /// invariant culture: it read "Layers = {3}" (C#'s initialiser) in the settings rules. The value is stated once:
    /// .NET's "Actual value was" suffix repeated it (and for a list would have read "System.Int32[]").</summary>
    [Fact]
    public void Array_values_are_written_in_brackets_in_every_refusal()
    {
        var saved = System.Globalization.CultureInfo.CurrentCulture;
        try
        {
            System.Globalization.CultureInfo.CurrentCulture = new System.Globalization.CultureInfo("de-DE");
            var ml = new MLContext(1);
            var rule = Assert.ThrowsAny<ArgumentException>(() => ml.DensityEstimation.DeepGmm(new DeepGmmEstimator.Options
                { ModelOptions = new() { Layers = new[] { 3 }, MStep = DeepGmmMStep.Minibatch } }));
            Assert.Contains("MStep = Minibatch has no effect with one layer (Layers = [3])", rule.Message);
            rule = Assert.ThrowsAny<ArgumentException>(() => ml.DensityEstimation.Iwae(new IwaeEstimator.Options
                { ModelOptions = new() { LatentDimensions = new[] { 3 }, DeepHiddenUnits = new[] { 3, 4 } } }));
            Assert.Contains("DeepHiddenUnits = [3, 4] has no effect with one stochastic layer (LatentDimensions = [3])", rule.Message);
            Assert.Contains("leave DeepHiddenUnits at its default ([100, 100])", rule.Message);

            var range = Assert.Throws<ArgumentOutOfRangeException>(() => new IwaeOptions { HiddenUnits = new[] { 3, 0 } }.Validate());
            Assert.StartsWith("HiddenUnits entries must be in [1, ", range.Message);
            Assert.Contains("(got [3, 0])", range.Message);
            Assert.DoesNotContain("Actual value", range.Message); // the value once, in the message
            range = Assert.Throws<ArgumentOutOfRangeException>(() => new DeepGmmOptions { Layers = [] }.Validate());
            Assert.StartsWith("Layers must list at least one layer (got [])", range.Message);
            range = Assert.Throws<ArgumentOutOfRangeException>(() => new NvilOptions { LatentDimensions = new[] { 5, -1 } }.Validate());
            Assert.Contains("(got [5, -1])", range.Message);
            // A number in the invariant culture too (de-DE writes 1,5).
            range = Assert.Throws<ArgumentOutOfRangeException>(() => new RnadeOptions { ValidationFraction = 1.5 }.Validate());
            Assert.StartsWith("ValidationFraction must be in [0, 1) (got 1.5)", range.Message);
            foreach (var e in new Exception[] { rule, range })
            {
                Assert.DoesNotContain("System.Int32[]", e.Message);
                Assert.DoesNotContain("{", e.Message);
            }
        }
        finally { System.Globalization.CultureInfo.CurrentCulture = saved; }
    }
}
