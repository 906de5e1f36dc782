#!/usr/bin/env bash
# Issue 19 figures: the CLI's start-up time per command (goal: below 150 ms), with hyperfine, for the
# System.CommandLine client against the hand-parsed one it replaced (BASE, default 7e11710), built and
# measured in the same run, plus 'dotnet --version' as the floor of a .NET process on this machine.
# Commands: '--version' (parse only), the root help (every command table), 'run-instance --help', and
# 'describe-instance-types' against a running server (parse, config, one HTTP round trip).
# Usage: scripts/bench/cli-startup.sh [RUNS]   (BASE=<commit> to compare with another build)
source "$(dirname "$0")/lib.sh"
runs=${1:-20}
base=${BASE:-7e11710}
binary=$(bench_binary)
work=$(mktemp -d)
trap 'stop_server; rm -rf "$work"' EXIT

git -C "$bench_root" archive "$base" | tar -x -C "$work" --one-top-level=base
dotnet publish "$work/base/StratusLab.Server/StratusLab.Server.csproj" -c Release -o "$work/base-bin" --nologo -v quiet >&2
old="$work/base-bin/stratuslab"

port=$(free_port)
start_server "$binary" "$work/data" "$port" STRATUSLAB__Compute__Driver=simulated
export STRATUSLAB_ENDPOINT="http://127.0.0.1:$port" STRATUSLAB_TOKEN="$TOKEN"

hyperfine --runs "$runs" --warmup 3 -N --export-json "$work/hf.json" \
  -n "dotnet --version" "dotnet --version" \
  -n "new --version" "$binary --version" \
  -n "old --version" "$old --version" \
  -n "new help" "$binary" \
  -n "old help" "$old" \
  -n "new run-instance --help" "$binary run-instance --help" \
  -n "old run-instance --help" "$old run-instance --help" \
  -n "new describe-instance-types" "$binary describe-instance-types" \
  -n "old describe-instance-types" "$old describe-instance-types" >&2

python3 - "$work/hf.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
ms = lambda n: r[n]["median"] * 1000
print(f"{'command':32} {'median':>9} {'min':>7} {'old':>9} {'new/old':>8}")
print(f"{'dotnet --version (floor)':32} {ms('dotnet --version'):7.0f}ms {r['dotnet --version']['min']*1000:5.0f}ms")
for c in ["--version", "help", "run-instance --help", "describe-instance-types"]:
    new, old = ms("new " + c), ms("old " + c)
    print(f"{'stratuslab ' + c:32} {new:7.0f}ms {r['new ' + c]['min']*1000:5.0f}ms {old:7.0f}ms {new/old:8.2f}")
PY
