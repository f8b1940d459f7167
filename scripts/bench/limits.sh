#!/usr/bin/env bash
# Rate-limiter figures: limiter checks per second per core and bytes per tracked key (item 14
# of the accounts issue), from the `limits_bench` example built in release mode (single-thread
# cases, plus one thread per available core for the tracked-IP case), and login latency with the
# default argon2 parameters measured against a real daemon.
# A benchmark, not a test: it prints figures and exits 0 unless it could not measure.
#
#   scripts/bench/limits.sh [SECONDS_PER_CASE]      (default 3)
#
# Environment: CARGO_TARGET_DIR (where cargo builds; default ./target); ROOST_BIN (a roost
# binary to measure the login latency of, instead of building target/release/roost).
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

LOG_TAG=bench
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

log "building the limits_bench example (release)"
(cd "$repo" && cargo build --quiet --locked --release --example limits_bench)
bench="$target/release/examples/limits_bench"

echo "== rate limiter ($(uname -m), $(nproc) core(s), $(date -u +%Y-%m-%dT%H:%MZ))"
"$bench" "$secs"

echo "== login latency (default argon2 parameters)"
measure_login_latency() {
    # A real daemon (release build) from a temp data dir, one user, N sequential logins over
    # TLS keep-alive. Loopback is exempt from rate limits for the run; the per-username backoff
    # only slows failed logins, and these succeed.
    local n=${LOGIN_SAMPLES:-40}
    roost_bin release
    lib_workdir login-bench
    roost_config "" '
[rate_limits]
exempt_cidrs = ["127.0.0.1/32"]'
    printf 'bench-password-1234\n' | "$roost" user add bench --config "$work/roost.toml" >/dev/null
    # shellcheck disable=SC2119 # not pinned to a core
    roost_start
    python3 - "$roost_port" "$roost_ca" "$n" <<'PY'
import http.client, json, ssl, statistics, sys, time
port, ca, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=ca)
conn = http.client.HTTPSConnection("localhost", port, context=ctx)
body = json.dumps({"username": "bench", "password": "bench-password-1234"})
samples = []
for i in range(n + 3):
    t = time.perf_counter()
    conn.request("POST", "/api/v1/auth/login", body, {"content-type": "application/json"})
    resp = conn.getresponse(); resp.read()
    assert resp.status == 200, resp.status
    if i >= 3:  # warm-up: connection, caches
        samples.append((time.perf_counter() - t) * 1000)
samples.sort()
p = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
print(f"  login (argon2id m=19456 KiB, t=2, p=1), {n} sequential over TLS keep-alive:")
print(f"    p50 {p(0.50):.1f} ms   p99 {p(0.99):.1f} ms   min {samples[0]:.1f} ms   max {samples[-1]:.1f} ms")
PY
}
measure_login_latency
