#!/usr/bin/env bash
# Build a stock-style Debian 12 guest configured by cloud-init (like the cloud images labs
# bring), from Debian packages only: debootstrap, mkfs.ext4 -d, GRUB written without loop
# devices. Usage: build-cloud-guest.sh [OUTPUT_DIR]
# Prints the qcow2 path as the last line of stdout; progress goes to stderr. Cached: it
# rebuilds only when this script or the resolved package versions change.
# The image tries the OpenNebula (CONTEXT CD, context.sh) then the NoCloud (cidata) datasource;
# its default user is 'debian' (root login refused), as in Debian's own cloud images.
set -euo pipefail

out=${1:-${STRATUSLAB_CLOUD_GUEST_DIR:-$HOME/.cache/stratuslab/cloud-guest}}
name=debian-12-cloudinit
suite=bookworm
disk_mib=2048
part_start=2048 # sectors: the ext4 partition starts at 1 MiB
fs_uuid=5354524c-4142-4445-4249-414e31320001
include=(systemd-sysv udev linux-image-cloud-amd64 cloud-init sudo openssh-server netbase ifupdown
    dbus resolvconf grub-pc-bin python3-cffi-backend) # debootstrap does not resolve virtual packages (python3-cryptography needs the cffi backend)
mirror=${STRATUSLAB_DEBIAN_MIRROR:-}

export LC_ALL=C TZ=UTC DEBIAN_FRONTEND=noninteractive
umask 022
exec 3>&1 1>&2

log() { printf 'cloud-guest: %s\n' "$*"; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot)"
command -v debootstrap >/dev/null || die "debootstrap is missing: scripts/install-deps.sh --test installs it"

if [ -z "$mirror" ]; then
    # The configured apt mirror (deb822 or one-line sources), else Debian's.
    mirror=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        grep -v security | sed -E 's/^URIs: *//; s/^deb (\[[^]]*\] )?//; s/ .*//' | head -n 1 || true) 
    mirror=${mirror:-http://deb.debian.org/debian}
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
image=$out/$name.qcow2
inputs=$out/$name.inputs

versions() { apt-cache show --no-all-versions "${include[@]}" 2>/dev/null | awk '/^Package: /{p=$2} /^Version: /{print p, $2}'; }
packages=$(versions)
if [ "$(wc -l <<<"$packages")" -ne ${#include[@]} ]; then
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    packages=$(versions)
fi
body=$(printf 'script %s\nsuite %s\n%s\n' "$(sha256sum <"${BASH_SOURCE[0]}" | cut -d' ' -f1)" "$suite" "$packages")
hash=$(sha256sum <<<"$body" | cut -d' ' -f1)
cache_hit() { [ -f "$image" ] && [ -f "$inputs" ] && [ "$(head -n 1 "$inputs")" = "hash $hash" ]; }
if cache_hit; then
    log "up to date ($hash)"
    echo "$image" >&3
    exit 0
fi
exec 9>"$out/.lock"
flock 9
if cache_hit; then echo "$image" >&3; exit 0; fi

start=$(date +%s)
tmp=$(mktemp -d "$out/.build.XXXXXX")
cleanup() {
    for m in proc sys dev/pts dev; do umount -l "$tmp/rootfs/$m" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
rootfs=$tmp/rootfs

log "debootstrap $suite from $mirror (about 75 s)"
debootstrap --variant=minbase --include="$(IFS=,; echo "${include[*]}")" "$suite" "$rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1 ||
    { cp "$rootfs/debootstrap/debootstrap.log" "$out/debootstrap-failed.log" 2>/dev/null || true
      tail -n 30 "$tmp/debootstrap.log"; die "debootstrap failed (details: $out/debootstrap-failed.log)"; }

kver=$(ls "$rootfs/lib/modules")
[ "$(wc -w <<<"$kver")" -eq 1 ] || die "expected one kernel, got: $kver"
[ -f "$rootfs/boot/initrd.img-$kver" ] || chroot "$rootfs" update-initramfs -c -k "$kver" >/dev/null
log "kernel $kver"

# cloud-init: both datasources this cloud offers, Debian's usual user, no locale generation.
cat >"$rootfs/etc/cloud/cloud.cfg.d/90-stratuslab.cfg" <<'EOF'
datasource_list: [OpenNebula, NoCloud, None]
locale: C.UTF-8
manage_etc_hosts: true
system_info:
  default_user:
    name: debian
    lock_passwd: true
    gecos: Debian
    groups: [adm, sudo]
    sudo: ["ALL=(ALL) NOPASSWD:ALL"]
    shell: /bin/bash
EOF
cat >"$rootfs/etc/fstab" <<EOF
UUID=$fs_uuid / ext4 defaults,errors=remount-ro 0 1
EOF
printf 'auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n' >"$rootfs/etc/network/interfaces"
mkdir -p "$rootfs/etc/network/interfaces.d"
rm -f "$rootfs"/etc/ssh/ssh_host_* "$rootfs/etc/hostname"
: >"$rootfs/etc/machine-id"
printf 'PermitRootLogin prohibit-password\nPasswordAuthentication no\n' >"$rootfs/etc/ssh/sshd_config.d/50-stratuslab.conf"
echo 'LANG=C.UTF-8' >"$rootfs/etc/default/locale"
# Boot messages on the serial console; no wait at the GRUB menu.
mkdir -p "$rootfs/boot/grub/i386-pc"
cp "$rootfs"/usr/lib/grub/i386-pc/*.mod "$rootfs"/usr/lib/grub/i386-pc/*.lst "$rootfs/boot/grub/i386-pc/"
cat >"$rootfs/boot/grub/grub.cfg" <<EOF
set timeout=0
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
menuentry "Debian $suite (cloud-init)" {
  search --no-floppy --fs-uuid --set=root $fs_uuid
  linux /boot/vmlinuz-$kver root=UUID=$fs_uuid ro console=tty0 console=ttyS0,115200n8
  initrd /boot/initrd.img-$kver
}
EOF
cat >"$tmp/early.cfg" <<EOF
search.fs_uuid $fs_uuid root
set prefix=(\$root)/boot/grub
EOF
cp "$tmp/early.cfg" "$rootfs/tmp/early.cfg"
chroot "$rootfs" grub-mkimage -O i386-pc -o /tmp/core.img -c /tmp/early.cfg -p /boot/grub \
    biosdisk part_msdos ext2 search_fs_uuid normal linux configfile echo test serial terminal
mv "$rootfs/tmp/core.img" "$tmp/core.img"
cp "$rootfs/usr/lib/grub/i386-pc/boot.img" "$tmp/boot.img"
rm -f "$rootfs/tmp/early.cfg"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

raw=$tmp/disk.raw
truncate -s "${disk_mib}M" "$raw"
printf 'label: dos\nunit: sectors\n\nstart=%d, type=83, bootable\n' "$part_start" | sfdisk --quiet "$raw"
fs_kib=$(((disk_mib * 1024) - part_start / 2))
mkfs.ext4 -q -F -L rootfs -U "$fs_uuid" -E offset=$((part_start * 512)) -d "$rootfs" "$raw" "${fs_kib}k"
# GRUB: boot.img's code in the MBR (the partition table stays), core.img from sector 1.
dd if="$tmp/boot.img" of="$raw" bs=440 count=1 conv=notrunc status=none
core_sectors=$((($(stat -c %s "$tmp/core.img") + 511) / 512))
[ "$core_sectors" -lt "$part_start" ] || die "core.img ($core_sectors sectors) does not fit before the partition"
dd if="$tmp/core.img" of="$raw" bs=512 seek=1 conv=notrunc status=none
qemu-img convert -f raw -O qcow2 "$raw" "$tmp/$name.qcow2"

{
    echo "hash $hash"
    echo "$body"
    echo "kernel $kver"
    echo "image-sha256 $(sha256sum "$tmp/$name.qcow2" | cut -d' ' -f1)"
} >"$tmp/$name.inputs"
rm -f "$inputs"
mv "$tmp/$name.qcow2" "$image"
mv "$tmp/$name.inputs" "$inputs"
log "built in $(($(date +%s) - start)) s: $(du -k "$image" | cut -f1) KiB"
echo "$image" >&3
