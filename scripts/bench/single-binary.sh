#!/usr/bin/env bash
# Issue 19 figures: the single-file release build (scripts/build.sh --release) beside the framework-dependent build
# (scripts/build.sh), measured in the same run: size on disk, cold start of 'stratuslab serve' on a new data dir to a
# healthy /health (hyperfine, median of 5), resident memory 5 s after start, and a trivial client command (--version).
# Compute:Driver=simulated so that the background KVM probe (a QEMU child) is not part of the measurement.
# FRAMEWORK_BINARY / RELEASE_BINARY skip the builds (binaries built elsewhere).
source "$(dirname "$0")/lib.sh"
framework=${FRAMEWORK_BINARY:-$("$bench_root/scripts/build.sh")}
release=${RELEASE_BINARY:-$("$bench_root/scripts/build.sh" --release)}
work=$(mktemp -d)
trap 'stop_server; rm -rf "$work"' EXIT
port=$(free_port)
export DOTNET_BUNDLE_EXTRACT_BASE_DIR=$work/extract

measure() {
  local name=$1 binary=$2
  cat >"$work/once-$name.sh" <<SCRIPT
#!/usr/bin/env bash
rm -rf "$work/data" "$work/data.log"
STRATUSLAB__Compute__Driver=simulated "$binary" serve --data-dir "$work/data" --urls http://127.0.0.1:$port >"$work/data.log" 2>&1 &
pid=\$!
until curl -sf http://127.0.0.1:$port/health >/dev/null 2>&1; do sleep 0.005; done
kill \$pid; wait \$pid 2>/dev/null || true
SCRIPT
  chmod +x "$work/once-$name.sh"
  hyperfine --runs 5 --warmup 1 --export-json "$work/hf-$name.json" "$work/once-$name.sh" >&2
  hyperfine --runs 10 --warmup 2 --export-json "$work/cli-$name.json" "$binary --version" >&2
  rm -rf "$work/data"
  start_server "$binary" "$work/data" "$port" STRATUSLAB__Compute__Driver=simulated
  sleep 5
  local rss; rss=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
  stop_server
  # Size: the framework-dependent build is its whole directory (apphost + DLLs), and it needs the runtime besides.
  local size
  if [[ "$name" == framework ]]; then size=$(du -sb "$(dirname "$binary")" | cut -f1); else size=$(stat -c %s "$binary"); fi
  python3 - "$name" "$work/hf-$name.json" "$work/cli-$name.json" "$rss" "$size" >>"$work/rows" <<'PY'
import json, sys
name, hf, cli, rss, size = sys.argv[1], json.load(open(sys.argv[2]))['results'][0], json.load(open(sys.argv[3]))['results'][0], int(sys.argv[4]), int(sys.argv[5])
print(json.dumps({"name": name, "cold_ms": hf["median"] * 1000, "cli_ms": cli["median"] * 1000, "rss_mib": rss / 1024, "size_mib": size / 2**20}))
PY
}

measure framework "$framework"
measure release "$release"
python3 - "$work/rows" <<'PY'
import json, sys
rows = {r["name"]: r for r in map(json.loads, open(sys.argv[1]))}
f, r = rows["framework"], rows["release"]
print(f"{'':34} {'framework-dependent':>20} {'single file':>14} {'ratio':>7}")
for key, label in [("size_mib", "size on disk (MiB)"), ("cold_ms", "cold start to /health (ms, median)"),
                   ("rss_mib", "RSS 5 s after start (MiB)"), ("cli_ms", "'stratuslab --version' (ms, median)")]:
    print(f"{label:34} {f[key]:>20.1f} {r[key]:>14.1f} {r[key] / f[key]:>7.2f}")
print("(framework-dependent size: its directory, without the .NET runtime it also needs)")
PY
