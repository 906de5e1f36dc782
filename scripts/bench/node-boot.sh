#!/usr/bin/env bash
# Issue 17 figures for boot disks on SSH nodes: request -> RUNNING and request -> the appliance's 'boot complete' console
# line on the front-end, on a node in boot mode cache (first boot of an image the node has not cached, then cached) and
# on a node in boot mode iscsi, same run, ratios to the front-end next to the absolute figures; then 32 MiB read in the
# guest from its boot disk and from one iSCSI volume, a VM on the iscsi node vs one on the front-end. The nodes are
# network namespaces with their own sshd made by the benchmark (Host/NodeBootBenchmark) and removed afterwards; the
# front-end's tgtd serves the volumes. Root needed. Under TCG the guest CPU weighs on every figure: read the ratios.
# Usage: sudo scripts/bench/node-boot.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/appliance/build.sh >/dev/null
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
NODE_BOOT_BENCH_OUT=$out \
  dotnet test StratusLab.Server.Tests/StratusLab.Server.Tests.csproj --nologo -v quiet --logger "console;verbosity=normal" \
  --filter "FullyQualifiedName~NodeBootBenchmark" >&2 || status=$?
cat "$out"
exit $status
