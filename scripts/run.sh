#!/usr/bin/env bash
# One command for a working cloud on this machine: installs what is missing, builds the test
# appliance and the server, starts 'stratuslab serve' on the embedded default, and boots the
# test appliance once the server is healthy. Extra arguments go to 'stratuslab serve'. It ends with the
# 'stratuslab' command on PATH and the client configured (scripts/setup-client.sh says where).
# STRATUSLAB_NO_BOOT=1 skips booting the appliance.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/appliance/build.sh >/dev/null
binary=$(scripts/build.sh)

endpoint=http://127.0.0.1:8440
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --urls) endpoint=${args[i + 1]%%;*} ;;
    --urls=*) endpoint=${args[i]#--urls=}; endpoint=${endpoint%%;*} ;;
    --data-dir) export STRATUSLAB_DATA=${args[i + 1]} ;;
    --data-dir=*) export STRATUSLAB_DATA=${args[i]#--data-dir=} ;;
  esac
done
endpoint=${endpoint/0.0.0.0/127.0.0.1}
export STRATUSLAB_ENDPOINT=$endpoint

"$binary" serve "$@" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server"' INT TERM

for _ in $(seq 1 240); do
  curl -sf "$endpoint/health" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { wait "$server"; exit $?; }
  sleep 0.25
done

scripts/setup-client.sh "$binary" "$endpoint"

if [[ "${STRATUSLAB_NO_BOOT:-0}" != 1 ]]; then
  if "$binary" describe-instance --state RUNNING --json | grep -q '"name": "appliance"'; then
    echo "run.sh: the test appliance is already running:" >&2
  else
    echo "run.sh: booting the test appliance (first boot also probes KVM; under TCG this takes ~20 s)..." >&2
    "$binary" run-instance --name appliance --wait || echo "run.sh: the appliance did not boot; the server keeps running" >&2
  fi
  "$binary" describe-instance >&2 || true
  echo "run.sh: try 'stratuslab connect-instance <ID> --ssh' or curl the forwarded HTTP port; Ctrl+C stops the server (VMs keep running)." >&2
fi
wait "$server"
