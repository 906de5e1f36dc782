#!/usr/bin/env bash
# Bridge networks across SSH nodes: one-stream TCP throughput VM to VM on one bridge (two appliance VMs on the front-end)
# and across the VXLAN (a VM on an SSH node to one on the front-end), in the same run. The server runs in a network
# namespace the benchmark creates, the node in another with its own sshd, linked by a veth pair (the VXLAN underlay);
# all are deleted afterwards (root needed). Guests send with busybox dd | nc; every byte is counted at the receiver.
# Under TCG the guest CPU sets the rate, not the network: read the ratio, not the absolutes.
# Usage: sudo scripts/bench/networking-vxlan.sh [MIB]   (default 32)
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/appliance/build.sh >/dev/null
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
NETWORKING_BENCH_OUT=$out NETWORKING_BENCH_MIB=${1:-32} \
  dotnet test StratusLab.Server.Tests/StratusLab.Server.Tests.csproj -c Release --nologo -v quiet --logger "console;verbosity=normal" \
  --filter "FullyQualifiedName~NetworkingVxlanBenchmark" >&2 || status=$?
cat "$out"
exit $status
