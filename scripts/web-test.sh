#!/usr/bin/env bash
# The web client's tests: vitest unit tests, the production build (with its sizes per chunk),
# then the end-to-end tests in Debian's chromium against the debug roost binary that
# `cargo test` built (the call test also with the real livekit-server). Installs chromium (as
# root) when it is missing; never downloads a browser.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

if [[ ! -x /usr/bin/chromium ]]; then
    if ((EUID != 0)); then
        echo "web-test: /usr/bin/chromium is missing; install it with: sudo apt-get install chromium" >&2
        exit 1
    fi
    [[ -n "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ]] || apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

# e2e/call.test.mjs runs a call through the real livekit-server: the pinned build, cached
# (built once when missing; this stops with the build script's reason when it cannot).
if [[ -z ${ROOST_LIVEKIT_BIN:-} ]]; then
    ROOST_LIVEKIT_BIN=$(scripts/build-livekit.sh host) || {
        echo "web-test: the call test needs livekit-server; scripts/build-livekit.sh host failed (above)" >&2
        exit 1
    }
    export ROOST_LIVEKIT_BIN
fi

cd web
npm ci --no-audit --no-fund
npm test
npm run build
if [[ ! -x "${CARGO_TARGET_DIR:-../target}/debug/roost" ]]; then
    (cd .. && cargo build --locked)
fi
npm run e2e
echo "web-test: $((SECONDS - start)) s"
