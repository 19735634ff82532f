using Microsoft.ML.DeepDensity.Data;
using static Microsoft.ML.DeepDensity.Tests.Conformance.ConformanceAssert;

namespace Microsoft.ML.DeepDensity.Tests.Conformance;

/// <summary>
/// A model saved to a file on disk and loaded back — by another process, next week — is the same model: every per-row
/// output, bit for bit, and the same draws. <see cref="PersistenceChecks"/> holds in-memory round trips to the
/// log-density and the samples; this holds a real file (written through a <see cref="FileStream"/>, read back both as a
/// stream and as the file's bytes) and a second generation (the loaded model saved to a second file and loaded again,
/// as a model that is re-deployed is) to everything a caller can ask of a row: the log-density and its standard error
/// (an estimate's error is part of the score), the family's own per-row calls (an RBM's free energy, IWAE's and NVIL's
/// k-sample bound), on the case's rows and on rows far from them, in one batch and one row alone.
/// </summary>
public class FileRoundTripChecks
{
    [Theory, MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void AModelLoadedFromAFileGivesEveryPerRowOutputAndEveryDrawBitForBit(string name)
    {
        var f = ModelCases.Fitted(name);
        var pool = BatchInvarianceChecks.Pool(f.Case);
        var expected = BatchInvarianceChecks.Outputs(f.Model, pool.AsSpan(), pool.Rows);
        var expectedFirstRow = BatchInvarianceChecks.Outputs(f.Model, pool.Row(0), 1);
        var expectedDraws = f.Model.Sample(300, seed: 4);
        var expectedExtremeSeed = f.Model.Sample(3, seed: ulong.MaxValue);
        var directory = Directory.CreateTempSubdirectory("ddml-conformance-");
        try
        {
            string first = Path.Combine(directory.FullName, name + ".ddml"), second = Path.Combine(directory.FullName, name + ".again.ddml");
            using (var file = File.Create(first)) f.Model.Save(file);
            Assert.Equal(f.Model.ToBytes(), File.ReadAllBytes(first));

            DensityModel fromStream;
            using (var file = File.OpenRead(first))
            {
                fromStream = DensityModel.Load(file);
                Assert.Equal(file.Length, file.Position); // read exactly the model, nothing after it
            }
            var fromBytes = DensityModel.FromBytes(File.ReadAllBytes(first));
            using (var file = File.Create(second)) fromStream.Save(file);
            Assert.Equal(File.ReadAllBytes(first), File.ReadAllBytes(second));
            DensityModel secondGeneration;
            using (var file = File.OpenRead(second)) secondGeneration = DensityModel.Load(file);

            foreach (var (route, loaded) in new[] { ("loaded from the file as a stream", fromStream), ("loaded from the file's bytes", fromBytes), ("saved again and loaded from the second file", secondGeneration) })
            {
                Assert.Equal(f.Model.GetType(), loaded.GetType());
                // Sampling first: a loaded model's sampler must not depend on whether it has scored (no state built lazily by scoring).
                BitIdentical(expectedDraws.AsSpan(), loaded.Sample(300, seed: 4).AsSpan(), $"{name}, {route}: 300 draws of seed 4");
                BitIdentical(expectedExtremeSeed.AsSpan(), loaded.Sample(3, seed: ulong.MaxValue).AsSpan(), $"{name}, {route}: draws of seed 2^64 - 1");
                Same(name, route, "the first row alone", expectedFirstRow, BatchInvarianceChecks.Outputs(loaded, pool.Row(0), 1));
                Same(name, route, $"a batch of {pool.Rows} rows", expected, BatchInvarianceChecks.Outputs(loaded, pool.AsSpan(), pool.Rows));
                Assert.Equal(f.Model.AverageLogDensity(f.Data), loaded.AverageLogDensity(f.Data));
            }
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    private static void Same(string name, string route, string what, (string Name, float[] Values)[] expected, (string Name, float[] Values)[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int o = 0; o < expected.Length; o++)
            for (int i = 0; i < expected[o].Values.Length; i++)
                if (BitConverter.SingleToInt32Bits(expected[o].Values[i]) != BitConverter.SingleToInt32Bits(actual[o].Values[i]))
                    Assert.Fail($"{name}, {route}, {what}: row {i} has {expected[o].Name} {actual[o].Values[i]:R}, before saving {expected[o].Values[i]:R}.");
    }
}
