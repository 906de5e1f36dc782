# Shared helpers for the benchmarks: start a server on a temp data dir, call its API.
# Public tools only: bash, curl, python3 (JSON), hyperfine.
set -euo pipefail
bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# STRATUSLAB_BINARY overrides the build (e.g. to measure a binary built elsewhere).
bench_binary() {
  if [[ -n "${STRATUSLAB_BINARY:-}" ]]; then echo "$STRATUSLAB_BINARY"; else "$bench_root/scripts/build.sh"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_server BINARY DATA_DIR PORT [ENV=VALUE...]: starts in the background, sets SERVER_PID, waits for /health.
start_server() {
  local binary=$1 dir=$2 port=$3
  shift 3
  env "$@" "$binary" serve --data-dir "$dir" --urls "http://127.0.0.1:$port" >"$dir.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 1200); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && { TOKEN=$(cat "$dir/admin.token"); export TOKEN; return 0; }
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$dir.log" >&2; return 1; }
    sleep 0.01
  done
  echo "server did not become healthy" >&2
  return 1
}

stop_server() {
  [[ -n "${SERVER_PID:-}" ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
}

# api METHOD PATH [JSON]
api() {
  local method=$1 path=$2 body=${3:-}
  if [[ -n "$body" ]]; then
    curl -sS -X "$method" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$body" "http://127.0.0.1:$PORT$path"
  else
    curl -sS -X "$method" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT$path"
  fi
}

# json EXPR: evaluates a python expression on the JSON read from stdin, bound to `j`.
json() {
  python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"
}

median() {
  python3 -c 'import sys,statistics; v=[float(x) for x in sys.stdin.read().split()]; print(f"{statistics.median(v):.3f}")'
}

# host_benchmark FILTER [ENV=VALUE...]: runs the Release build's explicit benchmark tests matching FILTER (dotnet test
# --filter), with NETWORKING_BENCH_OUT set (and the given variables); their progress goes to stderr, the figures they
# report to stdout. Returns dotnet test's status.
host_benchmark() {
  local filter=$1 out status=0
  shift
  out=$(mktemp)
  env NETWORKING_BENCH_OUT="$out" "$@" \
    dotnet test "$bench_root/StratusLab.Server.Tests/StratusLab.Server.Tests.csproj" -c Release --nologo -v quiet --logger "console;verbosity=normal" \
    --filter "$filter" >&2 || status=$?
  cat "$out"
  rm -f "$out"
  return $status
}
