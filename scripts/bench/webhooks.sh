#!/usr/bin/env bash
# Outgoing webhook delivery latency: from an event's commit (the `at` in the delivery body,
# stamped in the posting transaction) to the receiver, for one hook on loopback
#   - at idle: one message at a time, a fifth of a second apart;
#   - under load: messages posted at BENCH_RATE per second (default 1,000) for BENCH_SECONDS.
# Prints p50/p99/max per case; under load also how many posts got through and whether the hook
# kept up (every delivery arrived before the script stopped waiting). A benchmark, not a test:
# it prints figures and exits 0 unless it could not measure. Roost runs pinned to core 0, the
# poster and the receiver (scripts/bench/webhooks.py, Python's standard library) to core 1.
#
#   scripts/bench/webhooks.sh
#   BENCH_RATE=500 BENCH_SECONDS=5 BENCH_IDLE=20 scripts/bench/webhooks.sh
#
# Environment: CARGO_TARGET_DIR (where cargo builds; default ./target); ROOST_BIN (a roost binary
# to measure instead of building one).
set -euo pipefail

readonly RATE=${BENCH_RATE:-1000}
readonly LOAD_SECONDS=${BENCH_SECONDS:-10}
readonly IDLE=${BENCH_IDLE:-50}
readonly THREADS=${BENCH_THREADS:-32}

case "${1:-}" in
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
esac

LOG_TAG=bench
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
helper="$repo/scripts/bench/webhooks.py"

roost_bin release
lib_workdir webhooks-bench
roost_config "" '
[rate_limits]
exempt_cidrs = ["127.0.0.0/8"]
[webhooks]
allow_loopback = true
[livekit]
enabled = false'
url=$roost_url
ca=$roost_ca
password="bench password 123"
"$roost" init --config "$work/roost.toml" >/dev/null
echo "$password" | "$roost" user add bench --role admin --config "$work/roost.toml" >/dev/null
roost_start 0

receiver_port=$(free_port)
taskset -c 1 python3 "$helper" receive "$receiver_port" "$work/idle.ms" &
lib_track $!
# The first delivery must not race the receiver's bind (it would be refused and retried 1 s on).
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$receiver_port") 2>/dev/null && break
    sleep 0.1
done
token=$(curl -fsS --cacert "$ca" -H 'Content-Type: application/json' \
    -d "{\"username\":\"bench\",\"password\":\"$password\"}" "$url/api/v1/auth/login" |
    sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
auth=(-H "Authorization: Bearer $token" -H 'Content-Type: application/json')
room=$(curl -fsS --cacert "$ca" "${auth[@]}" -d '{"name":"bench"}' "$url/api/v1/rooms" |
    sed -n 's/^{"id":\([0-9]*\).*/\1/p')
[[ -n "$room" ]] || die "could not create the bench room"
curl -fsS --cacert "$ca" "${auth[@]}" -o /dev/null \
    -d "{\"url\":\"http://127.0.0.1:$receiver_port/\",\"events\":[\"message.created\"]}" \
    "$url/api/v1/webhooks" || die "could not register the webhook"

count() { [[ -f $1 ]] && wc -l <"$1" || echo 0; }
wait_count() {
    local file=$1 want=$2 deadline=$((SECONDS + 60))
    while (($(count "$file") < want && SECONDS < deadline)); do sleep 0.2; done
}

echo "== webhook delivery latency ($(uname -m), $(nproc) core(s), $(date -u +%Y-%m-%dT%H:%MZ)); roost on core 0, poster and receiver on core 1"
echo "-- idle: $IDLE messages, one every 200 ms"
for ((i = 0; i < IDLE; i++)); do
    curl -fsS --cacert "$ca" "${auth[@]}" -o /dev/null -d "{\"body\":\"idle $i\"}" \
        "$url/api/v1/rooms/$room/messages"
    sleep 0.2
done
wait_count "$work/idle.ms" "$IDLE"
python3 "$helper" stats "$work/idle.ms"

echo "-- under load: $RATE posts/s for $LOAD_SECONDS s ($THREADS connections)"
mv "$work/idle.ms" "$work/idle.done"
taskset -c 1 python3 "$helper" post "$url" "$ca" "$token" "$room" "$RATE" "$LOAD_SECONDS" "$THREADS" |
    tee "$work/posted.txt"
posted=$(sed -n 's/^posted \([0-9]*\) .*/\1/p' "$work/posted.txt")
# The receiver keeps appending to the file it opened (renamed above, same inode).
wait_count "$work/idle.done" $((IDLE + posted))
arrived=$(($(count "$work/idle.done") - IDLE))
python3 "$helper" stats "$work/idle.done" "$IDLE"
echo "delivered $arrived of $posted within 60 s of the last post"
