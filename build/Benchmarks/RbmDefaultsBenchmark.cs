using System.Globalization;
using DeepDensity.Samples;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rbm;

namespace DeepDensity.Benchmarks;

/// <summary>
/// Checks the RBM's defaults (<see cref="RbmOptions.Defaults"/>) against the plain alternatives a user would try instead,
/// on binarized Fashion-MNIST (50k train, 10k validation, 10k test): each variant is fitted for each of the checkpoint
/// epoch counts and seeds, and scored by AIS on the validation and test rows (the same AIS settings for all, the
/// library's defaults). The simple reference is scikit-learn's BernoulliRBM with its own defaults (learning rate 0.1,
/// batch 10, 10 epochs; plain PCD-1 SGD) at the same number of hidden units, evaluated with our AIS on its weights.
/// </summary>
/// <remarks>A fit for e epochs is the first e epochs of a longer fit (the epochs' streams do not depend on
/// <c>MaxEpochs</c>), so the checkpoints trace one training curve per variant and seed.</remarks>
public sealed class RbmDefaultsBenchmark : IBenchmark
{
    public string Name => "rbm-defaults";
    public string Description => "RBM defaults vs plain alternatives and scikit-learn's defaults, AIS validation/test LL curves " +
                                 "(--data fmnist|digits|digits-real|fmnist8 --seeds 1,2,3 --epochs 1,2,5,10,20,40 (0: the default length) --train 50000 --only NAME,NAME --no-peer --peer-lr 0.02,0.05,0.1; " +
                                 "--grid \"lr=0.05,0.1;momentum=0,0.5;wd=0,1e-4;lrdecay=1,0.9;batch=100\" fits every combination instead)";

    private static readonly OptionsVariant<RbmOptions>[] Variants =
    [
        new("defaults", _ => { }),
        new("former defaults (0.05, momentum 0.5, constant rate)", o => { o.LearningRate = 0.05f; o.Momentum = 0.5f; o.LearningRateDecay = 1; }),
        new("constant rate", o => o.LearningRateDecay = 1),
        new("plain SGD at a constant 0.05, no weight decay", o => { o.LearningRate = 0.05f; o.LearningRateDecay = 1; o.WeightDecay = 0; }),
        new("decay per epoch", o => o.LearningRateDecayExamples = 0),
        new("no weight decay", o => o.WeightDecay = 0),
        new("momentum 0.5", o => o.Momentum = 0.5f),
        new("rate 0.1", o => o.LearningRate = 0.1f),
        new("rate 0.02", o => o.LearningRate = 0.02f),
        new("CD-1", o => o.Algorithm = RbmTrainingAlgorithm.ContrastiveDivergence),
    ];

    public int Run(BenchmarkArgs args)
    {
        var study = new DefaultsStudy<RbmOptions>(args, Variants, "1,2,3", GridKeys);
        var checkpoints = args.String("epochs", "1,2,5,10,20,40").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        int nTrain = args.Int("train", 50_000);
        string dataName = args.String("data", "fmnist");
        bool digits = dataName == "digits", gaussian = dataName is "digits-real" or "fmnist8";
        var (trainAll, valid, test) = dataName switch
        {
            "digits" => BinarizedDigits(),
            "digits-real" => SampleData.LoadDigits() is var g ? (g.Train, g.Validation, g.Test) : default,
            "fmnist8" => SampleData.LoadFashionMnist8x8() is var h ? (h.Train, h.Validation, h.Test) : default,
            _ => SampleData.LoadBinarizedFashionMnist() is var f ? (f.Train, f.Validation, f.Test) : default,
        };
        var train = trainAll.Slice(0, Math.Min(nTrain, trainAll.Rows));
        var defaults = new RbmOptions();
        // The defaults' length of training on this set (MaxEpochs 0: a million examples), for the peer's plain SGD and
        // the tables (a checkpoint of 0 epochs is the library's default length).
        int defaultEpochs = defaults.EpochsFor(train.Rows);
        Console.WriteLine($"{dataName switch { "digits" => "binarized digits (pixel ≥ 8; 70/10/20, seed 42)", "digits-real" => "real digits (dequantised, 63 dims; Gaussian units)", "fmnist8" => "Fashion-MNIST 8×8 (real; Gaussian units)", _ => "binarized Fashion-MNIST (seed 1234)" }}: train {train.Rows}, validation {valid.Rows}, test {test.Rows}; library defaults: " +
                          $"H {defaults.HiddenUnits}, {defaults.Algorithm}-{defaults.GibbsSteps}, batch {defaults.BatchSize}, lr {defaults.LearningRateFor(defaults.VisibleType)}, " +
                          $"momentum {defaults.Momentum}, weight decay {defaults.WeightDecay}, {defaultEpochs} epochs (MaxEpochs {defaults.MaxEpochs}); AIS {defaults.AisRuns} runs × {defaults.AisTemperatures} β");
        Console.WriteLine($"seeds {string.Join(",", study.Seeds)}; checkpoints (epochs) {string.Join(",", checkpoints)}");

        foreach (var v in study.Variants)
            foreach (int seed in study.Seeds)
                foreach (int epochs in checkpoints)
                {
                    var o = new RbmOptions { Seed = (ulong)seed, MaxEpochs = epochs, VisibleType = gaussian ? RbmVisibleType.Gaussian : RbmVisibleType.Bernoulli };
                    v.Set(o);
                    var clock = System.Diagnostics.Stopwatch.StartNew();
                    RbmModel model;
                    try { model = RbmModel.Fit(train, o); }
                    catch (Microsoft.ML.DeepDensity.Training.TrainingDivergedException e)
                    {
                        study.Add(v.Name, epochs, seed, StudyOutcome.Diverged(clock.Elapsed.TotalSeconds), e.Message[..Math.Min(120, e.Message.Length)] + "…");
                        continue;
                    }
                    study.Add(v.Name, epochs, seed, new StudyOutcome(Mean(model.LogDensity(valid)), Mean(model.LogDensity(test)), clock.Elapsed.TotalSeconds),
                        $"log Z {model.LogPartition:F2} ± {model.LogPartitionStandardError:F2}");
                }

        // The peer reads the training rows from one file, written once for all its fits.
        string? trainPath = args.Flag("no-peer") || gaussian ? null : Peer.WriteMatrix(train, "rbm-defaults-train");
        if (trainPath is not null)
            foreach (int seed in study.Seeds)
            {
                // scikit-learn's own defaults (learning_rate 0.1, batch_size 10, n_iter 10) at our default width.
                var r = PeerDefaults(trainPath, train, valid, test, defaults, seed, hidden: defaults.HiddenUnits, lr: 0.1f, batch: 10, epochs: 10);
                if (r is { } x) study.Add("scikit-learn defaults (lr 0.1, batch 10)", 10, seed, x);
                // And plain SGD (BernoulliRBM has no momentum, weight decay or schedule) at our batch size and epochs, for
                // each learning rate of --peer-lr: its best on validation is the peer at its best.
                foreach (var peerLr in args.String("peer-lr", "0.02,0.05,0.1").Split(',').Select(x => float.Parse(x, CultureInfo.InvariantCulture)))
                {
                    var s = PeerDefaults(trainPath, train, valid, test, defaults, seed, hidden: defaults.HiddenUnits, lr: peerLr, batch: defaults.BatchSize, epochs: defaultEpochs);
                    if (s is { } y) study.Add($"scikit-learn, lr {peerLr}, batch {defaults.BatchSize}", defaultEpochs, seed, y);
                }
            }

        study.PrintTable(epochs => epochs == 0 ? $"default ({defaultEpochs})" : epochs.ToString(CultureInfo.InvariantCulture));
        return 0;
    }

    /// <summary>What each --grid key sets.</summary>
    private static readonly Dictionary<string, Action<RbmOptions, float>> GridKeys = new()
    {
        ["lr"] = (o, f) => o.LearningRate = f,
        ["momentum"] = (o, f) => o.Momentum = f,
        ["wd"] = (o, f) => o.WeightDecay = f,
        ["lrdecay"] = (o, f) => o.LearningRateDecay = f,
        ["batch"] = (o, f) => o.BatchSize = (int)f,
        ["hidden"] = (o, f) => o.HiddenUnits = (int)f,
        ["sigma"] = (o, f) => o.VisibleStdDev = f,
    };

    /// <summary>The shipped 8×8 digits (1,797 rows, 64 pixels in 0–16) as 0/1 pixels (≥ 8), split 70/10/20 by a seeded shuffle.</summary>
    private static (RowMatrix Train, RowMatrix Valid, RowMatrix Test) BinarizedDigits()
    {
        var (pixels, _) = SampleData.ReadDigitsRaw();
        var order = Enumerable.Range(0, pixels.Length).ToArray();
        new Random(42).Shuffle(order);
        RowMatrix Take(int from, int to)
        {
            int d = pixels[0].Length;
            var x = new float[(to - from) * d];
            for (int r = from; r < to; r++)
                for (int j = 0; j < d; j++) x[(r - from) * d + j] = pixels[order[r]][j] >= 8 ? 1 : 0;
            return new RowMatrix(x, to - from, d);
        }
        int n = pixels.Length, a = n * 7 / 10, b = n * 8 / 10;
        return (Take(0, a), Take(a, b), Take(b, n));
    }

    private static double Mean(float[] values) => values.Average(x => (double)x);

    private static StudyOutcome? PeerDefaults(string trainPath, RowMatrix train, RowMatrix valid, RowMatrix test, RbmOptions evaluation, int seed,
        int hidden, float lr, int batch, int epochs)
    {
        string prefix = Path.Combine(Path.GetDirectoryName(trainPath)!, "rbm_sklearn_defaults");
        string a = string.Join(' ', $"\"{trainPath}\"", train.Rows.ToString(CultureInfo.InvariantCulture), train.Columns.ToString(CultureInfo.InvariantCulture),
            hidden.ToString(CultureInfo.InvariantCulture), batch.ToString(CultureInfo.InvariantCulture), lr.ToString(CultureInfo.InvariantCulture),
            epochs.ToString(CultureInfo.InvariantCulture), seed.ToString(CultureInfo.InvariantCulture), $"\"{prefix}\"");
        var (code, stdout, stderr) = Peer.RunPython(Peer.Script("rbm_sklearn.py"), a, TimeSpan.FromMinutes(30));
        if (code != 0) { Console.WriteLine($"scikit-learn: failed ({code}): {stderr.Trim()}"); return null; }
        var v = Peer.ReadValues(stdout);
        var model = RbmModel.FromParameters(RbmVisibleType.Bernoulli, RbmBenchmark.ReadFloats(prefix + ".W.f32"), RbmBenchmark.ReadFloats(prefix + ".b.f32"), RbmBenchmark.ReadFloats(prefix + ".c.f32"),
            new RbmOptions { Seed = (ulong)seed, AisRuns = evaluation.AisRuns, AisTemperatures = evaluation.AisTemperatures }, train);
        double vl = Mean(model.LogDensity(valid)), tl = Mean(model.LogDensity(test));
        return new StudyOutcome(vl, tl, v["TRAIN_SECONDS"]);
    }
}
