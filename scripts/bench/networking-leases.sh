#!/usr/bin/env bash
# Networking figures for the note: lease allocation rate on a /16 network — the allocator on a real SQLite store (one
# allocator, then 16 at once; empty, nearly full, and with a wrapped cursor), and holds through the HTTP API.
# Release build; the server's own code, no mocks. Usage: scripts/bench/networking-leases.sh
source "$(dirname "$0")/lib.sh"
host_benchmark "FullyQualifiedName~NetworkingBenchmark.Lease|FullyQualifiedName~NetworkingBenchmark.Holds"
