#!/usr/bin/env bash
# Issue 11 figure: store round trips (connections opened + commands sent, every module) of one deployment,
# PENDING to RUNNING, read from the server's own histogram stratuslab.compute.deploy.store_round_trips on /metrics.
# Simulated driver: no media, so only the control path is counted; the qemu driver adds the image cache, Pdisk mount
# and context steps (run with DRIVER=qemu to see those).
# Usage: scripts/bench/deploy-round-trips.sh [INSTANCES]   (default 20)
source "$(dirname "$0")/lib.sh"
count=${1:-20}
driver=${DRIVER:-simulated}
binary=$(bench_binary)
appliance=$("$bench_root/scripts/appliance/build.sh")
work=$(mktemp -d)
trap 'stop_server; pkill -f "qemu-system.*$work" 2>/dev/null || true; rm -rf "$work"' EXIT

PORT=$(free_port)
start_server "$binary" "$work/data" "$PORT" STRATUSLAB__Compute__Driver="$driver" STRATUSLAB__Compute__ApplianceImage="$appliance" \
  STRATUSLAB__Compute__SimulatedDelayMs=0
for i in $(seq "$count"); do
  id=$(api POST /api/v1/instances '{"name":"trips"}' | json 'j["id"]')
  api GET "/api/v1/instances/$id/wait?state=RUNNING&timeout=300" >/dev/null
  # Give the host back, so every deployment finds room (the count measures deployments, not capacity).
  api DELETE "/api/v1/instances/$id" >/dev/null
  api GET "/api/v1/instances/$id/wait?state=DONE&timeout=60" >/dev/null
done
metrics=$(curl -sS "http://127.0.0.1:$PORT/metrics")
sum=$(grep -E '^stratuslab_compute_deploy_store_round_trips[a-z_]*_sum' <<<"$metrics" | awk '{print $2}' | head -1)
n=$(grep -E '^stratuslab_compute_deploy_store_round_trips[a-z_]*_count' <<<"$metrics" | awk '{print $2}' | head -1)
python3 -c "print(f'driver $driver: {int(float($n))} deployments, {float($sum)/float($n):.1f} store round trips each (before the change: 47 with the simulated driver)')"
