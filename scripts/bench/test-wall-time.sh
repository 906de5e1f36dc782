#!/usr/bin/env bash
# Where the test suite's wall time goes: runs the suite (extra arguments go to 'dotnet test', e.g. --filter ...) with a
# TRX logger, then prints per-fixture spans, idle time before each fixture (its OneTimeSetUp), the time during which
# only one test ran, and the run's parallel efficiency (summed test time / wall time), from test-wall-time.py.
# Usage: scripts/bench/test-wall-time.sh [dotnet test arguments]   (TRX kept in $STRATUSLAB_TRX_DIR, default a temp dir)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${STRATUSLAB_TRX_DIR:-$(mktemp -d)}
mkdir -p "$out"
dotnet build stratuslab.sln -v q --nologo >/dev/null
start=$(date +%s)
dotnet test stratuslab.sln --no-build --nologo -v quiet --logger "trx;LogFileName=$out/run.trx" "$@" >"$out/console.log" 2>&1 || true
echo "dotnet test wall time: $(( $(date +%s) - start )) s (console output: $out/console.log)"
scripts/bench/test-wall-time.py "$out/run.trx" 30
