#!/usr/bin/env bash
# Web dashboard figures for the note: the server's time to render the instances page with 1,000 simulated instances
# (next to the REST list of the same 1,000, same run), and first paint to interactive in Chromium (Debian's chromium,
# driven by Playwright) for that page, next to the Marketplace page in the same run.
# Usage: scripts/bench/web-dashboard.sh [RUNS]   (default 20 server renders)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
WEB_BENCH_OUT=$out WEB_BENCH_RUNS=${1:-20} \
  dotnet test StratusLab.Server.Tests/StratusLab.Server.Tests.csproj --nologo -v quiet --logger "console;verbosity=normal" \
  --filter "FullyQualifiedName~WebDashboardBenchmark" >&2 || status=$?
cat "$out"
exit $status
