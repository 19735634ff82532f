#!/usr/bin/env bash
# Packs the engine and the ML.NET layer into a local folder, then builds and runs a throwaway console project that
# references the packed Microsoft.ML.DeepDensity package (and, through it, the engine and Microsoft.ML from NuGet):
# fit RNADE in an ML.NET pipeline, transform, and print the average LogDensity. Fails if any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-Release}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
version=0.0.0-ci.$(date +%s)
dotnet pack src/Microsoft.ML.DeepDensity/Microsoft.ML.DeepDensity.csproj -c "$config" -o "$work/feed" -p:Version="$version" --nologo -v q
for p in Microsoft.ML.DeepDensity.Core Microsoft.ML.DeepDensity; do
  f="$work/feed/$p.$version.nupkg"
  [ -f "$f" ] || { echo "missing package $f"; exit 1; }
  # README, XML docs and licence are part of each package.
  unzip -l "$f" | grep -q 'README.md' || { echo "$p: no README in the package"; exit 1; }
  unzip -l "$f" | grep -q "lib/net8.0/$p.xml" || { echo "$p: no XML docs for net8.0"; exit 1; }
  unzip -p "$f" "$p.nuspec" | grep -q '<license type="expression">MIT</license>' || { echo "$p: no licence expression"; exit 1; }
done
unzip -p "$work/feed/Microsoft.ML.DeepDensity.$version.nupkg" Microsoft.ML.DeepDensity.nuspec | grep -q 'id="Microsoft.ML" version="\[5.0.1, 6.0.0)"' \
  || { echo "Microsoft.ML.DeepDensity: dependency range on Microsoft.ML is not [5.0.1, 6.0.0)"; exit 1; }

mkdir -p "$work/app"
cat > "$work/app/app.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><ImplicitUsings>enable</ImplicitUsings>
    <ManagePackageVersionsCentrally>false</ManagePackageVersionsCentrally></PropertyGroup>
  <ItemGroup><PackageReference Include="Microsoft.ML.DeepDensity" Version="$version" /></ItemGroup>
</Project>
XML
cat > "$work/app/Directory.Build.props" <<'XML'
<Project></Project>
XML
cat > "$work/app/Directory.Packages.props" <<'XML'
<Project></Project>
XML
cat > "$work/app/Program.cs" <<'CS'
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.DeepDensity;
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
dotnet run --project "$work/app/app.csproj" -c Release --nologo -v q
