using System.Diagnostics;
using Microsoft.ML.DeepDensity;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Models.DeepGmm;
using Microsoft.ML.DeepDensity.Models.Iwae;
using Microsoft.ML.DeepDensity.Models.Nvil;
using Microsoft.ML.DeepDensity.Models.Rbm;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Models.RnnRnade;
using Microsoft.ML.DeepDensity.Numerics;
using DeepDensity.Samples;

namespace DeepDensity.Benchmarks;

/// <summary>
/// Issue #18's check for a slowdown no timing shows by itself: x86 multiplies that read a subnormal float take a
/// microcode assist (~100 cycles), and .NET cannot set flush-to-zero, so a subnormal entry of a GEMM operand costs one
/// per row or column it meets. This trains and scores every model (the threads benchmark's shapes, the README's
/// 784-input RBM and IWAE on saturating synthetic data, and binarized Fashion-MNIST and the digits when present) with
/// <see cref="Gemm.Audit"/> counting subnormal entries of every product's operands, grouped by the model code that called
/// the product. Exit code 1 when any are found.
/// </summary>
public sealed class SubnormalAudit : IBenchmark
{
    public string Name => "subnormals";
    public string Description => "count subnormal floats in every GEMM operand while each model trains and scores (--only <name part>; ~1 min)";

    private sealed class Site { public long Calls, SubA, SubB, SubC, EntriesA, EntriesB; }

    public int Run(BenchmarkArgs args)
    {
        int epochs = args.Int("epochs", 5);
        var cases = new List<(string Name, Func<object> Work)>
        {
            ("RNADE, 5000×32 synthetic, H=100", () => RnadeModel.Fit(ThreadScalingBenchmark.Real(5000, 32, 1), new RnadeOptions { HiddenUnits = 100, MaxEpochs = epochs, ValidationFraction = 0, Seed = 1 }).LogDensity(ThreadScalingBenchmark.Real(1000, 32, 2))),
            ("Deep GMM, 5000×16 synthetic", () => DeepGmmModel.Fit(ThreadScalingBenchmark.Real(5000, 16, 3), new DeepGmmOptions { Layers = new[] { 4, 4 }, MaxIterations = epochs, ValidationFraction = 0, Seed = 1 }).LogDensity(ThreadScalingBenchmark.Real(1000, 16, 4))),
            ("RBM, 5000×64 synthetic, H=200", () => RbmModel.Fit(ThreadScalingBenchmark.Binary(5000, 64, 5), new RbmOptions { HiddenUnits = 200, MaxEpochs = epochs, AisTemperatures = 1000, AisRuns = 10, Seed = 1 }).LogDensity(ThreadScalingBenchmark.Binary(1000, 64, 6))),
            ("RBM, 10000×784 synthetic, H=500", () => RbmModel.Fit(ThreadScalingBenchmark.Binary(10_000, 784, 11), new RbmOptions { HiddenUnits = 500, MaxEpochs = 1, AisTemperatures = 100, AisRuns = 4, Seed = 1 }).LogDensity(ThreadScalingBenchmark.Binary(500, 784, 12))),
            ("IWAE, 5000×64 synthetic", () => IwaeModel.Fit(ThreadScalingBenchmark.Binary(5000, 64, 7), new IwaeOptions { MaxEpochs = epochs, EvaluationSamples = 100, ValidationFraction = 0, Seed = 1 }).LogDensity(ThreadScalingBenchmark.Binary(500, 64, 8))),
            ("IWAE, 10000×784 synthetic", () => IwaeModel.Fit(ThreadScalingBenchmark.Binary(10_000, 784, 13), new IwaeOptions { MaxEpochs = 1, EvaluationSamples = 100, ValidationFraction = 0, Seed = 1 }).LogDensity(ThreadScalingBenchmark.Binary(500, 784, 14))),
            ("NVIL, 10000×784 synthetic", () => NvilModel.Fit(ThreadScalingBenchmark.Binary(10_000, 784, 15), new NvilOptions { MaxEpochs = epochs, EvaluationSamples = 100, ValidationFraction = 0, Seed = 1 }).LogDensity(ThreadScalingBenchmark.Binary(500, 784, 16))),
            ("RNN-RNADE, 300 sequences × 30 × 32", () => RnnRnadeModel.Fit(ThreadScalingBenchmark.Sequences(300, 30, 32, 17), new RnnRnadeOptions { MaxEpochs = epochs, ValidationFraction = 0, Seed = 1 }).LogDensity(ThreadScalingBenchmark.Sequences(100, 30, 32, 18))),
            ("NVIL, 5000×64 synthetic", () => NvilModel.Fit(ThreadScalingBenchmark.Binary(5000, 64, 9), new NvilOptions { MaxEpochs = epochs, EvaluationSamples = 100, ValidationFraction = 0, Seed = 1 }).LogDensity(ThreadScalingBenchmark.Binary(500, 64, 10))),
            ("RNN-RNADE, 300 sequences × 30 × 4", () => RnnRnadeModel.Fit(ThreadScalingBenchmark.Sequences(300, 30, 4, 11), new RnnRnadeOptions { MaxEpochs = epochs, ValidationFraction = 0, Seed = 1 }).LogDensity(ThreadScalingBenchmark.Sequences(100, 30, 4, 12))),
            ("RNADE, digits", () => { var s = SampleData.LoadDigits(); return RnadeModel.Fit(s.Train, new RnadeOptions { MaxEpochs = 4 * epochs, Seed = 1 }).LogDensity(s.Test); }),
            ("Deep GMM, digits", () => { var s = SampleData.LoadDigits(); return DeepGmmModel.Fit(s.Train, new DeepGmmOptions { MaxIterations = 2 * epochs, Seed = 1 }).LogDensity(s.Test); }),
        };
        if (SampleData.FashionMnistAvailable())
        {
            var f = new Lazy<(RowMatrix Train, RowMatrix Test)>(() =>
            {
                var s = SampleData.LoadBinarizedFashionMnist();
                return (Head(s.Train, 10_000), Head(s.Test, 300));
            });
            cases.Add(("RBM, binarized Fashion-MNIST 10k, H=500", () => RbmModel.Fit(f.Value.Train, new RbmOptions { HiddenUnits = 500, MaxEpochs = epochs, AisTemperatures = 1000, AisRuns = 10, Seed = 1 }).LogDensity(f.Value.Test)));
            cases.Add(("IWAE, binarized Fashion-MNIST 10k", () => IwaeModel.Fit(f.Value.Train, new IwaeOptions { MaxEpochs = epochs, EvaluationSamples = 100, ValidationFraction = 0, Seed = 1 }).LogDensity(f.Value.Test)));
            cases.Add(("NVIL, binarized Fashion-MNIST 10k", () => NvilModel.Fit(f.Value.Train, new NvilOptions { MaxEpochs = epochs, EvaluationSamples = 100, ValidationFraction = 0, Seed = 1 }).LogDensity(f.Value.Test)));
        }
        else Console.WriteLine("(Fashion-MNIST not installed: its cases are skipped)");

        string only = args.String("only", "");
        if (only.Length > 0) cases.RemoveAll(c => !c.Name.Contains(only, StringComparison.OrdinalIgnoreCase));
        Console.WriteLine($"machine: {Machine.Describe()}");
        int found = 0;
        foreach (var (name, work) in cases)
        {
            var sites = new Dictionary<string, Site>();
            Gemm.Audit = (a, ar, ac, lda, b, br, bc, ldb, c, cr, cc, ldc, readsC) =>
            {
                long sa = Gemm.SubnormalEntries(a, ar, ac, lda), sb = Gemm.SubnormalEntries(b, br, bc, ldb), sc = readsC ? Gemm.SubnormalEntries(c, cr, cc, ldc) : 0;
                string site = sa + sb + sc > 0 ? CallSite() : "";
                lock (sites)
                {
                    if (!sites.TryGetValue(site, out var s)) sites[site] = s = new Site();
                    s.Calls++; s.SubA += sa; s.SubB += sb; s.SubC += sc; s.EntriesA += (long)ar * ac; s.EntriesB += (long)br * bc;
                }
            };
            var sw = Stopwatch.StartNew();
            // The float GEMM's operands are what this audits: the AMX binary products (exact integers, no float
            // arithmetic on their operands) are turned off so that the RBM's products run where the audit sees them, as
            // on a machine without AMX.
            try { using (Microsoft.ML.DeepDensity.Numerics.Amx.BinaryGemm.Off()) work(); }
            finally { Gemm.Audit = null; }
            long calls = sites.Values.Sum(s => s.Calls);
            var bad = sites.Where(kv => kv.Key != "").OrderByDescending(kv => kv.Value.SubA + kv.Value.SubB + kv.Value.SubC).ToList();
            Console.WriteLine($"{name,-42} {sw.Elapsed.TotalSeconds,6:F1} s  {calls,8} products  {(bad.Count == 0 ? "no subnormal operand" : $"SUBNORMAL operands at {bad.Count} call site(s)")}");
            foreach (var (site, s) in bad)
                Console.WriteLine($"    {s.Calls,7} calls  A {s.SubA,9} ({100.0 * s.SubA / Math.Max(1, s.EntriesA):F3} %)  B {s.SubB,9} ({100.0 * s.SubB / Math.Max(1, s.EntriesB):F3} %)  C {s.SubC,9}  at {site}");
            if (bad.Count > 0) found++;
        }
        Console.WriteLine(found == 0 ? "no model fed a subnormal float to a product" : $"{found} case(s) fed subnormal floats to products");
        return found == 0 ? 0 : 1;
    }

    private static RowMatrix Head(RowMatrix x, int n) => new(x.AsSpan()[..(n * x.Columns)].ToArray(), n, x.Columns);

    /// <summary>The innermost two methods of the library outside the numerics and the worker team (lambdas are named by
    /// the method's type).</summary>
    private static string CallSite()
    {
        var names = new List<string>();
        foreach (var frame in new StackTrace(false).GetFrames())
        {
            var type = frame.GetMethod()?.DeclaringType;
            while (type is not null && type.Name.StartsWith('<')) type = type.DeclaringType;
            if (type?.Namespace is not { } ns || !ns.StartsWith("Microsoft.ML.DeepDensity") || ns.EndsWith(".Numerics") || type.Name == nameof(DeepDensityEnvironment)) continue;
            string name = type.Name + "." + frame.GetMethod()!.Name;
            if (names.Count == 0 || names[^1] != name) names.Add(name);
            if (names.Count == 2) break;
        }
        return names.Count == 0 ? "?" : string.Join(" < ", names);
    }
}
