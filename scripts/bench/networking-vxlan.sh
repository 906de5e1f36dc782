#!/usr/bin/env bash
# Bridge networks across SSH nodes: one-stream TCP throughput VM to VM on one bridge (two appliance VMs on the front-end)
# and across the VXLAN (a VM on an SSH node to one on the front-end, and node to node), in the same run, with the ratios.
# The server runs in a network namespace the benchmark creates, two nodes in others with their own sshd, each linked to
# the server's by a veth pair (the VXLAN underlay); all are deleted afterwards (root needed). Guests send with busybox
# dd | nc; every byte is counted at the receiver. Under TCG the guest CPU sets the rate: read the ratios, not the absolutes.
# Usage: sudo scripts/bench/networking-vxlan.sh [MIB]   (default 32)
source "$(dirname "$0")/lib.sh"
"$bench_root/scripts/appliance/build.sh" >/dev/null
host_benchmark "FullyQualifiedName~NetworkingVxlanBenchmark" NETWORKING_BENCH_MIB="${1:-32}"
