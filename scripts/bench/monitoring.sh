#!/usr/bin/env bash
# Issue 16 figures, with the simulated driver (counters are computed, so this measures the server's own work):
#   - the server CPU used by sampling at 100 running instances: two servers in the same run, both holding 100
#     RUNNING instances, one sampling every INTERVAL s (default 1) and one whose sampling is effectively off
#     (3600 s). Their difference is within the noise of the rest of the server's work, so the sampling server's
#     whole CPU use is reported as an upper bound, scaled to the default 30-s interval, next to the mean time of
#     one pass (the stratuslab.monitoring.pass.duration histogram on /metrics);
#   - the store growth per instance-day: bytes per raw sample row (SQLite dbstat over the monitoring tables of the
#     sampling server), times the rows an instance adds per day at the default settings.
# Usage: scripts/bench/monitoring.sh [SECONDS] [INTERVAL]   (defaults 90 and 1)
source "$(dirname "$0")/lib.sh"
seconds=${1:-90}
interval=${2:-1}
binary=$(bench_binary)
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# prepare NAME INTERVAL: a server with one 256-CPU simulated host and 100 RUNNING t1.tiny instances.
prepare() {
  local name=$1 every=$2
  PORT=$(free_port)
  start_server "$binary" "$work/$name" "$PORT" STRATUSLAB__Compute__Driver=simulated STRATUSLAB__Compute__SimulatedDelayMs=0 \
    STRATUSLAB__Monitoring__SampleIntervalSeconds="$every" STRATUSLAB__Identity__DefaultQuota__Vms=-1 STRATUSLAB__Identity__DefaultQuota__Cpus=-1 \
    STRATUSLAB__Identity__DefaultQuota__MemoryMiB=-1
  pids+=("$SERVER_PID")
  api POST /api/v1/hosts '{"name":"sim-1","driver":"simulated","cpus":256,"memoryMiB":262144}' >/dev/null
  api POST /api/v1/instances '{"instanceType":"t1.tiny","count":100}' | json 'len(j)' >/dev/null
  for _ in $(seq 1 600); do
    [[ $(api GET '/api/v1/instances?state=RUNNING&limit=1000' | json 'len(j)') == 100 ]] && return 0
    sleep 0.2
  done
  echo "$name: 100 instances did not reach RUNNING" >&2
  return 1
}

prepare sampling "$interval"; sampling_pid=$SERVER_PID; sampling_port=$PORT
prepare quiet 3600; quiet_pid=$SERVER_PID
sleep 20 # let start-up work (JIT, the first passes, readiness checks) settle in both

s0=$(cpu_ticks "$sampling_pid"); q0=$(cpu_ticks "$quiet_pid"); t0=$(date +%s.%N)
rows0=$(python3 -c "import sqlite3; print(sqlite3.connect('file:$work/sampling/stratuslab.db?mode=ro', uri=True).execute('select count(*) from mon_instance_samples where resolution = 0').fetchone()[0])")
sleep "$seconds"
s1=$(cpu_ticks "$sampling_pid"); q1=$(cpu_ticks "$quiet_pid"); t1=$(date +%s.%N)
pass_metrics=$(curl -sS "http://127.0.0.1:$sampling_port/metrics" | awk '/^stratuslab_monitoring_pass_duration[a-z_]*_(sum|count)[{ ]/ { print $NF }' | tr '\n' ' ')
rows1=$(python3 -c "import sqlite3; print(sqlite3.connect('file:$work/sampling/stratuslab.db?mode=ro', uri=True).execute('select count(*) from mon_instance_samples where resolution = 0').fetchone()[0])")

python3 - "$s0" "$s1" "$q0" "$q1" "$t0" "$t1" "$hz" "$interval" "$rows0" "$rows1" $pass_metrics <<'PY'
import sys
s0, s1, q0, q1, t0, t1, hz, interval, r0, r1, pass_sum, pass_count = map(float, sys.argv[1:13])
wall = t1 - t0
sampling = (s1 - s0) / hz / wall * 100
quiet = (q1 - q0) / hz / wall * 100
passes = (r1 - r0) / 100
bound = (s1 - s0) / hz / passes if passes else float("nan")
print(f"window {wall:.0f} s, {passes:.0f} passes over 100 RUNNING simulated instances (interval {interval:.0f} s)")
print(f"server CPU: sampling {sampling:.2f} % of one core, not sampling {quiet:.2f} % (ratio {sampling / quiet if quiet else float('nan'):.2f})")
print(f"sampling cost, upper bound (all the sampling server's CPU counted as sampling): {bound * 1000:.1f} ms CPU per pass of 100 instances"
      f" = at most {bound / 30 * 100:.3f} % of one core at the default 30-s interval")
print(f"one pass (100 instances, 1 host) takes {pass_sum / pass_count:.1f} ms of wall time on average ({pass_count:.0f} passes since start)")
PY

# Store growth: bytes per row from the tables' pages (dbstat), at the default settings
# (30-s samples kept 24 h, hourly buckets kept 30 d, one accounting record per instance-day).
python3 - "$work/sampling/stratuslab.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
def size(table):
    pages = c.execute("select sum(pgsize), sum(payload) from dbstat where name = ?", (table,)).fetchone()
    rows = c.execute(f"select count(*) from {table}").fetchone()[0]
    return (pages[0] or 0), rows
raw_bytes, raw_rows = size("mon_instance_samples")
acct_bytes, acct_rows = size("acct_usage")
per_sample = raw_bytes / raw_rows
per_record = acct_bytes / acct_rows
raw_day = 2880 * per_sample
print(f"instance samples: {raw_rows} rows in {raw_bytes} bytes = {per_sample:.1f} bytes per sample (row + B-tree share)")
print(f"store growth per instance-day: {raw_day / 1024:.1f} KiB raw (2880 samples at 30 s) + {24 * per_sample / 1024:.2f} KiB hourly + {per_record:.0f} bytes accounting")
print(f"steady state per running instance (24 h raw + 30 d hourly): {(raw_day + 720 * per_sample) / 1024:.1f} KiB; per ended instance-day kept: {(24 * per_sample + per_record) / 1024:.2f} KiB")
PY
