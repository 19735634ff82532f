using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Tests.Rbm;

public class RbmTests
{
    internal static RbmMachine RandomMachine(int d, int h, RbmVisibleType type, float weightScale, ulong seed)
    {
        var m = new RbmMachine(d, h, type);
        var rng = new RandomStream(seed);
        rng.FillGaussian(m.W, 0, weightScale);
        rng.FillGaussian(m.B, 0, 0.5f);
        rng.FillGaussian(m.C, 0, 0.5f);
        return m;
    }

    private static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    private static float[] Bits(long index, int width)
    {
        var v = new float[width];
        for (int j = 0; j < width; j++) v[j] = (index >> j & 1) != 0 ? 1f : 0f;
        return v;
    }

    /// <summary>−E(v,h) in float64 straight from the definition.</summary>
    private static double NegativeEnergy(RbmMachine m, float[] v, float[] h)
    {
        double e = 0;
        for (int j = 0; j < m.H; j++) e += m.C[j] * h[j];
        for (int i = 0; i < m.D; i++)
        {
            e += m.Gaussian ? -0.5 * (v[i] - m.B[i]) * (v[i] - m.B[i]) : m.B[i] * v[i];
            for (int j = 0; j < m.H; j++) e += v[i] * m.W[i * m.H + j] * h[j];
        }
        return e;
    }

    private static double LogSumExp(IEnumerable<double> xs)
    {
        var a = xs.ToArray();
        double max = a.Max();
        return max + Math.Log(a.Sum(x => Math.Exp(x - max)));
    }

    private static double BruteFreeEnergy(RbmMachine m, float[] v)
        => -LogSumExp(Enumerable.Range(0, 1 << m.H).Select(s => NegativeEnergy(m, v, Bits(s, m.H))));

    private static double BruteLogZ(RbmMachine m)
        => LogSumExp(Enumerable.Range(0, 1 << m.D).SelectMany(sv =>
            Enumerable.Range(0, 1 << m.H).Select(sh => NegativeEnergy(m, Bits(sv, m.D), Bits(sh, m.H)))));

    [Theory]
    [InlineData(RbmVisibleType.Bernoulli)]
    [InlineData(RbmVisibleType.Gaussian)]
    public void FreeEnergyEqualsBruteForceSumOverHiddenStates(RbmVisibleType type)
    {
        var m = RandomMachine(5, 6, type, 0.8f, 3);
        var rng = new RandomStream(9);
        int n = 7;
        var x = new float[n * 5];
        for (int i = 0; i < x.Length; i++) x[i] = type == RbmVisibleType.Gaussian ? (float)rng.NextGaussian() : rng.NextInt(2);
        var f = new double[n];
        m.FreeEnergy(x, n, f, parallel: false);
        for (int r = 0; r < n; r++)
            Assert.Equal(BruteFreeEnergy(m, x.AsSpan(r * 5, 5).ToArray()), f[r], 4);
    }

    [Fact]
    public void ExactLogZEqualsBruteForceEnumeratingEitherLayer()
    {
        var m = RandomMachine(6, 5, RbmVisibleType.Bernoulli, 1.0f, 4);
        double brute = BruteLogZ(m);
        Assert.Equal(brute, m.ExactLogPartition(enumerateVisible: true), 4);
        Assert.Equal(brute, m.ExactLogPartition(enumerateVisible: false), 4);
        // More states than one enumeration block (2^12 visible states = 4 blocks of 1024).
        var big = RandomMachine(12, 3, RbmVisibleType.Bernoulli, 0.7f, 5);
        Assert.Equal(big.ExactLogPartition(enumerateVisible: false), big.ExactLogPartition(enumerateVisible: true), 3);
    }

    [Fact]
    public void GaussianLogZIntegratesToOne()
    {
        // D = 1: integrate exp(−F(v) − log Z) on a fine grid.
        var m = RandomMachine(1, 4, RbmVisibleType.Gaussian, 1.5f, 6);
        double logZ = m.ExactLogPartition(enumerateVisible: false);
        const double step = 1e-3;
        int n = (int)(60 / step);
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float)(-30 + i * step);
        var f = new double[n];
        m.FreeEnergy(v, n, f, parallel: true);
        double total = 0;
        for (int i = 0; i < n; i++) total += Math.Exp(-f[i] - logZ) * step;
        Assert.Equal(1.0, total, 4);
    }

    [Fact]
    public void AisLandsWithinThreeStandardErrorsOfExactLogZ()
    {
        var m = RandomMachine(40, 20, RbmVisibleType.Bernoulli, 0.35f, 7);
        double exact = m.ExactLogPartition(enumerateVisible: false);
        var ais = m.EstimateLogPartitionAis(new float[40], 100, RbmMachine.DefaultAisSchedule(1000), new RandomStream(1));
        Assert.True(ais.StandardError > 0 && ais.StandardError < 0.2, $"standard error {ais.StandardError}");
        Assert.True(Math.Abs(ais.LogZ - exact) < 3 * ais.StandardError, $"AIS {ais.LogZ} ± {ais.StandardError}, exact {exact}");
        Assert.True(ais.LogZLower <= exact + 1e-9 && exact <= ais.LogZUpper + 1e-9);
    }

    [Fact]
    public void GaussianAisAgreesWithExactLogZ()
    {
        var m = RandomMachine(3, 12, RbmVisibleType.Gaussian, 0.4f, 8);
        double exact = m.ExactLogPartition(enumerateVisible: false);
        var model = RbmModel.FromParameters(RbmVisibleType.Gaussian, m.W, m.B, m.C,
            new RbmOptions { ExactLogPartitionMaxUnits = 0, AisTemperatures = 1000, AisRuns = 100 });
        Assert.Equal(LogPartitionMethod.AnnealedImportanceSampling, model.LogPartitionMethod);
        Assert.Equal(DensityKind.Estimate, model.DensityKind);
        Assert.True(Math.Abs(model.LogPartition - exact) < 3 * model.LogPartitionStandardError + 1e-3,
            $"AIS {model.LogPartition} ± {model.LogPartitionStandardError}, exact {exact}");
        var se = new float[2];
        var ld = new float[2];
        model.LogDensity(new float[] { 0.1f, -0.2f, 0.3f, 1f, 2f, 3f }, ld, se);
        Assert.Equal((float)model.LogPartitionStandardError, se[0]);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // PCD: the stacked positive/negative GEMM path
    public void Cd1UpdateEqualsEquation43OnTheRecordedSamples(bool persistent)
    {
        int d = 7, h = 5, n = 6;
        var m = RandomMachine(d, h, RbmVisibleType.Bernoulli, 0.5f, 10);
        var w0 = (float[])m.W.Clone(); var b0 = (float[])m.B.Clone(); var c0 = (float[])m.C.Clone();
        var x = new float[n * d];
        var rng = new RandomStream(12);
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextInt(2);
        var trainer = new RbmTrainer(m, n, gibbsSteps: 1, persistent, persistentChains: 0);
        trainer.SetBatch(x, n);
        const float lr = 0.1f;
        trainer.Step(n, lr, momentum: 0, weightDecay: 0, new RandomStream(13));
        var xk = trainer.LastNegativeVisible(n).ToArray();
        Assert.All(xk, v => Assert.True(v == 0f || v == 1f));
        Assert.NotEqual(x, xk);

        double[] HiddenProbabilities(float[] rows, int r)
        {
            var p = new double[h];
            for (int j = 0; j < h; j++)
            {
                double a = c0[j];
                for (int i = 0; i < d; i++) a += rows[r * d + i] * w0[i * h + j];
                p[j] = Sigmoid(a);
            }
            return p;
        }
        // Eq. 43 per row (x₀σ(z̃₀)ᵀ − x_kσ(z̃_k)ᵀ), averaged over the batch; the biases follow the same pattern.
        var dw = new double[d * h]; var db = new double[d]; var dc = new double[h];
        for (int r = 0; r < n; r++)
        {
            var p0 = HiddenProbabilities(x, r);
            var pk = HiddenProbabilities(xk, r);
            for (int i = 0; i < d; i++)
            {
                db[i] += x[r * d + i] - xk[r * d + i];
                for (int j = 0; j < h; j++) dw[i * h + j] += x[r * d + i] * p0[j] - xk[r * d + i] * pk[j];
            }
            for (int j = 0; j < h; j++) dc[j] += p0[j] - pk[j];
        }
        for (int k = 0; k < d * h; k++) Assert.Equal(lr * dw[k] / n, m.W[k] - w0[k], 5);
        for (int i = 0; i < d; i++) Assert.Equal(lr * db[i] / n, m.B[i] - b0[i], 5);
        for (int j = 0; j < h; j++) Assert.Equal(lr * dc[j] / n, m.C[j] - c0[j], 5);
    }

    /// <summary>Rows drawn from 3 noisy binary prototypes: a correlated distribution an RBM can learn.</summary>
    internal static RowMatrix PrototypeData(int n, int d, ulong seed, double flip = 0.1)
    {
        var rng = new RandomStream(seed);
        var protos = new float[3, d];
        for (int k = 0; k < 3; k++) for (int j = 0; j < d; j++) protos[k, j] = rng.NextInt(2);
        var data = new RowMatrix(n, d);
        for (int r = 0; r < n; r++)
        {
            int k = rng.NextInt(3);
            for (int j = 0; j < d; j++) data[r, j] = rng.NextDouble() < flip ? 1 - protos[k, j] : protos[k, j];
        }
        return data;
    }
    /// <summary>The exact gradient of the mean log-likelihood of <paramref name="data"/> for a Bernoulli machine small enough
    /// to enumerate: E_data[v σ(c+vW)ᵀ] − E_model[v σ(c+vW)ᵀ] (and the bias terms), the model's expectation summed over
    /// every visible state.</summary>
    internal static (double[] W, double[] B, double[] C) ExactGradient(RbmMachine m, RowMatrix data)
    {
        int d = m.D, h = m.H, n = data.Rows;
        double logZ = m.ExactLogPartition(true);
        var gw = new double[d * h]; var gb = new double[d]; var gc = new double[h];
        void Accumulate(float[] v, double weight)
        {
            for (int j = 0; j < h; j++)
            {
                double a = m.C[j];
                for (int i = 0; i < d; i++) a += v[i] * m.W[i * h + j];
                double p = Sigmoid(a);
                gc[j] += weight * p;
                for (int i = 0; i < d; i++) gw[i * h + j] += weight * v[i] * p;
            }
            for (int i = 0; i < d; i++) gb[i] += weight * v[i];
        }
        for (int r = 0; r < n; r++) Accumulate(data.Row(r).ToArray(), 1.0 / n);
        var all = new float[(1 << d) * d];
        for (int s = 0; s < 1 << d; s++) Bits(s, d).CopyTo(all, s * d);
        var f = new double[1 << d];
        m.FreeEnergy(all, 1 << d, f, false);
        for (int s = 0; s < 1 << d; s++) Accumulate(Bits(s, d), -Math.Exp(-f[s] - logZ));
        return (gw, gb, gc);
    }


    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void CdDirectionHasPositiveInnerProductWithTheTrueGradient(bool persistent)
    {
        int d = 6, h = 4, n = 4000;
        var m = RandomMachine(d, h, RbmVisibleType.Bernoulli, 0.5f, 21);
        var data = PrototypeData(n, d, 22);
        // True gradient of the mean log-likelihood: E_data[v σ(c+vW)ᵀ] − E_model[v σ(c+vW)ᵀ], model expectation exact.
        var (gw, gb, gc) = ExactGradient(m, data);

        var trainer = new RbmTrainer(m, n, gibbsSteps: 1, persistent, persistentChains: 0) { KeepGradient = true };
        trainer.SetBatch(data.Values, n);
        // PCD: let the fantasy chains reach equilibrium first (a negligible learning rate leaves the model unchanged).
        int steps = persistent ? 30 : 1;
        for (int s = 0; s < steps; s++) trainer.Step(n, 1e-12f, 0, 0, new RandomStream(30 + (ulong)s));
        double dot = 0, nTrue = 0, nCd = 0;
        void Add(double[] t, float[] c) { for (int i = 0; i < t.Length; i++) { dot += t[i] * c[i]; nTrue += t[i] * t[i]; nCd += (double)c[i] * c[i]; } }
        Add(gw, trainer.GradW!); Add(gb, trainer.GradB!); Add(gc, trainer.GradC!);
        double cosine = dot / Math.Sqrt(nTrue * nCd);
        Assert.True(dot > 0, $"inner product {dot}");
        Assert.True(cosine > (persistent ? 0.9 : 0.5), $"cosine {cosine}");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SaturatedHiddenUnitsLeaveNoSubnormalFloatsInTheWeightUpdate(bool persistent)
    {
        // Hidden biases far below 0: σ(−95) ≈ 5e-42 is subnormal itself, σ(−86.5) ≈ 2.7e-38 becomes subnormal times
        // 1/n. Each such statistic would be read by d multiply-adds of the weight update's GEMM (a microcode assist
        // each); the trainer flushes them to 0.
        int d = 16, h = 6, n = 4;
        var m = new RbmMachine(d, h, RbmVisibleType.Bernoulli);
        float[] c = { -95f, -86.5f, -100f, 0f, -87.2f, 2f };
        c.CopyTo(m.C, 0);
        var rng = new RandomStream(70);
        var x = new float[n * d];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextDouble() < 0.4 ? 1 : 0;
        var trainer = new RbmTrainer(m, n, gibbsSteps: 1, persistent, persistentChains: 0);
        trainer.SetBatch(x, n);
        trainer.Step(n, 1e-6f, 0.5f, 0, new RandomStream(71));
        var stats = trainer.LastHiddenStatistics(n);
        Assert.DoesNotContain(stats.ToArray(), float.IsSubnormal);
        int rows = stats.Length / h;
        for (int r = 0; r < rows; r++)
        {
            float sign = r < n ? 1f : -1f, scale = sign / (r < n ? n : trainer.NegativeRows(n));
            for (int j = 0; j < h; j++)
            {
                // W = 0 at the step's start, so every row's pre-activation is c.
                float expected = (float)(1 / (1 + Math.Exp(-c[j]))) * scale;
                if (MathF.Abs(expected) < 1.17549435e-38f) Assert.Equal(0f, stats[r * h + j]);
                else Assert.Equal(expected, stats[r * h + j], 1e-6f * MathF.Abs(expected));
            }
        }
        Assert.DoesNotContain(m.W, float.IsSubnormal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void FusedBlockUpdateMatchesTheWholeMatrixUpdate(bool persistent)
    {
        // Wide enough for several visible-column, hidden-column and weight-row blocks; momentum and weight decay on.
        int d = 420, h = 40, n = 30, steps = 3;
        var data = new RowMatrix(2 * n, d);
        var rng = new RandomStream(50);
        for (int i = 0; i < data.Values.Length; i++) data.Values[i] = rng.NextDouble() < 0.3 ? 1 : 0;
        var order = Enumerable.Range(0, 2 * n).Reverse().ToArray();
        var fused = RandomMachine(d, h, RbmVisibleType.Bernoulli, 0.05f, 51);
        var whole = fused.Clone();
        var viaSetBatch = fused.Clone();
        var t1 = new RbmTrainer(fused, n, 1, persistent, 0);
        var t2 = new RbmTrainer(whole, n, 1, persistent, 0) { KeepGradient = true };
        var t3 = new RbmTrainer(viaSetBatch, n, 1, persistent, 0);
        for (int s = 0; s < steps; s++)
        {
            int start = (s % 2) * n;
            var batch = new float[n * d];
            for (int r = 0; r < n; r++) data.Row(order[start + r]).CopyTo(batch.AsSpan(r * d, d));
            t1.Gather(data, order, start, n);
            t1.Step(n, 0.05f, 0.5f, 1e-3f, new RandomStream(60 + (ulong)s));
            t2.SetBatch(batch, n);
            t2.Step(n, 0.05f, 0.5f, 1e-3f, new RandomStream(60 + (ulong)s));
            t3.SetBatch(batch, n);
            t3.Step(n, 0.05f, 0.5f, 1e-3f, new RandomStream(60 + (ulong)s));
        }
        // Gathering inside the step is the same computation as copying the rows first.
        Assert.Equal(viaSetBatch.W, fused.W);
        Assert.Equal(viaSetBatch.B, fused.B);
        Assert.Equal(viaSetBatch.C, fused.C);
        // The per-block update (GEMM with alpha = lr, beta = momentum per weight-row block) against one whole-matrix
        // gradient GEMM: the same update up to float rounding.
        for (int i = 0; i < fused.W.Length; i++) Assert.True(Math.Abs(fused.W[i] - whole.W[i]) <= 1e-5f + 1e-4f * Math.Abs(whole.W[i]), $"W[{i}] {fused.W[i]} vs {whole.W[i]}");
        for (int i = 0; i < d; i++) Assert.True(Math.Abs(fused.B[i] - whole.B[i]) <= 1e-5f, $"b[{i}] {fused.B[i]} vs {whole.B[i]}");
        for (int j = 0; j < h; j++) Assert.True(Math.Abs(fused.C[j] - whole.C[j]) <= 1e-5f, $"c[{j}] {fused.C[j]} vs {whole.C[j]}");
        Assert.NotEqual(RandomMachine(d, h, RbmVisibleType.Bernoulli, 0.05f, 51).W, fused.W);
    }

    /// <summary>A Gaussian RBM at too high a rate grows its weights past the ±1e6 a model file may hold while they are
    /// still finite (1.1e6 at 0.1 here, 6e11 at 0.5). The epoch check counts that as a divergence, so the driver restores
    /// the last good state and halves the rate, and the fit returns a model that saves and loads. Before, the run
    /// ended with TrainingDivergedException from the final loader check and no model.</summary>
    [Theory]
    [InlineData(0.1f)]
    [InlineData(0.5f)]
    public void WeightsBeyondTheFileRangeAreADivergenceTheFitRecoversFrom(float learningRate)
    {
        int n = 1200, d = 63;
        var rng = new RandomStream(4);
        var prototypes = new float[10 * d];
        rng.FillGaussian(prototypes, 0, 1.5f);
        var x = new float[n * d];
        for (int r = 0; r < n; r++)
        {
            int c = (int)(rng.NextDouble() * 10);
            for (int j = 0; j < d; j++) x[r * d + j] = prototypes[c * d + j] + (float)rng.NextGaussian() * 0.3f;
        }
        var model = RbmModel.Fit(new RowMatrix(x, n, d), new RbmOptions
        {
            VisibleType = RbmVisibleType.Gaussian, LearningRate = learningRate, MaxEpochs = 20, AisRuns = 4, AisTemperatures = 50,
        });
        Assert.True(model.TrainingSummary!.DivergenceRecoveries > 0);
        Assert.True(model.Machine.WithinSavableRange());
        var loaded = (RbmModel)DensityModel.FromBytes(model.ToBytes());
        Assert.Equal(model.LogDensity(new RowMatrix(x[..(5 * d)], 5, d)), loaded.LogDensity(new RowMatrix(x[..(5 * d)], 5, d)));
    }

    /// <summary>Sample i depends only on (seed, i), whatever the draw's size: a draw of 1 (one chain) is the first row
    /// of a draw of 700 (100 chains), also where no unit is saturated (weights of scale 1, so every uniform decides a
    /// unit). A fill of uniforms depends on its length, so the chains' uniforms are filled row by row. Sizes on both
    /// sides of the 32-chain sampling blocks (a partial last block of min(chains, count) chains) and of the chain count.</summary>
    [Theory]
    [InlineData(8, 22)]
    [InlineData(70, 90)]
    public void SmallerDrawsArePrefixesOfLargerOnes_WithUnsaturatedUnits(int d, int h)
    {
        var m = RandomMachine(d, h, RbmVisibleType.Bernoulli, 1f, 61);
        var model = RbmModel.FromParameters(RbmVisibleType.Bernoulli, m.W, m.B, m.C,
            new RbmOptions { SamplingBurnIn = 5, SamplingThinning = 2, SamplingChains = 100, AisRuns = 4, AisTemperatures = 20 });
        var large = model.Sample(700, seed: 3);
        foreach (int n in new[] { 1, 3, 31, 32, 33, 40, 64, 65, 99, 100, 101, 257 })
        {
            var small = model.Sample(n, seed: 3);
            Assert.Equal(large.AsSpan()[..(n * d)].ToArray(), small.AsSpan().ToArray());
        }
    }

    [Fact]
    public void GibbsSamplerMatchesExactProbabilities()
    {
        var m = RandomMachine(4, 3, RbmVisibleType.Bernoulli, 1.2f, 40);
        var model = RbmModel.FromParameters(RbmVisibleType.Bernoulli, m.W, m.B, m.C,
            new RbmOptions { SamplingBurnIn = 50, SamplingThinning = 3, SamplingChains = 200 });
        Assert.Equal(LogPartitionMethod.Exact, model.LogPartitionMethod);
        const int n = 20000;
        var samples = model.Sample(n, seed: 41);
        var counts = new int[16];
        for (int r = 0; r < n; r++)
        {
            int s = 0;
            for (int j = 0; j < 4; j++) s |= (samples[r, j] == 1f ? 1 : 0) << j;
            counts[s]++;
        }
        var states = new RowMatrix(16, 4);
        for (int s = 0; s < 16; s++) Bits(s, 4).CopyTo(states.Row(s));
        var logp = model.LogDensity(states);
        double chi2 = 0, total = 0;
        for (int s = 0; s < 16; s++)
        {
            double expected = n * Math.Exp(logp[s]);
            total += Math.Exp(logp[s]);
            chi2 += (counts[s] - expected) * (counts[s] - expected) / expected;
        }
        Assert.Equal(1.0, total, 5);
        Assert.True(chi2 < 37.7, $"chi-square {chi2} with 15 degrees of freedom (p = 0.001 critical value 37.7)");
        // Same seed, same samples; another seed, other samples.
        Assert.Equal(samples.Values, model.Sample(n, seed: 41).Values);
        Assert.NotEqual(samples.Values, model.Sample(n, seed: 42).Values);
    }

    [Fact]
    public void NonBinaryInputIsRejectedNamingRowAndValue()
    {
        var model = RbmModel.Fit(PrototypeData(50, 5, 1), new RbmOptions { HiddenUnits = 3, MaxEpochs = 1 });
        var rows = new float[3 * 5];
        rows[2 * 5 + 1] = 0.5f;
        var ex = Assert.Throws<DataValidationException>(() => model.LogDensity(rows, new float[3]));
        Assert.Equal(2, ex.Row);
        Assert.Equal(1, ex.Column);
        Assert.Contains("0.5", ex.Message);
        Assert.Contains("row 2", ex.Message);
        Assert.Throws<DataValidationException>(() => model.FreeEnergy(rows, new float[3]));
        var bad = PrototypeData(20, 5, 2);
        bad[7, 3] = 2f;
        var fitEx = Assert.Throws<DataValidationException>(() => RbmModel.Fit(bad, new RbmOptions { HiddenUnits = 3, MaxEpochs = 1 }));
        Assert.Equal(7, fitEx.Row);
    }

    [Theory]
    [InlineData(8, 10)] // visible layer enumerated
    [InlineData(8, 5)]  // hidden layer enumerated
    public void ExactModelIsNormalisedOverAllVisibleStates(int d, int h)
    {
        var model = RbmModel.Fit(PrototypeData(300, d, 3), new RbmOptions { HiddenUnits = h, MaxEpochs = 5, LearningRate = 0.1f });
        Assert.Equal(DensityKind.Exact, model.DensityKind);
        var states = new RowMatrix(1 << d, d);
        for (int s = 0; s < 1 << d; s++) Bits(s, d).CopyTo(states.Row(s));
        double total = model.LogDensity(states).Sum(v => Math.Exp(v));
        Assert.Equal(1.0, total, 4);
    }

    [Fact]
    public void TrainingWithTheDefaultsBeatsTheIndependentMarginalsModel()
    {
        int d = 10;
        var all = PrototypeData(2500, d, 50);
        var data = all.Slice(0, 2000);
        var valid = all.Slice(2000, 500);
        var progress = new List<TrainingProgress>();
        var model = RbmModel.Fit(data, new RbmOptions { HiddenUnits = 8, MaxEpochs = 30, Seed = 5 },
            valid, new Progress(progress));
        // W = 0 with log-odds visible biases is exactly the independent-Bernoulli model of the training marginals.
        double independent = 0;
        for (int j = 0; j < d; j++)
        {
            double p = Enumerable.Range(0, data.Rows).Average(r => data[r, j]);
            for (int r = 0; r < valid.Rows; r++) independent += valid[r, j] == 1 ? Math.Log(p) : Math.Log(1 - p);
        }
        independent /= valid.Rows;
        double rbm = model.AverageLogDensity(valid);
        Assert.True(rbm > independent + 1.0, $"RBM {rbm} vs independent {independent}");
        Assert.Equal(30, progress.Count);
        Assert.All(progress, p => Assert.True(p.Metrics!.ContainsKey("recon_error") && p.Metrics.ContainsKey("free_energy_gap")));
        Assert.True(progress[^1].Metrics!["recon_error"] < progress[0].Metrics!["recon_error"]);
    }

    [Theory]
    [InlineData(50_000L, 20)]      // Fashion-MNIST's training set: the former default of 20 epochs
    [InlineData(1_257L, 796)]      // the shipped digits' training rows
    [InlineData(3_000_000L, 1)]    // more rows than the default's examples: one epoch
    [InlineData(10L, 1000)]        // a tiny set: at most 1,000 epochs
    public void TheDefaultLengthIsAMillionExamples(long rows, int epochs)
    {
        Assert.Equal(0, new RbmOptions().MaxEpochs);
        Assert.Equal(epochs, new RbmOptions().EpochsFor(rows));
        Assert.Equal(7, new RbmOptions { MaxEpochs = 7 }.EpochsFor(rows));   // a length the user sets is used as it is
    }

    [Fact]
    public void ADefaultFitRunsTheEpochsOfAMillionExamples()
    {
        // 2,500 rows: 400 epochs of 25 steps (a tiny model, so the 10,000 steps take well under a second).
        var model = RbmModel.Fit(PrototypeData(2500, 4, 70), new RbmOptions { HiddenUnits = 2, AisRuns = 10, AisTemperatures = 100 });
        Assert.Equal(400, model.TrainingSummary!.EpochsRun);
        // Zero is the RBM's automatic length only: a negative count is refused, and other models refuse zero.
        var negative = Assert.Throws<ArgumentOutOfRangeException>(() => new RbmOptions { MaxEpochs = -1 }.Validate());
        Assert.Contains("MaxEpochs must be non-negative", negative.Message);
        var rnade = Assert.Throws<ArgumentOutOfRangeException>(() => new Models.Rnade.RnadeOptions { MaxEpochs = 0 }.Validate());
        Assert.Contains("MaxEpochs must be at least 1", rnade.Message);
    }

    private sealed class Progress(List<TrainingProgress> list) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => list.Add(value);
    }

    [Fact]
    public void CdAndGaussianTrainingRun()
    {
        var cdData = PrototypeData(400, 6, 60);
        var cd = RbmModel.Fit(cdData.Slice(0, 300), new RbmOptions
        {
            HiddenUnits = 4, MaxEpochs = 5, Algorithm = RbmTrainingAlgorithm.ContrastiveDivergence, GibbsSteps = 2,
        });
        Assert.True(double.IsFinite(cd.AverageLogDensity(cdData.Slice(300, 100))));
        // PCD with fewer fantasy chains than rows per batch, several row parts and a partial last batch.
        var pcd = RbmModel.Fit(PrototypeData(1030, 6, 63), new RbmOptions { HiddenUnits = 4, MaxEpochs = 2, BatchSize = 200, PersistentChains = 70, GibbsSteps = 3 });
        Assert.True(double.IsFinite(pcd.AverageLogDensity(cdData.Slice(300, 100))));

        var rng = new RandomStream(62);
        var real = new RowMatrix(400, 3);
        for (int r = 0; r < 400; r++)
        {
            double z = rng.NextGaussian();
            real[r, 0] = (float)(10 + 3 * z); real[r, 1] = (float)(-2 * z + 0.3 * rng.NextGaussian()); real[r, 2] = (float)rng.NextGaussian();
        }
        var g = RbmModel.Fit(real, new RbmOptions { VisibleType = RbmVisibleType.Gaussian, HiddenUnits = 6, MaxEpochs = 10, LearningRate = 0.01f });
        Assert.Equal(InputDomain.Real, g.InputDomain);
        Assert.NotNull(g.Standardizer);
        // Density of the raw data: compare with the 3-D Gaussian fitted by moments would be loose; check it is sensible.
        double avg = g.AverageLogDensity(real);
        Assert.True(avg is > -12 and < 0, $"average log-density {avg}");
        var samples = g.Sample(2000, 3);
        double mean0 = Enumerable.Range(0, 2000).Average(r => samples[r, 0]);
        Assert.InRange(mean0, 8.5, 11.5);
    }

    [Fact]
    public void DivergingTrainingNeverReturnsNonFiniteParameters()
    {
        var rng = new RandomStream(70);
        var real = new RowMatrix(200, 4);
        for (int i = 0; i < real.Values.Length; i++) real.Values[i] = (float)(1e4 * rng.NextGaussian());
        var options = new RbmOptions { VisibleType = RbmVisibleType.Gaussian, Standardize = false, HiddenUnits = 5, MaxEpochs = 3, LearningRate = 100f, MaxDivergenceRecoveries = 2, Momentum = 0.9f };
        var reports = new List<TrainingProgress>();
        try
        {
            var model = RbmModel.Fit(real, options, progress: new Progress(reports));
            Assert.All(model.GetWeights(), v => Assert.True(float.IsFinite(v)));
            Assert.True(model.TrainingSummary!.DivergenceRecoveries > 0);
        }
        catch (TrainingDivergedException ex)
        {
            Assert.Contains("diverged", ex.Message);
        }
        Assert.Contains(reports, r => r.Note is not null && r.Note.Contains("halved"));
    }

    [Fact]
    public void TrainingHonoursCancellation()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() =>
            RbmModel.Fit(PrototypeData(100, 5, 90), new RbmOptions { HiddenUnits = 3 }, cancellationToken: cts.Token));
    }

    [Fact]
    public void SaveLoadIsBitIdentical()
    {
        var all = PrototypeData(250, 8, 80);
        var model = RbmModel.Fit(all.Slice(0, 200), new RbmOptions { HiddenUnits = 6, MaxEpochs = 3 });
        var bytes = model.ToBytes();
        var loaded = Assert.IsType<RbmModel>(DensityModel.FromBytes(bytes));
        Assert.Equal(bytes, loaded.ToBytes());
        var test = all.Slice(200, 50);
        Assert.Equal(model.LogDensity(test), loaded.LogDensity(test));
        Assert.Equal(model.Sample(40, 5).Values, loaded.Sample(40, 5).Values);

        // AIS-normalised Gaussian model keeps method, standard error and standardiser.
        var rng = new RandomStream(82);
        var real = new RowMatrix(100, 3);
        for (int i = 0; i < real.Values.Length; i++) real.Values[i] = (float)(5 + 2 * rng.NextGaussian());
        var g = RbmModel.Fit(real, new RbmOptions { VisibleType = RbmVisibleType.Gaussian, HiddenUnits = 4, MaxEpochs = 2, ExactLogPartitionMaxUnits = 0, AisTemperatures = 200, AisRuns = 20, LearningRate = 0.01f });
        var gl = Assert.IsType<RbmModel>(DensityModel.FromBytes(g.ToBytes()));
        Assert.Equal(g.ToBytes(), gl.ToBytes());
        Assert.Equal(LogPartitionMethod.AnnealedImportanceSampling, gl.LogPartitionMethod);
        Assert.Equal(g.LogPartitionStandardError, gl.LogPartitionStandardError);
        Assert.Equal(g.LogDensity(real), gl.LogDensity(real));

        // A truncated file is rejected.
        Assert.ThrowsAny<Exception>(() => DensityModel.FromBytes(bytes.AsSpan(0, bytes.Length - 9)));
    }
}
