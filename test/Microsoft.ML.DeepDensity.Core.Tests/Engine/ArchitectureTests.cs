using Xunit;

namespace Microsoft.ML.DeepDensity.Tests.Engine;

/// <summary>
/// The shape the engine's source keeps (docs/architecture.md): every model folder has the same parts, and files stay
/// small enough to read whole. A new model or a growing file fails here rather than in review.
/// </summary>
public class ArchitectureTests
{
    private static string Root()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "DeepDensity.ML.sln"))) return dir.FullName;
        throw new InvalidOperationException("DeepDensity.ML.sln not found above " + AppContext.BaseDirectory);
    }

    private static string ModelsFolder => Path.Combine(Root(), "src", "Microsoft.ML.DeepDensity.Core", "Models");

    [Fact]
    public void Every_model_folder_has_options_model_network_and_training_steps()
    {
        var folders = Directory.GetDirectories(ModelsFolder);
        Assert.True(folders.Length >= 6, $"expected the six model folders under {ModelsFolder}");
        foreach (var folder in folders)
        {
            string name = Path.GetFileName(folder);
            var files = Directory.GetFiles(folder, "*.cs").Select(Path.GetFileName).ToHashSet(StringComparer.Ordinal);
            Assert.True(files.Contains(name + "Options.cs"), $"Models/{name} has no {name}Options.cs");
            Assert.True(files.Contains(name + "Model.cs"), $"Models/{name} has no {name}Model.cs");
            Assert.True(files.Contains(name + "Network.cs") || files.Contains(name + "Machine.cs"), $"Models/{name} has no {name}Network.cs (or Machine)");
            Assert.True(files.Any(f => f!.StartsWith(name, StringComparison.Ordinal)
                                       && (f.EndsWith("Objective.cs", StringComparison.Ordinal) || f.Contains("Trainer", StringComparison.Ordinal) || f.Contains("Training", StringComparison.Ordinal))),
                $"Models/{name} has no training-step file ({name}Objective.cs or {name}Trainer*.cs)");
        }
    }

    [Fact]
    public void Source_files_stay_readable_whole()
    {
        // ~400 lines is the aim; 600 is where a file must be split by responsibility (partial files, as Deep GMM's trainer).
        const int limit = 600;
        var tooLong = Directory.GetFiles(Path.Combine(Root(), "src"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                        && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Select(f => (File: Path.GetRelativePath(Root(), f), Lines: File.ReadLines(f).Count()))
            .Where(x => x.Lines > limit).ToList();
        Assert.True(tooLong.Count == 0, "split by responsibility: " + string.Join(", ", tooLong.Select(x => $"{x.File} ({x.Lines} lines)")));
    }
}
