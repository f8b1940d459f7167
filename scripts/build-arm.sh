#!/usr/bin/env bash
# Cross-builds Roost for the Raspberry Pi without Docker, on Debian 12 (bookworm) or newer.
#
#   scripts/build-arm.sh [--debug] [--install-only] [TARGET...]
#
# TARGET: aarch64-unknown-linux-gnu (arm64: Pi 3, 4, 5, Zero 2 W on a 64-bit OS) and/or
# armv7-unknown-linux-gnueabihf (armhf: Pi 2 and later on a 32-bit OS); default both.
# ARMv6 (Pi 1, Zero, Zero W) is not a target: Debian's armhf cross compiler emits ARMv7 code.
#
# Installs what is missing: the rustup target, Debian's cross gcc and cross glibc (the linker,
# and the C compiler for ring and SQLite), and qemu-user (the runner in .cargo/config.toml, for
# scripts/arm-test.sh). apt-get runs only as root and only when something is missing.
# The binaries link against the build machine's glibc: build on bookworm for bookworm.
#
# Prints each binary's path and stripped size. --install-only sets up the tools and stops.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

profile=release
install_only=false
targets=()
for arg in "$@"; do
    case $arg in
    --debug) profile=debug ;;
    --install-only) install_only=true ;;
    aarch64-unknown-linux-gnu | armv7-unknown-linux-gnueabihf) targets+=("$arg") ;;
    -h | --help)
        sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "build-arm: unknown argument '$arg' (targets: aarch64-unknown-linux-gnu, armv7-unknown-linux-gnueabihf)" >&2
        exit 64
        ;;
    esac
done
((${#targets[@]} > 0)) || targets=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)

# Debian packages each target needs: <gcc> <glibc for the linker> and the qemu-user runner.
debian_packages() {
    case $1 in
    aarch64-unknown-linux-gnu) echo gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user ;;
    armv7-unknown-linux-gnueabihf) echo gcc-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user ;;
    esac
}

missing=()
for target in "${targets[@]}"; do
    for pkg in $(debian_packages "$target"); do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$pkg")
    done
done
if ((${#missing[@]} > 0)); then
    # Unique names, in order.
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
    if ((EUID != 0)); then
        echo "build-arm: missing Debian packages; install them with:" >&2
        echo "  sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
    echo "build-arm: installing ${missing[*]}"
    # One update per machine: skip it when the lists are already there (CI runs it first).
    if [[ -z $(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -print -quit) ]]; then
        apt-get update -qq
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

installed_targets=$(rustup target list --installed)
for target in "${targets[@]}"; do
    grep -qx "$target" <<<"$installed_targets" || rustup target add "$target"
done
$install_only && exit 0

# build.rs builds the web client with node on this machine (not the target); say so before a
# long cross build fails on it. ROOST_WEB_DIST embeds a client built elsewhere instead.
if [[ -z ${ROOST_WEB_DIST:-} ]] && ! node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' 2>/dev/null; then
    echo "build-arm: the web client needs Node.js 20 or later and npm on this machine" >&2
    echo "  (Debian 13: apt-get install nodejs npm; older systems: nodejs.org), or ROOST_WEB_DIST=<built dist>" >&2
    exit 1
fi

target_dir=${CARGO_TARGET_DIR:-$repo/target}
build_flags=(--locked --bin roost)
[[ $profile == release ]] && build_flags+=(--release)
for target in "${targets[@]}"; do
    echo "build-arm: cargo build --$profile --target $target"
    start=$SECONDS
    cargo build "${build_flags[@]}" --target "$target"
    bin=$target_dir/$target/$profile/roost
    # [profile.release] strip = "symbols": the release binary is already stripped.
    size=$(stat -c %s "$bin")
    printf 'build-arm: %s  %s bytes (%s MiB), %ss\n' "$bin" "$size" \
        "$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1048576 }')" $((SECONDS - start))
done
