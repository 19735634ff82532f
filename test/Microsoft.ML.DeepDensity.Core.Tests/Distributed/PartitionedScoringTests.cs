using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Tests.Conformance;

namespace Microsoft.ML.DeepDensity.Tests.Distributed;

/// <summary>
/// Scoring as a per-partition map (docs/scaling.md, "Beyond one machine"): each worker loads the saved model file and
/// scores its partition; the concatenated results are the values of scoring all rows at once with the trained model,
/// bit for bit, for every model (a row's score does not depend on the rows scored with it; estimates draw a row's
/// noise from a hash of the row).
/// </summary>
public class PartitionedScoringTests
{
    [Theory]
    [MemberData(nameof(ModelCases.Names), MemberType = typeof(ModelCases))]
    public void PartitionsScoredByLoadedCopiesEqualOnePass(string name)
    {
        var fitted = ModelCases.Fitted(name);
        var rows = fitted.Case.MakeData(301, 77);
        int d = rows.Columns;
        var all = new float[rows.Rows];
        var allError = new float[rows.Rows];
        fitted.Model.LogDensity(rows.Values.AsSpan(0, rows.Rows * d), all, allError);

        byte[] file = fitted.Model.ToBytes(); // what the driver broadcasts
        var parts = new float[rows.Rows];
        var partsError = new float[rows.Rows];
        int start = 0;
        foreach (int n in new[] { 1, 150, 7, 143 })
        {
            var worker = DensityModel.FromBytes(file); // each worker its own copy
            worker.LogDensity(rows.Values.AsSpan(start * d, n * d), parts.AsSpan(start, n), partsError.AsSpan(start, n));
            start += n;
        }
        Assert.Equal(rows.Rows, start);
        ConformanceAssert.BitIdentical(all, parts, $"{name} log-density");
        ConformanceAssert.BitIdentical(allError, partsError, $"{name} standard error");
    }
}
