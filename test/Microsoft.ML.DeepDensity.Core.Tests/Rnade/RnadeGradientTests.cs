using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Tests.TestSupport;

namespace Microsoft.ML.DeepDensity.Tests.Rnade;

public class RnadeGradientTests
{
    internal static RnadeNetwork RandomNetwork(int d, int h, int k, Activation act, ulong seed)
    {
        var net = new RnadeNetwork(d, h, k, act);
        var rng = new RandomStream(seed);
        rng.FillGaussian(net.W, 0, 0.5f);
        rng.FillGaussian(net.C, 0, 0.5f);
        rng.FillUniform(net.Rho, 0.5f, 1.5f);
        rng.FillGaussian(net.V, 0, 0.3f);
        rng.FillGaussian(net.B, 0, 0.5f);
        return net;
    }

    [Theory]
    [InlineData(Activation.Relu, false)]
    [InlineData(Activation.Sigmoid, false)]
    [InlineData(Activation.Relu, true)]
    [InlineData(Activation.Sigmoid, true)]
    public void EveryParameterTensorMatchesFiniteDifferences(Activation act, bool portableMixture)
    {
        var net = RandomNetwork(d: 5, h: 7, k: 3, act, seed: 3);
        // The scalar mixture code is the one a machine without AVX2/FMA trains with: its gradient is checked as well
        // (a dropped −1 in ∂/∂z^σ there passed every test of the vectorised path).
        net.PortableMixture = portableMixture;
        // Rows per block 4 < 9 rows: exercises the multi-block reduction too.
        var objective = new RnadeObjective(net, rowsPerBlock: 4, scaleMeanBySigma: false);
        var x = new float[9 * 5];
        new RandomStream(11).FillGaussian(x);
        // ReLU has kinks: a small step keeps the central difference on one side of them.
        var worst = GradientCheck.Check(objective, x, 9, entriesPerTensor: 20, step: act == Activation.Relu ? 2e-4f : 1e-2f);
        Assert.Equal(new[] { "W", "c", "rho", "V", "b" }, worst.Keys);
    }

    [Fact]
    public void SigmaScaledMeanUpdateIsTheExactGradientTimesSigma()
    {
        var net = RandomNetwork(4, 6, 3, Activation.Relu, 5);
        var x = new float[6 * 4];
        new RandomStream(2).FillGaussian(x);
        var exact = new RnadeObjective(net, 50, scaleMeanBySigma: false);
        exact.ComputeGradient(x, 6, new RandomStream(1));
        var exactB = (float[])exact.Parameters["b"].Gradient.Clone();
        var scaled = new RnadeObjective(net, 50, scaleMeanBySigma: true);
        scaled.ComputeGradient(x, 6, new RandomStream(1));
        var scaledB = scaled.Parameters["b"].Gradient;
        // For the last dimension the μ-bias gradient is a per-row sum; check one where σ is row-independent: d = 0
        // (h_0 = f(ρ_0 c) is the same for every row, so σ_0 is too).
        int k = 3;
        for (int i = 0; i < k; i++)
        {
            float sigma = MathF.Exp(RowSigmaBias(net, 0, i));
            Assert.Equal(exactB[k + i] * sigma, scaledB[k + i], 4);
        }
        // α and σ heads are unchanged by the preconditioning.
        for (int i = 0; i < k; i++)
        {
            Assert.Equal(exactB[i], scaledB[i], 5);
            Assert.Equal(exactB[2 * k + i], scaledB[2 * k + i], 5);
        }
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    internal void FarComponentsLeaveNoSubnormalFloatsInTheGradient(bool portableMixture, bool scaleMeanBySigma)
    {
        // Sharp components far from the data: responsibilities of e^-87 and below, which times the 1/batch scale are
        // subnormal floats (x86 microcode assists in every GEMM of the backward pass, #18). They must enter as 0.
        int d = 3, h = 4, k = 4;
        var net = RandomNetwork(d, h, k, Activation.Relu, 21);
        Array.Clear(net.V);
        for (int dim = 0; dim < d; dim++)
            for (int i = 0; i < k; i++)
            {
                net.B[dim * 3 * k + k + i] = i * 3f;              // means 0, 3, 6, 9
                net.B[dim * 3 * k + 2 * k + i] = MathF.Log(0.25f); // σ = 0.25: component i ≥ 2 is ≥ 24σ from x ≈ 0
            }
        net.PortableMixture = portableMixture;
        var x = new float[40 * d];
        new RandomStream(4).FillUniform(x, -0.2f, 0.2f);
        var objective = new RnadeObjective(net, 50, scaleMeanBySigma);
        objective.ComputeGradient(x, 40, new RandomStream(1));
        foreach (var name in new[] { "W", "c", "rho", "V", "b" })
            foreach (var g in objective.Parameters[name].Gradient)
                Assert.False(float.IsSubnormal(g), $"{name} gradient has a subnormal value {g:E3}");
        var ws = new RnadeNetwork.Workspace(net, 40, forTraining: true);
        net.Forward(x, 40, ws, new float[40], -1f / 40, scaleMeanBySigma);
        Assert.DoesNotContain(ws.DZ, float.IsSubnormal);
        // The near components still get their gradient.
        Assert.Contains(ws.DZ, v => v != 0f);
    }

    private static float RowSigmaBias(RnadeNetwork net, int d, int comp)
    {
        // z^σ_{d,comp} for d = 0: b + V_0ᵀ f(ρ_0 c).
        int h = net.H, k3 = net.K3, k = net.K;
        float z = net.B[d * k3 + 2 * k + comp];
        for (int j = 0; j < h; j++)
        {
            float psi = net.Rho[d] * net.C[j];
            float hj = MathF.Max(psi, 0);
            z += hj * net.V[d * h * k3 + j * k3 + 2 * k + comp];
        }
        return z;
    }
}

/// <summary>Issue 13 (7): a minibatch of many blocks runs in waves that reuse a bounded set of workspaces.</summary>
public class RnadeWaveTests
{
    [Fact]
    public void GradientsOverSeveralWavesMatchFiniteDifferencesAndWorkspacesStayBounded()
    {
        var net = RnadeGradientTests.RandomNetwork(d: 4, h: 5, k: 2, Activation.Sigmoid, seed: 8);
        var objective = new RnadeObjective(net, rowsPerBlock: 2, scaleMeanBySigma: false);
        int count = 2 * (2 * RnadeObjective.BlocksPerWave + 3); // three waves
        var x = new float[count * 4];
        new RandomStream(12).FillGaussian(x);
        GradientCheck.Check(objective, x, count, entriesPerTensor: 10, step: 1e-2f);
        Assert.True(objective.WorkspaceCount <= RnadeObjective.BlocksPerWave, $"{objective.WorkspaceCount} workspaces");
    }
}
