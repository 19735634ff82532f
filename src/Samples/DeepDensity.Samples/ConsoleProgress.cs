using Microsoft.ML.DeepDensity.Training;

namespace DeepDensity.Samples;

/// <summary>Prints progress synchronously (System.Progress posts to the thread pool and reorders lines).</summary>
public sealed class ConsoleProgress(int every = 1, string indent = "  ") : IProgress<TrainingProgress>
{
    public void Report(TrainingProgress value)
    {
        if (value.Epoch % every == 0 || value.Note is not null) Console.WriteLine(indent + value);
    }
}
