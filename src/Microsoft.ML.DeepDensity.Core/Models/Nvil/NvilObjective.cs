using Microsoft.ML.DeepDensity.Layers;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;
using Microsoft.ML.DeepDensity.Training;

namespace Microsoft.ML.DeepDensity.Models.Nvil;

/// <summary>
/// One NVIL step (Mnih &amp; Gregor 2014, Algorithm 1) on a minibatch: sample h ~ q(h | x), the learning signal
/// l = log p(x, h) − log q(h | x), the input-dependent baseline C_ψ(x), running mean c and variance v of l − C_ψ(x)
/// (smoothing α), the normalised signal (l − C_ψ(x) − c) / max(1, √v), and the gradients: ∇θ log p(x, h) for the model,
/// signal · ∇φ log q(h | x) for the inference network, and the regression of C_ψ(x) on l − c for the baseline.
/// </summary>
/// <remarks>
/// With local learning signals, inference layer l gets l_l = Σ_{i ≥ l} log p-terms − Σ_{i ≥ l} log q-terms (the terms
/// that depend on h_l), with its own baseline output and statistics. Rows are processed in fixed blocks in parallel in
/// two passes, because the signal statistics are over the whole minibatch: pass 1 samples and scores every block, the
/// statistics are updated in a fixed order, pass 2 back-propagates. Blocks run in waves of <see cref="BlocksPerWave"/>
/// (cancellation is checked between waves); a batch of more than one wave redraws each block's samples from the same
/// stream in pass 2 rather than keeping every block's workspace, so memory is bounded by the wave. Gradients are reduced in block order, so the result
/// does not depend on the thread count. The statistics are training state (<see cref="ITrainingStateOwner"/>): the
/// training driver snapshots and restores them with the parameters (best epoch, divergence recovery). They start from the first minibatch's mean and variance.
/// </remarks>
internal sealed class NvilObjective : IGradientObjective, ITrainingStateOwner
{
    private readonly NvilNetwork _net;
    private readonly int _k, _rowsPerBlock, _signals;
    private readonly bool _useBaseline, _center, _normalize;
    private readonly double _alpha;
    private readonly List<NvilNetwork.Workspace> _workspaces = new();
    private readonly List<Mlp.Workspace> _baselineWorkspaces = new();
    private BlockGradients? _gradients;
    private readonly List<float[][]> _inferenceScale = new();
    private readonly List<float[]> _modelScale = new(), _baselineGradient = new();
    private readonly CancellationToken _cancellationToken;
    /// <summary>Per-step scratch kept between steps: each block's bound sum, and each signal's centre and scale.</summary>
    private double[] _blockSums = Array.Empty<double>();
    private readonly float[] _signalCenter, _signalScale;
    /// <summary>Blocks run at once (<see cref="BlockWaves.BlocksPerWave"/>): memory is bounded by the wave, not the batch
    /// size, and cancellation is checked between waves.</summary>
    internal const int BlocksPerWave = BlockWaves.BlocksPerWave;
    /// <summary>Tests: the wave size actually used (default <see cref="BlocksPerWave"/>).</summary>
    internal int WaveBlocks { get; set; } = BlocksPerWave;
    /// <summary>Signals minus baseline, a[l][j] for sample row j of the minibatch.</summary>
    private float[][] _a;

    /// <summary>Benchmark check against the peer: per layer, the uniforms of every sample row of the next minibatch
    /// (row-major, as <see cref="NvilNetwork.Workspace.U"/>), used instead of the blocks' streams when set.</summary>
    internal float[][]? FixedUniforms { get; set; }

    /// <summary>Benchmark check: learning signal l minus the baseline, a[j] for the last gradient's sample rows.</summary>
    internal ReadOnlySpan<float> SignalMinusBaseline(int signal, int sampleRows) => _a[signal].AsSpan(0, sampleRows);

    /// <summary>Running mean c and variance v per learning signal (training state).</summary>
    public readonly double[] Mean, Variance;
    public bool StatisticsInitialized { get; private set; }
    /// <summary>The signal is divided by max(1, √v).</summary>
    public bool NormalizesSignal => _normalize;
    /// <summary>C_ψ(x): x → tanh hidden → one output per learning signal (null when the baseline is off).</summary>
    public readonly Mlp? Baseline;

    public NvilObjective(NvilNetwork net, NvilOptions options, RandomStream baselineInit, CancellationToken cancellationToken = default)
    {
        _cancellationToken = cancellationToken;
        _net = net; _k = options.SamplesPerExample; _rowsPerBlock = options.RowsPerBlock;
        _signals = options.LocalLearningSignals ? net.Layers : 1;
        _useBaseline = options.InputDependentBaseline; _center = options.CenterSignal; _normalize = options.NormalizeSignal;
        _alpha = options.SignalSmoothing;
        foreach (var p in net.Parameters.Items) Parameters.Add(p);
        if (_useBaseline)
        {
            Baseline = new Mlp("baseline", net.D, new[] { options.BaselineHiddenUnits }, _signals, Activation.Tanh);
            Baseline.InitializeGlorot(baselineInit);
            Baseline.Register(Parameters);
        }
        Mean = new double[_signals]; Variance = new double[_signals];
        _signalCenter = new float[_signals]; _signalScale = new float[_signals];
        _a = new float[_signals][];
        for (int l = 0; l < _signals; l++) _a[l] = Array.Empty<float>();
    }

    /// <summary>Network parameters, then the baseline's.</summary>
    public ParameterSet Parameters { get; } = new();

    /// <summary>A copy of the running statistics (c, v, started), restored together with the parameters when training
    /// rolls back to an earlier epoch.</summary>
    public object CaptureState()
    {
        var s = new double[2 * _signals + 1];
        Mean.CopyTo(s, 0); Variance.CopyTo(s, _signals);
        s[^1] = StatisticsInitialized ? 1 : 0;
        return s;
    }

    /// <summary>Puts back statistics from <see cref="CaptureState"/> (which stays usable).</summary>
    public void RestoreState(object state)
    {
        var s = (double[])state;
        Array.Copy(s, 0, Mean, 0, _signals);
        Array.Copy(s, _signals, Variance, 0, _signals);
        StatisticsInitialized = s[^1] != 0;
    }

    public double ComputeGradient(ReadOnlySpan<float> rows, int count, RandomStream random) => Run(rows, count, random, withGradient: true);

    /// <summary>Sum over rows of the mean over the row's samples of log p(x, h) − log q(h | x) (the variational bound).</summary>
    public double Evaluate(ReadOnlySpan<float> rows, int count, RandomStream random) => Run(rows, count, random, withGradient: false);

    private unsafe double Run(ReadOnlySpan<float> rows, int count, RandomStream random, bool withGradient)
    {
        int blocks = (count + _rowsPerBlock - 1) / _rowsPerBlock;
        if (rows.Length < (long)count * _net.D) throw new ArgumentException(FormattableString.Invariant($"{count} rows of {_net.D} values need {(long)count * _net.D}; {rows.Length} were given."), nameof(rows));
        // Each block packs the weights it multiplies by itself: one pack shared by the blocks ran 11-12 % slower per
        // step at batch 100 (the other core reads it from this one's cache, and the shared pack was a region of its own).
        // The rows are read in place (pinned for the parallel blocks), not copied (as IwaeObjective).
        fixed (float* pinned = rows) return Run((nint)pinned, count, random, withGradient, blocks);
    }

    private unsafe double Run(nint rowsAddress, int count, RandomStream random, bool withGradient, int blocks)
    {
        int d = _net.D, k = _k, m = count * k;
        int wave = Math.Min(blocks, WaveBlocks);
        EnsureScratch(wave, blocks, m, withGradient);
        if (_blockSums.Length < blocks) _blockSums = new double[blocks];
        var sums = _blockSums;
        bool parallelInside = blocks == 1;
        var center = _signalCenter;
        var scale = _signalScale;

        // Pass 1: samples, signals, baseline.
        void Score(int b, int slot)
        {
            int start = b * _rowsPerBlock, n = Math.Min(_rowsPerBlock, count - start), mb = n * k;
            var ws = _workspaces[slot];
            var x = new ReadOnlySpan<float>((float*)rowsAddress + (long)start * d, n * d);
            if (FixedUniforms is { } fixedU)
                for (int l = 0; l < _net.Layers; l++) fixedU[l].AsSpan(start * k * _net.Latent[l], mb * _net.Latent[l]).CopyTo(ws.U[l]);
            else _net.FillUniforms(ws, n, k, random.Fork((ulong)b));
            _net.Forward(x, n, k, ws, parallelInside);
            double s = 0;
            for (int j = 0; j < mb; j++) s += ws.LogW[j];
            sums[b] = s / k;
            if (!withGradient) return;
            var baseline = _useBaseline ? Baseline!.Forward(x, n, _baselineWorkspaces[slot], parallelInside) : default;
            for (int l = 0; l < _signals; l++)
            {
                var a = _a[l].AsSpan(start * k, mb);
                if (l == 0) ws.LogW.AsSpan(0, mb).CopyTo(a);
                else
                {
                    // Local signal of layer l: drop the terms that do not depend on h_l (those of the layer below).
                    var below = _a[l - 1].AsSpan(start * k, mb);
                    for (int j = 0; j < mb; j++) a[j] = below[j] - ws.LogP[l - 1][j] + ws.LogQ[l - 1][j];
                }
            }
            if (_useBaseline)
                for (int l = 0; l < _signals; l++)
                {
                    var a = _a[l].AsSpan(start * k, mb);
                    for (int j = 0; j < mb; j++) a[j] -= baseline[j / k * _signals + l];
                }
        }
        BlockWaves.Run(blocks, Score, null, _cancellationToken, WaveBlocks);
        double total = 0;
        for (int b = 0; b < blocks; b++) total += sums[b];
        if (!withGradient) return total;

        // Minibatch statistics → running c, v → centring and scale of the signal, in a fixed order.
        bool finite = true;
        for (int l = 0; l < _signals; l++)
        {
            var a = _a[l].AsSpan(0, m);
            double mean = 0;
            foreach (var v in a) mean += v;
            mean /= m;
            double variance = 0;
            foreach (var v in a) variance += (v - mean) * (v - mean);
            variance /= m;
            // A non-finite batch (a diverging step, which the training loop rolls back) must not poison the statistics.
            if (!double.IsFinite(variance)) finite = false;
            else if (!StatisticsInitialized) { Mean[l] = mean; Variance[l] = variance; }
            else { Mean[l] = _alpha * Mean[l] + (1 - _alpha) * mean; Variance[l] = _alpha * Variance[l] + (1 - _alpha) * variance; }
            center[l] = _center ? (float)Mean[l] : 0f;
            scale[l] = _normalize ? (float)(1 / Math.Max(1, Math.Sqrt(Variance[l]))) : 1f;
        }
        StatisticsInitialized |= finite;

        // Pass 2: gradients of the negative mean objective.
        float perSample = -1f / m;
        void Backward(int b, int slot, GradientBuffers g)
        {
            int start = b * _rowsPerBlock, n = Math.Min(_rowsPerBlock, count - start), mb = n * k;
            var ws = _workspaces[slot];
            var x = new ReadOnlySpan<float>((float*)rowsAddress + (long)start * d, n * d);
            var modelScale = _modelScale[slot].AsSpan(0, mb);
            modelScale.Fill(perSample);
            var inference = _inferenceScale[slot];
            for (int l = 0; l < _net.Layers; l++)
            {
                int sig = _signals == 1 ? 0 : l;
                var a = _a[sig].AsSpan(start * k, mb);
                var dst = inference[l].AsSpan(0, mb);
                for (int j = 0; j < mb; j++) dst[j] = perSample * (a[j] - center[sig]) * scale[sig];
            }
            _net.Backward(x, n, k, ws, modelScale, inference, g, parallelInside);
            if (!_useBaseline) return;
            // ½ (l − C(x) − c)² per sample: ∂/∂C = −(a − c); the row's k samples share C(x).
            var dc = _baselineGradient[slot].AsSpan(0, n * _signals);
            dc.Clear();
            for (int l = 0; l < _signals; l++)
            {
                var a = _a[l].AsSpan(start * k, mb);
                for (int j = 0; j < mb; j++) dc[j / k * _signals + l] += perSample * (a[j] - center[l]);
            }
            Baseline!.Backward(x, n, _baselineWorkspaces[slot], dc, g, default, allowParallel: parallelInside, accumulateParameters: false);
        }
        // One wave: the workspaces still hold pass 1. More: each wave draws its blocks' samples again (same streams, so the
        // same samples and signals) before back-propagating, which bounds memory by the wave and lets cancellation in.
        var gradients = _gradients!;
        int waveSize = WaveBlocks;
        BlockWaves.Run(blocks, (b, slot) =>
        {
            if (blocks > waveSize) Score(b, slot);
            Backward(b, slot, gradients.For(slot, firstWave: b < waveSize));
        }, gradients.Reduce, _cancellationToken, waveSize);
        return total;
    }

    private void EnsureScratch(int wave, int blocks, int m, bool withGradient)
    {
        int rowsK = _rowsPerBlock * _k;
        while (_workspaces.Count < wave)
        {
            _workspaces.Add(new NvilNetwork.Workspace(_net, _rowsPerBlock, _k, forTraining: true));
            if (Baseline is not null) _baselineWorkspaces.Add(Baseline.CreateWorkspace(_rowsPerBlock));
            _modelScale.Add(new float[rowsK]);
            _baselineGradient.Add(new float[_rowsPerBlock * _signals]);
            var inf = new float[_net.Layers][];
            for (int l = 0; l < inf.Length; l++) inf[l] = new float[rowsK];
            _inferenceScale.Add(inf);
        }
        if (withGradient)
        {
            _gradients ??= new BlockGradients(Parameters);
            _gradients.Ensure(blocks, WaveBlocks);
            for (int l = 0; l < _signals; l++) if (_a[l].Length < m) _a[l] = new float[m];
        }
    }
}
