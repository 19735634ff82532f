using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace DeepDensity.Benchmarks;

/// <summary>
/// One command for every table the README quotes (issue #18): runs each headline benchmark in its own process (fresh
/// JIT and memory; one that fails does not stop the rest), one after another, and writes to <c>--out</c>:
/// <c>&lt;name&gt;.log</c> (the full output), <c>tables.md</c> (machine, load, then every markdown table and the peers'
/// BLAS/kernel lines and RESULT lines of each run) and <c>results.json</c> (the same, machine-readable: command, exit
/// code, seconds, load before and after, peer and RESULT lines, tables as rows of cells). Meant for a quiet machine: the load average is recorded
/// before and after each run so that a disturbed run can be seen. <c>--quick</c> runs each at a smoke-test size.
/// </summary>
public sealed class AllBenchmarks : IBenchmark
{
    public string Name => "all";
    public string Description => "every README benchmark in turn, tables to --out DIR (tables.md, results.json, logs); --only a,b --quick --list";

    /// <summary>The README's benchmarks: name, program ("bench" = this one, "mlnet" = build/Benchmarks.MLNet), arguments, smoke-test arguments.</summary>
    private static readonly (string Name, string Program, string Args, string Quick)[] Runs =
    {
        ("gemm", "bench", "gemm --paired 10", "gemm --quick --seconds 0.05 --no-peer"),
        ("rnade", "bench", "rnade --minutes 4", "rnade --dataset digits --minutes 0.2 --max-epochs 2 --no-peer"),
        ("deepgmm", "bench", "deepgmm", "deepgmm --dataset digits --digits-grid 2 --digits-layers 2,K --digits-deep-grid 2 " +
            "--digits-ridges 1e-1 --digits-shrinkages 0 --digits-n-init 1 --iters 3 --deep-iters 3 --no-peer"),
        ("rbm", "bench", "rbm", "rbm --epochs 1 --train 2000 --hidden 50 --ais-runs 10 --ais-betas 200 --repeats 1 --no-peers"),
        ("rbm-defaults", "bench", "rbm-defaults --seeds 1,2,3,4 --epochs 20 --only defaults,former,constant,plain",
            "rbm-defaults --seeds 1 --epochs 1 --train 2000 --only defaults --no-peer"),
        // latent-defaults (the IWAE's and NVIL's defaults against the plain alternatives) is not one of these: it is a
        // quality study, not a README table, and its two seeds of every variant take over an hour on 2 cores.
        ("iwae", "bench", "iwae", "iwae --epochs 1 --train 2000 --test 100 --eval-k 50 --no-peer"),
        ("nvil", "bench", "nvil --test 10000", "nvil --epochs 1 --train 2000 --test 200 --valid 200 --eval-k 20 --no-peer"),
        ("nvil-seed2", "bench", "nvil --seed 2 --test 2000", "nvil --seed 2 --epochs 1 --train 2000 --test 200 --valid 200 --eval-k 20 --no-peer"),
        ("nvil-seed3", "bench", "nvil --seed 3 --test 2000", "nvil --seed 3 --epochs 1 --train 2000 --test 200 --valid 200 --eval-k 20 --no-peer"),
        ("rnnrnade", "bench", "rnnrnade", "rnnrnade --seed 1 --epochs 2 --no-peer"),
        ("threads", "bench", "threads --scale 10", "threads --scale 0.05"),
        ("mlnet", "mlnet", "--rows 10000 --predict 2000 --epochs 10 --repeat 3", "--rows 500 --predict 100 --epochs 1 --repeat 1"),
    };

    public int Run(BenchmarkArgs args)
    {
        if (args.Flag("list"))
        {
            foreach (var r in Runs) Console.WriteLine($"{r.Name,-16} {Command(r, quick: false)}");
            return 0;
        }
        bool quick = args.Flag("quick");
        string outDir = Path.GetFullPath(args.String("out", Path.Combine("bench-results", DateTime.UtcNow.ToString("yyyyMMdd-HHmm"))));
        var only = args.String("only", "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var unknown = only.Where(o => Runs.All(r => r.Name != o)).ToArray();
        if (unknown.Length > 0)
        {
            Console.Error.WriteLine($"unknown benchmark(s) {string.Join(", ", unknown)}; --list shows them");
            return 2;
        }
        Directory.CreateDirectory(outDir);
        string machine = Machine.Describe();
        Console.WriteLine($"machine: {machine}\nwriting to {outDir}");
        var results = new List<RunResult>();
        foreach (var r in Runs.Where(r => only.Length == 0 || only.Contains(r.Name)))
        {
            string command = Command(r, quick);
            string before = Load();
            Console.WriteLine($"\n=== {r.Name}: {command}   (load {before})");
            var clock = Stopwatch.StartNew();
            var (code, output) = Execute(r, quick);
            double seconds = clock.Elapsed.TotalSeconds;
            File.WriteAllText(Path.Combine(outDir, r.Name + ".log"), output);
            var lines = output.Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
            results.Add(new RunResult(r.Name, command, code, Math.Round(seconds, 1), before, Load(),
                lines.Where(l => l.TrimStart().StartsWith("peer", StringComparison.Ordinal)).ToArray(),
                lines.Where(l => l.TrimStart().StartsWith("RESULT", StringComparison.Ordinal)).Select(l => l.Trim()).ToArray(), Tables(lines)));
            Console.WriteLine($"=== {r.Name}: exit {code}, {seconds:F0} s");
        }
        var report = new Report(DateTime.UtcNow.ToString("u"), machine, quick, results);
        File.WriteAllText(Path.Combine(outDir, "results.json"), JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }));
        File.WriteAllText(Path.Combine(outDir, "tables.md"), Markdown(report));
        Console.WriteLine($"\nwrote {Path.Combine(outDir, "tables.md")} and results.json; {results.Count(x => x.ExitCode != 0)} of {results.Count} runs failed");
        return results.All(x => x.ExitCode == 0) ? 0 : 1;
    }

    private static string Command((string Name, string Program, string Args, string Quick) r, bool quick)
        => (r.Program == "mlnet" ? "dotnet run -c Release --project build/Benchmarks.MLNet -- " : "dotnet run -c Release --project build/Benchmarks -- ")
           + (quick ? r.Quick : r.Args);

    /// <summary>Runs one benchmark as a child process, echoing and capturing its output (stdout and stderr interleaved).</summary>
    private static (int ExitCode, string Output) Execute((string Name, string Program, string Args, string Quick) r, bool quick)
    {
        string arguments = quick ? r.Quick : r.Args;
        ProcessStartInfo psi;
        if (r.Program == "bench")
        {
            // This program again, by its own entry assembly (no rebuild).
            string dll = typeof(AllBenchmarks).Assembly.Location;
            psi = new ProcessStartInfo(Environment.ProcessPath ?? "dotnet", $"\"{dll}\" {arguments}");
        }
        else
        {
            string project = Path.Combine(RepositoryRoot(), "build", "Benchmarks.MLNet");
            psi = new ProcessStartInfo("dotnet", $"run -c Release --project \"{project}\" -- {arguments}");
        }
        psi.RedirectStandardOutput = true; psi.RedirectStandardError = true; psi.UseShellExecute = false;
        var output = new StringBuilder();
        using var p = new Process { StartInfo = psi };
        void Line(string? s) { if (s is null) return; lock (output) { output.AppendLine(s); Console.WriteLine(s); } }
        p.OutputDataReceived += (_, e) => Line(e.Data);
        p.ErrorDataReceived += (_, e) => Line(e.Data);
        p.Start();
        p.BeginOutputReadLine(); p.BeginErrorReadLine();
        p.WaitForExit();
        return (p.ExitCode, output.ToString());
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "DeepDensity.ML.sln"))) return dir.FullName;
        return Directory.GetCurrentDirectory();
    }

    /// <summary>Every markdown table in the output: consecutive lines starting with '|', separator rows dropped.</summary>
    private static List<string[][]> Tables(string[] lines)
    {
        var tables = new List<string[][]>();
        var current = new List<string[]>();
        foreach (var raw in lines.Append(""))
        {
            string line = raw.Trim();
            // A table may be labelled on its header line ("200: | epoch | ..."): the label is dropped.
            int bar = line.IndexOf('|');
            if (bar > 0 && bar <= 24 && line[..bar].TrimEnd().EndsWith(':')) line = line[bar..];
            if (line.StartsWith('|'))
            {
                var cells = line.Trim('|').Split('|').Select(c => c.Trim()).ToArray();
                if (!cells.All(c => c.Length > 0 && c.Trim(':', '-').Length == 0)) current.Add(cells);
            }
            else if (current.Count > 0) { tables.Add(current.ToArray()); current = new(); }
        }
        return tables;
    }

    private static string Markdown(Report report)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"# Benchmark tables ({report.Finished})").AppendLine();
        sb.AppendLine($"machine: {report.Machine}" + (report.Quick ? "  \n**--quick: smoke-test sizes, not figures to quote**" : "")).AppendLine();
        foreach (var r in report.Runs)
        {
            sb.AppendLine($"## {r.Name}").AppendLine();
            sb.AppendLine($"`{r.Command}` — exit {r.ExitCode}, {r.Seconds:F0} s, load before {r.LoadBefore}, after {r.LoadAfter}").AppendLine();
            foreach (var p in r.PeerLines) sb.AppendLine("    " + p.Trim());
            foreach (var l in r.ResultLines) sb.AppendLine("    " + l);
            if (r.PeerLines.Length + r.ResultLines.Length > 0) sb.AppendLine();
            foreach (var t in r.Tables)
            {
                sb.AppendLine("| " + string.Join(" | ", t[0]) + " |");
                sb.AppendLine("|" + string.Concat(Enumerable.Repeat("---|", t[0].Length)));
                foreach (var row in t.Skip(1)) sb.AppendLine("| " + string.Join(" | ", row) + " |");
                sb.AppendLine();
            }
        }
        return sb.ToString();
    }

    private static string Load()
    {
        try { return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (IOException) { return "?"; }
    }

    private sealed record RunResult(string Name, string Command, int ExitCode, double Seconds, string LoadBefore, string LoadAfter,
        string[] PeerLines, string[] ResultLines, List<string[][]> Tables);

    private sealed record Report(string Finished, string Machine, bool Quick, List<RunResult> Runs);
}
