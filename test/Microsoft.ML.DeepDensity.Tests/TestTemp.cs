namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>Temporary directories that a test keeps open until its last assertion (a loaded model reads its zip
/// lazily), deleted when the test process exits: a test run used to leave a directory with its model zips in /tmp for
/// every schema, family and sequence check (about 70 MB a day of runs).</summary>
internal static class TestTemp
{
    private static readonly List<string> Created = new();

    static TestTemp() => AppDomain.CurrentDomain.ProcessExit += (_, _) =>
    {
        lock (Created)
            foreach (var dir in Created)
                try { System.IO.Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    };

    /// <summary>A new empty directory under the system's temporary path, named with <paramref name="prefix"/>.</summary>
    public static string Directory(string prefix)
    {
        var dir = System.IO.Directory.CreateTempSubdirectory(prefix).FullName;
        lock (Created) Created.Add(dir);
        return dir;
    }
}
