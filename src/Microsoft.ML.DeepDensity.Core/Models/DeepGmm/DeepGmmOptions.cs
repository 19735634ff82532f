namespace Microsoft.ML.DeepDensity.Models.DeepGmm;

/// <summary>How path probabilities π_p are parameterised.</summary>
public enum DeepGmmPathProbabilities
{
    /// <summary>One probability per path (Π N_j numbers), as in the paper's experiments.</summary>
    Full = 0,
    /// <summary>π_p = Π_j π_{j,p_j}: one categorical per layer (Σ N_j numbers); for very large networks.</summary>
    Factorized = 1,
}

/// <summary>How the E-step finds each row's path(s).</summary>
public enum DeepGmmEStep
{
    /// <summary><see cref="Exact"/> when the network has at most <see cref="DeepGmmOptions.ExactPathLimit"/> paths, else <see cref="Heuristic"/>.</summary>
    Auto = 0,
    /// <summary>Scores every path (one GEMM per node per row block, shared by all paths below it).</summary>
    Exact = 1,
    /// <summary>
    /// The paper's coordinate-ascent best-path search: warm start from the previous best path (1 pass), then a random
    /// start (2 passes), keeping the better. Hard EM only.
    /// </summary>
    Heuristic = 2,
}

/// <summary>EM variant.</summary>
public enum DeepGmmEmKind
{
    /// <summary>Hard assignments: each row belongs to its best path (eq. 4). Scales to large networks.</summary>
    Hard = 0,
    /// <summary>Soft responsibilities over all paths (for networks with few paths; needs the exact E-step).</summary>
    Soft = 1,
}

/// <summary>Form of the per-node M-step objective (eqs. 11–14).</summary>
public enum DeepGmmNodeObjective
{
    /// <summary><see cref="Kronecker"/> when it is cheaper and D·(D+1) ≤ 2048, else <see cref="PathSum"/>.</summary>
    Auto = 0,
    /// <summary>Eqs. 11–12: a sum over the folded paths below the node, each a (D+1)² second-moment matrix.</summary>
    PathSum = 1,
    /// <summary>Eqs. 13–14: one D(D+1)×D(D+1) matrix Σ_p π_p Ω_p ⊗ Γ_p built once per node.</summary>
    Kronecker = 2,
}

/// <summary>How a Deep GMM's parameters are initialised.</summary>
public enum DeepGmmInitialization
{
    /// <summary>
    /// Train a 1-layer GMM with the top layer's component count first (<see cref="DeepGmmOptions.PretrainIterations"/>
    /// EM iterations of the same EM variant, hard or soft), use it as the top layer and start the lower layers near the
    /// identity (small random rotations and biases). The deep model starts as good as that GMM and EM refines its paths
    /// from there.
    /// </summary>
    PretrainedTopLayer = 0,
    /// <summary>
    /// Greedy layer-wise clustering from the data side: each layer whitens the k-means++ clusters of the rows pushed
    /// through the layers above it.
    /// </summary>
    Greedy = 1,
}

/// <summary>How each node's parameters are optimised in the M-step.</summary>
public enum DeepGmmMStep
{
    /// <summary>Full-batch L-BFGS on the node objective from its sufficient statistics (the paper's choice).</summary>
    Lbfgs = 0,
    /// <summary>
    /// Minibatch gradient ascent (Adam) on the node's own rows (§3.2, for high D where the statistics are too large);
    /// still layer by layer, nodes of a layer in parallel.
    /// </summary>
    Minibatch = 1,
}

/// <summary>
/// Hyper-parameters of <see cref="DeepGmmModel.Fit(Data.RowMatrix, DeepGmmOptions?, Data.RowMatrix?, IProgress{Training.TrainingProgress}?, CancellationToken)"/>. Defaults are stated per property; <see cref="Validate"/> names
/// the first bad setting.
/// </summary>
public sealed class DeepGmmOptions : Persistence.IModelSizeOptions
{
    /// <inheritdoc/>
    public Persistence.ModelSizePrediction PredictModelSize(int columns)
        => DeepGmmNetwork.PredictSize(columns, Layers, PathProbabilities == DeepGmmPathProbabilities.Factorized);

    /// <summary>The default of every setting DeepGmmOptions declares or changes (the one place they are written; the
    /// catalog's parameters and the docs refer here).</summary>
    public static class Defaults
    {
        /// <summary>Default of <see cref="DeepGmmOptions.Layers"/> (what it reads before it is set), and the automatic
        /// choice on enough rows (<see cref="LayerCandidates"/>).</summary>
        public static int[] Layers => new int[] { 4, 4 };
        /// <summary>
        /// Training rows per parameter of one full-covariance Gaussian, P = D(D+3)/2, from which an in-memory Fit with
        /// <see cref="DeepGmmOptions.Layers"/> unset trains <see cref="Layers"/> alone; below it, it fits each of
        /// <see cref="SmallDataLayerCandidates"/> and keeps the best on its held-out rows. Session-37 study
        /// (docs/benchmarks.md): [4, 4] loses held out to [1] or [2, 2] on wine (95 training rows × 13, 0.92 a parameter),
        /// breast cancer (307 × 30, 0.62), the digits (1,131 × 63, 0.54) and wide tables, and wins on Fashion-MNIST 8×8 at
        /// 1,800 and 3,600 rows (0.87, 1.7) by 15–21 nats a row, so no rule on the size alone serves both.
        /// </summary>
        public const double LayersRowsPerParameter = 2;
        /// <summary>The architectures an in-memory Fit with <see cref="DeepGmmOptions.Layers"/> unset chooses among on its
        /// held-out rows below <see cref="LayersRowsPerParameter"/>: one full-covariance Gaussian, [2, 2] and [4, 4].</summary>
        public static int[][] SmallDataLayerCandidates => new[] { new[] { 1 }, new[] { 2, 2 }, new[] { 4, 4 } };

        /// <summary>
        /// The architectures Fit tries while <see cref="DeepGmmOptions.Layers"/> is not set, for <paramref name="rows"/>
        /// training rows (after the held-out fraction) of <paramref name="columns"/> = D columns: <see cref="Layers"/> alone
        /// when rows ≥ <see cref="LayersRowsPerParameter"/>·D(D+3)/2, else <see cref="SmallDataLayerCandidates"/> (the one
        /// best on the held-out rows is kept; without held-out rows Fit trains <see cref="Layers"/>).
        /// </summary>
        public static int[][] LayerCandidates(long rows, int columns)
            => rows >= LayersRowsPerParameter * (columns * (columns + 3.0) / 2) ? new[] { Layers } : SmallDataLayerCandidates;
        /// <summary>Default of <see cref="DeepGmmOptions.PathProbabilities"/>.</summary>
        public const DeepGmmPathProbabilities PathProbabilities = DeepGmmPathProbabilities.Full;
        /// <summary>Default of <see cref="DeepGmmOptions.Em"/>.</summary>
        public const DeepGmmEmKind Em = DeepGmmEmKind.Hard;
        /// <summary>Default of <see cref="DeepGmmOptions.EStep"/>.</summary>
        public const DeepGmmEStep EStep = DeepGmmEStep.Auto;
        /// <summary>Default of <see cref="DeepGmmOptions.ExactPathLimit"/>.</summary>
        public const int ExactPathLimit = 256;
        /// <summary>Default of <see cref="DeepGmmOptions.HeuristicWarmPasses"/>.</summary>
        public const int HeuristicWarmPasses = 1;
        /// <summary>Default of <see cref="DeepGmmOptions.HeuristicRandomPasses"/>.</summary>
        public const int HeuristicRandomPasses = 2;
        /// <summary>Default of <see cref="DeepGmmOptions.MaxIterations"/>.</summary>
        public const int MaxIterations = 100;
        /// <summary>Default of <see cref="DeepGmmOptions.Tolerance"/>.</summary>
        public const double Tolerance = 1e-4;
        /// <summary>Default of <see cref="DeepGmmOptions.MStep"/>.</summary>
        public const DeepGmmMStep MStep = DeepGmmMStep.Lbfgs;
        /// <summary>Default of <see cref="DeepGmmOptions.NodeObjective"/>.</summary>
        public const DeepGmmNodeObjective NodeObjective = DeepGmmNodeObjective.Auto;
        /// <summary>Default of <see cref="DeepGmmOptions.LbfgsIterations"/>.</summary>
        public const int LbfgsIterations = 50;
        /// <summary>Default of <see cref="DeepGmmOptions.MinibatchEpochs"/>.</summary>
        public const int MinibatchEpochs = 2;
        /// <summary>Default of <see cref="DeepGmmOptions.MinibatchSize"/>.</summary>
        public const int MinibatchSize = 256;
        /// <summary>Default of <see cref="DeepGmmOptions.MinibatchLearningRate"/>.</summary>
        public const double MinibatchLearningRate = 1e-3;
        /// <summary>Default of <see cref="DeepGmmOptions.CovarianceRidge"/>.</summary>
        public const double CovarianceRidge = 1e-6;
        /// <summary>Default of <see cref="DeepGmmOptions.LowerLayerShrinkage"/>.</summary>
        public const double LowerLayerShrinkage = 1000;
        /// <summary>Default of <see cref="DeepGmmOptions.PathPseudoCount"/>.</summary>
        public const double PathPseudoCount = 1;
        /// <summary>Default of <see cref="DeepGmmOptions.MinNodeWeight"/>.</summary>
        public const double MinNodeWeight = 0;
        /// <summary>Default of <see cref="DeepGmmOptions.Standardize"/>.</summary>
        public const bool Standardize = false;
        /// <summary>Default of <see cref="DeepGmmOptions.ReseedPerturbation"/>.</summary>
        public const double ReseedPerturbation = 0.2;
        /// <summary>Default of <see cref="DeepGmmOptions.Initialization"/>.</summary>
        public const DeepGmmInitialization Initialization = DeepGmmInitialization.PretrainedTopLayer;
        /// <summary>Default of <see cref="DeepGmmOptions.PretrainIterations"/>.</summary>
        public const int PretrainIterations = 20;
        /// <summary>Default of <see cref="DeepGmmOptions.LowerLayerPerturbation"/>.</summary>
        public const double LowerLayerPerturbation = 0.05;
        /// <summary>Default of <see cref="DeepGmmOptions.Initializations"/>.</summary>
        public const int Initializations = 1;
        /// <summary>Default of <see cref="DeepGmmOptions.Seed"/>.</summary>
        public const ulong Seed = 1;
        /// <summary>Default of <see cref="DeepGmmOptions.ValidationFraction"/>.</summary>
        public const double ValidationFraction = 0.1;
        /// <summary>Default of <see cref="DeepGmmOptions.EarlyStoppingPatience"/>.</summary>
        public const int EarlyStoppingPatience = 5;
    }

    /// <summary>
    /// Components per layer, from the layer that acts first on the standard-normal noise (paper's layer 1) to the
    /// layer nearest the data (the "top"). <c>{K}</c> is a full-covariance GMM with K components. Default automatic
    /// (<see cref="LayersAutomatic"/>): while it is not set, an in-memory Fit tries <see cref="Defaults.LayerCandidates"/>
    /// of its training rows and columns and keeps the best on its held-out rows: <see cref="Defaults.Layers"/> alone on
    /// enough rows (what this property reads until it is set), [1], [2, 2] and [4, 4] on fewer; without held-out rows, and
    /// in streamed training, <see cref="Defaults.Layers"/>. A value set here, [4, 4] included, is trained as it is.
    /// </summary>
    public int[] Layers
    {
        get => _layers;
        set { _layers = value; _layersSet = true; }
    }

    private int[] _layers = Defaults.Layers;
    private bool _layersSet;

    /// <summary>True while <see cref="Layers"/> has not been set: Fit then chooses the layers (<see cref="Defaults.LayerCandidates"/>);
    /// the trained model's <see cref="DeepGmmModel.Layers"/> says which it chose.</summary>
    public bool LayersAutomatic => !_layersSet;

    /// <summary>A copy of these options with <see cref="Layers"/> set to <paramref name="layers"/>.</summary>
    internal DeepGmmOptions WithLayers(int[] layers)
    {
        var c = Clone();
        c.Layers = (int[])layers.Clone();
        return c;
    }

    /// <summary>Full table or per-layer factorised path probabilities. Default <see cref="Defaults.PathProbabilities"/>.</summary>
    public DeepGmmPathProbabilities PathProbabilities { get; set; } = Defaults.PathProbabilities;

    /// <summary>Hard or soft EM. Default <see cref="Defaults.Em"/>.</summary>
    public DeepGmmEmKind Em { get; set; } = Defaults.Em;

    /// <summary>E-step search. Default <see cref="Defaults.EStep"/>.</summary>
    public DeepGmmEStep EStep { get; set; } = Defaults.EStep;

    /// <summary>Largest number of paths for which <see cref="DeepGmmEStep.Auto"/> scores every path. Default <see cref="Defaults.ExactPathLimit"/>.</summary>
    public int ExactPathLimit { get; set; } = Defaults.ExactPathLimit;

    /// <summary>Heuristic E-step: coordinate-ascent passes from the previous best path. Default <see cref="Defaults.HeuristicWarmPasses"/>.</summary>
    public int HeuristicWarmPasses { get; set; } = Defaults.HeuristicWarmPasses;

    /// <summary>Heuristic E-step: coordinate-ascent passes from a random path (0 = no random restart). Default <see cref="Defaults.HeuristicRandomPasses"/>.</summary>
    public int HeuristicRandomPasses { get; set; } = Defaults.HeuristicRandomPasses;

    /// <summary>Maximum EM iterations. Default <see cref="Defaults.MaxIterations"/>.</summary>
    public int MaxIterations { get; set; } = Defaults.MaxIterations;

    /// <summary>Stop when the training log-likelihood per row improves by less than this. Default <see cref="Defaults.Tolerance"/>.</summary>
    public double Tolerance { get; set; } = Defaults.Tolerance;

    /// <summary>M-step optimiser. Default <see cref="Defaults.MStep"/>.</summary>
    public DeepGmmMStep MStep { get; set; } = Defaults.MStep;

    /// <summary>Node objective form for the L-BFGS M-step. Default <see cref="Defaults.NodeObjective"/>.</summary>
    public DeepGmmNodeObjective NodeObjective { get; set; } = Defaults.NodeObjective;

    /// <summary>L-BFGS iterations per node per M-step (warm-started from the current node). Default <see cref="Defaults.LbfgsIterations"/>.</summary>
    public int LbfgsIterations { get; set; } = Defaults.LbfgsIterations;

    /// <summary>Minibatch M-step: passes over the node's rows per M-step. Default <see cref="Defaults.MinibatchEpochs"/>.</summary>
    public int MinibatchEpochs { get; set; } = Defaults.MinibatchEpochs;

    /// <summary>Minibatch M-step: rows per minibatch, in [1, 2^20]. Default <see cref="Defaults.MinibatchSize"/>.</summary>
    public int MinibatchSize { get; set; } = Defaults.MinibatchSize;

    /// <summary>Minibatch M-step: Adam learning rate. Default <see cref="Defaults.MinibatchLearningRate"/>.</summary>
    public double MinibatchLearningRate { get; set; } = Defaults.MinibatchLearningRate;

    /// <summary>
    /// Covariance ridge λ, the documented variance floor: the top layer's input second moments get λ·var(column) added
    /// to each diagonal entry (scale-free per column, like standardising and adding λ·I), lower layers' get λ (they see
    /// whitened inputs). Like scikit-learn's <c>reg_covar</c>, it bounds every path covariance away from singular, so no
    /// Q can blow up and no parameter becomes NaN. Default <see cref="Defaults.CovarianceRidge"/>.
    /// </summary>
    public double CovarianceRidge { get; set; } = Defaults.CovarianceRidge;

    /// <summary>Upper bound on <see cref="CovarianceRidge"/> (1: the ridge then adds each column's whole variance; beyond it
    /// the ridge, not the data, sets the covariances, and at 1e300 no float32 node can hold them and training "diverged").</summary>
    public const double MaxCovarianceRidge = 1;

    /// <summary>
    /// Shrinkage κ of the lower layers (every layer but the one nearest the data) toward the identity: their M-step is
    /// MAP under a Gaussian prior W ~ N([I | 0], κ⁻¹) on each entry of W = [Q | e], i.e. eq. 11 of a node with data
    /// weight N gains −κ/(2N)·‖W − [I | 0]‖²_F (and eq. 12/14 the matching gradient), in the L-BFGS and the minibatch
    /// M-step alike. Lower layers act on whitened inputs, where the identity means "no further variation": at κ → ∞ the
    /// deep model is exactly the 1-layer GMM of its top layer, so κ interpolates between that GMM and the unregularised
    /// deep model. The prior's weight is fixed while the data's grows, so it matters on small training sets (where a
    /// lower node's D(D+1) free parameters would otherwise overfit) and fades on large ones. In units of rows. 0 = maximum
    /// likelihood (the paper). Default <see cref="Defaults.LowerLayerShrinkage"/> (chosen on validation on both Fashion-MNIST 8×8 and the small digits set; see
    /// the README's Deep GMM benchmark).
    /// </summary>
    public double LowerLayerShrinkage { get; set; } = Defaults.LowerLayerShrinkage;

    /// <summary>Pseudo-count added to every path (or per-layer component) count when π is re-estimated, so no path's
    /// probability becomes exactly zero. Default <see cref="Defaults.PathPseudoCount"/>.</summary>
    public double PathPseudoCount { get; set; } = Defaults.PathPseudoCount;

    /// <summary>
    /// A node whose rows weigh less than this (0 = D+1, the minimum for a full-rank covariance) is re-seeded as a
    /// perturbed copy of its layer's busiest node (the "empty cluster" problem). Default <see cref="Defaults.MinNodeWeight"/> (auto).
    /// </summary>
    public double MinNodeWeight { get; set; } = Defaults.MinNodeWeight;

    /// <summary>
    /// Standardise columns before training (stored with the model; densities stay in data units). Off by default: the
    /// k-means++ initialisation then works in the data's own metric, which matters for data such as image pixels whose
    /// near-constant columns would otherwise dominate the distances. Turn it on for columns in unrelated units. When off, the
    /// data are still centred and divided by one pooled scale (same metric, numerically safe at any data scale). Default <see cref="Defaults.Standardize"/>.
    /// </summary>
    public bool Standardize { get; set; } = Defaults.Standardize;

    /// <summary>Standard deviation of the random bias offset (in whitened units) that separates a re-seeded node from the
    /// node it copies. Default <see cref="Defaults.ReseedPerturbation"/>.</summary>
    public double ReseedPerturbation { get; set; } = Defaults.ReseedPerturbation;

    /// <summary>Initialisation scheme of networks with more than one layer. Default <see cref="Defaults.Initialization"/>.</summary>
    public DeepGmmInitialization Initialization { get; set; } = Defaults.Initialization;

    /// <summary>EM iterations of the 1-layer GMM that initialises the top layer (<see cref="DeepGmmInitialization.PretrainedTopLayer"/>). Default <see cref="Defaults.PretrainIterations"/>.</summary>
    public int PretrainIterations { get; set; } = Defaults.PretrainIterations;

    /// <summary>Scale of the random rotations and biases of the near-identity lower layers after pretraining. Default <see cref="Defaults.LowerLayerPerturbation"/>.</summary>
    public double LowerLayerPerturbation { get; set; } = Defaults.LowerLayerPerturbation;

    /// <summary>
    /// Independent initialisations (different k-means++ seedings), each trained to convergence; the one with the best
    /// validation log-likelihood (training log-likelihood without validation data) is returned, like scikit-learn's
    /// <c>n_init</c>. Deep GMM likelihoods have many local optima. Default <see cref="Defaults.Initializations"/>.
    /// </summary>
    public int Initializations { get; set; } = Defaults.Initializations;

    /// <summary>Seed of every random choice (split, initialisation, heuristic restarts). Default <see cref="Defaults.Seed"/>.</summary>
    public ulong Seed { get; set; } = Defaults.Seed;

    /// <summary>Fraction of the training rows held out for early stopping when no validation set is given (0 = none); a
    /// validation set passed to <c>Fit</c> is used as it is. When ⌊n · fraction⌋ is 0 no row is held out and EM runs
    /// without validation, keeping its last iteration (a stream holds rows out by a seeded hash of their position: see
    /// <see cref="Training.GradientTrainingOptions.ValidationFraction"/>). Default <see cref="Defaults.ValidationFraction"/>.</summary>
    public double ValidationFraction { get; set; } = Defaults.ValidationFraction;

    /// <summary>Stop after this many EM iterations without a better validation log-likelihood (0 = never); with a
    /// validation set the best iteration's parameters are returned either way (0 included), without one the last
    /// iteration's. Default <see cref="Defaults.EarlyStoppingPatience"/>.</summary>
    public int EarlyStoppingPatience { get; set; } = Defaults.EarlyStoppingPatience;

    /// <summary>
    /// Ends training early but keeps the result (unlike the cancellation token of <c>Fit</c>, which abandons it): when
    /// signalled, EM stops before the next iteration and the best network so far is returned (e.g. a command-line
    /// tool's first Ctrl+C). Not part of the model; never saved. Default none.
    /// </summary>
    public CancellationToken StopToken { get; set; }

    /// <summary>
    /// The warning for <paramref name="rows"/> training rows of <paramref name="columns"/> columns when the rows are no
    /// more than the columns, else null (the ML.NET estimator logs it, <c>ddml fit</c> prints it; nothing refuses such a
    /// fit: the ridge keeps it finite). Every node's covariance is then the ridge in most directions, so the model fits
    /// its training rows and nothing else, and an EM iteration costs O(N·D³) whatever the rows: a new user's 300 rows of
    /// 2,000 columns trained 16–24 s an M-step to +12,227 nats a training row and −8.8e8 a validation row, without a word.
    /// </summary>
    public static string? FewRowsWarning(long rows, int columns)
        // Every family's rule (a single row is refused, not warned about), in the Deep GMM's terms.
        => Data.TrainingRowChecks.FewRowsWarning(rows, columns) is null ? null : string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{rows:N0} training rows for {columns:N0} columns") + ": with no more rows than columns every node's covariance is the " +
            "ridge in most directions, so a Deep GMM fits its training rows and scores new rows far lower (docs/models/deep-gmm.md, " +
            "\"More columns than rows\"), and each EM iteration costs O(N·D³); project the columns to fewer than the rows first " +
            "(e.g. ProjectToPrincipalComponents), or use a model linear in the columns (IWAE, NVIL, the RBM)";

    /// <summary>Number of paths Π N_j.</summary>
    public long PathCount
    {
        get
        {
            long p = 1;
            foreach (var n in Layers ?? Array.Empty<int>()) p = Math.Min(p * Math.Max(n, 1), long.MaxValue / 1024);
            return p;
        }
    }

    /// <summary>Largest supported number of paths.</summary>
    public const int MaxPaths = 1 << 20;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        Check(Layers is { Length: > 0 }, nameof(Layers), Layers, "must list at least one layer");
        for (int j = 0; j < Layers!.Length; j++)
            Check(Layers[j] >= 1 && Layers[j] <= 4096, FormattableString.Invariant($"{nameof(Layers)}[{j}]"), Layers[j], "must be in [1, 4096]");
        Check(PathCount <= MaxPaths, nameof(Layers), Layers, FormattableString.Invariant($"has {PathCount} paths; at most {MaxPaths} are supported"));
        Check(Enum.IsDefined(PathProbabilities), nameof(PathProbabilities), PathProbabilities, "is not defined");
        Check(Enum.IsDefined(Em), nameof(Em), Em, "is not defined");
        Check(Enum.IsDefined(EStep), nameof(EStep), EStep, "is not defined");
        Check(Enum.IsDefined(MStep), nameof(MStep), MStep, "is not defined");
        Check(Enum.IsDefined(NodeObjective), nameof(NodeObjective), NodeObjective, "is not defined");
        Check(ExactPathLimit >= 1, nameof(ExactPathLimit), ExactPathLimit, "must be at least 1");
        Check(HeuristicWarmPasses >= 1, nameof(HeuristicWarmPasses), HeuristicWarmPasses, "must be at least 1");
        Check(HeuristicRandomPasses >= 0, nameof(HeuristicRandomPasses), HeuristicRandomPasses, "must be non-negative");
        Check(!(Em == DeepGmmEmKind.Soft && EStep == DeepGmmEStep.Heuristic), nameof(EStep), EStep, "cannot be Heuristic with soft EM (soft EM needs every path's responsibility)");
        Check(!(Em == DeepGmmEmKind.Soft && PathCount > 4096), nameof(Em), Em, FormattableString.Invariant($"needs at most 4096 paths for its responsibility table (the network has {PathCount}); use hard EM"));
        Check(Enum.IsDefined(Initialization), nameof(Initialization), Initialization, "is not defined");
        Check(PretrainIterations >= 1, nameof(PretrainIterations), PretrainIterations, "must be at least 1");
        Check(LowerLayerPerturbation >= 0 && LowerLayerPerturbation <= 1, nameof(LowerLayerPerturbation), LowerLayerPerturbation, "must be in [0, 1]");
        Check(Initializations >= 1 && Initializations <= 1000, nameof(Initializations), Initializations, "must be in [1, 1000]");
        Check(MaxIterations >= 1, nameof(MaxIterations), MaxIterations, "must be at least 1");
        Check(Tolerance >= 0 && double.IsFinite(Tolerance), nameof(Tolerance), Tolerance, "must be non-negative and finite");
        Check(LbfgsIterations >= 1, nameof(LbfgsIterations), LbfgsIterations, "must be at least 1");
        Check(MinibatchEpochs >= 1, nameof(MinibatchEpochs), MinibatchEpochs, "must be at least 1");
        Check(MinibatchSize >= 1 && MinibatchSize <= 1 << 20, nameof(MinibatchSize), MinibatchSize, FormattableString.Invariant($"must be in [1, {1 << 20}]"));
        Check(MinibatchLearningRate > 0 && double.IsFinite(MinibatchLearningRate), nameof(MinibatchLearningRate), MinibatchLearningRate, "must be positive and finite");
        Check(CovarianceRidge > 0 && CovarianceRidge <= MaxCovarianceRidge, nameof(CovarianceRidge), CovarianceRidge,
            FormattableString.Invariant($"must be in (0, {MaxCovarianceRidge}] (it is the covariance floor, in units of each column's variance: the default is {Defaults.CovarianceRidge})"));
        Check(LowerLayerShrinkage >= 0 && double.IsFinite(LowerLayerShrinkage), nameof(LowerLayerShrinkage), LowerLayerShrinkage, "must be non-negative and finite (0 = no shrinkage toward the identity)");
        Check(PathPseudoCount >= 0 && double.IsFinite(PathPseudoCount), nameof(PathPseudoCount), PathPseudoCount, "must be non-negative and finite");
        Check(MinNodeWeight >= 0 && double.IsFinite(MinNodeWeight), nameof(MinNodeWeight), MinNodeWeight, "must be non-negative and finite");
        Check(ReseedPerturbation >= 0 && ReseedPerturbation <= 10, nameof(ReseedPerturbation), ReseedPerturbation, "must be in [0, 10]");
        Check(ValidationFraction >= 0 && ValidationFraction < 1, nameof(ValidationFraction), ValidationFraction, "must be in [0, 1)");
        Check(EarlyStoppingPatience >= 0, nameof(EarlyStoppingPatience), EarlyStoppingPatience, "must be non-negative");
    }

    internal DeepGmmOptions Clone()
    {
        var c = (DeepGmmOptions)MemberwiseClone();
        c._layers = (int[])_layers.Clone(); // an automatic choice stays automatic
        return c;
    }

    /// <summary>Whether the E-step scores every path with these options.</summary>
    internal bool UsesExactEStep => Em == DeepGmmEmKind.Soft || EStep == DeepGmmEStep.Exact
        || (EStep == DeepGmmEStep.Auto && PathCount <= ExactPathLimit);

    /// <summary>Why <see cref="UsesExactEStep"/> is false, and what to change: "EStep = Heuristic" when set so,
    /// else the path count above <see cref="ExactPathLimit"/>; for the refusals of streamed and data-parallel EM.</summary>
    internal string WhyNotExactEStep => EStep == DeepGmmEStep.Heuristic
        ? "EStep = Heuristic; set EStep = Exact or Auto (the heuristic E-step keeps a path per row)"
        : FormattableString.Invariant($"the network has {PathCount} paths, more than ExactPathLimit = {ExactPathLimit}; raise ExactPathLimit or set EStep = Exact ") +
          "(the heuristic E-step keeps a path per row)";

    private static void Check(bool ok, string name, object? value, string rule)
    {
        if (!ok) throw Training.OptionText.OutOfRange(name, value, rule);
    }
}
