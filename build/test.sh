#!/usr/bin/env bash
# The project's test command (CI's .ci/run calls it): builds the whole solution with Microsoft.ML from NuGet,
# runs every test (engine, models, conformance suite and the ML.NET layer), then packs the two library packages and
# checks that a throwaway project referencing the packed ML.NET package restores and runs a fit/transform.
# Needs only the .NET SDK and a NuGet feed. Last line: `tests: N passed, N failed, N skipped`.
set -uo pipefail
cd "$(dirname "$0")/.."
config=${CONFIGURATION:-Release}

log=$(mktemp)
echo "== Whole solution (engine, models, conformance suite, ML.NET layer; Microsoft.ML from NuGet)"
dotnet test DeepDensity.ML.sln -c "$config" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
passed=$(grep -Eo 'Passed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
failed=$(grep -Eo 'Failed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
skipped=$(grep -Eo 'Skipped: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
rm -f "$log"

echo "== Packages: dotnet pack, then a throwaway project that uses the packed ML.NET package"
if bash build/pack-check.sh "$config"; then
  passed=$((passed + 1)); echo "package check: passed"
else
  failed=$((failed + 1)); status=1; echo "package check: FAILED"
fi

if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit "$status"
