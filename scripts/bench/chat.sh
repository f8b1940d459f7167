#!/usr/bin/env bash
# Chat figures (item 12 of the chat issue), printed side by side with their goals and, for
# fan-out, with mosquitto (Debian's) delivering one message to as many WebSocket subscribers:
#   - durable message posts per second over HTTPS (synchronous=FULL; a 201 means committed);
#   - one message fanned out to N WebSocket subscribers: p50/p99 delivery latency;
#   - memory per idle WebSocket connection (RSS growth / connections);
#   - list and search latency with 1,000,000 messages in a room.
# A benchmark, not a test: it prints figures and exits 0 unless it could not measure. Roost runs
# pinned to core 0 and the load client (examples/chat_bench.rs, one thread) to core 1.
#
#   scripts/bench/chat.sh
#   BENCH_SECONDS=10 BENCH_SUBSCRIBERS=1000 BENCH_MESSAGES=20 BENCH_SEED=1000000 scripts/bench/chat.sh
#   BENCH_CASES="fanout" scripts/bench/chat.sh     # only some of: posts fanout mqtt reads
#
# Environment: CARGO_TARGET_DIR (where cargo builds; default ./target); ROOST_BIN (a roost binary
# to measure instead of building one, e.g. to compare two builds). Installs mosquitto with
# apt-get when missing (as root).
set -euo pipefail

readonly SECONDS_POSTS=${BENCH_SECONDS:-10}
readonly CONCURRENCY=${BENCH_CONCURRENCY:-64}
readonly SUBSCRIBERS=${BENCH_SUBSCRIBERS:-1000}
readonly MESSAGES=${BENCH_MESSAGES:-20}
readonly SEED=${BENCH_SEED:-1000000}
readonly READS=${BENCH_READS:-200}
readonly CASES=" ${BENCH_CASES:-posts fanout mqtt reads} "
wanted() { [[ "$CASES" == *" $1 "* ]]; }

case "${1:-}" in
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
esac

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
log() { echo "bench: $*" >&2; }
die() {
    log "$*"
    exit 1
}

if ! command -v mosquitto >/dev/null 2>&1 && [[ ! -x /usr/sbin/mosquitto ]]; then
    ((EUID == 0)) || die "mosquitto missing; install with: sudo apt-get install -y mosquitto"
    log "installing mosquitto with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
fi
mosquitto_bin=$(command -v mosquitto || echo /usr/sbin/mosquitto)
ulimit -n 16384 2>/dev/null || ulimit -n "$(ulimit -Hn)"

if [[ -n "${ROOST_BIN:-}" ]]; then
    log "building the chat_bench example (release); measuring $ROOST_BIN"
    (cd "$repo" && cargo build --quiet --release --example chat_bench)
    roost=$ROOST_BIN
else
    log "building roost and the chat_bench example (release)"
    (cd "$repo" && cargo build --quiet --release --bin roost --example chat_bench)
    roost="$target/release/roost"
fi
bench="$target/release/examples/chat_bench"
client() { taskset -c 1 "$bench" "$@"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/roost-chat-bench.XXXXXX")
pids=()
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
cleanup() {
    local pid
    for pid in "${pids[@]}"; do stop_pid "$pid"; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Below the kernel's ephemeral range (32768 and up by default), where the thousand client
# connections of the fan-out leave ports in TIME_WAIT that a listener cannot always bind.
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

https_port=$(free_port)
internal_port=$(free_port)
cat >"$work/roost.toml" <<TOML
[server]
hostname = "localhost"
https_addr = "127.0.0.1:$https_port"
http_addr = ""
internal_addr = "127.0.0.1:$internal_port"
max_connections = 8192
[storage]
data_dir = "$work/data"
min_free_disk_mb = 1
[rate_limits]
exempt_cidrs = ["127.0.0.1/32"]
[gateway]
max_connections = 4096
max_connections_per_user = 4096
[livekit]
enabled = false
TOML
url="https://localhost:$https_port"
ca="$work/data/tls/ca.crt"
password="bench password 123"

"$roost" init --config "$work/roost.toml" >/dev/null
echo "$password" | "$roost" user add bench --role admin --config "$work/roost.toml" >/dev/null

start_roost() {
    taskset -c 0 "$roost" serve --config "$work/roost.toml" >"$work/roost.log" 2>&1 &
    roost_pid=$!
    pids+=("$roost_pid")
    local deadline=$((SECONDS + 60))
    until curl -fsS --max-time 1 --cacert "$ca" "$url/health" >/dev/null 2>&1; do
        kill -0 "$roost_pid" 2>/dev/null || { cat "$work/roost.log" >&2; die "roost exited"; }
        ((SECONDS < deadline)) || die "roost not ready in 60 s"
        sleep 0.2
    done
}
start_roost
token=$(curl -fsS --cacert "$ca" -H 'Content-Type: application/json' \
    -d "{\"username\":\"bench\",\"password\":\"$password\"}" "$url/api/v1/auth/login" |
    sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
room=$(curl -fsS --cacert "$ca" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"name":"bench"}' "$url/api/v1/rooms" | sed -n 's/^{"id":\([0-9]*\).*/\1/p')
[[ -n "$room" ]] || die "could not create the bench room"

echo "== chat ($(uname -m), $(nproc) core(s), $(date -u +%Y-%m-%dT%H:%MZ)); roost on core 0, client on core 1"
if wanted posts; then
    echo "-- durable posts over HTTPS (goal >= 20000/s)"
    client posts "$url" "$ca" bench "$password" "$room" "$SECONDS_POSTS" "$CONCURRENCY"
fi

if wanted fanout; then
    echo "-- fan-out of one message to $SUBSCRIBERS websocket subscribers (goal p99 <= 50 ms; idle memory goal <= 16 KiB)"
    client fanout "$url" "$ca" bench "$password" "$room" "$SUBSCRIBERS" "$MESSAGES" "$roost_pid"
fi

if wanted mqtt; then
    mqtt_port=$(free_port)
    plain_port=$(free_port)
    # mosquitto 2.0.11 (Debian 12) exits with "Unable to start any listening sockets" when every
    # listener is a websockets one: only plain MQTT listeners count in that check. A loopback MQTT
    # listener beside it (unused) lets it start. Its statically linked libwebsockets ignores the
    # bind address and listens on [::] unless socket_domain is set.
    cat >"$work/mosquitto.conf" <<CONF
per_listener_settings true
persistence false
listener $plain_port 127.0.0.1
allow_anonymous true
listener $mqtt_port 127.0.0.1
protocol websockets
socket_domain ipv4
allow_anonymous true
max_connections -1
CONF
    taskset -c 0 "$mosquitto_bin" -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
    mosquitto_pid=$!
    pids+=("$mosquitto_pid")
    deadline=$((SECONDS + 10))
    until (exec 3<>"/dev/tcp/127.0.0.1/$mqtt_port") 2>/dev/null; do
        kill -0 "$mosquitto_pid" 2>/dev/null && ((SECONDS < deadline)) || break
        sleep 0.1
    done
    echo "-- reference: mosquitto $("$mosquitto_bin" -h 2>/dev/null | sed -n '1s/.*version \([^ ]*\).*/\1/p') (Debian), websockets listener, same client"
    if kill -0 "$mosquitto_pid" 2>/dev/null; then
        client mqtt "$mqtt_port" "$plain_port" "$SUBSCRIBERS" "$MESSAGES" "$mosquitto_pid"
        stop_pid "$mosquitto_pid"
    else
        echo "  not measured: mosquitto did not start:"
        sed 's/^/    /' "$work/mosquitto.log"
    fi
fi

if wanted reads; then
    echo "-- list and search with $SEED messages in one room"
    stop_pid "$roost_pid"
    client seed "$work/data/roost.sqlite3" "$SEED"
    start_roost
    client reads "$url" "$ca" bench "$password" "$room" "$READS"
fi
