using System.Diagnostics;
using System.Globalization;
using DeepDensity.Samples;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Estimation;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Models.Nvil;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Training;

namespace DeepDensity.Benchmarks;

/// <summary>
/// Checks the latent-variable models' defaults (<see cref="IwaeOptions.Defaults"/>, <see cref="NvilOptions.Defaults"/> and
/// the training loop's) against the plain alternatives a user would try instead, on binarized Fashion-MNIST (the
/// protocol of the <c>iwae</c> and <c>nvil</c> benchmarks; <c>--train N</c> keeps the first N training rows). Each
/// variant is fitted once per seed exactly as a user's <c>Fit(train, options)</c> runs: up to the default 100 epochs,
/// 10 % of the rows held out for early stopping, the best held-out epoch kept. The kept model is scored by its own
/// log-density estimate (the default K = 1000 importance samples) on the first <c>--score</c> validation and test rows.
/// </summary>
/// <remarks>The curve comes from the same fit: the training loop's held-out bound after every epoch
/// (<see cref="TrainingSummary.History"/>), printed at the <c>--curve</c> epochs. Scoring the model itself at those epochs
/// would need a fit per checkpoint (the training loop hands out no model mid-run), which the 2-core budget of this study
/// did not allow.</remarks>
public sealed class LatentDefaultsBenchmark : IBenchmark
{
    public string Name => "latent-defaults";
    public string Description => "IWAE or NVIL defaults vs plain alternatives, K=1000 validation/test LL and held-out curves " +
                                 "(--model iwae|nvil --seeds 1,2 --train 50000 --score 2000 --curve 1,5,10,20,50,100 --only NAME,NAME; " +
                                 "--grid \"lr=3e-4,1e-3;batch=20,100\" fits every combination instead)";

    /// <summary>Plain alternatives to the IWAE's defaults: the learning rate a factor of ~3 either way, the VAE the IWAE
    /// generalises, the paper's tanh (ReLU is the default for binary data), no early stopping (all epochs, the best kept), the output biases from zero
    /// as most reference code starts them, and the small batch of Burda et al.'s paper (20).</summary>
    private static readonly OptionsVariant<IwaeOptions>[] IwaeVariants =
    [
        new("defaults", _ => { }),
        new("rate 3e-4", o => o.LearningRate = 3e-4f),
        new("rate 3e-3", o => o.LearningRate = 3e-3f),
        new("VAE (k = 1)", o => o.Samples = 1),
        new("tanh (Burda et al.; the default until session 17)", o => o.Activation = Activation.Tanh),
        new("no early stopping", o => o.EarlyStoppingPatience = 0),
        new("output biases from zero", o => o.InitializeOutputBiasFromData = false),
        new("batch 20", o => o.BatchSize = 20),
    ];

    /// <summary>Plain alternatives to NVIL's defaults: the training loop's general rate (1e-3) and a smaller one, the
    /// loop's general patience (10) and none, and plain REINFORCE (no baseline, centring or normalisation).</summary>
    private static readonly OptionsVariant<NvilOptions>[] NvilVariants =
    [
        new("defaults", _ => { }),
        new("rate 1e-3", o => o.LearningRate = 1e-3f),
        new("rate 1e-4", o => o.LearningRate = 1e-4f),
        new("patience 10", o => o.EarlyStoppingPatience = 10),
        new("no early stopping", o => o.EarlyStoppingPatience = 0),
        new("plain REINFORCE", o => { o.InputDependentBaseline = false; o.CenterSignal = false; o.NormalizeSignal = false; }),
    ];

    public int Run(BenchmarkArgs args)
    {
        if (!SampleData.FashionMnistAvailable())
        {
            Console.WriteLine($"Fashion-MNIST not found in {SampleData.FashionMnistDirectory}; skipping.");
            return 0;
        }
        return args.String("model", "iwae") switch
        {
            "iwae" => Study(args, "IWAE", IwaeVariants, GridKeys<IwaeOptions>(("k", (o, f) => o.Samples = (int)f)), (x, o) => IwaeModel.Fit(x, o),
                o => $"{string.Join("-", o.HiddenUnits)} {o.EffectiveActivation}, latent {string.Join(",", o.LatentDimensions)}, k {o.Samples}"),
            "nvil" => Study(args, "NVIL", NvilVariants, GridKeys<NvilOptions>(("samples", (o, f) => o.SamplesPerExample = (int)f)), (x, o) => NvilModel.Fit(x, o),
                o => $"latent {string.Join(",", o.LatentDimensions)}, baseline {o.BaselineHiddenUnits} tanh, α {o.SignalSmoothing}"),
            var other => throw new UsageException($"--model must be iwae or nvil (got '{other}')."),
        };
    }

    private static int Study<TOptions>(BenchmarkArgs args, string modelName, OptionsVariant<TOptions>[] variants,
        IReadOnlyDictionary<string, Action<TOptions, float>> gridKeys, Func<RowMatrix, TOptions, ImportanceSampledModel> fit, Func<TOptions, string> architecture)
        where TOptions : ImportanceSampledOptions, new()
    {
        var study = new DefaultsStudy<TOptions>(args, variants, "1,2", gridKeys);
        var curve = args.String("curve", "1,5,10,20,50,100").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        int nTrain = args.Int("train", 50_000), nScore = args.Int("score", 2000);
        var data = SampleData.LoadBinarizedFashionMnist();
        var train = data.Train.Slice(0, Math.Min(nTrain, data.Train.Rows));
        var valid = data.Validation.Slice(0, Math.Min(nScore, data.Validation.Rows));
        var test = data.Test.Slice(0, Math.Min(nScore, data.Test.Rows));
        var d = new TOptions();
        Console.WriteLine($"{modelName} on binarized Fashion-MNIST (seed 1234): train {train.Rows} ({d.ValidationFraction:P0} held out by Fit), scored on validation {valid.Rows}, test {test.Rows}; " +
                          $"library defaults: {architecture(d)}, {d.Optimizer} lr {d.LearningRate:G3}, batch {d.BatchSize}, {d.MaxEpochs} epochs, patience {d.EarlyStoppingPatience}, K {d.EvaluationSamples}");
        Console.WriteLine($"seeds {string.Join(",", study.Seeds)}; {Environment.ProcessorCount} cores; {CoreSpeed.Describe()}");

        // Held-out bound after each epoch, per variant and seed (the curve).
        var curves = new Dictionary<string, List<IReadOnlyList<TrainingProgress>>>();
        foreach (var v in study.Variants)
            foreach (int seed in study.Seeds)
            {
                var o = new TOptions { Seed = (ulong)seed };
                v.Set(o);
                var clock = Stopwatch.StartNew();
                ImportanceSampledModel model;
                try { model = fit(train, o); }
                catch (TrainingDivergedException e)
                {
                    study.Add(v.Name, o.MaxEpochs, seed, StudyOutcome.Diverged(clock.Elapsed.TotalSeconds), e.Message[..Math.Min(120, e.Message.Length)] + "…");
                    continue;
                }
                double fitSeconds = clock.Elapsed.TotalSeconds;
                var summary = model.TrainingSummary!;
                if (!curves.TryGetValue(v.Name, out var list)) curves[v.Name] = list = [];
                list.Add(summary.History);
                study.Add(v.Name, o.MaxEpochs, seed, new StudyOutcome(model.AverageLogDensity(valid), model.AverageLogDensity(test), fitSeconds, summary.EpochsRun, summary.BestEpoch),
                    $"held-out bound {summary.BestValidationLogLikelihood:F2}; scoring {clock.Elapsed.TotalSeconds - fitSeconds:F0} s");
            }
        study.PrintTable();

        // The held-out bound at each curve epoch, mean over the seeds whose run got that far ("-" where none did).
        Console.WriteLine();
        Console.WriteLine($"| variant | {string.Join(" | ", curve.Select(e => $"held-out bound, epoch {e}"))} |");
        Console.WriteLine("|---|" + string.Concat(curve.Select(_ => "---:|")));
        foreach (var v in study.Variants.Where(v => curves.ContainsKey(v.Name)))
        {
            var cells = curve.Select(e =>
            {
                var at = curves[v.Name].Select(h => h.FirstOrDefault(p => p.Epoch == e)?.ValidationLogLikelihood).OfType<double>().ToArray();
                return at.Length == 0 ? "-" : $"{at.Average():F2}" + (at.Length < curves[v.Name].Count ? $" ({at.Length} seed{(at.Length > 1 ? "s" : "")})" : "");
            });
            Console.WriteLine($"| {v.Name} | {string.Join(" | ", cells)} |");
        }
        return 0;
    }

    /// <summary>The --grid keys of the training loop's settings, plus the model's own.</summary>
    private static Dictionary<string, Action<TOptions, float>> GridKeys<TOptions>(params (string Key, Action<TOptions, float> Set)[] model)
        where TOptions : GradientTrainingOptions
    {
        var keys = new Dictionary<string, Action<TOptions, float>>
        {
            ["lr"] = (o, f) => o.LearningRate = f,
            ["batch"] = (o, f) => o.BatchSize = (int)f,
            ["patience"] = (o, f) => o.EarlyStoppingPatience = (int)f,
            ["epochs"] = (o, f) => o.MaxEpochs = (int)f,
        };
        foreach (var (key, set) in model) keys[key] = set;
        return keys;
    }
}
