#!/usr/bin/env bash
# Pdisk figures for the note (issue 5), against a real server (Release build) on a temp data dir:
#  1. sequential write and read of a 1 GiB volume through iSCSI (QEMU's own initiator, via qemu-img) and through
#     the volume's local path, each next to a plain raw file on the same disk, as ratios;
#  2. copy-on-write snapshot creation time (API round trip) for a 16 MiB and a 4 GiB origin, local and iSCSI.
# Client for every transfer: qemu-img convert -W -m 16 -S 0 (parallel, large writes) from/to a RAM file.
# Writes end durable (-t writeback: a final flush, which tgtd turns into fdatasync); reads start cold
# (page cache dropped). Needs root (tgtd, drop_caches). Usage: scripts/bench/pdisk-bench.sh [RUNS] (default 3)
source "$(dirname "$0")/lib.sh"
runs=${1:-3}
binary=$(bench_binary)
work=$(mktemp -d /var/tmp/pdisk-bench.XXXXXX)
ram=$(mktemp -d /dev/shm/pdisk-bench.XXXXXX)
cleanup() {
  # Volumes first (their iSCSI targets go with them), then the server and the files.
  if [[ -n "${SERVER_PID:-}" ]]; then
    for uuid in $(api GET /api/v1/volumes 2>/dev/null | json "' '.join(v['uuid'] for v in j if v['origin'])" 2>/dev/null) \
                $(api GET /api/v1/volumes 2>/dev/null | json "' '.join(v['uuid'] for v in j)" 2>/dev/null); do
      api DELETE "/api/v1/volumes/$uuid" >/dev/null 2>&1 || true
    done
  fi
  stop_server
  rm -rf "$work" "$ram"
}
trap cleanup EXIT
PORT=$(free_port)
export PORT
start_server "$binary" "$work/data" "$PORT" STRATUSLAB__Compute__Driver=simulated

size=$((1 << 30))
head -c $size /dev/urandom >"$ram/source.raw"
qemu-img create -q -f raw "$ram/back.raw" $size

create() { api POST /api/v1/volumes "$1"; }
iscsi=$(create '{"size": 1, "sharing": "iscsi", "tag": "bench-iscsi"}')
local_=$(create '{"size": 1, "sharing": "local", "tag": "bench-local"}')
iscsi_turl=$(json "j['turl']" <<<"$iscsi")
local_path=$(json "j['turl'][len('file://'):]" <<<"$local_")
raw_path="$work/data/raw-baseline.raw"
qemu-img create -q -f raw "$raw_path" $size
echo "disk: $(df --output=source,fstype "$work" | tail -1 | xargs), $(nproc) CPUs; iSCSI: $iscsi_turl" >&2

seconds() { local start end; start=$(date +%s.%N); "$@" >/dev/null; end=$(date +%s.%N); python3 -c "print($end - $start)"; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# write TARGET: durable sequential write of 1 GiB from RAM; prints MiB/s (median of $runs).
write() {
  for _ in $(seq "$runs"); do
    seconds qemu-img convert -t writeback -W -m 16 -S 0 -n -f raw -O raw "$ram/source.raw" "$1"
  done | median | python3 -c "import sys; print(f'{1024/float(sys.stdin.read()):.0f}')"
}
# read SOURCE: cold sequential read of 1 GiB into RAM; prints MiB/s (median of $runs).
read_() {
  for _ in $(seq "$runs"); do
    drop_caches
    seconds qemu-img convert -W -m 16 -S 0 -n -f raw -O raw "$1" "$ram/back.raw"
  done | median | python3 -c "import sys; print(f'{1024/float(sys.stdin.read()):.0f}')"
}
# O_DIRECT raw file copy, as GUEST-NOTES measured it (for reference).
direct_write() {
  for _ in $(seq "$runs"); do
    seconds qemu-img convert -t none -W -m 16 -S 0 -n -f raw -O raw "$ram/source.raw" "$raw_path"
  done | median | python3 -c "import sys; print(f'{1024/float(sys.stdin.read()):.0f}')"
}

raw_w=$(write "$raw_path");      local_w=$(write "$local_path");      iscsi_w=$(write "$iscsi_turl")
raw_r=$(read_ "$raw_path");      local_r=$(read_ "$local_path");      iscsi_r=$(read_ "$iscsi_turl")
direct_w=$(direct_write)
cmp -s "$ram/source.raw" "$ram/back.raw" || { echo "the iSCSI read-back differs from what was written" >&2; exit 1; }

ratio() { python3 -c "print(f'{$1/$2*100:.0f}%')"; }
printf '%-34s %10s %10s\n' "1 GiB sequential, MiB/s" "write" "read"
printf '%-34s %10s %10s\n' "raw file (same disk)" "$raw_w" "$raw_r"
printf '%-34s %10s %10s\n' "volume, local path" "$local_w" "$local_r"
printf '%-34s %10s %10s\n' "volume, iSCSI (QEMU initiator)" "$iscsi_w" "$iscsi_r"
printf '%-34s %10s %10s\n' "local / raw" "$(ratio "$local_w" "$raw_w")" "$(ratio "$local_r" "$raw_r")"
printf '%-34s %10s %10s\n' "iSCSI / raw" "$(ratio "$iscsi_w" "$raw_w")" "$(ratio "$iscsi_r" "$raw_r")"
printf '%-34s %10s\n' "raw file, O_DIRECT (-t none) write" "$direct_w"

# Snapshots: a 16 MiB origin (uploaded) and a 4 GiB origin holding 1 GiB of data, each shared local and iSCSI.
head -c $((16 << 20)) /dev/urandom >"$ram/small.raw"
snapshot_ms() {
  local origin=$1
  for _ in $(seq 10); do
    out=$(curl -sS -o "$ram/snap.json" -w '%{time_total}' -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
      -d '{}' "http://127.0.0.1:$PORT/api/v1/volumes/$origin/snapshots")
    api DELETE "/api/v1/volumes/$(json "j['uuid']" <"$ram/snap.json")" >/dev/null
    echo "$out"
  done | median | python3 -c "import sys; print(f'{float(sys.stdin.read())*1000:.0f}')"
}
for sharing in local iscsi; do
  small=$(curl -sS -X POST -H "Authorization: Bearer $TOKEN" --data-binary "@$ram/small.raw" \
    "http://127.0.0.1:$PORT/api/v1/volumes/upload?type=MACHINE_IMAGE_ORIGIN&sharing=$sharing" | json "j['uuid']")
  big_json=$(create "{\"size\": 4, \"type\": \"MACHINE_IMAGE_ORIGIN\", \"sharing\": \"$sharing\"}")
  big=$(json "j['uuid']" <<<"$big_json")
  qemu-img convert -W -m 16 -S 0 -n -f raw -O raw "$ram/source.raw" "$work/data/volumes/$big.raw"
  printf 'snapshot (CoW) creation, %-5s: 16 MiB origin %s ms, 4 GiB origin %s ms (median of 10, HTTP round trip)\n' \
    "$sharing" "$(snapshot_ms "$small")" "$(snapshot_ms "$big")"
  api DELETE "/api/v1/volumes/$small" >/dev/null
  api DELETE "/api/v1/volumes/$big" >/dev/null
done
