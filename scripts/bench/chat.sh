#!/usr/bin/env bash
# Chat figures (item 12 of the chat issue), printed side by side with their goals and, for
# fan-out, with mosquitto (Debian's) delivering one message to as many WebSocket subscribers:
#   - durable message posts per second over HTTPS (synchronous=FULL; a 201 means committed);
#   - one message fanned out to N WebSocket subscribers: p50/p99 delivery latency;
#   - memory per idle WebSocket connection (RSS growth / connections);
#   - list and search latency with 1,000,000 messages in a room.
# A benchmark, not a test: it prints figures and exits 0 unless it could not measure. Roost runs
# pinned to core 0 and the load client (examples/chat_bench.rs, one thread) to core 1. The
# gateway subscribers connect from 127.0.0.2-127.0.0.251 (as phones come from their own
# addresses; Roost's per-address cap, max_connections_per_ip, stays at its default), and both
# processes get file descriptors for them (ulimit -n; the script stops if it cannot raise it).
#
#   scripts/bench/chat.sh
#   BENCH_SECONDS=10 BENCH_SUBSCRIBERS=1000 BENCH_MESSAGES=20 BENCH_SEED=1000000 scripts/bench/chat.sh
#   BENCH_CASES="fanout" scripts/bench/chat.sh     # only some of: posts fanout mqtt reads
#
# Environment: CARGO_TARGET_DIR (where cargo builds; default ./target); ROOST_BIN (a roost binary
# to measure instead of building one, e.g. to compare two builds); CHAT_BENCH_BIN (a chat_bench
# client already built). Installs mosquitto with apt-get when missing (as root).
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

LOG_TAG=bench
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

if wanted mqtt && ! command -v mosquitto >/dev/null 2>&1 && [[ ! -x /usr/sbin/mosquitto ]]; then
    ((EUID == 0)) || die "mosquitto missing; install with: sudo apt-get install -y mosquitto"
    log "installing mosquitto with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
fi
mosquitto_bin=$(command -v mosquitto || echo /usr/sbin/mosquitto)
# One descriptor per connection on each side, plus Roost's own (database, listeners, logs).
ulimit -n 16384 2>/dev/null || ulimit -n "$(ulimit -Hn)"
((SUBSCRIBERS + 256 <= $(ulimit -n))) ||
    die "$SUBSCRIBERS subscribers need more open files than 'ulimit -n' allows ($(ulimit -n)); raise the hard limit"

roost_bin release
if [[ -n ${CHAT_BENCH_BIN:-} ]]; then
    bench=$CHAT_BENCH_BIN
else
    log "building the chat_bench example (release); measuring $roost"
    (cd "$repo" && cargo build --quiet --locked --release --example chat_bench)
    bench="$target/release/examples/chat_bench"
fi
client() { taskset -c 1 "$bench" "$@"; }

# Everything started here is stopped on exit (scripts/lib.sh).
lib_workdir chat-bench
roost_config "max_connections = 8192" '
[rate_limits]
exempt_cidrs = ["127.0.0.0/8"]
[gateway]
max_connections = 4096
max_connections_per_user = 4096
[livekit]
enabled = false'
url=$roost_url
ca=$roost_ca
password="bench password 123"

"$roost" init --config "$work/roost.toml" >/dev/null
echo "$password" | "$roost" user add bench --role admin --config "$work/roost.toml" >/dev/null

roost_start 0
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
    lib_track "$mosquitto_pid"
    deadline=$((SECONDS + 10))
    until (exec 3<>"/dev/tcp/127.0.0.1/$mqtt_port") 2>/dev/null; do
        if ! kill -0 "$mosquitto_pid" 2>/dev/null || ((SECONDS >= deadline)); then break; fi
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
    roost_start 0
    client reads "$url" "$ca" bench "$password" "$room" "$READS"
fi
