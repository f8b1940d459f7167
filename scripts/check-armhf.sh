#!/usr/bin/env bash
# What CI checks for arm64, done for armhf (32-bit Raspberry Pi OS, Pi 2 and later), in one
# command: the armv7 release build, the pinned livekit-server for armv7, the smoke test under
# qemu-arm (serve, TLS /health, LiveKit started by the supervisor and reported by /ready,
# SIGTERM -> exit 0, no LiveKit left), and the armhf package checked by lintian.
#
#   scripts/check-armhf.sh [--unit]
#
# --unit also runs the library's unit tests under qemu-arm (a second, debug, cross build).
# Not part of .ci/run: a cold armv7 release build and livekit-server cross build would add
# about as much again as the arm64 ones to a cold CI run. Every step is a script CI runs for
# arm64, given the armv7 target; a second run reuses the builds and takes a few minutes.
# Prints each step's time, and the package's path, size and installed size last.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

target=armv7-unknown-linux-gnueabihf
run_unit=false
for arg in "$@"; do
    case $arg in
    --unit) run_unit=true ;;
    -h | --help)
        sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "check-armhf: unknown argument '$arg'" >&2
        exit 64
        ;;
    esac
done

# Runs a step, its name and time on stderr (stdout is the step's own).
step() {
    local name=$1 start=$SECONDS
    shift
    echo "check-armhf: $name" >&2
    "$@"
    echo "check-armhf: $name took $((SECONDS - start))s" >&2
}

step "release build" bash scripts/build-arm.sh "$target"
if $run_unit; then
    step "unit tests under qemu-arm" bash scripts/arm-test.sh --target "$target" --unit
fi
# The cached build prints its path at once; a cold one takes minutes.
step "livekit-server for armv7" bash scripts/build-livekit.sh armv7 >/dev/null
step "smoke test under qemu-arm" bash scripts/arm-test.sh --target "$target" --smoke
deb_log=$(mktemp)
trap 'rm -f "$deb_log"' EXIT
step "armhf package and lintian" bash scripts/build-deb.sh "$target" | tee "$deb_log"
deb=$(tail -n 1 "$deb_log")
[[ -f $deb ]] || {
    echo "check-armhf: scripts/build-deb.sh printed no package path (got '$deb')" >&2
    exit 1
}
size=$(stat -c %s "$deb")
installed_kib=$(dpkg-deb -f "$deb" Installed-Size)
echo "check-armhf: $deb: $size bytes ($(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1048576 }') MiB)," \
    "Installed-Size $installed_kib KiB ($(awk -v k="$installed_kib" 'BEGIN { printf "%.1f", k / 1024 }') MiB)"
