#!/usr/bin/env bash
# Packs the engine and the ML.NET layer into a local folder, then builds and runs a throwaway console project that
# references the packed DeepDensity.ML package (the ML.NET layer, assembly Microsoft.ML.DeepDensity; through it the
# engine package DeepDensity.ML.Core and Microsoft.ML from NuGet):
# fit RNADE in an ML.NET pipeline, transform, and print the average LogDensity. Fails if any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-Release}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
version=0.0.0-packcheck
# A fixed throwaway version: drop it from the global package cache so that the packages just built are the ones used.
cache=${NUGET_PACKAGES:-$HOME/.nuget/packages}
rm -rf "$cache/deepdensity.ml/$version" "$cache/deepdensity.ml.core/$version"
dotnet pack DeepDensity.ML.sln -c "$config" -o "$work/feed" -p:Version="$version" --nologo -v q
mkdir -p "$work/app"
cat > "$work/app/app.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><ImplicitUsings>enable</ImplicitUsings>
    <ManagePackageVersionsCentrally>false</ManagePackageVersionsCentrally></PropertyGroup>
  <ItemGroup><PackageReference Include="DeepDensity.ML" Version="$version" /></ItemGroup>
</Project>
XML
cat > "$work/app/Directory.Build.props" <<'XML'
<Project></Project>
XML
cat > "$work/app/Directory.Packages.props" <<'XML'
<Project></Project>
XML
cat > "$work/app/Program.cs" <<'CS'
using System.IO.Compression;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity;
// 1. The packages: README, XML docs, licence expression, symbols, single-word tags and the dependency range on Microsoft.ML.
string feed = args[0], version = args[1];
// Package ids outside nuget.org's reserved Microsoft.* prefix; the assemblies keep their names.
foreach (var (id, assembly) in new[] { ("DeepDensity.ML.Core", "Microsoft.ML.DeepDensity.Core"), ("DeepDensity.ML", "Microsoft.ML.DeepDensity") })
{
    using var zip = ZipFile.OpenRead(Path.Combine(feed, $"{id}.{version}.nupkg"));
    var names = zip.Entries.Select(e => e.FullName).ToHashSet();
    string nuspec = new StreamReader(zip.GetEntry($"{id}.nuspec")!.Open()).ReadToEnd();
    var problems = new List<string>();
    if (!names.Contains("README.md")) problems.Add("no README.md");
    // A package page shows the README without the repository around it: a relative link there is a broken link.
    else if (System.Text.RegularExpressions.Regex.IsMatch(new StreamReader(zip.GetEntry("README.md")!.Open()).ReadToEnd(), @"\]\((?!https?://|#)"))
        problems.Add("README.md has a relative link");
    if (!nuspec.Contains($"<id>{id}</id>")) problems.Add($"the nuspec's id is not {id}");
    foreach (var tfm in new[] { "net8.0", "net10.0" })
        if (!names.Contains($"lib/{tfm}/{assembly}.dll") || !names.Contains($"lib/{tfm}/{assembly}.xml")) problems.Add($"no {tfm} assembly with XML docs");
    if (!nuspec.Contains("<license type=\"expression\">MIT</license>")) problems.Add("no licence expression");
    if (!File.Exists(Path.Combine(feed, $"{id}.{version}.snupkg"))) problems.Add("no symbols package (.snupkg)");
    // NuGet splits tags at spaces: "density estimation" would be two tags, neither of them the one meant.
    if (!nuspec.Contains("density-estimation") || nuspec.Contains(" estimation ")) problems.Add("tags are not single words");
    if (id == "DeepDensity.ML" && !nuspec.Contains("id=\"Microsoft.ML\" version=\"[5.0.1, 6.0.0)\""))
        problems.Add("dependency on Microsoft.ML is not [5.0.1, 6.0.0)");
    if (id == "DeepDensity.ML" && !nuspec.Contains($"id=\"DeepDensity.ML.Core\" version=\"{version}\""))
        problems.Add("no dependency on the engine package of the same version");
    if (problems.Count > 0) { Console.WriteLine($"{id}: {string.Join("; ", problems)}"); return 1; }
}
// 2. The packed ML.NET layer works in an ordinary pipeline.
var ml = new MLContext(seed: 1);
var rng = new Random(1);
var rows = Enumerable.Range(0, 400).Select(_ => new Row { Features = new[] { (float)rng.NextDouble(), (float)rng.NextDouble(), (float)rng.NextDouble() } }).ToList();
var data = ml.Data.LoadFromEnumerable(rows);
var model = ml.DensityEstimation.Rnade("Features", hiddenUnits: 8, components: 2, maxEpochs: 3).Fit(data);
var ld = ml.Data.CreateEnumerable<Out>(model.Transform(data), reuseRowObject: false).Select(o => o.LogDensity).ToArray();
if (ld.Length != 400 || ld.Any(v => !float.IsFinite(v))) { Console.WriteLine("bad scores"); return 1; }
Console.WriteLine($"packed package works: {ld.Length} rows, average LogDensity {ld.Average():F3}");
return 0;
class Row { [VectorType(3)] public float[] Features { get; set; } = []; }
class Out { public float LogDensity { get; set; } }
CS
cat > "$work/app/nuget.config" <<XML
<configuration><packageSources><add key="local" value="$work/feed" /></packageSources></configuration>
XML
dotnet run --project "$work/app/app.csproj" -c Release -- "$work/feed" "$version"

# 3. The package README's example, copied as a user copies it: on net10.0 as written, and on net8.0, whose default
# language (C# 12) has no extension properties, with the README's own replacement for ml.DensityEstimation. The example
# assumes views trainView and testView with Single columns A, B, C and Label: a second file provides them. Run on this
# machine's runtime (rolled forward to a newer major version when no .NET 8 runtime is installed).
readme=build/nuget/README.md
net8_catalog='new DensityEstimationCatalog(ml)'
grep -qF "$net8_catalog" "$readme" || { echo "$readme does not say what a net8.0 (C# 12) project writes for ml.DensityEstimation ($net8_catalog)"; exit 1; }
for tfm in net10.0 net8.0; do
  dir="$work/readme-$tfm"
  mkdir -p "$dir"
  cp "$work/app/Directory.Build.props" "$work/app/Directory.Packages.props" "$work/app/nuget.config" "$dir/"
  cat > "$dir/readme.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>$tfm</TargetFramework><ImplicitUsings>enable</ImplicitUsings>
    <ManagePackageVersionsCentrally>false</ManagePackageVersionsCentrally></PropertyGroup>
  <ItemGroup><PackageReference Include="DeepDensity.ML" Version="$version" /></ItemGroup>
</Project>
XML
  awk '/^```csharp/ { on = 1; next } /^```/ { on = 0 } on' "$readme" > "$dir/Program.cs"
  [ "$tfm" = net8.0 ] && sed -i "s/ml\.DensityEstimation/$net8_catalog/" "$dir/Program.cs"
  cat > "$dir/Views.cs" <<'CS'
global using static Views;
using Microsoft.ML;
public static class Views
{
    public static readonly IDataView trainView = Make(400, 1), testView = Make(100, 2);
    private static IDataView Make(int rows, int seed)
    {
        var rng = new Random(seed);
        return new MLContext(seed).Data.LoadFromEnumerable(Enumerable.Range(0, rows).Select(i => new Row
        {
            A = (float)rng.NextDouble() + (i % 10 == 0 ? 5 : 0), B = (float)rng.NextDouble(), C = (float)rng.NextDouble(), Label = i % 10 == 0 ? 1 : 0,
        }).ToList());
    }
    public sealed class Row { public float A { get; set; } public float B { get; set; } public float C { get; set; } public float Label { get; set; } }
}
CS
  (cd "$dir" && DOTNET_ROLL_FORWARD=Major dotnet run -c Release --nologo -v q) || { echo "the package README's example fails on $tfm"; exit 1; }
  echo "the package README's example builds and runs on $tfm"
done
