#!/usr/bin/env bash
# Networking figures for the note: lease allocation rate on a /16 network — the allocator on a real SQLite store (one
# allocator, then 16 at once; empty, nearly full, and with a wrapped cursor), and holds through the HTTP API.
# Release build; the server's own code, no mocks. Usage: scripts/bench/networking-leases.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
NETWORKING_BENCH_OUT=$out \
  dotnet test StratusLab.Server.Tests/StratusLab.Server.Tests.csproj -c Release --nologo -v quiet --logger "console;verbosity=normal" \
  --filter "FullyQualifiedName~NetworkingBenchmark.Lease|FullyQualifiedName~NetworkingBenchmark.Holds" >&2 || status=$?
cat "$out"
exit $status
