#!/usr/bin/env bash
# Issue 12 item 7 figure: the disk space a cached URL image takes. A 2 GiB raw image holding 500 MiB of data (in
# 50 MiB runs spread over the disk, zeros between them) is served by python3's http.server on 127.0.0.1 and
# prefetched into the cache; the script prints the allocated bytes (du) of the cached ORIGIN, of the whole cache and
# data dir, and the peak allocated bytes of the partial download while it ran.
# Usage: scripts/bench/image-sparse.sh [VIRTUAL_MiB] [DATA_MiB]   (defaults 2048 500)
source "$(dirname "$0")/lib.sh"
virtual_mib=${1:-2048}
data_mib=${2:-500}
binary=$(bench_binary)
work=$(mktemp -d)
trap 'stop_server; kill "$HTTP_PID" "$WATCH_PID" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/www"
image="$work/www/sparse.raw"
truncate -s "${virtual_mib}M" "$image"
runs=$(( (data_mib + 49) / 50 ))
stride=$(( virtual_mib / runs ))
for i in $(seq 0 $((runs - 1))); do
  size=$(( i == runs - 1 ? data_mib - 50 * (runs - 1) : 50 ))
  dd if=/dev/urandom of="$image" bs=1M count="$size" seek=$(( i * stride )) conv=notrunc status=none
done
echo "source: $(du --apparent-size -B1 "$image" | cut -f1) bytes long, $(du -B1 "$image" | cut -f1) bytes allocated"
http_port=$(free_port)
(cd "$work/www" && exec python3 -m http.server "$http_port" --bind 127.0.0.1 >/dev/null 2>&1) &
HTTP_PID=$!
sleep 1

PORT=$(free_port)
start_server "$binary" "$work/data" "$PORT" STRATUSLAB__Compute__Driver=simulated STRATUSLAB__Images__MaxCacheMiB=20000
api POST /api/v1/quotas/admin '{"vms":-1,"cpus":-1,"memoryMiB":-1,"storageGiB":-1}' >/dev/null

# The partial download's allocated size, sampled while it runs (the file is written with holes, not only the result).
( peak=0; while sleep 0.2; do
    for f in "$work/data/images/partial/"*; do [[ -f $f ]] || continue; a=$(du -B1 "$f" 2>/dev/null | cut -f1); (( ${a:-0} > peak )) && peak=$a && echo "$peak" >"$work/peak"; done
  done ) &
WATCH_PID=$!
started=$(date +%s.%N)
entry=$(api POST /api/v1/images/prefetch "{\"image\":\"http://127.0.0.1:$http_port/sparse.raw\"}")
ended=$(date +%s.%N)
kill "$WATCH_PID" 2>/dev/null || true
origin=$(echo "$entry" | json 'j["origin"]')
file=$(ls "$work/data/volumes/$origin".* 2>/dev/null || find "$work/data" -name "$origin.*" | head -1)
echo "prefetch took $(python3 -c "print(f'{$ended-$started:.1f}')") s"
echo "cached ORIGIN $(basename "$file"): $(du --apparent-size -B1 "$file" | cut -f1) bytes long, $(du -B1 "$file" | cut -f1) bytes allocated"
echo "data dir allocated: $(du -sB1 "$work/data" | cut -f1) bytes; peak allocated partial download: $(cat "$work/peak" 2>/dev/null || echo 0) bytes"
