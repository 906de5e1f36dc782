#!/usr/bin/env bash
# Networking figures for the note: one-stream TCP throughput between two appliance VMs on a bridge network, and between
# a VM and its host over the bridge and over QEMU user-mode networking (virtio-net everywhere). The server runs in a
# network namespace the benchmark creates and deletes (root needed); guests send with busybox dd | nc, the host with
# socat; every byte is counted at the receiver. Under TCG the guest CPU sets the rate, not the network.
# Usage: sudo scripts/bench/networking-throughput.sh [MIB]   (default 64; NETWORKING_BENCH_ACCEL=kvm where KVM works)
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/appliance/build.sh >/dev/null
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
NETWORKING_BENCH_OUT=$out NETWORKING_BENCH_MIB=${1:-64} \
  dotnet test StratusLab.Server.Tests/StratusLab.Server.Tests.csproj -c Release --nologo -v quiet --logger "console;verbosity=normal" \
  --filter "FullyQualifiedName~NetworkingThroughputBenchmark" >&2 || status=$?
cat "$out"
exit $status
