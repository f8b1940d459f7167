#!/usr/bin/env bash
# A call across a network: `roost serve` with its supervised livekit-server in a "pi" network
# namespace, LiveKit's Python SDK (scripts/livekit-e2e/net.py) in a "phone" namespace, joined
# by a veth pair on 192.168.77.0/24. The pi also has a bridge `docker0` at 172.17.0.1, created
# first so that it comes before the LAN in interface order, as a container bridge often does.
# Roost's config leaves livekit.node_ip empty: the address must be found by Roost itself.
#
# Checked (2-4 each with audio and video frames received by the phone):
#   1. `roost doctor` in the pi names 192.168.77.1 as the address LiveKit announces;
#   2. udp:  every ICE candidate the server offers is 192.168.77.1 (no 127.0.0.1, no 172.17.x)
#            and the selected pair is UDP;
#   3. tcp:  with UDP to the pi dropped by nftables in the phone, the call still connects over
#            the configured ICE/TCP port;
#   4. turn: with the media ports dropped too (all UDP but TURN's 3478, and ICE/TCP), a
#            relay-only client
#            connects through LiveKit's TURN server.
#   5. turns: with only TCP 8443 and 443 open, LiveKit's TURN over TLS answers on 443 with
#            Roost's certificate, verified against the local CA from the phone, and a call in
#            the web client (web/e2e/netns-turns.mjs: two people in chromium, which trusts the
#            local CA through its NSS database as a phone would after installing /ca.crt) has
#            both see each other's video with every selected candidate pair a relay over TLS.
#
# Needs root (namespaces, nftables), iproute2, nftables, openssl and certutil (installed with
# apt-get when missing), python3 with venv, chromium and the web client's npm packages (as for
# scripts/web-test.sh), and Go for the first LiveKit build.
set -euo pipefail
LOG_TAG=livekit-netns
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $(id -u) == 0 ]] || die "needs root: it creates network namespaces and firewall rules"
for tool in ip:iproute2 nft:nftables openssl:openssl certutil:libnss3-tools; do
    if ! command -v "${tool%%:*}" >/dev/null; then
        log "installing ${tool#*:}"
        apt-get install -y -qq "${tool#*:}" >/dev/null || die "apt-get install ${tool#*:} failed"
    fi
done
[[ -x /usr/bin/chromium ]] || die "the TURN over TLS call needs chromium: apt-get install chromium"
if [[ ! -d $repo/web/node_modules/playwright-core ]]; then
    log "installing the web client's npm packages (playwright-core drives chromium)"
    (cd "$repo/web" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci in web/ failed"
fi
t0=$SECONDS
livekit_sdk_venv
livekit=$("$repo/scripts/build-livekit.sh" host)
roost_bin debug
log "roost, $("$livekit" --version) and the Python SDK ready ($((SECONDS - t0)) s)"

lib_workdir livekit-netns
pi=roost-pi-$$
phone=roost-phone-$$
lan_ip=192.168.77.1
netns_cleanup() {
    # Whatever still runs in the namespaces (roost, its livekit-server) is stopped first: a
    # namespace's processes outlive `ip netns del`.
    local ns pid
    for ns in "$pi" "$phone"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            stop_pid "$pid"
        done
    done
    lib_cleanup
    ip netns del "$pi" 2>/dev/null || true
    ip netns del "$phone" 2>/dev/null || true
    rm -rf "/etc/netns/$phone"
}
trap netns_cleanup EXIT

ip netns add "$pi"
ip netns add "$phone"
ip -n "$pi" link set lo up
ip -n "$phone" link set lo up
ip -n "$pi" link add docker0 type bridge
ip -n "$pi" addr add 172.17.0.1/16 dev docker0
ip -n "$pi" link set docker0 up
ip link add eth0 netns "$pi" type veth peer name eth0 netns "$phone"
ip -n "$pi" addr add "$lan_ip/24" dev eth0
ip -n "$phone" addr add 192.168.77.20/24 dev eth0
ip -n "$pi" link set eth0 up
ip -n "$phone" link set eth0 up
# `ip netns exec` binds /etc/netns/NAME/hosts over /etc/hosts: the phone's name for the pi.
mkdir -p "/etc/netns/$phone"
printf '127.0.0.1 localhost\n%s pi.roost.test\n' "$lan_ip" >"/etc/netns/$phone/hosts"
in_pi() { ip netns exec "$pi" "$@"; }
in_phone() { ip netns exec "$phone" "$@"; }

# The namespaces are empty, so fixed ports cannot collide with anything.
tcp_port=7881
cat >"$work/roost.toml" <<TOML
[server]
hostname = "pi.roost.test"
https_addr = "0.0.0.0:8443"
http_addr = ""
internal_addr = "127.0.0.1:9090"
[storage]
data_dir = "$work/data"
min_free_disk_mb = 1
[livekit]
enabled = true
binary = "$livekit"
rtc_tcp_port = $tcp_port
rtc_udp_port = 7882
turn_enabled = true
turn_domain = "pi.roost.test"
turn_udp_port = 3478
turn_tls_port = 443
drain_grace_secs = 1
TOML
url=https://pi.roost.test:8443
ca=$work/data/tls/ca.crt
password="netns password 1"
in_pi "$roost" init --config "$work/roost.toml" >/dev/null
echo "$password" | in_pi "$roost" user add alice --role admin --config "$work/roost.toml" >/dev/null
echo "$password" | in_pi "$roost" user add bob --config "$work/roost.toml" >/dev/null

doctor=$(in_pi "$roost" doctor --config "$work/roost.toml" 2>&1 || true)
grep -q "livekit media.*announces $lan_ip (detected on eth0)" <<<"$doctor" || {
    echo "$doctor" | sed 's/^/    /' >&2
    die "roost doctor does not name $lan_ip on eth0 as the address LiveKit announces"
}
log "roost doctor: $(grep -o "announces $lan_ip.*" <<<"$doctor")"

# Not through in_pi: a backgrounded shell function is a subshell, whose pid is not roost's.
ip netns exec "$pi" env RUNTIME_DIRECTORY='' "$roost" serve --config "$work/roost.toml" >"$work/roost.log" 2>&1 &
lib_track $!
deadline=$((SECONDS + 60))
until in_phone curl -fsS --max-time 1 --cacert "$ca" "$url/ready" 2>/dev/null | grep -q '"livekit":{"status":"ok"'; do
    ((SECONDS < deadline)) || {
        sed 's/^/    /' "$work/roost.log" >&2
        die "roost with LiveKit not ready at $url from the phone within 60 s (log above)"
    }
    sleep 0.2
done
log "roost and LiveKit ready in the pi, reached from the phone at $url ($((SECONDS - t0)) s)"

call() {
    if ! in_phone env SSL_CERT_FILE="$ca" "$venv/bin/python" "$repo/scripts/livekit-e2e/net.py" \
        "$url" "$ca" alice bob "$password" "$1" "$lan_ip" "$tcp_port"; then
        sed 's/^/    /' "$work/roost.log" | tail -n 40 >&2
        die "the $1 call failed (roost's log above)"
    fi
}
call udp

in_phone nft -f - <<NFT
table inet roost_netns {
    chain output {
        type filter hook output priority 0; policy accept;
        ip daddr $lan_ip meta l4proto udp drop
    }
}
NFT
log "UDP from the phone to the pi is now dropped"
call tcp

in_phone nft flush chain inet roost_netns output
in_phone nft add rule inet roost_netns output ip daddr "$lan_ip" udp dport != 3478 drop
in_phone nft add rule inet roost_netns output ip daddr "$lan_ip" tcp dport "$tcp_port" drop
log "the media ports are now dropped too, all but TURN's UDP 3478"
call turn

# LiveKit tells clients turns:<turn_domain>:443 (whatever tls_port says), so TURN over TLS is
# on 443 here, with Roost's certificate. The phone reaches nothing else on the pi but the page
# and the API on 8443.
in_phone nft flush chain inet roost_netns output
in_phone nft add rule inet roost_netns output ip daddr "$lan_ip" tcp dport != '{ 443, 8443 }' drop
in_phone nft add rule inet roost_netns output ip daddr "$lan_ip" meta l4proto != tcp drop
if ! tls=$(in_phone openssl s_client -connect pi.roost.test:443 -servername pi.roost.test \
    -verify_hostname pi.roost.test -CAfile "$ca" -verify_return_error </dev/null 2>&1); then
    sed 's/^/    /' <<<"$tls" | tail -n 20 >&2
    die "TURN over TLS on pi.roost.test:443 is not reachable from the phone with a certificate its CA verifies"
fi
log "turns: TURN over TLS answers on pi.roost.test:443 with a certificate the local CA verifies ($(grep -o 'Protocol *: *TLS[^ ]*' <<<"$tls" | head -n 1 | tr -s ' '))"

# The call itself, in the web client. LiveKit's Python SDK cannot make it: its WebRTC checks a
# TURN server's certificate only against built-in roots and takes no CA (LiveKit then logs
# "tls: unknown certificate authority"). Chromium checks it against the system's trust, on
# Linux the NSS database in $HOME/.pki/nssdb: the phone's person has installed the local CA.
phone_home=$work/phone-home
mkdir -p "$phone_home/.pki/nssdb"
certutil -N -d "sql:$phone_home/.pki/nssdb" --empty-password
certutil -A -d "sql:$phone_home/.pki/nssdb" -n "Roost local CA" -t "C,," -i "$ca"
if ! in_phone env HOME="$phone_home" node "$repo/web/e2e/netns-turns.mjs" "$url" alice bob "$password"; then
    sed 's/^/    /' "$work/roost.log" | tail -n 40 >&2
    die "the call over TURN/TLS in chromium failed (roost's log above; screenshots in target/web-screenshots)"
fi
log "passed ($((SECONDS - t0)) s)"
