using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.Rbm;

/// <summary>Kind of the visible units of an RBM.</summary>
public enum RbmVisibleType
{
    /// <summary>Binary visible units (Bernoulli–Bernoulli RBM); input must be 0/1.</summary>
    Bernoulli = 0,
    /// <summary>Real visible units of standard deviation <see cref="RbmOptions.VisibleStdDev"/> (or one learned per column
    /// when it is 0) on standardised data (Gaussian–Bernoulli RBM).</summary>
    Gaussian = 1,
}

/// <summary>How the negative phase of the RBM gradient is sampled.</summary>
public enum RbmTrainingAlgorithm
{
    /// <summary>CD-k: each minibatch starts k Gibbs steps at its own data rows (Hinton 2002).</summary>
    ContrastiveDivergence = 0,
    /// <summary>Persistent CD (PCD-k, Tieleman 2008): fantasy chains carry over from minibatch to minibatch.</summary>
    PersistentContrastiveDivergence = 1,
}

/// <summary>How an RBM's log partition function log Z was obtained.</summary>
public enum LogPartitionMethod
{
    /// <summary>Enumerating every state of the smaller layer: exact up to float rounding.</summary>
    Exact = 0,
    /// <summary>Annealed importance sampling (Salakhutdinov &amp; Murray 2008): an estimate with a standard error.</summary>
    AnnealedImportanceSampling = 1,
}

/// <summary>
/// Hyper-parameters of <see cref="RbmModel"/>. Training is contrastive divergence with SGD + momentum (not the gradient of
/// a computable objective), so of the inherited <see cref="GradientTrainingOptions"/> only <c>MaxEpochs</c>,
/// <c>BatchSize</c>, <c>LearningRate</c>, <c>LearningRateDecay</c> and <c>LearningRateDecayExamples</c> (the schedule), <c>Momentum</c>,
/// <c>WeightDecay</c> (L2 on the weights, not the biases), <c>ValidationFraction</c>, <c>EarlyStoppingPatience</c>,
/// <c>Seed</c> and <c>MaxDivergenceRecoveries</c> are used; <c>Optimizer</c>, the Adam settings and
/// <c>GradientClipNorm</c> are ignored (still validated). RBM defaults differ from the base class where stated. Its
/// validation score is a proxy (pseudo-log-likelihood, or −reconstruction error for Gaussian units), so a fit returns its
/// last epoch unless <c>EarlyStoppingPatience</c> is on, and then the best epoch by that score.
/// </summary>
public sealed class RbmOptions : GradientTrainingOptions, Persistence.IModelSizeOptions
{
    /// <inheritdoc/>
    public Persistence.ModelSizePrediction PredictModelSize(int columns) => RbmMachine.PredictSize(columns, HiddenUnits);

    /// <summary>The default of every setting RbmOptions declares or changes (the one place they are written; the
    /// catalog's parameters and the docs refer here). Settings not listed keep the base class's defaults.</summary>
    public new static class Defaults
    {
        /// <summary>Default of <see cref="RbmOptions.HiddenUnits"/>.</summary>
        public const int HiddenUnits = 100;
        /// <summary>Default of <see cref="RbmOptions.VisibleType"/>.</summary>
        public const RbmVisibleType VisibleType = RbmVisibleType.Bernoulli;
        /// <summary>Default of <see cref="RbmOptions.Algorithm"/>.</summary>
        public const RbmTrainingAlgorithm Algorithm = RbmTrainingAlgorithm.PersistentContrastiveDivergence;
        /// <summary>Default of <see cref="RbmOptions.GibbsSteps"/>.</summary>
        public const int GibbsSteps = 1;
        /// <summary>Default of <see cref="RbmOptions.PersistentChains"/>.</summary>
        public const int PersistentChains = 0;
        /// <summary>Default of <see cref="RbmOptions.Standardize"/>.</summary>
        public const bool Standardize = true;
        /// <summary>Default of <see cref="RbmOptions.VisibleStdDev"/>: 0.5 of each column's standard deviation, with
        /// Gaussian units' own rate <see cref="GaussianLearningRate"/> (session 37, docs/models/rbm.md "Correlated real data").
        /// Session 32 chose 0.7 over 0.5 at the shared rate 0.05 because one fit in three went wrong at 0.5 on small data
        /// (every fit of 0.5 diverged once there and was retried at half the rate); at 0.02 no fit of 0.5 needed a retry on
        /// the small tables, the real digits or correlated mixtures, and 0.5 beat 0.7 on all of them: by 5.4 nats of
        /// validation summed over the four small tables, 2.0 on the real digits, 2.4–2.9 on correlated mixtures. Before it
        /// (session 32), 0.7 had replaced the unit width, which lost on every data set.</summary>
        public const float VisibleStdDev = 0.5f;
        /// <summary>Default of <see cref="RbmOptions.ExactLogPartitionMaxUnits"/>.</summary>
        public const int ExactLogPartitionMaxUnits = 20;
        /// <summary>Default of <see cref="RbmOptions.AisRuns"/>.</summary>
        public const int AisRuns = 100;
        /// <summary>Default of <see cref="RbmOptions.AisTemperatures"/>.</summary>
        public const int AisTemperatures = 10_000;
        /// <summary>Default of <see cref="RbmOptions.SamplingBurnIn"/>.</summary>
        public const int SamplingBurnIn = 1000;
        /// <summary>Default of <see cref="RbmOptions.SamplingThinning"/>.</summary>
        public const int SamplingThinning = 10;
        /// <summary>Default of <see cref="RbmOptions.SamplingChains"/>.</summary>
        public const int SamplingChains = 100;
        /// <summary>Default of <see cref="GradientTrainingOptions.MaxEpochs"/>: 0, as many epochs as make
        /// <see cref="AutomaticEpochExamples"/> training examples (<see cref="EpochsFor"/>). A fixed 20 epochs trained
        /// 50,000 rows for a million examples but the 1,257 digits for 25,000, which scored 3.4 nats below
        /// scikit-learn's defaults; the digits gained 10.8 nats from training as long as Fashion-MNIST (docs/models/rbm.md).</summary>
        public const int MaxEpochs = 0;
        /// <summary>Training examples that <c>MaxEpochs</c> = 0 aims at: 20 epochs of a 50,000-row set, and the scale of
        /// the rate's decay (× 0.9 every <see cref="LearningRateDecayExamples"/>: the rate ends near 0.12 of its start).</summary>
        public const long AutomaticEpochExamples = 1_000_000;
        /// <summary>The most epochs <c>MaxEpochs</c> = 0 gives (a set below 1,000 rows trains for fewer than
        /// <see cref="AutomaticEpochExamples"/> examples rather than for tens of thousands of tiny epochs).</summary>
        public const int MaxAutomaticEpochs = 1000;

        /// <summary>Default of <see cref="GradientTrainingOptions.LearningRate"/>: 0, the rate of the visible units' kind
        /// (<see cref="LearningRateFor"/>): <see cref="BernoulliLearningRate"/> or <see cref="GaussianLearningRate"/>. SGD
        /// with momentum 0.5, the rate multiplied by 0.9 every 50,000 training examples (<see cref="LearningRateDecay"/>,
        /// <see cref="LearningRateDecayExamples"/>).</summary>
        public const float LearningRate = 0;
        /// <summary>The rate <c>LearningRate</c> = 0 gives binary visible units: 0.05.</summary>
        public const float BernoulliLearningRate = 0.05f;
        /// <summary>The rate <c>LearningRate</c> = 0 gives Gaussian visible units: 0.02 (session 37). At 0.05, the rate
        /// both kinds shared before, a Gaussian RBM's visible samples grow with W along the data's strongest correlation
        /// (the step feeds on them), and the first epochs blew up and were retried at half the rate on every correlated
        /// data set measured: the real digits on every seed, a user's 16 correlated columns, the small tables at
        /// σ = 0.5. At 0.02 with σ = 0.5 no fit needed a retry (docs/models/rbm.md, "Correlated real data").</summary>
        public const float GaussianLearningRate = 0.02f;
        /// <summary>Default of <see cref="GradientTrainingOptions.LearningRateDecay"/>. At a constant rate PCD's fantasy chains
        /// chase the weights and the model moves by tens of nats from epoch to epoch; the decay settles it. Validation
        /// log-likelihood by AIS, H 100, 20 epochs (the <c>rbm-defaults</c> benchmark; docs/models/rbm.md): binarized
        /// Fashion-MNIST −253.2 nats over seeds 1–4 against −288.4 with the constant rate of the defaults before session 16,
        /// and −260.2 for scikit-learn at its best constant rate. The default length (a million examples) decays the rate
        /// twenty times on any data set.</summary>
        public const float LearningRateDecay = 0.9f;
        /// <summary>Default of <see cref="GradientTrainingOptions.LearningRateDecayExamples"/>: the decay follows the amount of
        /// training, not the size of an epoch (0.9 per epoch stalled the digits at the level of their first epochs).</summary>
        public const long LearningRateDecayExamples = 50_000;
        /// <summary>Default of <see cref="GradientTrainingOptions.Momentum"/>: 0.5 gave the Gaussian RBM 2–4 nats more on the
        /// real digits than plain SGD (the binary digits preferred plain SGD by 2–3 nats).</summary>
        public const float Momentum = 0.5f;
        /// <summary>Default of <see cref="GradientTrainingOptions.WeightDecay"/>.</summary>
        public const float WeightDecay = 1e-4f;
        /// <summary>Default of <see cref="GradientTrainingOptions.ValidationFraction"/>.</summary>
        public const double ValidationFraction = 0;
        /// <summary>Default of <see cref="GradientTrainingOptions.EarlyStoppingPatience"/>.</summary>
        public const int EarlyStoppingPatience = 0;
    }

    /// <summary>Sets the RBM defaults of the inherited settings.</summary>
    public RbmOptions()
    {
        MaxEpochs = Defaults.MaxEpochs;
        LearningRate = Defaults.LearningRate;
        LearningRateDecay = Defaults.LearningRateDecay;
        LearningRateDecayExamples = Defaults.LearningRateDecayExamples;
        Momentum = Defaults.Momentum;
        WeightDecay = Defaults.WeightDecay;
        ValidationFraction = Defaults.ValidationFraction;
        EarlyStoppingPatience = Defaults.EarlyStoppingPatience;
    }

    /// <inheritdoc/>
    protected override bool AutomaticEpochs => true;

    /// <inheritdoc/>
    protected override bool AutomaticLearningRate => true;

    /// <summary>The starting rate a fit of visible units of kind <paramref name="visibleType"/> uses: <c>LearningRate</c>
    /// when set, otherwise (0, the default) <see cref="Defaults.BernoulliLearningRate"/> for binary units and
    /// <see cref="Defaults.GaussianLearningRate"/> for Gaussian ones.</summary>
    public float LearningRateFor(RbmVisibleType visibleType) => LearningRate > 0 ? LearningRate
        : visibleType == RbmVisibleType.Gaussian ? Defaults.GaussianLearningRate : Defaults.BernoulliLearningRate;

    /// <summary>The epochs a fit on <paramref name="trainingRows"/> rows runs: <c>MaxEpochs</c> when set, otherwise
    /// ⌈<see cref="Defaults.AutomaticEpochExamples"/> / rows⌉ clamped to [1, <see cref="Defaults.MaxAutomaticEpochs"/>]. A
    /// stream of unknown length is counted in its first epoch.</summary>
    public int EpochsFor(long trainingRows)
    {
        if (MaxEpochs > 0) return MaxEpochs;
        long rows = Math.Max(1, trainingRows);
        return (int)Math.Clamp((Defaults.AutomaticEpochExamples + rows - 1) / rows, 1, Defaults.MaxAutomaticEpochs);
    }

    /// <summary>Hidden (binary) units. Default <see cref="Defaults.HiddenUnits"/>.</summary>
    public int HiddenUnits { get; set; } = Defaults.HiddenUnits;

    /// <summary>Binary or real visible units. Default <see cref="Defaults.VisibleType"/>.</summary>
    public RbmVisibleType VisibleType { get; set; } = Defaults.VisibleType;

    /// <summary>CD-k or persistent CD-k. Default <see cref="Defaults.Algorithm"/>.</summary>
    public RbmTrainingAlgorithm Algorithm { get; set; } = Defaults.Algorithm;

    /// <summary>Gibbs steps k per parameter update (cancellation is checked every step). In [1, <see cref="MaxGibbsSteps"/>].
    /// Default <see cref="Defaults.GibbsSteps"/>.</summary>
    public int GibbsSteps { get; set; } = Defaults.GibbsSteps;

    /// <summary>Number of persistent fantasy chains for PCD (0 = the batch size). Their hidden sample (chains × HiddenUnits
    /// floats) is training state kept for the whole fit; the rest of a step's scratch is bounded by a chunk of 2,048 rows
    /// whatever the batch or chain count. In [0, <see cref="MaxPersistentChains"/>]. Default <see cref="Defaults.PersistentChains"/>.</summary>
    public int PersistentChains { get; set; } = Defaults.PersistentChains;

    /// <summary>Gaussian visible units only: standardise each column to zero mean and unit variance (stored; the
    /// log-density is corrected by the Jacobian). The visible standard deviation is <see cref="VisibleStdDev"/> in
    /// standardised units, or in the data's units when this is off, which is only sensible for data whose noise scale is
    /// known. Default <see cref="Defaults.Standardize"/>.</summary>
    public bool Standardize { get; set; } = Defaults.Standardize;

    /// <summary>Gaussian visible units only: the standard deviation σ of every visible unit given the hidden units, in
    /// standardised units when <see cref="Standardize"/> is on (a fraction of each column's standard deviation), otherwise
    /// in the data's units. The model is a mixture of Gaussians of this width, so a σ below 1 lets it be narrower than
    /// the data's marginals. It is folded into the stored input map (x − mean) / (scale · σ), whose log-Jacobian includes
    /// −log σ per column, so the log-density stays that of the raw columns and saved files need no field of their own.
    /// 0 learns one σ per column with the other parameters (see <see cref="LearnedVisibleStdDevStart"/>), folded into the
    /// map the same way. Must be 0 or positive and finite; binary units ignore it. Default <see cref="Defaults.VisibleStdDev"/>.</summary>
    public float VisibleStdDev { get; set; } = Defaults.VisibleStdDev;

    /// <summary><see cref="VisibleStdDev"/> = 0: the σ every column's learning starts from (the width of the data's
    /// marginal in standardised units; 1 in the data's units without <see cref="Standardize"/>). Each column's σ follows
    /// the exact gradient of the log-likelihood (docs/models/rbm.md, "A learned visible width").</summary>
    public const float LearnedVisibleStdDevStart = 1f;

    /// <summary>The least learned σ, as a fraction of <see cref="LearnedVisibleStdDevStart"/>: a floor that keeps a
    /// column of repeated values (a rain gauge's dry days) from narrowing onto them without limit.</summary>
    public const float LearnedVisibleStdDevFloor = 0.1f;

    /// <summary>The largest learned σ, as a multiple of <see cref="LearnedVisibleStdDevStart"/>.</summary>
    public const float LearnedVisibleStdDevCeiling = 10f;

    /// <summary>Whether σ is learned (Gaussian units and <see cref="VisibleStdDev"/> = 0).</summary>
    internal bool LearnsVisibleStdDev => VisibleType == RbmVisibleType.Gaussian && VisibleStdDev == 0;

    /// <summary>Compute log Z exactly when the smaller layer (hidden, or visible for Bernoulli units) has at most this many
    /// units (2^units states are enumerated: 20 hidden units with 784 visible ones take a few seconds, 25 a few minutes).
    /// Otherwise log Z is estimated by AIS. Default <see cref="Defaults.ExactLogPartitionMaxUnits"/>.</summary>
    public int ExactLogPartitionMaxUnits { get; set; } = Defaults.ExactLogPartitionMaxUnits;

    /// <summary>AIS: number of independent annealing runs (importance weights). Default <see cref="Defaults.AisRuns"/>.</summary>
    public int AisRuns { get; set; } = Defaults.AisRuns;

    /// <summary>AIS: number of inverse temperatures β from 0 to 1 (spaced as in Salakhutdinov &amp; Murray: 0–0.5, 0.5–0.9,
    /// 0.9–1 in proportions 500 : 4000 : 10000). Tests use ~1000; 10k–15k gives publication-grade estimates. Default <see cref="Defaults.AisTemperatures"/>.</summary>
    public int AisTemperatures { get; set; } = Defaults.AisTemperatures;

    /// <summary>Sampling: Gibbs sweeps discarded before the first sample of each chain. In [0,
    /// <see cref="MaxSamplingBurnIn"/>]. Default <see cref="Defaults.SamplingBurnIn"/>.</summary>
    public int SamplingBurnIn { get; set; } = Defaults.SamplingBurnIn;

    /// <summary>Sampling: Gibbs sweeps between consecutive samples of one chain. In [1, <see cref="MaxSamplingThinning"/>].
    /// Default <see cref="Defaults.SamplingThinning"/>.</summary>
    public int SamplingThinning { get; set; } = Defaults.SamplingThinning;

    /// <summary>Sampling: number of independent Gibbs chains (sample i comes from chain i mod chains). In [1,
    /// <see cref="MaxSamplingChains"/>]. Default <see cref="Defaults.SamplingChains"/>.</summary>
    public int SamplingChains { get; set; } = Defaults.SamplingChains;

    // Limits on the settings a model stores (checked here and when a file is loaded, so that a small forged file cannot
    // ask Sample for billions of sweeps). Sampling is also cancellable (DensityModel.Sample with a token).
    /// <summary>Upper bound on <see cref="HiddenUnits"/> (2^24; int.MaxValue threw OutOfMemoryException).</summary>
    public const int MaxHiddenUnits = 1 << 24;
    /// <summary>Upper bound on <see cref="SamplingBurnIn"/> (100,000 sweeps; mixing diagnostics rarely ask for more than a few thousand).</summary>
    public const int MaxSamplingBurnIn = 100_000;
    /// <summary>Upper bound on <see cref="GibbsSteps"/> (100,000).</summary>
    public const int MaxGibbsSteps = 100_000;
    /// <summary>Upper bound on <see cref="PersistentChains"/> (2^20).</summary>
    public const int MaxPersistentChains = 1 << 20;
    /// <summary>Upper bound on <see cref="SamplingThinning"/> (10,000 sweeps).</summary>
    public const int MaxSamplingThinning = 10_000;
    /// <summary>Upper bound on <see cref="SamplingChains"/> (100,000 chains).</summary>
    public const int MaxSamplingChains = 100_000;
    /// <summary>Upper bound on <see cref="AisRuns"/> (1,000,000).</summary>
    public const int MaxAisRuns = 1_000_000;
    /// <summary>Upper bound on <see cref="AisTemperatures"/> (10,000,000).</summary>
    public const int MaxAisTemperatures = 10_000_000;

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        Check(HiddenUnits >= 1 && HiddenUnits <= MaxHiddenUnits, nameof(HiddenUnits), HiddenUnits, FormattableString.Invariant($"must be in [1, {MaxHiddenUnits}]"));
        Check(Enum.IsDefined(VisibleType), nameof(VisibleType), VisibleType, "must be Bernoulli or Gaussian");
        Check(Enum.IsDefined(Algorithm), nameof(Algorithm), Algorithm, "must be ContrastiveDivergence or PersistentContrastiveDivergence");
        Check(VisibleStdDev >= 0 && float.IsFinite(VisibleStdDev), nameof(VisibleStdDev), VisibleStdDev, "must be 0 (learned) or positive and finite");
        Check(GibbsSteps >= 1 && GibbsSteps <= MaxGibbsSteps, nameof(GibbsSteps), GibbsSteps, FormattableString.Invariant($"must be in [1, {MaxGibbsSteps}]"));
        Check(PersistentChains >= 0 && PersistentChains <= MaxPersistentChains, nameof(PersistentChains), PersistentChains, FormattableString.Invariant($"must be in [0, {MaxPersistentChains}]"));
        Check(ExactLogPartitionMaxUnits >= 0 && ExactLogPartitionMaxUnits <= 30, nameof(ExactLogPartitionMaxUnits), ExactLogPartitionMaxUnits, "must be in [0, 30]");
        Check(AisRuns >= 2 && AisRuns <= MaxAisRuns, nameof(AisRuns), AisRuns, FormattableString.Invariant($"must be in [2, {MaxAisRuns}]"));
        Check(AisTemperatures >= 2 && AisTemperatures <= MaxAisTemperatures, nameof(AisTemperatures), AisTemperatures, FormattableString.Invariant($"must be in [2, {MaxAisTemperatures}]"));
        Check(SamplingBurnIn >= 0 && SamplingBurnIn <= MaxSamplingBurnIn, nameof(SamplingBurnIn), SamplingBurnIn, FormattableString.Invariant($"must be in [0, {MaxSamplingBurnIn}]"));
        Check(SamplingThinning >= 1 && SamplingThinning <= MaxSamplingThinning, nameof(SamplingThinning), SamplingThinning, FormattableString.Invariant($"must be in [1, {MaxSamplingThinning}]"));
        Check(SamplingChains >= 1 && SamplingChains <= MaxSamplingChains, nameof(SamplingChains), SamplingChains, FormattableString.Invariant($"must be in [1, {MaxSamplingChains}]"));
    }
}
