#!/usr/bin/env bash
# Checks the monitoring kit in monitoring/ against the real daemon:
#   - promtool check config/rules on prometheus.yml and alerts.yml, and the alert unit tests;
#   - every PromQL expression of grafana-dashboard.json parses (checked as recording rules);
#   - promtool check metrics on a live /metrics scrape of `roost serve` started in a temp dir,
#     and every roost_* metric the alerts and the dashboard use is really exported (except the
#     names listed in FUTURE below: later features, or Pi-only readings).
#
#   scripts/check-monitoring.sh          uses $CARGO_TARGET_DIR/debug/roost (built if missing)
#
# With CI=true a missing promtool is installed with apt-get (Debian's prometheus package);
# otherwise the script says what to install and stops.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

die() {
    echo "check-monitoring: $*" >&2
    exit 1
}

if ! command -v promtool >/dev/null 2>&1; then
    if [[ ${CI:-} == true ]]; then
        echo "check-monitoring: promtool missing; installing the prometheus package (CI=true)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
    else
        die "promtool not found; install it with: apt-get install -y prometheus"
    fi
fi
command -v curl >/dev/null 2>&1 || die "curl not found; install it with: apt-get install -y curl"
command -v python3 >/dev/null 2>&1 || die "python3 not found"

work=$(mktemp -d "${TMPDIR:-/tmp}/roost-monitoring.XXXXXX")
roost_pid=
cleanup() {
    if [[ -n $roost_pid ]]; then
        kill "$roost_pid" 2>/dev/null || true
        wait "$roost_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "== prometheus.yml and alerts.yml"
promtool check config monitoring/prometheus.yml
promtool check rules monitoring/alerts.yml
promtool test rules monitoring/alerts_test.yml

echo "== grafana-dashboard.json: every expression parses"
python3 - monitoring/grafana-dashboard.json "$work/dashboard-rules.yml" <<'PY'
import json, sys
dash = json.load(open(sys.argv[1]))
exprs = []
def walk(panels):
    for p in panels:
        walk(p.get("panels", []))
        for t in p.get("targets", []):
            exprs.append((p.get("title", "?"), t["expr"]))
walk(dash["panels"])
if not exprs:
    sys.exit("no expressions found in the dashboard")
with open(sys.argv[2], "w") as out:
    out.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, (title, e) in enumerate(exprs):
        e = e.replace("$__rate_interval", "5m").replace("$instance", ".*")
        out.write("      - record: dashboard:expr_%d\n        expr: %s\n" % (i, json.dumps(e)))
print("%d expressions" % len(exprs))
PY
promtool check rules "$work/dashboard-rules.yml" >/dev/null

echo "== live /metrics of roost serve"
bin=${CARGO_TARGET_DIR:-$repo/target}/debug/roost
if [[ ! -x $bin ]]; then
    cargo build --quiet --bin roost
fi
cat >"$work/roost.toml" <<TOML
[server]
hostname = "localhost"
https_addr = "127.0.0.1:0"
http_addr = ""
internal_addr = "127.0.0.1:0"
[storage]
data_dir = "$work/data"
min_free_disk_mb = 1
TOML
# Created here: the background child opens its redirect asynchronously, and the first read
# below must not race it.
: >"$work/roost.log"
"$bin" --log-format json serve --config "$work/roost.toml" 2>>"$work/roost.log" &
roost_pid=$!
internal=
for _ in $(seq 1 300); do
    internal=$(sed -n 's/.*"message":"listening".*"internal":"\([0-9.:]*\)".*/\1/p' "$work/roost.log" | head -n 1)
    [[ -n $internal ]] && break
    kill -0 "$roost_pid" 2>/dev/null || { cat "$work/roost.log" >&2; die "roost serve exited"; }
    sleep 0.1
done
[[ -n $internal ]] || { cat "$work/roost.log" >&2; die "roost serve did not start within 30 s"; }
# One scrape to have counters with samples, then the one that is checked.
curl -fsS "http://$internal/metrics" >/dev/null
curl -fsS "http://$internal/metrics" >"$work/metrics.txt"
promtool check metrics <"$work/metrics.txt"
echo "promtool check metrics: ok ($(grep -c '^roost_' "$work/metrics.txt") samples)"

# Metrics that features still to come will export, or that only a Raspberry Pi exports
# (temperature, firmware throttling flags); everything else the kit uses must exist.
FUTURE="roost_auth_failures_total roost_rate_limit_hits_total roost_ws_connections
roost_ws_disconnects_total roost_livekit_up roost_livekit_restarts_total
roost_media_tokens_issued_total roost_messages_total
roost_cpu_temperature_celsius roost_throttled"
used=$(grep -ohE 'roost_[a-z0-9_]+' monitoring/alerts.yml monitoring/grafana-dashboard.json |
    sed -E 's/_(bucket|sum|count)$//' | sort -u)
missing=()
for name in $used; do
    grep -qw -- "$name" <<<"$FUTURE" && continue
    grep -qE "^${name}(_bucket|_sum|_count)?[{ ]" "$work/metrics.txt" || missing+=("$name")
done
((${#missing[@]} == 0)) || die "the kit uses metrics /metrics does not export: ${missing[*]}"
echo "check-monitoring: ok"
