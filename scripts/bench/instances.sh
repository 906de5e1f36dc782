#!/usr/bin/env bash
# Issue 3 figures, measured from the server's own timestamps (createdAt = request admitted,
# startedAt = hypervisor says RUNNING, readyAt = the guest reported through the guest API):
#   - request-to-RUNNING and request-to-ready medians for the test appliance under the driver
#     actually used (the server logs and reports kvm or tcg),
#   - the same with the simulated driver,
#   - request-to-RUNNING for a 16 MiB vs a 1 GiB image (copy-on-write: the ratio should be ~1.0).
# Usage: scripts/bench/instances.sh [RUNS]   (default 5)
source "$(dirname "$0")/lib.sh"
runs=${1:-5}
binary=$(bench_binary)
appliance=$("$bench_root/scripts/appliance/build.sh")
work=$(mktemp -d)
trap 'stop_server; pkill -f "qemu-system.*$work" 2>/dev/null || true; rm -rf "$work"' EXIT

seconds_between() { python3 -c "from datetime import datetime as d; f=lambda s: d.fromisoformat(s.replace('Z','+00:00')); print(f'{(f(\"$2\")-f(\"$1\")).total_seconds():.3f}')"; }

# run_one BODY STATE: starts one instance, waits for STATE (RUNNING or ready), prints "running ready" seconds, terminates it.
run_one() {
  local body=$1 state=$2 node id
  id=$(api POST /api/v1/instances "$body" | json 'j["id"]')
  node=$(api GET "/api/v1/instances/$id/wait?state=$state&timeout=300")
  local created started ready
  created=$(json 'j["createdAt"]' <<<"$node")
  started=$(json 'j["startedAt"] or ""' <<<"$node")
  ready=$(json 'j["readyAt"] or ""' <<<"$node")
  [[ -z "$started" ]] && { echo "instance $id did not start: $node" >&2; return 1; }
  echo "$(seconds_between "$created" "$started") $([[ -n "$ready" ]] && seconds_between "$created" "$ready" || echo -)"
  api DELETE "/api/v1/instances/$id" >/dev/null
  api GET "/api/v1/instances/$id/wait?state=DONE&timeout=60" >/dev/null
}

PORT=$(free_port)
start_server "$binary" "$work/qemu" "$PORT" STRATUSLAB__Compute__Driver=qemu STRATUSLAB__Compute__ApplianceImage="$appliance"
# The first instance also waits for the KVM/TCG probe; it is a warm-up, not counted.
run_one '{"name":"warmup"}' ready >/dev/null
accel=$(api GET /api/v1/hosts | json 'j[0]["driver"]')
: >"$work/qemu.times"
for _ in $(seq "$runs"); do run_one '{"name":"bench"}' ready >>"$work/qemu.times"; done
accelerator=$(grep -o 'QEMU accelerator: [a-z]*' "$work/qemu.log" | head -1 | cut -d' ' -f3)

# 16 MiB vs 1 GiB images (random data, so nothing is sparse), request-to-RUNNING only.
head -c $((16 << 20)) /dev/urandom >"$work/small.raw"
head -c $((1 << 30)) /dev/urandom >"$work/big.raw"
api POST /api/v1/images "{\"name\":\"small\",\"path\":\"$work/small.raw\"}" >/dev/null
api POST /api/v1/images "{\"name\":\"big\",\"path\":\"$work/big.raw\"}" >/dev/null
: >"$work/small.times"; : >"$work/big.times"
for _ in $(seq "$runs"); do
  run_one '{"image":"small"}' RUNNING >>"$work/small.times"
  run_one '{"image":"big"}' RUNNING >>"$work/big.times"
done
stop_server

PORT=$(free_port)
start_server "$binary" "$work/sim" "$PORT" STRATUSLAB__Compute__Driver=simulated STRATUSLAB__Compute__ApplianceImage="$appliance"
run_one '{"name":"warmup"}' RUNNING >/dev/null
: >"$work/sim.times"
for _ in $(seq "$runs"); do run_one '{"name":"bench"}' RUNNING >>"$work/sim.times"; done
stop_server

col() { cut -d' ' -f"$1" "$2" | median; }
small=$(col 1 "$work/small.times"); big=$(col 1 "$work/big.times")
echo "driver qemu, accelerator $accelerator, appliance (128 MiB RAM), median of $runs:"
echo "  request-to-RUNNING $(col 1 "$work/qemu.times") s, request-to-ready $(col 2 "$work/qemu.times") s"
echo "driver simulated (Compute:SimulatedDelayMs default 50 per action), median of $runs:"
echo "  request-to-RUNNING $(col 1 "$work/sim.times") s"
echo "copy-on-write start, request-to-RUNNING, median of $runs: 16 MiB image $small s, 1 GiB image $big s, ratio 1 GiB/16 MiB $(python3 -c "print(f'{$big/$small:.2f}')")"
