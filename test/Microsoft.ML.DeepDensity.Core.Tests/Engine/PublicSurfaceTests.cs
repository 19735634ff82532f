using System.Text.RegularExpressions;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

/// <summary>
/// The engine assembly's public surface (docs/engine.md#public-surface): what is public is a promise to users, kept
/// across releases, so a type becomes public on purpose, never by accident. The list below is every type a user can
/// name: public types, and public or protected types nested in them. Everything else (numerics kernels, packed
/// operands, layers and heads, networks, workspaces and scratch, per-model objectives and trainers, E- and M-step code,
/// optimisers, BlockWaves, WorkerTeam, ScratchPool) is internal; this test project and the benchmarks see it through
/// InternalsVisibleTo, the CLI, the report library and the samples do not.
/// </summary>
public class PublicSurfaceTests
{
    private const string Prefix = "Microsoft.ML.DeepDensity.";

    /// <summary>Every public type of the engine, grouped by why it is public. Keep in step with docs/engine.md.</summary>
    private static readonly string[] Expected =
    [
        // The model contract (docs/engine.md#the-model-contract-densitymodel): base classes a model family derives from
        // (DensityModel has a protected constructor, so a model can be written outside the library), the enums its
        // members return, and the process-wide settings (DeepDensityEnvironment; RowBlockBody is ForRowBlocks' body).
        "DeepDensityEnvironment",
        "DeepDensityEnvironment+RowBlockBody",
        "DensityKind",
        "DensityModel",
        "DensityModelBase",
        "InputDomain",
        "SequenceDensityModel",

        // Data in and out, and the validation every Fit and every public scoring call does (docs/engine.md, `Data`).
        // ColumnStandardizer is each model's Standardizer property; DataSetKind, DataValidationException's DataSet;
        // DataProblemKind, its Kind (what is wrong, for callers that handle one problem).
        "Data.ColumnStandardizer",
        "Data.DataProblemKind",
        "Data.DataSetKind",
        "Data.DataValidation",
        "Data.DataValidationException",
        "Data.RowMatrix",
        "Data.SequenceBatch",
        "Data.TrainingRowChecks",

        // IWAE's and NVIL's shared base (their Bound/AverageBound/WithEvaluation) and options base, and the documented
        // importance-sampling estimator (docs/engine.md, docs/adding-a-model.md).
        "Estimation.ImportanceSampledModel",
        "Estimation.ImportanceSampledOptions",
        "Estimation.ImportanceSampledOptions+Defaults",
        "Estimation.ImportanceSampler",
        "Estimation.ImportanceSampler+LogWeights`1",

        // The six model families (docs/models/*.md): model, options with their Defaults (DefaultsTests), and the enums of
        // their options and properties. The Deep GMM enums EStep, MStep, NodeObjective, ... are settings of
        // DeepGmmOptions, not the EM code (that is internal). DeepGmmEmStatistics and DeepGmmDataParallelEm are EM
        // across machines (docs/scaling.md#beyond-one-machine); RnnRnadeStream is RnnRnadeModel.StartStream's result.
        "Models.DeepGmm.DeepGmmDataParallelEm",
        "Models.DeepGmm.DeepGmmEStep",
        "Models.DeepGmm.DeepGmmEmKind",
        "Models.DeepGmm.DeepGmmEmStatistics",
        "Models.DeepGmm.DeepGmmInitialization",
        "Models.DeepGmm.DeepGmmMStep",
        "Models.DeepGmm.DeepGmmModel",
        "Models.DeepGmm.DeepGmmNodeObjective",
        "Models.DeepGmm.DeepGmmOptions",
        "Models.DeepGmm.DeepGmmOptions+Defaults",
        "Models.DeepGmm.DeepGmmPathProbabilities",
        "Models.Iwae.IwaeLikelihood",
        "Models.Iwae.IwaeModel",
        "Models.Iwae.IwaeOptions",
        "Models.Iwae.IwaeOptions+Defaults",
        "Models.Nvil.NvilModel",
        "Models.Nvil.NvilOptions",
        "Models.Nvil.NvilOptions+Defaults",
        "Models.Rbm.LogPartitionMethod",
        "Models.Rbm.RbmModel",
        "Models.Rbm.RbmOptions",
        "Models.Rbm.RbmOptions+Defaults",
        "Models.Rbm.RbmTrainingAlgorithm",
        "Models.Rbm.RbmVisibleType",
        "Models.Rnade.DeepRnadeConnectivity",
        "Models.Rnade.DeepRnadeModel",
        "Models.Rnade.DeepRnadeOptions",
        "Models.Rnade.DeepRnadeOptions+Defaults",
        "Models.Rnade.RnadeModel",
        "Models.Rnade.RnadeOptions",
        "Models.Rnade.RnadeOptions+Defaults",
        "Models.RnnRnade.RnnRnadeModel",
        "Models.RnnRnade.RnnRnadeOptions",
        "Models.RnnRnade.RnnRnadeOptions+Defaults",
        "Models.RnnRnade.RnnRnadeStream",

        // The activation setting of RNADE, deep RNADE, RNN-RNADE and IWAE (the activation kernels are internal).
        "Numerics.Activation",

        // The model file (docs/engine.md, docs/architecture.md#persistence): its exception and limits, and what a model
        // family writes and reads its payload with and registers its kind in (docs/adding-a-model.md).
        "Persistence.InvalidModelFileException",
        // A model's size before it is built, from its options and the width (every family's options implement it;
        // ddml refuses a model it could not read back with it before training).
        "Persistence.IModelSizeOptions",
        "Persistence.ModelSizePrediction",
        "Persistence.ModelFile",
        "Persistence.ModelReader",
        "Persistence.ModelRegistry",
        "Persistence.ModelRegistry+PayloadReader",
        "Persistence.ModelWriter",

        // Seeded, forkable random streams (docs/engine.md; objectives and ImportanceSampler take them).
        "Randomness.RandomStream",

        // Training: the options base and its progress/summary/divergence reports; the driver and loop a model family
        // trains through (docs/adding-a-model.md: IGradientObjective, IBatchGradientObjective, ITrainingStateOwner,
        // ITrainableModel and the types of their members); streamed training (IRowStream, StreamingOptions); and the
        // data-parallel pieces (GradientPartial, DataParallelOptimizer, ModelTrainingObjective; docs/scaling.md).
        "Training.DataParallelOptimizer",
        "Training.DivergencePolicy",
        "Training.EpochFigures",
        "Training.GradientPartial",
        "Training.GradientTrainingOptions",
        "Training.GradientTrainingOptions+Defaults",
        "Training.IBatchGradientObjective",
        "Training.IGradientObjective",
        "Training.IRowCursor",
        "Training.IRowStream",
        "Training.ITrainableModel",
        "Training.ITrainingData",
        "Training.ITrainingSource",
        "Training.ITrainingStateOwner",
        "Training.ModelTrainingObjective`1",
        "Training.OptimizerKind",
        "Training.Parameter",
        "Training.ParameterSet",
        "Training.RowStream",
        "Training.StreamingOptions",
        "Training.StreamingOptions+Defaults",
        "Training.StreamingTrainingData",
        "Training.TrainingBatch",
        "Training.TrainingData",
        "Training.TrainingDivergedException",
        "Training.TrainingDriver",
        "Training.TrainingDriverOptions",
        "Training.TrainingEpoch",
        "Training.TrainingLoop",
        "Training.TrainingProgress",
        "Training.TrainingStep",
        "Training.TrainingSummary",
    ];

    private static string Root()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "DeepDensity.ML.sln"))) return dir.FullName;
        throw new InvalidOperationException("DeepDensity.ML.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>A type code outside the assembly can name: public, or public/protected inside such a type (a protected
    /// nested type is visible to every subclass, so it is a promise too).</summary>
    private static bool Nameable(Type t) => t.IsNested
        ? (t.IsNestedPublic || t.IsNestedFamily || t.IsNestedFamORAssem) && Nameable(t.DeclaringType!)
        : t.IsPublic;

    private static string Name(Type t)
    {
        string name = t.FullName!;
        return name.StartsWith(Prefix, StringComparison.Ordinal) ? name[Prefix.Length..] : name;
    }

    /// <summary>The engine's nameable types, sorted; compiler-made types (C# 14 extension blocks' &lt;G&gt;$… types)
    /// are left out, their static class being the API.</summary>
    internal static List<string> PublicTypes() => typeof(DensityModel).Assembly.GetTypes()
        .Where(t => Nameable(t) && !t.Name.Contains('<'))
        .Select(Name).Order(StringComparer.Ordinal).ToList();

    [Fact]
    public void TheEnginesPublicTypesAreExactlyTheListedOnes()
    {
        var actual = PublicTypes();
        var expected = Expected.Order(StringComparer.Ordinal).ToList();
        var added = actual.Except(expected, StringComparer.Ordinal).ToList();
        var removed = expected.Except(actual, StringComparer.Ordinal).ToList();
        Assert.True(added.Count == 0 && removed.Count == 0,
            "The engine's public surface changed." +
            (added.Count > 0 ? $"\n  Now public: {string.Join(", ", added)}." : "") +
            (removed.Count > 0 ? $"\n  No longer public: {string.Join(", ", removed)}." : "") +
            "\nA public type is a promise kept across releases. If this is an implementation detail (a kernel, a workspace, " +
            "scratch, an objective, a trainer step), make it internal: this test project and the benchmarks see internals " +
            "through InternalsVisibleTo. If it is meant to be public (documented in docs/engine.md, docs/adding-a-model.md, " +
            "docs/scaling.md or a model chapter, or returned or taken by a public member), add it to Expected in " +
            "test/Microsoft.ML.DeepDensity.Core.Tests/Engine/PublicSurfaceTests.cs and update docs/engine.md#public-surface " +
            "(what is public and why, and the count).");
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void EngineMdStatesTheNumberOfPublicTypes()
    {
        string doc = File.ReadAllText(Path.Combine(Root(), "docs", "engine.md"));
        var match = Regex.Match(doc, @"## Public surface[\s\S]*?\*\*(\d+) public types\*\*");
        Assert.True(match.Success, "docs/engine.md needs a '## Public surface' section saying '**N public types**'.");
        int stated = int.Parse(match.Groups[1].Value);
        Assert.True(stated == PublicTypes().Count,
            $"docs/engine.md#public-surface says {stated} public types; the engine has {PublicTypes().Count}. " +
            "Update its paragraph (what is public and why) with the count.");
    }
}
