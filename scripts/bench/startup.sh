#!/usr/bin/env bash
# Issue 2 figures: cold start of 'stratuslab serve' (new data dir: store created, migrations, admin user)
# to a healthy /health, median of 5 with hyperfine; resident memory once healthy.
# Compute:Driver=simulated so that the background KVM probe (a QEMU child) is not part of the measurement.
source "$(dirname "$0")/lib.sh"
binary=$(bench_binary)
work=$(mktemp -d)
trap 'stop_server; rm -rf "$work"' EXIT
port=$(free_port)

cat >"$work/once.sh" <<SCRIPT
#!/usr/bin/env bash
rm -rf "$work/data" "$work/data.log"
STRATUSLAB__Compute__Driver=simulated "$binary" serve --data-dir "$work/data" --urls http://127.0.0.1:$port >"$work/data.log" 2>&1 &
pid=\$!
until curl -sf http://127.0.0.1:$port/health >/dev/null 2>&1; do sleep 0.005; done
kill \$pid; wait \$pid 2>/dev/null || true
SCRIPT
chmod +x "$work/once.sh"
hyperfine --runs 5 --warmup 1 --export-json "$work/hf.json" "$work/once.sh" >&2
cold=$(python3 -c "import json; r=json.load(open('$work/hf.json'))['results'][0]; print(f\"{r['median']*1000:.0f} ms median (min {r['min']*1000:.0f}, max {r['max']*1000:.0f})\")")

rm -rf "$work/data"
start_server "$binary" "$work/data" "$port" STRATUSLAB__Compute__Driver=simulated
sleep 2
rss=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
warm_start=$(date +%s.%N); stop_server
# Second start on the same data dir (store exists): warm start.
start=$(date +%s.%N)
start_server "$binary" "$work/data" "$port" STRATUSLAB__Compute__Driver=simulated
warm=$(python3 -c "print(f'{($(date +%s.%N) - $start)*1000:.0f}')")
echo "cold start to healthy /health: $cold"
echo "warm start (existing data dir): $warm ms"
echo "resident memory 2 s after start: $((rss / 1024)) MiB"
