using System.Globalization;
using System.IO.Compression;
using Microsoft.ML.DeepDensity.Data;
using Microsoft.ML.DeepDensity.Randomness;

namespace DeepDensity.Samples;

/// <summary>A train / validation / test split of real-valued rows.</summary>
public sealed record DataSplit(string Name, RowMatrix Train, RowMatrix Validation, RowMatrix Test, int[] TestLabels);

/// <summary>Loads the data sets used by the samples and benchmarks (the shipped digits; Fashion-MNIST when installed).</summary>
public static class SampleData
{
    /// <summary>Where the Fashion-MNIST IDX files are: the <c>DEEPDENSITY_FASHION_MNIST</c> environment variable, else
    /// where Debian's <c>dataset-fashion-mnist</c> installs them.</summary>
    public static string FashionMnistDirectory { get; } =
        Environment.GetEnvironmentVariable("DEEPDENSITY_FASHION_MNIST") is { Length: > 0 } dir ? dir : "/usr/share/datasets/fashion-mnist";

    /// <summary>Finds <c>data/digits.csv</c> next to the program or in the repository.</summary>
    public static string FindDigitsFile()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "data", "digits.csv");
                if (File.Exists(candidate)) return candidate;
            }
        }
        throw new FileNotFoundException("data/digits.csv not found next to the program or in a parent folder.");
    }

    /// <summary>Raw digits: pixel values 0..16 (64 per row) and labels.</summary>
    public static (float[][] Pixels, int[] Labels) ReadDigitsRaw(string? path = null)
    {
        path ??= FindDigitsFile();
        using var reader = new StreamReader(path);
        var pixels = new List<float[]>();
        var labels = new List<int>();
        string? line;
        int lineNo = 0;
        while ((line = reader.ReadLine()) is not null)
        {
            lineNo++;
            if (line.Length == 0) continue;
            var parts = line.Split(',');
            if (parts.Length != 65) throw new InvalidDataException($"{path} line {lineNo}: expected 65 values, found {parts.Length}.");
            var row = new float[64];
            for (int i = 0; i < 64; i++) row[i] = float.Parse(parts[i], CultureInfo.InvariantCulture);
            pixels.Add(row);
            labels.Add(int.Parse(parts[64], CultureInfo.InvariantCulture));
        }
        return (pixels.ToArray(), labels.ToArray());
    }

    /// <summary>
    /// Digits with the 8×8 real-valued protocol: U(0,1) dequantisation noise, divide by 17 grey levels, subtract each
    /// image's mean, drop the last pixel (63 dims). Seeded 70/10/20 split.
    /// </summary>
    public static DataSplit LoadDigits(ulong seed = 42, string? path = null)
    {
        var (pixels, labels) = ReadDigitsRaw(path);
        var rng = new RandomStream(seed);
        var rows = pixels.Select(p => Dequantize(p, 17f, rng)).ToArray();
        return SplitRows("digits", rows, labels, 0.7, 0.1, rng.Fork(7));
    }

    /// <summary>True when the Fashion-MNIST IDX files are installed.</summary>
    public static bool FashionMnistAvailable(string? directory = null)
    {
        directory ??= FashionMnistDirectory;
        return File.Exists(Path.Combine(directory, "train-images-idx3-ubyte.gz")) && File.Exists(Path.Combine(directory, "t10k-images-idx3-ubyte.gz"));
    }

    /// <summary>Reads an IDX image file (gzip) as bytes: (count, rows, cols, pixels).</summary>
    public static (int Count, int Rows, int Cols, byte[] Pixels) ReadIdxImages(string path)
    {
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var ms = new MemoryStream();
        gz.CopyTo(ms);
        var b = ms.ToArray();
        int magic = BigEndian(b, 0);
        if (magic != 2051) throw new InvalidDataException($"{path}: not an IDX image file (magic {magic}).");
        int n = BigEndian(b, 4), r = BigEndian(b, 8), c = BigEndian(b, 12);
        if (b.Length < 16 + (long)n * r * c) throw new InvalidDataException($"{path}: truncated.");
        return (n, r, c, b.AsSpan(16, n * r * c).ToArray());
    }

    /// <summary>Reads an IDX label file (gzip).</summary>
    public static int[] ReadIdxLabels(string path)
    {
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var ms = new MemoryStream();
        gz.CopyTo(ms);
        var b = ms.ToArray();
        int n = BigEndian(b, 4);
        return b.AsSpan(8, n).ToArray().Select(x => (int)x).ToArray();
    }

    /// <summary>
    /// Fashion-MNIST 8×8 (the engine issue's protocol): 28×28 downscaled to 8×8 by area averaging, rounded to 0..255,
    /// U(0,1) noise added, divided by 256, each image's mean subtracted, last pixel dropped (63 dims); the first 50k
    /// training images train, the last 10k validate, the 10k test file tests.
    /// </summary>
    public static DataSplit LoadFashionMnist8x8(ulong seed = 42, string? directory = null, int? maxTrain = null)
    {
        directory ??= FashionMnistDirectory;
        var rng = new RandomStream(seed);
        float[][] Load(string file, RandomStream r)
        {
            var (n, h, w, px) = ReadIdxImages(Path.Combine(directory, file));
            var result = new float[n][];
            for (int i = 0; i < n; i++)
                result[i] = Dequantize(Downscale(px.AsSpan(i * h * w, h * w), h, w, 8), 256f, r);
            return result;
        }
        var train = Load("train-images-idx3-ubyte.gz", rng.Fork(1));
        var test = Load("t10k-images-idx3-ubyte.gz", rng.Fork(2));
        var testLabels = ReadIdxLabels(Path.Combine(directory, "t10k-labels-idx1-ubyte.gz"));
        int nTrain = Math.Min(maxTrain ?? 50_000, 50_000);
        return new DataSplit("fashion-mnist-8x8",
            RowMatrix.FromRows(train.Take(nTrain).ToArray()),
            RowMatrix.FromRows(train.Skip(50_000).Take(10_000).ToArray()),
            RowMatrix.FromRows(test), testLabels);
    }

    /// <summary>
    /// Binarized Fashion-MNIST (784 dims): pixel/255 is the Bernoulli probability of a 1, drawn once with the given seed
    /// (fixed stochastic binarization); 50k train / 10k validation / 10k test.
    /// </summary>
    public static DataSplit LoadBinarizedFashionMnist(ulong seed = 1234, string? directory = null)
    {
        directory ??= FashionMnistDirectory;
        var rng = new RandomStream(seed);
        RowMatrix Load(string file, RandomStream r, int skip, int take)
        {
            var (n, h, w, px) = ReadIdxImages(Path.Combine(directory, file));
            int d = h * w;
            take = Math.Min(take, n - skip);
            var m = new RowMatrix(take, d);
            for (int i = 0; i < take; i++)
                for (int j = 0; j < d; j++)
                    m[i, j] = r.NextDouble() < px[(skip + i) * d + j] / 255.0 ? 1f : 0f;
            return m;
        }
        var trainAll = Load("train-images-idx3-ubyte.gz", rng.Fork(1), 0, 60_000);
        var test = Load("t10k-images-idx3-ubyte.gz", rng.Fork(2), 0, 10_000);
        var labels = ReadIdxLabels(Path.Combine(directory, "t10k-labels-idx1-ubyte.gz"));
        return new DataSplit("binarized-fashion-mnist", trainAll.Slice(0, 50_000), trainAll.Slice(50_000, 10_000), test, labels);
    }

    /// <summary>Area-average an h×w image of bytes down to size×size (h, w multiples not required: fractional overlap).</summary>
    public static float[] Downscale(ReadOnlySpan<byte> image, int h, int w, int size)
    {
        var result = new float[size * size];
        double sy = (double)h / size, sx = (double)w / size;
        for (int oy = 0; oy < size; oy++)
            for (int ox = 0; ox < size; ox++)
            {
                double y0 = oy * sy, y1 = y0 + sy, x0 = ox * sx, x1 = x0 + sx, sum = 0, area = 0;
                for (int y = (int)y0; y < Math.Min(h, (int)Math.Ceiling(y1)); y++)
                {
                    double wy = Math.Min(y + 1, y1) - Math.Max(y, y0);
                    for (int x = (int)x0; x < Math.Min(w, (int)Math.Ceiling(x1)); x++)
                    {
                        double wx = Math.Min(x + 1, x1) - Math.Max(x, x0);
                        sum += wy * wx * image[y * w + x];
                        area += wy * wx;
                    }
                }
                result[oy * size + ox] = (float)Math.Round(sum / area);
            }
        return result;
    }

    /// <summary>(v + U(0,1)) / levels, minus the image mean, last pixel dropped.</summary>
    public static float[] Dequantize(float[] pixels, float levels, RandomStream rng)
    {
        var v = new float[pixels.Length];
        double mean = 0;
        for (int i = 0; i < v.Length; i++) { v[i] = (pixels[i] + (float)rng.NextDouble()) / levels; mean += v[i]; }
        mean /= v.Length;
        var result = new float[v.Length - 1];
        for (int i = 0; i < result.Length; i++) result[i] = v[i] - (float)mean;
        return result;
    }

    private static DataSplit SplitRows(string name, float[][] rows, int[] labels, double trainFrac, double validFrac, RandomStream rng)
    {
        var idx = Enumerable.Range(0, rows.Length).ToArray();
        rng.Shuffle(idx.AsSpan());
        int nTrain = (int)(rows.Length * trainFrac), nValid = (int)(rows.Length * validFrac);
        RowMatrix Take(IEnumerable<int> ids) => RowMatrix.FromRows(ids.Select(i => rows[i]).ToArray());
        var testIds = idx.Skip(nTrain + nValid).ToArray();
        return new DataSplit(name, Take(idx.Take(nTrain)), Take(idx.Skip(nTrain).Take(nValid)), Take(testIds),
            testIds.Select(i => labels[i]).ToArray());
    }

    private static int BigEndian(byte[] b, int o) => (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3];
}
