#!/usr/bin/env bash
# The web client's speed and size (web/scripts/bench.mjs prints them beside their budgets):
#   - gzip bytes per chunk, the initial ones against the 100 KB budget, calls and admin apart;
#   - navigation to the room list and newest messages for a signed-in person in chromium with
#     4x CPU throttling and a 20 Mbit/s, 5 ms link, cold and warm, median of 5 runs;
#   - a room of 100,000 messages scrolled back 2,000+: message nodes and JS heap, start/after;
#   - roost's idle RSS beside the size of the client embedded in it.
# A benchmark, not a test: it prints figures and exits 0 unless it could not measure.
#
#   scripts/bench/web.sh
#   BENCH_RUNS=9 BENCH_MESSAGES=100000 BENCH_SCROLL_BACK=3000 scripts/bench/web.sh
#   ROOST_BIN=target/release/roost scripts/bench/web.sh   # measure that binary
#
# Environment: CARGO_TARGET_DIR (where cargo builds; default ./target); ROOST_BIN (a roost
# binary to measure instead of the debug one cargo builds: the client is the same, the server's
# own speed barely shows here, its RSS does); CHAT_BENCH_BIN (the seeding tool, else built).
# Needs node, npm and Debian's chromium (`apt install chromium`).
set -euo pipefail

case "${1:-}" in
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
esac

LOG_TAG=web-bench
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

[[ -x ${CHROMIUM:-/usr/bin/chromium} ]] || die "chromium is missing: sudo apt-get install chromium"
command -v node >/dev/null || die "node is missing: sudo apt-get install nodejs npm"

lib_workdir web-bench
if [[ -z ${ROOST_BIN:-} ]]; then
    log "building roost (debug)"
    (cd "$repo" && cargo build --quiet --locked --bin roost)
    ROOST_BIN=$target/debug/roost
fi
if [[ -z ${CHAT_BENCH_BIN:-} ]]; then
    log "building the chat_bench example (debug), which seeds the long room"
    (cd "$repo" && cargo build --quiet --locked --example chat_bench)
    CHAT_BENCH_BIN=$target/debug/examples/chat_bench
fi
[[ -d $repo/web/node_modules ]] || (cd "$repo/web" && npm ci --no-audit --no-fund)
log "building the client with its manifest (for the chunk graph)"
(cd "$repo/web" && npx vite build --logLevel warn --manifest --outDir "$work/dist" --emptyOutDir)

echo "web client figures on $(uname -m), $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)"
echo "roost: $ROOST_BIN; chromium: $("${CHROMIUM:-/usr/bin/chromium}" --version 2>/dev/null || echo unknown)"
cd "$repo/web"
ROOST_BIN=$ROOST_BIN CHAT_BENCH_BIN=$CHAT_BENCH_BIN BENCH_DIST=$work/dist node scripts/bench.mjs
