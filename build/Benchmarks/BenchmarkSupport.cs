using System.Diagnostics;
using System.Globalization;

namespace DeepDensity.Benchmarks;

/// <summary>One benchmark sub-command.</summary>
public interface IBenchmark
{
    string Name { get; }
    string Description { get; }
    int Run(BenchmarkArgs args);
}

/// <summary>--key value / --flag options.</summary>
public sealed class BenchmarkArgs
{
    private readonly Dictionary<string, string> _values = new(StringComparer.OrdinalIgnoreCase);

    public static BenchmarkArgs Parse(string[] args)
    {
        var a = new BenchmarkArgs();
        for (int i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal)) throw new UsageException($"Unexpected argument '{args[i]}'.");
            string key = args[i][2..];
            if (i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal)) a._values[key] = args[++i];
            else a._values[key] = "true";
        }
        return a;
    }

    public int Int(string key, int fallback) => !_values.TryGetValue(key, out var v) ? fallback
        : int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int i) ? i : throw new UsageException($"--{key}: '{v}' is not a whole number.");
    public double Double(string key, double fallback) => !_values.TryGetValue(key, out var v) ? fallback
        : double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double x) ? x : throw new UsageException($"--{key}: '{v}' is not a number.");
    public string String(string key, string fallback) => _values.TryGetValue(key, out var v) ? v : fallback;
    public bool Flag(string key) => _values.TryGetValue(key, out var v) && v != "false";
}

/// <summary>A command line a benchmark cannot run: the program prints its message (no stack trace) and exits with 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>Runs peer programs (Python references) and times things.</summary>
public static class Peer
{
    /// <summary>Debian's python (has numpy, torch, sklearn from apt), not a pyenv shim.</summary>
    public static string Python => File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

    /// <summary>Path of a peer script copied next to the benchmark binary.</summary>
    public static string Script(string name) => Path.Combine(AppContext.BaseDirectory, "Peers", name);

    /// <summary>
    /// Runs a Python peer on <paramref name="threads"/> BLAS/OpenMP/torch threads and returns its output. Peers print
    /// "KEY value" lines that the caller parses with <see cref="ReadValues"/>. The peer's process (only) gets
    /// OMP_WAIT_POLICY=PASSIVE (sleeping, not spinning, OpenMP waits: on a shared machine spinning threads starve
    /// each other) and the OpenBLAS kernel of <see cref="OpenBlasCoreType"/>; the BLAS libraries, kernels and thread
    /// counts it actually ran on (its PEER_INFO line, from Peers/peer_setup.py) are printed here.
    /// </summary>
    public static (int ExitCode, string Stdout, string Stderr) RunPython(string script, string arguments, TimeSpan timeout, int threads = 2)
    {
        using var p = Process.Start(PeerStartInfo(script, arguments, threads, interactive: false))!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit((int)timeout.TotalMilliseconds)) { p.Kill(true); return (-1, stdout.Result, "timeout"); }
        return (p.ExitCode, stdout.Result, ReportPeerInfo(script, threads, stderr.Result));
    }

    /// <summary>
    /// Starts a Python peer that talks over its standard input and output (a serving peer, for paired rounds that
    /// alternate its timings with ours), with the environment of <see cref="RunPython"/>. Close its standard input to
    /// end it, then pass its standard error to <see cref="ReportPeerInfo"/>.
    /// </summary>
    public static Process StartPython(string script, string arguments, int threads = 2) =>
        Process.Start(PeerStartInfo(script, arguments, threads, interactive: true))!;

    /// <summary>Prints the peer's PEER_INFO line (libraries, kernels, threads) and returns the rest of its standard error.</summary>
    public static string ReportPeerInfo(string script, int threads, string stderr)
    {
        var info = stderr.Split('\n').Where(l => l.StartsWith("PEER_INFO ", StringComparison.Ordinal)).Select(l => l[10..].Trim());
        Console.WriteLine($"peer {Path.GetFileName(script)} ({threads} thread{(threads == 1 ? "" : "s")}): {string.Join(" | ", info)}");
        return string.Join('\n', stderr.Split('\n').Where(l => !l.StartsWith("PEER_INFO ", StringComparison.Ordinal)));
    }

    private static ProcessStartInfo PeerStartInfo(string script, string arguments, int threads, bool interactive)
    {
        var psi = new ProcessStartInfo(Python, $"\"{script}\" {arguments}")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = interactive, UseShellExecute = false,
        };
        string t = threads.ToString(CultureInfo.InvariantCulture);
        foreach (var v in new[] { "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "PEER_THREADS" }) psi.Environment[v] = t;
        psi.Environment["OMP_WAIT_POLICY"] = "PASSIVE";
        foreach (var (name, value) in PeerMallocSettings) psi.Environment[name] = value;
        // Pre-set tuning variables of this shell must not decide the peer's kernel; OpenBLAS detects its L2 itself.
        psi.Environment.Remove("OPENBLAS_L2_SIZE");
        if (OpenBlasCoreType.Value.CoreType is { } coreType) psi.Environment["OPENBLAS_CORETYPE"] = coreType;
        else psi.Environment.Remove("OPENBLAS_CORETYPE");
        return psi;
    }

    /// <summary>
    /// glibc malloc settings every peer runs with: keep freed memory for reuse (a 32 MB mmap threshold, glibc's largest,
    /// and no trimming) rather than returning each large temporary to the kernel and faulting fresh pages in for the
    /// next. Tensors and arrays of a few MB are allocated per operation; on this workplace's VMs a page fault is so
    /// dear that the RNADE peer's scoring (10,000 rows, 25 MB temporaries) ran at 1,836 rows/s with glibc's defaults
    /// and 34,000 with these, and a practitioner would run it with a caching allocator (jemalloc, tcmalloc) anyway.
    /// Printed with the peer's kernel line.
    /// </summary>
    public static readonly (string Name, string Value)[] PeerMallocSettings =
    [
        ("MALLOC_MMAP_THRESHOLD_", "33554432"), ("MALLOC_TRIM_THRESHOLD_", "4294967296"), ("MALLOC_TOP_PAD_", "268435456"),
    ];

    /// <summary>
    /// Runs a PyTorch peer on 1 and on 2 threads and returns the faster run (small-batch PyTorch is often faster on
    /// one thread), printing both. <paramref name="seconds"/> reads the time to compare from the peer's values.
    /// </summary>
    /// <param name="eachRun">Called with every successful run's values and thread count: a figure other than the one
    /// compared (the RBM's scoring) can take its own best thread count.</param>
    public static (int ExitCode, string Stdout, string Stderr, int Threads) RunTorchBest(string script, string arguments,
        TimeSpan timeout, Func<Dictionary<string, double>, double> seconds, Action<Dictionary<string, double>, int>? eachRun = null)
    {
        (int ExitCode, string Stdout, string Stderr, int Threads)? best = null;
        double bestSeconds = double.PositiveInfinity;
        foreach (int threads in new[] { 1, 2 })
        {
            var (code, stdout, stderr) = RunPython(script, arguments, timeout, threads);
            if (code != 0) { best ??= (code, stdout, stderr, threads); continue; }
            var values = ReadValues(stdout);
            eachRun?.Invoke(values, threads);
            double s = seconds(values);
            // The compared figure (seconds, or seconds per example) can be tiny: print it with significant digits.
            Console.WriteLine($"peer {Path.GetFileName(script)} on {threads} thread{(threads == 1 ? "" : "s")}: {s:G4} (lower is faster)");
            if (s < bestSeconds || best is { ExitCode: not 0 }) { bestSeconds = s; best = (code, stdout, stderr, threads); }
        }
        Console.WriteLine($"peer {Path.GetFileName(script)}: reference = the faster, {best!.Value.Threads} thread(s)");
        return best.Value;
    }

    /// <summary>
    /// The OPENBLAS_CORETYPE peers run with: null when OpenBLAS's own detection already picks the best kernel for
    /// this CPU, else the best kernel the CPU supports (SkylakeX for AVX-512 F/BW/DQ/VL, Intel or AMD; Haswell or Zen
    /// for AVX2/FMA). Debian's OpenBLAS 0.3.21 does not know recent CPUs and falls back to Prescott (SSE3) kernels.
    /// </summary>
    public static readonly Lazy<(string? CoreType, string Note)> OpenBlasCoreType = new(() =>
    {
        var flags = CpuFlags();
        string vendor = File.Exists("/proc/cpuinfo") && File.ReadAllText("/proc/cpuinfo").Contains("AuthenticAMD") ? "AMD" : "Intel";
        string? best = new[] { "avx512f", "avx512bw", "avx512dq", "avx512vl" }.All(flags.Contains) ? "SkylakeX"
            : flags.Contains("avx2") && flags.Contains("fma") ? (vendor == "AMD" ? "Zen" : "Haswell")
            : null;
        string? detected = ProbeOpenBlasKernel();
        string note;
        if (best is null || detected is null) { best = null; note = $"OpenBLAS kernel: {detected ?? "unknown (no numpy/threadpoolctl)"}, auto-detected"; }
        else if (string.Equals(detected, best, StringComparison.OrdinalIgnoreCase) || (best == "SkylakeX" && detected.Equals("Cooperlake", StringComparison.OrdinalIgnoreCase)))
        { best = null; note = $"OpenBLAS kernel: {detected}, auto-detected (best for this CPU)"; }
        else note = $"OpenBLAS auto-detects {detected} on this CPU ({vendor}, {string.Join(' ', flags.Where(f => f.StartsWith("avx512", StringComparison.Ordinal)).Order())}); peers run with OPENBLAS_CORETYPE={best}";
        Console.WriteLine(note);
        return (best, note);
    });

    private static HashSet<string> CpuFlags()
    {
        if (!File.Exists("/proc/cpuinfo")) return new HashSet<string>();
        var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal)) ?? "";
        return new HashSet<string>(line.Split(':', 2).Last().Split(' ', StringSplitOptions.RemoveEmptyEntries));
    }

    /// <summary>The kernel OpenBLAS picks by itself (threadpoolctl's architecture with no OPENBLAS_CORETYPE), or null.</summary>
    private static string? ProbeOpenBlasKernel()
    {
        try
        {
            var psi = new ProcessStartInfo(Python, "-c \"import numpy, threadpoolctl; print(next(i['architecture'] for i in threadpoolctl.threadpool_info() if i['internal_api'] == 'openblas'))\"")
            { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            psi.Environment.Remove("OPENBLAS_CORETYPE");
            psi.Environment.Remove("OPENBLAS_L2_SIZE");
            using var p = Process.Start(psi)!;
            string output = p.StandardOutput.ReadToEnd().Trim();
            p.StandardError.ReadToEnd();
            return p.WaitForExit(60_000) && p.ExitCode == 0 && output.Length > 0 ? output : null;
        }
        catch (System.ComponentModel.Win32Exception) { return null; }
    }

    /// <summary>Parses "KEY value" lines.</summary>
    public static Dictionary<string, double> ReadValues(string stdout)
    {
        var d = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in stdout.Split('\n'))
        {
            var parts = line.Trim().Split(' ', 2, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 2 && double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var v)) d[parts[0]] = v;
        }
        return d;
    }

    /// <summary>Writes a matrix as raw little-endian float32 (rows × cols) for a peer to np.fromfile.</summary>
    public static string WriteMatrix(Microsoft.ML.DeepDensity.Data.RowMatrix m, string name)
    {
        var dir = Path.Combine(Path.GetTempPath(), "deepdensity-bench");
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, name + ".f32");
        using var fs = File.Create(path);
        fs.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(m.AsSpan()));
        return path;
    }

    /// <summary>
    /// The fastest of the calls of <paramref name="action"/> made after one warm-up call, until at least
    /// <paramref name="minSeconds"/> have been spent and <paramref name="minCalls"/> calls made; in seconds. The warm-up
    /// and the repetition let the JIT promote the scoring loops first, and the best call is the least disturbed one. The
    /// Python peers time their scoring the same way.
    /// </summary>
    public static double BestCallSeconds(Action action, double minSeconds, int minCalls = 3)
    {
        action();
        double best = double.PositiveInfinity, total = 0;
        for (int calls = 0; calls < minCalls || total < minSeconds; calls++)
        {
            long t0 = Stopwatch.GetTimestamp();
            action();
            double seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            best = Math.Min(best, seconds); total += seconds;
        }
        return best;
    }

    /// <summary>The median of <paramref name="values"/> (the mean of the middle two for an even count).</summary>
    public static double Median(IEnumerable<double> values) => Quantile(values, 0.5);

    /// <summary>The <paramref name="q"/>-quantile of <paramref name="values"/>, linear between order statistics (q = 0.5:
    /// the median, the mean of the middle two for an even count).</summary>
    public static double Quantile(IEnumerable<double> values, double q)
    {
        var sorted = values.Order().ToArray();
        double position = q * (sorted.Length - 1);
        int below = (int)Math.Floor(position);
        int above = Math.Min(below + 1, sorted.Length - 1);
        return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
    }

    /// <summary>Median wall time of <paramref name="repeats"/> runs of <paramref name="action"/>, in seconds.</summary>
    public static double MedianSeconds(Action action, int repeats)
    {
        var times = new double[repeats];
        for (int i = 0; i < repeats; i++)
        {
            var sw = Stopwatch.StartNew();
            action();
            times[i] = sw.Elapsed.TotalSeconds;
        }
        Array.Sort(times);
        return times[repeats / 2];
    }
}
