using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity.Models.Rnade;
using Microsoft.ML.DeepDensity.Transforms;

namespace Microsoft.ML.DeepDensity.Tests;

public sealed class Row
{
    public const int D = 4;
    [VectorType(D)] public float[] Features { get; set; } = new float[D];
    public float Label { get; set; }
}

public sealed class Scored
{
    public float LogDensity { get; set; }
    public float Score { get; set; }
    public bool PredictedLabel { get; set; }
}

/// <summary>Four raw scalar columns (for Concatenate → Normalize → model pipelines).</summary>
public sealed class RawRow
{
    public float A { get; set; }
    public float B { get; set; }
    public float C { get; set; }
    public float E { get; set; }
    public string Name { get; set; } = "";
}

internal static class TestData
{
    /// <summary>Correlated Gaussian blob around (1, −2, 0.5, 3); every <paramref name="outlierEvery"/>-th row (if > 0) is far away and labelled 1.</summary>
    public static List<Row> Blob(int n, int seed = 1, int outlierEvery = 0)
    {
        var rnd = new Random(seed);
        var rows = new List<Row>(n);
        for (int i = 0; i < n; i++)
        {
            double z0 = Gauss(rnd), z1 = Gauss(rnd), z2 = Gauss(rnd), z3 = Gauss(rnd);
            var x = new[] { (float)(1 + z0), (float)(-2 + 0.8 * z0 + 0.6 * z1), (float)(0.5 + 0.5 * z2), (float)(3 + 2 * z3) };
            bool outlier = outlierEvery > 0 && i % outlierEvery == 0;
            if (outlier)
            {
                // far away in a random direction
                for (int j = 0; j < x.Length; j++) x[j] += (float)(rnd.Next(2) == 0 ? -7 : 7);
            }
            rows.Add(new Row { Features = x, Label = outlier ? 1f : 0f });
        }
        return rows;
    }

    public static List<RawRow> Raw(int n, int seed = 1)
        => Blob(n, seed).Select((r, i) => new RawRow { A = r.Features[0], B = r.Features[1], C = r.Features[2], E = r.Features[3], Name = "row" + i }).ToList();

    public static double Gauss(Random r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());

    /// <summary>A small, quick RNADE configuration.</summary>
    public static RnadeEstimator.Options SmallRnade(Action<RnadeEstimator.Options>? configure = null)
    {
        var o = new RnadeEstimator.Options
        {
            ModelOptions = new RnadeOptions { HiddenUnits = 12, Components = 3, MaxEpochs = 15, BatchSize = 50, LearningRate = 5e-3f, Seed = 7 },
        };
        configure?.Invoke(o);
        return o;
    }

    public static Data.RowMatrix Matrix(IEnumerable<Row> rows)
        => Data.RowMatrix.FromRows(rows.Select(r => r.Features).ToList());
}
