#!/usr/bin/env bash
# Issue 19 figure: what ReadyToRun buys the release binary. scripts/build.sh --release is built twice in this run,
# without (the default) and with ReadyToRun (STRATUSLAB_R2R=1), and the two single files are measured alike with
# hyperfine, 5 runs each after a warm-up: 'stratuslab --version', a client command against a running server
# ('describe-instance', the same server for both), and 'stratuslab serve' on a new data dir to a healthy /health.
# Compute:Driver=simulated keeps the background KVM probe (a QEMU child) out of the start-up figure.
# PLAIN_BINARY / R2R_BINARY skip the builds (binaries built elsewhere).
source "$(dirname "$0")/lib.sh"
work=$(mktemp -d)
trap 'stop_server; rm -rf "$work"' EXIT
export DOTNET_BUNDLE_EXTRACT_BASE_DIR=$work/extract

build() { # build NAME R2R -> $work/NAME, its publish seconds in $work/NAME.build
  local name=$1 r2r=$2 start end
  start=$(date +%s.%N)
  STRATUSLAB_R2R=$r2r "$bench_root/scripts/build.sh" --release >/dev/null
  end=$(date +%s.%N)
  cp "$bench_root/.artifacts/release/stratuslab" "$work/$name"
  python3 -c "print(round($end - $start, 1))" >"$work/$name.build"
}
if [[ -n "${PLAIN_BINARY:-}" ]]; then cp "$PLAIN_BINARY" "$work/plain"; echo "-" >"$work/plain.build"; else build plain 0; fi
if [[ -n "${R2R_BINARY:-}" ]]; then cp "$R2R_BINARY" "$work/r2r"; echo "-" >"$work/r2r.build"; else build r2r 1; fi

# One server (the plain build) answers the client command of both binaries.
port=$(free_port)
start_server "$work/plain" "$work/server" "$port" STRATUSLAB__Compute__Driver=simulated
client_args="--endpoint http://127.0.0.1:$port --token $TOKEN"

start_port=$(free_port)
for name in plain r2r; do
  cat >"$work/start-$name.sh" <<SCRIPT
#!/usr/bin/env bash
rm -rf "$work/data-$name"
STRATUSLAB__Compute__Driver=simulated "$work/$name" serve --data-dir "$work/data-$name" --urls http://127.0.0.1:$start_port >"$work/data-$name.log" 2>&1 &
pid=\$!
until curl -sf http://127.0.0.1:$start_port/health >/dev/null 2>&1; do sleep 0.005; done
kill \$pid; wait \$pid 2>/dev/null || true
SCRIPT
  chmod +x "$work/start-$name.sh"
done

hyperfine --runs 5 --warmup 1 --export-json "$work/version.json" -n plain "$work/plain --version" -n r2r "$work/r2r --version" >&2
hyperfine --runs 5 --warmup 1 --export-json "$work/client.json" -n plain "$work/plain describe-instance $client_args" -n r2r "$work/r2r describe-instance $client_args" >&2
hyperfine --runs 5 --warmup 1 --export-json "$work/start.json" -n plain "$work/start-plain.sh" -n r2r "$work/start-r2r.sh" >&2

python3 - "$work" <<'PY'
import json, os, sys
work = sys.argv[1]
def medians(name):
    return {r["command"]: r["median"] * 1000 for r in json.load(open(f"{work}/{name}.json"))["results"]}
rows = [("'stratuslab --version' (ms, median of 5)", medians("version")),
        ("'stratuslab describe-instance' (ms, median)", medians("client")),
        ("serve: start to healthy /health (ms, median)", medians("start"))]
size = {n: os.path.getsize(f"{work}/{n}") / 2**20 for n in ("plain", "r2r")}
build = {n: open(f"{work}/{n}.build").read().strip() for n in ("plain", "r2r")}
print(f"{'':46} {'no R2R':>10} {'R2R':>10} {'R2R/no':>8}")
for label, m in rows:
    print(f"{label:46} {m['plain']:>10.0f} {m['r2r']:>10.0f} {m['r2r'] / m['plain']:>8.2f}")
print(f"{'size of the single file (MiB)':46} {size['plain']:>10.1f} {size['r2r']:>10.1f} {size['r2r'] / size['plain']:>8.2f}")
print(f"{'scripts/build.sh --release (s)':46} {build['plain']:>10} {build['r2r']:>10}")
print(f"(load average: {open('/proc/loadavg').read().split()[:3]})")
PY
