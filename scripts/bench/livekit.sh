#!/usr/bin/env bash
# Calls with 2, 4 and 8 participants publishing audio, and 2 publishing 720p video, through
# Roost and the real livekit-server: join time (call token request to the first frame from
# another participant, median and worst) and, with everyone publishing, CPU (percent of one
# core) and RSS of livekit-server and of Roost over 10 s (video: 20 s after a 10 s warm-up),
# with the video's size and frame rate as sent and as decoded. The 720p call is repeated as a
# reference with the same tokens straight to LiveKit's loopback port, without Roost's proxy.
# Participants use LiveKit's Python SDK (scripts/lib.sh's venv); the server is
# scripts/build-livekit.sh's pinned build.
#
#   scripts/bench/livekit.sh            (ROOST_BIN=path to measure a built roost)
#
# The participants run on this machine too, so their CPU competes with the servers'.
set -euo pipefail
LOG_TAG=bench-livekit
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

livekit_sdk_venv
livekit=$("$repo/scripts/build-livekit.sh" host)
roost_bin release

lib_workdir bench-livekit
livekit_port=$(free_port)
roost_config "" "[livekit]
enabled = true
binary = \"$livekit\"
http_port = $livekit_port
rtc_tcp_port = $(free_port)
rtc_udp_port = $(free_port)
drain_grace_secs = 2
[rate_limits]
exempt_cidrs = [\"127.0.0.1/32\"]"

password="bench password 1"
"$roost" init --config "$work/roost.toml" >/dev/null
accounts=()
for i in 1 2 3 4 5 6 7 8; do
    role=member
    ((i == 1)) && role=admin
    echo "$password" | "$roost" user add "part$i" --role "$role" --config "$work/roost.toml" >/dev/null
    accounts+=("part$i")
done
RUNTIME_DIRECTORY='' roost_start
deadline=$((SECONDS + 60))
until curl -fsS --cacert "$roost_ca" "$roost_url/ready" | grep -q '"livekit":{"status":"ok"'; do
    ((SECONDS < deadline)) || die "LiveKit did not become ready within 60 s"
    sleep 0.2
done
# Roost's only child is the LiveKit it supervises.
livekit_pid=$(pgrep -P "$roost_pid" | head -n 1)
[[ -n $livekit_pid ]] || die "no livekit-server child of roost ($roost_pid)"
log "roost $roost_pid, $("$livekit" --version) $livekit_pid; $(nproc) cores, $(uname -m)"

SSL_CERT_FILE=$roost_ca "$venv/bin/python" "$repo/scripts/bench/livekit_calls.py" \
    "$roost_url" "$roost_ca" "$roost_pid" "$livekit_pid" "$livekit_port" "$password" "${accounts[@]}" 2> >(grep -v -E '^(livekit|libwebrtc)' >&2)
