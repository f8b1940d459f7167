# shellcheck shell=bash
# What the bash scripts that run a Roost daemon share (scripts/bench/*.sh, scripts/testssl.sh):
# one way to start `roost serve` on loopback from a temp data dir and wait until it answers,
# and the temp dir, ports and process cleanup around it.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"      (after `set -euo pipefail`)
#
# Sourcing defines functions and $repo and $target only; nothing starts or is written until a
# function is called. Messages go to stderr, prefixed with $LOG_TAG (default: the script name).
#
#   log MSG, die MSG          a message; die also exits 1
#   lib_workdir NAME          $work = a new temp dir; on exit every process started through this
#                             file (or given to lib_track) is stopped, then $work removed
#   lib_track PID             stop PID on exit too
#   stop_pid PID              TERM, then KILL after 15 s (the daemon drains for up to 10 s)
#   free_port                 a loopback port nothing listens on now, from 20000-31999
#   roost_bin release|debug   $roost = $ROOST_BIN, or target/<profile>/roost built with cargo
#   roost_config [SERVER_KEYS] [MORE_TOML]
#                             writes $work/roost.toml: HTTPS on a free loopback port, no plain
#                             HTTP, the internal listener on another free port, data in
#                             $work/data, min_free_disk_mb = 1. SERVER_KEYS are more lines of
#                             [server]; MORE_TOML more sections. Sets $roost_port,
#                             $roost_internal_port, $roost_url (https://localhost:PORT),
#                             $roost_ca (the CA `roost init` or `serve` makes)
#   roost_start [CORE]        `roost serve` in the background (pinned to CORE with taskset if
#                             given), log in $work/roost.log; returns once GET /health answers
#                             over TLS verified against $roost_ca. Sets $roost_pid. A caller's
#                             array $roost_wrap, if set, is put before the command (a profiler)
#   livekit_sdk_venv          $venv = a venv in the cargo target dir holding LiveKit's Python SDK
#                             (`livekit` from PyPI, version $LIVEKIT_SDK_VERSION), made or
#                             updated when missing
#   wait_https URL CA PID NAME LOG
#                             polls URL (curl --cacert CA) until it answers 2xx; dies with LOG
#                             if PID exits first or after $LIB_READY_SECS (default 60)

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}

LIVEKIT_SDK_VERSION=1.2.0

log() { echo "${LOG_TAG:-$(basename "$0" .sh)}: $*" >&2; }
die() {
    log "$*"
    exit 1
}

lib_pids=()
lib_track() { lib_pids+=("$1"); }

stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

lib_cleanup() {
    local pid
    for pid in "${lib_pids[@]}"; do
        stop_pid "$pid"
    done
    if [[ -n ${work:-} ]]; then
        rm -rf "$work"
    fi
}

lib_workdir() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/roost-$1.XXXXXX")
    trap lib_cleanup EXIT
    trap 'exit 130' INT TERM
}

# Below the kernel's ephemeral range (32768 and up by default): a benchmark's thousands of
# client connections leave ports there in TIME_WAIT that a listener cannot always bind.
free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
}

roost_bin() {
    local profile=$1
    if [[ -n ${ROOST_BIN:-} ]]; then
        roost=$ROOST_BIN
    else
        log "building roost ($profile)"
        if [[ $profile == release ]]; then
            (cd "$repo" && cargo build --quiet --locked --release --bin roost)
        else
            (cd "$repo" && cargo build --quiet --locked --bin roost)
        fi
        roost=$target/$profile/roost
    fi
    [[ -x $roost ]] || die "$roost is not an executable"
}

roost_config() {
    local server_keys=${1:-} more_toml=${2:-}
    roost_port=$(free_port)
    roost_internal_port=$(free_port)
    while [[ $roost_internal_port == "$roost_port" ]]; do
        roost_internal_port=$(free_port)
    done
    roost_url=https://localhost:$roost_port
    roost_ca=$work/data/tls/ca.crt
    cat >"$work/roost.toml" <<TOML
[server]
hostname = "localhost"
https_addr = "127.0.0.1:$roost_port"
http_addr = ""
internal_addr = "127.0.0.1:$roost_internal_port"
$server_keys
[storage]
data_dir = "$work/data"
min_free_disk_mb = 1
$more_toml
TOML
}

wait_https() {
    local url=$1 ca=$2 pid=$3 name=$4 logfile=$5
    local deadline=$((SECONDS + ${LIB_READY_SECS:-60}))
    until [[ -f $ca ]] && curl -fsS --max-time 1 --cacert "$ca" "$url" >/dev/null 2>&1; do
        if ! kill -0 "$pid" 2>/dev/null; then
            sed 's/^/    /' "$logfile" >&2 || true
            die "$name exited before it was ready (log above)"
        fi
        if ((SECONDS >= deadline)); then
            sed 's/^/    /' "$logfile" >&2 || true
            die "$name not ready at $url after ${LIB_READY_SECS:-60}s (log above)"
        fi
        sleep 0.1
    done
}

roost_start() {
    local core=${1:-} cmd=(${roost_wrap[@]+"${roost_wrap[@]}"} "$roost" serve --config "$work/roost.toml")
    if [[ -n $core ]]; then
        cmd=(taskset -c "$core" "${cmd[@]}")
    fi
    "${cmd[@]}" >"$work/roost.log" 2>&1 &
    roost_pid=$!
    lib_track "$roost_pid"
    wait_https "$roost_url/health" "$roost_ca" "$roost_pid" roost "$work/roost.log"
}

livekit_sdk_venv() {
    venv=$target/livekit-e2e-venv
    if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('livekit') != '$LIVEKIT_SDK_VERSION')" 2>/dev/null; then
        python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "livekit==$LIVEKIT_SDK_VERSION"
    fi
}
