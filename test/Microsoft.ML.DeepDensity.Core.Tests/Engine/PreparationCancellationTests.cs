using System.Diagnostics;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Models.Nvil;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Tests.Conformance;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

/// <summary>
/// A Fit's preparation of data in memory (the held-out split's copies, standardisation, permutation, initial values from
/// the data) observes the Fit's token every run of rows (<see cref="Preparation"/>). It checked only between whole steps
/// (RNADE, IWAE) or not at all (Deep GMM, deep RNADE, the RBM, NVIL, RNN-RNADE) before the first minibatch: on 5 million
/// rows of 20 columns a cancel took 2 to 8 s to be noticed (deep RNADE 8.2 s, Deep GMM 4.5 s, RNN-RNADE 3.6 s).
/// Serial: the tests set the preparation's check interval and hook, which are process-wide.
/// </summary>
[Collection(EngineSettingsCollection.Name)]
public class PreparationCancellationTests
{
    public static TheoryData<string> Families => new() { "RNADE", "deep RNADE", "Deep GMM", "RBM Gaussian", "IWAE", "NVIL", "RNN-RNADE" };

    private const int Rows = 3000, Width = 4;

    private static object Fit(string family, CancellationToken token, IProgress<TrainingProgress> progress)
    {
        var random = new Randomness.RandomStream(3);
        var real = new RowMatrix(Rows, Width);
        random.FillGaussian(real.AsSpan());
        var binary = new RowMatrix(Rows, 2 * Width);
        for (int i = 0; i < binary.Values.Length; i++) binary.Values[i] = (i * 7 + i / 5) % 3 == 0 ? 1 : 0;
        var sequences = new SequenceBatch(real.Values, Enumerable.Range(0, Rows / 10 + 1).Select(i => i * 10).ToArray(), Width);
        return family switch
        {
            "RNADE" => RnadeModel.Fit(real, new RnadeOptions { HiddenUnits = 3, Components = 2, MaxEpochs = 1 }, null, progress, token),
            "deep RNADE" => DeepRnadeModel.Fit(real, new DeepRnadeOptions { HiddenUnits = 3, Components = 2, MaxEpochs = 1 }, null, progress, token),
            "Deep GMM" => DeepGmmModel.Fit(real, new DeepGmmOptions { Layers = new[] { 2 }, MaxIterations = 1 }, null, progress, token),
            "RBM Gaussian" => RbmModel.Fit(real, new RbmOptions { HiddenUnits = 3, MaxEpochs = 1, VisibleType = RbmVisibleType.Gaussian, ValidationFraction = 0.1 }, null, progress, token),
            "IWAE" => IwaeModel.Fit(real, new IwaeOptions { Likelihood = IwaeLikelihood.Gaussian, LatentDimensions = new[] { 1 }, HiddenUnits = new[] { 3 }, MaxEpochs = 1 }, null, progress, token),
            "NVIL" => NvilModel.Fit(binary, new NvilOptions { LatentDimensions = new[] { 2 }, MaxEpochs = 1 }, null, progress, token),
            _ => RnnRnadeModel.Fit(sequences, new RnnRnadeOptions { HiddenUnits = 3, Components = 2, RecurrentUnits = 2, MaxEpochs = 1 }, null, progress, token),
        };
    }

    /// <summary>With a check every 256 values, a Fit's preparation checks its token at least once per 256 values of the
    /// training data it copies, and a cancel at any of those checks (the first, one in the middle, the last) stops the Fit
    /// there with <see cref="OperationCanceledException"/>, before a single epoch is reported.</summary>
    [Theory]
    [MemberData(nameof(Families))]
    public void ThePreparationChecksTheTokenEveryRunOfRows(string family)
    {
        const int valuesPerCheck = 256;
        int checks = 0;
        try
        {
            Preparation.ValuesPerCheck = valuesPerCheck;
            Preparation.Checking = () => Interlocked.Increment(ref checks);
            int reports = 0;
            Fit(family, CancellationToken.None, new Reports(() => reports++));
            int total = checks;
            Assert.True(reports > 0, "the uncancelled fit trained");
            int values = (family == "NVIL" ? 2 : 1) * Rows * Width;
            Assert.True(total >= values / valuesPerCheck, $"{total} checks in the preparation of {values} values: fewer than one per {valuesPerCheck} values");

            foreach (int at in new[] { 1, total / 2, total })
            {
                using var cts = new CancellationTokenSource();
                checks = 0; reports = 0;
                Preparation.Checking = () => { if (Interlocked.Increment(ref checks) == at) cts.Cancel(); };
                Assert.ThrowsAny<OperationCanceledException>(() => Fit(family, cts.Token, new Reports(() => reports++)));
                Assert.Equal(0, reports);
                // The check that saw the cancel threw (parallel initial values: each other worker stops at its next check).
                Assert.InRange(checks, at, at + Environment.ProcessorCount);
            }
        }
        finally
        {
            Preparation.ValuesPerCheck = Preparation.DefaultValuesPerCheck;
            Preparation.Checking = null;
        }
    }

    /// <summary>The checks change nothing: a Fit with a check every 256 values and a live token is the same model, bit for
    /// bit, as one with the default interval and no token.</summary>
    [Theory]
    [MemberData(nameof(Families))]
    public void TheChecksChangeNoResult(string family)
    {
        var plain = ((DensityModelBase)Fit(family, CancellationToken.None, new Reports(() => { }))).ToBytes();
        try
        {
            Preparation.ValuesPerCheck = 256;
            using var cts = new CancellationTokenSource();
            Assert.Equal(plain, ((DensityModelBase)Fit(family, cts.Token, new Reports(() => { }))).ToBytes());
        }
        finally { Preparation.ValuesPerCheck = Preparation.DefaultValuesPerCheck; }
    }

    /// <summary>End to end on large data: deep RNADE on 4 million rows of 16 columns, cancelled 300 ms into its Fit (in its
    /// split, standardisation or initial component means), stops within a second (it took seconds: its preparation had
    /// no check at all).</summary>
    [Fact]
    public void ALargeFitCancelledInItsPreparationStopsWithinOneSecond()
    {
        var data = new RowMatrix(4_000_000, 16);
        var values = data.Values;
        for (int i = 0; i < values.Length; i++) values[i] = (i * 2654435761u % 1000) * 0.001f + i % 16;
        CancellationChecks.AssertCancelsWithinOneSecond(token =>
            DeepRnadeModel.Fit(data, new DeepRnadeOptions { MaxEpochs = 1 }, null, null, token));
    }

    private sealed class Reports(Action report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report();
    }
}
