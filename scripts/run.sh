#!/usr/bin/env bash
# One command for a working cloud on this machine: installs what is missing, builds,
# starts 'stratuslab serve' on the embedded default. Extra arguments go to 'stratuslab serve'.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
binary=$(scripts/build.sh)
exec "$binary" serve "$@"
