#!/usr/bin/env bash
# Issue 7 figures: request-to-RUNNING for an uncached vs a cached image (ratio), for a 16 MiB vs a 2 GiB
# cached image (copy-on-write: ratio ~1.0), and the bytes written on a cache hit. Images are served by
# python3's http.server on 127.0.0.1; the simulated driver with Compute:SimulatedMedia=true builds the real
# boot disk (a Pdisk LIVE snapshot of the cached ORIGIN) but starts no QEMU, so only the image path is timed.
# Usage: scripts/bench/images.sh [RUNS]   (default 5)
source "$(dirname "$0")/lib.sh"
runs=${1:-5}
binary=$(bench_binary)
work=$(mktemp -d)
trap 'stop_server; kill "$HTTP_PID" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/www"
head -c $((16 << 20)) /dev/urandom >"$work/www/small.raw"
head -c $((2 << 30)) /dev/urandom >"$work/www/big.raw"
for i in $(seq "$runs"); do head -c $((64 << 20)) /dev/urandom >"$work/www/fresh-$i.raw"; done
http_port=$(free_port)
(cd "$work/www" && exec python3 -m http.server "$http_port" --bind 127.0.0.1 >/dev/null 2>&1) &
HTTP_PID=$!
sleep 1

PORT=$(free_port)
start_server "$binary" "$work/data" "$PORT" STRATUSLAB__Compute__Driver=simulated STRATUSLAB__Compute__SimulatedMedia=true \
  STRATUSLAB__Compute__SimulatedDelayMs=0 STRATUSLAB__Images__MaxCacheMiB=20000
api POST /api/v1/quotas/admin '{"vms":-1,"cpus":-1,"memoryMiB":-1,"storageGiB":-1}' >/dev/null

to_running() { # IMAGE -> seconds from createdAt to startedAt
  local id node
  id=$(api POST /api/v1/instances "{\"image\":\"$1\"}" | json 'j["id"]')
  node=$(api GET "/api/v1/instances/$id/wait?state=RUNNING&timeout=600")
  python3 -c "import json,sys; from datetime import datetime as d; j=json.loads(sys.argv[1]); f=lambda s: d.fromisoformat(s.replace('Z','+00:00')); print(f'{(f(j[\"startedAt\"])-f(j[\"createdAt\"])).total_seconds():.3f}')" "$node"
  api DELETE "/api/v1/instances/$id" >/dev/null
}

url() { echo "http://127.0.0.1:$http_port/$1"; }
: >"$work/uncached"; : >"$work/cached"; : >"$work/small"; : >"$work/big"
for i in $(seq "$runs"); do
  to_running "$(url "fresh-$i.raw")" >>"$work/uncached"   # 64 MiB, downloaded and verified
  to_running "$(url "fresh-$i.raw")" >>"$work/cached"     # the same image again: a hit
done
api POST /api/v1/images/prefetch "{\"image\":\"$(url small.raw)\"}" >/dev/null
api POST /api/v1/images/prefetch "{\"image\":\"$(url big.raw)\"}" >/dev/null
for _ in $(seq "$runs"); do
  to_running "$(url small.raw)" >>"$work/small"
  to_running "$(url big.raw)" >>"$work/big"
done
before=$(du -sb "$work/data" | cut -f1)
id=$(api POST /api/v1/instances "{\"image\":\"$(url big.raw)\"}" | json 'j["id"]')
api GET "/api/v1/instances/$id/wait?state=RUNNING&timeout=60" >/dev/null
after=$(du -sb "$work/data" | cut -f1)

u=$(median <"$work/uncached"); c=$(median <"$work/cached"); s=$(median <"$work/small"); b=$(median <"$work/big")
echo "request-to-RUNNING, median of $runs: uncached 64 MiB image $u s, cached $c s, ratio uncached/cached $(python3 -c "print(f'{$u/$c:.1f}')")"
echo "cached images: 16 MiB $s s, 2 GiB $b s, ratio 2 GiB/16 MiB $(python3 -c "print(f'{$b/$s:.2f}')")"
echo "bytes written to the data dir by a cache hit on the 2 GiB image (store rows + copy-on-write metadata): $((after - before))"
