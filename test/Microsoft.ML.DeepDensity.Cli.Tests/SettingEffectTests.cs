namespace Microsoft.ML.DeepDensity.Cli.Tests;

/// <summary>
/// <c>ddml fit</c> refuses an engine option set where it has no effect (the ML.NET estimator's rule, docs/mlnet.md) as a
/// usage error, one line, before training: it trained around it without a word, and the estimator's refusal, made when
/// the tool builds it, surfaced as an internal error. The options that a validation file makes moot, or that need one,
/// are refused in the tool's own terms (--param, --validation) before the data is read.
/// </summary>
public class SettingEffectTests : IDisposable
{
    private readonly CliHarness _h = new();
    public void Dispose() => _h.Dispose();

    private int _fits;

    private (int Exit, string Out, string Err) Fit(string csv, string model, params string[] extra)
    {
        var output = _h.PathOf($"out{++_fits}.zip");
        var r = _h.Run(new[] { "fit", csv, "-m", model, "--epochs", "1", "--exclude", "label", "-o", output }.Concat(extra).ToArray());
        if (r.Exit != 0) _h.AssertNoPartialFiles(output);
        return r;
    }

    private static void AssertOneLine(string err, params string[] fragments)
    {
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        foreach (var f in fragments) Assert.Contains(f, lines[0]);
        Assert.DoesNotContain("(Parameter", lines[0]);
    }

    [Fact]
    public void An_engine_option_with_no_effect_is_a_usage_error()
    {
        var csv = _h.Blob("train.csv", 60);
        var r = Fit(csv, "rnade", "-p", "HiddenUnits=4", "-p", "Momentum=0.5");
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        AssertOneLine(r.Err, "ddml: error: invalid model option: Momentum = 0.5 has no effect with Optimizer = Adam", "set Optimizer = SgdMomentum");
        Assert.Equal(ExitCodes.Success, Fit(csv, "rnade", "-p", "HiddenUnits=4", "-p", "Momentum=0.5", "-p", "Optimizer=SgdMomentum").Exit);

        // After the defaults adapt to the data: real data makes the RBM Gaussian, whose units' count (3) settles an exact log Z.
        r = Fit(csv, "rbm", "-p", "HiddenUnits=3", "-p", "AisRuns=20");
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        AssertOneLine(r.Err, "invalid model option: AisRuns = 20 has no effect when log Z is exact (the smaller layer has 3 units");
    }

    /// <summary>What only the data settles is refused at Fit (a binary RBM's log Z is exact when its visible layer, the
    /// feature columns, is small): that refusal was turned into "cannot train rbm on this data: ... (Parameter 'AisRuns')"
    /// with exit code 5, as if the data were at fault. It is an option error: exit 2, in the options' words.</summary>
    [Fact]
    public void An_engine_option_refused_at_fit_is_a_usage_error_too()
    {
        var csv = _h.Blob("binary.csv", 60, binary: true);   // four 0/1 columns: the smaller layer has 4 units, log Z is exact
        var r = Fit(csv, "rbm", "-p", "AisRuns=20");
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        AssertOneLine(r.Err, "ddml: error: invalid model option: AisRuns = 20 has no effect when log Z is exact (the smaller layer has 4 units",
            "set ExactLogPartitionMaxUnits below 4, or leave AisRuns at its default (100).");
        Assert.DoesNotContain("cannot train", r.Err);
    }

    /// <summary>The validation refusals name the value given (as the estimator's do), and ValidationOrderings says what it
    /// is (it is not a setting of early stopping).</summary>
    [Fact]
    public void Validation_option_refusals_name_the_value()
    {
        var missing = _h.PathOf("missing.csv");
        var r = Fit(missing, "deeprnade", "-p", "ValidationFraction=0", "-p", "ValidationOrderings=2", "-p", "Orderings=2");
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        AssertOneLine(r.Err, "--param ValidationOrderings=2 has no effect without validation data", "the number of orderings the validation log-likelihood averages",
            "leave ValidationOrderings at its default (1).");
        r = Fit(missing, "rbm", "-p", "EarlyStoppingPatience=5");   // the RBM holds out no rows by default
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        AssertOneLine(r.Err, "--param EarlyStoppingPatience=5 has no effect without validation data", "leave EarlyStoppingPatience at its default (0).");
    }

    /// <summary>A held-out fraction that rounds down to no row (five rows, or three short sequences) left the fit without
    /// validation and early stopping without a word, even with -p ValidationFraction set: fit now notes it.</summary>
    [Fact]
    public void A_held_out_fraction_that_holds_out_nothing_is_noted()
    {
        var tiny = _h.Blob("tiny.csv", 5);
        var r = Fit(tiny, "rnade", "--exclude", "id", "-p", "ValidationFraction=0.15");
        Assert.Equal(ExitCodes.Success, r.Exit);
        Assert.Contains("ddml: note: no validation data: ValidationFraction 0.15 of 5 training rows holds out none (the count rounds down), " +
                        "so early stopping (EarlyStoppingPatience 10) is off; pass --validation FILE or raise --param ValidationFraction.", r.Err);
        Assert.DoesNotContain("no validation data", Fit(_h.Blob("more.csv", 40), "rnade", "--exclude", "id").Err);   // 4 rows held out

        var frames = new System.Text.StringBuilder("seq,t,v\n");
        for (int q = 0; q < 3; q++) for (int t = 0; t < 12; t++) frames.Append($"s{q},{t},{(q + t * 0.37) % 2:F3}\n");
        var csv = _h.Write("frames.csv", frames.ToString());
        r = _h.Run("fit", csv, "-m", "rnnrnade", "--sequence-id", "seq", "--order", "t", "--epochs", "1", "-p", "HiddenUnits=4", "-o", _h.PathOf("s.zip"));
        Assert.Equal(ExitCodes.Success, r.Exit);
        Assert.Contains("ddml: note: no validation data: ValidationFraction 0.1 of 3 training sequences (or of their windows) holds out none", r.Err);
    }

    [Fact]
    public void Validation_options_that_the_validation_file_makes_moot_are_refused_before_the_data_is_read()
    {
        var missing = _h.PathOf("missing.csv");   // never read: the options are refused first
        var r = Fit(missing, "rnade", "--validation", missing, "-p", "ValidationFraction=0.2");
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        AssertOneLine(r.Err, "--param ValidationFraction=0.2 has no effect with --validation: the validation file replaces the held-out fraction");

        r = Fit(missing, "deepgmm", "-p", "ValidationFraction=0", "-p", "EarlyStoppingPatience=2");
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        AssertOneLine(r.Err, "--param EarlyStoppingPatience=2 has no effect without validation data (ValidationFraction = 0 and no --validation)",
            "pass --validation FILE or set --param ValidationFraction above 0", "leave EarlyStoppingPatience at its default (5)");

        r = _h.Run("fit", missing, "-m", "rnnrnade", "--sequence-id", "seq", "--order", "t", "--validation", missing, "-p", "ValidationFraction=0.3", "-o", _h.PathOf("s.zip"));
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        AssertOneLine(r.Err, "--param ValidationFraction=0.3 has no effect with --validation");

        // So are the rules of a row model whose defaults do not adapt to the data: the whole file was read first.
        foreach (var (model, option, with) in new[]
                 { ("rnade", "Momentum=0.5", "Seed=3"), ("deepgmm", "MStep=Minibatch", "Layers=3"), ("nvil", "BaselineHiddenUnits=7", "InputDependentBaseline=false") })
        {
            r = Fit(missing, model, "-p", option, "-p", with);
            Assert.Equal(ExitCodes.UsageError, r.Exit);
            AssertOneLine(r.Err, $"ddml: error: invalid model option: {option.Replace("=", " = ")} has no effect");
        }

        // An array-valued option is written as the docs write it, not as C#'s initialiser ("Layers = {3}").
        r = Fit(missing, "deepgmm", "-p", "Layers=3", "-p", "MStep=Minibatch");
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        AssertOneLine(r.Err, "invalid model option: MStep = Minibatch has no effect with one layer (Layers = [3])");
        r = Fit(missing, "nvil", "-p", "LatentDimensions=5,0");
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        AssertOneLine(r.Err, "invalid model option: LatentDimensions entries must be in [1, ", "(got [5, 0])");

        // rnnrnade's own rules are checked before the data is read too (its defaults do not adapt to the data).
        r = _h.Run("fit", missing, "-m", "rnnrnade", "--sequence-id", "seq", "--order", "t", "-p", "Optimizer=SgdMomentum", "-p", "AdamBeta1=0.8", "-o", _h.PathOf("s.zip"));
        Assert.Equal(ExitCodes.UsageError, r.Exit);
        AssertOneLine(r.Err, "invalid model option: AdamBeta1 = 0.8 has no effect with Optimizer = SgdMomentum: it is a setting of Adam");

        // The defaults, and a fraction of 0 with a validation file (no row held out, as asked), train.
        var csv = _h.Blob("train.csv", 60);
        var valid = _h.Blob("valid.csv", 30, seed: 2);
        var ok = Fit(csv, "rnade", "-p", "HiddenUnits=4", "--validation", valid);
        Assert.True(ok.Exit == ExitCodes.Success, ok.Err);
        Assert.Equal(ExitCodes.Success, Fit(csv, "rnade", "-p", "HiddenUnits=4", "--validation", valid, "-p", "ValidationFraction=0").Exit);
    }
}
