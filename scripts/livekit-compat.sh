#!/usr/bin/env bash
# Proves Roost's LiveKit contract with LiveKit's own code: the official server SDK
# (npm livekit-server-sdk, pinned below) verifies call tokens Roost mints, and signs webhooks
# that a running Roost must accept (and refuse when tampered with).
#
# Needs node >= 19 and npm; the SDK is installed into a cache dir, not the checkout.
# Runs a real `roost serve` on loopback ports with a temp data dir, supervising the stand-in
# LiveKit (examples/fake_livekit.rs) so that its webhook receiver is active.
set -euo pipefail
cd "$(dirname "$0")/.."

SDK_VERSION=2.19.2
CACHE=${LIVEKIT_COMPAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/roost-livekit-compat}
TARGET=${CARGO_TARGET_DIR:-target}
t0=$(date +%s%N)
lap() { printf '  [%6.1fs] %s\n' "$(( ($(date +%s%N) - t0) / 1000000 ))e-3" "$1"; }

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "node/npm missing; installing Debian's nodejs and npm"
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if (( node_major < 19 )); then
    echo "livekit-compat: node $(node --version) is too old for livekit-server-sdk (needs >= 19)" >&2
    exit 1
fi

if [[ ! -f "$CACHE/node_modules/livekit-server-sdk/package.json" ]] ||
   [[ $(node -p "require('$CACHE/node_modules/livekit-server-sdk/package.json').version") != "$SDK_VERSION" ]]; then
    mkdir -p "$CACHE"
    [[ -f "$CACHE/package.json" ]] || echo '{"private":true}' > "$CACHE/package.json"
    npm install --prefix "$CACHE" --no-audit --no-fund --silent "livekit-server-sdk@$SDK_VERSION"
fi
lap "livekit-server-sdk $SDK_VERSION ready (node $(node --version))"

cargo build --quiet --bin roost --example livekit_mint --example fake_livekit
lap "roost, livekit_mint and fake_livekit built"

work=$(mktemp -d)
roost_pid=
cleanup() {
    if [[ -n $roost_pid ]] && kill -0 "$roost_pid" 2>/dev/null; then
        kill -TERM "$roost_pid" 2>/dev/null || true
        wait "$roost_pid" 2>/dev/null || true
    fi
    [[ -n ${KEEP:-} ]] || rm -rf "$work"
}
trap cleanup EXIT

lk_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/roost.toml" <<EOF
[server]
hostname = "localhost"
https_addr = "127.0.0.1:0"
http_addr = ""
internal_addr = "127.0.0.1:0"
[storage]
data_dir = "$work/data"
min_free_disk_mb = 1
[livekit]
enabled = true
binary = "$PWD/$TARGET/debug/examples/fake_livekit"
http_port = $lk_port
drain_grace_secs = 1
EOF
[[ $TARGET = /* ]] && sed -i "s|^binary = .*|binary = \"$TARGET/debug/examples/fake_livekit\"|" "$work/roost.toml"

"$TARGET/debug/roost" init --config "$work/roost.toml" >/dev/null
RUNTIME_DIRECTORY= ROOST_LOG=info,roost=debug "$TARGET/debug/roost" --log-format json serve --config "$work/roost.toml" \
    2> "$work/roost.log" & roost_pid=$!

internal=
for _ in $(seq 1 600); do
    internal=$(grep -o '"internal":"[^"]*"' "$work/roost.log" | head -1 | cut -d'"' -f4 || true)
    [[ -n $internal ]] && grep -q '"livekit ready"' "$work/roost.log" && break
    kill -0 "$roost_pid" 2>/dev/null || { cat "$work/roost.log"; echo "roost exited" >&2; exit 1; }
    sleep 0.1
done
[[ -n $internal ]] || { cat "$work/roost.log"; echo "roost did not start" >&2; exit 1; }
lap "roost serving; internal listener $internal"

mint() {
    "$TARGET/debug/examples/livekit_mint" --config "$work/roost.toml" --room compat-room "$@"
}
export LK_KEY LK_SECRET WEBHOOK_URL MEMBER_TOKEN_JSON GUEST_TOKEN_JSON
LK_KEY=$(cat "$work/data/secrets/livekit_api_key")
LK_SECRET=$(cat "$work/data/secrets/livekit_api_secret")
WEBHOOK_URL="http://$internal/livekit/webhook"
MEMBER_TOKEN_JSON=$(mint --identity compat-member --role member)
GUEST_TOKEN_JSON=$(mint --identity compat-guest --role guest)
# ESM resolves packages from the script's location: run a copy inside the cache.
cp scripts/livekit-compat/check.mjs "$CACHE/check.mjs"
node "$CACHE/check.mjs"
lap "SDK checks done"

grep -q '"event":"participant_joined"' "$work/roost.log" ||
    { echo "roost did not log the accepted participant_joined webhook" >&2; exit 1; }
lap "total"
