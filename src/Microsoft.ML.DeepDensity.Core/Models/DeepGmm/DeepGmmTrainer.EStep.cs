using System.Diagnostics;
using MathNet.Numerics.LinearAlgebra;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Numerics;
using Microsoft.ML.DeepDensity.Randomness;

namespace Microsoft.ML.DeepDensity.Models.DeepGmm;

/// <summary>Deep GMM EM: the E-step (exact responsibilities or best paths, or the paper's coordinate-ascent heuristic).</summary>
internal sealed partial class DeepGmmTrainer
{
    // ------------------------------------------------------------------ E-step

    /// <summary>Result of an E-step: mean objective per row (exact log-likelihood or best-path bound) and the switch rate.</summary>
    public readonly record struct EStepResult(double MeanLogLikelihood, bool IsExact, double SwitchRate);

    public EStepResult EStep(int iteration, CancellationToken ct)
    {
        if (_options.UsesExactEStep) return EStepExact(_net, ct);
        return EStepHeuristic(iteration, ct);
    }

    /// <summary>Scores every path of every row under <paramref name="net"/> (the trained network, or the one a streamed
    /// EM's last E-step saw): hard assignments (argmax) or responsibilities, and the exact log-likelihood.</summary>
    internal EStepResult EStepExact(DeepGmmNetwork net, CancellationToken ct)
    {
        bool soft = _options.Em == DeepGmmEmKind.Soft;
        int pc = net.PathCount;
        if (soft) Responsibilities ??= new float[(long)_n * pc <= int.MaxValue ? _n * pc : throw new InvalidOperationException("Responsibility table too large.")];
        int blocks = (_n + Block - 1) / Block;
        var sums = new double[blocks];
        Parallel.For(0, blocks, DeepDensityEnvironment.ParallelOptions(cancellationToken: ct),
            () => new DeepGmmNetwork.ScoringWorkspace(net, Block),
            (b, _, ws) =>
            {
                int start = b * Block, m = Math.Min(Block, _n - start);
                net.ScoreAllPaths(_x.Values.AsSpan(start * _d, m * _d), m, ws);
                double s = 0;
                for (int r = 0; r < m; r++)
                {
                    var scores = ws.Scores.AsSpan(r * pc, pc);
                    double lse = RowOps.LogSumExp(scores, ws.Exps);
                    s += lse;
                    if (soft)
                    {
                        var resp = Responsibilities!.AsSpan((start + r) * pc, pc);
                        System.Numerics.Tensors.TensorPrimitives.Subtract(scores, (float)lse, resp);
                        EagerTensorMath.Exp(resp, resp);
                    }
                    else
                    {
                        int best = 0;
                        for (int p = 1; p < pc; p++) if (scores[p] > scores[best]) best = p;
                        Assignment[start + r] = best;
                    }
                }
                sums[b] = s;
                return ws;
            }, _ => { });
        double total = 0;
        foreach (var s in sums) total += s;
        return new EStepResult(total / _n, true, 0);
    }

    /// <summary>
    /// The paper's heuristic: per row, one coordinate-ascent pass from its previous best path, then passes from a random
    /// path; the better one is kept. The switch rate is the share of rows whose random restart won.
    /// </summary>
    private EStepResult EStepHeuristic(int iteration, CancellationToken ct)
    {
        int blocks = (_n + Block - 1) / Block;
        var sums = new double[blocks];
        var switches = new int[blocks];
        var root = _random.Fork(0xE57E9, (ulong)iteration);
        int layers = _net.LayerCount;
        int warmPasses = _options.HeuristicWarmPasses, randomPasses = _options.HeuristicRandomPasses;
        Parallel.For(0, blocks, DeepDensityEnvironment.ParallelOptions(cancellationToken: ct), b =>
        {
            var rng = root.Fork((ulong)b);
            var ws = new DeepGmmNetwork.RowWorkspace(_net);
            var warm = new int[layers];
            var fresh = new int[layers];
            int start = b * Block, m = Math.Min(Block, _n - start), switched = 0;
            double s = 0;
            for (int r = start; r < start + m; r++)
            {
                _x.Row(r).CopyTo(ws.Levels[layers]);
                if (Assignment[r] >= 0) _net.PathDigits(Assignment[r], warm);
                else for (int j = 0; j < layers; j++) warm[j] = rng.NextInt(_net.Components[j]);
                double warmScore = double.NegativeInfinity;
                for (int pass = 0; pass < warmPasses; pass++) warmScore = _net.CoordinatePass(warm, ws);
                double best = warmScore;
                int bestPath = _net.PathIndex(warm);
                if (randomPasses > 0)
                {
                    for (int j = 0; j < layers; j++) fresh[j] = rng.NextInt(_net.Components[j]);
                    double freshScore = double.NegativeInfinity;
                    for (int pass = 0; pass < randomPasses; pass++) freshScore = _net.CoordinatePass(fresh, ws);
                    if (freshScore > warmScore) { best = freshScore; bestPath = _net.PathIndex(fresh); switched++; }
                }
                Assignment[r] = bestPath;
                s += best;
            }
            sums[b] = s; switches[b] = switched;
        });
        double total = 0; long sw = 0;
        for (int b = 0; b < blocks; b++) { total += sums[b]; sw += switches[b]; }
        return new EStepResult(total / _n, false, (double)sw / _n);
    }

    /// <summary>Best path of each row by exhaustive search (tests / diagnostics).</summary>
    internal static int[] ExactBestPaths(DeepGmmNetwork net, RowMatrix x)
    {
        var result = new int[x.Rows];
        var ws = new DeepGmmNetwork.ScoringWorkspace(net, Block);
        int pc = net.PathCount;
        for (int start = 0; start < x.Rows; start += Block)
        {
            int m = Math.Min(Block, x.Rows - start);
            net.ScoreAllPaths(x.Values.AsSpan(start * x.Columns, m * x.Columns), m, ws);
            for (int r = 0; r < m; r++)
            {
                int best = 0;
                for (int p = 1; p < pc; p++) if (ws.Scores[r * pc + p] > ws.Scores[r * pc + best]) best = p;
                result[start + r] = best;
            }
        }
        return result;
    }
}
