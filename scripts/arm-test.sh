#!/usr/bin/env bash
# Tests the ARM build under qemu-user: the library's unit tests, and a smoke test of the real
# binary. Proves the cross-compiled code runs, not just that it links.
#
#   scripts/arm-test.sh [--target TARGET] [--unit] [--smoke [BINARY]] [--livekit FILE]
#
# TARGET defaults to aarch64-unknown-linux-gnu (armv7-unknown-linux-gnueabihf also works).
# --unit   `cargo test --lib --target TARGET`: the test binary runs under the qemu runner that
#          .cargo/config.toml names. Integration tests (tests/) are not run here: they start
#          the binary many times, which under emulation costs minutes for no ARM-specific gain.
#          Skipped: the two unit tests that re-run the test binary as a child process (to set a
#          umask, to measure RSS alone); the child is an ARM program exec'd without the qemu
#          runner's options (its `-L` sysroot for the ARM loader and libraries), so it cannot
#          start.
# --smoke  runs BINARY (default: the release build of TARGET, built if missing) under qemu:
#          `roost version`, `roost init` and `roost serve` with a temporary configuration on
#          127.0.0.1 (ports chosen by the kernel), GET /health over TLS with curl --cacert
#          against the CA init made; Roost supervises the pinned livekit-server for TARGET (the
#          one the package carries: scripts/build-livekit.sh, or --livekit FILE) under qemu too,
#          and /ready must report it up ("livekit": {"status": "ok"}); then SIGTERM: the daemon
#          must exit 0 within its deadline and leave no livekit-server behind.
# Neither flag: both. Installs what is missing (through scripts/build-arm.sh, curl and python3).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# Deadlines, generous for emulation on a slow, shared CI machine.
readonly START_DEADLINE_SECS=120
readonly STOP_DEADLINE_SECS=60
# LiveKit (Go) starting under qemu-user on a busy machine: tens of seconds.
readonly LIVEKIT_DEADLINE_SECS=240

target=aarch64-unknown-linux-gnu
run_unit=false
run_smoke=false
binary=
livekit=
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
    --livekit)
        livekit=$2
        shift
        ;;
    -h | --help)
        sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
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
aarch64-unknown-linux-gnu) qemu=(qemu-aarch64 -L /usr/aarch64-linux-gnu) livekit_target=aarch64 ;;
armv7-unknown-linux-gnueabihf) qemu=(qemu-arm -L /usr/arm-linux-gnueabihf) livekit_target=armv7 ;;
*)
    echo "arm-test: unsupported target '$target'" >&2
    exit 64
    ;;
esac
bash scripts/build-arm.sh --install-only "$target"
smoke_tools=()
if $run_smoke; then
    command -v curl >/dev/null 2>&1 || smoke_tools+=(curl)
    command -v python3 >/dev/null 2>&1 || smoke_tools+=(python3)
fi
if ((${#smoke_tools[@]} > 0)); then
    ((EUID == 0)) || {
        echo "arm-test: ${smoke_tools[*]} missing; install with: sudo apt-get install ${smoke_tools[*]}" >&2
        exit 1
    }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${smoke_tools[@]}" >/dev/null
fi

if $run_unit; then
    echo "arm-test: unit tests for $target under ${qemu[0]}"
    start=$SECONDS
    cargo test --locked --lib --target "$target" -- \
        --skip secret_file::tests::the_mode_holds_whatever_the_umask \
        --skip ops::memory::tests::free_pages_between_blocks_in_use_go_back_to_the_system
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
# The livekit-server the package carries for this target (cached per machine; a first build
# takes minutes).
[[ -n $livekit ]] || livekit=$(bash scripts/build-livekit.sh "$livekit_target")
[[ -x $livekit ]] || {
    echo "arm-test: $livekit is not an executable" >&2
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

# Roost starts livekit-server itself; an ARM binary runs here only under qemu, so Roost is
# pointed at a wrapper that execs qemu with it (whether or not binfmt_misc knows ARM). The
# supervisor signals the wrapper's process group, which qemu and LiveKit stay in.
cat >"$work/livekit-server" <<SH
#!/bin/sh
exec ${qemu[0]} "$(realpath "$livekit")" "\$@"
SH
chmod 0755 "$work/livekit-server"
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The production profile (what a Pi runs), on loopback with kernel-chosen ports; LiveKit's
# ports are picked free here (it needs them fixed in its configuration).
cat >"$work/roost.toml" <<TOML
[server]
hostname = "localhost"
https_addr = "127.0.0.1:0"
http_addr = ""
internal_addr = "127.0.0.1:0"
[storage]
data_dir = "$work/data"
min_free_disk_mb = 1
[livekit]
binary = "$work/livekit-server"
node_ip = "127.0.0.1"
http_port = $(free_port)
rtc_tcp_port = $(free_port)
rtc_udp_port = $(free_port)
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

# LiveKit under the supervisor: /ready's informational livekit check turns "ok" once Roost's
# health check reaches it.
deadline=$((SECONDS + LIVEKIT_DEADLINE_SECS))
livekit_state=
while :; do
    kill -0 "$pid" 2>/dev/null || fail "roost serve exited while LiveKit was starting"
    ready=$(curl --silent --max-time 30 --cacert "$ca" "https://localhost:$https/ready") || ready=
    livekit_state=$(python3 -c 'import json, sys; c = json.loads(sys.argv[1])["checks"]["livekit"]; print(c["status"], c.get("message", ""))' \
        "$ready" 2>/dev/null) || livekit_state="unreadable /ready: $ready"
    [[ $livekit_state == ok* ]] && break
    ((SECONDS < deadline)) || fail "/ready did not report livekit ok within ${LIVEKIT_DEADLINE_SECS}s (last: $livekit_state)"
    sleep 1
done
grep -q '"livekit started"' "$work/serve.log" || fail "no 'livekit started' log line"
echo "  GET /ready: livekit ok after $((SECONDS - start))s ($(basename "$livekit") under ${qemu[0]})"

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
# The supervisor stops LiveKit before Roost exits: no livekit-server with this run's
# configuration (under $work) is left.
if pgrep -f "livekit-server.*$work/" >/dev/null; then
    fail "livekit-server still running after roost exited: $(pgrep -af "livekit-server.*$work/")"
fi
echo "arm-test: smoke ok ($target, SIGTERM -> exit 0, $((SECONDS - start))s)"
