using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.DeepDensity.Numerics;

namespace DeepDensity.Benchmarks;

/// <summary>
/// SGEMM throughput of <see cref="Gemm.Multiply(bool, bool, int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, Span{float}, int, bool, Gemm.PackedOperand?, ReadOnlySpan{float})"/>
/// against OpenBLAS (numpy, 2 threads, its best kernel for the CPU: see <see cref="Peer.OpenBlasCoreType"/>) on square sizes and on the shapes the models use, all four transpositions.
/// </summary>
public sealed class GemmBenchmark : IBenchmark
{
    public string Name => "gemm";
    public string Description => "SGEMM GFLOP/s vs OpenBLAS via numpy (--seconds per shape, --quick, --shapes m:n:k[:T|N:T|N],..., --no-peer, --serial [--cpu-time], --path avx512|avx2|portable, --paired ROUNDS)";

    private static readonly int[] Squares = { 64, 128, 256, 512, 1024, 2048 };
    // (m, n, k) of the products the models run: RNADE blocks (rows × 3K × H and its backward), dense layers of the
    // 784-dimensional models (batch 100, hidden 500/200).
    private static readonly (int M, int N, int K)[] ModelShapes =
    {
        (50, 30, 50), (100, 30, 50), (50, 100, 30), (100, 50, 30), (50, 30, 100),
        (784, 500, 100), (100, 500, 784), (5000, 200, 784),
        // Issue #18's model targets: 784-500 layers at batch 100 both ways, RNADE-sized, 500×200 dense.
        (100, 784, 500), (100, 63, 150), (500, 200, 200),
    };

    public int Run(BenchmarkArgs args)
    {
        double seconds = args.Double("seconds", 0.3);
        bool quick = args.Flag("quick");
        bool serial = args.Flag("serial");
        var shapes = new List<(int M, int N, int K, bool TA, bool TB)>();
        foreach (var s in quick ? new[] { 64, 256, 1024 } : Squares) shapes.Add((s, s, s, false, false));
        foreach (var s in quick ? new[] { 256 } : new[] { 256, 1024, 2048 })
        {
            shapes.Add((s, s, s, true, false)); shapes.Add((s, s, s, false, true)); shapes.Add((s, s, s, true, true));
        }
        foreach (var (m, n, k) in quick ? ModelShapes[..4] : ModelShapes)
            foreach (var (ta, tb) in new[] { (false, false), (true, false), (false, true), (true, true) })
                shapes.Add((m, n, k, ta, tb));

        if (args.String("shapes", "") is { Length: > 0 } custom)
        {
            // --shapes m:n:k[:TA:TB],... replaces the default list (all four transpositions when TA/TB are omitted).
            shapes.Clear();
            foreach (var spec in custom.Split(','))
            {
                var f = spec.Split(':');
                int m = int.Parse(f[0], CultureInfo.InvariantCulture), n = int.Parse(f[1], CultureInfo.InvariantCulture), k = int.Parse(f[2], CultureInfo.InvariantCulture);
                if (f.Length >= 5) shapes.Add((m, n, k, f[3] == "T", f[4] == "T"));
                else foreach (var (ta, tb) in new[] { (false, false), (true, false), (false, true), (true, true) }) shapes.Add((m, n, k, ta, tb));
            }
        }

        int pairedRounds = args.Int("paired", 0);
        if (pairedRounds > 0 && args.Flag("no-peer")) throw new UsageException("--paired alternates ours with the peer: it cannot run with --no-peer.");
        if (pairedRounds > 0 && serial) throw new UsageException("--paired compares both sides on both cores: it cannot run with --serial.");
        Dictionary<string, double>? peer = null;
        if (!args.Flag("no-peer") && pairedRounds == 0)
        {
            var (code, stdout, stderr) = Peer.RunPython(Peer.Script("gemm_numpy.py"), $"{PeerShapes(shapes)} {seconds.ToString(CultureInfo.InvariantCulture)}", TimeSpan.FromMinutes(15));
            if (code != 0) Console.WriteLine($"peer failed ({code}): {stderr.Trim()}");
            else
            {
                peer = Peer.ReadValues(stdout);
                Console.WriteLine("peer: numpy.matmul (OpenBLAS sgemm; library, kernel and threads on the line above)");
            }
        }

        SimdLevel? level = args.String("path", "") switch
        {
            "" => null, // the library's own choice (AVX2 for small products even on AVX-512 CPUs)
            "avx512" => SimdLevel.Avx512,
            "avx2" => SimdLevel.Avx2,
            "portable" => SimdLevel.Portable,
            var other => throw new UsageException($"--path {other}: expected avx512, avx2 or portable."),
        };
        using var forced = level is { } pinned ? KernelPath.Force(pinned) : default;
        Console.WriteLine($"ours: Gemm.Multiply, {(level is null ? "automatic" : KernelPath.Current.ToString())} kernel (CPU best {KernelPath.Best}), " +
                          $"{(serial ? "serial" : $"parallel allowed, {Environment.ProcessorCount} cores")}");
        if (pairedRounds > 0) return RunPaired(shapes, pairedRounds, args.Double("seconds", 0.1));
        // cpu% = process CPU time / wall time while timing ours: ~200% when both cores work, ~100% when one does.
        Console.WriteLine($"{"shape m×n×k",-18} {"op",-3} {"ours GFLOP/s",12} {"cpu%",5} {"OpenBLAS",10} {"ratio",7}");
        var ratios = new List<double>();
        for (int i = 0; i < shapes.Count; i++)
        {
            var (m, n, k, ta, tb) = shapes[i];
            var (ours, cpuShare) = Measure(m, n, k, ta, tb, seconds, !serial, serial && args.Flag("cpu-time"));
            string op = (ta ? "T" : "N") + (tb ? "T" : "N");
            string line = $"{m}×{n}×{k}".PadRight(18) + $" {op,-3} {ours,12:F1} {cpuShare * 100,5:F0}";
            if (peer is not null && peer.TryGetValue($"GFLOPS_{i}", out var theirs))
            {
                line += $" {theirs,10:F1} {ours / theirs,7:F2}";
                ratios.Add(ours / theirs);
            }
            Console.WriteLine(line);
        }
        if (ratios.Count > 0)
            Console.WriteLine($"geometric mean ratio ours/OpenBLAS over {ratios.Count} shapes: {Math.Exp(ratios.Average(Math.Log)):F2}");
        return 0;
    }

    private static double BestSeconds(Action action, int repeats)
    {
        double best = double.MaxValue;
        for (int i = 0; i < repeats; i++)
        {
            var sw = Stopwatch.StartNew();
            action();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return best;
    }

    /// <summary>Median process CPU time (for serial tuning on a shared machine: other processes do not inflate it).</summary>
    private static double MedianCpuSeconds(Action action, int repeats)
    {
        var times = new double[repeats];
        var process = Process.GetCurrentProcess();
        for (int i = 0; i < repeats; i++)
        {
            process.Refresh();
            var start = process.TotalProcessorTime;
            action();
            process.Refresh();
            times[i] = (process.TotalProcessorTime - start).TotalSeconds;
        }
        Array.Sort(times);
        return times[repeats / 2];
    }

    /// <summary>One product C = op(A)·op(B) of the shape on random operands, as an action to time.</summary>
    private static Action Product(int m, int n, int k, bool ta, bool tb, bool parallel)
    {
        var rng = new Random(1);
        var a = new float[m * k]; var b = new float[k * n]; var c = new float[m * n];
        for (int i = 0; i < a.Length; i++) a[i] = (float)(rng.NextDouble() - 0.5);
        for (int i = 0; i < b.Length; i++) b[i] = (float)(rng.NextDouble() - 0.5);
        int lda = ta ? m : k, ldb = tb ? k : n;
        return () => Gemm.Multiply(ta, tb, m, n, k, 1f, a, lda, b, ldb, 0f, c, n, parallel);
    }

    /// <summary>
    /// --paired R: per shape, R rounds of one timed sample of ours and one of OpenBLAS's (numpy serving in a second
    /// process), the same number of products each, in alternating order; each round's ratio, then their median and
    /// quartiles. This VM's speed drifts by ±15 % over minutes, so best-of runs of the two sides minutes apart cannot
    /// tell 0.85× from 0.95×; a pair's two samples, a fraction of a second apart, see the same machine.
    /// </summary>
    private static int RunPaired(List<(int M, int N, int K, bool TA, bool TB)> shapes, int rounds, double seconds)
    {
        string script = Peer.Script("gemm_numpy.py");
        using var peer = Peer.StartPython(script, $"{PeerShapes(shapes)} --serve");
        var peerErrors = peer.StandardError.ReadToEndAsync();
        if (peer.StandardOutput.ReadLine() != "READY")
        {
            peer.WaitForExit();
            Console.WriteLine($"peer failed ({peer.ExitCode}): {peerErrors.Result.Trim()}");
            return 1;
        }
        double PeerSeconds(int shape, int calls)
        {
            peer.StandardInput.WriteLine($"{shape} {calls}");
            peer.StandardInput.Flush();
            string? answer = peer.StandardOutput.ReadLine();
            if (answer is null || !double.TryParse(answer, NumberStyles.Float, CultureInfo.InvariantCulture, out double s))
                throw new InvalidOperationException($"The numpy peer stopped answering ({answer ?? "end of output"}).");
            return s;
        }

        Console.WriteLine($"paired rounds: {rounds} a shape, ~{seconds:G3} s a sample; GFLOP/s are the medians over the rounds, " +
                          "ratio = median of the rounds' ours/OpenBLAS [quartiles]");
        Console.WriteLine($"{"shape m×n×k",-18} {"op",-3} {"ours GFLOP/s",12} {"OpenBLAS",10} {"ratio",7}  quartiles");
        var medians = new List<double>();
        for (int i = 0; i < shapes.Count; i++)
        {
            var (m, n, k, ta, tb) = shapes[i];
            var once = Product(m, n, k, ta, tb, parallel: true);
            for (int w = 0; w < 3; w++) once();
            PeerSeconds(i, 3);
            var sw = Stopwatch.StartNew();
            once();
            int calls = Math.Max(1, (int)Math.Ceiling(seconds / Math.Max(sw.Elapsed.TotalSeconds, 1e-7)));
            double Ours()
            {
                long t0 = Stopwatch.GetTimestamp();
                for (int c = 0; c < calls; c++) once();
                return Stopwatch.GetElapsedTime(t0).TotalSeconds;
            }
            var ours = new double[rounds]; var theirs = new double[rounds]; var ratio = new double[rounds];
            for (int r = 0; r < rounds; r++)
            {
                if (r % 2 == 0) { ours[r] = Ours(); theirs[r] = PeerSeconds(i, calls); }
                else { theirs[r] = PeerSeconds(i, calls); ours[r] = Ours(); }
                ratio[r] = theirs[r] / ours[r];
            }
            double flops = 2.0 * m * n * k * calls / 1e9;
            double median = Peer.Quantile(ratio, 0.5);
            medians.Add(median);
            Console.WriteLine($"{m}×{n}×{k}".PadRight(18) + $" {(ta ? "T" : "N") + (tb ? "T" : "N"),-3} {flops / Peer.Quantile(ours, 0.5),12:F1} " +
                              $"{flops / Peer.Quantile(theirs, 0.5),10:F1} {median,7:F2}  {Peer.Quantile(ratio, 0.25):F2}–{Peer.Quantile(ratio, 0.75):F2}");
        }
        peer.StandardInput.Close();
        peer.WaitForExit();
        Peer.ReportPeerInfo(script, 2, peerErrors.Result);
        Console.WriteLine($"geometric mean of the paired median ratios over {medians.Count} shapes: {Math.Exp(medians.Average(Math.Log)):F2}");
        return 0;
    }

    /// <summary>The shapes as gemm_numpy.py reads them: m:n:k:TA:TB, comma-separated.</summary>
    private static string PeerShapes(List<(int M, int N, int K, bool TA, bool TB)> shapes)
        => string.Join(",", shapes.Select(s => $"{s.M}:{s.N}:{s.K}:{(s.TA ? "T" : "N")}:{(s.TB ? "T" : "N")}"));

    private static (double GFlops, double CpuShare) Measure(int m, int n, int k, bool ta, bool tb, double seconds, bool parallel, bool cpuTime)
    {
        var once = Product(m, n, k, ta, tb, parallel);
        for (int i = 0; i < 3; i++) once();
        int reps = 1;
        while (true)
        {
            var sw = Stopwatch.StartNew();
            for (int r = 0; r < reps; r++) once();
            if (sw.Elapsed.TotalSeconds > seconds / 10 || reps > 1 << 20) break;
            reps *= 2;
        }
        // Best of 7 samples (same as the peer): on a shared machine the fastest sample is the stable estimate of speed.
        var process = Process.GetCurrentProcess();
        var cpu0 = process.TotalProcessorTime;
        var wall = Stopwatch.StartNew();
        double t = cpuTime
            ? MedianCpuSeconds(() => { for (int r = 0; r < reps; r++) once(); }, 5) / reps
            : BestSeconds(() => { for (int r = 0; r < reps; r++) once(); }, 7) / reps;
        process.Refresh();
        double cpuShare = (process.TotalProcessorTime - cpu0).TotalSeconds / wall.Elapsed.TotalSeconds;
        return (2.0 * m * n * k / t / 1e9, cpuShare);
    }
}
