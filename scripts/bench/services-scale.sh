#!/usr/bin/env bash
# Issue 16 figure: the time from a role's KPI crossing its threshold to the new member RUNNING, on the simulated driver
# (context media on, so the guest token is read from the member's context ISO as a guest would). For each evaluate
# interval given (default "1 10": the tests' and the default Services:EvaluateIntervalSeconds), one server; per trial a
# service with one role (min 1, max 2, rule 'avg(rps, 2s) > 50' for 1 period, +1), its member pushing rps=100 through
# PUT /guest/v1/metrics every 100 ms from t0; t1 = first time GET /api/v1/services/{id} shows 2 RUNNING members
# (polled every 50 ms). Prints every trial, the median, and the decision time within it.
# Usage: scripts/bench/services-scale.sh [TRIALS] [INTERVALS...]   (defaults 5, "1 10")
source "$(dirname "$0")/lib.sh"
trials=${1:-5}
shift || true
if [[ $# -eq 0 ]]; then intervals=(1 10); else intervals=("$@"); fi
binary=$(bench_binary)
work=$(mktemp -d)
trap 'stop_server; rm -rf "$work"' EXIT

for interval in "${intervals[@]}"; do
  PORT=$(free_port)
  start_server "$binary" "$work/s$interval" "$PORT" STRATUSLAB__Compute__Driver=simulated STRATUSLAB__Compute__SimulatedDelayMs=0 \
    STRATUSLAB__Compute__SimulatedMedia=true STRATUSLAB__Services__EvaluateIntervalSeconds="$interval" \
    STRATUSLAB__Monitoring__KpiMaxReportsPerMinute=6000
  python3 - "$PORT" "$TOKEN" "$work/s$interval" "$trials" "$interval" <<'PY'
import json, re, statistics, subprocess, sys, threading, time, urllib.request
port, token, data, trials, interval = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
base = f"http://127.0.0.1:{port}"
def call(method, path, body=None, auth=token):
    req = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {auth}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        text = r.read()
        return json.loads(text) if text else None
def running(s):
    return [m for m in s["roles"][0]["members"] if not m["leaving"] and m["state"] == "RUNNING"]
def wait(sid, pred, what, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        s = call("GET", f"/api/v1/services/{sid}")
        if pred(s): return s
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")
results, decided = [], []
for t in range(trials):
    s = call("POST", "/api/v1/services", {"name": f"bench{t}", "roles": [{"name": "front", "type": "t1.tiny",
        "cardinality": {"min": 1, "max": 2}, "elasticity": [{"expression": "avg(rps, 2s) > 50", "periods": 1, "adjustment": "+1", "cooldownSeconds": 0}]}]})
    sid = s["id"]
    s = wait(sid, lambda s: s["state"] == "RUNNING" and len(running(s)) == 1, "the first member")
    member = running(s)[0]["instanceId"]
    iso = subprocess.run(["isoinfo", "-R", "-i", f"{data}/instances/{member}/context.iso", "-x", "/context.sh"], capture_output=True, text=True, timeout=30).stdout
    guest = re.search(r"STRATUSLAB_TOKEN='([^']+)'", iso).group(1)
    time.sleep(1.5)  # off the evaluation phase
    stop = threading.Event()
    def push():
        while not stop.is_set():
            call("PUT", "/guest/v1/metrics", {"rps": 100}, auth=guest)
            time.sleep(0.1)
    t0 = time.time()
    pusher = threading.Thread(target=push); pusher.start()
    try:
        s = wait(sid, lambda s: len(running(s)) == 2, "the second member")
    finally:
        stop.set(); pusher.join()
    t1 = time.time()
    d = [x for x in s["decisions"] if x["kind"] == "elasticity"][0]
    results.append(t1 - t0)
    call("DELETE", f"/api/v1/services/{sid}")
    print(f"interval {interval} s, trial {t + 1}: KPI over threshold -> new member RUNNING in {t1 - t0:.2f} s (decision at {d['at']}, value {d['values']['value']})")
print(f"interval {interval} s: median {statistics.median(results):.2f} s, min {min(results):.2f} s, max {max(results):.2f} s over {trials} trials"
      f" (median / evaluate interval: {statistics.median(results) / float(interval):.2f})")
PY
  stop_server
done
