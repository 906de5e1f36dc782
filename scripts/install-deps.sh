#!/usr/bin/env bash
# Installs what StratusLab Server needs from Debian packages, only what is missing.
# Usage: scripts/install-deps.sh [--test]   (--test adds what the test suite uses)
set -euo pipefail

packages=(
  qemu-system-x86 qemu-utils qemu-block-extra   # VMs, disk images, QEMU's own iSCSI initiator
  tgt                                           # iSCSI target (tgtd, tgtadm)
  lvm2                                          # the lvm volume backend (lvcreate, lvs, lvremove)
  genisoimage                                   # context ISOs
  dnsmasq-base nftables iproute2                # bridge networks: DHCP, NAT, firewall
  socat curl                                    # talking to QMP sockets and the API by hand
  openssh-client                                # connect-instance
)
# LDAP sign-in (Identity:Ldap) loads the system's libldap: libldap-2.5-0 on Debian 12, libldap2 from Debian 13 on.
if [[ "$(apt-cache policy libldap2 2>/dev/null | awk '/Candidate:/ {print $2}')" =~ ^[0-9] ]]; then packages+=(libldap2); else packages+=(libldap-2.5-0); fi
# Build time only: npm vendors the dashboard's browser assets (scripts/web/vendor.sh). A nodejs that bundles npm
# (NodeSource) conflicts with Debian's npm package, so it is installed only when no npm is there.
command -v npm >/dev/null 2>&1 || packages+=(npm)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(hyperfine time awscli python3-boto3 debootstrap fdisk e2fsprogs)   # debootstrap etc.: the Debian cloud-init test guest
  packages+=(slapd ldap-utils)   # LDAP authentication tests: each test runs its own slapd on a loopback port
  packages+=(openssh-server)   # SSH nodes: each test node runs its own sshd (own config, port, keys) in a network namespace
  packages+=(chromium)                          # the web dashboard's browser tests (Playwright drives it; no browser download)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing Debian packages: ${missing[*]}; run this script as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v dotnet >/dev/null 2>&1; then
  echo "install-deps: the .NET 10 SDK (dotnet) is not installed; install it from your distribution's or Microsoft's packages." >&2
  exit 1
fi
