#!/usr/bin/env bash
# Issue 17 figures for volumes on SSH nodes: a guest on an SSH node (a network namespace with its own sshd, made by the
# host test) reads 48 MiB of a Pdisk volume over iSCSI (the front-end's tgtd, QEMU's own initiator on the node) and 48 MiB
# of its node-local boot disk (the node cache's overlay), same VM, same run; plus request -> RUNNING on the node with
# the volume attached at launch. Runs Host/SshNodeIscsiHostTests and prints the lines it reports. Root needed.
# Usage: sudo scripts/bench/node-volumes.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/appliance/build.sh >/dev/null
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
dotnet test StratusLab.Server.Tests/StratusLab.Server.Tests.csproj --nologo -v quiet --logger "console;verbosity=normal" \
  --filter "FullyQualifiedName~SshNodeIscsiHostTests" >"$log" 2>&1 || status=$?
grep -E "request -> RUNNING|reads 48 MiB|Passed|Failed" "$log" || cat "$log"
exit $status
