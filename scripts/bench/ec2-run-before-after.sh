#!/usr/bin/env bash
# RunInstances MaxCount=100 vs REST count=100 (ec2-vs-rest.sh's launch figures) for two builds in one run, alternating
# the builds ROUNDS times, and the median of each figure per build. Each round is a fresh server per build; the listing
# part of ec2-vs-rest.sh runs small (402 instances, 3 calls) since only the launch is compared here.
# Usage: scripts/bench/ec2-run-before-after.sh BEFORE_BINARY [AFTER_BINARY] [ROUNDS]
#   AFTER_BINARY defaults to this tree's build (scripts/build.sh), ROUNDS to 3.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
before=${1:?give the binary to compare against (e.g. a build of the base commit)}
after=${2:-$("$here/../build.sh")}
rounds=${3:-3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for round in $(seq 1 "$rounds"); do
  for side in before after; do
    binary=$before; [[ $side == after ]] && binary=$after
    STRATUSLAB_BINARY=$binary "$here/ec2-vs-rest.sh" 402 3 | python3 -c 'import json,sys; t=sys.stdin.read(); print(json.dumps(json.loads(t[t.index("{"):])))' \
      >>"$out/$side.jsonl"
  done
done
python3 - "$out" <<'PY'
import json, statistics, sys
keys = ['run100_call_ec2_s', 'run100_call_rest_s', 'run100_call_ratio', 'run100_ec2_s', 'run100_rest_s', 'run100_ratio',
        'run100_call_ec2_wire_s', 'run100_call_rest_wire_s', 'run100_call_wire_ratio', 'run100_call_botocore_parse_s']
result = {}
for side in ('before', 'after'):
    runs = [json.loads(l) for l in open(f'{sys.argv[1]}/{side}.jsonl')]
    result[side] = {k: statistics.median(r[k] for r in runs) for k in keys}
    result[side]['rounds'] = [{k: r[k] for k in keys} for r in runs]
print(json.dumps(result, indent=1))
PY
