#!/usr/bin/env bash
# Networking figure for the note: the time to bring a bridge NIC up (tap on the bridge, its nft chains and PAT entries,
# its DHCP entry with a dnsmasq restart) and down again, and to bring a whole bridge network up and down with its first
# and last NIC. The real BridgeNetworkDriver runs ip, nft, sysctl and dnsmasq inside a network namespace it creates and
# deletes (root needed). Release build. Usage: sudo scripts/bench/networking-nic.sh
source "$(dirname "$0")/lib.sh"
host_benchmark "FullyQualifiedName~NetworkingBenchmark.Time_to_bring"
