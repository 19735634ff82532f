using Microsoft.ML.Data;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>The ML.NET essentials shared by the family tests: values = engine, AnomalyDetection, save → load in a fresh context.</summary>
internal static class FamilyChecks
{
    /// <summary>
    /// Fits <paramref name="estimator"/> on <paramref name="train"/>, then checks that the LogDensity column equals the engine
    /// model's on <paramref name="testRows"/>, that AnomalyDetection.Evaluate separates the labelled outliers (AUC &gt; 0.9), and
    /// that a save → load in a fresh context gives the same scores and the same model bytes.
    /// </summary>
    public static void FitScoreSaveLoadEvaluate<TRow>(MLContext ml, string family, IEstimator<ITransformer> estimator, IDataView train,
        List<TRow> testRows, Func<TRow, float[]> features) where TRow : class
    {
        var transformer = estimator.Fit(train);
        var scored = transformer.Transform(ml.Data.LoadFromEnumerable(testRows));
        var logDensity = scored.GetColumn<float>("LogDensity").ToArray();
        var engine = transformer.GetDensityModel();
        Assert.Equal(engine.LogDensity(Data.RowMatrix.FromRows(testRows.Select(features).ToList())), logDensity);

        var metrics = ml.AnomalyDetection.Evaluate(scored);
        Assert.True(metrics.AreaUnderRocCurve > 0.9, $"{family}: AUC {metrics.AreaUnderRocCurve}");

        var zip = Path.Combine(Directory.CreateTempSubdirectory("dd-family-").FullName, "model.zip");
        ml.Model.Save(transformer, train.Schema, zip);
        var ml2 = new MLContext(seed: 5);
        var loaded = ml2.Model.Load(zip, out _);
        var loadedScores = loaded.Transform(ml2.Data.LoadFromEnumerable(testRows)).GetColumn<float>("LogDensity").ToArray();
        for (int i = 0; i < loadedScores.Length; i++)
            Assert.True(Math.Abs(loadedScores[i] - logDensity[i]) <= 1e-5f * Math.Max(1f, Math.Abs(logDensity[i])),
                $"{family}: row {i} live {logDensity[i]} loaded {loadedScores[i]}");
        Assert.Equal(engine.ToBytes(), loaded.GetDensityModel().ToBytes());
    }
}
