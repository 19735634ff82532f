using System.Reflection;
using DeepDensity.Benchmarks;

// Benchmark programs (not tests): each IBenchmark in this assembly is one sub-command.
//   dotnet run -c Release --project build/Benchmarks -- <name> [options]
var benchmarks = Assembly.GetExecutingAssembly().GetTypes()
    .Where(t => typeof(IBenchmark).IsAssignableFrom(t) && !t.IsAbstract && !t.IsInterface)
    .Select(t => (IBenchmark)Activator.CreateInstance(t)!)
    .OrderBy(b => b.Name, StringComparer.Ordinal)
    .ToList();
if (args.Length == 0 || args[0] is "-h" or "--help" || benchmarks.All(b => b.Name != args[0]))
{
    Console.WriteLine("usage: DeepDensity.Benchmarks <benchmark> [options]\n");
    foreach (var b in benchmarks) Console.WriteLine($"  {b.Name,-12} {b.Description}");
    return args.Length == 0 || args[0] is "-h" or "--help" ? 0 : 2;
}
var chosen = benchmarks.First(b => b.Name == args[0]);
try { return chosen.Run(BenchmarkArgs.Parse(args.Skip(1).ToArray())); }
catch (UsageException e)
{
    // A command line the benchmark cannot run (a value that does not parse, options that do not go together): its
    // message, not a stack trace.
    Console.Error.WriteLine($"{chosen.Name}: {e.Message}");
    return 2;
}
