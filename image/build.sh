#!/usr/bin/env bash
# Builds a bootable SD-card image of Roost for the Raspberry Pi 3 and 4 (arm64), from Debian's
# archive only: Debian 12 (bookworm) with Debian's kernel and Raspberry Pi firmware packages.
#
#   sudo image/build.sh [--deb FILE] [--output FILE] [--mirror URL] [--root-size MiB] [--xz]
#
# --deb FILE      the roost arm64 package to install (default: build it, scripts/build-deb.sh)
# --output FILE   the image (default: $CARGO_TARGET_DIR/image/roost-<version>-arm64.img)
# --mirror URL    a Debian mirror (default http://deb.debian.org/debian; security updates
#                 come from the matching debian-security archive)
# --root-size MiB size of the root partition in the image (default: what the files need plus
#                 room); it grows to fill the card at the first boot
# --xz            also write FILE.xz (slow: minutes on two cores)
# --reuse-rootfs  skip mmdebstrap and reuse the last run's root file system (for work on
#                 image/rootfs/ or the package: the .deb is installed again)
#
# Layout (MBR, as the Pi 3 boot ROM needs): partition 1 FAT32 "RASPIFIRM" at 4 MiB, mounted at
# /boot/firmware (Pi firmware, kernel, initrd, device trees, config.txt, cmdline.txt and
# roost-settings.txt); partition 2 ext4 "RASPIROOT", the root file system.
#
# How: mmdebstrap builds the arm64 root file system in a directory, running the packages'
# scripts under qemu-user-static through binfmt_misc; mkfs.ext4 -d and mtools fill the two file
# systems from directories, so no loop device and no mount of the image is needed. Needs root
# (chroot, the bind mount of /boot/firmware during the install, file ownership in the image)
# and a kernel with binfmt_misc (registered here if it is not). Installs what is missing.
#
# The roost package carries the LiveKit media server (/usr/lib/roost/livekit-server), so the
# first boot has calls. What the image contains beyond the packages is in image/rootfs/ (first-boot and console
# services, network configuration, fstab) and image/firmware/ (roost-settings.txt).
# Per-machine state is removed at the end and made at the first boot instead: machine-id, SSH
# host keys, and everything `roost init` makes (each card gets its own CA and keys).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

readonly SUITE=bookworm
readonly FIRMWARE_MIB=256
readonly FIRST_PARTITION_OFFSET_MIB=4
# Packages beyond the apt variant (Essential + apt). Recommends are not installed.
readonly PACKAGES=(
    # Boot: Debian's kernel, the initramfs that finds LABEL=RASPIROOT, the Pi firmware that
    # copies kernel, initrd and device trees to /boot/firmware, Wi-Fi firmware (Pi 3/4).
    linux-image-arm64 initramfs-tools raspi-firmware firmware-brcm80211 wireless-regdb
    systemd-sysv udev kmod dbus
    # Network: DHCP on Ethernet and Wi-Fi, DNS, NTP (a Pi has no battery clock), mDNS.
    systemd-resolved systemd-timesyncd wpasupplicant iproute2 avahi-daemon
    openssh-server ca-certificates
    # First boot: grow the root partition and file system; FAT tools for /boot/firmware.
    fdisk e2fsprogs dosfstools
    # For the owner at the console.
    less nano
)

deb=
output=
mirror=http://deb.debian.org/debian
root_mib=
compress=false
reuse_rootfs=false
while (($# > 0)); do
    case $1 in
    --deb) deb=$2; shift ;;
    --output) output=$2; shift ;;
    --mirror) mirror=$2; shift ;;
    --root-size) root_mib=$2; shift ;;
    --xz) compress=true ;;
    --reuse-rootfs) reuse_rootfs=true ;;
    -h | --help)
        sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "image/build.sh: unknown argument '$1'" >&2
        exit 64
        ;;
    esac
    shift
done

say() { printf 'image: %s (%ss)\n' "$*" "$SECONDS"; }
die() {
    echo "image/build.sh: $*" >&2
    exit 1
}

((EUID == 0)) || die "needs root (mmdebstrap in root mode, chroot, bind mounts); run it with sudo"

# --- tools ----------------------------------------------------------------------------------------
needed=(mmdebstrap qemu-user-static binfmt-support arch-test dosfstools mtools fdisk e2fsprogs)
missing=()
for pkg in "${needed[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]} > 0)); then
    say "installing ${missing[*]}"
    if [[ -z $(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -print -quit) ]]; then
        apt-get update -qq
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# arm64 programs (the packages' maintainer scripts) run through binfmt_misc + qemu-aarch64-static.
# The F flag (Debian's registration sets it) lets the kernel use the interpreter inside the chroot.
if [[ ! -e /proc/sys/fs/binfmt_misc/status ]]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
        die "binfmt_misc is not available (a container without it?); arm64 programs cannot run here"
fi
if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
    update-binfmts --enable qemu-aarch64 || die "cannot register qemu-aarch64 with binfmt_misc"
fi
arch-test arm64 >/dev/null || die "arm64 binaries do not run here (arch-test arm64 failed)"

# --- the package ----------------------------------------------------------------------------------
target_dir=${CARGO_TARGET_DIR:-$repo/target}
if [[ -z $deb ]]; then
    say "building the roost package"
    deb=$(bash scripts/build-deb.sh --no-lintian aarch64-unknown-linux-gnu | tail -n 1)
fi
[[ -f $deb ]] || die "no package at '$deb'"
[[ $(dpkg-deb -f "$deb" Architecture) == arm64 ]] || die "$deb is not an arm64 package"
version=$(dpkg-deb -f "$deb" Version)
deb=$(realpath "$deb")

work=$target_dir/image/work
rootfs=$work/rootfs
firmware=$work/firmware
[[ -n $output ]] || output=$target_dir/image/roost-$version-arm64.img
mkdir -p "$(dirname "$output")"
output=$(realpath -m "$output")

# Mounts made in the root file system while programs run in it (a failed run may leave them).
chroot_mounts=(boot/firmware dev proc)
cleanup() {
    local m
    for m in "${chroot_mounts[@]}"; do
        if mountpoint -q "$rootfs/$m" 2>/dev/null; then umount "$rootfs/$m"; fi
    done
    return 0
}
trap cleanup EXIT
cleanup

# --- root file system -----------------------------------------------------------------------------
if $reuse_rootfs && [[ -d $rootfs/usr ]]; then
    say "reusing the root file system in $rootfs"
else
    rm -rf "$work"
    mkdir -p "$work"
    security=${mirror%/debian}/debian-security
    components="main non-free-firmware"
    say "mmdebstrap $SUITE arm64 from $mirror"
    mmdebstrap --mode=root --variant=apt --architectures=arm64 \
        --components="${components// /,}" \
        --include="$(IFS=,; echo "${PACKAGES[*]}")" \
        "$SUITE" "$rootfs" \
        "deb $mirror $SUITE $components" \
        "deb $mirror $SUITE-updates $components" \
        "deb $security $SUITE-security $components"
fi

say "installing $(basename "$deb") and the Pi boot files"
# raspi-firmware's hooks write the firmware, kernel, initrd, device trees, config.txt and
# cmdline.txt to /boot/firmware: here a bind mount of the directory that becomes the FAT
# partition. Whatever the package installs put there in the chroot is dropped first.
rm -rf "$firmware" "$rootfs"/boot/firmware/*
mkdir -p "$firmware" "$rootfs/boot/firmware"
mount --bind "$firmware" "$rootfs/boot/firmware"
mount --bind /dev "$rootfs/dev"
mount -t proc proc "$rootfs/proc"
# The boot command line: root by label (the same card is /dev/mmcblk0 on a Pi and /dev/vda
# under qemu), boot messages on the serial port of Pi 3/4 and on the screen (the last console
# gets them all), and no CMA reservation: a headless server needs no GPU memory, and the Pi 4
# does not boot with the default cma=64M that would be chosen in a chroot (no board to detect).
sed -i -e 's|^#\?ROOTPART=.*|ROOTPART=LABEL=RASPIROOT|' \
    -e 's|^#\?CONSOLES=.*|CONSOLES="ttyS1,115200 tty0"|' \
    -e 's|^#\?CMA=.*|CMA=0|' "$rootfs/etc/default/raspi-firmware"
cp "$deb" "$rootfs/tmp/roost.deb"
# Its dependencies are in PACKAGES. Its postinst creates the roost user and enables the unit;
# its `roost init` runs here too, and what that makes is deleted below.
chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive dpkg -i /tmp/roost.deb
rm "$rootfs/tmp/roost.deb"
# Calls at the first boot: the package carries LiveKit where Roost looks first.
chroot "$rootfs" /usr/lib/roost/livekit-server --version >/dev/null ||
    die "$(basename "$deb") installed no working /usr/lib/roost/livekit-server"
chroot "$rootfs" env DEB_MAINT_PARAMS=configure /etc/kernel/postinst.d/z50-raspi-firmware
cleanup

# --- image-specific files and per-machine state ---------------------------------------------------
say "configuring the root file system"
# Owned by root whoever owns the checkout; modes as in the repository (scripts 0755).
cp -R --preserve=mode,timestamps image/rootfs/. "$rootfs/"
cp image/firmware/roost-settings.txt "$firmware/"

echo roost >"$rootfs/etc/hostname"
cat >"$rootfs/etc/hosts" <<'EOF'
127.0.0.1	localhost
127.0.1.1	roost
::1		localhost ip6-localhost ip6-loopback
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters
EOF
# DNS from DHCP through systemd-resolved.
ln -sf ../run/systemd/resolve/stub-resolv.conf "$rootfs/etc/resolv.conf"
# root logs in on the console without a password (the person at the Pi's screen owns it)
# unless roost-settings.txt sets root_password; over SSH only with a key (openssh's default
# prohibit-password), see roost-settings.txt.
sed -i 's|^root:[^:]*:|root::|' "$rootfs/etc/shadow"

chroot "$rootfs" systemctl enable --quiet systemd-networkd.service systemd-resolved.service \
    systemd-timesyncd.service roost-firstboot.service roost-init.service roost-console.service
# systemd's own first-boot wizard would wait at the console for locale, time zone and root
# password (the machine-id is missing on purpose): roost-firstboot does what a server needs.
chroot "$rootfs" systemctl mask --quiet systemd-firstboot.service
# Wi-Fi is joined by wpa_supplicant@wlan0 (roost-firstboot), not the D-Bus-driven instance.
chroot "$rootfs" systemctl disable --quiet wpa_supplicant.service
# Made at the first boot instead (they must differ on every card):
#   machine-id: systemd writes a new one when /etc/machine-id is missing (ConditionFirstBoot);
rm -f "$rootfs/etc/machine-id" "$rootfs/var/lib/dbus/machine-id"
#   SSH host keys: roost-firstboot.service (ssh-keygen -A) before ssh.service;
rm -f "$rootfs"/etc/ssh/ssh_host_*
#   the CA, server certificate, secrets and database the package's `roost init` made in the
#   chroot, named after the build machine: roost-init.service, with this Pi's name and addresses.
find "$rootfs/var/lib/roost" -mindepth 1 -delete
rm -rf "$rootfs/var/lib/roost-image"
# Downloaded packages and indexes: stale on the card, hundreds of MiB.
rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
rm -f "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*

for f in "$firmware"/config.txt "$firmware"/cmdline.txt; do
    [[ -f $f ]] || die "raspi-firmware wrote no $(basename "$f") to /boot/firmware"
done
grep -q 'root=LABEL=RASPIROOT' "$firmware/cmdline.txt" ||
    die "cmdline.txt does not boot LABEL=RASPIROOT: $(cat "$firmware/cmdline.txt")"
compgen -G "$firmware/bcm27*-rpi-*.dtb" >/dev/null || die "no Raspberry Pi device trees in /boot/firmware"

# --- the image ------------------------------------------------------------------------------------
if [[ -z $root_mib ]]; then
    used_mib=$(du -sm --apparent-size "$rootfs" | cut -f1)
    # ext4 metadata and first-boot files; the partition grows to the card anyway.
    root_mib=$((used_mib * 12 / 10 + 256))
fi
say "file systems: FAT ${FIRMWARE_MIB} MiB, ext4 ${root_mib} MiB"
fat=$work/firmware.fat
ext=$work/root.ext4
rm -f "$fat" "$ext"
mkfs.vfat -F 32 -n RASPIFIRM -C "$fat" $((FIRMWARE_MIB * 1024)) >/dev/null
MTOOLS_SKIP_CHECK=1 mcopy -s -p -m -i "$fat" "$firmware"/* ::/
mkfs.ext4 -q -L RASPIROOT -d "$rootfs" "$ext" "${root_mib}M"

fat_start=$((FIRST_PARTITION_OFFSET_MIB * 2048))
fat_sectors=$((FIRMWARE_MIB * 2048))
root_start=$((fat_start + fat_sectors))
root_sectors=$((root_mib * 2048))
rm -f "$output"
truncate -s $(((root_start + root_sectors) * 512)) "$output"
sfdisk --quiet "$output" <<EOF
label: dos
unit: sectors
start=$fat_start, size=$fat_sectors, type=c, bootable
start=$root_start, size=$root_sectors, type=83
EOF
dd if="$fat" of="$output" bs=1M seek="$FIRST_PARTITION_OFFSET_MIB" conv=notrunc,sparse status=none
dd if="$ext" of="$output" bs=1M seek=$((root_start / 2048)) conv=notrunc,sparse status=none
rm -f "$fat" "$ext"

if $compress; then
    say "compressing"
    xz -T0 -6 -k -f "$output"
fi
say "done: $output ($(du -h --apparent-size "$output" | cut -f1))"
echo "$output"
