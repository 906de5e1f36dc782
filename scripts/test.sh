#!/usr/bin/env bash
# One command for the whole test suite: installs what is missing, builds, runs every test tier.
# Extra arguments go to 'dotnet test' (e.g. --filter Name~Identity).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
# The host-tier tests boot the real test appliance; building it is cached (well under 1 s when up to date).
scripts/appliance/build.sh >/dev/null
# ...and a Debian guest configured by cloud-init (debootstrap, as root; cached, about 2 min when its packages change).
scripts/appliance/build-cloud-guest.sh >/dev/null

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
dotnet test stratuslab.sln --nologo -v quiet --logger "console;verbosity=normal" "$@" 2>&1 | tee "$log" || status=$?

# One plain closing line for CI: "N passed, N failed, N skipped" (from either of dotnet test's summary formats).
count() { grep -Eo "^ *$1: +[0-9]+ *$" "$log" | tail -1 | grep -Eo '[0-9]+' || true; }
summary=$(grep -Eo 'Failed: +[0-9]+, Passed: +[0-9]+, Skipped: +[0-9]+' "$log" | tail -1 || true)
if [[ -n "$summary" ]]; then
  failed=$(sed -E 's/Failed: +([0-9]+).*/\1/' <<<"$summary")
  passed=$(sed -E 's/.*Passed: +([0-9]+).*/\1/' <<<"$summary")
  skipped=$(sed -E 's/.*Skipped: +([0-9]+).*/\1/' <<<"$summary")
else
  passed=$(count Passed); failed=$(count Failed); skipped=$(count Skipped)
fi
if [[ -n "$passed" ]]; then
  echo "${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
fi
# Name every failed test with the first lines of its message, so the tail of a CI log says what broke.
if [[ "${failed:-0}" != "0" ]]; then
  echo "Failed tests:"
  grep -E -A12 '^ +Failed [A-Za-z_][A-Za-z0-9_.]*( \[|\(|$)' "$log" | grep -v -E '^\s*at ' | head -120 || true
  echo "${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
fi
exit $status
