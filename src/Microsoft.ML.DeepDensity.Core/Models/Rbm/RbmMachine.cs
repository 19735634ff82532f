using System.Numerics;
using System.Numerics.Tensors;
using Microsoft.ML.DeepDensity.Estimation;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Numerics.Amx;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Models.Rbm;

/// <summary>
/// The RBM's parameters and math on row blocks: conditionals, free energy, block Gibbs sweeps at an inverse temperature
/// β, exact log Z by enumeration and log Z by annealed importance sampling.
/// </summary>
/// <remarks>
/// Energy (binary h ∈ {0,1}^H, weights W stored D×H row-major):
/// Bernoulli visible units: E(v,h) = −bᵀv − cᵀh − vᵀWh, free energy F(v) = −bᵀv − Σ_j softplus(c_j + vᵀW_{·j}).
/// Gaussian visible units (unit variance): E(v,h) = ½‖v − b‖² − cᵀh − vᵀWh, F(v) = ½‖v − b‖² − Σ_j softplus(c_j + vᵀW_{·j}).
/// log p(v) = −F(v) − log Z with Z = Σ_v e^{−F(v)} (an integral for Gaussian units).
/// </remarks>
internal sealed class RbmMachine
{
    /// <summary>Rows per block of the elementwise work (sigmoid, sampling); fixed so results do not depend on thread count.</summary>
    internal const int ElementwiseRowsPerBlock = 10;
    /// <summary>Elementwise work below this many elements runs on the calling thread (a barrier costs more than it saves).</summary>
    private const long ParallelElements = 1 << 15;
    private const double HalfLog2Pi = 0.91893853320467274178;

    public readonly int D, H;
    public readonly RbmVisibleType VisibleType;
    public readonly float[] W, B, C;

    public RbmMachine(int d, int h, RbmVisibleType visibleType)
        : this(d, h, visibleType, new float[NewWeightCount(d, h)], new float[d], new float[h]) { }

    /// <summary>D·H for a machine about to be trained, refused (as the other models' networks are) when the data is
    /// wider than an RBM file holds or the weights exceed what a file holds: the int product wrapped (2^20 columns ×
    /// 4,096 units made a 0-length W, which failed in the GEMM; 3,000 units threw OverflowException), and more columns
    /// than the reader's bound trained to the end and were then reported as a divergence.</summary>
    private static int NewWeightCount(int d, int h)
    {
        PredictSize(d, h).EnsureFitsAFile();
        return d * h;
    }

    /// <summary>Parameters of an RBM of these sizes: W (D×H), b (D), c (H); checked 64-bit arithmetic.</summary>
    internal static long ParameterCount(int d, int h) => Persistence.ModelSizePrediction.Saturating(() => checked((long)d * h + d + h));

    /// <summary>The size of an RBM of these sizes (<see cref="RbmOptions.PredictModelSize"/>, checked again before allocating).</summary>
    internal static Persistence.ModelSizePrediction PredictSize(int d, int h)
        => new("RBM", d, ParameterCount(d, h), FormattableString.Invariant($"an RBM of {h} hidden units (D×H weights; HiddenUnits)"),
            "use fewer columns (e.g. a PCA projection) or fewer HiddenUnits", RbmModel.MaxVisibleUnits);

    public RbmMachine(int d, int h, RbmVisibleType visibleType, float[] w, float[] b, float[] c)
    {
        if (w.Length != d * h || b.Length != d || c.Length != h) throw new ArgumentException("Parameter sizes do not match the layer sizes.");
        D = d; H = h; VisibleType = visibleType; W = w; B = b; C = c;
    }

    public bool Gaussian => VisibleType == RbmVisibleType.Gaussian;

    /// <summary>Copies this machine's parameters into <paramref name="target"/> (same shape).</summary>
    public void CopyTo(RbmMachine target)
    {
        W.CopyTo(target.W, 0); B.CopyTo(target.B, 0); C.CopyTo(target.C, 0);
        target.WeightsVersion++;
    }

    /// <summary>Counts the changes of <see cref="W"/> made by <see cref="CopyTo"/> (a restore) and by the trainer's
    /// steps, so that <see cref="RbmTrainer"/> knows whether the quantized weights it made during its last step still
    /// hold. Code that writes W's elements directly between two steps of one trainer must increment it.</summary>
    internal int WeightsVersion;

    public RbmMachine Clone() => new(D, H, VisibleType, (float[])W.Clone(), (float[])B.Clone(), (float[])C.Clone());

    /// <summary>Whether every parameter is finite and within ±<see cref="Persistence.ModelReader.MaxParameterMagnitude"/>,
    /// the range a model file may hold: a run whose weights grew past it (a Gaussian RBM at too high a rate reached
    /// 7.6e6 while still finite) has diverged as surely as one that overflowed, and its model could not be saved.</summary>
    public bool WithinSavableRange()
        => Persistence.ModelReader.WithinParameterRange(W) && Persistence.ModelReader.WithinParameterRange(B) && Persistence.ModelReader.WithinParameterRange(C);

    /// <summary>pre = v·W + c for n rows (n×H).</summary>
    /// <param name="packedW">W packed by <see cref="Gemm.Pack"/> for a call that scores several blocks (null: packed here).</param>
    /// <param name="quantizedW">W from <see cref="QuantizeWeights"/> (Bernoulli units with AMX), or null: for 0/1 rows the
    /// product is then BinaryGemm's exact one (other rows take the float GEMM).</param>
    /// <param name="onesW">W packed for OnesGemm (<see cref="PackWeights"/>), or null: packed per product.</param>
    public void HiddenPreActivation(ReadOnlySpan<float> v, int n, Span<float> pre, bool parallel, Gemm.PackedOperand? packedW = null,
        BinaryGemm.QuantizedOperand? quantizedW = null, OnesGemm.Panels? onesW = null)
    {
        if (quantizedW is null || !BinaryGemm.TryMultiply(n, D, 1f, v, D, quantizedW, 0f, pre, H, parallel))
            HiddenProduct(v, n, pre, parallel, packedW, onesW);
        RowOps.AddRowVector(pre, n, H, C);
    }

    /// <summary>pre = v·W for n rows (n×H), without the hidden bias.</summary>
    private void HiddenProduct(ReadOnlySpan<float> v, int n, Span<float> pre, bool parallel, Gemm.PackedOperand? packedW, OnesGemm.Panels? onesW = null)
    {
        // A few rows (one per call from a PredictionEngine or a model loaded into ML.NET): the GEMM's arithmetic without
        // its packing and dispatch, which cost more than the product itself at one row.
        if (n < 4 && VectorMath.IsSupported) VectorMath.RowsTimesMatrix(v, n, D, D, W, H, H, pre, H);
        // A block of 0/1 rows on one thread: the sum of the rows of W their ones select (the GEMM's bits, about a third
        // of its work on binarised images); a parallel call keeps the GEMM, which spreads one product over the cores.
        else if (!parallel && !Gaussian && OnesGemm.TryMultiplyRows(v, n, D, W, H, pre, onesW)) return;
        else Gemm.Multiply(false, false, n, H, D, 1f, v, D, W, H, 0f, pre, H, parallel, packedW);
    }

    /// <summary>pre = alpha·h·Wᵀ (n×D), without a bias.</summary>
    /// <param name="packedWt">Wᵀ packed by <see cref="PackWeights"/> (null: packed here).</param>
    /// <param name="onesWt">Wᵀ packed for OnesGemm (<see cref="PackWeights"/>): 0/1 rows h with few ones on one thread are
    /// then sums of Wᵀ's selected rows (the GEMM's bits; AIS's tempered hidden samples have 0.2–0.4 ones on binarized
    /// Fashion-MNIST), or null: the GEMM (without the panels, transposing W per call would cost what the sums save).</param>
    public void VisibleInput(ReadOnlySpan<float> h, int n, float alpha, Span<float> pre, bool parallel, Gemm.PackedOperand? packedWt = null,
        OnesGemm.Panels? onesWt = null)
    {
        if (onesWt is not null && !parallel && !Gaussian && n >= 4 && OnesGemm.TryMultiplyRows(h, n, H, W, D, pre, onesWt, alpha)) return;
        Gemm.Multiply(false, true, n, D, H, alpha, h, H, W, H, 0f, pre, D, parallel, packedWt);
    }

    /// <summary>
    /// W and Wᵀ packed for the float GEMM, for loops of many products with the weights fixed (AIS's temperatures, the
    /// Gibbs sweeps of sampling): a product of 50 chains would otherwise pack all of W (or transpose it) for 50 rows'
    /// work each time, about a sixth of its time. The products give the same bits either way.
    /// </summary>
    public PackedWeights PackWeights()
    {
        Gemm.PackedOperand? w = null, wt = null;
        Gemm.Pack(false, D, H, W, H, ref w);
        Gemm.Pack(true, H, D, W, H, ref wt);
        OnesGemm.Panels? ones = null, onesT = null;
        if (Gaussian || !OnesGemm.TryPack(W, D, H, H, ref ones) || !OnesGemm.TryPack(W, H, D, H, ref onesT, transposeB: true)) ones = onesT = null;
        return new PackedWeights(w!, wt!, ones, onesT);
    }

    /// <summary>W (the right operand of v·W) and Wᵀ (of h·Wᵀ) packed by <see cref="PackWeights"/>, and both again for
    /// OnesGemm's products of 0/1 rows (null: Gaussian units, or not usable here).</summary>
    public sealed record PackedWeights(Gemm.PackedOperand W, Gemm.PackedOperand Wt, OnesGemm.Panels? OnesW, OnesGemm.Panels? OnesWt);

    /// <summary>Free energy of n visible rows (model space) into <paramref name="f"/> (float64).</summary>
    public void FreeEnergy(ReadOnlySpan<float> v, int n, Span<double> f, bool parallel)
        => FreeEnergy(v, n, f, parallel, new float[n * H], new float[Math.Max(H, D)]);

    /// <summary><see cref="FreeEnergy(ReadOnlySpan{float}, int, Span{double}, bool)"/> in the caller's buffers: <paramref name="pre"/>
    /// (at least n·H) and <paramref name="scratch"/> (at least max(H, D)).</summary>
    /// <param name="pre">At least n·H floats, or n·(H + 1) with <paramref name="quantizedW"/>.</param>
    /// <param name="quantizedW">[W | b] from <see cref="QuantizeForScoring(ref BinaryGemm.QuantizedOperand?)"/> (Bernoulli units on a CPU with AMX; the
    /// caller decides, once per call, on its own thread): the product of binary rows is then the exact integer one, the
    /// same bits for a row alone or in any block. Rows that are not all 0/1 take the float GEMM.</param>
    /// <param name="onesW">W packed for OnesGemm (0/1 rows without AMX), or null: packed per product.</param>
    /// <param name="tableW">[W | b] from <see cref="QuantizeForScoring(ref BinaryTableProduct.Operand?)"/> (Bernoulli units on an
    /// AVX-512 CPU without AMX): the same exact product, with the same bits, on the vector unit.</param>
    public void FreeEnergy(ReadOnlySpan<float> v, int n, Span<double> f, bool parallel, Span<float> pre, Span<float> scratch,
        Gemm.PackedOperand? packedW = null, BinaryGemm.QuantizedOperand? quantizedW = null, OnesGemm.Panels? onesW = null,
        BinaryTableProduct.Operand? tableW = null)
    {
        // The exact product's operand is [W | b] (see QuantizeForScoring): column H of its result is v·b.
        if (pre.Length >= n * (H + 1)
            && ((quantizedW is not null && BinaryGemm.TryMultiply(n, D, 1f, v, D, quantizedW, 0f, pre, H + 1, parallel))
                || (tableW is not null && BinaryTableProduct.TryMultiply(v, n, D, tableW, pre, H + 1))))
        {
            for (int r = 0; r < n; r++)
                f[r] = -(double)pre[r * (H + 1) + H] - VectorMath.SumSoftplus(pre.Slice(r * (H + 1), H), C);
            return;
        }
        pre = pre[..(n * H)];
        // The hidden bias is added inside the softplus pass (the bits of adding it to the stored product first).
        HiddenProduct(v, n, pre, parallel, packedW, onesW);
        for (int r = 0; r < n; r++)
            f[r] = VisibleEnergy(v.Slice(r * D, D), B, scratch) - VectorMath.SumSoftplus(pre.Slice(r * H, H), C);
    }

    /// <summary>
    /// [W | b] (D × (H + 1)) quantized for <see cref="FreeEnergy(ReadOnlySpan{float}, int, Span{double}, bool, Span{float}, Span{float}, Gemm.PackedOperand?, BinaryGemm.QuantizedOperand?, OnesGemm.Panels?, BinaryTableProduct.Operand?)"/>:
    /// one exact product gives the hidden inputs and the visible term v·b (one more column, inside the last panel's
    /// padding when H is not a multiple of 32). Bernoulli units only; false if the parameters are not finite.
    /// </summary>
    public bool QuantizeForScoring(ref BinaryGemm.QuantizedOperand? result)
        => !Gaussian && BinaryGemm.TryQuantize(false, D, H + 1, WeightsAndVisibleBias(), H + 1, ref result, parallel: true);

    /// <summary>[W | b] quantized as <see cref="QuantizeForScoring(ref BinaryGemm.QuantizedOperand?)"/> does, for
    /// <see cref="BinaryTableProduct"/> (AVX-512 without AMX).</summary>
    public bool QuantizeForScoring(ref BinaryTableProduct.Operand? result)
        => !Gaussian && BinaryTableProduct.TryQuantize(D, H + 1, WeightsAndVisibleBias(), H + 1, ref result);

    private float[] WeightsAndVisibleBias()
    {
        var wb = new float[D * (H + 1)];
        for (int i = 0; i < D; i++)
        {
            W.AsSpan(i * H, H).CopyTo(wb.AsSpan(i * (H + 1), H));
            wb[i * (H + 1) + H] = B[i];
        }
        return wb;
    }

    /// <summary>
    /// W and Wᵀ quantized for <see cref="BinaryGemm"/> (the products of 0/1 visible rows with W and of 0/1 hidden samples
    /// with Wᵀ), their scales from one pass that finds W's column and row maxima (<paramref name="maxima"/>: H + D floats,
    /// reused). Bernoulli units only; false (both left unusable) if W is not finite.
    /// </summary>
    public bool QuantizeWeights(ref BinaryGemm.QuantizedOperand? w, ref BinaryGemm.QuantizedOperand? wt, ref float[]? maxima)
    {
        if (Gaussian) return false;
        maxima ??= new float[H + D];
        var columnMax = maxima.AsSpan(0, H);
        var rowMax = maxima.AsSpan(H, D);
        return BinaryGemm.Maxima(W, D, H, H, columnMax, rowMax, parallel: true)
            && BinaryGemm.TryQuantize(false, D, H, W, H, ref w, parallel: true, maxima: columnMax)
            && BinaryGemm.TryQuantize(true, H, D, W, H, ref wt, parallel: true, maxima: rowMax);
    }

    /// <summary>Visible part of the free energy: −bᵀv (Bernoulli) or ½‖v − b‖² (Gaussian).</summary>
    private double VisibleEnergy(ReadOnlySpan<float> v, ReadOnlySpan<float> bias, Span<float> scratch)
    {
        if (!Gaussian) return -(double)TensorPrimitives.Dot(v, bias);
        var t = scratch[..D];
        TensorPrimitives.Subtract(v, bias, t);
        return 0.5 * TensorPrimitives.SumOfSquares<float>(t);
    }

    // ------------------------------------------------------------------ Gibbs sampling

    /// <summary>Buffers of one chain block (n rows); not shared between threads.</summary>
    internal sealed class Chains
    {
        public readonly int Rows;
        public readonly float[] V, HiddenPre, HiddenSample, Uniform, VisibleBias;
        public Chains(RbmMachine m, int rows)
        {
            Rows = rows;
            V = new float[rows * m.D];
            HiddenPre = new float[rows * m.H];
            HiddenSample = new float[rows * m.H];
            Uniform = new float[rows * Math.Max(m.D, m.H)];
            VisibleBias = new float[m.D];
        }
    }

    /// <summary>
    /// Hidden layer from a pre-activation at inverse temperature β: <paramref name="probability"/> = σ(β·pre) and
    /// <paramref name="sample"/> ~ Bernoulli(probability). Row blocks run in parallel with a stream forked per block.
    /// <paramref name="probability"/> may alias <paramref name="pre"/>.
    /// </summary>
    /// <paramref name="firstBlock"/> numbers the row blocks of a slice of a larger matrix (their streams are forked by global
    /// block index, so slicing rows across threads does not change the result).
    public void SampleHidden(ReadOnlySpan<float> pre, int n, float beta, Span<float> probability, Span<float> sample, Span<float> uniform, RandomStream random,
        bool parallel = true, int firstBlock = 0)
        => SampleBernoulliRows(pre, n, H, beta, default, probability, sample, uniform, random, parallel, firstBlock);

    /// <summary>
    /// Visible layer given hidden states: mean = <paramref name="bias"/> + β·h·Wᵀ; Bernoulli units are sampled from σ(mean),
    /// Gaussian units as mean + N(0, 1). <paramref name="v"/> receives the samples.
    /// </summary>
    /// <param name="quantizedWt">Wᵀ for BinaryGemm (Bernoulli units with AMX; <paramref name="h"/> is a 0/1 sample), or null:
    /// the float GEMM.</param>
    /// <param name="packedWt">Wᵀ packed by <see cref="PackWeights"/> for the float GEMM (null: packed per call).</param>
    public void SampleVisible(ReadOnlySpan<float> h, int n, float beta, ReadOnlySpan<float> bias, Span<float> v, Span<float> uniform, RandomStream random, bool parallel,
        int firstBlock = 0, BinaryGemm.QuantizedOperand? quantizedWt = null, Gemm.PackedOperand? packedWt = null, OnesGemm.Panels? onesWt = null)
    {
        if (quantizedWt is null || !BinaryGemm.TryMultiply(n, H, beta, h, H, quantizedWt, 0f, v, D, parallel))
            VisibleInput(h, n, beta, v, parallel, packedWt, onesWt);
        if (Gaussian)
        {
            RowOps.AddRowVector(v, n, D, bias);
            ForRowBlocks(v, n, D, random, parallel, firstBlock, static (block, d, rng) =>
            {
                for (int i = 0; i < block.Length; i++) block[i] += (float)rng.NextGaussian();
            });
        }
        else SampleBernoulliRows(v, n, D, 1f, bias, v, v, uniform, random, parallel, firstBlock);
    }

    private delegate void BlockAction(Span<float> block, int width, RandomStream random);

    private static void ForRowBlocks(Span<float> x, int n, int width, RandomStream random, bool parallel, int firstBlock, BlockAction action)
    {
        int blocks = (n + ElementwiseRowsPerBlock - 1) / ElementwiseRowsPerBlock;
        if (!parallel || blocks <= 1 || (long)n * width < ParallelElements)
        {
            for (int b = 0; b < blocks; b++)
            {
                int start = b * ElementwiseRowsPerBlock, rows = Math.Min(ElementwiseRowsPerBlock, n - start);
                action(x.Slice(start * width, rows * width), width, random.Fork((ulong)(firstBlock + b)));
            }
            return;
        }
        unsafe
        {
            fixed (float* p = x)
            {
                var ptr = (IntPtr)p;
                DeepDensityEnvironment.For(0, blocks, b =>
                {
                    int start = b * ElementwiseRowsPerBlock, rows = Math.Min(ElementwiseRowsPerBlock, n - start);
                    var span = new Span<float>((float*)ptr + (long)start * width, rows * width);
                    action(span, width, random.Fork((ulong)(firstBlock + b)));
                });
            }
        }
    }

    private static unsafe void SampleBernoulliRows(ReadOnlySpan<float> pre, int n, int width, float beta, ReadOnlySpan<float> bias,
        Span<float> probability, Span<float> sample, Span<float> uniform, RandomStream random, bool parallel, int firstBlock)
    {
        int blocks = (n + ElementwiseRowsPerBlock - 1) / ElementwiseRowsPerBlock;
        fixed (float* pPre = pre)
        fixed (float* pBias = bias)
        fixed (float* pProb = probability)
        fixed (float* pSample = sample)
        fixed (float* pU = uniform)
        {
            IntPtr a = (IntPtr)pPre, bi = (IntPtr)pBias, pr = (IntPtr)pProb, s = (IntPtr)pSample, u = (IntPtr)pU;
            int biasLength = bias.Length;
            void Block(int b)
            {
                int start = b * ElementwiseRowsPerBlock, rows = Math.Min(ElementwiseRowsPerBlock, n - start);
                long offset = (long)start * width;
                int len = rows * width;
                var src = new ReadOnlySpan<float>((float*)a + offset, len);
                var prob = new Span<float>((float*)pr + offset, len);
                var smp = new Span<float>((float*)s + offset, len);
                var uni = new Span<float>((float*)u + offset, len);
                var bv = new ReadOnlySpan<float>((float*)bi, biasLength);
                for (int r = 0; r < rows; r++) VectorMath.Sigmoid(src.Slice(r * width, width), bv, beta, prob.Slice(r * width, width)); // σ(β·(pre + bias))
                // Row by row from the block's stream: a fill's values depend on its length (RandomStream.FillUniform), so one
                // fill of the block would give row 0 other uniforms in a block of 1 row than of 4, and a draw of 1 sample
                // would not be the first row of a draw of 700 (a chain block holds min(chains, count) rows).
                var rng = random.Fork((ulong)(firstBlock + b));
                for (int r = 0; r < rows; r++) rng.FillUniform(uni.Slice(r * width, width));
                Bernoulli(prob, uni, smp);
            }
            if (!parallel || blocks <= 1 || (long)n * width < ParallelElements) for (int b = 0; b < blocks; b++) Block(b);
            else DeepDensityEnvironment.For(0, blocks, Block);
        }
    }

    /// <summary>dst[i] = u[i] &lt; p[i] ? 1 : 0 (vectorised).</summary>
    internal static void Bernoulli(ReadOnlySpan<float> p, ReadOnlySpan<float> u, Span<float> dst)
    {
        int i = 0, n = p.Length;
        if (Vector.IsHardwareAccelerated)
        {
            int w = Vector<float>.Count;
            for (; i <= n - w; i += w)
            {
                var mask = Vector.LessThan(new Vector<float>(u.Slice(i, w)), new Vector<float>(p.Slice(i, w)));
                Vector.ConditionalSelect(mask, Vector<float>.One, Vector<float>.Zero).CopyTo(dst.Slice(i, w));
            }
        }
        for (; i < n; i++) dst[i] = u[i] < p[i] ? 1f : 0f;
    }

    /// <summary>One block Gibbs sweep v → h → v at β = 1 for the chain block.</summary>
    /// <param name="quantizedW">W and Wᵀ from <see cref="QuantizeWeights"/> (Bernoulli units with AMX), or null: the
    /// float GEMM. Both products multiply 0/1 samples, so they are then BinaryGemm's exact ones.</param>
    /// <param name="packed">W and Wᵀ from <see cref="PackWeights"/> for the float GEMM, or null: packed per product.</param>
    public void GibbsSweep(Chains ch, RandomStream random, bool parallel,
        BinaryGemm.QuantizedOperand? quantizedW = null, BinaryGemm.QuantizedOperand? quantizedWt = null,
        PackedWeights? packed = null)
    {
        int n = ch.Rows;
        HiddenPreActivation(ch.V, n, ch.HiddenPre, parallel, packed?.W, quantizedW, packed?.OnesW);
        SampleHidden(ch.HiddenPre, n, 1f, ch.HiddenPre, ch.HiddenSample, ch.Uniform, random.Fork(1));
        SampleVisible(ch.HiddenSample, n, 1f, B, ch.V, ch.Uniform, random.Fork(2), parallel, quantizedWt: quantizedWt, packedWt: packed?.Wt, onesWt: packed?.OnesWt);
    }

    /// <summary>Initial chain states drawn from the visible-bias-only model (W = 0) with bias <paramref name="bias"/>.</summary>
    public void InitializeFromBias(Chains ch, ReadOnlySpan<float> bias, RandomStream random)
    {
        int n = ch.Rows;
        for (int r = 0; r < n; r++) bias.CopyTo(ch.V.AsSpan(r * D, D));
        if (Gaussian)
        {
            for (int i = 0; i < n * D; i++) ch.V[i] += (float)random.NextGaussian();
        }
        else
        {
            var v = ch.V.AsSpan(0, n * D);
            VectorMath.Sigmoid(v, default, 1f, v);
            var u = ch.Uniform.AsSpan(0, n * D);
            for (int r = 0; r < n; r++) random.FillUniform(u.Slice(r * D, D));   // row by row: see SampleBernoulliRows
            Bernoulli(v, u, v);
        }
    }

    // ------------------------------------------------------------------ partition function

    /// <summary>
    /// Exact log Z by enumerating every state of the visible layer (<paramref name="enumerateVisible"/>, Bernoulli only) or
    /// of the hidden layer, 2^k states in blocks of 1024 as a matrix: one GEMM plus softplus row sums per block, blocks in
    /// parallel, log-sum-exp accumulated in float64 (per block, then combined in block order: thread-count independent).
    /// </summary>
    public double ExactLogPartition(bool enumerateVisible)
    {
        if (enumerateVisible && Gaussian) throw new InvalidOperationException("Gaussian visible units cannot be enumerated.");
        int k = enumerateVisible ? D : H;
        if (k > 30) throw new InvalidOperationException(FormattableString.Invariant($"Enumerating 2^{k} states is not feasible."));
        int blockBits = Math.Min(k, 10);
        int blockStates = 1 << blockBits;
        int blocks = 1 << (k - blockBits);
        var blockLse = new double[blocks];
        Parallel.For(0, blocks, DeepDensityEnvironment.ParallelOptions(),
            () => (States: new float[blockStates * k], Pre: new float[blockStates * (enumerateVisible ? H : D)],
                   Values: new double[blockStates]),
            (block, _, ws) =>
            {
                long high = (long)block << blockBits;
                for (int s = 0; s < blockStates; s++)
                {
                    long index = high | (long)s;
                    var row = ws.States.AsSpan(s * k, k);
                    for (int j = 0; j < k; j++) row[j] = (index >> j & 1) != 0 ? 1f : 0f;
                }
                if (enumerateVisible)
                {
                    FreeEnergy(ws.States, blockStates, ws.Values, parallel: false);
                    for (int s = 0; s < blockStates; s++) ws.Values[s] = -ws.Values[s];
                }
                else HiddenStateLogWeights(ws.States, blockStates, ws.Pre, ws.Values);
                blockLse[block] = LogSumExp(ws.Values);
                return ws;
            }, _ => { });
        double lse = LogSumExp(blockLse);
        // Gaussian: ∫ exp(−½‖v−b‖² + vᵀWh) dv contributes (2π)^{D/2}.
        return Gaussian ? lse + D * HalfLog2Pi : lse;
    }

    /// <summary>
    /// log Σ_v e^{−E(v,h)} for hidden states h (rows of <paramref name="states"/>):
    /// Bernoulli: cᵀh + Σ_i softplus(b_i + (Wh)_i); Gaussian: cᵀh + ½‖b + Wh‖² − ½‖b‖² (without the (2π)^{D/2} factor).
    /// </summary>
    private void HiddenStateLogWeights(ReadOnlySpan<float> states, int n, Span<float> pre, Span<double> values)
    {
        VisibleInput(states, n, 1f, pre, parallel: false);
        if (Gaussian) RowOps.AddRowVector(pre, n, D, B);
        double halfBias = Gaussian ? 0.5 * TensorPrimitives.SumOfSquares<float>(B) : 0;
        for (int s = 0; s < n; s++)
        {
            var row = pre.Slice(s * D, D);
            double hidden = TensorPrimitives.Dot(states.Slice(s * H, H), C);
            values[s] = Gaussian ? hidden + 0.5 * TensorPrimitives.SumOfSquares<float>(row) - halfBias
                : hidden + VectorMath.SumSoftplus(row, B);
        }
    }

    internal static double LogSumExp(ReadOnlySpan<double> x)
    {
        double max = double.NegativeInfinity;
        foreach (var v in x) if (v > max) max = v;
        if (!double.IsFinite(max)) return max;
        double sum = 0;
        foreach (var v in x) sum += Math.Exp(v - max);
        return max + Math.Log(sum);
    }

    /// <summary>The default AIS schedule of <paramref name="count"/> inverse temperatures: uniform on [0, 0.5], [0.5, 0.9] and
    /// [0.9, 1] in proportions 500 : 4000 : 10000 (Salakhutdinov &amp; Murray 2008), β₀ = 0 and β_last = 1.</summary>
    public static double[] DefaultAisSchedule(int count)
    {
        if (count < 2) throw new ArgumentOutOfRangeException(nameof(count));
        int intervals = count - 1;
        int n1 = Math.Max(1, (int)Math.Round(intervals * 500.0 / 14500));
        int n2 = Math.Max(1, (int)Math.Round(intervals * 4000.0 / 14500));
        int n3 = intervals - n1 - n2;
        if (n3 < 1) return Enumerable.Range(0, count).Select(i => (double)i / intervals).ToArray();
        var betas = new double[count];
        int k = 0;
        for (int i = 0; i < n1; i++) betas[k++] = 0.5 * i / n1;
        for (int i = 0; i < n2; i++) betas[k++] = 0.5 + 0.4 * i / n2;
        for (int i = 0; i <= n3; i++) betas[k++] = 0.9 + 0.1 * i / n3;
        betas[^1] = 1.0;
        return betas;
    }

    /// <summary>AIS runs annealed together on one thread (fixed, so estimates do not depend on the thread count).</summary>
    internal const int AisRunsPerPart = 50;

    /// <summary>Result of annealed importance sampling.</summary>
    internal readonly record struct AisResult(double LogZ, double StandardError, double LogZLower, double LogZUpper, double[] LogWeights);

    /// <summary>
    /// Annealed importance sampling of log Z (Salakhutdinov &amp; Murray 2008). Base model A: W = 0, visible bias
    /// <paramref name="baseBias"/> (e.g. from the training marginals); intermediate distributions
    /// p*_β(v) = exp(−[½‖v‖²] + ((1−β)b_A + βb)ᵀv) Π_j (1 + e^{β(c_j + vᵀW_{·j})}) with the transition a block Gibbs sweep of the
    /// tempered joint. Runs advance in fixed parts of 50 as one matrix each (one thread per part, parts in parallel).
    /// The standard error of log Z is the delta-method sd(w)/(√M·mean(w)), or +∞ (unknown) when the runs' weights have
    /// fewer than <see cref="ImportanceSampler.MinEffectiveSamples"/> effective samples; the interval is
    /// log(mean(w) ± 3 se(mean(w))).
    /// </summary>
    public AisResult EstimateLogPartitionAis(ReadOnlySpan<float> baseBias, int runs, double[] betas, RandomStream random, CancellationToken cancellationToken = default)
    {
        if (baseBias.Length != D) throw new ArgumentException("Base bias length must equal the visible dimension.");
        if (betas.Length < 2 || betas[0] != 0 || betas[^1] != 1) throw new ArgumentException("The schedule must run from β = 0 to β = 1.");
        var baseB = baseBias.ToArray();
        var biasDiff = new float[D];
        TensorPrimitives.Subtract(B, baseB, biasDiff);
        var logW = new double[runs];
        // Runs are independent: fixed parts of AisRunsPerPart runs anneal on one thread each, with no barrier per β.
        int parts = (runs + AisRunsPerPart - 1) / AisRunsPerPart;
        // One part (at most 50 runs) would leave the other cores idle: it then parallelises inside its products and
        // sampling instead. Both split rows into fixed blocks, so the estimate is the same bits either way.
        bool inner = parts == 1;
        // Bernoulli units with AMX (decided here, on the calling thread): every product of the annealing multiplies a 0/1
        // sample by the fixed W or Wᵀ, so both are quantized once for all temperatures and the products are BinaryGemm's
        // exact ones (β scales the hidden inputs inside Σ softplus and the visible input as alpha).
        BinaryGemm.QuantizedOperand? quantizedW = null, quantizedWt = null;
        float[]? maxima = null;
        if (!BinaryGemm.IsUsable || !QuantizeWeights(ref quantizedW, ref quantizedWt, ref maxima)) quantizedW = quantizedWt = null;
        // The float GEMM's operands: W and Wᵀ packed once for every temperature and part.
        var packed = quantizedW is null ? PackWeights() : null;
        void Part(int part)
        {
            int first = part * AisRunsPerPart, n = Math.Min(AisRunsPerPart, runs - first);
            var partRandom = random.Fork(0xA150, (ulong)part);
            var ch = new Chains(this, n);
            var tempered = new float[n * H];
            var lw = logW.AsSpan(first, n);
            InitializeFromBias(ch, baseB, partRandom.Fork(0x1A17));
            for (int k = 1; k < betas.Length; k++)
            {
                if ((k & 255) == 0) cancellationToken.ThrowIfCancellationRequested();
                float bPrev = (float)betas[k - 1], bCur = (float)betas[k];
                HiddenPreActivation(ch.V, n, ch.HiddenPre, parallel: inner, packed?.W, quantizedW, packed?.OnesW);
                // log p*_k(v) − log p*_{k−1}(v) at the current state.
                for (int r = 0; r < n; r++)
                {
                    var pre = ch.HiddenPre.AsSpan(r * H, H);
                    lw[r] += (bCur - bPrev) * (double)TensorPrimitives.Dot(biasDiff, ch.V.AsSpan(r * D, D))
                        + VectorMath.SumSoftplus(pre, default, bCur) - (double)VectorMath.SumSoftplus(pre, default, bPrev);
                }
                if (k == betas.Length - 1) break;
                // Transition that leaves p*_k invariant.
                var step = partRandom.Fork((ulong)k);
                SampleHidden(ch.HiddenPre, n, bCur, tempered, ch.HiddenSample, ch.Uniform, step.Fork(1), parallel: inner);
                for (int i = 0; i < D; i++) ch.VisibleBias[i] = (1 - bCur) * baseB[i] + bCur * B[i];
                SampleVisible(ch.HiddenSample, n, bCur, ch.VisibleBias, ch.V, ch.Uniform, step.Fork(2), parallel: inner, quantizedWt: quantizedWt, packedWt: packed?.Wt,
                    onesWt: packed?.OnesWt);
            }
        }
        if (parts == 1) Part(0); else DeepDensityEnvironment.For(0, parts, Part);
        int n = runs;
        // log Z_A: 2^H from the (untouched) hidden units times the visible normaliser of the base model.
        double logZBase = H * Math.Log(2);
        if (Gaussian) logZBase += D * HalfLog2Pi + 0.5 * TensorPrimitives.SumOfSquares<float>(baseB);
        else foreach (var b in baseB) logZBase += b > 0 ? b + Math.Log(1 + Math.Exp(-b)) : Math.Log(1 + Math.Exp(b));
        // p*_1 = e^{−F(v) + ½‖b‖²} for Gaussian units (the bias square of F is not in the tempered family).
        double offset = Gaussian ? -0.5 * TensorPrimitives.SumOfSquares<float>(B) : 0;

        double max = double.NegativeInfinity;
        foreach (var v in logW) max = Math.Max(max, v);
        double mean = 0, m2 = 0;
        for (int i = 0; i < n; i++)
        {
            double w = Math.Exp(logW[i] - max);
            double delta = w - mean;
            mean += delta / (i + 1);
            m2 += delta * (w - mean);
        }
        double sd = Math.Sqrt(m2 / (n - 1));
        double seMean = sd / Math.Sqrt(n);
        double logZ = logZBase + offset + max + Math.Log(mean);
        // The delta method cannot exceed about 1 however wrong log Z is (a blown-up model read "1.27e14 ± 1"): when one
        // run's weight dominates, the standard error is +∞, unknown, by IWAE's and NVIL's rule.
        double se = ImportanceSampler.EffectiveSampleSize(logW) >= ImportanceSampler.MinEffectiveSamples ? seMean / mean : double.PositiveInfinity;
        double lower = mean - 3 * seMean > 0 ? logZBase + offset + max + Math.Log(mean - 3 * seMean) : double.NegativeInfinity;
        double upper = logZBase + offset + max + Math.Log(mean + 3 * seMean);
        return new AisResult(logZ, se, lower, upper, logW);
    }
}
