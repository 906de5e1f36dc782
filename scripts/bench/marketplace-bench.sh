#!/usr/bin/env bash
# Marketplace figures for the note: query latency (median, p99) over N signed entries for a filtered and a
# free-text search, and the time to upload and validate one entry. A real server in-process on 127.0.0.1,
# measured over HTTP (and in-process for comparison), Release build.
# Usage: scripts/bench/marketplace-bench.sh [ENTRIES]   (default 10000; StratusLab's own Marketplace held 111)
set -euo pipefail
cd "$(dirname "$0")/../.."
entries=${1:-10000}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
MARKETPLACE_BENCH_ENTRIES=$entries MARKETPLACE_BENCH_OUT=$out \
  dotnet test StratusLab.Server.Tests/StratusLab.Server.Tests.csproj -c Release --nologo -v quiet --logger "console;verbosity=normal" \
  --filter "FullyQualifiedName~MarketplaceBenchmark" >&2 || status=$?
cat "$out"
exit $status
