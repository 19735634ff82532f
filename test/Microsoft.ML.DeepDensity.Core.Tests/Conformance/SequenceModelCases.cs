using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Tests.Sequences;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>
/// Every sequence model the conformance suite checks (<see cref="SequenceConformanceTests"/>). Adding a sequence model
/// is ONE line in <see cref="All"/>: how to fit a tiny model of that kind with a seed, its input domain and density kind,
/// and which data to use.
/// </summary>
public static class SequenceModelCases
{
    public static readonly SequenceModelCase[] All =
    {
        // Test-only trivial models (Sequences/IidGaussianSequenceModel.cs): i.i.d. frames under a diagonal Gaussian.
        new("IidGaussianSequence", InputDomain.Real, DensityKind.Exact, r => IidGaussianSequenceModel.Fit(r.Data), SequenceConformanceData.Real),
        new("IidGaussianSequenceGradient", InputDomain.Real, DensityKind.Exact, r => IidGaussianSequenceModel.FitByGradient(r.Data,
            new GradientTrainingOptions { Seed = r.Seed, MaxEpochs = r.Epochs, LearningRate = 0.05f, BatchSize = r.BatchSize ?? 8, EarlyStoppingPatience = 0 }, r.Validation, null, r.CancellationToken), SequenceConformanceData.Real) { HasBatchSize = true },
        new("RnnRnade", InputDomain.Real, DensityKind.Exact, r => Models.RnnRnade.RnnRnadeModel.Fit(r.Data, new Models.RnnRnade.RnnRnadeOptions { HiddenUnits = 6, Components = 2, RecurrentUnits = 5, BatchSize = r.BatchSize ?? 8, SequencesPerBlock = 3, MaxEpochs = r.Epochs, Seed = r.Seed, EarlyStoppingPatience = 0 }, r.Validation, null, r.CancellationToken), SequenceConformanceData.Real) { HasBatchSize = true, ScaleEquivarianceTolerance = 1e-4 },
        // Variant: the recurrent state also shifts the RNADE's hidden bias (another file layout), tanh units, raw frames.
        new("RnnRnadeConditionedTanhRaw", InputDomain.Real, DensityKind.Exact, r => Models.RnnRnade.RnnRnadeModel.Fit(r.Data, new Models.RnnRnade.RnnRnadeOptions { HiddenUnits = 6, Components = 2, RecurrentUnits = 5, ConditionHiddenBias = true, Activation = Numerics.Activation.Tanh, Standardize = false, BatchSize = r.BatchSize ?? 8, SequencesPerBlock = 3, MaxEpochs = r.Epochs, Seed = r.Seed, EarlyStoppingPatience = 0 }, r.Validation, null, r.CancellationToken), SequenceConformanceData.Real) { HasBatchSize = true },
        // Variant: sigmoid units, one Gaussian per conditional.
        new("RnnRnadeSigmoidOneComponent", InputDomain.Real, DensityKind.Exact, r => Models.RnnRnade.RnnRnadeModel.Fit(r.Data, new Models.RnnRnade.RnnRnadeOptions { HiddenUnits = 6, Components = 1, RecurrentUnits = 5, Activation = Numerics.Activation.Sigmoid, BatchSize = r.BatchSize ?? 8, SequencesPerBlock = 3, MaxEpochs = r.Epochs, Seed = r.Seed, EarlyStoppingPatience = 0 }, r.Validation, null, r.CancellationToken), SequenceConformanceData.Real) { HasBatchSize = true, ScaleEquivarianceTolerance = 1e-4 },
    };

    public static TheoryData<string> Names
    {
        get
        {
            var data = new TheoryData<string>();
            foreach (var c in All) data.Add(c.Name);
            return data;
        }
    }

    public static SequenceModelCase Get(string name)
        => Array.Find(All, c => c.Name == name) ?? throw new ArgumentException($"No sequence model case '{name}'.", nameof(name));
}

/// <summary>What the suite asks a sequence model case to fit.</summary>
public sealed record SequenceFitRequest(SequenceBatch Data, ulong Seed)
{
    /// <summary>Passes over the data.</summary>
    public int Epochs { get; init; } = 3;
    /// <summary>Validation sequences (null: the model's own split or none).</summary>
    public SequenceBatch? Validation { get; init; }
    /// <summary>Minibatch size instead of the case's own (null = the case's own); only for cases with <see cref="SequenceModelCase.HasBatchSize"/>.</summary>
    public int? BatchSize { get; init; }
    public CancellationToken CancellationToken { get; init; }
}

/// <summary>How to fit one kind of sequence model for the conformance suite.</summary>
public sealed record SequenceModelCase(
    string Name,
    InputDomain InputDomain,
    DensityKind DensityKind,
    Func<SequenceFitRequest, SequenceDensityModel> Fit,
    Func<int, ulong, SequenceBatch> MakeData)
{
    /// <summary>Sequences of the standard training set. Default 60.</summary>
    public int TrainingSequences { get; init; } = 60;

    /// <summary>Fit honours <see cref="SequenceFitRequest.BatchSize"/> and <see cref="SequenceFitRequest.CancellationToken"/>
    /// (training memory bounded by the block, a huge minibatch cancelled within a second). Default false.</summary>
    public bool HasBatchSize { get; init; }

    /// <summary>The model standardises each frame component by its own statistics, so frames mapped per component to
    /// a·x + b give every sequence log p − T·Σ log a_c (T its frames) to this relative tolerance
    /// (<see cref="SequenceScaleChecks"/>). Default null (not scale-equivariant; not checked).</summary>
    public double? ScaleEquivarianceTolerance { get; init; }

    public SequenceDensityModel FitStandard() => Fit(new SequenceFitRequest(MakeData(TrainingSequences, 12345), 1));

    public override string ToString() => Name;
}

/// <summary>Small seeded sequence data sets.</summary>
public static class SequenceConformanceData
{
    /// <summary>Frames of 3 real values (an AR(1) walk, a correlated copy, an offset-and-scale column); lengths 1 to 12.</summary>
    public static SequenceBatch Real(int count, ulong seed)
    {
        var rng = new RandomStream(seed).Fork(0x5E9);
        var seqs = new float[count][];
        for (int i = 0; i < count; i++)
        {
            int length = 1 + rng.NextInt(12);
            var s = new float[length * 3];
            float a = (float)rng.NextGaussian();
            for (int t = 0; t < length; t++)
            {
                a = 0.8f * a + 0.6f * (float)rng.NextGaussian();
                s[t * 3] = a;
                s[t * 3 + 1] = 0.5f * a + 0.3f * (float)rng.NextGaussian();
                s[t * 3 + 2] = 50f + 5f * (float)rng.NextGaussian();
            }
            seqs[i] = s;
        }
        return SequenceBatch.FromSequences(seqs, 3);
    }
}
