using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Tests.Rnade;
using Microsoft.ML.DeepDensity.Tests.TestSupport;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.RnnRnade;

public class RnnRnadeGradientTests
{
    internal static RnnRnadeNetwork RandomNetwork(int d, int h, int k, int r, Activation act, bool hiddenBias, ulong seed)
    {
        var net = new RnnRnadeNetwork(RnadeGradientTests.RandomNetwork(d, h, k, act, seed), r, hiddenBias);
        var rng = new RandomStream(seed + 100);
        foreach (var p in new[] { net.WIn, net.WRec, net.BRec, net.H0, net.WOut, net.WHid }) rng.FillGaussian(p, 0, 0.5f);
        return net;
    }

    /// <summary>Sequences of unequal lengths (1 to 6 frames) back to back.</summary>
    internal static (float[] Values, int[] Offsets) RandomSequences(int[] lengths, int d, ulong seed)
    {
        var offsets = new int[lengths.Length + 1];
        for (int i = 0; i < lengths.Length; i++) offsets[i + 1] = offsets[i] + lengths[i];
        var values = new float[offsets[^1] * d];
        new RandomStream(seed).FillGaussian(values);
        return (values, offsets);
    }

    /// <summary>Adapts the sequence objective to the row-based gradient check: a "row" is a sequence index.</summary>
    private sealed class IndexRows(RnnRnadeObjective objective, float[] values, int[] offsets) : IGradientObjective
    {
        public ParameterSet Parameters => objective.Parameters;
        public double ComputeGradient(ReadOnlySpan<float> rows, int count, RandomStream random) => Run(rows, count, true);
        public double Evaluate(ReadOnlySpan<float> rows, int count, RandomStream random) => Run(rows, count, false);
        private double Run(ReadOnlySpan<float> rows, int count, bool gradient)
        {
            var seqs = new int[count];
            for (int i = 0; i < count; i++) seqs[i] = (int)rows[i];
            // GradientCheck divides by `count`; the objective's gradient is per frame, so rescale the returned sum.
            int frames = 0;
            foreach (var s in seqs) frames += offsets[s + 1] - offsets[s];
            return objective.Run(values, offsets, seqs, gradient) * count / frames;
        }
    }

    [Theory]
    [InlineData(Activation.Sigmoid, false)]
    [InlineData(Activation.Sigmoid, true)]
    [InlineData(Activation.Relu, true)]
    public void EveryParameterMatchesFiniteDifferencesOnUnequalLengths(Activation act, bool hiddenBias)
    {
        var net = RandomNetwork(d: 3, h: 5, k: 2, r: 4, act, hiddenBias, seed: 3);
        var (values, offsets) = RandomSequences(new[] { 4, 1, 6, 3, 6, 2, 5 }, 3, seed: 5);
        // 3 sequences per block and 4 frames per RNADE chunk: several blocks, chunks that mix time steps, ragged steps.
        var objective = new RnnRnadeObjective(net, sequencesPerBlock: 3, framesPerChunk: 4, scaleMeanBySigma: false);
        var rows = new float[] { 6, 0, 2, 5, 1, 3, 4 };  // a shuffled minibatch
        var worst = GradientCheck.Check(new IndexRows(objective, values, offsets), rows, rows.Length,
            entriesPerTensor: 16, step: act == Activation.Relu ? 2e-4f : 1e-2f, relativeTolerance: 3e-2);
        var expected = new[] { "W", "c", "rho", "V", "b", "W_in", "W_rec", "b_rec", "h0", "W_out", "W_hid" };
        Assert.Equal(expected, worst.Keys);   // W_hid is empty without the hidden-bias conditioning
    }

    [Fact]
    public void GradientDoesNotDependOnBlockingOrThreads()
    {
        var net = RandomNetwork(3, 5, 2, 4, Activation.Sigmoid, true, 8);
        var (values, offsets) = RandomSequences(new[] { 4, 1, 6, 3, 6, 2, 5, 7, 2 }, 3, seed: 9);
        var seqs = Enumerable.Range(0, 9).Reverse().ToArray();
        float[][] Grad(int threads)
        {
            var saved = DeepDensityEnvironment.MaxDegreeOfParallelism;
            DeepDensityEnvironment.MaxDegreeOfParallelism = threads;
            try
            {
                var o = new RnnRnadeObjective(net, 2, 8, false);
                o.Run(values, offsets, seqs, true);
                return o.Parameters.Items.Select(p => (float[])p.Gradient.Clone()).ToArray();
            }
            finally { DeepDensityEnvironment.MaxDegreeOfParallelism = saved; }
        }
        var one = Grad(1); var two = Grad(2);
        for (int i = 0; i < one.Length; i++) Assert.Equal(one[i], two[i]);
    }

    [Fact]
    public void WithZeroConditioningEveryFrameScoresAsTheRnade()
    {
        var net = RandomNetwork(4, 6, 3, 5, Activation.Sigmoid, true, 12);
        Array.Clear(net.WOut); Array.Clear(net.WHid);   // the recurrent state no longer reaches the RNADE
        var (values, offsets) = RandomSequences(new[] { 3, 7, 1, 5 }, 4, seed: 2);
        var block = new RnnRnadeNetwork.Block(net, 8, forTraining: false);
        block.Pack(values, offsets, new[] { 0, 1, 2, 3 });
        net.Run(block, 0f, false);
        var rnadeWs = new RnadeNetwork.Workspace(net.Rnade, 1, forTraining: false);
        var lp = new float[1];
        for (int row = 0; row < block.Frames; row++)
        {
            int frame = block.RowFrame[row];
            net.Rnade.Forward(values.AsSpan(frame * 4, 4), 1, rnadeWs, lp, 0f, false);
            Assert.Equal(lp[0], block.LogP[row], 5);
        }
    }
}
