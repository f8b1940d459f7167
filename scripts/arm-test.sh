#!/usr/bin/env bash
# Tests the ARM build under qemu-user: the library's unit tests, and a smoke test of the real
# binary. Proves the cross-compiled code runs, not just that it links.
#
#   scripts/arm-test.sh [--target TARGET] [--unit] [--smoke [BINARY]]
#
# TARGET defaults to aarch64-unknown-linux-gnu (armv7-unknown-linux-gnueabihf also works).
# --unit   `cargo test --lib --target TARGET`: the test binary runs under the qemu runner that
#          .cargo/config.toml names. Integration tests (tests/) are not run here: they start
#          the binary many times, which under emulation costs minutes for no ARM-specific gain.
# --smoke  runs BINARY (default: the release build of TARGET, built if missing) under qemu:
#          `roost version`, `roost init` and `roost serve` with a temporary configuration on
#          127.0.0.1 (ports chosen by the kernel), GET /health over TLS with curl --cacert
#          against the CA init made, then SIGTERM; the daemon must exit 0 within its deadline.
# Neither flag: both. Installs what is missing (through scripts/build-arm.sh, and curl).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# Deadlines, generous for emulation on a slow, shared CI machine.
readonly START_DEADLINE_SECS=120
readonly STOP_DEADLINE_SECS=60

target=aarch64-unknown-linux-gnu
run_unit=false
run_smoke=false
binary=
while (($# > 0)); do
    case $1 in
    --target)
        target=$2
        shift
        ;;
    --unit) run_unit=true ;;
    --smoke)
        run_smoke=true
        if [[ ${2:-} != "" && ${2:-} != --* ]]; then
            binary=$2
            shift
        fi
        ;;
    -h | --help)
        sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "arm-test: unknown argument '$1'" >&2
        exit 64
        ;;
    esac
    shift
done
if ! $run_unit && ! $run_smoke; then
    run_unit=true
    run_smoke=true
fi

case $target in
aarch64-unknown-linux-gnu) qemu=(qemu-aarch64 -L /usr/aarch64-linux-gnu) ;;
armv7-unknown-linux-gnueabihf) qemu=(qemu-arm -L /usr/arm-linux-gnueabihf) ;;
*)
    echo "arm-test: unsupported target '$target'" >&2
    exit 64
    ;;
esac
bash scripts/build-arm.sh --install-only "$target"
if $run_smoke && ! command -v curl >/dev/null 2>&1; then
    ((EUID == 0)) || {
        echo "arm-test: curl is missing; install it with: sudo apt-get install curl" >&2
        exit 1
    }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl >/dev/null
fi

if $run_unit; then
    echo "arm-test: unit tests for $target under ${qemu[0]}"
    start=$SECONDS
    cargo test --locked --lib --target "$target"
    echo "arm-test: unit tests took $((SECONDS - start))s"
fi

$run_smoke || exit 0

target_dir=${CARGO_TARGET_DIR:-$repo/target}
if [[ -z $binary ]]; then
    binary=$target_dir/$target/release/roost
    [[ -x $binary ]] || bash scripts/build-arm.sh "$target"
fi
[[ -x $binary ]] || {
    echo "arm-test: $binary is not an executable" >&2
    exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/roost-arm-smoke.XXXXXX")
pid=
cleanup() {
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "arm-test: smoke FAILED: $*" >&2
    if [[ -s $work/serve.log ]]; then
        echo "--- roost serve log:" >&2
        tail -n 40 "$work/serve.log" >&2
    fi
    exit 1
}

echo "arm-test: smoke test of $binary under ${qemu[0]}"
start=$SECONDS
version=$("${qemu[@]}" "$binary" version) || fail "'roost version' failed"
echo "  $version"
case $target in
aarch64-*) [[ $version == *"(aarch64)"* ]] || fail "not an aarch64 binary: $version" ;;
armv7-*) [[ $version == *"(arm)"* ]] || fail "not an arm binary: $version" ;;
esac

# The production profile (what a Pi runs), on loopback with kernel-chosen ports.
cat >"$work/roost.toml" <<TOML
[server]
hostname = "localhost"
https_addr = "127.0.0.1:0"
http_addr = ""
internal_addr = "127.0.0.1:0"
[storage]
data_dir = "$work/data"
min_free_disk_mb = 1
TOML

"${qemu[@]}" "$binary" init --config "$work/roost.toml" >"$work/init.log" 2>&1 ||
    fail "'roost init' failed: $(cat "$work/init.log")"
ca=$work/data/tls/ca.crt
[[ -s $ca ]] || fail "'roost init' made no CA at $ca"

"${qemu[@]}" "$binary" serve --config "$work/roost.toml" --log-format json \
    >"$work/serve.out" 2>"$work/serve.log" &
pid=$!

# Wait for the "listening" line, which carries the bound addresses.
https=
deadline=$((SECONDS + START_DEADLINE_SECS))
while [[ -z $https ]]; do
    kill -0 "$pid" 2>/dev/null || fail "roost serve exited before listening"
    ((SECONDS < deadline)) || fail "no 'listening' log line within ${START_DEADLINE_SECS}s"
    https=$(grep '"listening"' "$work/serve.log" 2>/dev/null |
        sed -nE 's/.*"https":"127\.0\.0\.1:([0-9]+)".*/\1/p' | head -n 1) || true
    [[ -n $https ]] || sleep 0.5
done
echo "  listening on https://localhost:$https after $((SECONDS - start))s"

body=$(curl --silent --show-error --fail --max-time 30 --cacert "$ca" \
    "https://localhost:$https/health") || fail "GET /health over TLS failed"
[[ $body == *'"status":"ok"'* ]] || fail "unexpected /health body: $body"
echo "  GET /health: $body"

kill -TERM "$pid"
deadline=$((SECONDS + STOP_DEADLINE_SECS))
while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS < deadline)) || fail "still running ${STOP_DEADLINE_SECS}s after SIGTERM"
    sleep 0.2
done
status=0
wait "$pid" || status=$?
pid=
((status == 0)) || fail "exit status $status after SIGTERM (want 0)"
echo "arm-test: smoke ok ($target, SIGTERM -> exit 0, $((SECONDS - start))s)"
