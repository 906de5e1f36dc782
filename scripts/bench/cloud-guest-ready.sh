#!/usr/bin/env bash
# Cloud-init guest figures for the note: request -> SSH-ready of a Debian 12 cloud-init guest (NoCloud seed, 1 CPU,
# 512 MiB) through the server, vs the same image booted by bare QEMU with a hand-made seed, in the same run and with
# the same accelerator; both timed by the same SSH-banner poll. Root needed (the guest is built with debootstrap).
# Usage: sudo scripts/bench/cloud-guest-ready.sh [RUNS]   (default 1)
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/appliance/build-cloud-guest.sh >/dev/null
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
CLOUD_BENCH_OUT=$out CLOUD_BENCH_RUNS=${1:-1} \
  dotnet test StratusLab.Server.Tests/StratusLab.Server.Tests.csproj --nologo -v quiet --logger "console;verbosity=normal" \
  --filter "FullyQualifiedName~CloudGuestReadyBenchmark" >&2 || status=$?
cat "$out"
exit $status
