#!/usr/bin/env bash
# OCCI figures for the note: EGI's probe sequence end to end on the simulated driver (query interface, create from
# os_tpl + resource_tpl, poll until active, storage + storagelink, stop, delete, poll until 404), next to the same steps
# through REST in the same run; and the query interface's size (text/plain body, text/occi headers) and GET /-/ latency
# with N signed Marketplace images, next to the same with none. A real server in-process on 127.0.0.1, Release build.
# Usage: scripts/bench/occi-probe.sh [IMAGES] [RUNS]   (defaults 1000 and 20)
set -euo pipefail
cd "$(dirname "$0")/../.."
images=${1:-1000}
runs=${2:-20}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
OCCI_BENCH_IMAGES=$images OCCI_BENCH_RUNS=$runs OCCI_BENCH_OUT=$out \
  dotnet test StratusLab.Server.Tests/StratusLab.Server.Tests.csproj -c Release --nologo -v quiet --logger "console;verbosity=normal" \
  --filter "FullyQualifiedName~OcciBenchmark" >&2 || status=$?
cat "$out"
exit $status
