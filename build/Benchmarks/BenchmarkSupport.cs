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
            if (!args[i].StartsWith("--", StringComparison.Ordinal)) throw new ArgumentException($"Unexpected argument '{args[i]}'.");
            string key = args[i][2..];
            if (i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal)) a._values[key] = args[++i];
            else a._values[key] = "true";
        }
        return a;
    }

    public int Int(string key, int fallback) => _values.TryGetValue(key, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
    public double Double(string key, double fallback) => _values.TryGetValue(key, out var v) ? double.Parse(v, CultureInfo.InvariantCulture) : fallback;
    public string String(string key, string fallback) => _values.TryGetValue(key, out var v) ? v : fallback;
    public bool Flag(string key) => _values.TryGetValue(key, out var v) && v != "false";
}

/// <summary>Runs peer programs (Python references) and times things.</summary>
public static class Peer
{
    /// <summary>Debian's python (has numpy, torch, sklearn from apt), not a pyenv shim.</summary>
    public static string Python => File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

    /// <summary>Path of a peer script copied next to the benchmark binary.</summary>
    public static string Script(string name) => Path.Combine(AppContext.BaseDirectory, "Peers", name);

    /// <summary>
    /// Runs a Python peer with 2 BLAS/torch threads; returns its stdout lines. Peers print "KEY value" lines that the
    /// caller parses with <see cref="ReadValues"/>.
    /// </summary>
    public static (int ExitCode, string Stdout, string Stderr) RunPython(string script, string arguments, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(Python, $"\"{script}\" {arguments}")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var v in new[] { "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS" }) psi.Environment[v] = "2";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit((int)timeout.TotalMilliseconds)) { p.Kill(true); return (-1, stdout.Result, "timeout"); }
        return (p.ExitCode, stdout.Result, stderr.Result);
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
