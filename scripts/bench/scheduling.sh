#!/usr/bin/env bash
# Issue 4 figures: time from request to all RUNNING for 30, 100 and 1000 instances on simulated
# hosts (median of RUNS), the server's peak memory in the 1000 case, and the scheduling latency of a
# single instance (request admitted to host chosen), all from the server's own timestamps.
# Usage: scripts/bench/scheduling.sh [RUNS] [HOSTS]   (defaults 3, 50)
source "$(dirname "$0")/lib.sh"
runs=${1:-3}
hosts=${2:-50}
binary=$(bench_binary)
work=$(mktemp -d)
trap 'stop_server; rm -rf "$work"' EXIT
PORT=$(free_port)
# No simulated action delay, many deployments at once: this measures the control plane.
# Every instance leases an address on the default network: 1000 need more than its /24.
start_server "$binary" "$work/data" "$PORT" STRATUSLAB__Compute__Driver=simulated STRATUSLAB__Compute__SimulatedDelayMs=0 \
  STRATUSLAB__Compute__MaxConcurrentDeployments=256 STRATUSLAB__Logging__LogLevel__Default=Warning \
  STRATUSLAB__Networking__DefaultNetwork__Cidr=10.0.0.0/16
api POST /api/v1/quotas/admin '{"vms":-1,"cpus":-1,"memoryMiB":-1,"storageGiB":-1}' >/dev/null
head -c $((1 << 20)) /dev/zero >"$work/tiny.raw"
api POST /api/v1/images "{\"name\":\"tiny\",\"path\":\"$work/tiny.raw\",\"default\":true}" >/dev/null
for i in $(seq "$hosts"); do api POST /api/v1/hosts "{\"name\":\"sim-$i\",\"driver\":\"simulated\",\"cpus\":64,\"memoryMiB\":65536}" >/dev/null; done

# batch N: starts N instances (requests of at most 1000), waits until all RUNNING, prints seconds from first createdAt to last startedAt.
batch() {
  local n=$1 ids=() left=$1
  while ((left > 0)); do
    local c=$((left > 1000 ? 1000 : left))
    mapfile -t -O "${#ids[@]}" ids < <(api POST /api/v1/instances "{\"instanceType\":\"t1.tiny\",\"count\":$c,\"policy\":\"striping\"}" | json '"\n".join(str(i["id"]) for i in j)')
    left=$((left - c))
  done
  api GET "/api/v1/instances/${ids[-1]}/wait?state=RUNNING&timeout=300" >/dev/null
  for _ in $(seq 600); do
    [[ $(api GET "/api/v1/instances?state=RUNNING&limit=1000" | json 'len(j)') -ge $n ]] && break
    sleep 0.05
  done
  api GET "/api/v1/instances?state=RUNNING&limit=1000" | json 'max(__import__("datetime").datetime.fromisoformat(i["startedAt"].replace("Z","+00:00")) for i in j) - min(__import__("datetime").datetime.fromisoformat(i["createdAt"].replace("Z","+00:00")) for i in j)' |
    python3 -c 'import sys; h,m,s=sys.stdin.read().strip().split(":"); print(f"{float(s)+60*int(m):.3f}")'
  for id in "${ids[@]}"; do echo "$id"; done >"$work/ids"
  api GET "/api/v1/instances?state=RUNNING&limit=1000" | json '"\n".join(str(i["id"]) for i in j)' | while read -r id; do api DELETE "/api/v1/instances/$id" >/dev/null; done
  for _ in $(seq 600); do
    [[ $(api GET "/api/v1/instances?state=RUNNING,EPILOG&limit=1000" | json 'len(j)') -eq 0 ]] && break
    sleep 0.1
  done
}

peak=0
for n in 30 100 1000; do
  : >"$work/t$n"
  for _ in $(seq "$runs"); do
    batch "$n" >>"$work/t$n"
    rss=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER_PID/status"); ((rss > peak)) && peak=$rss
  done
  echo "$n instances on $hosts simulated hosts, request to all RUNNING: median $(median <"$work/t$n") s (runs: $(tr '\n' ' ' <"$work/t$n"))"
done
echo "server peak resident memory (VmHWM) after the 1000-instance runs: $((peak / 1024)) MiB"

: >"$work/single"
for _ in $(seq 20); do
  id=$(api POST /api/v1/instances '{"instanceType":"t1.tiny"}' | json 'j["id"]')
  node=$(api GET "/api/v1/instances/$id/wait?state=RUNNING&timeout=60")
  python3 -c "import json,sys; from datetime import datetime as d; j=json.loads(sys.argv[1]); f=lambda s: d.fromisoformat(s.replace('Z','+00:00')); print((f(j['placedAt'])-f(j['createdAt'])).total_seconds()*1000)" "$node" >>"$work/single"
  api DELETE "/api/v1/instances/$id" >/dev/null
done
echo "single instance, request admitted to host chosen: median $(median <"$work/single") ms over 20 (max $(sort -n "$work/single" | tail -1 | cut -c1-6) ms)"
