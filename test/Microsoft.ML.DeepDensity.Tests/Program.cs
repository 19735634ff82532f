using System.Globalization;
using Microsoft.ML.Data;

namespace Microsoft.ML.DeepDensity.Tests;

/// <summary>
/// Entry point of this test assembly when run as a separate process (<c>dotnet exec Microsoft.ML.DeepDensity.Tests.dll
/// score &lt;model.zip&gt; &lt;rows.bin&gt;</c>): loads the ML.NET model in a fresh process and prints the Score column
/// of the raw rows as float bit patterns, one per line, followed by the recovered model's kind.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length == 3 && args[0] == "score")
        {
            // Nothing of Microsoft.ML.DeepDensity is touched before Load: ML.NET must find the CustomMapping factories itself.
            bool preloaded = AppDomain.CurrentDomain.GetAssemblies().Any(a => a.GetName().Name == "Microsoft.ML.DeepDensity");
            var model = LoadAndScore(args[1], args[2]);
            Console.WriteLine("PRELOADED " + preloaded);
            Console.WriteLine("KIND " + Kind(model));
            return 0;
        }
        Console.Error.WriteLine("usage: score <model.zip> <rows.bin>");
        return 2;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static ITransformer LoadAndScore(string zip, string rowsFile)
    {
        var ml = new MLContext(seed: 5);
        var model = ml.Model.Load(zip, out _);
        var rows = ReadRaw(rowsFile);
        var scores = model.Transform(ml.Data.LoadFromEnumerable(rows)).GetColumn<float>("Score").ToArray();
        foreach (var s in scores) Console.WriteLine(BitConverter.SingleToInt32Bits(s).ToString(CultureInfo.InvariantCulture));
        return model;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static string Kind(ITransformer model) => model.GetDensityModel().ModelKind;

    public static void WriteRaw(string path, IReadOnlyList<RawRow> rows)
    {
        using var w = new BinaryWriter(File.Create(path));
        w.Write(rows.Count);
        foreach (var r in rows) { w.Write(r.A); w.Write(r.B); w.Write(r.C); w.Write(r.E); w.Write(r.Name); }
    }

    public static List<RawRow> ReadRaw(string path)
    {
        using var rd = new BinaryReader(File.OpenRead(path));
        int n = rd.ReadInt32();
        var rows = new List<RawRow>(n);
        for (int i = 0; i < n; i++)
            rows.Add(new RawRow { A = rd.ReadSingle(), B = rd.ReadSingle(), C = rd.ReadSingle(), E = rd.ReadSingle(), Name = rd.ReadString() });
        return rows;
    }
}
