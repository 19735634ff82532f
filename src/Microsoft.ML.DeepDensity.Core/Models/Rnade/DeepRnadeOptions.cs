namespace Microsoft.ML.DeepDensity.Models.Rnade;

/// <summary>How a deep RNADE's network sees the observed dimensions.</summary>
public enum DeepRnadeConnectivity
{
    /// <summary>Uria et al. (2014): the network reads [x ⊙ m, m] for a mask m of observed dimensions; training draws
    /// one mask per row and trains that mask's conditionals (one conditional per row with a fixed order).</summary>
    MaskedInput,
    /// <summary>MADE-style masked weights (Germain et al. 2015): for an ordering, each hidden unit gets a degree and
    /// the output of the dimension at position i sees only units of degree &lt; i, so one pass gives all D
    /// conditionals of that ordering and every training row trains all of them (as a shallow RNADE does).</summary>
    Autoregressive,
}

/// <summary>
/// Hyper-parameters of <see cref="DeepRnadeModel"/>: the deep, order-agnostic RNADE of Uria, Murray &amp; Larochelle
/// ("A deep and tractable density estimator", ICML 2014). Everything of <see cref="RnadeOptions"/> applies
/// (<see cref="RnadeOptions.HiddenUnits"/> is the width of every hidden layer; <see cref="RnadeOptions.VariableOrder"/> is
/// the fixed order when <see cref="OrderAgnostic"/> is false and the first ensemble ordering when it is true).
/// </summary>
/// <remarks>
/// The network reads the masked input and the mask, [x ⊙ m, m], and outputs the K-component mixture of every dimension;
/// one forward pass gives every conditional p(x_i | x_m). Training draws, per row, how many dimensions are observed
/// (d uniform in 0…D−1) and which (a random subset when order-agnostic, the first d of the fixed order otherwise), and
/// maximises an unbiased estimate of the log-likelihood averaged over orderings (D/(D−d) · Σ_{i ∉ m} log p(x_i | x_m)),
/// or, with a fixed order, of the log-likelihood of that order (D · log p(x_{o_d} | x_{o&lt;d})). The density is exact:
/// for one ordering it is the product of its D conditionals (D passes of the network), and for an ensemble of
/// <see cref="Orderings"/> orderings it is their mean, log p(x) = log (1/E) Σ_e p(x | o_e), a normalised density.
/// That is the <see cref="DeepRnadeConnectivity.MaskedInput"/> network; the default, <see cref="DeepRnadeConnectivity.Autoregressive"/>,
/// masks the weights instead, so one pass gives all D conditionals of an ordering (see <see cref="Connectivity"/>).
/// </remarks>
public sealed class DeepRnadeOptions : RnadeOptions
{
    /// <inheritdoc/>
    public override Persistence.ModelSizePrediction PredictModelSize(int columns)
        => DeepRnadeNetwork.PredictSize(columns, HiddenUnits, HiddenLayers, Components, Connectivity,
            DirectConnections && Connectivity == DeepRnadeConnectivity.Autoregressive);

    /// <summary>The default of every setting DeepRnadeOptions declares or changes (the one place they are written; the
    /// catalog's parameters and the docs refer here). Settings not listed keep the base class's defaults.</summary>
    public new static class Defaults
    {
        /// <summary>Default of <see cref="DeepRnadeOptions.HiddenLayers"/>.</summary>
        public const int HiddenLayers = 2;
        /// <summary>Default of <see cref="DeepRnadeOptions.OrderAgnostic"/>.</summary>
        public const bool OrderAgnostic = true;
        /// <summary>Default of <see cref="DeepRnadeOptions.Orderings"/>: one. At the default sizes and early stopping, an
        /// ensemble's orderings share the training and each stays weaker than one ordering trained alone (Fashion-MNIST
        /// 8×8, <c>rnade-defaults</c>: 8 orderings 152.9 nats, 4 153.9, 2 162.6, 1 166.6 on test, where RNADE's defaults
        /// reach 164.4); an ensemble pays with a larger network, a learning-rate decay and a longer patience.</summary>
        public const int Orderings = 1;
        /// <summary>Default of <see cref="RnadeOptions.HiddenUnits"/> for a deep RNADE: 100 units per layer (one
        /// ordering: 168.5 and 168.8 nats on test against 166.6 and 167.3 with RNADE's 50, seeds 1 and 2, for 1.4× the
        /// fit time).</summary>
        public const int HiddenUnits = 100;
        /// <summary>Default of <see cref="DeepRnadeOptions.ValidationOrderings"/>.</summary>
        public const int ValidationOrderings = 1;
        /// <summary>Default of <see cref="DeepRnadeOptions.Connectivity"/>.</summary>
        public const DeepRnadeConnectivity Connectivity = DeepRnadeConnectivity.Autoregressive;
        /// <summary>Default of <see cref="DeepRnadeOptions.DirectConnections"/>.</summary>
        public const bool DirectConnections = true;
        /// <summary>Default of <see cref="Training.GradientTrainingOptions.BatchSize"/> for a deep RNADE: 0, as many rows as
        /// make <see cref="AutomaticStepsPerEpoch"/> optimiser steps an epoch, within [<see cref="MinAutomaticBatchSize"/>,
        /// <see cref="MaxAutomaticBatchSize"/>] (<see cref="BatchSizeFor"/>): 100 from 9,901 training rows on, so large
        /// data (Fashion-MNIST 8×8) trains exactly as with the fixed 100, ⌈rows / 100⌉ on fewer, 10 below 1,000. At a fixed
        /// 100 an epoch of a table of a few hundred rows is one to nine steps, and the 2×100 network fitted the rows
        /// themselves before the distribution: it lost to one full-covariance Gaussian on iris and to RNADE's defaults on
        /// three of four small tables, and more epochs did not help (docs/models/rnade.md, "Small tables").</summary>
        public const int BatchSize = 0;
        /// <summary>Optimiser steps an epoch that <c>BatchSize</c> = 0 aims at: the steps of an epoch of 10,000 rows at the
        /// row models' batch of 100.</summary>
        public const int AutomaticStepsPerEpoch = 100;
        /// <summary>The smallest minibatch <c>BatchSize</c> = 0 gives (tables under 1,000 rows): batches of one to nine
        /// rows scored iris as well on average but spread three seeds over 0.77 nats, one of them below one Gaussian;
        /// batches of 10 spread them over 0.12.</summary>
        public const int MinAutomaticBatchSize = 10;
        /// <summary>The largest minibatch <c>BatchSize</c> = 0 gives: the row models' default.</summary>
        public const int MaxAutomaticBatchSize = Training.GradientTrainingOptions.Defaults.BatchSize;
    }

    /// <summary>Options with every default (a deep RNADE's own <see cref="Defaults.HiddenUnits"/>, and
    /// <see cref="Training.GradientTrainingOptions.BatchSize"/> = <see cref="Defaults.BatchSize"/>, set from the training rows).</summary>
    public DeepRnadeOptions()
    {
        HiddenUnits = Defaults.HiddenUnits;
        BatchSize = Defaults.BatchSize;
    }

    /// <summary>The automatic minibatch (<see cref="BatchSizeFor"/>), which the training loop resolves.</summary>
    private protected override AutomaticBatchRule? BatchRule => Rule;

    private static readonly AutomaticBatchRule Rule = new(Defaults.AutomaticStepsPerEpoch, Defaults.MinAutomaticBatchSize, Defaults.MaxAutomaticBatchSize);

    /// <summary>The minibatch of a fit on <paramref name="trainingRows"/> training rows (after the held-out split):
    /// <c>BatchSize</c> when set, otherwise ⌈<paramref name="trainingRows"/> / <see cref="Defaults.AutomaticStepsPerEpoch"/>⌉
    /// clamped to [<see cref="Defaults.MinAutomaticBatchSize"/>, <see cref="Defaults.MaxAutomaticBatchSize"/>]: 100 from
    /// 9,901 rows on, 20 on 2,000, 10 below 1,000. <c>MaxEpochs</c> and <c>EarlyStoppingPatience</c> keep their meaning
    /// (an epoch is still a pass over the rows).</summary>
    public int BatchSizeFor(long trainingRows) => Resolved(trainingRows).BatchSize;

    /// <summary>Autoregressive connectivity only (the masked-input network has none, and ignores it): direct input → output
    /// weights (MADE's direct connections), a masked linear autoregressive term added to every mixture output; they start
    /// at zero. Default <see cref="Defaults.DirectConnections"/>.</summary>
    public bool DirectConnections { get; set; } = Defaults.DirectConnections;

    /// <summary>How the network sees the observed dimensions (see <see cref="DeepRnadeConnectivity"/>). With
    /// <see cref="DeepRnadeConnectivity.Autoregressive"/>, order-agnostic training draws one of the
    /// <see cref="Orderings"/> orderings per block of rows and trains all its conditionals. Default <see cref="Defaults.Connectivity"/>.</summary>
    public DeepRnadeConnectivity Connectivity { get; set; } = Defaults.Connectivity;

    /// <summary>Number of hidden layers, each of <see cref="RnadeOptions.HiddenUnits"/> units. Default <see cref="Defaults.HiddenLayers"/>.</summary>
    public int HiddenLayers { get; set; } = Defaults.HiddenLayers;

    /// <summary>Train over random orderings (the order-agnostic training of Uria et al. 2014), which allows the test-time
    /// ensemble; false = one fixed order (<see cref="RnadeOptions.VariableOrder"/>). Default <see cref="Defaults.OrderAgnostic"/>.</summary>
    public bool OrderAgnostic { get; set; } = Defaults.OrderAgnostic;

    /// <summary>Orderings averaged by the model's density (order-agnostic training only, else 1; the first is
    /// <see cref="RnadeOptions.VariableOrder"/>, the others are drawn from <see cref="Training.GradientTrainingOptions.Seed"/>).
    /// Scoring costs one network pass per ordering (D passes with <see cref="DeepRnadeConnectivity.MaskedInput"/>). <see cref="DeepRnadeModel.WithOrderings"/> uses fewer. Default <see cref="Defaults.Orderings"/>.</summary>
    public int Orderings { get; set; } = Defaults.Orderings;

    /// <summary>Orderings averaged for the validation log-likelihood of early stopping (the first ones of the ensemble).
    /// At most <see cref="Orderings"/>. Default <see cref="Defaults.ValidationOrderings"/>.</summary>
    public int ValidationOrderings { get; set; } = Defaults.ValidationOrderings;

    /// <summary>Upper bound on <see cref="HiddenLayers"/> (2^10), a limit of the model file.</summary>
    public const int MaxHiddenLayers = 1 << 10;
    /// <summary>Upper bound on <see cref="Orderings"/> (2^20), a limit of the model file (int.MaxValue orderings threw
    /// OutOfMemoryException).</summary>
    public const int MaxOrderings = 1 << 20;

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        Check(HiddenLayers >= 1 && HiddenLayers <= MaxHiddenLayers, nameof(HiddenLayers), HiddenLayers, FormattableString.Invariant($"must be in [1, {MaxHiddenLayers}]"));
        Check(Orderings >= 1 && Orderings <= MaxOrderings, nameof(Orderings), Orderings, FormattableString.Invariant($"must be in [1, {MaxOrderings}]"));
        Check(Enum.IsDefined(Connectivity), nameof(Connectivity), Connectivity, "is not a defined connectivity");
        Check(ValidationOrderings >= 1, nameof(ValidationOrderings), ValidationOrderings, "must be at least 1");
    }
}
