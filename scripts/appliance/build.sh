#!/usr/bin/env bash
# Build the StratusLab test appliance into a BIOS-bootable qcow2 image, from
# Debian packages only. Usage: build.sh [OUTPUT_DIR]
# Prints the image path as the last line of stdout; progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-${STRATUSLAB_APPLIANCE_DIR:-$HOME/.cache/stratuslab/appliance}}
name=stratuslab-appliance

disk_mib=64
part_start=2048 # sectors; the FAT partition starts at 1 MiB
fat_volid=53544c41
disk_id=0x53544c41
kernel_meta=linux-image-cloud-amd64
guest_pkgs=(busybox-static dropbear-bin libtomcrypt1 libtommath1 libgmp10 zlib1g libcrypt1 libc6)
# Host packages whose files end up in the image, so their versions are inputs.
image_tool_pkgs=(syslinux syslinux-common)
host_pkgs=(fdisk dosfstools mtools syslinux syslinux-common cpio gzip qemu-utils)
# Modules the guest loads; their dependencies are added and ordered at build time.
# virtio_balloon reports the guest's memory statistics to QEMU (QMP qom-get guest-stats).
# pvpanic_mmio drives QEMU's ISA pvpanic device (ACPI QEMU0001): a guest kernel panic reaches the host as GUEST_PANICKED.
modules=(virtio_pci virtio_net virtio_blk virtio_balloon sr_mod ata_piix isofs button evdev pvpanic_mmio)

# Fixed timestamps: 2020-01-01, since FAT cannot store dates before 1980.
export LC_ALL=C TZ=UTC SOURCE_DATE_EPOCH=1577836800 MTOOLS_SKIP_CHECK=1 DEBIAN_FRONTEND=noninteractive
umask 022
exec 3>&1 1>&2 # stdout is only for the final image path

log() { printf 'appliance: %s\n' "$*"; }
die() { log "error: $*"; exit 1; }

mkdir -p "$out"
out=$(cd "$out" && pwd)
image=$out/$name.qcow2
inputs=$out/$name.inputs
kernel_copy=$out/$name.vmlinuz

# The base image disables apt's on-disk package cache, which makes every
# apt-cache call take ~0.6 s; a private one keeps the cache check well under 1 s.
apt_cache() {
    apt-cache -o Dir::Cache::pkgcache="$out/.apt-pkgcache.bin" -o Dir::Cache::srcpkgcache= "$@"
}

apt_update_done=
apt_update() {
    [ -z "$apt_update_done" ] || return 0
    log "apt-get update"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt_update_done=1
}

# Prints "package version" for the newest cloud kernel and the guest packages.
resolve_packages() {
    apt_cache show --no-all-versions "$kernel_meta" "${guest_pkgs[@]}" 2>/dev/null |
        awk -v meta="$kernel_meta" '
            /^Package: / { p = $2 }
            /^Version: / { v[p] = $2; order[n++] = p }
            /^Depends: / && p == meta {
                if (match($0, /linux-image-[^ ,]+ \(= [^)]+\)/)) {
                    split(substr($0, RSTART, RLENGTH), a, /[ ()=]+/)
                    kpkg = a[1]; kver = a[2]
                }
            }
            END {
                if (kpkg == "") exit 1
                print kpkg, kver
                for (i = 0; i < n; i++) if (order[i] != meta) print order[i], v[order[i]]
            }'
}

installed_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }

if ! packages=$(resolve_packages) || [ "$(wc -l <<<"$packages")" -ne $((${#guest_pkgs[@]} + 1)) ]; then
    apt_update
    packages=$(resolve_packages) || die "cannot resolve $kernel_meta and ${guest_pkgs[*]}"
fi

inputs_body() {
    local f
    (cd "$here" && for f in build.sh guest/*; do
        printf 'file %s %s\n' "$f" "$(sha256sum <"$f" | cut -d' ' -f1)"
    done)
    printf 'package %s\n' "${packages//$'\n'/$'\npackage '}"
    for f in "${image_tool_pkgs[@]}"; do
        printf 'host %s %s\n' "$f" "$(installed_version "$f")"
    done
}
body=$(inputs_body)
hash=$(sha256sum <<<"$body" | cut -d' ' -f1)

cache_hit() {
    [ -f "$image" ] && [ -f "$kernel_copy" ] && [ -f "$inputs" ] && [ "$(head -n 1 "$inputs")" = "hash $hash" ]
}
if cache_hit; then
    log "up to date ($hash)"
    echo "$image" >&3
    exit 0
fi

exec 9>"$out/.lock"
flock 9
if cache_hit; then # another build finished while we waited for the lock
    echo "$image" >&3
    exit 0
fi

start=$(date +%s)
log "building $image"

# Host tools.
missing=()
for p in "${host_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt_update
    log "installing ${missing[*]}"
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
    # The syslinux version is an input: recompute in case it was just installed.
    body=$(inputs_body)
    hash=$(sha256sum <<<"$body" | cut -d' ' -f1)
fi

tmp=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
debs=$tmp/debs pkgroot=$tmp/pkgroot rootfs=$tmp/rootfs
mkdir -p "$debs" "$pkgroot" "$rootfs"

# Guest packages, at exactly the versions hashed above.
log "downloading $(wc -l <<<"$packages") packages"
mapfile -t wanted < <(awk '{print $1 "=" $2}' <<<"$packages")
(cd "$debs" && apt-get -o APT::Sandbox::User=root download -qq "${wanted[@]}") ||
    die "apt-get download failed (stale package lists? run apt-get update)"
while read -r pkg ver; do
    deb=$(ls "$debs/${pkg}_"*.deb)
    [ "$(dpkg-deb -f "$deb" Version)" = "$ver" ] || die "$deb is not version $ver"
    dpkg-deb -x "$deb" "$pkgroot"
done <<<"$packages"

kver=$(ls "$pkgroot/lib/modules")
[ "$(wc -w <<<"$kver")" -eq 1 ] || die "expected one kernel in $pkgroot/lib/modules, got: $kver"
moddir=$pkgroot/lib/modules/$kver
log "kernel $kver"

# Root filesystem skeleton.
mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,lib/x86_64-linux-gnu,lib64,lib/modules} \
    "$rootfs"/{dev,proc,sys,tmp,run,mnt/context,root,www,var/log,etc/dropbear,etc/acpi/PWRF}
ln -s ../run "$rootfs/var/run"
chmod 700 "$rootfs/root"
chmod 1777 "$rootfs/tmp"

# busybox and its applet links.
install -m 755 "$pkgroot/bin/busybox" "$rootfs/bin/busybox"
"$pkgroot/bin/busybox" --list-full | while read -r applet; do
    [ "$applet" = linuxrc ] || [ -e "$rootfs/$applet" ] || ln -s /bin/busybox "$rootfs/$applet"
done

# dropbear and the shared libraries it needs (resolved with the packaged ld.so).
install -m 755 "$pkgroot/usr/sbin/dropbear" "$rootfs/usr/sbin/dropbear"
install -m 755 "$pkgroot/usr/bin/dropbearkey" "$rootfs/usr/bin/dropbearkey"
ldso=$pkgroot/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
libpath=$pkgroot/lib/x86_64-linux-gnu:$pkgroot/usr/lib/x86_64-linux-gnu
for bin in usr/sbin/dropbear usr/bin/dropbearkey; do
    "$ldso" --library-path "$libpath" --list "$rootfs/$bin" | while read -r soname arrow path _; do
        case $soname in linux-vdso.so.* | */ld-linux-x86-64.so.2) continue ;; esac
        if [ "$arrow" != "=>" ] || [ "${path#"$pkgroot"/}" = "$path" ]; then
            die "$bin: $soname not provided by the guest packages ($arrow $path)"
        fi
        cp -L "$path" "$rootfs/lib/x86_64-linux-gnu/$soname"
    done
done
cp -L "$ldso" "$rootfs/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
ln -s /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$rootfs/lib64/ld-linux-x86-64.so.2"

# Kernel modules, uncompressed (busybox insmod may not read compressed ones) and
# in dependency order: a post-order walk of each module's modinfo "depends=".
declare -A seen=()
load_order=()
add_module() {
    local mod=$1 src dest dep
    [ -z "${seen[$mod]:-}" ] || return 0
    seen[$mod]=1
    if grep -Eq "/${mod//_/[-_]}\\.ko\$" "$moddir/modules.builtin"; then
        return 0
    fi
    src=$(find "$moddir/kernel" -regex ".*/${mod//_/[-_]}\\.ko\\(\\.xz\\|\\.zst\\|\\.gz\\)?" | head -n 1)
    [ -n "$src" ] || die "module $mod not found in kernel $kver"
    dest=$rootfs/lib/modules/$mod.ko
    case $src in
        *.xz) xz -dc "$src" >"$dest" ;;
        *.zst) zstd -qdc "$src" >"$dest" ;;
        *.gz) gzip -dc "$src" >"$dest" ;;
        *) cp "$src" "$dest" ;;
    esac
    for dep in $(tr '\0' '\n' <"$dest" | sed -n '/^depends=/{s///;s/,/ /g;p;q;}'); do
        add_module "$dep"
    done
    load_order+=("$mod")
}
for mod in "${modules[@]}"; do
    add_module "$mod"
done
printf '%s\n' "${load_order[@]}" >"$rootfs/lib/modules/load-order"
log "modules: ${load_order[*]}"

# Configuration and the guest scripts.
install -m 755 "$here/guest/init" "$rootfs/init"
install -m 755 "$here/guest/udhcpc.script" "$rootfs/etc/udhcpc.script"
install -m 755 "$here/guest/acpi-power" "$rootfs/etc/acpi/PWRF/00000080"
install -m 755 "$here/guest/probe" "$rootfs/usr/bin/stratuslab-probe"
mkdir -p "$rootfs/www/cgi-bin"
install -m 755 "$here/guest/hits" "$rootfs/www/cgi-bin/hits"
install -m 755 "$here/guest/hello" "$rootfs/www/cgi-bin/hello"
install -m 755 "$here/guest/lb" "$rootfs/www/cgi-bin/lb"
echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
printf 'root:x:0:\ntty:x:5:\n' >"$rootfs/etc/group"
# No password can match "*" (dropbear runs with -s anyway); root logs in by key.
echo 'root:*::0:99999:7:::' >"$rootfs/etc/shadow"
chmod 600 "$rootfs/etc/shadow"
echo /bin/sh >"$rootfs/etc/shells"
echo 'export PATH=/usr/sbin:/usr/bin:/sbin:/bin' >"$rootfs/etc/profile"

# initramfs: the whole root filesystem.
find "$rootfs" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
(cd "$rootfs" && find . -print0 | sort -z |
    cpio --null --reproducible --quiet -o -H newc -R 0:0) | gzip -n -9 >"$tmp/initrd.gz"

# Boot disk: one bootable FAT partition with syslinux, built without loop devices.
cp "$pkgroot/boot/vmlinuz-$kver" "$tmp/vmlinuz"
cat >"$tmp/syslinux.cfg" <<'EOF'
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL vmlinuz
  APPEND initrd=initrd.gz console=ttyS0 quiet
EOF
touch -d "@$SOURCE_DATE_EPOCH" "$tmp/vmlinuz" "$tmp/initrd.gz" "$tmp/syslinux.cfg"

raw=$tmp/disk.raw
offset=$((part_start * 512))
truncate -s "${disk_mib}M" "$raw"
printf 'label: dos\nlabel-id: %s\nunit: sectors\n\nstart=%d, type=c, bootable\n' \
    "$disk_id" "$part_start" | sfdisk --quiet "$raw"
mkfs.vfat --offset "$part_start" --invariant -i "$fat_volid" -n STRATUSLAB \
    "$raw" $(((disk_mib * 2048 - part_start) / 2)) >/dev/null
syslinux --install --offset "$offset" "$raw"
mcopy -m -i "$raw@@$offset" "$tmp/syslinux.cfg" "$tmp/vmlinuz" "$tmp/initrd.gz" ::/
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$raw" bs=440 count=1 conv=notrunc status=none
qemu-img convert -f raw -O qcow2 "$raw" "$tmp/$name.qcow2"

image_sha=$(sha256sum "$tmp/$name.qcow2" | cut -d' ' -f1)
{
    echo "hash $hash"
    echo "$body"
    echo "kernel $kver"
    echo "modules ${load_order[*]}"
    echo "image-sha256 $image_sha"
} >"$tmp/$name.inputs"

# Replace atomically; the inputs file (the cache key) goes last.
rm -f "$inputs"
mv "$tmp/$name.qcow2" "$image"
# The kernel alone, next to the image: the server boots it (no root fs) to probe whether KVM really works.
cp "$tmp/vmlinuz" "$kernel_copy.tmp" && mv "$kernel_copy.tmp" "$kernel_copy"
mv "$tmp/$name.inputs" "$inputs"
log "built in $(($(date +%s) - start)) s: $(du -k "$image" | cut -f1) KiB, sha256 $image_sha"
echo "$image" >&3
