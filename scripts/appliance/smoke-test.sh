#!/usr/bin/env bash
# Boot the test appliance under QEMU (TCG) with a context CD and check that it
# comes up: serial log, ready report, HTTP, SSH and ACPI power-off.
# Usage: smoke-test.sh [--static] [IMAGE]
#   --static  configure eth0 from ETH0_* context variables instead of DHCP
#   IMAGE     defaults to the image build.sh produces (built if needed)
# SMOKE_SERIAL_LOG=FILE keeps a copy of the guest's serial console log.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
static=
if [ "${1:-}" = --static ]; then
    static=1
    shift
fi
mode=${static:+static}
mode=${mode:-dhcp}

log() { printf 'smoke: %s\n' "$*" >&2; }

apt_updated=
need() { # command package
    command -v "$1" >/dev/null && return 0
    if [ -z "$apt_updated" ]; then
        apt-get -o DPkg::Lock::Timeout=600 update -qq
        apt_updated=1
    fi
    log "installing $2"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$2" >&2
}
need qemu-system-x86_64 qemu-system-x86
need qemu-img qemu-utils
need genisoimage genisoimage
need ssh-keygen openssh-client
need ssh openssh-client
need curl curl
need python3 python3

image=${1:-$("$here/build.sh" | tail -n 1)}
image=$(realpath "$image")
[ -f "$image" ] || { log "no image at $image"; exit 1; }

work=$(mktemp -d)
serial=$work/serial.log
qemu_pid=
api_pid=
cleanup() {
    [ -z "${SMOKE_SERIAL_LOG:-}" ] || cp "$serial" "$SMOKE_SERIAL_LOG" 2>/dev/null || true
    [ -z "$qemu_pid" ] || kill "$qemu_pid" 2>/dev/null || true
    [ -z "$api_pid" ] || kill "$api_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
    log "FAIL: $*"
    if [ -s "$serial" ]; then
        log "serial log:"
        sed 's/^/  | /' "$serial" >&2
    fi
    exit 1
}

read -r api_port http_port ssh_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
token=tok-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
mac=52:54:00:5a:17:01

# Stand-in for the server's guest API: records each PUT, answers 204.
cat >"$work/api.py" <<'EOF'
import http.server, sys

class Handler(http.server.BaseHTTPRequestHandler):
    def do_PUT(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with open(sys.argv[2], "a") as f:
            f.write(f"PUT {self.path} {self.headers.get('Authorization', '')}\n")
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
EOF
python3 "$work/api.py" "$api_port" "$work/puts.log" &
api_pid=$!

ssh-keygen -q -t ed25519 -N '' -C smoke-test -f "$work/key"
mkdir "$work/context"
{
    echo "HOSTNAME='smoke-vm'"
    echo "SSH_PUBLIC_KEY='$(cat "$work/key.pub")'"
    echo "STRATUSLAB_API='http://10.0.2.2:$api_port'"
    echo "STRATUSLAB_TOKEN='$token'"
    if [ -n "$static" ]; then
        echo "ETH0_MAC='$mac'"
        echo "ETH0_IP='10.0.2.15'"
        echo "ETH0_MASK='255.255.255.0'"
        echo "ETH0_GATEWAY='10.0.2.2'"
        echo "ETH0_DNS='10.0.2.3'"
    fi
} >"$work/context/context.sh"
genisoimage -quiet -V CONTEXT -J -R -o "$work/context.iso" "$work/context"
qemu-img create -q -f qcow2 -b "$image" -F qcow2 "$work/overlay.qcow2"

log "booting $image ($mode network)"
start=$EPOCHREALTIME
timeout 300 qemu-system-x86_64 -accel tcg -m 128 -nodefaults -display none \
    -serial "file:$serial" -qmp "unix:$work/qmp.sock,server=on,wait=off" \
    -drive "file=$work/overlay.qcow2,if=virtio" -boot order=c \
    -cdrom "$work/context.iso" \
    -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$http_port-:80,hostfwd=tcp:127.0.0.1:$ssh_port-:22" \
    -device "virtio-net-pci,netdev=n0,mac=$mac" \
    </dev/null >"$work/qemu.out" 2>&1 &
qemu_pid=$!

elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

until grep -q 'stratuslab: boot complete' "$serial" 2>/dev/null; do
    kill -0 "$qemu_pid" 2>/dev/null || { cat "$work/qemu.out" >&2; fail "QEMU exited during boot"; }
    [ "$(elapsed "$start" | cut -d. -f1)" -lt 120 ] || fail "no 'boot complete' within 120 s"
    sleep 0.1
done
boot_time=$(elapsed "$start")
log "boot complete after $boot_time s"

grep -q 'stratuslab: ready reported' "$serial" || fail "guest did not report ready"
grep -qx "PUT /guest/v1/ready Bearer $token" "$work/puts.log" 2>/dev/null ||
    fail "no ready PUT with the right token (got: $(cat "$work/puts.log" 2>/dev/null))"
log "ready PUT received with the right token"

page=$(curl -fsS --max-time 10 --retry 3 --retry-connrefused "http://127.0.0.1:$http_port/") ||
    fail "HTTP request failed"
if ! grep -q smoke-vm <<<"$page" || ! grep -q 'StratusLab test appliance' <<<"$page"; then
    fail "unexpected page: $page"
fi
log "HTTP page names smoke-vm"

if [ -n "$static" ]; then
    grep -q 'stratuslab: eth0 10.0.2.15/24 via 10.0.2.2 (static)' "$serial" || fail "eth0 not configured statically"
else
    grep -q 'stratuslab: eth0 10.0.2.15/24 (dhcp)' "$serial" || fail "eth0 not configured by DHCP"
fi

ssh_start=$EPOCHREALTIME
remote=$(timeout 90 ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o BatchMode=yes -o ConnectTimeout=60 -o LogLevel=ERROR -i "$work/key" -p "$ssh_port" \
    root@127.0.0.1 hostname) || fail "ssh failed"
[ "$remote" = smoke-vm ] || fail "ssh hostname printed '$remote'"
log "ssh as root works ($(elapsed "$ssh_start") s, including host key generation)"

python3 - "$work/qmp.sock" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
f.readline()  # greeting
for cmd in ("qmp_capabilities", "system_powerdown"):
    f.write(json.dumps({"execute": cmd}) + "\n")
    f.flush()
    while True:
        reply = json.loads(f.readline())
        if "return" in reply or "error" in reply:
            break
    if "error" in reply:
        sys.exit(f"{cmd}: {reply['error']}")
EOF
off_start=$EPOCHREALTIME
while kill -0 "$qemu_pid" 2>/dev/null; do
    [ "$(elapsed "$off_start" | cut -d. -f1)" -lt 30 ] || fail "QEMU still running 30 s after system_powerdown"
    sleep 0.1
done
rc=0
wait "$qemu_pid" || rc=$?
qemu_pid=
[ "$rc" -eq 0 ] || fail "QEMU exited with status $rc"
grep -q 'stratuslab: power button pressed' "$serial" || fail "guest did not see the power button"
log "powered off $(elapsed "$off_start") s after system_powerdown"

log "guest console:"
grep -a 'stratuslab:' "$serial" | sed 's/^/  | /' >&2
log "PASS (boot $boot_time s)"
