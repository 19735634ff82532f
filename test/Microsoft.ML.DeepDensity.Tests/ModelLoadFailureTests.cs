using System.Reflection;
using Microsoft.ML.Data;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// Two failures of ML.NET's own <c>Model.Load</c> that a deployment meets (a container without a writable temporary
/// directory; a heap limit below what ML.NET's reading of a large model needs): <c>LoadWithLiveDensityModels</c> says
/// what to do, with ML.NET's exception inside, and passes every other failure through unchanged.
/// </summary>
public class ModelLoadFailureTests
{
    private static string SavedZip(string dir)
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TestData.Blob(100));
        var model = ml.DensityEstimation.Rnade(TestData.SmallRnade(o => o.ModelOptions.MaxEpochs = 1)).Fit(data);
        string zip = Path.Combine(dir, "model.zip");
        ml.Model.Save(model, data.Schema, zip);
        return zip;
    }

    [Fact]
    public void WithoutAWritableTempDirectory_TheLoadNamesTempFilePath()
    {
        string dir = TestTemp.Directory("dd-loadfail");
        string zip = SavedZip(dir);
        // A regular file where the temporary directory should be: ML.NET cannot create its ml_dotnet_* directory under
        // it (a read-only directory would do the same, but tests may run as root, for whom nothing is read-only).
        string notADirectory = Path.Combine(dir, "not-a-directory");
        File.WriteAllText(notADirectory, "");
        var ml = new MLContext { TempFilePath = notADirectory };

        Assert.ThrowsAny<IOException>(() => ml.Model.Load(zip, out _)); // ML.NET's own load: no word on what to do
        foreach (var load in new Action[]
        {
            () => ml.Model.LoadWithLiveDensityModels(zip, out _),
            () => { using var s = File.OpenRead(zip); ml.Model.LoadWithLiveDensityModels(s, out _); },
        })
        {
            var e = Assert.Throws<IOException>(load);
            Assert.Contains("TempFilePath", e.Message);
            Assert.Contains(notADirectory, e.Message);
            Assert.Contains("ml_dotnet_", e.Message);
            Assert.NotNull(e.InnerException); // ML.NET's exception, as it threw it
        }

        ml.TempFilePath = dir; // the remedy the message names
        var loaded = ml.Model.LoadWithLiveDensityModels(zip, out _);
        Assert.True(float.IsFinite(loaded.Transform(ml.Data.LoadFromEnumerable(TestData.Blob(3))).GetColumn<float>("LogDensity").First()));
    }

    [Fact]
    public void TheFormOfAZip_IsToldByItsScorersContracts()
    {
        string dir = Directory.CreateTempSubdirectory("dd-form").FullName;
        try
        {
            using (var zip = File.OpenRead(SavedZip(dir))) Assert.Equal(ModelLoadFailures.ZipForm.Chunked, ModelLoadFailures.FormOf(zip));
            var fixtures = Path.Combine(AppContext.BaseDirectory, "Fixtures", "vfb6c978");
            foreach (var name in new[] { "rnade.zip", "iwae.zip", "rnnrnade-sequences.zip", "rnnrnade-frames.zip" })
            {
                using var zip = File.OpenRead(Path.Combine(fixtures, name));
                Assert.Equal(ModelLoadFailures.ZipForm.SingleValue, ModelLoadFailures.FormOf(zip));
            }
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void ALoadThatRunsOutOfMemory_SaysHowMuchHeapItNeeds()
    {
        // What ML.NET 5.0.1 threw for a 31.5 MB zip under DOTNET_GCHeapHardLimit = 600 MB (its text codec's ReadString
        // failing inside a worker, wrapped by two class instantiations).
        var thrown = new InvalidOperationException("Error during class instantiation",
            new TargetInvocationException(new InvalidOperationException("Error during class instantiation",
                new TargetInvocationException(new InvalidOperationException("Exception thrown in decompressing", new OutOfMemoryException())))));
        var e = Assert.IsType<InsufficientMemoryException>(ModelLoadFailures.Explain(thrown, 31_500_000));
        Assert.IsAssignableFrom<OutOfMemoryException>(e); // a handler for OutOfMemoryException still catches it
        Assert.Same(thrown, e.InnerException);
        Assert.Contains("(31.5 MB)", e.Message);
        Assert.Contains("25 times", e.Message);
        Assert.Contains("DOTNET_GCHeapHardLimit", e.Message);
        Assert.DoesNotContain("MB)", ModelLoadFailures.Explain(thrown, null)!.Message); // a non-seekable stream: size unknown
        // The heap asked for follows the zip's form: chunks (this version) or one table (earlier versions, sequence models).
        var chunked = ModelLoadFailures.Explain(thrown, 37_800_000, ModelLoadFailures.ZipForm.Chunked)!.Message;
        Assert.Contains("6 times", chunked);
        Assert.DoesNotContain("25 times", chunked);
        var single = ModelLoadFailures.Explain(thrown, 31_500_000, ModelLoadFailures.ZipForm.SingleValue)!.Message;
        Assert.Contains("25 times", single);
        Assert.Contains("earlier version", single);

        // Everything else passes through as ML.NET threw it: damaged zips, a missing file, a permission on the model itself.
        Assert.Null(ModelLoadFailures.Explain(new FormatException("Failed to open a zip archive"), 100));
        Assert.Null(ModelLoadFailures.Explain(new FileNotFoundException("Could not find file '/models/model.zip'."), null));
        Assert.Null(ModelLoadFailures.Explain(new UnauthorizedAccessException("Access to the path '/models/model.zip' is denied."), null));
    }

    [Fact]
    public void OtherLoadFailuresPassThroughUnchanged()
    {
        var ml = new MLContext();
        string missing = Path.Combine(TestTemp.Directory("dd-loadfail"), "missing.zip");
        Assert.Equal(Assert.ThrowsAny<Exception>(() => ml.Model.Load(missing, out _)).GetType(),
            Assert.ThrowsAny<Exception>(() => ml.Model.LoadWithLiveDensityModels(missing, out _)).GetType());
        using var notAZip = new MemoryStream(new byte[100]);
        Assert.IsType<FormatException>(Assert.ThrowsAny<Exception>(() => ml.Model.LoadWithLiveDensityModels(notAZip, out _)));
    }
}
