#!/usr/bin/env bash
# Runs every test this machine can run, and says which.
#   - With ML.NET available (MLNetDir set to a folder of Microsoft.ML.*.dll, or /opt/mlnet present, or
#     DEEPDENSITY_USE_NUGET_MLNET=1 on a machine whose NuGet feed serves Microsoft.ML 5.0.0): the whole solution.
#   - Otherwise: the ML.NET-free part (engine, models, conformance suite), and it says so plainly.
set -uo pipefail
cd "$(dirname "$0")/.."
config=${CONFIGURATION:-Release}
mlnet=${MLNetDir:-}
if [ -z "$mlnet" ] && [ -f /opt/mlnet/Microsoft.ML.Data.dll ]; then mlnet=/opt/mlnet; fi

log=$(mktemp)
if [ -n "$mlnet" ]; then
  echo "== ML.NET assemblies from $mlnet: running the whole solution (engine + ML.NET layer)"
  dotnet test DeepDensity.ML.sln -c "$config" -p:MLNetDir="$mlnet" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
elif [ "${DEEPDENSITY_USE_NUGET_MLNET:-0}" = "1" ]; then
  echo "== Microsoft.ML from NuGet: running the whole solution (engine + ML.NET layer)"
  dotnet test DeepDensity.ML.sln -c "$config" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
else
  echo "== No ML.NET assemblies on this machine (no MLNetDir, no /opt/mlnet): running ONLY the ML.NET-free part (engine and models)."
  dotnet test DeepDensity.ML.Core.slnf -c "$config" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
fi
passed=$(grep -Eo 'Passed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
failed=$(grep -Eo 'Failed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
skipped=$(grep -Eo 'Skipped: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
rm -f "$log"
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit "$status"
