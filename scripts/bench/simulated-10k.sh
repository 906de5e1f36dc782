#!/usr/bin/env bash
# Issue 19: a modelled site of N simulated instances (default 10000) on the embedded defaults: no network widened, no
# port range changed. One simulated host large enough is added and the admin's own quota lifted (what an admin
# modelling a site does), then N instances
# are launched in requests of 1000 (the per-request maximum) on the default network, and the script waits until all are
# RUNNING. Reports the time from the first request to all RUNNING, the launch rate, and the server's resident memory.
# N=2000 scripts/bench/simulated-10k.sh for a smaller run.
source "$(dirname "$0")/lib.sh"
n=${N:-10000}
binary=$(bench_binary)
work=$(mktemp -d)
trap 'stop_server; rm -rf "$work"' EXIT
PORT=$(free_port)
start_server "$binary" "$work/data" "$PORT" STRATUSLAB__Compute__Driver=simulated
rss_idle=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
api POST /api/v1/quotas/admin '{"vms":-1,"cpus":-1,"memoryMiB":-1,"storageGiB":-1}' >/dev/null
api POST /api/v1/hosts "{\"name\":\"sim-site\",\"driver\":\"simulated\",\"cpus\":$((n * 2)),\"memoryMiB\":$((n * 256))}" >/dev/null

count_state() {
  local state=$1 total=0 offset=0 page
  while :; do
    page=$(api GET "/api/v1/instances?state=$state&limit=1000&offset=$offset" | json 'len(j)')
    total=$((total + page)); offset=$((offset + 1000))
    [[ "$page" -lt 1000 ]] && break
  done
  echo "$total"
}

start=$(date +%s.%N)
left=$n
while ((left > 0)); do
  batch=$((left > 1000 ? 1000 : left))
  out=$(api POST /api/v1/instances "{\"count\":$batch,\"cpu\":1,\"memoryMiB\":64}")
  echo "$out" | json 'len(j)' >/dev/null || { echo "launch refused: $out" >&2; exit 1; }
  left=$((left - batch))
done
admitted=$(date +%s.%N)
peak=0
while :; do
  running=$(count_state RUNNING)
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status"); ((rss > peak)) && peak=$rss
  echo "$(date +%T) RUNNING $running/$n, RSS $((rss / 1024)) MiB" >&2
  [[ "$running" -ge "$n" ]] && break
  failed=$(count_state FAILED)
  [[ "$failed" -gt 0 ]] && { echo "$failed instance(s) FAILED:" >&2; api GET "/api/v1/instances?state=FAILED&limit=3" >&2; exit 1; }
  sleep 2
done
done_at=$(date +%s.%N)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
python3 - <<PY
n, start, admitted, done = $n, $start, $admitted, $done_at
print(f"{n} simulated instances on the defaults (default user network, PAT range untouched)")
print(f"  admitted (10 x POST count<=1000): {admitted - start:.1f} s")
print(f"  first request to all RUNNING:     {done - start:.1f} s ({n / (done - start):.0f} instances/s)")
print(f"  server RSS: idle {$rss_idle / 1024:.0f} MiB, peak while launching {$peak / 1024:.0f} MiB, at the end {$rss / 1024:.0f} MiB "
      f"({($rss - $rss_idle) / n:.1f} KiB per instance)")
PY
