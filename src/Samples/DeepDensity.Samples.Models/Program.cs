namespace DeepDensity.Samples.Models;

/// <summary>
/// One runnable sample per model, all on the shipped 8×8 digits with the digit 4 as the anomaly:
/// <c>dotnet run --project src/Samples/DeepDensity.Samples.Models -- rnade|deeprnade|deepgmm|rbm|iwae|nvil|rnnrnade [--small]</c>.
/// Each row model's file holds its pipeline; <see cref="AnomalyDemo"/> fits it on the normal digits, evaluates it, saves
/// and loads the model zip and scores a row with a PredictionEngine. The sequence model (<see cref="RnnRnadeSample"/>)
/// reads each digit as a sequence of its pixel rows and runs its own demo.
/// </summary>
public static class Program
{
    public static readonly IReadOnlyDictionary<string, Func<Microsoft.ML.MLContext, DemoSize, Microsoft.ML.IEstimator<Microsoft.ML.ITransformer>>> Samples =
        new Dictionary<string, Func<Microsoft.ML.MLContext, DemoSize, Microsoft.ML.IEstimator<Microsoft.ML.ITransformer>>>
        {
            ["rnade"] = RnadeSample.Pipeline,
            ["deeprnade"] = DeepRnadeSample.Pipeline,
            ["deepgmm"] = DeepGmmSample.Pipeline,
            ["rbm"] = RbmSample.Pipeline,
            ["iwae"] = IwaeSample.Pipeline,
            ["nvil"] = NvilSample.Pipeline,
        };

    /// <summary>Every sample's name: the row models' and "rnnrnade".</summary>
    public static IEnumerable<string> All => Samples.Keys.Append("rnnrnade");

    public static int Main(string[] args)
    {
        if (args.Length == 0 || !All.Contains(args[0]))
        {
            Console.Error.WriteLine($"usage: DeepDensity.Samples.Models {string.Join("|", All)} [--small] [digits.csv]");
            return 2;
        }
        var size = args.Contains("--small") ? DemoSize.Small : DemoSize.Full;
        string? path = args.Skip(1).FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal));
        return args[0] == "rnnrnade" ? RnnRnadeSample.Run(size, path) : AnomalyDemo.Run(args[0], Samples[args[0]], size, path);
    }
}

/// <summary>How long a sample trains: Full for people, Small for the test that runs every sample.</summary>
public sealed record DemoSize(int TrainRows, int Epochs, int EvaluationSamples)
{
    public static readonly DemoSize Full = new(int.MaxValue, 40, 500);
    public static readonly DemoSize Small = new(300, 2, 20);
}
