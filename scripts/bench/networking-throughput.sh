#!/usr/bin/env bash
# Networking figures for the note: one-stream TCP throughput between two appliance VMs on a bridge network, and between
# a VM and its host over the bridge and over QEMU user-mode networking (virtio-net everywhere). The server runs in a
# network namespace the benchmark creates and deletes (root needed); guests send with busybox dd | nc, the host with
# socat; every byte is counted at the receiver. Under TCG the guest CPU sets the rate, not the network.
# Usage: sudo scripts/bench/networking-throughput.sh [MIB]   (default 64; NETWORKING_BENCH_ACCEL=kvm where KVM works)
source "$(dirname "$0")/lib.sh"
"$bench_root/scripts/appliance/build.sh" >/dev/null
host_benchmark "FullyQualifiedName~NetworkingThroughputBenchmark" NETWORKING_BENCH_MIB="${1:-64}"
