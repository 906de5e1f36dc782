#!/usr/bin/env bash
# Issue 19 figure: a fresh clone to the first SSH login into a VM, following the README to the letter, with the
# seconds of each step. Steps: git clone; scripts/run.sh until it has printed its last line (install-deps, the
# appliance build, the server build, start to healthy, setup-client, booting the appliance as VM 1); then every line
# of the README's "Using it" block (between the readme-using-it markers), as written, one after the other; the first
# SSH login is its 'connect-instance 1 -- ...' line.
#
# What is warm, and so not measured: the appliance image (scripts/appliance/build.sh caches it in
# ~/.cache/stratuslab/appliance; a cold build takes minutes more: debootstrap and a kernel), the NuGet packages
# (~/.nuget/packages) and the Debian packages (install-deps only checks them). Isolation from this machine: HOME is a
# temp dir (a new SSH key, a new client config), the 'stratuslab' symlink goes to a temp dir on PATH
# (STRATUSLAB_BIN_DIR; as root it would be /usr/local/bin), and run.sh gets '--data-dir' and '--urls' with a free
# port (both documented run.sh arguments) so that it cannot meet another server of this machine.
# Usage: scripts/bench/first-login.sh [REPO]   (REPO: what to clone, default this checkout)
source "$(dirname "$0")/lib.sh"
repo=${1:-$bench_root}
real_home=$HOME
work=$(mktemp -d /tmp/first-login.XXXXXX)
port=$(free_port)
endpoint=http://127.0.0.1:$port
runsh_pid=
cleanup() {
  # VMs outlive the server on purpose (run.sh says so): end this run's instances first, then the server.
  if [[ -x "$work/bin/stratuslab" ]]; then
    for id in $(STRATUSLAB_ENDPOINT=$endpoint HOME=$work/home timeout 30 "$work/bin/stratuslab" describe-instance --json 2>/dev/null |
      python3 -c 'import json,sys; [print(i["id"]) for i in json.load(sys.stdin)]' 2>/dev/null); do
      HOME=$work/home timeout 60 "$work/bin/stratuslab" kill-instance "$id" >/dev/null 2>&1 || true
    done
  fi
  # run.sh and the server run in their own process group (setsid below): end that group by its id.
  if [[ -n "$runsh_pid" ]]; then
    kill -- "-$runsh_pid" 2>/dev/null || true
    wait "$runsh_pid" 2>/dev/null || true
  fi
  # Anything still running from this run's data dir (a QEMU the kill could not reach) is ours: end it by its id.
  for pid in $(pgrep -f -- "$work/data" || true); do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/home/.cache/stratuslab" "$work/bin"
ln -s "$real_home/.cache/stratuslab/appliance" "$work/home/.cache/stratuslab/appliance"
# ssh finds ~/.ssh through the passwd entry, not $HOME: without this it would look in the real home and not find the
# key setup-client made in the temp HOME. Only an artefact of the isolation (a user's own HOME is their passwd home).
cat >"$work/bin/ssh" <<'SSH'
#!/bin/sh
[ -f "$HOME/.ssh/id_ed25519" ] && exec /usr/bin/ssh -i "$HOME/.ssh/id_ed25519" "$@"
exec /usr/bin/ssh "$@"
SSH
chmod +x "$work/bin/ssh"
export HOME=$work/home NUGET_PACKAGES=${NUGET_PACKAGES:-$real_home/.nuget/packages} DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
export STRATUSLAB_BIN_DIR=$work/bin PATH=$work/bin:$PATH
unset STRATUSLAB_DATA STRATUSLAB_ENDPOINT STRATUSLAB_TOKEN

declare -a names secs
step() { names+=("$1"); secs+=("$2"); printf '%8.1f s  %s\n' "$2" "$1" >&2; }
now() { date +%s.%N; }
elapsed() { python3 -c "print(round($2 - $1, 1))"; }

t0=$(now)
git clone -q "$repo" "$work/src"
t1=$(now); step "git clone" "$(elapsed "$t0" "$t1")"

# run.sh runs the server in the foreground: it runs in the background here, its output timestamped per line.
cd "$work/src"
setsid bash -c 'scripts/run.sh --data-dir "$1" --urls "$2" 2>&1 | while IFS= read -r line; do printf "%s %s\n" "$(date +%s.%N)" "$line"; done >"$3"' \
  run "$work/data" "$endpoint" "$work/run.log" &
runsh_pid=$!
marker() { grep -m1 -- "$1" "$work/run.log" 2>/dev/null | cut -d' ' -f1; }
deadline=$((SECONDS + 3600))
until [[ -n "$(marker "run.sh: try 'stratuslab connect-instance")" ]]; do
  ((SECONDS < deadline)) || { tail -30 "$work/run.log" >&2; echo "run.sh did not finish within an hour" >&2; exit 1; }
  kill -0 "$runsh_pid" 2>/dev/null || { tail -30 "$work/run.log" >&2; echo "run.sh ended early" >&2; exit 1; }
  sleep 0.5
done
t_client=$(marker "setup-client: the 'stratuslab' command is")
t_boot=$(marker "run.sh: booting the test appliance")
t_done=$(marker "run.sh: try 'stratuslab connect-instance")
step "run.sh: install-deps, appliance (cached), build, server start to healthy" "$(elapsed "$t1" "$t_client")"
step "run.sh: setup-client (PATH symlink, client config, SSH key)" "$(elapsed "$t_client" "$t_boot")"
step "run.sh: boot the appliance (VM 1) to ready" "$(elapsed "$t_boot" "$t_done")"

cd "$work"
first_login=
while IFS= read -r line; do
  command=${line%%#*}
  command=${command%"${command##*[![:space:]]}"}
  [[ -z "$command" ]] && continue
  ts=$(now)
  if ! bash -c "$command" </dev/null >"$work/step.out" 2>&1; then   # ssh would eat the rest of the list
    cat "$work/step.out" >&2
    echo "README step failed: $command" >&2
    exit 1
  fi
  te=$(now)
  step "README: $command" "$(elapsed "$ts" "$te")"
  if [[ -z "$first_login" && "$command" == "stratuslab connect-instance"* ]]; then
    first_login=$(elapsed "$t0" "$te")
    sed 's/^/          | /' "$work/step.out" >&2
  fi
done < <(sed -n '/<!-- readme-using-it:begin -->/,/<!-- readme-using-it:end -->/p' "$work/src/README.md" | sed -n '/^stratuslab /p')

printf '\n%8.1f s  fresh clone to the first SSH login (end of the README'"'"'s connect-instance line)\n' "$first_login"
total=$(elapsed "$t0" "$(now)")
printf '%8.1f s  fresh clone to the end of the "Using it" block\n' "$total"
echo "(warm: the appliance image in ~/.cache/stratuslab/appliance, NuGet packages, Debian packages; load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
