using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Numerics.Amx;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Tests.Conformance;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

/// <summary>
/// A subnormal float in a GEMM operand costs a microcode assist per multiply-add that reads it (.NET cannot set
/// flush-to-zero), so a model that produces them in bulk runs several times slower with no other symptom. These fits
/// saturate their units (784 binary inputs from four prototypes: RBM hidden pre-activations pass −83, where σ times 1/batch is subnormal, within one epoch of 10k rows) and
/// watch every product's operands through <see cref="Gemm.Audit"/> (process-wide, hence the serial collection). The
/// `subnormals` benchmark runs the same audit over every model and data set.
/// </summary>
[Collection(EngineSettingsCollection.Name)]
public class SubnormalOperandTests
{
    private static RowMatrix Prototypes(int n, int d, ulong seed)
    {
        var rng = new RandomStream(seed);
        var protos = new bool[4, d];
        for (int c = 0; c < 4; c++) for (int j = 0; j < d; j++) protos[c, j] = rng.NextDouble() < 0.5;
        var m = new RowMatrix(n, d);
        for (int r = 0; r < n; r++)
        {
            int c = rng.NextInt(4);
            var row = m.Row(r);
            for (int j = 0; j < d; j++) row[j] = protos[c, j] ^ (rng.NextDouble() < 0.1) ? 1f : 0f;
        }
        return m;
    }

    private static long SubnormalOperandEntries(Action work)
    {
        long found = 0;
        Gemm.Audit = (a, ar, ac, lda, b, br, bc, ldb, c, cr, cc, ldc, readsC) =>
            Interlocked.Add(ref found, Gemm.SubnormalEntries(a, ar, ac, lda) + Gemm.SubnormalEntries(b, br, bc, ldb) + (readsC ? Gemm.SubnormalEntries(c, cr, cc, ldc) : 0));
        // The float GEMM's operands are audited: the AMX binary products (exact integers) are turned off so that the
        // RBM's products run where the audit sees them, as on a machine without AMX.
        try { using (BinaryGemm.Off()) work(); }
        finally { Gemm.Audit = null; }
        return found;
    }

    [Fact]
    public void SaturatedRbmTrainsAndScoresWithoutSubnormalOperands()
    {
        var data = Prototypes(10_000, 784, 11);
        RbmModel? model = null;
        long found = SubnormalOperandEntries(() =>
        {
            model = RbmModel.Fit(data, new RbmOptions { HiddenUnits = 500, MaxEpochs = 1, LearningRate = 0.05f, Momentum = 0.5f, AisTemperatures = 50, AisRuns = 2, Seed = 1 });
            model.LogDensity(Prototypes(200, 784, 12));
        });
        Assert.Equal(0, found);
        // The data did saturate the hidden units (else this test checks nothing): the rate and momentum are written out
        // (0.05 with momentum 0.5, whose first epoch drives many units below −87), so that a change of defaults keeps it.
        var pre = new float[200 * 500];
        model!.Machine.HiddenPreActivation(data.AsSpan()[..(200 * 784)], 200, pre, parallel: false);
        Assert.True(pre.Min() < -83f, $"lowest hidden pre-activation {pre.Min()}");
    }

    [Fact]
    public void SaturatedIwaeTrainsAndScoresWithoutSubnormalOperands()
    {
        var data = Prototypes(4000, 784, 13);
        long found = SubnormalOperandEntries(() =>
            IwaeModel.Fit(data, new IwaeOptions { MaxEpochs = 1, EvaluationSamples = 50, ValidationFraction = 0, Seed = 1 }).LogDensity(Prototypes(100, 784, 14)));
        Assert.Equal(0, found);
    }
}
