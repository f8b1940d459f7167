#!/usr/bin/env bash
# Rate-limiter figures: limiter checks per second per core and bytes per tracked key (item 14
# of the accounts issue), from the `limits_bench` example built in release mode (single-thread
# cases, plus one thread per available core for the tracked-IP case). And login latency with the default argon2 parameters, once
# authentication exists (see the TODO below).
# A benchmark, not a test: it prints figures and exits 0 unless it could not measure.
#
#   scripts/bench/limits.sh [SECONDS_PER_CASE]      (default 3)
#
# Environment: CARGO_TARGET_DIR (where cargo builds; default ./target).
set -euo pipefail

secs=${1:-3}
case "$secs" in
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
esac
[[ "$secs" =~ ^[0-9]+([.][0-9]+)?$ ]] || {
    echo "usage: $0 [SECONDS_PER_CASE]" >&2
    exit 64
}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
log() { echo "bench: $*" >&2; }

log "building the limits_bench example (release)"
(cd "$repo" && cargo build --quiet --release --example limits_bench)
bench="$target/release/examples/limits_bench"

echo "== rate limiter ($(uname -m), $(nproc) core(s), $(date -u +%Y-%m-%dT%H:%MZ))"
"$bench" "$secs"

echo "== login latency (default argon2 parameters)"
measure_login_latency() {
    # TODO(auth): authentication is not merged into this branch yet. Once it is, start
    # `roost serve` from a temp data dir (as scripts/bench/https.sh does), create a user with
    # `roost user add bench` (password on stdin), then time N sequential
    # `POST /api/v1/auth/login` with curl (`-w '%{time_total}'`, `--cacert <data>/tls/ca.crt`)
    # and print p50/p99 next to the argon2 parameters (m=19 MiB, t=2, p=1). Raise
    # [rate_limits.login] (or exempt 127.0.0.1/32) for the run, or the limiter answers 429.
    echo "  not measured: authentication is not in this build (TODO in $0)"
}
measure_login_latency
