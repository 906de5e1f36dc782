#!/usr/bin/env bash
# Networking figure for the note: the time to bring a bridge NIC up (tap on the bridge, its nft chains and PAT entries,
# its DHCP entry with a dnsmasq restart) and down again, and to bring a whole bridge network up and down with its first
# and last NIC. The real BridgeNetworkDriver runs ip, nft, sysctl and dnsmasq inside a network namespace it creates and
# deletes (root needed). Release build. Usage: sudo scripts/bench/networking-nic.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
NETWORKING_BENCH_OUT=$out \
  dotnet test StratusLab.Server.Tests/StratusLab.Server.Tests.csproj -c Release --nologo -v quiet --logger "console;verbosity=normal" \
  --filter "FullyQualifiedName~NetworkingBenchmark.Time_to_bring" >&2 || status=$?
cat "$out"
exit $status
