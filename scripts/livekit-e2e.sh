#!/usr/bin/env bash
# A real call end to end: `roost serve` supervising the pinned livekit-server
# (scripts/build-livekit.sh), and two participants using LiveKit's official Python SDK (the
# `livekit` package from PyPI, pinned in scripts/lib.sh; its wheel carries LiveKit's native client library)
# who join one room through Roost's TLS /rtc proxy with call tokens from Roost's API. One
# publishes audio and video, the other must receive frames within 10 s; LiveKit's webhooks must
# keep GET /api/v1/rooms/{id}/call right; LiveKit must refuse a token rewritten for another room
# and an expired one. scripts/livekit-e2e/call.py says what is checked.
#
# Then the same call with an external LiveKit (`livekit.external_url`): a livekit-server this
# script runs, as an operator would on another machine, whose webhooks come to Roost's public
# HTTPS listener (verified against Roost's local CA), not to the loopback internal one.
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
call() {
    if ! SSL_CERT_FILE=$roost_ca "$venv/bin/python" "$repo/scripts/livekit-e2e/call.py" \
        "$roost_url" "$roost_ca" "$1" alice bob "$password"; then
        sed 's/^/    /' "$work/roost.log" | tail -n 60 >&2
        [[ -f $work/external.log ]] && sed 's/^/    /' "$work/external.log" | tail -n 20 >&2
        die "the call failed ($2; logs above)"
    fi
}
call "$work/data/secrets/livekit_api_secret" "LiveKit supervised by roost"
log "the call through the supervised LiveKit passed ($((SECONDS - t0)) s)"

stop_pid "$roost_pid"
rm -rf "$work/data"
ext_http=$(free_port)
ext_key=APIexternal
printf '%s' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$work/external.secret"
roost_config "" "[livekit]
enabled = true
external_url = \"http://127.0.0.1:$ext_http\"
api_key = \"$ext_key\"
api_secret_file = \"$work/external.secret\""
"$roost" init --config "$work/roost.toml" >/dev/null
echo "$password" | "$roost" user add alice --role admin --config "$work/roost.toml" >/dev/null
echo "$password" | "$roost" user add bob --config "$work/roost.toml" >/dev/null
# The address the external server announces: this machine's, as Roost would pick it.
node_ip=$(ip -4 -o route get 192.0.2.1 2>/dev/null | grep -o 'src [0-9.]*' | cut -d' ' -f2 || true)
cat >"$work/external.yaml" <<YAML
port: $ext_http
bind_addresses: ["127.0.0.1"]
rtc:
  tcp_port: $(free_port)
  udp_port: $(free_port)
  use_external_ip: false
  node_ip: "${node_ip:-127.0.0.1}"
keys:
  $ext_key: "$(cat "$work/external.secret")"
webhook:
  api_key: $ext_key
  urls: ["$roost_url/livekit/webhook"]
logging:
  json: true
YAML
# It trusts Roost's certificate as an operator's would after installing the local CA.
SSL_CERT_FILE=$roost_ca "$livekit" --config "$work/external.yaml" >"$work/external.log" 2>&1 &
lib_track $!
RUNTIME_DIRECTORY='' roost_start
deadline=$((SECONDS + 60))
until curl -fsS --cacert "$roost_ca" "$roost_url/ready" | grep -q '"livekit":{"status":"ok"'; do
    ((SECONDS < deadline)) || {
        sed 's/^/    /' "$work/roost.log" "$work/external.log" >&2
        die "the external LiveKit was not ready for roost within 60 s (logs above)"
    }
    sleep 0.2
done
log "roost on $roost_url with an external LiveKit on 127.0.0.1:$ext_http, its webhooks to $roost_url/livekit/webhook"
call "$work/external.secret" "external LiveKit"
grep -q '"event":"participant_joined".*"status":"200 OK"' "$work/external.log" ||
    die "the external LiveKit's log shows no participant_joined webhook answered 200 by Roost"
log "passed ($((SECONDS - t0)) s)"
