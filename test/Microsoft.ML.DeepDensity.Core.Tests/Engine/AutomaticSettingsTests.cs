using System.Reflection;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Estimation;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Models.Nvil;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;
using Xunit;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

/// <summary>
/// The automatic training settings (<c>MaxEpochs</c> = 0 of IWAE, NVIL and RNN-RNADE with their scaled patience,
/// <c>BatchSize</c> = 0 of Deep RNADE) have one resolution, <see cref="GradientTrainingOptions"/>.Resolved, which
/// <see cref="TrainingLoop.Run(IBatchGradientObjective, ITrainingSource, ITrainingSource?, GradientTrainingOptions, IProgress{TrainingProgress}?, CancellationToken)"/>
/// applies itself: an options class declares its rule and nothing else, and no model has to remember to resolve (each
/// used to, through a copy of its own).
/// </summary>
public class AutomaticSettingsTests
{
    private static readonly long?[] Counts = [null, 0, 1, 90, 235, 876, 2_000, 9_900, 9_901, 45_000, 1_000_000];

    /// <summary>Every options class with an automatic setting, with it left automatic and with it set.</summary>
    public static TheoryData<string> Cases => ["iwae", "nvil", "rnn-rnade", "deep-rnade", "rnade", "iwae-set", "rnn-rnade-set", "deep-rnade-set"];

    private static GradientTrainingOptions Make(string name) => name switch
    {
        "iwae" => new IwaeOptions(),
        "nvil" => new NvilOptions(),
        "rnn-rnade" => new RnnRnadeOptions(),
        "deep-rnade" => new DeepRnadeOptions(),
        "rnade" => new RnadeOptions(),
        "iwae-set" => new IwaeOptions { MaxEpochs = 30, EarlyStoppingPatience = 4 },
        "rnn-rnade-set" => new RnnRnadeOptions { MaxEpochs = 7, EarlyStoppingPatience = 3 },
        "deep-rnade-set" => new DeepRnadeOptions { BatchSize = 37 },
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    /// <summary>The resolution gives what the public per-class rules (<c>EpochsFor</c>, <c>PatienceFor</c>,
    /// <c>BatchSizeFor</c>) say for every count, a stream of unknown length the rule's large-data values; it leaves the
    /// caller's options alone; and it is idempotent: resolving resolved options returns them, whatever the count.</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void TheResolutionIsThePerClassRulesAndIdempotent(string name)
    {
        var options = Make(name);
        var before = (options.MaxEpochs, options.BatchSize, options.EarlyStoppingPatience);
        foreach (var count in Counts)
        {
            var resolved = options.Resolved(count);
            Assert.IsType(options.GetType(), resolved);
            var expected = Expected(options, count);
            Assert.Equal(expected, (resolved.MaxEpochs, resolved.BatchSize, resolved.EarlyStoppingPatience));
            Assert.True(resolved.MaxEpochs >= 1 && resolved.BatchSize >= 1, $"{name} at {count}: unresolved {resolved.MaxEpochs} epochs, batch {resolved.BatchSize}");
            resolved.Validate();
            foreach (var again in Counts) Assert.Same(resolved, resolved.Resolved(again));
            foreach (var p in options.GetType().GetProperties().Where(p => p.CanRead && p.CanWrite
                         && p.Name is not (nameof(GradientTrainingOptions.MaxEpochs) or nameof(GradientTrainingOptions.BatchSize) or nameof(GradientTrainingOptions.EarlyStoppingPatience))))
                Assert.Equal(p.GetValue(options), p.GetValue(resolved));
        }
        Assert.Equal(before, (options.MaxEpochs, options.BatchSize, options.EarlyStoppingPatience));
        if (before.MaxEpochs > 0 && before.BatchSize > 0) Assert.Same(options, options.Resolved(876));   // nothing automatic: no copy
    }

    /// <summary>(epochs, batch, patience) by the public rules of each class; a stream of unknown length is large data.</summary>
    private static (int, int, int) Expected(GradientTrainingOptions options, long? count) => (options, count) switch
    {
        (ImportanceSampledOptions o, long n) => (o.EpochsFor(n), o.BatchSize, o.PatienceFor(n)),
        (ImportanceSampledOptions o, null) => (o.MaxEpochs > 0 ? o.MaxEpochs : ImportanceSampledOptions.Defaults.MinAutomaticEpochs, o.BatchSize, o.EarlyStoppingPatience),
        (RnnRnadeOptions o, long n) => (o.EpochsFor(n), o.BatchSize, o.PatienceFor(n)),
        (RnnRnadeOptions o, null) => (o.MaxEpochs > 0 ? o.MaxEpochs : RnnRnadeOptions.Defaults.MinAutomaticEpochs, o.BatchSize, o.EarlyStoppingPatience),
        (DeepRnadeOptions o, long n) => (o.MaxEpochs, o.BatchSizeFor(n), o.EarlyStoppingPatience),
        (DeepRnadeOptions o, null) => (o.MaxEpochs, o.BatchSize > 0 ? o.BatchSize : DeepRnadeOptions.Defaults.MaxAutomaticBatchSize, o.EarlyStoppingPatience),
        _ => (options.MaxEpochs, options.BatchSize, options.EarlyStoppingPatience),
    };

    /// <summary>No options class but the base makes a resolved copy: none declares a method (of any name or access)
    /// returning options, and none hides or overrides the base's resolution, which is not virtual.</summary>
    [Fact]
    public void OnlyTheBaseClassResolves()
    {
        var resolve = typeof(GradientTrainingOptions).GetMethod("Resolved", BindingFlags.Instance | BindingFlags.NonPublic, [typeof(long?)]);
        Assert.NotNull(resolve);
        Assert.False(resolve.IsVirtual, "the resolution is one method: a virtual one invites each options class's own copy again");
        var optionsTypes = typeof(GradientTrainingOptions).Assembly.GetTypes()
            .Where(t => t != typeof(GradientTrainingOptions) && typeof(GradientTrainingOptions).IsAssignableFrom(t)).ToList();
        Assert.Contains(typeof(DeepRnadeOptions), optionsTypes);
        Assert.Contains(typeof(ImportanceSampledOptions), optionsTypes);
        const BindingFlags declared = BindingFlags.DeclaredOnly | BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic;
        var copies = optionsTypes.SelectMany(t => t.GetMethods(declared)
                .Where(m => typeof(GradientTrainingOptions).IsAssignableFrom(m.ReturnType) || m.Name.StartsWith("Resolved", StringComparison.Ordinal))
                .Select(m => $"{t.Name}.{m.Name}"))
            .ToList();
        Assert.True(copies.Count == 0, "options resolve only through GradientTrainingOptions.Resolved (declare an EpochRule or BatchRule): " + string.Join(", ", copies));
    }

    /// <summary>No model resolves its options itself: the source names the resolution only where it is defined and where
    /// the training loop applies it.</summary>
    [Fact]
    public void OnlyTheTrainingLoopAppliesTheResolution()
    {
        string root = Root(), src = Path.Combine(root, "src");
        var callers = Directory.GetFiles(src, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                        && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                        && File.ReadAllText(f).Contains(".Resolved(", StringComparison.Ordinal))
            .Select(f => Path.GetRelativePath(src, f).Replace(Path.DirectorySeparatorChar, '/'))
            .ToList();
        Assert.Equal(new[] { "Microsoft.ML.DeepDensity.Core/Training/TrainingLoop.cs" }, callers);
    }

    /// <summary>
    /// Through <see cref="TrainingLoop.Run(IGradientObjective, RowMatrix, RowMatrix?, GradientTrainingOptions, IProgress{TrainingProgress}?, CancellationToken)"/>
    /// directly, with an objective of the test's own: an automatic length runs the epochs <c>EpochsFor</c> gives and
    /// stops early after the patience <c>PatienceFor</c> gives; an automatic batch trains in the minibatches
    /// <c>BatchSizeFor</c> gives; a stream of unknown length gets the large-data values; the options given stay as set.
    /// </summary>
    [Fact]
    public void TheTrainingLoopResolvesTheAutomaticSettingsItself()
    {
        // 2,500 rows at batch 100: 25 steps an epoch, so 400 epochs by EpochsFor (not the base's 100) and patience 40.
        var data = Rows(2_500);
        var iwae = new IwaeOptions { ValidationFraction = 0, EarlyStoppingPatience = 0 };
        var run = TrainingLoop.Run(new Counting(), data, null, iwae, null, default);
        Assert.Equal(400, iwae.EpochsFor(data.Rows));
        Assert.Equal(iwae.EpochsFor(data.Rows), run.EpochsRun);
        Assert.Equal(0, iwae.MaxEpochs);   // the caller's options are not changed

        // A validation figure that never improves: the run stops after the scaled patience (⌈10 × 400 / 100⌉ = 40).
        var patient = new NvilOptions { ValidationFraction = 0, EarlyStoppingPatience = 10 };
        var stopped = TrainingLoop.Run(new Counting(), data, Rows(10), patient, null, default);
        Assert.Equal(40, patient.PatienceFor(data.Rows));
        Assert.True(stopped.StoppedEarly);
        Assert.Equal(1 + patient.PatienceFor(data.Rows), stopped.EpochsRun);

        // Deep RNADE's automatic batch: 2,000 rows train in batches of 20, which BatchSizeFor gives.
        var deep = new DeepRnadeOptions { MaxEpochs = 2, ValidationFraction = 0 };
        var batches = new Counting();
        TrainingLoop.Run(batches, Rows(2_000), null, deep, null, default);
        Assert.Equal(20, deep.BatchSizeFor(2_000));
        Assert.Equal(new[] { deep.BatchSizeFor(2_000) }, batches.Sizes.Distinct());
        Assert.Equal(2 * 2_000 / 20, batches.Sizes.Count);
        Assert.Equal(0, deep.BatchSize);

        // A stream of unknown length (a hashed split's training part): the large-data batch of 100 and the fewest
        // automatic epochs.
        var (unknown, _) = StreamingTrainingData.Split(RowStream.From(Rows(2_000)), 0.1, 1);
        Assert.Null(unknown.Count);
        var streamed = new Counting();
        TrainingLoop.Run(streamed, new StreamingTrainingData(unknown), null, deep, null, default);
        Assert.Equal(DeepRnadeOptions.Defaults.MaxAutomaticBatchSize, streamed.Sizes.Max());
        var lengthOfAStream = TrainingLoop.Run(new Counting(), new StreamingTrainingData(unknown), null,
            new RnnRnadeOptions { ValidationFraction = 0, EarlyStoppingPatience = 0 }, null, default);
        Assert.Equal(RnnRnadeOptions.Defaults.MinAutomaticEpochs, lengthOfAStream.EpochsRun);
    }

    private static RowMatrix Rows(int n)
    {
        var values = new float[n * 2];
        var random = new RandomStream(3);
        for (int i = 0; i < values.Length; i++) values[i] = (float)random.NextDouble();
        return new RowMatrix(values, n, 2);
    }

    /// <summary>An objective whose gradient is zero and whose figures are constant (so validation never improves),
    /// recording the size of every training batch.</summary>
    private sealed class Counting : IGradientObjective
    {
        public ParameterSet Parameters { get; } = new(new Parameter("w", new float[1]));
        public List<int> Sizes { get; } = [];

        public double ComputeGradient(ReadOnlySpan<float> rows, int count, RandomStream random)
        {
            Sizes.Add(count);
            Array.Clear(Parameters.Items[0].Gradient);
            return -count;
        }

        public double Evaluate(ReadOnlySpan<float> rows, int count, RandomStream random) => -count;
    }

    private static string Root()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "DeepDensity.ML.sln"))) return dir.FullName;
        throw new InvalidOperationException("DeepDensity.ML.sln not found above " + AppContext.BaseDirectory);
    }
}
