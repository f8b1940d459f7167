#!/usr/bin/env bash
# A real call end to end: `roost serve` supervising the pinned livekit-server
# (scripts/build-livekit.sh), and two participants using LiveKit's official Python SDK (the
# `livekit` package from PyPI, pinned in scripts/lib.sh; its wheel carries LiveKit's native client library)
# who join one room through Roost's TLS /rtc proxy with call tokens from Roost's API. One
# publishes audio and video, the other must receive frames within 10 s; LiveKit's webhooks must
# keep GET /api/v1/rooms/{id}/call right; LiveKit must refuse a token rewritten for another room
# and an expired one. scripts/livekit-e2e/call.py says what is checked.
#
# Needs python3 with venv and Go (for the first LiveKit build). The SDK goes into a venv in the
# cargo target dir, not the checkout.
set -euo pipefail
LOG_TAG=livekit-e2e
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

t0=$SECONDS
livekit_sdk_venv
log "livekit (Python SDK) $LIVEKIT_SDK_VERSION ready ($((SECONDS - t0)) s)"

livekit=$("$repo/scripts/build-livekit.sh" host)
roost_bin debug
log "roost and $("$livekit" --version) ready ($((SECONDS - t0)) s)"

lib_workdir livekit-e2e
lk_http=$(free_port)
lk_tcp=$(free_port)
lk_udp=$(free_port)
roost_config "" "[livekit]
enabled = true
binary = \"$livekit\"
http_port = $lk_http
rtc_tcp_port = $lk_tcp
rtc_udp_port = $lk_udp
drain_grace_secs = 2"

password="e2e password 1"
"$roost" init --config "$work/roost.toml" >/dev/null
echo "$password" | "$roost" user add alice --role admin --config "$work/roost.toml" >/dev/null
echo "$password" | "$roost" user add bob --config "$work/roost.toml" >/dev/null
RUNTIME_DIRECTORY='' roost_start

deadline=$((SECONDS + 60))
until curl -fsS --cacert "$roost_ca" "$roost_url/ready" | grep -q '"livekit":{"status":"ok"'; do
    ((SECONDS < deadline)) || {
        sed 's/^/    /' "$work/roost.log" >&2
        die "LiveKit did not become ready under roost within 60 s (log above)"
    }
    sleep 0.2
done
log "roost serving on $roost_url with LiveKit ready ($((SECONDS - t0)) s)"

# LiveKit's native client library reads extra trust anchors from SSL_CERT_FILE.
if ! SSL_CERT_FILE=$roost_ca "$venv/bin/python" "$repo/scripts/livekit-e2e/call.py" \
    "$roost_url" "$roost_ca" "$work/data" alice bob "$password"; then
    sed 's/^/    /' "$work/roost.log" | tail -n 60 >&2
    die "the call failed (roost's log above)"
fi
log "passed ($((SECONDS - t0)) s)"
